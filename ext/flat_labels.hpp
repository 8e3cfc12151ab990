// FLAT labels (FORMAT.md 5.1): a sorted list of distinct values and one key per component.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "common.hpp"
#include "distinct_labels.hpp"
#include "labels_section.hpp"

namespace crackle {

// Writes the FLAT section for components whose stored values are `cc_values` (global id
// order) with `cc_counts[z]` components in slice z.
inline void write_flat_labels(const std::vector<uint64_t>& cc_values, const std::vector<uint32_t>& cc_counts,
                              int stored_width, int cc_width, std::vector<uint8_t>& out) {
  const DistinctLabels distinct = distinct_labels(cc_values);
  const std::vector<uint64_t>& unique = distinct.values;
  const int key_width = width_of(unique.size());
  out.reserve(out.size() + 8 + unique.size() * stored_width + cc_counts.size() * cc_width + cc_values.size() * key_width);
  append_le(out, unique.size(), 8);
  for (uint64_t v : unique) append_le(out, v, stored_width);
  for (uint32_t c : cc_counts) append_le(out, c, cc_width);
  const size_t at = out.size();
  out.resize(at + cc_values.size() * key_width);
  uint8_t* keys = out.data() + at;
  for (size_t g = 0; g < cc_values.size(); g++) store_le(keys + g * key_width, distinct.index[g], key_width);
}

// Component -> label table for one slice: out[j] = table[keys[first + j]] (keys were checked
// against the table size by LabelsSection::parse).
template <typename T>
void flat_slice_values(const uint8_t* data, const LabelsSection& s, uint64_t first, uint32_t count,
                       const std::vector<T>& table, std::vector<T>& out) {
  out.resize(count);
  const uint8_t* keys = data + s.keys_offset + first * s.key_width;
  for (uint32_t j = 0; j < count; j++) out[j] = table[load_le(keys + static_cast<uint64_t>(j) * s.key_width, s.key_width)];
}

}  // namespace crackle
