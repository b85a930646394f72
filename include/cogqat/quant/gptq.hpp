#pragma once
// Hessian-aware quantization of a weight matrix into a GGUF block format (GPTQ, Frantar et al. 2022): the
// columns of each row are quantized in order, and the error of each one is pushed onto the columns not yet
// quantized through the inverse of H = sum x x^T, the second moment of the matrix's inputs. The inputs come
// from synthetic calibration data (calib/), never from text. Block scales are chosen when a block is reached,
// by the importance-weighted search, from the already corrected weights. The bytes are ordinary GGUF blocks.
//
// Cost: O(cols^3) for the factor of H (blocked, threaded: core/cholesky.hpp), made once per input and shared,
// plus O(rows * cols^2) for the rows, threaded, as blocked matrix products over panels of rows.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cogqat/core/cholesky.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/parallel.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/format/legacy_formats.hpp"
#include "cogqat/format/level_layout.hpp"
#include "cogqat/format/table_format.hpp"
#include "cogqat/format/table_formats.hpp"
#include "cogqat/format/weighted_block_search.hpp"

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

/// What GPTQ needs of one input's H = sum x x^T (cols x cols): the upper factor U of the damped inverse,
/// H^-1 = U^T U, and H's diagonal as the block scale search's importance. It depends on H alone, so the
/// matrices that read the same input (Q, K and V; gate and up), and every type tried on one of them, share one.
///
/// U comes from a single Cholesky factorization: with J the order-reversing permutation, J H J = L L^T gives
/// U = J L^-1 J (H = U^-1 U^-T, and J U^-1 J is lower triangular). Dead inputs (zero on H's diagonal: never
/// active, e.g. padding) get a unit diagonal; their weights do not matter. When H is not positive definite,
/// the damping grows tenfold until it is.
class gptq_factor {
public:
    /// Throws shape_error when `hessian` is not cols x cols, value_error for NaN/Inf in it or when even
    /// the largest damping leaves it indefinite. `options.threads` factor it.
    gptq_factor(std::span<const double> hessian, std::size_t cols, const gptq_options& options = {}, std::string_view context = "gptq")
            : cols_(cols), importance_(cols), added_(cols) {
        check(hessian, cols, context);
        const std::size_t n = cols;
        for (std::size_t j = 0; j < n; ++j) importance_[j] = static_cast<float>(std::max(0.0, hessian[j * n + j]));
        double mean_diagonal = 0.0;
        for (std::size_t i = 0; i < n; ++i) mean_diagonal += hessian[i * n + i];
        mean_diagonal = n ? mean_diagonal / static_cast<double>(n) : 0.0;
        if (!(mean_diagonal > 0.0)) mean_diagonal = 1.0;
        std::vector<double> reversed(n * n);
        for (double damp = options.damping; damp <= 1e3; damp *= 10.0) {
            // The lower triangle of J (H + damping) J.
            for (std::size_t i = 0; i < n; ++i) {
                const std::size_t a = n - 1 - i;
                const bool dead_a = !(hessian[a * n + a] > 0.0);
                for (std::size_t j = 0; j <= i; ++j) {
                    const std::size_t b = n - 1 - j;
                    const bool dead = dead_a || !(hessian[b * n + b] > 0.0);
                    double v = dead ? (a == b ? mean_diagonal : 0.0) : hessian[a * n + b];
                    if (a == b) v += damp * mean_diagonal;
                    reversed[i * n + j] = v;
                }
            }
            if (!cholesky_lower(reversed, n, options.threads)) continue;
            for (std::size_t j = 0; j < n; ++j)
                added_[j] = damp * mean_diagonal + (hessian[j * n + j] > 0.0 ? 0.0 : mean_diagonal - hessian[j * n + j]);
            upper_.assign(n * n, 0.0);
            invert_lower_triangular(reversed, n, options.threads,
                                    [&](std::size_t i, std::size_t j, double v) { upper_[(n - 1 - i) * n + (n - 1 - j)] = v; });
            return;
        }
        throw value_error(std::string(context) + ": the input second-moment matrix is not positive semi-definite, even damped", 0);
    }

    /// Throws as the constructor does for an H of the wrong size or with NaN/Inf, without factoring it.
    static void check(std::span<const double> hessian, std::size_t cols, std::string_view context) {
        if (hessian.size() != cols * cols)
            throw shape_error(std::string(context) + ": the input second moments hold " + std::to_string(hessian.size()) + " values, a " +
                              std::to_string(cols) + "-column matrix needs " + std::to_string(cols * cols));
        for (std::size_t i = 0; i < hessian.size(); ++i)
            if (!std::isfinite(hessian[i]))
                throw value_error(std::string(context) + ": input second moment [" + std::to_string(i) + "] is not finite", i);
    }

    [[nodiscard]] std::size_t cols() const noexcept { return cols_; }
    /// U, row-major, cols x cols, zero below the diagonal.
    [[nodiscard]] std::span<const double> upper() const noexcept { return upper_; }
    /// H's diagonal (negatives as 0), for the block scale search.
    [[nodiscard]] std::span<const float> importance() const noexcept { return importance_; }
    /// What the factored matrix adds to H's diagonal, per column: the damping, and for a dead input the unit
    /// diagonal it gets (its row and column of H are otherwise zero, as H is positive semi-definite).
    [[nodiscard]] std::span<const double> added_diagonal() const noexcept { return added_; }

    /// The factor as bytes of this machine (cols, U, the added diagonal, H's diagonal): to keep it outside
    /// memory, in a scratch file, and have it back with from_bytes.
    [[nodiscard]] std::vector<std::byte> to_bytes() const {
        const std::uint64_t n = cols_;
        std::vector<std::byte> out(sizeof n + upper_.size() * sizeof(double) + added_.size() * sizeof(double) +
                                   importance_.size() * sizeof(float));
        std::byte* at = out.data();
        const auto put = [&](const void* from, std::size_t size) {
            if (size) std::memcpy(at, from, size);
            at += size;
        };
        put(&n, sizeof n);
        put(upper_.data(), upper_.size() * sizeof(double));
        put(added_.data(), added_.size() * sizeof(double));
        put(importance_.data(), importance_.size() * sizeof(float));
        return out;
    }

    /// A factor to_bytes wrote; format_error when `bytes` are not one.
    [[nodiscard]] static gptq_factor from_bytes(std::span<const std::byte> bytes) {
        std::uint64_t n = 0;
        if (bytes.size() >= sizeof n) std::memcpy(&n, bytes.data(), sizeof n);
        const auto want = [](std::uint64_t c) {
            return sizeof(std::uint64_t) + c * c * sizeof(double) + c * (sizeof(double) + sizeof(float));
        };
        if (bytes.size() < sizeof n || n > (1u << 20) || bytes.size() != want(n))
            throw format_error("gptq_factor::from_bytes: " + std::to_string(bytes.size()) + " bytes are not a kept factor");
        gptq_factor f;
        f.cols_ = static_cast<std::size_t>(n);
        f.upper_.resize(n * n), f.added_.resize(n), f.importance_.resize(n);
        const std::byte* at = bytes.data() + sizeof n;
        const auto get = [&](void* to, std::size_t size) {
            if (size) std::memcpy(to, at, size);
            at += size;
        };
        get(f.upper_.data(), f.upper_.size() * sizeof(double));
        get(f.added_.data(), f.added_.size() * sizeof(double));
        get(f.importance_.data(), f.importance_.size() * sizeof(float));
        return f;
    }

private:
    gptq_factor() = default;

    std::size_t cols_ = 0;
    std::vector<double> upper_;
    std::vector<float> importance_;
    std::vector<double> added_;
};

namespace detail {

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

/// The active SIMD table's search_block_scale for F, else the reference: the same bits either way.
template <DirectlyScaledFormat F>
[[nodiscard]] inline auto block_scale_search() {
    const auto kernel = dispatch::kernels(F::type).search_block_scale;
    return kernel ? kernel : &search_block_scale<F>;
}

/// One block of a directly scaled format as GPTQ rounds it: the scale searched once, from the block's
/// corrected weights, then each value to its nearest level under it.
template <DirectlyScaledFormat F>
struct scaled_block_rounder {
    static constexpr std::size_t block = F::block_size, type_size = F::type_size;
    affine_scale scale{};
    std::uint8_t levels[block]{};
    void begin(const float* current, const float* importance, std::byte*) { scale = block_scale_search<F>()(current, importance); }
    [[nodiscard]] double round(std::size_t i, double target) {
        const int l = nearest_level<F>(static_cast<float>(target), scale);
        levels[i] = static_cast<std::uint8_t>(l);
        return static_cast<double>(decode_level<F>(scale, l));
    }
    void finish(std::byte* out) {
        F::store_scale(out, scale);
        store_levels<F>(levels, out);
    }
};

/// One block of a table format: its scales are what ggml's search (with the importance) picks for the
/// block's corrected weights; then each value takes the table entry nearest to it under those scales.
template <TableFormat F>
struct table_block_rounder {
    static constexpr std::size_t block = F::block_size, type_size = F::type_size;
    const std::byte* scales = nullptr;
    std::array<std::uint8_t, block> indices{};
    void begin(const float* current, const float* importance, std::byte* out) {
        F::quantize_block(current, importance, out);
        scales = out;
    }
    [[nodiscard]] double round(std::size_t i, double target) {
        // The nearest decoded value, by a scan: mxfp4's table is not in ascending order.
        const float scale = F::scale(scales, i / F::sub_block_size, 1.0f);
        double best = INFINITY, decoded = 0.0;
        for (std::size_t k = 0; k < F::values.size(); ++k) {
            const double v = static_cast<double>(scale * static_cast<float>(F::values[k]));
            if (std::fabs(target - v) < best) best = std::fabs(target - v), decoded = v, indices[i] = static_cast<std::uint8_t>(k);
        }
        return decoded;
    }
    void finish(std::byte* out) { pack_levels(F::planes, indices.data(), block, out); }
};

inline constexpr std::size_t gptq_panel_rows = 32;     ///< rows corrected together: each read of U serves them all
inline constexpr std::size_t gptq_column_chunk = 256;  ///< columns of a deferred update that stay in cache together

COGQAT_STRICT_FP_BEGIN

/// The deferred updates' scalar reference, what dispatch::matrix_kernels::rank_update_f64 computes: for
/// r < rows and k in [k0, k1), w[r][k] -= e[r][j - j0] U[j][k] for j = j0 .. j1 - 1 in ascending order, the
/// product rounded and then the difference. Four rows share each read of U, and the columns go
/// gptq_column_chunk at a time so that the rows' slices stay in cache while the j pass over them.
inline void rank_update_reference(double* w, std::size_t w_stride, std::size_t rows, const double* e, std::size_t e_stride, const double* u,
                                  std::size_t u_stride, std::size_t j0, std::size_t j1, std::size_t k0, std::size_t k1) noexcept {
    for (std::size_t c0 = k0; c0 < k1; c0 += gptq_column_chunk) {
        const std::size_t c1 = std::min(k1, c0 + gptq_column_chunk);
        std::size_t r = 0;
        for (; r + 4 <= rows; r += 4) {
            double* w0 = w + r * w_stride;
            double* w1 = w0 + w_stride;
            double* w2 = w1 + w_stride;
            double* w3 = w2 + w_stride;
            const double* er = e + r * e_stride;
            for (std::size_t j = j0; j < j1; ++j) {
                const double e0 = er[j - j0], e1 = er[e_stride + j - j0], e2 = er[2 * e_stride + j - j0], e3 = er[3 * e_stride + j - j0];
                const double* uj = u + j * u_stride;
                for (std::size_t k = c0; k < c1; ++k) {
                    const double v = uj[k];
                    w0[k] -= e0 * v;
                    w1[k] -= e1 * v;
                    w2[k] -= e2 * v;
                    w3[k] -= e3 * v;
                }
            }
        }
        for (; r < rows; ++r) {
            double* wr = w + r * w_stride;
            const double* er = e + r * e_stride;
            for (std::size_t j = j0; j < j1; ++j) {
                const double* uj = u + j * u_stride;
                for (std::size_t k = c0; k < c1; ++k) wr[k] -= er[j - j0] * uj[k];
            }
        }
    }
}

/// The active SIMD table's rank_update_f64, else the reference.
[[nodiscard]] inline auto rank_update_kernel() {
    const auto kernel = dispatch::active().matrix.rank_update_f64;
    return kernel ? kernel : &rank_update_reference;
}

/// Rows [begin, end) of GPTQ, column by column: value j is rounded, and its error e_j = (w_j - q_j) / U_jj
/// is pushed onto every later column k as w_k -= e_j U_jk. Within a block of columns that happens at once;
/// past it, the block's updates are deferred and applied together, as one matrix product over a panel of
/// rows (GPTQ's lazy batch). Each w_k still takes its updates in ascending j, so the bits are those of the
/// column-by-column loop.
/// With `row_loss`, row r's Σ_j e_j² is added to row_loss[r]: its output error on the damped H.
template <class Rounder>
void gptq_rows(std::span<const float> weights, std::size_t cols, const gptq_factor& factor, std::span<std::byte> out, std::size_t begin,
               std::size_t end, double* row_loss = nullptr) {
    constexpr std::size_t block = Rounder::block;
    constexpr std::size_t column_block = std::max<std::size_t>(128, block);
    const double* u = factor.upper().data();
    const float* importance = factor.importance().data();
    const std::size_t row_bytes = cols / block * Rounder::type_size;
    std::vector<double> w(gptq_panel_rows * cols), errors(gptq_panel_rows * column_block);
    std::array<float, block> current{};
    const auto update = rank_update_kernel();
    for (std::size_t p0 = begin; p0 < end; p0 += gptq_panel_rows) {
        const std::size_t rows = std::min(gptq_panel_rows, end - p0);
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t j = 0; j < cols; ++j) w[r * cols + j] = weights[(p0 + r) * cols + j];
        for (std::size_t c0 = 0; c0 < cols; c0 += column_block) {
            const std::size_t c1 = std::min(cols, c0 + column_block);
            for (std::size_t r = 0; r < rows; ++r) {
                double* wr = w.data() + r * cols;
                double* er = errors.data() + r * column_block;
                std::byte* row_out = out.data() + (p0 + r) * row_bytes;
                for (std::size_t b0 = c0; b0 < c1; b0 += block) {
                    Rounder rounder;
                    std::byte* out_block = row_out + b0 / block * Rounder::type_size;
                    for (std::size_t i = 0; i < block; ++i) current[i] = static_cast<float>(wr[b0 + i]);
                    rounder.begin(current.data(), importance + b0, out_block);
                    for (std::size_t i = 0; i < block; ++i) {
                        const std::size_t j = b0 + i;
                        const double e = (wr[j] - rounder.round(i, wr[j])) / u[j * cols + j];
                        er[j - c0] = e;
                        if (row_loss) row_loss[p0 + r] += e * e;
                        for (std::size_t k = j + 1; k < c1; ++k) wr[k] -= e * u[j * cols + k];
                    }
                    rounder.finish(out_block);
                }
            }
            // The deferred updates: w[r][k] -= sum over the block's j (ascending) of e[r][j] U[j][k], k past the block.
            update(w.data(), cols, rows, errors.data(), column_block, u, cols, c0, c1, c1, cols);
        }
    }
}

COGQAT_STRICT_FP_END

/// The checks both gptq_quantize overloads make before any work: weights for rows x cols, whole blocks per
/// row. Returns the context their messages start with.
inline std::string check_gptq_matrix(ggml_type type, std::span<const float> weights, std::size_t rows, std::size_t cols) {
    std::string context = "gptq " + std::string(info(type).name);
    if (weights.size() != rows * cols)
        throw shape_error(context + ": " + std::to_string(weights.size()) + " weights for a " + std::to_string(rows) + " x " +
                          std::to_string(cols) + " matrix");
    require_whole_blocks(type, cols, context + " (row length)");
    return context;
}

/// Calls fn.template operator()<Rounder>() with GPTQ's rounder for `type`, one of those gptq_rounds() accepts.
template <class Fn>
void visit_gptq_rounder(ggml_type type, Fn&& fn) {
    switch (type) {
        case ggml_type::iq4_nl:
            fn.template operator()<table_block_rounder<formats::iq4_nl>>();
            return;
        case ggml_type::iq4_xs:
            fn.template operator()<table_block_rounder<formats::iq4_xs>>();
            return;
        case ggml_type::mxfp4:
            fn.template operator()<table_block_rounder<formats::mxfp4>>();
            return;
        default:
            visit_directly_scaled(type, [&]<class F>() { fn.template operator()<scaled_block_rounder<F>>(); });
    }
}

}  // namespace detail

/// Quantizes a rows x cols matrix (row-major, cols = GGUF's ne[0]) into `type`, minimizing the output error
/// sum over inputs x of |(W - Q) x|^2 given the factor of its inputs' H. Formats gptq_rounds() accepts are
/// steered; any other type gets ggml's reference quantization. Rows run on options.threads threads; the bytes
/// do not depend on them. Throws shape_error for sizes that do not fit, value_error for NaN/Inf weights.
///
/// With `output_error` given and a steered type, *output_error = tr(D H Dᵀ) (D = W - Q) for next to nothing:
/// GPTQ's sequential rounding makes each row's error on the factored matrix the sum of its columns' squared
/// scaled errors e_j², so this is Σ e_j² less what the factored matrix adds to H's diagonal,
/// Σ_j added_diagonal_j |D_:j|². (Computed directly it costs rows x cols² multiply-adds, as much as GPTQ.)
/// Left as it is for other types.
[[nodiscard]] inline std::vector<std::byte> gptq_quantize(ggml_type type, std::span<const float> weights, std::size_t rows,
                                                          std::size_t cols, const gptq_factor& factor, const gptq_options& options = {},
                                                          double* output_error = nullptr) {
    const std::string context = detail::check_gptq_matrix(type, weights, rows, cols);
    if (factor.cols() != cols)
        throw shape_error(context + ": a factor of " + std::to_string(factor.cols()) + " inputs for a matrix of " + std::to_string(cols) +
                          " columns");
    detail::require_finite(weights, context);
    if (!gptq_rounds(type)) return quantize(type, weights);
    std::vector<std::byte> out(storage_size(type, rows * cols));
    std::vector<double> row_loss(output_error ? rows : 0, 0.0);
    double* losses = output_error ? row_loss.data() : nullptr;
    detail::visit_gptq_rounder(type, [&]<class Rounder>() {
        parallel_for(
                rows, options.threads,
                [&](std::size_t begin, std::size_t end) { detail::gptq_rows<Rounder>(weights, cols, factor, out, begin, end, losses); },
                detail::gptq_panel_rows);
    });
    if (output_error) {
        const auto decoded = dequantize(type, out);
        const auto added = factor.added_diagonal();
        double total = 0.0;
        for (std::size_t r = 0; r < rows; ++r) {
            double ridge = 0.0;
            for (std::size_t j = 0; j < cols; ++j) {
                const double d = static_cast<double>(weights[r * cols + j]) - decoded[r * cols + j];
                ridge += added[j] * d * d;
            }
            total += row_loss[r] - ridge;
        }
        *output_error = std::max(0.0, total);  // never below zero by rounding, where the error is nearly nothing
    }
    return out;
}

/// As above, from H = sum x x^T itself (cols x cols, row-major): the factor is made for this one call. Where
/// matrices share an input, or one matrix is tried at several types, make the gptq_factor once instead.
/// Throws value_error also for NaN/Inf in H.
[[nodiscard]] inline std::vector<std::byte> gptq_quantize(ggml_type type, std::span<const float> weights, std::size_t rows,
                                                          std::size_t cols, std::span<const double> hessian,
                                                          const gptq_options& options = {}) {
    const std::string context = detail::check_gptq_matrix(type, weights, rows, cols);
    if (!gptq_rounds(type)) {
        detail::require_finite(weights, context);
        gptq_factor::check(hessian, cols, context);
        return quantize(type, weights);
    }
    return gptq_quantize(type, weights, rows, cols, gptq_factor(hessian, cols, options, context), options);
}

/// The factors of the last few inputs used, keyed by where their H lives: matrices that read one input
/// (Q, K and V; gate and up), quantized one after another, make its factor once. Each H must outlive its
/// use here. Not for concurrent use.
class gptq_factor_cache {
public:
    explicit gptq_factor_cache(const gptq_options& options = {}, std::size_t capacity = 2) : options_(options), capacity_(capacity) {}

    /// The factor of `hessian` (cols x cols), made now unless one of the last `capacity` inputs was this one.
    [[nodiscard]] const gptq_factor& get(std::span<const double> hessian, std::size_t cols) {
        for (std::size_t k = 0; k < entries_.size(); ++k)
            if (entries_[k].first == hessian.data()) {
                std::rotate(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(k),
                            entries_.begin() + static_cast<std::ptrdiff_t>(k) + 1);
                return *entries_.front().second;
            }
        if (capacity_ && entries_.size() >= capacity_) entries_.pop_back();
        entries_.emplace(entries_.begin(), hessian.data(), std::make_unique<gptq_factor>(hessian, cols, options_));
        return *entries_.front().second;
    }
    [[nodiscard]] const gptq_options& options() const noexcept { return options_; }
    void clear() noexcept { entries_.clear(); }

private:
    gptq_options options_;
    std::size_t capacity_;
    std::vector<std::pair<const double*, std::unique_ptr<gptq_factor>>> entries_;  // most recent first
};

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
        const auto search = detail::block_scale_search<F>();
        for (std::size_t b = 0; b < weights.size() / F::block_size; ++b) {
            const float* x = weights.data() + b * F::block_size;
            const float* w = importance.data() + (b * F::block_size) % cols;
            encode_block<F>(x, search(x, w), out.data() + b * F::type_size);
        }
    };
    detail::visit_directly_scaled(type, run);
    return out;
}

}  // namespace cogqat
