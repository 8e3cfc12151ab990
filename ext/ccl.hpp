// 4-connected component labelling of one slice, numbered by first appearance in raster order
// (FORMAT.md 7.2), computed on horizontal runs rather than pixels.
//
// Segmentation slices have long runs (tens of pixels), so union-find over runs does a small
// fraction of the per-pixel work; the only per-pixel passes left are the ones that write
// memory (run fills), which vectorise. The encoder and decoder share this routine and differ
// only in how they find runs and decide whether two touching runs are joined, so both sides
// number components identically.
#pragma once

#include <cstdint>
#include <vector>

#include "common.hpp"

namespace crackle {

struct Runs {
  std::vector<uint32_t> start;      // first x of every run, row after row
  std::vector<uint32_t> end;        // one past the last x of every run
  std::vector<uint32_t> row_first;  // row y owns runs [row_first[y], row_first[y+1])
  std::vector<uint32_t> parent;     // union-find over runs, then each run's component id
  std::vector<uint32_t> component;  // component id of each run, valid after label_runs
};

namespace detail {
inline uint32_t find_root(uint32_t* parent, uint32_t i) {
  while (parent[i] != i) {
    parent[i] = parent[parent[i]];  // path halving
    i = parent[i];
  }
  return i;
}
}  // namespace detail

// row_runs(y, runs.start) appends the start x of every run of row y (first one 0).
// joined(y, r, q, lo, hi): are run r of row y and run q of row y-1, which overlap on
// [lo, hi), connected? Fills runs.component and returns the number of components.
//
// Runs are provisional labels in raster order and unions keep the smaller root, so a
// component's root is its first run and numbering roots in order is numbering by first
// appearance.
template <typename RowRuns, typename Joined>
uint32_t label_runs(uint32_t sx, uint32_t sy, RowRuns row_runs, Joined joined, Runs& runs) {
  runs.start.clear();
  runs.row_first.resize(static_cast<size_t>(sy) + 1);
  if (sx == 0 || sy == 0) {
    std::fill(runs.row_first.begin(), runs.row_first.end(), 0);
    runs.component.clear();
    return 0;
  }
  for (uint32_t y = 0; y < sy; y++) {
    runs.row_first[y] = static_cast<uint32_t>(runs.start.size());
    row_runs(y, runs.start);
  }
  runs.row_first[sy] = static_cast<uint32_t>(runs.start.size());
  const uint32_t n = runs.row_first[sy];
  runs.end.resize(n);
  const uint32_t* S = runs.start.data();
  uint32_t* E = runs.end.data();
  for (uint32_t y = 0; y < sy; y++) {
    const uint32_t last = runs.row_first[y + 1] - 1;
    for (uint32_t r = runs.row_first[y]; r < last; r++) E[r] = S[r + 1];
    E[last] = sx;
  }
  runs.parent.resize(n);
  uint32_t* parent = runs.parent.data();
  for (uint32_t i = 0; i < n; i++) parent[i] = i;

  for (uint32_t y = 1; y < sy; y++) {
    // Merge-walk the two rows' runs: both rows tile [0, sx), so advancing whichever run ends
    // first (both on a tie) always leaves an overlapping pair, and the walk ends on the pair of
    // last runs, which both end at sx. The advance is arithmetic, not a branch: which run ends
    // first is data, and would mispredict.
    uint32_t r = runs.row_first[y], q = runs.row_first[y - 1];
    for (;;) {
      const uint32_t b = E[r], d = E[q];
      const uint32_t lo = S[r] > S[q] ? S[r] : S[q];
      if (joined(y, r, q, lo, b < d ? b : d)) {
        const uint32_t rq = detail::find_root(parent, q);
        if (parent[r] == r) {
          parent[r] = rq;  // r's first join; rq < r, so the smaller root stays the root
        } else {
          const uint32_t rr = detail::find_root(parent, r);
          if (rr < rq) {
            parent[rq] = rr;
          } else if (rq < rr) {
            parent[rr] = rq;
          }
        }
      }
      if (b == sx && d == sx) break;
      r += (b <= d);
      q += (d <= b);
    }
  }

  runs.component.resize(n);
  uint32_t* comp = runs.component.data();
  uint32_t count = 0;
  // parent[i] <= i, and every j < i already carries its root's number, so no find is needed.
  for (uint32_t i = 0; i < n; i++) comp[i] = (parent[i] == i) ? count++ : comp[parent[i]];
  return count;
}

// Writes every pixel's component id (the u32 CCL the slice CRC covers).
inline void fill_component_ids(const Runs& runs, uint32_t sx, uint32_t sy, uint32_t* ids) {
  for (uint32_t y = 0; y < sy; y++) {
    uint32_t* row = ids + static_cast<uint64_t>(y) * sx;
    const uint32_t r_end = runs.row_first[y + 1];
    for (uint32_t r = runs.row_first[y]; r < r_end; r++) {
      const uint32_t a = runs.start[r], b = runs.end[r];
      // Overshoot is rewritten by the next run, or the next row; only the slice's end is exact.
      fill_run(row + a, b - a, runs.component[r], static_cast<uint64_t>(sy - y) * sx - a);
    }
  }
}

}  // namespace crackle
