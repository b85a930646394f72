// The SIMD quantize kernels of every block format, on every instruction set this machine runs, against
// the scalar reference: the same bytes for random rows of many lengths, unaligned buffers and the inputs
// where a reference quantizer's rounding, tie and degenerate-scale rules decide the result.

#include <cogqat/cogqat.hpp>
#include <cogqat/dispatch/kernel_table.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "format_list.hpp"
#include "linked_isas.hpp"
#include "random_data.hpp"

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
