// The SIMD quantize kernels of every block format, on every instruction set this machine runs, against
// the scalar reference: the same bytes for random rows of many lengths, unaligned buffers and the inputs
// where a reference quantizer's rounding, tie and degenerate-scale rules decide the result. Then the
// generic quantizer's backend::Simd against backend::Scalar: the same codes, parameters and floats for the
// bit widths where the code type or the super-block grid changes (2 to 9 and 16 for groups of 32), every
// granularity and mode, on edge values, strided views and any thread count.

#include <cogqat/cogqat.hpp>
#include <cogqat/dispatch/kernel_table.hpp>

#include <doctest/doctest.h>

#include <bit>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "format_list.hpp"
#include "linked_isas.hpp"
#include "random_data.hpp"
#include "sanitizer.hpp"

using namespace cogqat;

namespace {

/// Empty when `kernel` writes the reference's bytes for `x`, else where it first differs. The input is
/// read from `in_offset` floats and the output written at `out_offset` bytes into larger buffers, so that
/// neither is aligned; bytes around the output must stay untouched.
template <class F>
std::string compare(dispatch::type_kernels kernel, const std::vector<float>& x, std::size_t in_offset, std::size_t out_offset) {
    const std::size_t n = x.size() / F::block_size * F::block_size;
    const std::size_t bytes = n / F::block_size * F::type_size;
    std::vector<std::byte> expected(bytes);
    detail::quantize_unchecked<F>(x.data(), expected.data(), n);

    std::vector<float> input(n + in_offset);
    std::copy(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(n), input.begin() + static_cast<std::ptrdiff_t>(in_offset));
    constexpr std::byte guard{0xA5};
    std::vector<std::byte> output(bytes + out_offset + 16, guard);
    kernel.quantize(input.data() + in_offset, output.data() + out_offset, n);

    for (std::size_t i = 0; i < out_offset; ++i)
        if (output[i] != guard) return "wrote before the output, at -" + std::to_string(out_offset - i);
    for (std::size_t i = bytes + out_offset; i < output.size(); ++i)
        if (output[i] != guard) return "wrote past the output, at +" + std::to_string(i - bytes - out_offset);
    for (std::size_t i = 0; i < bytes; ++i) {
        if (output[out_offset + i] != expected[i]) {
            return "block " + std::to_string(i / F::type_size) + ", byte " + std::to_string(i % F::type_size) + ": " +
                   std::to_string(std::to_integer<int>(output[out_offset + i])) + " instead of " +
                   std::to_string(std::to_integer<int>(expected[i]));
        }
    }
    return {};
}

/// 256-value rows (a whole number of blocks of every format), each one of the inputs the reference's
/// special rules are about.
std::vector<std::pair<std::string, std::vector<float>>> edge_rows() {
    std::vector<std::pair<std::string, std::vector<float>>> rows;
    auto add = [&](std::string name, auto&& value_at) {
        std::vector<float> v(256);
        for (std::size_t i = 0; i < v.size(); ++i) v[i] = value_at(i);
        rows.emplace_back(std::move(name), std::move(v));
    };
    test::rng r(20240611);
    auto gaussian = [&] { return static_cast<float>(r.gaussian()); };

    add("all zeros", [](std::size_t) { return 0.0f; });
    add("negative zeros", [](std::size_t) { return -0.0f; });
    add("zeros of both signs", [](std::size_t i) { return i % 3 == 1 ? -0.0f : 0.0f; });
    add("non-negative, -0 before +0",
        [](std::size_t i) { return i % 16 == 0 ? -0.0f : (i % 16 == 5 ? 0.0f : 1.0f + static_cast<float>(i % 7)); });
    add("non-positive, +0 before -0",
        [](std::size_t i) { return i % 16 == 0 ? 0.0f : (i % 16 == 5 ? -0.0f : -1.0f - static_cast<float>(i % 7)); });
    add("constant positive", [](std::size_t) { return 0.75f; });
    add("constant negative", [](std::size_t) { return -3.25f; });
    add("constant per 16", [](std::size_t i) { return static_cast<float>(i / 16) - 7.5f; });
    add("one huge outlier", [&](std::size_t i) { return i == 77 ? 1e30f : 1e-3f * gaussian(); });
    add("one huge negative outlier", [&](std::size_t i) { return i == 200 ? -1e30f : gaussian(); });
    add("an outlier sub-block", [&](std::size_t i) { return i / 16 == 3 ? 1e4f * gaussian() : 1e-2f * gaussian(); });
    add("below group_max_eps", [&](std::size_t i) { return 1e-16f * gaussian() * (i % 2 ? 1.0f : 0.1f); });
    add("around group_max_eps", [&](std::size_t i) { return (i / 16) % 2 ? 0.9e-15f : 1.1e-15f * (i % 3 == 0 ? -1.0f : 1.0f); });
    add("denormals", [&](std::size_t i) { return static_cast<float>(i % 5) * 1e-41f * (i % 2 ? -1.0f : 1.0f); });
    add("denormals and normals", [&](std::size_t i) { return i % 32 == 3 ? 1e-30f * gaussian() : 3e-42f * gaussian(); });
    add("smallest denormal", [](std::size_t i) { return i % 9 == 0 ? std::numeric_limits<float>::denorm_min() : 0.0f; });
    add("quarter grid (ties)", [&](std::size_t) { return static_cast<float>(static_cast<int>(r.next() % 65) - 32) * 0.25f; });
    add("half grid with max 127",
        [&](std::size_t i) { return i % 32 == 7 ? 127.0f : static_cast<float>(static_cast<int>(r.next() % 255) - 127) * 0.5f; });
    add("half grid with max 8",
        [&](std::size_t i) { return i % 32 == 9 ? -8.0f : static_cast<float>(static_cast<int>(r.next() % 33) - 16) * 0.5f; });
    add("integers 0..15", [&](std::size_t) { return static_cast<float>(r.next() % 16); });
    add("+max before -max", [&](std::size_t i) { return i % 32 == 4 ? 5.0f : (i % 32 == 20 ? -5.0f : gaussian()); });
    add("-max before +max", [&](std::size_t i) { return i % 32 == 4 ? -5.0f : (i % 32 == 20 ? 5.0f : gaussian()); });
    add("+max before -max per 16", [&](std::size_t i) { return i % 16 == 1 ? 2.0f : (i % 16 == 9 ? -2.0f : 0.5f * gaussian()); });
    add("-max before +max per 16", [&](std::size_t i) { return i % 16 == 1 ? -2.0f : (i % 16 == 9 ? 2.0f : 0.5f * gaussian()); });
    add("up to 1e30", [&](std::size_t) { return 1e30f * gaussian(); });
    add("1e30 and small", [&](std::size_t i) { return i % 8 == 0 ? 1e30f * gaussian() : gaussian(); });
    add("near FLT_MAX", [&](std::size_t i) { return (i % 2 ? 3e38f : -3e38f) * static_cast<float>(r.uniform()); });
    add("two levels only", [&](std::size_t i) { return (r.next() & 1) ? 1.0f : (i % 2 ? -1.0f : 0.0f); });
    add("laplace", [&](std::size_t) { return static_cast<float>(r.laplace()); });
    add("all positive", [&](std::size_t) { return 1.0f + std::fabs(gaussian()); });
    add("all negative", [&](std::size_t) { return -1.0f - std::fabs(gaussian()); });
    return rows;
}

}  // namespace

TEST_CASE("every SIMD table has a quantize kernel for every block format") {
    for (const auto isa : test::simd_isas()) {
        const auto& table = dispatch::table_for(isa);
        for (const auto type : {ggml_type::q4_0, ggml_type::q4_1, ggml_type::q5_0, ggml_type::q5_1, ggml_type::q8_0, ggml_type::q8_1,
                                ggml_type::q2_K, ggml_type::q3_K, ggml_type::q4_K, ggml_type::q5_K, ggml_type::q6_K, ggml_type::q8_K}) {
            INFO(std::string(isa) << " " << std::string(info(type).name));
            CHECK(static_cast<bool>(table[type].quantize));
        }
    }
#if defined(__x86_64__)
    // A build that lost its x86 tables would otherwise pass every comparison below vacuously.
    if (dispatch::cpu_supports("avx2") && test::meant_to_link("avx2"))
        CHECK(static_cast<bool>(dispatch::table_for("avx2")[ggml_type::q4_K].quantize));
    if (dispatch::cpu_supports("avx512") && test::meant_to_link("avx512"))
        CHECK(static_cast<bool>(dispatch::table_for("avx512")[ggml_type::q6_K].quantize));
#endif
}

TEST_CASE_TEMPLATE("SIMD quantize kernels give the reference bytes on random rows of every length", F, COGQAT_ALL_FORMATS) {
    const std::size_t max_blocks = F::block_size == 32 ? 40 : 13;
    for (const auto isa : test::simd_isas()) {
        const auto kernel = dispatch::table_for(isa)[F::type];
        REQUIRE(static_cast<bool>(kernel.quantize));
        for (std::size_t blocks = 1; blocks <= max_blocks; ++blocks) {
            const auto x = blocks % 3 == 0 ? test::laplace_with_outliers(blocks * F::block_size, 1000 + blocks)
                                           : test::gaussian_values(blocks * F::block_size, 2000 + blocks, blocks % 2 ? 1.0 : 0.01);
            const std::size_t in_offset = blocks % 4, out_offset = (blocks / 4) % 4;
            INFO(std::string(isa) << " " << std::string(info(F::type).name) << ", " << blocks << " blocks, offsets " << in_offset << "/"
                                  << out_offset);
            CHECK(compare<F>(kernel, x, in_offset, out_offset) == "");
        }
    }
}

TEST_CASE_TEMPLATE("SIMD quantize kernels give the reference bytes on the edge cases", F, COGQAT_ALL_FORMATS) {
    const auto rows = edge_rows();
    for (const auto isa : test::simd_isas()) {
        const auto kernel = dispatch::table_for(isa)[F::type];
        REQUIRE(static_cast<bool>(kernel.quantize));
        std::vector<float> all;
        for (const auto& row : rows) {
            INFO(std::string(isa) << " " << std::string(info(F::type).name) << ": " << row.first);
            CHECK(compare<F>(kernel, row.second, 1, 3) == "");
            all.insert(all.end(), row.second.begin(), row.second.end());
        }
        // All of them in one row, so that the lanes of one SIMD group see different cases side by side.
        INFO(std::string(isa) << " " << std::string(info(F::type).name) << ": every edge case in one row");
        CHECK(compare<F>(kernel, all, 2, 1) == "");
        std::vector<float> interleaved(all.size());
        for (std::size_t i = 0; i < all.size(); ++i) interleaved[i] = all[(i % 32) * (all.size() / 32) + i / 32];
        CHECK(compare<F>(kernel, interleaved, 3, 2) == "");
    }
}

// ------------------------------------------------------------------------------------ generic quantizer

namespace {

/// Values for a rows x cols tensor cut in groups of `length`: every group one of the cases where the
/// reference's rules decide (ties, clamping, zeros of both signs, +-FLT_MAX, denormals, all-zero groups), so
/// that neighbouring groups of one kernel call differ.
std::vector<float> quantizer_edge_values(std::size_t rows, std::size_t cols, std::size_t length, std::uint64_t seed) {
    test::rng r(seed);
    std::vector<float> x(rows * cols);
    const std::size_t n = x.size();
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t g = length ? i / length : 0, k = length ? i % length : i;
        const double gauss = r.gaussian();
        float v = 0.0f;
        switch (g % 14) {
            case 0:
                v = static_cast<float>(gauss);
                break;
            case 1:
                v = 0.0f;
                break;  // all-zero group
            case 2:
                v = k % 3 == 1 ? -0.0f : 0.0f;
                break;  // zeros of both signs
            case 3:
                v = k % 5 == 0 ? -0.0f : 1.0f + static_cast<float>(k % 7);
                break;  // non-negative, -0 first
            case 4:
                v = k % 5 == 2 ? 0.0f : -1.0f - static_cast<float>(k % 7);
                break;  // non-positive, +0 later
            case 5:
                v = (k % 2 ? FLT_MAX : -FLT_MAX) * static_cast<float>(r.uniform());
                break;
            case 6:
                v = k == 0 ? FLT_MAX : (k == 1 ? -FLT_MAX : static_cast<float>(gauss));
                break;
            case 7:
                v = static_cast<float>(static_cast<int>(r.next() % 65) - 32) * 0.25f;
                break;  // ties
            case 8:
                v = static_cast<float>(k % 5) * 1e-41f * (k % 2 ? -1.0f : 1.0f);
                break;  // denormals
            case 9:
                v = k % 9 == 0 ? std::numeric_limits<float>::denorm_min() : 0.0f;
                break;
            case 10:
                v = 3.0f + 1e-3f * static_cast<float>(gauss);
                break;  // off zero: the zero-point clamps
            case 11:
                v = k == length / 2 ? 1e30f : 1e-3f * static_cast<float>(gauss);
                break;
            case 12:
                v = -0.75f;
                break;  // constant
            default:
                v = static_cast<float>(r.laplace()) * (k % 37 == 5 ? 40.0f : 1.0f);
                break;
        }
        x[i] = v;
    }
    return x;
}

bool same_float_bits(std::span<const float> a, std::span<const float> b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::bit_cast<std::uint32_t>(a[i]) != std::bit_cast<std::uint32_t>(b[i])) return false;
    return true;
}

/// Empty when the two tensors are the same codes and the same parameters, bit for bit, else the first
/// difference.
template <class T>
std::string tensor_difference(const T& got, const T& expected) {
    if (got.rows() != expected.rows() || got.cols() != expected.cols()) return "shapes differ";
    for (std::size_t i = 0; i < got.size(); ++i)
        if (got.codes()[i] != expected.codes()[i])
            return "code " + std::to_string(i) + ": " + std::to_string(got.codes()[i]) + " instead of " +
                   std::to_string(expected.codes()[i]);
    if (got.group_count() != expected.group_count()) return "group counts differ";
    for (std::size_t g = 0; g < got.group_count(); ++g) {
        const affine_params a = got.effective_params(g), b = expected.effective_params(g);
        if (std::bit_cast<std::uint32_t>(a.scale) != std::bit_cast<std::uint32_t>(b.scale) || a.zero_point != b.zero_point)
            return "group " + std::to_string(g) + ": scale " + std::to_string(a.scale) + ", zero " + std::to_string(a.zero_point) +
                   " instead of " + std::to_string(b.scale) + ", " + std::to_string(b.zero_point);
    }
    if (!(got == expected)) return "stored parameters differ";
    return {};
}

/// The shapes a granularity is tested on: several rows, rows long enough for many kernel chunks, and rows
/// whose length is not a multiple of any vector width where the granularity allows it.
template <class G>
std::vector<std::pair<std::size_t, std::size_t>> shapes_for() {
    if constexpr (SuperBlockGranularity<G>)
        return {{3, G::super_block_size}, {2, 5 * G::super_block_size}, {1, 70 * G::super_block_size}};
    else if constexpr (requires { G::group_size; })
        return {{3, G::group_size}, {5, 7 * G::group_size}, {2, (40000 / G::group_size + 1) * G::group_size}};
    else
        return {{1, 1}, {3, 77}, {4, 16}, {2, 33333}};
}

template <class G>
std::size_t group_length_of(std::size_t rows, std::size_t cols) {
    return G::group_length(rows, cols);
}

/// Simd against Scalar for one policy combination on every runnable instruction set: quantize (contiguous,
/// strided, 1 and 3 threads), dequantize (1 and 3 threads, into a strided view), fake_quantize.
template <int N, class G, class Mode>
void check_generic_quantizer() {
    using scalar = quantizer<BitWidth<N>, G, Mode, backend::Scalar>;
    using vectorized = quantizer<BitWidth<N>, G, Mode, backend::Simd>;
    for (const auto& shape : shapes_for<G>()) {
        // Named variables, not a structured binding: INFO's lambda captures them (Clang 14 refuses bindings).
        const std::size_t rows = shape.first, cols = shape.second;
        const auto values = quantizer_edge_values(rows, cols, group_length_of<G>(rows, cols), 1000u * N + rows * 7 + cols);
        const auto x = make_matrix_view(values.data(), rows, cols);
        const auto expected = scalar::quantize(x);
        const auto expected_values = scalar::dequantize(expected);
        // A strided copy: every other column of rows padded by one value.
        std::vector<float> padded(rows * (2 * cols + 1), 7.0f);
        const matrix_view<float> strided(padded.data(), {rows, cols}, {2 * cols + 1, 2});
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t c = 0; c < cols; ++c) strided(r, c) = values[r * cols + c];

        for (const auto isa : dispatch::linked_isas(true)) {
            dispatch::use_isa(isa);
            INFO(std::string(isa) << ": " << N << " bits, " << std::string(Mode::name) << ", " << rows << " x " << cols);
            CHECK(tensor_difference(vectorized::quantize(x), expected) == "");
            CHECK(tensor_difference(vectorized::quantize(x, 3), expected) == "");
            CHECK(tensor_difference(vectorized::quantize(strided), expected) == "");
            CHECK(same_float_bits(vectorized::dequantize(expected), expected_values));
            CHECK(same_float_bits(vectorized::dequantize(expected, 3), expected_values));
            std::vector<float> into(padded.size(), 7.0f);
            const matrix_view<float> into_view(into.data(), {rows, cols}, {2 * cols + 1, 2});
            vectorized::dequantize(expected, into_view, 2);
            bool same = true;
            for (std::size_t r = 0; r < rows; ++r)
                for (std::size_t c = 0; c < cols; ++c)
                    same = same &&
                           std::bit_cast<std::uint32_t>(into_view(r, c)) == std::bit_cast<std::uint32_t>(expected_values[r * cols + c]) &&
                           into[r * (2 * cols + 1) + 2 * c + 1] == 7.0f;
            CHECK(same);
            std::vector<float> faked(values.size());
            vectorized::fake_quantize(std::span<const float>(values), std::span<float>(faked));
            std::vector<float> faked_expected(values.size());
            scalar::fake_quantize(std::span<const float>(values), std::span<float>(faked_expected));
            CHECK(same_float_bits(faked, faked_expected));
        }
    }
}

/// Both modes at the bit widths N..., then the table that was active before.
template <class G, int... N>
void check_bit_widths(std::integer_sequence<int, N...>) {
    const auto before = dispatch::active().isa;
    (check_generic_quantizer<N, G, Symmetric>(), ...);
    (check_generic_quantizer<N, G, Asymmetric>(), ...);
    dispatch::use_isa(before);
}

// Every byte-code width (2 to 8) and the first and last 16-bit ones for the most used granularity; for the
// others, the widths where the code type and the super-block zero-point grid change (3: odd levels; 8: the
// widest byte code; 9: the first 16-bit code and a zero-point step of 8 in 6-bit super-blocks; 16: the
// widest). Every width of every granularity would be 270 instantiations of both backends, minutes of compile
// time for what these cover: the kernels see the bit width only as a run-time level range (10 to 15 bits are
// the 16-bit kernels with other ranges).
#if COGQAT_TEST_ADDRESS_SANITIZER
// The sanitized pass checks memory, which only the code type (a byte or 16 bits) changes, not a width's level
// range or zero-point grid; the Release pass checks every width's arithmetic. Fewer instantiations keep the
// sanitized build within CI's time.
using every_width = std::integer_sequence<int, 3, 9>;
using boundary_widths = std::integer_sequence<int, 3, 9>;
#else
using every_width = std::integer_sequence<int, 2, 3, 4, 5, 6, 7, 8, 9, 16>;
using boundary_widths = std::integer_sequence<int, 3, 8, 9, 16>;
#endif
// Granularities without super-blocks: one byte-code and one 16-bit-code width (their level ranges are
// covered above, on groups of 32).
using code_widths = std::integer_sequence<int, 3, 9>;

}  // namespace

TEST_CASE("every SIMD table has the generic quantizer's kernels") {
    for (const auto isa : test::simd_isas()) {
        INFO(std::string(isa));
        const auto& k = dispatch::table_for(isa).quantizer;
        CHECK(static_cast<bool>(k.group_ranges));
        CHECK(static_cast<bool>(k.symmetric_params));
        CHECK(static_cast<bool>(k.asymmetric_params));
        CHECK(static_cast<bool>(k.encode_u8));
        CHECK(static_cast<bool>(k.encode_u16));
        CHECK(static_cast<bool>(k.decode_u8));
        CHECK(static_cast<bool>(k.decode_u16));
    }
#if defined(__x86_64__)
    // Without the x86 tables every comparison below would compare the reference with itself.
    if (dispatch::cpu_supports("avx2") && test::meant_to_link("avx2"))
        CHECK(static_cast<bool>(dispatch::table_for("avx2").quantizer.group_ranges));
#endif
}

TEST_CASE("generic quantizer, backend::Simd: the scalar backend's codes, parameters and floats, per tensor") {
    check_bit_widths<PerTensor>(code_widths{});
}
TEST_CASE("generic quantizer, backend::Simd: the scalar backend's codes, parameters and floats, per row") {
    check_bit_widths<PerRow>(code_widths{});
}
TEST_CASE(
        "generic quantizer, backend::Simd: the scalar backend's codes, parameters and floats, groups of 3, 7, 32 (bits 2-9 and 16) and "
        "128") {
    check_bit_widths<PerGroup<3>>(code_widths{});
    check_bit_widths<PerGroup<7>>(code_widths{});
    check_bit_widths<PerGroup<32>>(every_width{});
    check_bit_widths<PerGroup<128>>(code_widths{});
}
TEST_CASE("generic quantizer, backend::Simd: the scalar backend's codes, parameters and floats, super-blocks") {
    check_bit_widths<SuperBlock<256, 32>>(boundary_widths{});
    check_bit_widths<SuperBlock<256, 16, 8>>(boundary_widths{});
    check_bit_widths<SuperBlock<96, 3, 3>>(boundary_widths{});
}

TEST_CASE("generic quantizer, backend::Simd: the first NaN or Inf is reported as the scalar backend reports it") {
    using scalar = quantizer<BitWidth<4>, PerGroup<32>, Asymmetric, backend::Scalar>;
    using vectorized = quantizer<BitWidth<4>, PerGroup<32>, Asymmetric, backend::Simd>;
    using per_tensor = quantizer<BitWidth<8>, PerTensor, Symmetric, backend::Simd>;
    constexpr std::size_t rows = 8, cols = 8192;  // four kernel chunks, so that two threads each see some
    const auto clean = test::gaussian_values(rows * cols, 77);
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    const struct {
        std::vector<std::pair<std::size_t, float>> bad;
    } cases[] = {{{{0, nan}}},
                 {{{31, inf}}},
                 {{{16385, -inf}}},
                 {{{rows * cols - 1, nan}}},
                 {{{50000, nan}, {40000, inf}, {3 * 8192 + 5, -inf}}},  // the first in row-major order wins
                 {{{20000, inf}, {60000, nan}}}};
    const auto before = dispatch::active().isa;
    for (const auto& c : cases) {
        std::vector<float> x = clean;
        for (const auto& [i, v] : c.bad) x[i] = v;
        const auto view = make_matrix_view(x.data(), rows, cols);
        std::string expected;
        std::size_t expected_index = 0;
        try {
            (void)scalar::quantize(view);
        } catch (const value_error& e) {
            expected = e.what();
            expected_index = e.index();
        }
        REQUIRE(!expected.empty());
        for (const auto isa : dispatch::linked_isas(true)) {
            dispatch::use_isa(isa);
            for (const unsigned threads : {1u, 2u, 3u}) {
                INFO(std::string(isa) << ", " << threads << " threads, expected: " << expected);
                CHECK_THROWS_WITH_AS((void)vectorized::quantize(view, threads), expected.c_str(), value_error);
                try {
                    (void)per_tensor::quantize(view, threads);
                    FAIL_CHECK("no value_error");
                } catch (const value_error& e) {
                    CHECK(e.index() == expected_index);
                }
            }
            // A failed in-place call leaves the data as it was.
            std::vector<float> copy = x;
            CHECK_THROWS_AS(vectorized::fake_quantize(std::span<float>(copy)), value_error);
            CHECK(same_float_bits(copy, x));
        }
    }
    dispatch::use_isa(before);
}

TEST_CASE("generic quantizer kernels: unaligned buffers and runs of groups, against the reference loops") {
    // The kernels straight from each table, one call over many groups at odd offsets: what the quantizer
    // never does (it calls with its own vectors' alignment), but a kernel must not assume.
    constexpr std::size_t length = 19, groups = 23;
    const auto x0 = quantizer_edge_values(1, length * groups + 3, length, 5);
    std::vector<affine_params> params(groups);
    for (std::size_t g = 0; g < groups; ++g) params[g] = {g % 5 == 0 ? 0.0f : 0.01f * static_cast<float>(g + 1), static_cast<int>(g % 16)};
    for (const auto isa : test::simd_isas()) {
        const auto& k = dispatch::table_for(isa).quantizer;
        for (std::size_t offset = 0; offset < 3; ++offset) {
            INFO(std::string(isa) << ", offset " << offset);
            const float* x = x0.data() + offset;
            std::vector<float> lo(groups), hi(groups), lo_ref(groups), hi_ref(groups);
            const bool finite =
                    detail::quantizer_impl::reference_ranges(x, length, groups, lo_ref.data(), hi_ref.data()) == length * groups;
            REQUIRE(finite);
            CHECK(k.group_ranges(x, length, groups, lo.data(), hi.data()) == length * groups);
            CHECK(same_float_bits(lo, lo_ref));
            CHECK(same_float_bits(hi, hi_ref));

            std::vector<std::uint8_t> codes(length * groups + 5, 0xEE), codes_ref(length * groups);
            k.encode_u8(x, length, groups, params.data(), 0, 15, codes.data() + offset);
            detail::quantizer_impl::reference_encode<BitWidth<4>, Asymmetric>(x, length, groups, params.data(), codes_ref.data());
            CHECK(std::equal(codes_ref.begin(), codes_ref.end(), codes.begin() + static_cast<std::ptrdiff_t>(offset)));
            CHECK(codes[length * groups + offset] == 0xEE);

            std::vector<float> out(length * groups + 5, 3.0f), out_ref(length * groups);
            k.decode_u8(codes.data() + offset, length, groups, params.data(), 0, out.data() + offset);
            detail::quantizer_impl::reference_decode<BitWidth<4>, Asymmetric>(codes_ref.data(), length, groups, params.data(),
                                                                              out_ref.data());
            CHECK(same_float_bits(std::span<const float>(out).subspan(offset, out_ref.size()), out_ref));
            CHECK(out[length * groups + offset] == 3.0f);
        }
    }
}

TEST_CASE("generic quantizer kernels: Symmetric and Asymmetric parameters across groups, against choose_params") {
    // Ranges where each rule of choose_params decides: zeros of both signs, one-sided ranges, the overflow
    // of hi - lo near FLT_MAX, denormals, and ties of -lo / scale.
    const float tiny = std::numeric_limits<float>::denorm_min();
    std::vector<std::pair<float, float>> ranges = {
            {0.0f, 0.0f},     {-0.0f, -0.0f},   {-0.0f, 0.0f}, {0.0f, -0.0f},     {1.0f, 2.0f},    {-2.0f, -1.0f}, {-FLT_MAX, FLT_MAX},
            {-FLT_MAX, 1.0f}, {0.5f, FLT_MAX},  {tiny, tiny},  {-tiny, 3 * tiny}, {-1e-41f, 0.0f}, {-1.5f, 1.5f},  {-0.75f, 2.25f},
            {-3.0f, 0.0f},    {-1e30f, 1e-30f}, {-7.0f, 8.0f}, {-8.0f, 7.0f},     {-0.0f, 5.0f},   {-5.0f, -0.0f}};
    test::rng r(99);
    for (int i = 0; i < 45; ++i) {
        const float a = static_cast<float>(r.gaussian()), b = static_cast<float>(r.gaussian());
        ranges.emplace_back(std::min(a, b), std::max(a, b));
    }
    std::vector<float> lo, hi;
    for (const auto& [l, h] : ranges) {
        lo.push_back(l);
        hi.push_back(h);
    }
    const std::size_t n = ranges.size();
    auto same = [](const std::vector<affine_params>& a, const std::vector<affine_params>& b) {
        for (std::size_t g = 0; g < a.size(); ++g)
            if (std::bit_cast<std::uint32_t>(a[g].scale) != std::bit_cast<std::uint32_t>(b[g].scale) || a[g].zero_point != b[g].zero_point)
                return "group " + std::to_string(g) + ": " + std::to_string(a[g].scale) + ", " + std::to_string(a[g].zero_point) +
                       " instead of " + std::to_string(b[g].scale) + ", " + std::to_string(b[g].zero_point);
        return std::string();
    };
    for (const auto isa : test::simd_isas()) {
        const auto& k = dispatch::table_for(isa).quantizer;
        REQUIRE(static_cast<bool>(k.symmetric_params));
        REQUIRE(static_cast<bool>(k.asymmetric_params));
        for (const int bits : {2, 3, 4, 8, 9, 16}) {
            INFO(std::string(isa) << ", " << bits << " bits");
            std::vector<affine_params> got(n), expected(n);
            for (std::size_t g = 0; g < n; ++g) expected[g] = Symmetric::choose_params(lo[g], hi[g], bits);
            k.symmetric_params(lo.data(), hi.data(), n, Symmetric::max_level(bits), got.data());
            CHECK(same(got, expected) == "");
            for (std::size_t g = 0; g < n; ++g) expected[g] = Asymmetric::choose_params(lo[g], hi[g], bits);
            k.asymmetric_params(lo.data(), hi.data(), n, Asymmetric::max_level(bits), got.data());
            CHECK(same(got, expected) == "");
        }
    }
}
