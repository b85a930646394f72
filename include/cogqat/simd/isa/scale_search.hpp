#pragma once
// The weighted block-scale search of the 32-value formats (format/weighted_block_search.hpp's
// search_block_scale), with its candidates side by side in SIMD lanes. The reference tries each candidate
// scale in turn, up to three passes each, and every pass is a serial double sum over the block: a chain of
// dependent additions that leaves the core idle. Here one lane is one candidate, so each lane's sums still
// take the block's values one at a time in the reference's order, with the reference's float operations
// (the division, nearest_int's bit trick with its wrap-around, the clamp, the zero-scale level) and its
// double ones (no fused multiply-add: the strict-FP region), and so have the reference's bits. What is
// cheap and done once per candidate stays scalar: the candidate list, the refit's closed form, and the
// choice, made in the reference's order (candidate after candidate, pass after pass, the first minimum).
//
// The candidate list, the weight levels and the refit's closed form are the reference's own functions, called
// through simd/isa/baseline_call.hpp; tests/test_simd_scale_search.cpp holds every set's kernel to the
// reference's bits.
//
// Include only in a unit compiled for the tag's instruction set (simd/isa/register.hpp does).

#include <cmath>
#include <cstddef>
#include <cstdint>

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
#include <immintrin.h>
#endif

#include "cogqat/core/strict_fp.hpp"
#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/format/block_format.hpp"
#include "cogqat/format/legacy_formats.hpp"
#include "cogqat/format/weighted_block_search.hpp"
#include "cogqat/simd/isa/baseline_call.hpp"
#include "cogqat/simd/isa/convert.hpp"
#include "cogqat/simd/isa/isa.hpp"
#include "cogqat/simd/isa/quantize_blocks.hpp"

namespace cogqat::simd {

COGQAT_STRICT_FP_BEGIN

namespace detail::scale_search {

template <class Isa>
using floats = batch<float, Isa>;
template <class Isa>
using ints = batch<std::int32_t, Isa>;
template <class Isa>
using doubles = batch<double, Isa>;

/// fp32 -> fp16 -> fp32 (as_stored) in every lane, the bits of fp32_to_fp16_bits then fp16_bits_to_fp32 for
/// every input: normal halves round the mantissa to 10 bits (ties to even, carrying into the exponent),
/// subnormal ones to a multiple of 2^-24 (by the 2^23 trick, exact below 2^10 units), overflow to Inf, and
/// every NaN becomes the quiet NaN with its sign.
template <class Isa>
[[nodiscard]] inline floats<Isa> fp16_round_trip(const floats<Isa>& v) noexcept {
    using fi = ints<Isa>;
    using ff = floats<Isa>;
    const fi bits = xsimd::bitwise_cast<fi>(v);
    const fi sign = bits & fi(INT32_MIN);
    const fi magnitude = bits & fi(0x7fffffff);
    const fi normal = (magnitude + fi(0xfff) + ((magnitude >> 13) & fi(1))) & fi(~0x1fff);
    const ff units = xsimd::bitwise_cast<ff>(magnitude) * ff(0x1p24f);
    const ff subnormal = ((units + ff(0x1p23f)) - ff(0x1p23f)) * ff(0x1p-24f);
    fi r = xsimd::select(magnitude >= fi(0x38800000), normal, xsimd::bitwise_cast<fi>(subnormal));
    r = xsimd::select(magnitude >= fi(0x477ff000), fi(0x7f800000), r);
    r = xsimd::select(magnitude > fi(0x7f800000), fi(0x7fc00000), r);
    return xsimd::bitwise_cast<ff>(r | sign);
}

/// One pass of one group of candidates (floats<Isa>::size lanes at `scale`, `min`, already as stored): each
/// lane's weighted error and refit sums over the block, in the reference's order. sums[k] receives sum k
/// (error, sl, sll, slx) of the group's lanes.
template <class Isa, class F>
inline void pass_sums(const float* x, const float* importance, const floats<Isa>& scale, const floats<Isa>& min, double* error, double* sl,
                      double* sll, double* slx) noexcept {
    using ff = floats<Isa>;
    using fi = ints<Isa>;
    using fd = doubles<Isa>;
    using A = typename Isa::arch;
    constexpr std::size_t half = fd::size;
    constexpr auto range = weight_levels<F>;
    const auto zero_scale = xsimd::bool_cast(scale == ff(0.0f));
    fd e[2] = {fd(0.0), fd(0.0)}, l1[2] = {fd(0.0), fd(0.0)}, l2[2] = {fd(0.0), fd(0.0)}, lx[2] = {fd(0.0), fd(0.0)};
    for (std::size_t i = 0; i < F::block_size; ++i) {
        const ff xv(x[i]);
        const fi nearest = quantize_detail::nearest_int<A>((xv + min) / scale) + fi(F::level_offset);
        const fi clamped = xsimd::min(xsimd::max(nearest, fi(range.lowest)), fi(range.highest));
        const fi level = xsimd::select(zero_scale, fi(F::level_offset), clamped) - fi(F::level_offset);
        const ff lf = xsimd::batch_cast<float>(level);  // exact: |level| < 2^8
        ff decoded = scale * lf;
        if constexpr (F::has_min) decoded = decoded - min;
        const auto [l_low, l_high] = widen_to_double<Isa>(lf);
        const auto [dec_low, dec_high] = widen_to_double<Isa>(decoded);
        const fd l[2] = {l_low, l_high}, dec[2] = {dec_low, dec_high};
        const fd xd(static_cast<double>(x[i])), w(static_cast<double>(importance[i]));
        for (std::size_t h = 0; h < 2; ++h) {
            const fd d = xd - dec[h];
            e[h] = e[h] + w * d * d;
            const fd wl = w * l[h];
            if constexpr (F::has_min) l1[h] = l1[h] + wl;
            l2[h] = l2[h] + wl * l[h];
            lx[h] = lx[h] + wl * xd;
        }
    }
    for (std::size_t h = 0; h < 2; ++h) {
        e[h].store_unaligned(error + h * half);
        if constexpr (F::has_min) l1[h].store_unaligned(sl + h * half);
        l2[h].store_unaligned(sll + h * half);
        lx[h].store_unaligned(slx + h * half);
    }
}

template <class Isa, class F>
affine_scale search_block_scale(const float* x, const float* importance) noexcept {
    using ff = floats<Isa>;
    constexpr std::size_t lanes = ff::size, capacity = (max_block_scale_candidates<F> + lanes - 1) / lanes * lanes;

    // The candidates in the reference's order, as lanes; those past the last are padding, never read back.
    affine_scale candidates[max_block_scale_candidates<F>];
    const std::size_t count = block_scale_candidates<Isa, F>(x, candidates);
    if (count == 0) return {0.0f, 0.0f};
    alignas(64) float scale[capacity], min[capacity];
    for (std::size_t c = 0; c < capacity; ++c) {
        scale[c] = c < count ? candidates[c].scale : 1.0f;
        min[c] = c < count ? candidates[c].min : 0.0f;
    }

    // sw and sx are the same for every candidate and pass.
    double sw = 0, sx = 0;
    if constexpr (F::has_min)
        for (std::size_t i = 0; i < F::block_size; ++i) {
            const double w = importance[i];
            sw += w, sx += w * x[i];
        }

    // Pass p of candidate c ran (its scale stored finite) when alive[p][c]; its stored scale and error then
    // sit at [p][c].
    alignas(64) float stored_scale[3][capacity], stored_min[3][capacity];
    alignas(64) double error[3][capacity], sl[capacity]{}, sll[capacity], slx[capacity];
    bool alive[3][capacity];
    bool chain[capacity];  // the chain reached this pass
    for (std::size_t c = 0; c < capacity; ++c) chain[c] = c < count;
    for (int pass = 0; pass < 3; ++pass) {
        for (std::size_t g = 0; g < count; g += lanes) {
            bool any = false;
            for (std::size_t c = g; c < g + lanes; ++c) any = any || chain[c];
            const ff s = fp16_round_trip<Isa>(ff::load_aligned(scale + g)), m = fp16_round_trip<Isa>(ff::load_aligned(min + g));
            s.store_aligned(stored_scale[pass] + g);
            m.store_aligned(stored_min[pass] + g);
            if (any) pass_sums<Isa, F>(x, importance, s, m, error[pass] + g, sl + g, sll + g, slx + g);
        }
        for (std::size_t c = 0; c < count; ++c) {
            const float s = stored_scale[pass][c], m = stored_min[pass][c];
            alive[pass][c] = chain[c] = chain[c] && std::isfinite(s) && std::isfinite(m);
            if (!chain[c] || pass == 2) continue;
            // The reference's refit; a failure ends the chain.
            affine_scale refitted{scale[c], min[c]};
            chain[c] = refit_from_sums<Isa, F>(sw, sl[c], sll[c], sx, slx[c], refitted);
            scale[c] = refitted.scale, min[c] = refitted.min;
        }
    }

    affine_scale best{};
    double best_error = INFINITY;
    for (std::size_t c = 0; c < count; ++c)
        for (int pass = 0; pass < 3 && alive[pass][c]; ++pass)
            if (error[pass][c] < best_error) best_error = error[pass][c], best = {stored_scale[pass][c], stored_min[pass][c]};
    return best;
}

}  // namespace detail::scale_search

COGQAT_STRICT_FP_END

/// Fills the weighted block-scale searches of the 32-value formats.
template <class Isa>
void add_scale_search_kernels(dispatch::kernel_table& t) {
    t[ggml_type::q4_0].search_block_scale = &detail::scale_search::search_block_scale<Isa, formats::q4_0>;
    t[ggml_type::q4_1].search_block_scale = &detail::scale_search::search_block_scale<Isa, formats::q4_1>;
    t[ggml_type::q5_0].search_block_scale = &detail::scale_search::search_block_scale<Isa, formats::q5_0>;
    t[ggml_type::q5_1].search_block_scale = &detail::scale_search::search_block_scale<Isa, formats::q5_1>;
    t[ggml_type::q8_0].search_block_scale = &detail::scale_search::search_block_scale<Isa, formats::q8_0>;
}

}  // namespace cogqat::simd
