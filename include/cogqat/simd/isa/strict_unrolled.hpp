#pragma once
// simd/unrolled.hpp's loop for the kernels that keep the reference's roundings (rank_update.hpp,
// float_gemm.hpp): the same loop, compiled in a strict-FP region. GCC does not inline a function compiled
// with other optimization options (the region's fp-contract) into one of these, so unrolled()'s lambdas
// would stay calls there, and their accumulators in memory.
//
// Include only in a unit compiled for the tag's instruction set (simd/isa/register.hpp does).

#include <cstddef>
#include <type_traits>
#include <utility>

#include "cogqat/core/strict_fp.hpp"

namespace cogqat::simd {

COGQAT_STRICT_FP_BEGIN

/// f(integral_constant<0>) .. f(integral_constant<N - 1>), each accumulator it indexes kept in a register; on
/// the set's tag, as every kernel, so that each set's copy is its own.
template <class Isa, std::size_t N, class F>
inline void strict_unrolled(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) { (f(std::integral_constant<std::size_t, I>{}), ...); }
    (std::make_index_sequence<N>{});
}

COGQAT_STRICT_FP_END

}  // namespace cogqat::simd
