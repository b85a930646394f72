#pragma once
// The distillation losses' row passes (loss/kl_loss.hpp, backend::Simd) on float lanes: the range of a row,
// the KL sums (Σ e^a, Σ e^b, Σ e^a (a - b) and the hard term's Σ e^c), one normalizer, and the gradient.
// exp is xsimd's (about 1 ulp). Sums are blocked: each lane adds at most `block_vectors` terms in float
// before the block is added to a per-lane double total, so the float part of a sum of positive terms has a
// relative error below block_vectors * 2^-24 whatever the vocabulary, and the rest is double rounding.
// A row's last partial vector is read through a padded copy and masked, so no pass reads past the row.
//
// Include only in a unit compiled for the tag's instruction set (simd/isa/register.hpp does).

#include <algorithm>
#include <array>
#include <cstddef>

#include "cogqat/core/strict_fp.hpp"
#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/simd/isa/convert.hpp"
#include "cogqat/simd/isa/isa.hpp"

namespace cogqat::simd {

namespace detail {

/// Vectors each lane adds in float before its block goes to double: 16 keeps the float error near 1e-6.
inline constexpr std::size_t loss_block_vectors = 16;

/// `count` float sums kept as float lanes for one block and per-lane double totals across blocks.
template <class Isa, std::size_t Count>
class blocked_sums {
public:
    static constexpr std::size_t lanes = float_lanes<Isa>;

    void add(std::size_t s, float_batch<Isa> v) noexcept { block_[s] += v; }

    /// Call once per vector added to every sum: moves the block to double every loss_block_vectors.
    void step() noexcept {
        if (++filled_ == loss_block_vectors) flush();
    }

    [[nodiscard]] double total(std::size_t s) noexcept {
        flush();
        double t = 0.0;
        for (const double v : totals_[s]) t += v;
        return t;
    }

private:
    void flush() noexcept {
        alignas(64) float values[lanes];
        for (std::size_t s = 0; s < Count; ++s) {
            block_[s].store_aligned(values);
            for (std::size_t l = 0; l < lanes; ++l) totals_[s][l] += static_cast<double>(values[l]);
            block_[s] = float_batch<Isa>(0.0f);
        }
        filled_ = 0;
    }

    std::array<float_batch<Isa>, Count> block_{};
    std::array<std::array<double, lanes>, Count> totals_{};
    std::size_t filled_ = 0;
};

/// Lanes below `valid` set: the mask of a row's last partial vector.
template <class Isa>
inline xsimd::batch_bool<float, typename Isa::arch> first_lanes(std::size_t valid) noexcept {
    alignas(64) float index[float_lanes<Isa>];
    for (std::size_t l = 0; l < float_lanes<Isa>; ++l) index[l] = static_cast<float>(l);
    return float_batch<Isa>::load_aligned(index) < float_batch<Isa>(static_cast<float>(valid));
}

/// The last `valid` values at `x`, padded with `pad` to a full vector.
template <class Isa>
inline float_batch<Isa> load_tail(const float* x, std::size_t valid, float pad) noexcept {
    alignas(64) float values[float_lanes<Isa>];
    std::fill(values, values + float_lanes<Isa>, pad);
    std::copy(x, x + valid, values);
    return float_batch<Isa>::load_aligned(values);
}

template <class Isa>
void loss_range(const float* x, std::size_t n, float* lo, float* hi) noexcept {
    using fb = float_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    fb low(x[0]), high(x[0]);
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes) {
        const fb v = fb::load_unaligned(x + i);
        low = xsimd::min(low, v);
        high = xsimd::max(high, v);
    }
    alignas(64) float l[lanes], h[lanes];
    low.store_aligned(l);
    high.store_aligned(h);
    float smallest = *std::min_element(l, l + lanes), largest = *std::max_element(h, h + lanes);
    for (; i < n; ++i) {
        smallest = std::min(smallest, x[i]);
        largest = std::max(largest, x[i]);
    }
    *lo = smallest;
    *hi = largest;
}

/// The four sums of one vector of teacher `t` and student `s`, lanes outside `mask` left out.
template <class Isa, bool Hard, bool Masked>
inline void kl_terms(blocked_sums<Isa, 4>& sums, float_batch<Isa> t, float_batch<Isa> s, float_batch<Isa> teacher_max,
                     float_batch<Isa> student_max, float_batch<Isa> inv_temperature,
                     xsimd::batch_bool<float, typename Isa::arch> mask) noexcept {
    using fb = float_batch<Isa>;
    const fb a = (t - teacher_max) * inv_temperature;
    const fb b = (s - student_max) * inv_temperature;
    fb ea = xsimd::exp(a), eb = xsimd::exp(b);
    if constexpr (Masked) {
        ea = xsimd::select(mask, ea, fb(0.0f));
        eb = xsimd::select(mask, eb, fb(0.0f));
    }
    sums.add(0, ea);
    sums.add(1, eb);
    sums.add(2, ea * (a - b));
    if constexpr (Hard) {
        fb ec = xsimd::exp(s - student_max);
        if constexpr (Masked) ec = xsimd::select(mask, ec, fb(0.0f));
        sums.add(3, ec);
    }
    sums.step();
}

template <class Isa, bool Hard>
dispatch::kl_row_sums kl_sums_of(const float* teacher, const float* student, std::size_t n, float teacher_max, float student_max,
                                 float inv_temperature) noexcept {
    using fb = float_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    const fb tm(teacher_max), sm(student_max), it(inv_temperature);
    const auto all = fb(0.0f) == fb(0.0f);
    blocked_sums<Isa, 4> sums;
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes) {
        kl_terms<Isa, Hard, false>(sums, fb::load_unaligned(teacher + i), fb::load_unaligned(student + i), tm, sm, it, all);
    }
    if (i < n) {
        // Padded with the maxima: finite arguments (0), whose terms the mask then drops.
        const std::size_t valid = n - i;
        kl_terms<Isa, Hard, true>(sums, load_tail<Isa>(teacher + i, valid, teacher_max), load_tail<Isa>(student + i, valid, student_max),
                                  tm, sm, it, first_lanes<Isa>(valid));
    }
    return {sums.total(0), sums.total(1), sums.total(2), Hard ? sums.total(3) : 0.0};
}

template <class Isa>
dispatch::kl_row_sums kl_sums(const float* teacher, const float* student, std::size_t n, float teacher_max, float student_max,
                              float inv_temperature, bool hard) noexcept {
    return hard ? kl_sums_of<Isa, true>(teacher, student, n, teacher_max, student_max, inv_temperature)
                : kl_sums_of<Isa, false>(teacher, student, n, teacher_max, student_max, inv_temperature);
}

COGQAT_STRICT_FP_BEGIN

/// Uncontracted, so that rows with equal scales and exps (identical teacher and student) give exactly 0:
/// a fused e^b s_b - e^a s_a would keep the rounding error of the second product.
template <class Isa, bool Hard>
inline float_batch<Isa> kl_gradient_of(float_batch<Isa> t, float_batch<Isa> s, const dispatch::kl_gradient_args& g) noexcept {
    using fb = float_batch<Isa>;
    const fb sm(g.student_max);
    const fb ea = xsimd::exp((t - fb(g.teacher_max)) * fb(g.inv_temperature));
    const fb eb = xsimd::exp((s - sm) * fb(g.inv_temperature));
    fb out = eb * fb(g.student_scale) - ea * fb(g.teacher_scale);
    if constexpr (Hard) out += xsimd::exp(s - sm) * fb(g.hard_scale);
    return out;
}

COGQAT_STRICT_FP_END

template <class Isa, bool Hard>
void kl_gradient_pass(const float* teacher, const float* student, std::size_t n, const dispatch::kl_gradient_args& g,
                      float* grad) noexcept {
    using fb = float_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes) {
        kl_gradient_of<Isa, Hard>(fb::load_unaligned(teacher + i), fb::load_unaligned(student + i), g).store_unaligned(grad + i);
    }
    if (i < n) {
        const std::size_t valid = n - i;
        alignas(64) float values[lanes];
        kl_gradient_of<Isa, Hard>(load_tail<Isa>(teacher + i, valid, g.teacher_max), load_tail<Isa>(student + i, valid, g.student_max), g)
                .store_aligned(values);
        std::copy(values, values + valid, grad + i);
    }
}

template <class Isa>
void kl_gradient(const float* teacher, const float* student, std::size_t n, const dispatch::kl_gradient_args& g, float* grad) noexcept {
    if (g.hard_scale != 0.0f) return kl_gradient_pass<Isa, true>(teacher, student, n, g, grad);
    kl_gradient_pass<Isa, false>(teacher, student, n, g, grad);
}

template <class Isa>
double exp_sum(const float* x, std::size_t n, float shift, float inv_temperature) noexcept {
    using fb = float_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    const fb m(shift), it(inv_temperature);
    blocked_sums<Isa, 1> sums;
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes) {
        sums.add(0, xsimd::exp((fb::load_unaligned(x + i) - m) * it));
        sums.step();
    }
    if (i < n) {
        const std::size_t valid = n - i;
        const fb e = xsimd::exp((load_tail<Isa>(x + i, valid, shift) - m) * it);
        sums.add(0, xsimd::select(first_lanes<Isa>(valid), e, fb(0.0f)));
    }
    return sums.total(0);
}

template <class Isa>
void scaled_exp(const float* x, std::size_t n, float shift, float inv_temperature, float scale, float* out) noexcept {
    using fb = float_batch<Isa>;
    constexpr std::size_t lanes = float_lanes<Isa>;
    const fb m(shift), it(inv_temperature), sc(scale);
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes) (xsimd::exp((fb::load_unaligned(x + i) - m) * it) * sc).store_unaligned(out + i);
    if (i < n) {
        const std::size_t valid = n - i;
        alignas(64) float values[lanes];
        (xsimd::exp((load_tail<Isa>(x + i, valid, shift) - m) * it) * sc).store_aligned(values);
        std::copy(values, values + valid, out + i);
    }
}

}  // namespace detail

/// Fills the distillation losses' kernels.
template <class Isa>
void add_loss_kernels(dispatch::kernel_table& t) {
    t.loss.range = &detail::loss_range<Isa>;
    t.loss.kl_sums = &detail::kl_sums<Isa>;
    t.loss.kl_gradient = &detail::kl_gradient<Isa>;
    t.loss.exp_sum = &detail::exp_sum<Isa>;
    t.loss.scaled_exp = &detail::scaled_exp<Isa>;
}

}  // namespace cogqat::simd
