// Queries comparing each voxel with its neighbours, slice by slice: surface points, the voxel
// connectivity graph, contact areas between labels, the component -> parent map of two streams,
// and the labels at given points. Each keeps at most three slices of per-pixel label ids
// (u32 "canonical" indices: equal values share one) plus its answer.
#pragma once

#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "label_slices.hpp"

namespace crackle {

// Writes slice z's canonical label id per pixel (x fastest) into ids (sx * sy entries).
inline void slice_ids(SliceLabeler& lab, uint32_t z, const uint32_t* canon, uint32_t* ids) {
  const Header& h = lab.stream().header;
  lab.label(z);
  const SliceRuns& runs = lab.runs();
  const uint32_t* index = lab.index_of().data();
  for (uint32_t y = 0; y < h.sy; y++) {
    uint32_t* row = ids + static_cast<uint64_t>(y) * h.sx;
    const uint32_t r_end = runs.row_first[y + 1] - 1;
    for (uint32_t r = runs.row_first[y]; r < r_end; r++) {
      std::fill(row + runs.start[r], row + runs.start[r + 1], canon[index[runs.component[r]]]);
    }
  }
}

// Three slices' ids, decoded on demand; the least recently used one makes room.
class SliceWindow {
 public:
  SliceWindow(SliceLabeler& lab, const uint32_t* canon) : lab_(lab), canon_(canon) {
    const Header& h = lab.stream().header;
    sxy_ = h.slice_pixels();
    for (auto& b : buf_) b.resize(sxy_);
  }
  // The ids of slice z (valid until three other slices were asked for).
  const uint32_t* at(uint32_t z) {
    tick_++;
    for (int i = 0; i < 3; i++) {
      if (used_[i] && z_[i] == z) {
        used_[i] = tick_;
        return buf_[i].data();
      }
    }
    int i = 0;  // the least recently used slot
    for (int j = 1; j < 3; j++) {
      if (used_[j] < used_[i]) i = j;
    }
    slice_ids(lab_, z, canon_, buf_[i].data());
    used_[i] = tick_;
    z_[i] = z;
    return buf_[i].data();
  }

 private:
  SliceLabeler& lab_;
  const uint32_t* canon_;
  uint64_t sxy_ = 0;
  std::vector<uint32_t> buf_[3];
  uint32_t z_[3] = {0, 0, 0};
  uint64_t used_[3] = {0, 0, 0};  // 0: empty; else the tick of the last use
  uint64_t tick_ = 0;
};

struct SurfacePoints {
  std::vector<uint32_t> xyz;  // x, y, z per point
  std::vector<uint32_t> id;   // canonical id per point
};

// Voxels of wanted ids (by canonical id) in slices [z0, z1) that lie on their label's surface:
// a different id among the 8 in-slice neighbours or the 2 z neighbours, or in the first or
// last slice of the volume. Points come slice by slice in raster order.
inline void surface_points(SliceLabeler& lab, const uint32_t* canon, const uint8_t* wanted, const uint8_t* visit,
                           uint32_t z0, uint32_t z1, SurfacePoints& out) {
  const Header& h = lab.stream().header;
  SliceWindow win(lab, canon);
  const int64_t sx = h.sx, sy = h.sy;
  for (uint32_t z = z0; z < z1; z++) {
    if (!visit[z]) continue;
    const uint32_t* cur = win.at(z);
    const uint32_t* below = z > 0 ? win.at(z - 1) : nullptr;
    const uint32_t* above = z + 1 < h.sz ? win.at(z + 1) : nullptr;
    cur = win.at(z);
    const bool face = z == 0 || z + 1 == h.sz;
    for (int64_t y = 0; y < sy; y++) {
      for (int64_t x = 0; x < sx; x++) {
        const uint64_t p = static_cast<uint64_t>(y * sx + x);
        const uint32_t c = cur[p];
        if (!wanted[c]) continue;
        bool surface = face || below[p] != c || above[p] != c;
        for (int64_t dy = -1; dy <= 1 && !surface; dy++) {
          const int64_t yy = y + dy;
          if (yy < 0 || yy >= sy) continue;
          for (int64_t dx = -1; dx <= 1; dx++) {
            const int64_t xx = x + dx;
            if (xx < 0 || xx >= sx) continue;
            if (cur[yy * sx + xx] != c) {
              surface = true;
              break;
            }
          }
        }
        if (!surface) continue;
        out.xyz.push_back(static_cast<uint32_t>(x));
        out.xyz.push_back(static_cast<uint32_t>(y));
        out.xyz.push_back(z);
        out.id.push_back(c);
      }
    }
  }
}

// The 6-bit (or, with connectivity 4, 4-bit) connectivity of every voxel to its neighbours, bit
// set when the neighbour has the same label or lies outside the volume: +x, -x, +y, -y, +z, -z
// from the least significant bit. out[x*stride[0] + y*stride[1] + z*stride[2]].
inline void connectivity_graph(SliceLabeler& lab, const uint32_t* canon, int connectivity, const int64_t stride[3],
                               uint8_t* out) {
  const Header& h = lab.stream().header;
  SliceWindow win(lab, canon);
  const int64_t sx = h.sx, sy = h.sy;
  for (uint32_t z = 0; z < h.sz; z++) {
    const uint32_t* below = z > 0 && connectivity == 6 ? win.at(z - 1) : nullptr;
    const uint32_t* above = z + 1 < h.sz && connectivity == 6 ? win.at(z + 1) : nullptr;
    const uint32_t* cur = win.at(z);
    for (int64_t y = 0; y < sy; y++) {
      const uint32_t* row = cur + y * sx;
      for (int64_t x = 0; x < sx; x++) {
        const uint32_t c = row[x];
        uint8_t bits = 0;
        if (x + 1 >= sx || row[x + 1] == c) bits |= 1;
        if (x == 0 || row[x - 1] == c) bits |= 2;
        if (y + 1 >= sy || row[x + sx] == c) bits |= 4;
        if (y == 0 || row[x - sx] == c) bits |= 8;
        if (connectivity == 6) {
          if (!above || above[y * sx + x] == c) bits |= 16;
          if (!below || below[y * sx + x] == c) bits |= 32;
        }
        out[x * stride[0] + y * stride[1] + static_cast<int64_t>(z) * stride[2]] = bits;
      }
    }
  }
}

// Faces between voxels of different canonical ids, both not `skip` (the background): per pair
// (a < b), the number of faces normal to x, y and z.
struct Contacts {
  std::unordered_map<uint64_t, uint64_t> faces[3];
};

inline void contact_faces(SliceLabeler& lab, const uint32_t* canon, int64_t skip, Contacts& out) {
  const Header& h = lab.stream().header;
  SliceWindow win(lab, canon);
  const uint64_t sx = h.sx, sy = h.sy;
  auto add = [&](int axis, uint32_t a, uint32_t b) {
    if (a == b || a == skip || b == skip) return;
    const uint64_t key = a < b ? (static_cast<uint64_t>(a) << 32 | b) : (static_cast<uint64_t>(b) << 32 | a);
    out.faces[axis][key]++;
  };
  for (uint32_t z = 0; z < h.sz; z++) {
    const uint32_t* cur = win.at(z);
    for (uint64_t y = 0; y < sy; y++) {
      const uint32_t* row = cur + y * sx;
      for (uint64_t x = 0; x + 1 < sx; x++) {
        if (row[x] != row[x + 1]) add(0, row[x], row[x + 1]);
      }
      if (y + 1 < sy) {
        for (uint64_t x = 0; x < sx; x++) {
          if (row[x] != row[x + sx]) add(1, row[x], row[x + sx]);
        }
      }
    }
    if (z + 1 < h.sz) {
      const uint32_t* next = win.at(z + 1);
      cur = win.at(z);
      for (uint64_t p = 0; p < sx * sy; p++) {
        if (cur[p] != next[p]) add(2, cur[p], next[p]);
      }
    }
  }
}

// The canonical id at each point (x, y, z) (3 * n coordinates, all inside the volume).
inline void ids_at(SliceLabeler& lab, const uint32_t* canon, const uint32_t* xyz, uint64_t n, uint32_t* out) {
  const Header& h = lab.stream().header;
  std::vector<uint64_t> order(n);
  for (uint64_t i = 0; i < n; i++) order[i] = i;
  std::sort(order.begin(), order.end(), [&](uint64_t a, uint64_t b) { return xyz[3 * a + 2] < xyz[3 * b + 2]; });
  int64_t current = -1;
  for (uint64_t i : order) {
    const uint32_t x = xyz[3 * i], y = xyz[3 * i + 1], z = xyz[3 * i + 2];
    if (z != current) {
      lab.label(z);
      current = z;
    }
    const SliceRuns& runs = lab.runs();
    const uint32_t* lo = runs.start.data() + runs.row_first[y];
    const uint32_t* hi = runs.start.data() + runs.row_first[y + 1] - 1;
    const uint32_t r = static_cast<uint32_t>(std::upper_bound(lo, hi, x) - runs.start.data()) - 1;
    out[i] = canon[lab.index_of()[runs.component[r]]];
  }
  (void)h;
}

// For two streams of one shape: parent[a] = the id in `b` of a voxel whose id in `a` is a
// (the last one seen; with a true component map there is only one).
inline void component_parents(SliceLabeler& a, const uint32_t* canon_a, SliceLabeler& b, const uint32_t* canon_b,
                              std::vector<int64_t>& parent) {
  const Header& h = a.stream().header;
  std::vector<uint32_t> ia(h.slice_pixels()), ib(h.slice_pixels());
  for (uint32_t z = 0; z < h.sz; z++) {
    slice_ids(a, z, canon_a, ia.data());
    slice_ids(b, z, canon_b, ib.data());
    for (uint64_t p = 0; p < ia.size(); p++) parent[ia[p]] = ib[p];
  }
}

}  // namespace crackle
