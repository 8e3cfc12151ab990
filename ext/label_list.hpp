// A stream's list of label values (FORMAT 5: the PINS background and the unique list) for the
// label queries (labels, contains, min, max ...), read after the structure and the labels CRC
// are checked, in typed loops straight into the answer.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "codec.hpp"
#include "crc.hpp"

namespace crackle {

// A volume value as its dtype holds it: the stored bits, sign-extended from the stored width when
// the volume asks for it (signed, with two distinct values or more: a single-label volume
// zero-extends, FORMAT 10.6), then wrapped to the data width as numpy's astype wraps.
inline uint64_t volume_value(uint64_t stored, int stored_width, int data_width, bool is_signed, bool sign_extend) {
  auto extend = [](uint64_t v, int width) {
    if (width >= 8) return v;
    const uint64_t sign = uint64_t{1} << (8 * width - 1);
    v &= (sign << 1) - 1;
    return (v ^ sign) - sign;
  };
  const uint64_t v = sign_extend ? extend(stored, stored_width) : stored;
  if (is_signed) return extend(v, data_width);
  return data_width >= 8 ? v : v & ((uint64_t{1} << (8 * data_width)) - 1);
}

struct LabelList {
  Header header;
  const uint8_t* unique = nullptr;  // the unique list
  uint64_t num_unique = 0;
  bool pins = false;
  uint64_t bgcolor = 0;

  // Entries: the PINS background first, then the unique list (none for an empty volume).
  uint64_t count() const { return num_unique + (pins ? 1 : 0); }

  // Checks the stream's structure (header, layout, the whole labels section: what every entry
  // point refuses alike) and the labels CRC, then points at the list.
  static LabelList open(const uint8_t* data, uint64_t size) {
    const StreamInfo s = StreamInfo::open(data, size);
    check_labels_crc(s);
    LabelList out;
    out.header = s.header;
    if (s.header.voxels() == 0) return out;
    out.pins = s.labels.format == kPins;
    out.bgcolor = s.labels.bgcolor;
    out.num_unique = s.labels.num_unique;
    out.unique = data + s.labels.unique_offset;
    return out;
  }

  // Writes the distinct volume values, sorted, to out (room for count() values of T, the
  // volume's dtype); returns how many there are.
  template <typename T>
  uint64_t distinct_values(T* out) const {
    if (count() == 0) return 0;  // an empty volume: no list to read
    switch (header.stored_width) {  // a loop per stored width: no byte-by-byte loads
      case 1: return distinct_values_as<uint8_t>(out);
      case 2: return distinct_values_as<uint16_t>(out);
      case 4: return distinct_values_as<uint32_t>(out);
      default: return distinct_values_as<uint64_t>(out);
    }
  }

 private:
  template <typename S>
  S stored_as(uint64_t i) const {
    if (!host_is_little_endian()) return static_cast<S>(load_le(unique + i * sizeof(S), sizeof(S)));
    S v;
    std::memcpy(&v, unique + i * sizeof(S), sizeof(S));
    return v;
  }

  // S: the stored width's unsigned type. Casting to T wraps to the data width as numpy's astype.
  template <typename S, typename T>
  uint64_t distinct_values_as(T* out) const {
    using Signed = typename std::make_signed<S>::type;
    const S bg = static_cast<S>(bgcolor);
    const S first = pins ? bg : stored_as<S>(0);
    bool one_value = true;
    for (uint64_t i = 0; i < num_unique; i++) one_value &= stored_as<S>(i) == first;
    const bool sign_extend = header.is_signed && !one_value;  // a single-label volume zero-extends
    auto value = [sign_extend](S v) { return sign_extend ? static_cast<T>(static_cast<Signed>(v)) : static_cast<T>(v); };
    T* at = out;
    if (pins) *at++ = value(bg);
    bool increasing = true;
    for (uint64_t i = 0; i < num_unique; i++) {
      const T v = value(stored_as<S>(i));
      increasing &= at == out || at[-1] < v;
      *at++ = v;
    }
    const uint64_t n = count();
    if (increasing) return n;
    std::sort(out, out + n);
    return static_cast<uint64_t>(std::unique(out, out + n) - out);
  }
};

// LabelList::distinct_values into `out`, an array of the volume's dtype (data width, signedness).
inline uint64_t distinct_label_values(const LabelList& list, void* out) {
  const bool s = list.header.is_signed;
  switch (list.header.data_width) {
    case 1: return s ? list.distinct_values(static_cast<int8_t*>(out)) : list.distinct_values(static_cast<uint8_t*>(out));
    case 2: return s ? list.distinct_values(static_cast<int16_t*>(out)) : list.distinct_values(static_cast<uint16_t*>(out));
    case 4: return s ? list.distinct_values(static_cast<int32_t*>(out)) : list.distinct_values(static_cast<uint32_t*>(out));
    default: return s ? list.distinct_values(static_cast<int64_t*>(out)) : list.distinct_values(static_cast<uint64_t*>(out));
  }
}

}  // namespace crackle
