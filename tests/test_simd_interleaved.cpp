// Interleaved matrices (simd/interleaved.hpp): the layout against the rows it came from, every instruction
// set's kernel against the reference arithmetic bit for bit, products against exact sums, and bad input.

#include <cogqat/cogqat.hpp>
#include <cogqat/format/activation_quantize.hpp>
#include <cogqat/simd/interleaved.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "linked_isas.hpp"
#include "random_data.hpp"

using namespace cogqat;
using cogqat::test::gaussian_values;
using cogqat::test::laplace_with_outliers;

namespace {
namespace interleaved_test {

struct shape {
    std::size_t rows, cols;
};
const shape shapes[] = {{1, 32}, {15, 64}, {16, 96}, {17, 32}, {40, 1024}, {33, 2816}};

template <BlockFormat W>
std::vector<std::byte> random_matrix(const shape& s, std::uint64_t seed) {
    return quantize(W::type, gaussian_values(s.rows * s.cols, seed, 0.05));
}

/// The exact product of one row with q8_0 activations, in double: what every float order approximates.
/// `magnitude` receives the sum of the terms' absolute values, the scale of the rounding error.
template <BlockFormat W>
double exact_row(const std::byte* row, const std::byte* act, std::size_t cols, double& magnitude) {
    double total = 0.0;
    magnitude = 0.0;
    for (std::size_t b = 0; b < cols / 32; ++b) {
        const std::byte* wb = row + b * W::type_size;
        const std::byte* ab = act + b * formats::q8_0::type_size;
        long sum = 0;
        for (std::size_t i = 0; i < 32; ++i)
            sum += static_cast<long>(stored_level<W>(wb, i) - W::level_offset) * stored_level<formats::q8_0>(ab, i);
        const double term = static_cast<double>(W::sub_block_scale(wb, 0).scale) * formats::q8_0::sub_block_scale(ab, 0).scale *
                            static_cast<double>(sum);
        total += term;
        magnitude += std::abs(term);
    }
    return total;
}

std::vector<std::string_view> isas_with_kernel(ggml_type type) {
    std::vector<std::string_view> out;
    for (const auto name : dispatch::linked_isas(true))
        if (dispatch::table_for(name)[type].dot_interleaved) out.push_back(name);
    return out;
}

}  // namespace interleaved_test
}  // namespace

using namespace interleaved_test;

TEST_CASE_TEMPLATE("an interleaved matrix holds every level and scale of its rows, padding rows contribute zero", W, formats::q4_0,
                   formats::q8_0) {
    const simd::interleaved_layout layout = simd::interleaved_layout_for(W::type);
    REQUIRE(layout);
    const int bias = W::signed_levels ? 128 : 0;
    for (const auto& s : shapes) {
        CAPTURE(s.rows);
        CAPTURE(s.cols);
        const auto bytes = random_matrix<W>(s, 11 + s.rows);
        const simd::interleaved_matrix m(W::type, bytes, s.rows, s.cols);
        REQUIRE(m.groups() == (s.rows + 15) / 16);
        REQUIRE(m.blocks() == s.cols / 32);
        REQUIRE(reinterpret_cast<std::uintptr_t>(m.group(0)) % 64 == 0);
        const std::size_t row_bytes = storage_size(W::type, s.cols);
        bool levels_match = true, scales_match = true, padding_zero = true;
        for (std::size_t g = 0; g < m.groups(); ++g) {
            for (std::size_t b = 0; b < m.blocks(); ++b) {
                const std::byte* levels = m.group(g) + b * layout.level_bytes();
                const std::byte* scales = m.group(g) + m.blocks() * layout.level_bytes() + b * layout.scale_bytes();
                for (std::size_t r = 0; r < 16; ++r) {
                    std::uint16_t half = 0;
                    std::memcpy(&half, scales + 2 * r, 2);
                    const std::size_t row = g * 16 + r;
                    if (row >= s.rows) {
                        padding_zero = padding_zero && half == 0;
                        for (std::size_t i = 0; i < 32; ++i)
                            padding_zero = padding_zero && static_cast<int>(layout.level(levels, r, i)) == layout.offset;
                        continue;
                    }
                    const std::byte* block = bytes.data() + row * row_bytes + b * W::type_size;
                    scales_match = scales_match && fp16_bits_to_fp32(half) == W::sub_block_scale(block, 0).scale;
                    for (std::size_t i = 0; i < 32; ++i) {
                        const int value = static_cast<int>(layout.level(levels, r, i)) - layout.offset;
                        levels_match = levels_match && value == stored_level<W>(block, i) + bias - (W::level_offset + bias);
                    }
                }
            }
        }
        CHECK(levels_match);
        CHECK(scales_match);
        CHECK(padding_zero);
    }
}

TEST_CASE_TEMPLATE("every instruction set's interleaved kernel gives the reference arithmetic's floats bit for bit", W, formats::q4_0,
                   formats::q8_0) {
    const auto isas = isas_with_kernel(W::type);
    MESSAGE(std::string(info(W::type).name) << ": " << isas.size() << " instruction set(s) with an interleaved kernel here");
    for (const auto& s : shapes) {
        const auto bytes = random_matrix<W>(s, 23 + s.cols);
        const simd::interleaved_matrix m(W::type, bytes, s.rows, s.cols);
        for (std::size_t vectors : {1u, 2u, 3u, 4u, 5u, 9u}) {
            const auto x = laplace_with_outliers(vectors * s.cols, 5 + vectors);
            simd::detail::interleaved_inputs inputs;
            inputs.encode(x, vectors, s.cols);
            std::vector<float> expected(vectors * 16);
            for (const auto isa : isas) {
                CAPTURE(isa);
                CAPTURE(s.rows);
                CAPTURE(s.cols);
                CAPTURE(vectors);
                const auto kernel = dispatch::table_for(isa)[W::type].dot_interleaved;
                for (std::size_t g = 0; g < m.groups(); ++g) {
                    std::vector<float> got(vectors * 16, std::numeric_limits<float>::quiet_NaN());
                    simd::dot_interleaved_reference(m.layout(), m.group(g), m.blocks(), inputs.data(), vectors, expected.data());
                    kernel(m.group(g), m.blocks(), inputs.data(), vectors, got.data());
                    REQUIRE(std::memcmp(got.data(), expected.data(), got.size() * sizeof(float)) == 0);
                }
            }
        }
    }
}

TEST_CASE_TEMPLATE("interleaved products equal the exact sums within the float accumulation error, whatever the batch and threads", W,
                   formats::q4_0, formats::q8_0) {
    for (const auto& s : shapes) {
        CAPTURE(s.rows);
        CAPTURE(s.cols);
        const auto bytes = random_matrix<W>(s, 41 + s.rows);
        const simd::interleaved_matrix m(W::type, bytes, s.rows, s.cols);
        const std::size_t vectors = 6, row_bytes = storage_size(W::type, s.cols);
        const auto x = gaussian_values(vectors * s.cols, 3);
        std::vector<float> batch(vectors * s.rows), threaded(vectors * s.rows), single(s.rows);
        simd::gemm(m, x, vectors, batch, 1);
        simd::gemm(m, x, vectors, threaded, 3);
        CHECK(std::memcmp(batch.data(), threaded.data(), batch.size() * sizeof(float)) == 0);
        std::vector<std::byte> act(storage_size(ggml_type::q8_0, s.cols));
        for (std::size_t v = 0; v < vectors; ++v) {
            const auto xv = std::span<const float>(x).subspan(v * s.cols, s.cols);
            simd::gemm(m, xv, 1, single, 1);
            CHECK(std::memcmp(single.data(), batch.data() + v * s.rows, s.rows * sizeof(float)) == 0);
            quantize_activations(ggml_type::q8_0, xv, act);
            for (std::size_t r = 0; r < s.rows; ++r) {
                double magnitude = 0.0;
                const double exact = exact_row<W>(bytes.data() + r * row_bytes, act.data(), s.cols, magnitude);
                // Each block's float term rounds twice (scale product, fused multiply-add) and the two
                // accumulators add at most blocks terms each, then meet: (blocks + 3) roundings of at most
                // the running magnitude.
                const double bound = (static_cast<double>(s.cols / 32) + 3.0) * std::ldexp(1.0, -24) * magnitude + 1e-30;
                REQUIRE(std::abs(static_cast<double>(single[r]) - exact) <= bound);
            }
        }
    }
}

TEST_CASE("interleaved matrices refuse types without the layout, wrong sizes and non-finite activations") {
    const auto q4 = quantize(ggml_type::q4_0, gaussian_values(64 * 2, 1));
    CHECK_THROWS_AS(simd::interleaved_matrix(ggml_type::q4_1, quantize(ggml_type::q4_1, gaussian_values(64, 1)), 1, 64),
                    invalid_argument_error);
    CHECK_THROWS_WITH_AS(simd::interleaved_matrix(ggml_type::q4_0, q4, 3, 64),
                         doctest::Contains("3 rows of 64 values take 108 bytes, the matrix has 72"), shape_error);
    CHECK_THROWS_AS(simd::interleaved_matrix(ggml_type::q4_0, q4, 4, 36), shape_error);
    const simd::interleaved_matrix m(ggml_type::q4_0, q4, 2, 64);
    std::vector<float> x(64, 0.5f), y(2), y_wrong(3);
    CHECK_THROWS_WITH_AS(simd::gemm(m, std::span<const float>(x).first(32), 1, y),
                         doctest::Contains("activations hold 32 values, expected 64"), shape_error);
    CHECK_THROWS_WITH_AS(simd::gemm(m, x, 1, y_wrong), doctest::Contains("output holds 3 values, expected 2"), shape_error);
    x[7] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(simd::gemm(m, x, 1, y), value_error);
    x[7] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(simd::gemm(m, x, 1, y), value_error);
    CHECK(!simd::interleaved_layout_for(ggml_type::q5_0));
    CHECK(!simd::interleaved_layout_for(ggml_type::q4_K));
    CHECK(!simd::interleaved_layout_for(ggml_type::f32));
}
