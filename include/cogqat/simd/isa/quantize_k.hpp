#pragma once
// SIMD quantizers of the K formats (q2_K, q3_K, q4_K, q5_K, q6_K, q8_K), byte for byte the reference's
// (format/k_formats.hpp, format/scale_search.hpp).
//
// The scale searches are sequential sums over one sub-block, so they are vectorized across sub-blocks:
// lane l of every batch belongs to sub-block l of a group of consecutive sub-blocks (those of one or more
// super-blocks), and each lane runs the reference search on its own values in the reference order. The
// reference's branches become per-lane masks, its early exits lanes that stop changing. Only the few
// per-super-block steps (quantizing the sub-block scales) stay scalar; the final re-quantization and the
// level packing are vectorized along the values.
//
// Include only in a unit compiled for the tag's instruction set (simd/isa/register.hpp does).

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "cogqat/core/little_endian.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/format/block_format.hpp"
#include "cogqat/format/k_formats.hpp"
#include "cogqat/format/scale_search.hpp"
#include "cogqat/simd/isa/baseline_call.hpp"
#include "cogqat/simd/isa/isa.hpp"
#include "cogqat/simd/isa/quantize_blocks.hpp"

namespace cogqat::simd::quantize_detail {

COGQAT_STRICT_FP_BEGIN

/// The reference's clamp(nearest_int(y), lowest, highest), as a float (the searches multiply with it).
template <class Isa, class A = typename Isa::arch>
[[nodiscard]] inline floats<A> clamped_level(const floats<A>& y, int lowest, int highest) noexcept {
    return xsimd::batch_cast<float>(xsimd::min(xsimd::max(nearest_int<A>(y), ints<A>(lowest)), ints<A>(highest)));
}

/// detail::affine_scale_search in every lane: x[i] and w[i] hold value and weight i of each lane's
/// sub-block. Gives each lane's scale, the min the reference returns (-min) and the levels it found.
template <class Isa, std::size_t S, class A = typename Isa::arch>
inline void affine_search_lanes(int nmax, const floats<A>* x, const floats<A>* w, const cogqat::detail::affine_search_options& opt,
                                floats<A>& scale_out, floats<A>& min_out, ints<A>* found) noexcept {
    using fb = floats<A>;
    const fb zero(0.0f);
    fb min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (std::size_t i = 1; i < S; ++i) {
        min = xsimd::select(x[i] < min, x[i], min);
        max = xsimd::select(max < x[i], x[i], max);
        sum_w = sum_w + w[i];
        sum_x = sum_x + w[i] * x[i];
    }
    min = xsimd::select(min > zero, zero, min);
    const auto flat = max == min;  // these lanes return at once: levels 0, scale 0
    auto error_of = [&](const fb& diff) { return opt.absolute_error ? xsimd::abs(diff) : diff * diff; };

    fb inverse = fb(static_cast<float>(nmax)) / (max - min);
    fb scale = fb(1.0f) / inverse;
    fb best_error = zero;
    std::array<fb, S> l;
    for (std::size_t i = 0; i < S; ++i) {
        l[i] = clamped_level<Isa>(inverse * (x[i] - min), 0, nmax);
        best_error = best_error + w[i] * error_of(scale * l[i] + min - x[i]);
    }
    // The levels are a function of the inverse scale and the min in force when they were found, so the
    // winning pair is kept instead of the levels themselves.
    fb level_inverse = inverse, level_min = min;
    if (opt.steps >= 1) {
        for (int step = 0; step <= opt.steps; ++step) {
            inverse = fb(opt.first_offset + opt.offset_step * step + nmax) / (max - min);
            fb sum_l = zero, sum_l2 = zero, sum_xl = zero;
            for (std::size_t i = 0; i < S; ++i) {
                l[i] = clamped_level<Isa>(inverse * (x[i] - min), 0, nmax);
                const fb wl = w[i] * l[i];
                sum_l = sum_l + wl;
                sum_l2 = sum_l2 + wl * l[i];
                sum_xl = sum_xl + wl * x[i];
            }
            const fb det = sum_w * sum_l2 - sum_l * sum_l;
            const auto solvable = (det > zero) & !flat;
            if (xsimd::none(solvable)) continue;
            fb this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            fb this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            const auto positive = this_min > zero;
            this_min = xsimd::select(positive, zero, this_min);
            this_scale = xsimd::select(positive, sum_xl / sum_l2, this_scale);
            fb error = zero;
            for (std::size_t i = 0; i < S; ++i) error = error + w[i] * error_of(this_scale * l[i] + this_min - x[i]);
            const auto better = solvable & (error < best_error);
            level_inverse = xsimd::select(better, inverse, level_inverse);
            level_min = xsimd::select(better, min, level_min);
            best_error = xsimd::select(better, error, best_error);
            scale = xsimd::select(better, this_scale, scale);
            min = xsimd::select(better, this_min, min);
        }
    }
    scale_out = xsimd::select(flat, zero, scale);
    min_out = -min;
    const auto flat_int = xsimd::bool_cast(flat);
    for (std::size_t i = 0; i < S; ++i) {
        const ints<A> level = xsimd::min(xsimd::max(nearest_int<A>(level_inverse * (x[i] - level_min)), ints<A>(0)), ints<A>(nmax));
        found[i] = xsimd::select(flat_int, ints<A>(0), level);
    }
}

/// Each lane's largest magnitude and the signed value of its first occurrence, as largest_magnitude.
template <class Isa, std::size_t S, class A = typename Isa::arch>
inline void lane_largest_magnitude(const floats<A>* x, floats<A>& value, floats<A>& magnitude) noexcept {
    value = magnitude = floats<A>(0.0f);
    for (std::size_t i = 0; i < S; ++i) {
        const floats<A> a = xsimd::abs(x[i]);
        const auto larger = a > magnitude;
        magnitude = xsimd::select(larger, a, magnitude);
        value = xsimd::select(larger, x[i], value);
    }
}

/// detail::symmetric_scale_search with x^2 weights in every lane; found levels are offset by nmax.
template <class Isa, std::size_t S, class A = typename Isa::arch>
inline void symmetric_search_lanes(int nmax, const floats<A>* x, floats<A>& scale_out, ints<A>* found) noexcept {
    using fb = floats<A>;
    const fb zero(0.0f);
    fb value, magnitude;
    lane_largest_magnitude<Isa, S>(x, value, magnitude);
    const auto tiny = magnitude < fb(cogqat::detail::group_max_eps);
    std::array<fb, S> w, wx;
    for (std::size_t i = 0; i < S; ++i) {
        w[i] = x[i] * x[i];
        wx[i] = w[i] * x[i];
    }
    auto sums = [&](const fb& inverse, fb& sum_lx, fb& sum_l2) {
        sum_lx = sum_l2 = zero;
        for (std::size_t i = 0; i < S; ++i) {
            const fb l = clamped_level<Isa>(inverse * x[i], -nmax, nmax - 1);
            sum_lx = sum_lx + wx[i] * l;
            sum_l2 = sum_l2 + w[i] * l * l;
        }
    };
    fb inverse = fb(static_cast<float>(-nmax)) / value;
    fb sum_lx, sum_l2;
    sums(inverse, sum_lx, sum_l2);
    fb scale = xsimd::select(sum_l2 == zero, zero, sum_lx / sum_l2);
    fb best = scale * sum_lx;
    fb level_inverse = inverse;
    for (int step = -9; step <= 9; ++step) {
        if (step == 0) continue;
        inverse = fb(-(nmax + 0.1f * step)) / value;
        sums(inverse, sum_lx, sum_l2);
        const auto better = (sum_l2 > zero) & (sum_lx * sum_lx > best * sum_l2);
        const fb this_scale = sum_lx / sum_l2;
        scale = xsimd::select(better, this_scale, scale);
        best = xsimd::select(better, this_scale * sum_lx, best);
        level_inverse = xsimd::select(better, inverse, level_inverse);
    }
    scale_out = xsimd::select(tiny, zero, scale);
    const auto tiny_int = xsimd::bool_cast(tiny);
    for (std::size_t i = 0; i < S; ++i) {
        const ints<A> level =
                xsimd::min(xsimd::max(nearest_int<A>(level_inverse * x[i]), ints<A>(-nmax)), ints<A>(nmax - 1)) + ints<A>(nmax);
        found[i] = xsimd::select(tiny_int, ints<A>(0), level);
    }
}

/// detail::symmetric_refined_search in every lane of G groups of lanes (x[g * S + i]: value i of group g);
/// found levels are offset by nmax. A lane stops sweeping after a sweep that changed none of its levels,
/// as the reference's loop breaks. Each level's update depends on the previous one through a division,
/// so the groups are interleaved to overlap those latency chains.
template <class Isa, std::size_t S, std::size_t G, class A = typename Isa::arch>
inline void refined_search_lanes(int nmax, const floats<A>* x, floats<A>* scale_out, ints<A>* found) noexcept {
    using fb = floats<A>;
    using mask = xsimd::batch_bool<float, A>;
    const fb zero(0.0f);
    std::array<fb, G * S> w, wx, l;
    std::array<fb, G> sum_lx, sum_l2;
    std::array<mask, G> tiny, sweeping;
    for (std::size_t g = 0; g < G; ++g) {
        fb value, magnitude;
        lane_largest_magnitude<Isa, S>(x + g * S, value, magnitude);
        tiny[g] = magnitude < fb(cogqat::detail::group_max_eps);
        sweeping[g] = !tiny[g];
        const fb inverse = fb(static_cast<float>(-nmax)) / value;
        sum_lx[g] = sum_l2[g] = zero;
        for (std::size_t i = 0; i < S; ++i) {
            const std::size_t k = g * S + i;
            l[k] = clamped_level<Isa>(inverse * x[k], -nmax, nmax - 1);
            w[k] = x[k] * x[k];
            wx[k] = w[k] * x[k];
            sum_lx[g] = sum_lx[g] + wx[k] * l[k];
            sum_l2[g] = sum_l2[g] + w[k] * l[k] * l[k];
        }
    }
    auto any_sweeping = [&] {
        bool any = false;
        for (std::size_t g = 0; g < G; ++g) any = any || xsimd::any(sweeping[g]);
        return any;
    };
    for (int sweep = 0; sweep < 5 && any_sweeping(); ++sweep) {
        std::array<mask, G> changed;
        changed.fill(mask(false));
        for (std::size_t i = 0; i < S; ++i) {
            for (std::size_t g = 0; g < G; ++g) {
                const std::size_t k = g * S + i;
                const fb without = sum_lx[g] - wx[k] * l[k];
                fb slx = without;
                fb sl2 = sum_l2[g] - w[k] * l[k] * l[k];
                const fb candidate = clamped_level<Isa>(x[k] * sl2 / slx, -nmax, nmax - 1);
                slx = slx + wx[k] * candidate;
                sl2 = sl2 + w[k] * candidate * candidate;
                const auto accept = sweeping[g] & (without > zero) & !(candidate == l[k]) & (sl2 > zero) &
                                    (slx * slx * sum_l2[g] > sum_lx[g] * sum_lx[g] * sl2);
                l[k] = xsimd::select(accept, candidate, l[k]);
                sum_lx[g] = xsimd::select(accept, slx, sum_lx[g]);
                sum_l2[g] = xsimd::select(accept, sl2, sum_l2[g]);
                changed[g] = changed[g] | accept;
            }
        }
        for (std::size_t g = 0; g < G; ++g) sweeping[g] = sweeping[g] & changed[g];
    }
    for (std::size_t g = 0; g < G; ++g) {
        scale_out[g] = xsimd::select(tiny[g], zero, xsimd::select(sum_l2[g] > zero, sum_lx[g] / sum_l2[g], zero));
        const auto tiny_int = xsimd::bool_cast(tiny[g]);
        for (std::size_t i = 0; i < S; ++i)
            found[g * S + i] = xsimd::select(tiny_int, ints<A>(0), xsimd::batch_cast<std::int32_t>(l[g * S + i]) + ints<A>(nmax));
    }
}

// ------------------------------------------------------------------------------- the formats' own steps
//
// Per format: how its sub-blocks are searched (on `interleave` groups of lanes at once: x[g * sub + i] is
// value i of group g's sub-blocks). The sub-block scales are then stored by the reference's own step
// (F::store_sub_scales, scalar, once per super-block), which returns false for a block it has written
// completely (q6_K's all-zero block).

template <class F>
struct k_steps;

template <>
struct k_steps<formats::q2_K> {
    static constexpr std::size_t sub = 16, interleave = 1;

    template <class Isa, class A = typename Isa::arch>
    static void search(const floats<A>* x, floats<A>* scale, floats<A>* min, ints<A>* found) noexcept {
        std::array<floats<A>, sub> w;
        for (std::size_t i = 0; i < sub; ++i) w[i] = xsimd::abs(x[i]);
        affine_search_lanes<Isa, sub>(3, x, w.data(), {-0.5f, 0.1f, 15, true}, *scale, *min, found);
    }
};

template <>
struct k_steps<formats::q3_K> {
    static constexpr std::size_t sub = 16, interleave = 4;

    template <class Isa, class A = typename Isa::arch>
    static void search(const floats<A>* x, floats<A>* scale, floats<A>*, ints<A>* found) noexcept {
        refined_search_lanes<Isa, sub, interleave>(4, x, scale, found);
    }
};

template <unsigned Bits>
struct k_steps<formats::affine_k<Bits>> {
    using F = formats::affine_k<Bits>;
    static constexpr std::size_t sub = 32, interleave = 1;

    template <class Isa, class A = typename Isa::arch>
    static void search(const floats<A>* x, floats<A>* scale, floats<A>* min, ints<A>* found) noexcept {
        floats<A> sum_x2(0.0f);
        for (std::size_t i = 0; i < sub; ++i) sum_x2 = sum_x2 + x[i] * x[i];
        const floats<A> av_x = xsimd::sqrt(sum_x2 / floats<A>(32.0f));
        std::array<floats<A>, sub> w;
        for (std::size_t i = 0; i < sub; ++i) w[i] = av_x + xsimd::abs(x[i]);
        affine_search_lanes<Isa, sub>((1 << Bits) - 1, x, w.data(), search_options<Isa, F>, *scale, *min, found);
    }
};

template <>
struct k_steps<formats::q6_K> {
    static constexpr std::size_t sub = 16, interleave = 1;

    template <class Isa, class A = typename Isa::arch>
    static void search(const floats<A>* x, floats<A>* scale, floats<A>*, ints<A>* found) noexcept {
        symmetric_search_lanes<Isa, sub>(32, x, *scale, found);
    }
};

// ------------------------------------------------------------------------------------------ the driver

/// Lane groups of W sub-blocks each, `interleave` at a time, fill a chunk of this many super-blocks.
template <class Isa, BlockFormat F>
inline constexpr std::size_t chunk_blocks = [] {
    constexpr std::size_t lanes = floats<typename Isa::arch>::size * k_steps<F>::interleave, per_block = F::block_size / k_steps<F>::sub;
    static_assert(lanes % per_block == 0 || per_block % lanes == 0);
    return lanes > per_block ? lanes / per_block : std::size_t{1};
}();

/// Quantizes chunk_blocks consecutive super-blocks of F: searches every sub-block on lanes, then stores
/// each super-block's scales, re-quantizes its levels from the stored scales and packs them.
template <class Isa, BlockFormat F>
inline void quantize_k_chunk(const float* x, std::byte* out) noexcept {
    using A = typename Isa::arch;
    using steps = k_steps<F>;
    constexpr std::size_t S = steps::sub, W = floats<A>::size, G = steps::interleave, per_block = F::block_size / S;
    constexpr std::size_t blocks = chunk_blocks<Isa, F>, subs = blocks * per_block, groups = subs / W;
    static_assert(groups % G == 0 && S % W == 0);

    alignas(64) float scales[subs];
    alignas(64) float mins[subs];
    alignas(64) std::int32_t found[groups][S][W];  // found[g][i][l]: level i of sub-block g*W + l
    for (std::size_t g0 = 0; g0 < groups; g0 += G) {
        std::array<floats<A>, G * S> v;
        for (std::size_t g = 0; g < G; ++g) {
            alignas(64) float transposed[S][W];
            for (std::size_t l = 0; l < W; ++l)
                for (std::size_t i = 0; i < S; ++i) transposed[i][l] = x[((g0 + g) * W + l) * S + i];
            for (std::size_t i = 0; i < S; ++i) v[g * S + i] = floats<A>::load_aligned(transposed[i]);
        }
        std::array<floats<A>, G> scale, min;
        min.fill(floats<A>(0.0f));
        std::array<ints<A>, G * S> levels;
        steps::template search<Isa>(v.data(), scale.data(), min.data(), levels.data());
        for (std::size_t g = 0; g < G; ++g) {
            scale[g].store_aligned(scales + (g0 + g) * W);
            min[g].store_aligned(mins + (g0 + g) * W);
            for (std::size_t i = 0; i < S; ++i) levels[g * S + i].store_aligned(found[g0 + g][i]);
        }
    }

    for (std::size_t b = 0; b < blocks; ++b) {
        std::byte* block = out + b * F::type_size;
        const float* xb = x + b * F::block_size;
        if (!store_sub_scales<Isa, F>(scales + b * per_block, mins + b * per_block, block)) continue;
        alignas(64) std::uint8_t levels[F::block_size];
        for (std::size_t j = 0; j < per_block; ++j) {
            const affine_scale s = sub_block_scale<Isa, F>(block, j);
            std::uint8_t* lj = levels + j * S;
            if (!s.scale) {  // the reference keeps the levels its search found
                const std::size_t sub = b * per_block + j;
                for (std::size_t i = 0; i < S; ++i) lj[i] = static_cast<std::uint8_t>(found[sub / W][i][sub % W]);
                continue;
            }
            const floats<A> min(s.min), scale(s.scale);
            for (std::size_t i = 0; i < S; i += W) {
                const ints<A> l = nearest_int<A>((floats<A>::load_unaligned(xb + j * S + i) + min) / scale) + ints<A>(F::level_offset);
                store_low_bytes<A>(xsimd::min(xsimd::max(l, ints<A>(0)), ints<A>(max_level<F>)), lj + i);
            }
        }
        pack_levels<Isa, F>(levels, block);
    }
}

/// A row of F: whole chunks of super-blocks, then the rest through a zero-padded chunk whose extra
/// blocks are dropped.
template <class Isa, BlockFormat F>
void quantize_k_row(const float* x, std::byte* out, std::size_t n) noexcept {
    constexpr std::size_t blocks = chunk_blocks<Isa, F>;
    const std::size_t total = n / F::block_size;
    std::size_t b = 0;
    for (; b + blocks <= total; b += blocks) quantize_k_chunk<Isa, F>(x + b * F::block_size, out + b * F::type_size);
    if (b < total) {
        std::array<float, blocks * F::block_size> padded{};
        std::array<std::byte, blocks * F::type_size> bytes;
        std::copy(x + b * F::block_size, x + total * F::block_size, padded.begin());
        quantize_k_chunk<Isa, F>(padded.data(), bytes.data());
        std::copy(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>((total - b) * F::type_size), out + b * F::type_size);
    }
}

/// q8_K rows: vectorized along the values.
template <class Isa>
void quantize_q8_K(const float* x, std::byte* out, std::size_t n) noexcept {
    using A = typename Isa::arch;
    using F = formats::q8_K;
    constexpr std::size_t W = floats<A>::size;
    static_assert(16 % W == 0, "a batch must not straddle two of the 16-value sums");
    for (std::size_t b = 0; b < n / 256; ++b, x += 256, out += F::type_size) {
        const auto e = largest_magnitude<A>(x, 256);
        if (!e.magnitude) {
            std::fill(out, out + F::type_size, std::byte{0});
            continue;
        }
        const float inverse = -127.0f / e.value;
        const floats<A> scale(inverse);
        auto* levels = reinterpret_cast<std::uint8_t*>(out) + F::quants_at;
        constexpr std::size_t per_group = W >= 16 ? 1 : 16 / W;
        for (std::size_t g = 0; g < 16; ++g) {
            ints<A> sum(0);
            for (std::size_t k = 0; k < per_group; ++k) {
                const std::size_t at = (g * per_group + k) * W;
                const ints<A> q = xsimd::min(nearest_int<A>(scale * floats<A>::load_unaligned(x + at)), ints<A>(127));
                store_low_bytes<A>(q, levels + at);
                sum = sum + wrap_to_int8<A>(q);
            }
            store_le<std::int16_t>(out + F::sums_at + 2 * g, static_cast<std::int16_t>(xsimd::hadd(sum)));
        }
        store_le<float>(out + F::d_at, 1 / inverse);
    }
}

COGQAT_STRICT_FP_END

}  // namespace cogqat::simd::quantize_detail

namespace cogqat::simd {

/// Fills the quantize kernels of q2_K, q3_K, q4_K, q5_K, q6_K and q8_K for `Isa`.
template <class Isa>
void add_k_quantize_kernels(dispatch::kernel_table& t) {
    namespace q = quantize_detail;
    t[ggml_type::q2_K].quantize = &q::quantize_k_row<Isa, formats::q2_K>;
    t[ggml_type::q3_K].quantize = &q::quantize_k_row<Isa, formats::q3_K>;
    t[ggml_type::q4_K].quantize = &q::quantize_k_row<Isa, formats::q4_K>;
    t[ggml_type::q5_K].quantize = &q::quantize_k_row<Isa, formats::q5_K>;
    t[ggml_type::q6_K].quantize = &q::quantize_k_row<Isa, formats::q6_K>;
    t[ggml_type::q8_K].quantize = &q::quantize_q8_K<Isa>;
}

}  // namespace cogqat::simd
