// Packed N-bit codes: the bit stream's documented order, the container and its views, the pack/unpack kernels of
// every instruction set this machine runs against the scalar reference, and the generic quantizer's packed path.

#include <cogqat/cogqat.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "linked_isas.hpp"

using namespace cogqat;

namespace {

std::vector<std::uint8_t> random_codes(std::size_t n, int bits, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<std::uint8_t> codes(n);
    for (auto& c : codes) c = static_cast<std::uint8_t>(rng() & ((1u << bits) - 1u));
    return codes;
}

std::vector<std::byte> random_bytes(std::size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<std::byte> bytes(n);
    for (auto& b : bytes) b = static_cast<std::byte>(rng() & 0xffu);
    return bytes;
}

/// The documented order written out bit by bit, independently of the reference: bit j of code i is stream bit
/// first_bit + i N + j, which is bit (b mod 8) of byte b / 8.
void pack_bit_by_bit(std::span<const std::uint8_t> codes, int bits, std::vector<std::byte>& stream, std::size_t first_bit) {
    for (std::size_t i = 0; i < codes.size(); ++i) {
        for (int j = 0; j < bits; ++j) {
            const std::size_t b = first_bit + i * static_cast<std::size_t>(bits) + static_cast<std::size_t>(j);
            const auto mask = static_cast<std::byte>(1u << (b % 8));
            if ((codes[i] >> j) & 1u)
                stream[b / 8] |= mask;
            else
                stream[b / 8] &= ~mask;
        }
    }
}

/// Runs `f(isa)` with each linked instruction set active in turn, the scalar reference first, and restores the
/// set that was active.
template <class F>
void for_each_isa(F f) {
    const std::string before(dispatch::active().isa);
    for (const auto isa : dispatch::linked_isas(true)) {
        CAPTURE(std::string(isa));
        dispatch::use_isa(isa);
        f(isa);
    }
    dispatch::use_isa(before);
}

constexpr std::size_t lengths[] = {0, 1, 2, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 255, 256, 257, 511, 1000, 4099};

}  // namespace

TEST_CASE("the reference bit stream is the documented little-endian order, code i at bit i N") {
    // 3-bit codes 1..7, 0 at bit 3i make 0x1f58d1, stored low byte first.
    const std::vector<std::uint8_t> codes{1, 2, 3, 4, 5, 6, 7, 0};
    std::vector<std::byte> stream(3);
    reference::pack_codes(codes.data(), codes.size(), 3, stream.data(), 0);
    CHECK(stream == std::vector<std::byte>{std::byte{0xd1}, std::byte{0x58}, std::byte{0x1f}});
    // 4-bit codes: the low nibble first, as ggml's q4 nibbles.
    const std::vector<std::uint8_t> nibbles{0x3, 0xa};
    std::vector<std::byte> one(1);
    reference::pack_codes(nibbles.data(), 2, 4, one.data(), 0);
    CHECK(one[0] == std::byte{0xa3});

    for (int bits = min_packed_bits; bits <= max_packed_bits; ++bits) {
        CAPTURE(bits);
        for (std::size_t first_bit : {0u, 1u, 3u, 7u, 13u}) {
            const auto c = random_codes(77, bits, static_cast<std::uint32_t>(bits * 100 + first_bit));
            const std::size_t size = (first_bit + c.size() * static_cast<std::size_t>(bits) + 7) / 8 + 2;
            auto expected = random_bytes(size, 9), got = expected;
            pack_bit_by_bit(c, bits, expected, first_bit);
            reference::pack_codes(c.data(), c.size(), bits, got.data(), first_bit);
            CHECK(got == expected);  // the bits around the range, too, are left as they were
            std::vector<std::uint8_t> back(c.size());
            reference::unpack_codes(got.data(), first_bit, c.size(), bits, back.data());
            CHECK(back == c);
        }
    }
}

TEST_CASE_TEMPLATE("packed_codes<N> stores N bits per code and gives every code back", T, std::integral_constant<int, 2>,
                   std::integral_constant<int, 3>, std::integral_constant<int, 4>, std::integral_constant<int, 5>,
                   std::integral_constant<int, 6>, std::integral_constant<int, 7>, std::integral_constant<int, 8>) {
    constexpr int bits = T::value;
    for (const std::size_t n : lengths) {
        CAPTURE(n);
        const auto codes = random_codes(n, bits, static_cast<std::uint32_t>(n + 1));
        const packed_codes<bits> p(codes);
        REQUIRE(p.size() == n);
        CHECK(p.empty() == (n == 0));
        CHECK(p.storage_bytes() == (n * bits + 7) / 8);
        CHECK(p.bytes().size() == p.storage_bytes());
        CHECK(p.unpack() == codes);
        for (std::size_t i = 0; i < n; ++i) {
            if (p[i] != codes[i] || p.get(i) != codes[i]) FAIL_CHECK("code " << i);
        }
        // The bytes are the reference's stream; the padding bits after the last code are zero.
        std::vector<std::byte> expected((n * bits + 7) / 8);
        reference::pack_codes(codes.data(), n, bits, expected.data(), 0);
        CHECK(std::equal(expected.begin(), expected.end(), p.bytes().begin(), p.bytes().end()));
        CHECK(packed_codes<bits>::from_bytes(p.bytes(), n) == p);
    }
    packed_codes<bits> zeros(37);
    CHECK(zeros.unpack() == std::vector<std::uint8_t>(37, 0));
    zeros.set(5, packed_codes<bits>::max_code);
    zeros.set(36, 1);
    CHECK(zeros.get(5) == (1u << bits) - 1u);
    CHECK(zeros.get(36) == 1);
    CHECK(zeros.get(4) == 0);
    CHECK(zeros.get(6) == 0);
}

TEST_CASE("packed views: sub-ranges at any bit offset read and write only their own codes") {
    for_each_isa([](std::string_view) {
        for (const std::size_t n : {40u, 300u}) {
            const auto all = random_codes(n, 5, 3);
            packed_codes<5> p(all);
            for (std::size_t first : {0u, 1u, 3u, 7u, 8u, 11u}) {
                for (std::size_t count : {0u, 1u, 9u, 16u, 29u}) {
                    if (first + count > n) continue;
                    CAPTURE(first);
                    CAPTURE(count);
                    const const_packed_view<5> v = std::as_const(p).view(first, count);
                    CHECK(v.size() == count);
                    CHECK(v.bit_offset() == first * 5 % 8);
                    CHECK(v.unpack() == std::vector<std::uint8_t>(all.begin() + static_cast<std::ptrdiff_t>(first),
                                                                  all.begin() + static_cast<std::ptrdiff_t>(first + count)));
                    // Writing a sub-range leaves the codes around it.
                    packed_codes<5> q(all);
                    const auto fresh = random_codes(count, 5, static_cast<std::uint32_t>(first * 31 + count));
                    q.view(first, count).pack_from(fresh);
                    auto expected = all;
                    std::copy(fresh.begin(), fresh.end(), expected.begin() + static_cast<std::ptrdiff_t>(first));
                    CHECK(q.unpack() == expected);
                    CHECK(packed_codes<5>::from_bytes(q.bytes(), n) == q);  // padding still zero
                }
            }
            // A view of a view, and a mutable view converted to a const one.
            const packed_view<5> outer = p.view(3, 30);
            const const_packed_view<5> inner = outer.subview(4, 10);
            CHECK(inner.get(0) == all[7]);
            CHECK(inner.get(9) == all[16]);
            outer.set(4, 17);
            CHECK(p.get(7) == 17);
        }
    });
}

TEST_CASE("packed codes refuse bad input with the index and the sizes") {
    const std::vector<std::uint8_t> codes{1, 2, 3, 8, 4};
    try {
        packed_codes<3> bad(codes);
        FAIL("no throw");
    } catch (const value_error& e) {
        CHECK(e.index() == 3);
        CHECK(std::string(e.what()).find("code[3] = 8") != std::string::npos);
    }
    // The fit check runs before anything is written: a refused pack_from leaves the view as it was.
    packed_codes<3> p(std::vector<std::uint8_t>(5, 7));
    CHECK_THROWS_AS(p.view().pack_from(codes), value_error);
    CHECK(p.unpack() == std::vector<std::uint8_t>(5, 7));
    // Large arrays: the SIMD check finds the index of the first misfit, past whole registers.
    for_each_isa([](std::string_view) {
        std::vector<std::uint8_t> many(1000, 1);
        many[777] = 64;
        many[900] = 200;
        try {
            packed_codes<6> bad(many);
            FAIL("no throw");
        } catch (const value_error& e) {
            CHECK(e.index() == 777);
        }
    });
    CHECK_THROWS_AS(p.set(5, 0), shape_error);
    CHECK_THROWS_AS(static_cast<void>(p.get(5)), shape_error);
    try {
        p.set(2, 8);
        FAIL("no throw");
    } catch (const value_error& e) {
        CHECK(e.index() == 2);
    }
    CHECK_THROWS_AS(static_cast<void>(p.view(4, 2)), shape_error);
    CHECK_THROWS_AS(static_cast<void>(p.view(6, 0)), shape_error);
    CHECK_THROWS_AS(static_cast<void>(p.view().subview(1, std::size_t(-1))), shape_error);
    std::vector<std::uint8_t> four(4);
    CHECK_THROWS_AS(p.unpack_to(four), shape_error);
    CHECK_THROWS_AS(p.view().pack_from(four), shape_error);
    CHECK_THROWS_AS(packed_codes<3>(std::size_t(-1) / 2), shape_error);
    // from_bytes: the byte count must match, and the bits after the last code must be zero.
    CHECK_THROWS_AS(static_cast<void>(packed_codes<3>::from_bytes(p.bytes().first(1), 5)), shape_error);
    std::vector<std::byte> bytes(p.bytes().begin(), p.bytes().end());
    bytes.back() |= std::byte{0x80};  // 5 codes of 3 bits use 7 bits of the second byte
    try {
        static_cast<void>(packed_codes<3>::from_bytes(bytes, 5));
        FAIL("no throw");
    } catch (const value_error& e) {
        CHECK(e.index() == 1);
    }
}

TEST_CASE("SIMD pack and unpack kernels give the reference's bits for every width, length and offset") {
    const auto isas = test::simd_isas();
    for (const auto isa : isas) {
        CAPTURE(std::string(isa));
        const auto& k = dispatch::table_for(isa).packing;
        REQUIRE(static_cast<bool>(k.first_code_above));
        for (int bits = min_packed_bits; bits <= max_packed_bits; ++bits) {
            CAPTURE(bits);
            const auto w = static_cast<std::size_t>(bits);
            REQUIRE(static_cast<bool>(k.pack[w]));
            REQUIRE(static_cast<bool>(k.unpack[w]));
            for (std::size_t n = 0; n <= 600; n += (n < 140 ? 1 : 23)) {
                const auto codes = random_codes(n, bits, static_cast<std::uint32_t>(n * 7 + w));
                // The kernel's stream starts at an unaligned address; the bytes after the codes are random and must survive.
                const std::size_t size = packed_byte_count(n, bits);
                for (std::size_t shift : {0u, 1u, 5u}) {
                    auto expected = random_bytes(size + shift + 40, static_cast<std::uint32_t>(n)), got = expected;
                    reference::pack_codes(codes.data(), n, bits, expected.data() + shift, 0);
                    k.pack[w](codes.data(), n, got.data() + shift);
                    if (got != expected) FAIL_CHECK("pack, n = " << n << ", shift " << shift);
                    std::vector<std::uint8_t> back(n + 70, 0xee);
                    k.unpack[w](expected.data() + shift, n, back.data() + 1);
                    if (!std::equal(codes.begin(), codes.end(), back.begin() + 1) || back[0] != 0xee || back[n + 1] != 0xee)
                        FAIL_CHECK("unpack, n = " << n << ", shift " << shift);
                }
            }
        }
        // The fit check: every position of the first misfit, and none.
        for (std::size_t n : {0u, 5u, 64u, 200u, 513u}) {
            std::vector<std::uint8_t> codes(n, 3);
            CHECK(k.first_code_above(codes.data(), n, 3) == n);
            for (std::size_t at = 0; at < n; at += 7) {
                codes[at] = 4;
                if (k.first_code_above(codes.data(), n, 3) != at) FAIL_CHECK("misfit at " << at << " of " << n);
                codes[at] = 3;
            }
        }
    }
}

TEST_CASE("views at every starting code pack and unpack the reference's bits through the active kernels") {
    for_each_isa([](std::string_view) {
        for (int bits : {2, 3, 5, 6, 7, 8}) {
            CAPTURE(bits);
            for (std::size_t first = 0; first < 16; ++first) {
                for (std::size_t count : {0u, 1u, 13u, 64u, 129u, 700u}) {
                    const auto codes = random_codes(count, bits, static_cast<std::uint32_t>(first * 1000 + count));
                    const std::size_t size = packed_byte_count(first + count, bits) + 3;
                    auto expected = random_bytes(size, static_cast<std::uint32_t>(count + first)), got = expected;
                    reference::pack_codes(codes.data(), count, bits, expected.data(), first * static_cast<std::size_t>(bits));
                    std::vector<std::uint8_t> back(count);
                    switch (bits) {
                        case 2:
                            packed_view<2>(got.data(), first, count).pack_from(codes),
                                    packed_view<2>(got.data(), first, count).unpack_to(back);
                            break;
                        case 3:
                            packed_view<3>(got.data(), first, count).pack_from(codes),
                                    packed_view<3>(got.data(), first, count).unpack_to(back);
                            break;
                        case 5:
                            packed_view<5>(got.data(), first, count).pack_from(codes),
                                    packed_view<5>(got.data(), first, count).unpack_to(back);
                            break;
                        case 6:
                            packed_view<6>(got.data(), first, count).pack_from(codes),
                                    packed_view<6>(got.data(), first, count).unpack_to(back);
                            break;
                        case 7:
                            packed_view<7>(got.data(), first, count).pack_from(codes),
                                    packed_view<7>(got.data(), first, count).unpack_to(back);
                            break;
                        default:
                            packed_view<8>(got.data(), first, count).pack_from(codes),
                                    packed_view<8>(got.data(), first, count).unpack_to(back);
                            break;
                    }
                    if (got != expected) FAIL_CHECK("pack, first " << first << ", count " << count);
                    if (back != codes) FAIL_CHECK("unpack, first " << first << ", count " << count);
                }
            }
        }
    });
}

TEST_CASE_TEMPLATE("quantizing into packed codes and back gives the unpacked path's codes and floats", Q,
                   quantizer<BitWidth<2>, PerTensor, Symmetric>, quantizer<BitWidth<3>, PerGroup<64>, Asymmetric>,
                   quantizer<BitWidth<4>, PerRow, Asymmetric>, quantizer<BitWidth<5>, PerGroup<32>, Symmetric, backend::Simd>,
                   quantizer<BitWidth<6>, SuperBlock<256, 16, 8>, Symmetric>, quantizer<BitWidth<6>, PerGroup<8>, Symmetric, backend::Simd>,
                   quantizer<BitWidth<7>, PerGroup<32>, Asymmetric, backend::Simd>,
                   quantizer<BitWidth<8>, SuperBlock<256, 16>, Asymmetric>) {
    constexpr int bits = Q::bit_width::bits;
    std::mt19937 rng(17);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for_each_isa([&](std::string_view) {
        // 300 rows of 512 are three blocks of rows where groups lie within rows.
        for (const std::size_t rows : {1u, 3u, 300u}) {
            const std::size_t cols = 512;
            std::vector<float> x(rows * cols);
            for (auto& v : x) v = normal(rng);
            const auto view = make_matrix_view(static_cast<const float*>(x.data()), rows, cols);
            const auto unpacked = Q::quantize(view);
            const auto packed = quantize_packed<Q>(view);
            CHECK(packed.unpack() == unpacked);
            std::vector<float> padded(rows * (cols + 3), std::numeric_limits<float>::quiet_NaN());
            for (std::size_t r = 0; r < rows; ++r) std::copy_n(x.data() + r * cols, cols, padded.data() + r * (cols + 3));
            CHECK(quantize_packed<Q>(matrix_view<const float>(padded.data(), {rows, cols}, {cols + 3, 1})) == packed);
            CHECK(packed.codes().unpack() == std::vector<std::uint8_t>(unpacked.codes().begin(), unpacked.codes().end()));
            CHECK(packed.level(5) == unpacked.level(5));
            for (std::size_t g = 0; g < packed.group_count(); ++g) {
                if (!(packed.effective_params(g) == unpacked.effective_params(g))) FAIL_CHECK("group " << g);
            }
            const auto expected = Q::dequantize(unpacked);
            const auto got = dequantize_packed<Q>(packed);
            REQUIRE(got.size() == expected.size());
            CHECK(std::memcmp(got.data(), expected.data(), got.size() * sizeof(float)) == 0);
            std::vector<float> strided(rows * cols * 2);
            dequantize_packed<Q>(packed, matrix_view<float>(strided.data(), {rows, cols}, {cols * 2, 1}));
            for (std::size_t r = 0; r < rows; ++r)
                CHECK(std::memcmp(strided.data() + r * cols * 2, expected.data() + r * cols, cols * sizeof(float)) == 0);
            // What it takes: N bits per code, plus the parameters as stored.
            const std::size_t params = unpacked.groups().size() * sizeof(typename Q::tensor_type::group_type);
            std::size_t supers = 0;
            if constexpr (Q::tensor_type::has_super_blocks) supers = unpacked.super_scales().size() * sizeof(float);
            CHECK(packed.storage_bytes() == (x.size() * bits + 7) / 8 + params + supers);
            CHECK(packed.storage_bits() == unpacked.storage_bits());
            if constexpr (bits < 8)
                CHECK(packed.storage_bytes() < x.size() + params + supers);
            else
                CHECK(packed.storage_bytes() == x.size() + params + supers);
            std::vector<float> wrong(x.size() + 1);
            CHECK_THROWS_AS(dequantize_packed<Q>(packed, std::span<float>(wrong)), shape_error);
            CHECK_THROWS_AS(dequantize_packed<Q>(packed, make_matrix_view(wrong.data(), rows, cols + 1)), shape_error);
        }
    });
    // A NaN in a later block of rows is reported at its index in the whole matrix.
    std::vector<float> big(300 * 512, 0.5f);
    big[200 * 512 + 7] = -std::numeric_limits<float>::infinity();
    try {
        static_cast<void>(quantize_packed<Q>(make_matrix_view(static_cast<const float*>(big.data()), 300, 512)));
        FAIL("no throw");
    } catch (const value_error& e) {
        CHECK(e.index() == 200 * 512 + 7);
        CHECK(std::string(e.what()).find("(row 200, column 7) is -Inf") != std::string::npos);
    }
    std::vector<float> nan(256, 0.0f);
    nan[9] = std::numeric_limits<float>::quiet_NaN();
    try {
        static_cast<void>(quantize_packed<Q>(std::span<const float>(nan)));
        FAIL("no throw");
    } catch (const value_error& e) {
        CHECK(e.index() == 9);
    }
    CHECK(dequantize_packed<Q>(packed_tensor_of<Q>{}).empty());
}

TEST_CASE("MOSES keeps its 6-bit constants packed: fewer bytes per value, the same floats") {
    using cog::moses::q6_values;
    static_assert(q6_values::packed);
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> uniform(-3.0f, 3.0f);
    for (const std::size_t count : {1u, 3u, 9u, 1000u}) {
        CAPTURE(count);
        std::vector<float> values(count);
        for (auto& v : values) v = uniform(rng);
        const q6_values::storage_type stored = q6_values::store(values);
        // Before: the quantizer's byte codes for the same padded groups.
        std::vector<float> padded((count + 7) / 8 * 8, 0.0f);
        std::copy(values.begin(), values.end(), padded.begin());
        const auto unpacked = q6_values::quantizer_type::quantize(std::span<const float>(padded));
        CHECK(stored.tensor.unpack() == unpacked);
        std::vector<float> got(count);
        q6_values::load(stored, got);
        const auto expected = q6_values::quantizer_type::dequantize(unpacked);
        CHECK(std::memcmp(got.data(), expected.data(), count * sizeof(float)) == 0);
        CHECK(q6_values::storage_bits(stored) == unpacked.storage_bits());
        // After: 6 bits per code; the groups' parameters (8 bytes per 8 values) are unchanged.
        const std::size_t before = unpacked.size() + unpacked.group_count() * sizeof(affine_params);
        CHECK(q6_values::memory_bytes(stored) == (padded.size() * 6 + 7) / 8 + unpacked.group_count() * sizeof(affine_params));
        if (count == 1000) {
            CHECK(before == 2000);                           // 2 bytes per value
            CHECK(q6_values::memory_bytes(stored) == 1750);  // 1.75 bytes per value
        }
    }
    // Wider codes stay in 16-bit words.
    using q12 = cog::moses::quantized_values<BitWidth<12>, 8, Symmetric>;
    static_assert(!q12::packed);
    const std::vector<float> some{0.5f, -1.0f, 2.0f};
    CHECK(q12::memory_bytes(q12::store(some)) == 8 * 2 + sizeof(affine_params));
}

TEST_CASE("truth values gain nothing from packing: an 8-bit pair is two whole bytes already") {
    // quantized_truth_value<BitWidth<8>> is 16 bits for 16 bits of codes; a 4-bit pair would pack into 1 byte
    // instead of 2, 1 byte of the AtomSpace's 40 per atom (docs/COGNITIVE.md), at the cost of a read-modify-write
    // per set_truth_value: not worth a packed column.
    CHECK(sizeof(cog::quantized_truth_value<BitWidth<8>>) * 8 == 2 * 8);
    CHECK(sizeof(cog::quantized_truth_value<BitWidth<4>>) == 2);
    CHECK(packed_byte_count(2, 4) == 1);
}
