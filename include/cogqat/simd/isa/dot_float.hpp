#pragma once
// Dot products of a stored row with float activations on the SIMD backend: each batch of weights is decoded
// in registers (the dequantizers' arithmetic) and multiplied into running sums, with no row of floats in
// memory. The sums run in another order than the reference's, and with fused multiply-adds: results agree
// with vec_dot_float within a float error bound, not bit for bit.
//
// Include only in a unit compiled for the tag's instruction set (simd/isa/register.hpp does).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/format/block_format.hpp"
#include "cogqat/format/k_formats.hpp"
#include "cogqat/format/legacy_formats.hpp"
#include "cogqat/format/table_formats.hpp"
#include "cogqat/simd/isa/baseline_call.hpp"
#include "cogqat/simd/isa/convert.hpp"
#include "cogqat/simd/isa/isa.hpp"
#include "cogqat/simd/isa/table_levels.hpp"
#include "cogqat/simd/isa/unpack.hpp"
#include "cogqat/simd/unrolled.hpp"

namespace cogqat::simd {

template <class Isa, BlockFormat F>
float dot_float_row(const std::byte* w, const float* x, std::size_t n) noexcept {
    using fb = float_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    alignas(64) std::uint8_t levels[F::block_size];
    fb sum(0.0f);
    for (std::size_t b = 0; b < n / F::block_size; ++b) {
        const std::byte* block = w + b * F::type_size;
        const float* xb = x + b * F::block_size;
        unpack_levels<Isa, F>(block, levels);
        for (std::size_t sub = 0; sub < F::block_size / F::sub_block_size; ++sub) {
            const affine_scale s = sub_block_scale<Isa, F>(block, sub);
            // sum += scale * (level·x) - min * Σx over the sub-block: two multiplies per sub-block, not per value.
            fb products(0.0f), activations(0.0f);
            for (std::size_t j = 0; j < F::sub_block_size; j += lanes) {
                const std::size_t i = sub * F::sub_block_size + j;
                const fb xv = fb::load_unaligned(xb + i);
                products = xsimd::fma(levels_to_float<Isa, F::signed_levels>(levels + i, F::level_offset), xv, products);
                if constexpr (F::has_min) activations = activations + xv;
            }
            sum = xsimd::fma(fb(s.scale), products, sum);
            if constexpr (F::has_min) sum = xsimd::fnma(fb(s.min), activations, sum);
        }
    }
    return xsimd::hadd(sum);
}

/// A table format's rows: per sub-block the table entries times x, then times the sub-block's scale.
template <class Isa, SimdTableFormat F>
float dot_float_table_row(const std::byte* w, const float* x, std::size_t n) noexcept {
    using fb = float_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    alignas(64) std::int8_t values[F::block_size];
    fb sum(0.0f);
    for (std::size_t b = 0; b < n / F::block_size; ++b) {
        const std::byte* block = w + b * F::type_size;
        const float* xb = x + b * F::block_size;
        unpack_table_values<Isa, F>(block, values);
        for (std::size_t sub = 0; sub < F::block_size / F::sub_block_size; ++sub) {
            fb products(0.0f);
            for (std::size_t j = 0; j < F::sub_block_size; j += lanes) {
                const std::size_t i = sub * F::sub_block_size + j;
                const auto* level = reinterpret_cast<const std::uint8_t*>(values + i);
                products = xsimd::fma(levels_to_float<Isa, true>(level, 0), fb::load_unaligned(xb + i), products);
            }
            sum = xsimd::fma(fb(table_scale<Isa, F>(block, sub, 1.0f)), products, sum);
        }
    }
    return xsimd::hadd(sum);
}

/// One register of an f32, f16 or bf16 row from element i on, as floats.
template <class Isa, ggml_type Type>
float_batch<Isa> load_float_elements(const std::byte* w, std::size_t i) noexcept {
    using fb = float_batch<Isa>;
    if constexpr (Type == ggml_type::f32)
        return fb::load_unaligned(reinterpret_cast<const float*>(w + 4 * i));
    else if constexpr (Type == ggml_type::f16)
        return fp16_to_float<Isa>(w + 2 * i);
    else
        return bf16_to_float<Isa>(w + 2 * i);
}

/// How every f32/f16/bf16 dot product ends, whatever computed its four partial sums `s` over the first
/// `from` elements (a multiple of 4 registers): the remaining whole registers go into s[0], the four
/// meet, and the last elements add one by one. Sharing this is what makes every tiling give the bits
/// of the single dot product.
template <class Isa, ggml_type Type>
float finish_float_elements(const std::byte* w, const float* x, std::size_t from, std::size_t n, float_batch<Isa> (&s)[4]) noexcept {
    using fb = float_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    std::size_t i = from;
    for (; i + lanes <= n; i += lanes) s[0] = xsimd::fma(load_float_elements<Isa, Type>(w, i), fb::load_unaligned(x + i), s[0]);
    float out = xsimd::hadd((s[0] + s[1]) + (s[2] + s[3]));
    for (; i < n; ++i) {
        float value;
        if constexpr (Type == ggml_type::f32) {
            std::memcpy(&value, w + 4 * i, 4);
        } else {
            std::uint16_t bits;
            std::memcpy(&bits, w + 2 * i, 2);
            value = Type == ggml_type::f16 ? fp16_bits_to_fp32(bits) : bf16_bits_to_fp32(bits);
        }
        out += value * x[i];
    }
    return out;
}

/// f32, f16 and bf16 rows against `Vectors` activation vectors: each row register is converted once and
/// multiplied into every vector's sums. Four independent sums per vector hide the latency of the fused
/// multiply-add; each vector's float is that of the row alone with it, whatever `Vectors` is.
template <class Isa, ggml_type Type, std::size_t Vectors>
void dot_float_elements_vectors(const std::byte* w, const float* const* x, std::size_t n, float* out) noexcept {
    using fb = float_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    auto load = [&](std::size_t i) { return load_float_elements<Isa, Type>(w, i); };
    auto each = [](auto&& f) { unrolled<Vectors>(f); };
    fb s[Vectors][4];
    each([&](auto v) { s[v][0] = s[v][1] = s[v][2] = s[v][3] = fb(0.0f); });
    std::size_t i = 0;
    for (; i + 4 * lanes <= n; i += 4 * lanes) {
        const fb w0 = load(i), w1 = load(i + lanes), w2 = load(i + 2 * lanes), w3 = load(i + 3 * lanes);
        each([&](auto v) {
            const float* xv = x[v];
            s[v][0] = xsimd::fma(w0, fb::load_unaligned(xv + i), s[v][0]);
            s[v][1] = xsimd::fma(w1, fb::load_unaligned(xv + i + lanes), s[v][1]);
            s[v][2] = xsimd::fma(w2, fb::load_unaligned(xv + i + 2 * lanes), s[v][2]);
            s[v][3] = xsimd::fma(w3, fb::load_unaligned(xv + i + 3 * lanes), s[v][3]);
        });
    }
    each([&](auto v) { out[v] = finish_float_elements<Isa, Type>(w, x[v], i, n, s[v]); });
}

template <class Isa, ggml_type Type>
float dot_float_elements(const std::byte* w, const float* x, std::size_t n) noexcept {
    float out = 0.0f;
    dot_float_elements_vectors<Isa, Type, 1>(w, &x, n, &out);
    return out;
}

/// One f32/f16/bf16 row against 1 to 4 float vectors, out[v] equal to dot_float(w, x[v], n) bit for bit.
template <class Isa, ggml_type Type>
void dot_float_elements_few(const std::byte* w, const float* const* x, std::size_t vectors, std::size_t n, float* out) noexcept {
    switch (vectors) {
        case 4:
            dot_float_elements_vectors<Isa, Type, 4>(w, x, n, out);
            break;
        case 3:
            dot_float_elements_vectors<Isa, Type, 3>(w, x, n, out);
            break;
        case 2:
            dot_float_elements_vectors<Isa, Type, 2>(w, x, n, out);
            break;
        default:
            dot_float_elements_vectors<Isa, Type, 1>(w, x, n, out);
            break;
    }
}

/// `Rows` rows (`row_bytes` apart) times `Vectors` vectors with each register load feeding several
/// sums: the tile holds one of the four partial sums of every pair at a time, so the registers go to
/// rows × vectors and not to the four. The four take turns over chunks short enough that the chunk's
/// rows and vectors stay in L1 for all four. Each partial sum takes the same terms in the same order as
/// in dot_float_elements_vectors, so every pair ends with the single dot product's bits.
template <class Isa, ggml_type Type, std::size_t Vectors, std::size_t Rows>
void dot_float_elements_tile(const std::byte* w, std::size_t row_bytes, const float* const* x, std::size_t n, float* y,
                             std::size_t y_stride) noexcept {
    using fb = float_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>, step = 4 * lanes, chunk = 16 * step;
    const std::size_t whole = n / step * step;
    fb partial[Vectors][Rows][4];
    unrolled<Vectors>([&](auto v) { unrolled<Rows>([&](auto r) { unrolled<4>([&](auto part) { partial[v][r][part] = fb(0.0f); }); }); });
    for (std::size_t start = 0; start < whole; start += chunk) {
        const std::size_t stop = whole - start < chunk ? whole : start + chunk;
        for (std::size_t part = 0; part < 4; ++part) {
            fb sum[Vectors][Rows];
            unrolled<Vectors>([&](auto v) { unrolled<Rows>([&](auto r) { sum[v][r] = partial[v][r][part]; }); });
            for (std::size_t i = start + part * lanes; i < stop; i += step) {
                fb row[Rows];
                unrolled<Rows>([&](auto r) { row[r] = load_float_elements<Isa, Type>(w + r * row_bytes, i); });
                unrolled<Vectors>([&](auto v) {
                    const fb xv = fb::load_unaligned(x[v] + i);
                    unrolled<Rows>([&](auto r) { sum[v][r] = xsimd::fma(row[r], xv, sum[v][r]); });
                });
            }
            unrolled<Vectors>([&](auto v) { unrolled<Rows>([&](auto r) { partial[v][r][part] = sum[v][r]; }); });
        }
    }
    unrolled<Vectors>([&](auto v) {
        unrolled<Rows>(
                [&](auto r) { y[v * y_stride + r] = finish_float_elements<Isa, Type>(w + r * row_bytes, x[v], whole, n, partial[v][r]); });
    });
}

/// `rows` f32/f16/bf16 rows (`row_bytes` apart) against `vectors` float vectors (simd::gemm's prompts):
/// y[v * y_stride + r] equal to dot_float(w + r * row_bytes, x[v], n) bit for bit. Tiles of vectors ×
/// rows sized to the register file; vectors outer, so a tile's vectors stay in L1 while the rows pass.
template <class Isa, ggml_type Type>
void dot_float_elements_block(const std::byte* w, std::size_t row_bytes, std::size_t rows, const float* const* x, std::size_t vectors,
                              std::size_t n, float* y, std::size_t y_stride) noexcept {
    // 32 registers take a 4 × 4 tile with its row and vector loads; 16 take 2 × 4.
    constexpr std::size_t tile_vectors = float_lanes<Isa> >= 16 ? 4 : 2, tile_rows = 4;
    for (std::size_t v = 0; v < vectors; v += tile_vectors) {
        const std::size_t count = vectors - v < tile_vectors ? vectors - v : tile_vectors;
        std::size_t r = 0;
        if (count == tile_vectors)
            for (; r + tile_rows <= rows; r += tile_rows)
                dot_float_elements_tile<Isa, Type, tile_vectors, tile_rows>(w + r * row_bytes, row_bytes, x + v, n, y + v * y_stride + r,
                                                                            y_stride);
        for (; r < rows; ++r) {
            float out[tile_vectors];
            dot_float_elements_few<Isa, Type>(w + r * row_bytes, x + v, count, n, out);
            for (std::size_t k = 0; k < count; ++k) y[(v + k) * y_stride + r] = out[k];
        }
    }
}

/// Fills the dot_float entries of every weight type.
template <class Isa>
void add_float_dot_kernels(dispatch::kernel_table& t) {
    using namespace formats;
    t[ggml_type::f32].dot_float = &dot_float_elements<Isa, ggml_type::f32>;
    t[ggml_type::f16].dot_float = &dot_float_elements<Isa, ggml_type::f16>;
    t[ggml_type::bf16].dot_float = &dot_float_elements<Isa, ggml_type::bf16>;
    t[ggml_type::f32].dot_float_block = &dot_float_elements_block<Isa, ggml_type::f32>;
    t[ggml_type::f16].dot_float_block = &dot_float_elements_block<Isa, ggml_type::f16>;
    t[ggml_type::bf16].dot_float_block = &dot_float_elements_block<Isa, ggml_type::bf16>;
    t[ggml_type::q4_0].dot_float = &dot_float_row<Isa, q4_0>;
    t[ggml_type::q4_1].dot_float = &dot_float_row<Isa, q4_1>;
    t[ggml_type::q5_0].dot_float = &dot_float_row<Isa, q5_0>;
    t[ggml_type::q5_1].dot_float = &dot_float_row<Isa, q5_1>;
    t[ggml_type::q8_0].dot_float = &dot_float_row<Isa, q8_0>;
    t[ggml_type::q2_K].dot_float = &dot_float_row<Isa, q2_K>;
    t[ggml_type::q3_K].dot_float = &dot_float_row<Isa, q3_K>;
    t[ggml_type::q4_K].dot_float = &dot_float_row<Isa, q4_K>;
    t[ggml_type::q5_K].dot_float = &dot_float_row<Isa, q5_K>;
    t[ggml_type::q6_K].dot_float = &dot_float_row<Isa, q6_K>;
    t[ggml_type::iq4_nl].dot_float = &dot_float_table_row<Isa, iq4_nl>;
    t[ggml_type::iq4_xs].dot_float = &dot_float_table_row<Isa, iq4_xs>;
    t[ggml_type::mxfp4].dot_float = &dot_float_table_row<Isa, mxfp4>;
    t[ggml_type::tq1_0].dot_float = &dot_float_table_row<Isa, tq1_0>;
    t[ggml_type::tq2_0].dot_float = &dot_float_table_row<Isa, tq2_0>;
}

}  // namespace cogqat::simd
