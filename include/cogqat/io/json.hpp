#pragma once
// JSON documents for the files a Hugging Face model folder holds: a safetensors header, config.json,
// tokenizer.json. nlohmann-json parses them (RFC 8259, strictly: ill-formed UTF-8, lone surrogates, control
// characters in strings and trailing bytes are its errors); its SAX events build a json_value that keeps an
// object's members in file order, and refuse what JSON allows but these files must not hold: a key twice in one
// object, nesting deeper than max_json_depth. Every refusal is a format_error naming the source and the byte.

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cogqat/core/error.hpp"

namespace cogqat::io {

/// Arrays and objects nested deeper than this are refused.
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
    friend class json_builder;
    kind kind_ = kind::null;
    bool boolean_ = false;
    double number_ = 0;
    std::string text_;  ///< a string's value, or a number's literal
    std::vector<json_value> elements_;
    std::vector<member> members_;
};

/// nlohmann-json's SAX events into a json_value (the interface nlohmann::json::sax_parse calls).
class json_builder {
public:
    explicit json_builder(std::string_view source) : source_(source) {}

    [[nodiscard]] json_value take() { return std::move(document_); }

    bool null() {
        next();
        return true;
    }
    bool boolean(bool b) {
        json_value& v = next(json_value::kind::boolean);
        v.boolean_ = b;
        return true;
    }
    bool number_integer(std::int64_t n) { return number(static_cast<double>(n), std::to_string(n)); }
    bool number_unsigned(std::uint64_t n) { return number(static_cast<double>(n), std::to_string(n)); }
    bool number_float(double d, const std::string& literal) { return number(d, literal); }
    bool string(std::string& text) {
        next(json_value::kind::string).text_ = std::move(text);
        return true;
    }
    bool binary(nlohmann::json::binary_t&) { return false; }  // JSON text has none
    bool start_object(std::size_t) { return open(json_value::kind::object); }
    bool key(std::string& k) {
        if (!keys_.back().insert(k).second) fail(std::string("an object has the key \"") + k + "\" twice");
        open_.back()->members_.emplace_back(std::move(k), json_value{});
        return true;
    }
    bool end_object() { return close(); }
    bool start_array(std::size_t) { return open(json_value::kind::array); }
    bool end_array() { return close(); }
    bool parse_error(std::size_t position, const std::string&, const nlohmann::json::exception& e) {
        // nlohmann's reason, without its "[json.exception.parse_error.101] parse error at line 1, column 8: "
        // prefix: the byte says where.
        std::string_view reason = e.what();
        if (const auto tag_end = reason.find("] "); tag_end != std::string_view::npos) reason.remove_prefix(tag_end + 2);
        if (reason.starts_with("parse error"))
            if (const auto colon = reason.find(": "); colon != std::string_view::npos) reason.remove_prefix(colon + 2);
        throw format_error(std::string(source_) + ": not valid JSON: " + std::string(reason) + " (at byte " + std::to_string(position) +
                           ")");
    }

private:
    [[noreturn]] void fail(const std::string& reason) const { throw format_error(std::string(source_) + ": not valid JSON: " + reason); }

    /// Where the next value goes: the document, the next element of the open array, or the member just keyed.
    json_value& next(json_value::kind kind = json_value::kind::null) {
        json_value* v = &document_;
        if (!open_.empty()) {
            json_value& parent = *open_.back();
            v = parent.kind_ == json_value::kind::array ? &parent.elements_.emplace_back() : &parent.members_.back().second;
        }
        v->kind_ = kind;
        return *v;
    }
    bool number(double value, std::string literal) {
        json_value& v = next(json_value::kind::number);
        v.number_ = value;
        v.text_ = std::move(literal);
        return true;
    }
    // The open containers, innermost last; a parent grows only after its open child closes, so these stay valid.
    bool open(json_value::kind kind) {
        if (open_.size() >= max_json_depth) fail("nested deeper than " + std::to_string(max_json_depth) + " levels");
        open_.push_back(&next(kind));
        keys_.emplace_back();
        return true;
    }
    bool close() {
        open_.pop_back();
        keys_.pop_back();
        return true;
    }

    std::string_view source_;
    json_value document_;
    std::vector<json_value*> open_;
    std::vector<std::unordered_set<std::string>> keys_;  // per open container (empty for arrays)
};

/// Parses `text` as one JSON document. `source` starts every message ("'config.json'", say). format_error on anything
/// RFC 8259 does not allow, and on the limits in this header's opening comment.
[[nodiscard]] inline json_value parse_json(std::string_view text, std::string_view source) {
    json_builder builder(source);
    (void)nlohmann::json::sax_parse(text.begin(), text.end(), &builder);
    return builder.take();
}

}  // namespace cogqat::io
