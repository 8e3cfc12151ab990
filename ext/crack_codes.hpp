// Crack codes of one slice (FORMAT.md section 6 and 9.3): the BOC index of chain start
// vertices, chain extraction for the encoder, and chain parsing/drawing for the decoder.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
#include "markov.hpp"

namespace crackle {

enum Direction : int { kUp = 0, kRight = 1, kDown = 2, kLeft = 3 };

// The cracks a slice's code draws, as bit grids over the (sx+1) x (sy+1) vertices, `row_bits`
// bits a row: bit x of V row y is the vertical crack from vertex (x, y) down to (x, y+1), the left
// edge of pixel (x, y); bit x of H row y the horizontal crack from (x, y) right to (x+1, y), the
// top edge of pixel (x, y). Cracks a valid code may not draw (the slice border, and everything off
// the grid, in a padding row above and below each grid) start out set, so the chain walker needs
// one test per move, "is this crack already drawn?", to reject a move off the slice, along its
// border or over a crack twice, and a vertex never leaves the grid.
//
// Two layouts: rows of whole words (`words` a row), which the labelling reads directly; and, for
// slices narrower than 32 pixels, packed rows of the smallest power of two bits above sx, many
// rows a word (`words` is 0): a word-aligned row costs 16 bytes per pixel of a 1-pixel-wide slice,
// a packed one half a byte. The walker sees no difference (it works on bit indices); the
// labelling reads packed rows a band at a time through packed_row.
struct CrackBits {
  uint32_t sx = 0, sy = 0;
  uint64_t words = 0;     // per row, in the word layout: room for vertex columns 0..sx; 0 when packed
  uint64_t row_bits_ = 0;  // bits per row: 64 * words, or the packed width (2 .. 32)
  std::vector<uint64_t> grid;

  // Layout, in rows of `row_bits`: V row -1 (padding), V rows 0..sy (row sy padding), H row -1
  // (padding), H rows 0..sy (rows 0 and sy are border), one padding word for window reads.
  int64_t v_bit(int64_t x, int64_t y) const { return (y + 1) * row_bits() + x; }
  int64_t h_bit(int64_t x, int64_t y) const { return (static_cast<int64_t>(sy) + 3 + y) * row_bits() + x; }
  int64_t row_bits() const { return static_cast<int64_t>(row_bits_); }
  // Word layout only.
  const uint64_t* v_row(uint32_t y) const { return grid.data() + v_bit(0, y) / 64; }
  const uint64_t* h_row(uint32_t y) const { return grid.data() + h_bit(0, y) / 64; }
  // Packed layout only: the row_bits bits of a row (bit 0 first) whose first bit is `bit`.
  uint64_t packed_row(int64_t bit) const {
    return (grid[static_cast<uint64_t>(bit) >> 6] >> (bit & 63)) & (~0ull >> (64 - row_bits_));
  }

  // Whether an sx-wide slice gets the packed layout.
  static bool packs(uint32_t sx) { return sx < 32; }

  // A blank grid for an sx x sy slice, built in place: one fill and two word writes a row, and
  // no second copy kept (a kept blank doubled the memory of a large slice). `packed`: the packed
  // layout (packs(sx) must hold).
  void reset(uint32_t new_sx, uint32_t new_sy, bool packed = false) {
    sx = new_sx;
    sy = new_sy;
    if (packed) return reset_packed();
    words = (static_cast<uint64_t>(sx) + 1 + 63) / 64;
    row_bits_ = 64 * words;
    const uint64_t rows = 2 * static_cast<uint64_t>(sy) + 4;
    grid.assign(rows * words + 1, 0);
    uint64_t* g = grid.data();
    // Bits x >= sx of a row are off the grid (the last word holds bit sx: words = sx/64 + 1).
    const uint64_t last = sx / 64, beyond = ~0ull << (sx % 64);
    auto full_row = [&](int64_t row_start_bit) { std::fill_n(g + row_start_bit / 64, words, ~0ull); };
    full_row(v_bit(0, -1));
    for (int64_t y = 0; y < static_cast<int64_t>(sy); y++) {
      uint64_t* row = g + v_bit(0, y) / 64;
      row[0] |= 1;  // the left border
      row[last] |= beyond;
    }
    full_row(v_bit(0, sy));
    full_row(h_bit(0, -1));
    full_row(h_bit(0, 0));
    for (int64_t y = 1; y < static_cast<int64_t>(sy); y++) g[h_bit(0, y) / 64 + last] |= beyond;
    full_row(h_bit(0, sy));
  }

 private:
  void reset_packed() {
    words = 0;
    row_bits_ = 2;
    while (row_bits_ < static_cast<uint64_t>(sx) + 1) row_bits_ *= 2;
    const uint64_t rows = 2 * static_cast<uint64_t>(sy) + 4;
    grid.assign((rows * row_bits_ + 63) / 64 + 1, 0);
    const uint64_t all = ~0ull >> (64 - row_bits_), beyond = all & (~0ull << sx);
    // Rows are numbered from V row -1 (row 0) to H row sy (row 2 sy + 3); a word holds 64 /
    // row_bits whole rows, so all but a few rows at each end of a range are set a word at a time.
    auto set_rows = [&](uint64_t first, uint64_t end, uint64_t mask) {
      const uint64_t per_word = 64 / row_bits_;
      uint64_t pattern = 0;
      for (uint64_t k = 0; k < per_word; k++) pattern |= mask << (k * row_bits_);
      uint64_t r = first;
      for (; r < end && r % per_word != 0; r++) grid[r * row_bits_ / 64] |= mask << (r * row_bits_ % 64);
      for (; r + per_word <= end; r += per_word) grid[r * row_bits_ / 64] |= pattern;
      for (; r < end; r++) grid[r * row_bits_ / 64] |= mask << (r * row_bits_ % 64);
    };
    const uint64_t v0 = 1, h0 = static_cast<uint64_t>(sy) + 3;  // V row 0, H row 0
    set_rows(0, 1, all);              // V row -1
    set_rows(v0, v0 + sy, 1 | beyond);  // the left border, and off the grid
    set_rows(v0 + sy, h0, all);       // V row sy, H row -1
    set_rows(h0, h0 + 1, all);        // H row 0
    set_rows(h0 + 1, h0 + sy, beyond);
    set_rows(h0 + sy, h0 + sy + 1, all);
  }
};

struct Vertex {
  uint32_t x, y;
};

// Reads the BOC index (6.3) from exactly `size` bytes, checking that every chain start lies on
// the vertex grid, and calls start(Vertex) for each, in order.
template <typename Start>
inline void read_boc(const uint8_t* boc, uint64_t size, uint32_t sx, uint32_t sy, const char* section, Start&& start) {
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
      start(Vertex{static_cast<uint32_t>(x), static_cast<uint32_t>(y)});
    }
  }
}

// Checks the BOC index (read_boc) without keeping its starts.
inline void check_boc(const uint8_t* boc, uint64_t size, uint32_t sx, uint32_t sy, const char* section) {
  read_boc(boc, size, sx, sy, section, [](Vertex) {});
}

// Parses the BOC index into a list of its starts.
inline void parse_boc(const uint8_t* boc, uint64_t size, uint32_t sx, uint32_t sy, const char* section,
                      std::vector<Vertex>& starts) {
  starts.clear();
  read_boc(boc, size, sx, sy, section, [&starts](Vertex v) { starts.push_back(v); });
}

// The chain starts of a BOC index that check_boc accepted, read one at a time as the chains are
// walked: a list of them costs 8 bytes per chain, 4 bytes per pixel of a narrow slice whose
// every other row starts a chain.
class BocStarts {
 public:
  BocStarts(const uint8_t* boc, uint64_t size, uint32_t sx, uint32_t sy, const char* section)
      : r_(boc, size, section),
        xw_(width_of(static_cast<uint64_t>(sx) + 1)),
        yw_(width_of(static_cast<uint64_t>(sy) + 1)),
        rows_(r_.read(yw_)) {}

  bool next(Vertex& v) {
    while (left_ == 0) {
      if (rows_ == 0) return false;
      rows_--;
      y_ += r_.read(yw_);
      left_ = r_.read(xw_);
      x_ = 0;
    }
    left_--;
    x_ += r_.read(xw_);
    v = Vertex{static_cast<uint32_t>(x_), static_cast<uint32_t>(y_)};
    return true;
  }

 private:
  ByteReader r_;
  int xw_, yw_;
  uint64_t rows_;
  uint64_t left_ = 0, x_ = 0, y_ = 0;  // starts left in the current row, the position
};

// Walks every chain (6.5) and draws its cracks into `bits`. A move off the vertex grid, along
// the image border, or over a crack already drawn is corruption: a valid code draws each
// interior crack at most once, and the blank grid has every other crack set already.
// `codes` yields difference symbols; a move's direction is the previous one's plus its
// difference (mod 4, running on across chains), and a difference of 2 reverses the pending move:
// a control pair. `codes` is taken by value: a local reader's state stays in registers, where
// one behind a reference would round-trip through memory at every crack drawn (the compiler
// cannot rule out that the drawing writes it).
template <typename Differences>
void draw_chains(Differences codes, BocStarts starts, CrackBits& bits, std::vector<int64_t>& stack,
                 const char* section) {
  // Both readers end with their bytes (at most 8 symbols per byte), so the walk is bounded by
  // the slice's code length.
  auto next = [&]() {
    uint32_t f;
    if (!codes.next(f)) fail(section, "crack code ends inside a chain");
    return f;
  };
  // A vertex is its bit index in the V grid; a move in direction d draws bit v + kEdge[d] and
  // moves to v + kStep[d] (up, right, down, left).
  const int64_t row = bits.row_bits();
  const int64_t h_minus_v = bits.h_bit(0, 0) - bits.v_bit(0, 0);
  const int64_t edge[4] = {-row, h_minus_v, 0, h_minus_v - 1};
  const int64_t step[4] = {-row, 1, row, -1};
  uint64_t* const grid = bits.grid.data();
  // The branch stack is indexed by hand: push_back(v) would take v's address, and that alone
  // keeps v in memory, a store and a reload on every move of every chain.
  if (stack.size() < 64) stack.resize(64);
  // A writer remembers a vertex (BRANCH) only to leave it by a move, so no valid chain has more
  // open branches than moves made so far, plus one: a deeper stack is corruption.
  uint64_t moves = 0;
  uint32_t dir = 0;
  Vertex s;
  while (starts.next(s)) {
    int64_t v = bits.v_bit(s.x, s.y);
    int64_t branches = 1;
    size_t depth = 0;
    dir = (dir + next()) & 3;  // the pending move
    for (;;) {
      const uint32_t f = next();
      if (f == 2) {
        // The pending move followed by its reverse is a control pair; the move is not made.
        const uint32_t reverse = dir ^ 2;
        if (reverse == kUp || reverse == kLeft) {
          if (depth > 0) v = stack[--depth];
          if (--branches == 0) {
            dir = reverse;
            break;
          }
        } else {
          if (depth > moves) fail(section, "crack code opens more branches than it makes moves");
          if (depth == stack.size()) stack.resize(2 * depth);
          stack[depth++] = v;
          branches++;
        }
        dir = (reverse + next()) & 3;
        continue;
      }
      const int64_t e = v + edge[dir];
      // Test and set as a bit test of the word (bt, bts on x86): no mask is built.
      uint64_t& word = grid[static_cast<uint64_t>(e) >> 6];
      const uint64_t w = word;
      if ((w >> (e & 63)) & 1) fail(section, "crack move leaves the slice, runs along its border or draws a crack twice");
      word = w | (1ull << (e & 63));
      moves++;
      v += step[dir];
      dir = (dir + f) & 3;
    }
  }
}

}  // namespace crackle
