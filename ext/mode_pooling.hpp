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
