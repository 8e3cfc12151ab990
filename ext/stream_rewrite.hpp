// Rewriting a stream around a new labels section and header format (remap, mask, astype, refit,
// the order flags, ...). The crack index, markov model, crack codes and slice CRCs are copied byte
// for byte; the header (with its CRC8) and the labels CRC are written anew.
#pragma once

#include <cstdint>
#include <cstring>

#include "codec.hpp"

namespace crackle {

struct FormatChange {
  int data_width = 1;
  int stored_width = 1;
  bool is_signed = false;
  bool fortran = false;
  bool unsorted = false;
  bool remapped = false;
};

inline Header changed_header(const StreamInfo& s, uint64_t section_size, const FormatChange& f) {
  Header h = s.header;
  h.data_width = f.data_width;
  h.stored_width = f.stored_width;
  h.is_signed = f.is_signed;
  h.fortran = f.fortran;
  h.unsorted = f.unsorted;
  h.remapped = f.remapped;
  h.num_label_bytes = s.header.voxels() == 0 ? 0 : section_size;
  if (h.version == 0 && h.num_label_bytes > 0xFFFFFFFFull) throw EncodeError("labels section too large for a version-0 stream");
  return h;
}

// The new labels section is `head` followed by the input's bytes [keep_offset, keep_offset +
// keep_size) (absolute offsets inside its labels section): a rewrite of the label values keeps the
// component counts and keys as they are, without a copy in between.
struct NewSection {
  const uint8_t* head = nullptr;
  uint64_t head_size = 0;
  uint64_t keep_offset = 0;
  uint64_t keep_size = 0;

  uint64_t size() const { return head_size + keep_size; }
};

inline void check_kept_range(const StreamInfo& s, const NewSection& n) {
  const uint64_t lo = s.layout.labels_offset, hi = lo + s.header.num_label_bytes;
  if (n.keep_size && (n.keep_offset < lo || n.keep_offset > hi || n.keep_size > hi - n.keep_offset)) {
    throw EncodeError("internal: the kept range lies outside the labels section");
  }
}

// Size of the rewritten stream.
inline uint64_t rewritten_size(const StreamInfo& s, const NewSection& n, const FormatChange& f) {
  check_kept_range(s, n);
  const Header h = changed_header(s, n.size(), f);
  if (s.header.voxels() == 0) return h.header_bytes();
  const Layout& L = s.layout;
  return h.header_bytes() + L.index_bytes + h.num_label_bytes + (L.trailer_offset - L.model_offset) + L.trailer_bytes;
}

// Writes the rewritten stream to `out` (rewritten_size bytes). `out` may be the input buffer
// itself when the sizes agree (in-place rewrite): every part then stays where it is, and is
// moved with memmove.
inline void rewrite_stream(const StreamInfo& s, const NewSection& n, const FormatChange& f, uint8_t* out) {
  check_kept_range(s, n);
  const Header h = changed_header(s, n.size(), f);
  const Layout& L = s.layout;
  const uint64_t H = h.header_bytes();
  if (s.header.voxels() == 0) {
    h.write(out);
    return;
  }
  // The CRC first: in place, the kept bytes are read where they will stay.
  const uint32_t labels_crc = crc32c(s.data + n.keep_offset, n.keep_size, crc32c(n.head, n.head_size));
  uint8_t* at = out + H;
  std::memmove(at, s.data + L.index_offset, L.index_bytes);
  at += L.index_bytes;
  if (n.head_size) std::memmove(at, n.head, n.head_size);
  at += n.head_size;
  if (n.keep_size) std::memmove(at, s.data + n.keep_offset, n.keep_size);
  at += n.keep_size;
  const uint64_t body = L.trailer_offset - L.model_offset;  // model and crack codes, unchanged
  if (body) std::memmove(at, s.data + L.model_offset, body);
  at += body;
  if (L.has_crcs) {
    std::memmove(at + 4, s.data + L.trailer_offset + 4, L.trailer_bytes - 4);
    store_le(at, labels_crc, 4);
  }
  h.write(out);
}

}  // namespace crackle
