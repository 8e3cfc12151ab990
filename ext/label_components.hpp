// 3D connected components of a stream, found from its 2D components: each slice's components
// (already 4-connected regions) are joined, with a union-find over the stream's global component
// ids, to the neighbours of the same label in their slice and in the slice below (6- or
// 26-connectivity). Holds two slices' runs plus one entry per component.
#pragma once

#include <cstdint>
#include <numeric>
#include <vector>

#include "labelled_runs.hpp"

namespace crackle {

class UnionFind {
 public:
  explicit UnionFind(uint64_t n) : parent_(n) { std::iota(parent_.begin(), parent_.end(), 0); }
  uint64_t find(uint64_t a) {
    while (parent_[a] != a) {
      parent_[a] = parent_[parent_[a]];  // path halving
      a = parent_[a];
    }
    return a;
  }
  void unite(uint64_t a, uint64_t b) {
    a = find(a);
    b = find(b);
    if (a == b) return;
    if (a < b) std::swap(a, b);
    parent_[a] = b;  // the smaller id stays the root
  }

 private:
  std::vector<uint64_t> parent_;
};

struct ComponentLabels {
  std::vector<uint64_t> cc_of;      // per global component: its 3D component (1..count), 0 for background
  std::vector<uint32_t> label_of;   // per 3D component 1..count (index 0 unused): canonical id of its first voxel
  uint64_t count = 0;
};

// `zero`: the canonical id of label 0 (background), or -1. With `binary`, every non-background
// label is one foreground. 3D components are numbered by their first voxel, x fastest, then y,
// then z. Runs, not voxels, are joined (labelled_runs.hpp): neighbouring runs of one row, the
// touching runs of the next row and of the rows of the slice below (diagonals included for
// 26-connectivity).
inline void connected_components_3d(SliceLabeler& lab, const uint32_t* canon, int64_t zero, int connectivity,
                                    bool binary, ComponentLabels& out) {
  const Header& h = lab.stream().header;
  const LabelsSection& L = lab.stream().labels;
  const uint64_t total = L.num_components();
  UnionFind uf(total);
  std::vector<uint32_t> comp_ids(total);  // canonical id per global component
  const bool diagonal = connectivity == 26;
  LabelledRuns cur, prev;
  std::vector<uint64_t> g_cur, g_prev;  // global component per run
  auto joined = [&](uint32_t a, uint32_t b) {
    if (a == zero || b == zero) return false;
    return binary || a == b;
  };
  // Neighbouring runs mostly pair the same two components as the pair before them: the last
  // pair joined per kind of neighbour is skipped without touching the union-find.
  uint64_t last_a[3], last_b[3];
  for (int d = 0; d < 3; d++) last_a[d] = last_b[d] = ~0ull;
  auto link = [&](int d, uint64_t ga, uint32_t ca, uint64_t gb, uint32_t cb) {
    if (ga == gb || (last_a[d] == ga && last_b[d] == gb) || !joined(ca, cb)) return;
    uf.unite(ga, gb);
    last_a[d] = ga;
    last_b[d] = gb;
  };
  for (uint32_t z = 0; z < h.sz; z++) {
    cur.load(lab, z, canon);
    const uint64_t first = L.cc_offsets[z];
    const uint64_t count = L.cc_offsets[z + 1] - first;
    const uint32_t* index = lab.index_of().data();
    for (uint64_t j = 0; j < count; j++) comp_ids[first + j] = canon[index[j]];
    g_cur.resize(cur.component.size());  // (start has one entry more: padding)
    for (size_t r = 0; r < cur.component.size(); r++) g_cur[r] = first + cur.component[r];
    for (uint32_t y = 0; y < h.sy; y++) {
      const uint32_t r0 = cur.first(y), n = cur.count(y);
      for (uint32_t r = r0; r + 1 < r0 + n; r++) link(0, g_cur[r], cur.id[r], g_cur[r + 1], cur.id[r + 1]);
      if (y + 1 < h.sy) {
        const uint32_t q0 = cur.first(y + 1);
        touching_runs(&cur.start[r0], n, &cur.start[q0], cur.count(y + 1), diagonal,
                      [&](uint32_t i, uint32_t j, uint32_t, uint32_t) {
                        link(1, g_cur[r0 + i], cur.id[r0 + i], g_cur[q0 + j], cur.id[q0 + j]);
                      });
      }
      if (z == 0) continue;
      const uint32_t y_lo = diagonal && y > 0 ? y - 1 : y, y_hi = diagonal && y + 1 < h.sy ? y + 1 : y;
      for (uint32_t yy = y_lo; yy <= y_hi; yy++) {
        const uint32_t q0 = prev.first(yy);
        touching_runs(&cur.start[r0], n, &prev.start[q0], prev.count(yy), diagonal,
                      [&](uint32_t i, uint32_t j, uint32_t, uint32_t) {
                        link(2, g_cur[r0 + i], cur.id[r0 + i], g_prev[q0 + j], prev.id[q0 + j]);
                      });
      }
    }
    std::swap(cur, prev);
    g_cur.swap(g_prev);
  }
  // Global ids run slice by slice, each slice's in raster order of first pixel (FORMAT 7.2), so
  // the first id of each 3D component met in id order holds its first voxel.
  out.cc_of.assign(total, 0);
  out.label_of.assign(1, 0);
  std::vector<uint64_t> number(total, 0);
  for (uint64_t g = 0; g < total; g++) {
    if (comp_ids[g] == zero) continue;
    const uint64_t root = uf.find(g);
    if (number[root] == 0) {
      number[root] = ++out.count;
      out.label_of.push_back(comp_ids[g]);
    }
    out.cc_of[g] = number[root];
  }
}

}  // namespace crackle
