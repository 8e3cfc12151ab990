// Queries comparing each voxel with its neighbours, slice by slice: surface points, the voxel
// connectivity graph, contact areas between labels, the component -> parent map of two streams,
// and the labels at given points. They compare runs, not pixels (labelled_runs.hpp), and keep
// at most three slices' runs plus their answer.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common.hpp"
#include "label_slices.hpp"
#include "labelled_runs.hpp"

namespace crackle {

// Three slices' labelled runs, decoded on demand; the least recently used one makes room.
class RunWindow {
 public:
  RunWindow(SliceLabeler& lab, const uint32_t* canon) : lab_(lab), canon_(canon) {}
  // The runs of slice z (valid until three other slices were asked for).
  const LabelledRuns& at(uint32_t z) {
    tick_++;
    for (int i = 0; i < 3; i++) {
      if (used_[i] && z_[i] == z) {
        used_[i] = tick_;
        return slot_[i];
      }
    }
    int i = 0;  // the least recently used slot
    for (int j = 1; j < 3; j++) {
      if (used_[j] < used_[i]) i = j;
    }
    slot_[i].load(lab_, z, canon_);
    used_[i] = tick_;
    z_[i] = z;
    return slot_[i];
  }

 private:
  SliceLabeler& lab_;
  const uint32_t* canon_;
  LabelledRuns slot_[3];
  uint32_t z_[3] = {0, 0, 0};
  uint64_t used_[3] = {0, 0, 0};  // 0: empty; else the tick of the last use
  uint64_t tick_ = 0;
};

// Slice ranges for `threads` workers (0: every core), each with its own labeller: a few more
// ranges than workers, so that uneven slices balance.
template <typename Fn>
inline void for_slice_ranges(const StreamInfo& s, bool verify, int threads, Fn&& fn) {
  const uint32_t sz = s.header.sz;
  const int workers = resolve_threads(threads, sz);
  if (workers <= 1) {
    SliceLabeler lab(s, verify);
    fn(lab, 0u, sz, 0);
    return;
  }
  const uint64_t ranges = std::min<uint64_t>(sz, 4 * static_cast<uint64_t>(workers));
  parallel_for(ranges, workers, [&](uint64_t r, int worker) {
    SliceLabeler lab(s, verify);  // (checks the labels CRC again: microseconds)
    fn(lab, static_cast<uint32_t>(r * sz / ranges), static_cast<uint32_t>((r + 1) * sz / ranges), worker);
  });
}

// Row y of `a` against row yb of `b`: fn(ia, ib, lo, hi) for each pair of runs (indices into
// a's and b's arrays) that touch (see touching_runs).
template <typename Fn>
inline void row_pairs(const LabelledRuns& a, uint32_t y, const LabelledRuns& b, uint32_t yb, bool diagonal, Fn&& fn) {
  const uint32_t r0 = a.first(y), q0 = b.first(yb);
  touching_runs(&a.start[r0], a.count(y), &b.start[q0], b.count(yb), diagonal,
                [&](uint32_t i, uint32_t j, uint32_t lo, uint32_t hi) { fn(r0 + i, q0 + j, lo, hi); });
}

// Sets diff[x] = 1 for every pixel x of row y of `cur` with another id among its 8 in-slice
// neighbours or the pixel at x in the rows y of `below` and `above` (either may be null).
inline void mark_differing(const LabelledRuns& cur, uint32_t y, uint32_t sy, const LabelledRuns* below,
                           const LabelledRuns* above, uint8_t* diff) {
  const uint32_t r0 = cur.first(y), r_end = r0 + cur.count(y);
  for (uint32_t r = r0; r + 1 < r_end; r++) {
    if (cur.id[r] != cur.id[r + 1]) diff[cur.start[r + 1] - 1] = diff[cur.start[r + 1]] = 1;
  }
  // Rows y - 1 and y + 1: a pixel differs from one of its three neighbours there where it
  // differs from the one above it, or next to a boundary of that row (the two ids there differ,
  // so one of them differs from the pixel, on both sides; a boundary of this row is marked
  // already).
  auto in_slice = [&](uint32_t yy) {
    const uint32_t q0 = cur.first(yy), q_end = q0 + cur.count(yy);
    for (uint32_t q = q0; q + 1 < q_end; q++) {
      if (cur.id[q] != cur.id[q + 1]) diff[cur.start[q + 1] - 1] = diff[cur.start[q + 1]] = 1;
    }
    shared_segments(&cur.start[r0], &cur.id[r0], &cur.start[q0], &cur.id[q0], r_end - r0,
                    [&](uint32_t a, uint32_t b, uint32_t lo, uint32_t hi) {
                      if (a != b) std::memset(diff + lo, 1, hi - lo);
                    });
  };
  if (y > 0) in_slice(y - 1);
  if (y + 1 < sy) in_slice(y + 1);
  for (const LabelledRuns* other : {below, above}) {
    if (!other) continue;
    shared_segments(&cur.start[r0], &cur.id[r0], &other->start[other->first(y)], &other->id[other->first(y)],
                    r_end - r0, [&](uint32_t a, uint32_t b, uint32_t lo, uint32_t hi) {
                      if (a != b) std::memset(diff + lo, 1, hi - lo);
                    });
  }
}

// The first x in [x, end) where the 0/1 byte diff[x] is `set`, or end; 8 bytes a step.
inline uint32_t find_byte(const uint8_t* diff, uint32_t x, uint32_t end, bool set) {
  const uint64_t flip = set ? 0 : 0x0101010101010101ull;
  for (; x + 8 <= end; x += 8) {
    const uint64_t w = load_u64(diff + x) ^ flip;  // byte i in bits 8i.. whatever the host's order
    if (w) return x + static_cast<uint32_t>(__builtin_ctzll(w)) / 8;
  }
  while (x < end && (diff[x] != 0) != set) x++;
  return x;
}

// Surface voxels as pieces of rows: x0, x1 (exclusive), y, z, id per piece, in blocks (a
// growing vector would copy the whole answer at each doubling); points per id.
struct SurfacePieces {
  std::vector<std::vector<uint32_t>> blocks;
  std::vector<uint64_t> count;

  void add(uint32_t x0, uint32_t x1, uint32_t y, uint32_t z, uint32_t id) {
    if (blocks.empty() || blocks.back().size() + 5 > kBlock) {
      blocks.emplace_back();
      blocks.back().reserve(kBlock);
    }
    blocks.back().insert(blocks.back().end(), {x0, x1, y, z, id});
    count[id] += x1 - x0;
  }
  // Writes the points as x, y, z rows of type T, id k's next one at xyz + 3 * fill[k].
  template <typename T>
  void write(std::vector<uint64_t>& fill, T* xyz) const {
    for (const std::vector<uint32_t>& pieces : blocks) {
      for (size_t i = 0; i < pieces.size(); i += 5) {
        const uint32_t x0 = pieces[i], x1 = pieces[i + 1];
        const T y = static_cast<T>(pieces[i + 2]), z = static_cast<T>(pieces[i + 3]);
        T* p = xyz + 3 * fill[pieces[i + 4]];
        fill[pieces[i + 4]] += x1 - x0;
        for (uint32_t x = x0; x < x1; x++, p += 3) {
          p[0] = static_cast<T>(x);
          p[1] = y;
          p[2] = z;
        }
      }
    }
  }

 private:
  static constexpr size_t kBlock = 5 << 16;
};

// The surface points of consecutive slice ranges, in z order.
struct SurfacePoints {
  std::vector<SurfacePieces> parts;
  std::vector<uint64_t> offset;  // id k's points are [offset[k], offset[k + 1])

  // Writes each id's points as x, y, z rows of type T, id after id, each in raster order.
  template <typename T>
  void write(T* xyz) const {
    std::vector<uint64_t> fill(offset.begin(), offset.end() - 1);
    for (const SurfacePieces& part : parts) part.write(fill, xyz);
  }
};

// Voxels of wanted ids (by canonical id, n_ids of them) in slices [z0, z1) that lie on their
// label's surface: a different id among the 8 in-slice neighbours or the 2 z neighbours, or in
// the first or last slice of the volume. Kept as pieces of rows (the answer's points are often
// most of a label's voxels: a piece is 20 bytes for many of them).
inline void surface_points(SliceLabeler& lab, const uint32_t* canon, const uint8_t* wanted, uint32_t n_ids,
                           const uint8_t* visit, uint32_t z0, uint32_t z1, SurfacePieces& out) {
  const Header& h = lab.stream().header;
  RunWindow win(lab, canon);
  out.count.assign(n_ids, 0);
  std::vector<uint8_t> diff(static_cast<size_t>(h.sx) + 1);
  auto piece = [&](uint32_t x0, uint32_t x1, uint32_t y, uint32_t z, uint32_t c) { out.add(x0, x1, y, z, c); };
  for (uint32_t z = z0; z < z1; z++) {
    if (!visit[z]) continue;
    const bool face = z == 0 || z + 1 == h.sz;
    const LabelledRuns* below = face ? nullptr : &win.at(z - 1);
    const LabelledRuns* above = face ? nullptr : &win.at(z + 1);
    const LabelledRuns& cur = win.at(z);
    for (uint32_t y = 0; y < h.sy; y++) {
      const uint32_t r0 = cur.first(y), r_end = r0 + cur.count(y);
      bool any = false;
      for (uint32_t r = r0; r < r_end; r++) any |= wanted[cur.id[r]] != 0;
      if (!any) continue;
      if (!face) {
        std::memset(diff.data(), 0, h.sx);
        mark_differing(cur, y, h.sy, below, above, diff.data());
      }
      for (uint32_t r = r0; r < r_end; r++) {
        const uint32_t c = cur.id[r];
        if (!wanted[c]) continue;
        const uint32_t a = cur.start[r], b = cur.start[r + 1];
        if (face) {
          piece(a, b, y, z, c);
          continue;
        }
        for (uint32_t x = find_byte(diff.data(), a, b, true); x < b;) {
          const uint32_t to = find_byte(diff.data(), x, b, false);
          piece(x, to, y, z, c);
          x = find_byte(diff.data(), to, b, true);
        }
      }
    }
  }
}

// surface_points of slices [z0, z1) on `threads` threads, each taking ranges of slices.
inline void stream_surface_points(const StreamInfo& s, bool verify, const uint32_t* canon, const uint8_t* wanted,
                                  uint32_t n_ids, const uint8_t* visit, uint32_t z0, uint32_t z1, int threads,
                                  SurfacePoints& out) {
  const int workers = resolve_threads(threads, z1 - z0);
  const uint64_t ranges = workers <= 1 ? 1 : std::min<uint64_t>(z1 - z0, 4 * static_cast<uint64_t>(workers));
  out.parts.assign(ranges, SurfacePieces());
  parallel_for(ranges, workers, [&](uint64_t r, int) {
    SliceLabeler lab(s, verify);
    const uint32_t a = z0 + static_cast<uint32_t>(r * (z1 - z0) / ranges);
    const uint32_t b = z0 + static_cast<uint32_t>((r + 1) * (z1 - z0) / ranges);
    surface_points(lab, canon, wanted, n_ids, visit, a, b, out.parts[r]);
  });
  out.offset.assign(static_cast<size_t>(n_ids) + 1, 0);
  for (uint32_t k = 0; k < n_ids; k++) {
    uint64_t n = 0;
    for (const SurfacePieces& part : out.parts) n += part.count[k];
    out.offset[k + 1] = out.offset[k] + n;
  }
}

// The 6-bit (or, with connectivity 4, 4-bit) connectivity of every voxel to its neighbours, bit
// set when the neighbour has the same label or lies outside the volume: +x, -x, +y, -y, +z, -z
// from the least significant bit. out[x*stride[0] + y*stride[1] + z*stride[2]]. Every bit starts
// set; only where runs of different ids meet are bits cleared, on both sides at once: each pair
// of neighbouring rows is walked once.
inline void connectivity_graph(SliceLabeler& lab, const uint32_t* canon, int connectivity, const int64_t stride[3],
                               uint8_t* out, uint32_t z0, uint32_t z1) {
  const Header& h = lab.stream().header;
  const bool six = connectivity == 6;
  const uint8_t all = six ? 0x3F : 0x0F;
  const int64_t sx = h.sx, s0 = stride[0], s1 = stride[1], s2 = stride[2];  // locals: byte stores alias
  auto row_of = [&](uint32_t y, uint32_t z) { return out + static_cast<int64_t>(y) * s1 + static_cast<int64_t>(z) * s2; };
  // Clears `bit` in [lo, hi) of a row, and `other_bit` of another (unless it is null: a slice
  // of another range, which its own worker writes).
  auto clear = [&](uint8_t* __restrict p, uint8_t bit, uint8_t* __restrict q, uint8_t other_bit, uint32_t lo,
                   uint32_t hi) {
    const uint8_t keep_p = static_cast<uint8_t>(~bit), keep_q = static_cast<uint8_t>(~other_bit);
    if (s0 == 1) {  // the usual Fortran-ordered output: loops the compiler vectorizes
      for (int64_t x = lo; x < hi; x++) p[x] &= keep_p;
      if (q) {
        for (int64_t x = lo; x < hi; x++) q[x] &= keep_q;
      }
      return;
    }
    for (int64_t x = lo; x < hi; x++) p[x * s0] &= keep_p;
    if (!q) return;
    for (int64_t x = lo; x < hi; x++) q[x * s0] &= keep_q;
  };
  auto walk = [&](const LabelledRuns& a, uint32_t ya, uint8_t* pa, uint8_t bit_a, const LabelledRuns& b, uint32_t yb,
                  uint8_t* pb, uint8_t bit_b) {
    shared_segments(&a.start[a.first(ya)], &a.id[a.first(ya)], &b.start[b.first(yb)], &b.id[b.first(yb)],
                    a.count(ya), [&](uint32_t ia, uint32_t ib, uint32_t lo, uint32_t hi) {
                      if (ia != ib) clear(pa, bit_a, pb, bit_b, lo, hi);
                    });
  };
  LabelledRuns cur, prev;
  for (uint32_t z = z0; z < z1; z++) {
    cur.load(lab, z, canon);
    for (uint32_t y = 0; y < h.sy; y++) {
      uint8_t* row = row_of(y, z);
      if (s0 == 1) {
        std::memset(row, all, sx);
      } else {
        for (int64_t x = 0; x < sx; x++) row[x * s0] = all;
      }
      const uint32_t r0 = cur.first(y), r_end = r0 + cur.count(y);
      for (uint32_t r = r0; r + 1 < r_end; r++) {
        if (cur.id[r] == cur.id[r + 1]) continue;
        row[(cur.start[r + 1] - 1) * s0] &= static_cast<uint8_t>(~1u);  // +x
        row[cur.start[r + 1] * s0] &= static_cast<uint8_t>(~2u);        // -x
      }
    }
    for (uint32_t y = 0; y + 1 < h.sy; y++) walk(cur, y, row_of(y, z), 4, cur, y + 1, row_of(y + 1, z), 8);  // +y, -y
    if (six && z > 0) {
      const bool first = z == z0;  // slice z - 1 is another range's: only this slice's bits
      if (first) prev.load(lab, z - 1, canon);
      for (uint32_t y = 0; y < h.sy; y++) {
        walk(cur, y, row_of(y, z), 32, prev, y, first ? nullptr : row_of(y, z - 1), 16);  // -z, +z
      }
    }
    std::swap(cur, prev);
  }
  if (six && z0 < z1 && z1 < h.sz) {  // the last slice's +z bits, against the next range's first slice
    cur.load(lab, z1, canon);
    for (uint32_t y = 0; y < h.sy; y++) walk(prev, y, row_of(y, z1 - 1), 16, cur, y, nullptr, 32);
  }
}

inline void stream_connectivity_graph(const StreamInfo& s, bool verify, const uint32_t* canon, int connectivity,
                                      const int64_t stride[3], uint8_t* out, int threads) {
  for_slice_ranges(s, verify, threads, [&](SliceLabeler& lab, uint32_t z0, uint32_t z1, int) {
    connectivity_graph(lab, canon, connectivity, stride, out, z0, z1);
  });
}

// Counts per 64-bit key (never 0: a pair key has a < b, so its low half is not 0) in an
// open-addressing table of (key, count) slots: the contact pairs are many and the node-per-entry
// std::unordered_map spent most of contacts' time allocating. A small direct-mapped cache in
// front takes the additions first: one boundary adds its pair row after row and slice after
// slice, and the cache keeps those off the big table's cache misses. Call flush() before each().
class PairCounter {
 public:
  PairCounter() : front_(kFront) {}
  void add(uint64_t key, uint64_t n) {
    Slot& f = front_[hash(key) & (kFront - 1)];
    if (f.key == key) {
      f.count += n;
      return;
    }
    if (f.key) insert(f.key, f.count);
    f.key = key;
    f.count = n;
  }
  void flush() {
    for (Slot& f : front_) {
      if (f.key) insert(f.key, f.count);
      f.key = 0;
    }
  }
  template <typename Fn>
  void each(Fn&& fn) const {
    for (const Slot& t : table_) {
      if (t.key) fn(t.key, t.count);
    }
  }

 private:
  struct Slot {
    uint64_t key = 0, count = 0;
  };
  static constexpr size_t kFront = 8192;
  static uint64_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
  }
  void insert(uint64_t key, uint64_t n) {
    if (2 * (size_ + 1) > table_.size()) grow();
    const uint64_t mask = table_.size() - 1;
    for (uint64_t i = hash(key) >> 16 & mask;; i = (i + 1) & mask) {  // other bits than the front's
      Slot& t = table_[i];
      if (t.key == key) {
        t.count += n;
        return;
      }
      if (!t.key) {
        t.key = key;
        t.count = n;
        size_++;
        return;
      }
    }
  }
  void grow() {
    std::vector<Slot> old(std::max<size_t>(64, 2 * table_.size()));
    old.swap(table_);
    size_ = 0;
    for (const Slot& t : old) {
      if (t.key) insert(t.key, t.count);
    }
  }
  std::vector<Slot> front_, table_;
  size_t size_ = 0;
};

struct Contacts {
  PairCounter faces[3];
};

// Faces between voxels of different canonical ids, both not `skip`: per pair, the faces normal
// to x (run ends in a row), y (touching runs of consecutive rows) and z (of consecutive slices).
// Slices [z0, z1) (and the z faces to slice z1).
inline void contact_faces(SliceLabeler& lab, const uint32_t* canon, int64_t skip, uint32_t z0, uint32_t z1,
                          Contacts& out) {
  const Header& h = lab.stream().header;
  // Faces along one boundary come in streaks of one pair: count a streak, then add it.
  uint64_t last_key[3] = {~0ull, ~0ull, ~0ull}, streak[3] = {0, 0, 0};
  auto flush = [&](int axis) {
    if (streak[axis]) out.faces[axis].add(last_key[axis], streak[axis]);
    streak[axis] = 0;
  };
  auto add = [&](int axis, uint32_t a, uint32_t b, uint64_t n) {
    if (a == skip || b == skip) return;
    const uint64_t key = a < b ? (static_cast<uint64_t>(a) << 32 | b) : (static_cast<uint64_t>(b) << 32 | a);
    if (key != last_key[axis]) {
      flush(axis);
      last_key[axis] = key;
    }
    streak[axis] += n;
  };
  LabelledRuns cur, next;
  if (z0 < z1) cur.load(lab, z0, canon);
  for (uint32_t z = z0; z < z1; z++) {
    const bool has_next = z + 1 < h.sz;
    if (has_next) next.load(lab, z + 1, canon);
    for (uint32_t y = 0; y < h.sy; y++) {
      const uint32_t r0 = cur.first(y), r_end = r0 + cur.count(y);
      for (uint32_t r = r0; r + 1 < r_end; r++) {
        if (cur.id[r] != cur.id[r + 1]) add(0, cur.id[r], cur.id[r + 1], 1);
      }
      auto faces = [&](int axis, const LabelledRuns& other, uint32_t yy) {
        shared_segments(&cur.start[r0], &cur.id[r0], &other.start[other.first(yy)], &other.id[other.first(yy)],
                        r_end - r0, [&](uint32_t a, uint32_t b, uint32_t lo, uint32_t hi) {
                          if (a != b) add(axis, a, b, hi - lo);
                        });
      };
      if (y + 1 < h.sy) faces(1, cur, y + 1);
      if (has_next) faces(2, next, y);
    }
    std::swap(cur, next);
  }
  for (int axis = 0; axis < 3; axis++) {
    flush(axis);
    out.faces[axis].flush();
  }
}

// contact_faces over the whole stream on `threads` threads; the counts are sums, so the answer
// does not depend on how the slices were shared.
inline void stream_contact_faces(const StreamInfo& s, bool verify, const uint32_t* canon, int64_t skip, int threads,
                                 Contacts& out) {
  const int workers = resolve_threads(threads, s.header.sz);
  std::vector<Contacts> part(static_cast<size_t>(std::max(workers, 1)) - 1);
  for_slice_ranges(s, verify, workers, [&](SliceLabeler& lab, uint32_t z0, uint32_t z1, int worker) {
    contact_faces(lab, canon, skip, z0, z1, worker == 0 ? out : part[worker - 1]);
  });
  for (const Contacts& c : part) {
    for (int axis = 0; axis < 3; axis++) {
      c.faces[axis].each([&](uint64_t k, uint64_t n) { out.faces[axis].add(k, n); });
    }
  }
  for (int axis = 0; axis < 3; axis++) out.faces[axis].flush();
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
// (the last one seen in raster order; with a true component map there is only one).
inline void component_parents(SliceLabeler& a, const uint32_t* canon_a, SliceLabeler& b, const uint32_t* canon_b,
                              std::vector<int64_t>& parent) {
  const Header& h = a.stream().header;
  LabelledRuns ra, rb;
  for (uint32_t z = 0; z < h.sz; z++) {
    ra.load(a, z, canon_a);
    rb.load(b, z, canon_b);
    for (uint32_t y = 0; y < h.sy; y++) {
      shared_segments(&ra.start[ra.first(y)], &ra.id[ra.first(y)], &rb.start[rb.first(y)], &rb.id[rb.first(y)],
                      ra.count(y), [&](uint32_t i, uint32_t j, uint32_t, uint32_t) { parent[i] = j; });
    }
  }
}

}  // namespace crackle
