// Queries comparing each voxel with its neighbours, slice by slice: surface points, the voxel
// connectivity graph, contact areas between labels, the component -> parent map of two streams,
// and the labels at given points. Each keeps at most three slices of per-pixel label ids
// (u32 "canonical" indices: equal values share one) plus its answer.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
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

// diff[x] = 1 where pixel x of `row` differs from one of its 8 in-slice neighbours (rows `up`
// and `down`, which repeat `row` at the slice's edge) or from the pixel at x in `zb` or `za`.
// The interior runs without branches so that it vectorizes.
inline void differs_from_neighbours(const uint32_t* row, const uint32_t* up, const uint32_t* down, const uint32_t* zb,
                                    const uint32_t* za, int64_t sx, uint8_t* diff) {
  auto at = [&](int64_t x) {
    const int64_t l = x > 0 ? x - 1 : x, r = x + 1 < sx ? x + 1 : x;
    const uint32_t c = row[x];
    return static_cast<uint8_t>((row[l] != c) | (row[r] != c) | (up[l] != c) | (up[x] != c) | (up[r] != c) |
                                (down[l] != c) | (down[x] != c) | (down[r] != c) | (zb[x] != c) | (za[x] != c));
  };
  if (sx <= 2) {
    for (int64_t x = 0; x < sx; x++) diff[x] = at(x);
    return;
  }
  diff[0] = at(0);
  for (int64_t x = 1; x + 1 < sx; x++) {
    const uint32_t c = row[x];
    diff[x] = static_cast<uint8_t>((row[x - 1] != c) | (row[x + 1] != c) | (up[x - 1] != c) | (up[x] != c) |
                                   (up[x + 1] != c) | (down[x - 1] != c) | (down[x] != c) | (down[x + 1] != c) |
                                   (zb[x] != c) | (za[x] != c));
  }
  diff[sx - 1] = at(sx - 1);
}

struct SurfacePoints {
  std::vector<uint32_t> xyz;     // x, y, z per point, grouped by canonical id
  std::vector<uint64_t> offset;  // id k's points are [offset[k], offset[k + 1])
};

// Voxels of wanted ids (by canonical id, n_ids of them) in slices [z0, z1) that lie on their
// label's surface: a different id among the 8 in-slice neighbours or the 2 z neighbours, or in
// the first or last slice of the volume. Each id's points come in raster order (z, y, x).
inline void surface_points(SliceLabeler& lab, const uint32_t* canon, const uint8_t* wanted, uint32_t n_ids,
                           const uint8_t* visit, uint32_t z0, uint32_t z1, SurfacePoints& out) {
  const Header& h = lab.stream().header;
  SliceWindow win(lab, canon);
  const int64_t sx = h.sx, sy = h.sy;
  std::vector<uint32_t> found;  // x, y, z, id
  std::vector<uint64_t> count(n_ids, 0);
  std::vector<uint8_t> diff(h.sx);
  for (uint32_t z = z0; z < z1; z++) {
    if (!visit[z]) continue;
    const uint32_t* below = z > 0 ? win.at(z - 1) : nullptr;
    const uint32_t* above = z + 1 < h.sz ? win.at(z + 1) : nullptr;
    const uint32_t* cur = win.at(z);
    const bool face = z == 0 || z + 1 == h.sz;
    for (int64_t y = 0; y < sy; y++) {
      const uint32_t* row = cur + y * sx;
      const uint32_t* up = y > 0 ? row - sx : row;  // a missing row repeats this one: no difference
      const uint32_t* down = y + 1 < sy ? row + sx : row;
      differs_from_neighbours(row, up, down, face ? row : below + y * sx, face ? row : above + y * sx, sx,
                              diff.data());
      for (int64_t x = 0; x < sx; x++) {
        const uint32_t c = row[x];
        if (!wanted[c] || !(face || diff[x])) continue;
        found.insert(found.end(), {static_cast<uint32_t>(x), static_cast<uint32_t>(y), z, c});
        count[c]++;
      }
    }
  }
  out.offset.assign(static_cast<size_t>(n_ids) + 1, 0);
  for (uint32_t k = 0; k < n_ids; k++) out.offset[k + 1] = out.offset[k] + count[k];
  std::vector<uint64_t> fill(out.offset.begin(), out.offset.end() - 1);
  out.xyz.resize(3 * out.offset.back());
  for (size_t i = 0; i < found.size(); i += 4) {
    const uint64_t at = 3 * fill[found[i + 3]]++;
    out.xyz[at] = found[i];
    out.xyz[at + 1] = found[i + 1];
    out.xyz[at + 2] = found[i + 2];
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
  std::vector<uint8_t> bits(sx);
  for (uint32_t z = 0; z < h.sz; z++) {
    const bool six = connectivity == 6;
    const uint32_t* below = z > 0 && six ? win.at(z - 1) : nullptr;
    const uint32_t* above = z + 1 < h.sz && six ? win.at(z + 1) : nullptr;
    const uint32_t* cur = win.at(z);
    for (int64_t y = 0; y < sy; y++) {
      const uint32_t* row = cur + y * sx;
      const uint32_t* up = y > 0 ? row - sx : row;  // outside the volume counts as connected
      const uint32_t* down = y + 1 < sy ? row + sx : row;
      const uint32_t* zb = below ? below + y * sx : row;
      const uint32_t* za = above ? above + y * sx : row;
      // Neighbours outside the volume count as connected: the edge pixels compare with
      // themselves there; the interior loop has no branch, so it vectorizes.
      const uint8_t zmask = six ? 0x3F : 0x0F;
      auto at = [&](int64_t x) {
        const uint32_t c = row[x];
        const uint32_t r = x + 1 < sx ? row[x + 1] : c, l = x > 0 ? row[x - 1] : c;
        return static_cast<uint8_t>(((r == c) | (l == c) << 1 | (down[x] == c) << 2 | (up[x] == c) << 3 |
                                     (za[x] == c) << 4 | (zb[x] == c) << 5) & zmask);
      };
      bits[0] = at(0);
      for (int64_t x = 1; x + 1 < sx; x++) {
        const uint32_t c = row[x];
        bits[x] = static_cast<uint8_t>(((row[x + 1] == c) | (row[x - 1] == c) << 1 | (down[x] == c) << 2 |
                                        (up[x] == c) << 3 | (za[x] == c) << 4 | (zb[x] == c) << 5) & zmask);
      }
      if (sx > 1) bits[sx - 1] = at(sx - 1);
      uint8_t* dst = out + y * stride[1] + static_cast<int64_t>(z) * stride[2];
      if (stride[0] == 1) {
        std::memcpy(dst, bits.data(), sx);
      } else {
        for (int64_t x = 0; x < sx; x++) dst[x * stride[0]] = bits[x];
      }
    }
  }
}

// Faces between voxels of different canonical ids, both not `skip` (the background): per pair
// (a < b), the number of faces normal to x, y and z.
// Counts per 64-bit key in an open-addressing table: the contact pairs are many and the
// node-per-entry std::unordered_map spent most of contacts' time allocating.
class PairCounter {
 public:
  void add(uint64_t key, uint64_t n) {
    if (2 * (size_ + 1) > keys_.size()) grow();
    const uint64_t mask = keys_.size() - 1;
    for (uint64_t i = hash(key) & mask;; i = (i + 1) & mask) {
      if (used_[i] && keys_[i] == key) {
        counts_[i] += n;
        return;
      }
      if (!used_[i]) {
        used_[i] = 1;
        keys_[i] = key;
        counts_[i] = n;
        size_++;
        return;
      }
    }
  }
  template <typename Fn>
  void each(Fn&& fn) const {
    for (size_t i = 0; i < keys_.size(); i++) {
      if (used_[i]) fn(keys_[i], counts_[i]);
    }
  }

 private:
  static uint64_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
  }
  void grow() {
    std::vector<uint64_t> keys, counts;
    std::vector<uint8_t> used;
    keys.swap(keys_);
    counts.swap(counts_);
    used.swap(used_);
    const size_t n = std::max<size_t>(64, 2 * keys.size());
    keys_.assign(n, 0);
    counts_.assign(n, 0);
    used_.assign(n, 0);
    size_ = 0;
    for (size_t i = 0; i < keys.size(); i++) {
      if (used[i]) add(keys[i], counts[i]);
    }
  }
  std::vector<uint64_t> keys_, counts_;
  std::vector<uint8_t> used_;
  size_t size_ = 0;
};

struct Contacts {
  PairCounter faces[3];
};

inline void contact_faces(SliceLabeler& lab, const uint32_t* canon, int64_t skip, Contacts& out) {
  const Header& h = lab.stream().header;
  SliceWindow win(lab, canon);
  const uint64_t sx = h.sx, sy = h.sy;
  // Faces along one boundary come in long streaks of one pair: count a streak, then add it.
  uint64_t last_key[3] = {~0ull, ~0ull, ~0ull}, streak[3] = {0, 0, 0};
  auto flush = [&](int axis) {
    if (streak[axis]) out.faces[axis].add(last_key[axis], streak[axis]);
    streak[axis] = 0;
  };
  auto add = [&](int axis, uint32_t a, uint32_t b) {
    if (a == skip || b == skip) return;
    const uint64_t key = a < b ? (static_cast<uint64_t>(a) << 32 | b) : (static_cast<uint64_t>(b) << 32 | a);
    if (key != last_key[axis]) {
      flush(axis);
      last_key[axis] = key;
    }
    streak[axis]++;
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
  for (int axis = 0; axis < 3; axis++) flush(axis);
}

// Axis `axis`'s pairs and face counts, as two arrays.
inline void contact_arrays(const Contacts& c, int axis, std::vector<uint64_t>& keys, std::vector<uint64_t>& counts) {
  keys.clear();
  counts.clear();
  c.faces[axis].each([&](uint64_t k, uint64_t n) {
    keys.push_back(k);
    counts.push_back(n);
  });
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
