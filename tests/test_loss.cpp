// Tests of the distillation losses: values against hand-computed and independent references, gradients
// against central finite differences, stability at extreme logits, the temperature limits, and every check.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/policy.hpp"
#include "cogqat/dispatch/kernel_table.hpp"
#include "cogqat/loss/kl_divergence.hpp"
#include "cogqat/loss/kl_loss.hpp"
#include "cogqat/loss/top_k_teacher.hpp"
#include "linked_isas.hpp"
#include "random_data.hpp"

using namespace cogqat;

namespace {

constexpr float temperatures[] = {0.5f, 1.0f, 3.0f};
constexpr std::size_t vocab_sizes[] = {2, 7, 512};

/// Independent reference: log-softmax in long double by the textbook formula, then Σ p (log p - log q).
/// Only for moderate logits (no max subtraction needed in long double's range for |x / T| < 1e4).
double reference_kl(std::span<const float> teacher, std::span<const float> student, float temperature) {
    long double zt = 0, zs = 0;
    for (std::size_t i = 0; i < teacher.size(); ++i) {
        zt += std::exp(static_cast<long double>(teacher[i]) / temperature);
        zs += std::exp(static_cast<long double>(student[i]) / temperature);
    }
    long double kl = 0;
    for (std::size_t i = 0; i < teacher.size(); ++i) {
        const long double lp = static_cast<long double>(teacher[i]) / temperature - std::log(zt);
        const long double lq = static_cast<long double>(student[i]) / temperature - std::log(zs);
        kl += std::exp(lp) * (lp - lq);
    }
    return static_cast<double>(kl);
}

/// Central difference of `loss` at `x`, coordinate by coordinate. The step is rounded to float with the
/// input, so the quotient divides by the step actually taken; the loss itself is evaluated in double.
template <class Loss>
std::vector<double> numerical_gradient(Loss&& loss, std::vector<float> x, float step) {
    std::vector<double> g(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
        const float x0 = x[i];
        const float up = x0 + step;
        const float down = x0 - step;
        x[i] = up;
        const double loss_up = loss(x);
        x[i] = down;
        const double loss_down = loss(x);
        x[i] = x0;
        g[i] = (loss_up - loss_down) / (static_cast<double>(up) - static_cast<double>(down));
    }
    return g;
}

/// Agreement to 1e-3 relative per element; the 1e-9 floor covers elements whose true value is far below
/// the finite difference's rounding noise (about 1e-12 here).
void check_gradient(std::span<const float> analytic, std::span<const double> numerical) {
    REQUIRE(analytic.size() == numerical.size());
    for (std::size_t i = 0; i < analytic.size(); ++i) {
        INFO("element " << i << ": analytic " << analytic[i] << ", numerical " << numerical[i]);
        CHECK(std::fabs(static_cast<double>(analytic[i]) - numerical[i]) <= 1e-3 * std::fabs(numerical[i]) + 1e-9);
    }
}

/// Logits that are multiples of 1/256 in [-8, 8]: adding an integer constant below 65536 to them is exact in
/// float, so a shift-invariance test compares the same mathematical inputs.
std::vector<float> dyadic_logits(std::size_t n, std::uint64_t seed) {
    test::rng r(seed);
    std::vector<float> v(n);
    for (auto& x : v) x = static_cast<float>(static_cast<int>(r.next() % 4097) - 2048) / 256.0f;
    return v;
}

/// Index and message of the value_error `f` throws; index max when it throws none.
template <class F>
std::pair<std::size_t, std::string> caught_value_error(F&& f) {
    try {
        f();
    } catch (const value_error& e) {
        return {e.index(), e.what()};
    }
    return {std::numeric_limits<std::size_t>::max(), ""};
}

double relative_difference(double a, double b) { return std::fabs(a - b) / std::max(std::fabs(b), 1e-300); }

}  // namespace

TEST_CASE("kl_divergence: identical logits give 0, different give the reference value, never negative") {
    for (const std::size_t n : vocab_sizes) {
        for (const float t : temperatures) {
            const auto x = test::gaussian_values(n, 11 + n, 3.0);
            CHECK(std::fabs(kl_divergence(x, x, t)) <= 1e-12);
            std::vector<float> grad(n, 1.0f);
            (void)kl_divergence(x, x, t, grad);
            for (const float g : grad) CHECK(std::fabs(g) <= 1e-7f);
        }
    }
    for (std::uint64_t seed = 0; seed < 20; ++seed) {
        const std::size_t n = 2 + seed * 13;
        const auto teacher = test::gaussian_values(n, 100 + seed, 2.0);
        const auto student = test::gaussian_values(n, 200 + seed, 2.0);
        for (const float t : temperatures) {
            const double kl = kl_divergence(teacher, student, t);
            INFO("seed " << seed << " T " << t);
            CHECK(kl > 0.0);
            CHECK(relative_difference(kl, reference_kl(teacher, student, t)) <= 1e-9);
        }
    }
    // Rows that agree to an ulp here and there: the exact KL is 1e-14 or below, and the rounding of the sum,
    // which lands below zero for a few percent of such pairs, must not make it negative.
    for (std::uint64_t seed = 0; seed < 2000; ++seed) {
        const std::size_t n = 2 + seed % 9;
        const auto teacher = test::gaussian_values(n, seed, 1.0 + static_cast<double>(seed % 5));
        auto student = teacher;
        for (std::size_t i = 0; i < n; ++i)
            if ((seed >> i) & 1) student[i] = std::nextafter(student[i], (seed >> (i + 3)) & 1 ? 1e9f : -1e9f);
        const float t = temperatures[seed % 3];
        INFO("seed " << seed);
        const double kl = kl_divergence(teacher, student, t);
        CHECK(kl >= 0.0);
        CHECK(kl <= 1e-12);
        CHECK(distillation_loss(teacher, student, 0, {1.0f, t}) >= 0.0);
        CHECK(mean_kl_divergence(teacher, student, n, t) >= 0.0);
    }
}

TEST_CASE("kl_divergence: hand-computed three-class examples") {
    // p = softmax(1, 2, 3), q = softmax(3, 2, 1) = reversed p, so KL = (p3 - p1) * log(p3 / p1)
    // = 2 (e^2 - 1) / (1 + e + e^2); at T = 2 the log-ratio halves: (e - 1) / (1 + sqrt(e) + e).
    const std::vector<float> up = {1.0f, 2.0f, 3.0f};
    const std::vector<float> down = {3.0f, 2.0f, 1.0f};
    const std::vector<float> flat = {0.0f, 0.0f, 0.0f};
    CHECK(std::fabs(kl_divergence(up, down) - 1.1504207652088827) <= 1e-9);
    CHECK(std::fabs(kl_divergence(up, down, 2.0f) - 0.3201566678298064) <= 1e-9);
    // Against the uniform distribution, in both directions (KL is not symmetric):
    // KL(p || u) = log 3 + E_p[i] - log Z, KL(u || p) = log Z - 2 - log 3, with Z = e + e^2 + e^3.
    CHECK(std::fabs(kl_divergence(up, flat) - 0.26621670682817156) <= 1e-9);
    CHECK(std::fabs(kl_divergence(flat, up) - 0.3089936757762701) <= 1e-9);
}

TEST_CASE("kl_divergence: gradient matches finite differences") {
    for (const std::size_t n : vocab_sizes) {
        for (const float t : temperatures) {
            INFO("vocab " << n << " T " << t);
            const auto teacher = test::gaussian_values(n, 400 + n, 2.0);
            const auto student = test::gaussian_values(n, 500 + n, 2.0);
            std::vector<float> grad(n);
            (void)kl_divergence(teacher, student, t, grad);
            const auto numerical =
                    numerical_gradient([&](const std::vector<float>& s) { return kl_divergence(teacher, s, t); }, student, 1e-3f * t);
            check_gradient(grad, numerical);
        }
    }
}

TEST_CASE("cross_entropy: value and gradient") {
    // -log softmax(1, 2, 3)[0] = log(1 + e + e^2); at T = 2, log(1 + sqrt(e) + e).
    const std::vector<float> up = {1.0f, 2.0f, 3.0f};
    CHECK(std::fabs(cross_entropy(up, 0) - std::log(1.0 + std::exp(1.0) + std::exp(2.0))) <= 1e-12);
    CHECK(std::fabs(cross_entropy(up, 0, 2.0f) - std::log(1.0 + std::exp(0.5) + std::exp(1.0))) <= 1e-12);
    CHECK(std::fabs(cross_entropy(up, 2) - std::log(1.0 + std::exp(-1.0) + std::exp(-2.0))) <= 1e-12);

    for (const std::size_t n : vocab_sizes) {
        for (const float t : temperatures) {
            INFO("vocab " << n << " T " << t);
            const auto logits = test::gaussian_values(n, 600 + n, 2.0);
            const auto target = static_cast<std::int32_t>(n / 3);
            std::vector<float> grad(n);
            (void)cross_entropy(logits, target, t, grad);
            const auto numerical =
                    numerical_gradient([&](const std::vector<float>& x) { return cross_entropy(x, target, t); }, logits, 1e-3f * t);
            check_gradient(grad, numerical);
            // The gradient of a softmax loss sums to 0.
            CHECK(std::fabs(std::accumulate(grad.begin(), grad.end(), 0.0)) <= 1e-6 / t);
        }
    }
}

TEST_CASE("distillation_loss: gradient matches finite differences") {
    for (const std::size_t n : vocab_sizes) {
        for (const float t : temperatures) {
            for (const float w : {0.3f, 0.5f, 1.0f, 0.0f}) {
                INFO("vocab " << n << " T " << t << " kl_weight " << w);
                const distillation_loss_config config{w, t};
                const auto teacher = test::gaussian_values(n, 700 + n, 2.0);
                const auto student = test::gaussian_values(n, 800 + n, 2.0);
                const auto target = static_cast<std::int32_t>(n - 1);
                std::vector<float> grad(n);
                (void)distillation_loss(teacher, student, target, config, grad);
                // The loss mixes scales T and 1; the smaller sets the step.
                const auto numerical =
                        numerical_gradient([&](const std::vector<float>& s) { return distillation_loss(teacher, s, target, config); },
                                           student, 1e-3f * std::min(t, 1.0f));
                check_gradient(grad, numerical);
            }
        }
    }
}

TEST_CASE("distillation_loss: kl_weight 1 is T^2 KL, 0 is the hard cross-entropy, between the mix") {
    const auto teacher = test::gaussian_values(33, 901, 2.0);
    const auto student = test::gaussian_values(33, 902, 2.0);
    const std::int32_t target = 5;
    for (const float t : temperatures) {
        INFO("T " << t);
        const double kl = kl_divergence(teacher, student, t);
        const double ce = cross_entropy(student, target);
        const double t2 = static_cast<double>(t) * static_cast<double>(t);
        CHECK(relative_difference(distillation_loss(teacher, student, target, {1.0f, t}), t2 * kl) <= 1e-12);
        CHECK(relative_difference(distillation_loss(teacher, student, target, {0.0f, t}), ce) <= 1e-12);
        CHECK(relative_difference(distillation_loss(teacher, student, target, {0.25f, t}), 0.25 * t2 * kl + 0.75 * ce) <= 1e-12);

        std::vector<float> g_distill(33), g_kl(33), g_ce(33);
        (void)distillation_loss(teacher, student, target, {1.0f, t}, g_distill);
        (void)kl_divergence(teacher, student, t, g_kl);
        for (std::size_t i = 0; i < 33; ++i) CHECK(std::fabs(g_distill[i] - t2 * g_kl[i]) <= 1e-6 * (std::fabs(t2 * g_kl[i]) + 1e-6));
        (void)distillation_loss(teacher, student, target, {0.0f, t}, g_distill);
        (void)cross_entropy(student, target, 1.0f, g_ce);
        for (std::size_t i = 0; i < 33; ++i) CHECK(std::fabs(g_distill[i] - g_ce[i]) <= 1e-6 * (std::fabs(g_ce[i]) + 1e-6));
    }
    // The default config is the documented one.
    const distillation_loss_config defaults;
    CHECK(defaults.kl_weight == 0.5f);
    CHECK(defaults.temperature == 3.0f);
}

TEST_CASE("losses stay finite at extreme logits") {
    const float huge = 1e30f;
    const std::vector<float> spread = {huge, -huge, 0.0f};
    const std::vector<float> rotated = {0.0f, huge, -huge};
    for (const float t : temperatures) {
        INFO("T " << t);
        std::vector<float> grad(3);
        // p is one-hot at 0 and q puts e^(-1e30/T) there: KL = 1e30 / T to double precision, gradient (q - p) / T.
        const double kl = kl_divergence(spread, rotated, t, grad);
        CHECK(std::isfinite(kl));
        CHECK(relative_difference(kl, 1e30 / t) <= 1e-6);
        CHECK(grad[0] == doctest::Approx(-1.0 / t));
        CHECK(grad[1] == doctest::Approx(1.0 / t));
        CHECK(grad[2] == 0.0f);
        CHECK(kl_divergence(spread, spread, t) == 0.0);

        const double ce = cross_entropy(spread, 1, t, grad);
        CHECK(relative_difference(ce, 2e30 / t) <= 1e-6);
        for (const float g : grad) CHECK(std::isfinite(g));

        const double d = distillation_loss(spread, rotated, 2, {0.5f, t}, grad);
        CHECK(std::isfinite(d));
        for (const float g : grad) CHECK(std::isfinite(g));
    }
    // All-equal huge logits are a uniform distribution, whatever their sign.
    const std::vector<float> high(5, huge), low(5, -huge);
    std::vector<float> grad(5, 1.0f);
    CHECK(kl_divergence(high, low, 1.0f, grad) == 0.0);
    for (const float g : grad) CHECK(g == 0.0f);
    CHECK(std::fabs(cross_entropy(high, 3) - std::log(5.0)) <= 1e-12);
    CHECK(std::fabs(cross_entropy(low, 0) - std::log(5.0)) <= 1e-12);
    // The widest finite inputs at a tiny temperature: (x - max) / T is about -7e68, still far from overflow.
    const float top = std::numeric_limits<float>::max();
    const std::vector<float> widest = {top, -top, 0.0f}, widest_rotated = {-top, 0.0f, top};
    CHECK(std::isfinite(kl_divergence(widest, widest_rotated, 1e-30f, std::span<float>(grad).first(3))));
    for (const float g : std::span<float>(grad).first(3)) CHECK(std::isfinite(g));
    CHECK(std::isfinite(cross_entropy(widest, 1, 1e-30f)));
    CHECK(std::isfinite(distillation_loss(widest, widest_rotated, 1, {0.5f, 1e-30f})));
    CHECK(std::isfinite(mean_kl_divergence(widest, widest_rotated, 3, 1e-30f)));
}

TEST_CASE("losses are invariant to a constant added to all logits of a row") {
    for (const std::size_t n : vocab_sizes) {
        const auto teacher = dyadic_logits(n, 1000 + n);
        const auto student = dyadic_logits(n, 2000 + n);
        for (const float shift : {1.0f, 1000.0f, -30000.0f}) {
            auto shifted_student = student, shifted_teacher = teacher;
            for (auto& x : shifted_student) x += shift;
            for (auto& x : shifted_teacher) x -= shift;
            for (const float t : temperatures) {
                INFO("vocab " << n << " shift " << shift << " T " << t);
                const double kl = kl_divergence(teacher, student, t);
                CHECK(relative_difference(kl_divergence(teacher, shifted_student, t), kl) <= 1e-9);
                CHECK(relative_difference(kl_divergence(shifted_teacher, student, t), kl) <= 1e-9);
                const double ce = cross_entropy(student, 0, t);
                CHECK(relative_difference(cross_entropy(shifted_student, 0, t), ce) <= 1e-9);
                const double d = distillation_loss(teacher, student, 1, {0.5f, t});
                CHECK(relative_difference(distillation_loss(shifted_teacher, shifted_student, 1, {0.5f, t}), d) <= 1e-9);
            }
        }
    }
}

TEST_CASE("kl_divergence at a high temperature tends to 0 as Var(t - s) / (2 T^2)") {
    const auto teacher = test::gaussian_values(7, 3001, 2.0);
    const auto student = test::gaussian_values(7, 3002, 2.0);
    double previous = std::numeric_limits<double>::infinity();
    for (const float t : {1.0f, 3.0f, 10.0f, 100.0f, 1000.0f}) {
        const double kl = kl_divergence(teacher, student, t);
        CHECK(kl < previous);
        previous = kl;
    }
    // Softening flattens both distributions towards uniform, where KL ~ Var_uniform(t - s) / (2 T^2).
    double mean = 0, variance = 0;
    for (std::size_t i = 0; i < 7; ++i) mean += (static_cast<double>(teacher[i]) - student[i]) / 7.0;
    for (std::size_t i = 0; i < 7; ++i) {
        const double d = static_cast<double>(teacher[i]) - student[i] - mean;
        variance += d * d / 7.0;
    }
    const float t = 1e4f;
    CHECK(relative_difference(static_cast<double>(t) * t * kl_divergence(teacher, student, t), variance / 2.0) <= 1e-3);
    CHECK(kl_divergence(teacher, student, 1e6f) <= 1e-10);
}

TEST_CASE("mean_kl_divergence: the mean of the rows, gradient divided by the row count") {
    const std::size_t vocab = 7, rows = 4;
    const auto teacher = test::gaussian_values(vocab * rows, 4001, 2.0);
    const auto student = test::gaussian_values(vocab * rows, 4002, 2.0);
    for (const float t : temperatures) {
        INFO("T " << t);
        std::vector<float> grad(vocab * rows);
        const double mean = mean_kl_divergence(teacher, student, vocab, t, grad);
        double sum = 0;
        for (std::size_t r = 0; r < rows; ++r) {
            const auto tr = std::span<const float>(teacher).subspan(r * vocab, vocab);
            const auto sr = std::span<const float>(student).subspan(r * vocab, vocab);
            std::vector<float> row_grad(vocab);
            sum += kl_divergence(tr, sr, t, row_grad);
            for (std::size_t i = 0; i < vocab; ++i)
                CHECK(std::fabs(grad[r * vocab + i] - row_grad[i] / rows) <= 1e-6 * (std::fabs(row_grad[i]) + 1e-6));
        }
        CHECK(relative_difference(mean, sum / rows) <= 1e-12);
        const auto numerical = numerical_gradient([&](const std::vector<float>& s) { return mean_kl_divergence(teacher, s, vocab, t); },
                                                  student, 1e-3f * t);
        check_gradient(grad, numerical);
    }
    // One row is kl_divergence itself.
    const auto first_t = std::span<const float>(teacher).first(vocab);
    const auto first_s = std::span<const float>(student).first(vocab);
    CHECK(mean_kl_divergence(first_t, first_s, vocab) == kl_divergence(first_t, first_s));
}

TEST_CASE("kl_divergence: every input check") {
    const std::vector<float> three = {0.5f, 1.0f, -2.0f}, four = {0.5f, 1.0f, -2.0f, 3.0f}, none;
    std::vector<float> grad2(2);
    CHECK_THROWS_WITH_AS(kl_divergence(three, four), doctest::Contains("3 teacher logits and 4 student logits"), shape_error);
    CHECK_THROWS_WITH_AS(kl_divergence(none, none), doctest::Contains("0 teacher logits and 0 student logits"), shape_error);
    CHECK_THROWS_WITH_AS(kl_divergence(three, three, 1.0f, grad2), doctest::Contains("gradient buffer has 2 values for 3 logits"),
                         shape_error);
    for (const float t : {0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
        CHECK_THROWS_WITH_AS(kl_divergence(three, three, t),
                             doctest::Contains(("temperature must be positive and finite, got " + std::string(std::isnan(t) ? "nan"
                                                                                                              : t == 0.0f   ? "0"
                                                                                                              : t < 0       ? "-1"
                                                                                                                            : "inf"))
                                                       .c_str()),
                             invalid_argument_error);
    }
    auto bad = three;
    bad[2] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(kl_divergence(bad, three), value_error);
    auto caught = caught_value_error([&] { kl_divergence(bad, three); });
    CHECK(caught.first == 2);
    CHECK(caught.second.find("teacher_logits[2] is NaN") != std::string::npos);
    bad = three;
    bad[1] = std::numeric_limits<float>::infinity();
    caught = caught_value_error([&] { kl_divergence(three, bad); });
    CHECK(caught.first == 1);
    CHECK(caught.second.find("student_logits[1] is +Inf") != std::string::npos);
    bad[1] = 1.0f;
    bad[0] = -std::numeric_limits<float>::infinity();
    caught = caught_value_error([&] { kl_divergence(three, bad); });
    CHECK(caught.first == 0);
    CHECK(caught.second.find("student_logits[0] is -Inf") != std::string::npos);
}

TEST_CASE("cross_entropy: every input check") {
    const std::vector<float> three = {0.5f, 1.0f, -2.0f}, none;
    std::vector<float> grad4(4);
    CHECK_THROWS_WITH_AS(cross_entropy(three, 3), doctest::Contains("target 3 is out of range for 3 logits"), invalid_argument_error);
    CHECK_THROWS_WITH_AS(cross_entropy(three, -1), doctest::Contains("target -1 is out of range for 3 logits"), invalid_argument_error);
    CHECK_THROWS_WITH_AS(cross_entropy(none, 0), doctest::Contains("no logits"), shape_error);
    CHECK_THROWS_WITH_AS(cross_entropy(three, 0, 1.0f, grad4), doctest::Contains("gradient buffer has 4 values for 3 logits"), shape_error);
    CHECK_THROWS_WITH_AS(cross_entropy(three, 0, -0.5f), doctest::Contains("temperature must be positive and finite, got -0.5"),
                         invalid_argument_error);
    auto bad = three;
    bad[1] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(cross_entropy(bad, 0), value_error);
    const auto caught = caught_value_error([&] { cross_entropy(bad, 0); });
    CHECK(caught.first == 1);
    CHECK(caught.second.find("logits[1] is NaN") != std::string::npos);
}

TEST_CASE("distillation_loss: every input check") {
    const std::vector<float> three = {0.5f, 1.0f, -2.0f}, two = {0.5f, 1.0f};
    std::vector<float> grad2(2);
    for (const float w : {-0.1f, 1.5f, std::numeric_limits<float>::quiet_NaN()}) {
        CHECK_THROWS_WITH_AS(distillation_loss(three, three, 0, {w, 1.0f}),
                             doctest::Contains(("kl_weight must be in [0, 1], got " + std::string(std::isnan(w) ? "nan"
                                                                                                  : w < 0       ? "-0.1"
                                                                                                                : "1.5"))
                                                       .c_str()),
                             invalid_argument_error);
    }
    CHECK_THROWS_WITH_AS(distillation_loss(three, three, 0, {0.5f, 0.0f}),
                         doctest::Contains("temperature must be positive and finite, got 0"), invalid_argument_error);
    CHECK_THROWS_WITH_AS(distillation_loss(three, two, 0, {}), doctest::Contains("3 teacher logits and 2 student logits"), shape_error);
    CHECK_THROWS_WITH_AS(distillation_loss(three, three, 7, {}), doctest::Contains("target 7 is out of range for 3 logits"),
                         invalid_argument_error);
    CHECK_THROWS_WITH_AS(distillation_loss(three, three, 0, {}, grad2), doctest::Contains("gradient buffer has 2 values for 3 logits"),
                         shape_error);
    // Checked even when the weight leaves the teacher out of the loss.
    auto bad = three;
    bad[2] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(distillation_loss(bad, three, 0, {0.0f, 1.0f}), value_error);
    auto caught = caught_value_error([&] { distillation_loss(bad, three, 0, {0.0f, 1.0f}); });
    CHECK(caught.first == 2);
    CHECK(caught.second.find("teacher[2] is +Inf") != std::string::npos);
    caught = caught_value_error([&] { distillation_loss(three, bad, 0, {}); });
    CHECK(caught.first == 2);
    CHECK(caught.second.find("student[2] is +Inf") != std::string::npos);
}

TEST_CASE("mean_kl_divergence: every input check") {
    const std::vector<float> ten(10, 0.0f), eight(8, 0.0f), none;
    std::vector<float> grad6(6);
    CHECK_THROWS_WITH_AS(mean_kl_divergence(ten, ten, 4), doctest::Contains("10 logits are not a multiple of vocab 4"), shape_error);
    CHECK_THROWS_WITH_AS(mean_kl_divergence(ten, ten, 0), doctest::Contains("vocab must be positive"), shape_error);
    CHECK_THROWS_WITH_AS(mean_kl_divergence(ten, eight, 2), doctest::Contains("10 teacher logits and 8 student logits"), shape_error);
    CHECK_THROWS_WITH_AS(mean_kl_divergence(none, none, 2), doctest::Contains("0 teacher logits"), shape_error);
    CHECK_THROWS_WITH_AS(mean_kl_divergence(eight, eight, 2, 1.0f, grad6), doctest::Contains("gradient buffer has 6 values for 8 logits"),
                         shape_error);
    CHECK_THROWS_WITH_AS(mean_kl_divergence(eight, eight, 2, std::numeric_limits<float>::infinity()),
                         doctest::Contains("temperature must be positive and finite, got inf"), invalid_argument_error);
    // The index counts from the start of the batch, not of the row.
    auto bad = eight;
    bad[6] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(mean_kl_divergence(eight, bad, 4), value_error);
    const auto caught = caught_value_error([&] { mean_kl_divergence(eight, bad, 4); });
    CHECK(caught.first == 6);
    CHECK(caught.second.find("student[6] is NaN") != std::string::npos);
}

// ------------------------------------------------------------------------- policy types, top-k, SIMD

namespace {

/// Logits drawn uniformly from [-spread, spread].
std::vector<float> uniform_logits(std::size_t n, std::uint64_t seed, double spread = 30.0) {
    test::rng r(seed);
    std::vector<float> v(n);
    for (auto& x : v) x = static_cast<float>(spread * (2.0 * r.uniform() - 1.0));
    return v;
}

/// softmax(x / T) in double, the probabilities the SIMD gradient bound is stated in.
std::vector<double> softmax(std::span<const float> x, double temperature) {
    const double max = *std::max_element(x.begin(), x.end());
    std::vector<double> p(x.size());
    double sum = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) sum += p[i] = std::exp((static_cast<double>(x[i]) - max) / temperature);
    for (auto& v : p) v /= sum;
    return p;
}

double logit_range(std::span<const float> x) {
    const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
    return static_cast<double>(*hi) - static_cast<double>(*lo);
}

/// The SIMD backend's stated bound on the loss: 1e-5 relative plus 1e-6 (1 + R / T), R the wider row's range.
void check_loss_bound(double simd, double reference, double range_over_t) {
    INFO("simd " << simd << ", reference " << reference);
    CHECK(simd >= 0.0);
    CHECK(std::fabs(simd - reference) <= 1e-5 * std::fabs(reference) + 1e-6 * (1.0 + range_over_t));
}

/// The stated bound per gradient element: (1e-5 (p + q) + 1e-9) |scale|, p and q the element's teacher and
/// student probabilities (p 0 outside a top-k teacher's indices).
void check_gradient_bound(std::span<const float> simd, std::span<const float> reference, std::span<const double> p,
                          std::span<const double> q, double scale) {
    REQUIRE(simd.size() == reference.size());
    std::size_t bad = 0;
    for (std::size_t i = 0; i < simd.size(); ++i) {
        const double bound = (1e-5 * (p[i] + q[i]) + 1e-9) * std::fabs(scale);
        if (!(std::fabs(static_cast<double>(simd[i]) - static_cast<double>(reference[i])) <= bound)) {
            if (++bad <= 3) {
                INFO("element " << i << ": simd " << simd[i] << ", reference " << reference[i] << ", p " << p[i] << ", q " << q[i]);
                CHECK(false);
            }
        }
    }
    CHECK(bad == 0);
}

/// Runs `f` with each linked SIMD instruction set in turn, then restores the one in use.
template <class F>
void on_every_simd_isa(F&& f) {
    const auto isas = test::simd_isas();
    const std::string_view before = dispatch::active().isa;
    for (const auto isa : isas) {
        CAPTURE(std::string(isa));
        dispatch::use_isa(isa);
        REQUIRE(static_cast<bool>(dispatch::active().loss.kl_sums));
        f();
    }
    dispatch::use_isa(before);
}

/// The dense teacher the top-k one is cut from, restricted to `indices` and renormalized, in double.
std::vector<double> restricted_teacher(std::span<const std::int32_t> indices, std::span<const float> logits, std::size_t vocab,
                                       double temperature) {
    const auto p_k = softmax(logits, temperature);
    std::vector<double> p(vocab, 0.0);
    for (std::size_t j = 0; j < indices.size(); ++j) p[static_cast<std::size_t>(indices[j])] = p_k[j];
    return p;
}

}  // namespace

TEST_CASE("kl_loss and distillation on backend::Scalar give the free functions' numbers, bit for bit") {
    const auto teacher = uniform_logits(3 * 97, 1, 8.0), student = uniform_logits(3 * 97, 2, 8.0);
    const std::span<const float> t0(teacher.data(), 97), s0(student.data(), 97);
    for (const float t : temperatures) {
        CAPTURE(t);
        const kl_loss<backend::Scalar> kl({t});
        std::vector<float> g_policy(97), g_free(97);
        CHECK(kl.forward(t0, s0) == kl_divergence(t0, s0, t));
        CHECK(kl.forward_backward(t0, s0, g_policy) == kl_divergence(t0, s0, t, g_free));
        CHECK(g_policy == g_free);
        std::vector<float> m_policy(teacher.size()), m_free(teacher.size());
        CHECK(kl.mean_forward(teacher, student, 97) == mean_kl_divergence(teacher, student, 97, t));
        CHECK(kl.mean_forward_backward(teacher, student, 97, m_policy) == mean_kl_divergence(teacher, student, 97, t, m_free));
        CHECK(m_policy == m_free);
        const distillation<backend::Scalar> mix({0.25f, t});
        CHECK(mix.forward(t0, s0, 5) == distillation_loss(t0, s0, 5, {0.25f, t}));
        CHECK(mix.forward_backward(t0, s0, 5, g_policy) == distillation_loss(t0, s0, 5, {0.25f, t}, g_free));
        CHECK(g_policy == g_free);
    }
}

TEST_CASE("top_k_of keeps each row's k largest logits, largest first, ties by the lower index") {
    const std::vector<float> dense = {1.0f, 5.0f, 3.0f, 5.0f, -1.0f, /* row 2 */ 0.0f, 0.0f, 2.0f, -3.0f, 7.0f};
    const top_k_logits top = top_k_of(dense, 5, 3);
    CHECK(top.k == 3);
    CHECK(top.indices == std::vector<std::int32_t>{1, 3, 2, 4, 2, 0});
    CHECK(top.logits == std::vector<float>{5.0f, 5.0f, 3.0f, 7.0f, 2.0f, 0.0f});
    CHECK(top.view().rows() == 2);
    CHECK(top.view().row(1).indices[0] == 4);
    CHECK_THROWS_WITH_AS((void)top_k_of(dense, 5, 6), doctest::Contains("k = 6 for a vocabulary of 5"), shape_error);
    CHECK_THROWS_WITH_AS((void)top_k_of(dense, 5, 0), doctest::Contains("k = 0"), shape_error);
    CHECK_THROWS_WITH_AS((void)top_k_of(dense, 4, 2), doctest::Contains("10 logits are not a non-zero multiple of vocab 4"), shape_error);
    CHECK_THROWS_AS((void)top_k_of(std::span<const float>{}, 4, 2), shape_error);
}

TEST_CASE("top-k teacher: the KL of the teacher restricted to its top k and renormalized, its gradient exact") {
    for (const std::size_t vocab : {5u, 64u, 700u}) {
        for (const float t : temperatures) {
            CAPTURE(vocab);
            CAPTURE(t);
            const auto dense = uniform_logits(vocab, vocab + 17, 6.0);
            const auto student = uniform_logits(vocab, vocab + 18, 6.0);
            const kl_loss<backend::Scalar> kl({t});
            // k = vocab is the dense KL (the sums run in another order, so to rounding).
            const top_k_logits all = top_k_of(dense, vocab, vocab);
            CHECK(relative_difference(kl.forward(all.view(), student), kl.forward(dense, student)) <= 1e-12);
            // Any k: the definition, in long double.
            const std::size_t k = std::min<std::size_t>(vocab, 4);
            const top_k_logits top = top_k_of(dense, vocab, k);
            const auto p = restricted_teacher(top.indices, top.logits, vocab, t);
            const auto q = softmax(student, t);
            long double expected = 0;
            for (std::size_t i = 0; i < vocab; ++i) {
                if (p[i] > 0)
                    expected += static_cast<long double>(p[i]) *
                                (std::log(static_cast<long double>(p[i])) - std::log(static_cast<long double>(q[i])));
            }
            std::vector<float> grad(vocab);
            const double loss = kl.forward_backward(top.view(), student, grad);
            CHECK(relative_difference(loss, static_cast<double>(expected)) <= 1e-9);
            // The gradient is (q - p) / T, and agrees with finite differences.
            for (std::size_t i = 0; i < vocab; ++i) CHECK(std::fabs(grad[i] - (q[i] - p[i]) / t) <= 1e-6 * (q[i] + p[i]) / t + 1e-12);
            if (vocab <= 64) {
                const auto numerical =
                        numerical_gradient([&](const std::vector<float>& s) { return kl.forward(top.view(), s); }, student, 1e-3f * t);
                check_gradient(grad, numerical);
            }
        }
    }
}

TEST_CASE("top-k teacher: the indices' order does not matter, rows are independent, the mean divides the gradient") {
    const std::size_t vocab = 50, k = 8;
    const auto dense = uniform_logits(2 * vocab, 5, 5.0), student = uniform_logits(2 * vocab, 6, 5.0);
    top_k_logits top = top_k_of(dense, vocab, k);
    const kl_loss<backend::Scalar> kl({2.0f});
    std::vector<float> grad(2 * vocab), row_grad(vocab);
    const double mean = kl.mean_forward_backward(top.view(), student, vocab, grad);
    double sum = 0.0;
    for (std::size_t r = 0; r < 2; ++r) {
        const std::span<const float> s(student.data() + r * vocab, vocab);
        sum += kl.forward_backward(top.view().row(r), s, row_grad);
        for (std::size_t i = 0; i < vocab; ++i) CHECK(grad[r * vocab + i] == doctest::Approx(row_grad[i] / 2.0f).epsilon(1e-6));
    }
    CHECK(relative_difference(mean, sum / 2.0) <= 1e-15);
    // Reversing a row's entries gives the same loss to rounding.
    std::reverse(top.indices.begin(), top.indices.begin() + static_cast<std::ptrdiff_t>(k));
    std::reverse(top.logits.begin(), top.logits.begin() + static_cast<std::ptrdiff_t>(k));
    CHECK(relative_difference(kl.mean_forward(top.view(), student, vocab), mean) <= 1e-12);
}

TEST_CASE("kl_loss<Simd> agrees with the double reference within the stated bound, on every instruction set") {
    on_every_simd_isa([] {
        for (const std::size_t vocab : {1u, 2u, 7u, 16u, 17u, 100u, 1000u, 32000u}) {
            for (const float t : {0.5f, 1.0f, 2.0f, 4.0f}) {
                CAPTURE(vocab);
                CAPTURE(t);
                const auto teacher = uniform_logits(vocab, vocab * 7 + 1), student = uniform_logits(vocab, vocab * 7 + 2);
                const double range_over_t = std::max(logit_range(teacher), logit_range(student)) / t;
                const kl_loss<backend::Scalar> reference({t});
                const kl_loss<backend::Simd> simd({t});
                std::vector<float> g_ref(vocab), g_simd(vocab);
                const double r = reference.forward_backward(teacher, student, g_ref);
                check_loss_bound(simd.forward_backward(teacher, student, g_simd), r, range_over_t);
                check_loss_bound(simd.forward(teacher, student), r, range_over_t);
                check_gradient_bound(g_simd, g_ref, softmax(teacher, t), softmax(student, t), 1.0 / t);

                // Top-64 (or the whole vocabulary when smaller) of the same teacher.
                const top_k_logits top = top_k_of(teacher, vocab, std::min<std::size_t>(vocab, 64));
                const double rk = reference.forward_backward(top.view(), student, g_ref);
                check_loss_bound(simd.forward_backward(top.view(), student, g_simd), rk, range_over_t);
                check_gradient_bound(g_simd, g_ref, restricted_teacher(top.indices, top.logits, vocab, t), softmax(student, t), 1.0 / t);

                // The distillation mix, every kind of weight.
                for (const float w : {0.0f, 0.5f, 1.0f}) {
                    CAPTURE(w);
                    const auto target = static_cast<std::int32_t>(vocab / 2);
                    const distillation<backend::Scalar> mix_ref({w, t});
                    const distillation<backend::Simd> mix_simd({w, t});
                    const double d = mix_ref.forward_backward(teacher, student, target, g_ref);
                    const double ds = mix_simd.forward_backward(teacher, student, target, g_simd);
                    // Both terms carry the loss bound, the soft one times T^2.
                    CHECK(std::fabs(ds - d) <= 1e-5 * std::fabs(d) + 1e-6 * (1.0 + range_over_t) * (t * t + 1.0));
                    const auto p = softmax(teacher, t), q = softmax(student, t), q1 = softmax(student, 1.0);
                    std::vector<double> p_w(vocab), q_w(vocab);
                    for (std::size_t i = 0; i < vocab; ++i) {
                        p_w[i] = w * t * p[i];
                        q_w[i] = w * t * q[i] + (1.0 - w) * (q1[i] + (i == static_cast<std::size_t>(target) ? 1.0 : 0.0));
                    }
                    check_gradient_bound(g_simd, g_ref, p_w, q_w, 1.0);
                }
            }
        }
    });
}

TEST_CASE("kl_loss<Simd>: batches of rows, one-element rows, peaked and identical teachers") {
    on_every_simd_isa([] {
        const kl_loss<backend::Scalar> reference({1.5f});
        const kl_loss<backend::Simd> simd({1.5f});
        // A batch of rows: the mean, each row's gradient divided by the row count.
        const std::size_t vocab = 333, rows = 4;
        const auto teacher = uniform_logits(vocab * rows, 11), student = uniform_logits(vocab * rows, 12);
        std::vector<float> g_ref(vocab * rows), g_simd(vocab * rows);
        const double r = reference.mean_forward_backward(teacher, student, vocab, g_ref);
        check_loss_bound(simd.mean_forward_backward(teacher, student, vocab, g_simd), r, 60.0 / 1.5);
        check_loss_bound(simd.mean_forward(teacher, student, vocab), r, 60.0 / 1.5);
        for (std::size_t row = 0; row < rows; ++row) {
            const std::span<const float> tr(teacher.data() + row * vocab, vocab), sr(student.data() + row * vocab, vocab);
            check_gradient_bound(std::span<const float>(g_simd).subspan(row * vocab, vocab),
                                 std::span<const float>(g_ref).subspan(row * vocab, vocab), softmax(tr, 1.5), softmax(sr, 1.5),
                                 1.0 / 1.5 / static_cast<double>(rows));
        }
        const top_k_logits top = top_k_of(teacher, vocab, 64);
        const double rk = reference.mean_forward_backward(top.view(), student, vocab, g_ref);
        check_loss_bound(simd.mean_forward_backward(top.view(), student, vocab, g_simd), rk, 60.0 / 1.5);
        check_loss_bound(simd.mean_forward(top.view(), student, vocab), rk, 60.0 / 1.5);

        // One-element vocabulary: both distributions are 1, the loss and gradient 0.
        const std::vector<float> one_t = {3.0f}, one_s = {-7.0f};
        std::vector<float> g1(1, 1.0f);
        CHECK(simd.forward_backward(one_t, one_s, g1) == 0.0);
        CHECK(g1[0] == 0.0f);
        const std::vector<std::int32_t> zero = {0};
        CHECK(simd.forward_backward(top_k_teacher{zero, one_t, 1}, one_s, g1) == 0.0);
        CHECK(g1[0] == 0.0f);

        // Identical rows: exactly 0 and a zero gradient (the same lanes compute both sides), never negative.
        for (const std::size_t n : {5u, 16u, 1000u, 32000u}) {
            const auto x = uniform_logits(n, n);
            std::vector<float> g(n, 1.0f);
            for (const float t : {0.5f, 1.0f, 4.0f}) {
                CHECK(kl_loss<backend::Simd>({t}).forward_backward(x, x, g) == 0.0);
                CHECK(std::all_of(g.begin(), g.end(), [](float v) { return v == 0.0f; }));
            }
            // Nearly identical: tiny, not negative, within the bound.
            auto y = x;
            y[n / 2] += 1e-3f;
            check_loss_bound(simd.forward(x, y), reference.forward(x, y), logit_range(x) / 1.5);
        }

        // A very peaked teacher: one logit 30, the rest -30, at T = 0.5 (exp arguments down to -120).
        std::vector<float> peaked(4096, -30.0f);
        peaked[1234] = 30.0f;
        const auto s = uniform_logits(4096, 99);
        const kl_loss<backend::Scalar> cold_ref({0.5f});
        const kl_loss<backend::Simd> cold({0.5f});
        std::vector<float> gp_ref(4096), gp(4096);
        const double rp = cold_ref.forward_backward(peaked, s, gp_ref);
        check_loss_bound(cold.forward_backward(peaked, s, gp), rp, 120.0);
        check_gradient_bound(gp, gp_ref, softmax(peaked, 0.5), softmax(s, 0.5), 2.0);
    });
}

TEST_CASE("kl_loss<Simd> runs the reference where float lanes could overflow, or where no kernel is linked") {
    // Logits near +-FLT_MAX: the range over T does not fit a float, so the row runs in double, bit for bit.
    const float big = std::numeric_limits<float>::max();
    const std::vector<float> wide_t = {big, -big, 0.0f, big / 2}, wide_s = {-big, big, 1.0f, 0.0f};
    on_every_simd_isa([&] {
        std::vector<float> g_ref(4), g_simd(4);
        const double r = kl_loss<backend::Scalar>({1.0f}).forward_backward(wide_t, wide_s, g_ref);
        CHECK(std::isfinite(r));
        CHECK(kl_loss<backend::Simd>({1.0f}).forward_backward(wide_t, wide_s, g_simd) == r);
        CHECK(g_simd == g_ref);
        const std::vector<std::int32_t> top_indices = {0, 3};
        const std::vector<float> top_logits = {big, big / 2};
        const top_k_teacher top{top_indices, top_logits, 2};
        CHECK(kl_loss<backend::Simd>({1.0f}).forward_backward(top, wide_s, g_simd) ==
              kl_loss<backend::Scalar>({1.0f}).forward_backward(top, wide_s, g_ref));
        CHECK(g_simd == g_ref);
        CHECK(distillation<backend::Simd>({0.5f, 4.0f}).forward_backward(wide_t, wide_s, 1, g_simd) ==
              distillation<backend::Scalar>({0.5f, 4.0f}).forward_backward(wide_t, wide_s, 1, g_ref));
        CHECK(g_simd == g_ref);
        // A tiny temperature: 1 / T overflows a float.
        const auto t = uniform_logits(40, 1, 1.0), s = uniform_logits(40, 2, 1.0);
        CHECK(kl_loss<backend::Simd>({1e-39f}).forward(t, s) == kl_loss<backend::Scalar>({1e-39f}).forward(t, s));
        CHECK(distillation<backend::Simd>({0.5f, 1e-39f}).forward(t, s, 3) ==
              distillation<backend::Scalar>({0.5f, 1e-39f}).forward(t, s, 3));
    });
    // The scalar table has no loss kernels: Simd is then Scalar, bit for bit.
    const std::string_view before = dispatch::use_isa(dispatch::scalar_isa);
    const auto t = uniform_logits(300, 3), s = uniform_logits(300, 4);
    std::vector<float> g_ref(300), g_simd(300);
    CHECK(kl_loss<backend::Simd>({2.0f}).forward_backward(t, s, g_simd) == kl_loss<backend::Scalar>({2.0f}).forward_backward(t, s, g_ref));
    CHECK(g_simd == g_ref);
    dispatch::use_isa(before);
}

TEST_CASE_TEMPLATE("kl_loss and distillation: every input check", B, backend::Scalar, backend::Simd) {
    const std::vector<float> three = {0.5f, 1.0f, -2.0f}, four = {0.5f, 1.0f, -2.0f, 3.0f}, none;
    std::vector<float> grad2(2), grad3(3), no_grad;
    for (const float t : {0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
        CHECK_THROWS_WITH_AS(kl_loss<B>({t}), doctest::Contains("kl_loss: temperature must be positive and finite"),
                             invalid_argument_error);
        CHECK_THROWS_WITH_AS(distillation<B>({0.5f, t}), doctest::Contains("temperature must be positive and finite"),
                             invalid_argument_error);
    }
    CHECK_THROWS_WITH_AS(distillation<B>({1.5f, 1.0f}), doctest::Contains("kl_weight must be in [0, 1], got 1.5"), invalid_argument_error);
    const kl_loss<B> kl;
    CHECK_THROWS_WITH_AS((void)kl.forward(three, four), doctest::Contains("3 teacher logits and 4 student logits"), shape_error);
    CHECK_THROWS_WITH_AS((void)kl.forward(none, none), doctest::Contains("0 teacher logits and 0 student logits"), shape_error);
    CHECK_THROWS_WITH_AS(kl.forward_backward(three, three, grad2), doctest::Contains("gradient buffer has 2 values for 3 logits"),
                         shape_error);
    CHECK_THROWS_WITH_AS(kl.forward_backward(three, three, no_grad), doctest::Contains("gradient buffer has 0 values for 3 logits"),
                         shape_error);
    CHECK_THROWS_WITH_AS((void)kl.mean_forward(four, four, 3), doctest::Contains("4 logits are not a multiple of vocab 3"), shape_error);
    CHECK_THROWS_WITH_AS((void)kl.mean_forward(four, four, 0), doctest::Contains("vocab must be positive"), shape_error);
    auto bad = four;
    bad[3] = std::numeric_limits<float>::quiet_NaN();
    auto caught = caught_value_error([&] { (void)kl.mean_forward(four, bad, 2); });
    CHECK(caught.first == 3);
    CHECK(caught.second.find("student[3] is NaN") != std::string::npos);

    const distillation<B> mix;
    CHECK_THROWS_WITH_AS((void)mix.forward(three, three, 3), doctest::Contains("target 3 is out of range for 3 logits"),
                         invalid_argument_error);
    CHECK_THROWS_WITH_AS(mix.forward_backward(three, three, 0, no_grad), doctest::Contains("gradient buffer has 0 values for 3 logits"),
                         shape_error);
    caught = caught_value_error([&] { (void)mix.forward(bad, four, 0); });
    CHECK(caught.first == 3);
    CHECK(caught.second.find("teacher[3] is NaN") != std::string::npos);

    // Top-k teachers.
    const std::vector<std::int32_t> idx2 = {2, 0}, dup = {1, 1}, out_of_range = {0, 3}, negative = {-1, 0}, idx4 = {0, 1, 2, 0};
    const std::vector<float> val2 = {1.0f, 0.5f}, val3 = {1.0f, 0.5f, 0.0f}, val4 = {1.0f, 0.5f, 2.0f, 0.0f};
    CHECK(kl.forward(top_k_teacher{idx2, val2, 2}, three) >= 0.0);
    CHECK_THROWS_WITH_AS((void)kl.forward(top_k_teacher{idx4, val4, 4}, three), doctest::Contains("k = 4 for a vocabulary of 3"),
                         shape_error);
    CHECK_THROWS_WITH_AS((void)kl.forward(top_k_teacher{idx2, val2, 0}, three), doctest::Contains("k = 0"), shape_error);
    CHECK_THROWS_WITH_AS((void)kl.forward(top_k_teacher{idx2, val3, 2}, three), doctest::Contains("2 indices and 3 logits"), shape_error);
    CHECK_THROWS_WITH_AS((void)kl.forward(top_k_teacher{idx2, val2, 1}, three), doctest::Contains("for 1 rows of k = 1"), shape_error);
    caught = caught_value_error([&] { (void)kl.forward(top_k_teacher{dup, val2, 2}, three); });
    CHECK(caught.first == 1);
    CHECK(caught.second.find("index 1 appears twice in row 0") != std::string::npos);
    caught = caught_value_error([&] { (void)kl.forward(top_k_teacher{out_of_range, val2, 2}, three); });
    CHECK(caught.first == 1);
    CHECK(caught.second.find("index 3 is outside the vocabulary of 3") != std::string::npos);
    caught = caught_value_error([&] { (void)kl.forward(top_k_teacher{negative, val2, 2}, three); });
    CHECK(caught.first == 0);
    // A duplicate in the second row is reported with its index in the whole batch; the first row's entries
    // do not count against the second's.
    const std::vector<std::int32_t> batch_idx = {0, 1, 1, 2};
    const std::vector<float> batch_val(6, 0.0f), student6(6, 0.0f);
    const std::vector<std::int32_t> batch_dup = {0, 1, 2, 2};
    const std::span<const float> batch_logits = std::span<const float>(batch_val).first(4);
    CHECK(kl.mean_forward(top_k_teacher{batch_idx, batch_logits, 2}, student6, 3) >= 0.0);
    caught = caught_value_error([&] { (void)kl.mean_forward(top_k_teacher{batch_dup, batch_logits, 2}, student6, 3); });
    CHECK(caught.first == 3);
    CHECK_THROWS_WITH_AS((void)kl.mean_forward(top_k_teacher{batch_idx, batch_logits, 2}, student6, 4),
                         doctest::Contains("6 logits are not a multiple of vocab 4"), shape_error);
    auto bad_val = val2;
    bad_val[1] = -std::numeric_limits<float>::infinity();
    caught = caught_value_error([&] { (void)kl.forward(top_k_teacher{idx2, bad_val, 2}, three); });
    CHECK(caught.first == 1);
    CHECK(caught.second.find("teacher[1] is -Inf") != std::string::npos);
    CHECK_THROWS_WITH_AS(kl.forward_backward(top_k_teacher{idx2, val2, 2}, three, grad2), doctest::Contains("gradient buffer has 2 values"),
                         shape_error);
    CHECK_THROWS_WITH_AS((void)kl.forward(top_k_teacher{idx2, val2, 2}, none), doctest::Contains("no student logits"), shape_error);
}
