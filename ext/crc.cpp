#include "crc.hpp"

#include "common.hpp"

#include <array>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <nmmintrin.h>
#include <wmmintrin.h>
#define CRACKLE_CRC_X86 1
#elif defined(__aarch64__) && defined(__linux__)
#include <arm_acle.h>
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#define CRACKLE_CRC_ARM 1
// Clang's arm_acle.h declares the CRC intrinsics only when the whole file is compiled for CRC
// (__ARM_FEATURE_CRC32); its builtins work in a function that targets it, as GCC's intrinsics do.
#if defined(__clang__) && !defined(__ARM_FEATURE_CRC32)
#define CRACKLE_CRC32CD __builtin_arm_crc32cd
#define CRACKLE_CRC32CB __builtin_arm_crc32cb
#else
#define CRACKLE_CRC32CD __crc32cd
#define CRACKLE_CRC32CB __crc32cb
#endif
#endif

namespace crackle {

uint8_t crc8(const uint8_t* data, size_t size) {
  uint8_t crc = 0xFF;
  for (size_t i = 0; i < size; i++) {
    crc ^= data[i];
    for (int k = 0; k < 8; k++) crc = (crc & 1) ? static_cast<uint8_t>((crc >> 1) ^ 0xE7) : static_cast<uint8_t>(crc >> 1);
  }
  return crc;
}

namespace {

// Slicing-by-8 tables for the portable path.
struct Crc32cTables {
  uint32_t t[8][256];
  Crc32cTables() {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
      for (int s = 1; s < 8; s++) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
    }
  }
};

const Crc32cTables& tables() {
  static const Crc32cTables instance;
  return instance;
}

uint32_t crc32c_portable(const uint8_t* p, size_t n, uint32_t c) {
  const auto& t = tables().t;
  while (n >= 8) {
    const uint32_t lo = c ^ (uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24);
    c = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^ t[3][p[4]] ^
        t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n--) c = (c >> 8) ^ t[0][(c ^ *p++) & 0xFF];
  return c;
}

// Combining CRCs of adjacent blocks: appending n zero bytes to a CRC state multiplies it by
// x^(8n) modulo the polynomial. This lets the hardware paths run three independent CRC chains
// at once (the crc32 instruction has a latency of three cycles but a throughput of one).
uint32_t multiply_mod_p(uint32_t a, uint32_t b) {
  uint32_t m = 1u << 31, product = 0;
  for (;;) {
    if (a & m) {
      product ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    m >>= 1;
    b = (b & 1) ? (b >> 1) ^ 0x82F63B78u : b >> 1;
  }
  return product;
}

// x^(8n) mod P, by squaring.
uint32_t x_pow_8n(uint64_t n) {
  static const auto powers = [] {
    std::array<uint32_t, 64> t{};
    t[0] = 1u << 30;  // x^1 in the reflected representation
    for (int k = 1; k < 64; k++) t[k] = multiply_mod_p(t[k - 1], t[k - 1]);
    return t;
  }();
  uint32_t p = 1u << 31;  // x^0
  for (int k = 3; n; n >>= 1, k++) {
    if (n & 1) p = multiply_mod_p(powers[k & 63], p);
  }
  return p;
}

// Blocks below this size are not worth the combination cost.
constexpr size_t kInterleaveBlock = 1024;

// The shift for one block length, cached: every slice of a volume has the same size.
uint32_t block_shift(size_t block) {
  thread_local size_t cached_block = 0;
  thread_local uint32_t cached_shift = 0;
  if (block != cached_block) {
    cached_shift = x_pow_8n(block);
    cached_block = block;
  }
  return cached_shift;
}

#if CRACKLE_CRC_X86
__attribute__((target("sse4.2"))) uint32_t crc32c_sse42(const uint8_t* p, size_t n, uint32_t c) {
#if defined(__x86_64__)
  uint64_t c64 = c;
  if (n >= 3 * kInterleaveBlock) {
    const size_t block = (n / 3) & ~size_t(7);
    uint64_t c1 = 0, c2 = 0;
    const uint8_t* p1 = p + block;
    const uint8_t* p2 = p1 + block;
    for (size_t i = 0; i < block; i += 8) {
      uint64_t w0, w1, w2;
      std::memcpy(&w0, p + i, 8);
      std::memcpy(&w1, p1 + i, 8);
      std::memcpy(&w2, p2 + i, 8);
      c64 = _mm_crc32_u64(c64, w0);
      c1 = _mm_crc32_u64(c1, w1);
      c2 = _mm_crc32_u64(c2, w2);
    }
    const uint32_t k = block_shift(block);
    c64 = multiply_mod_p(k, multiply_mod_p(k, static_cast<uint32_t>(c64)) ^ static_cast<uint32_t>(c1)) ^
          static_cast<uint32_t>(c2);
    p += 3 * block;
    n -= 3 * block;
  }
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c64 = _mm_crc32_u64(c64, word);
    p += 8;
    n -= 8;
  }
  c = static_cast<uint32_t>(c64);
#endif
  while (n--) c = _mm_crc32_u8(c, *p++);
  return c;
}
bool have_hw() { return __builtin_cpu_supports("sse4.2"); }

// With AVX-512 carry-less multiplies, 256 bytes at a time are folded into four 512-bit
// accumulators (16 lanes of 128 bits, each standing 256 bytes before the next block it absorbs):
// lane' = lo64(lane) * k_lo + hi64(lane) * k_hi + next block, where k_lo = x^(8*256+31) and
// k_hi = x^(8*256-33) mod P (reflected; the multiply's product is shifted by one place).
// The accumulators are then a 256-byte message with the remainder of everything folded so far,
// which the CRC instruction finishes from a zero register. 2-3x the CRC instruction's
// throughput: the labels CRC every label query checks costs a few microseconds.
constexpr uint64_t kFold256Lo = 0xDCB17AA4u;
constexpr uint64_t kFold256Hi = 0xB9E02B86u;

__attribute__((target("avx512f,vpclmulqdq,sse4.2"))) uint32_t crc32c_avx512(const uint8_t* p, size_t n, uint32_t c) {
  if (n < 512) return crc32c_sse42(p, n, c);
  const __m512i k = _mm512_set_epi64(kFold256Hi, kFold256Lo, kFold256Hi, kFold256Lo, kFold256Hi, kFold256Lo,
                                     kFold256Hi, kFold256Lo);
  __m512i x0 = _mm512_xor_si512(_mm512_loadu_si512(p), _mm512_zextsi128_si512(_mm_cvtsi32_si128(static_cast<int>(c))));
  __m512i x1 = _mm512_loadu_si512(p + 64), x2 = _mm512_loadu_si512(p + 128), x3 = _mm512_loadu_si512(p + 192);
  p += 256;
  n -= 256;
#define CRACKLE_FOLD256(x, q)                                                                                 \
  _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00), _mm512_clmulepi64_epi128(x, k, 0x11), \
                            _mm512_loadu_si512(q), 0x96)
  for (; n >= 256; p += 256, n -= 256) {
    x0 = CRACKLE_FOLD256(x0, p);
    x1 = CRACKLE_FOLD256(x1, p + 64);
    x2 = CRACKLE_FOLD256(x2, p + 128);
    x3 = CRACKLE_FOLD256(x3, p + 192);
  }
#undef CRACKLE_FOLD256
  alignas(64) uint8_t folded[256];
  _mm512_store_si512(folded, x0);
  _mm512_store_si512(folded + 64, x1);
  _mm512_store_si512(folded + 128, x2);
  _mm512_store_si512(folded + 192, x3);
  return crc32c_sse42(p, n, crc32c_sse42(folded, sizeof folded, 0));
}
bool have_avx512_clmul() {
  return avx512_paths_allowed() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("vpclmulqdq");
}
#elif CRACKLE_CRC_ARM
__attribute__((target("+crc"))) uint32_t crc32c_armv8(const uint8_t* p, size_t n, uint32_t c) {
  if (n >= 3 * kInterleaveBlock) {
    const size_t block = (n / 3) & ~size_t(7);
    uint32_t c1 = 0, c2 = 0;
    const uint8_t* p1 = p + block;
    const uint8_t* p2 = p1 + block;
    for (size_t i = 0; i < block; i += 8) {
      uint64_t w0, w1, w2;
      std::memcpy(&w0, p + i, 8);
      std::memcpy(&w1, p1 + i, 8);
      std::memcpy(&w2, p2 + i, 8);
      c = CRACKLE_CRC32CD(c, w0);
      c1 = CRACKLE_CRC32CD(c1, w1);
      c2 = CRACKLE_CRC32CD(c2, w2);
    }
    const uint32_t k = block_shift(block);
    c = multiply_mod_p(k, multiply_mod_p(k, c) ^ c1) ^ c2;
    p += 3 * block;
    n -= 3 * block;
  }
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = CRACKLE_CRC32CD(c, word);
    p += 8;
    n -= 8;
  }
  while (n--) c = CRACKLE_CRC32CB(c, *p++);
  return c;
}
bool have_hw() { return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0; }
#else
bool have_hw() { return false; }
#endif

using Crc32cFn = uint32_t (*)(const uint8_t*, size_t, uint32_t);

Crc32cFn pick() {
  if (!hardware_paths_allowed()) return crc32c_portable;
#if CRACKLE_CRC_X86
  if (have_hw() && have_avx512_clmul()) return crc32c_avx512;
  if (have_hw()) return crc32c_sse42;
#elif CRACKLE_CRC_ARM
  if (have_hw()) return crc32c_armv8;
#endif
  return crc32c_portable;
}

const Crc32cFn impl = pick();

}  // namespace

uint32_t crc32c(const uint8_t* data, size_t size, uint32_t crc) {
  return ~impl(data, size, ~crc);
}

const char* crc32c_implementation() {
#if CRACKLE_CRC_X86
  if (impl == crc32c_avx512) return "avx512-vpclmulqdq";
  if (impl == crc32c_sse42) return "sse4.2";
#elif CRACKLE_CRC_ARM
  if (impl == crc32c_armv8) return "armv8-crc";
#endif
  return "portable";
}

namespace {

// The hardware multiply returns a*b*x^33 mod P (see RunCrc32c::RunCrc32c), so the constants it
// multiplies by are stored times x^-33. x^-1 is (P - 1) / x: in the reflected representation,
// the polynomial's low 31 coefficients shifted up one, plus x^31.
uint32_t x_pow_minus_33() {
  const uint32_t x_inv = ((0x82F63B78u << 1) | 1u);
  uint32_t r = 1u << 31;  // x^0
  for (int k = 0; k < 33; k++) r = multiply_mod_p(r, x_inv);
  return r;
}

#if CRACKLE_RUN_CRC_X86
__attribute__((target("sse4.2,pclmul"))) uint32_t of_rows_x86(const uint32_t* start, const uint32_t* row_first,
                                                             const uint32_t* value, uint64_t rows,
                                                             const uint32_t* top, uint32_t row_shift) {
  uint32_t state = 0;
  for (uint64_t y = 0; y < rows; y++) state = run_crc_row(state, start, row_first[y], row_first[y + 1] - 1, value, top, row_shift);
  return state;
}

bool have_clmul() { return __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul"); }
#else
bool have_clmul() { return false; }
#endif

}  // namespace

bool RunCrc32c::available() {
  static const bool yes = hardware_paths_allowed() && have_clmul();
  return yes;
}

RunCrc32c::RunCrc32c(uint32_t row_words, uint64_t rows) : row_words_(row_words), rows_(rows) {
  if (row_words > kMaxRowWords) row_words_ = 0;  // callers check; an empty table fails safe
  const uint32_t scale = x_pow_minus_33();
  const uint32_t x32 = x_pow_8n(4);
  weight_.assign(static_cast<size_t>(row_words_) + 1, 0);
  const uint32_t run_scale = multiply_mod_p(scale, x32);  // x^32: the CRC of a run's word
  uint32_t power = 1u << 31;  // x^(32m)
  for (uint32_t m = 0; m < row_words_; m++) {
    weight_[m + 1] = weight_[m] ^ multiply_mod_p(power, run_scale);
    power = multiply_mod_p(power, x32);
  }
  row_shift_ = multiply_mod_p(power, scale);
  init_term_ = multiply_mod_p(0xFFFFFFFFu, x_pow_8n(4 * static_cast<uint64_t>(row_words_) * rows));
}

uint32_t RunCrc32c::of_rows(const uint32_t* start, const uint32_t* row_first, const uint32_t* value) const {
#if CRACKLE_RUN_CRC_X86
  return finish(of_rows_x86(start, row_first, value, rows_, weight_top(), row_shift_));
#else
  // Not reached: available() is false. Kept total so a misuse is a wrong CRC, not a crash.
  (void)start, (void)row_first, (void)value, (void)rows_;
  return 0;
#endif
}

}  // namespace crackle
