// array_equal without writing a voxel: both streams' slices are decoded into runs (with their
// slice CRCs checked, as decoding checks them), and each row's runs of the two streams are
// merged, their labels compared where they overlap. The work is per run, not per voxel, and
// nothing is allocated by the volume's size.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "label_list.hpp"
#include "label_slices.hpp"

namespace crackle {

// A label as a number, whatever its dtype: equal numbers compare equal across widths and
// signedness (-1 in int8 is not 255 in uint8, nor 2^64-1 in uint64).
struct LabelNumber {
  bool negative = false;
  uint64_t bits = 0;  // two's complement
  bool operator==(const LabelNumber& o) const { return negative == o.negative && bits == o.bits; }
};

// The number of every label index of the labeler (its stream's volume values).
inline std::vector<LabelNumber> label_numbers(const SliceLabeler& lab) {
  const Header& h = lab.stream().header;
  const uint64_t n = lab.num_indices();
  bool one_value = true;
  for (uint64_t k = 1; k < n && one_value; k++) one_value = lab.stored_value(k) == lab.stored_value(0);
  const bool sign_extend = h.is_signed && !one_value;  // a single-label volume zero-extends (FORMAT 10.6)
  std::vector<LabelNumber> out(n);
  for (uint64_t k = 0; k < n; k++) {
    const uint64_t v = volume_value(lab.stored_value(k), h.stored_width, h.data_width, h.is_signed, sign_extend);
    out[k] = LabelNumber{h.is_signed && static_cast<int64_t>(v) < 0, v};
  }
  return out;
}

// Whether slices [z0, z1) of the two labelers' streams (of one shape) hold the same labels;
// stops at the first slice that differs, or when `differ` is set by another thread.
inline bool slices_equal(SliceLabeler& la, SliceLabeler& lb, uint32_t z0, uint32_t z1, const std::atomic<bool>& differ) {
  const std::vector<LabelNumber> va = label_numbers(la), vb = label_numbers(lb);
  const uint32_t sy = la.stream().header.sy;
  std::vector<LabelNumber> na, nb;  // per component of the slice
  for (uint32_t z = z0; z < z1; z++) {
    if (differ.load(std::memory_order_relaxed)) return false;
    la.label(z);
    lb.label(z);
    na.resize(la.index_of().size());
    for (size_t c = 0; c < na.size(); c++) na[c] = va[la.index_of()[c]];
    nb.resize(lb.index_of().size());
    for (size_t c = 0; c < nb.size(); c++) nb[c] = vb[lb.index_of()[c]];
    const SliceRuns& ra = la.runs();
    const SliceRuns& rb = lb.runs();
    for (uint32_t y = 0; y < sy; y++) {
      uint32_t i = ra.row_first[y], j = rb.row_first[y];
      const uint32_t i_end = ra.row_first[y + 1] - 1, j_end = rb.row_first[y + 1] - 1;  // the sentinels
      while (i < i_end && j < j_end) {
        if (!(na[ra.component[i]] == nb[rb.component[j]])) return false;
        const uint32_t end_a = ra.start[i + 1], end_b = rb.start[j + 1];
        if (end_a <= end_b) i++;
        if (end_b <= end_a) j++;
      }
    }
  }
  return true;
}

// Whether two streams of one shape decode to the same values. The labels CRCs and the CRCs of
// the slices compared are checked (DecodeError); threads split the slices in ranges.
inline bool streams_equal(const StreamInfo& a, const StreamInfo& b, int threads) {
  const uint32_t sz = a.header.sz;
  if (a.header.voxels() == 0) {
    SliceLabeler la(a, true), lb(b, true);  // the labels CRCs, as decoding checks them
    return true;
  }
  const int n = resolve_threads(threads, sz);
  std::atomic<bool> differ{false};
  parallel_for(static_cast<uint64_t>(n), n, [&](uint64_t t, int) {
    const uint32_t z0 = static_cast<uint32_t>(sz * t / n), z1 = static_cast<uint32_t>(sz * (t + 1) / n);
    SliceLabeler la(a, true), lb(b, true);
    if (!slices_equal(la, lb, z0, z1, differ)) differ.store(true);
  });
  return !differ.load();
}

}  // namespace crackle
