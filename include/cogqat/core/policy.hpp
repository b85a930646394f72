#pragma once
// Policy types of the generic quantizer: how many bits a level has, which values share one set of
// parameters, how those parameters are chosen, and which backend runs the arithmetic. Each policy is a small
// type with static members; the concepts below list exactly what the quantizer asks of each, so a new policy
// is checked at the point where it is used rather than deep inside the algorithm.

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>

#include "cogqat/core/error.hpp"
#include "cogqat/core/rounding.hpp"
#include "cogqat/core/strict_fp.hpp"

namespace cogqat {

/// How one group decodes: value = scale * (level - zero_point). Both modes are this affine form; the
/// symmetric one keeps zero_point at 0.
struct affine_params {
    float scale = 0.0f;
    int zero_point = 0;

    friend bool operator==(const affine_params&, const affine_params&) = default;
};

// ---------------------------------------------------------------------------------------------- bit width

/// N bits per stored level, 2 <= N <= 16.
template <int N>
struct BitWidth {
    static_assert(N >= 2 && N <= 16, "BitWidth<N> needs 2 <= N <= 16");

    static constexpr int bits = N;
    /// Number of distinct codes an N-bit field holds.
    static constexpr int code_count = 1 << N;
    /// Largest unsigned N-bit code, 2^N - 1.
    static constexpr int unsigned_max = (1 << N) - 1;
    /// Largest magnitude of a symmetric level, 2^(N-1) - 1 (one code is left unused so that the range is
    /// symmetric and 0 sits exactly in the middle).
    static constexpr int symmetric_max = (1 << (N - 1)) - 1;
    /// One code per byte up to 8 bits, two above: codes are kept unpacked in memory.
    using code_type = std::conditional_t<(N <= 8), std::uint8_t, std::uint16_t>;
};

/// What the quantizer needs of a bit width: the count of bits and an unsigned type wide enough for a code.
template <class B>
concept BitWidthPolicy = requires {
    { B::bits } -> std::convertible_to<int>;
    typename B::code_type;
    requires std::unsigned_integral<typename B::code_type>;
    requires B::bits >= 2 && B::bits <= 16;
    requires std::numeric_limits<typename B::code_type>::digits >= B::bits;
};

// --------------------------------------------------------------------------------------------------- modes

COGQAT_STRICT_FP_BEGIN

/// Levels in [-(2^(N-1)-1), 2^(N-1)-1] and scale = max|x| / (2^(N-1)-1): no zero-point to store, and 0.0
/// is always level 0.
struct Symmetric {
    static constexpr std::string_view name = "symmetric";
    static constexpr bool has_zero_point = false;

    [[nodiscard]] static constexpr int max_level(int bits) noexcept { return (1 << (bits - 1)) - 1; }
    [[nodiscard]] static constexpr int min_level(int bits) noexcept { return -max_level(bits); }

    /// Parameters for a group whose values lie in [lo, hi]. An all-zero group gets scale 0.
    [[nodiscard]] static affine_params choose_params(float lo, float hi, int bits) noexcept {
        // fabs rather than -lo: an all-zero group must get +0, not -0, so that it decodes to +0.
        const float largest = std::max(std::fabs(lo), std::fabs(hi));
        return {largest / static_cast<float>(max_level(bits)), 0};
    }
};

/// Levels in [0, 2^N-1], affine with an integer zero-point. The range is first widened to include 0, so
/// 0.0 is a level exactly (zero weights and padding stay zero): scale = (max-min)/(2^N-1) and
/// zero_point = clamp(round(-min/scale), 0, 2^N-1).
struct Asymmetric {
    static constexpr std::string_view name = "asymmetric";
    static constexpr bool has_zero_point = true;

    [[nodiscard]] static constexpr int max_level(int bits) noexcept { return (1 << bits) - 1; }
    [[nodiscard]] static constexpr int min_level(int /*bits*/) noexcept { return 0; }

    /// Parameters for a group whose values lie in [lo, hi]. An all-zero group gets scale 0, zero-point 0.
    [[nodiscard]] static affine_params choose_params(float lo, float hi, int bits) noexcept {
        lo = std::min(lo, 0.0f);
        hi = std::max(hi, 0.0f);
        const float top = static_cast<float>(max_level(bits));
        float scale = (hi - lo) / top;
        // hi - lo overflows for finite inputs near +-FLT_MAX; dividing first keeps the scale finite.
        if (!std::isfinite(scale)) scale = hi / top - lo / top;
        if (scale == 0.0f) return {0.0f, 0};
        // Clamping before rounding keeps the conversion exact (nearest_int is exact below 2^22).
        const float zero = std::clamp(-lo / scale, 0.0f, top);
        return {scale, detail::nearest_int(zero)};
    }
};

COGQAT_STRICT_FP_END

/// What the quantizer needs of a mode: the level range for a bit width (usable at compile time), whether
/// the zero-point varies (and so must be stored), and the rule that picks a group's parameters from the
/// smallest and largest of its values. The zero-point it returns must lie in the level range.
template <class M>
concept ModePolicy = requires(float lo, float hi, int bits) {
    { M::name } -> std::convertible_to<std::string_view>;
    { M::has_zero_point } -> std::convertible_to<bool>;
    { M::min_level(bits) } -> std::same_as<int>;
    { M::max_level(bits) } -> std::same_as<int>;
    { M::choose_params(lo, hi, bits) } -> std::same_as<affine_params>;
    typename std::integral_constant<int, M::min_level(16) + M::max_level(16)>;  // constexpr
};

// ---------------------------------------------------------------------------------------------- granularity
// A granularity cuts a (rows x cols) tensor into groups of consecutive values in row-major order; each group
// has its own parameters. Except for PerTensor, a group never crosses a row boundary.

namespace detail {

inline void require_row_multiple(std::size_t cols, std::size_t unit, std::string_view unit_name, std::string_view context) {
    if (unit != 0 && cols % unit != 0) {
        throw shape_error(std::string(context) + ": row length " + std::to_string(cols) + " is not a multiple of the " +
                          std::string(unit_name) + " " + std::to_string(unit));
    }
}

}  // namespace detail

/// One set of parameters for the whole tensor.
struct PerTensor {
    /// Any shape is fine.
    static void check_shape(std::size_t /*rows*/, std::size_t /*cols*/, std::string_view /*context*/) noexcept {}
    [[nodiscard]] static constexpr std::size_t group_length(std::size_t rows, std::size_t cols) noexcept { return rows * cols; }
    [[nodiscard]] static constexpr std::size_t group_count(std::size_t rows, std::size_t cols) noexcept { return rows * cols == 0 ? 0 : 1; }
};

/// One set of parameters per row (per output channel of a weight matrix).
struct PerRow {
    /// Any shape is fine.
    static void check_shape(std::size_t /*rows*/, std::size_t /*cols*/, std::string_view /*context*/) noexcept {}
    [[nodiscard]] static constexpr std::size_t group_length(std::size_t /*rows*/, std::size_t cols) noexcept { return cols; }
    [[nodiscard]] static constexpr std::size_t group_count(std::size_t rows, std::size_t cols) noexcept { return cols == 0 ? 0 : rows; }
};

/// One set of parameters per G consecutive values of a row; the row length must be a multiple of G.
template <std::size_t G>
struct PerGroup {
    static_assert(G > 0, "PerGroup<G> needs G > 0");
    static constexpr std::size_t group_size = G;

    /// Throws shape_error when the row length is not a multiple of G.
    static void check_shape(std::size_t /*rows*/, std::size_t cols, std::string_view context) {
        detail::require_row_multiple(cols, G, "group size", context);
    }
    [[nodiscard]] static constexpr std::size_t group_length(std::size_t /*rows*/, std::size_t /*cols*/) noexcept { return G; }
    [[nodiscard]] static constexpr std::size_t group_count(std::size_t rows, std::size_t cols) noexcept { return rows * cols / G; }
};

/// Rows cut into super-blocks of S values, each made of S/G groups of G. A group's scale (and, for a mode
/// with a zero-point, its zero-point) is stored as a ScaleBits-bit unsigned code against one float
/// super-scale per super-block: the generic form of GGUF's K-quant super-blocks.
template <std::size_t S, std::size_t G, int ScaleBits = 6>
struct SuperBlock {
    static_assert(G > 0 && S > 0, "SuperBlock<S, G> needs S > 0 and G > 0");
    static_assert(S % G == 0, "SuperBlock<S, G> needs the super-block size S to be a multiple of the group size G");
    static_assert(ScaleBits >= 1 && ScaleBits <= 16, "SuperBlock<S, G, ScaleBits> needs 1 <= ScaleBits <= 16");

    static constexpr std::size_t super_block_size = S;
    static constexpr std::size_t group_size = G;
    static constexpr int scale_bits = ScaleBits;

    /// Throws shape_error when the row length is not a multiple of S.
    static void check_shape(std::size_t /*rows*/, std::size_t cols, std::string_view context) {
        detail::require_row_multiple(cols, S, "super-block size", context);
    }
    [[nodiscard]] static constexpr std::size_t group_length(std::size_t /*rows*/, std::size_t /*cols*/) noexcept { return G; }
    [[nodiscard]] static constexpr std::size_t group_count(std::size_t rows, std::size_t cols) noexcept { return rows * cols / G; }
};

/// What the quantizer needs of a granularity: a shape check that throws shape_error naming the numbers, the
/// length of a group (its values are consecutive in row-major order) and the number of groups.
template <class G>
concept GranularityPolicy = requires(std::size_t rows, std::size_t cols, std::string_view context) {
    { G::check_shape(rows, cols, context) } -> std::same_as<void>;
    { G::group_length(rows, cols) } -> std::same_as<std::size_t>;
    { G::group_count(rows, cols) } -> std::same_as<std::size_t>;
};

/// A granularity whose group parameters are themselves quantized against a per-super-block scale.
template <class G>
concept SuperBlockGranularity = GranularityPolicy<G> && requires {
    { G::super_block_size } -> std::convertible_to<std::size_t>;
    { G::group_size } -> std::convertible_to<std::size_t>;
    { G::scale_bits } -> std::convertible_to<int>;
};

// ------------------------------------------------------------------------------------------------ backends

namespace backend {

/// Plain C++ arithmetic; the reference every other backend is checked against.
struct Scalar {
    static constexpr std::string_view name = "scalar";
};

/// The SIMD kernels of the instruction set in use (dispatch/kernel_table.hpp), chosen at run time; the same
/// codes and floats as Scalar, checked in the tests. In a program that links no kernel table it runs Scalar's
/// code and the first call warns once on stderr (silenced by choosing the reference: COGQAT_SIMD=scalar or
/// dispatch::use_isa("scalar")); dispatch::kernels_linked() and dispatch::describe() say what is linked.
struct Simd {
    static constexpr std::string_view name = "simd";
};

}  // namespace backend

/// A backend tag names itself; the quantizer is specialized per tag.
template <class B>
concept Backend = requires {
    { B::name } -> std::convertible_to<std::string_view>;
};

}  // namespace cogqat
