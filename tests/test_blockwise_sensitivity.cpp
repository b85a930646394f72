// Block-wise sensitivity (qat/blockwise_sensitivity.hpp) and the rank correlation it is judged by
// (core/rank_correlation.hpp): the error measures against their definitions, the fitted KL scale, bad input,
// and on a generated model the block-wise costs ranked as the exact ones are.

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "cogqat/calib/calibration_set.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/random.hpp"
#include "cogqat/core/rank_correlation.hpp"
#include "cogqat/io/gguf.hpp"
#include "cogqat/io/llama_gguf.hpp"
#include "cogqat/model/llama_model.hpp"
#include "cogqat/model/synthetic.hpp"
#include "cogqat/qat/auto_quantize.hpp"
#include "cogqat/qat/blockwise_sensitivity.hpp"
#include "sanitizer.hpp"
#include "scratch_dir.hpp"

using namespace cogqat;

TEST_CASE("spearman_rank_correlation: orders, ties, and bad input") {
    const std::vector<double> x{1, 2, 3, 4, 5};
    CHECK(spearman_rank_correlation(x, std::vector<double>{10, 20, 30, 40, 1000}) == doctest::Approx(1.0));
    CHECK(spearman_rank_correlation(x, std::vector<double>{5, 4, 3, 2, 1}) == doctest::Approx(-1.0));
    // One swap of neighbours in five: 1 - 6 * 2 / (5 * 24) = 0.9 (no ties).
    CHECK(spearman_rank_correlation(x, std::vector<double>{1, 3, 2, 4, 5}) == doctest::Approx(0.9));
    // Ties share their mean rank: y's ranks are 1.5, 1.5, 3, 4.
    CHECK(fractional_ranks(std::vector<double>{7, 7, 8, 9}) == std::vector<double>{1.5, 1.5, 3, 4});
    const double tied = spearman_rank_correlation(std::vector<double>{1, 2, 3, 4}, std::vector<double>{7, 7, 8, 9});
    CHECK(tied == doctest::Approx(4.5 / std::sqrt(5.0 * 4.5)));  // ranks centred on 2.5: Σdxdy 4.5, Σdx² 5, Σdy² 4.5

    CHECK_THROWS_AS(static_cast<void>(spearman_rank_correlation(x, std::vector<double>{1, 2})), shape_error);
    CHECK_THROWS_AS(static_cast<void>(spearman_rank_correlation(std::vector<double>{1}, std::vector<double>{1})), invalid_argument_error);
    CHECK_THROWS_AS(static_cast<void>(spearman_rank_correlation(x, std::vector<double>(5, 2.0))), invalid_argument_error);
    try {
        static_cast<void>(spearman_rank_correlation(x, std::vector<double>{1, 2, std::nan(""), 4, 5}));
        FAIL("a NaN was accepted");
    } catch (const value_error& e) {
        CHECK(e.index() == 2);
    }
}

TEST_CASE("hessian_weighted_error is the summed squared output error over the inputs; lookup_weighted_error per looked-up row") {
    // W is 3 x 4; eight inputs x; H = Σ x xᵀ. tr(D H Dᵀ) must equal Σ_x |D x|² computed directly.
    xoshiro256 random(5);
    const std::size_t rows = 3, cols = 4, inputs = 8;
    std::vector<float> w(rows * cols), q(rows * cols);
    for (std::size_t i = 0; i < w.size(); ++i) {
        w[i] = static_cast<float>(random.uniform() - 0.5);
        q[i] = w[i] + static_cast<float>(0.1 * (random.uniform() - 0.5));
    }
    std::vector<double> h(cols * cols, 0.0);
    double direct = 0.0;
    for (std::size_t n = 0; n < inputs; ++n) {
        std::vector<double> x(cols);
        for (auto& v : x) v = random.uniform() * 2.0 - 1.0;
        for (std::size_t i = 0; i < cols; ++i)
            for (std::size_t j = 0; j < cols; ++j) h[i * cols + j] += x[i] * x[j];
        for (std::size_t r = 0; r < rows; ++r) {
            double y = 0.0;
            for (std::size_t j = 0; j < cols; ++j) y += (static_cast<double>(w[r * cols + j]) - q[r * cols + j]) * x[j];
            direct += y * y;
        }
    }
    CHECK(hessian_weighted_error(w, q, cols, h) == doctest::Approx(direct).epsilon(1e-12));
    CHECK(hessian_weighted_error(w, w, cols, h) == 0.0);

    // Rows looked up 2, 0 and 1 times.
    double squares[3] = {0, 0, 0};
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t j = 0; j < cols; ++j) squares[r] += std::pow(static_cast<double>(w[r * cols + j]) - q[r * cols + j], 2);
    CHECK(lookup_weighted_error(w, q, cols, std::vector<double>{2, 0, 1}) == doctest::Approx(2 * squares[0] + squares[2]));
    CHECK(lookup_weighted_error(w, q, cols) == doctest::Approx(squares[0] + squares[1] + squares[2]));

    // Bad shapes: too few decoded values, rows that do not divide, H of the wrong size, row weights of the wrong count.
    CHECK_THROWS_AS(static_cast<void>(hessian_weighted_error(w, std::vector<float>(11), cols, h)), shape_error);
    CHECK_THROWS_AS(static_cast<void>(hessian_weighted_error(w, q, 5, std::vector<double>(25))), shape_error);
    CHECK_THROWS_AS(static_cast<void>(hessian_weighted_error(w, q, cols, std::vector<double>(15))), shape_error);
    CHECK_THROWS_AS(static_cast<void>(hessian_weighted_error(w, q, cols, {})), shape_error);
    CHECK_THROWS_AS(static_cast<void>(hessian_weighted_error(w, q, 0, h)), shape_error);
    CHECK_THROWS_AS(static_cast<void>(lookup_weighted_error(w, q, cols, std::vector<double>{1, 2})), shape_error);
}

TEST_CASE("activation rounding: the inputs' squared rounding errors per channel, the same for any thread count") {
    // Σ_j a_j |Q_:j|² by hand: rows (1, 2) and (3, 4), a = (1, 10): 1·(1 + 9) + 10·(4 + 16) = 210.
    CHECK(activation_rounding_error(std::vector<float>{1, 2, 3, 4}, 2, std::vector<double>{1, 10}) == doctest::Approx(210.0));
    CHECK_THROWS_AS(static_cast<void>(activation_rounding_error(std::vector<float>{1, 2, 3, 4}, 2, std::vector<double>{1})), shape_error);
    CHECK_THROWS_AS(static_cast<void>(activation_rounding_error(std::vector<float>{1, 2, 3}, 2, std::vector<double>{1, 1})), shape_error);

    const auto teacher = llama_model::from_weights(make_synthetic_llama(3, {64, 96, 1, 4, 2, 259, 32}));
    calibration_options o;
    o.tokens = 24, o.sequence_length = 12, o.threads = 1;
    const auto set = make_calibration_set(teacher, o);
    const std::vector<ggml_type> partners{ggml_type::q8_0, ggml_type::q8_K};
    const auto one = measure_activation_rounding(teacher, set, partners, 1);
    const auto two = measure_activation_rounding(teacher, set, partners, 2);
    CHECK(one.diagonal == two.diagonal);
    // Inputs of 64 (q, k, v, gate, up, the classifier) and 96 (down): q8_0 fits all, q8_K's 256 none.
    const auto* q = one.find("blk.0.attn_q.weight", ggml_type::q8_0);
    REQUIRE(q != nullptr);
    CHECK(q->size() == 64);
    double sum = 0.0;
    for (double v : *q) sum += v;
    CHECK(sum > 0.0);
    REQUIRE(one.find("blk.0.ffn_down.weight", ggml_type::q8_0) != nullptr);
    CHECK(one.find("blk.0.ffn_down.weight", ggml_type::q8_0)->size() == 96);
    CHECK(one.find("blk.0.attn_q.weight", ggml_type::q8_K) == nullptr);
    CHECK(one.find("no.such.weight", ggml_type::q8_0) == nullptr);
}

TEST_CASE("token_counts counts the looked-up tokens and refuses one outside the vocabulary") {
    calibration_set set;
    set.sequences.push_back({{1, 5, 5, 2}, {}, 4});
    set.sequences.push_back({{5, 0}, {}, 2});
    CHECK(token_counts(set, 6) == std::vector<double>{1, 1, 1, 0, 0, 3});
    try {
        static_cast<void>(token_counts(set, 5));
        FAIL("token 5 accepted in a vocabulary of 5");
    } catch (const value_error& e) {
        CHECK(e.index() == 1);
    }
}

TEST_CASE("kl_scale: per kind through its checked layers, log-linear between, the geometric mean for a kind never checked") {
    const std::vector<sensitivity_check> checks{{"blk.0.attn_q.weight", "attn_q.weight", 0, "q4_0", 2.0, 0.0, 2.0},   // factor 1
                                                {"blk.4.attn_q.weight", "attn_q.weight", 4, "q4_0", 1.0, 0.0, 16.0},  // factor 16
                                                {"output.weight", "output.weight", 0, "q4_0", 4.0, 0.0, 1.0},         // factor 1/4
                                                {"blk.1.ffn_up.weight", "ffn_up.weight", 1, "q4_0", 0.0, 0.0, 1.0},  // no error: not usable
                                                {"blk.2.ffn_up.weight", "ffn_up.weight", 2, "q4_0", 1.0, 0.0, 0.0}};  // no KL: not usable
    const auto s = kl_scale::fit(checks);
    CHECK(s.factors("attn_q.weight", 0)[0] == doctest::Approx(1.0));
    CHECK(s.factors("attn_q.weight", 2)[0] == doctest::Approx(4.0));  // halfway in log between 1 and 16
    CHECK(s.factors("attn_q.weight", 2)[1] == doctest::Approx(4.0));  // one type per layer: one factor for both
    CHECK(s.factors("attn_q.weight", 4)[0] == doctest::Approx(16.0));
    CHECK(s.factors("attn_q.weight", 9)[0] == doctest::Approx(16.0));  // constant past the last check
    CHECK(s.cost("output.weight", 0, 8.0, 4.0) == doctest::Approx(3.0));
    // Never usably checked: the geometric mean of 1, 16 and 1/4 = 4^(1/3).
    CHECK(s.factors("ffn_up.weight", 1)[0] == doctest::Approx(std::cbrt(4.0)));
    CHECK(kl_scale::fit({}).cost("anything", 3, 2.0, 5.0) == 7.0);

    // Two types of different mix in one layer solve for both factors: f_w = 2, f_a = 5.
    const std::vector<sensitivity_check> mixed{{"blk.0.ffn_down.weight", "ffn_down.weight", 0, "q4_0", 10.0, 1.0, 25.0},
                                               {"blk.0.ffn_down.weight", "ffn_down.weight", 0, "q8_0", 0.1, 1.0, 5.2}};
    const auto m = kl_scale::fit(mixed);
    CHECK(m.factors("ffn_down.weight", 0)[0] == doctest::Approx(2.0));
    CHECK(m.factors("ffn_down.weight", 0)[1] == doctest::Approx(5.0));
    // A solution that is not positive falls back to one factor, the geometric mean of KL / total error.
    const std::vector<sensitivity_check> odd{{"a", "k", 0, "q4_0", 10.0, 1.0, 1.0}, {"a", "k", 0, "q8_0", 0.1, 1.0, 5.0}};
    const auto f = kl_scale::fit(odd).factors("k", 0);
    CHECK(f[0] == doctest::Approx(std::sqrt(1.0 / 11.0 * 5.0 / 1.1)));
    CHECK(f[1] == f[0]);

    CHECK(checked_positions(1) == std::vector<std::size_t>{0});
    CHECK(checked_positions(2) == std::vector<std::size_t>{0, 1});
    CHECK(checked_positions(22) == std::vector<std::size_t>{0, 11, 21});
    CHECK(checked_positions(0).empty());
}

TEST_CASE("sensitivity methods: names, and automatic takes exact only while its forwards are cheap") {
    CHECK(parse_sensitivity_method("blockwise") == sensitivity_method::blockwise);
    CHECK(parse_sensitivity_method("exact") == sensitivity_method::exact);
    CHECK(parse_sensitivity_method("auto") == sensitivity_method::automatic);
    CHECK_THROWS_AS(static_cast<void>(parse_sensitivity_method("fisher")), invalid_argument_error);
    // stories260K with every candidate at 2,048 positions, and a 58M-weight model.
    CHECK(resolve_sensitivity(sensitivity_method::automatic, 260'000, 2048, 400) == sensitivity_method::exact);
    CHECK(resolve_sensitivity(sensitivity_method::automatic, 58'000'000, 2048, 600) == sensitivity_method::blockwise);
    CHECK(resolve_sensitivity(sensitivity_method::exact, 58'000'000, 2048, 600) == sensitivity_method::exact);
    CHECK(resolve_sensitivity(sensitivity_method::blockwise, 1, 1, 1) == sensitivity_method::blockwise);
}

TEST_CASE("blockwise sensitivity ranks the tensors as the exact one does, from a few exact checks") {
    test::scratch_dir dir;
    io::write_llama_gguf(make_synthetic_llama(11, {64, 96, 4, 4, 2, 259, 64}), dir.path / "f32.gguf");
    const auto in = gguf::reader::open(dir.path / "f32.gguf");
    // The rank correlations are statistics of the whole workload, which the Release pass checks; sanitized, a
    // third of the calibration and two candidates run the same code (the exact method: 41 -> about 10 s at -O0).
    constexpr bool statistics = !COGQAT_TEST_ADDRESS_SANITIZER;
    auto_quantize_options o;
    o.calibration.tokens = statistics ? 96 : 32;
    o.calibration.sequence_length = 32;
    o.threads = 2;
    o.candidates = {ggml_type::q4_0, ggml_type::q5_1, ggml_type::q8_0};
    if (!statistics) o.candidates = {ggml_type::q4_0, ggml_type::q8_0};
    o.sensitivity = sensitivity_method::exact;
    const auto exact = sensitivity_analysis::measure(in, o);
    o.sensitivity = sensitivity_method::blockwise;
    const auto blockwise = sensitivity_analysis::measure(in, o);
    CHECK(exact.method() == sensitivity_method::exact);
    CHECK(exact.checks().empty());
    REQUIRE(blockwise.method() == sensitivity_method::blockwise);
    // Seven kinds in the layers, checked at layers 0, 2 and 3, plus the embedding and the classifier; at
    // q4_0 and q8_0 each.
    CHECK(blockwise.checks().size() == 2 * (7 * 3 + 2));

    std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> by_type;
    std::vector<double> all_exact, all_blockwise;
    for (std::size_t i = 0; i < exact.weights().tensors.size(); ++i) {
        const auto& e = exact.candidates(i);
        const auto& b = blockwise.candidates(i);
        REQUIRE(e.size() == b.size());
        for (std::size_t k = 0; k < e.size(); ++k) {
            CHECK(e[k].type == b[k].type);
            CHECK(e[k].bytes == b[k].bytes);
            CHECK(e[k].output_error == b[k].output_error);  // the same rounding measured the same way
            if (e[k].type == ggml_type::f16) continue;      // KL at f16 is the activations' rounding: noise
            auto& [x, y] = by_type[std::string(info(e[k].type).name)];
            x.push_back(e[k].kl), y.push_back(b[k].kl);
            all_exact.push_back(e[k].kl), all_blockwise.push_back(b[k].kl);
        }
    }
    // Measured on this model: overall 0.992, per type 0.981 (q5_1) to 0.992 (q4_0); bounds with a margin.
    REQUIRE_FALSE(all_exact.empty());
    if (statistics) {
        const double overall = spearman_rank_correlation(all_exact, all_blockwise);
        MESSAGE("overall rank correlation ", overall);
        CHECK(overall >= 0.95);
        for (const auto& [type, xy] : by_type) {
            const double rho = spearman_rank_correlation(xy.first, xy.second);
            MESSAGE(type, " rank correlation ", rho);
            CHECK(rho >= 0.9);
        }
    }

    // Both write files of the same size target; the block-wise choice stays close to the exact one's KL.
    auto t = o;
    t.target = size_target::bits(5.0);
    t.accuracy_threshold = 0.0;
    const auto re = exact.quantize_to(dir.path / "exact.gguf", t);
    const auto rb = blockwise.quantize_to(dir.path / "blockwise.gguf", t);
    CHECK(rb.sensitivity == sensitivity_method::blockwise);
    CHECK(rb.sensitivity_checks.size() == blockwise.checks().size());
    CHECK(rb.tensor_bytes <= rb.budget_bytes);
    MESSAGE("KL exact ", re.validation.kl, " blockwise ", rb.validation.kl);
    if (statistics) CHECK(rb.validation.kl <= 1.25 * re.validation.kl);
}
