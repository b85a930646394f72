#pragma once
// A loop the compiler cannot leave rolled, for the kernels' loops over vectors and registers: each
// accumulator indexed by it stays in a register.

#include <cstddef>
#include <type_traits>
#include <utility>

namespace cogqat::simd {

/// f(integral_constant<0>), ..., f(integral_constant<N - 1>).
template <std::size_t N, class F>
inline void unrolled(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) { (f(std::integral_constant<std::size_t, I>{}), ...); }
    (std::make_index_sequence<N>{});
}

}  // namespace cogqat::simd
