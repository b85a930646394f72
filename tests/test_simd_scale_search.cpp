// The weighted block-scale search kernels (dispatch::type_kernels::search_block_scale) of every instruction
// set this machine runs against the scalar reference (format/weighted_block_search.hpp), bit for bit, for the
// five 32-value formats: Laplace blocks with outliers and Gaussian ones over magnitudes from fp16's
// subnormals to past its largest value, under random, uniform, mostly zero and zero importance (where the
// refits fail), and the blocks at the edges: constant, one-hot, all zero, near float's largest value, values
// whose scale rounds to zero in fp16, and a cluster whose refit gives a scale so small that an outlier's
// level wraps around in nearest_int.

#include <cogqat/dispatch/kernel_table.hpp>
#include <cogqat/format/legacy_formats.hpp>
#include <cogqat/format/weighted_block_search.hpp>

#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "linked_isas.hpp"
#include "random_data.hpp"

using namespace cogqat;

namespace scale_search_tests {

using kernel_fn = decltype(dispatch::type_kernels::search_block_scale);
using block = std::array<float, 32>;

struct weighted_block {
    std::string what;
    block x{}, importance{};
};

block scaled(const std::vector<float>& v, double factor) {
    block b{};
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(static_cast<double>(v[i]) * factor);
    return b;
}

/// The importances of the test: random, all ones, mostly zero (two weights, so the refits of the formats with a
/// min often fail), one weight, none at all (every refit fails), and spread over twelve orders of magnitude.
std::vector<std::pair<std::string, block>> importances(std::uint64_t seed) {
    test::rng r(seed);
    std::vector<std::pair<std::string, block>> out;
    block random{}, ones{}, mostly_zero{}, one{}, none{}, spread{};
    for (std::size_t i = 0; i < 32; ++i) {
        random[i] = static_cast<float>(r.uniform());
        ones[i] = 1.0f;
        spread[i] = static_cast<float>(std::ldexp(r.uniform(), static_cast<int>(r.next() % 40) - 20));
    }
    mostly_zero[r.next() % 32] = 0.75f;
    mostly_zero[r.next() % 32] = 1.5f;
    one[r.next() % 32] = 2.0f;
    out.emplace_back("random", random);
    out.emplace_back("ones", ones);
    out.emplace_back("mostly zero", mostly_zero);
    out.emplace_back("one weight", one);
    out.emplace_back("zero", none);
    out.emplace_back("spread", spread);
    return out;
}

std::vector<weighted_block> blocks() {
    std::vector<weighted_block> out;
    auto add = [&](const std::string& what, const block& x, std::uint64_t seed) {
        for (const auto& [name, w] : importances(seed)) out.push_back({what + ", importance " + name, x, w});
    };
    // 1e-9 and 1e-7 put the scales below and among fp16's subnormals, 1e5 puts outliers' scales near its largest
    // value, 1e6 past it; 1e-40 makes the values themselves subnormal, so every scale rounds to zero.
    constexpr double factors[] = {1e-40, 1e-30, 1e-9, 1e-7, 1e-6, 1e-5, 1e-3, 0.02, 1.0, 1e3, 1e5, 1e6};
    for (std::uint64_t seed = 1; seed <= 3; ++seed)
        for (const double f : factors) {
            add("Laplace with outliers x " + std::to_string(f), scaled(test::laplace_with_outliers(32, seed), f), seed);
            add("Gaussian x " + std::to_string(f), scaled(test::gaussian_values(32, seed + 100), f), seed + 1);
        }
    block b{};
    for (const float c : {0.5f, -3.0f, 1e-30f, 7.0f}) {
        b.fill(c);
        add("constant " + std::to_string(c), b, 7);
    }
    b.fill(0.0f);
    add("zero", b, 8);
    for (const std::size_t hot : {0u, 13u, 31u})
        for (const float v : {1.0f, -2.5f}) {
            b.fill(0.0f);
            b[hot] = v;
            add("one-hot at " + std::to_string(hot) + ", " + std::to_string(v), b, 9 + hot);
        }
    for (std::size_t i = 0; i < 32; ++i) b[i] = i % 2 ? 3e38f : -3e38f;
    add("+-3e38", b, 10);
    for (std::size_t i = 0; i < 32; ++i) b[i] = i % 3 ? 3e38f : 1.0f;
    add("3e38 and 1", b, 11);
    // A cluster just above 1 and an outlier at 100: a refit of the formats with a min that puts the cluster on
    // two adjacent levels gives a scale of about 1e-6, and the outlier then lands past 2^22 levels.
    for (std::size_t i = 0; i < 32; ++i) b[i] = 1.0f + static_cast<float>(i) * 1e-6f;
    b[5] = 100.0f;
    add("cluster and outlier", b, 12);
    for (const auto& [name, w] : importances(13)) {
        block unweighted_outlier = w;
        unweighted_outlier[5] = 0.0f;
        out.push_back({"cluster and unweighted outlier, importance " + name, b, unweighted_outlier});
    }
    return out;
}

bool same_bits(affine_scale a, affine_scale b) {
    return std::memcmp(&a.scale, &b.scale, sizeof(float)) == 0 && std::memcmp(&a.min, &b.min, sizeof(float)) == 0;
}

/// Every block through F's reference and through each linked set's kernel for F.
template <class F>
void check_format() {
    std::vector<std::pair<std::string_view, kernel_fn>> kernels;
    for (const auto isa : test::simd_isas()) {
        CAPTURE(std::string(isa));
        const kernel_fn kernel = dispatch::table_for(isa)[F::type].search_block_scale;
        REQUIRE(static_cast<bool>(kernel));
        kernels.emplace_back(isa, kernel);
    }
    std::size_t zero_scales = 0;
    for (const auto& b : blocks()) {
        CAPTURE(b.what);
        const affine_scale want = search_block_scale<F>(b.x.data(), b.importance.data());
        zero_scales += want.scale == 0.0f;
        for (const auto& entry : kernels) {
            CAPTURE(std::string(entry.first));
            const affine_scale got = entry.second(b.x.data(), b.importance.data());
            INFO("reference " << want.scale << ", " << want.min << "; kernel " << got.scale << ", " << got.min);
            CHECK(same_bits(want, got));
        }
    }
    // The zero-scale case is reached (the 1e-40 blocks, the zero block).
    CHECK(zero_scales > 0);
}

}  // namespace scale_search_tests

TEST_CASE("scale search: every instruction set's kernel is the scalar reference, bit for bit") {
    using namespace scale_search_tests;
#if defined(__x86_64__)
    // A build that lost the kernels would otherwise pass every comparison below vacuously.
    for (const std::string_view name : {"sse4.2", "avx2", "avx512", "avx512_vnni"})
        if (dispatch::cpu_supports(name) && test::meant_to_link(name)) {
            CAPTURE(std::string(name));
            CHECK(static_cast<bool>(dispatch::table_for(name)[ggml_type::q4_0].search_block_scale));
        }
#endif
    SUBCASE("q4_0") { check_format<formats::q4_0>(); }
    SUBCASE("q4_1") { check_format<formats::q4_1>(); }
    SUBCASE("q5_0") { check_format<formats::q5_0>(); }
    SUBCASE("q5_1") { check_format<formats::q5_1>(); }
    SUBCASE("q8_0") { check_format<formats::q8_0>(); }
}
