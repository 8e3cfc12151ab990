// 3D connected components of a stream, found from its 2D components: each slice's components
// (already 4-connected regions) are joined, with a union-find over the stream's global component
// ids, to the neighbours of the same label in their slice and in the slice below (6- or
// 26-connectivity). Holds two slices of per-pixel ids plus one entry per component.
#pragma once

#include <cstdint>
#include <numeric>
#include <vector>

#include "label_neighbours.hpp"

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
// then z.
inline void connected_components_3d(SliceLabeler& lab, const uint32_t* canon, int64_t zero, int connectivity,
                                    bool binary, ComponentLabels& out) {
  const Header& h = lab.stream().header;
  const LabelsSection& L = lab.stream().labels;
  const uint64_t total = L.num_components();
  UnionFind uf(total);
  std::vector<uint32_t> comp_ids;  // canonical id per global component
  comp_ids.resize(total);
  const int64_t sx = h.sx, sy = h.sy;
  const uint64_t sxy = h.slice_pixels();
  std::vector<uint64_t> g_cur(sxy), g_prev(sxy);
  std::vector<uint32_t> c_cur(sxy), c_prev(sxy);
  auto joined = [&](uint32_t a, uint32_t b) {
    if (a == zero || b == zero) return false;
    return binary || a == b;
  };
  // Neighbouring voxels mostly pair the same two components as the voxel before them: the last
  // pair joined per direction is skipped without touching the union-find.
  uint64_t last_a[13], last_b[13];
  for (int d = 0; d < 13; d++) last_a[d] = last_b[d] = ~0ull;
  for (uint32_t z = 0; z < h.sz; z++) {
    lab.label(z);
    const SliceRuns& runs = lab.runs();
    const uint32_t* index = lab.index_of().data();
    const uint64_t first = L.cc_offsets[z];
    const uint64_t count = L.cc_offsets[z + 1] - first;
    for (uint64_t j = 0; j < count; j++) comp_ids[first + j] = canon[index[j]];
    for (int64_t y = 0; y < sy; y++) {
      const uint32_t r_end = runs.row_first[y + 1] - 1;
      for (uint32_t r = runs.row_first[y]; r < r_end; r++) {
        const uint64_t g = first + runs.component[r];
        const uint32_t c = comp_ids[g];
        for (uint32_t x = runs.start[r]; x < runs.start[r + 1]; x++) {
          g_cur[y * sx + x] = g;
          c_cur[y * sx + x] = c;
        }
      }
    }
    for (int64_t y = 0; y < sy; y++) {
      for (int64_t x = 0; x < sx; x++) {
        const uint64_t p = static_cast<uint64_t>(y * sx + x);
        const uint32_t c = c_cur[p];
        if (c == zero) continue;
        const uint64_t g = g_cur[p];
        auto link = [&](int d, const std::vector<uint64_t>& gs, const std::vector<uint32_t>& cs, int64_t xx,
                        int64_t yy) {
          if (xx < 0 || xx >= sx || yy < 0 || yy >= sy) return;
          const uint64_t q = static_cast<uint64_t>(yy * sx + xx);
          const uint64_t gq = gs[q];
          if (gq == g || (last_a[d] == g && last_b[d] == gq) || !joined(c, cs[q])) return;
          uf.unite(g, gq);
          last_a[d] = g;
          last_b[d] = gq;
        };
        link(0, g_cur, c_cur, x + 1, y);
        link(1, g_cur, c_cur, x, y + 1);
        if (connectivity == 26) {
          link(2, g_cur, c_cur, x + 1, y + 1);
          link(3, g_cur, c_cur, x - 1, y + 1);
        }
        if (z == 0) continue;
        if (connectivity == 26) {
          int d = 4;
          for (int64_t dy = -1; dy <= 1; dy++) {
            for (int64_t dx = -1; dx <= 1; dx++) link(d++, g_prev, c_prev, x + dx, y + dy);
          }
        } else {
          link(4, g_prev, c_prev, x, y);
        }
      }
    }
    g_cur.swap(g_prev);
    c_cur.swap(c_prev);
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
