#pragma once
// Dense symmetric factorization for GPTQ's inverse Hessian factors (quant/gptq.hpp): a blocked Cholesky and a
// lower-triangular inverse, in double, row-major, split over threads. A 5,632-column input (a 1.1B model's
// down projection) costs about 6e10 multiply-adds for each of the two; unblocked, column-strided loops spent
// minutes on it, these spend seconds.
//
// Every element's sums run in one fixed order (the panel's columns ascending), whatever the thread count or
// the tiling, and contraction into FMA is off: the factors are the same bits on every run, machine and build.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include "cogqat/core/parallel.hpp"
#include "cogqat/core/strict_fp.hpp"

namespace cogqat {

namespace detail::cholesky {

inline constexpr std::size_t panel_width = 64;    ///< columns factored per step; its trailing update is the bulk
inline constexpr std::size_t inverse_width = 16;  ///< columns of the inverse solved together, sharing each row of L

/// Row ranges of [first, n) of about equal work when row i costs (i - first + 1) elements: the lower
/// triangle's rows, cut so that each of `parts` ranges holds as many elements.
[[nodiscard]] inline std::vector<std::size_t> triangle_cuts(std::size_t first, std::size_t n, std::size_t parts) {
    std::vector<std::size_t> cuts{first};
    const double rows = static_cast<double>(n - first);
    for (std::size_t p = 1; p < parts; ++p) {
        const auto at = first + static_cast<std::size_t>(rows * std::sqrt(static_cast<double>(p) / static_cast<double>(parts)));
        cuts.push_back(std::clamp(at, cuts.back(), n));
    }
    cuts.push_back(n);
    return cuts;
}

COGQAT_STRICT_FP_BEGIN

/// a[i][j] -= sum over k of a[i][k0 + k] * panel[k][j - j0], k ascending, for rows [row_begin, row_end) and
/// columns j0 <= j <= i. `panel` is the factored panel transposed (width x (n - j0)), so the inner loop runs
/// along contiguous rows of both; four rows share each load of it.
inline void trailing_update(double* a, std::size_t n, std::size_t k0, std::size_t width, const double* panel, std::size_t j0,
                            std::size_t row_begin, std::size_t row_end) {
    const std::size_t stride = n - j0;
    std::size_t i = row_begin;
    for (; i + 4 <= row_end; i += 4) {
        double* r0 = a + i * n;
        double* r1 = r0 + n;
        double* r2 = r1 + n;
        double* r3 = r2 + n;
        for (std::size_t k = 0; k < width; ++k) {
            const double l0 = r0[k0 + k], l1 = r1[k0 + k], l2 = r2[k0 + k], l3 = r3[k0 + k];
            const double* p = panel + k * stride - j0;
            for (std::size_t j = j0; j <= i; ++j) {
                const double v = p[j];
                r0[j] -= l0 * v;
                r1[j] -= l1 * v;
                r2[j] -= l2 * v;
                r3[j] -= l3 * v;
            }
            // The three rows' columns past row i's diagonal.
            r1[i + 1] -= l1 * p[i + 1];
            r2[i + 1] -= l2 * p[i + 1];
            r3[i + 1] -= l3 * p[i + 1];
            r2[i + 2] -= l2 * p[i + 2];
            r3[i + 2] -= l3 * p[i + 2];
            r3[i + 3] -= l3 * p[i + 3];
        }
    }
    for (; i < row_end; ++i) {
        double* r = a + i * n;
        for (std::size_t k = 0; k < width; ++k) {
            const double l = r[k0 + k];
            const double* p = panel + k * stride - j0;
            for (std::size_t j = j0; j <= i; ++j) r[j] -= l * p[j];
        }
    }
}

/// Columns [j0, j0 + width) of L^-1 for the lower factor `l`: x[i][c] = (delta - sum_{k<i} l[i][k] x[k][c]) / l[i][i],
/// k ascending, written by `store(i, column, value)` for i >= column.
template <class Store>
void inverse_columns(const double* l, std::size_t n, std::size_t j0, std::size_t width, Store&& store) {
    std::vector<double> x((n - j0) * inverse_width, 0.0);
    double acc[inverse_width];
    for (std::size_t i = j0; i < n; ++i) {
        for (std::size_t c = 0; c < inverse_width; ++c) acc[c] = i == j0 + c ? 1.0 : 0.0;
        const double* row = l + i * n;
        for (std::size_t k = j0; k < i; ++k) {
            const double lk = row[k];
            const double* xk = x.data() + (k - j0) * inverse_width;
            for (std::size_t c = 0; c < inverse_width; ++c) acc[c] -= lk * xk[c];
        }
        double* xi = x.data() + (i - j0) * inverse_width;
        for (std::size_t c = 0; c < inverse_width; ++c) xi[c] = acc[c] / row[i];
        for (std::size_t c = 0; c < width && j0 + c <= i; ++c) store(i, j0 + c, xi[c]);
    }
}

COGQAT_STRICT_FP_END

}  // namespace detail::cholesky

/// In place, the lower Cholesky factor L (a = L L^T) of the n x n symmetric matrix `a`, row-major; only its
/// lower triangle is read, and the upper is zeroed. False when `a` is not positive definite (a pivot <= 0 or
/// not finite); `a` is then partly overwritten. The bits do not depend on `threads` (0: one per hardware thread).
[[nodiscard]] inline bool cholesky_lower(std::span<double> a, std::size_t n, unsigned threads = 1) {
    using namespace detail::cholesky;
    const unsigned workers = resolve_threads(threads);
    std::vector<double> panel;
    for (std::size_t k0 = 0; k0 < n; k0 += panel_width) {
        const std::size_t k1 = std::min(n, k0 + panel_width), width = k1 - k0;
        // The diagonal block, unblocked: its entries already hold every earlier panel's update.
        for (std::size_t j = k0; j < k1; ++j) {
            double d = a[j * n + j];
            for (std::size_t k = k0; k < j; ++k) d -= a[j * n + k] * a[j * n + k];
            if (!(d > 0.0) || !std::isfinite(d)) return false;
            d = std::sqrt(d);
            a[j * n + j] = d;
            for (std::size_t i = j + 1; i < k1; ++i) {
                double s = a[i * n + j];
                for (std::size_t k = k0; k < j; ++k) s -= a[i * n + k] * a[j * n + k];
                a[i * n + j] = s / d;
            }
        }
        if (k1 == n) break;
        // The panel's rows below the block: a triangular solve per row, rows independent.
        parallel_for(
                n - k1, workers,
                [&](std::size_t begin, std::size_t end) {
                    for (std::size_t i = k1 + begin; i < k1 + end; ++i)
                        for (std::size_t j = k0; j < k1; ++j) {
                            double s = a[i * n + j];
                            for (std::size_t k = k0; k < j; ++k) s -= a[i * n + k] * a[j * n + k];
                            a[i * n + j] = s / a[j * n + j];
                        }
                },
                16);
        // The trailing lower triangle loses the panel's outer products; rows cut by their share of it.
        panel.assign(width * (n - k1), 0.0);
        for (std::size_t j = k1; j < n; ++j)
            for (std::size_t k = 0; k < width; ++k) panel[k * (n - k1) + (j - k1)] = a[j * n + k0 + k];
        const std::size_t parts = std::min<std::size_t>(workers, std::max<std::size_t>(1, (n - k1) / 64));
        const auto cuts = triangle_cuts(k1, n, parts);
        parallel_for(parts, static_cast<unsigned>(parts), [&](std::size_t begin, std::size_t end) {
            for (std::size_t p = begin; p < end; ++p) trailing_update(a.data(), n, k0, width, panel.data(), k1, cuts[p], cuts[p + 1]);
        });
    }
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = i + 1; j < n; ++j) a[i * n + j] = 0.0;
    return true;
}

/// L^-1 of the n x n lower-triangular `l` (row-major, nonzero diagonal), delivered element by element to
/// store(i, j, value) for j <= i; groups of columns run on separate threads, so `store` must accept
/// concurrent calls for distinct (i, j). The bits do not depend on `threads`.
template <class Store>
void invert_lower_triangular(std::span<const double> l, std::size_t n, unsigned threads, Store&& store) {
    using namespace detail::cholesky;
    const std::size_t groups = (n + inverse_width - 1) / inverse_width;
    // Group g costs about (n - g * width)^2: dealt round-robin, every thread gets a like share.
    const std::size_t workers = std::min<std::size_t>(resolve_threads(threads), groups);
    parallel_for(workers, static_cast<unsigned>(workers), [&](std::size_t begin, std::size_t end) {
        for (std::size_t w = begin; w < end; ++w)
            for (std::size_t g = w; g < groups; g += workers) {
                const std::size_t j0 = g * inverse_width;
                inverse_columns(l.data(), n, j0, std::min(inverse_width, n - j0), store);
            }
    });
}

}  // namespace cogqat
