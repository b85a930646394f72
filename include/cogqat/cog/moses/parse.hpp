#pragma once
// Reads programs written in the combo syntax to_string() prints, so that tests, examples and users can
// write trees by hand: `and($1 or(!$2 $3))`, `+(0.5 *($1 $1) sin($1))`, `not(true)`. Children are separated
// by blanks or commas.

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "cogqat/cog/moses/program.hpp"
#include "cogqat/cog/moses/vertex.hpp"
#include "cogqat/core/error.hpp"

namespace cogqat::cog::moses {

namespace detail {

class program_parser {
public:
    explicit program_parser(std::string_view text) : text_(text) {}

    program parse() {
        program p = expression(0);
        skip_blanks();
        if (pos_ != text_.size()) fail("unexpected text after the program");
        return p;
    }

private:
    [[noreturn]] void fail(const std::string& what) const {
        throw format_error("parse_program: " + what + " at column " + std::to_string(pos_ + 1) + " of \"" + std::string(text_) + "\"");
    }

    void skip_blanks() {
        while (pos_ < text_.size() && (std::isspace(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == ',')) ++pos_;
    }

    std::size_t argument_number() {
        std::size_t n = 0;
        const auto [ptr, ec] = std::from_chars(text_.data() + pos_, text_.data() + text_.size(), n);
        if (ec != std::errc() || n == 0 || n > UINT32_MAX) fail("expected an argument number 1, 2, ... after '$'");
        pos_ = static_cast<std::size_t>(ptr - text_.data());
        return n;
    }

    program expression(std::size_t depth) {
        if (depth > max_program_depth) fail("nesting deeper than " + std::to_string(max_program_depth) + " levels");
        skip_blanks();
        if (pos_ >= text_.size()) fail("unexpected end of text");
        const char c = text_[pos_];
        if (c == '$') {
            ++pos_;
            return make_argument(argument_number());
        }
        if (c == '!' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '$') {
            pos_ += 2;
            return make_negated_argument(argument_number());
        }
        for (const vertex_kind k : {vertex_kind::greater_than, vertex_kind::not_greater_than}) {
            if (text_.substr(pos_).starts_with(info(k).name)) {
                pos_ += info(k).name.size();
                return predicate(k);
            }
        }
        if (std::isdigit(static_cast<unsigned char>(c)) || c == '.' ||
            ((c == '-' || c == '+') && pos_ + 1 < text_.size() &&
             (std::isdigit(static_cast<unsigned char>(text_[pos_ + 1])) || text_[pos_ + 1] == '.'))) {
            return number();
        }
        // An operator name: a word, or one of + * /.
        std::size_t end = pos_;
        if (c == '+' || c == '*' || c == '/') {
            ++end;
        } else {
            while (end < text_.size() && std::isalpha(static_cast<unsigned char>(text_[end]))) ++end;
        }
        const std::string_view name = text_.substr(pos_, end - pos_);
        if (name.empty()) fail(std::string("unexpected character '") + c + "'");
        vertex_kind kind{};
        bool found = false;
        for (std::size_t k = 0; k < vertex_table.size(); ++k) {
            const auto candidate = static_cast<vertex_kind>(k);
            if (is_atom(candidate) || candidate == vertex_kind::constant) continue;
            if (vertex_table[k].name == name) {
                kind = candidate;
                found = true;
                break;
            }
        }
        if (!found) fail("unknown operator '" + std::string(name) + "'");
        pos_ = end;
        if (kind == vertex_kind::logical_true || kind == vertex_kind::logical_false) return make_bool(kind == vertex_kind::logical_true);
        skip_blanks_only();
        if (pos_ >= text_.size() || text_[pos_] != '(') fail("expected '(' after '" + std::string(name) + "'");
        ++pos_;
        std::vector<program> kids;
        while (true) {
            skip_blanks();
            if (pos_ >= text_.size()) fail("missing ')'");
            if (text_[pos_] == ')') {
                ++pos_;
                break;
            }
            kids.push_back(expression(depth + 1));
        }
        const vertex_info& vi = info(kind);
        const int n = static_cast<int>(std::min<std::size_t>(kids.size(), INT32_MAX));
        if (n < vi.min_children || (vi.max_children >= 0 && n > vi.max_children)) {
            fail("arity mismatch: '" + std::string(name) + "' takes " + std::to_string(vi.min_children) +
                 (vi.max_children == vi.min_children ? "" : " or more") +
                 (vi.min_children == 1 && vi.max_children == 1 ? " child" : " children") + ", got " + std::to_string(kids.size()));
        }
        return program(vertex{kind, 0, 0.0f}, std::move(kids));
    }

    /// The rest of greater_than($i c) after its name: exactly an argument and a number.
    program predicate(vertex_kind kind) {
        const std::string name(info(kind).name);
        skip_blanks_only();
        if (pos_ >= text_.size() || text_[pos_] != '(') fail("expected '(' after '" + name + "'");
        ++pos_;
        skip_blanks();
        if (pos_ >= text_.size() || text_[pos_] != '$') fail("'" + name + "' takes an argument $i first");
        ++pos_;
        const std::size_t n = argument_number();
        skip_blanks();
        if (pos_ >= text_.size() || text_[pos_] == ')') fail("'" + name + "' takes a threshold after its argument");
        const float threshold = number().head.value;
        skip_blanks();
        if (pos_ >= text_.size() || text_[pos_] != ')') fail("'" + name + "' takes exactly an argument and a threshold; missing ')'");
        ++pos_;
        program p = make_greater_than(n, threshold);
        p.head.kind = kind;
        return p;
    }

    void skip_blanks_only() {
        while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    }

    program number() {
        std::size_t start = pos_;
        if (text_[pos_] == '+') ++start;  // from_chars takes no leading '+'
        float v = 0.0f;
        const auto [ptr, ec] = std::from_chars(text_.data() + start, text_.data() + text_.size(), v);
        if (ec != std::errc() || !std::isfinite(v)) fail("expected a finite number");
        pos_ = static_cast<std::size_t>(ptr - text_.data());
        return make_constant(v);
    }

    std::string_view text_;
    std::size_t pos_ = 0;
};

}  // namespace detail

/// Parses a program in combo syntax. Throws format_error naming the column on malformed text (unknown
/// operator, missing parenthesis, wrong number of children, a predicate other than greater_than($i c) or
/// !greater_than($i c), non-finite number, nesting deeper than max_program_depth). Types are not checked here; validate() does that against a table.
[[nodiscard]] inline program parse_program(std::string_view text) { return detail::program_parser(text).parse(); }

}  // namespace cogqat::cog::moses
