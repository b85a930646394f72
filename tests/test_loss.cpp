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
#include <utility>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/loss/kl_divergence.hpp"
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
