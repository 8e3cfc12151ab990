// CRC8 (header) and CRC32C (index, labels, per-slice CCL), as FORMAT.md section 0 defines them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#include <wmmintrin.h>
#endif

namespace crackle {

// Polynomial 0xE7, init 0xFF, no final XOR. crc8("123456789") == 0x51.
uint8_t crc8(const uint8_t* data, size_t size);

// CRC-32/Castagnoli; pass the previous result as `crc` to continue a running checksum.
// crc32c("123456789") == 0xE3069283. Uses SSE4.2 or ARMv8 CRC instructions when the CPU has them.
uint32_t crc32c(const uint8_t* data, size_t size, uint32_t crc = 0);

// Which implementation crc32c runs on this machine: "avx512-vpclmulqdq", "sse4.2", "armv8-crc" or
// "portable".
const char* crc32c_implementation();

// CRC-32C of a slice's component ids (4-byte little-endian words, row after row) computed from
// its runs, without writing the ids out. CRC arithmetic is linear: a run of equal words w over
// [a, b) of a row of n words adds w * x^32 * (W(a) - W(b)) to the row's remainder, where
// W(a) = (x^(32(n-a)) - 1) / (x^32 - 1) is the weight of the words from a to the row's end.
// Summed over a row's runs that telescopes to one term per run, (w_r - w_{r-1}) * W(a_r) (w_{-1}
// = 0, W(n) = 0), the weights coming from one table over positions (pre-multiplied by x^32). With
// a carry-less multiply the products of a row are summed unreduced and reduced once, so a run
// costs one multiply however long it is, instead of 4 bytes of stores and CRC per word. Needs
// the CRC and carry-less multiply instructions (`available()`); without them
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

  // The pieces of of_rows, for a caller that folds the CRC into its own pass over the rows
  // (slice_writer.cpp): state = run_crc_row(state, ..., weight_top(), row_shift()) for each
  // row in order from 0, then finish(state).
  const uint32_t* weight_top() const { return weight_.data() + row_words_; }
  uint32_t row_shift() const { return row_shift_; }
  uint32_t finish(uint32_t state) const { return ~(state ^ init_term_); }

 private:
  uint32_t row_words_;
  uint64_t rows_;
  std::vector<uint32_t> weight_;  // weight_[m]: x^32 (x^(32m) - 1) / (x^32 - 1), pre-scaled by x^-33
  uint32_t row_shift_;            // x^(32 row_words), pre-scaled by x^-33
  uint32_t init_term_;            // what the all-ones initial register adds after all the rows
};

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CRACKLE_RUN_CRC_X86 1

// A 63-bit carry-less product of reflected 32-bit values a and b is x*a*b as a 64-bit reflected
// polynomial; the CRC instruction multiplies its operand by x^32 and reduces: x^33*a*b mod P.
__attribute__((target("sse4.2,pclmul"))) inline uint64_t clmul32(uint32_t a, uint32_t b) {
  const __m128i p = _mm_clmulepi64_si128(_mm_cvtsi32_si128(static_cast<int>(a)), _mm_cvtsi32_si128(static_cast<int>(b)), 0);
  return static_cast<uint64_t>(_mm_cvtsi128_si64(p));
}

// One row of RunCrc32c::of_rows: runs [r, end) of the row, start[end] its sentinel. The
// products of a row are summed unreduced and reduced once. A sum congruent mod P reduces to the
// same state, which is what lets the vector form (slice_writer.cpp) share the state.
__attribute__((target("sse4.2,pclmul"))) inline uint32_t run_crc_row(uint32_t state, const uint32_t* start, uint32_t r,
                                                                    uint32_t end, const uint32_t* value,
                                                                    const uint32_t* top, uint32_t row_shift) {
  uint64_t sum = clmul32(state, row_shift);
  uint32_t before = 0;
  for (; r < end; r++) {
    const uint32_t v = value[r];
    sum ^= clmul32(v ^ before, *(top - start[r]));  // top[-a]: W(a), the weight of the last n - a words
    before = v;
  }
  return static_cast<uint32_t>(_mm_crc32_u64(0, sum));
}
#endif

}  // namespace crackle
