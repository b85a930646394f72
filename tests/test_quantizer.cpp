// Tests of the generic quantizer over a representative set of bit widths, granularities and modes: the
// error bound, exact zeros, agreement between its entry points, strided views, input checks and sizes.

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <random>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/policy.hpp"
#include "cogqat/core/tensor_view.hpp"
#include "cogqat/quant/quantizer.hpp"

using namespace cogqat;

namespace {

// A row length every granularity below accepts (multiple of 256) and a few rows, so that per-row and
// per-tensor differ.
constexpr std::size_t test_rows = 4;
constexpr std::size_t test_cols = 512;

/// Reproducible random numbers: mt19937's output is fixed by the standard, and the conversions to uniform,
/// Gaussian and Laplace values are written here rather than taken from <random>'s distributions, whose
/// algorithms differ between standard libraries.
class test_random {
public:
    explicit test_random(std::uint32_t seed) : engine_(seed) {}

    /// Uniform in the open interval (0, 1).
    double uniform() { return (static_cast<double>(engine_()) + 0.5) / 4294967296.0; }
    /// Standard normal, by Box-Muller.
    double gaussian() {
        const double radius = std::sqrt(-2.0 * std::log(uniform()));
        return radius * std::cos(2.0 * std::numbers::pi * uniform());
    }
    /// Laplace with scale 1, by inverting its distribution function.
    double laplace() {
        const double u = uniform() - 0.5;
        return u < 0 ? std::log(1.0 + 2.0 * u) : -std::log(1.0 - 2.0 * u);
    }

private:
    std::mt19937 engine_;
};

/// Weight-like test data: two Gaussian rows (one shifted off zero, so asymmetric groups matter), two
/// Laplace rows, outliers of 25 to 60 sigma, exact zeros, and one all-zero stretch of 64 values.
std::vector<float> test_data(std::uint32_t seed = 1234) {
    test_random random(seed);
    std::vector<float> x(test_rows * test_cols);
    for (std::size_t r = 0; r < test_rows; ++r) {
        for (std::size_t c = 0; c < test_cols; ++c) {
            double v = r < 2 ? 0.02 * random.gaussian() : 0.05 * random.laplace();
            if (r == 1) v += 0.06;
            if (c % 97 == 13) v = (c % 2 ? 1.0 : -1.0) * (25.0 + 35.0 * random.uniform()) * 0.02;
            if (c % 61 == 7) v = 0.0;
            x[r * test_cols + c] = static_cast<float>(v);
        }
    }
    for (std::size_t c = 256; c < 320; ++c) x[3 * test_cols + c] = 0.0f;
    return x;
}

bool same_bits(std::span<const float> a, std::span<const float> b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::bit_cast<std::uint32_t>(a[i]) != std::bit_cast<std::uint32_t>(b[i])) return false;
    return true;
}

double rmse(std::span<const float> a, std::span<const float> b) {
    double sum = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
        sum += d * d;
    }
    return a.empty() ? 0.0 : std::sqrt(sum / static_cast<double>(a.size()));
}

/// Values per group of a granularity for a row length that fits it (1 for per-tensor and per-row: any
/// row length fits).
template <class G>
constexpr std::size_t row_unit() {
    if constexpr (SuperBlockGranularity<G>)
        return G::super_block_size;
    else if constexpr (requires { G::group_size; })
        return G::group_size;
    else
        return 1;
}

using quantizer_types = std::tuple<                                 //
        quantizer<BitWidth<2>, PerTensor, Symmetric>,               //
        quantizer<BitWidth<2>, SuperBlock<256, 16>, Asymmetric>,    //
        quantizer<BitWidth<3>, PerGroup<64>, Asymmetric>,           //
        quantizer<BitWidth<4>, PerRow, Asymmetric>,                 //
        quantizer<BitWidth<4>, PerGroup<32>, Symmetric>,            //
        quantizer<BitWidth<4>, PerGroup<32>, Asymmetric>,           //
        quantizer<BitWidth<4>, SuperBlock<256, 32>, Asymmetric>,    // q4_K's geometry
        quantizer<BitWidth<6>, SuperBlock<256, 16, 8>, Symmetric>,  // q6_K's geometry
        quantizer<BitWidth<8>, PerGroup<32>, Symmetric>,            // q8_0's geometry
        quantizer<BitWidth<8>, SuperBlock<256, 16>, Asymmetric>,    // zero-points on a grid of 4
        quantizer<BitWidth<16>, PerRow, Symmetric>,                 //
        quantizer<BitWidth<16>, PerTensor, Asymmetric>>;

}  // namespace

TEST_CASE_TEMPLATE_DEFINE("fake quantization stays within half a step and keeps zeros", Q, round_trip) {
    const std::vector<float> x = test_data();
    const auto view = make_matrix_view(x.data(), test_rows, test_cols);
    const auto q = Q::quantize(view);
    REQUIRE(q.rows() == test_rows);
    REQUIRE(q.cols() == test_cols);
    REQUIRE(q.size() == x.size());

    std::vector<float> y(x.size());
    Q::fake_quantize(view, make_matrix_view(y.data(), test_rows, test_cols));

    SUBCASE("every error is at most half the group's effective scale") {
        std::size_t failures = 0;
        for (std::size_t i = 0; i < x.size(); ++i) {
            const double scale = q.effective_params(i / q.group_length()).scale;
            const double error = std::abs(static_cast<double>(x[i]) - static_cast<double>(y[i]));
            // Float rounding of x / scale and of scale * level adds a few ulps of x and of the scale.
            const double slack = (std::abs(static_cast<double>(x[i])) + scale) * 1e-6 + 1e-30;
            if (!(error <= 0.5 * scale + slack)) {
                if (++failures <= 5) FAIL_CHECK("value " << i << ": x = " << x[i] << ", y = " << y[i] << ", scale = " << scale);
            }
        }
        CHECK(failures == 0);
    }

    SUBCASE("levels stay in the mode's range") {
        constexpr int max_code = Q::tensor_type::max_level - Q::tensor_type::min_level;
        bool in_range = true;
        for (std::size_t i = 0; i < q.size(); ++i) {
            in_range = in_range && q.codes()[i] <= max_code && q.level(i) >= Q::tensor_type::min_level &&
                       q.level(i) <= Q::tensor_type::max_level;
        }
        CHECK(in_range);
        CHECK(max_code < (1 << Q::bit_width::bits));
    }

    SUBCASE("zero comes back as exactly zero") {
        std::size_t zeros = 0;
        for (std::size_t i = 0; i < x.size(); ++i) {
            if (x[i] == 0.0f) {
                ++zeros;
                if (y[i] != 0.0f) FAIL_CHECK("value " << i << " is 0 but comes back as " << y[i]);
            }
        }
        CHECK(zeros >= 64);
    }

    SUBCASE("dequantize(quantize(x)) is fake_quantize(x), bit for bit") {
        CHECK(same_bits(Q::dequantize(q), y));
        std::vector<float> into_matrix(x.size());
        Q::dequantize(q, make_matrix_view(into_matrix.data(), test_rows, test_cols));
        CHECK(same_bits(into_matrix, y));
    }

    SUBCASE("in place equals out of place, bit for bit") {
        std::vector<float> in_place = x;
        Q::fake_quantize(make_matrix_view(in_place.data(), test_rows, test_cols));
        CHECK(same_bits(in_place, y));
        std::vector<float> flat = x;
        Q::fake_quantize(std::span<float>(flat));
        std::vector<float> one_row(x.size());
        Q::fake_quantize(std::span<const float>(x), one_row);
        CHECK(same_bits(flat, one_row));
    }

    SUBCASE("a 1-D span is one row") {
        const auto from_span = Q::quantize(std::span<const float>(x));
        CHECK(from_span == Q::quantize(make_matrix_view(x.data(), 1, x.size())));
        CHECK(from_span.rows() == 1);
    }

    SUBCASE("no NaN or Inf comes out") {
        bool finite = true;
        for (const float v : y) finite = finite && std::isfinite(v);
        CHECK(finite);
    }
}

TEST_CASE_TEMPLATE_DEFINE("a strided view gives the same result as its contiguous copy", Q, strided) {
    const std::vector<float> x = test_data(99);
    // Every other element of rows padded by 3 floats: neither the row nor the column stride is the packed one.
    const std::size_t row_stride = 2 * test_cols + 3;
    std::vector<float> padded(test_rows * row_stride, std::numeric_limits<float>::quiet_NaN());
    for (std::size_t r = 0; r < test_rows; ++r)
        for (std::size_t c = 0; c < test_cols; ++c) padded[r * row_stride + 2 * c] = x[r * test_cols + c];
    const matrix_view<float> strided(padded.data(), {test_rows, test_cols}, {row_stride, 2});
    REQUIRE_FALSE(strided.is_contiguous());

    const auto contiguous = make_matrix_view(x.data(), test_rows, test_cols);
    CHECK(Q::quantize(strided) == Q::quantize(contiguous));

    std::vector<float> expected(x.size());
    Q::fake_quantize(contiguous, make_matrix_view(expected.data(), test_rows, test_cols));

    std::vector<float> out_copy(x.size());
    Q::fake_quantize(strided, make_matrix_view(out_copy.data(), test_rows, test_cols));
    CHECK(same_bits(out_copy, expected));

    // In place through the strided view: only the viewed elements change, the padding stays NaN.
    Q::fake_quantize(strided);
    std::vector<float> gathered(x.size());
    bool padding_kept = true;
    for (std::size_t r = 0; r < test_rows; ++r) {
        for (std::size_t c = 0; c < test_cols; ++c) {
            gathered[r * test_cols + c] = strided(r, c);
            padding_kept = padding_kept && std::isnan(padded[r * row_stride + 2 * c + 1]);
        }
    }
    CHECK(same_bits(gathered, expected));
    CHECK(padding_kept);
}

TEST_CASE_TEMPLATE_DEFINE("NaN and Inf are reported with their row-major index", Q, non_finite) {
    const std::vector<float> clean = test_data(7);
    const struct {
        std::size_t row, col;
        float value;
    } cases[] = {{0, 0, std::numeric_limits<float>::quiet_NaN()},
                 {1, 37, std::numeric_limits<float>::infinity()},
                 {3, test_cols - 1, -std::numeric_limits<float>::infinity()}};
    for (const auto& bad : cases) {
        std::vector<float> x = clean;
        const std::size_t index = bad.row * test_cols + bad.col;
        x[index] = bad.value;
        CAPTURE(index);
        try {
            (void)Q::quantize(make_matrix_view(x.data(), test_rows, test_cols));
            FAIL_CHECK("no value_error");
        } catch (const value_error& e) {
            CHECK(e.index() == index);
            CHECK(std::string(e.what()).find("row " + std::to_string(bad.row)) != std::string::npos);
        }
        try {
            Q::fake_quantize(std::span<float>(x));
            FAIL_CHECK("no value_error");
        } catch (const value_error& e) {
            CHECK(e.index() == index);
        }
        // A failed in-place call leaves the data as it was.
        CHECK(std::isnan(x[index]) == std::isnan(bad.value));
    }
}

TEST_CASE_TEMPLATE_DEFINE("empty and all-zero inputs", Q, degenerate) {
    SUBCASE("empty") {
        const std::vector<float> none;
        const auto q = Q::quantize(std::span<const float>(none));
        CHECK(q.empty());
        CHECK(q.group_count() == 0);
        CHECK(q.storage_bits() == 0);
        CHECK(Q::dequantize(q).empty());
        const auto no_rows = Q::quantize(make_matrix_view(none.data(), 0, test_cols));
        CHECK(no_rows.empty());
        CHECK(no_rows.rows() == 0);
        CHECK(no_rows.storage_bytes() == 0);
        std::vector<float> out;
        Q::fake_quantize(std::span<const float>(none), out);
        Q::fake_quantize(make_matrix_view(out.data(), 0, 0));
        CHECK(typename Q::tensor_type{}.empty());
    }
    SUBCASE("all zero") {
        std::vector<float> x(test_rows * test_cols, 0.0f);
        const auto q = Q::quantize(make_matrix_view(x.data(), test_rows, test_cols));
        for (std::size_t g = 0; g < q.group_count(); ++g) CHECK(q.effective_params(g).scale == 0.0f);
        Q::fake_quantize(std::span<float>(x));
        bool zeros = true;
        for (const float v : x) zeros = zeros && v == 0.0f && !std::signbit(v);
        CHECK(zeros);
    }
}

TEST_CASE_TEMPLATE_DEFINE("a row length the granularity cannot cut is a shape error", Q, bad_rows) {
    using G = typename Q::granularity;
    const std::vector<float> x(3 * (row_unit<G>() + 1), 1.0f);
    if constexpr (row_unit<G>() > 1) {
        const std::size_t cols = row_unit<G>() + 1;
        try {
            (void)Q::quantize(make_matrix_view(x.data(), 3, cols));
            FAIL_CHECK("no shape_error");
        } catch (const shape_error& e) {
            const std::string what = e.what();
            CHECK(what.find(std::to_string(cols)) != std::string::npos);
            CHECK(what.find(std::to_string(row_unit<G>())) != std::string::npos);
        }
    } else {
        CHECK_NOTHROW((void)Q::quantize(make_matrix_view(x.data(), 3, row_unit<G>() + 1)));
    }
    // An output of the wrong shape is refused before anything is computed.
    std::vector<float> out(x.size());
    CHECK_THROWS_AS(Q::fake_quantize(make_matrix_view(x.data(), 1, x.size()), make_matrix_view(out.data(), x.size(), 1)), shape_error);
    CHECK_THROWS_AS(Q::dequantize(Q::quantize(std::span<const float>(x.data(), 0)), std::span<float>(out)), shape_error);
}

TEST_CASE_TEMPLATE_DEFINE("the thread count changes no code, parameter or float", Q, thread_counts) {
    // Rows long enough for several chunks of the quantizer's work, so that threads really share it.
    constexpr std::size_t rows = 16, cols = 4096;
    std::vector<float> x(rows * cols);
    const std::vector<float> base = test_data(31);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = base[i % base.size()] * (1.0f + static_cast<float>(i / base.size()));
    const auto view = make_matrix_view(x.data(), rows, cols);
    const auto one = Q::quantize(view);
    const auto values = Q::dequantize(one);
    for (const unsigned threads : {2u, 3u, 0u}) {
        CAPTURE(threads);
        CHECK(Q::quantize(view, threads) == one);
        CHECK(same_bits(Q::dequantize(one, threads), values));
        std::vector<float> into(x.size());
        Q::dequantize(one, std::span<float>(into), threads);
        CHECK(same_bits(into, values));
    }
}

TEST_CASE_TEMPLATE_APPLY(round_trip, quantizer_types);
TEST_CASE_TEMPLATE_APPLY(strided, quantizer_types);
TEST_CASE_TEMPLATE_APPLY(non_finite, quantizer_types);
TEST_CASE_TEMPLATE_APPLY(degenerate, quantizer_types);
TEST_CASE_TEMPLATE_APPLY(bad_rows, quantizer_types);
TEST_CASE_TEMPLATE_APPLY(thread_counts, quantizer_types);

TEST_CASE("shape errors name the row length and the group or super-block size") {
    const std::vector<float> x(300, 0.5f);
    CHECK_THROWS_WITH_AS(((void)quantizer<BitWidth<4>, PerGroup<32>>::quantize(std::span<const float>(x.data(), 100))),
                         doctest::Contains("row length 100 is not a multiple of the group size 32"), shape_error);
    CHECK_THROWS_WITH_AS(((void)quantizer<BitWidth<4>, SuperBlock<256, 16>, Asymmetric>::quantize(std::span<const float>(x))),
                         doctest::Contains("row length 300 is not a multiple of the super-block size 256"), shape_error);
}

TEST_CASE("hand-worked levels: ties to even, zero-point, clipping") {
    SUBCASE("symmetric 4-bit per tensor") {
        const std::vector<float> x = {-7.0f, 3.5f, 0.0f, 1.0f, 2.5f};
        const auto q = quantizer<BitWidth<4>, PerTensor>::quantize(x);
        CHECK(q.effective_params(0) == affine_params{1.0f, 0});
        CHECK(q.level(0) == -7);
        CHECK(q.level(1) == 4);  // 3.5 rounds to even
        CHECK(q.level(2) == 0);
        CHECK(q.level(4) == 2);  // 2.5 rounds to even
        CHECK(q.codes()[0] == 0);
    }
    SUBCASE("asymmetric 2-bit: range widened to include 0") {
        const std::vector<float> x = {1.0f, 2.0f, 3.0f};
        const auto q = quantizer<BitWidth<2>, PerRow, Asymmetric>::quantize(x);
        CHECK(q.effective_params(0) == affine_params{1.0f, 0});
        const auto y = quantizer<BitWidth<2>, PerRow, Asymmetric>::dequantize(q);
        CHECK(y == std::vector<float>{1.0f, 2.0f, 3.0f});
    }
    SUBCASE("asymmetric 2-bit: all negative puts the zero-point at the top") {
        const std::vector<float> x = {-3.0f, -1.5f, -0.5f};
        const auto q = quantizer<BitWidth<2>, PerRow, Asymmetric>::quantize(x);
        CHECK(q.effective_params(0) == affine_params{1.0f, 3});
        CHECK(q.level(0) == 0);
        CHECK(q.level(1) == 1);  // -1.5 -> -2 (ties to even) + 3
    }
    SUBCASE("super-block scale codes are rounded up against the super-scale") {
        // Group maxima 63 and 1.5 with 2-bit symmetric levels: group scales 63 and 1.5, super-scale 1.
        std::vector<float> x(32, 0.0f);
        x[0] = 63.0f;
        x[16] = 1.5f;
        const auto q = quantizer<BitWidth<2>, SuperBlock<32, 16>>::quantize(x);
        REQUIRE(q.super_scales().size() == 1);
        CHECK(q.super_scales()[0] == 1.0f);
        CHECK(q.groups()[0].scale == 63);
        CHECK(q.groups()[1].scale == 2);  // ceil(1.5): rounding to nearest could give 1 and clip 1.5 to 1
        CHECK(q.groups()[1].zero == 0);
    }
}

TEST_CASE("storage size matches the hand count") {
    const std::vector<float> x = test_data();
    // 4 x 512 values at 4 bits, 64 groups of 32 with a 32-bit scale and a 4-bit zero-point.
    CHECK(quantizer<BitWidth<4>, PerGroup<32>, Asymmetric>::quantize(make_matrix_view(x.data(), 4, 512)).storage_bits() ==
          4 * 512 * 4 + 64 * (32 + 4));
    // q4_K's geometry: 256 x 4 bits + 8 groups x (6 + 6) bits + one 32-bit super-scale = 1152 bits, 144 bytes.
    const auto k4 = quantizer<BitWidth<4>, SuperBlock<256, 32>, Asymmetric>::quantize(std::span<const float>(x.data(), 256));
    CHECK(k4.storage_bits() == 1152);
    CHECK(k4.storage_bytes() == 144);
    // Symmetric stores no zero-point: 6 x 8 bits + 2 rows x 32 bits.
    CHECK(quantizer<BitWidth<8>, PerRow>::quantize(make_matrix_view(x.data(), 2, 3)).storage_bits() == 6 * 8 + 2 * 32);
    // 5 values at 3 bits + one scale = 47 bits, rounded up to 6 bytes.
    const auto odd = quantizer<BitWidth<3>, PerTensor>::quantize(std::span<const float>(x.data(), 5));
    CHECK(odd.storage_bits() == 47);
    CHECK(odd.storage_bytes() == 6);
    // q6_K-like symmetric super-blocks with 8-bit scales: 256 x 6 + 16 x 8 + 32.
    CHECK(quantizer<BitWidth<6>, SuperBlock<256, 16, 8>>::quantize(std::span<const float>(x.data(), 256)).storage_bits() ==
          256 * 6 + 16 * 8 + 32);
}

namespace {

template <int N, class G, class M>
double fake_quantize_rmse(const std::vector<float>& x) {
    std::vector<float> y(x.size());
    quantizer<BitWidth<N>, G, M>::fake_quantize(make_matrix_view(x.data(), test_rows, test_cols),
                                                make_matrix_view(y.data(), test_rows, test_cols));
    return rmse(x, y);
}

template <class G, class M>
void check_rmse_falls_with_bits(const std::vector<float>& x) {
    const double e2 = fake_quantize_rmse<2, G, M>(x);
    const double e4 = fake_quantize_rmse<4, G, M>(x);
    const double e6 = fake_quantize_rmse<6, G, M>(x);
    const double e8 = fake_quantize_rmse<8, G, M>(x);
    CAPTURE(e2);
    CAPTURE(e4);
    CAPTURE(e6);
    CAPTURE(e8);
    CHECK(e2 > e4);
    CHECK(e4 > e6);
    CHECK(e6 > e8);
    CHECK(e8 > 0.0);
}

}  // namespace

TEST_CASE("more bits give a lower RMSE") {
    const std::vector<float> x = test_data(42);
    check_rmse_falls_with_bits<PerTensor, Symmetric>(x);
    check_rmse_falls_with_bits<PerRow, Asymmetric>(x);
    check_rmse_falls_with_bits<PerGroup<32>, Symmetric>(x);
    check_rmse_falls_with_bits<PerGroup<32>, Asymmetric>(x);
    check_rmse_falls_with_bits<SuperBlock<256, 16>, Symmetric>(x);
    check_rmse_falls_with_bits<SuperBlock<256, 16>, Asymmetric>(x);
}

TEST_CASE("quantized_tensor checks the parts it is built from") {
    using tensor = quantized_tensor<BitWidth<4>, PerGroup<2>, Asymmetric>;
    const std::vector<std::uint8_t> codes = {0, 15, 3, 4};
    const std::vector<affine_params> groups = {{0.5f, 1}, {1.0f, 0}};
    CHECK_NOTHROW(tensor(2, 2, codes, groups));
    CHECK_THROWS_AS(tensor(2, 3, codes, groups), shape_error);
    CHECK_THROWS_AS(tensor(2, 2, codes, {{0.5f, 1}}), shape_error);
    CHECK_THROWS_AS(tensor(2, 2, {0, 16, 3, 4}, groups), value_error);
    CHECK_THROWS_AS(tensor(2, 2, codes, {{0.5f, 16}, {1.0f, 0}}), value_error);
    CHECK_THROWS_AS(tensor(2, 2, codes, {{0.5f, 1}, {std::numeric_limits<float>::infinity(), 0}}), value_error);

    using blocks = quantized_tensor<BitWidth<4>, SuperBlock<4, 2, 3>, Asymmetric>;
    CHECK_NOTHROW(blocks(1, 4, codes, {{7, 7}, {1, 0}}, {0.25f}));
    CHECK_THROWS_AS(blocks(1, 4, codes, {{8, 0}, {1, 0}}, {0.25f}), value_error);  // 3-bit scale code
    CHECK_THROWS_AS(blocks(1, 4, codes, {{1, 8}, {1, 0}}, {0.25f}), value_error);  // zero code above 7
    CHECK_THROWS_AS(blocks(1, 4, codes, {{1, 0}, {1, 0}}, {}), shape_error);
    // With 3-bit codes for a 4-bit zero-point the zero-points lie on a grid of 2.
    CHECK(blocks(1, 4, codes, {{7, 7}, {1, 0}}, {0.25f}).effective_params(0) == affine_params{1.75f, 14});
}
