// The distinct label values of a volume's components, sorted, and each component's index among
// them: the FLAT and PINS label sections are both written from this.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "common.hpp"

namespace crackle {

struct DistinctLabels {
  std::vector<uint64_t> values;  // sorted, distinct
  std::vector<uint32_t> index;   // per component: values[index[g]] == component g's value
};

// A volume has hundreds of thousands of components but usually a few thousand labels. Sorting
// every component's value and binary-searching each was a sixth of an encode, and serial:
// here each component looks its value up in a hash table instead (O(components)), and only the
// distinct values are sorted.
inline DistinctLabels distinct_labels(const std::vector<uint64_t>& cc_values) {
  constexpr uint32_t kEmpty = 0xFFFFFFFFu;
  struct Slot {
    uint64_t value;
    uint32_t id;
  };
  int bits = 10;
  std::vector<Slot> table(size_t{1} << bits, Slot{0, kEmpty});
  std::vector<uint64_t> first;  // provisional id -> value, in order of first appearance
  auto slot_of = [&](uint64_t v) {
    uint64_t x = v;  // a full 64-bit mix, so that patterned labels still spread
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    const size_t mask = table.size() - 1;
    size_t i = static_cast<size_t>(x >> (64 - bits));
    while (table[i].id != kEmpty && table[i].value != v) i = (i + 1) & mask;
    return i;
  };
  std::vector<uint32_t> provisional(cc_values.size());
  uint64_t last_value = 0;
  uint32_t last_id = kEmpty;
  for (size_t g = 0; g < cc_values.size(); g++) {
    const uint64_t v = cc_values[g];
    if (v != last_value || last_id == kEmpty) {  // a label continues across neighbouring components
      size_t i = slot_of(v);
      if (table[i].id == kEmpty) {
        if (2 * (first.size() + 1) > table.size()) {  // keep the load under one half
          bits++;
          std::vector<Slot> old(size_t{1} << bits, Slot{0, kEmpty});
          old.swap(table);
          for (const Slot& s : old) {
            if (s.id != kEmpty) table[slot_of(s.value)] = s;
          }
          i = slot_of(v);
        }
        if (first.size() >= kEmpty) throw EncodeError("more than 2^32 - 1 distinct labels");
        table[i] = Slot{v, static_cast<uint32_t>(first.size())};
        first.push_back(v);
      }
      last_value = v;
      last_id = table[i].id;
    }
    provisional[g] = last_id;
  }
  std::vector<std::pair<uint64_t, uint32_t>> order(first.size());
  for (uint32_t k = 0; k < first.size(); k++) order[k] = {first[k], k};
  std::sort(order.begin(), order.end());
  DistinctLabels out;
  out.values.resize(order.size());
  std::vector<uint32_t> rank(order.size());
  for (uint32_t k = 0; k < order.size(); k++) {
    out.values[k] = order[k].first;
    rank[order[k].second] = k;
  }
  for (uint32_t& id : provisional) id = rank[id];
  out.index = std::move(provisional);
  return out;
}

}  // namespace crackle
