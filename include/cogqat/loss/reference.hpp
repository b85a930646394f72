#pragma once
// The scalar reference of every distillation loss: one row at a time, in double from float logits, with the
// row maximum subtracted before exp, so any finite logits and any positive finite temperature give a finite
// loss (no overflow in exp, no inf - inf). Gradients are written in float, the precision a training loop
// keeps. backend::Scalar is exactly these loops; backend::Simd is checked against them (tests/test_loss.cpp).
// Contiguous spans and no branches inside the loops, so that the compiler may vectorize them.
// Inputs are checked by the caller (loss/loss_checks.hpp).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

namespace cogqat::detail::loss {

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

/// KL from its sums, a = shifted teacher, b = shifted student: with p = e^a / Σe^a and q = e^b / Σe^b,
/// KL = Σ p (log p - log q) = Σ e^a (a - b) / Σ e^a - log Σ e^a + log Σ e^b, which needs no stored
/// probabilities and is exactly 0 for identical rows (a = b term by term). KL is non-negative; rounding can
/// leave a few ulps below zero when the rows agree to rounding, hence the clamp.
inline double kl_from_sums(double teacher_sum, double student_sum, double weighted_gap) noexcept {
    return std::max(weighted_gap / teacher_sum - std::log(teacher_sum) + std::log(student_sum), 0.0);
}

/// One row's KL(softmax(teacher / T) || softmax(student / T)); when `grad` is non-empty it receives
/// grad_scale * (q - p), i.e. the derivative when grad_scale = weight / T.
inline double kl_row(std::span<const float> teacher, std::span<const float> student, double inv_temperature, std::span<float> grad,
                     double grad_scale) noexcept {
    const double teacher_max = max_of(teacher);
    const double student_max = max_of(student);
    double teacher_sum = 0.0, student_sum = 0.0, weighted_gap = 0.0;
    for (std::size_t i = 0; i < teacher.size(); ++i) {
        const double a = shifted(teacher[i], teacher_max, inv_temperature);
        const double b = shifted(student[i], student_max, inv_temperature);
        const double ea = std::exp(a);
        teacher_sum += ea;
        student_sum += std::exp(b);
        weighted_gap += ea * (a - b);  // ea in [0, 1] and |a - b| < 1e84: finite, never inf * 0
    }
    if (!grad.empty()) {
        const double teacher_scale = grad_scale / teacher_sum;
        const double student_scale = grad_scale / student_sum;
        for (std::size_t i = 0; i < teacher.size(); ++i) {
            const double ea = std::exp(shifted(teacher[i], teacher_max, inv_temperature));
            const double eb = std::exp(shifted(student[i], student_max, inv_temperature));
            grad[i] = static_cast<float>(eb * student_scale - ea * teacher_scale);
        }
    }
    return kl_from_sums(teacher_sum, student_sum, weighted_gap);
}

/// The teacher's side of a top-k row: Σ_j e^a_j and Σ_j e^a_j (a_j - b_{idx_j}), k terms in double.
struct top_k_sums {
    double teacher_sum = 0.0;
    double weighted_gap = 0.0;
};
inline top_k_sums top_k_teacher_sums(std::span<const std::int32_t> indices, std::span<const float> teacher, std::span<const float> student,
                                     double teacher_max, double student_max, double inv_temperature) noexcept {
    top_k_sums sums;
    for (std::size_t j = 0; j < indices.size(); ++j) {
        const double a = shifted(teacher[j], teacher_max, inv_temperature);
        const double b = shifted(student[static_cast<std::size_t>(indices[j])], student_max, inv_temperature);
        const double ea = std::exp(a);
        sums.teacher_sum += ea;
        sums.weighted_gap += ea * (a - b);
    }
    return sums;
}

/// The k elements of a top-k gradient where the teacher has mass: grad[idx_j] = e^b student_scale -
/// e^a teacher_scale, computed in double and rounded once (the other elements hold e^b student_scale).
inline void top_k_teacher_gradient(std::span<const std::int32_t> indices, std::span<const float> teacher, std::span<const float> student,
                                   double teacher_max, double student_max, double inv_temperature, double teacher_scale,
                                   double student_scale, std::span<float> grad) noexcept {
    for (std::size_t j = 0; j < indices.size(); ++j) {
        const auto i = static_cast<std::size_t>(indices[j]);
        const double ea = std::exp(shifted(teacher[j], teacher_max, inv_temperature));
        const double eb = std::exp(shifted(student[i], student_max, inv_temperature));
        grad[i] = static_cast<float>(eb * student_scale - ea * teacher_scale);
    }
}

/// One row's KL from a top-k teacher (loss/top_k_teacher.hpp): p is the softmax of the k teacher logits / T
/// (the teacher restricted to its top k and renormalized), q the student's softmax over the whole vocabulary,
/// KL = Σ_j p_j (log p_j - log q_{idx_j}). `grad` (the vocabulary's size) receives grad_scale * (q - p), p
/// being 0 outside the k indices. Indices are distinct and in range (checked by the caller).
inline double top_k_kl_row(std::span<const std::int32_t> indices, std::span<const float> teacher, std::span<const float> student,
                           double inv_temperature, std::span<float> grad, double grad_scale) noexcept {
    const double teacher_max = max_of(teacher);
    const double student_max = max_of(student);
    const top_k_sums sums = top_k_teacher_sums(indices, teacher, student, teacher_max, student_max, inv_temperature);
    const double teacher_sum = sums.teacher_sum, weighted_gap = sums.weighted_gap;
    double student_sum = 0.0;
    for (const float s : student) student_sum += std::exp(shifted(s, student_max, inv_temperature));
    if (!grad.empty()) {
        const double student_scale = grad_scale / student_sum;
        for (std::size_t i = 0; i < student.size(); ++i) {
            grad[i] = static_cast<float>(std::exp(shifted(student[i], student_max, inv_temperature)) * student_scale);
        }
        top_k_teacher_gradient(indices, teacher, student, teacher_max, student_max, inv_temperature, grad_scale / teacher_sum,
                               student_scale, grad);
    }
    return kl_from_sums(teacher_sum, student_sum, weighted_gap);
}

/// One row's -log softmax(logits / T)[target]; `grad`, if non-empty, receives (softmax(logits / T) -
/// onehot(target)) / T.
inline double cross_entropy_row(std::span<const float> logits, std::size_t target, double inv_temperature, std::span<float> grad) noexcept {
    const double max = max_of(logits);
    double sum = 0.0;
    for (const float x : logits) sum += std::exp(shifted(x, max, inv_temperature));
    const double target_shifted = shifted(logits[target], max, inv_temperature);
    if (!grad.empty()) {
        const double scale = inv_temperature / sum;
        for (std::size_t i = 0; i < logits.size(); ++i)
            grad[i] = static_cast<float>(std::exp(shifted(logits[i], max, inv_temperature)) * scale);
        // The one-hot term outside the loop, so the loop has no branch; recomputed in double, not from the
        // rounded float, so p - 1 is rounded once.
        grad[target] = static_cast<float>((std::exp(target_shifted) / sum - 1.0) * inv_temperature);
    }
    return std::log(sum) - target_shifted;  // sum >= 1 and target_shifted <= 0: never negative
}

/// The weights of one distillation row: kl_weight * T^2 * KL_T + (1 - kl_weight) * CE_1.
struct distillation_weights {
    double temperature = 1.0;
    double kl_weight = 0.5;
};

/// The hard-label element of a distillation gradient, recomputed in double so it is rounded once:
/// e^b student_scale - e^a teacher_scale + hard_weight (e^c / hard_sum - 1).
inline float distillation_target_gradient(float teacher, float student, double teacher_max, double student_max, double inv_temperature,
                                          double teacher_scale, double student_scale, double hard_weight, double hard_sum) noexcept {
    const double ea = std::exp(shifted(teacher, teacher_max, inv_temperature));
    const double eb = std::exp(shifted(student, student_max, inv_temperature));
    const double ec = std::exp(shifted(student, student_max, 1.0));
    return static_cast<float>(eb * student_scale - ea * teacher_scale + hard_weight * (ec / hard_sum - 1.0));
}

/// One row of Hinton-style distillation, both terms in one pass: a, b are the teacher and student at T, c the
/// student at T = 1. `grad`, if non-empty, receives kl_weight * T * (q_T - p_T) + (1 - kl_weight) * (q_1 -
/// onehot(target)).
inline double distillation_row(std::span<const float> teacher, std::span<const float> student, std::size_t target,
                               const distillation_weights& w, std::span<float> grad) noexcept {
    const double inv_temperature = 1.0 / w.temperature;
    const double teacher_max = max_of(teacher);
    const double student_max = max_of(student);
    double teacher_sum = 0.0, student_sum = 0.0, weighted_gap = 0.0, hard_sum = 0.0;
    for (std::size_t i = 0; i < student.size(); ++i) {
        const double a = shifted(teacher[i], teacher_max, inv_temperature);
        const double b = shifted(student[i], student_max, inv_temperature);
        const double ea = std::exp(a);
        teacher_sum += ea;
        student_sum += std::exp(b);
        weighted_gap += ea * (a - b);
        hard_sum += std::exp(shifted(student[i], student_max, 1.0));
    }
    const double target_shifted = shifted(student[target], student_max, 1.0);
    if (!grad.empty()) {
        const double soft_weight = w.kl_weight * w.temperature;  // weight * T^2 * (1 / T)
        const double hard_weight = 1.0 - w.kl_weight;
        const double teacher_scale = soft_weight / teacher_sum;
        const double student_scale = soft_weight / student_sum;
        const double hard_scale = hard_weight / hard_sum;
        for (std::size_t i = 0; i < student.size(); ++i) {
            const double ea = std::exp(shifted(teacher[i], teacher_max, inv_temperature));
            const double eb = std::exp(shifted(student[i], student_max, inv_temperature));
            const double ec = std::exp(shifted(student[i], student_max, 1.0));
            grad[i] = static_cast<float>(eb * student_scale - ea * teacher_scale + ec * hard_scale);
        }
        grad[target] = distillation_target_gradient(teacher[target], student[target], teacher_max, student_max, inv_temperature,
                                                    teacher_scale, student_scale, hard_weight, hard_sum);
    }
    const double kl = kl_from_sums(teacher_sum, student_sum, weighted_gap);
    const double cross_entropy = std::log(hard_sum) - target_shifted;
    return w.kl_weight * w.temperature * w.temperature * kl + (1.0 - w.kl_weight) * cross_entropy;
}

}  // namespace cogqat::detail::loss
