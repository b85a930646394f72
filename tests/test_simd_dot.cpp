// The SIMD quantized dot products and activation quantizers, for every instruction set this machine runs,
// against the scalar references (format/vec_dot.hpp, format/activation_quantize.hpp).

#include <cogqat/cogqat.hpp>
#include <cogqat/dispatch/kernel_table.hpp>
#include <cogqat/format/activation_quantize.hpp>
#include <cogqat/format/vec_dot.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "linked_isas.hpp"
#include "random_data.hpp"

using namespace cogqat;

namespace {
namespace simd_dot_test {

/// Byte offsets of a format's fp16 super-scales, the only bytes random data must not fill (an fp16 NaN or
/// infinity would make both results NaN and the comparison empty).
template <BlockFormat F>
std::vector<std::size_t> half_scale_fields() {
    if constexpr (F::block_size == 32) {
        if constexpr (F::has_min)
            return {0, 2};
        else
            return {0};
    } else if constexpr (F::has_min) {
        return {F::d_at, F::dmin_at};
    } else {
        return {F::d_at};
    }
}

/// Ways to fill the level and sub-scale bytes: random, all ones (every level at its maximum, q6_K's scales
/// -1), 0x80 (q6_K's scales at -128) and zeros.
enum class fill { random, ones, high_bit, zeros };
constexpr fill fills[] = {fill::random, fill::ones, fill::high_bit, fill::zeros};

void fill_bytes(std::vector<std::byte>& bytes, fill how, test::rng& r) {
    for (auto& b : bytes) {
        switch (how) {
            case fill::random:
                b = static_cast<std::byte>(r.next() & 0xff);
                break;
            case fill::ones:
                b = std::byte{0xff};
                break;
            case fill::high_bit:
                b = std::byte{0x80};
                break;
            case fill::zeros:
                b = std::byte{0};
                break;
        }
    }
}

std::uint16_t random_half(test::rng& r) { return fp32_to_fp16_bits(static_cast<float>((r.uniform() - 0.5) * 4.0)); }

template <BlockFormat W>
std::vector<std::byte> make_weights(std::size_t blocks, fill how, test::rng& r) {
    std::vector<std::byte> w(blocks * W::type_size);
    fill_bytes(w, how, r);
    for (std::size_t b = 0; b < blocks; ++b)
        for (const std::size_t at : half_scale_fields<W>()) {
            const std::uint16_t h = random_half(r);
            std::memcpy(w.data() + b * W::type_size + at, &h, 2);
        }
    return w;
}

/// Activations: from random floats through the library's own quantizer, or with every quant at an
/// extreme (-128, 127, or alternating) and q8_K's bsums recomputed to match.
template <BlockFormat A>
std::vector<std::byte> make_activations(std::size_t n, fill how, int extreme, test::rng& r) {
    std::vector<std::byte> a(n / A::block_size * A::type_size);
    if (how == fill::random) {
        const auto x = test::gaussian_values(n, r.next());
        quantize_activations(A::type, x, a);
        return a;
    }
    for (std::size_t b = 0; b < n / A::block_size; ++b) {
        std::byte* block = a.data() + b * A::type_size;
        for (std::size_t i = 0; i < A::block_size; ++i) {
            const int q = extreme == 0 ? -128 : extreme == 1 ? 127 : (i % 2 ? 127 : -128);
            block[A::planes[0].offset + i] = static_cast<std::byte>(static_cast<std::int8_t>(q));
        }
        if constexpr (A::type == ggml_type::q8_K) {
            const float d = static_cast<float>(r.uniform());
            std::memcpy(block + A::d_at, &d, 4);
            for (std::size_t g = 0; g < 16; ++g) {
                int sum = 0;
                for (std::size_t i = 0; i < 16; ++i) sum += stored_level<A>(block, 16 * g + i);
                const auto s16 = static_cast<std::int16_t>(sum);
                std::memcpy(block + A::sums_at + 2 * g, &s16, 2);
            }
        } else {
            const std::uint16_t h = random_half(r), s = random_half(r);
            std::memcpy(block, &h, 2);
            if constexpr (A::has_min || A::type == ggml_type::q8_1) std::memcpy(block + 2, &s, 2);
        }
    }
    return a;
}

/// Sum over every block and sub-block of |da * scale| * sum|(L - off) * qa| + |da * min| * sum|qa|: the
/// magnitude the float errors are relative to. Absolute values inside the integer sums too, because a SIMD
/// lane holds an exact partial sum of a few products, which may exceed its sub-block's total.
template <BlockFormat W, BlockFormat A>
double magnitude(const std::byte* w, const std::byte* a, std::size_t n) {
    double total = 0.0;
    for (std::size_t b = 0; b < n / W::block_size; ++b) {
        const std::byte* wb = w + b * W::type_size;
        const std::size_t first = b * W::block_size;
        const std::byte* ab = a + first / A::block_size * A::type_size;
        const double da = std::fabs(A::sub_block_scale(ab, 0).scale);
        for (std::size_t sub = 0; sub < W::block_size / W::sub_block_size; ++sub) {
            const affine_scale s = W::sub_block_scale(wb, sub);
            double products = 0.0, activations = 0.0;
            for (std::size_t j = 0; j < W::sub_block_size; ++j) {
                const std::size_t i = sub * W::sub_block_size + j;
                const int qa = stored_level<A>(ab, first % A::block_size + i);
                products += std::abs((stored_level<W>(wb, i) - W::level_offset) * qa);
                activations += std::abs(qa);
            }
            total += da * (std::fabs(s.scale) * products + std::fabs(s.min) * activations);
        }
    }
    return total;
}

/// Runs `kernel` on unaligned copies of `w` and `a` (the kernels take any address) and requires its result
/// within the summation-order bound of the reference's `expected`: 4 eps per term of `blocks` blocks' partial
/// sums, relative to the magnitude of the products.
template <class W, class Kernel>
void require_dot_within_bound(Kernel kernel, const std::vector<std::byte>& w, const std::vector<std::byte>& a, std::size_t n,
                              std::size_t blocks, float expected, double product_magnitude) {
    const std::size_t shift_w = 1 + blocks % 7, shift_a = 1 + (blocks * 3) % 13;
    std::vector<std::byte> wbuf(w.size() + shift_w), abuf(a.size() + shift_a);
    std::memcpy(wbuf.data() + shift_w, w.data(), w.size());
    std::memcpy(abuf.data() + shift_a, a.data(), a.size());
    const float got = kernel(wbuf.data() + shift_w, abuf.data() + shift_a, n);
    const double terms = static_cast<double>(blocks) * (1 + W::block_size / W::sub_block_size);
    const double bound = 4.0 * FLT_EPSILON * (terms + 16.0) * product_magnitude;
    REQUIRE(std::isfinite(expected));
    REQUIRE(std::fabs(static_cast<double>(got) - static_cast<double>(expected)) <= bound);
}

/// The lengths, in blocks, that the dot products are checked at. Every count up to 64 for the 32-value formats.
/// The 256-value super-blocks take every count up to 16, past every kernel's unrolled step and its remainders,
/// then counts around 32 and 64: the K-format references are the slow part of the SIMD tests (five-sixths of
/// their sanitized time with every count to 64), and a longer run repeats the same steps.
std::vector<std::size_t> dot_block_counts(std::size_t block_size) {
    std::vector<std::size_t> counts;
    for (std::size_t blocks = 1; blocks <= (block_size == 32 ? 64u : 16u); ++blocks) counts.push_back(blocks);
    if (block_size != 32) counts.insert(counts.end(), {31u, 32u, 33u, 47u, 63u, 64u});
    return counts;
}

template <BlockFormat W, BlockFormat A>
void check_dot_format() {
    static_assert(activation_type_for(W::type) == A::type);
    for (const auto isa : test::simd_isas()) {
        const auto kernel = dispatch::table_for(isa)[W::type].dot_quantized;
        CAPTURE(std::string(isa));
        CAPTURE(std::string(info(W::type).name));
        REQUIRE(static_cast<bool>(kernel));
        test::rng r(0x5eed0000u + static_cast<std::uint64_t>(W::type));
        std::size_t checked = 0;
        for (const std::size_t blocks : dot_block_counts(W::block_size)) {
            const std::size_t n = blocks * W::block_size;
            for (const fill how : fills) {
                // Extreme weights against each extreme of the activations (-128, 127, alternating) and against
                // random ones; random weights against alternating extremes.
                for (int variant = 0; variant < (how == fill::random ? 1 : 5); ++variant) {
                    const fill weight_fill = variant == 4 ? fill::random : how;
                    const fill activation_fill = variant == 3 ? fill::random : how;
                    const auto w = make_weights<W>(blocks, weight_fill, r);
                    const auto a = make_activations<A>(n, activation_fill, variant == 4 ? 2 : variant, r);
                    CAPTURE(blocks);
                    CAPTURE(static_cast<int>(how));
                    CAPTURE(variant);
                    require_dot_within_bound<W>(kernel, w, a, n, blocks, vec_dot_quantized<W, A>(w, a, n),
                                                magnitude<W, A>(w.data(), a.data(), n));
                    ++checked;
                }
            }
        }
        CHECK(checked > 0);
    }
}

/// A table format's weights: bytes filled as `how` says, then each block's scale field: a random fp16 (iq4_nl,
/// iq4_xs) or exponent byte in [100, 150] (mxfp4: larger ones overflow the sums to infinity), or with
/// `zero_scale` the smallest scale (fp16 zero; mxfp4's exponent 0, a subnormal).
template <TableFormat W>
std::vector<std::byte> make_table_weights(std::size_t blocks, fill how, bool zero_scale, test::rng& r) {
    std::vector<std::byte> w(blocks * W::type_size);
    fill_bytes(w, how, r);
    for (std::size_t b = 0; b < blocks; ++b) {
        std::byte* block = w.data() + b * W::type_size;
        if constexpr (W::type == ggml_type::mxfp4) {
            block[0] = zero_scale ? std::byte{0} : static_cast<std::byte>(100 + r.next() % 51);
        } else {
            const std::uint16_t h = zero_scale ? std::uint16_t{0} : random_half(r);
            // The ternary formats' fp16 scale follows their codes; the other formats' leads the block.
            if constexpr (W::type == ggml_type::tq1_0 || W::type == ggml_type::tq2_0)
                std::memcpy(block + W::d_at, &h, 2);
            else
                std::memcpy(block, &h, 2);
        }
    }
    return w;
}

/// magnitude() for a table format: sum of |scale * da| * sum|entry * qa| over every sub-block.
template <TableFormat W, BlockFormat A>
double table_magnitude(const std::byte* w, const std::byte* a, std::size_t n) {
    double total = 0.0;
    for (std::size_t b = 0; b < n / W::block_size; ++b) {
        const std::byte* wb = w + b * W::type_size;
        const std::byte* ab = a + b * A::type_size;
        const float da = A::sub_block_scale(ab, 0).scale;
        for (std::size_t sub = 0; sub < W::block_size / W::sub_block_size; ++sub) {
            double products = 0.0;
            for (std::size_t j = 0; j < W::sub_block_size; ++j) {
                const std::size_t i = sub * W::sub_block_size + j;
                products += std::abs(W::values[W::index_at(wb, i)] * stored_level<A>(ab, i));
            }
            total += std::fabs(static_cast<double>(W::scale(wb, sub, da))) * products;
        }
    }
    return total;
}

/// check_dot_format() for a table format against the reference vec_dot_table, with scales of zero too.
template <TableFormat W, BlockFormat A>
void check_table_dot_format() {
    static_assert(activation_type_for(W::type) == A::type);
    for (const auto isa : test::simd_isas()) {
        const auto kernel = dispatch::table_for(isa)[W::type].dot_quantized;
        CAPTURE(std::string(isa));
        CAPTURE(std::string(info(W::type).name));
        REQUIRE(static_cast<bool>(kernel));
        test::rng r(0x7ab1e000u + static_cast<std::uint64_t>(W::type));
        std::size_t checked = 0;
        for (std::size_t blocks = 1; blocks <= (W::block_size == 32 ? 40u : 12u); ++blocks) {
            const std::size_t n = blocks * W::block_size;
            for (const fill how : fills) {
                for (int variant = 0; variant < (how == fill::random ? 2 : 6); ++variant) {
                    // Variants 0-2: activations at -128, 127, alternating; 3: random activations; 4: random weights;
                    // 5: scales of zero. Random weights get a zero-scale pass too (variant 1).
                    const fill weight_fill = variant == 4 ? fill::random : how;
                    const fill activation_fill = variant == 3 || variant == 5 ? fill::random : how;
                    const bool zero_scale = variant == 5 || (how == fill::random && variant == 1);
                    const auto w = make_table_weights<W>(blocks, weight_fill, zero_scale, r);
                    const auto a = make_activations<A>(n, activation_fill, variant == 4 ? 2 : variant % 3, r);
                    CAPTURE(blocks);
                    CAPTURE(static_cast<int>(how));
                    CAPTURE(variant);
                    require_dot_within_bound<W>(kernel, w, a, n, blocks, vec_dot_table<W, A>(w, a, n),
                                                table_magnitude<W, A>(w.data(), a.data(), n));
                    ++checked;
                }
            }
        }
        CHECK(checked > 0);
    }
}

/// Inputs for the activation quantizers: random at several scales, zeros, exact ties, huge and tiny values,
/// and blocks whose largest magnitude occurs with both signs.
std::vector<float> activation_inputs(std::size_t n, int kind, test::rng& r) {
    std::vector<float> x = test::gaussian_values(n, r.next(), kind == 0 ? 1.0 : 1e-3);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t in_block = i % 32;
        switch (kind) {
            case 2:
                x[i] = 0.0f;
                break;
            case 3:  // amax 127 makes the inverse scale 1 (q8_K: -1): every k + 0.5 is a tie.
                x[i] = in_block == 5 ? (i % 64 < 32 ? 127.0f : -127.0f) : static_cast<float>(static_cast<int>(in_block) - 16) + 0.5f;
                break;
            case 4:
                x[i] = (i % 3 ? 1.0f : -1.0f) * (in_block == 7 ? FLT_MAX : static_cast<float>(r.uniform()) * 3e38f);
                break;
            case 5:
                x[i] = (i % 2 ? 1.0f : -1.0f) * static_cast<float>(r.uniform()) * 1e-38f;
                break;  // 127/amax overflows
            case 6:
                x[i] = (i % 2 ? 1.0f : -1.0f) * 1e-45f * static_cast<float>(r.next() % 4);
                break;  // subnormals
            case 7:
                x[i] = in_block == 3 ? 3.0f : in_block == 9 ? -3.0f : x[i];
                break;
            case 8:
                x[i] = in_block == 3 ? -3.0f : in_block == 9 ? 3.0f : x[i];
                break;
            case 9:
                if (i % 64 < 32) x[i] = 0.0f;  // zero blocks next to ordinary ones
                break;
            default:
                break;
        }
    }
    return x;
}

/// The scalar references block by block: quantize_activations() itself runs the active SIMD table's kernel.
void reference_activations(ggml_type type, const std::vector<float>& x, std::vector<std::byte>& out) {
    const std::size_t block = info(type).block_size, type_size = info(type).type_size;
    for (std::size_t b = 0; b < x.size() / block; ++b) {
        if (type == ggml_type::q8_K)
            formats::q8_K::quantize_block(x.data() + b * block, out.data() + b * type_size);
        else
            cogqat::detail::quantize_activation_block_q8(x.data() + b * block, out.data() + b * type_size, type == ggml_type::q8_1);
    }
}

void check_activation_quantizer(ggml_type type) {
    const std::size_t block = info(type).block_size, type_size = info(type).type_size;
    for (const auto isa : test::simd_isas()) {
        const auto kernel = dispatch::table_for(isa)[type].quantize_activations;
        CAPTURE(std::string(isa));
        CAPTURE(std::string(info(type).name));
        REQUIRE(static_cast<bool>(kernel));
        test::rng r(0xac7u + static_cast<std::uint64_t>(type));
        for (int kind = 0; kind < 10; ++kind) {
            for (std::size_t blocks : {1u, 2u, 3u, 7u, 16u, 33u}) {
                const std::size_t n = blocks * block;
                const auto x = activation_inputs(n, kind, r);
                std::vector<std::byte> expected(blocks * type_size);
                reference_activations(type, x, expected);
                // Unaligned input and output.
                std::vector<float> xbuf(n + 1);
                std::memcpy(xbuf.data() + 1, x.data(), n * sizeof(float));
                std::vector<std::byte> out(expected.size() + 3, std::byte{0x5a});
                kernel(xbuf.data() + 1, out.data() + 3, n);
                CAPTURE(kind);
                CAPTURE(blocks);
                REQUIRE(std::memcmp(out.data() + 3, expected.data(), expected.size()) == 0);
            }
        }
    }
}

}  // namespace simd_dot_test
}  // namespace

TEST_CASE("every SIMD table has a quantized dot product for every weight format and the activation quantizers") {
    const auto isas = test::simd_isas();
    for (const auto isa : isas) {
        const auto& t = dispatch::table_for(isa);
        CAPTURE(std::string(isa));
        for (const ggml_type type : {ggml_type::q4_0, ggml_type::q4_1, ggml_type::q5_0, ggml_type::q5_1, ggml_type::q8_0, ggml_type::q2_K,
                                     ggml_type::q3_K, ggml_type::q4_K, ggml_type::q5_K, ggml_type::q6_K, ggml_type::iq4_nl,
                                     ggml_type::iq4_xs, ggml_type::mxfp4, ggml_type::tq1_0, ggml_type::tq2_0})
            CHECK(static_cast<bool>(t[type].dot_quantized));
        for (const ggml_type type : {ggml_type::q8_0, ggml_type::q8_1, ggml_type::q8_K})
            CHECK(static_cast<bool>(t[type].quantize_activations));
    }
#if defined(__x86_64__)
    // On x86-64 the AVX2 and AVX-512 tables are the point of the exercise: they must be there where the CPU has them.
    for (const char* isa : {"avx2", "avx512", "avx512_vnni"})
        if (dispatch::cpu_supports(isa) && test::meant_to_link(isa))
            CHECK(std::find(isas.begin(), isas.end(), std::string_view(isa)) != isas.end());
#endif
}

TEST_CASE_TEMPLATE("SIMD quantized dot products agree with the reference within the float accumulation error", W, formats::q4_0,
                   formats::q5_0, formats::q8_0, formats::q4_1, formats::q5_1, formats::q2_K, formats::q3_K, formats::q4_K, formats::q5_K,
                   formats::q6_K) {
    using namespace formats;
    if constexpr (W::block_size == 32 && W::has_min)
        simd_dot_test::check_dot_format<W, q8_1>();
    else if constexpr (W::block_size == 32)
        simd_dot_test::check_dot_format<W, q8_0>();
    else
        simd_dot_test::check_dot_format<W, q8_K>();
}

TEST_CASE_TEMPLATE("SIMD quantized dot products of the table formats agree with the reference within the float accumulation error", W,
                   formats::iq4_nl, formats::mxfp4, formats::iq4_xs, formats::tq1_0, formats::tq2_0) {
    simd_dot_test::check_table_dot_format<W, std::conditional_t<W::block_size == 32, formats::q8_0, formats::q8_K>>();
}

TEST_CASE("SIMD dot-product activation quantizers give the reference's bytes") {
    for (const ggml_type type : {ggml_type::q8_0, ggml_type::q8_1, ggml_type::q8_K}) simd_dot_test::check_activation_quantizer(type);
}

TEST_CASE_TEMPLATE("the AVX2 and AVX-512 K-format dot products give the same floats, bit for bit", W, formats::q2_K, formats::q3_K,
                   formats::q4_K, formats::q5_K, formats::q6_K) {
    // The 512-bit kernels fold two 256-bit registers' exact integer lanes into the lanes the 256-bit kernel
    // forms, then take the same float steps: the register width must not show in a single bit.
    using namespace simd_dot_test;
    using A = formats::q8_K;
    std::vector<std::string_view> wide;
    for (const auto isa : test::simd_isas())
        if (isa.starts_with("avx")) wide.push_back(isa);
    if (wide.size() < 2) {
        MESSAGE("fewer than two AVX tables run here: nothing to compare");
        return;
    }
    test::rng r(0x5a3e0000u + static_cast<std::uint64_t>(W::type));
    for (std::size_t blocks : {1u, 3u, 8u}) {
        const std::size_t n = blocks * W::block_size;
        for (const fill how : fills) {
            const auto w = make_weights<W>(blocks, how, r);
            const auto a = make_activations<A>(n, how, 1, r);
            const float first = dispatch::table_for(wide[0])[W::type].dot_quantized(w.data(), a.data(), n);
            for (const auto isa : wide) {
                const float got = dispatch::table_for(isa)[W::type].dot_quantized(w.data(), a.data(), n);
                CAPTURE(std::string(isa));
                CAPTURE(blocks);
                REQUIRE(std::memcmp(&got, &first, sizeof(float)) == 0);
            }
        }
    }
}

TEST_CASE_TEMPLATE("SIMD K-format batch dot products give each vector's single dot product bit for bit", W, formats::q2_K, formats::q3_K,
                   formats::q4_K, formats::q5_K, formats::q6_K) {
    using namespace simd_dot_test;
    using A = formats::q8_K;
    std::size_t tables = 0;
    for (const auto isa : test::simd_isas()) {
        const auto& t = dispatch::table_for(isa)[W::type];
        if (!t.dot_quantized_batch) continue;
        ++tables;
        CAPTURE(std::string(isa));
        test::rng r(0xba7c0000u + static_cast<std::uint64_t>(W::type));
        for (std::size_t blocks : {1u, 2u, 5u}) {
            const std::size_t n = blocks * W::block_size;
            for (const fill how : fills) {
                const auto w = make_weights<W>(blocks, how, r);
                std::vector<std::vector<std::byte>> a;
                for (std::size_t v = 0; v < 4; ++v) a.push_back(make_activations<A>(n, v % 2 ? fill::random : how, static_cast<int>(v), r));
                std::vector<const std::byte*> inputs;
                for (const auto& x : a) inputs.push_back(x.data());
                for (std::size_t vectors = 1; vectors <= 4; ++vectors) {
                    float got[4] = {};
                    t.dot_quantized_batch(w.data(), inputs.data(), vectors, n, got);
                    for (std::size_t v = 0; v < vectors; ++v) {
                        const float single = t.dot_quantized(w.data(), a[v].data(), n);
                        CAPTURE(blocks);
                        CAPTURE(vectors);
                        CAPTURE(v);
                        REQUIRE(std::memcmp(&got[v], &single, sizeof(float)) == 0);
                    }
                }
            }
        }
    }
#if defined(__x86_64__)
    if (dispatch::cpu_supports("avx2")) CHECK(tables > 0);
#endif
}
