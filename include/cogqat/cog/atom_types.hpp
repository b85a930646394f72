#pragma once
// Atom types and their subtype hierarchy. A type has a name and any number of parents; a type descends
// from Node or from Link (never both), and an unordered link type (a descendant of UnorderedLink) makes
// the AtomSpace keep its outgoing sets in a canonical order. Every AtomSpace owns its own registry, so
// user types never leak from one space into another (there is no global type table).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cogqat/core/error.hpp"

namespace cogqat::cog {

/// Identifier of an atom type inside one registry; built-in types have the fixed ids in `types`.
using type_id = std::uint16_t;

/// The built-in types, registered in this order by every atom_type_registry, so their ids are constants.
/// Names and parents follow OpenCog's atom_types.script (attention types from opencog/attention), restricted
/// to the types in this table: OpenCog's pure mixins (BooleanLink, NumericLink, TypeOutputLink, ...) and
/// ProcedureNode are left out, so PredicateNode and SchemaNode sit under Node, TypeNode under Node (OpenCog:
/// PredicateNode) and EvaluationLink under OrderedLink (OpenCog: FreeLink, which comes later here). Ids only
/// grow: a new type is appended, so stored ids keep their meaning.
namespace types {
inline constexpr type_id atom = 0;
inline constexpr type_id node = 1;
inline constexpr type_id link = 2;
inline constexpr type_id concept_node = 3;
inline constexpr type_id predicate_node = 4;
inline constexpr type_id variable_node = 5;
inline constexpr type_id number_node = 6;
inline constexpr type_id schema_node = 7;
inline constexpr type_id type_node = 8;
inline constexpr type_id ordered_link = 9;
inline constexpr type_id unordered_link = 10;
inline constexpr type_id evaluatable_link = 11;
inline constexpr type_id list_link = 12;
inline constexpr type_id set_link = 13;
inline constexpr type_id member_link = 14;
inline constexpr type_id evaluation_link = 15;
inline constexpr type_id execution_link = 16;
inline constexpr type_id inheritance_link = 17;
inline constexpr type_id subset_link = 18;
inline constexpr type_id similarity_link = 19;
inline constexpr type_id implication_link = 20;
inline constexpr type_id and_link = 21;
inline constexpr type_id or_link = 22;
inline constexpr type_id not_link = 23;
inline constexpr type_id context_link = 24;
inline constexpr type_id hebbian_link = 25;
inline constexpr type_id asymmetric_hebbian_link = 26;
inline constexpr type_id symmetric_hebbian_link = 27;
inline constexpr type_id inverse_hebbian_link = 28;
inline constexpr type_id glob_node = 29;
inline constexpr type_id anchor_node = 30;
inline constexpr type_id defined_schema_node = 31;
inline constexpr type_id grounded_schema_node = 32;
inline constexpr type_id defined_predicate_node = 33;
inline constexpr type_id grounded_predicate_node = 34;
inline constexpr type_id type_inh_node = 35;
inline constexpr type_id type_co_inh_node = 36;
inline constexpr type_id defined_type_node = 37;
inline constexpr type_id variable_list = 38;
inline constexpr type_id typed_variable_link = 39;
inline constexpr type_id quote_link = 40;
inline constexpr type_id unquote_link = 41;
inline constexpr type_id local_quote_link = 42;
inline constexpr type_id dont_exec_link = 43;
inline constexpr type_id free_link = 44;
inline constexpr type_id unique_link = 45;
inline constexpr type_id delete_link = 46;
inline constexpr type_id state_link = 47;
inline constexpr type_id define_link = 48;
inline constexpr type_id function_link = 49;
inline constexpr type_id execution_output_link = 50;
inline constexpr type_id scope_link = 51;
inline constexpr type_id rewrite_link = 52;
inline constexpr type_id prenex_link = 53;
inline constexpr type_id lambda_link = 54;
inline constexpr type_id put_link = 55;
inline constexpr type_id pattern_link = 56;
inline constexpr type_id satisfaction_link = 57;
inline constexpr type_id satisfying_link = 58;
inline constexpr type_id get_link = 59;
inline constexpr type_id bind_link = 60;
inline constexpr type_id dual_link = 61;
inline constexpr type_id choice_link = 62;
inline constexpr type_id present_link = 63;
inline constexpr type_id absent_link = 64;
inline constexpr type_id true_link = 65;
inline constexpr type_id false_link = 66;
inline constexpr type_id sequential_and_link = 67;
inline constexpr type_id sequential_or_link = 68;
inline constexpr type_id intensional_inheritance_link = 69;
inline constexpr type_id extensional_similarity_link = 70;
inline constexpr type_id intensional_similarity_link = 71;
inline constexpr type_id equivalence_link = 72;
inline constexpr type_id intensional_equivalence_link = 73;
inline constexpr type_id extensional_equivalence_link = 74;
inline constexpr type_id intensional_implication_link = 75;
inline constexpr type_id extensional_implication_link = 76;
inline constexpr type_id for_all_link = 77;
inline constexpr type_id exists_link = 78;
inline constexpr type_id implication_scope_link = 79;
inline constexpr type_id equivalence_scope_link = 80;
inline constexpr type_id satisfying_set_link = 81;
inline constexpr type_id virtual_link = 82;
inline constexpr type_id greater_than_link = 83;
inline constexpr type_id identical_link = 84;
inline constexpr type_id equal_link = 85;
inline constexpr type_id interval_link = 86;
inline constexpr type_id associative_link = 87;
inline constexpr type_id attraction_link = 88;
inline constexpr type_id quantity_link = 89;
inline constexpr type_id type_choice = 90;
inline constexpr type_id signature_link = 91;
inline constexpr type_id arrow_link = 92;
inline constexpr type_id meet_link = 93;
inline constexpr type_id query_link = 94;
/// Number of built-in types; the first user type gets this id.
inline constexpr type_id builtin_count = 95;
}  // namespace types

/// The set of atom types known to one AtomSpace, with their names and ancestry.
class atom_type_registry {
public:
    /// Largest number of types a registry holds; one id is kept back to mark free atom slots.
    static constexpr std::size_t max_types = 0xFFFE;

    /// A registry holding the built-in types.
    atom_type_registry() {
        struct builtin {
            std::string_view name;
            std::initializer_list<type_id> parents;
        };
        using namespace types;
        // Same order as the constants in `types`; add() checks that order below.
        const builtin table[] = {
                {"Atom", {}},
                {"Node", {atom}},
                {"Link", {atom}},
                {"ConceptNode", {node}},
                {"PredicateNode", {node}},
                {"VariableNode", {node}},
                {"NumberNode", {node}},
                {"SchemaNode", {node}},
                {"TypeNode", {node}},
                {"OrderedLink", {link}},
                {"UnorderedLink", {link}},
                {"EvaluatableLink", {link}},
                {"ListLink", {ordered_link}},
                {"SetLink", {unordered_link, evaluatable_link}},
                {"MemberLink", {ordered_link, evaluatable_link}},
                {"EvaluationLink", {ordered_link, evaluatable_link}},
                {"ExecutionLink", {ordered_link}},
                {"InheritanceLink", {ordered_link, evaluatable_link}},
                {"SubsetLink", {inheritance_link}},
                {"SimilarityLink", {unordered_link, evaluatable_link}},
                {"ImplicationLink", {ordered_link, evaluatable_link}},
                {"AndLink", {unordered_link, evaluatable_link}},
                {"OrLink", {unordered_link, evaluatable_link}},
                {"NotLink", {unordered_link, evaluatable_link}},
                {"ContextLink", {ordered_link}},
                {"HebbianLink", {link}},
                {"AsymmetricHebbianLink", {ordered_link, hebbian_link}},
                {"SymmetricHebbianLink", {unordered_link, hebbian_link}},
                {"InverseHebbianLink", {ordered_link, hebbian_link}},
                {"GlobNode", {variable_node}},
                {"AnchorNode", {node}},
                {"DefinedSchemaNode", {schema_node}},
                {"GroundedSchemaNode", {schema_node}},
                {"DefinedPredicateNode", {predicate_node}},
                {"GroundedPredicateNode", {predicate_node}},
                {"TypeInhNode", {type_node}},
                {"TypeCoInhNode", {type_node}},
                {"DefinedTypeNode", {type_node}},
                {"VariableList", {list_link}},
                {"TypedVariableLink", {ordered_link}},
                {"QuoteLink", {ordered_link}},
                {"UnquoteLink", {ordered_link}},
                {"LocalQuoteLink", {ordered_link}},
                {"DontExecLink", {ordered_link}},
                {"FreeLink", {ordered_link}},
                {"UniqueLink", {free_link}},
                {"DeleteLink", {free_link}},
                {"StateLink", {unique_link}},
                {"DefineLink", {unique_link}},
                {"FunctionLink", {free_link}},
                {"ExecutionOutputLink", {function_link}},
                {"ScopeLink", {ordered_link}},
                {"RewriteLink", {scope_link}},
                {"PrenexLink", {rewrite_link}},
                {"LambdaLink", {prenex_link}},
                {"PutLink", {prenex_link}},
                {"PatternLink", {prenex_link}},
                {"SatisfactionLink", {pattern_link, evaluatable_link}},
                {"SatisfyingLink", {pattern_link, evaluatable_link}},
                {"GetLink", {satisfying_link}},
                {"BindLink", {satisfying_link}},
                {"DualLink", {satisfying_link}},
                {"ChoiceLink", {ordered_link}},
                {"PresentLink", {set_link, evaluatable_link}},
                {"AbsentLink", {present_link}},
                {"TrueLink", {ordered_link, evaluatable_link}},
                {"FalseLink", {ordered_link, evaluatable_link}},
                {"SequentialAndLink", {ordered_link, evaluatable_link}},
                {"SequentialOrLink", {ordered_link, evaluatable_link}},
                {"IntensionalInheritanceLink", {inheritance_link}},
                {"ExtensionalSimilarityLink", {similarity_link}},
                {"IntensionalSimilarityLink", {similarity_link}},
                {"EquivalenceLink", {unordered_link}},
                {"IntensionalEquivalenceLink", {equivalence_link}},
                {"ExtensionalEquivalenceLink", {equivalence_link}},
                {"IntensionalImplicationLink", {implication_link}},
                {"ExtensionalImplicationLink", {implication_link}},
                {"ForAllLink", {scope_link, evaluatable_link}},
                {"ExistsLink", {scope_link, evaluatable_link}},
                {"ImplicationScopeLink", {scope_link, evaluatable_link}},
                {"EquivalenceScopeLink", {scope_link}},
                {"SatisfyingSetLink", {link, evaluatable_link}},
                {"VirtualLink", {evaluation_link}},
                {"GreaterThanLink", {virtual_link}},
                {"IdenticalLink", {unordered_link, virtual_link}},
                {"EqualLink", {unordered_link, virtual_link}},
                {"IntervalLink", {ordered_link}},
                {"AssociativeLink", {ordered_link}},
                {"AttractionLink", {ordered_link}},
                {"QuantityLink", {ordered_link}},
                {"TypeChoice", {choice_link}},
                {"SignatureLink", {ordered_link}},
                {"ArrowLink", {ordered_link}},
                {"MeetLink", {satisfying_link}},
                {"QueryLink", {satisfying_link}},
        };
        static_assert(std::size(table) == builtin_count);
        for (const builtin& b : table) insert(b.name, b.parents);
    }

    /// Registers a type named `name` below `parents` and returns its id. Registering an existing name again
    /// with the same parents returns its id; anything else that cannot be a type (an empty name, a name
    /// taken with other parents, an unknown parent, no parent, parents on both the Node and the Link side,
    /// too many types) throws invalid_argument_error.
    type_id add(std::string_view name, std::span<const type_id> parents) {
        if (const auto existing = find(name)) {
            std::vector<type_id> wanted(parents.begin(), parents.end());
            std::sort(wanted.begin(), wanted.end());
            wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
            if (wanted != entries_[*existing].parents) {
                throw invalid_argument_error("atom_type_registry::add: type \"" + std::string(name) +
                                             "\" is already registered with other parents");
            }
            return *existing;
        }
        if (parents.empty()) {
            throw invalid_argument_error("atom_type_registry::add: type \"" + std::string(name) + "\" needs at least one parent");
        }
        return insert(name, parents);
    }
    /// As above, with the parents listed in place.
    type_id add(std::string_view name, std::initializer_list<type_id> parents) {
        return add(name, std::span<const type_id>(parents.begin(), parents.size()));
    }

    /// The id of the type called `name`, if there is one.
    [[nodiscard]] std::optional<type_id> find(std::string_view name) const {
        const auto it = by_name_.find(std::string(name));
        if (it == by_name_.end()) return std::nullopt;
        return it->second;
    }
    /// The id of the type called `name`; throws invalid_argument_error when there is none.
    [[nodiscard]] type_id at(std::string_view name) const {
        if (const auto t = find(name)) return *t;
        throw invalid_argument_error("atom_type_registry: no atom type is called \"" + std::string(name) + "\"");
    }

    /// Number of registered types; ids run from 0 to size() - 1.
    [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }
    /// Whether `t` names a registered type.
    [[nodiscard]] bool contains(type_id t) const noexcept { return t < entries_.size(); }

    /// Name of type `t`; throws invalid_argument_error for an unknown id.
    [[nodiscard]] std::string_view name(type_id t) const { return entry(t, "name").name; }
    /// Direct parents of type `t`, sorted by id.
    [[nodiscard]] std::span<const type_id> parents(type_id t) const { return entry(t, "parents").parents; }

    /// Whether `t` is `ancestor` or descends from it. False (no throw) for unknown ids, so that a query
    /// with a bad type simply matches nothing; the containers check types where it matters.
    [[nodiscard]] bool is_a(type_id t, type_id ancestor) const noexcept {
        if (t >= entries_.size() || ancestor >= entries_.size()) return false;
        const auto& bits = entries_[t].ancestors;
        const std::size_t word = ancestor / 64;
        return word < bits.size() && ((bits[word] >> (ancestor % 64)) & 1u) != 0;
    }
    /// Whether atoms of type `t` are nodes (named atoms).
    [[nodiscard]] bool is_node(type_id t) const noexcept { return is_a(t, types::node); }
    /// Whether atoms of type `t` are links (atoms with an outgoing set).
    [[nodiscard]] bool is_link(type_id t) const noexcept { return is_a(t, types::link); }
    /// Whether links of type `t` ignore the order of their outgoing set.
    [[nodiscard]] bool is_unordered(type_id t) const noexcept { return is_a(t, types::unordered_link); }

    /// Every type that is `t` or descends from it, in id order.
    [[nodiscard]] std::vector<type_id> subtypes(type_id t) const {
        entry(t, "subtypes");
        std::vector<type_id> out;
        for (std::size_t u = 0; u < entries_.size(); ++u)
            if (is_a(static_cast<type_id>(u), t)) out.push_back(static_cast<type_id>(u));
        return out;
    }

    /// One flag per type: whether it matches `t`, exactly or (with `with_subtypes`) as a descendant. Lets a
    /// scan over many atoms test a type with one load instead of walking the hierarchy.
    [[nodiscard]] std::vector<std::uint8_t> match_table(type_id t, bool with_subtypes) const {
        std::vector<std::uint8_t> table(entries_.size() + 1, 0);  // +1: the free-slot marker maps to 0 too
        for (std::size_t u = 0; u < entries_.size(); ++u) {
            const auto id = static_cast<type_id>(u);
            table[u] = (with_subtypes ? is_a(id, t) : id == t) ? 1 : 0;
        }
        return table;
    }

private:
    struct type_entry {
        std::string name;
        std::vector<type_id> parents;
        // Bit u set when this type is u or descends from u; parents come first, so it is complete at birth.
        std::vector<std::uint64_t> ancestors;
    };

    const type_entry& entry(type_id t, std::string_view context) const {
        if (t >= entries_.size()) {
            throw invalid_argument_error("atom_type_registry::" + std::string(context) + ": unknown atom type id " + std::to_string(t));
        }
        return entries_[t];
    }

    type_id insert(std::string_view name, std::span<const type_id> parents) {
        const std::string context = "atom_type_registry::add(\"" + std::string(name) + "\")";
        if (name.empty()) throw invalid_argument_error("atom_type_registry::add: a type name must not be empty");
        if (entries_.size() >= max_types) {
            throw invalid_argument_error(context + ": the registry is full (" + std::to_string(max_types) + " types)");
        }
        const auto id = static_cast<type_id>(entries_.size());
        type_entry e;
        e.name = std::string(name);
        e.ancestors.assign(id / 64 + 1, 0);
        e.ancestors[id / 64] |= std::uint64_t{1} << (id % 64);
        for (const type_id p : parents) {
            if (p >= entries_.size()) throw invalid_argument_error(context + ": unknown parent type id " + std::to_string(p));
            const auto& pa = entries_[p].ancestors;
            for (std::size_t w = 0; w < pa.size(); ++w) e.ancestors[w] |= pa[w];
            e.parents.push_back(p);
        }
        std::sort(e.parents.begin(), e.parents.end());
        e.parents.erase(std::unique(e.parents.begin(), e.parents.end()), e.parents.end());
        entries_.push_back(std::move(e));
        // Checked after insertion so is_a can be used; undone on failure.
        if (is_a(id, types::node) && is_a(id, types::link)) {
            entries_.pop_back();
            throw invalid_argument_error(context + ": a type cannot descend from both Node and Link");
        }
        by_name_.emplace(std::string(name), id);
        return id;
    }

    std::vector<type_entry> entries_;
    std::unordered_map<std::string, type_id> by_name_;
};

}  // namespace cogqat::cog
