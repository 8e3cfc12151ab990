// remap's common case in one pass over the labels section: every stored label value looked up in
// a mapping of integers, the new head of the section (values in the narrowest stored width) and
// its header flags planned, ready for rewrite_stream (stream_rewrite.hpp). The cost is a few
// operations per label instead of a dozen array passes, which is what a sub-millisecond remap is.
//
// Anything beyond the common case (a key or a new value outside the volume's dtype, a label
// missing from the mapping without preserve_missing) is left to the general path, which widens
// the dtype or raises the precise error: plan_remap then returns false and changes nothing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "codec.hpp"
#include "label_list.hpp"
#include "stream_rewrite.hpp"

namespace crackle {

struct RemapPlan {
  std::vector<uint8_t> head;  // the new section's head: [background], count, entries
  NewSection section;         // head + the input's counts and keys (or pin records)
  FormatChange format;
};

namespace remap_detail {

// T: int64_t for signed volumes, uint64_t for unsigned ones (the order values and keys compare in).
template <typename T>
bool plan(const StreamInfo& s, const int64_t* keys, const int64_t* values, uint64_t n, bool preserve_missing,
          RemapPlan& out) {
  const Header& h = s.header;
  const LabelsSection& L = s.labels;
  const bool pins = L.format == kPins;
  const int dw = h.data_width;
  const T lo = std::is_signed<T>::value ? static_cast<T>(dw >= 8 ? std::numeric_limits<int64_t>::min() : -(int64_t{1} << (8 * dw - 1))) : 0;
  const T hi = std::is_signed<T>::value ? static_cast<T>(dw >= 8 ? std::numeric_limits<int64_t>::max() : (int64_t{1} << (8 * dw - 1)) - 1)
                                        : static_cast<T>(dw >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * dw)) - 1);
  // Keys: every one inside the dtype (a key that can never match is a mistake: the general
  // path names it); sorted by key for the lookups.
  std::vector<std::pair<T, int64_t>> table(n);
  bool sorted = true;
  for (uint64_t i = 0; i < n; i++) {
    if (std::is_unsigned<T>::value && keys[i] < 0) return false;
    const T k = static_cast<T>(keys[i]);
    if (k < lo || k > hi) return false;
    table[i] = {k, values[i]};
    if (i && !(table[i - 1].first < k)) sorted = false;
  }
  if (!sorted) std::sort(table.begin(), table.end(), [](const auto& a, const auto& b) { return a.first < b.first; });

  // Entries in section order: PINS background first, then the unique list.
  const uint64_t count = L.num_unique + (pins ? 1 : 0);
  std::vector<uint64_t> stored(count);
  bool one_value = true;
  for (uint64_t i = 0; i < count; i++) {
    stored[i] = pins ? (i == 0 ? L.bgcolor : L.unique_value(s.data, i - 1)) : L.unique_value(s.data, i);
    one_value = one_value && stored[i] == stored[0];
  }
  const bool sign_extend = h.is_signed && !one_value;  // a single-label volume zero-extends (FORMAT 10.6)

  T new_min = hi, new_max = lo;
  size_t at = 0;  // the merge cursor while the values come in increasing order
  T previous = lo;
  for (uint64_t i = 0; i < count; i++) {
    const T v = static_cast<T>(volume_value(stored[i], h.stored_width, dw, h.is_signed, sign_extend));
    if (i == 0 || v < previous) at = 0;
    previous = v;
    if (at < table.size() && table[at].first < v) {  // gallop, then search what is left
      at = static_cast<size_t>(std::lower_bound(table.begin() + at, table.end(), v,
                                                [](const auto& e, T x) { return e.first < x; }) - table.begin());
    }
    T w;
    if (at < table.size() && table[at].first == v) {
      const int64_t m = table[at].second;
      if (std::is_unsigned<T>::value && m < 0) return false;
      w = static_cast<T>(m);
      if (w < lo || w > hi) return false;  // widening: the general path
    } else if (preserve_missing) {
      w = v;
    } else {
      return false;  // the general path names the missing labels
    }
    new_min = std::min(new_min, w);
    new_max = std::max(new_max, w);
    stored[i] = static_cast<uint64_t>(w);
  }

  // The narrowest stored width (FORMAT 2.5 and the signed rule of 5.3).
  int width = 8;
  if (std::is_signed<T>::value && new_min < 0) {
    width = dw;
  } else {
    for (int w : {1, 2, 4, 8}) {
      if (w == 8 || static_cast<uint64_t>(new_max) < (uint64_t{1} << (8 * w - (h.is_signed ? 1 : 0)))) {
        width = w;
        break;
      }
    }
  }
  const uint64_t mask = width >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * width)) - 1;
  for (uint64_t& v : stored) v &= mask;

  // The U/M bits compare the stored representations, as FORMAT 5 orders them.
  const uint64_t* body = stored.data() + (pins ? 1 : 0);
  const uint64_t m = L.num_unique;
  bool increasing = true;
  for (uint64_t i = 1; i < m && increasing; i++) increasing = body[i - 1] < body[i];
  bool unsorted = false, duplicated = false;
  if (increasing) {
    duplicated = pins && std::binary_search(body, body + m, stored[0]);
  } else {
    for (uint64_t i = 1; i < m && !unsorted; i++) unsorted = body[i] < body[i - 1];
    std::vector<uint64_t> ordered(stored);
    std::sort(ordered.begin(), ordered.end());
    duplicated = std::adjacent_find(ordered.begin(), ordered.end()) != ordered.end();
  }

  out.head.assign((pins ? width : 0) + 8 + m * width, 0);
  uint8_t* p = out.head.data();
  if (pins) {
    store_le(p, stored[0], width);
    p += width;
  }
  store_le(p, m, 8);
  p += 8;
  for (uint64_t i = 0; i < m; i++) store_le(p + i * width, body[i], width);
  out.section.head = out.head.data();
  out.section.head_size = out.head.size();
  out.section.keep_offset = L.unique_offset + m * L.stored_width;
  out.section.keep_size = s.layout.labels_offset + h.num_label_bytes - out.section.keep_offset;
  out.format.data_width = dw;
  out.format.stored_width = width;
  out.format.is_signed = h.is_signed;
  out.format.fortran = h.fortran;
  out.format.unsorted = unsorted;
  out.format.remapped = duplicated;
  return true;
}

}  // namespace remap_detail

// Plans remap of a non-empty stream by the mapping keys[i] -> values[i] (n distinct keys, as a
// dict holds them); false when the general path must decide (see the top of this file).
inline bool plan_remap(const StreamInfo& s, const int64_t* keys, const int64_t* values, uint64_t n,
                       bool preserve_missing, RemapPlan& out) {
  if (s.header.voxels() == 0) return false;
  return s.header.is_signed ? remap_detail::plan<int64_t>(s, keys, values, n, preserve_missing, out)
                            : remap_detail::plan<uint64_t>(s, keys, values, n, preserve_missing, out);
}

}  // namespace crackle
