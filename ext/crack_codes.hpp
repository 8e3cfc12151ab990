// Crack codes of one slice (FORMAT.md section 6 and 9.3): the BOC index of chain start
// vertices, chain extraction for the encoder, and chain parsing/drawing for the decoder.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
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
  // A plain code runs out with its bytes; a markov code reads zeros past its end and so needs an
  // explicit bound (a valid code draws each of the < 2(sx+1)(sy+1) cracks once, plus controls).
  const uint64_t max_directions = 8ull * (static_cast<uint64_t>(sx) + 1) * (static_cast<uint64_t>(sy) + 1) + 64;
  uint64_t used = 0;
  uint64_t* const vert = bits.vert.data();
  uint64_t* const horiz = bits.horiz.data();
  const uint64_t words = bits.words;
  for (const Vertex& s : starts) {
    uint32_t x = s.x, y = s.y;
    int64_t branches = 1;
    int prev = -1;
    stack.clear();
    while (branches > 0) {
      int d;
      if (!dirs.next(d)) fail(section, "crack code ends inside a chain");
      if (Directions::kEndless && ++used > max_directions) {
        fail(section, "crack code is longer than any slice of this size allows");
      }
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
        // Branch-free on the direction, which changes every few moves and would mispredict
        // a switch: a vertical move (up/down) draws the left edge of pixel (x, row), a
        // horizontal one (right/left) the top edge of pixel (col, y). Vertical cracks need
        // 1 <= x <= sx-1 and horizontal ones 1 <= y <= sy-1 (no border cracks); `v - 1u < n - 1u`
        // tests 1 <= v <= n-1, and a step off the grid wraps to a huge unsigned row or col.
        const uint32_t row = y - (prev == kUp);
        const uint32_t col = x - (prev == kLeft);
        const bool horizontal = prev & 1;
        const bool ok = horizontal ? (y - 1u < sy - 1u) & (col < sx) : (x - 1u < sx - 1u) & (row < sy);
        if (!ok) fail(section, "crack move leaves the slice or runs along its border");
        uint64_t* word = (horizontal ? horiz + static_cast<uint64_t>(y) * words : vert + static_cast<uint64_t>(row) * words) + (col >> 6);
        const uint64_t m = 1ull << (col & 63);
        if (*word & m) fail(section, "crack code draws the same crack twice");
        *word |= m;
        static constexpr int kDx[4] = {0, 1, 0, -1};
        static constexpr int kDy[4] = {-1, 0, 1, 0};
        x += kDx[prev];
        y += kDy[prev];
      }
      prev = d;
    }
  }
}

}  // namespace crackle
