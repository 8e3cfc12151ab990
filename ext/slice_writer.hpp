// Writing a decoded slice: every pixel gets the value of the component its run belongs to, and
// the slice's CRC is computed in the same pass.
#pragma once

#include <cstdint>
#include <vector>

#include "ccl.hpp"
#include "crc.hpp"

namespace crackle {

// Writes the sx * sy pixels of a labelled slice, row by row, to dst: every pixel of run r gets
// component_values[runs.component[r]]. `run_values` is scratch. With `crc` (available(), built
// for this slice's shape) also returns the slice's CRC-32C of component ids (FORMAT 7.1), folded
// into the same pass; without it returns 0.
template <typename T>
uint32_t write_slice(const SliceRuns& runs, uint32_t sx, uint32_t sy, const T* component_values,
                     std::vector<T>& run_values, T* dst, const RunCrc32c* crc);

}  // namespace crackle
