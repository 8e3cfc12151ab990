// Re-coding a stream's crack codes under another markov order (FORMAT 6.4, 8, 9.4) without
// drawing a crack or labelling a pixel: the plain and the markov coder code the same difference
// symbols, so each slice's symbols are read with the old coder and written with the new one. The
// chain grammar (6.5) says where the last chain ends, so padding is never carried over. The BOC
// index, labels section and every CRC stay as they are (the slice CRCs cover the components,
// which do not change).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "codec.hpp"
#include "crack_chains.hpp"
#include "crack_codes.hpp"
#include "crc.hpp"
#include "markov.hpp"

namespace crackle {

// Appends to `out` the difference symbols of `chains` chains read from `codes`, exactly up to the
// end of the last chain. At most `max_symbols` are read (a markov reader never runs dry).
template <typename Differences>
void chain_symbols(Differences codes, size_t chains, uint64_t max_symbols, const char* section,
                   std::vector<uint8_t>& out) {
  out.clear();
  auto next = [&]() -> uint32_t {
    uint32_t f;
    if (!codes.next(f)) fail(section, "crack code ends inside a chain");
    if (out.size() >= max_symbols) fail(section, "crack code is longer than any slice of this size allows");
    out.push_back(static_cast<uint8_t>(f));
    return f;
  };
  uint32_t dir = 0;
  for (size_t c = 0; c < chains; c++) {
    uint64_t branches = 1;
    dir = (dir + next()) & 3;  // the pending move
    for (;;) {
      const uint32_t f = next();
      if (f == 2) {  // the pending move and its reverse: a control pair
        const uint32_t reverse = dir ^ 2;
        if (reverse == kUp || reverse == kLeft) {
          if (--branches == 0) {
            dir = reverse;
            break;
          }
        } else {
          branches++;
        }
        dir = (reverse + next()) & 3;
        continue;
      }
      dir = (dir + f) & 3;
    }
  }
}

inline std::vector<uint8_t> reencode(const StreamInfo& s, int order, int threads) {
  if (order < 0 || order > kMaxMarkovOrder) throw EncodeError("markov_model_order must be in 0..15");
  const Header& h = s.header;
  const Layout& L = s.layout;
  Header out_h = h;
  if (h.voxels() == 0) {
    std::vector<uint8_t> out(h.header_bytes());
    out_h.write(out.data());
    return out;
  }
  MarkovModel in_model;
  if (h.markov_order > 0) in_model = MarkovModel::read(s.data + L.model_offset, L.model_bytes, h.markov_order);
  const uint64_t max_symbols = 8ull * (static_cast<uint64_t>(h.sx) + 1) * (static_cast<uint64_t>(h.sy) + 1) + 64;
  const uint32_t sz = h.sz;
  std::vector<std::vector<uint8_t>> symbols(sz);
  std::vector<uint64_t> boc_bytes(sz);
  const int nthreads = resolve_threads(threads, sz);
  std::vector<std::vector<Vertex>> starts(nthreads);
  parallel_for(sz, nthreads, [&](uint64_t z, int w) {
    const std::string section = "slice z=" + std::to_string(z);
    const uint64_t begin = L.slice_offsets[z];
    const uint64_t len = L.slice_offsets[z + 1] - begin;
    const uint8_t* code = s.data + begin;
    if (len < 4) fail(section, "crack code shorter than its 4-byte BOC length field");
    const uint64_t boc = load_u32(code);
    if (boc > len - 4) fail(section, "BOC length " + std::to_string(boc) + " runs past the slice's crack code");
    boc_bytes[z] = boc;
    const uint8_t* moves = code + 4 + boc;
    const uint64_t move_bytes = len - 4 - boc;
    if (move_bytes == 0) return;  // no chains, whatever the BOC says (6.3)
    parse_boc(code + 4, boc, h.sx, h.sy, section.c_str(), starts[w]);
    if (h.markov_order == 0) {
      chain_symbols(PlainDifferences(moves, move_bytes), starts[w].size(), max_symbols, section.c_str(), symbols[z]);
    } else {
      chain_symbols(MarkovDifferences(moves, move_bytes, in_model), starts[w].size(), max_symbols, section.c_str(),
                    symbols[z]);
    }
  });

  // As the encoder does (9.1): no chains at all, no model.
  bool any_symbols = false;
  for (const auto& f : symbols) any_symbols = any_symbols || !f.empty();
  out_h.markov_order = any_symbols ? order : 0;
  MarkovModel model;
  std::vector<uint8_t> model_bytes;
  if (out_h.markov_order > 0) {
    MarkovStats stats(out_h.markov_order);
    for (const auto& f : symbols) stats.add(f.data(), f.size());
    model = stats.build();
    model.write(model_bytes);
  }
  std::vector<std::vector<uint8_t>> moves(sz);
  parallel_for(sz, nthreads, [&](uint64_t z, int) {
    if (out_h.markov_order > 0) {
      markov_encode(symbols[z].data(), symbols[z].size(), model, moves[z]);
    } else {
      pack_plain(symbols[z], moves[z]);
    }
    std::vector<uint8_t>().swap(symbols[z]);
  });

  uint64_t codes_bytes = 0;
  for (uint32_t z = 0; z < sz; z++) {
    const uint64_t n = 4 + boc_bytes[z] + moves[z].size();
    if (n > 0xFFFFFFFFull) throw EncodeError("a slice's crack code exceeds 4 GiB");
    codes_bytes += n;
  }
  const uint64_t H = out_h.header_bytes();
  const uint64_t index_entries = 4ull * sz;
  std::vector<uint8_t> out(H + L.index_bytes + h.num_label_bytes + model_bytes.size() + codes_bytes + L.trailer_bytes);
  uint8_t* p = out.data();
  out_h.write(p);
  uint8_t* index = p + H;
  for (uint32_t z = 0; z < sz; z++) store_le(index + 4ull * z, 4 + boc_bytes[z] + moves[z].size(), 4);
  if (L.has_crcs) store_le(index + index_entries, crc32c(index, index_entries), 4);
  uint8_t* at = p + H + L.index_bytes;
  std::memcpy(at, s.data + L.labels_offset, h.num_label_bytes);
  at += h.num_label_bytes;
  if (!model_bytes.empty()) std::memcpy(at, model_bytes.data(), model_bytes.size());
  at += model_bytes.size();
  for (uint32_t z = 0; z < sz; z++) {
    std::memcpy(at, s.data + L.slice_offsets[z], 4 + boc_bytes[z]);
    at += 4 + boc_bytes[z];
    if (!moves[z].empty()) std::memcpy(at, moves[z].data(), moves[z].size());
    at += moves[z].size();
  }
  if (L.trailer_bytes) std::memcpy(at, s.data + L.trailer_offset, L.trailer_bytes);
  return out;
}

}  // namespace crackle
