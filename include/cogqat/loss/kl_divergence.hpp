#pragma once
// Distillation losses between a teacher's and a student's logits, as free functions. They are what makes
// quantization-aware training data-free: the full-precision model labels the samples, the quantized one
// learns to match it.
//
// These are the backend::Scalar instantiations of loss/kl_loss.hpp's policy types (the double reference of
// loss/reference.hpp), kept for their callers; kl_loss<backend::Simd> and distillation<backend::Simd> run the
// same losses on the SIMD kernels. Gradients are written in float (kl_divergence's and cross_entropy's are at
// most 1/T in magnitude, so they overflow to Inf only for T below 1/FLT_MAX, about 3e-39).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "cogqat/core/error.hpp"
#include "cogqat/core/policy.hpp"
#include "cogqat/loss/kl_loss.hpp"
#include "cogqat/loss/loss_checks.hpp"
#include "cogqat/loss/reference.hpp"

namespace cogqat {

/// KL(softmax(teacher / T) || softmax(student / T)) in nats: the teacher is the reference distribution, so
/// the student is penalised wherever the teacher puts mass it misses. Finite for any finite logits.
/// If `grad_student` is non-empty (it must then have the logits' size) it receives
/// d KL / d student = (softmax(student / T) - softmax(teacher / T)) / T, rounded to float.
/// Throws shape_error for empty or mismatched sizes, invalid_argument_error for a temperature that is not
/// positive and finite, value_error (with the index) for a NaN or Inf logit.
inline double kl_divergence(std::span<const float> teacher_logits, std::span<const float> student_logits, float temperature = 1.0f,
                            std::span<float> grad_student = {}) {
    return detail::loss::mean_kl<backend::Scalar>("kl_divergence", temperature, teacher_logits, student_logits, teacher_logits.size(),
                                                  grad_student, false, {"teacher_logits", "student_logits"});
}

/// -log softmax(logits / T)[target] in nats: the hard-label loss, against the data's (or the teacher's
/// arg-max) token. If `grad` is non-empty (same size as the logits) it receives (softmax(logits / T) -
/// onehot(target)) / T. Throws shape_error for empty logits or a wrong gradient size, invalid_argument_error
/// for a bad temperature or a target outside [0, size), value_error for a NaN or Inf logit.
inline double cross_entropy(std::span<const float> logits, std::int32_t target, float temperature = 1.0f, std::span<float> grad = {}) {
    constexpr const char* function = "cross_entropy";
    detail::loss::check_temperature(function, temperature);
    if (logits.empty()) throw shape_error(std::string(function) + ": no logits");
    detail::loss::check_target(function, target, logits.size());
    detail::loss::check_gradient_size(function, logits.size(), grad.size());
    detail::loss::check_finite(function, "logits", logits);
    return detail::loss::cross_entropy_row(logits, static_cast<std::size_t>(target), 1.0 / static_cast<double>(temperature), grad);
}

/// Hinton-style distillation: kl_weight * T^2 * KL_T(teacher || student) + (1 - kl_weight) * CE(student at
/// T = 1, target), as distillation<backend::Scalar> computes it (loss/kl_loss.hpp). If `grad` is non-empty
/// (same size) it receives the derivative with respect to the student logits:
/// kl_weight * T * (q_T - p_T) + (1 - kl_weight) * (q_1 - onehot(target)).
/// Throws invalid_argument_error for kl_weight outside [0, 1], a bad temperature or target, shape_error and
/// value_error as kl_divergence does. Both inputs are checked whatever the weight.
inline double distillation_loss(std::span<const float> teacher, std::span<const float> student, std::int32_t target,
                                const distillation_loss_config& config, std::span<float> grad = {}) {
    return detail::loss::checked_distillation<backend::Scalar>("distillation_loss", config, teacher, student, target, grad, false);
}

/// Mean over rows of kl_divergence, for a batch stored as consecutive rows of `vocab` logits (one row per
/// token position). `grad` (same size, if non-empty) receives the derivative of the mean, that is each row's
/// gradient divided by the number of rows. Throws shape_error when vocab is 0, the sizes differ, are empty or
/// are not multiples of vocab; value_error indices count from the start of the whole batch.
inline double mean_kl_divergence(std::span<const float> teacher, std::span<const float> student, std::size_t vocab,
                                 float temperature = 1.0f, std::span<float> grad = {}) {
    return detail::loss::mean_kl<backend::Scalar>("mean_kl_divergence", temperature, teacher, student, vocab, grad, false);
}

}  // namespace cogqat
