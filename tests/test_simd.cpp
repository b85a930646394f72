// The SIMD backend's dispatch and its dequantize, 32-value quantize and float-dot kernels, for every
// instruction set this machine runs, against the scalar reference.

#include <cogqat/cogqat.hpp>
#include <cogqat/dispatch/kernel_table.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "linked_isas.hpp"
#include "random_data.hpp"

using namespace cogqat;

TEST_CASE("the SIMD tables linked in are registered and the best runnable one is active") {
    const auto linked = dispatch::linked_isas();
    REQUIRE(!linked.empty());
    CHECK(linked.front() == dispatch::scalar_isa);
    const auto runnable = dispatch::linked_isas(true);
    const auto& active = dispatch::active();
    CHECK(std::find(runnable.begin(), runnable.end(), active.isa) != runnable.end());
    for (const auto name : runnable) CHECK(dispatch::table_for(name).isa == name);
    MESSAGE("linked: " << linked.size() << ", active: " << std::string(active.isa));
}

namespace {

constexpr ggml_type block_types[] = {ggml_type::q4_0,   ggml_type::q4_1,   ggml_type::q5_0,  ggml_type::q5_1,
                                     ggml_type::q8_0,   ggml_type::q8_1,   ggml_type::q2_K,  ggml_type::q3_K,
                                     ggml_type::q4_K,   ggml_type::q5_K,   ggml_type::q6_K,  ggml_type::q8_K,
                                     ggml_type::iq4_nl, ggml_type::iq4_xs, ggml_type::mxfp4, ggml_type::tq2_0};
constexpr ggml_type weight_types[] = {ggml_type::f32,   ggml_type::f16,  ggml_type::bf16, ggml_type::q4_0,   ggml_type::q4_1,
                                      ggml_type::q5_0,  ggml_type::q5_1, ggml_type::q8_0, ggml_type::q2_K,   ggml_type::q3_K,
                                      ggml_type::q4_K,  ggml_type::q5_K, ggml_type::q6_K, ggml_type::iq4_nl, ggml_type::iq4_xs,
                                      ggml_type::mxfp4, ggml_type::tq2_0};
constexpr ggml_type table_types[] = {ggml_type::iq4_nl, ggml_type::iq4_xs, ggml_type::mxfp4, ggml_type::tq2_0};

/// Edge blocks of a table format: every byte `pattern` (so all indices 0, all 15, alternating, and for
/// iq4_xs the group scales the pattern spells), then the scale field set to `scale`: fp16 bits for iq4_nl,
/// iq4_xs, tq1_0 and tq2_0 (zero, -0, the largest, its negative, the smallest subnormal, 1), the exponent byte for mxfp4.
std::vector<std::byte> edge_blocks(ggml_type type, std::uint8_t pattern, std::uint16_t scale, std::size_t blocks) {
    const std::size_t size = info(type).type_size;
    std::vector<std::byte> bytes(blocks * size, std::byte{pattern});
    for (std::size_t b = 0; b < blocks; ++b) {
        if (type == ggml_type::mxfp4)
            bytes[b * size] = static_cast<std::byte>(scale & 0xff);
        else if (type == ggml_type::tq1_0)
            store_le<std::uint16_t>(bytes.data() + b * size + formats::tq1_0::d_at, scale);  // after the digits
        else if (type == ggml_type::tq2_0)
            store_le<std::uint16_t>(bytes.data() + b * size + formats::tq2_0::d_at, scale);  // after the codes
        else
            store_le<std::uint16_t>(bytes.data() + b * size, scale);
    }
    return bytes;
}
constexpr std::uint8_t edge_patterns[] = {0x00, 0xff, 0x0f, 0xf0, 0x78, 0x87};
constexpr std::uint16_t edge_half_scales[] = {0x0000, 0x8000, 0x7bff, 0xfbff, 0x0001, 0x3c00};
constexpr std::uint16_t edge_exponents[] = {0, 1, 2, 127, 254, 255};

/// Blocks of random bytes: every level pattern, and scales of any value, NaN and Inf included (the SIMD
/// product and difference propagate a NaN operand exactly as the scalar ones do).
std::vector<std::byte> random_blocks(ggml_type type, std::size_t blocks, std::uint64_t seed) {
    test::rng r(seed);
    std::vector<std::byte> bytes(blocks * info(type).type_size);
    for (auto& b : bytes) b = static_cast<std::byte>(r.next() & 0xff);
    return bytes;
}

bool same_bits(std::span<const float> a, std::span<const float> b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("SIMD dequantize gives the reference's floats bit for bit, on every instruction set") {
    const auto isas = test::simd_isas();
    for (const auto isa : isas) {
        const auto& table = dispatch::table_for(isa);
        for (const ggml_type type : block_types) {
            CAPTURE(std::string(isa));
            CAPTURE(std::string(info(type).name));
            const auto kernel = table[type].dequantize;
            REQUIRE(static_cast<bool>(kernel));
            const auto& reference = cogqat::detail::codec_for(type, "test");
            for (std::size_t blocks : {1u, 2u, 3u, 7u, 16u}) {
                const auto bytes = random_blocks(type, blocks, blocks * 131 + static_cast<unsigned>(type));
                const std::size_t n = blocks * info(type).block_size;
                std::vector<float> expected(n), got(n + 3);
                reference.dequantize(bytes.data(), expected.data(), n);
                for (std::size_t shift : {0u, 1u, 3u}) {
                    std::vector<std::byte> unaligned(bytes.size() + shift);
                    std::memcpy(unaligned.data() + shift, bytes.data(), bytes.size());
                    kernel(unaligned.data() + shift, got.data() + shift, n);
                    CHECK(same_bits(expected, std::span<const float>(got.data() + shift, n)));
                }
            }
        }
    }
}

TEST_CASE("SIMD dequantize of the table formats gives the reference's floats on edge blocks: zero, extreme indices and scales") {
    for (const auto isa : test::simd_isas()) {
        for (const ggml_type type : table_types) {
            CAPTURE(std::string(isa));
            CAPTURE(std::string(info(type).name));
            const auto kernel = dispatch::table_for(isa)[type].dequantize;
            REQUIRE(static_cast<bool>(kernel));
            const auto& reference = cogqat::detail::codec_for(type, "test");
            for (const std::uint8_t pattern : edge_patterns) {
                for (std::size_t k = 0; k < std::size(edge_half_scales); ++k) {
                    const std::uint16_t scale = type == ggml_type::mxfp4 ? edge_exponents[k] : edge_half_scales[k];
                    const auto bytes = edge_blocks(type, pattern, scale, 3);
                    const std::size_t n = 3 * info(type).block_size;
                    std::vector<float> expected(n), got(n);
                    reference.dequantize(bytes.data(), expected.data(), n);
                    kernel(bytes.data(), got.data(), n);
                    CAPTURE(static_cast<int>(pattern));
                    CAPTURE(scale);
                    CHECK(same_bits(expected, got));
                }
            }
        }
    }
}

TEST_CASE("SIMD fp16 and bf16 conversion agree with the reference on all 65,536 bit patterns") {
    std::vector<std::byte> bytes(2 * 65536);
    for (std::uint32_t v = 0; v < 65536; ++v) store_le<std::uint16_t>(bytes.data() + 2 * v, static_cast<std::uint16_t>(v));
    for (const auto isa : test::simd_isas()) {
        for (const ggml_type type : {ggml_type::f16, ggml_type::bf16}) {
            CAPTURE(std::string(isa));
            CAPTURE(std::string(info(type).name));
            std::vector<float> expected(65536), got(65536);
            cogqat::detail::codec_for(type, "test").dequantize(bytes.data(), expected.data(), 65536);
            REQUIRE(static_cast<bool>(dispatch::table_for(isa)[type].dequantize));
            dispatch::table_for(isa)[type].dequantize(bytes.data(), got.data(), 65536);
            CHECK(same_bits(expected, got));
            // A length that is not a whole number of batches: the tail takes the scalar path.
            dispatch::table_for(isa)[type].dequantize(bytes.data() + 2, got.data(), 37);
            CHECK(same_bits(std::span<const float>(expected.data() + 1, 37), std::span<const float>(got.data(), 37)));
        }
    }
}

TEST_CASE("SIMD float dot products agree with the reference within the bound of their summation order") {
    for (const auto isa : test::simd_isas()) {
        const auto& table = dispatch::table_for(isa);
        for (const ggml_type type : weight_types) {
            CAPTURE(std::string(isa));
            CAPTURE(std::string(info(type).name));
            const auto kernel = table[type].dot_float;
            REQUIRE(static_cast<bool>(kernel));
            const std::size_t block = info(type).block_size == 1 ? 32 : info(type).block_size;
            for (std::size_t blocks : {1u, 2u, 5u, 17u, 64u}) {
                const std::size_t n = blocks * block + (info(type).block_size == 1 ? 5 : 0);
                const auto w = test::laplace_with_outliers(n, blocks * 7 + 1);
                const auto x = test::gaussian_values(n, blocks * 7 + 2);
                const auto bytes = quantize(type, w);
                const auto decoded = dequantize(type, bytes);
                std::vector<float> scratch;
                const float expected = vec_dot_float(type, bytes, x, scratch);
                // Both sums are within (terms + depth) * eps * sum|w x| of the exact one; a min term is rounded
                // differently (per value in the reference, per sub-block here), so it counts in the bound.
                double magnitude = 0.0;
                for (std::size_t i = 0; i < n; ++i) magnitude += std::fabs(double(decoded[i]) * x[i]) + std::fabs(double(w[i]) * x[i]);
                const double bound = 2.0 * (double(n) + 64.0) * FLT_EPSILON * magnitude;
                std::vector<std::byte> unaligned(bytes.size() + 1);
                std::memcpy(unaligned.data() + 1, bytes.data(), bytes.size());
                std::vector<float> x_unaligned(n + 1);
                std::copy(x.begin(), x.end(), x_unaligned.begin() + 1);
                const float got = kernel(unaligned.data() + 1, x_unaligned.data() + 1, n);
                CHECK(std::fabs(double(got) - double(expected)) <= bound);
            }
        }
    }
}

TEST_CASE("SIMD f32, f16 and bf16 block products give each row and vector its single dot product bit for bit") {
    // Up to 9 rows and 9 vectors: whole register tiles, tiles short of rows or vectors, and both; lengths
    // shorter than a register, between the 4-register steps, and long.
    constexpr std::size_t most = 9;
    for (const auto isa : test::simd_isas()) {
        const auto& table = dispatch::table_for(isa);
        for (const ggml_type type : {ggml_type::f32, ggml_type::f16, ggml_type::bf16}) {
            CAPTURE(std::string(isa));
            CAPTURE(std::string(info(type).name));
            const auto block = table[type].dot_float_block;
            REQUIRE(static_cast<bool>(block));
            for (std::size_t n : {1u, 7u, 16u, 67u, 200u, 1024u}) {
                CAPTURE(n);
                const auto bytes = quantize(type, test::laplace_with_outliers(most * n, n + 3));
                const std::size_t row_bytes = storage_size(type, n);
                std::vector<std::vector<float>> x;
                std::vector<const float*> inputs;
                for (std::size_t v = 0; v < most; ++v) x.push_back(test::gaussian_values(n, n * 5 + v));
                for (const auto& xv : x) inputs.push_back(xv.data());
                for (std::size_t rows = 1; rows <= most; ++rows)
                    for (std::size_t vectors = 1; vectors <= most; ++vectors) {
                        CAPTURE(rows);
                        CAPTURE(vectors);
                        std::vector<float> got(vectors * most, std::nanf(""));
                        block(bytes.data(), row_bytes, rows, inputs.data(), vectors, n, got.data(), most);
                        for (std::size_t v = 0; v < vectors; ++v)
                            for (std::size_t r = 0; r < rows; ++r) {
                                const float single = table[type].dot_float(bytes.data() + r * row_bytes, x[v].data(), n);
                                REQUIRE(std::memcmp(&got[v * most + r], &single, sizeof(float)) == 0);
                            }
                    }
            }
        }
    }
}

TEST_CASE("gemv and gemm equal one dot product per row, with any thread count, and check their sizes") {
    const std::size_t rows = 70, cols = 512;
    for (const ggml_type type : {ggml_type::f32, ggml_type::q4_0, ggml_type::q4_K, ggml_type::q8_0, ggml_type::f16}) {
        CAPTURE(std::string(info(type).name));
        const auto w = test::gaussian_values(rows * cols, 3);
        const auto bytes = quantize(type, w);
        const auto x = test::gaussian_values(3 * cols, 4);
        for (const auto mode : {activation_mode::quantized, activation_mode::float32}) {
            std::vector<float> one(rows), two(rows), batched(3 * rows);
            simd::gemv(type, bytes, rows, cols, std::span<const float>(x.data(), cols), one, 1, mode);
            simd::gemv(type, bytes, rows, cols, std::span<const float>(x.data(), cols), two, 3, mode);
            CHECK(one == two);
            simd::gemm(type, bytes, rows, cols, x, 3, batched, 2, mode);
            CHECK(std::equal(one.begin(), one.end(), batched.begin()));
            for (std::size_t v = 1; v < 3; ++v) {
                simd::gemv(type, bytes, rows, cols, std::span<const float>(x.data() + v * cols, cols), one, 1, mode);
                CHECK(std::equal(one.begin(), one.end(), batched.begin() + static_cast<std::ptrdiff_t>(v * rows)));
            }
        }
        std::vector<float> y(rows);
        CHECK_THROWS_AS(simd::gemv(type, std::span<const std::byte>(bytes).first(bytes.size() - 1), rows, cols,
                                   std::span<const float>(x.data(), cols), y),
                        shape_error);
        CHECK_THROWS_AS(simd::gemv(type, bytes, rows, cols, std::span<const float>(x.data(), cols - 1), y), shape_error);
        CHECK_THROWS_AS(simd::gemv(type, bytes, rows, cols, std::span<const float>(x.data(), cols), std::span<float>(y).first(rows - 1)),
                        shape_error);
        std::vector<float> bad(x.begin(), x.begin() + cols);
        bad[17] = std::nanf("");
        if (type != ggml_type::f32) CHECK_THROWS_AS(simd::gemv(type, bytes, rows, cols, bad, y), value_error);
    }
}

TEST_CASE("gemm over matrices of several cache blocks gives every vector of a long batch its own gemv, bit for bit") {
    // 1000 rows of 512 values span several of gemm's L2 blocks for each type, and 9 vectors leave a
    // remainder after the groups of 4: each block meets every group, the last one short.
    const std::size_t rows = 1000, cols = 512, vectors = 9;
    for (const ggml_type type : {ggml_type::f32, ggml_type::q4_K, ggml_type::q6_K, ggml_type::q4_0, ggml_type::q8_0, ggml_type::q5_1}) {
        CAPTURE(std::string(info(type).name));
        const auto bytes = quantize(type, test::gaussian_values(rows * cols, 5));
        REQUIRE(simd::detail::rows_per_block(storage_size(type, cols)) < rows / 2);
        const auto x = test::gaussian_values(vectors * cols, 6);
        std::vector<float> batched(vectors * rows), threaded(vectors * rows), one(rows);
        simd::gemm(type, bytes, rows, cols, x, vectors, batched, 1);
        simd::gemm(type, bytes, rows, cols, x, vectors, threaded, 2);
        CHECK(std::memcmp(batched.data(), threaded.data(), batched.size() * sizeof(float)) == 0);
        for (std::size_t v = 0; v < vectors; ++v) {
            simd::gemv(type, bytes, rows, cols, std::span<const float>(x).subspan(v * cols, cols), one, 1);
            CHECK(std::memcmp(one.data(), batched.data() + v * rows, rows * sizeof(float)) == 0);
        }
        if (type != ggml_type::f32) {
            // The batch's vectors are encoded on the threads too: a bad one still fails the call.
            auto bad = x;
            bad[7 * cols + 3] = std::nanf("");
            CHECK_THROWS_AS(simd::gemm(type, bytes, rows, cols, bad, vectors, threaded, 2), value_error);
        }
        if (simd::interleaved_layout_for(type)) {
            const simd::interleaved_matrix m(type, bytes, rows, cols);
            REQUIRE(simd::detail::rows_per_block(m.group_bytes()) < m.groups() / 2);
            std::vector<float> interleaved(vectors * rows), single(rows);
            simd::gemm(m, x, vectors, interleaved, 2);
            for (std::size_t v = 0; v < vectors; ++v) {
                simd::gemm(m, std::span<const float>(x).subspan(v * cols, cols), 1, single, 1);
                CHECK(std::memcmp(single.data(), interleaved.data() + v * rows, rows * sizeof(float)) == 0);
            }
        }
    }
}

TEST_CASE("forcing an instruction set: use_isa switches the table, unknown or unrunnable names are refused") {
    const auto before = dispatch::active().isa;
    CHECK_THROWS_AS(dispatch::use_isa("no-such-isa"), invalid_argument_error);
    for (const auto name : dispatch::linked_isas(true)) {
        dispatch::use_isa(name);
        CHECK(dispatch::active().isa == name);
    }
    dispatch::use_isa(before);
    CHECK(dispatch::active().isa == before);
}

TEST_CASE("COGQAT_SIMD picks a fresh process's table, and a name that is not linked in or runnable is refused with the linked list") {
    // The choice a fresh process makes, made again here (the active table stays as it is).
    auto& registry = dispatch::detail::registry();
    const char* saved = std::getenv("COGQAT_SIMD");
    const std::string restore = saved ? saved : "";
    ::setenv("COGQAT_SIMD", "no-such-isa", 1);
    CHECK_THROWS_WITH_AS((void)dispatch::detail::default_table(registry),
                         doctest::Contains("COGQAT_SIMD=no-such-isa: no such instruction set linked in or runnable here; linked: scalar"),
                         invalid_argument_error);
    for (const auto name : dispatch::linked_isas(true)) {
        ::setenv("COGQAT_SIMD", std::string(name).c_str(), 1);
        CHECK(dispatch::detail::default_table(registry)->isa == name);
    }
    ::unsetenv("COGQAT_SIMD");
    const auto* best = dispatch::detail::default_table(registry);
    for (const auto& t : registry.tables)
        if (dispatch::cpu_supports(t.isa)) CHECK(best->priority >= t.priority);
    if (saved) ::setenv("COGQAT_SIMD", restore.c_str(), 1);
}

TEST_CASE("the run-time query says what is linked and active, and every linked set is registered at its rank") {
    CHECK(dispatch::kernels_linked());
    const std::string line = dispatch::describe();
    CHECK(line.find("cogqat SIMD: active " + std::string(dispatch::active().isa)) == 0);
    for (const auto name : dispatch::linked_isas()) CHECK(line.find(std::string(name)) != std::string::npos);
    for (const auto& t : dispatch::detail::registry().tables) {
        CAPTURE(std::string(t.isa));
        CHECK(t.priority == dispatch::isa_priority(t.isa));
        // A set this CPU cannot run is never built: its table would run code compiled for it.
        if (!dispatch::cpu_supports(t.isa)) CHECK(t.table == nullptr);
    }
    for (const auto name : dispatch::linked_isas(true)) CHECK(dispatch::table_for(name).priority == dispatch::isa_priority(name));
    // Every set the build meant to link, that this machine runs, is here: the kernel library was not dropped.
    for (const std::string_view name : {"sse4.2", "avx2", "avx512", "avx512_vnni", "neon"}) {
        CAPTURE(std::string(name));
        if (dispatch::cpu_supports(name) && test::meant_to_link(name)) {
            const auto runnable = dispatch::linked_isas(true);
            CHECK(std::find(runnable.begin(), runnable.end(), name) != runnable.end());
        }
    }
}

namespace {

int foreign_builds = 0;
const dispatch::kernel_table& build_foreign_table() {
    ++foreign_builds;
    static const dispatch::kernel_table table{};
    return table;
}

}  // namespace

TEST_CASE("a linked set this CPU cannot run is listed but never built: none of its code runs") {
#if defined(__aarch64__) || defined(_M_ARM64)
    constexpr std::string_view foreign = "avx2";
#else
    constexpr std::string_view foreign = "neon";
#endif
    REQUIRE(!dispatch::cpu_supports(foreign));
    dispatch::register_kernels(foreign, &build_foreign_table);
    const auto linked = dispatch::linked_isas();
    CHECK(std::find(linked.begin(), linked.end(), foreign) != linked.end());
    const auto runnable = dispatch::linked_isas(true);
    CHECK(std::find(runnable.begin(), runnable.end(), foreign) == runnable.end());
    CHECK(dispatch::active().isa != foreign);
    CHECK_THROWS_WITH_AS((void)dispatch::table_for(foreign), doctest::Contains("cannot run on this CPU"), invalid_argument_error);
    CHECK(dispatch::describe().find(std::string(foreign) + " (not on this CPU)") != std::string::npos);
    CHECK(foreign_builds == 0);
}

TEST_CASE("registering a set twice keeps the first, and the ranks order the sets as the CPU prefers them") {
    const auto before = dispatch::linked_isas();
    static const dispatch::kernel_table duplicate{"sse4.2", dispatch::isa_priority("sse4.2"), {}};
    if (std::find(before.begin(), before.end(), "sse4.2") != before.end()) {
        dispatch::register_kernels(duplicate);
        CHECK(dispatch::linked_isas() == before);
        if (dispatch::cpu_supports("sse4.2")) CHECK(&dispatch::table_for("sse4.2") != &duplicate);
    }
    CHECK(dispatch::isa_priority("sse4.2") < dispatch::isa_priority("avx2"));
    CHECK(dispatch::isa_priority("avx2") < dispatch::isa_priority("avx512"));
    CHECK(dispatch::isa_priority("avx512") < dispatch::isa_priority("avx512_vnni"));
    CHECK(dispatch::isa_priority(dispatch::scalar_isa) == dispatch::scalar_table().priority);
    CHECK(dispatch::isa_priority("no-such-isa") > dispatch::isa_priority(dispatch::scalar_isa));
    CHECK(dispatch::isa_priority("no-such-isa") < dispatch::isa_priority("sse4.2"));
}

namespace {

template <class Bits, class Granularity, class Mode>
void check_quantizer_backends(std::size_t rows, std::size_t cols) {
    using scalar = quantizer<Bits, Granularity, Mode, backend::Scalar>;
    using vectorized = quantizer<Bits, Granularity, Mode, backend::Simd>;
    auto values = test::laplace_with_outliers(rows * cols, rows * 31 + cols);
    for (std::size_t i = 0; i < values.size(); i += 97) values[i] = 0.0f;  // exact zeros and ties at level 0
    for (std::size_t i = 5; i < values.size(); i += 211) values[i] = -0.0f;
    const auto x = make_matrix_view(values.data(), rows, cols);
    const auto expected = scalar::quantize(x);
    const auto expected_values = scalar::dequantize(expected);
    std::vector<float> faked(values.size()), faked_expected(values.size());
    scalar::fake_quantize(std::span<const float>(values), std::span<float>(faked_expected));
    const auto before = dispatch::active().isa;
    for (const auto isa : dispatch::linked_isas(true)) {
        CAPTURE(std::string(isa));
        dispatch::use_isa(isa);
        const auto got = vectorized::quantize(x);
        CHECK(std::equal(got.codes().begin(), got.codes().end(), expected.codes().begin(), expected.codes().end()));
        CHECK(same_bits(vectorized::dequantize(got), expected_values));
        vectorized::fake_quantize(std::span<const float>(values), std::span<float>(faked));
        CHECK(same_bits(faked, faked_expected));
    }
    dispatch::use_isa(before);
}

}  // namespace

TEST_CASE("the generic quantizer on backend::Simd gives the scalar backend's codes and floats") {
    REQUIRE(static_cast<bool>(dispatch::active().quantizer.encode_u8));
    check_quantizer_backends<BitWidth<4>, PerGroup<32>, Symmetric>(6, 96);
    check_quantizer_backends<BitWidth<3>, PerRow, Asymmetric>(5, 77);
    check_quantizer_backends<BitWidth<8>, PerTensor, Symmetric>(3, 50);
    check_quantizer_backends<BitWidth<12>, PerGroup<64>, Asymmetric>(4, 128);
    check_quantizer_backends<BitWidth<4>, SuperBlock<256, 32>, Asymmetric>(2, 512);
    check_quantizer_backends<BitWidth<6>, SuperBlock<256, 16>, Symmetric>(3, 256);
}

TEST_CASE("thread_pool runs the free parallel_for's partition, many times over, and passes exceptions on") {
    for (unsigned threads : {1u, 2u, 3u, 5u}) {
        thread_pool pool(threads);
        CHECK(pool.size() == threads);
        for (std::size_t n : {0u, 1u, 2u, 7u, 64u, 1000u}) {
            for (std::size_t grain : {1u, 16u, 64u}) {
                std::vector<std::pair<std::size_t, std::size_t>> free_ranges, pool_ranges;
                std::mutex m;
                parallel_for(
                        n, threads,
                        [&](std::size_t b, std::size_t e) {
                            std::lock_guard l(m);
                            free_ranges.emplace_back(b, e);
                        },
                        grain);
                pool.parallel_for(
                        n,
                        [&](std::size_t b, std::size_t e) {
                            std::lock_guard l(m);
                            pool_ranges.emplace_back(b, e);
                        },
                        grain);
                std::sort(free_ranges.begin(), free_ranges.end());
                std::sort(pool_ranges.begin(), pool_ranges.end());
                CHECK(free_ranges == pool_ranges);
            }
        }
        std::vector<int> hits(10000, 0);
        for (int round = 0; round < 200; ++round)
            pool.parallel_for(hits.size(), [&](std::size_t b, std::size_t e) {
                for (std::size_t i = b; i < e; ++i) ++hits[i];
            });
        CHECK(std::all_of(hits.begin(), hits.end(), [](int h) { return h == 200; }));
        CHECK_THROWS_AS(pool.parallel_for(100,
                                          [](std::size_t b, std::size_t e) {
                                              if (e == 100) throw value_error("the last range failed", b);
                                          }),
                        value_error);
        // The pool still works after a failed loop.
        std::atomic<std::size_t> total{0};
        pool.parallel_for(100, [&](std::size_t b, std::size_t e) { total += e - b; });
        CHECK(total == 100);
    }
}

TEST_CASE("gemv over a thread_pool equals gemv over started threads") {
    const std::size_t rows = 300, cols = 256;
    const auto w = test::gaussian_values(rows * cols, 11);
    const auto x = test::gaussian_values(cols, 12);
    thread_pool pool(2);
    for (const ggml_type type : {ggml_type::q4_K, ggml_type::q8_0, ggml_type::f32}) {
        const auto bytes = quantize(type, w);
        std::vector<float> a(rows), b(rows);
        simd::gemv(type, bytes, rows, cols, x, a, 2);
        simd::gemv(type, bytes, rows, cols, x, b, pool);
        CHECK(a == b);
    }
}
