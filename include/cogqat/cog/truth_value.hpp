#pragma once
// Truth values: a (strength, confidence) pair per atom, as OpenCog's SimpleTruthValue. The TruthValue concept
// says what the AtomSpace needs of one; the two implementations differ only in how the pair is stored: two
// floats, or two N-bit codes on [0, 1] made with the core quantizer's reference encode/decode. The PLN
// arithmetic (count <-> confidence, revision) is written once against the concept and computed in double.

#include <algorithm>
#include <cmath>
#include <concepts>
#include <string>
#include <string_view>
#include <type_traits>

#include "cogqat/core/affine_levels.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/policy.hpp"

namespace cogqat::cog {

/// What the AtomSpace needs of a truth value type: a regular, trivially copyable value built from a
/// strength and a confidence in [0, 1] (throwing invalid_argument_error otherwise) that gives them back as
/// floats, possibly rounded. A default-constructed value is OpenCog's default truth value (1, 0).
template <class T>
concept TruthValue = std::regular<T> && std::is_trivially_copyable_v<T> && std::constructible_from<T, float, float> &&
        requires(const T tv) {
    { T::name } -> std::convertible_to<std::string_view>;
    { tv.strength() } -> std::same_as<float>;
    { tv.confidence() } -> std::same_as<float>;
};

/// OpenCog's evidence-count constant: confidence = n / (n + k) for n observations (SimpleTruthValue::DEFAULT_K).
inline constexpr double default_k = 800.0;

/// Confidence below 1 that count_from_confidence uses in place of larger ones, so that the count stays
/// finite (OpenCog caps at the same value).
inline constexpr double max_confidence_for_count = 0.9999998;

/// Evidence count of a confidence: k c / (1 - c), with c capped at max_confidence_for_count.
[[nodiscard]] inline double count_from_confidence(double confidence, double k = default_k) noexcept {
    const double c = std::min(confidence, max_confidence_for_count);
    return k * c / (1.0 - c);
}

/// Confidence of an evidence count: n / (n + k); 0 for n <= 0.
[[nodiscard]] inline double confidence_from_count(double count, double k = default_k) noexcept {
    if (!(count > 0.0)) return 0.0;
    return count / (count + k);
}

namespace detail {

inline void require_unit_interval(float x, std::string_view what, std::string_view context) {
    if (!(x >= 0.0f && x <= 1.0f)) {  // also refuses NaN
        throw invalid_argument_error(std::string(context) + ": " + std::string(what) + " " + std::to_string(x) +
                                     " is not a number in [0, 1]");
    }
}

}  // namespace detail

/// Strength and confidence as two floats (8 bytes).
class float_truth_value {
public:
    static constexpr std::string_view name = "float";

    /// OpenCog's default truth value: strength 1, confidence 0.
    constexpr float_truth_value() noexcept = default;
    /// Throws invalid_argument_error unless both are in [0, 1].
    float_truth_value(float strength, float confidence) : strength_(strength), confidence_(confidence) {
        detail::require_unit_interval(strength, "strength", "float_truth_value");
        detail::require_unit_interval(confidence, "confidence", "float_truth_value");
    }

    [[nodiscard]] float strength() const noexcept { return strength_; }
    [[nodiscard]] float confidence() const noexcept { return confidence_; }

    friend bool operator==(const float_truth_value&, const float_truth_value&) = default;

private:
    float strength_ = 1.0f;
    float confidence_ = 0.0f;
};

/// Strength and confidence as two unsigned N-bit codes on [0, 1]: value = code / (2^N - 1), encoded by the
/// core quantizer's reference (asymmetric mode, scale 1 / (2^N - 1), zero-point 0), so every value comes
/// back within half a step, 1 / (2 (2^N - 1)), and 0 and 1 come back exactly. With BitWidth<8> the pair
/// takes 2 bytes.
template <BitWidthPolicy Bits>
class quantized_truth_value {
    using traits = level_traits<Bits, Asymmetric>;

public:
    static constexpr std::string_view name = "quantized";
    using code_type = typename Bits::code_type;
    static constexpr int bits = Bits::bits;
    /// Code of 1.0.
    static constexpr code_type max_code = static_cast<code_type>(traits::max_code);
    /// Distance between neighbouring values.
    static constexpr float step = 1.0f / static_cast<float>(traits::max_code);
    /// The fixed parameters every code is encoded and decoded with.
    static constexpr affine_params params{step, 0};

    /// OpenCog's default truth value: strength 1, confidence 0.
    constexpr quantized_truth_value() noexcept = default;
    /// Rounds both to the nearest code; throws invalid_argument_error unless both are in [0, 1].
    quantized_truth_value(float strength, float confidence) {
        detail::require_unit_interval(strength, "strength", "quantized_truth_value");
        detail::require_unit_interval(confidence, "confidence", "quantized_truth_value");
        strength_ = reference::encode<Bits, Asymmetric>(strength, params);
        confidence_ = reference::encode<Bits, Asymmetric>(confidence, params);
    }

    /// A value made of raw codes; codes above max_code throw invalid_argument_error.
    [[nodiscard]] static quantized_truth_value from_codes(code_type strength, code_type confidence) {
        if (strength > max_code || confidence > max_code) {
            throw invalid_argument_error("quantized_truth_value::from_codes: a code is above the largest code " + std::to_string(max_code));
        }
        quantized_truth_value tv;
        tv.strength_ = strength;
        tv.confidence_ = confidence;
        return tv;
    }

    [[nodiscard]] float strength() const noexcept { return reference::decode<Bits, Asymmetric>(strength_, params); }
    [[nodiscard]] float confidence() const noexcept { return reference::decode<Bits, Asymmetric>(confidence_, params); }
    [[nodiscard]] code_type strength_code() const noexcept { return strength_; }
    [[nodiscard]] code_type confidence_code() const noexcept { return confidence_; }

    friend bool operator==(const quantized_truth_value&, const quantized_truth_value&) = default;

private:
    code_type strength_ = max_code;
    code_type confidence_ = 0;
};

/// Evidence count of a truth value (see count_from_confidence).
template <TruthValue TV>
[[nodiscard]] double count_of(const TV& tv, double k = default_k) noexcept {
    return count_from_confidence(tv.confidence(), k);
}

/// OpenCog's "PLN book revision" merge of two truth values about the same atom (PLN book section 5.10.2, as
/// SimpleTruthValue::merge computes it): with counts n1, n2 from the confidences,
///   strength   = (s1 n1 + s2 n2) / (n1 + n2)
///   count      = n1 + n2 - 0.2 min(n1, n2)   (the overlap heuristic: some evidence is assumed shared)
///   confidence = count / (count + k).
/// When both counts are 0 (OpenCog divides 0 by 0 there) the strength is the plain mean.
template <TruthValue TV>
[[nodiscard]] TV revise(const TV& a, const TV& b, double k = default_k) {
    constexpr double overlap = 0.2;
    const double n1 = count_of(a, k);
    const double n2 = count_of(b, k);
    const double total = n1 + n2;
    const double strength =
            total > 0.0 ? (a.strength() * n1 + b.strength() * n2) / total : 0.5 * (static_cast<double>(a.strength()) + b.strength());
    const double count = total - overlap * std::min(n1, n2);
    // Clamped because the weighted mean can leave [0, 1] by an ulp.
    return TV(static_cast<float>(std::clamp(strength, 0.0, 1.0)),
              static_cast<float>(std::clamp(confidence_from_count(count, k), 0.0, 1.0)));
}

}  // namespace cogqat::cog
