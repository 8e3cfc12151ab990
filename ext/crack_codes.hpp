// Crack codes of one slice (FORMAT.md section 6 and 9.3): the BOC index of chain start
// vertices, chain extraction for the encoder, and chain parsing/drawing for the decoder.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
#include "ccl.hpp"
#include "markov.hpp"

namespace crackle {

enum Direction : int { kUp = 0, kRight = 1, kDown = 2, kLeft = 3 };

// The cracks a slice's code draws, as two bitsets: bit x of row y in `vert` is the crack on the
// left edge of pixel (x, y), in `horiz` the crack on its top edge. Bitsets keep the decoder's
// per-pixel state at 2 bits, and let runs and joins be found a 64-pixel word at a time.
struct CrackBits {
  uint64_t words = 0;  // per row
  std::vector<uint64_t> vert, horiz;

  void reset(uint32_t sx, uint32_t sy) {
    words = (static_cast<uint64_t>(sx) + 63) / 64;
    vert.assign(words * sy, 0);
    horiz.assign(words * sy, 0);
  }
};

// Is any pixel of row y in [lo, hi) joined to the pixel above it? Joined means no crack
// (impermissible) or a crack (permissible).
inline bool any_joined_up(const CrackBits& bits, uint32_t y, uint32_t lo, uint32_t hi, bool permissible) {
  const uint64_t* w = bits.horiz.data() + y * bits.words;
  const uint64_t flip = permissible ? 0 : ~0ull;
  const uint32_t i = lo >> 6, j = (hi - 1) >> 6;
  const uint64_t first = ~0ull << (lo & 63);
  const uint64_t last = ~0ull >> (63 - ((hi - 1) & 63));
  if (i == j) return ((w[i] ^ flip) & first & last) != 0;
  if ((w[i] ^ flip) & first) return true;
  for (uint32_t k = i + 1; k < j; k++) {
    if (w[k] ^ flip) return true;
  }
  return ((w[j] ^ flip) & last) != 0;
}

// Appends the start of every run of row y: 0, then each x >= 1 not joined to its left.
inline void row_run_starts(const CrackBits& bits, uint32_t sx, uint32_t y, bool permissible, std::vector<uint32_t>& out) {
  out.push_back(0);
  const uint64_t* w = bits.vert.data() + y * bits.words;
  const uint64_t flip = permissible ? ~0ull : 0;
  for (uint64_t i = 0; i < bits.words; i++) {
    uint64_t m = w[i] ^ flip;
    if (i == 0) m &= ~1ull;  // x = 0 always starts a run
    if (i == bits.words - 1 && (sx & 63)) m &= ~0ull >> (64 - (sx & 63));
    while (m) {
      out.push_back(static_cast<uint32_t>(i * 64 + __builtin_ctzll(m)));
      m &= m - 1;
    }
  }
}

struct Vertex {
  uint32_t x, y;
};

// Parses the BOC index (6.3) from exactly `size` bytes.
inline void parse_boc(const uint8_t* boc, uint64_t size, uint32_t sx, uint32_t sy, const char* section,
                      std::vector<Vertex>& starts) {
  starts.clear();
  const int xw = width_of(static_cast<uint64_t>(sx) + 1);
  const int yw = width_of(static_cast<uint64_t>(sy) + 1);
  ByteReader r(boc, size, section);
  const uint64_t rows = r.read(yw);
  uint64_t y = 0;
  for (uint64_t row = 0; row < rows; row++) {
    y += r.read(yw);
    if (y > sy) fail(section, "chain start row " + std::to_string(y) + " is outside the slice");
    const uint64_t count = r.read(xw);
    if (count > r.remaining() / xw) fail(section, "BOC row claims more starts than its bytes hold");
    uint64_t x = 0;
    for (uint64_t c = 0; c < count; c++) {
      x += r.read(xw);
      if (x > sx) fail(section, "chain start column " + std::to_string(x) + " is outside the slice");
      starts.push_back({static_cast<uint32_t>(x), static_cast<uint32_t>(y)});
    }
  }
}

// Walks every chain (6.5) and draws its cracks into `bits`. A move off the vertex grid, along
// the image border, or over a crack already drawn is corruption: a valid code draws each
// interior crack at most once. `max_directions` bounds the work on hostile input.
template <typename Directions>
void draw_chains(Directions& dirs, const std::vector<Vertex>& starts, uint32_t sx, uint32_t sy, CrackBits& bits,
                 std::vector<Vertex>& stack, const char* section) {
  const uint64_t max_directions = 8ull * (static_cast<uint64_t>(sx) + 1) * (static_cast<uint64_t>(sy) + 1) + 64;
  uint64_t used = 0;
  for (const Vertex& s : starts) {
    uint32_t x = s.x, y = s.y;
    int64_t branches = 1;
    int prev = -1;
    stack.clear();
    while (branches > 0) {
      int d;
      if (!dirs.next(d)) fail(section, "crack code ends inside a chain");
      if (++used > max_directions) fail(section, "crack code is longer than any slice of this size allows");
      if (prev >= 0 && d == (prev ^ 2)) {
        // A move followed by its reverse is a control pair; the move was never made.
        if (d == kUp || d == kLeft) {
          branches--;
          if (!stack.empty()) {
            x = stack.back().x;
            y = stack.back().y;
            stack.pop_back();
          }
        } else {
          stack.push_back({x, y});
          branches++;
        }
        prev = -1;
        continue;
      }
      if (prev >= 0) {
        uint64_t* word;
        uint32_t col;  // the pixel whose left (vertical move) or top (horizontal move) edge this is
        switch (prev) {
          case kUp:
            if (x == 0 || x >= sx || y == 0) fail(section, "crack move leaves the slice or runs along its border");
            y--;
            col = x;
            word = &bits.vert[y * bits.words + (x >> 6)];
            break;
          case kDown:
            if (x == 0 || x >= sx || y >= sy) fail(section, "crack move leaves the slice or runs along its border");
            col = x;
            word = &bits.vert[y * bits.words + (x >> 6)];
            y++;
            break;
          case kRight:
            if (y == 0 || y >= sy || x >= sx) fail(section, "crack move leaves the slice or runs along its border");
            col = x;
            word = &bits.horiz[y * bits.words + (x >> 6)];
            x++;
            break;
          default:  // kLeft
            if (y == 0 || y >= sy || x == 0) fail(section, "crack move leaves the slice or runs along its border");
            x--;
            col = x;
            word = &bits.horiz[y * bits.words + (x >> 6)];
            break;
        }
        const uint64_t m = 1ull << (col & 63);
        if (*word & m) fail(section, "crack code draws the same crack twice");
        *word |= m;
      }
      prev = d;
    }
  }
}

// ------------------------------------------------------------------------------------- encoder

// Chain symbols before they become 2-bit codes.
enum Symbol : uint8_t { kBranch = 4, kTerm = 5, kSkip = 6 };

// Adjacency bits of the crack graph on vertices, in the preference order of 9.3.
constexpr uint8_t kEdgeRight = 1, kEdgeLeft = 2, kEdgeDown = 4, kEdgeUp = 8;

struct CrackScratch {
  std::vector<uint8_t> adj;
  std::vector<uint8_t> code;
  std::vector<uint64_t> revisit;
  std::vector<int64_t> branch_stack;
  std::vector<uint32_t> move_count;
  std::vector<uint8_t> dirs;  // absolute directions of all chains of the slice
  struct Chain {
    uint64_t start, offset, length;
  };
  std::vector<Chain> chains;
};

// One slice's encoded crack code before the move stream is packed: the BOC index and the
// difference symbols f in {0,1,2,3} (FORMAT 6.4), ready for plain packing or the markov coder.
struct SliceCracks {
  std::vector<uint8_t> boc;
  std::vector<uint8_t> symbols;
};

namespace detail {

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

// Builds the crack graph of one slice (pixels x-fastest) and encodes it as chains, following
// the reference's walk (9.3) so that FLAT output can match it byte for byte. `runs` are the
// slice's runs of equal pixels (from the component labelling), which give the vertical cracks
// of an impermissible slice without another pass over the pixels.
template <typename T>
void encode_slice_cracks(const T* px, uint32_t sx, uint32_t sy, bool permissible, const Runs& runs, CrackScratch& s,
                         SliceCracks& out) {
  const uint64_t W = static_cast<uint64_t>(sx) + 1;
  const uint64_t nv = W * (static_cast<uint64_t>(sy) + 1);
  s.adj.assign(nv + 8, 0);  // 8 bytes of slack for the word-at-a-time scan below
  uint8_t* adj = s.adj.data();
  // Vertical cracks: between pixels (x-1, y) and (x, y), from vertex (x, y) down to (x, y+1).
  for (uint32_t y = 0; y < sy; y++) {
    if (!permissible) {
      for (uint32_t r = runs.row_first[y] + 1; r < runs.row_first[y + 1]; r++) {
        const uint64_t v = runs.start[r] + W * y;
        adj[v] |= kEdgeDown;
        adj[v + W] |= kEdgeUp;
      }
    } else {
      const T* row = px + static_cast<uint64_t>(y) * sx;
      uint8_t* here = adj + W * y;
      uint8_t* below = here + W;
      for (uint32_t x = 1; x < sx; x++) {
        const uint8_t c = row[x - 1] == row[x];
        here[x] |= static_cast<uint8_t>(c * kEdgeDown);
        below[x] |= static_cast<uint8_t>(c * kEdgeUp);
      }
    }
  }
  // Horizontal cracks: between pixels (x, y-1) and (x, y), from vertex (x, y) right to (x+1, y).
  // Branch-free so the compiler can vectorise it: this is the encoder's one per-pixel pass.
  const uint8_t want = permissible ? 0 : 1;
  for (uint32_t y = 1; y < sy; y++) {
    const T* row = px + static_cast<uint64_t>(y) * sx;
    const T* above = row - sx;
    uint8_t* a = adj + W * y;
    uint8_t prev = 0;
    for (uint32_t x = 0; x < sx; x++) {
      const uint8_t c = static_cast<uint8_t>((above[x] != row[x]) == want);
      a[x] |= static_cast<uint8_t>(c * kEdgeRight | prev * kEdgeLeft);
      prev = c;
    }
    a[sx] |= static_cast<uint8_t>(prev * kEdgeLeft);
  }

  s.dirs.clear();
  s.chains.clear();
  s.revisit.clear();
  const int64_t step[4] = {-static_cast<int64_t>(W), 1, static_cast<int64_t>(W), -1};  // by Direction
  for (uint64_t start = 0;; ) {
    // Crack graphs are sparse: skip empty vertices eight at a time.
    while (start < nv) {
      uint64_t word;
      std::memcpy(&word, adj + start, 8);
      if (word != 0) break;
      start += 8;
    }
    while (start < nv && adj[start] == 0) start++;
    if (start >= nv) break;

    // Depth-first walk over this connected piece of the crack graph.
    std::vector<uint8_t>& code = s.code;
    code.clear();
    uint64_t node = start;
    int64_t branches = 1;
    while (adj[node] != 0 || !s.revisit.empty()) {
      if (adj[node] == 0) {
        code.push_back(kTerm);
        branches--;
        node = s.revisit.back();
        s.revisit.pop_back();
        continue;
      }
      if (adj[node] & (adj[node] - 1)) {  // more than one edge left
        code.push_back(kBranch);
        s.revisit.push_back(node);
        branches++;
      }
      const uint8_t e = adj[node] & static_cast<uint8_t>(-adj[node]);  // lowest set bit
      uint8_t dir, back;
      switch (e) {
        case kEdgeRight: dir = kRight; back = kEdgeLeft; break;
        case kEdgeLeft: dir = kLeft; back = kEdgeRight; break;
        case kEdgeDown: dir = kDown; back = kEdgeUp; break;
        default: dir = kUp; back = kEdgeDown; break;
      }
      adj[node] &= static_cast<uint8_t>(~e);
      node = static_cast<uint64_t>(static_cast<int64_t>(node) + step[dir]);
      adj[node] &= static_cast<uint8_t>(~back);
      code.push_back(dir);
    }
    for (int64_t b = 0; b < branches; b++) code.push_back(kTerm);

    // Re-root: a leading branch whose first sub-walk has no branch is walked backwards instead,
    // starting the chain where that sub-walk ended.
    uint64_t chain_start = start;
    if (!code.empty() && code[0] == kBranch) {
      size_t t = 1;
      bool has_branch = false;
      while (t < code.size() && code[t] != kTerm) {
        if (code[t] == kBranch) has_branch = true;
        t++;
      }
      if (!has_branch && t < code.size()) {
        int64_t v = static_cast<int64_t>(start);
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
    const uint64_t y = s.chains[i].start / W;
    size_t j = i;
    while (j < s.chains.size() && s.chains[j].start / W == y) j++;
    append_le(out.boc, y - prev_y, yw);
    append_le(out.boc, j - i, xw);
    uint64_t prev_x = 0;
    for (size_t k = i; k < j; k++) {
      const uint64_t x = s.chains[k].start % W;
      append_le(out.boc, x - prev_x, xw);
      prev_x = x;
    }
    prev_y = y;
    i = j;
  }

  // Difference symbols over all chains in BOC order; the running direction starts at 0 per slice.
  out.symbols.clear();
  uint8_t d_prev = 0;
  for (const auto& c : s.chains) {
    for (uint64_t k = 0; k < c.length; k++) {
      const uint8_t d = s.dirs[c.offset + k];
      out.symbols.push_back(static_cast<uint8_t>((d - d_prev) & 3));
      d_prev = d;
    }
  }
}

// Plain move stream: four 2-bit symbols per byte, LSB-first, the last byte zero-padded.
inline void pack_plain(const std::vector<uint8_t>& symbols, std::vector<uint8_t>& out) {
  const size_t at = out.size();
  out.resize(at + (symbols.size() + 3) / 4, 0);
  uint8_t* p = out.data() + at;
  for (size_t i = 0; i < symbols.size(); i++) p[i >> 2] |= static_cast<uint8_t>(symbols[i] << (2 * (i & 3)));
}

}  // namespace crackle
