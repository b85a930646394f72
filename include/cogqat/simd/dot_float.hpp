#pragma once
// (in progress)
#include "cogqat/simd/isa.hpp"
#include "cogqat/simd/kernel_table.hpp"

namespace cogqat::simd {

template <class Isa>
void add_float_dot_kernels(kernel_table&) {}

} // namespace cogqat::simd
