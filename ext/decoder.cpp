// Decompression: validate the layout, then per slice (on worker threads) draw the cracks,
// label components, check the count and CRC, map components to labels and write the output.
#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "ccl.hpp"
#include "codec.hpp"
#include "crack_codes.hpp"
#include "crc.hpp"
#include "flat_labels.hpp"
#include "label_slices.hpp"
#include "markov.hpp"
#include "pins.hpp"
#include "slice_writer.hpp"

namespace crackle {

StreamInfo StreamInfo::open(const uint8_t* data, uint64_t size) {
  StreamInfo s;
  s.data = data;
  s.size = size;
  s.header = Header::parse(data, size);
  s.layout = Layout::of(data, size, s.header);
  s.labels = LabelsSection::parse(data, s.header, s.layout);
  return s;
}

void check_labels_crc(const StreamInfo& s) {
  if (!s.layout.has_crcs || s.header.voxels() == 0) return;
  const uint32_t actual = crc32c(s.data + s.layout.labels_offset, s.header.num_label_bytes);
  if (actual != s.layout.labels_crc(s.data)) fail("labels", "CRC32C mismatch (labels section corrupted)");
}

namespace {

using DecodeScratch = SliceScratch;  // label_slices.hpp: shared with the per-slice queries

// The markov walker is compiled twice on x86: with BMI2 its variable shifts (consuming codes of
// 1 to 3 bits) are one instruction instead of three, and the walk is 7% faster. (The plain walk
// gained nothing from it.)
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("bmi,bmi2"), flatten)) void draw_markov_bmi2(MarkovDifferences codes, BocStarts starts,
                                                                    CrackBits& bits, std::vector<int64_t>& stack,
                                                                    const char* section) {
  draw_chains(codes, starts, bits, stack, section);
}
#endif
void draw_markov(MarkovDifferences codes, BocStarts starts, CrackBits& bits, std::vector<int64_t>& stack,
                 const char* section) {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  static const bool bmi2 = hardware_paths_allowed() && __builtin_cpu_supports("bmi2");
  if (bmi2) return draw_markov_bmi2(codes, starts, bits, stack, section);
#endif
  draw_chains(codes, starts, bits, stack, section);
}

// Draws slice z's cracks into sc.bits (FORMAT 7.1 step 1), in the packed layout with `packed`.
void draw_slice(const StreamInfo& s, const MarkovModel& model, uint32_t z, SliceScratch& sc,
                const std::string& section, bool packed) {
  const Header& h = s.header;
  const uint64_t begin = s.layout.slice_offsets[z];
  const uint64_t len = s.layout.slice_offsets[z + 1] - begin;
  const uint8_t* code = s.data + begin;
  if (len < 4) fail(section, "crack code shorter than its 4-byte BOC length field");
  const uint64_t boc_bytes = load_u32(code);
  if (boc_bytes > len - 4) fail(section, "BOC length " + std::to_string(boc_bytes) + " runs past the slice's crack code");
  const uint8_t* moves = code + 4 + boc_bytes;
  const uint64_t move_bytes = len - 4 - boc_bytes;

  // An empty move stream means no chains, whatever the BOC says (the short-BOC quirk, 6.3). The
  // BOC is checked before the crack grid (a quarter byte per pixel) is made.
  if (move_bytes > 0) check_boc(code + 4, boc_bytes, h.sx, h.sy, section.c_str());
  sc.bits.reset(h.sx, h.sy, packed);
  if (move_bytes > 0) {
    const BocStarts starts(code + 4, boc_bytes, h.sx, h.sy, section.c_str());
    if (model.order == 0) {
      draw_chains(PlainDifferences(moves, move_bytes), starts, sc.bits, sc.stack, section.c_str());
    } else {
      draw_markov(MarkovDifferences(moves, move_bytes, model), starts, sc.bits, sc.stack, section.c_str());
    }
  }
}

void check_component_count(const StreamInfo& s, uint32_t z, uint64_t count, const std::string& section) {
  const uint64_t expected = s.labels.cc_offsets[z + 1] - s.labels.cc_offsets[z];
  if (count != expected) {
    fail(section, "crack code yields " + std::to_string(count) + " components, the labels section says " +
                      std::to_string(expected));
  }
}

// Rebuilds slice z's components as runs and checks their count (FORMAT 7.1 steps 1-3).
void decode_slice_components(const StreamInfo& s, const MarkovModel& model, uint32_t z, SliceScratch& sc,
                             const std::string& section) {
  const Header& h = s.header;
  draw_slice(s, model, z, sc, section, false);
  // Runs start at vertical cracks and join where there is no horizontal crack (impermissible
  // cracks), or the other way round (permissible).
  const CrackBits& bits = sc.bits;
  const uint64_t flip = h.permissible ? ~0ull : 0;
  const uint32_t count = label_slice(h.sx, h.sy, RowBits{bits.v_row(0), bits.words, flip},
                                     RowBits{bits.h_row(0), bits.words, ~flip}, sc.runs);
  check_component_count(s, z, count, section);
}

// The slice CRC from the u32 component ids written out, 64 Ki ids (256 KiB) at a time, so that
// it costs that buffer, not 4 bytes per pixel of the slice (nor of one very wide row).
// `crc`: the CRC of the rows before these (a slice labelled a band at a time).
uint32_t crc_of_component_ids(const SliceRuns& runs, uint32_t sx, uint32_t sy, std::vector<uint32_t>& ids,
                              std::vector<uint8_t>& scratch, uint32_t crc = 0) {
  const uint64_t piece = std::min<uint64_t>(uint64_t{1} << 16, static_cast<uint64_t>(sx) * sy);
  ids.resize(piece);
  uint64_t filled = 0;
  auto flush = [&]() {
    const uint8_t* bytes = reinterpret_cast<const uint8_t*>(ids.data());
    if (!host_is_little_endian()) {
      scratch.resize(4 * filled);
      for (uint64_t i = 0; i < filled; i++) store_le(scratch.data() + 4 * i, ids[i], 4);
      bytes = scratch.data();
    }
    crc = crc32c(bytes, 4 * filled, crc);
    filled = 0;
  };
  for (uint32_t r = 0, n = runs.row_first[sy]; r < n; r++) {
    if (runs.start[r] == sx) continue;  // a row's sentinel
    uint64_t length = runs.start[r + 1] - runs.start[r];  // a run ends where the next entry starts
    while (length > 0) {
      const uint64_t k = std::min(length, piece - filled);
      // Overshoot is rewritten by the next run; only the buffer's end is filled exactly.
      fill_run(ids.data() + filled, k, runs.component[r], piece - filled);
      filled += k;
      length -= k;
      if (filled == piece) flush();
    }
  }
  if (filled) flush();
  return crc;
}

// The component of pixel (x, y): binary search in row y's runs (pins only; they are few).
uint32_t component_at(const SliceRuns& runs, uint32_t x, uint32_t y) {
  const uint32_t* first = runs.start.data() + runs.row_first[y];
  const uint32_t* last = runs.start.data() + runs.row_first[y + 1] - 1;  // without the sentinel
  const uint32_t r = static_cast<uint32_t>(std::upper_bound(first, last, x) - runs.start.data()) - 1;
  return runs.component[r];
}

// Narrow slices (fewer than 32 pixels a row; CrackBits::packs) taller than a band of rows. Their
// per-row structures dominate: labelled whole, a 1-pixel-wide slice cost 56 bytes a pixel (the
// crack grid 16 of them, and each row's runs, sentinel, row start and start bits). So the crack
// grid is packed, and the slice is labelled a band of rows (16 Ki pixels; its buffers are about
// 1 MB) at a time, twice: the first pass numbers each band's components provisionally (band by
// band, in raster order), joins each band's first row to the previous band's last row with a
// union-find over the provisional numbers (a component may join others many bands below its
// first row) and numbers the roots in order, which is numbering by first appearance (FORMAT
// 7.2); the second labels each band again (the same runs), writes its pixels and folds its ids
// into the slice CRC. What stays is the packed grid (a sixteenth of the word layout's for sx = 1)
// and 4 bytes per provisional component. Wide slices do not need this: their per-row structures
// are a few bytes per row of many pixels.
class NarrowSlice {
 public:
  static constexpr uint64_t kBandPixels = uint64_t{1} << 14;
  static uint32_t band_rows(uint32_t sx) { return static_cast<uint32_t>(std::max<uint64_t>(1, kBandPixels / sx)); }
  static bool applies(const Header& h) { return CrackBits::packs(h.sx) && h.sy > band_rows(h.sx); }

  // Draws slice z (packed), numbers its components and checks their count. `pin_pixels`: pixels
  // (y sx + x) whose final component number is wanted, returned in pin_components.
  void label(const StreamInfo& s, const MarkovModel& model, uint32_t z, SliceScratch& sc, const std::string& section,
             const std::vector<uint64_t>& pin_pixels, std::vector<uint32_t>& pin_components) {
    const Header& h = s.header;
    draw_slice(s, model, z, sc, section, true);
    flip_ = h.permissible ? ~0ull : 0;
    // The joins across a band boundary are between overlapping runs of two rows, fewer than 2 sx
    // pairs, so a valid slice makes at most its component count plus 2 sx per boundary
    // provisional numbers: room for that is reserved (growing never copies; only the numbers
    // made use memory), and a slice that makes more is refused as soon as it does.
    const uint32_t band = band_rows(h.sx);
    const uint64_t expected = s.labels.cc_offsets[z + 1] - s.labels.cc_offsets[z];
    const uint64_t most = expected + static_cast<uint64_t>(h.sy / band) * 2 * h.sx;
    parent_.clear();
    parent_.shrink_to_fit();
    parent_.reserve(most);
    // The pins, in order of pixel, so that the bands meet them in one sweep.
    std::vector<uint32_t> order(pin_pixels.size());
    for (uint32_t k = 0; k < order.size(); k++) order[k] = k;
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return pin_pixels[a] < pin_pixels[b]; });
    pin_components.assign(pin_pixels.size(), 0);
    size_t next_pin = 0;
    for (uint32_t y0 = 0; y0 < h.sy; y0 += band) {
      const uint32_t y1 = static_cast<uint32_t>(std::min<uint64_t>(h.sy, static_cast<uint64_t>(y0) + band));
      const uint32_t base = static_cast<uint32_t>(parent_.size());
      const uint32_t count = label_band(sc, y0, y1);
      if (base + static_cast<uint64_t>(count) > most) {
        fail(section, "crack code yields more components than the labels section says (" + std::to_string(expected) + ")");
      }
      for (uint32_t j = 0; j < count; j++) parent_.push_back(base + j);
      const SliceRuns& r = sc.runs;
      if (y0 > 0) join_to_previous_band(sc, base);
      for (; next_pin < order.size() && pin_pixels[order[next_pin]] < static_cast<uint64_t>(y1) * h.sx; next_pin++) {
        const uint64_t pixel = pin_pixels[order[next_pin]];
        pin_components[order[next_pin]] =
            base + component_at(r, static_cast<uint32_t>(pixel % h.sx), static_cast<uint32_t>(pixel / h.sx - y0));
      }
      // The band's last row, for the next band to join to: its run starts (with the sentinel)
      // and their provisional numbers.
      const uint32_t rows = y1 - y0;
      last_start_.assign(r.start.begin() + r.row_first[rows - 1], r.start.begin() + r.row_first[rows]);
      last_number_.clear();
      for (uint32_t q = r.row_first[rows - 1]; q < r.row_first[rows]; q++) last_number_.push_back(base + r.component[q]);
    }
    // A parent is never after its child, and every number before i is final when i is reached.
    uint32_t count = 0;
    for (uint32_t i = 0, n = static_cast<uint32_t>(parent_.size()); i < n; i++) {
      const uint32_t p = parent_[i];
      parent_[i] = p == i ? count++ : parent_[p];
    }
    check_component_count(s, z, count, section);
    for (uint32_t& c : pin_components) c = parent_[c];
  }

  // After label: writes the slice to dst (unless null), component c getting value_of(c), and
  // returns its CRC of component ids (with `crc`; else 0). Values are looked up per band, so
  // no table of a value per component is kept.
  template <typename T, typename ValueOf>
  uint32_t emit(const StreamInfo& s, SliceScratch& sc, const ValueOf& value_of, std::vector<T>& band_values,
                std::vector<T>& run_values, T* dst, bool crc) {
    const Header& h = s.header;
    uint32_t state = 0;
    uint32_t base = 0;
    const uint32_t band = band_rows(h.sx);
    for (uint32_t y0 = 0; y0 < h.sy; y0 += band) {
      const uint32_t y1 = static_cast<uint32_t>(std::min<uint64_t>(h.sy, static_cast<uint64_t>(y0) + band));
      const uint32_t count = label_band(sc, y0, y1);
      SliceRuns& r = sc.runs;
      if (dst) {
        band_values.resize(count);
        for (uint32_t j = 0; j < count; j++) band_values[j] = value_of(parent_[base + j]);
        write_slice(r, h.sx, y1 - y0, band_values.data(), run_values, dst + static_cast<uint64_t>(y0) * h.sx, nullptr);
      }
      if (crc) {
        for (uint32_t& c : r.component) c = parent_[base + c];  // sentinels too: the ids are written from them
        state = crc_of_component_ids(r, h.sx, y1 - y0, sc.ids, sc.crc_bytes, state);
      }
      base += count;
    }
    return state;
  }

 private:
  // Labels rows [y0, y1) of the packed grid into sc.runs; returns their component count.
  uint32_t label_band(SliceScratch& sc, uint32_t y0, uint32_t y1) {
    const CrackBits& bits = sc.bits;
    band_v_.resize(y1 - y0);
    band_h_.resize(y1 - y0);
    for (uint32_t y = y0; y < y1; y++) {
      band_v_[y - y0] = bits.packed_row(bits.v_bit(0, y));
      band_h_[y - y0] = bits.packed_row(bits.h_bit(0, y));
    }
    return label_slice(bits.sx, y1 - y0, RowBits{band_v_.data(), 1, flip_}, RowBits{band_h_.data(), 1, ~flip_}, sc.runs);
  }

  uint32_t find(uint32_t i) {
    while (parent_[i] != i) {
      parent_[i] = parent_[parent_[i]];  // path halving
      i = parent_[i];
    }
    return i;
  }

  // Joins the band's first row (its provisional numbers from `base`) to the previous band's last
  // row, pair of overlapping runs by pair, where any pixel of the overlap is joined up.
  void join_to_previous_band(const SliceScratch& sc, uint32_t base) {
    const SliceRuns& r = sc.runs;
    const uint32_t sx = sc.bits.sx;
    const uint64_t joins = band_h_[0] ^ ~flip_;
    uint32_t a = r.row_first[0], q = 0;
    for (;;) {
      const uint32_t b = r.start[a + 1], d = last_start_[q + 1];
      const uint32_t lo = std::max(r.start[a], last_start_[q]), hi = std::min(b, d);
      if ((joins >> lo) & (~0ull >> (64 - (hi - lo)))) {
        const uint32_t ra = find(base + r.component[a]), rq = find(last_number_[q]);
        parent_[std::max(ra, rq)] = std::min(ra, rq);
      }
      if (b == sx && d == sx) break;
      a += (b <= d);
      q += (d <= b);
    }
  }

  uint64_t flip_ = 0;
  std::vector<uint32_t> parent_;  // provisional component -> parent; after label, -> component
  std::vector<uint64_t> band_v_, band_h_;  // a band's rows of the grid, a word each
  std::vector<uint32_t> last_start_, last_number_;
};

// Whether slice z's code is well formed and draws nothing (an empty move stream: no chains).
bool slice_draws_nothing(const StreamInfo& s, uint32_t z) {
  const uint64_t begin = s.layout.slice_offsets[z];
  const uint64_t len = s.layout.slice_offsets[z + 1] - begin;
  return len >= 4 && load_u32(s.data + begin) == len - 4;
}

// The slice CRC of a slice with no cracks: one component (impermissible: ids all 0) or a
// component per pixel (permissible: ids 0, 1, 2, ...), written a band at a time.
uint32_t crackless_slice_crc(bool permissible, uint64_t sxy) {
  std::vector<uint8_t> band(std::min<uint64_t>(sxy, uint64_t{1} << 16) * 4, 0);
  uint32_t crc = 0;
  for (uint64_t p0 = 0; p0 < sxy; p0 += band.size() / 4) {
    const uint64_t n = std::min<uint64_t>(band.size() / 4, sxy - p0);
    if (permissible) {
      for (uint64_t i = 0; i < n; i++) store_le(band.data() + 4 * i, p0 + i, 4);
    }
    crc = crc32c(band.data(), 4 * n, crc);
  }
  return crc;
}

// Stored label value -> element value. The reference's Python decoder zero-extends the value
// of a single-label volume (FORMAT 10.6); matching it keeps outputs identical.
template <typename T>
T convert(uint64_t stored, int stored_width, bool sign_extend) {
  if (sign_extend && stored_width < 8) {
    const int shift = 64 - 8 * stored_width;
    return static_cast<T>(static_cast<uint64_t>(static_cast<int64_t>(stored << shift) >> shift));
  }
  return static_cast<T>(stored);
}

uint64_t distinct_label_count(const StreamInfo& s) {
  const LabelsSection& L = s.labels;
  const bool pins = L.format == kPins;
  if (!s.header.remapped) return L.num_unique + (pins ? 1 : 0);
  std::vector<uint64_t> v;
  v.reserve(L.num_unique + 1);
  for (uint64_t k = 0; k < L.num_unique; k++) v.push_back(L.unique_value(s.data, k));
  if (pins) v.push_back(L.bgcolor);
  std::sort(v.begin(), v.end());
  return static_cast<uint64_t>(std::unique(v.begin(), v.end()) - v.begin());
}

// The pins that cross slice z, in record order, for one worker. A worker's slices come in
// increasing z (parallel_for hands tasks out in order), so it sweeps the pins sorted by first
// slice once, keeping those still open: memory is the pins alive at z, never a list per slice.
struct PinSweep {
  size_t next = 0;                // into pins_by_z: the first pin not yet opened
  uint32_t last_z = 0;
  bool started = false;
  std::vector<uint32_t> active;   // pin indices, sorted (record order)
  std::vector<uint32_t> record;   // scratch: component -> record of the slice being written

  const std::vector<uint32_t>& active_at(uint32_t z, const std::vector<Pin>& pins, const std::vector<uint32_t>& pins_by_z) {
    if (!started || z < last_z) {
      next = 0;
      active.clear();
    }
    started = true;
    last_z = z;
    active.erase(std::remove_if(active.begin(), active.end(), [&](uint32_t k) { return pins[k].z1 < z; }), active.end());
    const size_t open = active.size();
    for (; next < pins_by_z.size() && pins[pins_by_z[next]].z0 <= z; next++) {
      if (pins[pins_by_z[next]].z1 >= z) active.push_back(pins_by_z[next]);
    }
    if (active.size() > open) {  // the new ones sorted, then merged: O(alive) a slice, not a sort
      std::sort(active.begin() + static_cast<std::ptrdiff_t>(open), active.end());
      std::inplace_merge(active.begin(), active.begin() + static_cast<std::ptrdiff_t>(open), active.end());
    }
    return active;
  }
};

template <typename T>
void decode_typed(const StreamInfo& s, uint32_t z0, uint32_t z1, T* out, int threads) {
  const Header& h = s.header;
  const LabelsSection& L = s.labels;
  check_labels_crc(s);
  MarkovModel model;
  if (h.markov_order > 0) model = MarkovModel::read(s.data + s.layout.model_offset, s.layout.model_bytes, h.markov_order);

  const bool pins = L.format == kPins;
  const bool sign_extend = h.is_signed && distinct_label_count(s) != 1;
  std::vector<T> table(L.num_unique + (pins ? 1 : 0));
  for (uint64_t k = 0; k < L.num_unique; k++) table[k] = convert<T>(L.unique_value(s.data, k), L.stored_width, sign_extend);
  if (pins) table[L.num_unique] = convert<T>(L.bgcolor, L.stored_width, sign_extend);

  // PINS: the records' component ids sorted by id (stably: for a component listed twice the
  // later record wins, as in FORMAT 5.2), and the pins by first slice. Both are backed by the
  // section's bytes; nothing here is sized by the component count or by the pins' depths, so a
  // slice's component -> record map is built per slice (see PinSweep).
  PinsData pin_data;
  std::vector<uint32_t> pins_by_z;
  if (pins) {
    pin_data = read_pins(s.data, h, L);
    std::stable_sort(pin_data.components.begin(), pin_data.components.end(),
                     [](const std::pair<uint64_t, uint32_t>& a, const std::pair<uint64_t, uint32_t>& b) { return a.first < b.first; });
    pins_by_z.resize(pin_data.pins.size());
    for (uint32_t i = 0; i < pins_by_z.size(); i++) pins_by_z[i] = i;
    std::stable_sort(pins_by_z.begin(), pins_by_z.end(),
                     [&](uint32_t a, uint32_t b) { return pin_data.pins[a].z0 < pin_data.pins[b].z0; });
  }

  // C-ordered output puts consecutive z of one pixel next to each other, so slices are decoded
  // in groups of one cache line's worth into a slice-major scratch, then written out a whole
  // line per pixel; writing each slice straight to C order would touch a line per pixel per slice.
  const uint64_t sxy = h.slice_pixels();
  const uint64_t nz = z1 - z0;
  const bool c_order = out != nullptr && !h.fortran;
  const uint64_t group = c_order ? std::max<uint64_t>(1, 64 / sizeof(T)) : 1;
  const uint64_t tasks = (nz + group - 1) / group;
  const int nthreads = resolve_threads(threads, tasks);
  const bool narrow = NarrowSlice::applies(h);  // labelled a band at a time (NarrowSlice)
  // Slice CRCs from runs where the CPU allows (crc.hpp), else from written-out ids.
  const bool run_crc_ok = s.layout.has_crcs && RunCrc32c::available() && h.sx <= RunCrc32c::kMaxRowWords && !narrow;
  const RunCrc32c run_crc = run_crc_ok ? RunCrc32c(h.sx, h.sy) : RunCrc32c(0, 0);
  std::vector<DecodeScratch> scratch(nthreads);
  std::vector<PinSweep> sweeps(pins ? nthreads : 0);
  struct NarrowPins {
    std::vector<uint64_t> pixels;
    std::vector<uint32_t> components;
  };
  std::vector<NarrowSlice> narrows(narrow ? nthreads : 0);
  std::vector<NarrowPins> narrow_pins(narrow ? nthreads : 0);
  std::vector<std::vector<T>> values(nthreads);
  std::vector<std::vector<T>> run_values(nthreads);
  std::vector<std::vector<T>> band_values(narrow ? nthreads : 0);  // narrow slices: a band's component values
  std::vector<std::vector<T>> staging(c_order ? nthreads : 0);
  // verify: a slice that draws nothing has a known labelling, the same for every such slice, so
  // its check costs O(1) after the first (a few bytes of stream per slice may declare a huge
  // uniform volume; checking it must not cost a labelling per slice).
  std::once_flag crackless_once;
  uint32_t crackless_crc = 0;
  parallel_for(tasks, nthreads, [&](uint64_t t, int w) {
    const uint64_t g0 = t * group, g1 = std::min(nz, g0 + group);
    T* stage = nullptr;
    if (c_order) {
      staging[w].resize((g1 - g0) * sxy);
      stage = staging[w].data();
    }
    for (uint64_t i = g0; i < g1; i++) {
      const uint32_t z = static_cast<uint32_t>(z0 + i);
      const std::string section = "slice z=" + std::to_string(z);
      DecodeScratch& sc = scratch[w];
      if (out == nullptr && slice_draws_nothing(s, z)) {
        const uint64_t expected = L.cc_offsets[z + 1] - L.cc_offsets[z];
        const uint64_t count = h.permissible ? sxy : 1;
        if (count != expected) {
          fail(section, "crack code yields " + std::to_string(count) + " components, the labels section says " +
                            std::to_string(expected));
        }
        if (s.layout.has_crcs) {
          std::call_once(crackless_once, [&] { crackless_crc = crackless_slice_crc(h.permissible, sxy); });
          if (crackless_crc != s.layout.slice_crc(s.data, z)) fail(section, "CRC32C mismatch (crack code corrupted)");
        }
        continue;
      }
      // The pins crossing z (decompress only: verify has no values to give).
      const std::vector<uint32_t>* active =
          out != nullptr && pins ? &sweeps[w].active_at(z, pin_data.pins, pins_by_z) : nullptr;
      if (narrow) {
        NarrowPins& np = narrow_pins[w];
        np.pixels.clear();
        if (active) {
          for (uint32_t k : *active) np.pixels.push_back(pin_data.pins[k].pixel);
        }
        narrows[w].label(s, model, z, sc, section, np.pixels, np.components);
      } else {
        decode_slice_components(s, model, z, sc, section);
      }
      const uint64_t first = L.cc_offsets[z];
      const uint32_t count = static_cast<uint32_t>(L.cc_offsets[z + 1] - first);
      std::vector<T>& vals = values[w];
      if (out != nullptr) {
        if (narrow && !pins) {
          // FLAT values come straight from the keys, a band at a time (NarrowSlice::emit).
        } else if (pins) {
          std::vector<uint32_t>& rec = sweeps[w].record;
          rec.assign(count, static_cast<uint32_t>(L.num_unique));
          const auto& comps = pin_data.components;
          auto c = std::lower_bound(comps.begin(), comps.end(), std::make_pair(first, 0u));
          for (; c != comps.end() && c->first < first + count; ++c) rec[c->first - first] = c->second;
          for (size_t a = 0; a < active->size(); a++) {
            const Pin& p = pin_data.pins[(*active)[a]];
            rec[narrow ? narrow_pins[w].components[a]
                       : component_at(sc.runs, static_cast<uint32_t>(p.pixel % h.sx), static_cast<uint32_t>(p.pixel / h.sx))] = p.label;
          }
          vals.resize(count);
          for (uint32_t j = 0; j < count; j++) vals[j] = table[rec[j]];
        } else {
          flat_slice_values(s.data, L, first, count, table, vals);
        }
      }
      T* dst = out == nullptr ? nullptr : (c_order ? stage + (i - g0) * sxy : out + i * sxy);
      if (narrow) {
        const bool crc_wanted = s.layout.has_crcs;
        const uint8_t* keys = s.data + L.keys_offset + first * L.key_width;
        const int key_width = L.key_width;
        auto value_of = [&](uint32_t c) {
          return pins ? vals[c] : table[load_le(keys + static_cast<uint64_t>(c) * key_width, key_width)];
        };
        const uint32_t crc =
            dst || crc_wanted ? narrows[w].emit(s, sc, value_of, band_values[w], run_values[w], dst, crc_wanted) : 0;
        if (crc_wanted && crc != s.layout.slice_crc(s.data, z)) fail(section, "CRC32C mismatch (crack code corrupted)");
        continue;
      }
      const SliceRuns& runs = sc.runs;
      // Where the CPU allows, the slice CRC comes out of the pass that writes the slice.
      uint32_t crc = 0;
      if (dst) crc = write_slice(runs, h.sx, h.sy, vals.data(), run_values[w], dst, run_crc_ok ? &run_crc : nullptr);
      if (s.layout.has_crcs) {
        if (run_crc_ok) {
          if (!dst) crc = run_crc.of_rows(runs.start.data(), runs.row_first.data(), runs.component.data());
        } else {
          crc = crc_of_component_ids(runs, h.sx, h.sy, sc.ids, sc.crc_bytes);
        }
        if (crc != s.layout.slice_crc(s.data, z)) fail(section, "CRC32C mismatch (crack code corrupted)");
      }
    }
    if (c_order) {
      // Element (x, y, z) of the C-ordered (sx, sy, nz) output sits at (x*sy + y)*nz + z. A
      // tile of `group` x values by the group's slices is read row by row (contiguous in the
      // staging) and written pixel by pixel (a line of z each): both sides stream, and the
      // transpose happens in a tile that stays in L1.
      const uint64_t n = g1 - g0;
      constexpr uint64_t kTile = 64 / sizeof(T);  // == group: n <= kTile
      T tile[kTile * kTile];
      for (uint32_t y = 0; y < h.sy; y++) {
        for (uint32_t x0 = 0; x0 < h.sx; x0 += kTile) {
          const uint32_t width = static_cast<uint32_t>(std::min<uint64_t>(kTile, h.sx - x0));
          const T* in = stage + static_cast<uint64_t>(y) * h.sx + x0;
#if defined(__SSE2__)
          if (sizeof(T) == 4 && width == kTile && n == kTile) {
            // 16 x 16 four-byte elements as 4 x 4 blocks, each transposed in registers.
            for (uint32_t xb = 0; xb < kTile; xb += 4) {
              T* o0 = out + (static_cast<uint64_t>(x0 + xb) * h.sy + y) * nz + g0;
              const uint64_t line = static_cast<uint64_t>(h.sy) * nz;  // from pixel x to x + 1
              for (uint32_t gb = 0; gb < kTile; gb += 4) {
                const T* r = in + gb * sxy + xb;
                const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r));
                const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + sxy));
                const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + 2 * sxy));
                const __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + 3 * sxy));
                const __m128i ab_lo = _mm_unpacklo_epi32(a, b), ab_hi = _mm_unpackhi_epi32(a, b);
                const __m128i cd_lo = _mm_unpacklo_epi32(c, d), cd_hi = _mm_unpackhi_epi32(c, d);
                _mm_storeu_si128(reinterpret_cast<__m128i*>(o0 + gb), _mm_unpacklo_epi64(ab_lo, cd_lo));
                _mm_storeu_si128(reinterpret_cast<__m128i*>(o0 + line + gb), _mm_unpackhi_epi64(ab_lo, cd_lo));
                _mm_storeu_si128(reinterpret_cast<__m128i*>(o0 + 2 * line + gb), _mm_unpacklo_epi64(ab_hi, cd_hi));
                _mm_storeu_si128(reinterpret_cast<__m128i*>(o0 + 3 * line + gb), _mm_unpackhi_epi64(ab_hi, cd_hi));
              }
            }
            continue;
          }
#endif
          for (uint64_t g = 0; g < n; g++) std::memcpy(tile + g * kTile, in + g * sxy, width * sizeof(T));
          for (uint32_t k = 0; k < width; k++) {
            T* o = out + (static_cast<uint64_t>(x0 + k) * h.sy + y) * nz + g0;
            for (uint64_t g = 0; g < n; g++) o[g] = tile[g * kTile + k];
          }
        }
      }
    }
  });
}

}  // namespace

void check_slice_codes(const StreamInfo& s, uint32_t z0, uint32_t z1) {
  const Header& h = s.header;
  if (z1 > h.sz || h.voxels() == 0) return;
  for (uint32_t z = z0; z < z1; z++) {
    const std::string section = "slice z=" + std::to_string(z);
    const uint64_t begin = s.layout.slice_offsets[z];
    const uint64_t len = s.layout.slice_offsets[z + 1] - begin;
    if (len < 4) fail(section, "crack code shorter than its 4-byte BOC length field");
    const uint64_t boc_bytes = load_u32(s.data + begin);
    if (boc_bytes > len - 4) fail(section, "BOC length " + std::to_string(boc_bytes) + " runs past the slice's crack code");
    if (len - 4 - boc_bytes > 0) check_boc(s.data + begin + 4, boc_bytes, h.sx, h.sy, section.c_str());
  }
}

void decode_slice_runs(const StreamInfo& s, const MarkovModel& model, uint32_t z, SliceScratch& sc, bool check_crc) {
  const std::string section = "slice z=" + std::to_string(z);
  decode_slice_components(s, model, z, sc, section);
  if (!check_crc || !s.layout.has_crcs) return;
  const Header& h = s.header;
  uint32_t crc;
  if (RunCrc32c::available() && h.sx <= RunCrc32c::kMaxRowWords) {
    if (!sc.run_crc) sc.run_crc.reset(new RunCrc32c(h.sx, h.sy));  // one stream per scratch
    crc = sc.run_crc->of_rows(sc.runs.start.data(), sc.runs.row_first.data(), sc.runs.component.data());
  } else {
    crc = crc_of_component_ids(sc.runs, h.sx, h.sy, sc.ids, sc.crc_bytes);
  }
  if (crc != s.layout.slice_crc(s.data, z)) fail(section, "CRC32C mismatch (crack code corrupted)");
}

void decode(const StreamInfo& s, uint32_t z0, uint32_t z1, void* out, int threads) {
  const Header& h = s.header;
  if (z0 > z1 || z1 > h.sz) throw EncodeError("z range out of bounds");
  if (!h.representable_output()) {
    fail("header", "a " + std::to_string(h.sx) + "x" + std::to_string(h.sy) + "x" + std::to_string(h.sz) +
                       " volume is too large to represent");
  }
  if (z0 == z1 || h.voxels() == 0) return;
  switch (h.data_width) {
    case 1: return decode_typed(s, z0, z1, static_cast<uint8_t*>(out), threads);
    case 2: return decode_typed(s, z0, z1, static_cast<uint16_t*>(out), threads);
    case 4: return decode_typed(s, z0, z1, static_cast<uint32_t*>(out), threads);
    default: return decode_typed(s, z0, z1, static_cast<uint64_t*>(out), threads);
  }
}

std::vector<uint8_t> replace_labels(const StreamInfo& s, const uint8_t* section, uint64_t section_size,
                                    int stored_width, bool unsorted, bool remapped) {
  Header h = s.header;
  const Layout& L = s.layout;
  h.stored_width = stored_width;
  h.unsorted = unsorted;
  h.remapped = remapped;
  h.num_label_bytes = section_size;
  if (h.version == 0 && section_size > 0xFFFFFFFFull) throw EncodeError("labels section too large for a version-0 stream");
  const uint64_t H = h.header_bytes();
  const uint64_t body = L.trailer_offset - L.model_offset;  // model and crack codes, unchanged
  std::vector<uint8_t> out(H + L.index_bytes + section_size + body + L.trailer_bytes);
  uint8_t* p = out.data();
  h.write(p);
  std::memcpy(p + H, s.data + L.index_offset, L.index_bytes);
  uint8_t* at = p + H + L.index_bytes;
  if (section_size) std::memcpy(at, section, section_size);
  at += section_size;
  if (body) std::memcpy(at, s.data + L.model_offset, body);
  at += body;
  if (L.has_crcs) {
    store_le(at, crc32c(section, section_size), 4);
    std::memcpy(at + 4, s.data + L.trailer_offset + 4, L.trailer_bytes - 4);
  }
  return out;
}

}  // namespace crackle
