// 2x2x1 mode pooling of decoded slices, with the reference's tie rule (mode_pooling_2x2x1): of
// the pixels a = (0,0), b = (1,0), c = (0,1), d = (1,1) of a block, a if it equals b or c, else b
// if it equals c, else d. Sparse: 0 equals nothing, and a 0 result takes the first non-zero
// pixel. A block cut by an odd edge takes its first pixel.
#pragma once

#include <cstdint>

namespace crackle {

template <typename T>
inline T pool_block(T a, T b, T c, T d, bool sparse) {
  if (!sparse) {
    if (a == b || a == c) return a;
    if (b == c) return b;
    return d;
  }
  T r;
  if ((a == b || a == c) && a != 0) {
    r = a;
  } else if (b == c && b != 0) {
    r = b;
  } else {
    r = d;
  }
  if (r != 0) return r;
  return a != 0 ? a : b != 0 ? b : c != 0 ? c : d;
}

// `in` holds an (sx, sy, sz) array with element strides in[0..2]; `out` the
// (ceil(sx/2), ceil(sy/2), sz) result with element strides out_stride[0..2].
template <typename T>
void mode_pool_2x2(const T* in, const int64_t in_stride[3], uint64_t sx, uint64_t sy, uint64_t sz, bool sparse,
                   T* out, const int64_t out_stride[3]) {
  const uint64_t ox = (sx + 1) / 2, oy = (sy + 1) / 2;
  const int64_t ix = in_stride[0], iy = in_stride[1], iz = in_stride[2];
  for (uint64_t z = 0; z < sz; z++) {
    for (uint64_t y = 0; y < oy; y++) {
      const T* row = in + static_cast<int64_t>(z) * iz + static_cast<int64_t>(2 * y) * iy;
      T* dst = out + static_cast<int64_t>(z) * out_stride[2] + static_cast<int64_t>(y) * out_stride[1];
      const bool full_y = 2 * y + 1 < sy;
      for (uint64_t x = 0; x < ox; x++) {
        const T* p = row + static_cast<int64_t>(2 * x) * ix;
        T r = p[0];
        if (full_y && 2 * x + 1 < sx) r = pool_block(p[0], p[ix], p[iy], p[ix + iy], sparse);
        dst[static_cast<int64_t>(x) * out_stride[0]] = r;
      }
    }
  }
}

}  // namespace crackle

namespace crackle {

// The most frequent of n values, ties to the one seen first.
template <typename T>
inline T first_mode(const T* v, int n) {
  T best = v[0];
  int best_count = 0;
  for (int i = 0; i < n && 2 * best_count <= n; i++) {
    bool seen = false;
    for (int j = 0; j < i && !seen; j++) seen = v[j] == v[i];
    if (seen) continue;
    int count = 1;
    for (int j = i + 1; j < n; j++) count += v[j] == v[i];
    if (count > best_count) {
      best_count = count;
      best = v[i];
    }
  }
  return best;
}

// 2x2x1 pooling (pool_block, not sparse) of x-contiguous rows: `in` is (sx, sy, sz) with x stride 1,
// row stride `in_row` and slice stride `in_slice`; `out` likewise. Kept apart from mode_pool_2x2
// so that the compiler vectorizes the inner loop (unit strides, no sparse branch).
template <typename T>
void mode_pool_2x2_rows(const T* __restrict in, int64_t in_row, int64_t in_slice, uint64_t sx, uint64_t sy,
                        uint64_t sz, T* __restrict out, int64_t out_row, int64_t out_slice) {
  const uint64_t pairs = sx / 2, oy = (sy + 1) / 2;
  for (uint64_t z = 0; z < sz; z++) {
    for (uint64_t y = 0; y < oy; y++) {
      const T* r0 = in + static_cast<int64_t>(z) * in_slice + static_cast<int64_t>(2 * y) * in_row;
      T* dst = out + static_cast<int64_t>(z) * out_slice + static_cast<int64_t>(y) * out_row;
      if (2 * y + 1 < sy) {
        const T* r1 = r0 + in_row;
        for (uint64_t x = 0; x < pairs; x++) {
          const T a = r0[2 * x], b = r0[2 * x + 1], c = r1[2 * x], d = r1[2 * x + 1];
          const T bcd = b == c ? b : d;
          dst[x] = (a == b) | (a == c) ? a : bcd;
        }
      } else {  // blocks cut by the odd edge in y: their first pixel
        for (uint64_t x = 0; x < pairs; x++) dst[x] = r0[2 * x];
      }
      if (sx & 1) dst[pairs] = r0[sx - 1];
    }
  }
}

// 2x2x2 pooling (first_mode) of x-contiguous rows of an (sx, sy, sz) array of even sizes (other
// shapes take mode_pool_blocks' general loop): a block of one label (most of a segmentation) is found by
// seven comparisons, the rest by first_mode.
template <typename T>
void mode_pool_2x2x2_rows(const T* __restrict in, int64_t in_row, int64_t in_slice, uint64_t sx, uint64_t sy,
                          uint64_t sz, T* __restrict out, int64_t out_row, int64_t out_slice) {
  T v[8];
  for (uint64_t z = 0; z < sz / 2; z++) {
    for (uint64_t y = 0; y < sy / 2; y++) {
      const T* r0 = in + static_cast<int64_t>(2 * z) * in_slice + static_cast<int64_t>(2 * y) * in_row;
      const T* r1 = r0 + in_row;
      const T* r2 = r0 + in_slice;
      const T* r3 = r2 + in_row;
      T* dst = out + static_cast<int64_t>(z) * out_slice + static_cast<int64_t>(y) * out_row;
      for (uint64_t x = 0; x < sx / 2; x++) {
        const uint64_t i = 2 * x;
        v[0] = r0[i], v[1] = r0[i + 1], v[2] = r1[i], v[3] = r1[i + 1];
        v[4] = r2[i], v[5] = r2[i + 1], v[6] = r3[i], v[7] = r3[i + 1];
        const bool uniform = (v[0] == v[1]) & (v[0] == v[2]) & (v[0] == v[3]) & (v[0] == v[4]) & (v[0] == v[5]) &
                             (v[0] == v[6]) & (v[0] == v[7]);
        dst[x] = uniform ? v[0] : first_mode(v, 8);
      }
    }
  }
}

// Mode pooling of an (s0, s1, s2) array by factor[k] (1 or 2) along each axis, axis 2 the array's
// last (fastest in C order); the blocks' voxels are taken in that C order. A whole block of four
// voxels (factor 2 along two axes) follows the reference's rule (pool_block, a, b, c, d in C
// order: the same as mode_pooling_2x2x1 when the axes are Crackle's x and y); every other block
// (eight voxels, two, one, or one cut by an odd edge) takes its most frequent value, ties to the
// first in C order. Strides are in elements; `out` is (ceil(s0/f0), ceil(s1/f1), ceil(s2/f2)).
template <typename T>
void mode_pool_blocks(const T* in, const int64_t in_stride[3], const uint64_t shape[3], const uint32_t factor[3],
                      T* out, const int64_t out_stride[3]) {
  const uint64_t o0 = (shape[0] + factor[0] - 1) / factor[0];
  const uint64_t o1 = (shape[1] + factor[1] - 1) / factor[1];
  const uint64_t o2 = (shape[2] + factor[2] - 1) / factor[2];
  if (factor[0] == 1 && factor[1] == 2 && factor[2] == 2 && in_stride[2] == 1 && out_stride[2] == 1) {
    mode_pool_2x2_rows(in, in_stride[1], in_stride[0], shape[2], shape[1], shape[0], out, out_stride[1],
                       out_stride[0]);
    return;
  }
  if (factor[0] == 2 && factor[1] == 2 && factor[2] == 2 && in_stride[2] == 1 && out_stride[2] == 1 &&
      shape[0] % 2 == 0 && shape[1] % 2 == 0 && shape[2] % 2 == 0) {
    mode_pool_2x2x2_rows(in, in_stride[1], in_stride[0], shape[2], shape[1], shape[0], out, out_stride[1],
                         out_stride[0]);
    return;
  }
  if (factor[0] == 1 && factor[1] == 2 && factor[2] == 2) {  // 2x2x1 in Crackle's x and y
    const int64_t xyz_in[3] = {in_stride[2], in_stride[1], in_stride[0]};
    const int64_t xyz_out[3] = {out_stride[2], out_stride[1], out_stride[0]};
    mode_pool_2x2(in, xyz_in, shape[2], shape[1], shape[0], false, out, xyz_out);
    return;
  }
  const int pooled_axes = (factor[0] == 2) + (factor[1] == 2) + (factor[2] == 2);
  T v[8];
  for (uint64_t i = 0; i < o0; i++) {
    const uint64_t n0 = factor[0] == 2 && 2 * i + 1 < shape[0] ? 2 : 1;
    for (uint64_t j = 0; j < o1; j++) {
      const uint64_t n1 = factor[1] == 2 && 2 * j + 1 < shape[1] ? 2 : 1;
      const T* base = in + static_cast<int64_t>(i * factor[0]) * in_stride[0] +
                      static_cast<int64_t>(j * factor[1]) * in_stride[1];
      T* dst = out + static_cast<int64_t>(i) * out_stride[0] + static_cast<int64_t>(j) * out_stride[1];
      for (uint64_t k = 0; k < o2; k++) {
        const uint64_t n2 = factor[2] == 2 && 2 * k + 1 < shape[2] ? 2 : 1;
        const T* p = base + static_cast<int64_t>(k * factor[2]) * in_stride[2];
        int n = 0;
        for (uint64_t a = 0; a < n0; a++)
          for (uint64_t b = 0; b < n1; b++)
            for (uint64_t c = 0; c < n2; c++)
              v[n++] = p[static_cast<int64_t>(a) * in_stride[0] + static_cast<int64_t>(b) * in_stride[1] +
                         static_cast<int64_t>(c) * in_stride[2]];
        T r;
        if (n == 4 && pooled_axes == 2) {
          r = pool_block(v[0], v[1], v[2], v[3], false);
        } else {
          r = first_mode(v, n);
        }
        dst[static_cast<int64_t>(k) * out_stride[2]] = r;
      }
    }
  }
}

}  // namespace crackle
