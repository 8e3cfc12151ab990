// Condensed PINS labels (FORMAT.md 5.2 and 9.5): a background label, and for every other label
// a list of pins (vertical runs through one pixel column) and a list of component ids.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "common.hpp"
#include "distinct_labels.hpp"
#include "labels_section.hpp"

namespace crackle {

struct Pin {
  uint64_t pixel;  // x + sx*y
  uint32_t z0, z1; // inclusive slice range
  uint32_t label;  // record index
};

struct PinsData {
  std::vector<Pin> pins;                                  // in record order
  std::vector<std::pair<uint64_t, uint32_t>> components;  // (global cc id, record index), record order
};

// Reads every record, checking pin positions against the volume, depths against sz, cc ids
// against the component count, and the total pin coverage against the voxel count (valid
// streams never cover a voxel twice, so this bounds the decoder's work by the output size).
inline PinsData read_pins(const uint8_t* data, const Header& h, const LabelsSection& s) {
  const char* sec = "labels";
  PinsData out;
  ByteReader r(data + s.records_offset, s.end_offset - s.records_offset, sec);
  const uint64_t voxels = h.voxels();
  const uint64_t sxy = h.slice_pixels();
  const uint64_t total_cc = s.num_components();
  uint64_t coverage = 0;
  for (uint64_t k = 0; k < s.num_unique; k++) {
    const uint64_t num_pins = r.read(s.pins.count);
    const uint8_t* idx = r.take_items(num_pins, s.pins.index);
    const uint8_t* dep = r.take_items(num_pins, s.pins.depth);
    uint64_t index = 0;
    for (uint64_t i = 0; i < num_pins; i++) {
      index += load_le(idx + i * s.pins.index, s.pins.index);
      if (index >= voxels) fail(sec, "pin index " + std::to_string(index) + " is outside the volume");
      const uint64_t z = index / sxy;
      const uint64_t depth = load_le(dep + i * s.pins.depth, s.pins.depth);
      if (depth >= h.sz - z) fail(sec, "pin at z=" + std::to_string(z) + " with depth " + std::to_string(depth) + " runs past the last slice");
      coverage += depth + 1;
      if (coverage > voxels) fail(sec, "pins cover more voxels than the volume has");
      out.pins.push_back({index % sxy, static_cast<uint32_t>(z), static_cast<uint32_t>(z + depth), static_cast<uint32_t>(k)});
    }
    const uint64_t num_cc = r.read(s.pins.count);
    const uint8_t* ids = r.take_items(num_cc, s.pins.cc);
    uint64_t g = 0;
    for (uint64_t i = 0; i < num_cc; i++) {
      g += load_le(ids + i * s.pins.cc, s.pins.cc);
      if (g >= total_cc) fail(sec, "component id " + std::to_string(g) + " is out of range (" + std::to_string(total_cc) + " components)");
      out.components.push_back({g, static_cast<uint32_t>(k)});
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------- encoder

// Writes a PINS section (the simple valid writer of 9.5). `cc_values`: stored value per global
// component; `ids`: every slice's component ids (slice z at z*sx*sy); `first_pixel`: the first
// pixel of each global component; `cc_counts[z]`: components in slice z.
inline void write_pins_labels(const Header& h, const std::vector<uint64_t>& cc_values, const uint32_t* ids,
                              const std::vector<uint32_t>& first_pixel, const std::vector<uint32_t>& cc_counts,
                              int stored_width, int cc_width, std::vector<uint8_t>& out) {
  const uint64_t sxy = h.slice_pixels();
  const uint64_t T = cc_values.size();
  std::vector<uint64_t> offsets(cc_counts.size() + 1, 0);
  for (size_t z = 0; z < cc_counts.size(); z++) offsets[z + 1] = offsets[z] + cc_counts[z];

  const DistinctLabels distinct = distinct_labels(cc_values);
  const std::vector<uint64_t>& unique = distinct.values;
  const std::vector<uint32_t>& label = distinct.index;
  std::vector<uint64_t> cc_per_label(unique.size(), 0);
  for (uint64_t g = 0; g < T; g++) cc_per_label[label[g]]++;
  // Background: the label with the most components, so it needs no record entries at all.
  const uint32_t bg = static_cast<uint32_t>(std::max_element(cc_per_label.begin(), cc_per_label.end()) - cc_per_label.begin());

  // Candidate pins: through each uncovered component's first pixel, as deep as the label lasts.
  struct Candidate {
    uint64_t index;
    uint32_t depth;
    uint32_t label;
  };
  std::vector<Candidate> candidates;
  std::vector<uint8_t> covered(T, 0);
  uint32_t max_depth = 0;
  for (uint32_t z = 0; z < h.sz; z++) {
    for (uint64_t g = offsets[z]; g < offsets[z + 1]; g++) {
      if (covered[g] || label[g] == bg) continue;
      covered[g] = 1;
      const uint64_t p = first_pixel[g];
      uint32_t z2 = z;
      while (z2 + 1 < h.sz) {
        const uint64_t g2 = offsets[z2 + 1] + ids[static_cast<uint64_t>(z2 + 1) * sxy + p];
        if (label[g2] != label[g]) break;
        covered[g2] = 1;
        z2++;
      }
      candidates.push_back({p + sxy * z, z2 - z, label[g]});
      max_depth = std::max(max_depth, z2 - z);
    }
  }

  PinWidths w;
  w.index = width_of(h.voxels() & 0xFFFFFFFFull);
  w.cc = width_of(T);
  const int candidate_depth_width = width_of(max_depth);
  // A short pin costs more than listing its few components.
  std::vector<std::vector<uint64_t>> pins_of(unique.size()), ccs_of(unique.size());
  std::vector<std::vector<uint32_t>> depths_of(unique.size());
  uint32_t kept_max_depth = 0;
  for (const Candidate& c : candidates) {
    if ((static_cast<uint64_t>(c.depth) + 1) * w.cc <= static_cast<uint64_t>(w.index + candidate_depth_width)) {
      const uint64_t p = c.index % sxy;
      const uint64_t z = c.index / sxy;
      for (uint64_t zz = z; zz <= z + c.depth; zz++) ccs_of[c.label].push_back(offsets[zz] + ids[zz * sxy + p]);
    } else {
      pins_of[c.label].push_back(c.index);
      depths_of[c.label].push_back(c.depth);
      kept_max_depth = std::max(kept_max_depth, c.depth);
    }
  }
  w.depth = width_of(kept_max_depth);
  uint64_t max_count = 0;
  for (size_t k = 0; k < unique.size(); k++) {
    auto& cc = ccs_of[k];
    std::sort(cc.begin(), cc.end());
    cc.erase(std::unique(cc.begin(), cc.end()), cc.end());
    max_count = std::max<uint64_t>(max_count, std::max<uint64_t>(pins_of[k].size(), cc.size()));
  }
  // Sized from both lists (the reference sizes it from pins only and truncates long cc lists).
  w.count = width_of(max_count);

  append_le(out, unique[bg], stored_width);
  append_le(out, unique.size() - 1, 8);
  for (size_t k = 0; k < unique.size(); k++) {
    if (k != bg) append_le(out, unique[k], stored_width);
  }
  for (uint32_t c : cc_counts) append_le(out, c, cc_width);
  out.push_back(static_cast<uint8_t>(log2_of_width(w.count) | log2_of_width(w.depth) << 2 | log2_of_width(w.cc) << 4));
  for (size_t k = 0; k < unique.size(); k++) {
    if (k == bg) continue;
    // Candidates were generated in increasing index order, so each label's pins are sorted.
    const auto& pins = pins_of[k];
    append_le(out, pins.size(), w.count);
    uint64_t prev = 0;
    for (uint64_t index : pins) {
      append_le(out, index - prev, w.index);
      prev = index;
    }
    for (uint32_t d : depths_of[k]) append_le(out, d, w.depth);
    const auto& cc = ccs_of[k];
    append_le(out, cc.size(), w.count);
    prev = 0;
    for (uint64_t g : cc) {
      append_le(out, g - prev, w.cc);
      prev = g;
    }
  }
}

}  // namespace crackle
