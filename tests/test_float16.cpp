// fp16 and bf16 conversions: IEEE round-to-nearest-even, ggml's NaN handling, subnormals kept.

#include <doctest/doctest.h>

#include <cogqat/core/float16.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

using namespace cogqat;

namespace {
float from_bits(std::uint32_t b) { return std::bit_cast<float>(b); }
}  // namespace

TEST_CASE("fp16: exact values, ties to even, overflow and underflow") {
    CHECK(fp32_to_fp16_bits(0.0f) == 0x0000);
    CHECK(fp32_to_fp16_bits(-0.0f) == 0x8000);
    CHECK(fp32_to_fp16_bits(1.0f) == 0x3c00);
    CHECK(fp32_to_fp16_bits(-2.0f) == 0xc000);
    CHECK(fp32_to_fp16_bits(65504.0f) == 0x7bff);             // largest finite half
    CHECK(fp32_to_fp16_bits(65519.99f) == 0x7bff);            // below the halfway point to 65536
    CHECK(fp32_to_fp16_bits(65520.0f) == 0x7c00);             // the tie rounds to even: infinity
    CHECK(fp32_to_fp16_bits(1.0f + 0x1p-11f) == 0x3c00);      // tie between 1 and 1+2^-10: even is 1
    CHECK(fp32_to_fp16_bits(1.0f + 3 * 0x1p-11f) == 0x3c02);  // tie: even is 1+2*2^-10
    CHECK(fp32_to_fp16_bits(0x1p-14f) == 0x0400);             // smallest normal
    CHECK(fp32_to_fp16_bits(0x1p-24f) == 0x0001);             // smallest subnormal
    CHECK(fp32_to_fp16_bits(0x1p-25f) == 0x0000);             // exactly half of it: ties to even (zero)
    CHECK(fp32_to_fp16_bits(0x1.000002p-25f) == 0x0001);      // just above half
    CHECK(fp32_to_fp16_bits(3 * 0x1p-25f) == 0x0002);         // 1.5 ulp: ties to even (2)
    CHECK(fp32_to_fp16_bits(-1e-30f) == 0x8000);
    CHECK(fp32_to_fp16_bits(std::numeric_limits<float>::infinity()) == 0x7c00);
    CHECK(fp32_to_fp16_bits(-std::numeric_limits<float>::infinity()) == 0xfc00);
}

TEST_CASE("fp16: every NaN becomes 0x7E00 with the NaN's sign, as ggml's conversion does") {
    CHECK(fp32_to_fp16_bits(from_bits(0x7fc00000)) == 0x7e00);
    CHECK(fp32_to_fp16_bits(from_bits(0x7f800001)) == 0x7e00);
    CHECK(fp32_to_fp16_bits(from_bits(0xffc12345)) == 0xfe00);
}

TEST_CASE("fp16 -> fp32 is exact and round-trips every non-NaN half") {
    for (std::uint32_t h = 0; h < 0x10000; ++h) {
        const float f = fp16_bits_to_fp32(static_cast<std::uint16_t>(h));
        const bool is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0;
        if (is_nan) {
            CHECK(std::isnan(f));
            CHECK(std::signbit(f) == ((h & 0x8000) != 0));
        } else {
            CHECK(fp32_to_fp16_bits(f) == h);
        }
    }
    CHECK(fp16_bits_to_fp32(0x0001) == 0x1p-24f);
    CHECK(fp16_bits_to_fp32(0x3555) == doctest::Approx(0.333251953125));
    CHECK(std::bit_cast<std::uint32_t>(fp16_bits_to_fp32(0x7c01)) == 0x7fc02000);  // signalling NaN comes back quiet
}

#if defined(__FLT16_MAX__)
TEST_CASE("fp16 conversion agrees with the compiler's _Float16 on a sweep of all float bit patterns") {
    std::uint64_t mismatches = 0;
    for (std::uint64_t b = 0; b < (1ull << 32); b += 4099) {
        const float f = from_bits(static_cast<std::uint32_t>(b));
        if (std::isnan(f)) continue;
        const auto expected = std::bit_cast<std::uint16_t>(static_cast<_Float16>(f));
        if (fp32_to_fp16_bits(f) != expected) ++mismatches;
    }
    CHECK(mismatches == 0);
}
#endif

TEST_CASE("bf16: round to nearest even, NaN forced quiet, subnormals kept") {
    CHECK(fp32_to_bf16_bits(1.0f) == 0x3f80);
    CHECK(fp32_to_bf16_bits(from_bits(0x3f808000)) == 0x3f80);  // tie, even stays
    CHECK(fp32_to_bf16_bits(from_bits(0x3f818000)) == 0x3f82);  // tie, odd rounds up
    CHECK(fp32_to_bf16_bits(from_bits(0x3f808001)) == 0x3f81);
    CHECK(fp32_to_bf16_bits(from_bits(0x00012345)) == 0x0001);  // subnormal kept, not flushed
    CHECK(fp32_to_bf16_bits(from_bits(0x7f7fffff)) == 0x7f80);  // largest float rounds to infinity
    CHECK(fp32_to_bf16_bits(from_bits(0x7f800001)) == 0x7fc0);  // signalling NaN -> quiet
    CHECK(fp32_to_bf16_bits(from_bits(0xffa00000)) == 0xffe0);
    for (std::uint32_t h = 0; h < 0x10000; ++h) {
        const float f = bf16_bits_to_fp32(static_cast<std::uint16_t>(h));
        if (!std::isnan(f)) CHECK(fp32_to_bf16_bits(f) == h);
    }
    CHECK(bf16::from_float(-2.5f).to_float() == -2.5f);
    CHECK(fp16::from_float(0.5f).to_float() == 0.5f);
}
