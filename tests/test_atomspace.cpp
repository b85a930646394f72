// Tests of the AtomSpace, its type hierarchy, truth values and pattern queries: deduplication, incoming
// sets, type queries with and without subtypes, removal rules, handle stability, PLN truth-value
// arithmetic, quantized round trips and pattern groundings. Typed over the truth-value policies.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cogqat/cog/atom_types.hpp"
#include "cogqat/cog/atomspace.hpp"
#include "cogqat/cog/pattern.hpp"
#include "cogqat/cog/truth_value.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/policy.hpp"

using namespace cogqat;
using namespace cogqat::cog;

namespace {

using q8_tv = quantized_truth_value<BitWidth<8>>;
using q16_tv = quantized_truth_value<BitWidth<16>>;

#define COGQAT_TRUTH_VALUES float_truth_value, q8_tv, q16_tv

/// Half the distance between two values of a truth-value type, plus float rounding.
template <class TV>
double tv_tolerance() {
    if constexpr (std::is_same_v<TV, float_truth_value>)
        return 1e-6;
    else
        return 0.5 * TV::step + 1e-6;
}

/// A small zoo: cat, dog -> mammal -> animal; bird -> animal; tweety -> bird; similarity cat ~ dog;
/// "eats" facts as EvaluationLinks.
template <class TV>
struct zoo {
    AtomSpace<TV> space;
    handle cat, dog, mammal, animal, bird, tweety, fish, eats;
    handle cat_mammal, dog_mammal, mammal_animal, bird_animal, tweety_bird, cat_dog;

    zoo() {
        cat = space.add_node(types::concept_node, "cat");
        dog = space.add_node(types::concept_node, "dog");
        mammal = space.add_node(types::concept_node, "mammal");
        animal = space.add_node(types::concept_node, "animal");
        bird = space.add_node(types::concept_node, "bird");
        tweety = space.add_node(types::concept_node, "tweety");
        fish = space.add_node(types::concept_node, "fish");
        eats = space.add_node(types::predicate_node, "eats");
        cat_mammal = space.add_link(types::inheritance_link, {cat, mammal});
        dog_mammal = space.add_link(types::inheritance_link, {dog, mammal});
        mammal_animal = space.add_link(types::inheritance_link, {mammal, animal});
        bird_animal = space.add_link(types::inheritance_link, {bird, animal});
        tweety_bird = space.add_link(types::inheritance_link, {tweety, bird});
        cat_dog = space.add_link(types::similarity_link, {cat, dog});
        space.add_link(types::evaluation_link, {eats, space.add_link(types::list_link, {cat, fish})});
        space.add_link(types::evaluation_link, {eats, space.add_link(types::list_link, {dog, cat})});
    }
};

std::set<handle> as_set(const std::vector<handle>& v) { return {v.begin(), v.end()}; }

}  // namespace

// ------------------------------------------------------------------------------------------- atom types

TEST_CASE("the built-in type hierarchy follows OpenCog's") {
    const atom_type_registry types;
    CHECK(types.size() == types::builtin_count);
    CHECK(types.name(types::concept_node) == "ConceptNode");
    CHECK(types.at("AsymmetricHebbianLink") == types::asymmetric_hebbian_link);
    CHECK(types.is_node(types::concept_node));
    CHECK_FALSE(types.is_link(types::concept_node));
    CHECK(types.is_link(types::inheritance_link));
    CHECK(types.is_a(types::subset_link, types::inheritance_link));
    CHECK(types.is_a(types::subset_link, types::evaluatable_link));
    CHECK(types.is_a(types::asymmetric_hebbian_link, types::hebbian_link));
    CHECK(types.is_a(types::asymmetric_hebbian_link, types::ordered_link));
    CHECK(types.is_unordered(types::similarity_link));
    CHECK(types.is_unordered(types::and_link));
    CHECK_FALSE(types.is_unordered(types::list_link));
    CHECK_FALSE(types.is_a(types::inheritance_link, types::subset_link));
    CHECK(types.is_a(types::atom, types::atom));
    CHECK_FALSE(types.is_a(9999, types::atom));
    const auto heb = types.subtypes(types::hebbian_link);
    CHECK(heb == std::vector<type_id>{types::hebbian_link, types::asymmetric_hebbian_link, types::symmetric_hebbian_link,
                                      types::inverse_hebbian_link});
}

TEST_CASE("user types extend the hierarchy, and bad registrations are refused") {
    atom_type_registry types;
    const type_id animal_node = types.add("AnimalNode", {types::concept_node});
    const type_id dog_node = types.add("DogNode", {animal_node});
    CHECK(dog_node == animal_node + 1);
    CHECK(types.is_a(dog_node, types::concept_node));
    CHECK(types.is_node(dog_node));
    CHECK(types.add("DogNode", {animal_node}) == dog_node);  // idempotent
    CHECK_THROWS_AS(types.add("DogNode", {types::concept_node}), invalid_argument_error);
    CHECK_THROWS_AS(types.add("Orphan", std::initializer_list<type_id>{}), invalid_argument_error);
    CHECK_THROWS_AS(types.add("", {types::node}), invalid_argument_error);
    CHECK_THROWS_AS(types.add("Ghost", {static_cast<type_id>(5000)}), invalid_argument_error);
    CHECK_THROWS_AS(types.add("Chimera", {types::concept_node, types::list_link}), invalid_argument_error);
    CHECK_FALSE(types.find("Chimera").has_value());
    CHECK_THROWS_AS((void)types.at("NoSuchType"), invalid_argument_error);
    CHECK_THROWS_AS((void)types.name(4000), invalid_argument_error);

    AtomSpace<float_truth_value> space(types);
    const handle rex = space.add_node(dog_node, "rex");
    space.add_node(types::concept_node, "thing");
    CHECK(space.get_by_type(types::concept_node, false).size() == 1);
    CHECK(space.get_by_type(types::concept_node, true).size() == 2);
    CHECK(space.get_by_type(animal_node, true) == std::vector<handle>{rex});
    // Types added to the space's own registry later work too.
    const type_id cat_node = space.types().add("CatNode", {animal_node});
    const handle tom = space.add_node(cat_node, "tom");
    CHECK(as_set(space.get_by_type(animal_node, true)) == std::set<handle>{rex, tom});
}

// ---------------------------------------------------------------------------------------- the container

TEST_CASE_TEMPLATE("adding an existing atom returns its handle", TV, COGQAT_TRUTH_VALUES) {
    AtomSpace<TV> space;
    const handle a = space.add_node(types::concept_node, "a");
    const handle b = space.add_node(types::concept_node, "b");
    CHECK(space.add_node(types::concept_node, "a") == a);
    const handle pa = space.add_node(types::predicate_node, "a");
    CHECK(pa != a);
    CHECK(space.add_node(types::concept_node, "") != space.add_node(types::concept_node, std::string(1, '\0')));
    const handle ab = space.add_link(types::list_link, {a, b});
    CHECK(space.add_link(types::list_link, {a, b}) == ab);
    CHECK(space.add_link(types::list_link, {b, a}) != ab);  // ordered: order matters
    const handle sim = space.add_link(types::similarity_link, {a, b});
    CHECK(space.add_link(types::similarity_link, {b, a}) == sim);  // unordered: it does not
    CHECK(space.add_link(types::list_link, {}) == space.add_link(types::list_link, {}));
    CHECK(space.add_link(types::list_link, {a, a}) != space.add_link(types::list_link, {a}));
    CHECK(space.size() == 11);
    CHECK(space.node_count() == 5);
    CHECK(space.link_count() == 6);
    CHECK(space.get_node(types::concept_node, "b") == b);
    CHECK(space.get_node(types::concept_node, "zzz").is_null());
    CHECK(space.get_node(types::list_link, "a").is_null());
    CHECK(space.get_link(types::similarity_link, {b, a}) == sim);
    CHECK(space.get_link(types::and_link, {a, b}).is_null());
    CHECK(space.name(a) == "a");
    CHECK(space.type(pa) == types::predicate_node);
    CHECK(space.outgoing_set(ab) == std::vector<handle>{a, b});
    CHECK(space.arity(ab) == 2);
    CHECK(space.outgoing(a).empty());
    CHECK(space.to_string(ab) == "(ListLink (ConceptNode \"a\") (ConceptNode \"b\"))");
    CHECK(space.to_string(space.add_link(types::list_link, {})) == "(ListLink)");
    CHECK(space.to_string(space.add_link(types::list_link, {ab, space.add_link(types::list_link, {})})) ==
          "(ListLink (ListLink (ConceptNode \"a\") (ConceptNode \"b\")) (ListLink))");
}

TEST_CASE_TEMPLATE("incoming sets, all and by type", TV, COGQAT_TRUTH_VALUES) {
    zoo<TV> z;
    auto& s = z.space;
    CHECK(as_set(s.incoming_set(z.mammal)) == std::set<handle>{z.cat_mammal, z.dog_mammal, z.mammal_animal});
    CHECK(s.incoming_size(z.mammal) == 3);
    CHECK(as_set(s.incoming_set(z.cat, types::inheritance_link)) == std::set<handle>{z.cat_mammal});
    CHECK(s.incoming_set(z.cat, types::evaluatable_link).empty());
    CHECK(as_set(s.incoming_set(z.cat, types::evaluatable_link, true)) == std::set<handle>{z.cat_mammal, z.cat_dog});
    CHECK(s.incoming_set(z.animal, types::similarity_link).empty());
    CHECK_FALSE(s.incoming(z.eats).empty());
    CHECK(s.incoming_size(z.eats) == 2);
    // A link holding the atom twice is in its incoming set once.
    const handle twice = s.add_link(types::list_link, {z.fish, z.cat, z.fish});
    CHECK(s.incoming_set(z.fish).size() == 2);
    CHECK(s.incoming_set(z.fish).front() == twice);  // newest first
    s.remove(twice);
    CHECK(s.incoming_set(z.fish).size() == 1);
}

TEST_CASE_TEMPLATE("get by type, with and without subtypes", TV, COGQAT_TRUTH_VALUES) {
    zoo<TV> z;
    auto& s = z.space;
    CHECK(s.get_by_type(types::concept_node).size() == 7);
    CHECK(s.get_by_type(types::node).empty());
    CHECK(s.get_by_type(types::node, true).size() == 8);
    CHECK(s.get_by_type(types::inheritance_link).size() == 5);
    CHECK(s.get_by_type(types::link, true).size() == 10);
    CHECK(s.get_by_type(types::atom, true).size() == s.size());
    CHECK(s.get_by_type(types::ordered_link, true).size() == 9);
    CHECK(s.get_by_type(types::unordered_link, true) == std::vector<handle>{z.cat_dog});
    CHECK(s.get_by_type(static_cast<type_id>(7777), true).empty());
    const auto inh = s.get_by_type(types::inheritance_link);
    CHECK(std::is_sorted(inh.begin(), inh.end()));
}

TEST_CASE_TEMPLATE("removal: refused while held, recursive when asked", TV, COGQAT_TRUTH_VALUES) {
    zoo<TV> z;
    auto& s = z.space;
    const std::size_t before = s.size();
    CHECK_THROWS_AS(s.remove(z.mammal), invalid_argument_error);
    CHECK(s.size() == before);
    CHECK(s.contains(z.mammal));
    try {
        s.remove(z.mammal);
    } catch (const invalid_argument_error& e) {
        CHECK(std::string(e.what()).find("mammal") != std::string::npos);
        CHECK(std::string(e.what()).find("3 link") != std::string::npos);
    }
    // A link nobody holds goes alone.
    CHECK(s.remove(z.mammal_animal) == 1);
    CHECK_FALSE(s.contains(z.mammal_animal));
    CHECK(s.remove(z.mammal_animal) == 0);  // already gone
    // Recursive: cat goes with cat->mammal, cat~dog, (cat fish), eats(cat fish), (dog cat), eats(dog cat).
    CHECK(s.remove(z.cat, AtomSpace<TV>::removal::recursive) == 7);
    CHECK_FALSE(s.contains(z.cat_mammal));
    CHECK_FALSE(s.contains(z.cat_dog));
    CHECK(s.incoming_set(z.mammal) == std::vector<handle>{z.dog_mammal});
    CHECK(s.incoming_set(z.eats).empty());
    CHECK(s.contains(z.dog));
    CHECK(s.get_node(types::concept_node, "cat").is_null());
    CHECK(s.size() == before - 8);
    CHECK(s.remove(handle{}) == 0);
}

TEST_CASE_TEMPLATE("handles stay valid across other insertions and removals; stale ones are refused", TV, COGQAT_TRUTH_VALUES) {
    AtomSpace<TV> s;
    const handle keep = s.add_node(types::concept_node, "keep");
    const handle gone = s.add_node(types::concept_node, "gone");
    const handle link = s.add_link(types::list_link, {keep});
    for (int i = 0; i < 2000; ++i) s.add_node(types::concept_node, "n" + std::to_string(i));  // several rehashes
    CHECK(s.remove(gone) == 1);
    const handle reused = s.add_node(types::concept_node, "new");
    CHECK(reused.index == gone.index);            // the freed index is reused ...
    CHECK(reused.generation != gone.generation);  // ... under a new generation
    CHECK_FALSE(s.contains(gone));
    CHECK(s.contains(reused));
    CHECK(s.name(keep) == "keep");
    CHECK(s.outgoing_set(link) == std::vector<handle>{keep});
    CHECK_THROWS_AS((void)s.name(gone), invalid_argument_error);
    CHECK_THROWS_AS((void)s.type(gone), invalid_argument_error);
    CHECK_THROWS_AS((void)s.incoming(gone), invalid_argument_error);
    CHECK_THROWS_AS((void)s.truth_value(gone), invalid_argument_error);
    CHECK_THROWS_AS(s.set_truth_value(gone, TV(0.5f, 0.5f)), invalid_argument_error);
    CHECK_THROWS_AS(s.add_link(types::list_link, {keep, gone}), invalid_argument_error);
    CHECK_THROWS_AS((void)s.get_link(types::list_link, {gone}), invalid_argument_error);
    CHECK_THROWS_AS((void)s.name(handle{}), invalid_argument_error);
    CHECK_THROWS_AS((void)s.name(link), invalid_argument_error);
    CHECK_THROWS_AS(s.add_node(types::list_link, "x"), invalid_argument_error);
    CHECK_THROWS_AS(s.add_link(types::concept_node, {keep}), invalid_argument_error);
    CHECK_THROWS_AS(s.add_node(static_cast<type_id>(999), "x"), invalid_argument_error);
}

namespace {

/// What the space should hold, kept up to date through the space's removal listener.
template <class TV>
class space_model : public AtomSpace<TV>::listener {
public:
    using link_key = std::pair<type_id, std::vector<handle>>;

    explicit space_model(AtomSpace<TV>& space) : space_(&space) { space.subscribe(*this); }
    space_model(const space_model&) = delete;
    space_model& operator=(const space_model&) = delete;
    ~space_model() {
        if (space_ != nullptr) space_->unsubscribe(*this);
    }

    void added_node(handle h, const std::string& name) {
        if (auto it = by_name.find(name); it != by_name.end()) {
            REQUIRE(it->second == h);
            return;
        }
        by_name.emplace(name, h);
        name_of.emplace(h, name);
        remember(h);
    }
    void added_link(handle h, const link_key& key) {
        if (auto it = by_key.find(key); it != by_key.end()) {
            REQUIRE(it->second == h);
            return;
        }
        by_key.emplace(key, h);
        key_of.emplace(h, key);
        remember(h);
    }

    std::map<std::string, handle> by_name;
    std::map<handle, std::string> name_of;
    std::map<link_key, handle> by_key;
    std::map<handle, link_key> key_of;
    std::vector<handle> all;
    std::size_t removals = 0;

private:
    void remember(handle h) {
        position_[h] = all.size();
        all.push_back(h);
    }
    void atom_removed(handle h) override {
        REQUIRE(space_->contains(h));  // told before the atom goes
        ++removals;
        const std::size_t j = position_.at(h);
        position_[all.back()] = j;
        all[j] = all.back();
        all.pop_back();
        position_.erase(h);
        if (auto it = name_of.find(h); it != name_of.end()) {
            by_name.erase(it->second);
            name_of.erase(it);
        }
        if (auto it = key_of.find(h); it != key_of.end()) {
            by_key.erase(it->second);
            key_of.erase(it);
        }
    }
    void space_moved(AtomSpace<TV>& to) noexcept override { space_ = &to; }
    void space_destroyed() noexcept override { space_ = nullptr; }

    AtomSpace<TV>* space_;
    std::map<handle, std::size_t> position_;
};

template <class TV>
void check_against_model(const AtomSpace<TV>& s, const space_model<TV>& model) {
    REQUIRE(s.size() == model.all.size());
    REQUIRE(s.node_count() == model.by_name.size());
    for (const auto& [name, h] : model.by_name) {
        REQUIRE(s.get_node(types::concept_node, name) == h);
        REQUIRE(s.name(h) == name);
    }
    std::map<handle, std::set<handle>> expected_incoming;
    for (const auto& [key, h] : model.by_key) {
        REQUIRE(s.get_link(key.first, key.second) == h);
        REQUIRE(s.outgoing_set(h) == key.second);
        for (const handle t : key.second) expected_incoming[t].insert(h);
    }
    for (const handle h : model.all) REQUIRE(as_set(s.incoming_set(h)) == expected_incoming[h]);
}

}  // namespace

TEST_CASE_TEMPLATE("random additions and removals agree with a simple model", TV, COGQAT_TRUTH_VALUES) {
    // Enough churn to rehash, to shift table entries back after deletions, and to compact the arena and the
    // slot pool (more than 4096 dead bytes and slots).
    AtomSpace<TV> s;
    space_model<TV> model(s);
    std::mt19937 rng(42);
    auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
    for (int step = 0; step < 12000; ++step) {
        const unsigned op = rng() % 10;
        if (op < 5 || model.all.size() < 4) {
            const unsigned id = rng() % 4000;  // two statements: the order of + operands is unspecified
            const std::string name = "node-" + std::to_string(id) + std::string(rng() % 8, 'x');
            model.added_node(s.add_node(types::concept_node, name), name);
        } else if (op < 8) {
            std::vector<handle> out;
            for (std::size_t k = 0, n = 1 + pick(4); k < n; ++k) out.push_back(model.all[pick(model.all.size())]);
            const type_id t = op == 7 ? types::set_link : types::list_link;
            const handle h = s.add_link(t, out);
            if (t == types::set_link) std::sort(out.begin(), out.end(), [](handle a, handle b) { return a.index < b.index; });
            model.added_link(h, {t, out});
        } else {
            const handle victim = model.all[pick(model.all.size())];
            const std::size_t before = model.removals;
            const std::size_t removed = s.remove(victim, AtomSpace<TV>::removal::recursive);
            REQUIRE(removed == model.removals - before);
        }
    }
    CHECK(model.removals > 1500);
    check_against_model(s, model);
    const std::size_t used = s.memory_bytes();
    s.shrink_to_fit();
    CHECK(s.memory_bytes() <= used);
    check_against_model(s, model);
}

TEST_CASE("removing most atoms compacts the arena and the slot pool, and lookups still work") {
    AtomSpace<float_truth_value> s;
    space_model<float_truth_value> model(s);
    std::vector<handle> nodes;
    for (int i = 0; i < 3000; ++i) {
        const std::string name = "a-rather-long-node-name-" + std::to_string(i);
        nodes.push_back(s.add_node(types::concept_node, name));
        model.added_node(nodes.back(), name);
    }
    for (int i = 0; i + 3 < 3000; ++i) {
        const std::vector<handle> out{nodes[i], nodes[i + 1], nodes[i + 3]};
        model.added_link(s.add_link(types::list_link, out), {types::list_link, out});
    }
    const std::size_t full = s.memory_bytes();
    for (int i = 0; i < 2400; ++i) s.remove(nodes[i], AtomSpace<float_truth_value>::removal::recursive);
    check_against_model(s, model);
    s.shrink_to_fit();
    CHECK(s.memory_bytes() < full / 2);
    check_against_model(s, model);
    for (int i = 0; i < 100; ++i) {  // and the space keeps working
        const std::string name = "after-" + std::to_string(i);
        model.added_node(s.add_node(types::concept_node, name), name);
    }
    check_against_model(s, model);
}

TEST_CASE_TEMPLATE("copies are independent; moves keep handles", TV, COGQAT_TRUTH_VALUES) {
    zoo<TV> z;
    AtomSpace<TV> copy = z.space;
    copy.remove(z.cat, AtomSpace<TV>::removal::recursive);
    CHECK(z.space.contains(z.cat));
    CHECK_FALSE(copy.contains(z.cat));
    AtomSpace<TV> moved = std::move(z.space);
    CHECK(moved.contains(z.cat_mammal));
    CHECK(moved.name(z.tweety) == "tweety");
    CHECK(z.space.size() == 0);  // NOLINT: the moved-from space is empty and usable
    CHECK(z.space.add_node(types::concept_node, "again").index == 0);
    AtomSpace<TV> target;
    target.add_node(types::concept_node, "overwritten");
    target = std::move(moved);
    CHECK(target.name(z.tweety) == "tweety");
    CHECK(moved.add_node(types::concept_node, "still usable").index == 0);  // NOLINT
}

// ----------------------------------------------------------------------------------------- truth values

TEST_CASE_TEMPLATE("truth values are stored per atom through the policy", TV, COGQAT_TRUTH_VALUES) {
    AtomSpace<TV> s;
    const handle a = s.add_node(types::concept_node, "a");
    CHECK(s.truth_value(a).strength() == 1.0f);  // OpenCog's default (1, 0)
    CHECK(s.truth_value(a).confidence() == 0.0f);
    s.set_truth_value(a, TV(0.3f, 0.7f));
    CHECK(std::abs(s.truth_value(a).strength() - 0.3) <= tv_tolerance<TV>());
    CHECK(std::abs(s.truth_value(a).confidence() - 0.7) <= tv_tolerance<TV>());
    const handle b = s.add_node(types::concept_node, "b", TV(0.25f, 0.5f));
    CHECK(std::abs(s.truth_value(b).strength() - 0.25) <= tv_tolerance<TV>());
    CHECK_THROWS_AS(TV(1.5f, 0.5f), invalid_argument_error);
    CHECK_THROWS_AS(TV(0.5f, -0.1f), invalid_argument_error);
    CHECK_THROWS_AS(TV(std::nanf(""), 0.5f), invalid_argument_error);
}

TEST_CASE_TEMPLATE("quantized truth values round-trip within half a step", TV, q8_tv, q16_tv) {
    const double half = 0.5 / static_cast<double>(TV::max_code);
    double worst = 0.0;
    for (int i = 0; i <= 100000; ++i) {
        const float x = static_cast<float>(i) / 100000.0f;
        const TV tv(x, 1.0f - x);
        worst = std::max({worst, std::abs(tv.strength() - static_cast<double>(x)), std::abs(tv.confidence() - (1.0 - x))});
    }
    CHECK(worst <= half + 1e-7);
    CHECK(TV(0.0f, 1.0f).strength() == 0.0f);
    CHECK(TV(0.0f, 1.0f).confidence() == 1.0f);
    CHECK(TV::from_codes(TV::max_code, 0) == TV());
    CHECK(TV::from_codes(0, TV::max_code) == TV(0.0f, 1.0f));
}

TEST_CASE("quantized truth values with 8 bits take 2 bytes") {
    CHECK(sizeof(q8_tv) == 2);
    CHECK(sizeof(q16_tv) == 4);
    CHECK(sizeof(float_truth_value) == 8);
    CHECK(q8_tv::step == doctest::Approx(1.0 / 255));
    CHECK(std::abs(q8_tv(0.5f, 0.5f).strength() - 0.5) <= 0.5 / 255 + 1e-7);
}

TEST_CASE("count and confidence convert with k = 800") {
    CHECK(default_k == 800.0);
    CHECK(confidence_from_count(800.0) == doctest::Approx(0.5));
    CHECK(confidence_from_count(0.0) == 0.0);
    CHECK(confidence_from_count(-3.0) == 0.0);
    CHECK(count_from_confidence(0.5) == doctest::Approx(800.0));
    CHECK(count_from_confidence(0.0) == 0.0);
    CHECK(std::isfinite(count_from_confidence(1.0)));  // capped like OpenCog
    for (const double n : {1.0, 10.0, 123.0, 4000.0}) CHECK(count_from_confidence(confidence_from_count(n)) == doctest::Approx(n));
    CHECK(count_of(float_truth_value(0.9f, 0.2f)) == doctest::Approx(200.0).epsilon(1e-5));
}

TEST_CASE_TEMPLATE("revision merges by count-weighted strength, as OpenCog's PLN_BOOK_REVISION", TV, COGQAT_TRUTH_VALUES) {
    const TV a(0.8f, 0.5f);  // n = 800
    const TV b(0.2f, 0.2f);  // n = 200
    const TV r = revise(a, b);
    const double n1 = count_of(a), n2 = count_of(b);
    const double strength = (a.strength() * n1 + b.strength() * n2) / (n1 + n2);
    const double count = n1 + n2 - 0.2 * std::min(n1, n2);
    CHECK(std::abs(r.strength() - strength) <= tv_tolerance<TV>());
    CHECK(std::abs(r.confidence() - count / (count + 800.0)) <= tv_tolerance<TV>());
    if constexpr (std::is_same_v<TV, float_truth_value>) {
        CHECK(r.strength() == doctest::Approx(0.68));              // (0.8 * 800 + 0.2 * 200) / 1000
        CHECK(r.confidence() == doctest::Approx(960.0 / 1760.0));  // count 960
    }
    // Symmetric; with no evidence on either side the strength is the mean.
    CHECK(revise(b, a) == r);
    const TV none = revise(TV(0.2f, 0.0f), TV(0.6f, 0.0f));
    CHECK(std::abs(none.strength() - 0.4) <= tv_tolerance<TV>());
    CHECK(none.confidence() == 0.0f);
    AtomSpace<TV> s;
    const handle h = s.add_node(types::concept_node, "x", a);
    CHECK(s.merge_truth_value(h, b) == revise(a, b));
    CHECK(s.truth_value(h) == revise(a, b));
}

// --------------------------------------------------------------------------------------- pattern queries

TEST_CASE_TEMPLATE("pattern: who is a mammal", TV, COGQAT_TRUTH_VALUES) {
    zoo<TV> z;
    pattern p;
    const auto x = p.variable("$X");
    p.clause(types::inheritance_link, {x, z.mammal});
    const auto r = find_groundings(z.space, p);
    REQUIRE(r.size() == 2);
    CHECK(as_set({r[0][x], r[1][x]}) == std::set<handle>{z.cat, z.dog});
    CHECK(p.variable_name(x) == "$X");
    CHECK(p.find_variable("$X") == x);
}

TEST_CASE_TEMPLATE("pattern: two clauses joined on a shared variable walk an inheritance chain", TV, COGQAT_TRUTH_VALUES) {
    zoo<TV> z;
    pattern p;
    const auto x = p.variable("$X");
    const auto y = p.variable("$Y");
    p.clause(types::inheritance_link, {x, y});
    p.clause(types::inheritance_link, {y, z.animal});
    const auto r = find_groundings(z.space, p);
    std::set<std::pair<handle, handle>> got;
    for (const auto& g : r) got.insert({g[x], g[y]});
    CHECK(got == std::set<std::pair<handle, handle>>{{z.cat, z.mammal}, {z.dog, z.mammal}, {z.tweety, z.bird}});
    CHECK(r.size() == 3);
    CHECK(std::is_sorted(r.begin(), r.end()));
}

TEST_CASE_TEMPLATE("pattern: a three-clause chain and an unanchored start", TV, COGQAT_TRUTH_VALUES) {
    zoo<TV> z;
    pattern p;
    const auto a = p.variable("$A");
    const auto b = p.variable("$B");
    const auto c = p.variable("$C");
    p.clause(types::inheritance_link, {a, b});
    p.clause(types::inheritance_link, {b, c});
    const auto r = find_groundings(z.space, p);  // no constant: the first clause scans InheritanceLinks
    std::set<std::pair<handle, handle>> got;
    for (const auto& g : r) got.insert({g[a], g[c]});
    CHECK(got == std::set<std::pair<handle, handle>>{{z.cat, z.animal}, {z.dog, z.animal}, {z.tweety, z.animal}});
}

TEST_CASE_TEMPLATE("pattern: typed variables, nested links and unordered links", TV, COGQAT_TRUTH_VALUES) {
    zoo<TV> z;
    {  // who eats what: EvaluationLink eats (ListLink $X $Y)
        pattern p;
        const auto x = p.variable("$X");
        const auto y = p.variable("$Y");
        p.clause(types::evaluation_link, {z.eats, p.link(types::list_link, {x, y})});
        const auto r = find_groundings(z.space, p);
        std::set<std::pair<handle, handle>> got;
        for (const auto& g : r) got.insert({g[x], g[y]});
        CHECK(got == std::set<std::pair<handle, handle>>{{z.cat, z.fish}, {z.dog, z.cat}});
    }
    {  // who eats a mammal: join through the nested link
        pattern p;
        const auto x = p.variable("$X");
        const auto y = p.variable("$Y");
        p.clause(types::evaluation_link, {z.eats, p.link(types::list_link, {x, y})});
        p.clause(types::inheritance_link, {y, z.mammal});
        const auto r = find_groundings(z.space, p);
        REQUIRE(r.size() == 1);
        CHECK(r[0][x] == z.dog);
        CHECK(r[0][y] == z.cat);
    }
    {  // unordered: SimilarityLink $X dog matches SimilarityLink cat dog, whatever the stored order
        pattern p;
        const auto x = p.variable("$X");
        p.clause(types::similarity_link, {x, z.dog});
        const auto r = find_groundings(z.space, p);
        REQUIRE(r.size() == 1);
        CHECK(r[0][x] == z.cat);
        pattern q;
        const auto u = q.variable("$U");
        const auto v = q.variable("$V");
        q.clause(types::similarity_link, {u, v});
        CHECK(find_groundings(z.space, q).size() == 2);  // (cat, dog) and (dog, cat)
    }
    {  // typed variable: $X must be a PredicateNode, exactly or as a subtype
        const type_id verb = z.space.types().add("VerbNode", {types::predicate_node});
        const handle likes = z.space.add_node(verb, "likes");
        z.space.add_link(types::evaluation_link, {likes, z.space.add_link(types::list_link, {z.cat, z.fish})});
        pattern p;
        const auto r = p.variable("$R", types::predicate_node);
        p.clause(types::evaluation_link, {r, p.link(types::list_link, {z.cat, z.fish})});
        const auto exact = find_groundings(z.space, p);
        REQUIRE(exact.size() == 1);
        CHECK(exact[0][r] == z.eats);
        pattern q;
        const auto r2 = q.variable("$R", types::predicate_node, type_match::with_subtypes);
        q.clause(types::evaluation_link, {r2, q.link(types::list_link, {z.cat, z.fish})});
        CHECK(find_groundings(z.space, q).size() == 2);
        pattern w;
        const auto c = w.variable("$C", types::concept_node);
        w.clause(types::evaluatable_link, {c, z.mammal}, type_match::with_subtypes);
        CHECK(find_groundings(z.space, w).size() == 2);  // the InheritanceLinks, via the parent type
    }
    {  // a pattern with no solution
        pattern p;
        const auto x = p.variable("$X");
        p.clause(types::inheritance_link, {z.fish, x});
        CHECK(find_groundings(z.space, p).empty());
    }
}

TEST_CASE_TEMPLATE("pattern: bad patterns are refused", TV, COGQAT_TRUTH_VALUES) {
    zoo<TV> z;
    pattern empty;
    CHECK_THROWS_AS((void)find_groundings(z.space, empty), invalid_argument_error);
    pattern unused;
    unused.variable("$Z");
    const auto x = unused.variable("$X");
    unused.clause(types::inheritance_link, {x, z.mammal});
    CHECK_THROWS_AS((void)find_groundings(z.space, unused), invalid_argument_error);
    pattern dangling;  // $Y only in a nested link that no clause uses
    const auto dx = dangling.variable("$X");
    const auto dy = dangling.variable("$Y");
    (void)dangling.link(types::list_link, {dy});
    dangling.clause(types::inheritance_link, {dx, z.mammal});
    CHECK_THROWS_AS((void)find_groundings(z.space, dangling), invalid_argument_error);
    pattern dup;
    dup.variable("$X");
    CHECK_THROWS_AS(dup.variable("$X"), invalid_argument_error);
    CHECK_THROWS_AS(dup.variable(""), invalid_argument_error);
    pattern foreign;
    CHECK_THROWS_AS(foreign.clause(types::inheritance_link, {pattern_variable{3}, z.cat}), invalid_argument_error);
    CHECK_THROWS_AS(foreign.clause(types::inheritance_link, {handle{}, z.cat}), invalid_argument_error);
    pattern node_clause;
    const auto y = node_clause.variable("$Y");
    node_clause.clause(types::concept_node, {y});
    CHECK_THROWS_AS((void)find_groundings(z.space, node_clause), invalid_argument_error);
    pattern stale;
    const auto v = stale.variable("$V");
    const handle tmp = z.space.add_node(types::concept_node, "tmp");
    stale.clause(types::inheritance_link, {v, tmp});
    z.space.remove(tmp);
    CHECK_THROWS_AS((void)find_groundings(z.space, stale), invalid_argument_error);
}

// ---------------------------------------------------------------------------------------------- memory

TEST_CASE("8-bit truth values keep a bench-like graph under 64 bytes per atom") {
    // 2^14 atoms, 20% links of arity 1..3, names like the benchmark's; counted from the arrays' capacities.
    auto build = [](auto& space) {
        std::mt19937 rng(7);
        std::vector<handle> atoms;
        for (int i = 0; atoms.size() < (1u << 14); ++i) {
            if (rng() % 5 == 0 && atoms.size() > 4) {
                std::vector<handle> out;
                for (unsigned k = 0, n = 1 + rng() % 3; k < n; ++k) out.push_back(atoms[rng() % atoms.size()]);
                atoms.push_back(space.add_link(types::list_link, out));
            } else {
                atoms.push_back(space.add_node(types::concept_node, "n" + std::to_string(i)));
            }
        }
        space.shrink_to_fit();
        return static_cast<double>(space.memory_bytes()) / static_cast<double>(space.size());
    };
    AtomSpace<q8_tv> q8;
    AtomSpace<float_truth_value> f32;
    const double q8_bytes = build(q8);
    const double f32_bytes = build(f32);
    CHECK(q8_bytes < 64.0);
    CHECK(f32_bytes - q8_bytes == doctest::Approx(6.0).epsilon(0.05));
    MESSAGE("bytes per atom: 8-bit " << q8_bytes << ", float " << f32_bytes);
}
