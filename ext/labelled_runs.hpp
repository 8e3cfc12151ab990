// A decoded slice kept as runs with a canonical label id per run, and the walk over the pairs of
// runs of two rows that touch. The neighbour queries (label_neighbours.hpp) and the 3D connected
// components (label_components.hpp) compare runs, not pixels: a 256^2 slice of real
// segmentation has a few thousand runs for 65536 pixels, and equal runs need no pixel work.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "label_slices.hpp"

namespace crackle {

// Row y's runs are start[row_first[y] .. row_first[y + 1] - 1), each ending where the next
// starts; the last entry of a row is sx (a sentinel, as in SliceRuns).
struct LabelledRuns {
  std::vector<uint32_t> start;
  std::vector<uint32_t> row_first;
  std::vector<uint32_t> id;         // canonical label id per run
  std::vector<uint32_t> component;  // the slice's component per run

  // The labeller's current slice, with canon[label index] as ids.
  void assign(const SliceLabeler& lab, const uint32_t* canon) {
    const SliceRuns& runs = lab.runs();
    const uint32_t* index = lab.index_of().data();
    const uint32_t n = runs.row_first.back();  // runs.start is scratch: only n entries are this slice's
    start.assign(runs.start.begin(), runs.start.begin() + n);
    start.push_back(0);  // padding: shared_segments reads one entry past a row's end
    row_first = runs.row_first;
    component.assign(runs.component.begin(), runs.component.begin() + n);
    id.resize(n + 1);
    const uint32_t rows = static_cast<uint32_t>(row_first.size()) - 1;
    for (uint32_t y = 0; y < rows; y++) {
      const uint32_t r_end = row_first[y + 1] - 1;
      for (uint32_t r = row_first[y]; r < r_end; r++) id[r] = canon[index[component[r]]];
      id[r_end] = id[r_end - 1];  // the sentinel's id is never compared
    }
  }
  void load(SliceLabeler& lab, uint32_t z, const uint32_t* canon) {
    lab.label(z);
    assign(lab, canon);
  }
  uint32_t first(uint32_t y) const { return row_first[y]; }
  uint32_t count(uint32_t y) const { return row_first[y + 1] - row_first[y] - 1; }
};

// Calls fn(i, j, lo, hi) for every run i of row A (starts a[0..na], a[na] its end) and run j of
// row B (b[0..nb]) that touch: overlapping x ranges when `diagonal` is false, also meeting at a
// corner when it is true. [lo, hi) is their common x range (empty for a corner). Pairs come
// in order of i, then j: O(na + nb) of them.
template <typename Fn>
inline void touching_runs(const uint32_t* a, uint32_t na, const uint32_t* b, uint32_t nb, bool diagonal, Fn&& fn) {
  const uint32_t d = diagonal ? 1 : 0;
  uint32_t j = 0;
  for (uint32_t i = 0; i < na; i++) {
    const uint32_t a0 = a[i], a1 = a[i + 1];
    while (j < nb && b[j + 1] + d <= a0) j++;
    for (uint32_t k = j; k < nb && b[k] < a1 + d; k++) fn(i, k, std::max(a0, b[k]), std::min(a1, b[k + 1]));
  }
}

// Rows A and B of one width (starts a[0..na], b[0..nb], a[na] == b[nb] the width, one readable
// entry after each; ids ia, ib per run), cut where either changes run: fn(id_a, id_b, lo, hi)
// for each piece [lo, hi), left to right. The plain merge: one step per piece, no search.
template <typename Fn>
inline void shared_segments(const uint32_t* __restrict a, const uint32_t* __restrict ia, const uint32_t* __restrict b,
                            const uint32_t* __restrict ib, uint32_t na, Fn&& fn) {
  uint32_t i = 0, j = 0, x = 0, ae = a[1], be = b[1];
  while (i < na) {  // both rows end at the width on the same piece
    const uint32_t e = ae < be ? ae : be;
    fn(ia[i], ib[j], x, e);
    x = e;
    i += ae == e;  // branch-free: which row moves on is data, and mispredicted half the time
    j += be == e;
    ae = a[i + 1];
    be = b[j + 1];
  }
}

}  // namespace crackle
