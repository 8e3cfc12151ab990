// The encoder's side of crack codes (FORMAT.md 9.3): per-slice difference masks, the crack
// graph, and its decomposition into chains, walked exactly as the reference walks them so that
// FLAT output can match it byte for byte.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "common.hpp"
#include "crack_codes.hpp"

namespace crackle {

// Where neighbouring pixels of a slice differ, one bit per pixel: `dh` bit x of row y is set
// when pixel (x, y) differs from (x-1, y) (x >= 1); `dv` when it differs from (x, y-1) (y >= 1).
// These two masks are the encoder's only per-pixel passes: runs, component joins, the pair
// count and the crack graph all come from them a 64-pixel word at a time.
struct SliceDiffs {
  uint64_t words = 0;  // per row; covers sx + 1 bits (vertex columns 0..sx)
  std::vector<uint64_t> dh, dv;

  const uint64_t* dh_row(uint32_t y) const { return dh.data() + y * words; }
  const uint64_t* dv_row(uint32_t y) const { return dv.data() + y * words; }
};

namespace detail {

// Packs 64 bytes of 0/1 into a 64-bit mask, eight at a time (the multiply gathers the low bit
// of each byte into the top byte).
inline uint64_t pack_bits(const uint8_t* flags) {
  uint64_t m = 0;
  for (int i = 0; i < 8; i++) {
    uint64_t w;
    std::memcpy(&w, flags + 8 * i, 8);
    if (!host_is_little_endian()) w = __builtin_bswap64(w);
    m |= ((w * 0x0102040810204080ull) >> 56) << (8 * i);
  }
  return m;
}

// Bit k set where a[k] != b[k], for 64 four-byte elements (SSE2: 4 compares to a movemask).
#if defined(__SSE2__)
inline uint64_t differ_mask_u32(const void* a, const void* b) {
  const auto* pa = static_cast<const uint8_t*>(a);
  const auto* pb = static_cast<const uint8_t*>(b);
  uint64_t equal = 0;
  for (int i = 0; i < 16; i++) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(pa + 16 * i));
    const __m128i y = _mm_loadu_si128(reinterpret_cast<const __m128i*>(pb + 16 * i));
    equal |= static_cast<uint64_t>(_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(x, y)))) << (4 * i);
  }
  return ~equal;
}
#endif

}  // namespace detail

// Two simple loops per 64 pixels: an element-wise compare into bytes, which compilers
// vectorise for every element width, then a multiply-based bit pack.
template <typename T>
void diff_masks(const T* px, uint32_t sx, uint32_t sy, uint64_t row_stride, SliceDiffs& d) {
  d.words = (static_cast<uint64_t>(sx) + 1 + 63) / 64;
  d.dh.assign(d.words * sy, 0);
  d.dv.assign(d.words * sy, 0);
  alignas(16) uint8_t flags[64];
  for (uint32_t y = 0; y < sy; y++) {
    const T* row = px + y * row_stride;
    const T* above = row - row_stride;
    uint64_t* h = d.dh.data() + y * d.words;
    uint64_t* v = d.dv.data() + y * d.words;
    for (uint32_t x0 = 0; x0 < sx; x0 += 64) {
      const uint32_t end = std::min<uint32_t>(sx - x0, 64);
      const T* cur = row + x0;
      const T* left = cur - 1;  // only read from k = 1 on when x0 == 0
#if defined(__SSE2__)
      // Four-byte labels (the usual case) compare four at a time straight into mask bits.
      if (sizeof(T) == 4 && end == 64 && x0 > 0) {
        h[x0 >> 6] = detail::differ_mask_u32(cur, left);
        if (y > 0) v[x0 >> 6] = detail::differ_mask_u32(cur, above + x0);
        continue;
      }
#endif
      if (end == 64 && x0 > 0) {
        for (int k = 0; k < 64; k++) flags[k] = cur[k] != left[k];
      } else if (end == 64) {
        flags[0] = 0;
        for (int k = 1; k < 64; k++) flags[k] = cur[k] != left[k];
      } else {
        std::memset(flags, 0, sizeof(flags));
        for (uint32_t k = (x0 == 0 ? 1 : 0); k < end; k++) flags[k] = cur[k] != left[k];
      }
      h[x0 >> 6] = detail::pack_bits(flags);
      if (y > 0) {
        const T* up = above + x0;
        if (end == 64) {
#if defined(__SSE2__)
          if (sizeof(T) == 4) {
            v[x0 >> 6] = detail::differ_mask_u32(cur, up);
            continue;
          }
#endif
          for (int k = 0; k < 64; k++) flags[k] = cur[k] != up[k];
        } else {
          std::memset(flags, 0, sizeof(flags));
          for (uint32_t k = 0; k < end; k++) flags[k] = cur[k] != up[k];
        }
        v[x0 >> 6] = detail::pack_bits(flags);
      }
    }
  }
}

// Chain symbols before they become 2-bit codes: 0..3 are moves (Direction).
enum Symbol : uint8_t { kBranch = 4, kTerm = 5, kSkip = 6 };

struct CrackScratch {
  // The crack graph as edge bitsets. horiz row y (0..sy): bit x = edge (x,y)-(x+1,y).
  // vert row y+1 (rows 0 and sy+1 stay empty): bit x = edge (x,y)-(x,y+1).
  std::vector<uint64_t> horiz, vert;
  std::vector<uint8_t> code;
  struct Vertex64 {
    uint64_t x, y;
  };
  std::vector<Vertex64> revisit;  // vertices with edges left, to come back to
  std::vector<int64_t> branch_stack;
  std::vector<uint32_t> move_count;
  std::vector<uint8_t> dirs;  // absolute directions of all chains of the slice
  struct Chain {
    uint64_t start, offset, length;
  };
  std::vector<Chain> chains;
};

// One slice's crack code before the move stream is packed: the BOC index and the difference
// symbols f in {0,1,2,3} (FORMAT 6.4), ready for plain packing or the markov coder.
struct SliceCracks {
  std::vector<uint8_t> boc;
  std::vector<uint8_t> symbols;
};

namespace detail {

inline bool test_bit(const uint64_t* row, uint64_t x) { return (row[x >> 6] >> (x & 63)) & 1; }
inline void clear_bit(uint64_t* row, uint64_t x) { row[x >> 6] &= ~(1ull << (x & 63)); }

inline void emit_chain(const std::vector<uint8_t>& code, std::vector<uint8_t>& dirs) {
  int last = -1;
  for (size_t i = 0; i < code.size(); i++) {
    const uint8_t s = code[i];
    if (s < 4) {
      dirs.push_back(s);
      last = s;
    } else if (s == kBranch) {
      if (i == 0 || last == kDown) {
        dirs.push_back(kLeft);
        dirs.push_back(kRight);
        last = kRight;
      } else {
        dirs.push_back(kUp);
        dirs.push_back(kDown);
        last = kDown;
      }
    } else if (s == kTerm) {
      if (i == 0 || last == kUp) {
        dirs.push_back(kRight);
        dirs.push_back(kLeft);
        last = kLeft;
      } else {
        dirs.push_back(kDown);
        dirs.push_back(kUp);
        last = kUp;
      }
    }
  }
}

}  // namespace detail

// Encodes the cracks of one slice as chains. The walk (9.3): from the first vertex (raster
// order) with an edge, repeatedly take the lowest remaining edge in the order right, left,
// down, up, remembering vertices with more than one edge left; then re-root and drop empty
// branches as the reference does.
inline void encode_slice_cracks(const SliceDiffs& d, uint32_t sx, uint32_t sy, bool permissible, CrackScratch& s,
                                SliceCracks& out) {
  const uint64_t words = d.words;
  const uint64_t W = static_cast<uint64_t>(sx) + 1;
  // Cracks are the pixel pairs that differ (impermissible) or agree (permissible), never on
  // the border: horizontal ones for x in 0..sx-1, vertical ones for x in 1..sx-1.
  s.horiz.assign(words * (static_cast<uint64_t>(sy) + 1), 0);
  s.vert.assign(words * (static_cast<uint64_t>(sy) + 2), 0);
  const uint64_t flip = permissible ? ~0ull : 0;
  for (uint32_t y = 0; y < sy; y++) {
    for (uint64_t k = 0; k < words; k++) {
      const uint64_t x0 = k * 64;
      uint64_t valid_h = x0 + 64 <= sx ? ~0ull : (sx > x0 ? (~0ull >> (64 - (sx - x0))) : 0);
      uint64_t valid_v = valid_h;
      if (k == 0) valid_v &= ~1ull;
      if (y > 0) s.horiz[y * words + k] = (d.dv[y * words + k] ^ flip) & valid_h;
      s.vert[(y + 1) * words + k] = (d.dh[y * words + k] ^ flip) & valid_v;
    }
  }
  uint64_t* H = s.horiz.data();
  uint64_t* V = s.vert.data();
  auto edges = [&](uint64_t x, uint64_t y) -> uint8_t {
    const uint64_t* h = H + y * words;
    uint8_t e = static_cast<uint8_t>(detail::test_bit(h, x));                 // right
    if (x > 0) e |= static_cast<uint8_t>(detail::test_bit(h, x - 1) << 1);    // left
    e |= static_cast<uint8_t>(detail::test_bit(V + (y + 1) * words, x) << 2);  // down
    e |= static_cast<uint8_t>(detail::test_bit(V + y * words, x) << 3);        // up
    return e;
  };
  // First vertex at or after (x, y) in raster order with any edge left; false when none.
  auto next_start = [&](uint64_t& x, uint64_t& y) -> bool {
    for (; y <= sy; y++, x = 0) {
      const uint64_t* h = H + y * words;
      const uint64_t* down = V + (y + 1) * words;
      const uint64_t* up = V + y * words;
      for (uint64_t k = x >> 6; k < words; k++) {
        uint64_t w = h[k] | (h[k] << 1) | (k > 0 ? h[k - 1] >> 63 : 0) | down[k] | up[k];
        if (k == (x >> 6)) w &= ~0ull << (x & 63);
        if (w) {
          x = k * 64 + __builtin_ctzll(w);
          return true;
        }
      }
    }
    return false;
  };

  s.dirs.clear();
  s.chains.clear();
  s.revisit.clear();
  uint64_t sxv = 0, syv = 0;
  while (next_start(sxv, syv)) {
    std::vector<uint8_t>& code = s.code;
    code.clear();
    uint64_t x = sxv, y = syv;
    int64_t branches = 1;
    for (;;) {
      uint8_t e = edges(x, y);
      if (e == 0) {
        if (s.revisit.empty()) break;
        code.push_back(kTerm);
        branches--;
        x = s.revisit.back().x;
        y = s.revisit.back().y;
        s.revisit.pop_back();
        continue;
      }
      if (e & (e - 1)) {  // more than one edge left: come back here
        code.push_back(kBranch);
        s.revisit.push_back({x, y});
        branches++;
      }
      if (e & 1) {
        detail::clear_bit(H + y * words, x);
        x++;
        code.push_back(kRight);
      } else if (e & 2) {
        detail::clear_bit(H + y * words, x - 1);
        x--;
        code.push_back(kLeft);
      } else if (e & 4) {
        detail::clear_bit(V + (y + 1) * words, x);
        y++;
        code.push_back(kDown);
      } else {
        detail::clear_bit(V + y * words, x);
        y--;
        code.push_back(kUp);
      }
    }
    for (int64_t b = 0; b < branches; b++) code.push_back(kTerm);

    // Re-root: a leading branch whose first sub-walk has no branch is walked backwards instead,
    // starting the chain where that sub-walk ended.
    uint64_t chain_start = sxv + W * syv;
    if (!code.empty() && code[0] == kBranch) {
      size_t t = 1;
      bool has_branch = false;
      while (t < code.size() && code[t] != kTerm) {
        if (code[t] == kBranch) has_branch = true;
        t++;
      }
      if (!has_branch && t < code.size()) {
        const int64_t step[4] = {-static_cast<int64_t>(W), 1, static_cast<int64_t>(W), -1};  // by Direction
        int64_t v = static_cast<int64_t>(chain_start);
        for (size_t i = 1; i < t; i++) v += step[code[i]];
        chain_start = static_cast<uint64_t>(v);
        code[0] = kSkip;
        code[t] = kSkip;
        std::reverse(code.begin() + 1, code.begin() + t);
        for (size_t i = 1; i < t; i++) code[i] ^= 2;
      }
    }

    // Drop empty branches exactly as the reference does (9.3): the count goes to the branch
    // most recently returned to.
    s.branch_stack.assign(1, -1);
    s.move_count.assign(code.size() + 1, 0);
    int64_t cur = -1;
    for (size_t i = 0; i < code.size(); i++) {
      const uint8_t sym = code[i];
      if (sym == kBranch) {
        s.branch_stack.push_back(static_cast<int64_t>(i));
      } else if (sym == kTerm) {
        if (cur >= 0 && s.move_count[cur + 1] == 0) {
          code[cur] = kSkip;
          code[i] = kSkip;
        }
        if (!s.branch_stack.empty()) {
          cur = s.branch_stack.back();
          s.branch_stack.pop_back();
        } else {
          cur = -1;
        }
      } else {
        s.move_count[cur + 1]++;
      }
    }

    const uint64_t offset = s.dirs.size();
    detail::emit_chain(code, s.dirs);
    s.chains.push_back({chain_start, offset, s.dirs.size() - offset});
  }

  std::sort(s.chains.begin(), s.chains.end(),
            [](const CrackScratch::Chain& a, const CrackScratch::Chain& b) { return a.start < b.start; });

  // BOC index: rows of start vertices, y as deltas between rows, x restarting at 0 per row.
  const int xw = width_of(static_cast<uint64_t>(sx) + 1);
  const int yw = width_of(static_cast<uint64_t>(sy) + 1);
  out.boc.clear();
  uint64_t rows = 0;
  for (size_t i = 0; i < s.chains.size(); i++) {
    if (i == 0 || s.chains[i].start / W != s.chains[i - 1].start / W) rows++;
  }
  append_le(out.boc, rows, yw);
  uint64_t prev_y = 0;
  for (size_t i = 0; i < s.chains.size();) {
    const uint64_t cy = s.chains[i].start / W;
    size_t j = i;
    while (j < s.chains.size() && s.chains[j].start / W == cy) j++;
    append_le(out.boc, cy - prev_y, yw);
    append_le(out.boc, j - i, xw);
    uint64_t prev_x = 0;
    for (size_t k = i; k < j; k++) {
      const uint64_t cx = s.chains[k].start % W;
      append_le(out.boc, cx - prev_x, xw);
      prev_x = cx;
    }
    prev_y = cy;
    i = j;
  }

  // Difference symbols over all chains in BOC order; the running direction starts at 0 per slice.
  out.symbols.resize(s.dirs.size());
  uint8_t* f = out.symbols.data();
  uint8_t d_prev = 0;
  for (const auto& c : s.chains) {
    for (uint64_t k = 0; k < c.length; k++) {
      const uint8_t dir = s.dirs[c.offset + k];
      *f++ = static_cast<uint8_t>((dir - d_prev) & 3);
      d_prev = dir;
    }
  }
}

// Plain move stream: four 2-bit symbols per byte, LSB-first, the last byte zero-padded.
inline void pack_plain(const std::vector<uint8_t>& symbols, std::vector<uint8_t>& out) {
  const size_t n = symbols.size();
  const size_t at = out.size();
  out.resize(at + (n + 3) / 4, 0);
  uint8_t* p = out.data() + at;
  const uint8_t* f = symbols.data();
  size_t i = 0;
  for (; i + 4 <= n; i += 4) p[i >> 2] = static_cast<uint8_t>(f[i] | f[i + 1] << 2 | f[i + 2] << 4 | f[i + 3] << 6);
  for (; i < n; i++) p[i >> 2] |= static_cast<uint8_t>(f[i] << (2 * (i & 3)));
}

}  // namespace crackle
