#pragma once
// H += XᵀX on double lanes (dispatch::matrix_kernels::second_moments_f64), the inputs' second moments that GPTQ
// and the Hessian-weighted errors weigh by. The reference (calib/second_moments.hpp) loads and stores a row of
// H for every input row and column, so it runs at the speed of its stores (about 3 GFLOP/s); here a tile of H
// (tile_rows of i by tile_vectors registers of j) stays in registers across a strip of input rows, each
// x[r][j] segment is loaded once for the tile's rows and x[r][i] is broadcast. The strip's values are first
// converted and copied into contiguous buffers that the tiles read from L1: read in place, x's rows are a
// multiple of 4 KB apart at a model's widths and fall into a few cache sets.
//
// Bits: a float times a float is exact in double (48 significant bits of 53, exponents far inside double's
// range), so a fused multiply-add rounds once where the reference rounds the sum alone, and lanes are distinct
// j, rows distinct i, every element taking its input rows one at a time in ascending order: the reference's
// values, bit for bit, whatever the tiling.
//
// Include only in a unit compiled for the tag's instruction set (simd/isa/register.hpp does).

#include <cstddef>
#include <type_traits>

#include "cogqat/core/strict_fp.hpp"
#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/simd/isa/isa.hpp"
#include "cogqat/simd/isa/strict_unrolled.hpp"

namespace cogqat::simd {

COGQAT_STRICT_FP_BEGIN

namespace detail::second_moments {

template <class Isa>
using double_batch = batch<double, Isa>;

/// Registers of j per tile (columns of H).
template <class Isa>
inline constexpr std::size_t tile_vectors = tile_registers_per_row<Isa>;
/// Input rows per copied strip: AVX-512's j strip is 128 x 32 doubles, 32 KB.
inline constexpr std::size_t strip_depth = 128;

/// c + a b with the product exact (module comment): one instruction where the set has it.
template <class Isa>
inline double_batch<Isa> multiply_add(const double_batch<Isa>& a, const double_batch<Isa>& b, const double_batch<Isa>& c) noexcept {
#if XSIMD_WITH_AVX512BW
    if constexpr (std::is_same_v<typename Isa::arch, xsimd::avx512bw>)
        return _mm512_fmadd_pd(a, b, c);
    else
#endif
#if XSIMD_WITH_AVX2 && XSIMD_WITH_FMA3_AVX2
            if constexpr (std::is_same_v<typename Isa::arch, xsimd::fma3<xsimd::avx2>>)
        return xsimd::fma(a, b, c);
    else
#endif
        return c + a * b;
}

/// Rows x Vectors registers of H (rows h_stride apart) plus, for each strip row r < depth, xi[r][i] times
/// xj[r][j]: xi's rows tile_rows wide, xj's `xj_stride`.
template <class Isa, std::size_t Rows, std::size_t Vectors>
void tile(double* h, std::size_t h_stride, const double* xi, const double* xj, std::size_t xj_stride, std::size_t depth) noexcept {
    using db = double_batch<Isa>;
    constexpr std::size_t lanes = db::size;
    db acc[Rows][Vectors];
    strict_unrolled<Isa, Rows>(
            [&](auto i) { strict_unrolled<Isa, Vectors>([&](auto v) { acc[i][v] = db::load_unaligned(h + i * h_stride + v * lanes); }); });
    for (std::size_t r = 0; r < depth; ++r) {
        const double* row = xj + r * xj_stride;
        db xv[Vectors];
        strict_unrolled<Isa, Vectors>([&](auto v) { xv[v] = db::load_aligned(row + v * lanes); });
        strict_unrolled<Isa, Rows>([&](auto i) {
            const db b(xi[r * tile_rows + i]);
            strict_unrolled<Isa, Vectors>([&](auto v) { acc[i][v] = multiply_add<Isa>(b, xv[v], acc[i][v]); });
        });
    }
    strict_unrolled<Isa, Rows>(
            [&](auto i) { strict_unrolled<Isa, Vectors>([&](auto v) { acc[i][v].store_unaligned(h + i * h_stride + v * lanes); }); });
}

/// The tile of `rows` (1 to tile_rows) rows of H at h.
template <class Isa, std::size_t Vectors>
void tile_of(std::size_t rows, double* h, std::size_t h_stride, const double* xi, const double* xj, std::size_t xj_stride,
             std::size_t depth) noexcept {
    static_assert(tile_rows == 4);
    switch (rows) {
        case 4:
            tile<Isa, 4, Vectors>(h, h_stride, xi, xj, xj_stride, depth);
            break;
        case 3:
            tile<Isa, 3, Vectors>(h, h_stride, xi, xj, xj_stride, depth);
            break;
        case 2:
            tile<Isa, 2, Vectors>(h, h_stride, xi, xj, xj_stride, depth);
            break;
        default:
            tile<Isa, 1, Vectors>(h, h_stride, xi, xj, xj_stride, depth);
            break;
    }
}

/// Every i group of the tile over Vectors registers at one column block, tile_rows rows at a time.
template <class Isa, std::size_t Vectors>
void column_block(double* h, std::size_t h_stride, std::size_t rows_of_i, const double* xi, const double* xj, std::size_t xj_stride,
                  std::size_t depth) noexcept {
    for (std::size_t i = 0; i < rows_of_i; i += tile_rows) {
        const std::size_t group = rows_of_i - i < tile_rows ? rows_of_i - i : tile_rows;
        tile_of<Isa, Vectors>(group, h + i * h_stride, h_stride, xi + i * strip_depth, xj, xj_stride, depth);
    }
}

/// Tile sizes the caller may ask for at most (calib/second_moments.hpp's tiles are 64 x 128).
inline constexpr std::size_t max_tile_i = 64;

template <class Isa>
void second_moments_f64(double* h, std::size_t h_stride, const float* x, std::size_t x_stride, std::size_t rows, std::size_t i0,
                        std::size_t i1, std::size_t j0, std::size_t j1) noexcept {
    constexpr std::size_t lanes = double_batch<Isa>::size, vectors = tile_vectors<Isa>, width = vectors * lanes;
    static_assert(vectors >= 2 && vectors <= 4);
    // xi by groups of tile_rows: group g's strip row r at xi[g strip_depth + r tile_rows], so a tile reads one
    // contiguous run; a larger i range goes max_tile_i rows at a time.
    alignas(64) double xi[max_tile_i * strip_depth];
    alignas(64) double xj[strip_depth * width];
    alignas(64) double edge[tile_rows * width];
    for (std::size_t ib = i0; ib < i1; ib += max_tile_i) {
        const std::size_t ie = i1 - ib < max_tile_i ? i1 : ib + max_tile_i, rows_of_i = ie - ib;
        for (std::size_t r0 = 0; r0 < rows; r0 += strip_depth) {
            const std::size_t depth = rows - r0 < strip_depth ? rows - r0 : strip_depth;
            // Group by group, each row's tile_rows values adjacent in both: loops the compiler turns into
            // conversions of whole registers (the copies were a third of the products' time element by element).
            for (std::size_t i = 0; i < rows_of_i; i += tile_rows) {
                double* group = xi + i * strip_depth;
                const float* column = x + r0 * x_stride + ib + i;
                if (rows_of_i - i >= tile_rows) {
                    for (std::size_t r = 0; r < depth; ++r)
                        for (std::size_t g = 0; g < tile_rows; ++g)
                            group[r * tile_rows + g] = static_cast<double>(column[r * x_stride + g]);
                } else {
                    for (std::size_t r = 0; r < depth; ++r)
                        for (std::size_t g = 0; g < rows_of_i - i; ++g)
                            group[r * tile_rows + g] = static_cast<double>(column[r * x_stride + g]);
                }
            }
            for (std::size_t jb = j0; jb < j1; jb += width) {
                const std::size_t cols = j1 - jb < width ? j1 - jb : width;
                for (std::size_t r = 0; r < depth; ++r) {
                    const float* row = x + (r0 + r) * x_stride + jb;
                    double* out = xj + r * width;
                    if (cols == width) {
                        for (std::size_t j = 0; j < width; ++j) out[j] = static_cast<double>(row[j]);
                    } else {
                        for (std::size_t j = 0; j < cols; ++j) out[j] = static_cast<double>(row[j]);
                        for (std::size_t j = cols; j < width; ++j) out[j] = 0.0;
                    }
                }
                double* hb = h + ib * h_stride + jb;
                if (cols == width) {
                    column_block<Isa, vectors>(hb, h_stride, rows_of_i, xi, xj, width, depth);
                    continue;
                }
                // The last columns: as few registers as cover them, through a padded copy of H's rows so
                // that no load or store passes the tile's end (the padding's lanes are dropped).
                const std::size_t used = (cols + lanes - 1) / lanes;
                for (std::size_t i = 0; i < rows_of_i; i += tile_rows) {
                    const std::size_t group = rows_of_i - i < tile_rows ? rows_of_i - i : tile_rows;
                    for (std::size_t g = 0; g < group; ++g)
                        for (std::size_t j = 0; j < width; ++j) edge[g * width + j] = j < cols ? hb[(i + g) * h_stride + j] : 0.0;
                    const double* xg = xi + i * strip_depth;
                    if (used == 1)
                        tile_of<Isa, 1>(group, edge, width, xg, xj, width, depth);
                    else if (used == 2)
                        tile_of<Isa, 2>(group, edge, width, xg, xj, width, depth);
                    else if (used == 3)
                        tile_of<Isa, (vectors >= 3 ? 3 : vectors)>(group, edge, width, xg, xj, width, depth);
                    else
                        tile_of<Isa, vectors>(group, edge, width, xg, xj, width, depth);
                    for (std::size_t g = 0; g < group; ++g)
                        for (std::size_t j = 0; j < cols; ++j) hb[(i + g) * h_stride + j] = edge[g * width + j];
                }
            }
        }
    }
}

}  // namespace detail::second_moments

COGQAT_STRICT_FP_END

/// Fills the second-moment kernel.
template <class Isa>
void add_second_moment_kernels(dispatch::kernel_table& t) {
    t.matrix.second_moments_f64 = &detail::second_moments::second_moments_f64<Isa>;
}

}  // namespace cogqat::simd
