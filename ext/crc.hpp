// CRC8 (header) and CRC32C (index, labels, per-slice CCL), as FORMAT.md section 0 defines them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace crackle {

// Polynomial 0xE7, init 0xFF, no final XOR. crc8("123456789") == 0x51.
uint8_t crc8(const uint8_t* data, size_t size);

// CRC-32/Castagnoli; pass the previous result as `crc` to continue a running checksum.
// crc32c("123456789") == 0xE3069283. Uses SSE4.2 or ARMv8 CRC instructions when the CPU has them.
uint32_t crc32c(const uint8_t* data, size_t size, uint32_t crc = 0);

// Which implementation crc32c runs on this machine: "sse4.2", "armv8-crc" or "portable".
const char* crc32c_implementation();

// CRC-32C of a slice's component ids (4-byte little-endian words, row after row) computed from
// its runs, without writing the ids out. CRC arithmetic is linear: a run of equal words w over
// [a, b) of a row of n words adds crc(w) * (x^(32(n-a)) - x^(32(n-b))) / (x^32 - 1) to the
// row's remainder, and the two shift weights come from one table over positions. With a
// carry-less multiply the products of a row are summed unreduced and reduced once, so a run
// costs a handful of instructions however long it is, instead of 4 bytes of stores and CRC per
// word. Needs the CRC and carry-less multiply instructions (`available()`); without them
// callers write the ids and use crc32c.
class RunCrc32c {
 public:
  static bool available();
  // The longest row the tables are built for (4 bytes of table per word of row).
  static constexpr uint32_t kMaxRowWords = 1u << 16;

  // Tables for messages of `rows` rows of `row_words` words; row_words <= kMaxRowWords.
  RunCrc32c(uint32_t row_words, uint64_t rows);

  // The CRC-32C of the `rows` rows: row y holds words value[r] over [start[r], start[r + 1]) for
  // r in [row_first[y], row_first[y + 1] - 1); the runs tile [0, row_words) in order, and each
  // row's last start entry is row_words, a sentinel (the layout of SliceRuns, ccl.hpp).
  uint32_t of_rows(const uint32_t* start, const uint32_t* row_first, const uint32_t* value) const;

 private:
  uint32_t row_words_;
  uint64_t rows_;
  std::vector<uint32_t> weight_;  // weight_[m]: (x^(32m) - 1) / (x^32 - 1), pre-scaled by x^-33
  uint32_t row_shift_;            // x^(32 row_words), pre-scaled by x^-33
  uint32_t init_term_;            // what the all-ones initial register adds after all the rows
};

}  // namespace crackle
