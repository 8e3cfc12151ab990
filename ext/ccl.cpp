// Component labelling of a slice's runs (ccl.hpp), with the popcount instruction where the CPU
// has it: it counts the run starts before each join, and the portable count costs about a tenth
// of a decode.
#include "ccl.hpp"

#include <algorithm>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define CRACKLE_X86_AVX512_STARTS 1
#include <immintrin.h>
#endif

namespace crackle {

namespace {

// Trees here are almost always at most two deep, and a find that changes nothing should store
// nothing: path halving only starts below the second level.
inline uint32_t find_root(uint32_t* parent, uint32_t i) {
  const uint32_t p = parent[i];
  if (p == i) return i;
  const uint32_t g = parent[p];
  if (g == p) return p;
  parent[i] = g;
  i = g;
  while (parent[i] != i) {
    parent[i] = parent[parent[i]];  // path halving
    i = parent[i];
  }
  return i;
}

// Is any bit of row y in [lo, hi) set?
inline bool any_bit(const RowBits& rows, uint32_t y, uint32_t lo, uint32_t hi) {
  const uint64_t i = lo >> 6, j = (hi - 1) >> 6;
  const uint64_t first = ~0ull << (lo & 63);
  const uint64_t last = ~0ull >> (63 - ((hi - 1) & 63));
  if (i == j) return (rows.word(y, i) & first & last) != 0;
  if (rows.word(y, i) & first) return true;
  for (uint64_t k = i + 1; k < j; k++) {
    if (rows.word(y, k)) return true;
  }
  return (rows.word(y, j) & last) != 0;
}

// Runs are provisional labels in raster order and unions keep the smaller root, so a
// component's root is its first run and numbering roots in order is numbering by first
// appearance. Always inlined, so that the popcount-compiled caller below gets the instruction.
// Lists the run starts of one row word (bit x set: a run starts at base + x) at out, possibly
// writing up to 16 entries past them, and returns how many there are.
// Eight are written unconditionally and the cursor moves by the true count: a loop over the set
// bits would mispredict its exit on every word.
template <bool kHardwarePopcount>
struct ScalarStarts {
  static uint32_t write(uint64_t m, uint32_t base, uint32_t* out) {
    const uint32_t count = popcount64<kHardwarePopcount>(m);
    uint64_t rest = m;
    for (int k = 0; k < 8; k++) {
      out[k] = base + static_cast<uint32_t>(__builtin_ctzll(rest | (1ull << 63)));
      rest &= rest - 1;
    }
    if (count > 8) {
      for (uint32_t k = 8; k < count; k++) {
        out[k] = base + static_cast<uint32_t>(__builtin_ctzll(rest));
        rest &= rest - 1;
      }
    }
    return count;
  }
};

#if CRACKLE_X86_AVX512_STARTS
// With AVX-512 VBMI2 one compress of the bytes 0..63 by the word lists its set bits' positions;
// sixteen of them are widened and stored at once.
struct Avx512Starts {
  __attribute__((target("popcnt,avx512f,avx512bw,avx512vbmi2"))) static uint32_t write(uint64_t m, uint32_t base,
                                                                                        uint32_t* out) {
    const uint32_t count = static_cast<uint32_t>(__builtin_popcountll(m));
    const __m512i iota = _mm512_set_epi8(63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44,
                                         43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24,
                                         23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2,
                                         1, 0);
    const __m512i positions = _mm512_maskz_compress_epi8(m, iota);
    const __m512i b = _mm512_set1_epi32(static_cast<int>(base));
    const __m128i first = _mm512_maskz_extracti32x4_epi32(0xF, positions, 0);  // the cast warns in GCC 12
    _mm512_storeu_si512(out, _mm512_add_epi32(b, _mm512_maskz_cvtepu8_epi32(0xFFFF, first)));
    if (count > 16) {  // rare; never more than 15 entries past the count
      alignas(64) uint8_t bytes[64];
      _mm512_store_si512(bytes, positions);
      for (uint32_t g = 16; g < count; g += 16) {
        const __m128i p = _mm_load_si128(reinterpret_cast<const __m128i*>(bytes + g));
        _mm512_storeu_si512(out + g, _mm512_add_epi32(b, _mm512_maskz_cvtepu8_epi32(0xFFFF, p)));
      }
    }
    return count;
  }
};
#endif

template <bool kHardwarePopcount, typename Starts>
__attribute__((always_inline)) inline uint32_t label_runs(uint32_t sx, uint32_t sy, const RowBits& starts,
                                                         const RowBits& joins, SliceRuns& runs) {
  runs.row_first.resize(static_cast<size_t>(sy) + 1);
  runs.row_first[0] = 0;
  if (sx == 0 || sy == 0) {
    std::fill(runs.row_first.begin(), runs.row_first.end(), 0);
    return 0;
  }
  const uint64_t pixel_words = (static_cast<uint64_t>(sx) + 63) / 64;
  const uint64_t last_mask = (sx & 63) ? ~0ull >> (64 - (sx & 63)) : ~0ull;
  runs.start_bits.resize(static_cast<uint64_t>(sy) * pixel_words);
  uint64_t* const start_bits = runs.start_bits.data();
  uint64_t used = 0;
  for (uint32_t y = 0; y < sy; y++) {
    // A row has at most sx runs and its sentinel, and the last word's unconditional writes may
    // reach 16 entries further; growing by doubling keeps this amortised.
    if (runs.start.size() < used + sx + 17) runs.start.resize(std::max<uint64_t>(2 * runs.start.size(), used + sx + 17));
    if (used > 0xFFFFFFFFull - sx - 1) fail("slice", "too many runs in one slice");
    uint32_t* out = runs.start.data() + used;
    for (uint64_t i = 0; i < pixel_words; i++) {
      uint64_t m = starts.word(y, i);
      if (i == 0) m |= 1;  // x = 0 always starts a run
      if (i == pixel_words - 1) m &= last_mask;
      start_bits[y * pixel_words + i] = m;
      const uint32_t count = Starts::write(m, static_cast<uint32_t>(i * 64), out);
      out += count;
    }
    *out++ = sx;
    used = static_cast<uint64_t>(out - runs.start.data());
    runs.row_first[y + 1] = static_cast<uint32_t>(used);
  }
  const uint32_t n = static_cast<uint32_t>(used);
  runs.parent.resize(n);
  uint32_t* parent = runs.parent.data();
  for (uint32_t i = 0; i < n; i++) parent[i] = i;
  // A row's sentinel hangs off the row's last run, so numbering can run over every entry.
  for (uint32_t y = 0; y < sy; y++) parent[runs.row_first[y + 1] - 1] = runs.row_first[y + 1] - 2;
  const uint32_t* S = runs.start.data();

  // Joins one run of row y to one of row y-1 (union by smaller root).
  auto join = [parent](uint32_t r, uint32_t q) {
    const uint32_t rq = find_root(parent, q);
    if (parent[r] == r) {
      parent[r] = rq;  // r's first join; rq < r, so the smaller root stays the root
      return;
    }
    const uint32_t rr = find_root(parent, r);
    if (rr < rq) {
      parent[rq] = rr;
    } else if (rq < rr) {
      parent[rr] = rq;
    }
  };
  for (uint32_t y = 1; y < sy; y++) {
    // The run starts of both rows cut row y into segments, each under one run of each row.
    // In a valid code a segment is joined to the row above all along or not at all (both its
    // runs hold one label each), so the joins are the segment starts where row y is joined up:
    // found a word at a time, with no per-pair branch. A row where joining changes inside a
    // segment is not from a valid code; it takes the exact pairwise walk below, so the result
    // is always the components the cracks draw.
    const uint64_t* A = start_bits + y * pixel_words;
    const uint64_t* P = start_bits + (y - 1) * pixel_words;
    uint64_t inside_change = 0, carry = 0, differs = 0;
    for (uint64_t i = 0; i < pixel_words; i++) {
      const uint64_t mask = i == pixel_words - 1 ? last_mask : ~0ull;
      const uint64_t J = joins.word(y, i) & mask;
      inside_change |= (J ^ ((J << 1) | carry)) & ~(A[i] | P[i]) & mask;
      differs |= (A[i] ^ P[i]) | (A[i] & ~J);
      carry = J >> 63;
    }
    if ((inside_change | differs) == 0) {
      // The row repeats the row above (same run starts, every run joined up at its start): run k
      // joins run k above. A fifth of the rows of a smooth segmentation do.
      const uint32_t r0 = runs.row_first[y], q0 = runs.row_first[y - 1], count = runs.row_first[y + 1] - 1 - r0;
      for (uint32_t k = 0; k < count; k++) join(r0 + k, q0 + k);
      continue;
    }
    if (inside_change == 0) {
      uint32_t r_base = runs.row_first[y] - 1, q_base = runs.row_first[y - 1] - 1;
      for (uint64_t i = 0; i < pixel_words; i++) {
        const uint64_t mask = i == pixel_words - 1 ? last_mask : ~0ull;
        const uint64_t J = joins.word(y, i) & mask;
        for (uint64_t e = (A[i] | P[i]) & J; e; e &= e - 1) {
          const uint64_t upto = ((e & (0 - e)) << 1) - 1;  // bits up to this segment's start
          join(r_base + static_cast<uint32_t>(popcount64<kHardwarePopcount>(A[i] & upto)),
               q_base + static_cast<uint32_t>(popcount64<kHardwarePopcount>(P[i] & upto)));
        }
        r_base += static_cast<uint32_t>(popcount64<kHardwarePopcount>(A[i]));
        q_base += static_cast<uint32_t>(popcount64<kHardwarePopcount>(P[i]));
      }
      continue;
    }
    uint32_t r = runs.row_first[y], q = runs.row_first[y - 1];
    for (;;) {
      const uint32_t b = S[r + 1], d = S[q + 1];
      const uint32_t lo = S[r] > S[q] ? S[r] : S[q];
      const uint32_t hi = b < d ? b : d;
      const bool joined = any_bit(joins, y, lo, hi);
      if (joined) join(r, q);
      if (b == sx && d == sx) break;
      r += (b <= d);
      q += (d <= b);
    }
  }

  runs.component.resize(n);
  uint32_t* comp = runs.component.data();
  uint32_t count = 0;
  // parent[i] <= i, and every j < i already carries its root's number, so no find is needed.
  // Branch-free: whether a run starts a component is data. A root reads its own stale slot.
  for (uint32_t i = 0; i < n; i++) {
    const bool root = parent[i] == i;
    const uint32_t inherited = comp[parent[i]];
    comp[i] = root ? count : inherited;
    count += root;
  }
  return count;
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("popcnt"))) uint32_t label_runs_popcnt(uint32_t sx, uint32_t sy, const RowBits& starts,
                                                             const RowBits& joins, SliceRuns& runs) {
  return label_runs<true, ScalarStarts<true>>(sx, sy, starts, joins, runs);
}
#if CRACKLE_X86_AVX512_STARTS
__attribute__((target("popcnt,avx512f,avx512bw,avx512vbmi2"), flatten)) uint32_t label_runs_avx512(
    uint32_t sx, uint32_t sy, const RowBits& starts, const RowBits& joins, SliceRuns& runs) {
  return label_runs<true, Avx512Starts>(sx, sy, starts, joins, runs);
}
#endif
#endif

}  // namespace

uint32_t label_slice(uint32_t sx, uint32_t sy, const RowBits& starts, const RowBits& joins, SliceRuns& runs) {
#if defined(__x86_64__) || defined(__i386__)
  static const bool hardware = hardware_paths_allowed() && __builtin_cpu_supports("popcnt");
#if CRACKLE_X86_AVX512_STARTS
  static const bool avx512 = avx512_paths_allowed() && __builtin_cpu_supports("popcnt") &&
                             __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                             __builtin_cpu_supports("avx512vbmi2");
  if (avx512) return label_runs_avx512(sx, sy, starts, joins, runs);
#endif
  return hardware ? label_runs_popcnt(sx, sy, starts, joins, runs)
                  : label_runs<false, ScalarStarts<false>>(sx, sy, starts, joins, runs);
#else
  return label_runs<true, ScalarStarts<true>>(sx, sy, starts, joins, runs);
#endif
}

}  // namespace crackle
