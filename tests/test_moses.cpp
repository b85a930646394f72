// Tests of MOSES program evolution: programs (parsing, printing, evaluation, validation), the reduct on
// known equivalences, value policies for constant knobs, representations (an instance evaluates as the
// program it stands for), the demo problems and their input checks, and whole runs on 3-parity, the
// 6-multiplexer, x + x^2 and a noisy threshold rule under both value policies; ENF factoring; mixed programs
// (greater_than predicates over labelled tables); results independent of the thread count. Budgets are small so the file runs in seconds, also
// under sanitizers.

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "cogqat/cog/moses/evaluate.hpp"
#include "cogqat/cog/moses/hill_climbing.hpp"
#include "cogqat/cog/moses/metapopulation.hpp"
#include "cogqat/cog/moses/moses.hpp"
#include "cogqat/cog/moses/parse.hpp"
#include "cogqat/cog/moses/problems.hpp"
#include "cogqat/cog/moses/program.hpp"
#include "cogqat/cog/moses/random.hpp"
#include "cogqat/cog/moses/reduct.hpp"
#include "cogqat/cog/moses/representation.hpp"
#include "cogqat/cog/moses/scoring.hpp"
#include "cogqat/cog/moses/table.hpp"
#include "cogqat/cog/moses/value_policy.hpp"
#include "cogqat/core/error.hpp"

using namespace cogqat;
using namespace cogqat::cog::moses;

namespace {

/// Equal values, NaN equal to NaN (log of a negative number on both sides).
bool same_value(double a, double b) {
    if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
    if (std::isinf(a) || std::isinf(b)) return a == b;
    return std::fabs(a - b) <= 1e-9 * (1.0 + std::fabs(b));
}

/// Reduces the text of a program.
program reduced(const char* text) { return reduce(parse_program(text)); }

/// True when `text` throws an exception of type E whose message contains `needle`.
template <class E, class F>
bool throws_with(F&& f, const std::string& needle) {
    try {
        f();
    } catch (const E& e) {
        return std::string(e.what()).find(needle) != std::string::npos;
    }
    return false;
}

/// A few random instances of a representation, with about one knob in `one_in` turned away from the exemplar.
std::vector<std::vector<std::uint8_t>> random_settings(const representation& rep, rng& gen, int count, std::uint64_t one_in) {
    std::vector<std::vector<std::uint8_t>> out;
    for (int i = 0; i < count; ++i) {
        std::vector<std::uint8_t> s(rep.discrete_knobs().size(), 0);
        for (std::size_t k = 0; k < s.size(); ++k)
            if (gen.below(one_in) == 0) s[k] = static_cast<std::uint8_t>(gen.below(rep.discrete_knobs()[k].count));
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace

// ------------------------------------------------------------------------------------------------ programs

TEST_CASE("programs print in combo syntax and parse back") {
    for (const char* text : {"and($1 or(!$2 $3))", "or(not(and($1 $2)) true false)", "+($1 *($1 $1) 0.5 -2)", "/(exp($1) log(sin($2)))",
                             "$3", "!$12", "*()"}) {
        CAPTURE(text);
        CHECK(to_string(parse_program(text)) == text);
    }
    CHECK(to_string(parse_program(" and( $1 , $2 )")) == "and($1 $2)");
    CHECK(parse_program("and($1 $2)") == make_and({make_argument(1), make_argument(2)}));
    CHECK(parse_program("0.25") == make_constant(0.25f));
    CHECK(to_string(make_constant(-0.0f)) == "0");
}

TEST_CASE("malformed program text is a format_error naming the column") {
    CHECK(throws_with<format_error>([] { (void)parse_program("xor($1 $2)"); }, "unknown operator 'xor'"));
    CHECK(throws_with<format_error>([] { (void)parse_program("and($1 $2"); }, "missing ')'"));
    CHECK(throws_with<format_error>([] { (void)parse_program("not($1 $2)"); }, "arity mismatch"));
    CHECK(throws_with<format_error>([] { (void)parse_program("/($1)"); }, "arity mismatch"));
    CHECK(throws_with<format_error>([] { (void)parse_program("$0"); }, "argument number"));
    CHECK(throws_with<format_error>([] { (void)parse_program("+($1 1e999)"); }, "finite number"));
    CHECK(throws_with<format_error>([] { (void)parse_program("$1 $2"); }, "column 4"));
    CHECK(throws_with<format_error>([] { (void)parse_program(""); }, "end of text"));
    std::string deep;
    for (int i = 0; i < 600; ++i) deep += "not(";
    CHECK(throws_with<format_error>([&] { (void)parse_program(deep); }, "deeper"));
}

TEST_CASE("complexity counts literals, constants and divide/exp/log/sin") {
    CHECK(complexity(parse_program("and($1 or(!$2 $3) not($4))")) == 4);
    CHECK(complexity(parse_program("true")) == 0);
    CHECK(complexity(parse_program("+($1 *(2 $1) exp($1))")) == 5);
    CHECK(complexity(parse_program("/($1 sin($2))")) == 4);
    CHECK(arity(parse_program("or($1 !$7)")) == 7);
}

// ---------------------------------------------------------------------------------------------- evaluation

TEST_CASE("hand-written Boolean trees evaluate row by row") {
    const truth_table t = truth_table::complete(3, [](std::uint32_t) { return false; });
    struct example {
        const char* text;
        bool (*f)(bool, bool, bool);
    };
    const example examples[] = {
            {"and($1 not($2))", [](bool a, bool b, bool) { return a && !b; }},
            {"or(!$1 and($2 $3))", [](bool a, bool b, bool c) { return !a || (b && c); }},
            {"not(or($1 $2 $3))", [](bool a, bool b, bool c) { return !(a || b || c); }},
            {"and()", [](bool, bool, bool) { return true; }},
            {"or()", [](bool, bool, bool) { return false; }},
            {"false", [](bool, bool, bool) { return false; }},
    };
    for (const auto& e : examples) {
        CAPTURE(e.text);
        const row_bits out = evaluate(parse_program(e.text), t);
        REQUIRE(out.size() == 8);
        for (std::uint32_t r = 0; r < 8; ++r) CHECK(out.test(r) == e.f(r & 1, (r >> 1) & 1, (r >> 2) & 1));
    }
}

TEST_CASE("Boolean evaluation covers tables longer than one word") {
    const truth_table t = truth_table::complete(7, [](std::uint32_t r) { return r % 3 == 0; });
    CHECK(t.rows() == 128);
    CHECK(t.word_count() == 2);
    const row_bits out = evaluate(parse_program("or($7 !$1)"), t);
    for (std::uint32_t r = 0; r < 128; ++r) CHECK(out.test(r) == (((r >> 6) & 1) || !(r & 1)));
    CHECK(out.count() == 96);
}

TEST_CASE("hand-written continuous trees evaluate on every row") {
    const data_table t({{-1.0, 2.0}, {0.5, 3.0}, {2.0, -1.0}}, {0.0, 0.0, 0.0});
    const std::vector<double> v = evaluate(parse_program("+($1 *($1 $1) 0.5)"), t);
    REQUIRE(v.size() == 3);
    CHECK(v[0] == doctest::Approx(0.5));
    CHECK(v[1] == doctest::Approx(1.25));
    CHECK(v[2] == doctest::Approx(6.5));
    const std::vector<double> w = evaluate(parse_program("/(exp($1) +($2 1))"), t);
    CHECK(w[0] == doctest::Approx(std::exp(-1.0) / 3.0));
    CHECK((std::isinf(w[2]) && w[2] > 0));  // IEEE division by zero
    const std::vector<double> u = evaluate(parse_program("*(sin($1) log($2))"), t);
    CHECK(u[1] == doctest::Approx(std::sin(0.5) * std::log(3.0)));
    CHECK(std::isnan(u[2]));  // log(-1)
    CHECK(score_output(u, t, 1e-3).raw == -std::numeric_limits<double>::infinity());
}

TEST_CASE("programs that do not fit the table are rejected with what and where") {
    const truth_table t = truth_table::complete(3, [](std::uint32_t) { return true; });
    CHECK(throws_with<shape_error>([&] { (void)evaluate(parse_program("and($1 $5)"), t); },
                                   "arity mismatch: the program reads $5 but the table has 3 inputs"));
    CHECK(throws_with<invalid_argument_error>([&] { (void)evaluate(parse_program("and($1 +($2 1))"), t); }, "type mismatch"));
    program bad_not = make_not(make_argument(1));
    bad_not.children.push_back(make_argument(2));
    CHECK(throws_with<invalid_argument_error>([&] { (void)evaluate(bad_not, t); }, "arity mismatch: 'not' takes 1 child, got 2"));
    program bad_divide(vertex{vertex_kind::divide, 0, 0.0f}, {make_argument(1)});
    const data_table d({{1.0}}, {1.0});
    CHECK(throws_with<invalid_argument_error>([&] { (void)evaluate(bad_divide, d); }, "at vertex 0"));
    CHECK(throws_with<invalid_argument_error>([&] { (void)evaluate(parse_program("+($1 !$1)"), d); }, "negated argument"));
    program nan_constant = make_constant(1.0f);
    nan_constant.head.value = std::nanf("");
    CHECK_THROWS_AS((void)evaluate(nan_constant, d), value_error);
    CHECK_THROWS_AS((void)make_constant(INFINITY), value_error);
    CHECK_THROWS_AS((void)make_argument(0), invalid_argument_error);
}

TEST_CASE("tables check their shapes and values") {
    CHECK(throws_with<shape_error>([] { truth_table t({{true, false}, {true}}, {true, false}); }, "row 1 has 1 inputs"));
    CHECK_THROWS_AS(truth_table({{true}}, {true, false}), shape_error);
    CHECK_THROWS_AS(truth_table({}, {}), invalid_argument_error);
    CHECK_THROWS_AS((void)truth_table::complete(21, [](std::uint32_t) { return true; }), invalid_argument_error);
    CHECK_THROWS_AS(data_table({{1.0}, {2.0, 3.0}}, {1.0, 2.0}), shape_error);
    CHECK(throws_with<value_error>([] { data_table d({{1.0}, {NAN}}, {1.0, 2.0}); }, "row 1"));
    const truth_table t({{true, false}, {false, false}, {true, true}}, {true, false, true});
    CHECK(t.arity() == 2);
    CHECK(t.rows() == 3);
    CHECK(score_output(evaluate(parse_program("$1"), t).words(), t).perfect);
    CHECK(score_output(evaluate(parse_program("$2"), t).words(), t).raw == -1.0);
}

// --------------------------------------------------------------------------------------------------- reduct

TEST_CASE("the Boolean reduct brings equivalent programs to one normal form") {
    const char* equal[][2] = {
            {"not(not($1))", "$1"},
            {"or($2 $1)", "or($1 $2)"},
            {"and($1 $1 $2)", "and($1 $2)"},  // idempotence
            {"and($1 or($1 $2))", "$1"},      // absorption
            {"or($1 and($1 $2))", "$1"},
            {"and(or($1 $2) or($1 $2 $3))", "or($1 $2)"},  // subsumption
            {"or(and($1 $2) and($1 $2 $3))", "and($1 $2)"},
            {"and($1 !$1 $2)", "false"},  // complement
            {"or($3 !$3)", "true"},
            {"not(and($1 $2))", "or(!$1 !$2)"},  // De Morgan
            {"not(or($1 not($2)))", "and(!$1 $2)"},
            {"and($1 or(!$1 $2))", "and($1 $2)"},  // literal propagation
            {"or($1 and(!$1 $2))", "or($1 $2)"},
            {"and($1 and($2 $3))", "and($1 $2 $3)"},  // flattening
            {"and(true $1)", "$1"},
            {"or(true $1)", "true"},
            {"and(false $1)", "false"},
            {"and()", "true"},
            {"or(and($2 $1) and(!$1 !$2))", "or(and(!$1 !$2) and($1 $2))"},
            {"and(or($1 $2) or($2 $1))", "or($1 $2)"},
    };
    for (const auto& e : equal) {
        CAPTURE(e[0]);
        CAPTURE(e[1]);
        CHECK(reduced(e[0]) == reduced(e[1]));
        CHECK(to_string(reduced(e[0])) == to_string(reduced(e[1])));
    }
    CHECK(to_string(reduced("and($1 or($1 $2))")) == "$1");
    CHECK(to_string(reduced("not(and($1 $2))")) == "or(!$1 !$2)");
    CHECK_FALSE(reduced("and($1 $2)") == reduced("or($1 $2)"));
    CHECK_FALSE(reduced("and($1 !$2)") == reduced("and(!$1 $2)"));
}

TEST_CASE("the arithmetic reduct folds constants and applies the identities") {
    const char* equal[][2] = {
            {"*($1 1)", "$1"},
            {"+($1 0)", "$1"},
            {"*($1 0)", "0"},
            {"*(+($1 $2) 0)", "0"},
            {"+(1 2 $1)", "+($1 3)"},
            {"*(2 3 $1)", "*(6 $1)"},
            {"+($1 $1)", "*(2 $1)"},
            {"+(*(2 $1) $1)", "*(3 $1)"},
            {"+(*($1 $2) *(-1 $2 $1))", "0"},
            {"*($2 $1)", "*($1 $2)"},
            {"+(*($1 $1) $1)", "+($1 *($1 $1))"},
            {"+($1 +($2 $3))", "+($1 $2 $3)"},
            {"*($1 *($2 $3))", "*($1 $2 $3)"},
            {"/($1 1)", "$1"},
            {"/(6 3)", "2"},
            {"log(exp($1))", "$1"},
            {"exp(0)", "1"},
            {"sin(0)", "0"},
            {"+()", "0"},
            {"*()", "1"},
    };
    for (const auto& e : equal) {
        CAPTURE(e[0]);
        CAPTURE(e[1]);
        CHECK(reduced(e[0]) == reduced(e[1]));
    }
    // Rules that would change the value on some row are not applied.
    CHECK(to_string(reduced("/($1 $1)")) == "/($1 $1)");
    CHECK(to_string(reduced("exp(log($1))")) == "exp(log($1))");
    CHECK(to_string(reduced("log(-1)")) == "log(-1)");  // not folded into NaN
    CHECK(to_string(reduced("/(1 0)")) == "/(1 0)");
}

TEST_CASE("the reduct keeps semantics, never adds complexity and is idempotent") {
    const truth_table t = truth_table::complete(5, [](std::uint32_t) { return false; });
    rng gen(7);
    program exemplar = make_bool(true);
    int checked = 0;
    for (int round = 0; round < 12; ++round) {
        const representation rep = representation::build(exemplar, value_type::boolean, 5, gen);
        for (const auto& s : random_settings(rep, gen, 20, 6)) {
            const program raw = rep.to_program(s, {});
            const program r = reduce(raw);
            CHECK(evaluate(r, t) == evaluate(raw, t));
            CHECK(complexity(r) <= complexity(raw));
            CHECK(reduce(r) == r);
            ++checked;
        }
        exemplar = reduce(rep.to_program(random_settings(rep, gen, 1, 10).front(), {}));
    }
    CHECK(checked == 240);

    const data_table d({{-1.0, 0.5}, {0.25, 2.0}, {1.5, -3.0}}, {0, 0, 0});
    for (const char* text : {"+(*($1 2 $2) *($2 $1) 1 2)", "*(+($1 0) 1 exp(+(0 0)))", "+(log(exp($2)) *(0 $1) /($1 1))"}) {
        CAPTURE(text);
        const program p = parse_program(text);
        const auto a = evaluate(p, d);
        const auto b = evaluate(reduce(p), d);
        for (std::size_t i = 0; i < a.size(); ++i) CHECK(b[i] == doctest::Approx(a[i]));
        CHECK(reduce(reduce(p)) == reduce(p));
    }
}

// ------------------------------------------------------------------------------------------- value policies

TEST_CASE_TEMPLATE("value policies store constants within their step", V, float_values, q6_values) {
    rng gen(3);
    std::vector<float> values(21);
    for (auto& v : values) v = static_cast<float>(gen.uniform() * 8.0 - 4.0);
    values[5] = 0.0f;
    const typename V::storage_type stored = V::store(values);
    REQUIRE(V::size(stored) == values.size());
    std::vector<float> back(values.size());
    V::load(stored, back);
    for (std::size_t i = 0; i < values.size(); ++i) {
        CAPTURE(i);
        const float step = V::step(stored, i);
        CHECK(step >= 0.0f);
        CHECK(std::fabs(back[i] - values[i]) <= step / 2 * 1.0001f);
    }
    CHECK(back[5] == 0.0f);  // 0 stays exactly 0, so a term switched off stays off
    CHECK(V::store(back) == V::store(back));
    CHECK(V::storage_bits(stored) > 0);

    const typename V::storage_type empty = V::store({});
    CHECK(V::size(empty) == 0);
    V::load(empty, std::span<float>());
    std::vector<float> wrong(3);
    CHECK_THROWS_AS(V::load(stored, wrong), shape_error);
    const float bad[] = {1.0f, NAN};
    if constexpr (!std::is_same_v<V, float_values>) CHECK_THROWS_AS((void)V::store(bad), value_error);
}

TEST_CASE("6-bit constants are quantized group-wise with the core quantizer") {
    std::vector<float> values = {1.0f, 0.5f, -0.25f, 0.0f, 0.75f, 0.1f, -1.0f, 0.3f, 31.0f};
    const q6_values::storage_type s = q6_values::store(values);
    // First group of 8: largest magnitude 1, so the step is 1/31 and 1 itself is exact; the 9th value is
    // alone in its group (padded with zeros) and exact too.
    CHECK(q6_values::step(s, 0) == doctest::Approx(1.0f / 31.0f));
    CHECK(q6_values::step(s, 8) == doctest::Approx(1.0f));
    std::vector<float> back(values.size());
    q6_values::load(s, back);
    CHECK(back[0] == 1.0f);
    CHECK(back[6] == -1.0f);
    CHECK(back[8] == 31.0f);
    CHECK(back[1] == doctest::Approx(16.0f / 31.0f));  // 15.5 rounds to even
    // 6 bits per value plus one 32-bit scale per group of 8 (16 slots after padding).
    CHECK(q6_values::storage_bits(s) == 16 * 6 + 2 * 32);
    CHECK(float_values::storage_bits(float_values::store(values)) == 9 * 32);
}

// ------------------------------------------------------------------------------------------- representation

TEST_CASE("a Boolean representation's instances evaluate as the programs they stand for") {
    const truth_table t = truth_table::complete(4, [](std::uint32_t r) { return std::popcount(r) % 2 == 0; });
    rng gen(11);
    for (const char* text : {"true", "false", "$2", "and($1 or(!$2 $3))", "or(and($1 $2) and(!$3 $4) !$1)"}) {
        CAPTURE(text);
        const program exemplar = parse_program(text);
        const representation rep = representation::build(exemplar, value_type::boolean, 4, gen);
        CHECK(rep.constant_count() == 0);
        CHECK(rep.discrete_knobs().size() > 8);
        std::vector<std::uint64_t> out(t.word_count()), scratch;
        // The zero instance is the exemplar.
        const std::vector<std::uint8_t> zero(rep.discrete_knobs().size(), 0);
        rep.evaluate(zero, t, out, scratch);
        CHECK(mismatches(out, evaluate(exemplar, t).words(), t.rows()) == 0);
        CHECK(reduce(rep.to_program(zero, {})) == reduce(exemplar));
        for (const auto& s : random_settings(rep, gen, 25, 5)) {
            const int c = rep.evaluate(s, t, out, scratch);
            const program p = rep.to_program(s, {});
            CHECK(mismatches(out, evaluate(p, t).words(), t.rows()) == 0);
            CHECK(c == complexity(p));
            CHECK(c == rep.complexity(s, {}));
        }
    }
}

TEST_CASE("a continuous representation's instances evaluate as the programs they stand for") {
    const data_table t({{-1.0}, {-0.3}, {0.2}, {0.9}}, {0, 0, 0, 0});
    rng gen(5);
    for (const char* text : {"0", "$1", "+(0.5 *(2 $1 $1) sin($1))", "/($1 +($1 2))"}) {
        CAPTURE(text);
        const program exemplar = parse_program(text);
        const representation rep = representation::build(exemplar, value_type::continuous, 1, gen);
        CHECK(rep.constant_count() >= 6);
        std::vector<double> out(t.rows()), scratch;
        const std::vector<std::uint8_t> zero(rep.discrete_knobs().size(), 0);
        const std::vector<float> initial(rep.initial_constants().begin(), rep.initial_constants().end());
        rep.evaluate(zero, initial, t, out, scratch);
        const std::vector<double> want = evaluate(exemplar, t);
        for (std::size_t r = 0; r < out.size(); ++r) CHECK(same_value(out[r], want[r]));
        for (int trial = 0; trial < 20; ++trial) {
            std::vector<float> c = initial;
            for (auto& v : c)
                if (gen.below(3) == 0) v = static_cast<float>(static_cast<int>(gen.below(9)) - 4) * 0.5f;
            const auto s = random_settings(rep, gen, 1, 3).front();
            const int cx = rep.evaluate(s, c, t, out, scratch);
            const program p = rep.to_program(s, c);
            const std::vector<double> expect = evaluate(p, t);
            CAPTURE(to_string(p));
            for (std::size_t r = 0; r < out.size(); ++r) CHECK(same_value(out[r], expect[r]));
            CHECK(cx == rep.complexity(s, c));
            // The estimate leaves out coefficients 1 and intercepts 0, which the reduct removes.
            CHECK(cx <= complexity(p));
        }
    }
}

TEST_CASE("representation building checks its input") {
    rng gen(1);
    CHECK(throws_with<shape_error>([&] { (void)representation::build(parse_program("$4"), value_type::boolean, 3, gen); },
                                   "arity mismatch"));
    CHECK_THROWS_AS((void)representation::build(parse_program("+($1 1)"), value_type::boolean, 1, gen), invalid_argument_error);
    representation_params p;
    p.constant_depth = 0;
    CHECK_THROWS_AS((void)representation::build(parse_program("0"), value_type::continuous, 1, gen, p), invalid_argument_error);
    p = {};
    p.functions = {vertex_kind::plus};
    CHECK_THROWS_AS((void)representation::build(parse_program("0"), value_type::continuous, 1, gen, p), invalid_argument_error);
}

TEST_CASE("instances that do not fit their representation are rejected") {
    rng gen(1);
    const representation rep = representation::build(parse_program("and($1 $2)"), value_type::boolean, 3, gen);
    const truth_table t = truth_table::complete(3, [](std::uint32_t) { return true; });
    std::vector<std::uint64_t> out(t.word_count()), scratch;
    std::vector<std::uint8_t> settings(rep.discrete_knobs().size(), 0);
    CHECK(rep.evaluate(settings, t, out, scratch) == 2);
    std::vector<std::uint8_t> short_settings(settings.size() - 1, 0);
    CHECK(throws_with<shape_error>([&] { (void)rep.evaluate(short_settings, t, out, scratch); }, "settings"));
    settings[0] = rep.discrete_knobs()[0].count;
    CHECK(throws_with<invalid_argument_error>([&] { (void)rep.evaluate(settings, t, out, scratch); }, "of knob 0, which has"));
    CHECK_THROWS_AS((void)rep.to_program(settings, {}), invalid_argument_error);
    settings[0] = 0;
    const float one = 1.0f;
    CHECK_THROWS_AS((void)rep.complexity(settings, std::span<const float>(&one, 1)), shape_error);
    const truth_table narrow = truth_table::complete(2, [](std::uint32_t) { return true; });
    CHECK(throws_with<shape_error>([&] { (void)rep.evaluate(settings, narrow, out, scratch); }, "arity mismatch"));
    std::vector<std::uint64_t> none;
    CHECK_THROWS_AS((void)rep.evaluate(settings, t, none, scratch), shape_error);
    const data_table d({{1.0, 2.0, 3.0}}, {1.0});
    std::vector<double> values(1), value_scratch;
    CHECK_THROWS_AS((void)rep.evaluate(settings, {}, d, values, value_scratch), invalid_argument_error);
}

// ------------------------------------------------------------------------------------- search components

TEST_CASE("one deme of hill climbing finds a conjunction next to the exemplar") {
    const truth_table t = truth_table::complete(4, [](std::uint32_t r) { return (r & 1) && !(r & 4); });
    rng gen(2);
    const representation rep = representation::build(make_bool(true), value_type::boolean, 4, gen);
    std::vector<std::uint64_t> out(t.word_count()), scratch;
    auto score = [&](std::span<const std::uint8_t> s, std::span<const float>) {
        const int c = rep.evaluate(s, t, out, scratch);
        return make_score(score_output(std::span<const std::uint64_t>(out), t), c, 3.5);
    };
    const deme_result<q6_values> d = hill_climb<q6_values>(rep, score, 10000, gen, hill_climbing_params{}, 10);
    CHECK(d.perfect);
    REQUIRE(d.best_fit);
    CHECK(reduce(rep.to_program(d.best_fit->inst.settings, {})) == reduced("and($1 !$3)"));
    CHECK(d.evaluations <= 10000);
    CHECK(d.best.size() <= 10);
    for (std::size_t i = 1; i < d.best.size(); ++i) CHECK_FALSE(better(d.best[i].score, d.best[i - 1].score));

    const deme_result<q6_values> small = hill_climb<q6_values>(rep, score, 5, gen, hill_climbing_params{}, 10);
    CHECK(small.evaluations == 5);
}

TEST_CASE("Boltzmann selection prefers the best and visits each exemplar once") {
    metapopulation m;
    const double ratio = 3.5;
    m.merge({{reduced("$1"), make_score({-2.0, false}, 1, ratio)},
             {reduced("$2"), make_score({-2.0, false}, 1, ratio)},
             {reduced("and($1 $2)"), make_score({-2.0, false}, 2, ratio)},
             {reduced("and($1 $2 $3)"), make_score({-9.0, false}, 3, ratio)},
             {reduced("$1"), make_score({-2.0, false}, 1, ratio)}});
    CHECK(m.size() == 3);  // the duplicate and the one out of the useful range are gone
    CHECK(m.best().prog == reduced("$1"));
    rng gen(9);
    std::vector<program> picks;
    for (int i = 0; i < 3; ++i) picks.push_back(*m.select(gen));
    CHECK(m.visited() == 3);
    // The two simplest first (in either order), the more complex last.
    CHECK(picks[2] == reduced("and($1 $2)"));
    CHECK(m.select(gen).has_value());  // revisiting when exhausted
    metapopulation_params strict;
    strict.revisit_when_exhausted = false;
    metapopulation once(strict);
    once.merge({{reduced("$1"), make_score({-1.0, false}, 1, ratio)}});
    CHECK(once.select(gen).has_value());
    CHECK_FALSE(once.select(gen).has_value());
    metapopulation_params bad;
    bad.complexity_temperature = 0.0;
    CHECK_THROWS_AS(metapopulation{bad}, invalid_argument_error);
}

TEST_CASE("the random generator is fixed by its seed") {
    rng a(1);
    CHECK(a.next() == 0xb3f2af6d0fc710c5ull);
    CHECK(a.next() == 0x853b559647364ceaull);
    CHECK(a.next() == 0x92f89756082a4514ull);
    rng b(42);
    CHECK(b.below(10) == 2);
    CHECK(b.below(1000000) == 543102);
    rng c(5);
    for (int i = 0; i < 1000; ++i) {
        const double u = c.uniform();
        CHECK((u >= 0.0 && u < 1.0));
        CHECK(c.below(7) < 7);
    }
}

// ------------------------------------------------------------------------------------------------- problems

TEST_CASE("demo problems build their tables and reject bad sizes") {
    const problem p3 = make_problem("parity", 3);
    const auto& t3 = std::get<truth_table>(p3.table);
    CHECK(t3.rows() == 8);
    CHECK(t3.target().count() == 4);
    CHECK(t3.target().test(0));
    CHECK_FALSE(t3.target().test(1));
    CHECK(t3.target().test(3));
    const problem mux6 = make_problem("mux", 6);
    const auto& m6 = std::get<truth_table>(mux6.table);
    CHECK(m6.rows() == 64);
    // Address 2 ($1 = 0, $2 = 1) selects data input 3, i.e. $5.
    CHECK(m6.target().test(0b010010) == true);
    CHECK(m6.target().test(0b000010) == false);
    CHECK(score_output(evaluate(parse_program("or(and(!$1 !$2 $3) and($1 !$2 $4) and(!$1 $2 $5) and($1 $2 $6))"), m6).words(), m6).perfect);
    const problem maj5 = make_problem("maj", 5);
    const auto& j5 = std::get<truth_table>(maj5.table);
    CHECK(j5.target().count() == 16);
    const problem sr = make_problem("sr", 3);
    const auto& d = std::get<data_table>(sr.table);
    CHECK(d.rows() == 20);
    CHECK(d.column(0)[0] == -1.0);
    CHECK(d.targets()[19] == doctest::Approx(3.0));
    CHECK(score_output(evaluate(parse_program("+($1 *($1 $1) *($1 $1 $1))"), d), d, sr.tolerance).perfect);

    CHECK(throws_with<invalid_argument_error>([] { (void)make_problem("xor", 3); }, "unknown problem 'xor'"));
    CHECK(throws_with<invalid_argument_error>([] { (void)make_problem("parity", 1); }, "k = 1 is out of range 2..16"));
    CHECK_THROWS_AS((void)make_problem("parity", 17), invalid_argument_error);
    CHECK(throws_with<invalid_argument_error>([] { (void)make_problem("mux", 7); }, "k must be 3, 6, 11 or 20"));
    CHECK_THROWS_AS((void)make_problem("maj", 4), invalid_argument_error);
    CHECK_THROWS_AS((void)make_problem("sr", 0), invalid_argument_error);
    CHECK_THROWS_AS((void)make_problem("sr", 11), invalid_argument_error);
}

// ------------------------------------------------------------------------------------------------ whole runs

TEST_CASE_TEMPLATE("MOSES solves 3-parity, the 6-multiplexer, x + x^2 and a threshold rule", V, float_values, q6_values) {
    struct run_case {
        const char* name;
        std::size_t k;
        std::size_t budget;
    };
    for (const run_case rc :
         {run_case{"parity", 3, 20000}, run_case{"mux", 6, 20000}, run_case{"sr", 2, 20000}, run_case{"rule", 4, 60000}}) {
        CAPTURE(std::string(rc.name));
        const problem prob = make_problem(rc.name, rc.k);
        moses_params params;
        params.seed = 1;
        params.max_evals = rc.budget;
        std::size_t demes_seen = 0;
        params.on_deme = [&](const moses_progress& p) {
            ++demes_seen;
            CHECK(p.best != nullptr);
        };
        const moses_result r = run_moses<V>(prob, params);
        CHECK(r.solved);
        CHECK(r.score.perfect);
        CHECK(r.evaluations <= rc.budget);
        CHECK(r.demes == demes_seen);
        CHECK(r.seconds >= 0.0);
        // The answer is checked again from its own text.
        const program again = parse_program(to_string(r.best));
        std::visit(
                [&](const auto& table) {
                    using table_t = std::decay_t<decltype(table)>;
                    if constexpr (std::is_same_v<table_t, truth_table>) {
                        CHECK(score_output(evaluate(again, table).words(), table).perfect);
                    } else if constexpr (std::is_same_v<table_t, labelled_table>) {
                        CHECK(score_output(evaluate(again, table).words(), table, static_cast<std::size_t>(prob.tolerance)).perfect);
                    } else {
                        CHECK(score_output(evaluate(again, table), table, prob.tolerance * 1.01).perfect);
                    }
                },
                prob.table);
    }
}

TEST_CASE("a run is fixed by its seed") {
    const problem prob = make_problem("parity", 3);
    moses_params params;
    params.max_evals = 20000;
    params.seed = 4;
    const moses_result a = run_moses(prob, params);
    const moses_result b = run_moses(prob, params);
    CHECK(a.evaluations == b.evaluations);
    CHECK(a.best == b.best);
}

TEST_CASE("the budget is respected and bad run parameters are rejected") {
    const problem prob = make_problem("parity", 4);
    moses_params params;
    params.max_evals = 300;
    const moses_result r = run_moses<float_values>(prob, params);
    CHECK(r.evaluations <= 300);
    CHECK_FALSE(r.solved);

    params.max_evals = 0;
    CHECK(throws_with<invalid_argument_error>([&] { (void)run_moses(prob, params); }, "max_evals"));
    params.max_evals = 100;
    params.complexity_ratio = -1.0;
    CHECK(throws_with<invalid_argument_error>([&] { (void)run_moses(prob, params); }, "complexity_ratio"));
    params.complexity_ratio.reset();
    params.exemplar = parse_program("and($1 $9)");
    CHECK(throws_with<shape_error>([&] { (void)run_moses(prob, params); },
                                   "arity mismatch: the program reads $9 but the table has 4 inputs"));
    params.exemplar = parse_program("+($1 1)");
    CHECK(throws_with<invalid_argument_error>([&] { (void)run_moses(prob, params); }, "type mismatch"));
    params.exemplar = parse_program("or($1 $2)");
    CHECK(run_moses(prob, params).evaluations <= 100);
}

// --------------------------------------------------------------------------------------- ENF factoring

TEST_CASE("the Boolean reduct factors what every clause shares, as the elegant normal form does") {
    const char* equal[][2] = {
            {"or(and($1 $2) and($1 $3))", "and($1 or($2 $3))"},
            {"and(or($1 $2) or($1 $3))", "or($1 and($2 $3))"},
            {"or(and($1 $2 $4) and($1 $3 $4) and($1 $4 !$5))", "and($1 $4 or($2 $3 !$5))"},
            {"or(and($1 or($2 $5)) and($1 $3))", "and($1 or($2 $3 $5))"},
            {"or(and(!$2 $3) and(!$2 !$4))", "and(!$2 or($3 !$4))"},
    };
    for (const auto& e : equal) {
        CAPTURE(e[0]);
        CHECK(to_string(reduced(e[0])) == to_string(reduced(e[1])));
        CHECK(complexity(reduced(e[0])) < complexity(parse_program(e[0])));
    }
    // Nothing common to every clause: nothing moves.
    CHECK(complexity(reduced("or(and($1 $2) and($1 $3) $4)")) == 5);
    CHECK(complexity(reduced("or(and($1 $2) and(!$1 $3))")) == 4);
    // Factoring keeps what the program computes.
    const truth_table t = truth_table::complete(5, [](std::uint32_t) { return false; });
    for (const auto& e : equal) CHECK(evaluate(reduced(e[0]), t) == evaluate(parse_program(e[0]), t));
}

// -------------------------------------------------------------------------------------- mixed programs

namespace {

/// A small labelled table: three continuous inputs, labels from `and($1 > 0.5, $2 <= 0.25)`.
labelled_table small_labelled() {
    rng gen(21);
    std::vector<std::vector<double>> x(70);
    std::vector<bool> y(70);
    for (std::size_t r = 0; r < x.size(); ++r) {
        x[r] = {gen.uniform(), gen.uniform(), gen.uniform() * 4.0 - 2.0};
        y[r] = x[r][0] > 0.5 && x[r][1] <= 0.25;
    }
    return labelled_table(x, y);
}

}  // namespace

TEST_CASE("predicates print, parse and evaluate over labelled tables") {
    for (const char* text : {"greater_than($1 0.5)", "!greater_than($3 -1.25)", "and(greater_than($1 0.5) or(!greater_than($2 0) true))"}) {
        CAPTURE(text);
        CHECK(to_string(parse_program(text)) == text);
    }
    CHECK(parse_program("greater_than( $2 , 0.75 )") == make_greater_than(2, 0.75f));
    CHECK(complexity(parse_program("and(greater_than($1 0.5) !greater_than($2 0))")) == 4);
    CHECK(arity(parse_program("or(greater_than($4 1) $2)")) == 4);

    const labelled_table t = small_labelled();
    CHECK(t.arity() == 3);
    CHECK(t.rows() == 70);
    const row_bits out = evaluate(parse_program("and(greater_than($1 0.5) !greater_than($2 0.25))"), t);
    CHECK(score_output(out.words(), t, 0).perfect);
    for (std::size_t r = 0; r < t.rows(); ++r) CHECK(out.test(r) == t.target().test(r));
    const row_bits negated_out = evaluate(parse_program("not(greater_than($3 0))"), t);
    for (std::size_t r = 0; r < t.rows(); ++r) CHECK(negated_out.test(r) == !(t.column(2)[r] > 0.0));
    const table_score one_off = score_output(evaluate(parse_program("greater_than($1 0.5)"), t).words(), t, 0);
    CHECK(one_off.raw < 0.0);
    CHECK_FALSE(one_off.perfect);
    CHECK(score_output(evaluate(parse_program("greater_than($1 0.5)"), t).words(), t, static_cast<std::size_t>(-one_off.raw)).perfect);
}

TEST_CASE("bad predicates and labelled tables are rejected with what and where") {
    CHECK(throws_with<format_error>([] { (void)parse_program("greater_than($1)"); }, "threshold"));
    CHECK(throws_with<format_error>([] { (void)parse_program("greater_than(0.5 $1)"); }, "argument $i first"));
    CHECK(throws_with<format_error>([] { (void)parse_program("greater_than($1 0.5 0.7)"); }, "exactly an argument and a threshold"));
    CHECK(throws_with<format_error>([] { (void)parse_program("greater_than $1 0.5"); }, "expected '('"));
    CHECK(throws_with<format_error>([] { (void)parse_program("greater_than($1 inf)"); }, "finite number"));
    CHECK_THROWS_AS((void)make_greater_than(0, 0.5f), invalid_argument_error);
    CHECK_THROWS_AS((void)make_greater_than(1, NAN), value_error);
    program nan_threshold = make_greater_than(1, 0.5f);
    nan_threshold.head.value = std::nanf("");
    const labelled_table t = small_labelled();
    CHECK(throws_with<value_error>([&] { (void)evaluate(nan_threshold, t); }, "non-finite threshold"));
    CHECK(throws_with<shape_error>([&] { (void)evaluate(parse_program("greater_than($4 0)"), t); }, "reads $4 but the table has 3"));
    CHECK(throws_with<invalid_argument_error>([&] { (void)evaluate(parse_program("and(greater_than($1 0) $2)"), t); },
                                              "'$2' at vertex 2 reads a Boolean input"));
    const truth_table bits = truth_table::complete(2, [](std::uint32_t) { return true; });
    CHECK(throws_with<invalid_argument_error>([&] { (void)evaluate(parse_program("or($1 greater_than($2 0))"), bits); },
                                              "truth table's inputs are Boolean"));
    const data_table d({{1.0}}, {1.0});
    CHECK(throws_with<invalid_argument_error>([&] { (void)evaluate(parse_program("+($1 greater_than($1 0))"), d); }, "type mismatch"));

    CHECK(throws_with<shape_error>([] { labelled_table x({{1.0, 2.0}, {1.0}}, {true, false}); }, "row 1 has 1 inputs"));
    CHECK_THROWS_AS(labelled_table({{1.0}}, {true, false}), shape_error);
    CHECK_THROWS_AS(labelled_table({{}}, {true}), shape_error);
    CHECK_THROWS_AS(labelled_table({}, {}), invalid_argument_error);
    CHECK(throws_with<value_error>([] { labelled_table x({{1.0}, {INFINITY}}, {true, false}); }, "row 1"));
}

TEST_CASE("the reduct merges predicates on one input and keeps what mixed programs compute") {
    const char* equal[][2] = {
            {"and(greater_than($1 0.2) greater_than($1 0.5))", "greater_than($1 0.5)"},
            {"or(greater_than($1 0.2) greater_than($1 0.5))", "greater_than($1 0.2)"},
            {"and(!greater_than($1 0.2) !greater_than($1 0.5))", "!greater_than($1 0.2)"},
            {"or(!greater_than($1 0.2) !greater_than($1 0.5))", "!greater_than($1 0.5)"},
            {"and(greater_than($1 0.5) !greater_than($1 0.5))", "false"},
            {"and(greater_than($1 0.5) !greater_than($1 0.25))", "false"},
            {"or(greater_than($1 0.25) !greater_than($1 0.5))", "true"},
            {"not(greater_than($2 0.5))", "!greater_than($2 0.5)"},
            {"or(and(greater_than($1 0.5) greater_than($2 0)) and(greater_than($1 0.5) $3))",
             "and(greater_than($1 0.5) or(greater_than($2 0) $3))"},
    };
    for (const auto& e : equal) {
        CAPTURE(e[0]);
        CHECK(to_string(reduced(e[0])) == to_string(reduced(e[1])));
    }
    // Different inputs, or bounds that leave a gap, stay.
    CHECK(to_string(reduced("and(greater_than($1 0.25) !greater_than($1 0.5))")) == "and(greater_than($1 0.25) !greater_than($1 0.5))");
    CHECK(complexity(reduced("or(greater_than($1 0.5) greater_than($2 0.5))")) == 4);

    // Random instances of a mixed representation: the reduct keeps their rows, never adds complexity, and
    // is idempotent.
    const labelled_table t = small_labelled();
    rng gen(13);
    program exemplar = make_bool(true);
    for (int round = 0; round < 6; ++round) {
        const representation rep = representation::build(exemplar, t, gen);
        std::vector<float> c(rep.initial_constants().begin(), rep.initial_constants().end());
        for (const auto& s : random_settings(rep, gen, 15, 6)) {
            for (auto& v : c)
                if (gen.below(4) == 0) v = static_cast<float>(gen.below(8)) * 0.125f;
            const program raw = rep.to_program(s, c);
            const program r = reduce(raw);
            CAPTURE(to_string(raw));
            CHECK(evaluate(r, t) == evaluate(raw, t));
            CHECK(complexity(r) <= complexity(raw));
            CHECK(reduce(r) == r);
        }
        exemplar = reduce(rep.to_program(random_settings(rep, gen, 1, 8).front(), c));
    }
}

TEST_CASE("a mixed representation's instances evaluate as the programs they stand for") {
    const labelled_table t = small_labelled();
    rng gen(17);
    for (const char* text : {"true", "greater_than($2 0.5)", "and(greater_than($1 0.5) or(!greater_than($2 0.25) greater_than($3 0)))"}) {
        CAPTURE(text);
        const program exemplar = parse_program(text);
        const representation rep = representation::build(exemplar, t, gen);
        CHECK(rep.predicates());
        CHECK(rep.constant_count() > 3);  // a threshold knob per predicate
        std::vector<std::uint64_t> out(t.word_count()), scratch;
        const std::vector<std::uint8_t> zero(rep.discrete_knobs().size(), 0);
        std::vector<float> c(rep.initial_constants().begin(), rep.initial_constants().end());
        rep.evaluate(zero, c, t, out, scratch);
        CHECK(mismatches(out, evaluate(exemplar, t).words(), t.rows()) == 0);
        CHECK(reduce(rep.to_program(zero, c)) == reduce(exemplar));
        for (const auto& s : random_settings(rep, gen, 20, 5)) {
            for (auto& v : c)
                if (gen.below(3) == 0) v = static_cast<float>(gen.uniform());
            const int cx = rep.evaluate(s, c, t, out, scratch);
            const program p = rep.to_program(s, c);
            CHECK(mismatches(out, evaluate(p, t).words(), t.rows()) == 0);
            CHECK(cx == complexity(p));
            CHECK(cx == rep.complexity(s, c));
        }
    }
    // Each kind of representation refuses the other's atoms and tables.
    CHECK(throws_with<invalid_argument_error>([&] { (void)representation::build(parse_program("and($1 $2)"), t, gen); },
                                              "a literal at vertex 1"));
    CHECK(throws_with<invalid_argument_error>(
            [&] { (void)representation::build(parse_program("or(greater_than($1 0) $2)"), value_type::boolean, 2, gen); },
            "a predicate at vertex 1"));
    const representation mixed = representation::build(make_bool(true), t, gen);
    const truth_table bits = truth_table::complete(3, [](std::uint32_t) { return true; });
    std::vector<std::uint64_t> out(bits.word_count()), scratch;
    const std::vector<std::uint8_t> zero(mixed.discrete_knobs().size(), 0);
    CHECK(throws_with<invalid_argument_error>([&] { (void)mixed.evaluate(zero, bits, out, scratch); }, "needs a labelled table"));
    const representation plain = representation::build(make_bool(true), value_type::boolean, 3, gen);
    const std::vector<std::uint8_t> plain_zero(plain.discrete_knobs().size(), 0);
    std::vector<std::uint64_t> wide(t.word_count());
    CHECK(throws_with<invalid_argument_error>([&] { (void)plain.evaluate(plain_zero, {}, t, wide, scratch); }, "labelled table"));
}

TEST_CASE("the threshold-rule problem flips exactly its noise and its rule misses only those rows") {
    const problem p = threshold_rule(5, 200, 0.1, 3);
    const auto& t = std::get<labelled_table>(p.table);
    CHECK(t.arity() == 5);
    CHECK(t.rows() == 200);
    CHECK(p.tolerance == 20.0);
    const table_score rule = score_output(
            evaluate(parse_program("or(and(greater_than($1 0.5) greater_than($2 0.3)) greater_than($3 0.7))"), t).words(), t, 20);
    CHECK(rule.raw == -20.0);
    CHECK(rule.perfect);
    // Thresholds anywhere in the margin split the rows the same way.
    const table_score moved = score_output(
            evaluate(parse_program("or(and(greater_than($1 0.52) greater_than($2 0.28)) greater_than($3 0.72))"), t).words(), t, 20);
    CHECK(moved.raw == -20.0);
    CHECK(make_problem("rule", 3).name == "threshold-rule-3");
    CHECK(throws_with<invalid_argument_error>([] { (void)threshold_rule(2); }, "k = 2 is out of range 3..16"));
    CHECK_THROWS_AS((void)threshold_rule(4, 8), invalid_argument_error);
    CHECK_THROWS_AS((void)threshold_rule(4, 256, 0.5), invalid_argument_error);
    CHECK_THROWS_AS((void)threshold_rule(4, 256, NAN), invalid_argument_error);
}

// ---------------------------------------------------------------------------------------------- threads

TEST_CASE("a run gives the same result on one and two threads") {
    for (const char* name : {"parity", "rule"}) {
        CAPTURE(std::string(name));
        const problem prob = make_problem(name, 4);
        moses_params params;
        params.seed = 3;
        params.max_evals = 20000;
        params.restart_after = 6000;  // restarts are part of what must not depend on the thread count
        params.threads = 1;
        const moses_result one = run_moses(prob, params);
        params.threads = 2;
        const moses_result two = run_moses(prob, params);
        CHECK(one.best == two.best);
        CHECK(one.evaluations == two.evaluations);
        CHECK(one.demes == two.demes);
        CHECK(one.restarts == two.restarts);
        CHECK(one.solved == two.solved);
        CHECK(one.score.raw == two.score.raw);
        CHECK(one.score.complexity == two.score.complexity);
    }
}

TEST_CASE("restarts and thread parameters are checked and kept within the budget") {
    const problem prob = make_problem("parity", 4);
    moses_params params;
    params.max_evals = 12000;
    params.restart_after = 1500;
    const moses_result r = run_moses(prob, params);
    CHECK(r.evaluations <= 12000);
    CHECK((r.solved || r.restarts > 0));
    CHECK(default_restart_after(make_problem("sr", 2)) == 0);
    CHECK(default_restart_after(prob) > 0);
    params.threads = 5000;
    CHECK(throws_with<invalid_argument_error>([&] { (void)run_moses(prob, params); }, "threads"));

    // A pool of two threads needs a scorer that says which worker calls it.
    const truth_table t = truth_table::complete(3, [](std::uint32_t row) { return (row & 1) != 0; });
    rng gen(2);
    const representation rep = representation::build(make_bool(true), value_type::boolean, 3, gen);
    std::vector<std::uint64_t> out(t.word_count()), scratch;
    auto serial = [&](std::span<const std::uint8_t> s, std::span<const float>) {
        const int c = rep.evaluate(s, t, out, scratch);
        return make_score(score_output(std::span<const std::uint64_t>(out), t), c, 3.5);
    };
    cogqat::thread_pool pool(2);
    CHECK(throws_with<invalid_argument_error>(
            [&] { (void)hill_climb<float_values>(rep, serial, 1000, gen, hill_climbing_params{}, 5, &pool); }, "takes the worker index"));
    CHECK(hill_climb<float_values>(rep, serial, 1000, gen, hill_climbing_params{}, 5).perfect);
}
