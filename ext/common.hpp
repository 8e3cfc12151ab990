// Shared building blocks of the Crackle core: errors, byte widths, little-endian access,
// checked arithmetic and a small parallel-for. No Python anywhere in ext/ except _crackle.pyx.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace crackle {

// A malformed stream. The message starts with the section that failed ("header: ...").
class DecodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Input the encoder cannot represent (sizes beyond the format's limits).
class EncodeError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

[[noreturn]] inline void fail(const std::string& section, const std::string& what) {
  throw DecodeError(section + ": " + what);
}

// FORMAT 0: the smallest of 1, 2, 4, 8 bytes whose unsigned range holds v.
inline int width_of(uint64_t v) {
  if (v <= 0xFFull) return 1;
  if (v <= 0xFFFFull) return 2;
  if (v <= 0xFFFFFFFFull) return 4;
  return 8;
}

inline int log2_of_width(int w) { return w == 1 ? 0 : w == 2 ? 1 : w == 4 ? 2 : 3; }

inline uint64_t width_mask(int w) { return w >= 8 ? ~0ull : ((1ull << (8 * w)) - 1); }

inline bool host_is_little_endian() {
  const uint16_t probe = 1;
  uint8_t first;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

// Little-endian loads/stores of 1, 2, 4 or 8 bytes. The byte loop compiles to a plain load on
// little-endian hosts and stays correct on big-endian ones.
inline uint64_t load_le(const uint8_t* p, int width) {
  uint64_t v = 0;
  for (int i = width - 1; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

inline uint32_t load_u32(const uint8_t* p) { return static_cast<uint32_t>(load_le(p, 4)); }
inline uint64_t load_u64(const uint8_t* p) { return load_le(p, 8); }

inline void store_le(uint8_t* p, uint64_t v, int width) {
  for (int i = 0; i < width; i++) {
    p[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

inline void append_le(std::vector<uint8_t>& out, uint64_t v, int width) {
  const size_t at = out.size();
  out.resize(at + width);
  store_le(out.data() + at, v, width);
}

// a * b and a + b, or a DecodeError naming `section` when the result overflows 64 bits.
inline uint64_t checked_mul(uint64_t a, uint64_t b, const char* section) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) fail(section, "size overflows 64 bits");
  return r;
}
inline uint64_t checked_add(uint64_t a, uint64_t b, const char* section) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) fail(section, "size overflows 64 bits");
  return r;
}

// A bounded cursor over one section: every read checks the remaining length first.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, uint64_t size, const char* section)
      : data_(data), size_(size), pos_(0), section_(section) {}

  uint64_t read(int width) {
    need(static_cast<uint64_t>(width));
    const uint64_t v = load_le(data_ + pos_, width);
    pos_ += width;
    return v;
  }
  const uint8_t* take(uint64_t n) {
    need(n);
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  // Room for `count` items of `width` bytes, checked without overflow.
  const uint8_t* take_items(uint64_t count, int width) {
    if (count > remaining() / static_cast<uint64_t>(width)) {
      fail(section_, "claims " + std::to_string(count) + " items of " + std::to_string(width) +
                         " bytes but only " + std::to_string(remaining()) + " bytes remain");
    }
    return take(count * width);
  }
  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

 private:
  void need(uint64_t n) const {
    if (n > size_ - pos_) {
      fail(section_, "truncated (needs " + std::to_string(n) + " bytes at offset " + std::to_string(pos_) +
                         ", " + std::to_string(size_ - pos_) + " remain)");
    }
  }
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_;
  const char* section_;
};

// Whether code may use instructions beyond the baseline of its architecture (CRC, carry-less
// multiply, popcount) when the CPU has them. CRACKLE_PORTABLE=1 in the environment says no, so
// that tests can run the portable paths on any machine.
inline bool env_flag_set(const char* name) {
  const char* v = std::getenv(name);
  return !(v == nullptr || v[0] == '\0' || (v[0] == '0' && v[1] == '\0'));
}

inline bool hardware_paths_allowed() {
  static const bool allowed = !env_flag_set("CRACKLE_PORTABLE");
  return allowed;
}

// Whether the AVX-512 paths may be used (on x86 CPUs that have the instructions).
// CRACKLE_NO_AVX512=1 says no, so that tests can run the paths of CPUs without AVX-512.
inline bool avx512_paths_allowed() {
  static const bool allowed = hardware_paths_allowed() && !env_flag_set("CRACKLE_NO_AVX512");
  return allowed;
}

// Set bits of x. kHardware: the caller is compiled for a popcount instruction (x86 needs
// target("popcnt") for that; without it the builtin is a library call, slower than this SWAR).
template <bool kHardware>
inline uint32_t popcount64(uint64_t x) {
#if defined(__x86_64__) || defined(__i386__)
  if (!kHardware) {
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
    return static_cast<uint32_t>((x * 0x0101010101010101ull) >> 56);
  }
#endif
  return static_cast<uint32_t>(__builtin_popcountll(x));
}

// Fills dst[0, n) with `value`. Label runs are short (tens of pixels), where std::fill's
// prologue, epilogue and loop-exit mispredictions dominate. This writes two 32-byte blocks
// unconditionally (most runs need no more) and loops only for longer runs; it may write up to
// 2 blocks past n. Callers pass `room` = elements writable from dst (>= n) and get an exact
// fill near the end of their buffer.
template <typename T>
inline void fill_run(T* dst, uint64_t n, T value, uint64_t room) {
  constexpr uint64_t K = 32 / sizeof(T);
  if (room < n + 4 * K) {
    std::fill(dst, dst + n, value);
    return;
  }
  T block[K];
  for (uint64_t k = 0; k < K; k++) block[k] = value;
  std::memcpy(dst, block, sizeof(block));
  std::memcpy(dst + K, block, sizeof(block));
  std::memcpy(dst + 2 * K, block, sizeof(block));
  std::memcpy(dst + 3 * K, block, sizeof(block));
  if (__builtin_expect(n > 4 * K, 0)) {
    for (uint64_t x = 4 * K; x < n; x += K) std::memcpy(dst + x, block, sizeof(block));
  }
}

inline int resolve_threads(int requested, uint64_t tasks) {
  int n = requested;
  if (n <= 0) {
    n = static_cast<int>(std::thread::hardware_concurrency());
    if (n <= 0) n = 1;
  }
  if (static_cast<uint64_t>(n) > tasks) n = static_cast<int>(std::max<uint64_t>(tasks, 1));
  return n;
}

// Runs fn(task, worker) for every task in [0, tasks) on `threads` threads (worker < threads).
// Tasks are handed out one at a time so uneven slices balance. The first exception thrown by
// any task stops the hand-out and is rethrown here after all threads have joined.
template <typename Fn>
void parallel_for(uint64_t tasks, int threads, Fn&& fn) {
  threads = resolve_threads(threads, tasks);
  if (threads <= 1) {
    for (uint64_t t = 0; t < tasks; t++) fn(t, 0);
    return;
  }
  std::atomic<uint64_t> next{0};
  std::atomic<bool> stop{false};
  std::exception_ptr error;
  std::mutex error_lock;
  auto work = [&](int worker) {
    for (;;) {
      if (stop.load(std::memory_order_relaxed)) return;
      const uint64_t t = next.fetch_add(1);
      if (t >= tasks) return;
      try {
        fn(t, worker);
      } catch (...) {
        std::lock_guard<std::mutex> guard(error_lock);
        if (!error) error = std::current_exception();
        stop.store(true);
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (int w = 1; w < threads; w++) pool.emplace_back(work, w);
  work(0);
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace crackle
