#pragma once
// The calibrators' heavy loops (calib/calibrator_arithmetic.hpp) on SIMD lanes, the same bits as the scalar
// references: the squared error is encoded and decoded in float lanes as the quantizer does, widened to
// double and accumulated in 16 double partial sums laid out as the reference's (value i in partial i mod 16),
// so the order of every addition is the reference's; the histogram computes its bin indices in double lanes
// and counts them one by one.
//
// Include only in a unit compiled for the tag's instruction set (simd/isa/register.hpp does).

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>

#if defined(__SSE4_1__) || defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "cogqat/core/rounding.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/simd/isa/convert.hpp"
#include "cogqat/simd/isa/isa.hpp"
#include "cogqat/simd/isa/quantizer_kernels.hpp"

namespace cogqat::simd {

COGQAT_STRICT_FP_BEGIN

namespace detail::calibrator {

template <class Isa>
using double_batch = batch<double, Isa>;

/// The low and high halves of a float batch, widened to double (exact).
template <class Isa>
inline std::pair<double_batch<Isa>, double_batch<Isa>> widen(float_batch<Isa> x) noexcept {
    constexpr std::size_t lanes = float_lanes<Isa>;
#if defined(__AVX512F__)
    if constexpr (lanes == 16) {
        const __m512 v = x;
        const __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
        return {_mm512_cvtps_pd(_mm512_castps512_ps256(v)), _mm512_cvtps_pd(high)};
    }
#endif
#if defined(__AVX__)
    if constexpr (lanes == 8) {
        const __m256 v = x;
        return {_mm256_cvtps_pd(_mm256_castps256_ps128(v)), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))};
    }
#endif
#if defined(__SSE2__)
    if constexpr (lanes == 4) {
        const __m128 v = x;
        return {_mm_cvtps_pd(v), _mm_cvtps_pd(_mm_movehl_ps(v, v))};
    }
#endif
    constexpr std::size_t half = lanes / 2;
    alignas(64) float f[lanes];
    alignas(64) double d[lanes];
    x.store_aligned(f);
    for (std::size_t i = 0; i < lanes; ++i) d[i] = static_cast<double>(f[i]);
    return {double_batch<Isa>::load_aligned(d), double_batch<Isa>::load_aligned(d + half)};
}

inline constexpr std::size_t error_lanes = 16;

template <class Isa>
double squared_error(const float* x, std::size_t n, float scale, int zero, int lo, int hi) noexcept {
    using fb = float_batch<Isa>;
    using db = double_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    constexpr std::size_t dlanes = db::size;
    static_assert(error_lanes % lanes == 0 || lanes % error_lanes == 0, "the float lanes must tile the 16 partial sums");
    // accumulator a holds partial sums a * dlanes .. a * dlanes + dlanes - 1
    constexpr std::size_t accumulators = error_lanes / dlanes;
    std::array<db, accumulators> acc;
    acc.fill(db(0.0));
    const fb s(scale), below(static_cast<float>(lo - zero)), above(static_cast<float>(hi - zero));
    std::size_t i = 0;
    // Whole rounds of 16 values, so that value i lands in partial i mod 16 whatever the register width.
    for (; i + error_lanes <= n; i += error_lanes) {
        for (std::size_t j = 0; j < error_lanes; j += lanes) {
            const fb v = fb::load_unaligned(x + i + j);
            // std::clamp(v, a, b) is v < a ? a : (b < v ? b : v): min/max give the same for finite lanes.
            const fb steps = xsimd::min(xsimd::max(v / s, below), above);
            const fb decoded = s * xsimd::to_float(simd::detail::nearest_int<Isa>(steps));
            const auto [v_low, v_high] = widen<Isa>(v);
            const auto [d_low, d_high] = widen<Isa>(decoded);
            const db e_low = v_low - d_low, e_high = v_high - d_high;
            acc[j / dlanes] = acc[j / dlanes] + e_low * e_low;
            acc[j / dlanes + 1] = acc[j / dlanes + 1] + e_high * e_high;
        }
    }
    alignas(64) std::array<double, error_lanes> partial{};
    for (std::size_t a = 0; a < accumulators; ++a) acc[a].store_aligned(partial.data() + a * dlanes);
    const float low = static_cast<float>(lo - zero), high = static_cast<float>(hi - zero);
    for (; i < n; ++i) {
        const float v = x[i];
        const float q = v / scale;
        const float steps = q < low ? low : (high < q ? high : q);
        const float decoded = scale * static_cast<float>(cogqat::detail::nearest_int(steps));
        const double e = static_cast<double>(v) - static_cast<double>(decoded);
        partial[i % error_lanes] += e * e;
    }
    for (std::size_t width = error_lanes; width > 1; width /= 2)
        for (std::size_t k = 0; k < width / 2; ++k) partial[k] = partial[2 * k] + partial[2 * k + 1];
    return partial[0];
}

template <class Isa>
std::size_t scan(const float* x, std::size_t n, float* lo, float* hi) noexcept {
    using fb = float_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    constexpr float inf = std::numeric_limits<float>::infinity();
    const fb largest(std::numeric_limits<float>::max());
    fb low(inf), high(-inf);
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes) {
        const fb v = fb::load_unaligned(x + i);
        if (!xsimd::all(xsimd::abs(v) <= largest)) break;  // a NaN or an infinity: found below, value by value
        low = xsimd::min(low, v);
        high = xsimd::max(high, v);
    }
    alignas(64) float l[lanes], h[lanes];
    low.store_aligned(l);
    high.store_aligned(h);
    float a = inf, b = -inf;
    for (std::size_t k = 0; k < lanes; ++k) {
        a = std::min(a, l[k]);
        b = std::max(b, h[k]);
    }
    for (; i < n; ++i) {
        if (!std::isfinite(x[i])) break;
        a = std::min(a, x[i]);
        b = std::max(b, x[i]);
    }
    *lo = a;
    *hi = b;
    return i;
}

template <class Isa>
void histogram(const float* x, std::size_t n, double origin, double scale, int kind, std::uint64_t* counts, std::size_t bins) noexcept {
    using fb = float_batch<Isa>;
    using db = double_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    constexpr std::size_t dlanes = db::size;
    const bool two_sided = kind == 2, magnitude = kind == 1;
    const std::size_t half = bins / 2;
    const db o(origin), sc(scale), zero(0.0), last(static_cast<double>(bins - 1));
    const db half_last(static_cast<double>(half - 1)), upper(static_cast<double>(half)), mirror(static_cast<double>(half - 1));
    // The bin of every lane as a double holding an integer (exact): the reference's arithmetic, lane by lane.
    auto place = [&](db t) {
        if (two_sided) {
            const db p = xsimd::floor(xsimd::min(xsimd::abs(t) * sc, half_last));
            return xsimd::select(t < zero, mirror - p, upper + p);
        }
        const db u = magnitude ? xsimd::abs(t) : t;
        return xsimd::min(xsimd::max((u - o) * sc, zero), last);
    };
    // Through int32 (one instruction; a bin index is below 2^31) rather than the long sequence of a
    // double -> 64-bit unsigned conversion.
    const auto bin_of = [](double p) { return static_cast<std::size_t>(static_cast<std::int32_t>(p)); };
    alignas(64) double position[lanes];
    std::size_t i = 0;
    // Counting stays scalar: neighbouring values often share a bin, which a scatter cannot add twice. Four
    // interleaved copies of the histogram (on the stack, when it is small enough and the counts fit 32 bits)
    // keep a run of values in one bin from waiting on its own previous increment.
    constexpr std::size_t copies = 4, most_bins = 4096;
    if (n >= bins && bins <= most_bins && n <= std::numeric_limits<std::uint32_t>::max()) {
        std::array<std::array<std::uint32_t, most_bins>, copies> local{};
        for (; i + lanes <= n; i += lanes) {
            const auto [low, high] = widen<Isa>(fb::load_unaligned(x + i));
            place(low).store_aligned(position);
            place(high).store_aligned(position + dlanes);
            for (std::size_t k = 0; k < lanes; ++k) ++local[k % copies][bin_of(position[k])];
        }
        for (std::size_t b = 0; b < bins; ++b) counts[b] += std::uint64_t{local[0][b]} + local[1][b] + local[2][b] + local[3][b];
    }
    for (; i + lanes <= n; i += lanes) {
        const auto [low, high] = widen<Isa>(fb::load_unaligned(x + i));
        place(low).store_aligned(position);
        place(high).store_aligned(position + dlanes);
        for (std::size_t k = 0; k < lanes; ++k) ++counts[bin_of(position[k])];
    }
    for (; i < n; ++i) {
        const double t = static_cast<double>(x[i]);
        if (two_sided) {
            const auto p = static_cast<std::size_t>(std::min(std::fabs(t) * scale, static_cast<double>(half - 1)));
            ++counts[t < 0.0 ? half - 1 - p : half + p];
        } else {
            const double u = magnitude ? std::fabs(t) : t;
            ++counts[static_cast<std::size_t>(std::clamp((u - origin) * scale, 0.0, static_cast<double>(bins - 1)))];
        }
    }
}

}  // namespace detail::calibrator

COGQAT_STRICT_FP_END

/// Fills the calibrators' kernels.
template <class Isa>
void add_calibrator_kernels(dispatch::kernel_table& t) {
    t.calibrator.scan = &detail::calibrator::scan<Isa>;
    t.calibrator.squared_error = &detail::calibrator::squared_error<Isa>;
    t.calibrator.histogram = &detail::calibrator::histogram<Isa>;
}

}  // namespace cogqat::simd
