// Slice-by-slice access to a stream's labelled components, the building block of the queries
// that answer without decoding the whole volume (label_geometry.hpp): decode one slice's crack
// code into runs, and tell which label (an index into the labels section) each component has.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "ccl.hpp"
#include "codec.hpp"
#include "crack_codes.hpp"
#include "crc.hpp"
#include "markov.hpp"
#include "pins.hpp"

namespace crackle {

// Per-thread buffers for decoding one slice at a time.
struct SliceScratch {
  CrackBits bits;
  SliceRuns runs;
  std::vector<uint32_t> ids;
  std::vector<int64_t> stack;
  std::vector<uint8_t> crc_bytes;
  std::unique_ptr<RunCrc32c> run_crc;  // built on first use, for the stream's slice shape
};

// Decodes slice z's crack code into sc.runs and checks its component count; with `check_crc`
// also its CRC32C (decoder.cpp).
void decode_slice_runs(const StreamInfo& s, const MarkovModel& model, uint32_t z, SliceScratch& sc, bool check_crc);

// A stream opened for per-slice queries. Label indices: FLAT, the key (0..num_unique-1);
// PINS, the record (0..num_unique-1) and num_unique for the background.
class SliceLabeler {
 public:
  // Checks the labels CRC (with `verify`) and reads the markov model and the pins.
  SliceLabeler(const StreamInfo& s, bool verify);

  const StreamInfo& stream() const { return s_; }
  uint64_t num_indices() const { return s_.labels.num_unique + (pins_ ? 1 : 0); }
  // The stored (not sign-extended) value of label index k.
  uint64_t stored_value(uint64_t k) const {
    return k == s_.labels.num_unique ? s_.labels.bgcolor : s_.labels.unique_value(s_.data, k);
  }

  // Decodes slice z; then runs() and index_of() describe it.
  void label(uint32_t z);
  const SliceRuns& runs() const { return sc_.runs; }
  // Label index of each component of the last labelled slice.
  const std::vector<uint32_t>& index_of() const { return index_; }

  // Per slice: may label index k be in it? Exact for FLAT; for PINS, a superset made from the
  // pins and component lists (the background: every slice).
  std::vector<uint8_t> slices_holding(uint64_t k) const;
  // Exact per-slice check without decoding, FLAT only: the label indices of slices [z0, z1).
  bool flat() const { return !pins_; }

 private:
  const StreamInfo& s_;
  bool verify_;
  bool pins_;
  MarkovModel model_;
  SliceScratch sc_;
  std::vector<uint32_t> index_;
  PinsData pin_data_;
  std::vector<uint32_t> record_of_;  // PINS: global component -> record (background if listed nowhere)
  std::vector<uint64_t> pin_start_;  // PINS: slice z's pins are pin_list_[pin_start_[z] .. pin_start_[z+1])
  std::vector<uint32_t> pin_list_;
};

}  // namespace crackle
