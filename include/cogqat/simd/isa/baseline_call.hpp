#pragma once
// The kernels' calls into the library's scalar code: a format's scale loader and scale store, the reference's
// block quantizers. Those are plain inline functions. Called directly from a per-ISA unit, the compiler may
// emit one out of line there, compiled with that unit's instruction-set flags and under the same name as every
// other unit's copy; the linker keeps one copy for the whole program, so baseline code could run AVX-512
// instructions. Through these wrappers, templated on the instruction set and inlining the callee whole, the
// scalar code is compiled into symbols that are that set's alone (scripts/check_isa_symbols.sh checks it).
//
// Include only in a unit compiled for the tag's instruction set (simd/isa/register.hpp does).

#include <cstddef>

#include "cogqat/core/strict_fp.hpp"
#include "cogqat/format/activation_quantize.hpp"
#include "cogqat/format/block_format.hpp"
#include "cogqat/format/k_formats.hpp"
#include "cogqat/format/scale_search.hpp"
#include "cogqat/format/table_format.hpp"
#include "cogqat/format/weighted_block_search.hpp"

/// Inlines every call in the function's body, transitively: nothing the wrapper calls is left as a call.
#if defined(__GNUC__) || defined(__clang__)
#define COGQAT_ISA_INLINE_ALL [[gnu::flatten]]
#else
#define COGQAT_ISA_INLINE_ALL
#endif

namespace cogqat::simd {

// The references are compiled under strict floating point (core/strict_fp.hpp); so are their wrappers, or
// GCC would not inline them (their optimization options would differ).
COGQAT_STRICT_FP_BEGIN

/// F::sub_block_scale(block, sub), compiled for Isa.
template <class Isa, BlockFormat F>
COGQAT_ISA_INLINE_ALL inline affine_scale sub_block_scale(const std::byte* block, std::size_t sub) noexcept {
    return F::sub_block_scale(block, sub);
}

/// F::scale(block, sub, factor), a table format's sub-block scale times `factor`, compiled for Isa.
template <class Isa, TableFormat F>
COGQAT_ISA_INLINE_ALL inline float table_scale(const std::byte* block, std::size_t sub, float factor) noexcept {
    return F::scale(block, sub, factor);
}

/// F::store_sub_scales(scales, mins, block), compiled for Isa: false for a block it has written completely.
template <class Isa, BlockFormat F>
COGQAT_ISA_INLINE_ALL inline bool store_sub_scales(const float* scales, const float* mins, std::byte* block) noexcept {
    return F::store_sub_scales(scales, mins, block);
}

/// F::quantize_block(x, block), the reference quantizer of one block, compiled for Isa.
template <class Isa, BlockFormat F>
COGQAT_ISA_INLINE_ALL inline void quantize_block(const float* x, std::byte* block) noexcept {
    F::quantize_block(x, block);
}

/// detail::quantize_activation_block_q8 (one q8_0 or q8_1 activation block as ggml rounds it), compiled for Isa.
template <class Isa>
COGQAT_ISA_INLINE_ALL inline void quantize_activation_block_q8(const float* x, std::byte* block, bool with_sum) noexcept {
    cogqat::detail::quantize_activation_block_q8(x, block, with_sum);
}

/// block_scale_candidates<F>(x, out), the weighted block-scale search's candidates, compiled for Isa.
template <class Isa, DirectlyScaledFormat F>
COGQAT_ISA_INLINE_ALL inline std::size_t block_scale_candidates(const float* x, affine_scale* out) noexcept {
    return cogqat::block_scale_candidates<F>(x, out);
}

/// detail::refit_from_sums<F>, the weighted block-scale search's least-squares refit, compiled for Isa.
template <class Isa, DirectlyScaledFormat F>
COGQAT_ISA_INLINE_ALL inline bool refit_from_sums(double sw, double sl, double sll, double sx, double slx, affine_scale& s) noexcept {
    return cogqat::detail::refit_from_sums<F>(sw, sl, sll, sx, slx, s);
}

/// F::search, the affine K formats' scale-search options, as a constant of Isa's own.
template <class Isa, class F>
inline constexpr cogqat::detail::affine_search_options search_options = F::search;

COGQAT_STRICT_FP_END

}  // namespace cogqat::simd
