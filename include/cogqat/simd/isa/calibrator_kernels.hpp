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
            const fb decoded = s * xsimd::to_float(quantize_detail::nearest_int<typename Isa::arch>(steps));
            const auto [v_low, v_high] = widen_to_double<Isa>(v);
            const auto [d_low, d_high] = widen_to_double<Isa>(decoded);
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

/// For `Blocks` batches of candidates at j: max of the candidates with fewer than k1 (k2) smaller values.
template <class Isa, std::size_t Blocks>
void select_blocks(const float* x, std::size_t n, std::size_t j, float f1, float f2, bool magnitude, float_batch<Isa>& best1,
                   float_batch<Isa>& best2) noexcept {
    using fb = float_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    const fb one(1.0f), zero(0.0f), none(-std::numeric_limits<float>::infinity());
    std::array<fb, Blocks> c, below;
    for (std::size_t b = 0; b < Blocks; ++b) {
        c[b] = fb::load_unaligned(x + j + b * lanes);
        if (magnitude) c[b] = xsimd::abs(c[b]);
        below[b] = zero;
    }
    // Independent counts per block, so that the additions of one value overlap.
    for (std::size_t i = 0; i < n; ++i) {
        const fb v(magnitude ? std::fabs(x[i]) : x[i]);
        for (std::size_t b = 0; b < Blocks; ++b) below[b] = below[b] + xsimd::select(v < c[b], one, zero);
    }
    for (std::size_t b = 0; b < Blocks; ++b) {
        best1 = xsimd::max(best1, xsimd::select(below[b] < fb(f1), c[b], none));
        best2 = xsimd::max(best2, xsimd::select(below[b] < fb(f2), c[b], none));
    }
}

template <class Isa>
void select(const float* x, std::size_t n, std::size_t k1, std::size_t k2, bool magnitude, float* out1, float* out2) noexcept {
    using fb = float_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>, blocks = 4;
    // The k-th smallest is the largest value with fewer than k smaller values: a value at most the k-th has
    // fewer than k below it, a larger one has at least k. The counts are exact in float below 2^24.
    const float f1 = static_cast<float>(k1), f2 = static_cast<float>(k2);
    constexpr float none = -std::numeric_limits<float>::infinity();
    fb best1(none), best2(none);
    std::size_t j = 0;
    for (; j + blocks * lanes <= n; j += blocks * lanes) select_blocks<Isa, blocks>(x, n, j, f1, f2, magnitude, best1, best2);
    for (; j + lanes <= n; j += lanes) select_blocks<Isa, 1>(x, n, j, f1, f2, magnitude, best1, best2);
    alignas(64) float l1[lanes], l2[lanes];
    best1.store_aligned(l1);
    best2.store_aligned(l2);
    float a = none, b = none;
    for (std::size_t k = 0; k < lanes; ++k) {
        a = std::max(a, l1[k]);
        b = std::max(b, l2[k]);
    }
    for (; j < n; ++j) {
        const float c = magnitude ? std::fabs(x[j]) : x[j];
        float below = 0.0f;
        for (std::size_t i = 0; i < n; ++i) below += (magnitude ? std::fabs(x[i]) : x[i]) < c ? 1.0f : 0.0f;
        if (below < f1) a = std::max(a, c);
        if (below < f2) b = std::max(b, c);
    }
    *out1 = a;
    *out2 = b;
}

/// Lanes of `p` (non-negative integers below 2^31, held as doubles) as int32, stored at `out`.
template <class Isa>
inline void store_indices(double_batch<Isa> p, std::int32_t* out) noexcept {
    constexpr std::size_t dlanes = double_batch<Isa>::size;
#if defined(__AVX512F__)
    if constexpr (dlanes == 8) return _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_cvttpd_epi32(p));
#endif
#if defined(__AVX__)
    if constexpr (dlanes == 4) return _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_cvttpd_epi32(p));
#endif
#if defined(__SSE2__)
    if constexpr (dlanes == 2) return _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_cvttpd_epi32(p));
#endif
    alignas(64) double d[dlanes];
    p.store_aligned(d);
    for (std::size_t k = 0; k < dlanes; ++k) out[k] = static_cast<std::int32_t>(d[k]);
}

/// The bin of every lane of t, as a double holding an integer (exact): the reference's arithmetic lane by lane.
template <class Isa, int Kind>
inline double_batch<Isa> place(double_batch<Isa> t, double origin, double scale, std::size_t bins) noexcept {
    using db = double_batch<Isa>;
    if constexpr (Kind == 2) {
        const std::size_t half = bins / 2;
        const db p = xsimd::floor(xsimd::min(xsimd::abs(t) * db(scale), db(static_cast<double>(half - 1))));
        return xsimd::select(t < db(0.0), db(static_cast<double>(half - 1)) - p, db(static_cast<double>(half)) + p);
    } else {
        const db u = Kind == 1 ? xsimd::abs(t) : t;
        return xsimd::min(xsimd::max((u - db(origin)) * db(scale), db(0.0)), db(static_cast<double>(bins - 1)));
    }
}

/// Counts whole batches of x from `i` on into `copies` interleaved histograms of `stride` counts each (lane k
/// into copy k % copies); returns where it stopped.
template <class Isa, int Kind, class Count>
std::size_t count_batches(const float* x, std::size_t n, std::size_t i, double origin, double scale, std::size_t bins, Count* counts,
                          std::size_t copies, std::size_t stride) noexcept {
    using fb = float_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    constexpr std::size_t dlanes = double_batch<Isa>::size;
    alignas(64) std::int32_t index[lanes];
    for (; i + lanes <= n; i += lanes) {
        const auto [low, high] = widen_to_double<Isa>(fb::load_unaligned(x + i));
        store_indices<Isa>(place<Isa, Kind>(low, origin, scale, bins), index);
        store_indices<Isa>(place<Isa, Kind>(high, origin, scale, bins), index + dlanes);
        // Counting stays scalar: neighbouring values often share a bin, which a scatter cannot add twice.
        for (std::size_t k = 0; k < lanes; ++k) ++counts[(k % copies) * stride + static_cast<std::size_t>(index[k])];
    }
    return i;
}

template <class Isa, int Kind>
void histogram_of_kind(const float* x, std::size_t n, double origin, double scale, std::uint64_t* counts, std::size_t bins) noexcept {
    std::size_t i = 0;
    // Four interleaved 32-bit copies of the histogram on the stack, where it is small enough and the counts
    // fit, keep a run of values in one bin from waiting on its own previous increment.
    constexpr std::size_t copies = 4, most_bins = 4096;
    if (n >= bins && bins <= most_bins && n <= std::numeric_limits<std::uint32_t>::max()) {
        std::array<std::uint32_t, copies * most_bins> local{};
        i = count_batches<Isa, Kind>(x, n, i, origin, scale, bins, local.data(), copies, bins);
        for (std::size_t b = 0; b < bins; ++b)
            counts[b] += std::uint64_t{local[b]} + local[bins + b] + local[2 * bins + b] + local[3 * bins + b];
    }
    i = count_batches<Isa, Kind>(x, n, i, origin, scale, bins, counts, 1, bins);
    const std::size_t half = bins / 2;
    for (; i < n; ++i) {
        const double t = static_cast<double>(x[i]);
        if constexpr (Kind == 2) {
            const auto p = static_cast<std::size_t>(std::min(std::fabs(t) * scale, static_cast<double>(half - 1)));
            ++counts[t < 0.0 ? half - 1 - p : half + p];
        } else {
            const double u = Kind == 1 ? std::fabs(t) : t;
            ++counts[static_cast<std::size_t>(std::clamp((u - origin) * scale, 0.0, static_cast<double>(bins - 1)))];
        }
    }
}

template <class Isa>
void histogram(const float* x, std::size_t n, double origin, double scale, int kind, std::uint64_t* counts, std::size_t bins) noexcept {
    if (kind == 2) return histogram_of_kind<Isa, 2>(x, n, origin, scale, counts, bins);
    if (kind == 1) return histogram_of_kind<Isa, 1>(x, n, origin, scale, counts, bins);
    histogram_of_kind<Isa, 0>(x, n, origin, scale, counts, bins);
}

}  // namespace detail::calibrator

COGQAT_STRICT_FP_END

/// Fills the calibrators' kernels.
template <class Isa>
void add_calibrator_kernels(dispatch::kernel_table& t) {
    t.calibrator.scan = &detail::calibrator::scan<Isa>;
    t.calibrator.select = &detail::calibrator::select<Isa>;
    t.calibrator.squared_error = &detail::calibrator::squared_error<Isa>;
    t.calibrator.histogram = &detail::calibrator::histogram<Isa>;
}

}  // namespace cogqat::simd
