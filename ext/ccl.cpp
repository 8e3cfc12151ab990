// Component labelling of a slice's runs (ccl.hpp), in three builds of one body: portable; with
// the popcount instruction (it counts the run starts before each join; the portable count costs
// about a tenth of a decode); and with AVX-512, which lists run starts by compress, and joins
// and numbers runs sixteen at a time (Avx512Starts). They give identical results
// (test_portable_paths).
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
  static constexpr bool kVectorRows = false;
  struct RowParents {};
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
// Links the trees of runs a and b, the larger root under the smaller. Trees are almost always
// at most two deep, so the root is found without a branch that could go either way.
inline void union_roots(uint32_t* parent, uint32_t a, uint32_t b) {
  auto root = [parent](uint32_t i) {
    const uint32_t g = parent[parent[i]];
    return parent[g] == g ? g : find_root(parent, g);
  };
  const uint32_t ra = root(a), rb = root(b);
  parent[ra > rb ? ra : rb] = ra < rb ? ra : rb;
}

// GCC 12's AVX-512 headers build many intrinsics on a deliberately uninitialised value
// (_mm512_undefined_*), which its own -Wmaybe-uninitialized then reports once inlined (GCC bug
// 105593). The warning says nothing about this code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
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

  static constexpr bool kVectorRows = true;
  struct RowParents {  // the parents join_row gave the row above's runs, 32 at most
    __m512i lo, hi;
  };

  // Numbers the components (see label_runs), sixteen runs at a time. A run whose parent lies
  // before the sixteen reads its number with a gather: that run is numbered already. Parents
  // inside the sixteen (the row above is often among them) are followed within the register,
  // pointer jumping, until each run points at a root among the sixteen or at a run before
  // them; roots are numbered by their rank among the sixteen's roots.
  __attribute__((target("popcnt,avx512f,avx512bw,avx512vpopcntdq"))) static uint32_t number(const uint32_t* parent,
                                                                                            uint32_t* comp, uint32_t n) {
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i lanes_before = _mm512_setr_epi32(0x0, 0x1, 0x3, 0x7, 0xF, 0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF,
                                                   0xFFF, 0x1FFF, 0x3FFF, 0x7FFF);
    uint32_t count = 0;
    for (uint32_t c0 = 0; c0 < n; c0 += 16) {
      const __mmask16 valid = static_cast<__mmask16>(n - c0 >= 16 ? 0xFFFF : (1u << (n - c0)) - 1);
      const __m512i base = _mm512_set1_epi32(static_cast<int>(c0));
      const __m512i self = _mm512_add_epi32(iota, base);
      __m512i q = _mm512_mask_loadu_epi32(self, valid, parent + c0);  // lanes past n: roots
      const __mmask16 root = _mm512_cmpeq_epi32_mask(q, self);
      for (;;) {
        const __mmask16 inside = _mm512_cmpge_epu32_mask(q, base);
        const __m512i next = _mm512_mask_permutexvar_epi32(q, inside, _mm512_sub_epi32(q, base), q);
        if (_mm512_cmpneq_epi32_mask(next, q) == 0) break;
        q = next;
      }
      const __mmask16 counted = root & valid;
      const __m512i rank = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(count)),
                                            _mm512_popcnt_epi32(_mm512_and_si512(_mm512_set1_epi32(counted), lanes_before)));
      const __mmask16 inside = _mm512_cmpge_epu32_mask(q, base);
      const __m512i local = _mm512_maskz_permutexvar_epi32(inside, _mm512_sub_epi32(q, base), rank);
      const __m512i numbers = _mm512_mask_i32gather_epi32(local, static_cast<__mmask16>(~inside & valid), q, comp, 4);
      _mm512_mask_storeu_epi32(comp + c0, valid, numbers);
      count += static_cast<uint32_t>(__builtin_popcount(counted));
    }
    return count;
  }

#define CRACKLE_AVX512_JOINS __attribute__((target("popcnt,bmi,bmi2,avx512f,avx512bw,avx512vbmi2,avx512vpopcntdq,avx512cd,avx512vl")))

  // What join_sixteen needs of a row, as sixteen 32-bit words (word k: pixels 32k .. 32k + 31).
  struct RowVectors {
    __m512i e;          // joined segment starts (zero past the row)
    __m512i p;          // run starts of row y-1
    __m512i e_before;   // per word, the joined segment starts in the words before it
    __m512i q_before;   // per word, q0 - 1 + the run starts of row y-1 in the words before it
  };

  // Per lane: the pixel of the lowest set bit of `bits`, a window of pixels from x0 on.
  CRACKLE_AVX512_JOINS __attribute__((always_inline)) static inline __m512i lowest_pixel(__m512i x0, __m512i bits) {
    const __m512i lowest = _mm512_and_si512(bits, _mm512_sub_epi32(_mm512_setzero_si512(), bits));
    return _mm512_add_epi32(x0, _mm512_sub_epi32(_mm512_set1_epi32(31), _mm512_lzcnt_epi32(lowest)));
  }

  // Per lane: the run of row y-1 over pixel `x`, q0 - 1 + the run starts of row y-1 up to x.
  CRACKLE_AVX512_JOINS __attribute__((always_inline)) static inline __m512i run_above(const RowVectors& v, __m512i x) {
    const __m512i word = _mm512_srli_epi32(x, 5);
    const __m512i upto = _mm512_sub_epi32(_mm512_sllv_epi32(_mm512_set1_epi32(2), _mm512_and_si512(x, _mm512_set1_epi32(31))),
                                          _mm512_set1_epi32(1));
    return _mm512_add_epi32(_mm512_permutexvar_epi32(word, v.q_before),
                            _mm512_popcnt_epi32(_mm512_and_si512(_mm512_permutexvar_epi32(word, v.p), upto)));
  }

  // Runs r0 + h .. r0 + h + 15 of row y (those below nr): see join_row. Returns their parents.
  // Lane k works on run r = r0 + h + k over [x0, x1), in 32-bit words of the row's joined
  // segment starts `e` (word x >> 5 of the row is lane x >> 5).
  CRACKLE_AVX512_JOINS __attribute__((always_inline)) static inline __m512i join_sixteen(
      uint32_t h, uint32_t nr, uint32_t r0, uint32_t q0, const uint32_t* S, const RowVectors& v, __m512i parents_lo,
      __m512i parents_hi, uint32_t* parent, uint32_t& fixups, uint32_t& pairs, uint32_t* second_above) {
    const __m512i ones = _mm512_set1_epi32(-1), one = _mm512_set1_epi32(1), two = _mm512_set1_epi32(2);
    const __m512i c31 = _mm512_set1_epi32(31), c32 = _mm512_set1_epi32(32);
    const __mmask16 valid = static_cast<__mmask16>(nr - h >= 16 ? 0xFFFF : (1u << (nr - h)) - 1);
    const __m512i x0 = _mm512_maskz_loadu_epi32(valid, S + r0 + h);
    const __m512i x1 = _mm512_maskz_loadu_epi32(valid, S + r0 + h + 1);
    const __m512i len = _mm512_sub_epi32(x1, x0);
    const __m512i i0 = _mm512_srli_epi32(x0, 5), s0 = _mm512_and_si512(x0, c31);
    const __m512i w0 = _mm512_permutexvar_epi32(i0, v.e);
    const __m512i w1 = _mm512_permutexvar_epi32(_mm512_add_epi32(i0, one), v.e);
    // Bit k: pixel x0 + k of this run is a joined segment start (k < min(len, 32); a shift by
    // 32 gives 0).
    const __m512i window = _mm512_and_si512(_mm512_shrdv_epi32(w0, w1, s0),
                                            _mm512_srlv_epi32(ones, _mm512_sub_epi32(c32, _mm512_min_epu32(len, c32))));
    const __mmask16 joined = _mm512_mask_test_epi32_mask(valid, window, window);
    const __m512i q = run_above(v, lowest_pixel(x0, window));  // the run above the first join
    const __m512i copied =
        _mm512_permutex2var_epi32(parents_lo, _mm512_sub_epi32(q, _mm512_set1_epi32(static_cast<int>(q0))), parents_hi);
    const __m512i own = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(r0 + h)),
                                         _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    const __m512i result = _mm512_mask_mov_epi32(own, joined, copied);
    _mm512_mask_storeu_epi32(parent + r0 + h, valid, result);
    // The joined segment starts in [x0, x1), counted exactly: a run with more than the one it was
    // linked at (or with one only past its first 32 pixels) is joined afterwards.
    const __m512i i1 = _mm512_srli_epi32(x1, 5);
    const __m512i below0 = _mm512_andnot_si512(_mm512_sllv_epi32(ones, s0), ones);
    const __m512i below1 = _mm512_andnot_si512(_mm512_sllv_epi32(ones, _mm512_and_si512(x1, c31)), ones);
    const __m512i count =
        _mm512_sub_epi32(_mm512_add_epi32(_mm512_permutexvar_epi32(i1, v.e_before),
                                          _mm512_popcnt_epi32(_mm512_and_si512(_mm512_permutexvar_epi32(i1, v.e), below1))),
                         _mm512_add_epi32(_mm512_permutexvar_epi32(i0, v.e_before),
                                          _mm512_popcnt_epi32(_mm512_and_si512(w0, below0))));
    const __mmask16 more = _mm512_mask_cmpgt_epu32_mask(valid, count, _mm512_maskz_mov_epi32(joined, one));
    // The usual second join, the only other joined segment start and inside the window: its
    // run above too, so that it needs one union and no search.
    const __m512i rest = _mm512_and_si512(window, _mm512_sub_epi32(window, one));  // without the lowest
    _mm512_storeu_si512(second_above + h, run_above(v, lowest_pixel(x0, rest)));
    const __mmask16 pair = _mm512_mask_cmpeq_epi32_mask(_mm512_mask_test_epi32_mask(more, rest, rest), count, two);
    pairs |= static_cast<uint32_t>(pair) << h;
    fixups |= static_cast<uint32_t>(more & ~pair) << h;
    return result;
  }

  // The joins of row y, for rows of at most 6 words and 32 runs (and the row above too) from a
  // valid code; returns false, having done nothing, for other rows. `starts`, `above`: the
  // start bits of rows y and y-1.
  //
  // Nine runs in ten have exactly one join, one in ten none (they start a component), and few
  // meet a second run above (one of their own label, apart from the first): so each run is
  // linked at its first joined segment start to the run above there, by taking that run's
  // parent, a smaller run of the same component, which is all the tree needs. No find and no
  // branch; the parents of the row above come from `prev` (the values this function stored for
  // it; a later union may have changed some in memory, but a stale parent is still a smaller run
  // of the same component). Runs with a second join (or with their only one past their first 32
  // pixels) are joined afterwards by `join`, one segment start at a time. Everything a row needs
  // is built in registers: a vector read of values just stored piecemeal waits for the stores
  // to retire. Sixteen runs a vector: a row of 128 pixels has 8 to 10 runs, and a second vector
  // on only some rows cost more in mispredicted branches than it saved.
  template <typename Join>
  CRACKLE_AVX512_JOINS static bool join_row(uint32_t y, const uint64_t* starts, const uint64_t* above, const RowBits& joins, uint64_t words,
           uint64_t last_mask, const uint32_t* row_first, const uint32_t* S, uint32_t* parent, RowParents& prev,
           bool& prev_valid, Join& join) {
    const uint32_t r0 = row_first[y], q0 = row_first[y - 1];
    const uint32_t nr = row_first[y + 1] - 1 - r0, nq = r0 - 1 - q0;
    if (words > 6 || nr > 32 || nq > 32) return false;
    const __mmask8 in_row = static_cast<__mmask8>((1u << words) - 1);
    const __m512i a = _mm512_maskz_loadu_epi64(in_row, starts);
    const __m512i p = _mm512_maskz_loadu_epi64(in_row, above);
    const __m512i row_mask = _mm512_mask_blend_epi64(static_cast<__mmask8>(1u << (words - 1)), _mm512_set1_epi64(-1),
                                                     _mm512_set1_epi64(static_cast<long long>(last_mask)));
    const __m512i jw = _mm512_xor_si512(_mm512_maskz_loadu_epi64(in_row, joins.row0 + y * joins.stride),
                                        _mm512_set1_epi64(static_cast<long long>(joins.flip)));
    const __m512i j_row = _mm512_and_si512(jw, row_mask);
    // A row where joining changes inside a segment (J differs from the bit before it where
    // neither row starts a run) takes the exact walk of the caller.
    const __m512i j_before = _mm512_or_si512(_mm512_slli_epi64(j_row, 1),
                                             _mm512_srli_epi64(_mm512_alignr_epi64(j_row, _mm512_setzero_si512(), 7), 63));
    if (_mm512_mask_test_epi64_mask(in_row, _mm512_xor_si512(j_row, j_before), _mm512_andnot_si512(_mm512_or_si512(a, p), row_mask))) {
      return false;
    }
    RowVectors v;
    v.e = _mm512_maskz_and_epi64(in_row, _mm512_or_si512(a, p), j_row);
    v.p = p;
    // Both exclusive prefix sums at once, e's in the low and p's in the high 16 bits of a word.
    const __m512i counts = _mm512_or_si512(_mm512_popcnt_epi32(v.e), _mm512_slli_epi32(_mm512_popcnt_epi32(p), 16));
    const __m512i zero = _mm512_setzero_si512();
    __m512i sum = _mm512_alignr_epi32(counts, zero, 15);  // shifted up a word: exclusive
    sum = _mm512_add_epi32(sum, _mm512_alignr_epi32(sum, zero, 15));
    sum = _mm512_add_epi32(sum, _mm512_alignr_epi32(sum, zero, 14));
    sum = _mm512_add_epi32(sum, _mm512_alignr_epi32(sum, zero, 12));
    sum = _mm512_add_epi32(sum, _mm512_alignr_epi32(sum, zero, 8));
    v.e_before = _mm512_and_si512(sum, _mm512_set1_epi32(0xFFFF));
    v.q_before = _mm512_add_epi32(_mm512_srli_epi32(sum, 16), _mm512_set1_epi32(static_cast<int>(q0) - 1));
    __m512i above_lo = prev.lo, above_hi = prev.hi;
    if (!prev_valid) {
      above_lo = _mm512_maskz_loadu_epi32(static_cast<__mmask16>(nq >= 16 ? 0xFFFF : (1u << nq) - 1), parent + q0);
      above_hi = nq > 16 ? _mm512_maskz_loadu_epi32(static_cast<__mmask16>((1u << (nq - 16)) - 1), parent + q0 + 16)
                         : above_lo;
    }
    uint32_t fixups = 0;  // runs (bit k: run r0 + k) to join one segment start at a time
    uint32_t pairs = 0;   // runs (bit k: run r0 + k) to join to second_above[k] too
    alignas(64) uint32_t second_above[32];
    prev.lo = join_sixteen(0, nr, r0, q0, S, v, above_lo, above_hi, parent, fixups, pairs, second_above);
    if (nr > 16) prev.hi = join_sixteen(16, nr, r0, q0, S, v, above_lo, above_hi, parent, fixups, pairs, second_above);
    prev_valid = true;
    for (; pairs; pairs &= pairs - 1) {
      const uint32_t k = static_cast<uint32_t>(__builtin_ctz(pairs));
      union_roots(parent, r0 + k, second_above[k]);
    }
    if (__builtin_expect(fixups != 0, 0)) {
      alignas(64) uint64_t E[8];
      alignas(64) uint32_t q_before[16], p_words[16];
      _mm512_store_si512(E, v.e);
      _mm512_store_si512(q_before, v.q_before);
      _mm512_store_si512(p_words, v.p);
      for (; fixups; fixups &= fixups - 1) {
        const uint32_t r = r0 + static_cast<uint32_t>(__builtin_ctz(fixups));
        for (uint32_t x = S[r]; x < S[r + 1]; x = (x | 63) + 1) {
          uint64_t seg = E[x >> 6] & (~0ull << (x & 63));
          if ((x >> 6) == ((S[r + 1] - 1) >> 6)) seg &= ~0ull >> (63 - ((S[r + 1] - 1) & 63));
          for (; seg; seg &= seg - 1) {
            const uint32_t at = (x & ~63u) + static_cast<uint32_t>(__builtin_ctzll(seg));
            // run_above for one pixel (at bit 31, 2u << 31 wraps to 0 and the mask to all ones)
            join(r, q_before[at >> 5] + static_cast<uint32_t>(__builtin_popcount(p_words[at >> 5] & ((2u << (at & 31)) - 1))));
          }
        }
      }
    }
    return true;
  }
};
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
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
  runs.start_bits.resize(static_cast<uint64_t>(sy) * pixel_words + 1);  // + 1: the writer reads 4 bytes for 2
  uint64_t* const start_bits = runs.start_bits.data();
  uint64_t used = 0;
  // Room is made a row at a time (a row has at most sx runs and its sentinel, and the last
  // word's unconditional writes may reach 16 entries further), or for rows wider than kWideRow a
  // word at a time, so that one very wide row does not reserve 4 bytes per pixel for the runs it
  // might have. Growing by doubling keeps this amortised.
  constexpr uint64_t kWideRow = 4096;
  auto make_room = [&runs](uint64_t needed) {
    if (runs.start.size() < needed) runs.start.resize(std::max<uint64_t>(2 * runs.start.size(), needed));
  };
  for (uint32_t y = 0; y < sy; y++) {
    if (sx <= kWideRow) make_room(used + sx + 17);
    if (used > 0xFFFFFFFFull - sx - 1) fail("slice", "too many runs in one slice");
    uint32_t* out = runs.start.data() + used;
    for (uint64_t i = 0; i < pixel_words; i++) {
      uint64_t m = starts.word(y, i);
      if (i == 0) m |= 1;  // x = 0 always starts a run
      if (i == pixel_words - 1) m &= last_mask;
      start_bits[y * pixel_words + i] = m;
      if (sx > kWideRow) {
        const uint64_t at = static_cast<uint64_t>(out - runs.start.data());
        make_room(at + 64 + 17);
        out = runs.start.data() + at;
      }
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
  // For the vector rows (Avx512Starts::join_row): the parents it gave the row above.
  typename Starts::RowParents prev_parents{};
  bool prev_valid = false;
  for (uint32_t y = 1; y < sy; y++) {
    // The run starts of both rows cut row y into segments, each under one run of each row.
    // In a valid code a segment is joined to the row above all along or not at all (both its
    // runs hold one label each), so the joins are the segment starts where row y is joined up:
    // found a word at a time, with no per-pair branch. A row where joining changes inside a
    // segment is not from a valid code; it takes the exact pairwise walk below, so the result
    // is always the components the cracks draw.
    const uint64_t* A = start_bits + y * pixel_words;
    const uint64_t* P = start_bits + (y - 1) * pixel_words;
    if constexpr (Starts::kVectorRows) {
      if (Starts::join_row(y, A, P, joins, pixel_words, last_mask, runs.row_first.data(), S, parent, prev_parents,
                           prev_valid, join)) {
        continue;
      }
    }
    prev_valid = false;
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
  if constexpr (Starts::kVectorRows) return Starts::number(parent, comp, n);
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
__attribute__((target("popcnt,bmi,bmi2,avx512f,avx512bw,avx512vbmi2,avx512vpopcntdq,avx512cd,avx512vl"), flatten)) uint32_t
label_runs_avx512(
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
                             __builtin_cpu_supports("avx512vbmi2") && __builtin_cpu_supports("avx512vpopcntdq") &&
                             __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512vl") &&
                             __builtin_cpu_supports("bmi2");
  if (avx512) return label_runs_avx512(sx, sy, starts, joins, runs);
#endif
  return hardware ? label_runs_popcnt(sx, sy, starts, joins, runs)
                  : label_runs<false, ScalarStarts<false>>(sx, sy, starts, joins, runs);
#else
  return label_runs<true, ScalarStarts<true>>(sx, sy, starts, joins, runs);
#endif
}

}  // namespace crackle
