#pragma once
// The kernel table of one instruction set, assembled from the kernel families. Each family lives in its
// own header and fills the entries it has; an entry it leaves null falls back to the scalar reference.
//
// Include only in a unit compiled for the tag's instruction set (simd/isa/register.hpp does).

#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/simd/isa/calibrator_kernels.hpp"
#include "cogqat/simd/isa/dequantize.hpp"
#include "cogqat/simd/isa/dot_float.hpp"
#include "cogqat/simd/isa/dot_quantized.hpp"
#include "cogqat/simd/isa/float_gemm.hpp"
#include "cogqat/simd/isa/interleaved_dot.hpp"
#include "cogqat/simd/isa/isa.hpp"
#include "cogqat/simd/isa/loss_kernels.hpp"
#include "cogqat/simd/isa/pack_kernels.hpp"
#include "cogqat/simd/isa/quantize_blocks.hpp"
#include "cogqat/simd/isa/quantize_k.hpp"
#include "cogqat/simd/isa/quantizer_kernels.hpp"
#include "cogqat/simd/isa/rank_update.hpp"
#include "cogqat/simd/isa/scale_search.hpp"
#include "cogqat/simd/isa/second_moments.hpp"

namespace cogqat::simd {

/// Every kernel of `Isa`, built once.
template <class Isa>
const dispatch::kernel_table& kernel_table_of() {
    static const dispatch::kernel_table table = [] {
        dispatch::kernel_table t{isa_traits<Isa>::name, isa_traits<Isa>::priority, {}};
        add_dequantize_kernels<Isa>(t);
        add_block_quantize_kernels<Isa>(t);
        add_k_quantize_kernels<Isa>(t);
        add_quantized_dot_kernels<Isa>(t);
        add_interleaved_kernels<Isa>(t);
        add_float_dot_kernels<Isa>(t);
        add_quantizer_kernels<Isa>(t);
        add_loss_kernels<Isa>(t);
        add_pack_kernels<Isa>(t);
        add_calibrator_kernels<Isa>(t);
        add_matrix_kernels<Isa>(t);
        add_float_gemm_kernels<Isa>(t);
        add_scale_search_kernels<Isa>(t);
        add_second_moment_kernels<Isa>(t);
        return t;
    }();
    return table;
}

}  // namespace cogqat::simd
