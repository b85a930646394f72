#pragma once
// The generic quantizer: any bit width, granularity and mode from core/policy.hpp, applied to a float
// matrix. The result keeps one unsigned code per value (unpacked, one or two bytes) and the parameters of
// every group; storage_bits() says what a packed format would take.
//
// The per-element arithmetic lives once, in namespace `reference` (core/affine_levels.hpp): the scalar backend
// is exactly those functions in loops, and faster backends are to be checked against them bit for bit. Everything here is
// compiled without FMA contraction so that results do not depend on compiler flags.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "cogqat/calib/calibrators.hpp"
#include "cogqat/core/affine_levels.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/parallel.hpp"
#include "cogqat/core/policy.hpp"
#include "cogqat/core/rounding.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/core/tensor_view.hpp"
#include "cogqat/dispatch/kernel_table.hpp"

COGQAT_STRICT_FP_BEGIN

namespace cogqat {

namespace reference {

/// How a super-block stores its groups' parameters as ScaleBits-bit codes, and how it reads them back.
template <BitWidthPolicy Bits, ModePolicy Mode, int ScaleBits>
struct super_block_rules {
    using traits = level_traits<Bits, Mode>;
    static constexpr int max_scale_code = (1 << ScaleBits) - 1;
    /// Distance between zero-points a code can name: 1 while every level fits in ScaleBits bits, else the
    /// levels are covered by 2^ScaleBits evenly spaced points.
    static constexpr int zero_step = (traits::max_code + 1 + max_scale_code) / (max_scale_code + 1);
    static constexpr int max_zero_code = Mode::has_zero_point ? traits::max_code / zero_step : 0;

    /// Moves a zero-point onto the grid of zero_step and, when that moved it, widens the scale until every
    /// value of [lo, hi] is within half a step of the level range again, so the error stays below scale/2.
    [[nodiscard]] static affine_params fit_zero_point(affine_params p, [[maybe_unused]] float lo, [[maybe_unused]] float hi) noexcept {
        if constexpr (!Mode::has_zero_point || zero_step == 1) {
            return p;
        } else {
            const int code = std::min((p.zero_point - traits::min_level + zero_step / 2) / zero_step, max_zero_code);
            const int zero = traits::min_level + code * zero_step;
            if (zero == p.zero_point) return p;
            float scale = p.scale;
            if (lo < 0.0f) scale = std::max(scale, -lo / (static_cast<float>(zero - traits::min_level) + 0.5f));
            if (hi > 0.0f) scale = std::max(scale, hi / (static_cast<float>(traits::max_level - zero) + 0.5f));
            return {scale, zero};
        }
    }

    /// Super-scale of a super-block: its largest group scale gets the largest code.
    [[nodiscard]] static float super_scale(float largest_group_scale) noexcept {
        return largest_group_scale / static_cast<float>(max_scale_code);
    }

    /// Scale code of a group, rounded up: a stored scale below the group's own would clip its extreme values
    /// by more than half a step, while a larger one only coarsens the step.
    [[nodiscard]] static std::uint16_t scale_code(float group_scale, float super) noexcept {
        if (super == 0.0f) return 0;
        const float steps = std::ceil(group_scale / super);
        return static_cast<std::uint16_t>(std::min(steps, static_cast<float>(max_scale_code)));
    }

    /// Zero-point code of a zero-point on the grid (0 in a mode without zero-points).
    [[nodiscard]] static constexpr std::uint16_t zero_code(int zero_point) noexcept {
        if constexpr (!Mode::has_zero_point)
            return 0;
        else
            return static_cast<std::uint16_t>((zero_point - traits::min_level) / zero_step);
    }

    /// The parameters a group decodes with.
    [[nodiscard]] static affine_params params(float super, sub_scale codes) noexcept {
        const int zero = Mode::has_zero_point ? traits::min_level + static_cast<int>(codes.zero) * zero_step : 0;
        return {super * static_cast<float>(codes.scale), zero};
    }
};

}  // namespace reference

namespace detail::quantizer_impl {

/// "rows x cols", for messages.
inline std::string shape_text(std::size_t rows, std::size_t cols) { return std::to_string(rows) + " x " + std::to_string(cols); }

/// The super-block rules of a granularity that has super-blocks; a placeholder for one that has not.
template <class Bits, class Mode, class Granularity>
struct super_block_rules_for {
    using type = void;
    static constexpr std::size_t groups = 1;
};
template <class Bits, class Mode, SuperBlockGranularity Granularity>
struct super_block_rules_for<Bits, Mode, Granularity> {
    using type = reference::super_block_rules<Bits, Mode, Granularity::scale_bits>;
    static constexpr std::size_t groups = Granularity::super_block_size / Granularity::group_size;
};

}  // namespace detail::quantizer_impl

template <BitWidthPolicy Bits, GranularityPolicy Granularity, ModePolicy Mode, Backend B, Calibrator C>
class quantizer;

/// An owning quantized tensor: rows x cols codes in row-major order and the parameters of every group.
/// The parts are public through accessors so a format can pack them; the constructor checks them.
template <BitWidthPolicy Bits, GranularityPolicy Granularity, ModePolicy Mode>
class quantized_tensor {
    using traits = level_traits<Bits, Mode>;

public:
    using code_type = typename Bits::code_type;
    static constexpr bool has_super_blocks = SuperBlockGranularity<Granularity>;
    /// What is stored per group: the float parameters, or their codes inside a super-block.
    using group_type = std::conditional_t<has_super_blocks, sub_scale, affine_params>;
    static constexpr int min_level = traits::min_level;
    static constexpr int max_level = traits::max_level;

    /// An empty 0 x 0 tensor.
    quantized_tensor() = default;

    /// Assembles a tensor from its parts, checking their sizes (shape_error) and ranges (value_error with the
    /// index of the bad code or group).
    quantized_tensor(std::size_t rows, std::size_t cols, std::vector<code_type> codes,
                     std::vector<group_type> groups) requires(!has_super_blocks)
            : rows_(rows), cols_(cols), codes_(std::move(codes)), groups_(std::move(groups)) {
        validate();
    }

    /// As above, with one super-scale per super-block.
    quantized_tensor(std::size_t rows, std::size_t cols, std::vector<code_type> codes, std::vector<group_type> groups,
                     std::vector<float> super_scales) requires(has_super_blocks)
            : rows_(rows), cols_(cols), codes_(std::move(codes)), groups_(std::move(groups)), super_scales_(std::move(super_scales)) {
        validate();
    }

    [[nodiscard]] std::size_t rows() const noexcept { return rows_; }
    [[nodiscard]] std::size_t cols() const noexcept { return cols_; }
    /// Number of values.
    [[nodiscard]] std::size_t size() const noexcept { return codes_.size(); }
    [[nodiscard]] bool empty() const noexcept { return codes_.empty(); }

    /// Unsigned codes, row-major: code = level - min_level, in [0, max_level - min_level].
    [[nodiscard]] std::span<const code_type> codes() const noexcept { return codes_; }
    /// Signed level of value `i` (row-major).
    [[nodiscard]] int level(std::size_t i) const noexcept { return static_cast<int>(codes_[i]) + min_level; }

    /// Stored parameters of every group, in row-major order of the groups.
    [[nodiscard]] std::span<const group_type> groups() const noexcept { return groups_; }
    /// One float super-scale per super-block.
    [[nodiscard]] std::span<const float> super_scales() const noexcept requires(has_super_blocks) { return super_scales_; }

    /// Values per group; group g holds values [g * group_length(), (g + 1) * group_length()).
    [[nodiscard]] std::size_t group_length() const noexcept { return Granularity::group_length(rows_, cols_); }
    [[nodiscard]] std::size_t group_count() const noexcept { return groups_.size(); }

    /// The scale and zero-point group `g` decodes with (for a super-block, read back from the codes).
    [[nodiscard]] affine_params effective_params(std::size_t g) const noexcept { return effective_params(groups_, super_scales_, g); }
    /// The same for stored parameters held elsewhere (a packed tensor's): one rule for both.
    [[nodiscard]] static affine_params effective_params(std::span<const group_type> groups, std::span<const float> super_scales,
                                                        std::size_t g) noexcept {
        if constexpr (has_super_blocks) {
            return rules::params(super_scales[g / groups_per_super_block], groups[g]);
        } else {
            static_cast<void>(super_scales);
            return groups[g];
        }
    }

    /// Size in bits of the packed format: Bits::bits per value; per group a 32-bit float scale plus a
    /// Bits::bits zero-point when the mode has one; in super-blocks instead ScaleBits per group for the scale
    /// (twice that with a zero-point) plus a 32-bit float super-scale per super-block.
    [[nodiscard]] std::size_t storage_bits() const noexcept { return storage_bits(size(), groups_.size(), super_scales_.size()); }
    /// The same for a tensor of `values` values, `groups` groups and `super_blocks` super-scales.
    [[nodiscard]] static constexpr std::size_t storage_bits(std::size_t values, std::size_t groups, std::size_t super_blocks) noexcept {
        constexpr std::size_t float_bits = 32;
        const std::size_t value_bits = values * static_cast<std::size_t>(Bits::bits);
        if constexpr (has_super_blocks) {
            constexpr std::size_t per_group = static_cast<std::size_t>(Granularity::scale_bits) * (Mode::has_zero_point ? 2 : 1);
            return value_bits + groups * per_group + super_blocks * float_bits;
        } else {
            static_cast<void>(super_blocks);
            constexpr std::size_t per_group = float_bits + (Mode::has_zero_point ? static_cast<std::size_t>(Bits::bits) : 0);
            return value_bits + groups * per_group;
        }
    }
    /// storage_bits() rounded up to whole bytes.
    [[nodiscard]] std::size_t storage_bytes() const noexcept { return (storage_bits() + 7) / 8; }

    friend bool operator==(const quantized_tensor&, const quantized_tensor&) = default;

private:
    using rules = typename detail::quantizer_impl::super_block_rules_for<Bits, Mode, Granularity>::type;
    static constexpr std::size_t groups_per_super_block = detail::quantizer_impl::super_block_rules_for<Bits, Mode, Granularity>::groups;

    template <BitWidthPolicy, GranularityPolicy, ModePolicy, Backend, Calibrator>
    friend class quantizer;
    struct unchecked {};
    /// For the quantizer, whose parts are in range by construction: validate() would read every code again,
    /// as long as encoding them took.
    quantized_tensor(unchecked, std::size_t rows, std::size_t cols, std::vector<code_type> codes, std::vector<group_type> groups,
                     std::vector<float> super_scales)
            : rows_(rows), cols_(cols), codes_(std::move(codes)), groups_(std::move(groups)), super_scales_(std::move(super_scales)) {}

    void validate() const {
        constexpr std::string_view context = "quantized_tensor";
        Granularity::check_shape(rows_, cols_, context);
        const std::size_t values = rows_ * cols_;
        const std::string shape = detail::quantizer_impl::shape_text(rows_, cols_);
        if (codes_.size() != values) {
            throw shape_error(std::string(context) + ": " + std::to_string(codes_.size()) + " codes for a " + shape + " tensor");
        }
        const std::size_t groups = Granularity::group_count(rows_, cols_);
        if (groups_.size() != groups) {
            throw shape_error(std::string(context) + ": " + std::to_string(groups_.size()) + " groups for a " + shape +
                              " tensor, which has " + std::to_string(groups));
        }
        if constexpr (traits::max_code < std::numeric_limits<code_type>::max()) {
            for (std::size_t i = 0; i < codes_.size(); ++i) {
                if (codes_[i] > traits::max_code) {
                    throw value_error(std::string(context) + ": code[" + std::to_string(i) + "] = " + std::to_string(codes_[i]) +
                                              " is above the largest code " + std::to_string(traits::max_code),
                                      i);
                }
            }
        }
        auto bad_group = [&](std::size_t g, std::string_view what) {
            return value_error(std::string(context) + ": group " + std::to_string(g) + " " + std::string(what), g);
        };
        if constexpr (has_super_blocks) {
            if (super_scales_.size() * groups_per_super_block != groups) {
                throw shape_error(std::string(context) + ": " + std::to_string(super_scales_.size()) + " super-scales for " +
                                  std::to_string(groups) + " groups of " + std::to_string(groups_per_super_block) + " per super-block");
            }
            for (std::size_t b = 0; b < super_scales_.size(); ++b) {
                if (!std::isfinite(super_scales_[b]) || super_scales_[b] < 0.0f) {
                    throw value_error(std::string(context) + ": super-scale " + std::to_string(b) + " is not a finite non-negative number",
                                      b);
                }
            }
            for (std::size_t g = 0; g < groups_.size(); ++g) {
                if (groups_[g].scale > rules::max_scale_code) throw bad_group(g, "has a scale code above the largest one");
                if (groups_[g].zero > rules::max_zero_code) throw bad_group(g, "has a zero-point code above the largest one");
            }
        } else {
            for (std::size_t g = 0; g < groups_.size(); ++g) {
                const affine_params& p = groups_[g];
                if (!std::isfinite(p.scale) || p.scale < 0.0f) throw bad_group(g, "has a scale that is not a finite non-negative number");
                if (p.zero_point < min_level || p.zero_point > max_level || (!Mode::has_zero_point && p.zero_point != 0)) {
                    throw bad_group(g, "has zero-point " + std::to_string(p.zero_point) + " outside the level range");
                }
            }
        }
    }

    std::size_t rows_ = 0;
    std::size_t cols_ = 0;
    std::vector<code_type> codes_;
    std::vector<group_type> groups_;
    std::vector<float> super_scales_;
};

namespace detail::quantizer_impl {

/// The values of `x` in row-major order: the view's own memory when it is contiguous, else a copy in
/// `buffer`.
inline std::span<const float> gather_row_major(matrix_view<const float> x, std::vector<float>& buffer) {
    if (x.is_contiguous()) return x.flat();
    buffer.resize(x.size());
    std::size_t i = 0;
    for (std::size_t r = 0; r < x.extent(0); ++r)
        for (std::size_t c = 0; c < x.extent(1); ++c) buffer[i++] = x(r, c);
    return buffer;
}

/// Writes row-major `values` into a view of the same shape, whatever its strides.
inline void scatter_row_major(std::span<const float> values, matrix_view<float> out) noexcept {
    std::size_t i = 0;
    for (std::size_t r = 0; r < out.extent(0); ++r)
        for (std::size_t c = 0; c < out.extent(1); ++c) out(r, c) = values[i++];
}

/// The value_error of the first NaN or Inf, at row-major index `i`, naming its row and column.
inline value_error non_finite_error(float value, std::size_t i, std::size_t cols, std::string_view context) {
    const char* what = std::isnan(value) ? "NaN" : (value > 0 ? "+Inf" : "-Inf");
    return value_error(std::string(context) + ": input[" + std::to_string(i) + "] (row " + std::to_string(i / cols) + ", column " +
                               std::to_string(i % cols) + ") is " + what,
                       i);
}

/// Throws value_error at the first NaN or Inf, naming its row-major index, row and column.
inline void require_finite_matrix(std::span<const float> values, std::size_t cols, std::string_view context) {
    for (std::size_t i = 0; i < values.size(); ++i)
        if (!std::isfinite(values[i])) throw non_finite_error(values[i], i, cols, context);
}

/// Values a quantizer works on at a time: whole groups of about this many values (64 KiB of floats) are
/// scanned, given their parameters and encoded while they are still in the core's cache, and they are the
/// unit the threads share.
inline constexpr std::size_t chunk_values = 16384;

// The scalar loops, exactly the reference's per-value functions: the Scalar backend, and the Simd backend's
// fallback where the active table has no kernel.

/// reference::value_range of each of `groups` groups of `length` values; the index of the first NaN or Inf
/// (ranges then unspecified), else length * groups.
inline std::size_t reference_ranges(const float* x, std::size_t length, std::size_t groups, float* lo, float* hi) noexcept {
    const std::size_t n = length * groups;
    for (std::size_t i = 0; i < n; ++i)
        if (!std::isfinite(x[i])) return i;
    for (std::size_t g = 0; g < groups; ++g) std::tie(lo[g], hi[g]) = reference::value_range({x + g * length, length});
    return n;
}

template <BitWidthPolicy Bits, ModePolicy Mode>
void reference_encode(const float* x, std::size_t length, std::size_t groups, const affine_params* params,
                      typename Bits::code_type* codes) noexcept {
    for (std::size_t g = 0; g < groups; ++g)
        for (std::size_t i = g * length; i < (g + 1) * length; ++i) codes[i] = reference::encode<Bits, Mode>(x[i], params[g]);
}

template <BitWidthPolicy Bits, ModePolicy Mode>
void reference_decode(const typename Bits::code_type* codes, std::size_t length, std::size_t groups, const affine_params* params,
                      float* out) noexcept {
    for (std::size_t g = 0; g < groups; ++g)
        for (std::size_t i = g * length; i < (g + 1) * length; ++i) out[i] = reference::decode<Bits, Mode>(codes[i], params[g]);
}

}  // namespace detail::quantizer_impl

/// Quantizes float matrices with N-bit levels, one set of parameters per group of the granularity, chosen
/// by the mode from the range the calibrator gives each group (calib/calibrators.hpp; min_max, the default,
/// gives the group's full range). Stateless: every function is static, and an object may be made for
/// convenience.
///
/// Guarantee: every value inside its group's range comes back within half of the group's effective scale
/// (plus float rounding), values outside are clamped to the range's ends, and 0.0 comes back as exactly 0.0.
/// With min_max nothing lies outside.
template <BitWidthPolicy Bits, GranularityPolicy Granularity, ModePolicy Mode = Symmetric, Backend B = backend::Scalar,
          Calibrator C = min_max>
class quantizer {
    // The backends differ only in who runs the per-element loops of a group (encode_span, decode_span).
    static_assert(std::same_as<B, backend::Scalar> || std::same_as<B, backend::Simd>,
                  "cogqat::quantizer: this backend has no implementation; use backend::Scalar or backend::Simd");

public:
    using bit_width = Bits;
    using granularity = Granularity;
    using mode = Mode;
    using backend_type = B;
    using calibrator = C;
    using tensor_type = quantized_tensor<Bits, Granularity, Mode>;
    using code_type = typename Bits::code_type;

    /// Quantizes a (possibly strided) matrix. Throws shape_error when the row length does not fit the
    /// granularity and value_error (with the row-major index) on NaN or Inf. An empty matrix is fine.
    /// `threads` (0: one per hardware thread) share the groups; the result does not depend on it.
    [[nodiscard]] static tensor_type quantize(matrix_view<const float> x, unsigned threads = 1) {
        return quantize_checked(x, "quantize", threads);
    }
    /// A 1-D array, quantized as one row.
    [[nodiscard]] static tensor_type quantize(std::span<const float> x, unsigned threads = 1) { return quantize(as_row(x), threads); }
    /// With precomputed ranges, one per group in row-major group order (a calibrator's result, e.g. from
    /// C::calibrate<Bits, Granularity, Mode>(x) or a running_calibrator), instead of the calibrator's. Throws
    /// shape_error when their number is not the granularity's group count, and value_error (with the group's
    /// index) for a range that is not finite with lo <= hi; otherwise as quantize(x).
    [[nodiscard]] static tensor_type quantize(matrix_view<const float> x, std::span<const clip_range> ranges, unsigned threads = 1) {
        return quantize_checked(x, "quantize", threads, ranges);
    }
    /// A 1-D array as one row, with precomputed ranges.
    [[nodiscard]] static tensor_type quantize(std::span<const float> x, std::span<const clip_range> ranges, unsigned threads = 1) {
        return quantize(as_row(x), ranges, threads);
    }

    /// Decodes `q` into `out`, which must have q's shape (any strides), on `threads` threads (0: one per
    /// hardware thread); the values do not depend on the thread count.
    static void dequantize(const tensor_type& q, matrix_view<float> out, unsigned threads = 1) {
        require_same_shape(q.rows(), q.cols(), out, "dequantize");
        decode_into(q, out, threads);
    }
    /// Decodes `q` in row-major order into `out`, which must hold q.size() values.
    static void dequantize(const tensor_type& q, std::span<float> out, unsigned threads = 1) {
        if (out.size() != q.size()) {
            throw shape_error("dequantize: the output holds " + std::to_string(out.size()) + " values, the " +
                              detail::quantizer_impl::shape_text(q.rows(), q.cols()) + " tensor has " + std::to_string(q.size()));
        }
        decode_flat(q, out, threads);
    }
    /// Decodes `q` into a new row-major array.
    [[nodiscard]] static std::vector<float> dequantize(const tensor_type& q, unsigned threads = 1) {
        std::vector<float> out(q.size());
        decode_flat(q, out, threads);
        return out;
    }

    /// Quantizes then dequantizes `in` into `out` (same shape). `out` may be `in` itself: all of the input is
    /// read before anything is written.
    static void fake_quantize(matrix_view<const float> in, matrix_view<float> out) {
        require_same_shape(in.extent(0), in.extent(1), out, "fake_quantize");
        decode_into(quantize_checked(in, "fake_quantize", 1), out, 1);
    }
    /// In place.
    static void fake_quantize(matrix_view<float> x) { fake_quantize(x, x); }
    /// 1-D arrays, treated as one row; `out` must be as long as `in` and may be the same memory.
    static void fake_quantize(std::span<const float> in, std::span<float> out) {
        if (out.size() != in.size()) {
            throw shape_error("fake_quantize: the output holds " + std::to_string(out.size()) + " values, the input " +
                              std::to_string(in.size()));
        }
        fake_quantize(as_row(in), as_row(out));
    }
    /// 1-D, in place.
    static void fake_quantize(std::span<float> x) { fake_quantize(x, x); }

private:
    template <class T>
    static matrix_view<T> as_row(std::span<T> x) noexcept {
        return make_matrix_view(x.data(), 1, x.size());
    }

    static void require_same_shape(std::size_t rows, std::size_t cols, matrix_view<float> out, std::string_view context) {
        if (out.extent(0) != rows || out.extent(1) != cols) {
            using detail::quantizer_impl::shape_text;
            throw shape_error(std::string(context) + ": the output is " + shape_text(out.extent(0), out.extent(1)) + ", expected " +
                              shape_text(rows, cols));
        }
    }

    using traits = level_traits<Bits, Mode>;
    using group_type = typename tensor_type::group_type;
    static constexpr bool has_super_blocks = tensor_type::has_super_blocks;
    static constexpr bool simd = std::same_as<B, backend::Simd>;
    static constexpr std::size_t none = std::numeric_limits<std::size_t>::max();

    // ------------------------------------------------------------------------------------------ group loops
    // Each covers whole groups: the active table's kernel on backend::Simd, else the reference loop.

    /// The range step: every group's smallest and largest value (reference::value_range), the finiteness
    /// check fused in; returns the index (from x) of the first NaN or Inf, else length * groups.
    static std::size_t group_ranges(const float* x, std::size_t length, std::size_t groups, float* lo, float* hi) {
        if constexpr (simd) {
            if (const auto k = dispatch::active().quantizer.group_ranges) return k(x, length, groups, lo, hi);
        }
        return detail::quantizer_impl::reference_ranges(x, length, groups, lo, hi);
    }

    /// The parameter step: Mode::choose_params of every group's range; the built-in modes' rules on SIMD lanes.
    static void choose_params(const float* lo, const float* hi, std::size_t groups, affine_params* params) {
        if constexpr (simd && (std::same_as<Mode, Symmetric> || std::same_as<Mode, Asymmetric>)) {
            const auto& table = dispatch::active().quantizer;
            const auto k = std::same_as<Mode, Symmetric> ? table.symmetric_params : table.asymmetric_params;
            if (k) return k(lo, hi, groups, traits::max_level, params);
        }
        for (std::size_t g = 0; g < groups; ++g) params[g] = Mode::choose_params(lo[g], hi[g], Bits::bits);
    }

    static void encode_groups(const float* x, std::size_t length, std::size_t groups, const affine_params* params, code_type* codes) {
        if constexpr (simd) {
            const auto& table = dispatch::active().quantizer;
            if constexpr (sizeof(code_type) == 1) {
                if (table.encode_u8) return table.encode_u8(x, length, groups, params, traits::min_level, traits::max_level, codes);
            } else {
                if (table.encode_u16) return table.encode_u16(x, length, groups, params, traits::min_level, traits::max_level, codes);
            }
        }
        detail::quantizer_impl::reference_encode<Bits, Mode>(x, length, groups, params, codes);
    }

    static void decode_groups(const code_type* codes, std::size_t length, std::size_t groups, const affine_params* params, float* out) {
        if constexpr (simd) {
            const auto& table = dispatch::active().quantizer;
            if constexpr (sizeof(code_type) == 1) {
                if (table.decode_u8) return table.decode_u8(codes, length, groups, params, traits::min_level, out);
            } else {
                if (table.decode_u16) return table.decode_u16(codes, length, groups, params, traits::min_level, out);
            }
        }
        detail::quantizer_impl::reference_decode<Bits, Mode>(codes, length, groups, params, out);
    }

    // ------------------------------------------------------------------------------------------- quantize

    using rules = typename detail::quantizer_impl::super_block_rules_for<Bits, Mode, Granularity>::type;
    static constexpr std::size_t groups_per_super_block = detail::quantizer_impl::super_block_rules_for<Bits, Mode, Granularity>::groups;

    /// Groups per chunk: whole super-blocks, about chunk_values values, at least one.
    static std::size_t chunk_groups(std::size_t length) noexcept {
        const std::size_t unit = length * groups_per_super_block;
        return std::max<std::size_t>(1, detail::quantizer_impl::chunk_values / std::max<std::size_t>(unit, 1)) * groups_per_super_block;
    }

    /// What one thread needs to quantize a chunk.
    struct chunk_buffers {
        std::vector<float> lo, hi;
        std::vector<affine_params> params;
        explicit chunk_buffers(std::size_t groups) : lo(groups), hi(groups), params(groups) {}
    };

    /// Scans, parametrizes and encodes groups [first, first + count) (whole super-blocks). Returns the
    /// row-major index of the first NaN or Inf in them, or `none` when there is none.
    static std::size_t quantize_chunk(const float* values, std::size_t length, std::size_t first, std::size_t count, chunk_buffers& b,
                                      code_type* codes, group_type* groups, float* super_scales, std::span<const clip_range> ranges) {
        const float* x = values + first * length;
        if (const std::size_t bad = group_ranges(x, length, count, b.lo.data(), b.hi.data()); bad != length * count)
            return first * length + bad;
        if (!ranges.empty()) {
            // A calibrator's ranges (or the caller's) in place of the extremes; the scan above still checked
            // that every value is finite.
            for (std::size_t k = 0; k < count; ++k) b.lo[k] = ranges[first + k].lo, b.hi[k] = ranges[first + k].hi;
        }
        if constexpr (SuperBlockGranularity<Granularity>) {
            constexpr std::size_t per_block = groups_per_super_block;
            choose_params(b.lo.data(), b.hi.data(), count, b.params.data());
            if constexpr (simd && (!Mode::has_zero_point || rules::zero_step == 1)) {
                // Every zero-point has its own code: the super-block step is a few operations per group, on lanes.
                if (const auto k = dispatch::active().quantizer.super_block_codes) {
                    k(b.params.data(), count, per_block, rules::max_scale_code, traits::min_level, Mode::has_zero_point, groups + first,
                      super_scales + first / per_block);
                    encode_groups(x, length, count, b.params.data(), codes + first * length);
                    return none;
                }
            }
            for (std::size_t k0 = 0; k0 < count; k0 += per_block) {
                float largest = 0.0f;
                for (std::size_t k = k0; k < k0 + per_block; ++k) {
                    b.params[k] = rules::fit_zero_point(b.params[k], b.lo[k], b.hi[k]);
                    largest = std::max(largest, b.params[k].scale);
                }
                const float super = rules::super_scale(largest);
                super_scales[(first + k0) / per_block] = super;
                for (std::size_t k = k0; k < k0 + per_block; ++k) {
                    const sub_scale stored{rules::scale_code(b.params[k].scale, super), rules::zero_code(b.params[k].zero_point)};
                    groups[first + k] = stored;
                    // Levels against the parameters dequantization will see, not the unrounded ones.
                    b.params[k] = rules::params(super, stored);
                }
            }
            encode_groups(x, length, count, b.params.data(), codes + first * length);
        } else {
            choose_params(b.lo.data(), b.hi.data(), count, groups + first);
            encode_groups(x, length, count, groups + first, codes + first * length);
        }
        return none;
    }

    /// Every group's range: `given` where the caller passed ranges, else the calibrator's, checked either way
    /// (a user's calibrator may return too few); empty for min_max, whose ranges the
    /// chunks' range step finds (group_ranges) as they go.
    static std::vector<clip_range> chosen_ranges(std::span<const float> values, std::size_t rows, std::size_t cols, std::size_t count,
                                                 const std::span<const clip_range>* given, std::string_view context) {
        if (!given && (std::same_as<C, min_max> || count == 0)) return {};
        std::vector<clip_range> ranges =
                given ? std::vector<clip_range>(given->begin(), given->end())
                      : C::template calibrate<Bits, Granularity, Mode, B>(make_matrix_view(values.data(), rows, cols));
        const std::string source = given ? "" : " from " + std::string(C::name);
        if (ranges.size() != count) {
            throw shape_error(std::string(context) + ": " + std::to_string(ranges.size()) + " ranges" + source + " for the " +
                              std::to_string(count) + " groups of a " + detail::quantizer_impl::shape_text(rows, cols) + " tensor");
        }
        for (std::size_t g = 0; g < count; ++g) {
            const clip_range r = ranges[g];
            if (!std::isfinite(r.lo) || !std::isfinite(r.hi) || r.lo > r.hi) {
                throw value_error(std::string(context) + ": range " + std::to_string(g) + source + " [" + std::to_string(r.lo) + ", " +
                                          std::to_string(r.hi) + "] is not finite with lo <= hi",
                                  g);
            }
        }
        return ranges;
    }

    static tensor_type quantize_checked(matrix_view<const float> x, std::string_view context, unsigned threads,
                                        std::optional<std::span<const clip_range>> given = std::nullopt) {
        const std::size_t rows = x.extent(0);
        const std::size_t cols = x.extent(1);
        Granularity::check_shape(rows, cols, context);
        std::vector<float> buffer;
        const std::span<const float> values = detail::quantizer_impl::gather_row_major(x, buffer);

        const std::size_t length = Granularity::group_length(rows, cols);
        const std::size_t count = Granularity::group_count(rows, cols);
        const bool calibrated = given.has_value() || !std::same_as<C, min_max>;
        // A calibrator reads the whole input before any chunk is encoded, so it gets finite values and a NaN is
        // named by the quantizer's message, as on the min_max path.
        if (calibrated) detail::quantizer_impl::require_finite_matrix(values, cols, context);
        const std::vector<clip_range> ranges = chosen_ranges(values, rows, cols, count, given ? &*given : nullptr, context);
        std::vector<code_type> codes(values.size());
        std::vector<group_type> groups(count);
        std::vector<float> super_scales(has_super_blocks ? count / groups_per_super_block : 0);
        const std::size_t per_chunk = chunk_groups(length);
        const std::size_t chunks = (count + per_chunk - 1) / per_chunk;
        // The first NaN or Inf of the whole input, whichever thread meets it: the error names the smallest index,
        // as a scan from the start would.
        std::atomic<std::size_t> first_bad{none};
        parallel_for(chunks, threads, [&](std::size_t begin, std::size_t end) {
            chunk_buffers b(std::min(per_chunk, count));
            for (std::size_t c = begin; c < end; ++c) {
                const std::size_t first = c * per_chunk;
                const std::size_t bad = quantize_chunk(values.data(), length, first, std::min(per_chunk, count - first), b, codes.data(),
                                                       groups.data(), super_scales.data(), ranges);
                if (bad != none) {
                    std::size_t seen = first_bad.load();
                    while (bad < seen && !first_bad.compare_exchange_weak(seen, bad)) {}
                    return;  // the rest of this range comes later in row-major order
                }
            }
        });
        if (const std::size_t bad = first_bad.load(); bad != none)
            throw detail::quantizer_impl::non_finite_error(values[bad], bad, cols, context);
        return tensor_type(typename tensor_type::unchecked{}, rows, cols, std::move(codes), std::move(groups), std::move(super_scales));
    }

    // ----------------------------------------------------------------------------------------- dequantize

    /// Decodes values [begin, end) of `q` into out[begin, end): partial groups at the ends, whole groups
    /// between them in as few kernel calls as the parameters allow.
    static void decode_values(const tensor_type& q, std::size_t begin, std::size_t end, float* out) {
        const std::size_t length = q.group_length();
        const code_type* codes = q.codes().data();
        constexpr std::size_t batch = 512;  // super-block groups whose parameters are read back at a time
        affine_params read_back[batch];
        std::size_t i = begin;
        while (i < end) {
            const std::size_t g = i / length, within = i % length;
            if (within != 0 || end - i < length) {
                const std::size_t n = std::min(length - within, end - i);
                const affine_params p = q.effective_params(g);
                decode_groups(codes + i, n, 1, &p, out + i);
                i += n;
                continue;
            }
            std::size_t whole = (end - i) / length;
            const affine_params* params = nullptr;
            if constexpr (has_super_blocks) {
                whole = std::min(whole, batch);
                for (std::size_t k = 0; k < whole; ++k) read_back[k] = q.effective_params(g + k);
                params = read_back;
            } else {
                params = q.groups().data() + g;
            }
            decode_groups(codes + i, length, whole, params, out + i);
            i += whole * length;
        }
    }

    static void decode_flat(const tensor_type& q, std::span<float> out, unsigned threads) {
        parallel_for(
                q.size(), threads, [&](std::size_t begin, std::size_t end) { decode_values(q, begin, end, out.data()); },
                detail::quantizer_impl::chunk_values);
    }

    static void decode_into(const tensor_type& q, matrix_view<float> out, unsigned threads) {
        if (out.is_contiguous()) {
            decode_flat(q, out.flat(), threads);
            return;
        }
        std::vector<float> values(q.size());
        decode_flat(q, values, threads);
        detail::quantizer_impl::scatter_row_major(values, out);
    }
};

}  // namespace cogqat

COGQAT_STRICT_FP_END
