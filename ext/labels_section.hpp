// The layout of the labels section shared by FLAT and PINS (FORMAT.md section 5): label values,
// per-slice component counts, and where the format-specific part (keys or pin records) lies.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common.hpp"
#include "header.hpp"

namespace crackle {

struct PinWidths {
  int count = 1;  // NPW: num_pins / num_cc fields
  int index = 1;  // IW: pin_index
  int depth = 1;  // DW: pin_depth
  int cc = 1;     // CCW: cc ids
};

// The largest of n little-endian values of `width` bytes (a loop per width: every query opening
// a stream runs it over all the keys). Four independent 16-byte maxima per step (GCC/Clang
// vector extensions, SSE2/NEON or scalar code as the target allows): one running maximum is a
// chain of dependent operations, four times slower.
template <typename T>
uint64_t max_le_as(const uint8_t* p, uint64_t n) {
  T m = 0;
  uint64_t i = 0;
#if defined(__GNUC__) || defined(__clang__)
  typedef T Vec __attribute__((vector_size(16)));
  constexpr uint64_t kPerVec = 16 / sizeof(T);
  if (n >= 4 * kPerVec) {
    Vec acc[4] = {};
    for (; i + 4 * kPerVec <= n; i += 4 * kPerVec) {
      for (int k = 0; k < 4; k++) {
        Vec v;
        std::memcpy(&v, p + (i + k * kPerVec) * sizeof(T), sizeof v);
        acc[k] = acc[k] > v ? acc[k] : v;
      }
    }
    for (int k = 0; k < 4; k++) {
      for (uint64_t j = 0; j < kPerVec; j++) m = std::max<T>(m, acc[k][j]);
    }
  }
#endif
  for (; i < n; i++) {
    T v;
    std::memcpy(&v, p + i * sizeof(T), sizeof(T));
    m = std::max(m, v);
  }
  return static_cast<uint64_t>(m);
}

inline uint64_t max_le(const uint8_t* p, uint64_t n, int width) {
  if (!host_is_little_endian()) {
    uint64_t m = 0;
    for (uint64_t i = 0; i < n; i++) m = std::max(m, load_le(p + i * width, width));
    return m;
  }
  switch (width) {
    case 1: return max_le_as<uint8_t>(p, n);
    case 2: return max_le_as<uint16_t>(p, n);
    case 4: return max_le_as<uint32_t>(p, n);
    default: return max_le_as<uint64_t>(p, n);
  }
}

struct LabelsSection {
  int format = kFlat;
  int stored_width = 1;
  uint64_t num_unique = 0;       // FLAT: entries of `unique`; PINS: non-background labels
  uint64_t unique_offset = 0;    // absolute offset of unique[0]
  uint64_t bgcolor = 0;          // PINS only (stored representation)
  uint64_t cc_per_grid_offset = 0;
  int cc_width = 1;
  std::vector<uint64_t> cc_offsets;  // sz + 1 prefix sums of cc_per_grid: slice z owns [cc_offsets[z], cc_offsets[z+1])
  uint64_t keys_offset = 0;      // FLAT
  int key_width = 1;             // FLAT
  uint64_t records_offset = 0;   // PINS
  uint64_t end_offset = 0;       // one past the section
  PinWidths pins;

  uint64_t num_components() const { return cc_offsets.empty() ? 0 : cc_offsets.back(); }

  uint64_t unique_value(const uint8_t* data, uint64_t k) const {
    return load_le(data + unique_offset + k * stored_width, stored_width);
  }

  // Checks the section's structure (not its CRC) and records where everything is.
  static LabelsSection parse(const uint8_t* data, const Header& h, const Layout& L) {
    LabelsSection s;
    s.format = h.label_format;
    s.stored_width = h.stored_width;
    s.end_offset = L.labels_offset + h.num_label_bytes;
    if (h.voxels() == 0) return s;  // empty volume: no section (cc_offsets stays empty)
    const char* sec = "labels";
    ByteReader r(data + L.labels_offset, h.num_label_bytes, sec);
    if (s.format == kPins) s.bgcolor = r.read(s.stored_width);
    s.num_unique = r.read(8);
    s.unique_offset = L.labels_offset + r.pos();
    r.take_items(s.num_unique, s.stored_width);

    s.cc_width = width_of(h.slice_pixels());
    s.cc_per_grid_offset = L.labels_offset + r.pos();
    const uint8_t* counts = r.take_items(h.sz, s.cc_width);
    s.cc_offsets.resize(static_cast<size_t>(h.sz) + 1);
    uint64_t total = 0;
    const uint64_t pixels = h.slice_pixels();
    // Each crack drawn splits at most one component in two (impermissible: cracks separate
    // pixels) or joins at most two into one (permissible: cracks connect them), and a code of n
    // bytes draws at most 8n cracks (one bit per symbol at least). So the counts, which size the
    // per-component work, are bounded by the bytes of each slice's code.
    const uint64_t interior = (static_cast<uint64_t>(h.sx) - 1) * h.sy + static_cast<uint64_t>(h.sx) * (h.sy - 1);
    for (uint32_t z = 0; z < h.sz; z++) {
      const uint64_t c = load_le(counts + static_cast<uint64_t>(z) * s.cc_width, s.cc_width);
      if (c == 0 || c > pixels) {
        fail(sec, "slice z=" + std::to_string(z) + " claims " + std::to_string(c) + " components in " +
                      std::to_string(pixels) + " pixels");
      }
      const uint64_t cracks = std::min(8 * (L.slice_offsets[z + 1] - L.slice_offsets[z]), interior);
      if (h.permissible ? c + cracks < pixels : c > cracks + 1) {
        fail(sec, "slice z=" + std::to_string(z) + " claims " + std::to_string(c) + " components in " +
                      std::to_string(pixels) + " pixels, which its " +
                      std::to_string(L.slice_offsets[z + 1] - L.slice_offsets[z]) + " bytes of crack code cannot draw");
      }
      s.cc_offsets[z] = total;
      total += c;
    }
    s.cc_offsets[h.sz] = total;

    if (s.format == kFlat) {
      if (s.num_unique == 0) fail(sec, "a non-empty volume has no labels");
      s.key_width = width_of(s.num_unique);
      s.keys_offset = L.labels_offset + r.pos();
      const uint8_t* keys = r.take_items(total, s.key_width);
      if (r.remaining() != 0) fail(sec, std::to_string(r.remaining()) + " unexpected bytes after the keys");
      // Every key must name an entry of `unique`: checked once here so that every reader of the
      // section (decode, verify, remap, queries) can index with it.
      const uint64_t max_key = max_le(keys, total, s.key_width);
      if (total > 0 && max_key >= s.num_unique) {
        fail(sec, "label key " + std::to_string(max_key) + " is out of range (" + std::to_string(s.num_unique) + " labels)");
      }
      return s;
    }

    const uint8_t fmt = static_cast<uint8_t>(r.read(1));
    if (fmt >> 6) fail(sec, "pins format byte has reserved bits set");
    s.pins.count = 1 << (fmt & 3);
    s.pins.depth = 1 << ((fmt >> 2) & 3);
    s.pins.cc = 1 << ((fmt >> 4) & 3);
    s.pins.index = width_of(h.voxels() & 0xFFFFFFFFull);
    s.records_offset = L.labels_offset + r.pos();
    // Walk the records once so a truncated or padded section is caught here, not mid-decode.
    for (uint64_t k = 0; k < s.num_unique; k++) {
      const uint64_t num_pins = r.read(s.pins.count);
      r.take_items(num_pins, s.pins.index);
      r.take_items(num_pins, s.pins.depth);
      const uint64_t num_cc = r.read(s.pins.count);
      r.take_items(num_cc, s.pins.cc);
    }
    if (r.remaining() != 0) fail(sec, std::to_string(r.remaining()) + " unexpected bytes after the pin records");
    return s;
  }
};

}  // namespace crackle
