// Writing a decoded slice (slice_writer.hpp).
//
// A slice of 128 x 128 four-byte labels has about 8 runs a row. Filling run by run costs a few
// block stores per run whatever its length, about 14 cycles a run. With AVX-512 a row is
// written 64 bytes at a time instead: the run starts among those 16 (or 8) pixels, counted
// per lane with a popcount, index a permute of the run values, so each vector costs the same
// few instructions however many runs it holds. CPUs without AVX-512 (and CRACKLE_PORTABLE=1 or
// CRACKLE_NO_AVX512=1) fill run by run.
#include "slice_writer.hpp"

#include <cstring>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define CRACKLE_X86_AVX512_WRITER 1
#include <immintrin.h>
#endif

namespace crackle {

namespace {

template <typename T>
void write_slice_by_runs(const SliceRuns& runs, uint32_t sx, uint32_t sy, const T* run_values, T* dst) {
  const uint64_t sxy = static_cast<uint64_t>(sx) * sy;
  const uint32_t* start = runs.start.data();
  for (uint32_t y = 0; y < sy; y++) {
    const uint32_t r_end = runs.row_first[y + 1] - 1;  // the row's sentinel
    const uint64_t row = static_cast<uint64_t>(y) * sx;
    const uint64_t room = sxy - row;
    for (uint32_t r = runs.row_first[y]; r < r_end; r++) {
      const uint32_t a = start[r];
      // Overshoot is rewritten by the runs after it; only the slice's end is filled exactly.
      fill_run(dst + row + a, start[r + 1] - a, run_values[r], room - a);
    }
  }
}

#if CRACKLE_X86_AVX512_WRITER

bool avx512_writer_available() {
  static const bool ok = avx512_paths_allowed() && __builtin_cpu_supports("avx512f") &&
                         __builtin_cpu_supports("avx512vpopcntdq");
  return ok;
}

#define CRACKLE_AVX512 __attribute__((target("avx512f,avx512vpopcntdq")))

CRACKLE_AVX512 inline __m512i vector_at(const uint64_t* bits, uint32_t x, uint32_t& before, const uint32_t* run_values,
                                        __m512i lane_prefix) {
  const uint32_t m = static_cast<uint32_t>(bits[x >> 6] >> (x & 63)) & 0xFFFF;
  const uint32_t covering = before + (m & 1);
  before += static_cast<uint32_t>(__builtin_popcount(m));
  const __m512i idx = _mm512_popcnt_epi32(_mm512_and_si512(_mm512_set1_epi32(static_cast<int>(m & ~1u)), lane_prefix));
  return _mm512_maskz_permutexvar_epi32(0xFFFF, idx, _mm512_loadu_si512(run_values + covering));
}

CRACKLE_AVX512 inline __m512i vector_at(const uint64_t* bits, uint32_t x, uint32_t& before, const uint64_t* run_values,
                                        __m512i lane_prefix) {
  const uint32_t m = static_cast<uint32_t>(bits[x >> 6] >> (x & 63)) & 0xFF;
  const uint32_t covering = before + (m & 1);
  before += static_cast<uint32_t>(__builtin_popcount(m));
  const __m512i idx = _mm512_popcnt_epi64(_mm512_and_si512(_mm512_set1_epi64(static_cast<long long>(m & ~1u)), lane_prefix));
  return _mm512_maskz_permutexvar_epi64(0xFF, idx, _mm512_loadu_si512(run_values + covering));
}

// Row y's run covering pixel x0 is `before + (bit x0 set)`, `before` being the row's first run
// index minus one plus the starts left of x0. Lane l adds the starts in (x0, x0 + l]: the
// broadcast start bits, masked per lane, popcounted. That index selects among the 16 run values
// from the covering run on, which are always enough: 16 pixels hold at most 16 runs.
CRACKLE_AVX512 void write_slice_avx512(const SliceRuns& runs, uint32_t sx,
                                                                            uint32_t sy, const uint32_t* run_values,
                                                                            uint32_t* dst) {
  const uint64_t words = (static_cast<uint64_t>(sx) + 63) / 64;
  const __m512i lane_prefix = _mm512_setr_epi32(0x1, 0x3, 0x7, 0xF, 0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF,
                                                0x1FFF, 0x3FFF, 0x7FFF, 0xFFFF);
  const uint32_t full_end = sx & ~15u;
  const __mmask16 tail = static_cast<__mmask16>((1u << (sx & 15)) - 1);
  for (uint32_t y = 0; y < sy; y++) {
    const uint64_t* bits = runs.start_bits.data() + y * words;
    uint32_t* out = dst + static_cast<uint64_t>(y) * sx;
    uint32_t before = runs.row_first[y] - 1;
    uint32_t x0 = 0;
    for (; x0 < full_end; x0 += 16) _mm512_storeu_si512(out + x0, vector_at(bits, x0, before, run_values, lane_prefix));
    if (tail) _mm512_mask_storeu_epi32(out + x0, tail, vector_at(bits, x0, before, run_values, lane_prefix));
  }
}

CRACKLE_AVX512 void write_slice_avx512(const SliceRuns& runs, uint32_t sx,
                                                                            uint32_t sy, const uint64_t* run_values,
                                                                            uint64_t* dst) {
  const uint64_t words = (static_cast<uint64_t>(sx) + 63) / 64;
  const __m512i lane_prefix = _mm512_setr_epi64(0x1, 0x3, 0x7, 0xF, 0x1F, 0x3F, 0x7F, 0xFF);
  const uint32_t full_end = sx & ~7u;
  const __mmask8 tail = static_cast<__mmask8>((1u << (sx & 7)) - 1);
  for (uint32_t y = 0; y < sy; y++) {
    const uint64_t* bits = runs.start_bits.data() + y * words;
    uint64_t* out = dst + static_cast<uint64_t>(y) * sx;
    uint32_t before = runs.row_first[y] - 1;
    uint32_t x0 = 0;
    for (; x0 < full_end; x0 += 8) _mm512_storeu_si512(out + x0, vector_at(bits, x0, before, run_values, lane_prefix));
    if (tail) _mm512_mask_storeu_epi64(out + x0, tail, vector_at(bits, x0, before, run_values, lane_prefix));
  }
}

#endif

}  // namespace

template <typename T>
void write_slice(const SliceRuns& runs, uint32_t sx, uint32_t sy, const T* run_values, T* dst) {
  if (sx == 0 || sy == 0) return;
#if CRACKLE_X86_AVX512_WRITER
  if constexpr (sizeof(T) >= 4) {
    if (avx512_writer_available()) return write_slice_avx512(runs, sx, sy, run_values, dst);
  }
#endif
  write_slice_by_runs(runs, sx, sy, run_values, dst);
}

template void write_slice<uint8_t>(const SliceRuns&, uint32_t, uint32_t, const uint8_t*, uint8_t*);
template void write_slice<uint16_t>(const SliceRuns&, uint32_t, uint32_t, const uint16_t*, uint16_t*);
template void write_slice<uint32_t>(const SliceRuns&, uint32_t, uint32_t, const uint32_t*, uint32_t*);
template void write_slice<uint64_t>(const SliceRuns&, uint32_t, uint32_t, const uint64_t*, uint64_t*);

}  // namespace crackle
