#pragma once
// The distillation losses as policy types on a Backend (core/policy.hpp): kl_loss<B> (KL divergence, dense
// or top-k teacher, one row or the mean of rows) and distillation<B> (the KL plus hard-label mix).
//
// backend::Scalar is the double reference (loss/reference.hpp), the numbers the free functions of
// loss/kl_divergence.hpp have always given. backend::Simd runs the active instruction set's loss kernels
// (dispatch::active().loss, simd/isa/loss_kernels.hpp): float lanes, xsimd's exp, blocked sums added up in
// double. Its results agree with Scalar within the bound tests/test_loss.cpp checks on every linked
// instruction set: |ΔKL| <= 1e-5 KL + 1e-6 (1 + R / T), R the largest logit range of the two rows, for the loss, and per gradient
// element |Δg| <= (1e-5 (p + q) + 1e-9) |scale| (p, q the two probabilities of the element, scale the
// gradient's weight / T). Simd runs the reference for a row where there is no kernel, or where the row's
// logit range over T is so wide (above 1e30) that float lanes could overflow; results are deterministic
// (the same inputs and instruction set give the same bits).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>

#include "cogqat/core/policy.hpp"
#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/loss/loss_checks.hpp"
#include "cogqat/loss/reference.hpp"
#include "cogqat/loss/top_k_teacher.hpp"

namespace cogqat {

/// Settings of kl_loss.
struct kl_options {
    float temperature = 1.0f;  ///< both distributions are softmax(logits / temperature); positive and finite
};

/// Weights of distillation (and of distillation_loss).
struct distillation_loss_config {
    float kl_weight = 0.5f;    ///< share of the soft (teacher) term, in [0, 1]; the hard-label term gets 1 - this
    float temperature = 3.0f;  ///< softening of both distributions in the KL term; the hard term uses T = 1
};

namespace detail::loss {

/// Whether float lanes hold every shifted argument (x - max) * scale of a row with this range, and every
/// blocked sum of them, without overflow: far inside FLT_MAX, with room for the 16-term blocks.
inline bool float_safe(float lo, float hi, double scale) noexcept {
    return scale < 1e30 && (static_cast<double>(hi) - static_cast<double>(lo)) * scale < 1e30;
}

/// A backend's row passes; the checked entry points below call them.
template <class B>
struct rows;

template <>
struct rows<backend::Scalar> {
    static double kl(std::span<const float> teacher, std::span<const float> student, double inv_temperature, std::span<float> grad,
                     double grad_scale) noexcept {
        return kl_row(teacher, student, inv_temperature, grad, grad_scale);
    }
    static double top_k_kl(std::span<const std::int32_t> indices, std::span<const float> teacher, std::span<const float> student,
                           double inv_temperature, std::span<float> grad, double grad_scale) noexcept {
        return top_k_kl_row(indices, teacher, student, inv_temperature, grad, grad_scale);
    }
    static double distillation(std::span<const float> teacher, std::span<const float> student, std::size_t target,
                               const distillation_weights& w, std::span<float> grad) noexcept {
        return distillation_row(teacher, student, target, w, grad);
    }
};

template <>
struct rows<backend::Simd> {
    static double kl(std::span<const float> teacher, std::span<const float> student, double inv_temperature, std::span<float> grad,
                     double grad_scale) {
        const dispatch::loss_kernels& k = dispatch::active().loss;
        if (!k.range || !k.kl_sums || !k.kl_gradient) return kl_row(teacher, student, inv_temperature, grad, grad_scale);
        const std::size_t n = teacher.size();
        float teacher_lo = 0.0f, teacher_hi = 0.0f, student_lo = 0.0f, student_hi = 0.0f;
        k.range(teacher.data(), n, &teacher_lo, &teacher_hi);
        k.range(student.data(), n, &student_lo, &student_hi);
        if (!float_safe(teacher_lo, teacher_hi, inv_temperature) || !float_safe(student_lo, student_hi, inv_temperature)) {
            return kl_row(teacher, student, inv_temperature, grad, grad_scale);
        }
        const auto inv_t = static_cast<float>(inv_temperature);
        const dispatch::kl_row_sums sums = k.kl_sums(teacher.data(), student.data(), n, teacher_hi, student_hi, inv_t, false);
        if (!grad.empty()) {
            const dispatch::kl_gradient_args args{teacher_hi,
                                                  student_hi,
                                                  inv_t,
                                                  static_cast<float>(grad_scale / sums.teacher_sum),
                                                  static_cast<float>(grad_scale / sums.student_sum),
                                                  0.0f};
            k.kl_gradient(teacher.data(), student.data(), n, args, grad.data());
        }
        return kl_from_sums(sums.teacher_sum, sums.student_sum, sums.weighted_gap);
    }

    /// The student's normalizer and gradient through the kernels; the k teacher terms in double, as the
    /// reference computes them (k is small beside the vocabulary).
    static double top_k_kl(std::span<const std::int32_t> indices, std::span<const float> teacher, std::span<const float> student,
                           double inv_temperature, std::span<float> grad, double grad_scale) {
        const dispatch::loss_kernels& k = dispatch::active().loss;
        if (!k.range || !k.exp_sum || !k.scaled_exp) return top_k_kl_row(indices, teacher, student, inv_temperature, grad, grad_scale);
        float student_lo = 0.0f, student_hi = 0.0f;
        k.range(student.data(), student.size(), &student_lo, &student_hi);
        if (!float_safe(student_lo, student_hi, inv_temperature))
            return top_k_kl_row(indices, teacher, student, inv_temperature, grad, grad_scale);
        const double teacher_max = max_of(teacher);
        const double student_max = student_hi;
        const auto inv_t = static_cast<float>(inv_temperature);
        const top_k_sums sums = top_k_teacher_sums(indices, teacher, student, teacher_max, student_max, inv_temperature);
        const double student_sum = k.exp_sum(student.data(), student.size(), student_hi, inv_t);
        if (!grad.empty()) {
            const double student_scale = grad_scale / student_sum;
            k.scaled_exp(student.data(), student.size(), student_hi, inv_t, static_cast<float>(student_scale), grad.data());
            top_k_teacher_gradient(indices, teacher, student, teacher_max, student_max, inv_temperature, grad_scale / sums.teacher_sum,
                                   student_scale, grad);
        }
        return kl_from_sums(sums.teacher_sum, student_sum, sums.weighted_gap);
    }

    static double distillation(std::span<const float> teacher, std::span<const float> student, std::size_t target,
                               const distillation_weights& w, std::span<float> grad) {
        const dispatch::loss_kernels& k = dispatch::active().loss;
        if (!k.range || !k.kl_sums || !k.kl_gradient) return distillation_row(teacher, student, target, w, grad);
        const std::size_t n = teacher.size();
        const double inv_temperature = 1.0 / w.temperature;
        float teacher_lo = 0.0f, teacher_hi = 0.0f, student_lo = 0.0f, student_hi = 0.0f;
        k.range(teacher.data(), n, &teacher_lo, &teacher_hi);
        k.range(student.data(), n, &student_lo, &student_hi);
        // The hard term shifts the student at T = 1, so its range must fit as well.
        const double widest = std::max(inv_temperature, 1.0);
        if (!float_safe(teacher_lo, teacher_hi, inv_temperature) || !float_safe(student_lo, student_hi, widest)) {
            return distillation_row(teacher, student, target, w, grad);
        }
        const auto inv_t = static_cast<float>(inv_temperature);
        const double hard_weight = 1.0 - w.kl_weight;
        const bool hard = hard_weight != 0.0;  // with kl_weight 1 the hard term weighs 0: its exps are skipped
        const dispatch::kl_row_sums sums = k.kl_sums(teacher.data(), student.data(), n, teacher_hi, student_hi, inv_t, hard);
        const double hard_sum = hard ? sums.hard_sum : 1.0;
        if (!grad.empty()) {
            const double soft_weight = w.kl_weight * w.temperature;  // weight * T^2 * (1 / T)
            const double teacher_scale = soft_weight / sums.teacher_sum;
            const double student_scale = soft_weight / sums.student_sum;
            const dispatch::kl_gradient_args args{teacher_hi,
                                                  student_hi,
                                                  inv_t,
                                                  static_cast<float>(teacher_scale),
                                                  static_cast<float>(student_scale),
                                                  static_cast<float>(hard_weight / hard_sum)};
            k.kl_gradient(teacher.data(), student.data(), n, args, grad.data());
            grad[target] = distillation_target_gradient(teacher[target], student[target], teacher_hi, student_hi, inv_temperature,
                                                        teacher_scale, student_scale, hard_weight, hard_sum);
        }
        const double kl = kl_from_sums(sums.teacher_sum, sums.student_sum, sums.weighted_gap);
        const double cross_entropy = hard ? std::log(hard_sum) - shifted(student[target], student_hi, 1.0) : 0.0;
        return w.kl_weight * w.temperature * w.temperature * kl + hard_weight * cross_entropy;
    }
};

/// How a value_error names the two inputs.
struct input_names {
    const char* teacher = "teacher";
    const char* student = "student";
};

/// Mean KL over rows of `vocab`, checked; `need_grad` makes an empty gradient an error (forward_backward).
template <class B>
double mean_kl(const char* function, float temperature, std::span<const float> teacher, std::span<const float> student, std::size_t vocab,
               std::span<float> grad, bool need_grad, input_names names = {}) {
    check_temperature(function, temperature);
    check_same_size(function, teacher.size(), student.size());
    check_rows(function, teacher.size(), vocab);
    check_gradient_size(function, student.size(), grad.size(), need_grad);
    check_finite(function, names.teacher, teacher);
    check_finite(function, names.student, student);
    const std::size_t count = teacher.size() / vocab;
    const double inv_temperature = 1.0 / static_cast<double>(temperature);
    const double grad_scale = inv_temperature / static_cast<double>(count);
    double total = 0.0;
    for (std::size_t r = 0; r < count; ++r) {
        const std::size_t offset = r * vocab;
        total += rows<B>::kl(teacher.subspan(offset, vocab), student.subspan(offset, vocab), inv_temperature,
                             grad.empty() ? grad : grad.subspan(offset, vocab), grad_scale);
    }
    return total / static_cast<double>(count);
}

/// Mean top-k KL over rows of `vocab` student logits, checked.
template <class B>
double mean_top_k_kl(const char* function, float temperature, const top_k_teacher& teacher, std::span<const float> student,
                     std::size_t vocab, std::span<float> grad, bool need_grad) {
    check_temperature(function, temperature);
    if (student.empty()) throw shape_error(std::string(function) + ": no student logits");
    check_rows(function, student.size(), vocab);
    const std::size_t count = student.size() / vocab;
    check_top_k(function, teacher.indices, teacher.logits.size(), teacher.k, count, vocab);
    check_gradient_size(function, student.size(), grad.size(), need_grad);
    check_finite(function, "teacher", teacher.logits);
    check_finite(function, "student", student);
    const double inv_temperature = 1.0 / static_cast<double>(temperature);
    const double grad_scale = inv_temperature / static_cast<double>(count);
    double total = 0.0;
    for (std::size_t r = 0; r < count; ++r) {
        const top_k_teacher row = teacher.row(r);
        const std::size_t offset = r * vocab;
        total += rows<B>::top_k_kl(row.indices, row.logits, student.subspan(offset, vocab), inv_temperature,
                                   grad.empty() ? grad : grad.subspan(offset, vocab), grad_scale);
    }
    return total / static_cast<double>(count);
}

/// One distillation row, checked.
template <class B>
double checked_distillation(const char* function, const distillation_loss_config& config, std::span<const float> teacher,
                            std::span<const float> student, std::int32_t target, std::span<float> grad, bool need_grad) {
    check_kl_weight(function, config.kl_weight);
    check_temperature(function, config.temperature);
    check_same_size(function, teacher.size(), student.size());
    check_target(function, target, student.size());
    check_gradient_size(function, student.size(), grad.size(), need_grad);
    check_finite(function, "teacher", teacher);
    check_finite(function, "student", student);
    return rows<B>::distillation(teacher, student, static_cast<std::size_t>(target),
                                 {static_cast<double>(config.temperature), static_cast<double>(config.kl_weight)}, grad);
}

}  // namespace detail::loss

/// KL(softmax(teacher / T) || softmax(student / T)) in nats, on a Backend: the teacher is the reference
/// distribution, so the student is penalised wherever the teacher puts mass it misses. Finite for any finite
/// logits. The gradient is d KL / d student = (softmax(student / T) - softmax(teacher / T)) / T (divided by
/// the row count for the means), in float. A teacher may be dense (one logit per vocabulary entry) or a
/// top_k_teacher (loss/top_k_teacher.hpp says what its missing mass becomes).
///
/// Every call throws shape_error for empty or mismatched sizes (the gradient's included),
/// invalid_argument_error for the temperature, value_error with the index for a NaN or Inf logit or a bad
/// top-k index.
template <Backend B = backend::Scalar>
class kl_loss {
    static_assert(std::is_same_v<B, backend::Scalar> || std::is_same_v<B, backend::Simd>,
                  "cogqat::kl_loss: this backend has no implementation; use backend::Scalar or backend::Simd");

public:
    /// Throws invalid_argument_error when the temperature is not positive and finite.
    explicit kl_loss(kl_options options = {}) : options_(options) { detail::loss::check_temperature("kl_loss", options.temperature); }

    /// The settings it was made with.
    [[nodiscard]] const kl_options& options() const noexcept { return options_; }

    /// KL of one row.
    [[nodiscard]] double forward(std::span<const float> teacher, std::span<const float> student) const {
        return detail::loss::mean_kl<B>("kl_loss::forward", options_.temperature, teacher, student, teacher.size(), {}, false);
    }
    /// KL of one row, and its gradient with respect to the student into `grad` (the row's size).
    double forward_backward(std::span<const float> teacher, std::span<const float> student, std::span<float> grad) const {
        return detail::loss::mean_kl<B>("kl_loss::forward_backward", options_.temperature, teacher, student, teacher.size(), grad, true);
    }
    /// KL of one row from a one-row top-k teacher; `student` is the whole vocabulary.
    [[nodiscard]] double forward(const top_k_teacher& teacher, std::span<const float> student) const {
        return detail::loss::mean_top_k_kl<B>("kl_loss::forward", options_.temperature, teacher, student, student.size(), {}, false);
    }
    /// KL of one row from a one-row top-k teacher, and its gradient (the vocabulary's size).
    double forward_backward(const top_k_teacher& teacher, std::span<const float> student, std::span<float> grad) const {
        return detail::loss::mean_top_k_kl<B>("kl_loss::forward_backward", options_.temperature, teacher, student, student.size(), grad,
                                              true);
    }
    /// Mean KL over consecutive rows of `vocab` logits (one per token position).
    [[nodiscard]] double mean_forward(std::span<const float> teacher, std::span<const float> student, std::size_t vocab) const {
        return detail::loss::mean_kl<B>("kl_loss::mean_forward", options_.temperature, teacher, student, vocab, {}, false);
    }
    /// Mean KL over rows, and its gradient: each row's divided by the row count.
    double mean_forward_backward(std::span<const float> teacher, std::span<const float> student, std::size_t vocab,
                                 std::span<float> grad) const {
        return detail::loss::mean_kl<B>("kl_loss::mean_forward_backward", options_.temperature, teacher, student, vocab, grad, true);
    }
    /// Mean KL over rows from a top-k teacher of as many rows; `student` holds rows of `vocab` logits.
    [[nodiscard]] double mean_forward(const top_k_teacher& teacher, std::span<const float> student, std::size_t vocab) const {
        return detail::loss::mean_top_k_kl<B>("kl_loss::mean_forward", options_.temperature, teacher, student, vocab, {}, false);
    }
    /// Mean top-k KL over rows, and its gradient.
    double mean_forward_backward(const top_k_teacher& teacher, std::span<const float> student, std::size_t vocab,
                                 std::span<float> grad) const {
        return detail::loss::mean_top_k_kl<B>("kl_loss::mean_forward_backward", options_.temperature, teacher, student, vocab, grad, true);
    }

private:
    kl_options options_;
};

/// Hinton-style distillation on a Backend: kl_weight * T^2 * KL_T(teacher || student) + (1 - kl_weight) *
/// CE(student at T = 1, target). The soft term's gradient scales as 1 / T^2 (1/T from the softened
/// probabilities, 1/T from the chain rule), so T^2 keeps its magnitude comparable to the hard term's across
/// temperatures. The gradient with respect to the student logits is
/// kl_weight * T * (q_T - p_T) + (1 - kl_weight) * (q_1 - onehot(target)).
/// Throws invalid_argument_error for kl_weight outside [0, 1], a bad temperature or target, shape_error and
/// value_error as kl_loss does. Both inputs are checked whatever the weight.
template <Backend B = backend::Scalar>
class distillation {
    static_assert(std::is_same_v<B, backend::Scalar> || std::is_same_v<B, backend::Simd>,
                  "cogqat::distillation: this backend has no implementation; use backend::Scalar or backend::Simd");

public:
    /// Throws invalid_argument_error for a kl_weight outside [0, 1] or a temperature that is not positive and finite.
    explicit distillation(distillation_loss_config config = {}) : config_(config) {
        detail::loss::check_kl_weight("distillation", config.kl_weight);
        detail::loss::check_temperature("distillation", config.temperature);
    }

    /// The weights it was made with.
    [[nodiscard]] const distillation_loss_config& config() const noexcept { return config_; }

    /// The loss of one row against the hard label `target`.
    [[nodiscard]] double forward(std::span<const float> teacher, std::span<const float> student, std::int32_t target) const {
        return detail::loss::checked_distillation<B>("distillation::forward", config_, teacher, student, target, {}, false);
    }
    /// The loss of one row, and its gradient with respect to the student into `grad` (the row's size).
    double forward_backward(std::span<const float> teacher, std::span<const float> student, std::int32_t target,
                            std::span<float> grad) const {
        return detail::loss::checked_distillation<B>("distillation::forward_backward", config_, teacher, student, target, grad, true);
    }

private:
    distillation_loss_config config_;
};

}  // namespace cogqat
