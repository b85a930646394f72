#pragma once
// The searches of the grid i-quants, shared across the family: the formats differ in grid, group size and
// packing, not in how a group of values is fitted to a grid. The arithmetic is ggml's reference, operation for
// operation and in the same association (no fused multiply-add), because every rounding reaches the bytes.

#include <algorithm>
#include <array>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "cogqat/core/rounding.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/format/iq_grids.hpp"
#include "cogqat/format/scale_search.hpp"

COGQAT_STRICT_FP_BEGIN

namespace cogqat::formats::iq {

/// Values per super-block of every grid i-quant.
inline constexpr std::size_t super_block = 256;

/// The search reached a state where ggml's reference aborts (a NaN scale, no grid point within reach): the
/// quantizers report it as an error instead of writing bytes no reference defines.
struct search_failed {};

/// Σx² of a super-block, in ggml's order; the importance weights scale with sqrt(sigma2 + x²).
[[nodiscard]] inline float sum_of_squares(const float* x) noexcept {
    float sum = 0;
    for (std::size_t i = 0; i < super_block; ++i) sum += x[i] * x[i];
    return sum;
}

/// weight[i] = importance[i] * sqrt(sigma2 + x[i]²), the weighting all grid i-quants give an importance matrix.
inline void importance_weights(const float* x, const float* importance, float sigma2, std::size_t n, float* weight) noexcept {
    for (std::size_t i = 0; i < n; ++i) weight[i] = importance[i] * std::sqrt(sigma2 + x[i] * x[i]);
}

/// Stores |x| of 8 values into xval and returns their signs (bit i set: x[i] < 0). With `even_parity` (formats
/// that keep 7 sign bits) an odd count of negatives is made even by flipping the value that costs least,
/// weight * x², and the 7-bit code is returned.
[[nodiscard]] inline std::uint8_t fold_signs(const float* x, const float* weight, float* xval, bool even_parity) noexcept {
    int flips = 0;
    unsigned s = 0;
    for (unsigned i = 0; i < 8; ++i) {
        if (x[i] >= 0) {
            xval[i] = x[i];
        } else {
            xval[i] = -x[i];
            ++flips;
            s |= 1u << i;
        }
    }
    if (!even_parity) return static_cast<std::uint8_t>(s);
    if (flips % 2) {
        unsigned cheapest = 0;
        float least = weight[0] * x[0] * x[0];
        for (unsigned i = 1; i < 8; ++i) {
            const float cost = weight[i] * x[i] * x[i];
            if (cost < least) {
                least = cost;
                cheapest = i;
            }
        }
        xval[cheapest] = -xval[cheapest];
        s ^= 1u << cheapest;
    }
    return static_cast<std::uint8_t>(s & 127u);
}

// ggml's make_qp_quants (format/scale_search.hpp), shared with the importance-weighted K searches.
using cogqat::detail::qp_scale;

/// The grid point nearest (weighted) to xval at `scale` among `candidates`, the first on ties; writes its
/// levels. Throws search_failed when every distance is NaN (ggml asserts there).
inline std::uint16_t nearest_point(const lattice& grid, std::span<const std::uint16_t> candidates, const float* xval, const float* weight,
                                   float scale, std::int8_t* levels) {
    const auto& g = grid.grid();
    float best = FLT_MAX;
    int found = -1;
    for (const std::uint16_t p : candidates) {
        const float* q = grid.position(p);
        float d2 = 0;
        for (unsigned i = 0; i < g.dim; ++i) {
            const float diff = scale * q[i] - xval[i];
            d2 += weight[i] * diff * diff;
        }
        if (d2 < best) {
            best = d2;
            found = p;
        }
    }
    if (found < 0) throw search_failed{};
    for (unsigned i = 0; i < g.dim; ++i) levels[i] = static_cast<std::int8_t>(g.level(static_cast<std::size_t>(found), i));
    return static_cast<std::uint16_t>(found);
}

/// When a group's off-grid sub-groups are fitted again at the final scale.
enum class refit { off_grid, all_if_any_off_grid, always };

/// How one format searches a group: candidate inverse scales (levels*2-1 + is*step)/max for is in
/// [-steps, steps], where the first scale comes from, and what is fitted again afterwards.
struct lattice_rule {
    int steps;
    float step;
    bool start_from_qp;   ///< iq2_xxs: max is replaced by make_qp_quants' effective maximum
    bool assume_on_grid;  ///< what a group counts as when no candidate improves on the first scale
    refit refit_rule;
};

/// A group fitted to a grid: its scale and one grid point per `dim` values.
struct lattice_fit {
    float scale = 0;
    std::array<std::uint16_t, 8> points{};
};

/// Fits n non-negative values (xval, as fold_signs leaves them) to points of `grid` times one scale, maximizing
/// the weighted projection; `root_weight` is sqrt(weight), the metric of the neighbour choice. `max` is the
/// largest xval. Nothing when the group degenerates (make_qp_quants finds no scale).
[[nodiscard]] inline std::optional<lattice_fit> fit_to_lattice(const lattice& grid, const lattice_rule& rule, std::size_t n,
                                                               const float* xval, const float* weight, const float* root_weight,
                                                               float max) {
    const auto& g = grid.grid();
    const int k_max = g.levels;
    const std::size_t chunks = n / g.dim;
    std::array<std::int8_t, 32> levels{}, trial{};
    std::array<std::uint16_t, 8> points{}, trial_points{};
    std::array<bool, 8> on_grid{}, trial_on_grid{};
    on_grid.fill(rule.assume_on_grid);

    float scale = 0;
    if (rule.start_from_qp) {
        std::array<std::uint8_t, 32> qp{};
        scale = qp_scale(static_cast<int>(n), k_max + 1, xval, qp.data(), weight);
        max = scale * static_cast<float>(k_max);
        if (max <= 0) return std::nullopt;
    } else {
        scale = max / static_cast<float>(2 * k_max - 1);
    }

    // Rounds each chunk at `inverse` to the nearest lattice point, moving off-grid ones to their best neighbour.
    auto round_chunks = [&](float inverse, float at_scale, std::int8_t* out, std::uint16_t* out_points, bool* out_on_grid,
                            bool only_off_grid) {
        for (std::size_t k = 0; k < chunks; ++k) {
            if (only_off_grid && out_on_grid[k]) continue;
            std::int8_t* lk = out + g.dim * k;
            for (unsigned i = 0; i < g.dim; ++i) {
                const int l = cogqat::detail::nearest_int(0.5f * (inverse * xval[g.dim * k + i] - 1));
                lk[i] = static_cast<std::int8_t>(std::clamp(l, 0, k_max - 1));
            }
            const std::uint32_t code = grid.code_of(lk);
            const int p = grid.point(code);
            out_on_grid[k] = p >= 0;
            out_points[k] = p >= 0 ? static_cast<std::uint16_t>(p)
                                   : nearest_point(grid, grid.neighbours(code), xval + g.dim * k, root_weight + g.dim * k, at_scale, lk);
        }
    };
    auto projection = [&](const std::int8_t* l, float& sum_qx, float& sum_q2) {
        sum_qx = 0;
        sum_q2 = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const float q = static_cast<float>(2 * l[i] + 1);
            sum_qx += weight[i] * xval[i] * q;
            sum_q2 += weight[i] * q * q;
        }
    };

    float best = 0;
    for (int is = -rule.steps; is <= rule.steps; ++is) {
        const float inverse = (static_cast<float>(2 * k_max - 1) + static_cast<float>(is) * rule.step) / max;
        round_chunks(inverse, 1 / inverse, trial.data(), trial_points.data(), trial_on_grid.data(), false);
        float sum_qx = 0, sum_q2 = 0;
        projection(trial.data(), sum_qx, sum_q2);
        if (sum_q2 > 0 && sum_qx * sum_qx > best * sum_q2) {
            scale = sum_qx / sum_q2;
            best = scale * sum_qx;
            levels = trial;
            points = trial_points;
            on_grid = trial_on_grid;
        }
    }

    bool any_off = false;
    for (std::size_t k = 0; k < chunks; ++k) any_off = any_off || !on_grid[k];
    const bool again = rule.refit_rule == refit::always || any_off;
    if (again && scale > 0) {
        if (rule.refit_rule != refit::off_grid) on_grid.fill(false);
        round_chunks(1 / scale, scale, levels.data(), points.data(), on_grid.data(), true);
        float sum_qx = 0, sum_q2 = 0;
        projection(levels.data(), sum_qx, sum_q2);
        if (sum_q2 > 0) scale = sum_qx / sum_q2;
    }
    return lattice_fit{scale, points};
}

/// The 4-bit code of a group scale against the super-block's d: scale ≈ d * (2*code + 1).
[[nodiscard]] inline std::uint8_t odd_scale_code(float inverse_d, float scale, int largest) noexcept {
    const int l = cogqat::detail::nearest_int(0.5f * (inverse_d * scale - 1));
    return static_cast<std::uint8_t>(std::clamp(l, 0, largest));
}

}  // namespace cogqat::formats::iq

COGQAT_STRICT_FP_END
