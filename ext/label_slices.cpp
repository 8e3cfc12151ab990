// SliceLabeler (label_slices.hpp): one slice's components and their label indices.
#include "label_slices.hpp"

#include <algorithm>

namespace crackle {

SliceLabeler::SliceLabeler(const StreamInfo& s, bool verify)
    : s_(s), verify_(verify), pins_(s.labels.format == kPins) {
  const Header& h = s.header;
  if (verify) check_labels_crc(s);
  if (h.voxels() == 0) return;
  if (h.markov_order > 0) model_ = MarkovModel::read(s.data + s.layout.model_offset, s.layout.model_bytes, h.markov_order);
  if (!pins_) return;
  const LabelsSection& L = s.labels;
  pin_data_ = read_pins(s.data, h, L);
  record_of_.assign(L.num_components(), static_cast<uint32_t>(L.num_unique));
  for (const auto& c : pin_data_.components) record_of_[c.first] = c.second;
  pin_start_.assign(static_cast<size_t>(h.sz) + 1, 0);
  for (const Pin& p : pin_data_.pins) {
    for (uint32_t z = p.z0; z <= p.z1; z++) pin_start_[z + 1]++;
  }
  for (size_t i = 1; i < pin_start_.size(); i++) pin_start_[i] += pin_start_[i - 1];
  pin_list_.resize(pin_start_.back());
  std::vector<uint64_t> fill(pin_start_.begin(), pin_start_.end() - 1);
  for (uint32_t i = 0; i < pin_data_.pins.size(); i++) {
    const Pin& p = pin_data_.pins[i];
    for (uint32_t z = p.z0; z <= p.z1; z++) pin_list_[fill[z]++] = i;
  }
}

void SliceLabeler::label(uint32_t z) {
  const Header& h = s_.header;
  const LabelsSection& L = s_.labels;
  decode_slice_runs(s_, model_, z, sc_, verify_);
  const uint64_t first = L.cc_offsets[z];
  const uint32_t count = static_cast<uint32_t>(L.cc_offsets[z + 1] - first);
  index_.resize(count);
  if (!pins_) {
    const uint8_t* keys = s_.data + L.keys_offset + first * L.key_width;
    for (uint32_t j = 0; j < count; j++) index_[j] = static_cast<uint32_t>(load_le(keys + static_cast<uint64_t>(j) * L.key_width, L.key_width));
    return;
  }
  std::copy(record_of_.begin() + first, record_of_.begin() + first + count, index_.begin());
  const SliceRuns& runs = sc_.runs;
  for (uint64_t k = pin_start_[z]; k < pin_start_[z + 1]; k++) {
    const Pin& p = pin_data_.pins[pin_list_[k]];
    const uint32_t x = static_cast<uint32_t>(p.pixel % h.sx), y = static_cast<uint32_t>(p.pixel / h.sx);
    const uint32_t* lo = runs.start.data() + runs.row_first[y];
    const uint32_t* hi = runs.start.data() + runs.row_first[y + 1] - 1;
    const uint32_t r = static_cast<uint32_t>(std::upper_bound(lo, hi, x) - runs.start.data()) - 1;
    index_[runs.component[r]] = p.label;
  }
}

std::vector<uint8_t> SliceLabeler::slices_holding(uint64_t k) const {
  const Header& h = s_.header;
  const LabelsSection& L = s_.labels;
  std::vector<uint8_t> out(h.sz, 0);
  if (h.voxels() == 0) return out;
  if (!pins_) {
    for (uint32_t z = 0; z < h.sz; z++) {
      const uint8_t* keys = s_.data + L.keys_offset + L.cc_offsets[z] * L.key_width;
      const uint64_t n = L.cc_offsets[z + 1] - L.cc_offsets[z];
      for (uint64_t j = 0; j < n; j++) {
        if (load_le(keys + j * L.key_width, L.key_width) == k) {
          out[z] = 1;
          break;
        }
      }
    }
    return out;
  }
  if (k == L.num_unique) {
    std::fill(out.begin(), out.end(), 1);
    return out;
  }
  for (const Pin& p : pin_data_.pins) {
    if (p.label != k) continue;
    for (uint32_t z = p.z0; z <= p.z1; z++) out[z] = 1;
  }
  for (const auto& c : pin_data_.components) {
    if (c.second != k) continue;
    const uint32_t z = static_cast<uint32_t>(std::upper_bound(L.cc_offsets.begin(), L.cc_offsets.end(), c.first) - L.cc_offsets.begin()) - 1;
    out[z] = 1;
  }
  return out;
}

}  // namespace crackle
