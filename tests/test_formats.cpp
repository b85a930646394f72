// Properties of every block format that need no external data: the layout packs each level into its own
// bits, dequantization stays within half a quantization step wherever a value is representable, error
// falls as bits rise, and bad input is refused with our exceptions.

#include <doctest/doctest.h>

#include <cogqat/cogqat.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "format_list.hpp"
#include "random_data.hpp"

using namespace cogqat;

TEST_CASE_TEMPLATE("block layout: planes give every level bit its own place", F, COGQAT_ALL_FORMATS) {
    std::vector<int> owner(F::type_size * 8, -1);
    for (std::size_t i = 0; i < F::block_size; ++i) {
        for (const auto& plane : F::planes) {
            const auto [byte, shift] = plane.locate(i);
            for (unsigned b = 0; b < plane.bits; ++b) {
                const std::size_t bit = byte * 8 + shift + b;
                REQUIRE(bit < owner.size());
                CHECK_MESSAGE(owner[bit] == -1, "bit " << bit << " is used twice");
                owner[bit] = static_cast<int>(i);
            }
        }
    }
    const auto used = static_cast<std::size_t>(std::count_if(owner.begin(), owner.end(), [](int o) { return o >= 0; }));
    CHECK(used == F::block_size * level_bits(F::planes));

    test::rng r(11);
    std::vector<std::uint8_t> levels(F::block_size);
    for (auto& l : levels) l = static_cast<std::uint8_t>(r.next() % (max_level<F> + 1));
    std::vector<std::byte> block(F::type_size, std::byte{0xA5});
    store_levels<F>(levels.data(), block.data());
    for (std::size_t i = 0; i < F::block_size; ++i) CHECK(unpack_level(F::planes, block.data(), i) == levels[i]);
}

// Within a sub-block's representable range a value is off by at most half a step. The 32-value formats pick
// levels with the fp32 scale but store it (and the min) as fp16, which adds up to 2^-11 of |level * scale| and
// of |min| (2^-25 absolute where fp16 is subnormal); the K formats re-quantize against the stored scales, so for them the extra term is slack.
TEST_CASE_TEMPLATE("dequantized values are within half a step where representable", F, COGQAT_ALL_FORMATS) {
    for (const auto& x : {test::gaussian_values(4096, 1), test::laplace_with_outliers(4096, 2), test::gaussian_values(512, 3, 1e-3)}) {
        const auto bytes = quantize(F::type, x);
        const auto y = dequantize(F::type, bytes);
        REQUIRE(y.size() == x.size());
        for (std::size_t b = 0; b < x.size() / F::block_size; ++b) {
            const std::byte* block = bytes.data() + b * F::type_size;
            for (std::size_t sub = 0; sub < F::block_size / F::sub_block_size; ++sub) {
                const auto s = F::sub_block_scale(block, sub);
                constexpr auto range = stored_level_range<F>;
                const float lowest = s.scale * static_cast<float>(range.lowest - F::level_offset) - (F::has_min ? s.min : 0.0f);
                const float highest = s.scale * static_cast<float>(range.highest - F::level_offset) - (F::has_min ? s.min : 0.0f);
                const float step = std::fabs(s.scale);
                for (std::size_t j = 0; j < F::sub_block_size; ++j) {
                    const std::size_t i = b * F::block_size + sub * F::sub_block_size + j;
                    if (x[i] < std::min(lowest, highest) || x[i] > std::max(lowest, highest)) continue;
                    const float level =
                            std::fabs(static_cast<float>(stored_level<F>(block, sub * F::sub_block_size + j) - F::level_offset));
                    auto half_ulp = [](float v) { return std::max(0x1p-11f * std::fabs(v), 0x1p-25f); };  // fp16, subnormals too
                    const float fp16_rounding = level * half_ulp(step) + (F::has_min ? half_ulp(s.min) : 0.0f);
                    CHECK_MESSAGE(std::fabs(x[i] - y[i]) <= 0.5f * step * 1.001f + fp16_rounding + 1e-7f * std::fabs(x[i]),
                                  "value " << i << ": " << x[i] << " -> " << y[i] << ", step " << step);
                }
            }
        }
    }
}

TEST_CASE_TEMPLATE("relative error falls within the format's expected range", F, COGQAT_ALL_FORMATS) {
    const auto x = test::gaussian_values(8192, 4);
    const auto m = measure_error(x, dequantize(F::type, quantize(F::type, x)));
    const double bpw = info(F::type).bits_per_weight();
    // A uniform quantizer with b bits per value on Gaussian data loses about 2^-b of the signal; give 4x room.
    CHECK(m.relative_rmse > 0.0);
    CHECK(m.relative_rmse < 4.0 * std::pow(2.0, -(bpw - 1.0)));
}

TEST_CASE_TEMPLATE("bad input is refused with a clear error", F, COGQAT_ALL_FORMATS) {
    const std::string name(info(F::type).name);
    SUBCASE("length not a multiple of the block") {
        std::vector<float> x(F::block_size + 1, 0.5f);
        std::vector<std::byte> out(F::type_size * 2);
        CHECK_THROWS_WITH_AS(quantize<F>(x, out),
                             doctest::Contains((std::to_string(F::block_size + 1) + " values is not a multiple of the " + name +
                                                " block size " + std::to_string(F::block_size))
                                                       .c_str()),
                             shape_error);
        CHECK_THROWS_AS((void)quantize(F::type, std::span<const float>(x)), shape_error);
    }
    SUBCASE("output buffer of the wrong size") {
        std::vector<float> x(F::block_size, 0.5f);
        std::vector<std::byte> out(F::type_size - 1);
        CHECK_THROWS_WITH_AS(quantize(F::type, x, out), doctest::Contains("the buffer has"), shape_error);
    }
    SUBCASE("NaN and Inf, with their index") {
        for (float bad :
             {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()}) {
            std::vector<float> x(2 * F::block_size, 0.25f);
            const std::size_t at = F::block_size + 3;
            x[at] = bad;
            try {
                (void)quantize(F::type, x);
                FAIL("no exception");
            } catch (const value_error& e) {
                CHECK(e.index() == at);
                CHECK(std::string(e.what()).find("input[" + std::to_string(at) + "]") != std::string::npos);
                CHECK(std::string(e.what()).find(name) != std::string::npos);
            }
        }
    }
    SUBCASE("empty input is a valid, empty tensor") {
        const std::vector<float> none;
        CHECK(quantize(F::type, none).empty());
        CHECK(dequantize(F::type, std::span<const std::byte>()).empty());
    }
    SUBCASE("dequantize: bytes that are not whole blocks") {
        std::vector<std::byte> bytes(F::type_size + 1);
        CHECK_THROWS_WITH_AS((void)dequantize(F::type, bytes), doctest::Contains("not a whole number of"), shape_error);
    }
}

TEST_CASE("q8_1 stores d, s = d * sum(q) and the int8 quants") {
    const auto x = test::gaussian_values(64, 5);
    const auto bytes = quantize(ggml_type::q8_1, x);
    REQUIRE(bytes.size() == 2 * 36);
    for (std::size_t b = 0; b < 2; ++b) {
        const std::byte* block = bytes.data() + 36 * b;
        float amax = 0;
        for (std::size_t i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[32 * b + i]));
        const float d = amax / 127.0f;
        CHECK(load_le<std::uint16_t>(block) == fp32_to_fp16_bits(d));
        int sum = 0;
        for (std::size_t i = 0; i < 32; ++i) {
            const auto q = static_cast<std::int8_t>(std::to_integer<int>(block[4 + i]));
            CHECK(q == static_cast<std::int8_t>(std::lround(x[32 * b + i] / d)));
            sum += q;
        }
        CHECK(load_le<std::uint16_t>(block + 2) == fp32_to_fp16_bits(static_cast<float>(sum) * d));
    }
    // Its quants are those of q8_0: the two differ only by the sum field.
    const auto q8_0 = quantize(ggml_type::q8_0, x);
    for (std::size_t b = 0; b < 2; ++b)
        CHECK(std::equal(q8_0.begin() + 34 * b + 2, q8_0.begin() + 34 * (b + 1), bytes.begin() + 36 * b + 4));
}

TEST_CASE("q8_K stores an fp32 scale and the int16 sums of each group of 16") {
    const auto x = test::laplace_with_outliers(512, 6);
    const auto bytes = quantize(ggml_type::q8_K, x);
    for (std::size_t b = 0; b < 2; ++b) {
        const std::byte* block = bytes.data() + 292 * b;
        for (std::size_t g = 0; g < 16; ++g) {
            int sum = 0;
            for (std::size_t i = 0; i < 16; ++i) sum += static_cast<std::int8_t>(std::to_integer<int>(block[4 + 16 * g + i]));
            CHECK(load_le<std::int16_t>(block + 260 + 2 * g) == sum);
        }
        // d takes the sign that maps the value of largest magnitude to -127 (ggml's convention).
        const float d = load_le<float>(block);
        float extreme = 0;
        for (std::size_t i = 0; i < 256; ++i)
            if (std::fabs(x[256 * b + i]) > std::fabs(extreme)) extreme = x[256 * b + i];
        CHECK(d == doctest::Approx(-extreme / 127.0f));
    }
}

TEST_CASE("type table: names, ids and sizes") {
    CHECK(parse_type("q4_K") == ggml_type::q4_K);
    CHECK(parse_type("Q4_K") == ggml_type::q4_K);
    CHECK(parse_type("q4_k") == ggml_type::q4_K);
    CHECK(parse_type("Q8_0") == ggml_type::q8_0);
    CHECK_THROWS_WITH_AS((void)parse_type("q7_0"), doctest::Contains("unknown type name 'q7_0'"), invalid_argument_error);
    CHECK(static_cast<int>(ggml_type::q6_K) == 14);
    CHECK(find_type(30)->name == "bf16");
    CHECK_FALSE(find_type(4).has_value());
    CHECK(storage_size(ggml_type::q4_K, 4096) == 2304);
    CHECK(storage_size(ggml_type::q2_K, 4096) == 1344);
    CHECK(info(ggml_type::q6_K).bits_per_weight() == doctest::Approx(6.5625));
    CHECK_THROWS_AS((void)storage_size(ggml_type::q4_K, 100), shape_error);
    CHECK_THROWS_WITH_AS(quantize(ggml_type::i8, std::span<const float>(), std::span<std::byte>()), doctest::Contains("cannot convert i8"),
                         invalid_argument_error);
    // ggml quantizes iq2_xxs only with importance weights, and so do we: the refusal says why.
    CHECK_THROWS_WITH_AS(quantize(ggml_type::iq2_xxs, std::span<const float>(), std::span<std::byte>()),
                         doctest::Contains("needs importance weights"), invalid_argument_error);
}

TEST_CASE("quantizing a strided matrix view quantizes each row as GGUF stores them") {
    const std::size_t rows = 3, cols = 64, pitch = 80;
    const auto storage = test::gaussian_values(rows * pitch, 9);
    const matrix_view<const float> matrix(storage.data(), {rows, cols}, {pitch, 1});
    std::vector<std::byte> out(storage_size(ggml_type::q4_0, rows * cols));
    quantize(ggml_type::q4_0, matrix, out);
    for (std::size_t r = 0; r < rows; ++r) {
        const auto row = quantize(ggml_type::q4_0, std::span<const float>(storage.data() + r * pitch, cols));
        CHECK(std::equal(row.begin(), row.end(), out.begin() + static_cast<std::ptrdiff_t>(r * row.size())));
    }
    std::vector<float> with_nan(storage);
    with_nan[2 * pitch + 5] = std::numeric_limits<float>::quiet_NaN();
    const matrix_view<const float> bad(with_nan.data(), {rows, cols}, {pitch, 1});
    try {
        quantize(ggml_type::q4_0, bad, out);
        FAIL("no exception");
    } catch (const value_error& e) {
        CHECK(e.index() == 2 * cols + 5);
        CHECK(std::string(e.what()).find("row 2, column 5") != std::string::npos);
    }
}
