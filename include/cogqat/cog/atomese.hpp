#pragma once
// Atomese in and out: OpenCog's Scheme notation for atoms, read into an AtomSpace<TV> (and its attention
// values into an AttentionBank) and written back.
//
//   (ConceptNode "cat" (stv 0.9 0.8))
//   (InheritanceLink (stv 1 0.5) (av 10 0 1)
//     (ConceptNode "cat")
//     (Concept "animal"))                        ; OpenCog's short names: Concept = ConceptNode, ...
//
// Every top-level form is an atom. A node takes one name (a string; a NumberNode also a number), a link takes
// atoms; either may carry one (stv strength confidence) and one (av sti lti vlti), anywhere among its
// arguments. Type names are those of the space's registry, each also without its "Node" or "Link" suffix
// where that names one type only. As in OpenCog, a type must be known before a file uses it: a file cannot
// declare types (OpenCog registers them when a module loads; here, through space.types().add() before
// reading), so an unknown name is an error.
//
// Reading is all or nothing: the whole text is parsed and checked before the first atom is added, so a
// malformed file (atomese_error: file, line, column) leaves the space and the bank as they were. Writing is
// canonical: the atoms nothing points at, each as one form with its subatoms inside, in an order fixed by
// their content (detail::atomese_impl::writer), unordered outgoing sets too, so two equal spaces give the
// same text whatever order their atoms came in.
// The header comment names the truth- and attention-value types and their widths; a quantized value is
// written as the value of its code, which reads back to the same code.

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "cogqat/cog/atom_types.hpp"
#include "cogqat/cog/atomese_syntax.hpp"
#include "cogqat/cog/atomspace.hpp"
#include "cogqat/cog/attention_value.hpp"
#include "cogqat/cog/ecan.hpp"
#include "cogqat/cog/truth_value.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/io/file.hpp"

namespace cogqat::cog {

/// What read_atomese does with an (av ...) when it reads into a space without an AttentionBank.
enum class attention_without_bank : std::uint8_t {
    refuse,  ///< atomese_error at the (av ...): dropping it silently would lose data
    ignore,  ///< read the atoms, drop their attention values
};

/// Options of read_atomese.
struct atomese_read_options {
    /// Name the errors give the text (read_atomese_file uses the path).
    std::string file = "<text>";
    attention_without_bank attention = attention_without_bank::refuse;
};

namespace detail::atomese_impl {

/// An (av sti lti vlti) as read: checked, not yet rounded to a type.
struct attention_triple {
    double sti = 0.0;
    double lti = 0.0;
    unsigned vlti = 0;
};

/// Largest |STI| or |LTI| read; the AttentionBank refuses more (its funds would overflow).
inline constexpr double max_attention_magnitude = 1e30;

/// The shortest text that reads back to exactly `x`.
template <class F>
[[nodiscard]] std::string shortest(F x) {
    char buf[64];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, x);
    return ec == std::errc{} ? std::string(buf, end) : std::string("0");
}

/// A string as a Scheme string literal (the escapes the reader resolves).
inline void append_quoted(std::string& out, std::string_view s) {
    out += '"';
    for (const char c : s) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                out += c;
        }
    }
    out += '"';
}

/// The checked atoms of a text in the order they are to be added: children before parents.
template <TruthValue TV>
class read_plan {
public:
    struct step {
        type_id type = 0;
        bool node = false;
        std::string name;                   // node
        std::vector<std::uint32_t> inputs;  // link: the steps of its outgoing set
        std::optional<TV> tv;
        std::optional<attention_triple> av;
    };

    read_plan(const atom_type_registry& types, const atomese_read_options& options, bool has_bank)
            : types_(types), options_(options), has_bank_(has_bank) {}

    /// Checks every form of `text`; throws atomese_error at the first fault.
    void build(std::string_view text) {
        const std::vector<sexpr> forms = parse_sexprs(text, options_.file);
        for (const sexpr& form : forms) top_.push_back(atom(form));
    }

    [[nodiscard]] const std::vector<step>& steps() const noexcept { return steps_; }
    [[nodiscard]] const std::vector<std::uint32_t>& top() const noexcept { return top_; }

private:
    [[noreturn]] void fail(const sexpr& at, const std::string& what) const {
        throw atomese_error(options_.file, at.where.line, at.where.column, what);
    }

    static std::string shown(const sexpr& e) {
        switch (e.type) {
            case sexpr::kind::string:
                return "the string \"" + e.text + "\"";
            case sexpr::kind::number:
                return "the number " + e.text;
            case sexpr::kind::symbol:
                return "the symbol '" + e.text + "'";
            case sexpr::kind::list:
                break;
        }
        return "a list";
    }

    static bool is_value_form(const sexpr& e) noexcept { return e.has_head("stv") || e.has_head("av"); }

    /// The type a form's head names, by its full name or OpenCog's short one.
    type_id type_of(const sexpr& form) const {
        if (form.items.empty()) fail(form, "an empty list is not an atom");
        const sexpr& head = form.items.front();
        if (head.type != sexpr::kind::symbol) fail(head, "an atom starts with its type's name, not with " + shown(head));
        if (const auto t = types_.find(head.text)) return *t;
        const auto as_node = types_.find(head.text + "Node");
        const auto as_link = types_.find(head.text + "Link");
        if (as_node && as_link) fail(head, "'" + head.text + "' is ambiguous: both " + head.text + "Node and " + head.text + "Link exist");
        if (as_node) return *as_node;
        if (as_link) return *as_link;
        if (head.text == "stv" || head.text == "av") fail(head, "(" + head.text + " ...) where an atom is expected");
        fail(head, "unknown atom type '" + head.text + "'");
    }

    double number_in(const sexpr& e, std::string_view what) const {
        if (e.type != sexpr::kind::number) fail(e, "bad number: the " + std::string(what) + " is " + shown(e));
        return e.number;
    }

    TV truth_value(const sexpr& form) const {
        if (form.items.size() != 3) fail(form, "(stv strength confidence) takes 2 numbers, not " + std::to_string(form.items.size() - 1));
        float parts[2] = {0.0f, 0.0f};
        const char* names[2] = {"strength", "confidence"};
        for (std::size_t k = 0; k < 2; ++k) {
            const sexpr& e = form.items[k + 1];
            const double x = number_in(e, names[k]);
            if (!(x >= 0.0 && x <= 1.0)) fail(e, std::string("bad number: the ") + names[k] + " " + e.text + " is outside [0, 1]");
            // Parsed again as a float: a float written in its shortest form then reads back exactly.
            const std::string_view digits = e.text.front() == '+' ? std::string_view(e.text).substr(1) : std::string_view(e.text);
            static_cast<void>(std::from_chars(digits.data(), digits.data() + digits.size(), parts[k]));
        }
        try {
            return TV(parts[0], parts[1]);
        } catch (const error& e) {  // a TruthValue type with a narrower domain than [0, 1]
            fail(form, e.what());
        }
    }

    attention_triple attention(const sexpr& form) const {
        if (form.items.size() != 4) fail(form, "(av sti lti vlti) takes 3 numbers, not " + std::to_string(form.items.size() - 1));
        attention_triple av;
        const char* names[2] = {"STI", "LTI"};
        double* parts[2] = {&av.sti, &av.lti};
        for (std::size_t k = 0; k < 2; ++k) {
            const sexpr& e = form.items[k + 1];
            const double x = number_in(e, names[k]);
            if (!(std::abs(x) <= max_attention_magnitude))
                fail(e, std::string("bad number: the ") + names[k] + " " + e.text + " is beyond 1e30");
            *parts[k] = x;
        }
        const sexpr& v = form.items[3];
        const double vlti = number_in(v, "VLTI");
        if (!(vlti >= 0.0) || std::floor(vlti) != vlti) fail(v, "bad number: the VLTI " + v.text + " is not a count (an integer >= 0)");
        // Counts beyond what any value type holds saturate, as the types do.
        av.vlti = vlti >= 4294967295.0 ? 0xFFFFFFFFu : static_cast<unsigned>(vlti);
        if (!has_bank_ && options_.attention == attention_without_bank::refuse) {
            fail(form, "an attention value, but no AttentionBank to keep it: read through one, or with attention_without_bank::ignore");
        }
        return av;
    }

    std::uint32_t atom(const sexpr& form) {
        if (!form.is_list()) fail(form, "expected an atom, found " + shown(form));
        const type_id type = type_of(form);
        const bool node = types_.is_node(type);
        if (!node && !types_.is_link(type)) fail(form.items.front(), std::string(types_.name(type)) + " is neither a node nor a link type");
        step s;
        s.type = type;
        s.node = node;
        bool named = false;
        for (std::size_t k = 1; k < form.items.size(); ++k) {
            const sexpr& arg = form.items[k];
            if (arg.has_head("stv")) {
                if (s.tv) fail(arg, "a second truth value for one atom");
                s.tv = truth_value(arg);
            } else if (arg.has_head("av")) {
                if (s.av) fail(arg, "a second attention value for one atom");
                const attention_triple av = attention(arg);
                if (has_bank_) s.av = av;
            } else if (node) {
                const bool number_name = arg.type == sexpr::kind::number && type == types::number_node;
                if (arg.is_list()) fail(arg, std::string(types_.name(type)) + " is a node: it takes a name, not atoms");
                if (arg.type != sexpr::kind::string && !number_name) {
                    fail(arg, std::string(types_.name(type)) + " takes a name in double quotes, not " + shown(arg));
                }
                if (named) fail(arg, std::string(types_.name(type)) + " is given a second name");
                named = true;
                s.name = number_name ? shortest(arg.number) : arg.text;
            } else {
                if (arg.type == sexpr::kind::string) {
                    fail(arg, std::string(types_.name(type)) + " is a link: it takes atoms, not a node's name (" + shown(arg) + ")");
                }
                if (!arg.is_list()) fail(arg, std::string(types_.name(type)) + " is a link: it takes atoms, not " + shown(arg));
                s.inputs.push_back(atom(arg));
            }
        }
        if (node && !named) fail(form, std::string(types_.name(type)) + " is a node and needs a name");
        steps_.push_back(std::move(s));
        return static_cast<std::uint32_t>(steps_.size() - 1);
    }

    const atom_type_registry& types_;
    const atomese_read_options& options_;
    bool has_bank_;
    std::vector<step> steps_;
    std::vector<std::uint32_t> top_;
};

/// Adds the atoms of a checked plan; `set_av` puts an attention value where there is a bank.
template <TruthValue TV, class SetAttention>
std::vector<handle> apply(AtomSpace<TV>& space, const read_plan<TV>& plan, SetAttention&& set_av) {
    std::vector<handle> made(plan.steps().size());
    std::vector<handle> outgoing;
    for (std::size_t i = 0; i < plan.steps().size(); ++i) {
        const auto& s = plan.steps()[i];
        if (s.node) {
            made[i] = space.add_node(s.type, s.name);
        } else {
            outgoing.clear();
            for (const std::uint32_t in : s.inputs) outgoing.push_back(made[in]);
            made[i] = space.add_link(s.type, outgoing);
        }
        if (s.tv) space.set_truth_value(made[i], *s.tv);
        if (s.av) set_av(made[i], *s.av);
    }
    std::vector<handle> top;
    top.reserve(plan.top().size());
    for (const std::uint32_t t : plan.top()) top.push_back(made[t]);
    return top;
}

[[nodiscard]] inline std::string read_text(const std::filesystem::path& path) {
    const std::vector<std::byte> bytes = io::read_file(path);
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

/// The header line that names a value type and its width.
template <TruthValue TV>
[[nodiscard]] std::string describe_truth_values() {
    if constexpr (requires { TV::bits; }) {
        return "; truth values: " + std::string(TV::name) + ", " + std::to_string(TV::bits) +
               "-bit codes of strength and confidence on [0, 1] (step 1/" + std::to_string((1ull << TV::bits) - 1) +
               "); each value written is its code's value and reads back to that code";
    } else {
        return "; truth values: " + std::string(TV::name) + ", unquantized (" + std::to_string(sizeof(TV)) +
               " bytes per atom), written in the shortest form that reads back exactly";
    }
}
template <AttentionValue AV>
[[nodiscard]] std::string describe_attention_values(attention_steps steps) {
    if constexpr (requires { AV::bits; }) {
        return "; attention values: " + std::string(AV::name) + ", " + std::to_string(AV::bits) + "-bit STI and LTI levels (steps " +
               shortest(steps.sti) + " and " + shortest(steps.lti) + ", at most " + shortest(AV::max_level) +
               " steps each way, saturating), VLTI up to " + std::to_string(AV::max_vlti) +
               "; each value written is its level's value and reads back to that level";
    } else {
        return "; attention values: " + std::string(AV::name) + ", unquantized (" + std::to_string(sizeof(AV)) +
               " bytes per atom), VLTI up to " + std::to_string(AV::max_vlti) + ", written in the shortest form that reads back exactly";
    }
}

/// Writes a space's atoms in canonical order. The order is a rank per atom that depends on the atoms'
/// content alone: lower height first (a node has height 0, a link one more than its highest member), then
/// the type's name, then a node's name or a link's members' ranks (sorted, for an unordered type). Ranks are
/// computed level by level without recursion and without building any atom's text, so deep or much-shared
/// links cost time and memory in proportion to the space, not to their written length.
template <TruthValue TV>
class writer {
public:
    /// Ranks every atom of the space.
    explicit writer(const AtomSpace<TV>& space) : space_(space) {
        std::vector<handle> all;
        space.for_each_atom([&](handle h) { all.push_back(h); });
        rank_atoms(all);
    }
    /// Ranks the atoms under `root` only (their relative order is the same as in the whole space).
    writer(const AtomSpace<TV>& space, handle root) : space_(space) { rank_atoms({root}); }

    /// The outgoing set in written order: as stored, or sorted by rank for an unordered type.
    std::vector<handle> ordered(handle link) const {
        const auto out = space_.outgoing(link);
        std::vector<handle> children(out.begin(), out.end());
        if (space_.types().is_unordered(space_.type(link))) {
            std::stable_sort(children.begin(), children.end(), [&](handle x, handle y) { return rank_[x.index] < rank_[y.index]; });
        }
        return children;
    }

    /// Every atom nothing points at, in rank order.
    std::vector<handle> roots() const {
        std::vector<handle> r;
        for (const handle h : ranked_)
            if (space_.incoming(h).empty()) r.push_back(h);
        return r;
    }

    /// One atom as a form: on one line (`indent` false) or indented, values after each atom's type (and a
    /// node's name). Iterative, so deep links cannot exhaust the stack.
    template <class Values>
    void form(handle root, std::string& out, bool indent, Values&& values) const {
        struct frame {
            std::vector<handle> children;
            std::size_t next;
        };
        std::vector<frame> stack;
        auto open = [&](handle a) {
            out += '(';
            out += space_.types().name(space_.type(a));
            if (space_.is_node(a)) {
                out += ' ';
                append_quoted(out, space_.name(a));
                values(a, out);
                out += ')';
                return;
            }
            values(a, out);
            stack.push_back({ordered(a), 0});
        };
        open(root);
        while (!stack.empty()) {
            frame& f = stack.back();
            if (f.next == f.children.size()) {
                out += ')';
                stack.pop_back();
                continue;
            }
            const handle child = f.children[f.next++];
            if (indent) {
                out += '\n';
                out.append(2 * stack.size(), ' ');
            } else {
                out += ' ';
            }
            open(child);
        }
    }

private:
    /// Ranks every atom reachable from `from`, keeping them in ranked_ in rank order.
    void rank_atoms(const std::vector<handle>& from) {
        const std::size_t bound = space_.index_bound();
        constexpr std::uint32_t unseen = 0xFFFFFFFFu;
        std::vector<std::uint32_t> height(bound, unseen);
        std::vector<std::vector<handle>> levels;
        // Heights by an explicit post-order walk.
        std::vector<handle> stack;
        for (const handle start : from) {
            if (height[start.index] != unseen) continue;
            stack.push_back(start);
            while (!stack.empty()) {
                const handle a = stack.back();
                if (height[a.index] != unseen) {
                    stack.pop_back();
                    continue;
                }
                std::uint32_t h = 0;
                bool ready = true;
                if (space_.is_link(a)) {
                    h = 1;
                    for (const handle c : space_.outgoing(a)) {
                        if (height[c.index] == unseen) {
                            stack.push_back(c);
                            ready = false;
                        } else {
                            h = std::max(h, height[c.index] + 1);
                        }
                    }
                }
                if (!ready) continue;
                height[a.index] = h;
                if (levels.size() <= h) levels.resize(h + 1);
                levels[h].push_back(a);
                stack.pop_back();
            }
        }
        rank_.assign(bound, 0);
        std::uint32_t next = 0;
        std::vector<std::uint32_t> members;  // each link's member ranks, in written order, level by level
        std::vector<std::size_t> first;      // where each link's ranks start in members
        for (std::vector<handle>& level : levels) {
            members.clear();
            first.assign(level.size() + 1, 0);
            for (std::size_t k = 0; k < level.size(); ++k) {
                first[k] = members.size();
                if (space_.is_link(level[k])) {
                    for (const handle c : ordered(level[k])) members.push_back(rank_[c.index]);
                }
            }
            first[level.size()] = members.size();
            std::vector<std::size_t> order(level.size());
            for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
            auto less = [&](std::size_t x, std::size_t y) {
                const handle a = level[x], b = level[y];
                const std::string_view ta = space_.types().name(space_.type(a)), tb = space_.types().name(space_.type(b));
                if (ta != tb) return ta < tb;
                if (space_.is_node(a)) return space_.name(a) < space_.name(b);
                return std::lexicographical_compare(members.begin() + static_cast<std::ptrdiff_t>(first[x]),
                                                    members.begin() + static_cast<std::ptrdiff_t>(first[x + 1]),
                                                    members.begin() + static_cast<std::ptrdiff_t>(first[y]),
                                                    members.begin() + static_cast<std::ptrdiff_t>(first[y + 1]));
            };
            std::sort(order.begin(), order.end(), less);
            for (const std::size_t k : order) {
                rank_[level[k].index] = next++;
                ranked_.push_back(level[k]);
            }
        }
    }

    const AtomSpace<TV>& space_;
    std::vector<std::uint32_t> rank_;  // by atom index
    std::vector<handle> ranked_;       // the ranked atoms, in rank order
};

template <TruthValue TV, class Values>
[[nodiscard]] std::string write(const AtomSpace<TV>& space, const std::string& header, Values&& values) {
    const writer<TV> w(space);
    const std::vector<handle> roots = w.roots();
    std::string out = "; Atomese written by cogqat: " + std::to_string(space.size()) + " atoms, " + std::to_string(roots.size()) +
                      " top-level forms\n" + header;
    for (const handle r : roots) {
        out += '\n';
        w.form(r, out, true, values);
    }
    out += '\n';
    return out;
}

template <TruthValue TV>
void append_truth_value(const AtomSpace<TV>& space, handle h, std::string& out) {
    const TV tv = space.truth_value(h);
    if (tv == TV{}) return;
    out += " (stv " + shortest(tv.strength()) + ' ' + shortest(tv.confidence()) + ')';
}

}  // namespace detail::atomese_impl

/// Reads the atoms of an Atomese text into `space` and returns the top-level forms' atoms, in order. The
/// text is checked whole before anything is added: on atomese_error (with file, line and column) the
/// space is unchanged. An atom already there keeps its handle; a truth value in the text replaces its own
/// (the last one given wins). An (av ...) is refused or dropped as options.attention says.
template <TruthValue TV>
std::vector<handle> read_atomese(AtomSpace<TV>& space, std::string_view text, const atomese_read_options& options = {}) {
    detail::atomese_impl::read_plan<TV> plan(space.types(), options, false);
    plan.build(text);
    return detail::atomese_impl::apply(space, plan, [](handle, const detail::atomese_impl::attention_triple&) {});
}

/// As above, into the bank's space, with every (av sti lti vlti) set in the bank: STI and LTI through
/// set_sti / set_lti (so they come out of the bank's funds, and a quantized type rounds and saturates them),
/// VLTI as a count (saturating at AV::max_vlti).
template <AttentionValue AV, TruthValue TV>
std::vector<handle> read_atomese(AttentionBank<AV, TV>& bank, std::string_view text, const atomese_read_options& options = {}) {
    AtomSpace<TV>& space = bank.space();
    detail::atomese_impl::read_plan<TV> plan(space.types(), options, true);
    plan.build(text);
    return detail::atomese_impl::apply(space, plan, [&](handle h, const detail::atomese_impl::attention_triple& av) {
        bank.set_sti(h, av.sti);
        bank.set_lti(h, av.lti);
        const unsigned target = std::min<unsigned>(av.vlti, AV::max_vlti);
        while (bank.vlti(h) < target) bank.inc_vlti(h);
        while (bank.vlti(h) > target) bank.dec_vlti(h);
    });
}

/// Reads an Atomese file (errors name its path); io_error when it cannot be read.
template <TruthValue TV>
std::vector<handle> read_atomese_file(AtomSpace<TV>& space, const std::filesystem::path& path,
                                      attention_without_bank attention = attention_without_bank::refuse) {
    return read_atomese(space, detail::atomese_impl::read_text(path), {path.string(), attention});
}
/// As above, into an AttentionBank's space and the bank.
template <AttentionValue AV, TruthValue TV>
std::vector<handle> read_atomese_file(AttentionBank<AV, TV>& bank, const std::filesystem::path& path) {
    return read_atomese(bank, detail::atomese_impl::read_text(path), {path.string(), attention_without_bank::refuse});
}

/// The canonical one-line Atomese form of one atom, without values: unordered outgoing sets in an order
/// fixed by their content, so equal atoms of different spaces give equal text. invalid_argument_error for a handle that names
/// no atom of the space.
template <TruthValue TV>
[[nodiscard]] std::string atomese_term(const AtomSpace<TV>& space, handle h) {
    static_cast<void>(space.type(h));  // checks the handle
    const detail::atomese_impl::writer<TV> w(space, h);
    std::string out;
    w.form(h, out, false, [](handle, std::string&) {});
    return out;
}

/// The space as Atomese text: a header comment naming the truth-value type and its width, then every atom
/// no link holds, as one form with its subatoms inside, in the canonical order; each atom whose truth value is
/// not the default carries its (stv ...).
template <TruthValue TV>
[[nodiscard]] std::string to_atomese(const AtomSpace<TV>& space) {
    return detail::atomese_impl::write(space, detail::atomese_impl::describe_truth_values<TV>() + "\n",
                                       [&](handle h, std::string& out) { detail::atomese_impl::append_truth_value(space, h, out); });
}

/// As above, with each atom's attention value (av sti lti vlti) where it is not 0 0 0, and a header line
/// naming the attention-value type, its width and the bank's steps.
template <AttentionValue AV, TruthValue TV>
[[nodiscard]] std::string to_atomese(const AttentionBank<AV, TV>& bank) {
    const AtomSpace<TV>& space = bank.space();
    const std::string header = detail::atomese_impl::describe_truth_values<TV>() + "\n" +
                               detail::atomese_impl::describe_attention_values<AV>(bank.steps()) + "\n";
    return detail::atomese_impl::write(space, header, [&](handle h, std::string& out) {
        detail::atomese_impl::append_truth_value(space, h, out);
        const double sti = bank.sti(h), lti = bank.lti(h);
        const unsigned vlti = bank.vlti(h);
        if (sti == 0.0 && lti == 0.0 && vlti == 0) return;
        using detail::atomese_impl::shortest;
        out += " (av " + shortest(sti) + ' ' + shortest(lti) + ' ' + std::to_string(vlti) + ')';
    });
}

/// Writes to_atomese(space) to `path`, all or nothing; io_error when it cannot.
template <TruthValue TV>
void write_atomese_file(const AtomSpace<TV>& space, const std::filesystem::path& path) {
    const std::string text = to_atomese(space);
    io::write_file_atomically(path, std::as_bytes(std::span<const char>(text.data(), text.size())));
}
/// Writes to_atomese(bank) to `path`, all or nothing; io_error when it cannot.
template <AttentionValue AV, TruthValue TV>
void write_atomese_file(const AttentionBank<AV, TV>& bank, const std::filesystem::path& path) {
    const std::string text = to_atomese(bank);
    io::write_file_atomically(path, std::as_bytes(std::span<const char>(text.data(), text.size())));
}

}  // namespace cogqat::cog
