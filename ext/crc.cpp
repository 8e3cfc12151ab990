#include "crc.hpp"

#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define CRACKLE_CRC_X86 1
#elif defined(__aarch64__) && defined(__linux__)
#include <arm_acle.h>
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#define CRACKLE_CRC_ARM 1
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

#if CRACKLE_CRC_X86
__attribute__((target("sse4.2"))) uint32_t crc32c_sse42(const uint8_t* p, size_t n, uint32_t c) {
#if defined(__x86_64__)
  uint64_t c64 = c;
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
#elif CRACKLE_CRC_ARM
__attribute__((target("+crc"))) uint32_t crc32c_armv8(const uint8_t* p, size_t n, uint32_t c) {
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = __crc32cd(c, word);
    p += 8;
    n -= 8;
  }
  while (n--) c = __crc32cb(c, *p++);
  return c;
}
bool have_hw() { return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0; }
#else
bool have_hw() { return false; }
#endif

using Crc32cFn = uint32_t (*)(const uint8_t*, size_t, uint32_t);

Crc32cFn pick() {
#if CRACKLE_CRC_X86
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
  if (impl == crc32c_sse42) return "sse4.2";
#elif CRACKLE_CRC_ARM
  if (impl == crc32c_armv8) return "armv8-crc";
#endif
  return "portable";
}

}  // namespace crackle
