// Compression: per-slice components, crack chains and CRCs on worker threads, then the labels
// section, the optional markov model, and one pass that lays the stream out (FORMAT.md 9.1).
#include <algorithm>
#include <cstring>
#include <vector>

#include "ccl.hpp"
#include "codec.hpp"
#include "crack_chains.hpp"
#include "crc.hpp"
#include "flat_labels.hpp"
#include "markov.hpp"
#include "pins.hpp"

namespace crackle {

uint32_t crc32c_of_ids(const uint32_t* ids, uint64_t n, std::vector<uint8_t>& scratch);

namespace {

struct SliceResult {
  uint32_t cc_count = 0;
  uint32_t crc = 0;
  std::vector<uint64_t> cc_values;    // raw element value of each component (zero-extended)
  RunComponents runs;                 // the slice's components as runs (pins only)
  SliceDiffs diffs;                   // kept from the first pass to the second
  SliceCracks cracks;
  std::vector<uint8_t> moves;         // the packed move stream
  uint64_t equal_pairs = 0;           // consecutive equal voxels, x-fastest, ending in this slice
};

struct EncodeScratch {
  SliceRuns runs;
  CrackScratch cracks;
  std::vector<uint32_t> ids;
  std::vector<uint8_t> crc_bytes;
};

int64_t sign_extend(uint64_t v, int bytes) {
  if (bytes >= 8) return static_cast<int64_t>(v);
  const int shift = 64 - 8 * bytes;
  return static_cast<int64_t>(v << shift) >> shift;
}

// Stored width (FORMAT 2.5, and the corrected signed rule of 5.3).
int choose_stored_width(const std::vector<uint64_t>& values, bool is_signed, int itemsize) {
  if (!is_signed) {
    uint64_t mx = 0;
    for (uint64_t v : values) mx = std::max(mx, v);
    return width_of(mx);
  }
  int64_t mn = 0, mx = 0;
  bool first = true;
  for (uint64_t v : values) {
    const int64_t s = sign_extend(v, itemsize);
    if (first || s < mn) mn = s;
    if (first || s > mx) mx = s;
    first = false;
  }
  if (mn < 0) return itemsize;
  for (int w = width_of(static_cast<uint64_t>(mx)); w < 8; w *= 2) {
    if (static_cast<uint64_t>(mx) < (1ull << (8 * w - 1))) return w;
  }
  return 8;
}

template <typename T>
std::vector<uint8_t> compress_typed(const T* data, bool is_signed, uint32_t sx, uint32_t sy, uint32_t sz,
                                    const VolumeStrides& strides, const EncodeOptions& opt) {
  Header h;
  h.version = 1;
  h.sx = sx;
  h.sy = sy;
  h.sz = sz;
  h.data_width = sizeof(T);
  h.stored_width = 1;
  h.is_signed = is_signed;
  h.fortran = opt.fortran;
  if (opt.markov_order < 0 || opt.markov_order > kMaxMarkovOrder) {
    throw EncodeError("markov_model_order must be in 0..15");
  }
  const uint64_t sxy = h.slice_pixels();
  const uint64_t voxels = h.voxels();
  if (voxels == 0) {
    std::vector<uint8_t> out(h.header_bytes());
    h.write(out.data());
    return out;
  }
  if (sxy > 0xFFFFFFFFull) throw EncodeError("a slice (sx*sy) must have fewer than 2^32 pixels");
  const int threads = resolve_threads(opt.threads, sz);
  const uint64_t row = strides.row, plane = strides.plane;  // rows and slices may be views (codec.hpp)

  // First pass, per slice: difference masks, runs, components, CRC, component values, and the
  // count of equal consecutive voxels that decides the crack format.
  const bool pins_possible = (opt.allow_pins || opt.optimize) && sz > 1 && !is_signed && voxels < (1ull << 32);
  const bool keep_runs = pins_possible;
  std::vector<SliceResult> slices(sz);
  std::vector<EncodeScratch> scratch(threads);
  // Slice CRCs from runs where the CPU allows (crc.hpp), else from written-out ids.
  const bool run_crc_ok = RunCrc32c::available() && sx <= RunCrc32c::kMaxRowWords;
  const RunCrc32c run_crc = run_crc_ok ? RunCrc32c(sx, sy) : RunCrc32c(0, 0);
  parallel_for(sz, threads, [&](uint64_t z, int w) {
    EncodeScratch& sc = scratch[w];
    SliceResult& r = slices[z];
    const T* px = data + z * plane;
    uint32_t* ids = nullptr;
    if (!run_crc_ok) {
      sc.ids.resize(sxy);
      ids = sc.ids.data();
    }
    diff_masks(px, sx, sy, row, r.diffs);
    const SliceDiffs& d = r.diffs;
    SliceRuns& runs = sc.runs;
    // Runs start where a pixel differs from its left neighbour and join where it equals the
    // pixel above (runs hold one value each).
    r.cc_count = label_slice(sx, sy, RowBits{d.dh.data(), d.words, 0}, RowBits{d.dv.data(), d.words, ~0ull}, runs);
    // Pairs in x-fastest order: within rows, and each row's first voxel with the last before it.
    uint64_t pairs = (z > 0 && px[0] == data[(z - 1) * plane + (sy - 1) * row + (sx - 1)]) ? 1 : 0;
    for (uint32_t y = 0; y < sy; y++) {
      pairs += (sx - 1) - (runs.runs_in_row(y) - 1);
      if (y > 0) pairs += px[y * row] == px[(y - 1) * row + (sx - 1)];
    }
    r.equal_pairs = pairs;
    if (ids) fill_component_ids(runs, sx, sy, ids);
    if (run_crc_ok) {
      r.crc = run_crc.of_rows(runs.start.data(), runs.row_first.data(), runs.component.data());
    } else {
      r.crc = crc32c_of_ids(ids, sxy, sc.crc_bytes);
    }
    if (keep_runs) {
      const uint32_t used = runs.row_first[sy];
      r.runs.start.assign(runs.start.begin(), runs.start.begin() + used);
      r.runs.component.assign(runs.component.begin(), runs.component.begin() + used);
      r.runs.row_first.assign(runs.row_first.begin(), runs.row_first.begin() + sy + 1);
    }
    r.cc_values.resize(r.cc_count);
    uint32_t next = 0;
    for (uint32_t y = 0; y < sy && next < r.cc_count; y++) {
      for (uint32_t k = runs.row_first[y]; k < runs.row_first[y + 1] - 1; k++) {
        if (runs.component[k] == next) {
          r.cc_values[next] = static_cast<uint64_t>(px[y * row + runs.start[k]]);
          next++;
        }
      }
    }
  });

  // Crack format: permissible (cracks connect) when fewer than half of all consecutive voxel
  // pairs in x-fastest order are equal (9.1). PINS only with impermissible cracks.
  uint64_t num_pairs = 0;
  for (const auto& r : slices) num_pairs += r.equal_pairs;
  h.permissible = opt.crack_format < 0 ? num_pairs < voxels / 2 : opt.crack_format == 1;
  const bool try_pins = keep_runs && !h.permissible;

  // Second pass, per slice: the crack chains.
  parallel_for(sz, threads, [&](uint64_t z, int w) {
    SliceResult& r = slices[z];
    encode_slice_cracks(r.diffs, sx, sy, h.permissible, scratch[w].cracks, r.cracks);
    std::vector<uint64_t>().swap(r.diffs.dh);
    std::vector<uint64_t>().swap(r.diffs.dv);
  });

  // Labels section, from every component's value in global id order.
  uint64_t total_cc = 0;
  for (const auto& r : slices) total_cc += r.cc_count;
  std::vector<uint64_t> cc_values;
  std::vector<uint32_t> cc_counts(sz);
  std::vector<uint64_t> offsets(static_cast<size_t>(sz) + 1, 0);
  cc_values.reserve(total_cc);
  for (uint32_t z = 0; z < sz; z++) {
    cc_counts[z] = slices[z].cc_count;
    offsets[z + 1] = offsets[z] + cc_counts[z];
    cc_values.insert(cc_values.end(), slices[z].cc_values.begin(), slices[z].cc_values.end());
    std::vector<uint64_t>().swap(slices[z].cc_values);
  }
  h.stored_width = choose_stored_width(cc_values, is_signed, sizeof(T));
  if (is_signed) {
    const uint64_t mask = width_mask(h.stored_width);
    for (uint64_t& v : cc_values) v = static_cast<uint64_t>(sign_extend(v, sizeof(T))) & mask;
  }
  const int cc_width = width_of(sxy);
  std::vector<uint8_t> labels;
  if (try_pins) {
    std::vector<RunComponents> runs(sz);
    for (uint32_t z = 0; z < sz; z++) std::swap(runs[z], slices[z].runs);
    std::vector<uint32_t> best_pixel, best_depth;
    deepest_pixels(data, row, plane, runs, sx, sy, offsets, best_pixel, best_depth);
    write_pins_labels(h, cc_values, runs, best_pixel, best_depth, cc_counts, h.stored_width, cc_width, labels);
    h.label_format = kPins;
  }
  {  // FLAT when pins do not apply or are no smaller (a few bytes of work per component)
    std::vector<uint8_t> flat;
    write_flat_labels(cc_values, cc_counts, h.stored_width, cc_width, flat);
    if (!try_pins || flat.size() <= labels.size()) {
      labels.swap(flat);
      h.label_format = kFlat;
    }
  }
  std::vector<uint64_t>().swap(cc_values);
  h.num_label_bytes = labels.size();

  // Markov model from the statistics of every slice; no chains at all means no model (9.1).
  bool any_symbols = false;
  for (const auto& r : slices) any_symbols = any_symbols || !r.cracks.symbols.empty();
  h.markov_order = any_symbols ? opt.markov_order : 0;
  MarkovModel model;
  std::vector<uint8_t> model_bytes;
  if (opt.optimize) {
    std::vector<SymbolSpan> spans(sz);
    for (uint32_t z = 0; z < sz; z++) spans[z] = {slices[z].cracks.symbols.data(), slices[z].cracks.symbols.size()};
    h.markov_order = best_markov_order(spans, kMaxOptimizeOrder, model);
    if (h.markov_order > 0) model.write(model_bytes);
  } else if (h.markov_order > 0) {
    MarkovStats stats(h.markov_order);
    for (const auto& r : slices) stats.add(r.cracks.symbols.data(), r.cracks.symbols.size());
    model = stats.build();
    model.write(model_bytes);
  }
  parallel_for(sz, threads, [&](uint64_t z, int) {
    SliceResult& r = slices[z];
    if (h.markov_order > 0) {
      markov_encode(r.cracks.symbols.data(), r.cracks.symbols.size(), model, r.moves);
    } else {
      pack_plain(r.cracks.symbols, r.moves);
    }
    std::vector<uint8_t>().swap(r.cracks.symbols);
  });

  // Lay out: header, index + CRC, labels, model, crack codes, labels CRC, slice CRCs.
  uint64_t codes_bytes = 0;
  for (const auto& r : slices) {
    const uint64_t n = 4 + r.cracks.boc.size() + r.moves.size();
    if (n > 0xFFFFFFFFull) throw EncodeError("a slice's crack code exceeds 4 GiB");
    codes_bytes += n;
  }
  const uint64_t H = h.header_bytes();
  const uint64_t total = H + 4ull * sz + 4 + labels.size() + model_bytes.size() + codes_bytes + 4 + 4ull * sz;
  std::vector<uint8_t> out(total);
  uint8_t* p = out.data();
  h.write(p);
  uint8_t* index = p + H;
  for (uint32_t z = 0; z < sz; z++) {
    store_le(index + 4ull * z, 4 + slices[z].cracks.boc.size() + slices[z].moves.size(), 4);
  }
  store_le(index + 4ull * sz, crc32c(index, 4ull * sz), 4);
  uint8_t* at = index + 4ull * sz + 4;
  std::memcpy(at, labels.data(), labels.size());
  const uint32_t labels_crc = crc32c(at, labels.size());
  at += labels.size();
  if (!model_bytes.empty()) std::memcpy(at, model_bytes.data(), model_bytes.size());
  at += model_bytes.size();
  for (const auto& r : slices) {
    store_le(at, r.cracks.boc.size(), 4);
    at += 4;
    std::memcpy(at, r.cracks.boc.data(), r.cracks.boc.size());
    at += r.cracks.boc.size();
    if (!r.moves.empty()) std::memcpy(at, r.moves.data(), r.moves.size());
    at += r.moves.size();
  }
  store_le(at, labels_crc, 4);
  at += 4;
  for (const auto& r : slices) {
    store_le(at, r.crc, 4);
    at += 4;
  }
  return out;
}

}  // namespace

uint32_t crc32c_of_ids(const uint32_t* ids, uint64_t n, std::vector<uint8_t>& scratch) {
  if (host_is_little_endian()) return crc32c(reinterpret_cast<const uint8_t*>(ids), n * 4);
  scratch.resize(n * 4);
  for (uint64_t i = 0; i < n; i++) store_le(scratch.data() + 4 * i, ids[i], 4);
  return crc32c(scratch.data(), n * 4);
}

std::vector<uint8_t> compress(const void* data, int itemsize, bool is_signed, uint32_t sx, uint32_t sy, uint32_t sz,
                              const VolumeStrides& strides, const EncodeOptions& options) {
  switch (itemsize) {
    case 1: return compress_typed(static_cast<const uint8_t*>(data), is_signed, sx, sy, sz, strides, options);
    case 2: return compress_typed(static_cast<const uint16_t*>(data), is_signed, sx, sy, sz, strides, options);
    case 4: return compress_typed(static_cast<const uint32_t*>(data), is_signed, sx, sy, sz, strides, options);
    case 8: return compress_typed(static_cast<const uint64_t*>(data), is_signed, sx, sy, sz, strides, options);
    default: throw EncodeError("element size must be 1, 2, 4 or 8 bytes");
  }
}

}  // namespace crackle
