// CRC8 (header) and CRC32C (index, labels, per-slice CCL), as FORMAT.md section 0 defines them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace crackle {

// Polynomial 0xE7, init 0xFF, no final XOR. crc8("123456789") == 0x51.
uint8_t crc8(const uint8_t* data, size_t size);

// CRC-32/Castagnoli; pass the previous result as `crc` to continue a running checksum.
// crc32c("123456789") == 0xE3069283. Uses SSE4.2 or ARMv8 CRC instructions when the CPU has them.
uint32_t crc32c(const uint8_t* data, size_t size, uint32_t crc = 0);

// Which implementation crc32c runs on this machine: "sse4.2", "armv8-crc" or "portable".
const char* crc32c_implementation();

}  // namespace crackle
