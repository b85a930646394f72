// Our quantizers against the prebuilt ggml that ships with node-llama-cpp, loaded at run time: for the same
// floats, ggml_quantize_chunk must write the bytes we write. Runs on random data for every weight format,
// and on every quantized tensor of the GGUF files named in $COGQAT_INTEROP_FILES (against the f32 tensors
// of $COGQAT_INTEROP_F32). The table-decoded types are also checked on edge rows (all zero, ±max, tiny,
// heavy-tailed), with and without an importance matrix, and decoded against ggml's to_float. Exit code 77
// (skipped) when the library is not installed (interop_main.cpp).
#include <doctest/doctest.h>

#include <cogqat/cogqat.hpp>
#include <cogqat/io/gguf.hpp>

#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "../random_data.hpp"
#include "ggml_library.hpp"

namespace {
namespace ggml_bytes_test {

namespace ggml = cogqat::test::ggml;

/// Float bits, so that NaN (0 * Inf in a block whose fp16 scale overflowed) compares as ggml wrote it.
std::vector<std::uint32_t> bits_of(std::span<const float> values) {
    std::vector<std::uint32_t> out(values.size());
    for (std::size_t i = 0; i < values.size(); ++i) out[i] = std::bit_cast<std::uint32_t>(values[i]);
    return out;
}

constexpr cogqat::ggml_type table_types[] = {cogqat::ggml_type::iq4_nl, cogqat::ggml_type::iq4_xs, cogqat::ggml_type::mxfp4,
                                             cogqat::ggml_type::tq1_0, cogqat::ggml_type::tq2_0};

struct named_rows {
    const char* name;
    std::vector<float> values;
};

/// Four rows of 512 values of each kind the issue lists, plus the edges of each format's scale.
std::vector<named_rows> edge_cases() {
    constexpr std::size_t n = 4 * 512;
    cogqat::test::rng r(2026);
    std::vector<named_rows> cases;
    auto fill = [&](const char* name, auto&& value) {
        std::vector<float> v(n);
        for (std::size_t i = 0; i < n; ++i) v[i] = value(i);
        cases.push_back({name, std::move(v)});
    };
    fill("uniform", [&](std::size_t) { return static_cast<float>(2 * r.uniform() - 1); });
    fill("gaussian", [&](std::size_t) { return static_cast<float>(0.02 * r.gaussian()); });
    fill("cubed gaussian (heavy tails)", [&](std::size_t) { return static_cast<float>(std::pow(r.gaussian(), 3.0)); });
    cases.push_back({"laplace with outliers", cogqat::test::laplace_with_outliers(n, 33)});
    fill("all zero", [](std::size_t) { return 0.0f; });
    fill("+max", [](std::size_t) { return FLT_MAX; });
    fill("±max", [](std::size_t i) { return i % 3 == 0 ? -FLT_MAX : FLT_MAX; });
    fill("±65504 and 0", [](std::size_t i) { return i % 3 == 0 ? 0.0f : (i % 3 == 1 ? 65504.0f : -65504.0f); });
    fill("±1 with zeros", [](std::size_t i) { return static_cast<float>(static_cast<int>(i % 3) - 1); });
    fill("tiny (subnormal scales)", [&](std::size_t) { return static_cast<float>(1e-39 * r.gaussian()); });
    fill("one spike per block", [&](std::size_t i) { return i % 32 == 5 ? 100.0f : static_cast<float>(0.01 * r.gaussian()); });
    return cases;
}

constexpr cogqat::ggml_type weight_types[] = {
        cogqat::ggml_type::q4_0,  cogqat::ggml_type::q4_1, cogqat::ggml_type::q5_0,   cogqat::ggml_type::q5_1,   cogqat::ggml_type::q8_0,
        cogqat::ggml_type::q2_K,  cogqat::ggml_type::q3_K, cogqat::ggml_type::q4_K,   cogqat::ggml_type::q5_K,   cogqat::ggml_type::q6_K,
        cogqat::ggml_type::f16,   cogqat::ggml_type::bf16, cogqat::ggml_type::iq4_nl, cogqat::ggml_type::iq4_xs, cogqat::ggml_type::mxfp4,
        cogqat::ggml_type::tq1_0, cogqat::ggml_type::tq2_0};

TEST_SUITE_BEGIN("ggml-bytes");

TEST_CASE("ggml's prebuilt quantizer writes our bytes for the same floats") {
    const auto gaussian = cogqat::test::gaussian_values(8 * 1024, 31, 0.05);
    const auto heavy = cogqat::test::laplace_with_outliers(8 * 1024, 32);
    for (auto type : weight_types) {
        CAPTURE(cogqat::info(type).name);
        for (const auto* values : {&gaussian, &heavy}) {
            CHECK(cogqat::quantize(type, *values) == ggml::quantize(type, *values, 1024));
        }
    }
}

TEST_CASE("the table-decoded types: ggml's bytes on edge rows, with and without importance, and ggml's decoding") {
    cogqat::test::rng r(7);
    std::vector<float> importance(512);
    for (std::size_t c = 0; c < importance.size(); ++c)
        importance[c] = c % 17 == 0 ? 0.0f : static_cast<float>(r.uniform() * r.uniform() * 4);
    for (auto type : table_types) {
        CAPTURE(cogqat::info(type).name);
        for (const auto& rows : edge_cases()) {
            CAPTURE(rows.name);
            const auto plain = cogqat::quantize(type, rows.values);
            CHECK(plain == ggml::quantize(type, rows.values, 512));
            const auto weighted = cogqat::quantize(type, rows.values, 512, importance);
            CHECK(weighted == ggml::quantize(type, rows.values, 512, importance.data()));
            CHECK(bits_of(cogqat::dequantize(type, plain)) == bits_of(ggml::to_float(type, plain)));
            CHECK(bits_of(cogqat::dequantize(type, weighted)) == bits_of(ggml::to_float(type, weighted)));
        }
    }
}

TEST_CASE("every byte value ggml can meet decodes as ggml decodes it, so the value tables are ggml's") {
    // Each block filled with one repeated byte, a fixed valid scale: every index of every table appears.
    for (auto type : table_types) {
        CAPTURE(cogqat::info(type).name);
        const auto& t = cogqat::info(type);
        std::vector<std::byte> blocks(256 * t.type_size);
        for (std::size_t b = 0; b < 256; ++b)
            for (std::size_t i = 0; i < t.type_size; ++i) blocks[b * t.type_size + i] = std::byte{static_cast<unsigned char>(b + 37 * i)};
        // Keep fp16 scales finite: no exponent 31 (Inf/NaN) in any byte pair that is a scale.
        for (auto& byte : blocks)
            if ((std::to_integer<unsigned>(byte) & 0x7C) == 0x7C) byte &= std::byte{0xBF};
        CHECK(bits_of(cogqat::dequantize(type, blocks)) == bits_of(ggml::to_float(type, blocks)));
    }
}

TEST_CASE("every quantized tensor of the files we wrote is what ggml makes of the f32 source") {
    const char* f32_path = std::getenv("COGQAT_INTEROP_F32");
    const char* files = std::getenv("COGQAT_INTEROP_FILES");
    if (!f32_path || !files) {
        MESSAGE("COGQAT_INTEROP_F32 / COGQAT_INTEROP_FILES not set: only the random-data comparison ran");
        return;
    }
    const auto source = cogqat::gguf::reader::open(f32_path);
    std::istringstream list(files);
    std::size_t compared = 0;
    for (std::string path; list >> path;) {
        const auto file = cogqat::gguf::reader::open(path);
        for (const auto& t : file.tensors()) {
            if (t.type == cogqat::ggml_type::f32) continue;
            CAPTURE(path);
            CAPTURE(t.name);
            const auto* original = source.find_tensor(t.name);
            REQUIRE(original != nullptr);
            REQUIRE(original->type == cogqat::ggml_type::f32);
            const auto values = cogqat::dequantize(cogqat::ggml_type::f32, source.tensor_data(*original));
            const auto theirs = ggml::quantize(t.type, values, static_cast<std::size_t>(t.shape[0]));
            const auto ours = file.tensor_data(t);
            CHECK(std::equal(ours.begin(), ours.end(), theirs.begin(), theirs.end()));
            ++compared;
        }
    }
    MESSAGE(compared << " tensors compared with ggml");
    CHECK(compared > 0);
}

TEST_SUITE_END();

}  // namespace ggml_bytes_test
}  // namespace
