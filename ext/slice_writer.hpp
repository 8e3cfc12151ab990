// Writing a decoded slice: every pixel gets the value of the run it lies in.
#pragma once

#include <cstdint>

#include "ccl.hpp"

namespace crackle {

// Writes the sx * sy pixels of a slice, row by row, to dst: pixel x of row y gets
// run_values[r], r the run of row y that covers x. run_values has one entry per entry of
// runs.start (sentinels included, their values unused) plus kRunValuePadding more, which
// the vector path may read and ignore.
template <typename T>
void write_slice(const SliceRuns& runs, uint32_t sx, uint32_t sy, const T* run_values, T* dst);

constexpr uint32_t kRunValuePadding = 16;

}  // namespace crackle
