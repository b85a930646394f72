// Tests of Atomese in and out (cog/atomese.hpp) and of OpenCog's queries run through our pattern matcher
// (cog/atomese_query.hpp): reading, canonical writing, round trips at each value type's width, one test per
// malformed input (with its line and column), and the parity cases of tests/data/query/.

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cogqat/cog/atom_types.hpp"
#include "cogqat/cog/atomese.hpp"
#include "cogqat/cog/atomese_query.hpp"
#include "cogqat/cog/atomspace.hpp"
#include "cogqat/cog/attention_value.hpp"
#include "cogqat/cog/ecan.hpp"
#include "cogqat/cog/pattern.hpp"
#include "cogqat/cog/truth_value.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/policy.hpp"
#include "scratch_dir.hpp"

using namespace cogqat;
using namespace cogqat::cog;

namespace {

using q8_tv = quantized_truth_value<BitWidth<8>>;
using q4_tv = quantized_truth_value<BitWidth<4>>;
using q8_av = quantized_attention_value<BitWidth<8>>;

const char* const sample = R"scm(; a small knowledge base
(ConceptNode "cat" (stv 0.9 0.8))
(InheritanceLink (stv 1 0.5)
  (Concept "cat")            ; OpenCog's short name
  (ConceptNode "animal"))
#| a block comment
   over two lines |#
(EvaluationLink
  (Predicate "says")
  (List (Concept "cat") (Concept "say \"meow\"\n\\ at\tnight")))
(SimilarityLink (Concept "dog") (Concept "cat") (stv 0.25 0.125))
(Number 2.5)
(MemberLink (ConceptNode "x") (SetLink))
)scm";

template <TruthValue TV>
handle concept_of(const AtomSpace<TV>& s, const char* name) {
    return s.get_node(types::concept_node, name);
}

/// Every atom of a space by its canonical text.
template <TruthValue TV>
std::map<std::string, handle> by_term(const AtomSpace<TV>& s) {
    std::map<std::string, handle> out;
    s.for_each_atom([&](handle h) { out.emplace(atomese_term(s, h), h); });
    return out;
}

/// The error read_atomese throws for `text`, as (line, column, message).
struct failure {
    std::size_t line = 0;
    std::size_t column = 0;
    std::string message;
};
failure failure_of(const std::string& text) {
    AtomSpace<> s;
    try {
        static_cast<void>(read_atomese(s, text, {"bad.scm"}));
    } catch (const atomese_error& e) {
        CHECK(e.file() == "bad.scm");
        CHECK(std::string(e.what()).rfind("bad.scm:" + std::to_string(e.line()) + ":" + std::to_string(e.column()) + ": ", 0) == 0);
        CHECK(s.empty());  // checked whole before any change
        return {e.line(), e.column(), e.what()};
    }
    FAIL("no error for: " << text);
    return {};
}

}  // namespace

TEST_CASE("Atomese: nodes, links, short names, values, comments and string escapes are read") {
    AtomSpace<> s;
    const std::vector<handle> top = read_atomese(s, sample);
    REQUIRE(top.size() == 6);
    CHECK(s.size() == 13);
    const handle cat = concept_of(s, "cat");
    REQUIRE(!cat.is_null());
    CHECK(s.truth_value(cat) == float_truth_value(0.9f, 0.8f));
    CHECK(s.type(top[1]) == types::inheritance_link);
    CHECK(s.truth_value(top[1]) == float_truth_value(1.0f, 0.5f));
    CHECK(!concept_of(s, "say \"meow\"\n\\ at\tnight").is_null());
    CHECK(s.truth_value(top[3]) == float_truth_value(0.25f, 0.125f));
    CHECK(s.name(top[4]) == "2.5");
    CHECK(s.type(top[4]) == types::number_node);
    CHECK(s.arity(*std::next(s.outgoing(top[5]).begin())) == 0);  // the empty SetLink
    // An atom read again keeps its handle, and the last truth value given wins.
    const std::vector<handle> again = read_atomese(s, "(ConceptNode \"cat\" (stv 0.5 0.5))");
    CHECK(again[0] == cat);
    CHECK(s.truth_value(cat) == float_truth_value(0.5f, 0.5f));
    CHECK(s.size() == 13);
}

TEST_CASE_TEMPLATE("Atomese: read, write, read gives the same space, at the value type's width", TV, float_truth_value, q8_tv, q4_tv) {
    AtomSpace<TV> a;
    static_cast<void>(read_atomese(a, sample));
    const std::string text = to_atomese(a);
    AtomSpace<TV> b;
    static_cast<void>(read_atomese(b, text));
    CHECK(b.size() == a.size());
    CHECK(to_atomese(b) == text);
    const auto in_b = by_term(b);
    for (const auto& [term, h] : by_term(a)) {
        REQUIRE(in_b.count(term) == 1);
        CHECK(b.truth_value(in_b.at(term)) == a.truth_value(h));  // the same codes for quantized values
    }
    if constexpr (requires { TV::bits; }) {
        CHECK(text.find(std::to_string(TV::bits) + "-bit codes") != std::string::npos);
        // Each value is rounded as the type rounds it: 0.9 to the nearest code.
        CHECK(a.truth_value(concept_of(a, "cat")) == TV(0.9f, 0.8f));
    } else {
        CHECK(text.find("truth values: float") != std::string::npos);
        CHECK(text.find("(stv 0.9 0.8)") != std::string::npos);
    }
}

TEST_CASE("Atomese: the writer is canonical, whatever order the atoms came in") {
    AtomSpace<> a, b;
    static_cast<void>(read_atomese(a, "(Concept \"z\") (SetLink (Concept \"b\") (Concept \"a\")) (List (Concept \"a\"))"));
    static_cast<void>(read_atomese(b, "(List (Concept \"a\")) (Concept \"b\") (SetLink (Concept \"a\") (Concept \"b\")) (Concept \"z\")"));
    CHECK(to_atomese(a) == to_atomese(b));
    CHECK(to_atomese(a).find("(SetLink\n  (ConceptNode \"a\")\n  (ConceptNode \"b\"))") != std::string::npos);
    CHECK(atomese_term(a, a.get_link(types::list_link, {concept_of(a, "a")})) == "(ListLink (ConceptNode \"a\"))");
    CHECK_THROWS_AS(static_cast<void>(atomese_term(a, handle{})), invalid_argument_error);
}

TEST_CASE_TEMPLATE("Atomese: attention values go through an AttentionBank and round trip at its width", AV, float_attention_value, q8_av) {
    AtomSpace<> space;
    AttentionBank<AV> bank(space);
    const std::vector<handle> top = read_atomese(bank, "(Concept \"a\" (av 12.4 -3 2)) (List (av 0 5 0) (Concept \"b\"))");
    const handle a = top[0];
    if constexpr (requires { AV::bits; }) {
        CHECK(bank.sti(a) == 12.0);  // rounded to the nearest level
    } else {
        CHECK(bank.sti(a) == doctest::Approx(12.4));
    }
    CHECK(bank.lti(a) == -3.0);
    CHECK(bank.vlti(a) == 2);
    CHECK(bank.lti(top[1]) == 5.0);
    const std::string text = to_atomese(bank);
    CHECK(text.find("; attention values: ") != std::string::npos);
    AtomSpace<> space2;
    AttentionBank<AV> bank2(space2);
    static_cast<void>(read_atomese(bank2, text));
    CHECK(to_atomese(bank2) == text);
    CHECK(bank2.sti(space2.get_node(types::concept_node, "a")) == bank.sti(a));
    // A malformed text changes neither the space nor the bank's funds.
    const double funds = bank2.sti_funds();
    const std::size_t atoms = space2.size();
    CHECK_THROWS_AS(static_cast<void>(read_atomese(bank2, "(Concept \"n\" (av 5 5 0))\n(Concept \"m\" (av 1 2 3 4))")), atomese_error);
    CHECK(bank2.sti_funds() == funds);
    CHECK(space2.size() == atoms);
    // A VLTI beyond the type saturates, as the type does.
    static_cast<void>(read_atomese(bank2, "(Concept \"c\" (av 0 0 100000))"));
    CHECK(bank2.vlti(space2.get_node(types::concept_node, "c")) == AV::max_vlti);
}

TEST_CASE("Atomese: without a bank an attention value is refused, or dropped when asked") {
    AtomSpace<> s;
    CHECK_THROWS_AS(static_cast<void>(read_atomese(s, "(Concept \"a\" (av 1 2 0))")), atomese_error);
    CHECK(s.empty());
    const auto top = read_atomese(s, "(Concept \"a\" (av 1 2 0))", {"x.scm", attention_without_bank::ignore});
    CHECK(s.size() == 1);
    CHECK(s.name(top[0]) == "a");
    // Still checked when dropped.
    CHECK_THROWS_AS(static_cast<void>(read_atomese(s, "(Concept \"a\" (av 1 x 0))", {"x.scm", attention_without_bank::ignore})),
                    atomese_error);
}

TEST_CASE("Atomese: every malformed input is refused with its line and column") {
    struct bad_case {
        const char* text;
        std::size_t line, column;
        const char* says;
    };
    const bad_case cases[] = {
            {"(Concept \"a\")\n(List (Concept \"b\")", 2, 1, "never closed"},
            {"(Concept \"a\"))", 1, 14, "closes no"},
            {"(Concept \"a\")\n  (FrobNode \"x\")", 2, 4, "unknown atom type 'FrobNode'"},
            {"(ListLink \"a\")", 1, 11, "a link: it takes atoms, not a node's name"},
            {"(ListLink 3)", 1, 11, "a link: it takes atoms"},
            {"(ListLink foo)", 1, 11, "the symbol 'foo'"},
            {"(ConceptNode \"a\" (ConceptNode \"b\"))", 1, 18, "a node: it takes a name, not atoms"},
            {"(ConceptNode)", 1, 1, "needs a name"},
            {"(ConceptNode \"a\" \"b\")", 1, 18, "second name"},
            {"(ConceptNode 3)", 1, 14, "takes a name in double quotes"},
            {"(Concept \"a\" (stv 0.5x 0.5))", 1, 19, "bad number '0.5x'"},
            {"(Concept \"a\" (stv 1.5 0.5))", 1, 19, "outside [0, 1]"},
            {"(Concept \"a\" (stv 0.5 nan))", 1, 23, "bad number: the confidence"},
            {"(Concept \"a\" (stv 0.5))", 1, 14, "takes 2 numbers"},
            {"(Concept \"a\" (stv 1 1) (stv 1 1))", 1, 24, "second truth value"},
            {"(Concept \"a\" (stv 1e999 1))", 1, 19, "bad number '1e999'"},
            {"(Number 1/2)", 1, 9, "bad number '1/2'"},
            {"(Concept \"a", 1, 10, "unterminated string"},
            {"(Concept \"a\\q\")", 1, 12, "unknown escape"},
            {"#| open", 1, 1, "unterminated block comment"},
            {"(Concept 'a)", 1, 10, "Scheme syntax"},
            {"\"top\"", 1, 1, "expected an atom"},
            {"()", 1, 1, "empty list"},
            {"((Concept \"a\"))", 1, 2, "starts with its type's name"},
            {"(stv 1 1)", 1, 2, "where an atom is expected"},
            {"(Atom \"a\")", 1, 2, "neither a node nor a link"},
            {"(Concept \"a\" (av 1 2 -1))", 1, 22, "not a count"},
            {"(Concept \"a\" (av 1e31 2 0))", 1, 18, "beyond 1e30"},
            {"\n\n   (Concept \"a\" (av 1 2))", 3, 17, "takes 3 numbers"},
    };
    for (const bad_case& c : cases) {
        CAPTURE(c.text);
        const failure f = failure_of(c.text);
        CHECK(f.line == c.line);
        CHECK(f.column == c.column);
        CHECK_MESSAGE(f.message.find(c.says) != std::string::npos, f.message);
    }
    // Nesting deeper than the parser allows.
    std::string deep;
    for (std::size_t i = 0; i <= max_atomese_depth; ++i) deep += "(List ";
    CHECK(failure_of(deep).message.find("nest deeper") != std::string::npos);
}

TEST_CASE("Atomese: user types are accepted once registered, as OpenCog's loaded modules; never declared by a file") {
    AtomSpace<> s;
    CHECK(failure_of("(FooNode \"x\")").message.find("unknown atom type") != std::string::npos);
    const type_id foo = s.types().add("FooNode", {types::concept_node});
    const type_id foo_link = s.types().add("FooLink", {types::ordered_link});
    const auto top = read_atomese(s, "(FooNode \"x\") (FooLink (FooNode \"x\"))");
    CHECK(s.type(top[0]) == foo);
    CHECK(s.type(top[1]) == foo_link);
    CHECK(to_atomese(s).find("(FooLink\n  (FooNode \"x\"))") != std::string::npos);
    // The short name "Foo" now names two types.
    try {
        static_cast<void>(read_atomese(s, "(Foo \"y\")"));
        FAIL("an ambiguous short name was accepted");
    } catch (const atomese_error& e) {
        CHECK(std::string(e.what()).find("ambiguous") != std::string::npos);
    }
}

TEST_CASE("Atomese: files are written all or nothing and read back; a missing file is an io_error") {
    const test::scratch_dir dir;
    AtomSpace<q8_tv> a;
    static_cast<void>(read_atomese(a, sample));
    write_atomese_file(a, dir / "kb.scm");
    AtomSpace<q8_tv> b;
    static_cast<void>(read_atomese_file(b, dir / "kb.scm"));
    CHECK(to_atomese(b) == to_atomese(a));
    CHECK_THROWS_AS(static_cast<void>(read_atomese_file(b, dir / "missing.scm")), io_error);
    std::ofstream(dir / "bad.scm") << "(Concept \"a\")\n(Concept \"b\" (stv 2 0))\n";
    try {
        static_cast<void>(read_atomese_file(b, dir / "bad.scm"));
        FAIL("no error");
    } catch (const atomese_error& e) {
        CHECK(e.file() == (dir / "bad.scm").string());
        CHECK(e.line() == 2);
    }
}

TEST_CASE("Atomese: the writer walks deep links without recursion") {
    AtomSpace<> s;
    handle h = s.add_node(types::concept_node, "leaf");
    for (int i = 0; i < 5000; ++i) h = s.add_link(types::list_link, {h});
    const std::string text = to_atomese(s);
    CHECK(text.find("(ConceptNode \"leaf\")") != std::string::npos);
    CHECK(atomese_term(s, h).size() > 5000 * 10);
    // Much sharing: 2^40 leaves written out would not fit anywhere, but ranking the atoms costs 40 steps.
    AtomSpace<> shared;
    handle top = shared.add_node(types::concept_node, "x");
    for (int i = 0; i < 40; ++i) top = shared.add_link(types::set_link, {top, shared.add_link(types::list_link, {top})});
    const cog::detail::atomese_impl::writer<float_truth_value> w(shared);
    CHECK(w.roots() == std::vector<handle>{top});
}

// ------------------------------------------------------------------------------------ pattern-matcher parity

namespace {

/// One section of a parity fixture: the file's text with every line outside the section blanked, so that
/// errors keep their line numbers.
std::string section(const std::string& text, const std::string& name) {
    std::istringstream in(text);
    std::string out, line, current;
    while (std::getline(in, line)) {
        if (line.rfind(";; @", 0) == 0)
            current = line.substr(4, line.find(' ', 4) == std::string::npos ? std::string::npos : line.find(' ', 4) - 4);
        out += (current == name && line.rfind(";; @", 0) != 0) ? line : "";
        out += '\n';
    }
    return out;
}

/// The construct a fixture expects to be refused ("" when it expects results).
std::string refused_construct(const std::string& text) {
    const std::string marker = ";; @refused ";
    const std::size_t at = text.find(marker);
    if (at == std::string::npos) return "";
    const std::size_t end = text.find('\n', at);
    return text.substr(at + marker.size(), end - at - marker.size());
}

std::vector<std::string> sorted_terms(const AtomSpace<>& s, const std::vector<handle>& atoms) {
    std::vector<std::string> out;
    for (const handle h : atoms) out.push_back(atomese_term(s, h));
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::filesystem::path> parity_fixtures() {
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(COGQAT_QUERY_FIXTURES))
        if (e.path().extension() == ".scm") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    return files;
}

}  // namespace

TEST_CASE("Atomese: every parity fixture round-trips through the reader and the writer") {
    const auto files = parity_fixtures();
    CHECK(files.size() >= 30);
    for (const auto& file : files) {
        CAPTURE(file.string());
        AtomSpace<> a;
        static_cast<void>(read_atomese_file(a, file));
        const std::string text = to_atomese(a);
        AtomSpace<> b;
        static_cast<void>(read_atomese(b, text));
        CHECK(b.size() == a.size());
        CHECK(to_atomese(b) == text);
    }
}

TEST_CASE("pattern-matcher parity: OpenCog's query cases give their expected groundings, or are refused by name") {
    std::size_t passed = 0, refused = 0;
    for (const auto& file : parity_fixtures()) {
        CAPTURE(file.filename().string());
        std::ifstream in(file);
        const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        const atomese_read_options options{file.string()};
        const std::string construct = refused_construct(text);
        // Once with the query in a space of its own, once beside the data as OpenCog keeps it.
        for (const bool same_space : {false, true}) {
            CAPTURE(same_space);
            AtomSpace<> data, own;
            static_cast<void>(read_atomese(data, section(text, "data"), options));
            AtomSpace<>& query_space = same_space ? data : own;
            const std::vector<handle> queries = read_atomese(query_space, section(text, "query"), options);
            REQUIRE(queries.size() == 1);
            if (!construct.empty()) {
                try {
                    static_cast<void>(execute_atomese_query(query_space, queries[0], data));
                    FAIL("not refused; expected the construct " << construct);
                } catch (const unsupported_query_error& e) {
                    CHECK(e.construct() == construct);
                    CHECK(std::string(e.what()).find(construct) != std::string::npos);
                }
                continue;
            }
            AtomSpace<> expected;
            const bool beside = same_space && text.find(";; @expect-beside") != std::string::npos;
            const std::vector<handle> want = read_atomese(expected, section(text, beside ? "expect-beside" : "expect"), options);
            REQUIRE(want.size() == 1);
            REQUIRE(expected.type(want[0]) == types::set_link);
            const auto out = expected.outgoing(want[0]);
            const std::vector<std::string> wanted = sorted_terms(expected, {out.begin(), out.end()});
            const std::vector<handle> results = execute_atomese_query(query_space, queries[0], data);
            CHECK(sorted_terms(data, results) == wanted);
        }
        ++(construct.empty() ? passed : refused);
    }
    MESSAGE("parity cases: " << passed << " pass, " << refused << " refused by name");
    CHECK(passed >= 30);
}

TEST_CASE("atomese queries: malformed queries are refused, and a query may use the pattern matcher's absent clauses directly") {
    AtomSpace<> s;
    const auto top = read_atomese(s, R"(
(Inheritance (Concept "a") (Concept "b"))
(Get (Variable "$x") (Variable "$y") (Inheritance (Variable "$x") (Concept "b")))
(Get (TypedVariable (Variable "$x") (Type "NoSuchType")) (Inheritance (Variable "$x") (Concept "b")))
(Get (TypedVariable (Concept "x") (Type "ConceptNode")) (Inheritance (Variable "$x") (Concept "b")))
(Get (Concept "x") (Inheritance (Variable "$x") (Concept "b")))
(Get (VariableList (Variable "$x") (Variable "$x")) (Inheritance (Variable "$x") (Concept "b")))
(Get (Variable "$x") (Concept "b"))
(Get (VariableList (Variable "$x") (Variable "$y")) (And (Inheritance (Variable "$x") (Concept "b")) (Absent (List (Variable "$y")))))
(Satisfaction (Inheritance (Variable "$x") (Concept "b")))
(List (Concept "b"))
)");
    CHECK_THROWS_WITH_AS(static_cast<void>(execute_atomese_query(s, top[1], s)), doctest::Contains("takes 1 or 2 atoms"),
                         invalid_argument_error);
    CHECK_THROWS_WITH_AS(static_cast<void>(execute_atomese_query(s, top[2], s)), doctest::Contains("NoSuchType"), invalid_argument_error);
    CHECK_THROWS_WITH_AS(static_cast<void>(execute_atomese_query(s, top[3], s)), doctest::Contains("must be a VariableNode"),
                         invalid_argument_error);
    CHECK_THROWS_WITH_AS(static_cast<void>(execute_atomese_query(s, top[4], s)), doctest::Contains("variable declaration"),
                         invalid_argument_error);
    CHECK_THROWS_WITH_AS(static_cast<void>(execute_atomese_query(s, top[5], s)), doctest::Contains("declared twice"),
                         invalid_argument_error);
    CHECK_THROWS_WITH_AS(static_cast<void>(execute_atomese_query(s, top[6], s)), doctest::Contains("must be a link"),
                         invalid_argument_error);
    CHECK_THROWS_WITH_AS(static_cast<void>(execute_atomese_query(s, top[7], s)), doctest::Contains("but absent ones"),
                         invalid_argument_error);
    CHECK_THROWS_AS(static_cast<void>(execute_atomese_query(s, top[8], s)), unsupported_query_error);
    CHECK_THROWS_WITH_AS(static_cast<void>(execute_atomese_query(s, top[9], s)),
                         doctest::Contains("not a BindLink, QueryLink, GetLink or MeetLink"), invalid_argument_error);
    // IdenticalLink: two different constants never hold, one atom on both sides always does; a side holding
    // a variable inside a link, or an absent comparison, is refused.
    const auto identity = read_atomese(s, R"(
(Get (Variable "$x") (And (Inheritance (Variable "$x") (Concept "b")) (Identical (Concept "a") (Concept "b"))))
(Get (Variable "$x") (And (Inheritance (Variable "$x") (Concept "b")) (Identical (Variable "$x") (Variable "$x"))))
(Get (Variable "$x") (And (Inheritance (Variable "$x") (Concept "b")) (Identical (List (Variable "$x")) (Concept "b"))))
(Get (Variable "$x") (And (Inheritance (Variable "$x") (Concept "b")) (Absent (Identical (Variable "$x") (Concept "b")))))
)");
    CHECK(execute_atomese_query(s, identity[0], s).empty());
    CHECK(execute_atomese_query(s, identity[1], s) == std::vector<handle>{concept_of(s, "a")});
    CHECK_THROWS_AS(static_cast<void>(execute_atomese_query(s, identity[2], s)), unsupported_query_error);
    CHECK_THROWS_AS(static_cast<void>(execute_atomese_query(s, identity[3], s)), unsupported_query_error);
    // A query built in code deeper than the compiler recurses is refused.
    handle deep = s.add_node(types::variable_node, "$d");
    for (int i = 0; i < 600; ++i) deep = s.add_link(types::list_link, {deep});
    const handle deep_query = s.add_link(types::get_link, {s.add_link(types::member_link, {deep, concept_of(s, "b")})});
    CHECK_THROWS_WITH_AS(static_cast<void>(execute_atomese_query(s, deep_query, s)), doctest::Contains("nests deeper"),
                         invalid_argument_error);
    // find_atomese_groundings gives the values in declaration order.
    const auto g = find_atomese_groundings(
            s,
            s.add_link(types::get_link,
                       {s.add_node(types::variable_node, "$x"),
                        s.add_link(types::inheritance_link, {s.add_node(types::variable_node, "$x"), concept_of(s, "b")})}),
            s);
    REQUIRE(g.size() == 1);
    CHECK(g[0].values[0] == concept_of(s, "a"));
}

TEST_CASE("pattern: absent clauses and type choices, built directly") {
    AtomSpace<> s;
    const handle cat = s.add_node(types::concept_node, "cat"), dog = s.add_node(types::concept_node, "dog");
    const handle mammal = s.add_node(types::concept_node, "mammal"), pet = s.add_node(types::concept_node, "pet");
    const handle three = s.add_node(types::number_node, "3");
    for (const handle h : {cat, dog, three}) s.add_link(types::inheritance_link, {h, mammal});
    s.add_link(types::inheritance_link, {cat, pet});
    pattern p;
    const type_restriction either[] = {{types::concept_node, type_match::exact}, {types::number_node, type_match::exact}};
    const pattern_variable x = p.variable("$x", either);
    p.clause(types::inheritance_link, {x, mammal});
    p.absent(types::inheritance_link, {x, pet});
    const auto found = find_groundings(s, p);
    REQUIRE(found.size() == 2);
    CHECK(found[0][x] == dog);
    CHECK(found[1][x] == three);
    CHECK(p.absent_count() == 1);
    CHECK_THROWS_AS(static_cast<void>(p.variable("$y", std::span<const type_restriction>{})), invalid_argument_error);
}
