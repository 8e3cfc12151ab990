// The stream header (FORMAT.md section 2) and the section layout that follows from it (section 1).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common.hpp"
#include "crc.hpp"

namespace crackle {

constexpr uint8_t kMagic[4] = {'c', 'r', 'k', 'l'};
constexpr uint64_t kHeaderBytesV0 = 24;
constexpr uint64_t kHeaderBytesV1 = 29;
constexpr uint8_t kGridLog2 = 31;
constexpr int kMaxMarkovOrder = 15;

enum LabelFormat : int { kFlat = 0, kPins = 2 };

struct Header {
  uint8_t version = 1;
  uint32_t sx = 0, sy = 0, sz = 0;
  uint8_t grid_log2 = kGridLog2;
  uint64_t num_label_bytes = 0;

  // format_field, unpacked
  int data_width = 1;    // DD: bytes per decoded element
  int stored_width = 1;  // SS: bytes per stored label value
  bool permissible = false;
  int label_format = kFlat;
  bool fortran = false;
  bool is_signed = false;
  int markov_order = 0;
  bool unsorted = false;
  bool remapped = false;

  uint64_t header_bytes() const { return version == 0 ? kHeaderBytesV0 : kHeaderBytesV1; }
  uint64_t slice_pixels() const { return static_cast<uint64_t>(sx) * sy; }
  uint64_t voxels() const { return slice_pixels() * sz; }

  // Can an array of this shape be described at all (numpy's limit: the bytes of the non-zero
  // axes fit a signed 64-bit size)? An empty volume with two huge axes cannot.
  bool representable_output() const {
    uint64_t bytes = static_cast<uint64_t>(data_width);
    for (uint64_t axis : {static_cast<uint64_t>(sx), static_cast<uint64_t>(sy), static_cast<uint64_t>(sz)}) {
      if (axis != 0 && __builtin_mul_overflow(bytes, axis, &bytes)) return false;
    }
    return bytes <= static_cast<uint64_t>(INT64_MAX);
  }

  uint16_t format_field() const {
    return static_cast<uint16_t>(log2_of_width(data_width) | log2_of_width(stored_width) << 2 |
                                 (permissible ? 1 : 0) << 4 | label_format << 5 | (fortran ? 1 : 0) << 7 |
                                 (is_signed ? 1 : 0) << 8 | markov_order << 9 | (unsorted ? 1 : 0) << 13 |
                                 (remapped ? 1 : 0) << 14);
  }

  void write(uint8_t* out) const {
    std::memcpy(out, kMagic, 4);
    out[4] = version;
    store_le(out + 5, format_field(), 2);
    store_le(out + 7, sx, 4);
    store_le(out + 11, sy, 4);
    store_le(out + 15, sz, 4);
    out[19] = grid_log2;
    if (version == 0) {
      store_le(out + 20, num_label_bytes, 4);
    } else {
      store_le(out + 20, num_label_bytes, 8);
      out[28] = crc8(out + 5, 23);
    }
  }

  static Header parse(const uint8_t* data, uint64_t size) {
    if (size < 5) fail("header", "stream too short (" + std::to_string(size) + " bytes) to be a Crackle stream");
    if (std::memcmp(data, kMagic, 4) != 0) fail("header", "bad magic (not a Crackle stream)");
    Header h;
    h.version = data[4];
    if (h.version > 1) fail("header", "unsupported format version " + std::to_string(h.version));
    if (size < h.header_bytes()) {
      fail("header", "truncated: " + std::to_string(size) + " bytes, a version " + std::to_string(h.version) +
                         " header needs " + std::to_string(h.header_bytes()));
    }
    if (h.version == 1) {
      const uint8_t expected = crc8(data + 5, 23);
      if (expected != data[28]) fail("header", "CRC8 mismatch (header corrupted)");
    }
    const uint16_t ff = static_cast<uint16_t>(load_le(data + 5, 2));
    h.data_width = 1 << (ff & 3);
    h.stored_width = 1 << ((ff >> 2) & 3);
    h.permissible = (ff >> 4) & 1;
    h.label_format = (ff >> 5) & 3;
    h.fortran = (ff >> 7) & 1;
    h.is_signed = (ff >> 8) & 1;
    h.markov_order = (ff >> 9) & 0xF;
    h.unsorted = (ff >> 13) & 1;
    h.remapped = (ff >> 14) & 1;
    if (h.label_format != kFlat && h.label_format != kPins) {
      fail("header", "unsupported label format " + std::to_string(h.label_format) + " (only flat=0 and pins=2)");
    }
    h.sx = load_u32(data + 7);
    h.sy = load_u32(data + 11);
    h.sz = load_u32(data + 15);
    h.grid_log2 = data[19];
    h.num_label_bytes = h.version == 0 ? load_le(data + 20, 4) : load_u64(data + 20);
    // The volume's byte size must fit 64 bits, so voxels() never wraps (whether numpy can hold
    // the output is the decoder's question, see representable_output).
    uint64_t bytes;
    if (__builtin_mul_overflow(h.slice_pixels(), static_cast<uint64_t>(h.sz), &bytes) ||
        __builtin_mul_overflow(bytes, static_cast<uint64_t>(h.data_width), &bytes)) {
      fail("header", "dimensions " + std::to_string(h.sx) + "x" + std::to_string(h.sy) + "x" + std::to_string(h.sz) +
                         " overflow 64 bits");
    }
    if (h.voxels() > 0) {
      // One grid per slice is all any writer produces (FORMAT 2.4).
      const uint64_t grid = h.grid_log2 >= 63 ? ~0ull : (1ull << h.grid_log2);
      if (grid < std::max(h.sx, h.sy)) {
        fail("header", "grid size 2^" + std::to_string(h.grid_log2) + " smaller than the slice is unsupported");
      }
      // CC ids are u32 per slice; a slice of 2^32 pixels cannot be written by any encoder.
      if (h.slice_pixels() > 0xFFFFFFFFull) fail("header", "slice of more than 2^32-1 pixels is unsupported");
    }
    return h;
  }
};

inline uint64_t markov_model_bytes(int order) {
  if (order == 0) return 0;
  return ((5ull << (2 * order)) + 7) / 8;
}

// Where each section lies, all offsets absolute. Building it checks that the lengths add up to
// the buffer length exactly and (v1) the index CRC, before anything sized by them is allocated.
struct Layout {
  bool has_crcs = false;
  uint64_t index_offset = 0;
  uint64_t index_bytes = 0;  // including the v1 index CRC
  uint64_t labels_offset = 0;
  uint64_t model_offset = 0;
  uint64_t model_bytes = 0;
  uint64_t codes_offset = 0;
  uint64_t codes_bytes = 0;
  uint64_t trailer_offset = 0;  // labels CRC, then slice CRCs (v1 with CRCs)
  uint64_t trailer_bytes = 0;
  std::vector<uint64_t> slice_offsets;  // sz + 1 absolute offsets into the crack codes

  static Layout of(const uint8_t* data, uint64_t size, const Header& h) {
    Layout L;
    const uint64_t H = h.header_bytes();
    if (h.voxels() == 0) {
      // Empty volume: the header alone (FORMAT 1).
      if (size != H) fail("header", "an empty volume's stream must be the header alone, found " + std::to_string(size - H) + " extra bytes");
      // Nothing is indexed by z in an empty volume, so nothing is sized by sz either.
      L.index_offset = L.labels_offset = L.model_offset = L.codes_offset = L.trailer_offset = H;
      return L;
    }
    const uint64_t index_entries = 4ull * h.sz;
    L.index_offset = H;
    L.model_bytes = markov_model_bytes(h.markov_order);
    if (index_entries > size - H) fail("crack index", "truncated: the index alone needs " + std::to_string(index_entries) + " bytes");
    // Sum of the slice code lengths; each entry is u32 and there are < 2^32 of them.
    uint64_t codes = 0;
    const uint8_t* index = data + H;
    for (uint32_t z = 0; z < h.sz; z++) codes += load_u32(index + 4ull * z);

    const uint64_t body_no_crc = checked_add(checked_add(checked_add(H + index_entries, h.num_label_bytes, "header"), L.model_bytes, "header"), codes, "crack index");
    if (h.version == 0) {
      L.has_crcs = false;
    } else {
      const uint64_t with_crc = checked_add(body_no_crc, 4 + 4 * (static_cast<uint64_t>(h.sz) + 1), "crack index");
      if (size == with_crc) {
        L.has_crcs = true;
      } else if (size == body_no_crc) {
        L.has_crcs = false;  // 0.17.0-0.17.3: a v1 header without any CRC32C field (FORMAT 2.3)
      } else {
        fail("crack index", "section lengths add up to " + std::to_string(with_crc) + " bytes but the stream has " + std::to_string(size) + " (truncated or corrupted)");
      }
    }
    if (!L.has_crcs && size != body_no_crc) {
      fail("crack index", "section lengths add up to " + std::to_string(body_no_crc) + " bytes but the stream has " + std::to_string(size) + " (truncated or corrupted)");
    }
    L.index_bytes = index_entries + (L.has_crcs ? 4 : 0);
    if (L.has_crcs) {
      const uint32_t stored = load_u32(data + H + index_entries);
      if (crc32c(index, index_entries) != stored) fail("crack index", "CRC32C mismatch (index corrupted)");
    }
    L.labels_offset = H + L.index_bytes;
    L.model_offset = L.labels_offset + h.num_label_bytes;
    L.codes_offset = L.model_offset + L.model_bytes;
    L.codes_bytes = codes;
    L.trailer_offset = L.codes_offset + codes;
    L.trailer_bytes = L.has_crcs ? 4 * (static_cast<uint64_t>(h.sz) + 1) : 0;
    L.slice_offsets.resize(static_cast<size_t>(h.sz) + 1);
    uint64_t at = L.codes_offset;
    for (uint32_t z = 0; z < h.sz; z++) {
      L.slice_offsets[z] = at;
      at += load_u32(index + 4ull * z);
    }
    L.slice_offsets[h.sz] = at;
    return L;
  }

  uint32_t labels_crc(const uint8_t* data) const { return load_u32(data + trailer_offset); }
  uint32_t slice_crc(const uint8_t* data, uint32_t z) const { return load_u32(data + trailer_offset + 4 + 4ull * z); }
};

}  // namespace crackle
