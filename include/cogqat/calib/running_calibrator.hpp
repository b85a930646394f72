#pragma once
// Calibration of activations, batch by batch: a running_calibrator keeps, per channel (or for the whole
// tensor), the count, the exact minimum and maximum, the first two moments and a histogram whose range grows,
// and turns them into ranges at the end with min_max, percentile, mse_optimal or entropy_kl rules computed on
// the histogram. Nothing of a batch is kept once observe() returns.
//
// The histogram: `bins` (4096) bins over [-R, R], two halves mirrored at 0 (histogram_kind::two_sided), R a
// power of two, at least max|x| of everything seen. A batch whose max|x| exceeds R doubles R, as often as
// needed, before it is counted; doubling merges bin pairs within each half (bin half + j becomes half + j / 2,
// bin half - 1 - j becomes half - 1 - j / 2). Because R and the bin width are powers of two, placing a value
// rounds nothing, and the merged histogram is the histogram the final R would have given directly: feeding N
// batches gives exactly the counts, and so the ranges, of feeding their concatenation at once (tested).
//
// The ranges (histogram_calibration<C>, one specialization per calibrator; a user's calibrator adds its own):
//  - min_max: the exact {min, max} (either mode), equal to min_max on the concatenation.
//  - percentile<P>: the static calibrator's ranks, read off the cumulative counts; the result is the edge of
//    the bin holding the order statistic (outer edge, capped at the extremes), so it is within one bin width
//    (R / 2048) of percentile<P> on the concatenation.
//  - mse_optimal: the static search (same candidates, same alternation), each bin's count standing at the bin's
//    centre; never worse than min_max on that histogram.
//  - entropy_kl: the static method on the histogram: symmetric mode on the 2048 magnitude bins (|x| in
//    [0, R]), asymmetric mode on the signed bins between the bins of min(x, 0) and max(x, 0). Where max|x| is
//    a power of two the magnitude bins are entropy_kl's own, and the symmetric range is equal (tested).

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cogqat/calib/calibrator_arithmetic.hpp"
#include "cogqat/calib/calibrators.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/policy.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/core/tensor_view.hpp"

namespace cogqat {

/// What a running calibrator knows of one channel: count, exact extremes, moments and the growing histogram.
struct running_statistics {
    /// Bins of the histogram, half of them each side of 0.
    static constexpr std::size_t bins = 4096;
    static constexpr std::size_t half = bins / 2;

    std::uint64_t count = 0;
    float min = 0.0f;
    float max = 0.0f;
    double sum = 0.0;
    double sum_squares = 0.0;
    /// Half-width R of the histogram (a power of two, 0 before the first value).
    double reach = 0.0;
    std::vector<std::uint64_t> histogram = std::vector<std::uint64_t>(bins, 0);

    [[nodiscard]] double mean() const noexcept { return count ? sum / static_cast<double>(count) : 0.0; }
    /// Population variance, sum of squares / n - mean^2 (clamped at 0 against cancellation).
    [[nodiscard]] double variance() const noexcept {
        if (!count) return 0.0;
        const double m = mean();
        return std::max(0.0, sum_squares / static_cast<double>(count) - m * m);
    }
    /// Width of one bin, R / 2048.
    [[nodiscard]] double bin_width() const noexcept { return reach / static_cast<double>(half); }
    /// Lower edge of bin b.
    [[nodiscard]] double bin_edge(std::size_t b) const noexcept {
        return (static_cast<double>(b) - static_cast<double>(half)) * bin_width();
    }
    /// Counts of |x|: magnitude bin j covers [j, j + 1) bin widths.
    [[nodiscard]] std::vector<double> magnitudes() const {
        std::vector<double> m(half);
        for (std::size_t j = 0; j < half; ++j) m[j] = static_cast<double>(histogram[half + j] + histogram[half - 1 - j]);
        return m;
    }

    /// Counts `values` (finite, checked by the caller), growing the histogram first when they reach beyond it.
    template <Backend B>
    void add(std::span<const float> values) {
        if (values.empty()) return;
        const clip_range r = detail::calib::extremes<B>(values);
        min = count ? std::min(min, r.lo) : r.lo;
        max = count ? std::max(max, r.hi) : r.hi;
        const double largest = std::max(std::fabs(static_cast<double>(r.lo)), std::fabs(static_cast<double>(r.hi)));
        // The smallest normal float's power of two: an all-zero start still has a histogram.
        if (reach == 0.0) reach = std::ldexp(1.0, std::numeric_limits<float>::min_exponent - 1);
        while (largest > reach) grow();
        detail::calib::histogram<B>(values, {0.0, static_cast<double>(half) / reach, detail::calib::histogram_kind::two_sided}, histogram);
        for (const float v : values) {
            sum += static_cast<double>(v);
            sum_squares += static_cast<double>(v) * static_cast<double>(v);
        }
        count += values.size();
    }

private:
    /// R doubles: bin pairs merge within each half.
    void grow() {
        std::vector<std::uint64_t> merged(bins, 0);
        for (std::size_t j = 0; j < half; ++j) {
            merged[half + j / 2] += histogram[half + j];
            merged[half - 1 - j / 2] += histogram[half - 1 - j];
        }
        histogram = std::move(merged);
        reach *= 2.0;
    }
};

/// How calibrator C turns a channel's statistics into a range for Mode. Specialized below for the library's
/// calibrators; a user's calibrator specializes it to run in a running_calibrator.
template <class C>
struct histogram_calibration;

/// A calibrator a running_calibrator can finish with.
template <class C>
concept HistogramCalibrator = Calibrator<C> && requires(const running_statistics& s, int bits) {
    { histogram_calibration<C>::template range<Symmetric>(s, bits) } -> std::same_as<clip_range>;
    { histogram_calibration<C>::template range<Asymmetric>(s, bits) } -> std::same_as<clip_range>;
};

template <>
struct histogram_calibration<min_max> {
    template <ModePolicy Mode>
    [[nodiscard]] static clip_range range(const running_statistics& s, int /*bits*/) {
        return {detail::calib::positive_zero(s.min), detail::calib::positive_zero(s.max)};
    }
};

template <int P>
struct histogram_calibration<percentile<P>> {
    template <ModePolicy Mode>
    [[nodiscard]] static clip_range range(const running_statistics& s, int /*bits*/) {
        const auto n = static_cast<std::size_t>(s.count);
        const double w = s.bin_width();
        if constexpr (!Mode::has_zero_point) {
            const std::vector<double> m = s.magnitudes();
            const std::size_t j = bin_of_rank(m, percentile<P>::rank(n));
            const float largest = std::max(std::fabs(s.min), std::fabs(s.max));
            return detail::calib::symmetric_range(std::min(static_cast<float>(static_cast<double>(j + 1) * w), largest));
        } else {
            const std::vector<double> h(s.histogram.begin(), s.histogram.end());
            const std::size_t k = percentile<P>::upper_rank(n);
            const double hi_edge = s.bin_edge(bin_of_rank(h, k) + 1);
            const double lo_edge = s.bin_edge(bin_of_rank(h, n + 1 - k));
            const float hi = static_cast<float>(std::clamp(hi_edge, static_cast<double>(s.min), static_cast<double>(s.max)));
            const float lo = static_cast<float>(std::clamp(lo_edge, static_cast<double>(s.min), static_cast<double>(hi)));
            return {detail::calib::positive_zero(lo), detail::calib::positive_zero(hi)};
        }
    }

private:
    /// The bin holding the k-th smallest value (1-based).
    [[nodiscard]] static std::size_t bin_of_rank(const std::vector<double>& counts, std::size_t k) {
        double seen = 0.0;
        for (std::size_t b = 0; b < counts.size(); ++b) {
            seen += counts[b];
            if (seen >= static_cast<double>(k)) return b;
        }
        return counts.size() - 1;
    }
};

COGQAT_STRICT_FP_BEGIN

template <>
struct histogram_calibration<mse_optimal> {
    template <ModePolicy Mode>
    [[nodiscard]] static clip_range range(const running_statistics& s, int bits) {
        using detail::calib::line_search;
        std::vector<float> centres;
        std::vector<double> weights;
        for (std::size_t b = 0; b < running_statistics::bins; ++b) {
            if (s.histogram[b] == 0) continue;
            centres.push_back(static_cast<float>(
                    std::clamp(s.bin_edge(b) + 0.5 * s.bin_width(), static_cast<double>(s.min), static_cast<double>(s.max))));
            weights.push_back(static_cast<double>(s.histogram[b]));
        }
        const auto error = [&](float lo, float hi) { return weighted_error<Mode>(centres, weights, lo, hi, bits); };
        if constexpr (!Mode::has_zero_point) {
            const float largest = std::max(std::fabs(s.min), std::fabs(s.max));
            if (largest == 0.0f) return {0.0f, 0.0f};
            const auto best =
                    line_search(largest, {largest, std::numeric_limits<double>::infinity()}, [&](float c) { return error(-c, c); });
            return detail::calib::symmetric_range(best.value);
        } else {
            const float lo_end = std::min(s.min, 0.0f), hi_end = std::max(s.max, 0.0f);
            if (lo_end == 0.0f && hi_end == 0.0f) return {0.0f, 0.0f};
            float lo = lo_end, hi = hi_end;
            double e = error(lo, hi);
            for (int round = 0; round < mse_optimal::rounds; ++round) {
                if (hi_end > 0.0f) {
                    const auto best = line_search(hi_end, {hi, e}, [&](float c) { return error(lo, c); });
                    hi = best.value;
                    e = best.error;
                }
                if (lo_end < 0.0f) {
                    const auto best = line_search(-lo_end, {-lo, e}, [&](float c) { return error(-c, hi); });
                    lo = -best.value;
                    e = best.error;
                }
            }
            return {detail::calib::positive_zero(lo), detail::calib::positive_zero(hi)};
        }
    }

private:
    /// Sum of weight * squared error of the values, quantized as the quantizer does with Mode in [lo, hi].
    template <ModePolicy Mode>
    [[nodiscard]] static double weighted_error(const std::vector<float>& values, const std::vector<double>& weights, float lo, float hi,
                                               int bits) {
        const affine_params p = Mode::choose_params(lo, hi, bits);
        const float low = static_cast<float>(Mode::min_level(bits) - p.zero_point);
        const float high = static_cast<float>(Mode::max_level(bits) - p.zero_point);
        double sum = 0.0;
        for (std::size_t i = 0; i < values.size(); ++i) {
            const float v = values[i];
            float decoded = 0.0f;
            if (p.scale != 0.0f) decoded = p.scale * static_cast<float>(detail::nearest_int(std::clamp(v / p.scale, low, high)));
            const double diff = static_cast<double>(v) - static_cast<double>(decoded);
            sum += weights[i] * diff * diff;
        }
        return sum;
    }
};

COGQAT_STRICT_FP_END

template <>
struct histogram_calibration<entropy_kl> {
    template <ModePolicy Mode>
    [[nodiscard]] static clip_range range(const running_statistics& s, int bits) {
        const double w = s.bin_width();
        if constexpr (!Mode::has_zero_point) {
            const float largest = std::max(std::fabs(s.min), std::fabs(s.max));
            if (largest == 0.0f) return {0.0f, 0.0f};
            return detail::calib::symmetric_range(detail::calib::magnitude_threshold(s.magnitudes(), w, largest, bits));
        } else {
            const float lo_end = std::min(s.min, 0.0f), hi_end = std::max(s.max, 0.0f);
            if (lo_end == 0.0f && hi_end == 0.0f) return {0.0f, 0.0f};
            // The bins from the one holding min(x, 0) to the one holding max(x, 0).
            const detail::calib::histogram_layout layout{0.0, 1.0 / w, detail::calib::histogram_kind::two_sided};
            const std::size_t first = layout.bin(lo_end, running_statistics::bins);
            const std::size_t last = layout.bin(hi_end, running_statistics::bins);
            const std::vector<double> window(s.histogram.begin() + static_cast<std::ptrdiff_t>(first),
                                             s.histogram.begin() + static_cast<std::ptrdiff_t>(last + 1));
            return detail::calib::signed_window(window, s.bin_edge(first), w, lo_end, hi_end, bits);
        }
    }
};

/// Accumulates activations batch by batch and yields ranges at the end (see the top of this header): for the
/// whole tensor (`channels` = 1) or per channel, a channel being a column of the row-major batches (rows are
/// tokens, columns are features), `channels` of them. Mode and Backend as for the calibrators.
template <HistogramCalibrator C, ModePolicy Mode = Symmetric, Backend B = backend::Scalar>
class running_calibrator {
public:
    using calibrator = C;
    using mode = Mode;

    /// A calibrator for `bits` in [2, 16] (invalid_argument_error otherwise) and `channels` >= 1 channels.
    explicit running_calibrator(int bits, std::size_t channels = 1) : bits_(bits), channels_(channels) {
        detail::calib::require_bits(bits, "running_calibrator");
        if (channels == 0) throw invalid_argument_error("running_calibrator: at least one channel is needed");
    }

    /// Adds a batch: any shape for one channel, else `channels` columns (shape_error). Throws value_error at the
    /// first NaN or Inf (its row-major index in the batch), before anything of the batch is counted.
    void observe(matrix_view<const float> batch) {
        constexpr std::string_view context = "running_calibrator::observe";
        const std::size_t rows = batch.extent(0), cols = batch.extent(1);
        if (channels_ > 1 && cols != channels_ && rows * cols != 0) {
            throw shape_error(std::string(context) + ": a batch of " + std::to_string(cols) + " columns for " + std::to_string(channels_) +
                              " channels");
        }
        if (rows * cols == 0) return;
        std::vector<float> buffer;
        const std::span<const float> values = detail::calib::checked_values<PerTensor, B>(batch, buffer, context);
        if (channels_ == 1) {
            stats_[0].template add<B>(values);
            return;
        }
        std::vector<float> column(rows);
        for (std::size_t c = 0; c < cols; ++c) {
            for (std::size_t r = 0; r < rows; ++r) column[r] = values[r * cols + c];
            stats_[c].template add<B>(column);
        }
    }
    /// A 1-D batch, one row.
    void observe(std::span<const float> batch) { observe(make_matrix_view(batch.data(), 1, batch.size())); }

    /// One range per channel; shape_error when nothing has been observed.
    [[nodiscard]] std::vector<clip_range> ranges() const {
        if (stats_[0].count == 0) throw shape_error("running_calibrator::ranges: no values observed");
        std::vector<clip_range> out(channels_);
        for (std::size_t c = 0; c < channels_; ++c) out[c] = histogram_calibration<C>::template range<Mode>(stats_[c], bits_);
        return out;
    }

    [[nodiscard]] std::size_t channels() const noexcept { return channels_; }
    [[nodiscard]] int bits() const noexcept { return bits_; }
    /// The statistics of channel c.
    [[nodiscard]] const running_statistics& statistics(std::size_t c = 0) const { return stats_.at(c); }

private:
    int bits_;
    std::size_t channels_;
    std::vector<running_statistics> stats_ = std::vector<running_statistics>(channels_);
};

}  // namespace cogqat
