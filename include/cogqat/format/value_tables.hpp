#pragma once
// The value tables of GGUF's table-decoded formats: a stored code is an index into one of these, and the
// value is the block's scale times the entry. They are facts of the formats (ggml-common.h holds the same
// numbers; tests/interop/test_ggml_bytes.cpp checks them against what ggml's decoder writes).

#include <array>
#include <cstdint>

namespace cogqat {

/// iq4_nl and iq4_xs: sixteen non-uniform levels, denser near zero where weights are (ggml's kvalues_iq4nl).
inline constexpr std::array<std::int8_t, 16> iq4nl_values{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/// mxfp4: the sixteen E2M1 (FP4) values doubled, so that they are integers; code bit 3 is the sign, and
/// the block scale is stored halved to make up for the doubling (ggml's kvalues_mxfp4).
inline constexpr std::array<std::int8_t, 16> e2m1_doubled_values{0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

/// tq1_0: a trit 0, 1, 2 stands for -1, 0, +1.
inline constexpr std::array<std::int8_t, 3> ternary_values{-1, 0, 1};

/// tq2_0: two bits per value; code 3 is never written but decodes to +2 in ggml, so it does here too.
inline constexpr std::array<std::int8_t, 4> ternary_2bit_values{-1, 0, 1, 2};

}  // namespace cogqat
