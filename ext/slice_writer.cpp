// Writing a decoded slice (slice_writer.hpp).
//
// After each run's value, one pass over the rows computes each row's share of the slice CRC and
// writes its pixels.
//
// Pixels: a slice of 128 x 128 four-byte labels has about 8 runs a row. Filling run by run costs
// a few block stores per run whatever its length, about 14 cycles a run. With AVX-512 a row is
// written 64 bytes at a time instead: the run starts among those 16 (or 8) pixels, counted per
// lane with a popcount, index a permute of the run values, so each vector costs the same few
// instructions however many runs it holds. CPUs without AVX-512 (and CRACKLE_PORTABLE=1 or
// CRACKLE_NO_AVX512=1) fill run by run.
#include "slice_writer.hpp"

#include <cstring>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define CRACKLE_X86_AVX512_WRITER 1
#include <immintrin.h>
#endif

namespace crackle {

namespace {

constexpr uint32_t kRunValuePadding = 16;  // a vector load from the last run may read 15 more

// A row's runs [r, end) (start[end] the row's sentinel), its pixels at out.
struct RowRuns {
  const uint64_t* start_bits;  // the row's start bits (SliceRuns::start_bits)
  const uint32_t* start;       // SliceRuns::start
  uint32_t r, end;
  uint64_t room;  // elements writable from out on (to the slice's end)
};

// Fills run by run; each fill's overshoot is rewritten by the runs after it, and only the
// slice's end is filled exactly.
struct FillRow {
  template <typename T>
  static void write(const RowRuns& row, uint32_t /*sx*/, const T* run_values, T* out) {
    for (uint32_t r = row.r; r < row.end; r++) {
      const uint32_t a = row.start[r];
      fill_run(out + a, row.start[r + 1] - a, run_values[r], row.room - a);
    }
  }
};

struct NoCrc {
  static uint32_t row(uint32_t state, const RowRuns&, const uint32_t*, const RunCrc32c*) { return state; }
};

#if CRACKLE_RUN_CRC_X86
struct ClmulCrc {
  __attribute__((target("sse4.2,pclmul"))) static uint32_t row(uint32_t state, const RowRuns& row,
                                                              const uint32_t* component, const RunCrc32c* crc) {
    return run_crc_row(state, row.start, row.r, row.end, component, crc->weight_top(), crc->row_shift());
  }
};
#endif

#if CRACKLE_X86_AVX512_WRITER
#define CRACKLE_AVX512 __attribute__((target("avx512f,avx512vpopcntdq")))

// The run covering pixel x is `before + (bit x set)`, `before` being the row's first run index
// minus one plus the starts left of x. Lane l adds the starts in (x, x + l]: the broadcast start
// bits, masked per lane, popcounted. That index selects among the 16 run values from the
// covering run on, which are always enough: 16 pixels hold at most 16 runs. (The maskz forms
// of the permutes only avoid a GCC 12 warning in the plain ones.)
struct VectorRow {
  CRACKLE_AVX512 static void write(const RowRuns& row, uint32_t sx, const uint32_t* run_values, uint32_t* out) {
    const __m512i lane_prefix = _mm512_setr_epi32(0x0, 0x2, 0x6, 0xE, 0x1E, 0x3E, 0x7E, 0xFE, 0x1FE, 0x3FE, 0x7FE,
                                                  0xFFE, 0x1FFE, 0x3FFE, 0x7FFE, 0xFFFE);
    const uint8_t* bits = reinterpret_cast<const uint8_t*>(row.start_bits);
    uint32_t before = row.r - 1;
    auto at = [&](uint32_t x) CRACKLE_AVX512 {
      uint16_t m;
      std::memcpy(&m, bits + x / 8, 2);
      const uint32_t covering = before + (m & 1u);
      before += static_cast<uint32_t>(__builtin_popcount(m));
      // Broadcast straight from memory (a load, not a shuffle): the shuffle unit already has the
      // permute. The word's bits past the 16 are masked off; start_bits has a word of padding.
      uint32_t m32;
      std::memcpy(&m32, bits + x / 8, 4);
      const __m512i idx = _mm512_popcnt_epi32(_mm512_and_si512(_mm512_set1_epi32(static_cast<int>(m32)), lane_prefix));
      return _mm512_maskz_permutexvar_epi32(0xFFFF, idx, _mm512_loadu_si512(run_values + covering));
    };
    uint32_t x = 0;
    for (; x + 16 <= sx; x += 16) _mm512_storeu_si512(out + x, at(x));
    if (x < sx) _mm512_mask_storeu_epi32(out + x, static_cast<__mmask16>((1u << (sx - x)) - 1), at(x));
  }

  CRACKLE_AVX512 static void write(const RowRuns& row, uint32_t sx, const uint64_t* run_values, uint64_t* out) {
    const __m512i lane_prefix = _mm512_setr_epi64(0x1, 0x3, 0x7, 0xF, 0x1F, 0x3F, 0x7F, 0xFF);
    uint32_t before = row.r - 1;
    auto at = [&](uint32_t x) CRACKLE_AVX512 {
      const uint32_t m = static_cast<uint32_t>(row.start_bits[x >> 6] >> (x & 63)) & 0xFF;
      const uint32_t covering = before + (m & 1);
      before += static_cast<uint32_t>(__builtin_popcount(m));
      const __m512i idx =
          _mm512_popcnt_epi64(_mm512_and_si512(_mm512_set1_epi64(static_cast<long long>(m & ~1u)), lane_prefix));
      return _mm512_maskz_permutexvar_epi64(0xFF, idx, _mm512_loadu_si512(run_values + covering));
    };
    uint32_t x = 0;
    for (; x + 8 <= sx; x += 8) _mm512_storeu_si512(out + x, at(x));
    if (x < sx) _mm512_mask_storeu_epi64(out + x, static_cast<__mmask8>((1u << (sx - x)) - 1), at(x));
  }
};

// GCC 12's AVX-512 headers build some intrinsics on a deliberately uninitialised value, which its
// own -Wmaybe-uninitialized then reports once inlined (GCC bug 105593; see ccl.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// A row's CRC share (run_crc_row) for rows of up to 16 runs, all at once: a gather of the runs'
// weights, and the 16 32-bit products in four 512-bit carry-less multiplies (each multiplies one
// 64-bit lane of every 128 bits, so the even and the odd words take two each).
struct VectorCrc {
  __attribute__((target("avx512f,avx512vpopcntdq,sse4.2,pclmul,vpclmulqdq"))) static uint32_t row(
      uint32_t state, const RowRuns& row, const uint32_t* component, const RunCrc32c* crc) {
    const uint32_t n = row.end - row.r;
    if (n > 16) return run_crc_row(state, row.start, row.r, row.end, component, crc->weight_top(), crc->row_shift());
    const __mmask16 valid = static_cast<__mmask16>((1u << n) - 1);
    const __m512i zero = _mm512_setzero_si512();
    const __m512i at = _mm512_maskz_loadu_epi32(valid, row.start + row.r);
    const __m512i w = _mm512_mask_i32gather_epi32(zero, valid, _mm512_sub_epi32(zero, at), crc->weight_top(), 4);
    const __m512i v = _mm512_maskz_loadu_epi32(valid, component + row.r);
    // Each run's id xor the previous run's (0 before the row's first): the telescoped terms.
    const __m512i d = _mm512_xor_si512(v, _mm512_alignr_epi32(v, zero, 15));
    const __m512i low = _mm512_set1_epi64(0xFFFFFFFF);
    const __m512i d_even = _mm512_and_si512(d, low), w_even = _mm512_and_si512(w, low);
    const __m512i d_odd = _mm512_srli_epi64(d, 32), w_odd = _mm512_srli_epi64(w, 32);
    const __m512i p = _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(d_even, w_even, 0x00),
                                                _mm512_clmulepi64_epi128(d_even, w_even, 0x11),
                                                _mm512_clmulepi64_epi128(d_odd, w_odd, 0x00), 0x96);
    const __m512i q = _mm512_xor_si512(p, _mm512_clmulepi64_epi128(d_odd, w_odd, 0x11));
    const __m256i h = _mm256_xor_si256(_mm512_castsi512_si256(q), _mm512_extracti64x4_epi64(q, 1));
    const __m128i g = _mm_xor_si128(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    // Each 128-bit lane's product is below 2^63: its high half is zero.
    const uint64_t sum = static_cast<uint64_t>(_mm_cvtsi128_si64(g)) ^ clmul32(state, crc->row_shift());
    return static_cast<uint32_t>(_mm_crc32_u64(0, sum));
  }
};

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

bool vpclmul_available() {
  static const bool ok = __builtin_cpu_supports("vpclmulqdq");
  return ok;
}

bool avx512_writer_available() {
  static const bool ok = avx512_paths_allowed() && __builtin_cpu_supports("avx512f") &&
                         __builtin_cpu_supports("avx512vpopcntdq");
  return ok;
}
#endif

template <typename T, typename Row, typename Crc>
__attribute__((always_inline)) inline uint32_t write_rows(const SliceRuns& runs, uint32_t sx, uint32_t sy,
                                                          const T* component_values, T* run_values, T* dst,
                                                          const RunCrc32c* crc) {
  const uint64_t words = (static_cast<uint64_t>(sx) + 63) / 64;
  const uint64_t sxy = static_cast<uint64_t>(sx) * sy;
  const uint32_t* component = runs.component.data();
  // All the run values first: a vector read of values stored just before (the same row's) cannot
  // be forwarded from the stores and waits for them to reach the cache.
  for (uint32_t r = 0, n = runs.row_first[sy]; r < n; r++) run_values[r] = component_values[component[r]];
  uint32_t state = 0;
  for (uint32_t y = 0; y < sy; y++) {
    const uint64_t offset = static_cast<uint64_t>(y) * sx;
    const RowRuns row{runs.start_bits.data() + y * words, runs.start.data(), runs.row_first[y],
                      runs.row_first[y + 1] - 1, sxy - offset};
    state = Crc::row(state, row, component, crc);
    Row::write(row, sx, run_values, dst + offset);
  }
  return state;
}

// One function per instruction set, each compiling the shared body for its own target.
#if CRACKLE_X86_AVX512_WRITER
template <typename T>
__attribute__((target("avx512f,avx512vpopcntdq,sse4.2,pclmul"), flatten)) uint32_t write_avx512_clmul(
    const SliceRuns& runs, uint32_t sx, uint32_t sy, const T* values, T* run_values, T* dst, const RunCrc32c* crc) {
  return write_rows<T, VectorRow, ClmulCrc>(runs, sx, sy, values, run_values, dst, crc);
}
template <typename T>
__attribute__((target("avx512f,avx512vpopcntdq,sse4.2,pclmul,vpclmulqdq"), flatten)) uint32_t write_avx512_vpclmul(
    const SliceRuns& runs, uint32_t sx, uint32_t sy, const T* values, T* run_values, T* dst, const RunCrc32c* crc) {
  return write_rows<T, VectorRow, VectorCrc>(runs, sx, sy, values, run_values, dst, crc);
}
template <typename T>
__attribute__((target("avx512f,avx512vpopcntdq"), flatten)) uint32_t write_avx512(
    const SliceRuns& runs, uint32_t sx, uint32_t sy, const T* values, T* run_values, T* dst, const RunCrc32c* crc) {
  return write_rows<T, VectorRow, NoCrc>(runs, sx, sy, values, run_values, dst, crc);
}
#endif
#if CRACKLE_RUN_CRC_X86
template <typename T>
__attribute__((target("sse4.2,pclmul"), flatten)) uint32_t write_clmul(const SliceRuns& runs, uint32_t sx,
                                                                        uint32_t sy, const T* values, T* run_values,
                                                                        T* dst, const RunCrc32c* crc) {
  return write_rows<T, FillRow, ClmulCrc>(runs, sx, sy, values, run_values, dst, crc);
}
#endif

}  // namespace

template <typename T>
uint32_t write_slice(const SliceRuns& runs, uint32_t sx, uint32_t sy, const T* component_values,
                     std::vector<T>& run_values, T* dst, const RunCrc32c* crc) {
  if (sx == 0 || sy == 0) return 0;
  run_values.resize(static_cast<size_t>(runs.row_first[sy]) + kRunValuePadding);
  T* rv = run_values.data();
#if CRACKLE_X86_AVX512_WRITER
  if constexpr (sizeof(T) >= 4) {
    if (avx512_writer_available()) {
      if (crc && vpclmul_available()) return crc->finish(write_avx512_vpclmul(runs, sx, sy, component_values, rv, dst, crc));
      return crc ? crc->finish(write_avx512_clmul(runs, sx, sy, component_values, rv, dst, crc))
                 : write_avx512(runs, sx, sy, component_values, rv, dst, crc);
    }
  }
#endif
#if CRACKLE_RUN_CRC_X86
  if (crc) return crc->finish(write_clmul(runs, sx, sy, component_values, rv, dst, crc));
#endif
  write_rows<T, FillRow, NoCrc>(runs, sx, sy, component_values, rv, dst, nullptr);
  // Not reached with a crc where RunCrc32c is unavailable; kept total.
  return crc ? crc->of_rows(runs.start.data(), runs.row_first.data(), runs.component.data()) : 0;
}

template uint32_t write_slice<uint8_t>(const SliceRuns&, uint32_t, uint32_t, const uint8_t*, std::vector<uint8_t>&,
                                       uint8_t*, const RunCrc32c*);
template uint32_t write_slice<uint16_t>(const SliceRuns&, uint32_t, uint32_t, const uint16_t*, std::vector<uint16_t>&,
                                        uint16_t*, const RunCrc32c*);
template uint32_t write_slice<uint32_t>(const SliceRuns&, uint32_t, uint32_t, const uint32_t*, std::vector<uint32_t>&,
                                        uint32_t*, const RunCrc32c*);
template uint32_t write_slice<uint64_t>(const SliceRuns&, uint32_t, uint32_t, const uint64_t*, std::vector<uint64_t>&,
                                        uint64_t*, const RunCrc32c*);

}  // namespace crackle
