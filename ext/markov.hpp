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

// One stored entry (permutation index) per context. Kept as bytes rather than expanded
// permutations so that even an order-15 model costs one byte per context.
struct MarkovModel {
  int order = 0;
  std::vector<uint8_t> entry;

  static MarkovModel read(const uint8_t* bits, uint64_t bytes, int order) {
    MarkovModel m;
    m.order = order;
    const uint64_t n = num_contexts(order);
    if ((5 * n + 7) / 8 > bytes) fail("markov model", "truncated");
    m.entry.resize(n);
    for (uint64_t i = 0; i < n; i++) {
      const uint64_t bit = 5 * i;
      const uint32_t two = bits[bit >> 3] | (((bit >> 3) + 1 < bytes ? bits[(bit >> 3) + 1] : 0) << 8);
      const uint8_t k = static_cast<uint8_t>((two >> (bit & 7)) & 31);
      if (k >= 24) fail("markov model", "entry " + std::to_string(i) + " is " + std::to_string(k) + ", not a permutation index (< 24)");
      m.entry[i] = k;
    }
    return m;
  }

  void write(std::vector<uint8_t>& out) const {
    const uint64_t n = entry.size();
    const size_t at = out.size();
    out.resize(at + (5 * n + 7) / 8, 0);
    uint8_t* bits = out.data() + at;
    for (uint64_t i = 0; i < n; i++) {
      const uint64_t bit = 5 * i;
      const uint32_t v = static_cast<uint32_t>(entry[i]) << (bit & 7);
      bits[bit >> 3] |= static_cast<uint8_t>(v);
      if (v >> 8) bits[(bit >> 3) + 1] |= static_cast<uint8_t>(v >> 8);
    }
  }
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

  void merge(const MarkovStats& other) {
    if (dense_) {
      for (size_t i = 0; i < counts_.size(); i++) counts_[i] += other.counts_[i];
    } else {
      sparse_.insert(sparse_.end(), other.sparse_.begin(), other.sparse_.end());
    }
  }

  // Ranks each context's symbols by count, descending, ties to the higher symbol (FORMAT 9.4).
  MarkovModel build() {
    MarkovModel m;
    m.order = order_;
    const uint64_t n = num_contexts(order_);
    m.entry.assign(n, static_cast<uint8_t>(rank_entry({0, 0, 0, 0})));
    if (dense_) {
      for (uint64_t c = 0; c < n; c++) {
        const uint64_t* k = &counts_[c * 4];
        if (k[0] | k[1] | k[2] | k[3]) m.entry[c] = static_cast<uint8_t>(rank_entry({k[0], k[1], k[2], k[3]}));
      }
    } else {
      std::sort(sparse_.begin(), sparse_.end());
      size_t i = 0;
      while (i < sparse_.size()) {
        const uint64_t c = sparse_[i] >> 2;
        std::array<uint64_t, 4> k = {0, 0, 0, 0};
        while (i < sparse_.size() && (sparse_[i] >> 2) == c) k[sparse_[i++] & 3]++;
        m.entry[c] = static_cast<uint8_t>(rank_entry(k));
      }
    }
    return m;
  }

 private:
  static constexpr int kDenseMaxOrder = 10;

  static int rank_entry(const std::array<uint64_t, 4>& k) {
    std::array<uint8_t, 4> perm = {3, 2, 1, 0};  // ties go to the higher symbol
    std::stable_sort(perm.begin(), perm.end(), [&](uint8_t a, uint8_t b) { return k[a] > k[b]; });
    return permutation_index(perm);
  }

  int order_;
  bool dense_;
  std::vector<uint64_t> counts_;
  std::vector<uint64_t> sparse_;
};

// LSB-first bit writer.
class BitWriter {
 public:
  explicit BitWriter(std::vector<uint8_t>& out) : out_(out) {}
  void put(uint32_t bits, int n) {
    acc_ |= static_cast<uint64_t>(bits) << fill_;
    fill_ += n;
    while (fill_ >= 8) {
      out_.push_back(static_cast<uint8_t>(acc_));
      acc_ >>= 8;
      fill_ -= 8;
    }
  }
  void flush() {
    if (fill_ > 0) out_.push_back(static_cast<uint8_t>(acc_));
    acc_ = 0;
    fill_ = 0;
  }

 private:
  std::vector<uint8_t>& out_;
  uint64_t acc_ = 0;
  int fill_ = 0;
};

// Encodes one slice's difference symbols: 2 raw bits, then one prefix code per symbol for its
// rank in the current context (rank r = r ones then a zero; rank 3 = three ones).
inline void markov_encode(const uint8_t* f, uint64_t n, const MarkovModel& model, std::vector<uint8_t>& out) {
  if (n == 0) return;
  const auto& perms = permutations();
  const int shift = 2 * (model.order - 1);
  static constexpr uint32_t kCode[4] = {0b0, 0b01, 0b011, 0b111};
  static constexpr int kLen[4] = {1, 2, 3, 3};
  BitWriter bw(out);
  bw.put(f[0], 2);
  uint64_t ctx = static_cast<uint64_t>(f[0]) << shift;
  for (uint64_t i = 1; i < n; i++) {
    const auto& perm = perms[model.entry[ctx]];
    int rank = 0;
    while (perm[rank] != f[i]) rank++;
    bw.put(kCode[rank], kLen[rank]);
    ctx = (ctx >> 2) | (static_cast<uint64_t>(f[i]) << shift);
  }
  bw.flush();
}

// Reads markov-coded directions. Bits past the end read as zero (FORMAT 8.3); the caller bounds
// how many directions it asks for, so a stream can never spin forever.
class MarkovDirections {
 public:
  MarkovDirections(const uint8_t* data, uint64_t size, const MarkovModel& model)
      : data_(data), size_(size), entry_(model.entry.data()), shift_(2 * (model.order - 1)) {}

  bool next(int& dir) {
    uint32_t f;
    if (first_) {
      refill();
      f = static_cast<uint32_t>(buf_ & 3);
      consume(2);
      first_ = false;
    } else {
      if (fill_ < 3) refill();
      const uint32_t v = static_cast<uint32_t>(buf_ & 7);
      // rank = number of leading one bits (at most 3); code length = rank + 1, capped at 3.
      const int rank = (v & 1) ? ((v & 2) ? ((v & 4) ? 3 : 2) : 1) : 0;
      consume(rank == 3 ? 3 : rank + 1);
      f = permutations()[entry_[ctx_]][rank];
    }
    ctx_ = (ctx_ >> 2) | (static_cast<uint64_t>(f) << shift_);
    d_ = (d_ + f) & 3;
    dir = static_cast<int>(d_);
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
  const uint8_t* entry_;
  int shift_;
  uint64_t pos_ = 0;
  uint64_t buf_ = 0;
  int fill_ = 0;
  bool first_ = true;
  uint64_t ctx_ = 0;
  uint32_t d_ = 0;
};

// Reads plain 2-bit difference codes, four per byte, LSB-first (FORMAT 6.4).
class PlainDirections {
 public:
  PlainDirections(const uint8_t* data, uint64_t size) : data_(data), fields_(size * 4) {}
  bool next(int& dir) {
    if (i_ >= fields_) return false;
    const uint32_t f = (data_[i_ >> 2] >> (2 * (i_ & 3))) & 3;
    i_++;
    d_ = (d_ + f) & 3;
    dir = static_cast<int>(d_);
    return true;
  }

 private:
  const uint8_t* data_;
  uint64_t fields_;
  uint64_t i_ = 0;
  uint32_t d_ = 0;
};

}  // namespace crackle
