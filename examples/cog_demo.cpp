// A small knowledge base in an AtomSpace with 8-bit truth values: queries with the pattern matcher, then
// ECAN cycles with 8-bit and float attention values side by side, printing the attentional focus.
//
// Usage: cog_demo [file]   (without a file, the built-in knowledge base below is used)
//
// The text format, one fact per line ('#' starts a comment):
//   <relation> <subject> <object> [<strength> <confidence>]
// where relation "is-a" makes InheritanceLink subject object, "similar" a SimilarityLink, "member" a
// MemberLink, and any other word an EvaluationLink (PredicateNode relation) (ListLink subject object).
// Subjects and objects are ConceptNodes.

#include <cogqat/cog/atomspace.hpp>
#include <cogqat/cog/ecan.hpp>
#include <cogqat/cog/pattern.hpp>
#include <cogqat/core/error.hpp>

#include <cstdio>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace cogqat::cog;
using tv8 = quantized_truth_value<cogqat::BitWidth<8>>;
using av8 = quantized_attention_value<cogqat::BitWidth<8>>;
using space_type = AtomSpace<tv8>;

constexpr std::string_view builtin_kb = R"(# animals
is-a cat mammal 0.98 0.9
is-a dog mammal 0.98 0.9
is-a whale mammal 0.95 0.8
is-a mammal animal 1.0 0.95
is-a bird animal 1.0 0.95
is-a tweety bird 0.9 0.7
is-a penguin bird 0.9 0.8
is-a salmon fish
is-a fish animal
similar cat dog 0.6 0.5
eats cat salmon 0.8 0.6
eats dog cat 0.1 0.4
eats whale fish 0.9 0.7
eats penguin fish 0.9 0.7
lives-in whale sea
lives-in penguin antarctica
lives-in salmon sea
)";

/// Adds the facts of `text` to `space`; throws cogqat::format_error naming the line of a malformed fact.
void load_knowledge(space_type& space, std::string_view text, const std::string& source) {
    std::istringstream in{std::string(text)};
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
        if (const auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
        std::istringstream words(line);
        std::string relation, subject, object;
        if (!(words >> relation)) continue;  // blank or comment
        auto fail = [&](const std::string& what) {
            throw cogqat::format_error(source + ":" + std::to_string(number) + ": " + what + " in \"" + line + "\"");
        };
        if (!(words >> subject >> object)) fail("a fact needs a relation, a subject and an object");
        float strength = 1.0f, confidence = 0.9f;
        if (words >> strength) {
            if (!(words >> confidence)) fail("a strength needs a confidence after it");
        } else if (!words.eof()) {
            fail("the strength is not a number");
        }
        std::string rest;
        if (words.clear(), words >> rest) fail("unexpected \"" + rest + "\" after the fact");
        tv8 tv;
        try {
            tv = tv8(strength, confidence);
        } catch (const cogqat::invalid_argument_error& e) {
            fail(e.what());
        }
        const handle s = space.add_node(types::concept_node, subject);
        const handle o = space.add_node(types::concept_node, object);
        if (relation == "is-a")
            space.add_link(types::inheritance_link, {s, o}, tv);
        else if (relation == "similar")
            space.add_link(types::similarity_link, {s, o}, tv);
        else if (relation == "member")
            space.add_link(types::member_link, {s, o}, tv);
        else
            space.add_link(types::evaluation_link,
                           {space.add_node(types::predicate_node, relation), space.add_link(types::list_link, {s, o})}, tv);
    }
}

/// A short form for printing: a node's name, a link as Type(outgoing...) without the "Link" suffix.
std::string name_of(const space_type& space, handle h) {
    if (space.is_node(h)) return std::string(space.name(h));
    std::string type(space.types().name(space.type(h)));
    if (type.size() > 4 && type.ends_with("Link")) type.resize(type.size() - 4);
    std::string out = type + "(";
    bool first = true;
    for (const handle o : space.outgoing(h)) {
        out += (first ? "" : " ") + name_of(space, o);
        first = false;
    }
    return out + ")";
}

void print_query(const space_type& space, const char* title, const pattern& p, std::vector<pattern_variable> shown) {
    std::printf("%s\n", title);
    for (const grounding& g : find_groundings(space, p)) {
        std::printf("   ");
        for (const pattern_variable v : shown)
            std::printf(" %s = %-8s", std::string(p.variable_name(v)).c_str(), name_of(space, g[v]).c_str());
        std::printf("\n");
    }
}

template <class Bank>
void print_focus(const space_type& space, const Bank& bank, const char* label) {
    std::printf("  %-6s", label);
    for (const handle h : bank.focus()) std::printf(" %s(%.0f)", name_of(space, h).c_str(), bank.sti(h));
    std::printf("\n");
}

int run(int argc, char** argv) {
    space_type space;
    if (argc > 1) {
        std::ifstream file(argv[1]);
        if (!file) throw cogqat::io_error(std::string("cannot open ") + argv[1]);
        std::stringstream text;
        text << file.rdbuf();
        load_knowledge(space, text.str(), argv[1]);
    } else {
        load_knowledge(space, builtin_kb, "built-in");
    }
    std::printf("Knowledge base: %zu atoms (%zu nodes, %zu links), %zu bytes\n\n", space.size(), space.node_count(), space.link_count(),
                space.memory_bytes());

    const handle mammal = space.get_node(types::concept_node, "mammal");
    const handle animal = space.get_node(types::concept_node, "animal");
    const handle eats = space.get_node(types::predicate_node, "eats");
    if (!mammal.is_null()) {
        pattern p;
        const auto x = p.variable("$X");
        p.clause(types::inheritance_link, {x, mammal});
        print_query(space, "Who is a mammal?", p, {x});
    }
    if (!animal.is_null()) {
        pattern p;
        const auto x = p.variable("$X");
        const auto y = p.variable("$Y");
        p.clause(types::inheritance_link, {x, y});
        p.clause(types::inheritance_link, {y, animal});
        print_query(space, "What is an animal through one intermediate kind?", p, {x, y});
    }
    if (!eats.is_null() && !animal.is_null()) {
        pattern p;
        const auto x = p.variable("$X");
        const auto y = p.variable("$Y");
        const auto k = p.variable("$Kind");
        p.clause(types::evaluation_link, {eats, p.link(types::list_link, {x, y})});
        p.clause(types::inheritance_link, {y, k});
        p.clause(types::inheritance_link, {k, animal});
        print_query(space, "Who eats an animal of some kind?", p, {x, y, k});
    }
    const handle cat = space.get_node(types::concept_node, "cat");
    if (!cat.is_null() && !mammal.is_null()) {
        const handle link = space.get_link(types::inheritance_link, {cat, mammal});
        if (!link.is_null()) {
            const tv8 before = space.truth_value(link);
            const tv8 after = space.merge_truth_value(link, tv8(0.7f, 0.5f));
            std::printf("\nRevising (cat is-a mammal) %.3f/%.3f with 0.700/0.500 gives %.3f/%.3f\n", before.strength(), before.confidence(),
                        after.strength(), after.confidence());
        }
    }

    // ECAN: the same cycles with 8-bit (step 1) and float attention values, each bank over its own copy of
    // the space (banks add Hebbian links). A copy keeps every handle.
    space_type twin = space;
    ecan_parameters params;
    params.starting_sti_funds = 1000.0;
    params.target_sti_funds = 500.0;
    params.sti_funds_buffer = 500.0;
    params.starting_lti_funds = 1000.0;
    params.target_lti_funds = 500.0;
    params.lti_funds_buffer = 500.0;
    params.focus_size = 6;
    params.sti_range = 127.0;
    params.lti_range = 508.0;
    AttentionBank<av8, tv8> bank8(space, params);
    AttentionBank<float_attention_value, tv8> bank32(twin, params);
    const std::vector<std::pair<const char*, std::vector<std::string>>> phases = {{"talk about whales", {"whale", "sea"}},
                                                                                  {"talk about penguins", {"penguin", "fish"}}};
    for (const auto& [title, words] : phases) {
        std::printf("\nECAN, %s: stimulate", title);
        for (const auto& w : words) std::printf(" %s", w.c_str());
        std::printf(" for 5 cycles\n");
        for (int c = 0; c < 5; ++c) {
            for (const auto& w : words) {
                const handle h = space.get_node(types::concept_node, w);
                if (h.is_null()) continue;
                bank8.stimulate(h, 1.0);
                bank32.stimulate(h, 1.0);
            }
            bank8.cycle();
            bank32.cycle();
        }
        print_focus(space, bank8, "8-bit");
        print_focus(twin, bank32, "float");
        std::printf("  STI funds: 8-bit %.0f, float %.1f; Hebbian links: %zu, %zu\n", bank8.sti_funds(), bank32.sti_funds(),
                    space.get_by_type(types::asymmetric_hebbian_link).size(), twin.get_by_type(types::asymmetric_hebbian_link).size());
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cog_demo: %s\n", e.what());
        return 1;
    }
}
