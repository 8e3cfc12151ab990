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

// One slice's components as the runs ccl.hpp found them: row y's runs start at
// start[row_first[y] .. row_first[y+1] - 1) (the last entry of each row is the sentinel sx), and
// run r belongs to component[r]. Kept per slice instead of a component id per voxel.
struct RunComponents {
  std::vector<uint32_t> start, row_first, component;

  uint32_t at(uint32_t sx, uint64_t p) const {
    const uint32_t y = static_cast<uint32_t>(p / sx), x = static_cast<uint32_t>(p % sx);
    const uint32_t* lo = start.data() + row_first[y];
    const uint32_t* hi = start.data() + row_first[y + 1] - 1;
    return component[(std::upper_bound(lo, hi, x) - 1) - start.data()];
  }
};

// For every component, the pixel whose column keeps the component's value for the most slices
// below it: a pin through that pixel covers the most of the label's components beneath. Computed
// bottom up with one slice of depths (memory follows the component count, not the volume): the
// depths from the element values a row at a time, then each run's deepest pixel from a maximum
// over the run. `best_depth[g]`: slices below component g that its pin can reach;
// `best_pixel[g]`: where.
template <typename T>
void deepest_pixels(const T* data, uint64_t row_stride, uint64_t plane_stride, const std::vector<RunComponents>& runs,
                    uint32_t sx, uint32_t sy, const std::vector<uint64_t>& offsets, std::vector<uint32_t>& best_pixel,
                    std::vector<uint32_t>& best_depth) {
  const uint32_t sz = static_cast<uint32_t>(runs.size());
  const uint64_t sxy = static_cast<uint64_t>(sx) * sy;
  const uint64_t total = offsets[sz];
  best_pixel.assign(total, 0);
  best_depth.assign(total, 0);
  std::vector<uint32_t> reach(total, 0);  // 1 + the best depth so far; 0 = no run seen yet
  std::vector<uint32_t> depth(sxy, 0);
  for (uint32_t z = sz; z-- > 0;) {
    const T* cur = data + z * plane_stride;
    uint32_t* d = depth.data();
    if (z + 1 < sz) {
      for (uint32_t y = 0; y < sy; y++) {
        const T* row = cur + y * row_stride;
        const T* below = row + plane_stride;
        uint32_t* drow = d + static_cast<uint64_t>(y) * sx;
        for (uint32_t x = 0; x < sx; x++) drow[x] = row[x] == below[x] ? drow[x] + 1 : 0;
      }
    }
    const RunComponents& rc = runs[z];
    uint32_t* r = reach.data() + offsets[z];
    uint32_t* bp = best_pixel.data() + offsets[z];
    for (uint32_t y = 0; y < sy; y++) {
      const uint32_t* row = d + static_cast<uint64_t>(y) * sx;
      for (uint32_t k = rc.row_first[y]; k < rc.row_first[y + 1] - 1; k++) {
        const uint32_t a = rc.start[k], b = rc.start[k + 1];
        uint32_t m = 0;
        for (uint32_t x = a; x < b; x++) m = std::max(m, row[x]);
        const uint32_t g = rc.component[k];
        if (m + 1 > r[g]) {
          r[g] = m + 1;
          uint32_t x = a;
          while (row[x] != m) x++;
          bp[g] = static_cast<uint32_t>(static_cast<uint64_t>(y) * sx + x);
        }
      }
    }
  }
  for (uint64_t g = 0; g < total; g++) best_depth[g] = reach[g] - 1;
}

// Writes a PINS section. Pin selection is a set cover: every non-background component must be
// covered by a pin of its label (IW + DW bytes, covering one component in each slice of its
// column run) or listed by id (CCW bytes). Greedy, top down: each component no earlier pin
// covers gets the pin through its deepest pixel, cut after the last component it newly covers,
// if that pin is cheaper than listing those components; else the component is listed. Every
// label's record is then costed, and the costliest label becomes the background (it needs no
// record). `cc_values`: stored value per global component; `runs`: every slice's components;
// `best_pixel`/`best_depth` from deepest_pixels; `cc_counts[z]`: components in slice z.
inline void write_pins_labels(const Header& h, const std::vector<uint64_t>& cc_values, const std::vector<RunComponents>& runs,
                              const std::vector<uint32_t>& best_pixel, const std::vector<uint32_t>& best_depth,
                              const std::vector<uint32_t>& cc_counts, int stored_width, int cc_width,
                              std::vector<uint8_t>& out) {
  const uint64_t sxy = h.slice_pixels();
  const uint64_t T = cc_values.size();
  std::vector<uint64_t> offsets(cc_counts.size() + 1, 0);
  for (size_t z = 0; z < cc_counts.size(); z++) offsets[z + 1] = offsets[z] + cc_counts[z];

  const DistinctLabels distinct = distinct_labels(cc_values);
  const std::vector<uint64_t>& unique = distinct.values;
  const std::vector<uint32_t>& label = distinct.index;

  PinWidths w;
  w.index = width_of(h.voxels() & 0xFFFFFFFFull);
  w.cc = width_of(T);
  const uint64_t pin_cost = static_cast<uint64_t>(w.index) + width_of(h.sz - 1);

  struct PinChoice {
    uint32_t label;
    uint32_t depth;
    uint64_t index;
  };
  std::vector<PinChoice> pins;
  std::vector<std::pair<uint32_t, uint64_t>> listed;  // (label, global component id)
  std::vector<uint8_t> covered(T, 0);
  for (uint32_t z = 0; z < h.sz; z++) {
    for (uint64_t g = offsets[z]; g < offsets[z + 1]; g++) {
      if (covered[g]) continue;
      covered[g] = 1;
      const uint64_t p = best_pixel[g];
      uint64_t fresh = 1;
      uint32_t last = 0;
      for (uint32_t k = 1; k <= best_depth[g]; k++) {
        const uint64_t zz = static_cast<uint64_t>(z) + k;
        if (!covered[offsets[zz] + runs[zz].at(h.sx, p)]) {
          fresh++;
          last = k;
        }
      }
      if (fresh * w.cc <= pin_cost) {
        listed.push_back({label[g], g});
        continue;
      }
      for (uint32_t k = 1; k <= last; k++) {
        const uint64_t zz = static_cast<uint64_t>(z) + k;
        covered[offsets[zz] + runs[zz].at(h.sx, p)] = 1;
      }
      pins.push_back({label[g], last, p + sxy * z});
    }
  }
  std::vector<uint8_t>().swap(covered);
  std::sort(pins.begin(), pins.end(), [](const PinChoice& a, const PinChoice& b) {
    return a.label != b.label ? a.label < b.label : a.index < b.index;
  });
  std::sort(listed.begin(), listed.end());

  // The background is the label whose record would cost the most.
  std::vector<uint64_t> num_pins(unique.size(), 0), num_listed(unique.size(), 0);
  for (const PinChoice& c : pins) num_pins[c.label]++;
  for (const auto& l : listed) num_listed[l.first]++;
  uint32_t bg = 0;
  uint64_t bg_cost = 0;
  for (uint32_t k = 0; k < unique.size(); k++) {
    const uint64_t cost = num_pins[k] * pin_cost + num_listed[k] * w.cc;
    if (k == 0 || cost > bg_cost) {
      bg = k;
      bg_cost = cost;
    }
  }
  uint32_t max_depth = 0;
  uint64_t max_count = 0;
  for (const PinChoice& c : pins) {
    if (c.label != bg) max_depth = std::max(max_depth, c.depth);
  }
  for (uint32_t k = 0; k < unique.size(); k++) {
    if (k != bg) max_count = std::max(max_count, std::max(num_pins[k], num_listed[k]));
  }
  w.depth = width_of(max_depth);
  // Sized from both lists (the reference sizes it from pins only and truncates long cc lists).
  w.count = width_of(max_count);

  append_le(out, unique[bg], stored_width);
  append_le(out, unique.size() - 1, 8);
  for (size_t k = 0; k < unique.size(); k++) {
    if (k != bg) append_le(out, unique[k], stored_width);
  }
  for (uint32_t c : cc_counts) append_le(out, c, cc_width);
  out.push_back(static_cast<uint8_t>(log2_of_width(w.count) | log2_of_width(w.depth) << 2 | log2_of_width(w.cc) << 4));
  size_t pi = 0, li = 0;
  for (uint32_t k = 0; k < unique.size(); k++) {
    const size_t pins_end = pi + num_pins[k], listed_end = li + num_listed[k];
    if (k == bg) {
      pi = pins_end;
      li = listed_end;
      continue;
    }
    append_le(out, num_pins[k], w.count);
    uint64_t prev = 0;
    for (size_t i = pi; i < pins_end; i++) {
      append_le(out, pins[i].index - prev, w.index);
      prev = pins[i].index;
    }
    for (size_t i = pi; i < pins_end; i++) append_le(out, pins[i].depth, w.depth);
    append_le(out, num_listed[k], w.count);
    prev = 0;
    for (size_t i = li; i < listed_end; i++) {
      append_le(out, listed[i].second - prev, w.cc);
      prev = listed[i].second;
    }
    pi = pins_end;
    li = listed_end;
  }
}

}  // namespace crackle
