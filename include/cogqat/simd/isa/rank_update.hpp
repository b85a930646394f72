#pragma once
// GPTQ's deferred column updates (quant/gptq.hpp) on double lanes: w[r][k] -= e[r][j] u[j][k] for the j of a
// finished block, ascending, every later k. The reference loads and stores w for every j, so it runs at the
// speed of its stores; here a tile of w (tile_rows rows by tile_vectors registers of k) stays in registers
// across the whole j range, each u[j] segment is loaded once for the tile's rows, and e[r][j] is broadcast.
// Lanes are distinct k and rows distinct r, and every element still takes its updates one j at a time in
// ascending order, each a rounded product then a rounded difference, so the bits are the reference's. A
// strip of u (tile_vectors registers wide, up to strip_depth rows of j) is first copied into a contiguous
// buffer that every tile of rows then reads from L1: read in place, u's rows are a multiple of 4 KB apart at a
// model's widths (2,048 and 5,632 doubles), so a strip falls into a few cache sets and comes from L2 again
// for each tile (in place was 25% slower on AVX2, 5-15% on AVX-512, Zen 5 at 1,024 to 5,632 columns).
//
// Include only in a unit compiled for the tag's instruction set (simd/isa/register.hpp does).

#include <cstddef>

#include "cogqat/core/strict_fp.hpp"
#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/simd/isa/isa.hpp"
#include "cogqat/simd/isa/strict_unrolled.hpp"

namespace cogqat::simd {

// GCC fuses `acc - e * u` into an FMA, across intrinsics, under -mfma and its default -ffp-contract=fast:
// one rounding instead of the reference's two.
COGQAT_STRICT_FP_BEGIN

namespace detail::rank_update {

template <class Isa>
using double_batch = batch<double, Isa>;

/// Registers of k per tile (columns of w).
template <class Isa>
inline constexpr std::size_t tile_vectors = tile_registers_per_row<Isa>;
/// j rows of the copied strip (GPTQ's block of columns): 128 x 32 doubles is AVX-512's 32 KB.
inline constexpr std::size_t strip_depth = 128;

/// Rows x Vectors registers of w at column k, updated by j = j0 .. j1 - 1 with u's strip at `strip` (row j at
/// strip + (j - j0) * strip_stride, its column k at offset 0).
template <class Isa, std::size_t Rows, std::size_t Vectors>
void tile(double* w, std::size_t w_stride, const double* e, std::size_t e_stride, const double* strip, std::size_t strip_stride,
          std::size_t depth) noexcept {
    using db = double_batch<Isa>;
    constexpr std::size_t lanes = db::size;
    db acc[Rows][Vectors];
    strict_unrolled<Isa, Rows>(
            [&](auto r) { strict_unrolled<Isa, Vectors>([&](auto v) { acc[r][v] = db::load_unaligned(w + r * w_stride + v * lanes); }); });
    for (std::size_t j = 0; j < depth; ++j) {
        const double* uj = strip + j * strip_stride;
        db uv[Vectors];
        strict_unrolled<Isa, Vectors>([&](auto v) { uv[v] = db::load_unaligned(uj + v * lanes); });
        strict_unrolled<Isa, Rows>([&](auto r) {
            const db er(e[r * e_stride + j]);
            strict_unrolled<Isa, Vectors>([&](auto v) { acc[r][v] = acc[r][v] - er * uv[v]; });
        });
    }
    strict_unrolled<Isa, Rows>(
            [&](auto r) { strict_unrolled<Isa, Vectors>([&](auto v) { acc[r][v].store_unaligned(w + r * w_stride + v * lanes); }); });
}

/// Every row of w over Vectors registers at column k, tiles of tile_rows rows then the last 1 to 3.
template <class Isa, std::size_t Vectors>
void strip_rows(double* w, std::size_t w_stride, std::size_t rows, const double* e, std::size_t e_stride, const double* strip,
                std::size_t strip_stride, std::size_t depth) noexcept {
    std::size_t r = 0;
    for (; r + tile_rows <= rows; r += tile_rows)
        tile<Isa, tile_rows, Vectors>(w + r * w_stride, w_stride, e + r * e_stride, e_stride, strip, strip_stride, depth);
    double* wr = w + r * w_stride;
    const double* er = e + r * e_stride;
    switch (rows - r) {
        case 3:
            tile<Isa, 3, Vectors>(wr, w_stride, er, e_stride, strip, strip_stride, depth);
            break;
        case 2:
            tile<Isa, 2, Vectors>(wr, w_stride, er, e_stride, strip, strip_stride, depth);
            break;
        case 1:
            tile<Isa, 1, Vectors>(wr, w_stride, er, e_stride, strip, strip_stride, depth);
            break;
        default:
            break;
    }
}

/// Asks for the next strip's segment of one row of u (`count` doubles at p) to come into L2 while the tiles
/// work on this one: 128 rows, a few lines each, far apart, that no hardware prefetcher follows.
template <class Isa>
inline void prefetch_next(const double* p, std::size_t count) noexcept {
#if defined(__GNUC__)
    for (std::size_t i = 0; i < count; i += 8) __builtin_prefetch(p + i, 0, 2);
#else
    static_cast<void>(p), static_cast<void>(count);
#endif
}

template <class Isa>
void rank_update_f64(double* w, std::size_t w_stride, std::size_t rows, const double* e, std::size_t e_stride, const double* u,
                     std::size_t u_stride, std::size_t j0, std::size_t j1, std::size_t k0, std::size_t k1) noexcept {
    constexpr std::size_t lanes = double_batch<Isa>::size, vectors = tile_vectors<Isa>, width = vectors * lanes;
    alignas(64) double strip[strip_depth * width];
    for (std::size_t d0 = j0; d0 < j1; d0 += strip_depth) {
        const std::size_t depth = j1 - d0 < strip_depth ? j1 - d0 : strip_depth;
        const double* ed = e + (d0 - j0);
        std::size_t k = k0;
        for (; k + width <= k1; k += width) {
            const bool next = k + 2 * width <= k1;
            for (std::size_t j = 0; j < depth; ++j) {
                const double* uj = u + (d0 + j) * u_stride + k;
                for (std::size_t i = 0; i < width; ++i) strip[j * width + i] = uj[i];
                if (next) prefetch_next<Isa>(uj + width, width);
            }
            strip_rows<Isa, vectors>(w + k, w_stride, rows, ed, e_stride, strip, width, depth);
        }
        // The k tail: one register at a time from u in place, then lane by lane.
        for (; k + lanes <= k1; k += lanes) strip_rows<Isa, 1>(w + k, w_stride, rows, ed, e_stride, u + d0 * u_stride + k, u_stride, depth);
        for (; k < k1; ++k)
            for (std::size_t r = 0; r < rows; ++r) {
                double x = w[r * w_stride + k];
                for (std::size_t j = 0; j < depth; ++j) x = x - ed[r * e_stride + j] * u[(d0 + j) * u_stride + k];
                w[r * w_stride + k] = x;
            }
    }
}

}  // namespace detail::rank_update

COGQAT_STRICT_FP_END

/// Fills the dense linear-algebra kernels.
template <class Isa>
void add_matrix_kernels(dispatch::kernel_table& t) {
    t.matrix.rank_update_f64 = &detail::rank_update::rank_update_f64<Isa>;
}

}  // namespace cogqat::simd
