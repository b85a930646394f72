// The exact transforms (model/rotate.hpp, model/smooth.hpp): orthogonal matrices, norm folding, residual and
// value-head rotations, channel smoothing.
// The function is unchanged in exact arithmetic, shown on double copies of the weights through a double
// forward written here from the definition; in float the runtime's logits stay within a derived bound.

#include <doctest/doctest.h>

#include <cogqat/core/error.hpp>
#include <cogqat/core/random.hpp>
#include <cogqat/model/llama_model.hpp>
#include <cogqat/model/orthogonal.hpp>
#include <cogqat/model/rotate.hpp>
#include <cogqat/model/smooth.hpp>
#include <cogqat/model/synthetic.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "exact_forward.hpp"

using namespace cogqat;

TEST_CASE("orthogonal matrices: randomized Hadamard where the width has a power-of-two factor, else random") {
    for (const std::size_t n : {1u, 2u, 7u, 18u, 48u, 64u}) {
        const auto h = randomized_hadamard(n, 3);
        CHECK(h.n == n);
        CHECK(h.orthogonality_error() < 1e-13);
        CHECK(random_orthogonal(n, 4).orthogonality_error() < 1e-13);
    }
    const auto h = randomized_hadamard(64, 9);
    CHECK(h.kind == "hadamard 64");
    for (double v : h.values) CHECK(std::fabs(std::fabs(v) - 0.125) < 1e-15);  // every channel spread evenly
    CHECK(randomized_hadamard(48, 9).kind == "hadamard 16 x random 3");
    CHECK(randomized_hadamard(7, 9).kind == "random 7");
    CHECK(randomized_hadamard(64, 9).values == h.values);  // seeded
    CHECK(randomized_hadamard(64, 10).values != h.values);
    CHECK_THROWS_AS((void)randomized_hadamard(0, 1), invalid_argument_error);
    CHECK_THROWS_AS((void)random_orthogonal(0, 1), invalid_argument_error);
}

TEST_CASE("fold_norms and the rotations leave the logits unchanged in double") {
    struct shape {
        llama_config config;
        const char* kind;
    };
    // Widths 64 (pure Hadamard), 48 (Hadamard 16 x random 3) and 18 (2 x random 9); grouped-query attention.
    const shape shapes[] = {{{64, 96, 2, 8, 4, 40, 16}, "hadamard 64"},
                            {{48, 64, 2, 4, 2, 40, 16}, "hadamard 16 x random 3"},
                            {{18, 20, 1, 3, 1, 40, 16}, "hadamard 2 x random 9"}};
    for (const auto& s : shapes) {
        for (const bool tied : {false, true}) {
            CAPTURE(s.kind);
            CAPTURE(tied);
            auto w = test::with_random_norms(make_synthetic_llama(5, s.config), 6, tied);
            auto exact = test::to_double(w);
            const std::vector<std::int32_t> tokens{1, 7, 3, 39, 12, 0, 25, 8};
            const auto before = test::exact_logits(exact, tokens);

            const auto folding = fold_norms(exact);
            CHECK(folding.untied == tied);
            CHECK(folding.norms == 2 * s.config.n_layers + 1);
            CHECK(test::max_difference(test::exact_logits(exact, tokens), before) < 1e-12 * test::max_magnitude(before));

            auto heads_only = test::to_double(w);  // the value heads alone need neither folded norms nor an untied classifier
            rotation_options o;
            o.residual = false;
            const auto heads = rotate_model(heads_only, o);
            CHECK(heads.residual.empty());
            CHECK(heads.folding.norms == 0);
            CHECK(test::max_difference(test::exact_logits(heads_only, tokens), before) < 1e-12 * test::max_magnitude(before));

            const auto summary = rotate_model(exact, {});  // folds again (nothing left to fold) and rotates
            CHECK(summary.residual == s.kind);
            CHECK(summary.folding.norms == 2 * s.config.n_layers + 1);
            CHECK(test::max_difference(test::exact_logits(exact, tokens), before) < 1e-12 * test::max_magnitude(before));
        }
    }
}

TEST_CASE("the rotated model in float: the runtime's logits within the derived bound") {
    const llama_config c{64, 96, 2, 8, 4, 40, 32};
    auto w = test::with_random_norms(make_synthetic_llama(11, c), 12, false);
    const std::vector<std::int32_t> tokens{1, 4, 9, 16, 25, 36, 7, 2, 30, 11, 5, 38, 22, 17, 3, 1};
    const auto exact = test::exact_logits(test::to_double(w), tokens);
    auto rotated = w;
    rotate_model(rotated, {});
    auto run = [&](const llama_weights& weights) {
        const auto model = llama_model::from_weights(weights);
        llama_session session(model, tokens.size(), activation_mode::float32);
        const auto logits = session.forward_batch(tokens, 0, true);
        return std::vector<double>(logits.begin(), logits.end());
    };
    const auto original = run(w), turned = run(rotated);
    // The bound (docs/datafree.md, "Rotations"): every product of the forward rounds its result; the rotated
    // model's weights are also rounded once to float, which adds at most u = 2^-24 relative per weight, the
    // same order as one product's own rounding. So the rotated float model is no further from the exact
    // function than the original float model plus as much again: |rotated - original| <= 3 * |original -
    // exact|, with a floor of 8 u * max |logit| for the case where the original happens to round exactly.
    const double original_error = test::max_difference(original, exact);
    const double bound = 3.0 * original_error + 8.0 * 0x1p-24 * test::max_magnitude(exact);
    MESSAGE("float: original vs exact " << original_error << ", rotated vs original " << test::max_difference(turned, original)
                                        << ", bound " << bound);
    CHECK(test::max_difference(turned, original) <= bound);
    CHECK(test::max_difference(turned, exact) <= bound);
}

TEST_CASE("the rotations refuse bad input") {
    const llama_config c{64, 96, 1, 8, 4, 40, 16};
    auto w = test::with_random_norms(make_synthetic_llama(5, c), 6, false);
    SUBCASE("norms not folded") { CHECK_THROWS_AS(rotate_residual(w, randomized_hadamard(64, 1)), value_error); }
    SUBCASE("a rotation of the wrong size") {
        fold_norms(w);
        CHECK_THROWS_AS(rotate_residual(w, randomized_hadamard(32, 1)), shape_error);
        CHECK_THROWS_AS(rotate_value_heads(w, 0, randomized_hadamard(4, 1)), shape_error);
    }
    SUBCASE("a layer past the last") { CHECK_THROWS_AS(rotate_value_heads(w, 1, randomized_hadamard(8, 1)), invalid_argument_error); }
    SUBCASE("a missing or misshapen tensor") {
        auto missing = w;
        std::erase_if(missing.tensors, [](const float_tensor& t) { return t.name == "blk.0.ffn_up.weight"; });
        CHECK_THROWS_AS(fold_norms(missing), format_error);
        auto misshapen = w;
        for (auto& t : misshapen.tensors)
            if (t.name == "blk.0.attn_v.weight") t.shape = {64, 16}, t.values.resize(64 * 16);
        CHECK_THROWS_AS(rotate_model(misshapen), format_error);
    }
    SUBCASE("a non-finite weight") {
        auto bad = w;
        for (auto& t : bad.tensors)
            if (t.name == "blk.0.attn_norm.weight") t.values[3] = std::numeric_limits<float>::quiet_NaN();
        try {
            fold_norms(bad);
            FAIL("no error");
        } catch (const value_error& e) {
            CHECK(e.index() == 3);
        }
        fold_norms(w);
        for (auto& t : w.tensors)
            if (t.name == "blk.0.ffn_down.weight") t.values[5] = std::numeric_limits<float>::infinity();
        CHECK_THROWS_AS(rotate_residual(w, randomized_hadamard(64, 1)), value_error);
    }
}

TEST_CASE("channel smoothing after a norm and through SwiGLU leaves the logits unchanged in double, alone and after rotation") {
    const llama_config c{64, 96, 2, 8, 4, 40, 16};
    for (const bool rotate_first : {false, true}) {
        CAPTURE(rotate_first);
        auto exact = test::to_double(test::with_random_norms(make_synthetic_llama(21, c), 22, false));
        const std::vector<std::int32_t> tokens{1, 5, 17, 33, 2, 9, 14};
        const auto before = test::exact_logits(exact, tokens);
        if (rotate_first) rotate_model(exact, {});
        xoshiro256 rng(23);
        auto scales = [&](std::size_t n) {
            std::vector<double> s(n);
            for (auto& v : s) v = std::exp(rng.gaussian());
            return s;
        };
        for (std::size_t layer = 0; layer < c.n_layers; ++layer) {
            smooth_norm(exact, llama_parameter::attn_norm, layer, scales(c.dim));
            smooth_norm(exact, llama_parameter::ffn_norm, layer, scales(c.dim));
            smooth_feed_forward(exact, layer, scales(c.hidden_dim));
        }
        smooth_norm(exact, llama_parameter::output_norm, no_layer, scales(c.dim));
        CHECK(test::max_difference(test::exact_logits(exact, tokens), before) < 1e-12 * test::max_magnitude(before));
    }
}

TEST_CASE("smoothing scales follow the inputs' mean squares, and the choice never predicts more error than none") {
    const std::vector<double> m{4.0, 1.0, 0.25, 1.0};
    const auto s = smoothing_scales(m, 1.0);
    CHECK(s[0] / s[1] == doctest::Approx(2.0));
    CHECK(s[0] * s[1] * s[2] * s[3] == doctest::Approx(1.0));
    CHECK(smoothing_scales(m, 0.0) == std::vector<double>(4, 1.0));
    CHECK_THROWS_AS((void)smoothing_scales(std::vector<double>{1.0, -1.0}, 0.5), value_error);

    // Inputs with a few large channels (as transformers have): smoothing moves range to those columns.
    const std::size_t cols = 64, rows = 32;
    xoshiro256 rng(31);
    std::vector<float> weights(rows * cols);
    for (auto& v : weights) v = static_cast<float>(0.05 * rng.gaussian());
    std::vector<double> h(cols * cols, 0.0);
    for (std::size_t j = 0; j < cols; ++j) h[j * cols + j] = j % 16 == 3 ? 400.0 : 1.0;
    const std::span<const float> reader(weights);
    const double alphas[] = {0.25, 0.5, 0.75, 1.0};
    const auto choice = choose_smoothing(std::span(&reader, 1), cols, h, ggml_type::q4_0, alphas);
    MESSAGE("q4_0 output error " << choice.error_before << " -> " << choice.error_after << " at alpha " << choice.alpha);
    CHECK(choice.alpha > 0.0);
    CHECK(choice.error_after < 0.5 * choice.error_before);
    CHECK(choice.scales[3] > choice.scales[4]);
    CHECK_THROWS_AS((void)choose_smoothing(std::span(&reader, 1), 48, std::vector<double>(48 * 48), ggml_type::q4_0, alphas),
                    invalid_argument_error);
    CHECK_THROWS_AS((void)choose_smoothing(std::span(&reader, 1), cols, std::vector<double>(10), ggml_type::q4_0, alphas), shape_error);
}

TEST_CASE("channel smoothing refuses bad input") {
    const llama_config c{64, 96, 1, 8, 4, 40, 16};
    auto w = make_synthetic_llama(5, c);
    std::vector<double> s(c.dim, 1.5);
    CHECK_THROWS_AS(smooth_norm(w, llama_parameter::attn_norm, 0, std::vector<double>(63, 1.0)), shape_error);
    CHECK_THROWS_AS(smooth_feed_forward(w, 0, s), shape_error);
    CHECK_THROWS_AS(smooth_norm(w, llama_parameter::wq, 0, s), invalid_argument_error);
    CHECK_THROWS_AS(smooth_norm(w, llama_parameter::attn_norm, 1, s), invalid_argument_error);
    CHECK_THROWS_AS(smooth_feed_forward(w, 1, std::vector<double>(c.hidden_dim, 1.0)), invalid_argument_error);
    for (const double bad : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
        s[7] = bad;
        try {
            smooth_norm(w, llama_parameter::ffn_norm, 0, s);
            FAIL("no error");
        } catch (const value_error& e) {
            CHECK(e.index() == 7);
        }
    }
    auto tied = test::with_random_norms(w, 1, true);
    CHECK_THROWS_AS(smooth_norm(tied, llama_parameter::output_norm, no_layer, std::vector<double>(c.dim, 1.0)), invalid_argument_error);
}
