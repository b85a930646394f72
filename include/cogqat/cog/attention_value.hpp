#pragma once
// Attention values: short-term importance (STI), long-term importance (LTI) and very-long-term importance
// (VLTI, a count of the subsystems that need the atom kept; 0 means "disposable"), as in OpenCog's ECAN.
// The AttentionValue concept says what an AttentionBank needs of one; implementations differ in storage:
//
//   float_attention_value                       STI, LTI as float, VLTI as uint16        12 bytes
//   quantized_attention_value<BitWidth<16>>     STI, LTI as 16-bit codes, VLTI uint16     6 bytes
//   quantized_attention_value<BitWidth<8>>      STI, LTI as 8-bit codes, VLTI uint8       3 bytes
//
// A quantized STI or LTI is a symmetric N-bit level, value = step * level with |level| <= 2^(N-1) - 1,
// encoded and decoded by the core quantizer's reference functions; the steps are fixed per bank (see
// attention_steps) so that every atom shares one scale, like one per-tensor scale. With the default step 1
// the 16-bit value covers [-32767, 32767], exactly OpenCog's historical short-integer STI range
// (AttentionValue::MAXSTI = SHRT_MAX), and the 8-bit value covers [-127, 127]. Values beyond the range
// saturate; the bank books whatever rounding or saturation does against its funds, so conservation holds.

#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <string_view>
#include <type_traits>

#include "cogqat/core/affine_levels.hpp"
#include "cogqat/core/policy.hpp"

namespace cogqat::cog {

/// Value of one STI or LTI step for a bank's quantized values (ignored by float values).
struct attention_steps {
    float sti = 1.0f;
    float lti = 1.0f;
};

/// What an AttentionBank needs of an attention value: a regular, trivially copyable value, 0/0/0 when
/// default-constructed, made from (STI, LTI, VLTI) with the bank's steps (rounding and saturating as it
/// must; VLTI saturates at max_vlti) and read back the same way. `max_level` is the largest |STI| or |LTI|
/// in steps (infinity for unquantized values).
template <class A>
concept AttentionValue = std::regular<A> && std::is_trivially_copyable_v<A> &&
        requires(const A av, double x, unsigned vlti, attention_steps steps) {
    { A::name } -> std::convertible_to<std::string_view>;
    { A::max_vlti } -> std::convertible_to<unsigned>;
    { A::max_level } -> std::convertible_to<double>;
    { A::make(x, x, vlti, steps) } -> std::same_as<A>;
    { av.sti(steps) } -> std::same_as<double>;
    { av.lti(steps) } -> std::same_as<double>;
    { av.vlti() } -> std::same_as<unsigned>;
};

/// STI and LTI as floats (saturating at float's largest magnitude), VLTI as a 16-bit count.
class float_attention_value {
public:
    static constexpr std::string_view name = "float";
    static constexpr unsigned max_vlti = 0xFFFF;
    static constexpr double max_level = std::numeric_limits<double>::infinity();

    [[nodiscard]] static float_attention_value make(double sti, double lti, unsigned vlti, attention_steps /*steps*/) noexcept {
        float_attention_value av;
        av.sti_ = to_float(sti);
        av.lti_ = to_float(lti);
        av.vlti_ = static_cast<std::uint16_t>(vlti > max_vlti ? max_vlti : vlti);
        return av;
    }
    [[nodiscard]] double sti(attention_steps /*steps*/) const noexcept { return sti_; }
    [[nodiscard]] double lti(attention_steps /*steps*/) const noexcept { return lti_; }
    [[nodiscard]] unsigned vlti() const noexcept { return vlti_; }

    friend bool operator==(const float_attention_value&, const float_attention_value&) = default;

private:
    // Saturates at float's largest value: converting a double beyond it to float is undefined behaviour.
    static float to_float(double x) noexcept {
        constexpr double top = std::numeric_limits<float>::max();
        return static_cast<float>(x < -top ? -top : (x > top ? top : x));
    }

    float sti_ = 0.0f;
    float lti_ = 0.0f;
    std::uint16_t vlti_ = 0;
};

/// STI and LTI as symmetric N-bit codes (value = step * level, |level| <= 2^(N-1) - 1, rounded to nearest
/// with ties to even), VLTI as an unsigned count of the same width as the codes.
template <BitWidthPolicy Bits>
class quantized_attention_value {
    using traits = level_traits<Bits, Symmetric>;
    using code_type = typename Bits::code_type;
    // Code of level 0: codes are level - min_level.
    static constexpr code_type zero_code = static_cast<code_type>(-traits::min_level);

public:
    static constexpr std::string_view name = "quantized";
    static constexpr int bits = Bits::bits;
    static constexpr unsigned max_vlti = std::numeric_limits<code_type>::max();
    static constexpr double max_level = traits::max_level;

    [[nodiscard]] static quantized_attention_value make(double sti, double lti, unsigned vlti, attention_steps steps) noexcept {
        quantized_attention_value av;
        av.sti_ = encode(sti, steps.sti);
        av.lti_ = encode(lti, steps.lti);
        av.vlti_ = static_cast<code_type>(vlti > max_vlti ? max_vlti : vlti);
        return av;
    }
    [[nodiscard]] double sti(attention_steps steps) const noexcept { return reference::decode<Bits, Symmetric>(sti_, {steps.sti, 0}); }
    [[nodiscard]] double lti(attention_steps steps) const noexcept { return reference::decode<Bits, Symmetric>(lti_, {steps.lti, 0}); }
    [[nodiscard]] unsigned vlti() const noexcept { return vlti_; }
    /// The raw codes (level - min_level).
    [[nodiscard]] code_type sti_code() const noexcept { return sti_; }
    [[nodiscard]] code_type lti_code() const noexcept { return lti_; }

    friend bool operator==(const quantized_attention_value&, const quantized_attention_value&) = default;

private:
    static code_type encode(double x, float step) noexcept {
        // Clamped in double first so the float conversion cannot overflow; NaN (never passed by the bank)
        // would give an undefined level, so it is read as 0.
        if (std::isnan(x)) return zero_code;
        const double limit = static_cast<double>(step) * (max_level + 1.0);
        const double clamped = x < -limit ? -limit : (x > limit ? limit : x);
        return reference::encode<Bits, Symmetric>(static_cast<float>(clamped), {step, 0});
    }

    code_type sti_ = zero_code;
    code_type lti_ = zero_code;
    code_type vlti_ = 0;
};

}  // namespace cogqat::cog
