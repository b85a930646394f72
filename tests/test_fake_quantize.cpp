// Tests of the generic quantizer's differentiable path (quant/fake_quantize.hpp): the forward is the
// quantizer's, the straight-through and LSQ gradients are what their definitions say (checked by finite
// differences where the forward is differentiable), a KL loss trains through it, and bad input is refused.

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/policy.hpp"
#include "cogqat/core/tensor_view.hpp"
#include "cogqat/loss/kl_divergence.hpp"
#include "cogqat/quant/fake_quantize.hpp"
#include "cogqat/quant/quantizer.hpp"

using namespace cogqat;

namespace {

std::vector<float> normal_values(std::size_t n, std::uint32_t seed, float sigma = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, sigma);
    std::vector<float> v(n);
    for (auto& x : v) x = normal(rng);
    return v;
}

/// L = sum upstream * y for the forward under `params`, accumulated in double.
template <class F>
double linear_loss(std::span<const float> x, std::size_t rows, std::size_t cols, std::span<const affine_params> params,
                   std::span<const float> upstream) {
    std::vector<float> y(x.size());
    F::fake_quantize(make_matrix_view(x.data(), rows, cols), params, make_matrix_view(y.data(), rows, cols));
    double sum = 0.0;
    for (std::size_t i = 0; i < y.size(); ++i) sum += static_cast<double>(upstream[i]) * static_cast<double>(y[i]);
    return sum;
}

template <class Bits, class Granularity, class Mode>
void check_forward_is_the_quantizer() {
    using F = fake_quantizer<Bits, Granularity, Mode>;
    using Q = quantizer<Bits, Granularity, Mode>;
    constexpr std::size_t rows = 3, cols = 512;
    const auto x = normal_values(rows * cols, 7);
    const auto view = make_matrix_view(x.data(), rows, cols);
    const auto params = F::initial_params(view);
    std::vector<float> y(x.size()), expected(x.size());
    F::fake_quantize(view, params, make_matrix_view(y.data(), rows, cols));
    Q::fake_quantize(view, make_matrix_view(expected.data(), rows, cols));
    // Same bits: the forward under the quantizer's own parameters is its fake-quantization.
    for (std::size_t i = 0; i < x.size(); ++i) REQUIRE(std::bit_cast<std::uint32_t>(y[i]) == std::bit_cast<std::uint32_t>(expected[i]));
    // Exporting the parameters gives back the quantizer's tensor (a super-block codes them again: its
    // decoded values must then be the forward under the re-coded parameters).
    const auto exported = F::quantize_with_params(view, params);
    if constexpr (!SuperBlockGranularity<Granularity>) {
        CHECK(exported == Q::quantize(view));
    } else {
        std::vector<affine_params> recoded(exported.group_count());
        for (std::size_t g = 0; g < recoded.size(); ++g) recoded[g] = exported.effective_params(g);
        F::fake_quantize(view, recoded, make_matrix_view(y.data(), rows, cols));
        const auto decoded = Q::dequantize(exported);
        for (std::size_t i = 0; i < x.size(); ++i) REQUIRE(y[i] == decoded[i]);
    }
}

}  // namespace

TEST_CASE("fake_quantizer's forward is the generic quantizer's, and its export is the quantizer's tensor") {
    check_forward_is_the_quantizer<BitWidth<4>, PerTensor, Symmetric>();
    check_forward_is_the_quantizer<BitWidth<4>, PerRow, Asymmetric>();
    check_forward_is_the_quantizer<BitWidth<3>, PerGroup<32>, Asymmetric>();
    check_forward_is_the_quantizer<BitWidth<8>, PerGroup<128>, Symmetric>();
    check_forward_is_the_quantizer<BitWidth<4>, SuperBlock<256, 32>, Asymmetric>();
    check_forward_is_the_quantizer<BitWidth<6>, SuperBlock<256, 16, 8>, Symmetric>();
}

TEST_CASE("straight-through: the gradient passes where a value is inside the range and nowhere else") {
    using F = fake_quantizer<BitWidth<4>, PerGroup<32>, Asymmetric>;
    constexpr std::size_t rows = 2, cols = 64;
    const auto x = normal_values(rows * cols, 11);
    const auto view = make_matrix_view(x.data(), rows, cols);
    auto params = F::initial_params(view);
    for (auto& p : params) p.scale *= 0.5f;  // half the range: the tails clamp
    const auto upstream = normal_values(rows * cols, 12);
    std::vector<float> grad_x(x.size(), -1.0f);
    F::fake_quantize_backward(view, params, make_matrix_view(upstream.data(), rows, cols), make_matrix_view(grad_x.data(), rows, cols));
    std::size_t clamped = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        const affine_params p = params[i / 32];
        const float v = x[i] / p.scale;
        const bool outside = v < static_cast<float>(0 - p.zero_point) || v > static_cast<float>(15 - p.zero_point);
        clamped += outside ? 1 : 0;
        CHECK(grad_x[i] == (outside ? 0.0f : upstream[i]));
    }
    CHECK(clamped > 0);
    CHECK(clamped < x.size() / 2);
}

TEST_CASE("LSQ: scale and zero-point gradients agree with finite differences where the forward is differentiable") {
    // Symmetric and asymmetric, per group: for every group, dL/ds from the backward equals (a) the exact
    // finite difference of the true forward (piecewise linear in s between rounding boundaries) minus
    // (b) sum upstream * x / s, the straight-through term LSQ adds for the values inside the range.
    auto check_mode = [&]<class Mode>() {
        using F = fake_quantizer<BitWidth<3>, PerGroup<16>, Mode>;
        constexpr std::size_t rows = 2, cols = 64;
        const auto x = normal_values(rows * cols, 21);
        const auto view = make_matrix_view(x.data(), rows, cols);
        auto params = F::initial_params(view);
        for (auto& p : params) p.scale *= 0.7f;
        const auto upstream = normal_values(rows * cols, 22);
        std::vector<float> grad_x(x.size());
        std::vector<float> grad_s(params.size(), 0.0f), grad_z(Mode::has_zero_point ? params.size() : 0, 0.0f);
        F::template fake_quantize_backward<learned_step_size>(view, params, make_matrix_view(upstream.data(), rows, cols),
                                                              make_matrix_view(grad_x.data(), rows, cols), grad_s, grad_z);
        const float factor = learned_step_size::gradient_scale(16, Mode::max_level(3));
        std::size_t zero_points_checked = 0;
        for (std::size_t g = 0; g < params.size(); ++g) {
            // A step small enough to cross no rounding boundary: y is linear in s on it.
            const float h = params[g].scale * 1e-4f;
            auto shifted = params;
            shifted[g].scale += h;
            const double up = linear_loss<F>(x, rows, cols, shifted, upstream);
            shifted[g].scale -= 2 * h;
            const double down = linear_loss<F>(x, rows, cols, shifted, upstream);
            const double finite_difference = (up - down) / (2.0 * static_cast<double>(h));
            double straight_through = 0.0;
            for (std::size_t i = g * 16; i < (g + 1) * 16; ++i) {
                if (grad_x[i] != 0.0f) straight_through += static_cast<double>(upstream[i]) * static_cast<double>(x[i] / params[g].scale);
            }
            CHECK(static_cast<double>(grad_s[g]) / factor == doctest::Approx(finite_difference - straight_through).epsilon(2e-3));
            if constexpr (Mode::has_zero_point) {
                // The zero-point moves in whole levels. Where a step of one level leaves every value on its side
                // of the clamps (the same straight-through mask), the forward is linear in z across it: the
                // loss changes by exactly the gradient.
                if (params[g].zero_point < 7) {
                    auto moved = params;
                    moved[g].zero_point += 1;
                    std::vector<float> moved_grad_x(x.size());
                    F::fake_quantize_backward(view, moved, make_matrix_view(upstream.data(), rows, cols),
                                              make_matrix_view(moved_grad_x.data(), rows, cols));
                    bool same_mask = true;
                    for (std::size_t i = g * 16; i < (g + 1) * 16; ++i) same_mask &= (grad_x[i] == 0.0f) == (moved_grad_x[i] == 0.0f);
                    if (same_mask) {
                        const double step =
                                linear_loss<F>(x, rows, cols, moved, upstream) - linear_loss<F>(x, rows, cols, params, upstream);
                        CHECK(static_cast<double>(grad_z[g]) == doctest::Approx(step).epsilon(1e-4));
                        ++zero_points_checked;
                    }
                }
            }
        }
        if constexpr (Mode::has_zero_point) CHECK(zero_points_checked > 0);
    };
    check_mode.operator()<Symmetric>();
    check_mode.operator()<Asymmetric>();
}

TEST_CASE("a KL loss trains through the fake-quantized weights: loss -> weights -> gradients of weights and scales") {
    // logits = W_q h for a 4-bit per-group W; the teacher's logits come from the float W. The gradient of the
    // KL loss with respect to the fake-quantized weights is checked by finite differences (the loss is smooth
    // in them), then passed back with LSQ; a few steps on the latent weights and the scales lower the loss.
    using F = fake_quantizer<BitWidth<4>, PerGroup<16>, Asymmetric>;
    constexpr std::size_t vocab = 24, dim = 32;
    auto weights = normal_values(vocab * dim, 31, 0.3f);
    const auto h = normal_values(dim, 32);
    std::vector<float> teacher(vocab);
    for (std::size_t v = 0; v < vocab; ++v)
        for (std::size_t d = 0; d < dim; ++d) teacher[v] += weights[v * dim + d] * h[d];
    auto params = F::initial_params(make_matrix_view(weights.data(), vocab, dim));
    for (auto& p : params) p.scale *= 1.3f;  // a poor start the scales can learn away from

    std::vector<float> quantized(weights.size()), logits(vocab), grad_logits(vocab), grad_q(weights.size()), grad_w(weights.size());
    auto loss_at = [&](std::span<const float> w, std::span<const affine_params> p, bool with_gradient) {
        F::fake_quantize(make_matrix_view(w.data(), vocab, dim), p, make_matrix_view(quantized.data(), vocab, dim));
        for (std::size_t v = 0; v < vocab; ++v) {
            logits[v] = 0.0f;
            for (std::size_t d = 0; d < dim; ++d) logits[v] += quantized[v * dim + d] * h[d];
        }
        return kl_divergence(teacher, logits, 2.0f, with_gradient ? std::span<float>(grad_logits) : std::span<float>());
    };

    const double start = loss_at(weights, params, true);
    for (std::size_t v = 0; v < vocab; ++v)
        for (std::size_t d = 0; d < dim; ++d) grad_q[v * dim + d] = grad_logits[v] * h[d];
    // dL/dW_q by central differences on a few elements of W_q itself.
    for (const std::size_t i : {std::size_t{0}, std::size_t{77}, std::size_t{500}}) {
        auto perturbed = [&](float delta) {
            F::fake_quantize(make_matrix_view(weights.data(), vocab, dim), params, make_matrix_view(quantized.data(), vocab, dim));
            quantized[i] += delta;
            std::vector<float> l(vocab, 0.0f);
            for (std::size_t v = 0; v < vocab; ++v)
                for (std::size_t d = 0; d < dim; ++d) l[v] += quantized[v * dim + d] * h[d];
            return kl_divergence(teacher, l, 2.0f);
        };
        CHECK(static_cast<double>(grad_q[i]) == doctest::Approx((perturbed(1e-2f) - perturbed(-1e-2f)) / 2e-2).epsilon(2e-2));
    }

    double loss = start;
    for (int step = 0; step < 60; ++step) {
        loss = loss_at(weights, params, true);
        for (std::size_t v = 0; v < vocab; ++v)
            for (std::size_t d = 0; d < dim; ++d) grad_q[v * dim + d] = grad_logits[v] * h[d];
        std::vector<float> grad_s(params.size(), 0.0f);
        F::fake_quantize_backward<learned_step_size>(make_matrix_view(weights.data(), vocab, dim), params,
                                                     make_matrix_view(grad_q.data(), vocab, dim),
                                                     make_matrix_view(grad_w.data(), vocab, dim), grad_s);
        for (std::size_t i = 0; i < weights.size(); ++i) weights[i] -= 0.05f * grad_w[i];
        for (std::size_t g = 0; g < params.size(); ++g) params[g].scale = std::max(params[g].scale - 0.01f * grad_s[g], 1e-6f);
    }
    CHECK(loss < 0.5 * start);
}

TEST_CASE("fake_quantizer refuses what it cannot use, naming it") {
    using F = fake_quantizer<BitWidth<4>, PerGroup<32>, Asymmetric>;
    using S = fake_quantizer<BitWidth<4>, PerRow, Symmetric>;
    constexpr std::size_t rows = 2, cols = 64;
    auto x = normal_values(rows * cols, 41);
    const auto view = make_matrix_view(x.data(), rows, cols);
    auto params = F::initial_params(view);
    std::vector<float> y(x.size()), g(x.size(), 1.0f), gx(x.size());
    const auto out = make_matrix_view(y.data(), rows, cols);
    const auto gv = make_matrix_view(g.data(), rows, cols);
    const auto gxv = make_matrix_view(gx.data(), rows, cols);

    CHECK_THROWS_AS(F::fake_quantize(view, std::span(params).first(3), out), shape_error);
    CHECK_THROWS_AS(F::fake_quantize(make_matrix_view(x.data(), 4, 30), std::span(params).first(4), make_matrix_view(y.data(), 4, 30)),
                    shape_error);  // 30 is no multiple of 32
    CHECK_THROWS_AS(F::fake_quantize(view, params, make_matrix_view(y.data(), 1, 128)), shape_error);
    auto bad = params;
    bad[2].scale = -1.0f;
    CHECK_THROWS_WITH_AS(F::fake_quantize(view, bad, out), doctest::Contains("group 2 has scale"), value_error);
    bad[2].scale = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(F::fake_quantize(view, bad, out), value_error);
    bad = params;
    bad[1].zero_point = 16;
    CHECK_THROWS_WITH_AS(F::fake_quantize(view, bad, out), doctest::Contains("zero-point 16 outside"), value_error);
    std::vector<affine_params> symmetric_with_zero(rows, affine_params{0.1f, 1});
    CHECK_THROWS_AS(S::fake_quantize(view, symmetric_with_zero, out), value_error);

    x[70] = std::numeric_limits<float>::infinity();
    try {
        F::fake_quantize(view, params, out);
        FAIL("no exception");
    } catch (const value_error& e) {
        CHECK(e.index() == 70);
        CHECK(std::string(e.what()).find("input[70] (row 1, column 6)") != std::string::npos);
    }
    x[70] = 0.0f;
    g[5] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH_AS(F::fake_quantize_backward(view, params, gv, gxv), doctest::Contains("grad_y[5]"), value_error);
    g[5] = 1.0f;

    std::vector<float> scales(params.size()), too_few(1);
    CHECK_THROWS_WITH_AS(F::fake_quantize_backward<learned_step_size>(view, params, gv, gxv, too_few), doctest::Contains("scale gradients"),
                         shape_error);
    CHECK_THROWS_WITH_AS(F::fake_quantize_backward<straight_through>(view, params, gv, gxv, scales), doctest::Contains("learns no scales"),
                         shape_error);
    std::vector<float> zeros(rows);
    CHECK_THROWS_WITH_AS(S::fake_quantize_backward(view, std::vector<affine_params>(rows, affine_params{0.1f, 0}), gv, gxv, {}, zeros),
                         doctest::Contains("which has no zero-point"), shape_error);
    CHECK_THROWS_AS(F::fake_quantize_backward(view, params, gv, make_matrix_view(gx.data(), 1, 128)), shape_error);

    // A zero-scale group (all zeros) is frozen: no gradient reaches it.
    std::vector<float> zero_group(rows * cols, 0.0f);
    const auto zparams = F::initial_params(make_matrix_view(zero_group.data(), rows, cols));
    std::vector<float> zs(zparams.size(), 0.0f);
    F::fake_quantize_backward<learned_step_size>(make_matrix_view(zero_group.data(), rows, cols), zparams, gv, gxv, zs);
    for (const float v : gx) CHECK(v == 0.0f);
    for (const float v : zs) CHECK(v == 0.0f);
}
