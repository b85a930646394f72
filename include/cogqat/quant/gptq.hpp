#pragma once
// Hessian-aware quantization of a weight matrix into a GGUF block format (GPTQ, Frantar et al. 2022): the
// columns of each row are quantized in order, and the error of each one is pushed onto the columns not yet
// quantized through the inverse of H = sum x x^T, the second moment of the matrix's inputs. The inputs come
// from synthetic calibration data (calib/), never from text. Block scales are chosen when a block is reached,
// by the importance-weighted search, from the already corrected weights. The bytes are ordinary GGUF blocks.
//
// Cost: O(cols^3) for the factorization plus O(rows * cols^2), rows in parallel: meant for the matrices of
// small and mid-sized models.

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/parallel.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/format/legacy_formats.hpp"
#include "cogqat/format/level_layout.hpp"
#include "cogqat/format/table_format.hpp"
#include "cogqat/format/table_formats.hpp"
#include "cogqat/quant/weighted_block_search.hpp"

namespace cogqat {

struct gptq_options {
    double damping = 0.01;  ///< added to H's diagonal, as a fraction of its mean: keeps H invertible
    unsigned threads = 1;   ///< 0: one per hardware thread
};

/// Whether `type` is one of the directly scaled 32-value formats, whose block scales GPTQ chooses itself (and
/// QAT learns: qat/fake_quant.hpp).
[[nodiscard]] constexpr bool gptq_supports(ggml_type type) noexcept {
    using enum ggml_type;
    return type == q4_0 || type == q4_1 || type == q5_0 || type == q5_1 || type == q8_0;
}

/// Whether gptq_quantize steers `type`'s rounding: gptq_supports()'s formats, and the 4-bit table formats
/// (iq4_nl, iq4_xs, mxfp4), whose scales ggml's importance-weighted search picks from the corrected weights;
/// others are quantized by ggml's reference.
[[nodiscard]] constexpr bool gptq_rounds(ggml_type type) noexcept {
    using enum ggml_type;
    return gptq_supports(type) || type == iq4_nl || type == iq4_xs || type == mxfp4;
}

namespace detail {

/// In-place lower Cholesky factor of the n x n symmetric matrix `a` (row-major); false if not positive definite.
inline bool cholesky_lower(std::vector<double>& a, std::size_t n) {
    for (std::size_t j = 0; j < n; ++j) {
        double d = a[j * n + j];
        for (std::size_t k = 0; k < j; ++k) d -= a[j * n + k] * a[j * n + k];
        if (!(d > 0.0) || !std::isfinite(d)) return false;
        d = std::sqrt(d);
        a[j * n + j] = d;
        for (std::size_t i = j + 1; i < n; ++i) {
            double s = a[i * n + j];
            for (std::size_t k = 0; k < j; ++k) s -= a[i * n + k] * a[j * n + k];
            a[i * n + j] = s / d;
        }
        for (std::size_t i = 0; i < j; ++i) a[i * n + j] = 0.0;
    }
    return true;
}

/// The upper factor U of H^-1 = U^T U that GPTQ's column updates use, from a damped copy of H. Dead
/// inputs (zero on the diagonal: never active, e.g. padding) get a unit diagonal; their weights do not matter.
inline std::vector<double> gptq_inverse_factor(std::span<const double> hessian, std::size_t n, double damping) {
    double mean_diagonal = 0.0;
    for (std::size_t i = 0; i < n; ++i) mean_diagonal += hessian[i * n + i];
    mean_diagonal = n ? mean_diagonal / static_cast<double>(n) : 0.0;
    if (!(mean_diagonal > 0.0)) mean_diagonal = 1.0;
    for (double damp = damping; damp <= 1e3; damp *= 10.0) {
        std::vector<double> h(hessian.begin(), hessian.end());
        for (std::size_t i = 0; i < n; ++i) {
            if (h[i * n + i] <= 0.0) {
                for (std::size_t k = 0; k < n; ++k) h[i * n + k] = h[k * n + i] = 0.0;
                h[i * n + i] = mean_diagonal;
            }
            h[i * n + i] += damp * mean_diagonal;
        }
        if (!cholesky_lower(h, n)) continue;
        // H^-1 = L^-T L^-1: invert L (lower) column by column, then multiply.
        std::vector<double> inverse_l(n * n, 0.0);
        for (std::size_t j = 0; j < n; ++j) {
            inverse_l[j * n + j] = 1.0 / h[j * n + j];
            for (std::size_t i = j + 1; i < n; ++i) {
                double s = 0.0;
                for (std::size_t k = j; k < i; ++k) s -= h[i * n + k] * inverse_l[k * n + j];
                inverse_l[i * n + j] = s / h[i * n + i];
            }
        }
        std::vector<double> inverse(n * n, 0.0);
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t j = 0; j <= i; ++j) {
                double s = 0.0;
                for (std::size_t k = i; k < n; ++k) s += inverse_l[k * n + i] * inverse_l[k * n + j];
                inverse[i * n + j] = inverse[j * n + i] = s;
            }
        if (!cholesky_lower(inverse, n)) continue;
        // U = L2^T, where L2 is the lower factor of H^-1.
        std::vector<double> upper(n * n, 0.0);
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t j = i; j < n; ++j) upper[i * n + j] = inverse[j * n + i];
        return upper;
    }
    throw value_error("gptq: the input second-moment matrix is not positive semi-definite, even damped", 0);
}

/// Calls fn.template operator()<F>() with the format type of `type`, one of those gptq_supports() accepts.
template <class Fn>
void visit_directly_scaled(ggml_type type, Fn&& fn) {
    using enum ggml_type;
    switch (type) {
        case q4_0:
            fn.template operator()<formats::q4_0>();
            return;
        case q4_1:
            fn.template operator()<formats::q4_1>();
            return;
        case q5_0:
            fn.template operator()<formats::q5_0>();
            return;
        case q5_1:
            fn.template operator()<formats::q5_1>();
            return;
        case q8_0:
            fn.template operator()<formats::q8_0>();
            return;
        default:
            throw invalid_argument_error(std::string(info(type).name) + " takes no chosen scale");
    }
}

template <DirectlyScaledFormat F>
void gptq_rows(std::span<const float> weights, std::size_t cols, std::span<const double> upper, std::span<const float> importance,
               std::span<std::byte> out, std::size_t begin, std::size_t end) {
    constexpr std::size_t block = F::block_size;
    const std::size_t row_bytes = cols / block * F::type_size;
    std::vector<double> w(cols);
    std::vector<float> current(block);
    for (std::size_t r = begin; r < end; ++r) {
        for (std::size_t j = 0; j < cols; ++j) w[j] = weights[r * cols + j];
        std::byte* row = out.data() + r * row_bytes;
        for (std::size_t b = 0; b < cols / block; ++b) {
            const std::size_t j0 = b * block;
            for (std::size_t i = 0; i < block; ++i) current[i] = static_cast<float>(w[j0 + i]);
            const affine_scale s = search_block_scale<F>(current.data(), importance.data() + j0);
            std::uint8_t levels[block];
            for (std::size_t i = 0; i < block; ++i) {
                const std::size_t j = j0 + i;
                const float target = static_cast<float>(w[j]);
                const int l = nearest_level<F>(target, s);
                levels[i] = static_cast<std::uint8_t>(l);
                const double e = (w[j] - static_cast<double>(decode_level<F>(s, l))) / upper[j * cols + j];
                for (std::size_t k = j + 1; k < cols; ++k) w[k] -= e * upper[j * cols + k];
            }
            std::byte* out_block = row + b * F::type_size;
            F::store_scale(out_block, s);
            store_levels<F>(levels, out_block);
        }
    }
}

/// GPTQ over a table format's blocks: each block's scales are what ggml's search (with the importance) picks
/// for the block's weights as corrected so far; then each value takes the table entry nearest to it under those
/// scales, in column order, its error pushed onto the columns after it.
template <TableFormat F>
void gptq_table_rows(std::span<const float> weights, std::size_t cols, std::span<const double> upper, std::span<const float> importance,
                     std::span<std::byte> out, std::size_t begin, std::size_t end) {
    constexpr std::size_t block = F::block_size;
    const std::size_t row_bytes = cols / block * F::type_size;
    std::vector<double> w(cols);
    std::array<float, block> current{};
    std::array<std::uint8_t, block> indices{};
    for (std::size_t r = begin; r < end; ++r) {
        for (std::size_t j = 0; j < cols; ++j) w[j] = weights[r * cols + j];
        std::byte* row = out.data() + r * row_bytes;
        for (std::size_t b = 0; b < cols / block; ++b) {
            const std::size_t j0 = b * block;
            std::byte* out_block = row + b * F::type_size;
            for (std::size_t i = 0; i < block; ++i) current[i] = static_cast<float>(w[j0 + i]);
            F::quantize_block(current.data(), importance.data() + j0, out_block);
            for (std::size_t i = 0; i < block; ++i) {
                const std::size_t j = j0 + i;
                // The nearest decoded value, by a scan: mxfp4's table is not in ascending order.
                const float scale = F::scale(out_block, i / F::sub_block_size, 1.0f);
                double best = INFINITY, decoded = 0.0;
                for (std::size_t k = 0; k < F::values.size(); ++k) {
                    const double v = static_cast<double>(scale * static_cast<float>(F::values[k]));
                    if (std::fabs(w[j] - v) < best) best = std::fabs(w[j] - v), decoded = v, indices[i] = static_cast<std::uint8_t>(k);
                }
                const double e = (w[j] - decoded) / upper[j * cols + j];
                for (std::size_t k = j + 1; k < cols; ++k) w[k] -= e * upper[j * cols + k];
            }
            pack_levels(F::planes, indices.data(), block, out_block);
        }
    }
}

}  // namespace detail

/// Quantizes a rows x cols matrix (row-major, cols = GGUF's ne[0]) into `type`, minimizing the output error
/// sum over inputs x of |(W - Q) x|^2 given H = sum x x^T (cols x cols, row-major). Formats gptq_rounds()
/// accepts are steered; any other type gets ggml's reference quantization. Throws shape_error for sizes
/// that do not fit, value_error for NaN/Inf in the weights or in H.
[[nodiscard]] inline std::vector<std::byte> gptq_quantize(ggml_type type, std::span<const float> weights, std::size_t rows,
                                                          std::size_t cols, std::span<const double> hessian,
                                                          const gptq_options& options = {}) {
    const std::string context = "gptq " + std::string(info(type).name);
    if (weights.size() != rows * cols)
        throw shape_error(context + ": " + std::to_string(weights.size()) + " weights for a " + std::to_string(rows) + " x " +
                          std::to_string(cols) + " matrix");
    if (hessian.size() != cols * cols)
        throw shape_error(context + ": the input second moments hold " + std::to_string(hessian.size()) + " values, a " +
                          std::to_string(cols) + "-column matrix needs " + std::to_string(cols * cols));
    detail::require_whole_blocks(type, cols, context + " (row length)");
    detail::require_finite(weights, context);
    for (std::size_t i = 0; i < hessian.size(); ++i)
        if (!std::isfinite(hessian[i])) throw value_error(context + ": input second moment [" + std::to_string(i) + "] is not finite", i);
    if (!gptq_rounds(type)) return quantize(type, weights);

    const auto upper = detail::gptq_inverse_factor(hessian, cols, options.damping);
    std::vector<float> importance(cols);
    for (std::size_t j = 0; j < cols; ++j) importance[j] = static_cast<float>(std::max(0.0, hessian[j * cols + j]));
    std::vector<std::byte> out(storage_size(type, rows * cols));
    auto run = [&]<class F>() {
        parallel_for(rows, options.threads,
                     [&](std::size_t begin, std::size_t end) { detail::gptq_rows<F>(weights, cols, upper, importance, out, begin, end); });
    };
    auto run_table = [&]<class F>() {
        parallel_for(rows, options.threads, [&](std::size_t begin, std::size_t end) {
            detail::gptq_table_rows<F>(weights, cols, upper, importance, out, begin, end);
        });
    };
    switch (type) {
        case ggml_type::iq4_nl:
            run_table.template operator()<formats::iq4_nl>();
            break;
        case ggml_type::iq4_xs:
            run_table.template operator()<formats::iq4_xs>();
            break;
        case ggml_type::mxfp4:
            run_table.template operator()<formats::mxfp4>();
            break;
        default:
            detail::visit_directly_scaled(type, run);
    }
    return out;
}

/// Importance-weighted round-to-nearest: the block scales of search_block_scale with per-column weights
/// `importance` (e.g. the diagonal of H), and no error feedback between columns. For the formats that
/// gptq_supports(); others get ggml's reference.
[[nodiscard]] inline std::vector<std::byte> weighted_quantize(ggml_type type, std::span<const float> weights, std::size_t cols,
                                                              std::span<const float> importance) {
    const std::string context = "weighted quantize " + std::string(info(type).name);
    detail::require_whole_blocks(type, cols, context + " (row length)");
    if (cols == 0 || weights.size() % cols != 0)
        throw shape_error(context + ": " + std::to_string(weights.size()) + " weights are not whole rows of " + std::to_string(cols));
    if (importance.size() != cols)
        throw shape_error(context + ": " + std::to_string(importance.size()) + " importances for rows of " + std::to_string(cols));
    detail::require_finite(weights, context);
    for (std::size_t i = 0; i < importance.size(); ++i)
        if (!(importance[i] >= 0.0f) || !std::isfinite(importance[i]))
            throw value_error(context + ": importance[" + std::to_string(i) + "] is not a finite value >= 0", i);
    if (!gptq_supports(type)) return quantize(type, weights);
    std::vector<std::byte> out(storage_size(type, weights.size()));
    auto run = [&]<class F>() {
        for (std::size_t b = 0; b < weights.size() / F::block_size; ++b) {
            const float* x = weights.data() + b * F::block_size;
            const float* w = importance.data() + (b * F::block_size) % cols;
            encode_block<F>(x, search_block_scale<F>(x, w), out.data() + b * F::type_size);
        }
    };
    detail::visit_directly_scaled(type, run);
    return out;
}

}  // namespace cogqat
