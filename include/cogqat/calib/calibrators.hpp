#pragma once
// Scale calibrators: the rules that choose the range [lo, hi] a quantizer maps onto its levels. Taking the
// full range of the values (min_max) wastes most of the levels on a few outliers when the distribution has
// long tails; the others clip, trading a large error on the few clipped values for a finer step on all the
// rest. Each calibrator is a small policy type, and the concept Calibrator below names what a user of one
// may call, so a new one is checked where it is used.
//
// A calibrator is composed from the quantizer's own policies: C::calibrate<Bits, Granularity, Mode, Backend>
// (matrix) returns one clip_range per group of the granularity, in row-major group order, each meant for
// Mode::choose_params(lo, hi, bits); values outside a range are clamped by encode. The Mode decides the
// search: a mode without a zero-point (Symmetric) gets a symmetric range {-c, c} chosen from |x|, a mode with
// one (Asymmetric) gets a two-sided range. The Backend runs the heavy loops (calibrator_arithmetic.hpp).
//
// Input checks: a shape the granularity refuses -> shape_error; no values -> shape_error; a NaN or an
// infinity -> value_error carrying its row-major index. An all-zero group gives {0, 0}.
//
// The one-group convenience C::calibrate(values, bits) of earlier versions stays: it is
// C::range<C::default_mode>(values, bits), the symmetric range for percentile, mse_optimal and entropy_kl and
// {min, max} for min_max.

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cogqat/calib/calibrator_arithmetic.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/policy.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/core/tensor_view.hpp"
#include "cogqat/dispatch/kernel_table.hpp"

namespace cogqat {

/// The range a quantizer should map onto its levels; values outside it are clamped.
struct clip_range {
    float lo = 0.0f;
    float hi = 0.0f;

    friend bool operator==(const clip_range&, const clip_range&) = default;
};

/// What a calibrator must provide: a name, and `calibrate<Bits, Granularity, Mode, Backend>(matrix)`
/// returning one clip_range per group of the granularity in row-major group order (checked here for two
/// representative policy combinations). It must be deterministic and return lo <= hi.
template <class C>
concept Calibrator = requires(matrix_view<const float> x) {
    { C::name } -> std::convertible_to<std::string_view>;
    { C::template calibrate<BitWidth<4>, PerGroup<32>, Symmetric, backend::Scalar>(x) } -> std::same_as<std::vector<clip_range>>;
    { C::template calibrate<BitWidth<8>, PerTensor, Asymmetric, backend::Simd>(x) } -> std::same_as<std::vector<clip_range>>;
};

namespace detail::calib {

inline void require_bits(int bits, std::string_view context) {
    if (bits < 2 || bits > 16) {
        throw invalid_argument_error(std::string(context) + ": bits must be in [2, 16], got " + std::to_string(bits));
    }
}

inline const char* non_finite_name(float v) noexcept { return std::isnan(v) ? "NaN" : (v > 0 ? "+Inf" : "-Inf"); }

/// The checks of the one-group API: bit width, at least one value, every value finite.
inline void require_input(std::span<const float> values, int bits, std::string_view context) {
    require_bits(bits, context);
    if (values.empty()) throw shape_error(std::string(context) + ": no values to calibrate on");
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (!std::isfinite(values[i])) {
            throw value_error(std::string(context) + ": input[" + std::to_string(i) + "] is " + non_finite_name(values[i]), i);
        }
    }
}

/// The values of `x` in row-major order (the view's memory when contiguous, else a copy in `buffer`), after
/// the matrix API's checks: the granularity's shape, at least one value, every value finite (one pass of
/// backend B).
template <GranularityPolicy G, Backend B = backend::Scalar>
std::span<const float> checked_values(matrix_view<const float> x, std::vector<float>& buffer, std::string_view context) {
    const std::size_t rows = x.extent(0), cols = x.extent(1);
    G::check_shape(rows, cols, context);
    if (x.size() == 0) throw shape_error(std::string(context) + ": no values to calibrate on");
    std::span<const float> values;
    if (x.is_contiguous()) {
        values = x.flat();
    } else {
        buffer.resize(x.size());
        std::size_t i = 0;
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t c = 0; c < cols; ++c) buffer[i++] = x(r, c);
        values = buffer;
    }
    if (const std::size_t i = scan<B>(values).first_non_finite; i < values.size()) {
        throw value_error(std::string(context) + ": input[" + std::to_string(i) + "] (row " + std::to_string(i / cols) + ", column " +
                                  std::to_string(i % cols) + ") is " + non_finite_name(values[i]),
                          i);
    }
    return values;
}

/// +0 for -0, so that an all-zero range is {+0, +0}.
[[nodiscard]] inline float positive_zero(float v) noexcept { return v == 0.0f ? 0.0f : v; }

/// {min, max} of finite values (zeros as +0), in one pass of backend B.
template <Backend B>
[[nodiscard]] clip_range extremes(std::span<const float> values) {
    const scan_result r = scan<B>(values);
    return {positive_zero(r.lo), positive_zero(r.hi)};
}

/// Largest |x| of finite values, in one pass of backend B.
template <Backend B>
[[nodiscard]] float max_abs(std::span<const float> values) {
    const clip_range r = extremes<B>(values);
    return std::max(std::fabs(r.lo), std::fabs(r.hi));
}

/// {-c, c}, with +0 rather than -0 for c = 0.
[[nodiscard]] inline clip_range symmetric_range(float c) noexcept {
    if (c == 0.0f) return {0.0f, 0.0f};
    return {-c, c};
}

/// Squared error of quantizing `values` into [lo, hi] with Mode's parameters and level range.
template <ModePolicy Mode, Backend B>
[[nodiscard]] double range_error(std::span<const float> values, float lo, float hi, int bits) {
    return squared_error<B>(values, Mode::choose_params(lo, hi, bits), Mode::min_level(bits), Mode::max_level(bits));
}

/// One calibrator's groups: `group_range(values of group g, bits)` for every group, in row-major order.
template <BitWidthPolicy Bits, GranularityPolicy G, Backend B, class GroupRange>
std::vector<clip_range> each_group(matrix_view<const float> x, std::string_view context, GroupRange&& group_range) {
    std::vector<float> buffer;
    const std::span<const float> values = checked_values<G, B>(x, buffer, context);
    const std::size_t length = G::group_length(x.extent(0), x.extent(1));
    std::vector<clip_range> ranges(G::group_count(x.extent(0), x.extent(1)));
    for (std::size_t g = 0; g < ranges.size(); ++g) ranges[g] = group_range(values.subspan(g * length, length), Bits::bits);
    return ranges;
}

}  // namespace detail::calib

/// The public surface every calibrator shares, written once: `Derived` provides
/// `template <ModePolicy, Backend> static clip_range group_range(std::span<const float>, int bits)` for one
/// group of checked values, and a `default_mode` for the one-group convenience.
template <class Derived>
struct calibrator_base {
    /// One range per group of Granularity over the (possibly strided) matrix `x`, row-major group order.
    template <BitWidthPolicy Bits, GranularityPolicy Granularity, ModePolicy Mode, Backend B = backend::Scalar>
    [[nodiscard]] static std::vector<clip_range> calibrate(matrix_view<const float> x) {
        const std::string context = std::string(Derived::name) + "::calibrate";
        return detail::calib::each_group<Bits, Granularity, B>(
                x, context, [](std::span<const float> g, int bits) { return Derived::template group_range<Mode, B>(g, bits); });
    }

    /// The range of one group of values for Mode, with `bits` in [2, 16] checked at run time.
    template <ModePolicy Mode, Backend B = backend::Scalar>
    [[nodiscard]] static clip_range range(std::span<const float> values, int bits) {
        detail::calib::require_input(values, bits, std::string(Derived::name) + "::calibrate");
        return Derived::template group_range<Mode, B>(values, bits);
    }

    /// The one-group convenience: range<default_mode>(values, bits).
    [[nodiscard]] static clip_range calibrate(std::span<const float> values, int bits) {
        return range<typename Derived::default_mode>(values, bits);
    }
};

COGQAT_STRICT_FP_BEGIN

/// Mean squared error of quantizing `values` into the range `r` with `bits` bits, on the grid the library's
/// quantizer uses for that range, rounding to nearest and clamping what lies outside:
///  - a symmetric range (r.lo == -r.hi) uses the Symmetric mode: 2^(bits-1)-1 levels each side of an exact 0,
///    step r.hi / (2^(bits-1)-1) -- the grid of the symmetric calibrators and of mse_optimal's search;
///  - any other range uses the Asymmetric mode: 2^bits levels with an integer zero-point, the range first
///    widened to include 0 (Asymmetric::choose_params).
/// Throws as the calibrators do (bits, empty input, non-finite values), and invalid_argument_error when r is
/// not a finite range with lo <= hi.
[[nodiscard]] inline float quantization_mse(std::span<const float> values, clip_range r, int bits) {
    constexpr std::string_view context = "quantization_mse";
    detail::calib::require_input(values, bits, context);
    if (!std::isfinite(r.lo) || !std::isfinite(r.hi) || r.lo > r.hi) {
        throw invalid_argument_error(std::string(context) + ": the range [" + std::to_string(r.lo) + ", " + std::to_string(r.hi) +
                                     "] is not a finite range with lo <= hi");
    }
    const double sse = r.lo == -r.hi ? detail::calib::range_error<Symmetric, backend::Scalar>(values, r.lo, r.hi, bits)
                                     : detail::calib::range_error<Asymmetric, backend::Scalar>(values, r.lo, r.hi, bits);
    return static_cast<float>(sse / static_cast<double>(values.size()));
}

COGQAT_STRICT_FP_END

// -------------------------------------------------------------------------------------------------- min_max

/// The full range: {min(x), max(x)} in every mode (Symmetric::choose_params takes the larger magnitude).
/// Nothing is clipped; every outlier widens the step. The quantizer's default: it gives its original codes.
struct min_max : calibrator_base<min_max> {
    static constexpr std::string_view name = "min_max";
    static constexpr bool symmetric = false;
    using default_mode = Asymmetric;

    template <ModePolicy Mode, Backend B>
    [[nodiscard]] static clip_range group_range(std::span<const float> values, int /*bits*/) {
        return detail::calib::extremes<B>(values);
    }
};

// ----------------------------------------------------------------------------------------------- percentile

/// Clips at quantiles, P in per-mille, by the nearest-rank definition (exact order statistics found with
/// std::nth_element on a copy: O(n) time, n floats of memory; on backend::Simd, groups of up to
/// simd_select_limit values by the selection kernel, which counts ranks: the same values). With n values:
///  - symmetric mode: {-c, c} with c the k-th smallest |x| (1-based), k = rank(n) = max(1, ceil(P * n / 1000)).
///    percentile<990> of |x| = 1..1000 is 990; percentile<1000> is max|x|.
///  - asymmetric mode: P per-mille of the values are kept in the middle and (1000 - P) / 2 per-mille cut from
///    each tail: hi is the k-th smallest value for k = upper_rank(n) = max(1, ceil((1000 + P) * n / 2000)) and
///    lo the k-th largest (the (n + 1 - k)-th smallest). percentile<1000> is {min, max}.
template <int P>
struct percentile : calibrator_base<percentile<P>> {
    static_assert(P >= 1 && P <= 1000, "percentile<P> takes P in per-mille, 1 <= P <= 1000");
    static constexpr int per_mille = P;
    static constexpr std::string_view name = "percentile";
    static constexpr bool symmetric = true;
    using default_mode = Symmetric;

    /// The 1-based rank ceil(P * n / 1000) (at least 1), computed without overflow for any n.
    [[nodiscard]] static constexpr std::size_t rank(std::size_t n) noexcept { return ceil_rank(n, static_cast<std::size_t>(P), 1000); }
    /// The 1-based rank of hi in asymmetric mode, ceil((1000 + P) * n / 2000) (at least 1).
    [[nodiscard]] static constexpr std::size_t upper_rank(std::size_t n) noexcept {
        return ceil_rank(n, static_cast<std::size_t>(1000 + P), 2000);
    }

    /// Groups up to this size use the SIMD selection kernel (O(n^2) comparisons, but no branches and no copy).
    static constexpr std::size_t simd_select_limit = 1024;

    template <ModePolicy Mode, Backend B>
    [[nodiscard]] static clip_range group_range(std::span<const float> values, int /*bits*/) {
        const std::size_t n = values.size();
        if constexpr (std::same_as<B, backend::Simd>) {
            const auto k = dispatch::active().calibrator.select;
            if (k && n <= simd_select_limit) {
                float lo = 0.0f, hi = 0.0f;
                if constexpr (!Mode::has_zero_point) {
                    k(values.data(), n, rank(n), rank(n), true, &hi, &hi);
                    return detail::calib::symmetric_range(hi);
                } else {
                    k(values.data(), n, n + 1 - upper_rank(n), upper_rank(n), false, &lo, &hi);
                    return {detail::calib::positive_zero(lo), detail::calib::positive_zero(hi)};
                }
            }
        }
        if constexpr (!Mode::has_zero_point) {
            std::vector<float> magnitudes(n);
            std::transform(values.begin(), values.end(), magnitudes.begin(), [](float v) { return std::fabs(v); });
            return detail::calib::symmetric_range(nth(magnitudes, rank(n)));
        } else {
            std::vector<float> copy(values.begin(), values.end());
            const std::size_t k = upper_rank(n);
            const float hi = nth(copy, k);
            const float lo = nth(copy, n + 1 - k);
            return {detail::calib::positive_zero(lo), detail::calib::positive_zero(hi)};
        }
    }

private:
    [[nodiscard]] static constexpr std::size_t ceil_rank(std::size_t n, std::size_t num, std::size_t den) noexcept {
        const std::size_t k = n / den * num + ((n % den) * num + den - 1) / den;
        return std::max<std::size_t>(k, 1);
    }
    /// The k-th smallest (1-based) of `v`, reordering it.
    [[nodiscard]] static float nth(std::vector<float>& v, std::size_t k) {
        const auto it = v.begin() + static_cast<std::ptrdiff_t>(k - 1);
        std::nth_element(v.begin(), it, v.end());
        return *it;
    }
};

// ---------------------------------------------------------------------------------------------- mse_optimal

namespace detail::calib {

/// A point of a line search: the candidate magnitude and its squared error.
struct line_point {
    float value = 0.0f;
    double error = std::numeric_limits<double>::infinity();
};

/// mse_optimal's one-dimensional search over magnitudes in (0, m]: the coarse grid m * k / 100 for
/// k = 1..100 (m itself for k = 100), then 40 evenly spaced candidates between the coarse neighbours of the best
/// one. A candidate replaces the best on a strictly lower error, or in the fine pass on an equal error and a
/// smaller magnitude. `start` is kept unless beaten, so the result is never worse than it.
template <class Error>
[[nodiscard]] line_point line_search(float m, line_point start, Error&& error) {
    constexpr int coarse_steps = 100, fine_steps = 40;
    const double top = static_cast<double>(m);
    line_point best = start;
    int best_k = std::clamp(static_cast<int>(std::lround(static_cast<double>(start.value) / top * coarse_steps)), 1, coarse_steps);
    for (int k = 1; k <= coarse_steps; ++k) {
        const float c = k == coarse_steps ? m : static_cast<float>(top * k / coarse_steps);
        if (c <= 0.0f) continue;  // m so small that the candidate underflows
        const double e = error(c);
        if (e < best.error) {
            best = {c, e};
            best_k = k;
        }
    }
    const double from = top * (best_k - 1) / coarse_steps;
    const double to = top * std::min(best_k + 1, coarse_steps) / coarse_steps;
    for (int j = 1; j < fine_steps; ++j) {
        const float c = static_cast<float>(from + (to - from) * j / fine_steps);
        if (c <= 0.0f || c > m) continue;
        const double e = error(c);
        if (e < best.error || (e == best.error && c < best.value)) best = {c, e};
    }
    return best;
}

}  // namespace detail::calib

/// The range minimizing the squared error of quantizing the group on Mode's grid (the quantizer's own
/// arithmetic: Mode::choose_params, round to nearest, clamp).
///  - symmetric mode: {-c, c} over c in (0, max|x|] by one line search (detail::calib::line_search: 100
///    coarse candidates, then 40 fine ones around the best): about 140 passes over the values.
///  - asymmetric mode: an alternating (coordinate) search over the clip pair, starting from {min(x, 0),
///    max(x, 0)} (the grid min_max gives): the line search over hi in (0, max(x)] with lo fixed, then over
///    lo in [min(x), 0) with hi fixed, twice (rounds = 2). A side with no values (all-positive or all-negative
///    groups) is not searched. About 560 passes. The range always contains 0, as Asymmetric's grid does.
/// Either way the starting full range is a candidate, so the result is never worse than min_max.
struct mse_optimal : calibrator_base<mse_optimal> {
    static constexpr std::string_view name = "mse_optimal";
    static constexpr bool symmetric = true;
    static constexpr int rounds = 2;
    using default_mode = Symmetric;

    template <ModePolicy Mode, Backend B>
    [[nodiscard]] static clip_range group_range(std::span<const float> values, int bits) {
        using detail::calib::line_search;
        using detail::calib::range_error;
        if constexpr (!Mode::has_zero_point) {
            const float largest = detail::calib::max_abs<B>(values);
            if (largest == 0.0f) return {0.0f, 0.0f};
            const auto best = line_search(largest, {largest, std::numeric_limits<double>::infinity()},
                                          [&](float c) { return range_error<Mode, B>(values, -c, c, bits); });
            return detail::calib::symmetric_range(best.value);
        } else {
            const clip_range full = detail::calib::extremes<B>(values);
            const float lo_end = std::min(full.lo, 0.0f), hi_end = std::max(full.hi, 0.0f);
            if (lo_end == 0.0f && hi_end == 0.0f) return {0.0f, 0.0f};
            float lo = lo_end, hi = hi_end;
            double error = range_error<Mode, B>(values, lo, hi, bits);
            for (int round = 0; round < rounds; ++round) {
                if (hi_end > 0.0f) {
                    const auto best = line_search(hi_end, {hi, error}, [&](float c) { return range_error<Mode, B>(values, lo, c, bits); });
                    hi = best.value;
                    error = best.error;
                }
                if (lo_end < 0.0f) {
                    const auto best =
                            line_search(-lo_end, {-lo, error}, [&](float c) { return range_error<Mode, B>(values, -c, hi, bits); });
                    lo = -best.value;
                    error = best.error;
                }
            }
            return {detail::calib::positive_zero(lo), detail::calib::positive_zero(hi)};
        }
    }
};

// ----------------------------------------------------------------------------------------------- entropy_kl

namespace detail::calib {

/// KL(P || Q) of keeping the bins [s, e) of `hist` (prefix[b] = sum of bins below b, `nonzero` the indices
/// of the non-empty bins in ascending order) with `levels` levels:
/// P = every count, those left of s added to bin s and those right of e-1 to bin e-1; Q = the window's bins
/// without the outliers, merged into min(levels, e - s) levels (bin k to level (k-s)*used/(e-s)), each level's
/// total spread evenly over its non-empty bins. Both normalized to sum 1; the sum is over bins where P > 0,
/// and infinite where P > 0 but Q = 0 (an empty edge bin that received outliers).
[[nodiscard]] inline double window_divergence(std::span<const double> hist, std::span<const double> prefix,
                                              std::span<const std::size_t> nonzero, std::size_t s, std::size_t e, std::size_t levels,
                                              std::vector<double>& level_total, std::vector<std::size_t>& level_used) {
    const double p_sum = prefix[hist.size()];
    const double left = prefix[s], right = p_sum - prefix[e];
    // Only an edge bin can have P > 0 and Q = 0: decided before any arithmetic.
    if ((left > 0.0 && hist[s] == 0.0) || (right > 0.0 && hist[e - 1] == 0.0)) return std::numeric_limits<double>::infinity();
    // Every other bin with P > 0 is a non-empty one: the sums run over those alone, in ascending order.
    const auto first = std::lower_bound(nonzero.begin(), nonzero.end(), s);
    const auto last = std::lower_bound(first, nonzero.end(), e);
    const std::size_t width = e - s;
    const std::size_t used = std::min(levels, width);
    level_total.assign(used, 0.0);
    level_used.assign(used, 0);
    double q_sum = 0.0;
    for (auto it = first; it != last; ++it) {
        const std::size_t level = (*it - s) * used / width;
        level_total[level] += hist[*it];
        ++level_used[level];
        q_sum += hist[*it];
    }
    double kl = 0.0;
    for (auto it = first; it != last; ++it) {
        const std::size_t k = *it;
        const double p = hist[k] + (k == s ? left : 0.0) + (k + 1 == e ? right : 0.0);
        const std::size_t level = (k - s) * used / width;
        const double q = level_total[level] / static_cast<double>(level_used[level]);
        const double pn = p / p_sum;
        kl += pn * std::log(pn / (q / q_sum));
    }
    return kl;
}

/// The window [s, e) of entropy_kl: with s fixed at `s`, the end e in [s + min(levels, bins), bins] of least
/// divergence (the smallest on ties) when `search_end`; else with e fixed at `e`, the start s in
/// [0, e - min(levels, bins)] of least divergence (the largest on ties). Returns the index found.
[[nodiscard]] inline std::size_t best_window_edge(std::span<const double> hist, std::size_t s, std::size_t e, std::size_t levels,
                                                  bool search_end) {
    const std::size_t bins = hist.size();
    std::vector<double> prefix(bins + 1, 0.0);
    std::vector<std::size_t> nonzero;
    for (std::size_t b = 0; b < bins; ++b) {
        prefix[b + 1] = prefix[b] + hist[b];
        if (hist[b] != 0.0) nonzero.push_back(b);
    }
    std::vector<double> level_total;
    std::vector<std::size_t> level_used;
    const std::size_t narrowest = std::min(levels, bins);
    double best_kl = std::numeric_limits<double>::infinity();
    if (search_end) {
        std::size_t best = e;
        for (std::size_t i = s + narrowest; i <= e; ++i) {
            const double kl = window_divergence(hist, prefix, nonzero, s, i, levels, level_total, level_used);
            if (kl < best_kl) {
                best_kl = kl;
                best = i;
            }
        }
        return best;
    }
    std::size_t best = s;
    for (std::size_t i = s; i + narrowest <= e; ++i) {
        const double kl = window_divergence(hist, prefix, nonzero, i, e, levels, level_total, level_used);
        if (kl <= best_kl) {
            best_kl = kl;
            best = i;
        }
    }
    return best;
}

/// entropy_kl on a histogram of |x| whose bin b covers [b * w, (b + 1) * w): the threshold (i + 0.5) * w of
/// the best end i (TensorRT's convention), capped at `largest`.
[[nodiscard]] inline float magnitude_threshold(std::span<const double> hist, double w, float largest, int bits) {
    const std::size_t levels = std::size_t{1} << (bits - 1);
    const std::size_t i = best_window_edge(hist, 0, hist.size(), levels, true);
    return static_cast<float>(std::min((static_cast<double>(i) + 0.5) * w, static_cast<double>(largest)));
}

/// entropy_kl on a histogram of signed values whose bin b covers [origin + b * w, origin + (b + 1) * w) and
/// whose values lie in [lo_end, hi_end] (lo_end <= 0 <= hi_end): the window [s, e) found by one search of
/// its end with s = 0, then one of its start with that end (a side with no values is not searched); the
/// range is its edges origin + s * w and origin + e * w, clamped to [lo_end, hi_end].
[[nodiscard]] inline clip_range signed_window(std::span<const double> hist, double origin, double w, float lo_end, float hi_end, int bits) {
    const std::size_t levels = std::size_t{1} << bits;
    std::size_t s = 0, e = hist.size();
    if (hi_end > 0.0f) e = best_window_edge(hist, s, e, levels, true);
    if (lo_end < 0.0f) s = best_window_edge(hist, s, e, levels, false);
    const auto edge = [&](std::size_t b) {
        return static_cast<float>(
                std::clamp(origin + static_cast<double>(b) * w, static_cast<double>(lo_end), static_cast<double>(hi_end)));
    };
    return {positive_zero(s == 0 ? lo_end : std::min(edge(s), 0.0f)), positive_zero(e == hist.size() ? hi_end : std::max(edge(e), 0.0f))};
}

}  // namespace detail::calib

/// TensorRT's entropy calibration: the range whose quantized distribution loses the least information,
/// measured as KL(P || Q) between the histogram P of the values (the clipped ones folded into the edge bins)
/// and its quantized version Q (detail::calib::window_divergence).
///  - symmetric mode: 2048 bins of |x| of width w = max|x| / 2048; every end i from L = 2^(bits-1) to 2048 is
///    a candidate (just 2048 when L >= 2048); the best i gives {-c, c}, c = min((i + 0.5) * w, max|x|).
///  - asymmetric mode: 2048 bins of the signed values over [min(x, 0), max(x, 0)] and L = 2^bits levels;
///    the window's end is searched first (start at the lowest bin), then its start; the range is the window's
///    edges (bin edges, the extremes exactly when a side is not cut), always containing 0.
/// The window always keeping every value has a finite divergence, so a range is always found. Cost: one pass
/// over the values to histogram them (through the Backend), then up to O(2048^2) arithmetic per searched edge
/// (less on sparse histograms: see window_divergence): meant for per-tensor and per-row (activation) ranges.
struct entropy_kl : calibrator_base<entropy_kl> {
    static constexpr std::string_view name = "entropy_kl";
    static constexpr bool symmetric = true;
    static constexpr std::size_t bin_count = 2048;
    using default_mode = Symmetric;

    template <ModePolicy Mode, Backend B>
    [[nodiscard]] static clip_range group_range(std::span<const float> values, int bits) {
        std::vector<std::uint64_t> counts(bin_count, 0);
        if constexpr (!Mode::has_zero_point) {
            const float largest = detail::calib::max_abs<B>(values);
            if (largest == 0.0f) return {0.0f, 0.0f};
            const double top = static_cast<double>(largest);
            detail::calib::histogram<B>(values, {0.0, static_cast<double>(bin_count) / top, detail::calib::histogram_kind::magnitude},
                                        counts);
            const std::vector<double> hist(counts.begin(), counts.end());
            return detail::calib::symmetric_range(
                    detail::calib::magnitude_threshold(hist, top / static_cast<double>(bin_count), largest, bits));
        } else {
            const clip_range full = detail::calib::extremes<B>(values);
            const float lo_end = std::min(full.lo, 0.0f), hi_end = std::max(full.hi, 0.0f);
            if (lo_end == 0.0f && hi_end == 0.0f) return {0.0f, 0.0f};
            const double width = static_cast<double>(hi_end) - static_cast<double>(lo_end);
            detail::calib::histogram<B>(
                    values, {static_cast<double>(lo_end), static_cast<double>(bin_count) / width, detail::calib::histogram_kind::offset},
                    counts);
            const std::vector<double> hist(counts.begin(), counts.end());
            return detail::calib::signed_window(hist, static_cast<double>(lo_end), width / static_cast<double>(bin_count), lo_end, hi_end,
                                                bits);
        }
    }
};

}  // namespace cogqat
