#pragma once
// Distillation losses between a teacher's and a student's logits. They are what makes quantization-aware
// training data-free: the full-precision model labels the samples, the quantized one learns to match it.
//
// Every loss is computed in double from float logits, with the row maximum subtracted before exp, so any
// finite logits and any positive finite temperature give a finite loss (no overflow in exp, no inf - inf).
// Gradients are written in float, the precision a training loop keeps (kl_divergence's and cross_entropy's
// are at most 1/T in magnitude, so they overflow to Inf only for T below 1/FLT_MAX, about 3e-39).
// These loops are the scalar reference: contiguous spans and no branches inside the loops, so that the
// compiler may vectorize them and a later SIMD backend has one plain definition to agree with.

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "cogqat/core/error.hpp"

namespace cogqat {

namespace detail::loss {

/// Shortest text that reads back as `x` (std::to_string would print 1e-30 as 0.000000).
inline std::string format_float(float x) {
    std::array<char, 32> buffer{};
    const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), x);
    return std::string(buffer.data(), result.ptr);
}

/// Exponent bits all ones: Inf or NaN. Tested on the bits rather than with std::isfinite so that the check
/// survives -ffinite-math-only (part of -ffast-math), under which the compiler may assume isfinite is true.
inline bool non_finite_bits(float x) noexcept { return (std::bit_cast<std::uint32_t>(x) & 0x7f800000u) == 0x7f800000u; }

inline void check_temperature(const char* function, float temperature) {
    if (non_finite_bits(temperature) || temperature <= 0.0f) {
        throw invalid_argument_error(std::string(function) + ": temperature must be positive and finite, got " + format_float(temperature));
    }
}

inline void check_gradient_size(const char* function, std::size_t logits, std::size_t gradient) {
    if (gradient != 0 && gradient != logits) {
        throw shape_error(std::string(function) + ": the gradient buffer has " + std::to_string(gradient) + " values for " +
                          std::to_string(logits) + " logits");
    }
}

/// Throws value_error at the first NaN or Inf. The scan is a branch-free OR, so the common all-finite case
/// costs one vectorizable pass; only a bad input pays for the second, searching pass.
inline void check_finite(const char* function, const char* name, std::span<const float> x) {
    std::uint32_t non_finite = 0;
    for (const float v : x) non_finite |= static_cast<std::uint32_t>(non_finite_bits(v));
    if (non_finite == 0) return;
    for (std::size_t i = 0; i < x.size(); ++i) {
        if (non_finite_bits(x[i])) {
            const std::uint32_t bits = std::bit_cast<std::uint32_t>(x[i]);
            const char* what = (bits & 0x007fffffu) != 0 ? "NaN" : (bits >> 31) != 0 ? "-Inf" : "+Inf";
            throw value_error(std::string(function) + ": " + name + "[" + std::to_string(i) + "] is " + what + "; logits must be finite",
                              i);
        }
    }
}

/// Largest element of a non-empty span of finite values. max(x / T) is max(x) / T for T > 0, so the shift
/// is found once in float and applied in double.
inline float max_of(std::span<const float> x) noexcept {
    float m = x[0];
    for (const float v : x) m = std::max(m, v);
    return m;
}

/// Scaled, shifted logit (x - max) / T in double: at most 0, exactly 0 at the maximum, so exp of it lies in
/// [0, 1] and the sum of the exps in [1, n]. The difference of two floats is exact or nearly so in double, and
/// with |x| <= FLT_MAX and T >= the smallest float the quotient stays below 1e84, far inside double's range.
inline double shifted(float x, double max, double inv_temperature) noexcept { return (static_cast<double>(x) - max) * inv_temperature; }

/// Sums over one row of the pass KL(softmax(t/T) || softmax(s/T)) needs, with a = shifted teacher,
/// b = shifted student: Σ e^a, Σ e^b and Σ e^a (a - b). Then, with p = e^a / Σe^a and q = e^b / Σe^b,
/// KL = Σ p (log p - log q) = Σ e^a (a - b) / Σ e^a - log Σ e^a + log Σ e^b, which needs no stored
/// probabilities and is exactly 0 for identical rows (a = b term by term).
struct kl_sums {
    double teacher_sum = 0.0;
    double student_sum = 0.0;
    double weighted_gap = 0.0;
};

/// One row's KL at 1 / inv_temperature; when `grad` is non-empty it receives grad_scale * (q - p), i.e. the
/// derivative when grad_scale = weight / T. Inputs are already checked.
inline double kl_row(std::span<const float> teacher, std::span<const float> student, double inv_temperature, std::span<float> grad,
                     double grad_scale) noexcept {
    const double teacher_max = max_of(teacher);
    const double student_max = max_of(student);
    kl_sums sums;
    for (std::size_t i = 0; i < teacher.size(); ++i) {
        const double a = shifted(teacher[i], teacher_max, inv_temperature);
        const double b = shifted(student[i], student_max, inv_temperature);
        const double ea = std::exp(a);
        sums.teacher_sum += ea;
        sums.student_sum += std::exp(b);
        sums.weighted_gap += ea * (a - b);  // ea in [0, 1] and |a - b| < 1e84: finite, never inf * 0
    }
    if (!grad.empty()) {
        const double teacher_scale = grad_scale / sums.teacher_sum;
        const double student_scale = grad_scale / sums.student_sum;
        for (std::size_t i = 0; i < teacher.size(); ++i) {
            const double ea = std::exp(shifted(teacher[i], teacher_max, inv_temperature));
            const double eb = std::exp(shifted(student[i], student_max, inv_temperature));
            grad[i] = static_cast<float>(eb * student_scale - ea * teacher_scale);
        }
    }
    const double kl = sums.weighted_gap / sums.teacher_sum - std::log(sums.teacher_sum) + std::log(sums.student_sum);
    // KL is non-negative; rounding can leave a few ulps below zero when the rows agree to rounding.
    return std::max(kl, 0.0);
}

}  // namespace detail::loss

/// KL(softmax(teacher / T) || softmax(student / T)) in nats: the teacher is the reference distribution, so
/// the student is penalised wherever the teacher puts mass it misses. Finite for any finite logits.
/// If `grad_student` is non-empty (it must then have the logits' size) it receives
/// d KL / d student = (softmax(student / T) - softmax(teacher / T)) / T, rounded to float.
/// Throws shape_error for empty or mismatched sizes, invalid_argument_error for a temperature that is not
/// positive and finite, value_error (with the index) for a NaN or Inf logit.
inline double kl_divergence(std::span<const float> teacher_logits, std::span<const float> student_logits, float temperature = 1.0f,
                            std::span<float> grad_student = {}) {
    constexpr const char* function = "kl_divergence";
    detail::loss::check_temperature(function, temperature);
    if (teacher_logits.empty() || teacher_logits.size() != student_logits.size()) {
        throw shape_error(std::string(function) + ": " + std::to_string(teacher_logits.size()) + " teacher logits and " +
                          std::to_string(student_logits.size()) + " student logits; they must be the same, non-zero number");
    }
    detail::loss::check_gradient_size(function, student_logits.size(), grad_student.size());
    detail::loss::check_finite(function, "teacher_logits", teacher_logits);
    detail::loss::check_finite(function, "student_logits", student_logits);
    const double inv_temperature = 1.0 / static_cast<double>(temperature);
    return detail::loss::kl_row(teacher_logits, student_logits, inv_temperature, grad_student, inv_temperature);
}

/// -log softmax(logits / T)[target] in nats: the hard-label loss, against the data's (or the teacher's
/// arg-max) token. If `grad` is non-empty (same size as the logits) it receives (softmax(logits / T) -
/// onehot(target)) / T. Throws shape_error for empty logits or a wrong gradient size, invalid_argument_error
/// for a bad temperature or a target outside [0, size), value_error for a NaN or Inf logit.
inline double cross_entropy(std::span<const float> logits, std::int32_t target, float temperature = 1.0f, std::span<float> grad = {}) {
    constexpr const char* function = "cross_entropy";
    detail::loss::check_temperature(function, temperature);
    if (logits.empty()) throw shape_error(std::string(function) + ": no logits");
    if (target < 0 || static_cast<std::size_t>(target) >= logits.size()) {
        throw invalid_argument_error(std::string(function) + ": target " + std::to_string(target) + " is out of range for " +
                                     std::to_string(logits.size()) + " logits");
    }
    detail::loss::check_gradient_size(function, logits.size(), grad.size());
    detail::loss::check_finite(function, "logits", logits);

    const double inv_temperature = 1.0 / static_cast<double>(temperature);
    const double max = detail::loss::max_of(logits);
    double sum = 0.0;
    for (const float x : logits) sum += std::exp(detail::loss::shifted(x, max, inv_temperature));
    const auto t = static_cast<std::size_t>(target);
    const double target_shifted = detail::loss::shifted(logits[t], max, inv_temperature);
    if (!grad.empty()) {
        const double scale = inv_temperature / sum;
        for (std::size_t i = 0; i < logits.size(); ++i) {
            grad[i] = static_cast<float>(std::exp(detail::loss::shifted(logits[i], max, inv_temperature)) * scale);
        }
        // The one-hot term outside the loop, so the loop has no branch; recomputed in double, not from the
        // rounded float, so p - 1 is rounded once.
        grad[t] = static_cast<float>((std::exp(target_shifted) / sum - 1.0) * inv_temperature);
    }
    return std::log(sum) - target_shifted;  // sum >= 1 and target_shifted <= 0: never negative
}

/// Weights of distillation_loss.
struct distillation_loss_config {
    float kl_weight = 0.5f;    ///< share of the soft (teacher) term, in [0, 1]; the hard-label term gets 1 - this
    float temperature = 3.0f;  ///< softening of both distributions in the KL term; the hard term uses T = 1
};

/// Hinton-style distillation: kl_weight * T^2 * KL_T(teacher || student) + (1 - kl_weight) * CE(student at
/// T = 1, target). The soft term's gradient scales as 1 / T^2 (1/T from the softened probabilities, 1/T
/// from the chain rule), so T^2 keeps its magnitude comparable to the hard term's across temperatures.
/// If `grad` is non-empty (same size) it receives the derivative with respect to the student logits:
/// kl_weight * T * (q_T - p_T) + (1 - kl_weight) * (q_1 - onehot(target)).
/// Throws invalid_argument_error for kl_weight outside [0, 1], a bad temperature or target, shape_error and
/// value_error as kl_divergence does. Both inputs are checked whatever the weight.
inline double distillation_loss(std::span<const float> teacher, std::span<const float> student, std::int32_t target,
                                const distillation_loss_config& config, std::span<float> grad = {}) {
    constexpr const char* function = "distillation_loss";
    if (detail::loss::non_finite_bits(config.kl_weight) || config.kl_weight < 0.0f || config.kl_weight > 1.0f) {
        throw invalid_argument_error(std::string(function) + ": kl_weight must be in [0, 1], got " +
                                     detail::loss::format_float(config.kl_weight));
    }
    detail::loss::check_temperature(function, config.temperature);
    if (teacher.empty() || teacher.size() != student.size()) {
        throw shape_error(std::string(function) + ": " + std::to_string(teacher.size()) + " teacher logits and " +
                          std::to_string(student.size()) + " student logits; they must be the same, non-zero number");
    }
    if (target < 0 || static_cast<std::size_t>(target) >= student.size()) {
        throw invalid_argument_error(std::string(function) + ": target " + std::to_string(target) + " is out of range for " +
                                     std::to_string(student.size()) + " logits");
    }
    detail::loss::check_gradient_size(function, student.size(), grad.size());
    detail::loss::check_finite(function, "teacher", teacher);
    detail::loss::check_finite(function, "student", student);

    // One pass for both terms: a, b are the teacher and student at T, c the student at T = 1.
    const double temperature = config.temperature;
    const double inv_temperature = 1.0 / temperature;
    const double kl_weight = config.kl_weight;
    const double teacher_max = detail::loss::max_of(teacher);
    const double student_max = detail::loss::max_of(student);
    detail::loss::kl_sums sums;
    double hard_sum = 0.0;
    for (std::size_t i = 0; i < student.size(); ++i) {
        const double a = detail::loss::shifted(teacher[i], teacher_max, inv_temperature);
        const double b = detail::loss::shifted(student[i], student_max, inv_temperature);
        const double ea = std::exp(a);
        sums.teacher_sum += ea;
        sums.student_sum += std::exp(b);
        sums.weighted_gap += ea * (a - b);
        hard_sum += std::exp(detail::loss::shifted(student[i], student_max, 1.0));
    }
    const auto t = static_cast<std::size_t>(target);
    const double target_shifted = detail::loss::shifted(student[t], student_max, 1.0);
    if (!grad.empty()) {
        const double soft_weight = kl_weight * temperature;  // weight * T^2 * (1 / T)
        const double hard_weight = 1.0 - kl_weight;
        const double teacher_scale = soft_weight / sums.teacher_sum;
        const double student_scale = soft_weight / sums.student_sum;
        const double hard_scale = hard_weight / hard_sum;
        for (std::size_t i = 0; i < student.size(); ++i) {
            const double ea = std::exp(detail::loss::shifted(teacher[i], teacher_max, inv_temperature));
            const double eb = std::exp(detail::loss::shifted(student[i], student_max, inv_temperature));
            const double ec = std::exp(detail::loss::shifted(student[i], student_max, 1.0));
            grad[i] = static_cast<float>(eb * student_scale - ea * teacher_scale + ec * hard_scale);
        }
        // The one-hot term outside the loop, recomputed so the element is rounded to float once.
        const double ea = std::exp(detail::loss::shifted(teacher[t], teacher_max, inv_temperature));
        const double eb = std::exp(detail::loss::shifted(student[t], student_max, inv_temperature));
        grad[t] = static_cast<float>(eb * student_scale - ea * teacher_scale + hard_weight * (std::exp(target_shifted) / hard_sum - 1.0));
    }
    const double kl = std::max(sums.weighted_gap / sums.teacher_sum - std::log(sums.teacher_sum) + std::log(sums.student_sum), 0.0);
    const double cross_entropy = std::log(hard_sum) - target_shifted;
    return kl_weight * temperature * temperature * kl + (1.0 - kl_weight) * cross_entropy;
}

/// Mean over rows of kl_divergence, for a batch stored as consecutive rows of `vocab` logits (one row per
/// token position). `grad` (same size, if non-empty) receives the derivative of the mean, that is each row's
/// gradient divided by the number of rows. Throws shape_error when vocab is 0, the sizes differ, are empty or
/// are not multiples of vocab; value_error indices count from the start of the whole batch.
inline double mean_kl_divergence(std::span<const float> teacher, std::span<const float> student, std::size_t vocab,
                                 float temperature = 1.0f, std::span<float> grad = {}) {
    constexpr const char* function = "mean_kl_divergence";
    detail::loss::check_temperature(function, temperature);
    if (vocab == 0) throw shape_error(std::string(function) + ": vocab must be positive");
    if (teacher.empty() || teacher.size() != student.size()) {
        throw shape_error(std::string(function) + ": " + std::to_string(teacher.size()) + " teacher logits and " +
                          std::to_string(student.size()) + " student logits; they must be the same, non-zero number");
    }
    if (teacher.size() % vocab != 0) {
        throw shape_error(std::string(function) + ": " + std::to_string(teacher.size()) + " logits are not a multiple of vocab " +
                          std::to_string(vocab));
    }
    detail::loss::check_gradient_size(function, student.size(), grad.size());
    detail::loss::check_finite(function, "teacher", teacher);
    detail::loss::check_finite(function, "student", student);

    const std::size_t rows = teacher.size() / vocab;
    const double inv_temperature = 1.0 / static_cast<double>(temperature);
    const double grad_scale = inv_temperature / static_cast<double>(rows);
    double total = 0.0;
    for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t offset = r * vocab;
        total += detail::loss::kl_row(teacher.subspan(offset, vocab), student.subspan(offset, vocab), inv_temperature,
                                      grad.empty() ? grad : grad.subspan(offset, vocab), grad_scale);
    }
    return total / static_cast<double>(rows);
}

}  // namespace cogqat
