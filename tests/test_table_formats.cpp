// The table-decoded formats (iq4_nl, iq4_xs, mxfp4, tq1_0, tq2_0) without ggml: the tables' facts, the
// packing, round trips within their error bounds, what importance weights change, and bad input. Their
// bytes are checked against ggml's in tests/interop/test_ggml_bytes.cpp.

#include <doctest/doctest.h>

#include <cogqat/cogqat.hpp>
#include <cogqat/dispatch/kernel_table.hpp>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <vector>

#include "random_data.hpp"

using namespace cogqat;

#define COGQAT_TABLE_FORMATS formats::iq4_nl, formats::iq4_xs, formats::mxfp4, formats::tq1_0, formats::tq2_0

TEST_CASE("table facts: iq4_nl's levels, E2M1 doubled, the ternary tables") {
    CHECK(std::is_sorted(iq4nl_values.begin(), iq4nl_values.end()));
    CHECK(iq4nl_values.front() == -127);
    CHECK(iq4nl_values.back() == 113);
    // E2M1: 1 sign, 2 exponent, 1 mantissa bit; the magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6, doubled.
    for (unsigned code = 0; code < 16; ++code) {
        const unsigned exponent = (code >> 1) & 3, mantissa = code & 1;
        const double magnitude = exponent == 0 ? 0.5 * mantissa : std::ldexp(1.0 + 0.5 * mantissa, static_cast<int>(exponent) - 1);
        CHECK(e2m1_doubled_values[code] == static_cast<int>((code & 8 ? -2 : 2) * magnitude));
    }
    CHECK(ternary_values == std::array<std::int8_t, 3>{-1, 0, 1});
    CHECK(ternary_2bit_values[3] == 2);
    // The E8M0 scale halved is 2^(e - 128), subnormal below e = 2.
    CHECK(formats::detail::e8m0_half_to_float(0) == std::ldexp(1.0f, -128));
    CHECK(formats::detail::e8m0_half_to_float(1) == std::ldexp(1.0f, -127));
    CHECK(formats::detail::e8m0_half_to_float(127) == 0.5f);
    CHECK(formats::detail::e8m0_half_to_float(254) == std::ldexp(1.0f, 126));
}

TEST_CASE("nearest_table_index: the nearest entry, the ends clamp, ties go up as ggml's") {
    CHECK(nearest_table_index(iq4nl_values, -1000.0f) == 0);
    CHECK(nearest_table_index(iq4nl_values, 1000.0f) == 15);
    for (std::size_t i = 0; i < iq4nl_values.size(); ++i) CHECK(nearest_table_index(iq4nl_values, iq4nl_values[i]) == i);
    CHECK(nearest_table_index(iq4nl_values, 0.0f) == 8);   // 1 is nearer than -10
    CHECK(nearest_table_index(iq4nl_values, -4.5f) == 8);  // exactly between -10 and 1: the upper one
    CHECK(nearest_table_index(iq4nl_values, -4.6f) == 7);
}

TEST_CASE("tq1_0 packs five trits a byte and reads every one back") {
    for (unsigned code = 0; code < 243; ++code) {
        unsigned digits[5], rest = code;
        for (int n = 4; n >= 0; --n) digits[n] = rest % 3, rest /= 3;
        const std::uint8_t packed = formats::detail::pack_ternary_digits(digits, 5);
        for (unsigned t = 0; t < 5; ++t) CHECK(formats::detail::ternary_digit(packed, t) == digits[t]);
    }
    // Every value has its own byte and digit.
    std::vector<int> seen(52 * 5, 0);
    for (std::size_t i = 0; i < 256; ++i) {
        const auto p = formats::tq1_0::locate(i);
        REQUIRE(p.byte < 52);
        ++seen[p.byte * 5 + p.digit];
    }
    CHECK(std::count(seen.begin(), seen.end(), 1) == 256);
    CHECK(std::count(seen.begin(), seen.end(), 0) == 4);  // the fifth digit of the four qh bytes
}

TEST_CASE_TEMPLATE("table formats: values the format holds come back exactly", F, COGQAT_TABLE_FORMATS) {
    // scale * table entries, with a power-of-two scale every encoding can store.
    test::rng r(5);
    std::vector<float> x(2 * 256);
    const float scale = F::type == ggml_type::mxfp4 ? 0.25f : 0.125f;
    for (std::size_t b = 0; b < x.size() / F::block_size; ++b) {
        // The block's largest entry in magnitude is present, so that every search finds this scale.
        for (std::size_t j = 0; j < F::block_size; ++j) {
            const auto pick = j == 0 ? (F::type == ggml_type::mxfp4 ? std::size_t{7} : (F::values.size() > 3 ? 0 : 2)) : r.next() % 3;
            const std::size_t index = F::values.size() > 4 ? (j == 0 ? pick : r.next() % F::values.size()) : pick;
            x[b * F::block_size + j] = scale * static_cast<float>(F::values[index]);
        }
    }
    if constexpr (F::type == ggml_type::iq4_nl || F::type == ggml_type::iq4_xs) {
        // iq4's least-squares scale is exact only up to float rounding: within one part in 2^10.
        const auto y = dequantize(F::type, quantize(F::type, x));
        for (std::size_t i = 0; i < x.size(); ++i) CHECK(std::fabs(y[i] - x[i]) <= std::fabs(x[i]) * 0x1p-10f);
    } else {
        CHECK(dequantize(F::type, quantize(F::type, x)) == x);
    }
}

TEST_CASE_TEMPLATE("table formats: the round trip error of Gaussian weights", F, COGQAT_TABLE_FORMATS) {
    const auto x = test::gaussian_values(8 * 256, 9, 0.02);
    const auto y = dequantize(F::type, quantize(F::type, x));
    const double relative = measure_error(x, y).relative_rmse;
    // Measured: iq4_nl 0.0772, iq4_xs 0.0776, mxfp4 0.1135, ternary 0.806 (d = max |x| of 256 Gaussian values
    // sends most of them to 0). iq4_nl takes q4_0's 4.5 bits per weight and beats its 0.0875.
    const double bound = F::type == ggml_type::tq1_0 || F::type == ggml_type::tq2_0 ? 0.85 : (F::type == ggml_type::mxfp4 ? 0.13 : 0.085);
    CHECK(relative < bound);
    CHECK(relative > 0.0);
    if constexpr (F::type == ggml_type::iq4_nl)
        CHECK(relative < measure_error(x, dequantize(ggml_type::q4_0, quantize(ggml_type::q4_0, x))).relative_rmse);
    // Each decoded value is scale * a table entry: never outside the table's range times the block's scale.
    const float amax = std::fabs(*std::max_element(x.begin(), x.end(), [](float a, float b) { return std::fabs(a) < std::fabs(b); }));
    for (float v : y) CHECK(std::fabs(v) <= 2.0f * amax);
}

TEST_CASE("tq1_0 and tq2_0 store the same ternary values") {
    const auto x = test::laplace_with_outliers(4 * 256, 4);
    CHECK(dequantize(ggml_type::tq1_0, quantize(ggml_type::tq1_0, x)) == dequantize(ggml_type::tq2_0, quantize(ggml_type::tq2_0, x)));
}

TEST_CASE("importance weights: iq4 trades error where the weight is low for error where it is high") {
    const std::size_t row = 512, rows = 16;
    const auto x = test::gaussian_values(row * rows, 21, 0.02);
    std::vector<float> importance(row);
    for (std::size_t c = 0; c < row; ++c) importance[c] = c % 4 == 0 ? 16.0f : 0.25f;
    for (auto type : {ggml_type::iq4_nl, ggml_type::iq4_xs}) {
        CAPTURE(info(type).name);
        const auto plain = quantize(type, x);
        const auto weighted = quantize(type, x, row, importance);
        CHECK(plain != weighted);
        auto weighted_error = [&](const std::vector<std::byte>& bytes) {
            const auto y = dequantize(type, bytes);
            double e = 0;
            for (std::size_t i = 0; i < x.size(); ++i) e += importance[i % row] * (x[i] - y[i]) * (x[i] - y[i]);
            return e;
        };
        CHECK(weighted_error(weighted) < weighted_error(plain));
        // No importance (an empty span) is the plain quantizer.
        CHECK(quantize(type, x, row, std::span<const float>{}) == plain);
    }
    // ggml's mxfp4, tq1_0, tq2_0, q8_0, f16 take no importance: the same bytes with and without.
    for (auto type : {ggml_type::mxfp4, ggml_type::tq1_0, ggml_type::tq2_0, ggml_type::q8_0, ggml_type::f16, ggml_type::f32}) {
        CAPTURE(info(type).name);
        CHECK(quantize(type, x, row, importance) == quantize(type, x));
        CHECK_FALSE(uses_importance(type));
    }
    CHECK(uses_importance(ggml_type::iq4_nl));
    CHECK(uses_importance(ggml_type::iq4_xs));
    CHECK(uses_importance(ggml_type::q4_K));
    CHECK(uses_importance(ggml_type::q5_K));
    CHECK(uses_importance(ggml_type::q6_K));
    CHECK(uses_importance(ggml_type::q4_0));
    CHECK_FALSE(uses_importance(ggml_type::i32));
}

TEST_CASE("importance weights: bad input is refused with what and where") {
    const auto x = test::gaussian_values(512, 3);
    std::vector<float> importance(256, 1.0f);
    CHECK_THROWS_AS((void)quantize(ggml_type::iq4_xs, x, 0, importance), shape_error);
    CHECK_THROWS_AS((void)quantize(ggml_type::iq4_xs, x, 128, importance), shape_error);  // not whole blocks of 256
    CHECK_THROWS_AS((void)quantize(ggml_type::iq4_nl, std::span(x).first(480), 96, importance),
                    shape_error);  // importance is not one per column
    CHECK_THROWS_AS((void)quantize(ggml_type::iq4_nl, std::span(x).first(500), 256, importance), shape_error);  // not whole rows
    CHECK_THROWS_AS((void)quantize(ggml_type::iq4_nl, x, 512, importance), shape_error);                        // 256 weights, rows of 512
    std::vector<std::byte> small(10);
    CHECK_THROWS_AS(quantize(ggml_type::iq4_nl, x, 256, importance, small), shape_error);

    auto bad = importance;
    bad[7] = -1.0f;
    try {
        (void)quantize(ggml_type::iq4_nl, x, 256, bad);
        FAIL("a negative importance was accepted");
    } catch (const value_error& e) {
        CHECK(e.index() == 7);
    }
    bad[7] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS((void)quantize(ggml_type::iq4_nl, x, 256, bad), value_error);
    bad[7] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS((void)quantize(ggml_type::iq4_nl, x, 256, bad), value_error);

    auto nan = x;
    nan[300] = std::numeric_limits<float>::quiet_NaN();
    try {
        (void)quantize(ggml_type::iq4_xs, nan, 256, importance);
        FAIL("a NaN value was accepted");
    } catch (const value_error& e) {
        CHECK(e.index() == 300);
    }
    // Rows of a type whose blocks are 32 values take one weight per column too.
    CHECK_THROWS_AS((void)quantize(ggml_type::q4_0, x, 256, std::span(importance).first(128)), shape_error);
}

TEST_CASE_TEMPLATE("table formats: bad input to the plain quantizer and the decoder", F, COGQAT_TABLE_FORMATS) {
    auto x = test::gaussian_values(256, 8);
    CHECK_THROWS_AS((void)quantize(F::type, std::span(x).first(F::block_size - 1 + (F::block_size == 32 ? 32 : 0))), shape_error);
    x[17] = -std::numeric_limits<float>::infinity();
    try {
        (void)quantize(F::type, x);
        FAIL("-Inf was accepted");
    } catch (const value_error& e) {
        CHECK(e.index() == 17);
    }
    const std::vector<std::byte> bytes(F::type_size + 1);
    CHECK_THROWS_AS((void)dequantize(F::type, bytes), shape_error);
    CHECK(quantize(F::type, std::span<const float>{}).empty());
}

TEST_CASE_TEMPLATE("table formats: the quantized dot product is the decoded one, with ggml's activation partner", F, COGQAT_TABLE_FORMATS) {
    constexpr ggml_type partner = F::block_size == 32 ? ggml_type::q8_0 : ggml_type::q8_K;
    static_assert(activation_type_for(F::type) == partner);
    const std::size_t n = 4 * 256;
    const auto w = test::laplace_with_outliers(n, 12);
    const auto x = test::gaussian_values(n, 13);
    const auto weights = quantize(F::type, w);
    std::vector<std::byte> activations(storage_size(partner, n));
    quantize_activations(partner, x, activations);
    const auto wd = dequantize(F::type, weights);
    const auto xd = dequantize(partner, activations);
    double exact = 0, magnitude = 0;
    for (std::size_t i = 0; i < n; ++i) {
        exact += static_cast<double>(wd[i]) * xd[i];
        magnitude += std::fabs(static_cast<double>(wd[i]) * xd[i]);
    }
    const float dot = quantized_dot_for(F::type)(weights, activations, n);
    // Integer sums are exact; only the float scaling and the running sum round.
    CHECK(std::fabs(dot - exact) <= 1e-6 * magnitude);
    // The whole-matrix product runs the active SIMD table's kernel where it has one (iq4_nl, iq4_xs, mxfp4),
    // else the same reference: the same float either way.
    const auto kernel = dispatch::kernels(F::type).dot_quantized;
    const float row = kernel ? kernel(weights.data(), activations.data(), n) : dot;
    CHECK(std::fabs(row - exact) <= 4.0 * FLT_EPSILON * (static_cast<double>(n) / 32 + 16) * magnitude);  // another summation order
    std::vector<float> y(1);
    simd::gemv(F::type, weights, 1, n, x, y);
    CHECK(y[0] == row);
}

TEST_CASE("the runtime runs models whose matrices are table-decoded, as it runs their decoded floats") {
    // Rows of 256: every type fits every matrix. Quantized activations (llama.cpp's way) against float
    // activations on the same decoded weights differ by the q8 rounding of the activations only. A wrong
    // scale order, table or index in the quantized dot product would be far outside the bound.
    const auto base = llama_model::from_weights(make_synthetic_llama(6, {256, 256, 1, 4, 2, 259, 8}));
    const std::vector<std::int32_t> tokens{1, 70, 80, 3};
    for (auto type : {ggml_type::iq4_nl, ggml_type::iq4_xs, ggml_type::mxfp4, ggml_type::tq1_0, ggml_type::tq2_0}) {
        CAPTURE(info(type).name);
        auto model = base;
        for (auto& L : model.layers)
            for (auto* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.down, &L.up}) {
                w->owned = quantize(type, dequantize(w->type, w->bytes()));
                w->view = {};
                w->type = type;
                w->interleaved.reset();
            }
        llama_session quantized(model, 8), floats(model, 8, activation_mode::float32);
        for (std::size_t i = 0; i < tokens.size(); ++i) {
            const auto a = quantized.forward(tokens[i], i);
            const std::vector<float> x(a.begin(), a.end());
            const auto b = floats.forward(tokens[i], i);
            double scale = 0.0, worst = 0.0;
            for (float v : b) scale = std::max(scale, static_cast<double>(std::fabs(v)));
            for (std::size_t j = 0; j < x.size(); ++j) {
                REQUIRE(std::isfinite(x[j]));
                worst = std::max(worst, std::fabs(static_cast<double>(x[j]) - b[j]));
            }
            CHECK(worst <= 3e-2 * scale);  // measured up to 1.2e-2 of the largest logit
        }
    }
}
