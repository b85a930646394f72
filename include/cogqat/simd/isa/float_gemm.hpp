#pragma once
// Float matrix products on float lanes (dispatch::matrix_kernels::gemm_f32): C = A·B or C += A·B for operands
// of any strides, what the training step's products and the float models' prompts run. Lanes are columns j of
// C: a tile of C (tile_rows rows by tile_vectors registers) stays in registers across a strip of p, each
// B(p, j) segment is loaded once for the tile's rows and A(i, p) is broadcast. B's strip is first copied into
// a contiguous buffer, which is also where a transposed B (a weight matrix stored by rows, for X·Wᵀ) is turned
// the right way round, so one loop serves all three of the training step's products (X·Wᵀ, dY·W, dYᵀ·X). Every
// element still takes its terms one p at a time in ascending order, whatever the tiling, so the result is the
// reference's (simd/float_gemm.hpp) bit for bit, and a row's values do not depend on how many rows there are.
//
// Include only in a unit compiled for the tag's instruction set (simd/isa/register.hpp does).

#include <cstddef>
#include <type_traits>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "cogqat/core/strict_fp.hpp"
#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/simd/isa/isa.hpp"
#include "cogqat/simd/isa/strict_unrolled.hpp"

namespace cogqat::simd {

// The unfused sets (SSE) must keep the product's rounding: GCC would otherwise contract `c + a * b` into an
// FMA under -ffp-contract=fast wherever the unit's flags allow one.
COGQAT_STRICT_FP_BEGIN

namespace detail::float_gemm {

template <class Isa>
using float_batch = batch<float, Isa>;

/// Whether the set multiplies and adds in one rounding: the FMA sets. (xsimd 8.1's fma is a fused instruction
/// on fma3<avx2> but the generic x * y + z on avx512bw, which this region keeps as two roundings, so AVX-512
/// calls the instruction itself; SSE 4.2 has none.)
template <class Isa>
inline constexpr bool fused =
#if XSIMD_WITH_AVX512BW
        std::is_same_v<typename Isa::arch, xsimd::avx512bw> ||
#endif
#if XSIMD_WITH_AVX2 && XSIMD_WITH_FMA3_AVX2
        std::is_same_v<typename Isa::arch, xsimd::fma3<xsimd::avx2>> ||
#endif
        false;

/// Registers of j per tile (columns of C).
template <class Isa>
inline constexpr std::size_t tile_vectors = tile_registers_per_row<Isa>;
/// p rows of the copied strip: 128 x 64 floats is 32 KB, AVX-512's strip in L1.
inline constexpr std::size_t strip_depth = 128;

template <class Isa>
inline float_batch<Isa> multiply_add(const float_batch<Isa>& a, const float_batch<Isa>& b, const float_batch<Isa>& c) noexcept {
#if XSIMD_WITH_AVX512BW
    if constexpr (std::is_same_v<typename Isa::arch, xsimd::avx512bw>)
        return _mm512_fmadd_ps(a, b, c);
    else
#endif
            if constexpr (fused<Isa>)
        return xsimd::fma(a, b, c);
    else
        return c + a * b;
}

/// Rows x Vectors registers of C (rows c_row apart), from C (`load`) or from zero, plus A(r, p) strip[p] for
/// p < depth: A's rows a_row apart and its p a_col apart, the strip's rows `Vectors` registers wide.
template <class Isa, std::size_t Rows, std::size_t Vectors>
void tile(float* c, std::size_t c_row, bool load, const float* a, std::size_t a_row, std::size_t a_col, const float* strip,
          std::size_t depth) noexcept {
    using fb = float_batch<Isa>;
    constexpr std::size_t lanes = fb::size;
    fb acc[Rows][Vectors];
    strict_unrolled<Isa, Rows>([&](auto r) {
        strict_unrolled<Isa, Vectors>([&](auto v) { acc[r][v] = load ? fb::load_unaligned(c + r * c_row + v * lanes) : fb(0.0f); });
    });
    for (std::size_t p = 0; p < depth; ++p) {
        const float* bp = strip + p * Vectors * lanes;
        fb bv[Vectors];
        strict_unrolled<Isa, Vectors>([&](auto v) { bv[v] = fb::load_aligned(bp + v * lanes); });
        strict_unrolled<Isa, Rows>([&](auto r) {
            const fb ar(a[r * a_row + p * a_col]);
            strict_unrolled<Isa, Vectors>([&](auto v) { acc[r][v] = multiply_add<Isa>(ar, bv[v], acc[r][v]); });
        });
    }
    strict_unrolled<Isa, Rows>(
            [&](auto r) { strict_unrolled<Isa, Vectors>([&](auto v) { acc[r][v].store_unaligned(c + r * c_row + v * lanes); }); });
}

/// The tile of `rows` (1 to tile_rows) rows at c.
template <class Isa, std::size_t Vectors>
void tile_of(std::size_t rows, float* c, std::size_t c_row, bool load, const float* a, std::size_t a_row, std::size_t a_col,
             const float* strip, std::size_t depth) noexcept {
    constexpr std::size_t vectors = Vectors;
    static_assert(tile_rows == 4);
    switch (rows) {
        case 4:
            tile<Isa, 4, vectors>(c, c_row, load, a, a_row, a_col, strip, depth);
            break;
        case 3:
            tile<Isa, 3, vectors>(c, c_row, load, a, a_row, a_col, strip, depth);
            break;
        case 2:
            tile<Isa, 2, vectors>(c, c_row, load, a, a_row, a_col, strip, depth);
            break;
        default:
            tile<Isa, 1, vectors>(c, c_row, load, a, a_row, a_col, strip, depth);
            break;
    }
}

/// Side of the squares that copy_strip transposes in registers: 8 x 8 on AVX's 8-float registers, else 4 x 4.
template <class Isa>
inline constexpr std::size_t transpose_side = register_bytes<Isa> >= 32 ? 8 : 4;

/// dst[c dst_stride + r] = src[r src_stride + c] for r, c < transpose_side: a square of a transposed B read along
/// its rows (B's columns) and written across the strip, in registers. Element by element, a transposed B's
/// strip was a load and a store per value, a tenth of the training step's time next to the tiles' quarter.
template <class Isa>
inline void transpose_square(const float* src, std::size_t src_stride, float* dst, std::size_t dst_stride) noexcept {
#if defined(__AVX__)
    if constexpr (transpose_side<Isa> == 8) {
        __m256 r[8], t[8];
        for (std::size_t i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * src_stride);
        for (std::size_t i = 0; i < 8; i += 2) t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]), t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
        for (std::size_t i = 0; i < 8; i += 4) {
            r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
            r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
            r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
            r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
        }
        // r[c] (rows 0-3) and r[c + 4] (rows 4-7) hold column c in their low halves, column c + 4 in the high.
        for (std::size_t c = 0; c < 4; ++c) {
            _mm256_storeu_ps(dst + c * dst_stride, _mm256_permute2f128_ps(r[c], r[c + 4], 0x20));
            _mm256_storeu_ps(dst + (c + 4) * dst_stride, _mm256_permute2f128_ps(r[c], r[c + 4], 0x31));
        }
        return;
    }
#endif
#if defined(__SSE2__)
    if constexpr (transpose_side<Isa> == 4) {
        __m128 r0 = _mm_loadu_ps(src), r1 = _mm_loadu_ps(src + src_stride), r2 = _mm_loadu_ps(src + 2 * src_stride),
               r3 = _mm_loadu_ps(src + 3 * src_stride);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
        _mm_storeu_ps(dst, r0), _mm_storeu_ps(dst + dst_stride, r1), _mm_storeu_ps(dst + 2 * dst_stride, r2),
                _mm_storeu_ps(dst + 3 * dst_stride, r3);
        return;
    }
#endif
    constexpr std::size_t side = transpose_side<Isa>;
    for (std::size_t r = 0; r < side; ++r)
        for (std::size_t c = 0; c < side; ++c) dst[c * dst_stride + r] = src[r * src_stride + c];
}

/// strip[p][j] = B(p0 + p, j0 + j) for p < depth, j < cols, and 0 for j in [cols, width). On the set's tag, as
/// everything here, so that no baseline caller links this set's copy (scripts/check_isa_symbols.sh); plain
/// loops rather than std::copy and std::fill for the same reason.
template <class Isa>
void copy_strip(const dispatch::f32_product& q, std::size_t p0, std::size_t depth, std::size_t j0, std::size_t cols, std::size_t width,
                float* strip) noexcept {
    if (q.b_col == 1) {
        for (std::size_t p = 0; p < depth; ++p) {
            const float* bp = q.b + (p0 + p) * q.b_row + j0;
            float* sp = strip + p * width;
            for (std::size_t j = 0; j < cols; ++j) sp[j] = bp[j];
            for (std::size_t j = cols; j < width; ++j) sp[j] = 0.0f;
        }
        return;
    }
    // A transposed B (columns adjacent in memory down p): read each column along p, write across the strip,
    // squares of side x side values at a time where the columns are contiguous.
    std::size_t j = 0;
    if (q.b_row == 1) {
        constexpr std::size_t side = transpose_side<Isa>;
        for (; j + side <= cols; j += side) {
            const float* bj = q.b + (j0 + j) * q.b_col + p0;
            std::size_t p = 0;
            for (; p + side <= depth; p += side) transpose_square<Isa>(bj + p, q.b_col, strip + p * width + j, width);
            for (; p < depth; ++p)
                for (std::size_t c = 0; c < side; ++c) strip[p * width + j + c] = bj[c * q.b_col + p];
        }
    }
    for (; j < cols; ++j) {
        const float* bj = q.b + (j0 + j) * q.b_col + p0 * q.b_row;
        for (std::size_t p = 0; p < depth; ++p) strip[p * width + j] = bj[p * q.b_row];
    }
    for (std::size_t p = 0; p < depth; ++p)
        for (std::size_t j = cols; j < width; ++j) strip[p * width + j] = 0.0f;
}

/// Columns [j0, j0 + cols) of C over the strip of p0 .. p0 + depth, `Vectors` registers wide (cols at most that):
/// B's strip copied, then every tile of rows; where cols is less than the width, a tile's rows go through `edge`.
template <class Isa, std::size_t Vectors>
void column_block(const dispatch::f32_product& q, std::size_t p0, std::size_t depth, std::size_t j0, std::size_t cols, float* strip,
                  float* edge) noexcept {
    constexpr std::size_t width = Vectors * float_batch<Isa>::size;
    const bool load = q.accumulate || p0 > 0;
    const float* a = q.a + p0 * q.a_col;
    copy_strip<Isa>(q, p0, depth, j0, cols, width, strip);
    for (std::size_t i = 0; i < q.m; i += tile_rows) {
        const std::size_t rows = q.m - i < tile_rows ? q.m - i : tile_rows;
        float* c = q.c + i * q.c_row + j0;
        if (cols == width) {
            tile_of<Isa, Vectors>(rows, c, q.c_row, load, a + i * q.a_row, q.a_row, q.a_col, strip, depth);
            continue;
        }
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t j = 0; j < width; ++j) edge[r * width + j] = load && j < cols ? c[r * q.c_row + j] : 0.0f;
        tile_of<Isa, Vectors>(rows, edge, width, true, a + i * q.a_row, q.a_row, q.a_col, strip, depth);
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t j = 0; j < cols; ++j) c[r * q.c_row + j] = edge[r * width + j];
    }
}

template <class Isa>
void gemm_f32(const dispatch::f32_product& q) noexcept {
    constexpr std::size_t lanes = float_batch<Isa>::size, vectors = tile_vectors<Isa>, width = vectors * lanes;
    static_assert(vectors >= 2 && vectors <= 4);
    if (q.m == 0 || q.n == 0) return;
    if (q.k == 0) {
        if (!q.accumulate)
            for (std::size_t i = 0; i < q.m; ++i)
                for (std::size_t j = 0; j < q.n; ++j) q.c[i * q.c_row + j] = 0.0f;
        return;
    }
    alignas(64) float strip[strip_depth * width];
    alignas(64) float edge[tile_rows * width];
    for (std::size_t p0 = 0; p0 < q.k; p0 += strip_depth) {
        const std::size_t depth = q.k - p0 < strip_depth ? q.k - p0 : strip_depth;
        for (std::size_t j0 = 0; j0 < q.n; j0 += width) {
            const std::size_t cols = q.n - j0 < width ? q.n - j0 : width;
            // The last columns take as few registers as cover them: a head's 8 columns are one register of
            // AVX-512, not four of which seven eighths are padding.
            switch ((cols + lanes - 1) / lanes) {
                case 1:
                    column_block<Isa, 1>(q, p0, depth, j0, cols, strip, edge);
                    break;
                case 2:
                    column_block<Isa, 2>(q, p0, depth, j0, cols, strip, edge);
                    break;
                case 3:
                    column_block<Isa, (vectors >= 3 ? 3 : vectors)>(q, p0, depth, j0, cols, strip, edge);
                    break;
                default:
                    column_block<Isa, vectors>(q, p0, depth, j0, cols, strip, edge);
                    break;
            }
        }
    }
}

}  // namespace detail::float_gemm

COGQAT_STRICT_FP_END

/// Fills the float product kernel.
template <class Isa>
void add_float_gemm_kernels(dispatch::kernel_table& t) {
    t.matrix.gemm_f32 = &detail::float_gemm::gemm_f32<Isa>;
    t.matrix.gemm_f32_fused = detail::float_gemm::fused<Isa>;
}

}  // namespace cogqat::simd
