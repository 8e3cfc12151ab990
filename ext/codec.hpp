// The entry points the Cython binding calls. Everything here works on plain buffers and never
// touches Python objects, so the binding calls it with the GIL released.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "header.hpp"
#include "labels_section.hpp"

namespace crackle {

struct EncodeOptions {
  bool fortran = false;  // header F bit: the memory order the caller's array had
  int markov_order = 0;
  bool allow_pins = false;  // PINS labels where they apply and are smaller than FLAT ones
  // Choose the label format (FLAT or PINS) and the markov order (0..kMaxOptimizeOrder) that give
  // the smallest stream; markov_order and allow_pins are then ignored.
  bool optimize = false;
  int threads = 1;
  int crack_format = -1;  // -1: chosen from the data (9.1); 0 impermissible, 1 permissible (zstack needs one format)
};

// Where the voxels of the volume to encode are: element (x, y, z) is `data[x + y * row + z * plane]`
// (strides in elements, x contiguous). A contiguous volume has row = sx and plane = sx * sy; a chunk
// that is a view into a larger array (a Zarr block of the caller's volume) has the strides of that
// array, so it is encoded in place rather than copied first.
struct VolumeStrides {
  uint64_t row = 0;
  uint64_t plane = 0;
};

// `data` holds sx*sy*sz elements of `itemsize` bytes, x fastest, laid out as `strides` say.
std::vector<uint8_t> compress(const void* data, int itemsize, bool is_signed, uint32_t sx, uint32_t sy, uint32_t sz,
                              const VolumeStrides& strides, const EncodeOptions& options);

// A stream whose header, layout, index CRC and labels structure have been checked.
struct StreamInfo {
  const uint8_t* data = nullptr;
  uint64_t size = 0;
  Header header;
  Layout layout;
  LabelsSection labels;

  static StreamInfo open(const uint8_t* data, uint64_t size);
};

// Decodes slices [z0, z1) into `out`: sx*sy*(z1-z0) elements of data_width bytes laid out in
// the header's order (F: x fastest; C: the same logical array in C order). `out == nullptr`
// decodes and checks without writing (verify). Checks the labels CRC and each decoded slice's CRC.
void decode(const StreamInfo& s, uint32_t z0, uint32_t z1, void* out, int threads);

// Checks the BOC length and the BOC index of slices [z0, z1): O(their bytes), no allocation by
// the slice size. Callers run it before allocating an output sized by the header.
void check_slice_codes(const StreamInfo& s, uint32_t z0, uint32_t z1);

// Raises DecodeError unless the labels CRC matches (no-op for streams without CRCs).
void check_labels_crc(const StreamInfo& s);

// A copy of the stream with its labels section replaced by `section` (values stored in
// `stored_width` bytes), the U/M bits set as given, and the header CRC8 and labels CRC redone.
std::vector<uint8_t> replace_labels(const StreamInfo& s, const uint8_t* section, uint64_t section_size,
                                    int stored_width, bool unsorted, bool remapped);

}  // namespace crackle
