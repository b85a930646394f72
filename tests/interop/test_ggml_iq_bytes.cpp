// The grid i-quants (iq2_xxs, iq2_xs, iq2_s, iq3_xxs, iq3_s, iq1_s, iq1_m) against the prebuilt ggml that ships
// with node-llama-cpp, loaded at run time: for the same floats and importance weights ggml_quantize_chunk must
// write our bytes, and ggml's to_float must decode any block to our floats (which checks every grid table
// entry). Exit code 77 (skipped) when the library is not installed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cogqat/core/float16.hpp>
#include <cogqat/format/iq_quantize.hpp>

#include <dlfcn.h>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "../random_data.hpp"

namespace {

using quantize_chunk_fn = std::size_t (*)(int type, const float* src, void* dst, std::int64_t start, std::int64_t nrows,
                                          std::int64_t n_per_row, const float* imatrix);
using quantize_init_fn = void (*)(int type);
using to_float_fn = void (*)(const void* x, float* y, std::int64_t k);
// ggml's type-traits record, as its ggml.h declares it; the name and size fields are checked before use.
struct ggml_type_traits {
    const char* type_name;
    std::int64_t blck_size;
    std::int64_t blck_size_interleave;
    std::size_t type_size;
    bool is_quantized;
    to_float_fn to_float;
    void* from_float_ref;
};
using type_traits_fn = const ggml_type_traits* (*)(int type);

quantize_chunk_fn ggml_quantize_chunk = nullptr;
quantize_init_fn ggml_quantize_init = nullptr;
type_traits_fn ggml_get_type_traits = nullptr;

constexpr cogqat::ggml_type iq_types[] = {cogqat::ggml_type::iq2_xxs, cogqat::ggml_type::iq2_xs, cogqat::ggml_type::iq2_s,
                                          cogqat::ggml_type::iq3_xxs, cogqat::ggml_type::iq3_s,  cogqat::ggml_type::iq1_s,
                                          cogqat::ggml_type::iq1_m};

// Rows short enough to keep the searches (ours and ggml's) to a fraction of a second per type.
constexpr std::size_t row_length = 512, rows = 2;

std::filesystem::path ggml_base_path() {
    if (const char* env = std::getenv("COGQAT_GGML_BASE"); env && *env) return env;
    return COGQAT_DEFAULT_GGML_BASE;
}

std::vector<std::byte> ggml_quantize(cogqat::ggml_type type, const std::vector<float>& values, const float* importance) {
    std::vector<std::byte> out(cogqat::storage_size(type, values.size()));
    ggml_quantize_init(static_cast<int>(type));
    const std::size_t written = ggml_quantize_chunk(static_cast<int>(type), values.data(), out.data(), 0,
                                                    static_cast<std::int64_t>(values.size() / row_length),
                                                    static_cast<std::int64_t>(row_length), importance);
    REQUIRE(written == out.size());
    return out;
}

const ggml_type_traits& traits(cogqat::ggml_type type) {
    const auto* t = ggml_get_type_traits(static_cast<int>(type));
    REQUIRE(t != nullptr);
    REQUIRE(std::string(t->type_name) == cogqat::info(type).name);
    REQUIRE(t->type_size == cogqat::info(type).type_size);
    REQUIRE(static_cast<bool>(t->to_float));
    return *t;
}

std::vector<float> uniform_values(std::size_t n, std::uint64_t seed) {
    cogqat::test::rng r(seed);
    std::vector<float> v(n);
    for (auto& x : v) x = static_cast<float>(2 * r.uniform() - 1);
    return v;
}

// Every value at the fp16 maximum with a random sign: all ties, the largest magnitudes the fp16 scales hold.
std::vector<float> plus_minus_max(std::size_t n, std::uint64_t seed) {
    cogqat::test::rng r(seed);
    std::vector<float> v(n);
    for (auto& x : v) x = (r.next() & 1) ? 65504.0f : -65504.0f;
    return v;
}

std::vector<float> importance_of(std::uint64_t seed) {
    cogqat::test::rng r(seed);
    std::vector<float> w(row_length);
    for (auto& x : w) x = static_cast<float>(r.uniform() * r.uniform() * 4);
    return w;
}

// Floats equal bit for bit (signed zeros included).
bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("ggml's prebuilt quantizer writes our grid i-quant bytes, with and without importance weights") {
    const std::vector<std::pair<const char*, std::vector<float>>> cases{
            {"uniform", uniform_values(rows * row_length, 41)},
            {"gaussian", cogqat::test::gaussian_values(rows * row_length, 42, 0.05)},
            {"heavy-tailed", cogqat::test::laplace_with_outliers(rows * row_length, 43)},
            {"all-zero", std::vector<float>(rows * row_length, 0.0f)},
            {"plus-minus max", plus_minus_max(rows * row_length, 44)},
    };
    const auto importance = importance_of(45);
    for (const auto type : iq_types) {
        CAPTURE(cogqat::info(type).name);
        for (const auto& [name, values] : cases) {
            const std::string case_name = name;
            CAPTURE(case_name);
            const auto ours = cogqat::quantize_iq(type, values, row_length, importance);
            CHECK(ours == ggml_quantize(type, values, importance.data()));
            std::vector<float> theirs(values.size());
            traits(type).to_float(ours.data(), theirs.data(), static_cast<std::int64_t>(values.size()));
            CHECK(same_bits(cogqat::dequantize_iq(type, ours), theirs));
            if (cogqat::requires_importance(type)) continue;
            CHECK(cogqat::quantize_iq(type, values, row_length) == ggml_quantize(type, values, nullptr));
        }
    }
}

TEST_CASE("ggml's to_float decodes any grid i-quant block to our floats (every grid point, sign and scale code)") {
    constexpr std::size_t blocks = 1024;
    for (const auto type : iq_types) {
        CAPTURE(cogqat::info(type).name);
        const std::size_t type_size = cogqat::info(type).type_size;
        cogqat::test::rng r(46);
        std::vector<std::byte> bytes(blocks * type_size);
        for (auto& b : bytes) b = std::byte{static_cast<std::uint8_t>(r.next())};
        // A finite super-scale: the fp16 field (iq1_m spreads its bits over the scale words' top nibbles).
        const std::uint16_t d = cogqat::fp32_to_fp16_bits(0.75f);
        for (std::size_t b = 0; b < blocks; ++b) {
            std::byte* block = bytes.data() + b * type_size;
            if (type == cogqat::ggml_type::iq1_m) {
                for (unsigned i = 0; i < 4; ++i) {
                    const auto nibble = static_cast<unsigned>((d >> (4 * i)) & 0xf);
                    block[48 + 2 * i + 1] = std::byte{static_cast<std::uint8_t>((std::to_integer<unsigned>(block[48 + 2 * i + 1]) & 0x0f) | (nibble << 4))};
                }
            } else {
                block[0] = std::byte{static_cast<std::uint8_t>(d & 0xff)};
                block[1] = std::byte{static_cast<std::uint8_t>(d >> 8)};
            }
        }
        std::vector<float> theirs(blocks * 256);
        traits(type).to_float(bytes.data(), theirs.data(), static_cast<std::int64_t>(theirs.size()));
        CHECK(same_bits(cogqat::dequantize_iq(type, bytes), theirs));
    }
}

int main(int argc, char** argv) {
    const auto path = ggml_base_path();
    void* library = std::filesystem::exists(path) ? dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL) : nullptr;
    if (!library) {
        std::cout << "skipped: ggml's libggml-base not found at " << path.string()
                  << " (scripts/test.sh installs node-llama-cpp with npm; or set COGQAT_GGML_BASE)\n";
        return 77;
    }
    ggml_quantize_chunk = reinterpret_cast<quantize_chunk_fn>(dlsym(library, "ggml_quantize_chunk"));
    ggml_quantize_init = reinterpret_cast<quantize_init_fn>(dlsym(library, "ggml_quantize_init"));
    ggml_get_type_traits = reinterpret_cast<type_traits_fn>(dlsym(library, "ggml_get_type_traits"));
    if (!ggml_quantize_chunk || !ggml_quantize_init || !ggml_get_type_traits) {
        std::cout << "libggml-base at " << path.string() << " lacks ggml_quantize_chunk or ggml_get_type_traits\n";
        return 1;
    }
    doctest::Context context(argc, argv);
    return context.run();
}
