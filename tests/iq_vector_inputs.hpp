#pragma once
// The inputs of the grid i-quant vectors, shared by the unit test (tests/test_iq_formats.cpp, which checks our
// bytes against the recorded digests of ggml's) and the interop program (tests/interop/test_ggml_iq_bytes.cpp,
// which checks them against the prebuilt ggml itself and records the digests).

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

#include "cogqat/core/float16.hpp"
#include "cogqat/format/ggml_type.hpp"
#include "random_data.hpp"

namespace cogqat::test::iq_vectors {

inline constexpr std::array<ggml_type, 7> types{ggml_type::iq2_xxs, ggml_type::iq2_xs, ggml_type::iq2_s, ggml_type::iq3_xxs,
                                                ggml_type::iq3_s,   ggml_type::iq1_s,  ggml_type::iq1_m};

// Two rows of two super-blocks per case: each block runs the whole search, and the importance weights of the
// second block differ from the first's (they are per column of the row).
inline constexpr std::size_t row_length = 512, rows = 2;

inline constexpr std::array<std::string_view, 5> cases{"uniform", "gaussian", "heavy-tailed", "all-zero", "plus-minus max"};

/// The values of case `name`: uniform in (-1, 1), Gaussian, Laplace with outliers, all zero, and every value at
/// the fp16 maximum with a random sign (all ties, the largest magnitudes an fp16 super-scale holds).
inline std::vector<float> values(std::string_view name) {
    constexpr std::size_t n = rows * row_length;
    if (name == "gaussian") return gaussian_values(n, 42, 0.05);
    if (name == "heavy-tailed") return laplace_with_outliers(n, 43);
    std::vector<float> v(n, 0.0f);
    if (name == "all-zero") return v;
    rng r(name == "uniform" ? 41 : 44);
    for (auto& x : v) x = name == "uniform" ? static_cast<float>(2 * r.uniform() - 1) : (r.next() & 1) ? 65504.0f : -65504.0f;
    return v;
}

/// One importance weight per column, spread over [0, 4) with many small ones (as activation statistics are).
inline std::vector<float> importance() {
    rng r(45);
    std::vector<float> w(row_length);
    for (auto& x : w) x = static_cast<float>(r.uniform() * r.uniform() * 4);
    return w;
}

/// Random blocks of `type` with a finite super-scale (0.75): decoding them reaches every grid point, sign and
/// scale code. iq1_m spreads its fp16 scale over the top nibbles of its four scale words.
inline std::vector<std::byte> random_blocks(ggml_type type, std::size_t blocks) {
    const std::size_t type_size = info(type).type_size;
    rng r(46);
    std::vector<std::byte> bytes(blocks * type_size);
    for (auto& b : bytes) b = std::byte{static_cast<std::uint8_t>(r.next())};
    const std::uint16_t d = fp32_to_fp16_bits(0.75f);
    for (std::size_t b = 0; b < blocks; ++b) {
        std::byte* block = bytes.data() + b * type_size;
        if (type == ggml_type::iq1_m) {
            for (unsigned i = 0; i < 4; ++i) {
                const unsigned high = std::to_integer<unsigned>(block[48 + 2 * i + 1]);
                block[48 + 2 * i + 1] = std::byte{static_cast<std::uint8_t>((high & 0x0fu) | (((d >> (4 * i)) & 0xfu) << 4))};
            }
        } else {
            block[0] = std::byte{static_cast<std::uint8_t>(d & 0xff)};
            block[1] = std::byte{static_cast<std::uint8_t>(d >> 8)};
        }
    }
    return bytes;
}

inline constexpr std::size_t decode_blocks = 1024;

/// FNV-1a, 64 bits: a digest of bytes (or of floats' bits) to record ggml's outputs in a few characters.
inline std::uint64_t digest(std::span<const std::byte> bytes) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (const auto b : bytes) h = (h ^ std::to_integer<std::uint64_t>(b)) * 0x100000001b3ull;
    return h;
}
inline std::uint64_t digest(std::span<const float> floats) { return digest(std::as_bytes(floats)); }

}  // namespace cogqat::test::iq_vectors
