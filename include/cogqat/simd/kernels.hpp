#pragma once
// The kernel table of one instruction set, assembled from the kernel families. Each family lives in its
// own header and fills the entries it has; an entry it leaves null falls back to the scalar reference.
//
// Include only in a unit compiled for the tag's instruction set (simd/register_isa.hpp does).

#include "cogqat/simd/dequantize.hpp"
#include "cogqat/simd/dot_float.hpp"
#include "cogqat/simd/dot_quantized.hpp"
#include "cogqat/simd/interleaved_dot.hpp"
#include "cogqat/simd/isa.hpp"
#include "cogqat/simd/kernel_table.hpp"
#include "cogqat/simd/quantize_blocks.hpp"
#include "cogqat/simd/quantize_k.hpp"
#include "cogqat/simd/quantizer_kernels.hpp"

namespace cogqat::simd {

/// Every kernel of `Isa`, built once.
template <class Isa>
const kernel_table& kernel_table_of() {
    static const kernel_table table = [] {
        kernel_table t{isa_traits<Isa>::name, isa_traits<Isa>::priority, {}};
        add_dequantize_kernels<Isa>(t);
        add_block_quantize_kernels<Isa>(t);
        add_k_quantize_kernels<Isa>(t);
        add_quantized_dot_kernels<Isa>(t);
        add_interleaved_kernels<Isa>(t);
        add_float_dot_kernels<Isa>(t);
        add_quantizer_kernels<Isa>(t);
        return t;
    }();
    return table;
}

} // namespace cogqat::simd
