#pragma once
// A strict JSON reader (RFC 8259) for the files a Hugging Face model folder holds: a safetensors header,
// config.json, tokenizer.json. The library parses them itself so that it needs no JSON package (its users
// compile only its headers; the tool's nlohmann-json stays the tool's). Hostile text is refused with a
// format_error naming the source and the byte offset: nesting deeper than max_json_depth, duplicate keys in an
// object, ill-formed UTF-8, lone surrogates, control characters in strings, trailing bytes.

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/utf8.hpp"

namespace cogqat::io {

/// Arrays and objects nested deeper than this are refused: the parser recurses once per level.
inline constexpr std::size_t max_json_depth = 128;

/// One JSON value. Objects keep their members in file order (a tokenizer's vocabulary is read in order).
class json_value {
public:
    enum class kind : std::uint8_t { null, boolean, number, string, array, object };
    using member = std::pair<std::string, json_value>;

    [[nodiscard]] kind type() const noexcept { return kind_; }
    [[nodiscard]] bool is_null() const noexcept { return kind_ == kind::null; }
    [[nodiscard]] bool is_bool() const noexcept { return kind_ == kind::boolean; }
    [[nodiscard]] bool is_number() const noexcept { return kind_ == kind::number; }
    [[nodiscard]] bool is_string() const noexcept { return kind_ == kind::string; }
    [[nodiscard]] bool is_array() const noexcept { return kind_ == kind::array; }
    [[nodiscard]] bool is_object() const noexcept { return kind_ == kind::object; }

    /// The boolean; nullopt for any other kind.
    [[nodiscard]] std::optional<bool> as_bool() const noexcept { return is_bool() ? std::optional<bool>(boolean_) : std::nullopt; }
    /// The number as a double; nullopt for any other kind.
    [[nodiscard]] std::optional<double> as_double() const noexcept { return is_number() ? std::optional<double>(number_) : std::nullopt; }
    /// The number when it is written as a non-negative integer that fits 64 bits ("12", not "12.0" or "1e1").
    [[nodiscard]] std::optional<std::uint64_t> as_uint() const noexcept {
        if (!is_number()) return std::nullopt;
        std::uint64_t v = 0;
        const auto [end, ec] = std::from_chars(text_.data(), text_.data() + text_.size(), v);
        if (ec != std::errc{} || end != text_.data() + text_.size()) return std::nullopt;
        return v;
    }
    /// The string (decoded); nullptr for any other kind.
    [[nodiscard]] const std::string* as_string() const noexcept { return is_string() ? &text_ : nullptr; }
    /// The elements of an array (empty for any other kind).
    [[nodiscard]] const std::vector<json_value>& elements() const noexcept { return elements_; }
    /// The members of an object, in file order (empty for any other kind).
    [[nodiscard]] const std::vector<member>& members() const noexcept { return members_; }
    /// The member `key` of an object, or nullptr (also for any other kind).
    [[nodiscard]] const json_value* find(std::string_view key) const noexcept {
        for (const auto& [k, v] : members_)
            if (k == key) return &v;
        return nullptr;
    }
    /// The kind in words, for messages.
    [[nodiscard]] std::string_view type_name() const noexcept {
        constexpr std::string_view names[] = {"null", "a boolean", "a number", "a string", "an array", "an object"};
        return names[static_cast<std::size_t>(kind_)];
    }

private:
    friend class json_parser;
    kind kind_ = kind::null;
    bool boolean_ = false;
    double number_ = 0;
    std::string text_;  ///< a string's value, or a number's literal
    std::vector<json_value> elements_;
    std::vector<member> members_;
};

/// The recursive-descent parser behind parse_json.
class json_parser {
public:
    json_parser(std::string_view text, std::string_view source) : text_(text), source_(source) {}

    [[nodiscard]] json_value parse_document() {
        skip_space();
        json_value v = parse_value(0);
        skip_space();
        if (pos_ != text_.size()) fail(pos_, "bytes after the JSON value");
        return v;
    }

private:
    [[noreturn]] void fail(std::size_t at, std::string_view reason) const {
        throw format_error(std::string(source_) + ": not valid JSON: " + std::string(reason) + " (at byte " + std::to_string(at) + ")");
    }

    void skip_space() noexcept {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) ++pos_;
    }

    [[nodiscard]] bool consume(std::string_view literal) noexcept {
        if (text_.substr(pos_, literal.size()) != literal) return false;
        pos_ += literal.size();
        return true;
    }

    json_value parse_value(std::size_t depth) {
        if (pos_ >= text_.size()) fail(pos_, "the text ends where a value should be");
        json_value v;
        const char c = text_[pos_];
        if (c == '{' || c == '[') {
            if (depth >= max_json_depth) fail(pos_, "nested deeper than " + std::to_string(max_json_depth) + " levels");
            if (c == '{')
                parse_object(v, depth + 1);
            else
                parse_array(v, depth + 1);
        } else if (c == '"') {
            v.kind_ = json_value::kind::string;
            v.text_ = parse_string();
        } else if (consume("true")) {
            v.kind_ = json_value::kind::boolean;
            v.boolean_ = true;
        } else if (consume("false")) {
            v.kind_ = json_value::kind::boolean;
        } else if (consume("null")) {
            v.kind_ = json_value::kind::null;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            parse_number(v);
        } else {
            fail(pos_, "unexpected character");
        }
        return v;
    }

    void parse_array(json_value& v, std::size_t depth) {
        v.kind_ = json_value::kind::array;
        ++pos_;
        skip_space();
        if (pos_ < text_.size() && text_[pos_] == ']') {
            ++pos_;
            return;
        }
        for (;;) {
            skip_space();
            v.elements_.push_back(parse_value(depth));
            skip_space();
            if (pos_ < text_.size() && text_[pos_] == ',') {
                ++pos_;
                continue;
            }
            if (pos_ < text_.size() && text_[pos_] == ']') {
                ++pos_;
                return;
            }
            fail(pos_, "expected ',' or ']' in an array");
        }
    }

    void parse_object(json_value& v, std::size_t depth) {
        v.kind_ = json_value::kind::object;
        const std::size_t start = pos_;
        ++pos_;
        skip_space();
        if (pos_ < text_.size() && text_[pos_] == '}') {
            ++pos_;
            return;
        }
        for (;;) {
            skip_space();
            if (pos_ >= text_.size() || text_[pos_] != '"') fail(pos_, "expected a string key in an object");
            std::string key = parse_string();
            skip_space();
            if (pos_ >= text_.size() || text_[pos_] != ':') fail(pos_, "expected ':' after an object key");
            ++pos_;
            skip_space();
            v.members_.emplace_back(std::move(key), parse_value(depth));
            skip_space();
            if (pos_ < text_.size() && text_[pos_] == ',') {
                ++pos_;
                continue;
            }
            if (pos_ < text_.size() && text_[pos_] == '}') {
                ++pos_;
                break;
            }
            fail(pos_, "expected ',' or '}' in an object");
        }
        require_unique_keys(v, start);
    }

    /// A key given twice is ambiguous (which one a reader takes differs between readers): refused.
    void require_unique_keys(const json_value& v, std::size_t at) const {
        std::vector<std::string_view> keys;
        keys.reserve(v.members_.size());
        for (const auto& m : v.members_) keys.emplace_back(m.first);
        std::sort(keys.begin(), keys.end());
        const auto twice = std::adjacent_find(keys.begin(), keys.end());
        if (twice != keys.end()) fail(at, "the object starting here has the key \"" + std::string(*twice) + "\" twice");
    }

    void parse_number(json_value& v) {
        const std::size_t start = pos_;
        const auto digits = [&] {
            const std::size_t from = pos_;
            while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
            return pos_ - from;
        };
        if (text_[pos_] == '-') ++pos_;
        if (pos_ < text_.size() && text_[pos_] == '0')
            ++pos_;
        else if (digits() == 0)
            fail(pos_, "a number without digits");
        if (pos_ < text_.size() && text_[pos_] == '.') {
            ++pos_;
            if (digits() == 0) fail(pos_, "no digits after a decimal point");
        }
        if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
            ++pos_;
            if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
            if (digits() == 0) fail(pos_, "no digits in an exponent");
        }
        v.kind_ = json_value::kind::number;
        v.text_ = std::string(text_.substr(start, pos_ - start));
        const auto [end, ec] = std::from_chars(v.text_.data(), v.text_.data() + v.text_.size(), v.number_);
        if (ec != std::errc{} || end != v.text_.data() + v.text_.size()) fail(start, "a number out of range");
    }

    [[nodiscard]] unsigned hex4() {
        if (text_.size() - pos_ < 4) fail(pos_, "a \\u escape cut short");
        unsigned u = 0;
        for (int i = 0; i < 4; ++i) {
            const char h = text_[pos_++];
            u <<= 4;
            if (h >= '0' && h <= '9')
                u |= static_cast<unsigned>(h - '0');
            else if (h >= 'a' && h <= 'f')
                u |= static_cast<unsigned>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F')
                u |= static_cast<unsigned>(h - 'A' + 10);
            else
                fail(pos_ - 1, "a \\u escape with a non-hex digit");
        }
        return u;
    }

    static void append_utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    std::string parse_string() {
        const std::size_t start = pos_++;
        std::string out;
        for (;;) {
            if (pos_ >= text_.size()) fail(start, "a string without its closing quote");
            const char c = text_[pos_];
            if (c == '"') {
                ++pos_;
                // Bytes outside strings are ASCII or refused, so checking each string checks the text.
                if (!is_valid_utf8(out)) fail(start, "a string that is not UTF-8");
                return out;
            }
            if (static_cast<unsigned char>(c) < 0x20) fail(pos_, "a control character inside a string");
            if (c != '\\') {
                out += c;
                ++pos_;
                continue;
            }
            if (++pos_ >= text_.size()) fail(start, "a string without its closing quote");
            const char e = text_[pos_++];
            switch (e) {
                case '"':
                case '\\':
                case '/':
                    out += e;
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'u': {
                    const std::size_t at = pos_ - 2;
                    unsigned cp = hex4();
                    if (cp >= 0xDC00 && cp <= 0xDFFF) fail(at, "a lone low surrogate");
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        if (!consume("\\u")) fail(at, "a high surrogate without its low half");
                        const unsigned low = hex4();
                        if (low < 0xDC00 || low > 0xDFFF) fail(at, "a high surrogate without its low half");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    }
                    append_utf8(out, cp);
                    break;
                }
                default:
                    fail(pos_ - 2, "an unknown escape");
            }
        }
    }

    std::string_view text_, source_;
    std::size_t pos_ = 0;
};

/// Parses `text` as one JSON document. `source` starts every message ("'config.json'", say). format_error on anything
/// RFC 8259 does not allow, and on the limits in this header's opening comment.
[[nodiscard]] inline json_value parse_json(std::string_view text, std::string_view source) {
    return json_parser(text, source).parse_document();
}

}  // namespace cogqat::io
