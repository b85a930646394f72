#pragma once
// Dot products of one quantized row with an activation vector, as inference needs them:
//  - with float activations: dequantize block by block and accumulate;
//  - with activations quantized to ggml's partner type (q8_0 / q8_1 for the 32-value formats, q8_K for the
//    K formats, as llama.cpp's CPU backend does): integer sums per sub-block, scaled once per sub-block.
// One scalar reference over the format traits serves every affine format and one every table-decoded
// format; SIMD versions are checked against them.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/float16.hpp"
#include "cogqat/core/little_endian.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/format/block_format.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/format/iq_formats.hpp"
#include "cogqat/format/iq_vec_dot.hpp"
#include "cogqat/format/k_formats.hpp"
#include "cogqat/format/legacy_formats.hpp"
#include "cogqat/format/table_format.hpp"
#include "cogqat/format/table_formats.hpp"

namespace cogqat {

/// The type llama.cpp's CPU backend quantizes activations to before a dot product with `weights`.
[[nodiscard]] constexpr ggml_type activation_type_for(ggml_type weights) noexcept {
    switch (weights) {
        case ggml_type::q4_0:
        case ggml_type::q5_0:
        case ggml_type::q8_0:
        case ggml_type::iq4_nl:
        case ggml_type::mxfp4:
            return ggml_type::q8_0;
        case ggml_type::q4_1:
        case ggml_type::q5_1:
            return ggml_type::q8_1;
        case ggml_type::q2_K:
        case ggml_type::q3_K:
        case ggml_type::q4_K:
        case ggml_type::q5_K:
        case ggml_type::q6_K:
        case ggml_type::iq4_xs:
        case ggml_type::tq1_0:
        case ggml_type::tq2_0:
        case ggml_type::iq2_xxs:
        case ggml_type::iq2_xs:
        case ggml_type::iq2_s:
        case ggml_type::iq3_xxs:
        case ggml_type::iq3_s:
        case ggml_type::iq1_s:
        case ggml_type::iq1_m:
            return ggml_type::q8_K;
        case ggml_type::f16:
            return ggml_type::f16;
        case ggml_type::bf16:
            return ggml_type::bf16;
        default:
            return ggml_type::f32;
    }
}

COGQAT_STRICT_FP_BEGIN

namespace detail {

/// Σ over one block: weights of format W against activations already quantized to format A (same block
/// size, or A's block spanning W's). value_w = sw * (Lw - off) - mw per sub-block, value_a = da * qa.
template <BlockFormat W, BlockFormat A>
float block_dot(const std::byte* w, const std::byte* a, std::size_t a_offset) noexcept {
    static_assert(A::signed_levels && !A::has_min && A::sub_block_size == A::block_size);
    const float da = A::sub_block_scale(a, 0).scale;
    float sum = 0.0f;
    for (std::size_t sub = 0; sub < W::block_size / W::sub_block_size; ++sub) {
        const affine_scale sw = W::sub_block_scale(w, sub);
        int products = 0, activations = 0;
        for (std::size_t j = 0; j < W::sub_block_size; ++j) {
            const std::size_t i = sub * W::sub_block_size + j;
            const int qa = stored_level<A>(a, a_offset + i);
            products += (stored_level<W>(w, i) - W::level_offset) * qa;
            activations += qa;
        }
        sum += da * (sw.scale * static_cast<float>(products));
        if constexpr (W::has_min) sum -= da * (sw.min * static_cast<float>(activations));
    }
    return sum;
}

}  // namespace detail

/// Dot product of `n` weights stored as format W with activations stored as format A (A = q8_0/q8_1 for
/// 32-value W, q8_K for 256-value W).
template <BlockFormat W, BlockFormat A>
[[nodiscard]] float vec_dot_quantized(std::span<const std::byte> weights, std::span<const std::byte> activations, std::size_t n) noexcept {
    static_assert(A::block_size % W::block_size == 0);
    float sum = 0.0f;
    for (std::size_t b = 0; b < n / W::block_size; ++b) {
        const std::size_t first = b * W::block_size;
        const std::size_t a_block = first / A::block_size;
        sum += detail::block_dot<W, A>(weights.data() + b * W::type_size, activations.data() + a_block * A::type_size,
                                       first % A::block_size);
    }
    return sum;
}

/// Dot product of `n` weights stored as table format W with activations of its partner A (q8_0 for 32-value
/// W, q8_K for 256-value W): per sub-block the integer sum of table entry times activation level, scaled by
/// (weight scale x activation scale) and added to one running sum, the order of ggml's generic CPU code.
template <TableFormat W, BlockFormat A>
[[nodiscard]] float vec_dot_table(std::span<const std::byte> weights, std::span<const std::byte> activations, std::size_t n) noexcept {
    static_assert(A::block_size == W::block_size && A::signed_levels && !A::has_min && A::sub_block_size == A::block_size);
    float sum = 0.0f;
    for (std::size_t b = 0; b < n / W::block_size; ++b) {
        const std::byte* w = weights.data() + b * W::type_size;
        const std::byte* a = activations.data() + b * A::type_size;
        const float da = A::sub_block_scale(a, 0).scale;
        for (std::size_t sub = 0; sub < W::block_size / W::sub_block_size; ++sub) {
            int products = 0;
            for (std::size_t j = 0; j < W::sub_block_size; ++j) {
                const std::size_t i = sub * W::sub_block_size + j;
                products += W::values[W::index_at(w, i)] * stored_level<A>(a, i);
            }
            sum += W::scale(w, sub, da) * static_cast<float>(products);
        }
    }
    return sum;
}

/// Dot product of one row of `type` with float activations: decode and accumulate, block by block.
/// Eight running sums, added pairwise at the end: an order fixed in the code (so results do not depend on
/// compiler flags) that the compiler can still keep in vector registers.
[[nodiscard]] inline float vec_dot_f32(const std::byte* row, const float* x, std::size_t n) noexcept {
    constexpr std::size_t lanes = 8;
    float partial[lanes] = {};
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes)
        for (std::size_t k = 0; k < lanes; ++k) partial[k] += load_le<float>(row + 4 * (i + k)) * x[i + k];
    for (; i < n; ++i) partial[0] += load_le<float>(row + 4 * i) * x[i];
    for (std::size_t width = lanes / 2; width > 0; width /= 2)
        for (std::size_t k = 0; k < width; ++k) partial[k] += partial[k + width];
    return partial[0];
}

[[nodiscard]] inline float vec_dot_float(ggml_type type, std::span<const std::byte> row, std::span<const float> x,
                                         std::vector<float>& scratch) {
    if (type == ggml_type::f32 && row.size() == 4 * x.size()) return vec_dot_f32(row.data(), x.data(), x.size());
    scratch.resize(x.size());
    dequantize(type, row, scratch);
    float sum = 0.0f;
    for (std::size_t i = 0; i < x.size(); ++i) sum += scratch[i] * x[i];
    return sum;
}

COGQAT_STRICT_FP_END

/// A dot product kernel picked at run time for a weight type: row bytes x quantized activations.
using quantized_dot_fn = float (*)(std::span<const std::byte>, std::span<const std::byte>, std::size_t);

[[nodiscard]] inline quantized_dot_fn quantized_dot_for(ggml_type weights) {
    using namespace formats;
    switch (weights) {
        case ggml_type::q4_0:
            return &vec_dot_quantized<q4_0, q8_0>;
        case ggml_type::q5_0:
            return &vec_dot_quantized<q5_0, q8_0>;
        case ggml_type::q8_0:
            return &vec_dot_quantized<q8_0, q8_0>;
        case ggml_type::q4_1:
            return &vec_dot_quantized<q4_1, q8_1>;
        case ggml_type::q5_1:
            return &vec_dot_quantized<q5_1, q8_1>;
        case ggml_type::q2_K:
            return &vec_dot_quantized<q2_K, q8_K>;
        case ggml_type::q3_K:
            return &vec_dot_quantized<q3_K, q8_K>;
        case ggml_type::q4_K:
            return &vec_dot_quantized<q4_K, q8_K>;
        case ggml_type::q5_K:
            return &vec_dot_quantized<q5_K, q8_K>;
        case ggml_type::q6_K:
            return &vec_dot_quantized<q6_K, q8_K>;
        case ggml_type::iq4_nl:
            return &vec_dot_table<iq4_nl, q8_0>;
        case ggml_type::mxfp4:
            return &vec_dot_table<mxfp4, q8_0>;
        case ggml_type::iq4_xs:
            return &vec_dot_table<iq4_xs, q8_K>;
        case ggml_type::tq1_0:
            return &vec_dot_table<tq1_0, q8_K>;
        case ggml_type::tq2_0:
            return &vec_dot_table<tq2_0, q8_K>;
        case ggml_type::iq2_xxs:
            return &vec_dot_iq_q8_K<iq2_xxs>;
        case ggml_type::iq2_xs:
            return &vec_dot_iq_q8_K<iq2_xs>;
        case ggml_type::iq2_s:
            return &vec_dot_iq_q8_K<iq2_s>;
        case ggml_type::iq3_xxs:
            return &vec_dot_iq_q8_K<iq3_xxs>;
        case ggml_type::iq3_s:
            return &vec_dot_iq_q8_K<iq3_s>;
        case ggml_type::iq1_s:
            return &vec_dot_iq_q8_K<iq1_s>;
        case ggml_type::iq1_m:
            return &vec_dot_iq_q8_K<iq1_m>;
        default:
            throw invalid_argument_error("no quantized dot product for " + std::string(info(weights).name));
    }
}

}  // namespace cogqat
