// 4-connected component labelling of one slice, numbered by first appearance in raster order
// (FORMAT.md 7.2). The encoder joins equal neighbours; the decoder joins pixels its crack code
// left connected. Both feed the same routine, so the two sides number components identically.
#pragma once

#include <cstdint>
#include <vector>

namespace crackle {

// Scratch kept per thread so labelling a slice allocates nothing after the first slice.
struct CclScratch {
  std::vector<uint32_t> parent;
  std::vector<uint32_t> final_id;
};

namespace detail {
inline uint32_t find_root(uint32_t* parent, uint32_t i) {
  while (parent[i] != i) {
    parent[i] = parent[parent[i]];  // path halving
    i = parent[i];
  }
  return i;
}
}  // namespace detail

// join_left(p) / join_up(p): is pixel p connected to p-1 / p-sx (only asked when x > 0 / y > 0).
// Writes the component id of every pixel to ids[0 .. sx*sy) and returns the component count.
//
// Two passes over provisional labels handed out in raster order. Unions always keep the smaller
// root, so a component's root is its first pixel's provisional label and numbering roots in
// increasing order is numbering by first appearance.
template <typename JoinLeft, typename JoinUp>
uint32_t label_components(uint32_t sx, uint32_t sy, JoinLeft join_left, JoinUp join_up, uint32_t* ids,
                          CclScratch& scratch) {
  const uint64_t n = static_cast<uint64_t>(sx) * sy;
  if (n == 0) return 0;
  if (scratch.parent.size() < n) scratch.parent.resize(n);
  uint32_t* parent = scratch.parent.data();
  uint32_t next = 0;

  // Row 0: only left joins.
  ids[0] = next;
  parent[next] = next;
  next++;
  for (uint32_t x = 1; x < sx; x++) {
    if (join_left(x)) {
      ids[x] = ids[x - 1];
    } else {
      ids[x] = next;
      parent[next] = next;
      next++;
    }
  }
  for (uint32_t y = 1; y < sy; y++) {
    const uint64_t row = static_cast<uint64_t>(y) * sx;
    {
      const uint64_t p = row;
      if (join_up(p)) {
        ids[p] = ids[p - sx];
      } else {
        ids[p] = next;
        parent[next] = next;
        next++;
      }
    }
    for (uint32_t x = 1; x < sx; x++) {
      const uint64_t p = row + x;
      const bool l = join_left(p);
      const bool u = join_up(p);
      if (l) {
        const uint32_t a = ids[p - 1];
        ids[p] = a;
        if (u) {
          const uint32_t b = ids[p - sx];
          if (a != b) {
            const uint32_t ra = detail::find_root(parent, a);
            const uint32_t rb = detail::find_root(parent, b);
            if (ra < rb) {
              parent[rb] = ra;
            } else if (rb < ra) {
              parent[ra] = rb;
            }
          }
        }
      } else if (u) {
        ids[p] = ids[p - sx];
      } else {
        ids[p] = next;
        parent[next] = next;
        next++;
      }
    }
  }

  if (scratch.final_id.size() < next) scratch.final_id.resize(next);
  uint32_t* final_id = scratch.final_id.data();
  uint32_t count = 0;
  for (uint32_t i = 0; i < next; i++) {
    const uint32_t r = detail::find_root(parent, i);
    final_id[i] = (r == i) ? count++ : final_id[r];
  }
  if (count != next) {
    for (uint64_t p = 0; p < n; p++) ids[p] = final_id[ids[p]];
  }
  return count;
}

}  // namespace crackle
