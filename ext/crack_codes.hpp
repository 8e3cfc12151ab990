// Crack codes of one slice (FORMAT.md section 6 and 9.3): the BOC index of chain start
// vertices, chain extraction for the encoder, and chain parsing/drawing for the decoder.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "ccl.hpp"
#include "common.hpp"
#include "markov.hpp"

namespace crackle {

enum Direction : int { kUp = 0, kRight = 1, kDown = 2, kLeft = 3 };

// The cracks a slice's code draws, as bit grids over the (sx+1) x (sy+1) vertices, `words` 64-bit
// words a row: bit x of V row y is the vertical crack from vertex (x, y) down to (x, y+1), the left
// edge of pixel (x, y); bit x of H row y the horizontal crack from (x, y) right to (x+1, y), the
// top edge of pixel (x, y). Cracks a valid code may not draw (the slice border, and everything off
// the grid, in a padding row above and below each grid) start out set, so the chain walker needs
// one test per move, "is this crack already drawn?", to reject a move off the slice, along its
// border or over a crack twice, and a vertex never leaves the grid.
struct CrackBits {
  uint32_t sx = 0, sy = 0;
  uint64_t words = 0;  // per row: room for vertex columns 0..sx
  std::vector<uint64_t> grid;

  // Layout, in rows of `words`: V row -1 (padding), V rows 0..sy (row sy padding), H row -1
  // (padding), H rows 0..sy (rows 0 and sy are border), one padding word for window reads.
  int64_t v_bit(int64_t x, int64_t y) const { return (y + 1) * row_bits() + x; }
  int64_t h_bit(int64_t x, int64_t y) const { return (static_cast<int64_t>(sy) + 3 + y) * row_bits() + x; }
  int64_t row_bits() const { return static_cast<int64_t>(words) * 64; }
  const uint64_t* v_row(uint32_t y) const { return grid.data() + v_bit(0, y) / 64; }
  const uint64_t* h_row(uint32_t y) const { return grid.data() + h_bit(0, y) / 64; }

  void reset(uint32_t new_sx, uint32_t new_sy) {
    if (new_sx != sx || new_sy != sy || blank_.empty()) make_blank(new_sx, new_sy);
    grid = blank_;
  }

 private:
  void make_blank(uint32_t new_sx, uint32_t new_sy) {
    sx = new_sx;
    sy = new_sy;
    words = (static_cast<uint64_t>(sx) + 1 + 63) / 64;
    const uint64_t rows = 2 * static_cast<uint64_t>(sy) + 4;
    blank_.assign(rows * words + 1, 0);
    auto set = [this](int64_t bit) { blank_[static_cast<uint64_t>(bit) / 64] |= 1ull << (bit & 63); };
    auto set_row_from = [&](int64_t row_start_bit, int64_t x0) {
      for (int64_t x = x0; x < row_bits(); x++) set(row_start_bit + x);
    };
    set_row_from(v_bit(0, -1), 0);
    for (int64_t y = 0; y < sy; y++) {
      set(v_bit(0, y));
      set_row_from(v_bit(0, y), sx);
    }
    set_row_from(v_bit(0, sy), 0);
    set_row_from(h_bit(0, -1), 0);
    set_row_from(h_bit(0, 0), 0);
    for (int64_t y = 1; y < sy; y++) set_row_from(h_bit(0, y), sx);
    set_row_from(h_bit(0, sy), 0);
  }
  std::vector<uint64_t> blank_;
};

// Bits [lo, hi) of a bit row, as the low bits of a word; hi - lo <= 57. Reads 8 bytes from
// byte lo / 8, which the padding word after the grid keeps in bounds.
inline uint64_t bit_window(const uint64_t* row, uint32_t lo, uint32_t hi) {
  uint64_t w;
  std::memcpy(&w, reinterpret_cast<const uint8_t*>(row) + (lo >> 3), 8);
  if (!host_is_little_endian()) w = __builtin_bswap64(w);
  return (w >> (lo & 7)) & ((1ull << (hi - lo)) - 1);
}

// Is any pixel of row y in [lo, hi) joined to the pixel above it? Joined means no crack
// (impermissible) or a crack (permissible).
inline bool any_joined_up(const CrackBits& bits, uint32_t y, uint32_t lo, uint32_t hi, bool permissible) {
  const uint64_t* w = bits.h_row(y);
  const uint64_t flip = permissible ? 0 : ~0ull;
  if (hi - lo <= 57) return ((bit_window(w, lo, hi) ^ flip) & ((1ull << (hi - lo)) - 1)) != 0;
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

// A slice's runs and components. Row y's runs are start[row_first[y] .. row_first[y+1] - 1);
// the last entry of each row is sx, a sentinel, so run r always ends at start[r + 1].
struct SliceRuns {
  std::vector<uint32_t> start;
  std::vector<uint32_t> row_first;
  std::vector<uint32_t> parent;     // union-find over runs
  std::vector<uint32_t> component;  // component of each run (sentinels: unused)
  std::vector<uint64_t> start_bits; // per row, bit x set where a run starts
};

// 4-connected components of the slice the cracks delimit, numbered by first appearance in
// raster order (FORMAT 7.2): the same numbering as the encoder's label_runs (ccl.hpp), on runs
// found a bit-word at a time. Returns the component count. Always inlined, so that a caller
// compiled for a popcount instruction (kHardwarePopcount) gets it here too.
template <bool kHardwarePopcount>
__attribute__((always_inline)) inline uint32_t label_crack_runs(const CrackBits& bits, bool permissible, SliceRuns& runs) {
  const uint32_t sx = bits.sx, sy = bits.sy;
  runs.row_first.resize(static_cast<size_t>(sy) + 1);
  runs.row_first[0] = 0;
  if (sx == 0 || sy == 0) {
    std::fill(runs.row_first.begin(), runs.row_first.end(), 0);
    return 0;
  }
  const uint64_t pixel_words = (static_cast<uint64_t>(sx) + 63) / 64;
  const uint64_t last_mask = (sx & 63) ? ~0ull >> (64 - (sx & 63)) : ~0ull;
  const uint64_t flip = permissible ? ~0ull : 0;
  runs.start_bits.resize(static_cast<uint64_t>(sy) * pixel_words);
  uint64_t* const start_bits = runs.start_bits.data();
  uint64_t used = 0;
  for (uint32_t y = 0; y < sy; y++) {
    // A row has at most sx runs and its sentinel, and the last word's unconditional writes may
    // reach 8 entries further; growing by doubling keeps this amortised.
    if (runs.start.size() < used + sx + 9) runs.start.resize(std::max<uint64_t>(2 * runs.start.size(), used + sx + 9));
    if (used > 0xFFFFFFFFull - sx - 1) fail("slice", "too many runs in one slice");
    uint32_t* out = runs.start.data() + used;
    const uint64_t* w = bits.v_row(y);
    for (uint64_t i = 0; i < pixel_words; i++) {
      uint64_t m = w[i] ^ flip;
      if (i == 0) m |= 1;  // x = 0 always starts a run
      if (i == pixel_words - 1) m &= last_mask;
      start_bits[y * pixel_words + i] = m;
      // Eight starts are written unconditionally (a word rarely holds more) and the cursor moves
      // by the true count: a loop over the set bits would mispredict its exit on every word.
      const uint32_t count = popcount64<kHardwarePopcount>(m);
      const uint32_t base = static_cast<uint32_t>(i * 64);
      uint64_t rest = m;
      for (int k = 0; k < 8; k++) {
        out[k] = base + static_cast<uint32_t>(__builtin_ctzll(rest | (1ull << 63)));
        rest &= rest - 1;
      }
      if (count > 8) {
        for (uint32_t k = 8; k < count; k++) {
          out[k] = base + static_cast<uint32_t>(__builtin_ctzll(rest));
          rest &= rest - 1;
        }
      }
      out += count;
    }
    *out++ = sx;
    used = static_cast<uint64_t>(out - runs.start.data());
    runs.row_first[y + 1] = static_cast<uint32_t>(used);
  }
  const uint32_t n = static_cast<uint32_t>(used);
  runs.parent.resize(n);
  uint32_t* parent = runs.parent.data();
  for (uint32_t i = 0; i < n; i++) parent[i] = i;
  // A row's sentinel hangs off the row's last run, so numbering can run over every entry.
  for (uint32_t y = 0; y < sy; y++) parent[runs.row_first[y + 1] - 1] = runs.row_first[y + 1] - 2;
  const uint32_t* S = runs.start.data();
  const uint64_t join_flip = permissible ? 0 : ~0ull;

  // Joins one run of row y to one of row y-1 (union by smaller root).
  auto join = [parent](uint32_t r, uint32_t q) {
    const uint32_t rq = detail::find_root(parent, q);
    if (parent[r] == r) {
      parent[r] = rq;  // r's first join; rq < r, so the smaller root stays the root
      return;
    }
    const uint32_t rr = detail::find_root(parent, r);
    if (rr < rq) {
      parent[rq] = rr;
    } else if (rq < rr) {
      parent[rr] = rq;
    }
  };
  for (uint32_t y = 1; y < sy; y++) {
    // The run starts of both rows cut row y into segments, each under one run of each row.
    // In a valid code a segment is joined to the row above all along or not at all (both its
    // runs hold one label each), so the joins are the segment starts where row y is joined up:
    // found a word at a time, with no per-pair branch. A row where joining changes inside a
    // segment is not from a valid code; it takes the exact pairwise walk below, so the result
    // is always the components the cracks draw.
    const uint64_t* h = bits.h_row(y);
    const uint64_t* A = start_bits + y * pixel_words;
    const uint64_t* P = start_bits + (y - 1) * pixel_words;
    uint64_t inside_change = 0, carry = 0;
    for (uint64_t i = 0; i < pixel_words; i++) {
      const uint64_t mask = i == pixel_words - 1 ? last_mask : ~0ull;
      const uint64_t J = (h[i] ^ join_flip) & mask;
      inside_change |= (J ^ ((J << 1) | carry)) & ~(A[i] | P[i]) & mask;
      carry = J >> 63;
    }
    if (inside_change == 0) {
      uint32_t r_base = runs.row_first[y] - 1, q_base = runs.row_first[y - 1] - 1;
      for (uint64_t i = 0; i < pixel_words; i++) {
        const uint64_t mask = i == pixel_words - 1 ? last_mask : ~0ull;
        const uint64_t J = (h[i] ^ join_flip) & mask;
        for (uint64_t e = (A[i] | P[i]) & J; e; e &= e - 1) {
          const uint64_t upto = ((e & (0 - e)) << 1) - 1;  // bits up to this segment's start
          join(r_base + static_cast<uint32_t>(popcount64<kHardwarePopcount>(A[i] & upto)),
               q_base + static_cast<uint32_t>(popcount64<kHardwarePopcount>(P[i] & upto)));
        }
        r_base += static_cast<uint32_t>(popcount64<kHardwarePopcount>(A[i]));
        q_base += static_cast<uint32_t>(popcount64<kHardwarePopcount>(P[i]));
      }
      continue;
    }
    uint32_t r = runs.row_first[y], q = runs.row_first[y - 1];
    for (;;) {
      const uint32_t b = S[r + 1], d = S[q + 1];
      const uint32_t lo = S[r] > S[q] ? S[r] : S[q];
      const uint32_t hi = b < d ? b : d;
      const bool joined = hi - lo <= 57 ? ((bit_window(h, lo, hi) ^ join_flip) & ((1ull << (hi - lo)) - 1)) != 0
                                        : any_joined_up(bits, y, lo, hi, permissible);
      if (joined) join(r, q);
      if (b == sx && d == sx) break;
      r += (b <= d);
      q += (d <= b);
    }
  }

  runs.component.resize(n);
  uint32_t* comp = runs.component.data();
  uint32_t count = 0;
  // parent[i] <= i, and every j < i already carries its root's number, so no find is needed.
  // Branch-free: whether a run starts a component is data. A root reads its own stale slot.
  for (uint32_t i = 0; i < n; i++) {
    const bool root = parent[i] == i;
    const uint32_t inherited = comp[parent[i]];
    comp[i] = root ? count : inherited;
    count += root;
  }
  return count;
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
// interior crack at most once, and the blank grid has every other crack set already.
// `dirs` is taken by value: a local reader's state stays in registers, where one behind a
// reference would round-trip through memory at every crack drawn (the compiler cannot rule out
// that the drawing writes it).
template <typename Directions>
void draw_chains(Directions dirs, const std::vector<Vertex>& starts, CrackBits& bits, std::vector<int64_t>& stack,
                 const char* section) {
  // A plain code runs out with its bytes; a markov code reads zeros past its end and so needs an
  // explicit bound (a valid code draws each of the < 2(sx+1)(sy+1) cracks once, plus controls).
  const uint64_t max_directions = 8ull * (static_cast<uint64_t>(bits.sx) + 1) * (static_cast<uint64_t>(bits.sy) + 1) + 64;
  uint64_t used = 0;
  auto next = [&](int& d) {
    if (!dirs.next(d)) fail(section, "crack code ends inside a chain");
    if (Directions::kEndless && ++used > max_directions) {
      fail(section, "crack code is longer than any slice of this size allows");
    }
  };
  // A vertex is its bit index in the V grid; a move in direction d draws bit v + kEdge[d] and
  // moves to v + kStep[d] (up, right, down, left).
  const int64_t row = bits.row_bits();
  const int64_t h_minus_v = bits.h_bit(0, 0) - bits.v_bit(0, 0);
  const int64_t edge[4] = {-row, h_minus_v, 0, h_minus_v - 1};
  const int64_t step[4] = {-row, 1, row, -1};
  uint64_t* const grid = bits.grid.data();
  for (const Vertex& s : starts) {
    int64_t v = bits.v_bit(s.x, s.y);
    int64_t branches = 1;
    stack.clear();
    int prev;
    next(prev);
    for (;;) {
      int d;
      next(d);
      if (d == (prev ^ 2)) {
        // A move followed by its reverse is a control pair; the move was never made.
        if (d == kUp || d == kLeft) {
          if (!stack.empty()) {
            v = stack.back();
            stack.pop_back();
          }
          if (--branches == 0) break;
        } else {
          stack.push_back(v);
          branches++;
        }
        next(prev);
        continue;
      }
      const int64_t e = v + edge[prev];
      uint64_t& word = grid[static_cast<uint64_t>(e) >> 6];
      const uint64_t m = 1ull << (e & 63);
      if (word & m) fail(section, "crack move leaves the slice, runs along its border or draws a crack twice");
      word |= m;
      v += step[prev];
      prev = d;
    }
  }
}

}  // namespace crackle
