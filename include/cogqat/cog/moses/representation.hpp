#pragma once
// Representation building: an exemplar program decorated with knobs. An instance (one setting per knob)
// picks one program from the neighbourhood of the exemplar; the all-zero instance is the exemplar itself.
//
// Boolean exemplars are decorated as MOSES does it. The tree is first made to start with two alternating
// junctors (and(...) becomes or(and(...))). Then, at every junctor, a logical subtree knob (absent / present /
// negated) is added for each literal $i and for as many random pairs dual($a $b) as there are literals; each
// existing literal child is wrapped in a dual junctor that gets the same knobs; and an empty dual junctor is
// appended that gets them too, so that a new clause can grow. Two additions of ours: an existing
// junctor child gets a present/absent knob, so a clause can be dropped in one step; and knobs whose every
// setting is already decided by the context (a literal inside and($1 ...) that is $1 or !$1) are not built,
// which is the cheap part of MOSES's knob probing.
//
// Mixed exemplars (Boolean trees over greater_than predicates, for labelled tables) are decorated the same
// way with predicates greater_than($i c) in place of the literals $i: each predicate's threshold is a
// constant knob of its own (starting at the median of its column), stored by the value policy like any
// constant, so the search moves thresholds by the same constant moves and scores them quantized.
//
// Continuous exemplars are put in the form c0 + c1*T1 + c2*T2 + ... where each T is a product of factors.
// Every constant becomes a constant knob (its value lives in the instance and is stored by the value
// policy); each term gets a present/absent factor knob $i per argument; and new terms are offered with a
// coefficient knob starting at 0: $i, $i*$j, f(d*$i) for f in exp, log, sin (d a constant knob too), and
// each existing term times $i. A term whose coefficient is 0 is absent, so growing and removing terms are
// ordinary constant moves.
//
// Instances are evaluated on the decorated tree directly, over all rows at once, without building a
// program; only instances that reach the metapopulation are turned into programs and reduced.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "cogqat/cog/moses/program.hpp"
#include "cogqat/cog/moses/random.hpp"
#include "cogqat/cog/moses/table.hpp"
#include "cogqat/cog/moses/vertex.hpp"
#include "cogqat/core/error.hpp"

namespace cogqat::cog::moses {

/// What a discrete knob does to its subtree.
enum class knob_setting : std::uint8_t { present, absent, negated };

/// Parameters of representation building; the defaults are MOSES's where it has one.
struct representation_params {
    /// Random pairs per junctor: 0 gives as many pairs as literals (MOSES's default), a positive r moves the
    /// count a fraction r of the way to all ordered pairs, -1 or below gives none.
    double perm_ratio = 0.0;
    /// Largest move of a constant knob in one step.
    float constant_step = 1.0f;
    /// Moves of a constant knob: +-step, +-step/2, ..., +-step/2^(depth-1).
    int constant_depth = 5;
    /// A present/absent knob on each existing junctor child.
    bool clause_knobs = true;
    /// Skip knobs whose settings are all decided by the literals of enclosing junctors.
    bool context_pruning = true;
    /// Functions offered as new terms f($i) in continuous representations.
    std::vector<vertex_kind> functions{vertex_kind::exp, vertex_kind::log, vertex_kind::sin};
};

/// An exemplar decorated with knobs.
class representation {
public:
    /// A vertex of the decorated tree.
    struct node {
        vertex v;
        std::vector<std::uint32_t> children;
        /// Discrete knob deciding whether (and how) this subtree appears in its parent; -1: always present.
        std::int32_t knob = -1;
        /// Constant knob that supplies this constant's value; -1: the value in v.
        std::int32_t constant = -1;
        /// Constant knob whose value 0 removes this term from its sum; -1: none.
        std::int32_t gate = -1;
    };

    /// A discrete knob: the node it governs and its settings; setting 0 is the exemplar's.
    struct discrete_knob {
        std::uint32_t node = 0;
        std::uint8_t count = 0;
        std::array<knob_setting, 3> settings{};
    };

    /// Decorates `exemplar` (reduced or not) as a program of `type` over `arity` inputs; `gen` draws the
    /// random pairs. Throws what validate() throws when the exemplar does not fit, and
    /// invalid_argument_error on bad parameters.
    static representation build(const program& exemplar, value_type type, std::size_t arity, rng& gen,
                                const representation_params& params = {}) {
        validate(exemplar, type, arity);
        check_params(params);
        if (type == value_type::boolean) {
            std::size_t position = 0;
            if (const std::optional<std::size_t> at = find_atom(exemplar, true, position))
                throw invalid_argument_error("representation: type mismatch: a predicate at vertex " + std::to_string(*at) +
                                             " of a Boolean exemplar over Boolean inputs (use build with a labelled table)");
        }
        representation r;
        r.type_ = type;
        r.arity_ = arity;
        r.params_ = params;
        if (type == value_type::boolean)
            r.build_boolean(exemplar, gen);
        else
            r.build_continuous(exemplar);
        r.depth_ = r.measure_depth(0);
        return r;
    }

    /// Decorates a mixed exemplar (a Boolean tree over greater_than predicates, `true` to start from scratch)
    /// for the labelled table `t`: knobs offer greater_than($i c) for every input, c a constant knob starting
    /// at the median of column i. Throws what validate() throws when the exemplar does not fit,
    /// invalid_argument_error for a literal $i in it and on bad parameters.
    static representation build(const program& exemplar, const labelled_table& t, rng& gen, const representation_params& params = {}) {
        validate(exemplar, value_type::boolean, t.arity());
        check_params(params);
        std::size_t position = 0;
        if (const std::optional<std::size_t> at = find_atom(exemplar, false, position))
            throw invalid_argument_error("representation: type mismatch: a literal at vertex " + std::to_string(*at) +
                                         " of a mixed exemplar; a labelled table's inputs are continuous (use greater_than($i c))");
        representation r;
        r.type_ = value_type::boolean;
        r.arity_ = t.arity();
        r.params_ = params;
        r.predicates_ = true;
        r.medians_.resize(t.arity());
        for (std::size_t i = 0; i < t.arity(); ++i) {
            std::vector<double> col(t.column(i).begin(), t.column(i).end());
            std::nth_element(col.begin(), col.begin() + static_cast<std::ptrdiff_t>(col.size() / 2), col.end());
            r.medians_[i] = static_cast<float>(col[col.size() / 2]);
        }
        r.build_boolean(exemplar, gen);
        r.depth_ = r.measure_depth(0);
        return r;
    }

    /// True for a representation of a mixed program, built for a labelled table.
    [[nodiscard]] bool predicates() const noexcept { return predicates_; }

    [[nodiscard]] value_type type() const noexcept { return type_; }
    [[nodiscard]] std::size_t arity() const noexcept { return arity_; }
    [[nodiscard]] std::span<const node> nodes() const noexcept { return nodes_; }
    [[nodiscard]] std::span<const discrete_knob> discrete_knobs() const noexcept { return knobs_; }
    [[nodiscard]] std::size_t constant_count() const noexcept { return initial_constants_.size(); }
    /// Values of the constant knobs in the exemplar (new terms start at 0).
    [[nodiscard]] std::span<const float> initial_constants() const noexcept { return initial_constants_; }
    /// Moves a constant knob makes in one step (both signs).
    [[nodiscard]] std::vector<float> constant_moves() const {
        std::vector<float> moves;
        float s = params_.constant_step;
        for (int i = 0; i < params_.constant_depth; ++i, s *= 0.5f) {
            moves.push_back(s);
            moves.push_back(-s);
        }
        return moves;
    }
    /// Depth of the decorated tree (a lone root is depth 1).
    [[nodiscard]] std::size_t depth() const noexcept { return depth_; }

    /// Evaluates an instance on a truth table into `out` (at least t.word_count() words; bits past the last
    /// row are unspecified) and returns its complexity (what complexity() returns), both from one walk of the
    /// tree. `scratch` is resized as needed and may be reused across calls. Throws shape_error when the
    /// settings, the output or the table do not fit the representation, invalid_argument_error for a
    /// setting at or above its knob's count or a continuous representation.
    int evaluate(std::span<const std::uint8_t> settings, const truth_table& t, std::span<std::uint64_t> out,
                 std::vector<std::uint64_t>& scratch) const {
        if (predicates_)
            throw invalid_argument_error(
                    "representation::evaluate: a mixed representation evaluated on a truth table (it needs a labelled table)");
        check_instance(settings, {}, "evaluate");
        check_table(value_type::boolean, t.arity(), out.size(), t.word_count(), "evaluate");
        return evaluate_tree(settings, {}, t, out, scratch);
    }

    /// Evaluates an instance of a mixed representation on a labelled table into `out`, with `constants` (one
    /// per constant knob: the thresholds) as the threshold values, and returns its complexity. Throws as the
    /// truth-table overload, and invalid_argument_error for a representation not built for labelled tables.
    int evaluate(std::span<const std::uint8_t> settings, std::span<const float> constants, const labelled_table& t,
                 std::span<std::uint64_t> out, std::vector<std::uint64_t>& scratch) const {
        if (!predicates_)
            throw invalid_argument_error("representation::evaluate: a representation over Boolean inputs evaluated on a labelled table");
        check_instance(settings, constants, "evaluate");
        check_table(value_type::boolean, t.arity(), out.size(), t.word_count(), "evaluate");
        return evaluate_tree(settings, constants, t, out, scratch);
    }

    /// Evaluates an instance on a data table into `out` (at least t.rows() values), with `constants` (one
    /// per constant knob) as the constant values, and returns its complexity. Throws as the Boolean overload.
    int evaluate(std::span<const std::uint8_t> settings, std::span<const float> constants, const data_table& t, std::span<double> out,
                 std::vector<double>& scratch) const {
        check_instance(settings, constants, "evaluate");
        check_table(value_type::continuous, t.arity(), out.size(), t.rows(), "evaluate");
        const std::size_t rows = t.rows();
        scratch.resize((depth_ + 1) * rows);
        return eval_continuous(0, vertex_kind::logical_true, settings, constants, t, out.data(), scratch.data(), rows);
    }

    /// Complexity of the program an instance stands for, without building it: literals, constants other
    /// than a coefficient 1 or an intercept 0, and divide/exp/log/sin, counted over the present part.
    [[nodiscard]] int complexity(std::span<const std::uint8_t> settings, std::span<const float> constants) const {
        check_instance(settings, constants, "complexity");
        return count(0, vertex_kind::logical_true, settings, constants);
    }

    /// The program an instance stands for (not reduced). Throws value_error for a non-finite constant.
    [[nodiscard]] program to_program(std::span<const std::uint8_t> settings, std::span<const float> constants) const {
        check_instance(settings, constants, "to_program");
        std::optional<program> p = build_program(0, settings, constants);
        if (p) return std::move(*p);
        if (type_ == value_type::boolean) return make_bool(nodes_[0].v.kind == vertex_kind::logical_and);
        return make_constant(0.0f);
    }

private:
    // ------------------------------------------------------------------------------------------ building

    template <class Table>
    int evaluate_tree(std::span<const std::uint8_t> settings, std::span<const float> constants, const Table& t,
                      std::span<std::uint64_t> out, std::vector<std::uint64_t>& scratch) const {
        const std::size_t words = t.word_count();
        scratch.resize((depth_ + 1) * words);
        const int literals = eval_boolean(0, settings, constants, t, out.data(), scratch.data(), words);
        if (literals < 0) {
            std::fill(out.begin(), out.end(), nodes_[0].v.kind == vertex_kind::logical_and ? ~std::uint64_t{0} : std::uint64_t{0});
            return 0;
        }
        return literals;
    }

    static void check_params(const representation_params& params) {
        if (params.constant_depth < 1 || params.constant_depth > 24) {
            throw invalid_argument_error("representation: constant_depth must be in 1..24, got " + std::to_string(params.constant_depth));
        }
        if (!(params.constant_step > 0.0f) || !std::isfinite(params.constant_step)) {
            throw invalid_argument_error("representation: constant_step must be a positive finite number");
        }
        for (const vertex_kind f : params.functions) {
            if (f != vertex_kind::exp && f != vertex_kind::log && f != vertex_kind::sin) {
                throw invalid_argument_error("representation: '" + std::string(info(f).name) +
                                             "' is not a function term (exp, log or sin)");
            }
        }
    }

    /// Pre-order position of the first predicate (predicate = true) or literal (false) in p.
    static std::optional<std::size_t> find_atom(const program& p, bool predicate, std::size_t& position) {
        if (predicate ? is_predicate(p.head.kind) : is_literal(p.head.kind)) return position;
        for (const auto& c : p.children)
            if (std::optional<std::size_t> at = find_atom(c, predicate, ++position)) return at;
        return std::nullopt;
    }

    void check_instance(std::span<const std::uint8_t> settings, std::span<const float> constants, std::string_view context) const {
        if (settings.size() != knobs_.size() || constants.size() != initial_constants_.size()) {
            throw shape_error("representation::" + std::string(context) + ": an instance of " + std::to_string(settings.size()) +
                              " settings and " + std::to_string(constants.size()) + " constants for a representation of " +
                              std::to_string(knobs_.size()) + " discrete and " + std::to_string(initial_constants_.size()) +
                              " constant knobs");
        }
        for (std::size_t k = 0; k < settings.size(); ++k) {
            if (settings[k] >= knobs_[k].count) {
                throw invalid_argument_error("representation::" + std::string(context) + ": setting " + std::to_string(settings[k]) +
                                             " of knob " + std::to_string(k) + ", which has " + std::to_string(knobs_[k].count) +
                                             " settings");
            }
        }
    }

    void check_table(value_type type, std::size_t table_arity, std::size_t out_size, std::size_t needed, std::string_view context) const {
        if (type != type_) {
            throw invalid_argument_error("representation::" + std::string(context) + ": a " +
                                         (type_ == value_type::boolean ? std::string("Boolean") : std::string("continuous")) +
                                         " representation evaluated on the other kind of table");
        }
        if (table_arity < arity_) {
            throw shape_error("representation::" + std::string(context) + ": arity mismatch: the table has " + std::to_string(table_arity) +
                              " inputs, the representation reads " + std::to_string(arity_));
        }
        if (out_size < needed) {
            throw shape_error("representation::" + std::string(context) + ": the output holds " + std::to_string(out_size) + " values, " +
                              std::to_string(needed) + " are needed");
        }
    }

    std::uint32_t add_node(vertex v) {
        nodes_.push_back(node{v, {}, -1, -1, -1});
        return static_cast<std::uint32_t>(nodes_.size() - 1);
    }
    std::uint32_t add_child(std::uint32_t parent, vertex v) {
        const std::uint32_t id = add_node(v);
        nodes_[parent].children.push_back(id);
        return id;
    }
    void add_knob(std::uint32_t id, std::initializer_list<knob_setting> settings) {
        discrete_knob k;
        k.node = id;
        k.count = static_cast<std::uint8_t>(settings.size());
        std::copy(settings.begin(), settings.end(), k.settings.begin());
        nodes_[id].knob = static_cast<std::int32_t>(knobs_.size());
        knobs_.push_back(k);
    }
    std::int32_t add_constant_knob(float value) {
        initial_constants_.push_back(value);
        return static_cast<std::int32_t>(initial_constants_.size() - 1);
    }
    /// Copies a program below `parent`; in continuous trees every constant becomes a constant knob.
    std::uint32_t copy_subtree(std::uint32_t parent, const program& p) {
        const std::uint32_t id = add_child(parent, p.head);
        if ((p.head.kind == vertex_kind::constant && type_ == value_type::continuous) || is_predicate(p.head.kind))
            nodes_[id].constant = add_constant_knob(p.head.value);
        for (const auto& c : p.children) copy_subtree(id, c);
        return id;
    }

    static vertex junctor(vertex_kind k) noexcept { return vertex{k, 0, 0.0f}; }
    /// A new leaf on input `var` below `parent`: the literal $var (!$var) over Boolean inputs, the predicate
    /// greater_than($var median) (its negation) with a threshold knob over continuous ones.
    std::uint32_t add_atom(std::uint32_t parent, std::size_t var, bool positive) {
        if (!predicates_) return add_child(parent, literal(var, positive));
        const float threshold = medians_[var];
        const std::uint32_t id = add_child(parent, vertex{positive ? vertex_kind::greater_than : vertex_kind::not_greater_than,
                                                          static_cast<std::uint32_t>(var), threshold});
        nodes_[id].constant = add_constant_knob(threshold);
        return id;
    }
    static vertex literal(std::size_t var, bool positive) noexcept {
        return vertex{positive ? vertex_kind::argument : vertex_kind::negated_argument, static_cast<std::uint32_t>(var), 0.0f};
    }

    void build_boolean(const program& exemplar_in, rng& gen) {
        // Knobs go on a tree in negation normal form: `not` only in front of arguments, as !$i.
        const program exemplar = to_nnf(exemplar_in);
        const vertex_kind k = exemplar.head.kind;
        std::uint32_t root = 0;
        if (k == vertex_kind::logical_and || k == vertex_kind::logical_or) {
            root = add_node(junctor(dual(k)));
            copy_subtree(root, exemplar);
        } else if (is_atom(k)) {
            root = add_node(junctor(vertex_kind::logical_or));
            const std::uint32_t inner = add_child(root, junctor(vertex_kind::logical_and));
            copy_subtree(inner, exemplar);
        } else {
            // A constant: an empty junctor pair that evaluates to the same constant.
            const bool value = k == vertex_kind::logical_true;
            root = add_node(junctor(value ? vertex_kind::logical_and : vertex_kind::logical_or));
            add_child(root, junctor(value ? vertex_kind::logical_or : vertex_kind::logical_and));
        }
        build_logical(root, std::vector<std::int8_t>(arity_, -1), gen);
    }

    /// Pushes `not` onto the arguments (De Morgan), so the decorated tree has none.
    static program to_nnf(const program& p, bool negate = false) {
        switch (p.head.kind) {
            case vertex_kind::logical_not:
                return to_nnf(p.children[0], !negate);
            case vertex_kind::logical_true:
            case vertex_kind::logical_false:
                return make_bool((p.head.kind == vertex_kind::logical_true) != negate);
            case vertex_kind::argument:
            case vertex_kind::negated_argument:
            case vertex_kind::greater_than:
            case vertex_kind::not_greater_than: {
                program q = p;
                if (negate) q.head.kind = negated(p.head.kind);
                return q;
            }
            default: {
                program q(vertex{negate ? dual(p.head.kind) : p.head.kind, 0, 0.0f});
                for (const auto& c : p.children) q.children.push_back(to_nnf(c, negate));
                return q;
            }
        }
    }

    /// Value a literal child of junctor `op` lets its siblings assume: true below and, false below or.
    static std::int8_t implied_value(vertex_kind op, vertex_kind literal_kind) noexcept {
        return static_cast<std::int8_t>((literal_kind == vertex_kind::argument) == (op == vertex_kind::logical_and));
    }

    void build_logical(std::uint32_t x, const std::vector<std::int8_t>& context, rng& gen) {
        const vertex_kind op = nodes_[x].v.kind;
        if (!is_junctor(op)) return;
        const vertex_kind flip = dual(op);
        const std::vector<std::uint32_t> original = nodes_[x].children;

        // Below x, each literal child of x may be assumed (true under and, false under or).
        std::vector<std::int8_t> inner = context;
        for (const std::uint32_t c : original) {
            const vertex& v = nodes_[c].v;
            if (is_literal(v.kind) && v.index < arity_) inner[v.index] = implied_value(op, v.kind);
        }
        for (std::size_t i = 0; i < original.size(); ++i) {
            const std::uint32_t c = original[i];
            const vertex_kind ck = nodes_[c].v.kind;
            if (is_atom(ck)) {
                // Wrap the literal in a dual junctor with knobs, its own knob keeping it present by default.
                const std::uint32_t y = add_node(junctor(flip));
                nodes_[x].children[i] = y;
                nodes_[y].children.push_back(c);
                add_knob(c, {knob_setting::present, knob_setting::absent, knob_setting::negated});
                add_perm_knobs(y, inner, gen);
            } else if (is_junctor(ck)) {
                if (params_.clause_knobs) add_knob(c, {knob_setting::present, knob_setting::absent});
                build_logical(c, inner, gen);
            }
        }
        add_perm_knobs(x, inner, gen);
        const std::uint32_t z = add_child(x, junctor(flip));
        add_perm_knobs(z, inner, gen);
    }

    /// Literal knobs $i (absent by default) and random pair knobs dual($a $b) below junctor n, for the
    /// variables the context leaves open.
    void add_perm_knobs(std::uint32_t n, const std::vector<std::int8_t>& context, rng& gen) {
        std::vector<std::size_t> open;
        for (std::size_t v = 0; v < arity_; ++v)
            if (!params_.context_pruning || predicates_ || context[v] < 0) open.push_back(v);
        for (const std::size_t v : open) {
            const std::uint32_t id = add_atom(n, v, true);
            add_knob(id, {knob_setting::absent, knob_setting::present, knob_setting::negated});
        }
        if (params_.perm_ratio <= -1.0 || open.size() < 2) return;
        const std::size_t ps = open.size();
        const std::size_t max_pairs = ps * (ps - 1);
        std::size_t pairs = 0;
        if (params_.perm_ratio > 0.0) {
            pairs = static_cast<std::size_t>(static_cast<double>(ps) + params_.perm_ratio * static_cast<double>(max_pairs - ps));
        } else {
            pairs = static_cast<std::size_t>((1.0 + params_.perm_ratio) * static_cast<double>(ps));
        }
        pairs = std::min(pairs, max_pairs);
        // A partial Fisher-Yates shuffle of the ordered pairs (a, b), a != b, picks them without repeats.
        std::vector<std::uint32_t> all(max_pairs);
        for (std::size_t i = 0; i < max_pairs; ++i) all[i] = static_cast<std::uint32_t>(i);
        const vertex_kind pair_op = dual(nodes_[n].v.kind);
        for (std::size_t i = 0; i < pairs; ++i) {
            std::swap(all[i], all[i + gen.below(max_pairs - i)]);
            const std::size_t a = open[all[i] / (ps - 1)];
            std::size_t bi = all[i] % (ps - 1);
            if (bi >= all[i] / (ps - 1)) ++bi;
            const std::size_t b = open[bi];
            const std::uint32_t pid = add_child(n, junctor(pair_op));
            // As in MOSES: (b a) when b < a, else (!a b), so both polarities of a pair occur.
            if (b < a) {
                add_atom(pid, b, true);
                add_atom(pid, a, true);
            } else {
                add_atom(pid, a, false);
                add_atom(pid, b, true);
            }
            add_knob(pid, {knob_setting::absent, knob_setting::present, knob_setting::negated});
        }
    }

    void build_continuous(const program& exemplar) {
        float intercept = 0.0f;
        std::vector<std::pair<float, std::vector<program>>> terms;
        std::vector<program> top;
        if (exemplar.head.kind == vertex_kind::plus)
            top = exemplar.children;
        else
            top.push_back(exemplar);
        for (const auto& t : top) {
            if (t.head.kind == vertex_kind::constant) {
                intercept += t.head.value;
            } else if (t.head.kind == vertex_kind::times) {
                float coef = 1.0f;
                std::vector<program> factors;
                for (const auto& f : t.children) {
                    if (f.head.kind == vertex_kind::constant)
                        coef *= f.head.value;
                    else
                        factors.push_back(f);
                }
                terms.emplace_back(coef, std::move(factors));
            } else {
                terms.emplace_back(1.0f, std::vector<program>{t});
            }
        }
        if (!std::isfinite(intercept)) intercept = 0.0f;
        const std::uint32_t root = add_node(junctor(vertex_kind::plus));
        const std::uint32_t c0 = add_child(root, vertex{vertex_kind::constant, 0, intercept});
        nodes_[c0].constant = add_constant_knob(intercept);
        for (const auto& [coef, factors] : terms) add_term(root, std::isfinite(coef) ? coef : 1.0f, factors, true);
        for (std::size_t v = 0; v < arity_; ++v) add_term(root, 0.0f, {program(literal(v, true))}, false);
        for (std::size_t v = 0; v < arity_; ++v)
            for (std::size_t w = v; w < arity_; ++w) add_term(root, 0.0f, {program(literal(v, true)), program(literal(w, true))}, false);
        // A function term is c * f(d * $i), as in MOSES, with d starting at 0 (at 1 for log, whose log(0) is
        // -inf): reaching c * exp($1) then takes two moves, so that the exponential, which fits anything
        // smooth a little, does not capture the first deme of every regression.
        for (const vertex_kind f : params_.functions) {
            for (std::size_t v = 0; v < arity_; ++v) {
                const float inner = f == vertex_kind::log ? 1.0f : 0.0f;
                add_term(root, 0.0f, {make_function(f, make_times({make_constant(inner), program(literal(v, true))}))}, false);
            }
        }
        for (const auto& term : terms) {
            for (std::size_t v = 0; v < arity_; ++v) {
                std::vector<program> grown = term.second;
                grown.emplace_back(literal(v, true));
                add_term(root, 0.0f, grown, false);
            }
        }
    }

    void add_term(std::uint32_t root, float coef, const std::vector<program>& factors, bool factor_knobs) {
        const std::uint32_t t = add_child(root, junctor(vertex_kind::times));
        const std::uint32_t c = add_child(t, vertex{vertex_kind::constant, 0, coef});
        nodes_[c].constant = add_constant_knob(coef);
        nodes_[t].gate = nodes_[c].constant;
        for (const auto& f : factors) copy_subtree(t, f);
        if (factor_knobs) {
            for (std::size_t v = 0; v < arity_; ++v) {
                const std::uint32_t id = add_child(t, literal(v, true));
                add_knob(id, {knob_setting::absent, knob_setting::present});
            }
        }
    }

    std::size_t measure_depth(std::uint32_t id) const {
        std::size_t d = 0;
        for (const std::uint32_t c : nodes_[id].children) d = std::max(d, measure_depth(c));
        return d + 1;
    }

    // ----------------------------------------------------------------------------------------- reading

    knob_setting setting_of(std::uint32_t id, std::span<const std::uint8_t> settings) const noexcept {
        const std::int32_t k = nodes_[id].knob;
        if (k < 0) return knob_setting::present;
        return knobs_[static_cast<std::size_t>(k)].settings[settings[static_cast<std::size_t>(k)]];
    }
    bool gated_off(std::uint32_t id, std::span<const float> constants) const noexcept {
        const std::int32_t g = nodes_[id].gate;
        return g >= 0 && constants[static_cast<std::size_t>(g)] == 0.0f;
    }
    float value_of(const node& n, std::span<const float> constants) const noexcept {
        return n.constant >= 0 ? constants[static_cast<std::size_t>(n.constant)] : n.v.value;
    }

    /// Writes the subtree's rows into `out` and returns its literal count; -1 when the subtree is empty
    /// (every child absent), in which case the parent leaves it out, as MOSES's cleanup removes childless
    /// junctors.
    template <class Table>
    int eval_boolean(std::uint32_t id, std::span<const std::uint8_t> settings, std::span<const float> constants, const Table& t,
                     std::uint64_t* out, std::uint64_t* scratch, std::size_t words) const {
        const node& n = nodes_[id];
        switch (n.v.kind) {
            case vertex_kind::argument:
            case vertex_kind::negated_argument:
                if constexpr (std::is_same_v<Table, truth_table>) {
                    const std::uint64_t* col = t.column(n.v.index).data();
                    const std::uint64_t flip = n.v.kind == vertex_kind::negated_argument ? ~std::uint64_t{0} : 0;
                    for (std::size_t w = 0; w < words; ++w) out[w] = col[w] ^ flip;
                }
                return 1;
            case vertex_kind::greater_than:
            case vertex_kind::not_greater_than:
                if constexpr (std::is_same_v<Table, labelled_table>) {
                    greater_than_bits(t.column(n.v.index), static_cast<double>(value_of(n, constants)),
                                      std::span<std::uint64_t>(out, words));
                    if (n.v.kind == vertex_kind::not_greater_than)
                        for (std::size_t w = 0; w < words; ++w) out[w] = ~out[w];
                }
                return 2;
            case vertex_kind::logical_true:
                std::fill_n(out, words, ~std::uint64_t{0});
                return 0;
            case vertex_kind::logical_false:
                std::fill_n(out, words, std::uint64_t{0});
                return 0;
            case vertex_kind::logical_not: {
                const int c = eval_boolean(n.children[0], settings, constants, t, out, scratch, words);
                if (c >= 0)
                    for (std::size_t w = 0; w < words; ++w) out[w] = ~out[w];
                return c;
            }
            case vertex_kind::logical_and:
            case vertex_kind::logical_or: {
                const bool is_and = n.v.kind == vertex_kind::logical_and;
                int total = -1;
                for (const std::uint32_t c : n.children) {
                    const knob_setting s = setting_of(c, settings);
                    if (s == knob_setting::absent) continue;
                    std::uint64_t* dst = total >= 0 ? scratch : out;
                    const int literals = eval_boolean(c, settings, constants, t, dst, scratch + words, words);
                    if (literals < 0) continue;
                    if (s == knob_setting::negated)
                        for (std::size_t w = 0; w < words; ++w) dst[w] = ~dst[w];
                    if (total >= 0) {
                        if (is_and) {
                            for (std::size_t w = 0; w < words; ++w) out[w] &= dst[w];
                        } else {
                            for (std::size_t w = 0; w < words; ++w) out[w] |= dst[w];
                        }
                    }
                    total = std::max(total, 0) + literals;
                }
                return total;
            }
            default:
                return -1;
        }
    }

    /// Writes the subtree's rows into `out` and returns its complexity; `parent` is the kind of the parent,
    /// which decides whether a constant counts (a coefficient 1 or an intercept 0 disappears in the reduct).
    int eval_continuous(std::uint32_t id, vertex_kind parent, std::span<const std::uint8_t> settings, std::span<const float> constants,
                        const data_table& t, double* out, double* scratch, std::size_t rows) const {
        const node& n = nodes_[id];
        switch (n.v.kind) {
            case vertex_kind::constant: {
                const float v = value_of(n, constants);
                std::fill_n(out, rows, static_cast<double>(v));
                return (parent == vertex_kind::times && v == 1.0f) || (parent == vertex_kind::plus && v == 0.0f) ? 0 : 1;
            }
            case vertex_kind::argument:
                std::copy_n(t.column(n.v.index).data(), rows, out);
                return 1;
            case vertex_kind::plus:
            case vertex_kind::times: {
                const bool is_plus = n.v.kind == vertex_kind::plus;
                bool any = false;
                int total = 0;
                for (const std::uint32_t c : n.children) {
                    if (gated_off(c, constants) || setting_of(c, settings) == knob_setting::absent) continue;
                    double* dst = any ? scratch : out;
                    total += eval_continuous(c, n.v.kind, settings, constants, t, dst, scratch + rows, rows);
                    if (any) {
                        if (is_plus) {
                            for (std::size_t r = 0; r < rows; ++r) out[r] += dst[r];
                        } else {
                            for (std::size_t r = 0; r < rows; ++r) out[r] *= dst[r];
                        }
                    }
                    any = true;
                }
                if (!any) std::fill_n(out, rows, is_plus ? 0.0 : 1.0);
                return total;
            }
            case vertex_kind::divide: {
                int total = 1 + eval_continuous(n.children[0], n.v.kind, settings, constants, t, out, scratch, rows);
                total += eval_continuous(n.children[1], n.v.kind, settings, constants, t, scratch, scratch + rows, rows);
                for (std::size_t r = 0; r < rows; ++r) out[r] /= scratch[r];
                return total;
            }
            case vertex_kind::exp:
            case vertex_kind::log:
            case vertex_kind::sin: {
                const int total = 1 + eval_continuous(n.children[0], n.v.kind, settings, constants, t, out, scratch, rows);
                if (n.v.kind == vertex_kind::exp) {
                    for (std::size_t r = 0; r < rows; ++r) out[r] = std::exp(out[r]);
                } else if (n.v.kind == vertex_kind::log) {
                    for (std::size_t r = 0; r < rows; ++r) out[r] = std::log(out[r]);
                } else {
                    for (std::size_t r = 0; r < rows; ++r) out[r] = std::sin(out[r]);
                }
                return total;
            }
            default:
                std::fill_n(out, rows, 0.0);
                return 0;
        }
    }

    int count(std::uint32_t id, vertex_kind parent, std::span<const std::uint8_t> settings, std::span<const float> constants) const {
        const node& n = nodes_[id];
        switch (n.v.kind) {
            case vertex_kind::argument:
            case vertex_kind::negated_argument:
                return 1;
            case vertex_kind::greater_than:
            case vertex_kind::not_greater_than:
                return 2;
            case vertex_kind::constant: {
                // A coefficient 1 or an intercept 0 disappears in the reduct.
                const float v = value_of(n, constants);
                if ((parent == vertex_kind::times && v == 1.0f) || (parent == vertex_kind::plus && v == 0.0f)) return 0;
                return 1;
            }
            default:
                break;
        }
        int c = (n.v.kind == vertex_kind::divide || n.v.kind == vertex_kind::exp || n.v.kind == vertex_kind::log ||
                 n.v.kind == vertex_kind::sin)
                        ? 1
                        : 0;
        for (const std::uint32_t k : n.children) {
            if (gated_off(k, constants) || setting_of(k, settings) == knob_setting::absent) continue;
            c += count(k, n.v.kind, settings, constants);
        }
        return c;
    }

    std::optional<program> build_program(std::uint32_t id, std::span<const std::uint8_t> settings, std::span<const float> constants) const {
        const node& n = nodes_[id];
        if (n.v.kind == vertex_kind::constant) return make_constant(value_of(n, constants));
        if (is_predicate(n.v.kind)) {
            program p = make_greater_than(n.v.index + 1, value_of(n, constants));
            p.head.kind = n.v.kind;
            return p;
        }
        if (n.children.empty() && !is_junctor(n.v.kind) && n.v.kind != vertex_kind::plus && n.v.kind != vertex_kind::times)
            return program(n.v);
        std::vector<program> kids;
        for (const std::uint32_t c : n.children) {
            if (gated_off(c, constants)) continue;
            const knob_setting s = setting_of(c, settings);
            if (s == knob_setting::absent) continue;
            std::optional<program> k = build_program(c, settings, constants);
            if (!k) continue;
            kids.push_back(s == knob_setting::negated ? make_not(std::move(*k)) : std::move(*k));
        }
        if (is_junctor(n.v.kind) && kids.empty()) return std::nullopt;
        if (n.v.kind == vertex_kind::logical_not && kids.empty()) return std::nullopt;
        return program(n.v, std::move(kids));
    }

    value_type type_ = value_type::boolean;
    std::size_t arity_ = 0;
    std::size_t depth_ = 1;
    representation_params params_;
    bool predicates_ = false;
    std::vector<float> medians_;  // per input of a labelled table: where new thresholds start
    std::vector<node> nodes_;
    std::vector<discrete_knob> knobs_;
    std::vector<float> initial_constants_;
};

}  // namespace cogqat::cog::moses
