#pragma once
// H = X^T X, the second moments of a matrix's inputs, from many input rows at once: what GPTQ factors and the
// Hessian-weighted errors weigh by. A 1.1B model's down projection reads 5,632 values per position; over
// 4,096 positions that is 6.5e10 multiply-adds for the lower triangle, so H is built in tiles, each the
// active SIMD table's register-tiled kernel (simd/isa/second_moments.hpp) where one is linked, else the
// reference here, and mirrored.

#include <algorithm>
#include <cstddef>
#include <span>
#include <vector>

#include "cogqat/core/parallel.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/dispatch/kernel_table.hpp"

namespace cogqat {

namespace detail::second_moment_tiles {

inline constexpr std::size_t rows_per_tile = 64, cols_per_tile = 128;

COGQAT_STRICT_FP_BEGIN

/// The scalar reference of dispatch::matrix_kernels::second_moments_f64: h[i][j] += x[r][i] x[r][j] in double,
/// r ascending, for i in [i0, i1) and j in [j0, j1). Every row's product is added, zeros too: skipping a
/// zero x[r][i] would change no finite sum, but an infinite x[r][j] would then reach H unpoisoned by 0 · inf
/// in one kernel and not in another.
inline void add_tile(double* h, std::size_t h_stride, const float* x, std::size_t x_stride, std::size_t rows, std::size_t i0,
                     std::size_t i1, std::size_t j0, std::size_t j1) noexcept {
    double xj[cols_per_tile];
    for (std::size_t jb = j0; jb < j1; jb += cols_per_tile) {
        const std::size_t width = std::min(cols_per_tile, j1 - jb);
        for (std::size_t r = 0; r < rows; ++r) {
            const float* row = x + r * x_stride;
            for (std::size_t j = 0; j < width; ++j) xj[j] = row[jb + j];
            for (std::size_t i = i0; i < i1; ++i) {
                const double xi = row[i];
                double* out = h + i * h_stride + jb;
                for (std::size_t j = 0; j < width; ++j) out[j] += xi * xj[j];
            }
        }
    }
}

COGQAT_STRICT_FP_END

}  // namespace detail::second_moment_tiles

/// The active SIMD table's second-moment tile, else the reference.
[[nodiscard]] inline auto second_moments_kernel() {
    const auto kernel = dispatch::active().matrix.second_moments_f64;
    return kernel ? kernel : &detail::second_moment_tiles::add_tile;
}

/// Adds X^T X of the rows x cols row-major values `x` to the cols x cols `h`: h[i][j] += sum over rows of
/// x[r][i] x[r][j], each sum over the rows in order, so the bits do not depend on `threads`; h stays
/// symmetric when it was (the upper triangle is the lower's mirror).
inline void add_second_moments(std::span<double> h, std::span<const float> x, std::size_t cols, unsigned threads) {
    using namespace detail::second_moment_tiles;
    if (cols == 0) return;
    const std::size_t rows = x.size() / cols;
    struct tile {
        std::size_t i0, j0;
    };
    std::vector<tile> tiles;  // the lower triangle's, diagonal tiles whole
    for (std::size_t i0 = 0; i0 < cols; i0 += rows_per_tile)
        for (std::size_t j0 = 0; j0 < std::min(cols, i0 + rows_per_tile); j0 += cols_per_tile) tiles.push_back({i0, j0});
    const auto kernel = second_moments_kernel();
    const std::size_t workers = std::min<std::size_t>(resolve_threads(threads), tiles.size());
    // Dealt round-robin: tiles are alike, and neighbours share rows of x in cache less than they compete. (The
    // rows in passes of 128 to 1,024 that every tile meets before the next, for x's reads to stay in cache,
    // was no faster on two threads at 2,048 and 5,632 columns.)
    parallel_for(workers, static_cast<unsigned>(workers), [&](std::size_t begin, std::size_t end) {
        for (std::size_t w = begin; w < end; ++w)
            for (std::size_t t = w; t < tiles.size(); t += workers) {
                const auto [i0, j0] = tiles[t];
                kernel(h.data(), cols, x.data(), cols, rows, i0, std::min(cols, i0 + rows_per_tile), j0,
                       std::min(cols, j0 + cols_per_tile));
            }
    });
    // In square blocks: row by row, the lower triangle's columns are read cols apart, a cache miss each.
    constexpr std::size_t block = 64;
    for (std::size_t i0 = 0; i0 < cols; i0 += block)
        for (std::size_t j0 = i0; j0 < cols; j0 += block)
            for (std::size_t i = i0; i < std::min(cols, i0 + block); ++i)
                for (std::size_t j = std::max(j0, i + 1); j < std::min(cols, j0 + block); ++j) h[i * cols + j] = h[j * cols + i];
}

/// X^T X of rows x cols values (cols x cols, double), as add_second_moments adds it to zeros.
[[nodiscard]] inline std::vector<double> second_moments(std::span<const float> x, std::size_t cols, unsigned threads) {
    std::vector<double> h(cols * cols, 0.0);
    add_second_moments(h, x, cols, threads);
    return h;
}

}  // namespace cogqat
