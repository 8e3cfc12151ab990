// The finite-context model for crack codes (FORMAT.md section 8 and 9.4): model storage, model
// building from symbol statistics, and the prefix-coded bitstream in both directions.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "common.hpp"

namespace crackle {

// The 24 permutations of (0,1,2,3) in lexicographic order; a stored entry k selects kPerms[k].
inline const std::array<std::array<uint8_t, 4>, 24>& permutations() {
  static const std::array<std::array<uint8_t, 4>, 24> table = [] {
    std::array<std::array<uint8_t, 4>, 24> t{};
    std::array<uint8_t, 4> p = {0, 1, 2, 3};
    for (int k = 0; k < 24; k++) {
      t[k] = p;
      std::next_permutation(p.begin(), p.end());
    }
    return t;
  }();
  return table;
}

inline int permutation_index(const std::array<uint8_t, 4>& perm) {
  const auto& t = permutations();
  for (int k = 0; k < 24; k++) {
    if (t[k] == perm) return k;
  }
  return 23;
}

inline uint64_t num_contexts(int order) { return 1ull << (2 * order); }

// Contexts with no statistics rank their symbols 3, 2, 1, 0 (ties go to the higher symbol).
constexpr uint8_t kDefaultEntry = 23;

// Orders up to this keep one byte per context in memory (at most 1 MiB). Larger orders (the
// format allows 15, a 671 MB model) are never expanded: the decoder reads entries in place from
// the stream and the encoder keeps only the contexts its data visits.
constexpr int kDenseMaxOrder = 10;

// The largest model the encoder writes: 1 MiB, so orders up to 10 (640 KiB). Each symbol saves
// at most one bit over plain codes, so an order-11 model (2.5 MiB) pays for itself only past 21
// million crack moves per stream, far beyond any chunk (the best orders measured on real
// segmentations are 2..7); and from order 14 up other decoders cannot read the stream at all.
constexpr uint64_t kMaxModelBytes = 1ull << 20;
constexpr int kMaxOptimizeOrder = 10;
static_assert((5 * (1ull << (2 * kMaxOptimizeOrder)) + 7) / 8 <= kMaxModelBytes, "order 10 fits the model limit");
static_assert((5 * (1ull << (2 * (kMaxOptimizeOrder + 1))) + 7) / 8 > kMaxModelBytes, "order 11 does not");

// The model: for each context, the index k of the permutation that ranks its symbols.
struct MarkovModel {
  int order = 0;
  std::vector<uint8_t> dense;         // small orders: entry per context
  std::vector<uint8_t> ranked;        // small orders, decoding: ranked[4*ctx + rank] = symbol
  const uint8_t* stored = nullptr;    // large orders, decoding: the stream's packed entries
  std::vector<uint64_t> sparse_ctx;   // large orders, encoding: visited contexts, sorted
  std::vector<uint8_t> sparse_entry;  // ... and their entries

  static uint8_t packed_entry(const uint8_t* bits, uint64_t bytes, uint64_t i) {
    const uint64_t bit = 5 * i, byte = bit >> 3;
    const uint32_t two = bits[byte] | ((byte + 1 < bytes ? bits[byte + 1] : 0u) << 8);
    return static_cast<uint8_t>((two >> (bit & 7)) & 31);
  }

  // The entry of context ctx; DecodeError for a stored value that is not a permutation index.
  uint8_t entry(uint64_t ctx) const {
    if (!dense.empty()) return dense[ctx];
    if (stored != nullptr) {
      const uint8_t k = packed_entry(stored, stored_bytes_, ctx);
      if (k >= 24) fail("markov model", "entry " + std::to_string(ctx) + " is " + std::to_string(k) + ", not a permutation index (< 24)");
      return k;
    }
    const auto it = std::lower_bound(sparse_ctx.begin(), sparse_ctx.end(), ctx);
    return (it != sparse_ctx.end() && *it == ctx) ? sparse_entry[it - sparse_ctx.begin()] : kDefaultEntry;
  }

  static MarkovModel read(const uint8_t* bits, uint64_t bytes, int order) {
    MarkovModel m;
    m.order = order;
    const uint64_t n = num_contexts(order);
    if ((5 * n + 7) / 8 > bytes) fail("markov model", "truncated");
    if (order > kDenseMaxOrder) {
      m.stored = bits;
      m.stored_bytes_ = bytes;
      return m;
    }
    m.dense.resize(n);
    m.ranked.resize(4 * n);
    const auto& perms = permutations();
    for (uint64_t i = 0; i < n; i++) {
      const uint8_t k = packed_entry(bits, bytes, i);
      if (k >= 24) fail("markov model", "entry " + std::to_string(i) + " is " + std::to_string(k) + ", not a permutation index (< 24)");
      m.dense[i] = k;
      std::memcpy(&m.ranked[4 * i], perms[k].data(), 4);
    }
    return m;
  }

  void write(std::vector<uint8_t>& out) const {
    const uint64_t n = num_contexts(order);
    const uint64_t bytes = (5 * n + 7) / 8;
    const size_t at = out.size();
    out.resize(at + bytes, 0);
    uint8_t* bits = out.data() + at;
    auto put = [&](uint64_t i, uint8_t k) {
      const uint64_t bit = 5 * i;
      const uint32_t v = static_cast<uint32_t>(k) << (bit & 7);
      bits[bit >> 3] = static_cast<uint8_t>((bits[bit >> 3] & ~(31u << (bit & 7))) | v);
      if ((bit & 7) > 3) bits[(bit >> 3) + 1] = static_cast<uint8_t>((bits[(bit >> 3) + 1] & ~(31u >> (8 - (bit & 7)))) | (v >> 8));
    };
    if (!dense.empty()) {
      for (uint64_t i = 0; i < n; i++) put(i, dense[i]);
      return;
    }
    // Eight default entries fill exactly five bytes; lay that pattern down, then the visited contexts.
    uint8_t pattern[5] = {0, 0, 0, 0, 0};
    for (int i = 0; i < 8; i++) {
      const int bit = 5 * i;
      const uint32_t v = static_cast<uint32_t>(kDefaultEntry) << (bit & 7);
      pattern[bit >> 3] |= static_cast<uint8_t>(v);
      if ((bit & 7) > 3) pattern[(bit >> 3) + 1] |= static_cast<uint8_t>(v >> 8);
    }
    for (uint64_t i = 0; i + 5 <= bytes; i += 5) std::memcpy(bits + i, pattern, 5);
    for (uint64_t i = bytes - bytes % 5; i < bytes; i++) bits[i] = pattern[i % 5];
    for (size_t j = 0; j < sparse_ctx.size(); j++) put(sparse_ctx[j], sparse_entry[j]);
  }

 private:
  uint64_t stored_bytes_ = 0;
};

// Symbol statistics per context. Dense for small orders; for large orders only the contexts
// that occur are kept (sorted), so memory follows the data rather than 4^order.
class MarkovStats {
 public:
  explicit MarkovStats(int order) : order_(order), dense_(order <= kDenseMaxOrder) {
    if (dense_) counts_.assign(num_contexts(order) * 4, 0);
  }

  // Adds one slice's difference symbols (the context restarts at 0 for each slice).
  void add(const uint8_t* f, uint64_t n) {
    const int shift = 2 * (order_ - 1);
    uint64_t ctx = 0;
    if (dense_) {
      for (uint64_t i = 0; i < n; i++) {
        counts_[ctx * 4 + f[i]]++;
        ctx = (ctx >> 2) | (static_cast<uint64_t>(f[i]) << shift);
      }
    } else {
      for (uint64_t i = 0; i < n; i++) {
        sparse_.push_back(ctx * 4 + f[i]);
        ctx = (ctx >> 2) | (static_cast<uint64_t>(f[i]) << shift);
      }
    }
  }

  // Ranks each context's symbols by count, descending, ties to the higher symbol (FORMAT 9.4).
  MarkovModel build() {
    MarkovModel m;
    m.order = order_;
    const uint64_t n = num_contexts(order_);
    if (dense_) {
      m.dense = dense_entries(counts_.data(), n);
    } else {
      std::sort(sparse_.begin(), sparse_.end());
      size_t i = 0;
      while (i < sparse_.size()) {
        const uint64_t c = sparse_[i] >> 2;
        std::array<uint64_t, 4> k = {0, 0, 0, 0};
        while (i < sparse_.size() && (sparse_[i] >> 2) == c) k[sparse_[i++] & 3]++;
        m.sparse_ctx.push_back(c);
        m.sparse_entry.push_back(static_cast<uint8_t>(rank_entry(k)));
      }
    }
    return m;
  }

  // The entry of each of n contexts from its symbol counts (counts[4*c + f]).
  static std::vector<uint8_t> dense_entries(const uint64_t* counts, uint64_t n) {
    std::vector<uint8_t> entries(n, kDefaultEntry);
    for (uint64_t c = 0; c < n; c++) {
      const uint64_t* k = counts + c * 4;
      if (k[0] | k[1] | k[2] | k[3]) entries[c] = static_cast<uint8_t>(rank_entry({k[0], k[1], k[2], k[3]}));
    }
    return entries;
  }

  static int rank_entry(const std::array<uint64_t, 4>& k) {
    std::array<uint8_t, 4> perm = {3, 2, 1, 0};  // ties go to the higher symbol
    std::stable_sort(perm.begin(), perm.end(), [&](uint8_t a, uint8_t b) { return k[a] > k[b]; });
    return permutation_index(perm);
  }

 private:
  int order_;
  bool dense_;
  std::vector<uint64_t> counts_;
  std::vector<uint64_t> sparse_;
};

// Code lengths of a dense model: lengths[4*ctx + f] = bits of symbol f in context ctx.
inline std::vector<uint8_t> code_lengths(const MarkovModel& model) {
  const auto& perms = permutations();
  static constexpr uint8_t kLen[4] = {1, 2, 3, 3};
  std::vector<uint8_t> lengths(model.dense.size() * 4);
  for (size_t c = 0; c < model.dense.size(); c++) {
    for (int r = 0; r < 4; r++) lengths[4 * c + perms[model.dense[c]][r]] = kLen[r];
  }
  return lengths;
}

// The bytes of one slice's markov-coded move stream, from code_lengths, without writing it.
inline uint64_t markov_coded_bytes(const uint8_t* f, uint64_t n, int order, const uint8_t* lengths) {
  if (n == 0) return 0;
  const int shift = 2 * (order - 1);
  uint64_t bits = 2;
  uint64_t ctx = static_cast<uint64_t>(f[0]) << shift;
  for (uint64_t i = 1; i < n; i++) {
    bits += lengths[4 * ctx + f[i]];
    ctx = (ctx >> 2) | (static_cast<uint64_t>(f[i]) << shift);
  }
  return (bits + 7) / 8;
}

// A slice's difference symbols, as the order search sees them.
struct SymbolSpan {
  const uint8_t* f;
  uint64_t n;
};

// The markov order (0..max_order) that gives the smallest model plus move streams, and that
// size. Orders only pay when the model is smaller than the bits they can save (at most one per
// symbol), which bounds the search. One pass counts symbols in the contexts of the highest order
// left; a lower order's context is the higher one without its oldest symbol, so its counts are
// sums of four higher contexts, and every order's coded size follows from its counts (ranking
// by count is the code the encoder writes: 1, 2, 3, 3 bits by rank). Only the padding of each
// slice to whole bytes is not known from counts: orders whose size is within that margin of the
// best are measured exactly.
inline int best_markov_order(const std::vector<SymbolSpan>& slices, int max_order, MarkovModel& best_model) {
  uint64_t plain = 0, floor_bytes = 0, coded_slices = 0;
  std::array<uint64_t, 4> first = {0, 0, 0, 0};
  for (const SymbolSpan& s : slices) {
    if (s.n == 0) continue;
    plain += (s.n + 3) / 4;
    floor_bytes += (s.n + 1 + 7) / 8;  // 2 raw bits, then at least one bit per symbol
    coded_slices++;
    first[s.f[0]]++;
  }
  auto model_bytes = [](int order) { return (5 * num_contexts(order) + 7) / 8; };
  int top = 0;
  while (top < max_order && model_bytes(top + 1) + floor_bytes < plain) top++;
  best_model = MarkovModel();
  if (top == 0) return 0;

  // Lower and upper bounds of each order's size (exact bits; padding between 0 and 7 per slice).
  std::vector<uint64_t> low(top + 1, plain), high(top + 1, plain);
  std::vector<std::vector<uint64_t>> counts_of(top + 1);  // each order's counts, for its model
  static constexpr uint64_t kLen[4] = {1, 2, 3, 3};
  auto evaluate = [&](int highest) {  // fills low, high and counts_of for orders 1..highest
    std::vector<uint64_t> counts(num_contexts(highest) * 4, 0);
    const int shift = 2 * (highest - 1);
    for (const SymbolSpan& s : slices) {
      uint64_t ctx = 0;
      for (uint64_t i = 0; i < s.n; i++) {
        counts[ctx * 4 + s.f[i]]++;
        ctx = (ctx >> 2) | (static_cast<uint64_t>(s.f[i]) << shift);
      }
    }
    for (int order = highest; order >= 1; order--) {
      const uint64_t n = num_contexts(order);
      uint64_t bits = 0;
      for (uint64_t c = 0; c < n; c++) {
        const uint64_t* k = &counts[c * 4];
        uint64_t a = k[0], b = k[1], x = k[2], y = k[3];
        // the two largest counts take 1 and 2 bits, the others 3
        if (a < b) std::swap(a, b);
        if (x < y) std::swap(x, y);
        const uint64_t m1 = std::max(a, x);
        const uint64_t m2 = a > x ? std::max(b, x) : std::max(a, y);
        bits += 3 * (k[0] + k[1] + k[2] + k[3]) - 2 * m1 - m2;
      }
      // Each slice's first symbol is counted in context 0 but written in 2 raw bits.
      const auto& rank0 = permutations()[MarkovStats::rank_entry({counts[0], counts[1], counts[2], counts[3]})];
      for (int r = 0; r < 4; r++) bits = bits + 2 * first[rank0[r]] - kLen[r] * first[rank0[r]];
      counts_of[order].assign(counts.begin(), counts.begin() + 4 * n);
      low[order] = model_bytes(order) + (bits + 7) / 8;
      high[order] = model_bytes(order) + (bits + 7 * coded_slices + 7) / 8;
      // fold: drop the oldest symbol (the least significant base-4 digit of the context)
      for (uint64_t c = 0; c < n / 4; c++) {
        for (int f = 0; f < 4; f++) {
          counts[c * 4 + f] = counts[(4 * c) * 4 + f] + counts[(4 * c + 1) * 4 + f] + counts[(4 * c + 2) * 4 + f] +
                              counts[(4 * c + 3) * 4 + f];
        }
      }
    }
  };
  // Count at order 6 first (a table that stays in cache; real data chooses 2..5): a higher order
  // is counted only if its model leaves room to beat the best size found, so the search stays exact.
  const int first_top = std::min(top, 6);
  evaluate(first_top);
  uint64_t best_high = plain;
  for (int order = 1; order <= first_top; order++) best_high = std::min(best_high, high[order]);
  int reach = first_top;
  while (reach < top && model_bytes(reach + 1) + floor_bytes < best_high) reach++;
  if (reach > first_top) evaluate(reach);
  top = reach;
  int best = 0;
  for (int order = 1; order <= top; order++) {
    if (high[order] < high[best]) best = order;
  }
  // Measure every order that might beat the best bound (order 0's size is exact).
  uint64_t best_size = high[best];
  bool measured = best == 0;
  for (int order = 1; order <= top; order++) {
    if (low[order] > best_size || (measured && low[order] >= best_size)) continue;
    MarkovModel model;
    model.order = order;
    model.dense = MarkovStats::dense_entries(counts_of[order].data(), num_contexts(order));
    const std::vector<uint8_t> lengths = code_lengths(model);
    uint64_t size = model_bytes(order);
    for (const SymbolSpan& s : slices) size += markov_coded_bytes(s.f, s.n, order, lengths.data());
    if (size < best_size || (size == best_size && (order < best || !measured))) {
      best_size = size;
      best = order;
      measured = true;
      best_model = std::move(model);
    }
  }
  if (best == 0) best_model = MarkovModel();
  return best;
}

// Encodes one slice's difference symbols: 2 raw bits, then one prefix code per symbol for its
// rank in the current context (rank r = r ones then a zero; rank 3 = three ones). Codes gather
// in a 64-bit accumulator written out four bytes at a time into a buffer sized for the worst case.
inline void markov_encode(const uint8_t* f, uint64_t n, const MarkovModel& model, std::vector<uint8_t>& out) {
  if (n == 0) return;
  const auto& perms = permutations();
  const int shift = 2 * (model.order - 1);
  static constexpr uint32_t kCode[4] = {0b0, 0b01, 0b011, 0b111};
  static constexpr uint32_t kLen[4] = {1, 2, 3, 3};
  // code_of[4*k + f]: (length << 8 | code) of symbol f under permutation k.
  uint16_t code_of[24 * 4];
  for (int k = 0; k < 24; k++) {
    for (int r = 0; r < 4; r++) code_of[4 * k + perms[k][r]] = static_cast<uint16_t>(kLen[r] << 8 | kCode[r]);
  }
  const size_t at = out.size();
  out.resize(at + (2 + 3 * n + 7) / 8 + 8);
  uint8_t* dst = out.data() + at;
  uint64_t acc = f[0];
  uint32_t fill = 2;
  uint64_t ctx = static_cast<uint64_t>(f[0]) << shift;
  const uint8_t* dense = model.dense.empty() ? nullptr : model.dense.data();
  for (uint64_t i = 1; i < n; i++) {
    const uint16_t c = code_of[4 * (dense ? dense[ctx] : model.entry(ctx)) + f[i]];
    acc |= static_cast<uint64_t>(c & 0xFF) << fill;
    fill += c >> 8;
    if (fill >= 32) {
      store_le(dst, acc, 4);
      dst += 4;
      acc >>= 32;
      fill -= 32;
    }
    ctx = (ctx >> 2) | (static_cast<uint64_t>(f[i]) << shift);
  }
  while (fill > 0) {
    *dst++ = static_cast<uint8_t>(acc);
    acc >>= 8;
    fill = fill > 8 ? fill - 8 : 0;
  }
  out.resize(static_cast<size_t>(dst - out.data()));
}

// Reads markov-coded difference symbols (FORMAT 8.3: the direction of a move is the previous
// direction plus its difference, mod 4; the caller keeps the direction). A code cut short by the
// end of the data reads its missing bits as zero (FORMAT 8.3), but a code that would start at or
// past the end is the end of the stream: every symbol costs at least one bit of input, so a
// stream of n bytes yields at most 8n symbols (zeros read past the end would decode as rank-0
// symbols for ever).
class MarkovDifferences {
 public:
  MarkovDifferences(const uint8_t* data, uint64_t size, const MarkovModel& model)
      : data_(data), size_(size), model_(model), ranked_(model.ranked.empty() ? nullptr : model.ranked.data()),
        shift_(2 * (model.order - 1)) {}

  bool next(uint32_t& difference) {
    // Bits consumed so far: 8 * pos_ loaded, fill_ of them still in the buffer.
    if (8 * pos_ >= 8 * size_ + static_cast<uint64_t>(fill_)) return false;
    uint32_t f;
    if (first_) {
      refill();
      f = static_cast<uint32_t>(buf_ & 3);
      consume(2);
      first_ = false;
    } else {
      if (fill_ < 3) refill();
      // The next three bits decide rank (leading one bits, at most 3) and code length (rank + 1,
      // capped at 3) by table: the rank is data and a branch on it would mispredict.
      static constexpr uint8_t kRankLen[8] = {0 | 1 << 2, 1 | 2 << 2, 0 | 1 << 2, 2 | 3 << 2,
                                              0 | 1 << 2, 1 | 2 << 2, 0 | 1 << 2, 3 | 3 << 2};
      const uint8_t rl = kRankLen[buf_ & 7];
      const int rank = rl & 3;
      consume(rl >> 2);
      f = ranked_ ? ranked_[4 * ctx_ + rank] : permutations()[model_.entry(ctx_)][rank];
    }
    ctx_ = (ctx_ >> 2) | (static_cast<uint64_t>(f) << shift_);
    difference = f;
    return true;
  }

 private:
  void refill() {
    while (fill_ <= 56) {
      const uint64_t b = pos_ < size_ ? data_[pos_] : 0;
      pos_++;
      buf_ |= b << fill_;
      fill_ += 8;
    }
  }
  void consume(int n) {
    buf_ >>= n;
    fill_ -= n;
  }

  const uint8_t* data_;
  uint64_t size_;
  const MarkovModel& model_;
  const uint8_t* ranked_;
  int shift_;
  uint64_t pos_ = 0;
  uint64_t buf_ = 0;
  int fill_ = 0;
  bool first_ = true;
  uint64_t ctx_ = 0;
};

// Reads plain 2-bit difference symbols, four per byte, LSB-first (FORMAT 6.4). They are taken
// from a 64-bit buffer refilled eight bytes at a time: fetching each from its byte (index,
// shift, mask) was most of the instructions of drawing a crack.
class PlainDifferences {
 public:
  PlainDifferences(const uint8_t* data, uint64_t size) : data_(data), size_(size) {}
  bool next(uint32_t& difference) {
    if (left_ == 0 && !refill()) return false;
    difference = static_cast<uint32_t>(buf_ & 3);
    buf_ >>= 2;
    left_--;
    return true;
  }

 private:
  bool refill() {
    const uint64_t n = size_ - pos_ < 8 ? size_ - pos_ : 8;
    if (n == 0) return false;
    buf_ = n == 8 ? load_u64(data_ + pos_) : load_le(data_ + pos_, static_cast<int>(n));
    pos_ += n;
    left_ = static_cast<uint32_t>(4 * n);
    return true;
  }

  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  uint64_t buf_ = 0;
  uint32_t left_ = 0;
};

}  // namespace crackle
