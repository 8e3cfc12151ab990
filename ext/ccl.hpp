// 4-connected component labelling of one slice, numbered by first appearance in raster order
// (FORMAT.md 7.2), computed on horizontal runs rather than pixels.
//
// The encoder and the decoder both describe a slice by two bit rows per pixel row: where runs
// start (a label change, or a vertical crack) and which pixels are joined to the pixel above
// (equal labels, or no horizontal crack). They share this one routine, so both sides number
// components identically.
#pragma once

#include <cstdint>
#include <vector>

#include "common.hpp"

namespace crackle {

// Bit rows of a slice: row y is words row0 + y*stride .. (at least ceil(sx/64) of them), each
// XORed with `flip` as it is read. Bits at x >= sx are ignored.
struct RowBits {
  const uint64_t* row0 = nullptr;
  uint64_t stride = 0;
  uint64_t flip = 0;
  uint64_t word(uint32_t y, uint64_t i) const { return row0[y * stride + i] ^ flip; }
};

// A slice's runs and components. Row y's runs are start[row_first[y] .. row_first[y+1] - 1);
// the last entry of each row is sx, a sentinel, so run r always ends at start[r + 1].
struct SliceRuns {
  std::vector<uint32_t> start;
  std::vector<uint32_t> row_first;
  std::vector<uint32_t> parent;      // union-find over runs
  std::vector<uint32_t> component;   // component of each run (sentinels: unused)
  std::vector<uint64_t> start_bits;  // per row, bit x set where a run starts

  uint32_t runs_in_row(uint32_t y) const { return row_first[y + 1] - row_first[y] - 1; }
};

// Labels the slice: `starts` bit x of row y set where a run starts (x = 0 always does),
// `joins` bit x of row y (y >= 1) set where pixel (x, y) is joined to (x, y - 1). Fills
// `runs` and returns the number of components. Uses a popcount instruction where the CPU has
// one (and CRACKLE_PORTABLE is not set).
uint32_t label_slice(uint32_t sx, uint32_t sy, const RowBits& starts, const RowBits& joins, SliceRuns& runs);

// Writes every pixel's component id (the u32 labelling the slice CRC covers).
inline void fill_component_ids(const SliceRuns& runs, uint32_t sx, uint32_t sy, uint32_t* ids) {
  for (uint32_t y = 0; y < sy; y++) {
    uint32_t* row = ids + static_cast<uint64_t>(y) * sx;
    const uint32_t r_end = runs.row_first[y + 1] - 1;
    for (uint32_t r = runs.row_first[y]; r < r_end; r++) {
      const uint32_t a = runs.start[r];
      // Overshoot is rewritten by the next run, or the next row; only the slice's end is exact.
      fill_run(row + a, runs.start[r + 1] - a, runs.component[r], static_cast<uint64_t>(sy - y) * sx - a);
    }
  }
}

}  // namespace crackle
