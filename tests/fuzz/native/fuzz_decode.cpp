// Native libFuzzer target for the C++ decoder: the stream parser, the labels section, the BOC
// index and every slice decoder path, without Python in the loop, so that an ASan + UBSan build
// runs thousands of inputs a second (the Python harness, fuzz_decoder.py, adds the Python layer's
// oracles at a few hundred a second). Build and run: tests/fuzz/native/run.sh.
//
// Input: a mode byte, then a stream (the Python harness's format, so one corpus serves both).
// mode % 3 == 0: the stream as it is; 1: CRC8, index CRC and labels CRC re-signed after the
// mutation, so mutations reach the labels and crack-code parsers; 2: turned into a version-0
// stream without CRCs, so every structural check is exercised. Bit 7: decode on 2 threads.
// Bits 2-6 pick the slice decoded alone.
//
// Oracles: nothing but crackle::DecodeError may be thrown (an uncaught std::bad_alloc or any other
// exception aborts, as does a sanitizer report); verify (decode without output) passes exactly when
// the full decode passes; a decode never passes with a bad labels CRC; one slice decoded alone
// equals that slice of the full decode.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "codec.hpp"
#include "common.hpp"
#include "crc.hpp"

namespace {

constexpr uint64_t kMaxOutputBytes = 64ull << 20;  // as the Python oracles' MAX_OUTPUT_BYTES
constexpr size_t kV1Header = 29;

using Bytes = std::vector<uint8_t>;

uint32_t get32(const Bytes& b, size_t at) { uint32_t v; std::memcpy(&v, b.data() + at, 4); return v; }
uint64_t get64(const Bytes& b, size_t at) { uint64_t v; std::memcpy(&v, b.data() + at, 8); return v; }
void put32(Bytes& b, size_t at, uint32_t v) { std::memcpy(b.data() + at, &v, 4); }

bool is_v1(const Bytes& b) { return b.size() >= kV1Header && std::memcmp(b.data(), "crkl", 4) == 0 && b[4] == 1; }

// The same surgery as tests/fuzz/seeds.py resign(): CRCs recomputed from the declared layout.
Bytes resign(Bytes b) {
  if (!is_v1(b)) return b;
  b[28] = crackle::crc8(b.data() + 5, 23);
  uint64_t sx = get32(b, 7), sy = get32(b, 11), sz = get32(b, 15), nlb = get64(b, 20);
  if (sx * sy * sz == 0 || kV1Header + 4 * sz + 4 > b.size()) return b;
  size_t index_end = kV1Header + 4 * sz;
  put32(b, index_end, crackle::crc32c(b.data() + kV1Header, 4 * sz));
  uint64_t lab0 = index_end + 4, trailer = b.size() - 4 * (sz + 1);
  if (b.size() >= 4 * (sz + 1) && nlb <= trailer && lab0 <= trailer - nlb)
    put32(b, trailer, crackle::crc32c(b.data() + lab0, nlb));
  return b;
}

// The same surgery as seeds.py strip_crcs(): a version-0 stream (24-byte header, no CRCs).
Bytes strip_crcs(const Bytes& b) {
  if (!is_v1(b)) return b;
  uint64_t sz = get32(b, 15), nlb = get64(b, 20);
  Bytes out(b.begin(), b.begin() + 20);
  out[4] = 0;
  uint32_t nlb32 = static_cast<uint32_t>(nlb);
  out.insert(out.end(), reinterpret_cast<uint8_t*>(&nlb32), reinterpret_cast<uint8_t*>(&nlb32) + 4);
  if (get32(b, 7) == 0 || get32(b, 11) == 0 || sz == 0) {
    out.insert(out.end(), b.begin() + kV1Header, b.end());
    return out;
  }
  size_t index_end = kV1Header + 4 * sz;
  if (index_end > b.size()) return b;
  out.insert(out.end(), b.begin() + kV1Header, b.begin() + index_end);
  size_t body = std::min(b.size(), index_end + 4), end = b.size();
  if (end - body >= 4 * (sz + 1)) end -= 4 * (sz + 1);
  out.insert(out.end(), b.begin() + body, b.begin() + end);
  return out;
}

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "FINDING: %s\n", what);
  std::abort();
}

template <class F>
bool passes(F&& f) {  // only DecodeError is an answer; anything else escapes and aborts the run
  try {
    f();
    return true;
  } catch (const crackle::DecodeError&) {
    return false;
  }
}

// Slice k of a full decode laid out in the header's order, as one slice decodes alone.
Bytes slice_of(const Bytes& full, const crackle::Header& h, uint32_t k) {
  size_t w = h.data_width, pixels = h.slice_pixels();
  Bytes out(pixels * w);
  if (h.fortran) {
    std::memcpy(out.data(), full.data() + k * pixels * w, pixels * w);
  } else {  // C order: z is the fastest axis
    for (size_t i = 0; i < pixels; ++i) std::memcpy(out.data() + i * w, full.data() + (i * h.sz + k) * w, w);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  int mode = data[0], threads = (mode & 0x80) ? 2 : 1;
  Bytes stream(data + 1, data + size);
  if (mode % 3 == 1) stream = resign(std::move(stream));
  else if (mode % 3 == 2) stream = strip_crcs(stream);

  crackle::StreamInfo s;
  if (!passes([&] { s = crackle::StreamInfo::open(stream.data(), stream.size()); })) return 0;
  const crackle::Header& h = s.header;
  bool labels_ok = passes([&] { crackle::check_labels_crc(s); });
  unsigned __int128 bytes = static_cast<unsigned __int128>(h.slice_pixels()) * h.sz * h.data_width;
  if (bytes > kMaxOutputBytes) return 0;

  Bytes full(static_cast<size_t>(bytes));
  bool decoded = passes([&] {
    crackle::check_slice_codes(s, 0, h.sz);
    crackle::decode(s, 0, h.sz, full.data(), threads);
  });
  bool verified = passes([&] { crackle::decode(s, 0, h.sz, nullptr, 1); });
  if (decoded != verified) finding(decoded ? "decode passed, verify failed" : "verify passed, decode failed");
  if (decoded && !labels_ok) finding("decode passed with a bad labels CRC");
  if (decoded && h.sz > 0 && h.slice_pixels() > 0) {
    uint32_t k = ((mode >> 2) & 0x1F) % h.sz;
    Bytes part(h.slice_pixels() * h.data_width);
    if (!passes([&] { crackle::decode(s, k, k + 1, part.data(), 1); })) finding("one slice fails alone");
    if (part != slice_of(full, h, k)) finding("one slice decoded alone differs from the full decode");
  }
  return 0;
}
