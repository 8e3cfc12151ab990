// Per-label geometry accumulated slice by slice from runs (label_slices.hpp): voxel counts,
// bounding boxes, coordinate sums, one label's binary image, labels touching the volume's faces.
// Nothing here holds more than one decoded slice (as runs) plus the answer.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "label_slices.hpp"

namespace crackle {

// Indexed by label index (SliceLabeler). Boxes are inclusive; a label never seen keeps
// count 0 and lo > hi.
struct LabelStats {
  std::vector<uint64_t> count;
  std::vector<uint32_t> lo[3], hi[3];
  std::vector<double> sum[3];
};

// Visits the slices z with visit[z] != 0 and accumulates every label index (or only `only`,
// when it is >= 0). Boxes and sums only when asked for.
inline void label_stats(SliceLabeler& lab, const std::vector<uint8_t>& visit, int64_t only, bool boxes, bool sums,
                        LabelStats& out) {
  const uint64_t n = lab.num_indices();
  out.count.assign(n, 0);
  for (int a = 0; a < 3; a++) {
    if (boxes) {
      out.lo[a].assign(n, std::numeric_limits<uint32_t>::max());
      out.hi[a].assign(n, 0);
    }
    if (sums) out.sum[a].assign(n, 0.0);
  }
  const Header& h = lab.stream().header;
  for (uint32_t z = 0; z < visit.size(); z++) {
    if (!visit[z]) continue;
    lab.label(z);
    const SliceRuns& runs = lab.runs();
    const uint32_t* index = lab.index_of().data();
    for (uint32_t y = 0; y < h.sy; y++) {
      const uint32_t r_end = runs.row_first[y + 1] - 1;
      for (uint32_t r = runs.row_first[y]; r < r_end; r++) {
        const uint32_t k = index[runs.component[r]];
        if (only >= 0 && k != static_cast<uint64_t>(only)) continue;
        const uint32_t a = runs.start[r], b = runs.start[r + 1];
        const uint64_t len = b - a;
        out.count[k] += len;
        if (boxes) {
          out.lo[0][k] = std::min(out.lo[0][k], a);
          out.hi[0][k] = std::max(out.hi[0][k], b - 1);
          out.lo[1][k] = std::min(out.lo[1][k], y);
          out.hi[1][k] = std::max(out.hi[1][k], y);
          out.lo[2][k] = std::min(out.lo[2][k], z);
          out.hi[2][k] = std::max(out.hi[2][k], z);
        }
        if (sums) {
          out.sum[0][k] += static_cast<double>((static_cast<uint64_t>(a) + b - 1) * len / 2);  // exact: one factor is even
          out.sum[1][k] += static_cast<double>(len) * y;
          out.sum[2][k] += static_cast<double>(len) * z;
        }
      }
    }
  }
}

// Writes 1 into `out` for every voxel of a wanted label index inside the box
// [x0, x1) x [y0, y1) x [z0, z1), at out[(x-x0)*stride[0] + (y-y0)*stride[1] + (z-z0)*stride[2]];
// only slices with visit[z] are decoded. `out` starts zeroed.
inline void label_binary(SliceLabeler& lab, const std::vector<uint8_t>& wanted, const std::vector<uint8_t>& visit,
                         const uint32_t lo[3], const uint32_t hi[3], const int64_t stride[3], uint8_t* out) {
  for (uint32_t z = lo[2]; z < hi[2]; z++) {
    if (!visit[z]) continue;
    lab.label(z);
    const SliceRuns& runs = lab.runs();
    const uint32_t* index = lab.index_of().data();
    for (uint32_t y = lo[1]; y < hi[1]; y++) {
      uint8_t* row = out + static_cast<int64_t>(y - lo[1]) * stride[1] + static_cast<int64_t>(z - lo[2]) * stride[2];
      const uint32_t r_end = runs.row_first[y + 1] - 1;
      for (uint32_t r = runs.row_first[y]; r < r_end; r++) {
        if (!wanted[index[runs.component[r]]]) continue;
        const uint32_t a = std::max(runs.start[r], lo[0]), b = std::min(runs.start[r + 1], hi[0]);
        if (a >= b) continue;
        if (stride[0] == 1) {
          std::memset(row + (a - lo[0]), 1, b - a);
        } else {
          for (uint32_t x = a; x < b; x++) row[static_cast<int64_t>(x - lo[0]) * stride[0]] = 1;
        }
      }
    }
  }
}

// seen[k] = 1 for every label index with a voxel on one of the volume's six faces.
inline void face_labels(SliceLabeler& lab, std::vector<uint8_t>& seen) {
  const Header& h = lab.stream().header;
  seen.assign(lab.num_indices(), 0);
  for (uint32_t z = 0; z < h.sz; z++) {
    lab.label(z);
    const SliceRuns& runs = lab.runs();
    const uint32_t* index = lab.index_of().data();
    if (z == 0 || z + 1 == h.sz) {
      for (uint32_t k : lab.index_of()) seen[k] = 1;
      continue;
    }
    for (uint32_t y = 0; y < h.sy; y++) {
      const uint32_t r0 = runs.row_first[y], r_end = runs.row_first[y + 1] - 1;
      if (y == 0 || y + 1 == h.sy) {
        for (uint32_t r = r0; r < r_end; r++) seen[index[runs.component[r]]] = 1;
      } else {
        seen[index[runs.component[r0]]] = 1;
        seen[index[runs.component[r_end - 1]]] = 1;
      }
    }
  }
}

// present[k] = 1 for every label index with a voxel in slices [z0, z1).
inline void labels_in_slices(SliceLabeler& lab, uint32_t z0, uint32_t z1, std::vector<uint8_t>& present) {
  present.assign(lab.num_indices(), 0);
  for (uint32_t z = z0; z < z1; z++) {
    lab.label(z);
    for (uint32_t k : lab.index_of()) present[k] = 1;
  }
}

// ------------------------------------------------------------- entry points for the binding

// Slices to visit for label index `only` (every slice when only < 0), limited to [z0, z1).
inline std::vector<uint8_t> slices_to_visit(const SliceLabeler& lab, int64_t only, uint32_t z0, uint32_t z1) {
  const uint32_t sz = lab.stream().header.sz;
  std::vector<uint8_t> visit = only >= 0 ? lab.slices_holding(static_cast<uint64_t>(only)) : std::vector<uint8_t>(sz, 1);
  if (lab.stream().header.voxels() == 0) std::fill(visit.begin(), visit.end(), 0);
  for (uint32_t z = 0; z < sz; z++) {
    if (z < z0 || z >= z1) visit[z] = 0;
  }
  return visit;
}

inline void stream_label_stats(const StreamInfo& s, bool verify, int64_t only, bool boxes, bool sums, LabelStats& out) {
  SliceLabeler lab(s, verify);
  label_stats(lab, slices_to_visit(lab, only, 0, s.header.sz), only, boxes, sums, out);
}

// Which slices may hold label index k (see SliceLabeler::slices_holding).
inline std::vector<uint8_t> stream_slices_holding(const StreamInfo& s, uint64_t k) {
  SliceLabeler lab(s, false);
  return lab.slices_holding(k);
}

// The binary image of the label indices with wanted[k] (num_indices entries) inside the box;
// `only` (or -1) narrows the slices decoded to those that may hold that one index.
inline void stream_label_binary(const StreamInfo& s, bool verify, const uint8_t* wanted, int64_t only,
                                const uint32_t lo[3], const uint32_t hi[3], const int64_t stride[3], uint8_t* out) {
  SliceLabeler lab(s, verify);
  if (s.header.voxels() == 0) return;
  std::vector<uint8_t> want(wanted, wanted + lab.num_indices());
  label_binary(lab, want, slices_to_visit(lab, only, lo[2], hi[2]), lo, hi, stride, out);
}

inline std::vector<uint8_t> stream_face_labels(const StreamInfo& s, bool verify) {
  SliceLabeler lab(s, verify);
  std::vector<uint8_t> seen;
  if (s.header.voxels() == 0) return std::vector<uint8_t>(lab.num_indices(), 0);
  face_labels(lab, seen);
  return seen;
}

inline std::vector<uint8_t> stream_labels_in_slices(const StreamInfo& s, bool verify, uint32_t z0, uint32_t z1) {
  if (s.labels.format == kFlat) {  // the keys of the slices' components say it all
    const LabelsSection& L = s.labels;
    std::vector<uint8_t> present(L.num_unique, 0);
    if (s.header.voxels() == 0 || z0 >= z1) return present;
    const uint64_t first = L.cc_offsets[z0], last = L.cc_offsets[z1];
    const uint8_t* keys = s.data + L.keys_offset;
    for (uint64_t g = first; g < last; g++) present[load_le(keys + g * L.key_width, L.key_width)] = 1;
    return present;
  }
  SliceLabeler lab(s, verify);
  std::vector<uint8_t> present(lab.num_indices(), 0);
  if (s.header.voxels() == 0) return present;
  labels_in_slices(lab, z0, z1, present);
  return present;
}

}  // namespace crackle
