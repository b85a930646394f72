#pragma once
// The s-expression layer of Atomese, OpenCog's Scheme notation for atoms: text to a tree of lists, symbols,
// strings and numbers, each with its line and column, and the error type every Atomese failure is reported
// with. It knows nothing of atoms; cog/atomese.hpp gives the forms their meaning.
//
// The syntax is the part of Scheme that atom files use: `(` `)`, symbols, double-quoted strings with the
// escapes \" \\ \n \t \r, numbers (decimal, with sign, fraction and exponent), `;` comments to the end of the
// line and `#| ... |#` block comments. Anything else (quote marks, vectors, characters) is refused, so a file
// that means more than atoms is never half-read.

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "cogqat/core/error.hpp"

namespace cogqat::cog {

/// A malformed Atomese text: the message starts with "file:line:column:", and the parts are kept apart.
/// Lines and columns count from 1; a column counts bytes.
class atomese_error : public format_error {
public:
    atomese_error(std::string file, std::size_t line, std::size_t column, const std::string& what)
            : format_error(file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + what),
              file_(std::move(file)),
              line_(line),
              column_(column) {}

    /// Name of the file (or the name the text was given).
    [[nodiscard]] const std::string& file() const noexcept { return file_; }
    [[nodiscard]] std::size_t line() const noexcept { return line_; }
    [[nodiscard]] std::size_t column() const noexcept { return column_; }

private:
    std::string file_;
    std::size_t line_;
    std::size_t column_;
};

/// Where a form starts in its text.
struct source_position {
    std::size_t line = 1;
    std::size_t column = 1;
};

/// One s-expression: a list of others, a symbol, a string (escapes resolved) or a number (kept as written,
/// and as a double).
struct sexpr {
    enum class kind : std::uint8_t { list, symbol, string, number };

    kind type = kind::list;
    std::string text;  ///< symbol, string contents, or the number as written
    double number = 0.0;
    std::vector<sexpr> items;  ///< a list's elements
    source_position where;

    [[nodiscard]] bool is_list() const noexcept { return type == kind::list; }
    /// Whether this is a list whose first element is the symbol `head`.
    [[nodiscard]] bool has_head(std::string_view head) const noexcept {
        return is_list() && !items.empty() && items.front().type == kind::symbol && items.front().text == head;
    }
};

/// Deepest nesting of lists accepted; deeper text is refused (it would only serve to exhaust the stack).
inline constexpr std::size_t max_atomese_depth = 512;

namespace detail::atomese_impl {

class lexer {
public:
    lexer(std::string_view text, std::string file) : text_(text), file_(std::move(file)) {}

    std::vector<sexpr> parse_all() {
        std::vector<sexpr> forms;
        for (skip_space(); pos_ < text_.size(); skip_space()) {
            if (text_[pos_] == ')') fail(here(), "unbalanced parentheses: a ')' closes no '('");
            forms.push_back(parse_one(0));
        }
        return forms;
    }

    [[noreturn]] void fail(source_position at, const std::string& what) const { throw atomese_error(file_, at.line, at.column, what); }

private:
    source_position here() const noexcept { return {line_, pos_ - line_start_ + 1}; }

    void advance() noexcept {
        if (text_[pos_] == '\n') {
            ++line_;
            line_start_ = pos_ + 1;
        }
        ++pos_;
    }

    void skip_space() {
        while (pos_ < text_.size()) {
            const char c = text_[pos_];
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
                advance();
            } else if (c == ';') {
                while (pos_ < text_.size() && text_[pos_] != '\n') advance();
            } else if (c == '#' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '|') {
                const source_position start = here();
                advance(), advance();
                while (pos_ + 1 < text_.size() && !(text_[pos_] == '|' && text_[pos_ + 1] == '#')) advance();
                if (pos_ + 1 >= text_.size()) fail(start, "unterminated block comment: '#|' has no '|#'");
                advance(), advance();
            } else {
                return;
            }
        }
    }

    static bool is_delimiter(char c) noexcept {
        return c == '(' || c == ')' || c == '"' || c == ';' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
    }

    // Iterative over the siblings, recursive over depth (bounded by max_atomese_depth).
    sexpr parse_one(std::size_t depth) {
        const source_position start = here();
        const char c = text_[pos_];
        if (c == '(') {
            if (depth >= max_atomese_depth) fail(start, "lists nest deeper than " + std::to_string(max_atomese_depth) + " levels");
            advance();
            sexpr list;
            list.type = sexpr::kind::list;
            list.where = start;
            for (skip_space();; skip_space()) {
                if (pos_ >= text_.size()) fail(start, "unbalanced parentheses: this '(' is never closed");
                if (text_[pos_] == ')') break;
                list.items.push_back(parse_one(depth + 1));
            }
            advance();
            return list;
        }
        if (c == '"') return parse_string(start);
        if (c == '\'' || c == '`' || c == ',' || c == '#' || c == '[' || c == ']' || c == '{' || c == '}' || c == '|') {
            fail(start, std::string("'") + c + "' is Scheme syntax that Atomese files do not use");
        }
        return parse_atom(start);
    }

    sexpr parse_string(source_position start) {
        advance();  // the opening quote
        sexpr s;
        s.type = sexpr::kind::string;
        s.where = start;
        for (;;) {
            if (pos_ >= text_.size()) fail(start, "unterminated string");
            const char c = text_[pos_];
            if (c == '"') break;
            if (c == '\\') {
                const source_position escape = here();
                advance();
                if (pos_ >= text_.size()) fail(start, "unterminated string");
                switch (text_[pos_]) {
                    case '"':
                        s.text += '"';
                        break;
                    case '\\':
                        s.text += '\\';
                        break;
                    case 'n':
                        s.text += '\n';
                        break;
                    case 't':
                        s.text += '\t';
                        break;
                    case 'r':
                        s.text += '\r';
                        break;
                    default:
                        fail(escape, std::string("unknown escape '\\") + text_[pos_] + "' in a string");
                }
                advance();
                continue;
            }
            // A run without quote, backslash or line break (advance() counts lines) is copied at once.
            std::size_t end = pos_;
            while (end < text_.size() && text_[end] != '"' && text_[end] != '\\' && text_[end] != '\n') ++end;
            if (end == pos_) {
                s.text += c;
                advance();
                continue;
            }
            s.text.append(text_.substr(pos_, end - pos_));
            pos_ = end;
        }
        advance();  // the closing quote
        return s;
    }

    sexpr parse_atom(source_position start) {
        const std::size_t begin = pos_;
        while (pos_ < text_.size() && !is_delimiter(text_[pos_])) advance();
        sexpr a;
        a.where = start;
        a.text = std::string(text_.substr(begin, pos_ - begin));
        a.type = looks_numeric(a.text) ? sexpr::kind::number : sexpr::kind::symbol;
        if (a.type == sexpr::kind::number) a.number = to_number(a.text, start);
        return a;
    }

    // Scheme reads "+", "-", "..." and "->" as symbols; anything else starting like a number must be one.
    static bool looks_numeric(std::string_view t) noexcept {
        std::size_t i = 0;
        if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
        if (i < t.size() && t[i] == '.') ++i;
        return i < t.size() && t[i] >= '0' && t[i] <= '9';
    }

    double to_number(std::string_view t, source_position at) const {
        std::string_view digits = t;
        if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);  // from_chars takes no '+'
        double x = 0.0;
        const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), x);
        if (ec != std::errc{} || end != digits.data() + digits.size() || !std::isfinite(x)) {
            fail(at, "bad number '" + std::string(t) + "'");
        }
        return x;
    }

    std::string_view text_;
    std::string file_;
    std::size_t pos_ = 0;
    std::size_t line_ = 1;
    std::size_t line_start_ = 0;
};

}  // namespace detail::atomese_impl

/// The top-level forms of `text`. Throws atomese_error, positioned in `file`, for unbalanced parentheses,
/// unterminated strings and comments, unknown string escapes, malformed numbers, Scheme syntax outside
/// Atomese, and lists nested deeper than max_atomese_depth.
[[nodiscard]] inline std::vector<sexpr> parse_sexprs(std::string_view text, std::string file = "<text>") {
    return detail::atomese_impl::lexer(text, std::move(file)).parse_all();
}

}  // namespace cogqat::cog
