#pragma once
// GGUF v3 metadata values and tensor descriptions, shared by the reader (gguf/reader.hpp) and the writer
// (gguf/writer.hpp): the value types and their limits, `value`, `tensor_info`, and tensor sizes computed
// without overflow. The rules are ggml's (gguf.cpp), listed in docs/gguf.md.

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <charconv>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "cogqat/core/checked.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/little_endian.hpp"
#include "cogqat/core/matrix_shape.hpp"
#include "cogqat/format/ggml_type.hpp"

namespace cogqat::gguf {

/// The metadata value types, with the ids GGUF stores before each value.
enum class value_type : std::uint32_t {
    uint8 = 0,
    int8 = 1,
    uint16 = 2,
    int16 = 3,
    uint32 = 4,
    int32 = 5,
    float32 = 6,
    boolean = 7,
    string = 8,
    array = 9,
    uint64 = 10,
    int64 = 11,
    float64 = 12,
};

/// The only GGUF version read and written (GGUF_VERSION).
inline constexpr std::uint32_t format_version = 3;

/// Alignment of the data section and of every tensor when `general.alignment` is absent (GGUF_DEFAULT_ALIGNMENT).
inline constexpr std::uint32_t default_alignment = 32;

/// Deepest nesting of arrays read or written; an array of scalars has depth 1. ggml reads no nested arrays
/// at all; the limit only keeps a hostile file from driving the recursive reader arbitrarily deep.
inline constexpr std::size_t max_array_depth = 8;

/// ggml keeps tensor names in a char[64] with a terminating NUL, so llama.cpp refuses longer names. The
/// writer enforces this so that what it writes loads; the reader accepts any length.
inline constexpr std::size_t max_tensor_name_length = 63;

/// The name of `t` as GGUF's documentation spells it ("uint8", "float32", "bool", "string", "array", ...),
/// or "unknown".
[[nodiscard]] constexpr std::string_view type_name(value_type t) noexcept {
    constexpr std::array<std::string_view, 13> names{"uint8", "int8",   "uint16", "int16",  "uint32", "int32",  "float32",
                                                     "bool",  "string", "array",  "uint64", "int64",  "float64"};
    const auto id = static_cast<std::uint32_t>(t);
    return id < names.size() ? names[id] : std::string_view("unknown");
}

class value;

/// The fixed-size types a value holds directly, exactly as `as<T>()` names them.
template <class T>
concept ScalarValue =
        std::same_as<T, std::uint8_t> || std::same_as<T, std::int8_t> || std::same_as<T, std::uint16_t> || std::same_as<T, std::int16_t> ||
        std::same_as<T, std::uint32_t> || std::same_as<T, std::int32_t> || std::same_as<T, std::uint64_t> ||
        std::same_as<T, std::int64_t> || std::same_as<T, float> || std::same_as<T, double> || std::same_as<T, bool>;

/// The C++ element types of an array value: the scalars, std::string, and value for arrays of arrays.
template <class T>
concept ElementValue = ScalarValue<T> || std::same_as<T, std::string> || std::same_as<T, value>;

namespace detail {

/// The value_type that stores T.
template <ElementValue T>
[[nodiscard]] consteval value_type value_type_of() noexcept {
    if constexpr (std::same_as<T, std::uint8_t>)
        return value_type::uint8;
    else if constexpr (std::same_as<T, std::int8_t>)
        return value_type::int8;
    else if constexpr (std::same_as<T, std::uint16_t>)
        return value_type::uint16;
    else if constexpr (std::same_as<T, std::int16_t>)
        return value_type::int16;
    else if constexpr (std::same_as<T, std::uint32_t>)
        return value_type::uint32;
    else if constexpr (std::same_as<T, std::int32_t>)
        return value_type::int32;
    else if constexpr (std::same_as<T, float>)
        return value_type::float32;
    else if constexpr (std::same_as<T, bool>)
        return value_type::boolean;
    else if constexpr (std::same_as<T, std::string>)
        return value_type::string;
    else if constexpr (std::same_as<T, value>)
        return value_type::array;
    else if constexpr (std::same_as<T, std::uint64_t>)
        return value_type::uint64;
    else if constexpr (std::same_as<T, std::int64_t>)
        return value_type::int64;
    else
        return value_type::float64;
}

/// The fixed-width integer that holds any integer type of the same size and signedness, so that
/// `value(1ll)` and `value(std::size_t{1})` work wherever long long or size_t is not int64_t/uint64_t.
template <std::integral T>
using fixed_width_t =
        std::conditional_t<std::is_signed_v<T>,
                           std::conditional_t<sizeof(T) == 1, std::int8_t,
                                              std::conditional_t<sizeof(T) == 2, std::int16_t,
                                                                 std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>>>,
                           std::conditional_t<sizeof(T) == 1, std::uint8_t,
                                              std::conditional_t<sizeof(T) == 2, std::uint16_t,
                                                                 std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>>>;

template <class T>
concept PlainInteger = std::integral<T> && !std::same_as<T, bool> && !std::same_as<T, char> && !std::same_as<T, wchar_t> &&
                       !std::same_as<T, char8_t> && !std::same_as<T, char16_t> && !std::same_as<T, char32_t> && sizeof(T) <= 8;

struct array_data;

/// `s` in single quotes for an error message, with control and non-ASCII bytes escaped and anything past
/// `limit` bytes cut, since names in a hostile file can be any bytes of any length.
[[nodiscard]] inline std::string quoted(std::string_view s, std::size_t limit = 64) {
    constexpr char hex[] = "0123456789abcdef";
    std::string out = "'";
    for (std::size_t i = 0; i < s.size() && i < limit; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '\'' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c >= 0x7f) {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += static_cast<char>(c);
        }
    }
    if (s.size() > limit) out += "...";
    out += '\'';
    return out;
}

}  // namespace detail

/// One metadata value: a number, a bool, a string, or an array (an element type and its elements; arrays of
/// strings and of arrays are allowed). Values are immutable; copies of an array share its elements.
class value {
public:
    /// An integer, stored as the fixed-width GGUF type of the same size and signedness (int -> int32,
    /// std::uint64_t -> uint64, ...). `char` is refused: say std::int8_t/std::uint8_t or use a string.
    template <detail::PlainInteger T>
    value(T v) noexcept : data_(std::in_place_type<detail::fixed_width_t<T>>, static_cast<detail::fixed_width_t<T>>(v)) {}
    /// A float32.
    value(float v) noexcept : data_(std::in_place_type<float>, v) {}
    /// A float64.
    value(double v) noexcept : data_(std::in_place_type<double>, v) {}
    /// A bool.
    value(bool v) noexcept : data_(std::in_place_type<bool>, v) {}
    /// A string (any bytes; GGUF means UTF-8 but nothing checks it).
    value(std::string v) noexcept : data_(std::in_place_type<std::string>, std::move(v)) {}
    /// A string.
    value(std::string_view v) : value(std::string(v)) {}
    /// A string; a null pointer is refused with invalid_argument_error.
    value(const char* v) : value(checked_c_string(v)) {}
    /// Pointers would otherwise silently become bools.
    template <class P>
    requires(!std::same_as<std::remove_cv_t<P>, char>) value(P*)
    = delete;
    /// An array of T (T = value makes an array of arrays: every element must itself be an array).
    template <ElementValue T>
    value(std::vector<T> elements);

    /// An array of `element_type` built from values, each of which must be of that type
    /// (invalid_argument_error otherwise). Handy when the element type is only known at run time.
    [[nodiscard]] static value make_array(value_type element_type, const std::vector<value>& elements);

    /// The type of this value.
    [[nodiscard]] value_type type() const noexcept { return static_cast<value_type>(data_.index()); }
    /// True for an array.
    [[nodiscard]] bool is_array() const noexcept { return type() == value_type::array; }
    /// The element type of an array; invalid_argument_error for anything else.
    [[nodiscard]] value_type array_type() const;
    /// The number of elements of an array; invalid_argument_error for anything else.
    [[nodiscard]] std::size_t array_size() const;

    /// The scalar, when this value has exactly type T (no conversions: a uint32 is not a uint64); otherwise
    /// invalid_argument_error naming both types.
    template <ScalarValue T>
    [[nodiscard]] T as() const {
        if (const T* p = std::get_if<T>(&data_)) return *p;
        wrong_type(type_name(detail::value_type_of<T>()));
    }
    /// The string; invalid_argument_error for anything else.
    [[nodiscard]] const std::string& as_string() const {
        if (const auto* p = std::get_if<std::string>(&data_)) return *p;
        wrong_type("string");
    }
    /// A copy of the elements of an array of T. `as_array<value>()` gives the elements of any array as values.
    template <ElementValue T>
    [[nodiscard]] std::vector<T> as_array() const;

    /// For display: numbers, true/false, strings quoted and escaped, arrays as `[a, b, ...]` with at most
    /// 8 elements shown and the count of the others.
    [[nodiscard]] std::string to_string() const;

    /// Same type and same content. Floats compare by their bits, so a NaN equals itself and -0 differs from
    /// +0: a value equals what it reads back as after a write.
    friend bool operator==(const value& a, const value& b);

private:
    static std::string checked_c_string(const char* s) {
        if (s == nullptr) throw invalid_argument_error("gguf::value: a null const char* is not a string");
        return s;
    }
    [[noreturn]] void wrong_type(std::string_view wanted) const;
    [[nodiscard]] const detail::array_data& array_payload(std::string_view wanted) const;
    void append_to(std::string& out) const;

    // The index of each alternative is its value_type id.
    using storage = std::variant<std::uint8_t, std::int8_t, std::uint16_t, std::int16_t, std::uint32_t, std::int32_t, float, bool,
                                 std::string, std::shared_ptr<const detail::array_data>, std::uint64_t, std::int64_t, double>;
    storage data_;
};

namespace detail {

/// The elements of an array value. The index of each alternative is the element type's id.
struct array_data {
    std::variant<std::vector<std::uint8_t>, std::vector<std::int8_t>, std::vector<std::uint16_t>, std::vector<std::int16_t>,
                 std::vector<std::uint32_t>, std::vector<std::int32_t>, std::vector<float>, std::vector<bool>, std::vector<std::string>,
                 std::vector<value>, std::vector<std::uint64_t>, std::vector<std::int64_t>, std::vector<double>>
            elements;

    [[nodiscard]] value_type element_type() const noexcept { return static_cast<value_type>(elements.index()); }
    [[nodiscard]] std::size_t size() const noexcept {
        return std::visit([](const auto& v) { return v.size(); }, elements);
    }
};

template <class T>
[[nodiscard]] bool same_bits(const T& a, const T& b) noexcept {
    if constexpr (std::floating_point<T>) {
        using bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
        return std::bit_cast<bits>(a) == std::bit_cast<bits>(b);
    } else {
        return a == b;
    }
}

/// Calls f(std::type_identity<T>{}) with the C++ element type that stores `t` (value for arrays).
template <class F>
decltype(auto) visit_type(value_type t, F&& f) {
    switch (t) {
        case value_type::uint8:
            return f(std::type_identity<std::uint8_t>{});
        case value_type::int8:
            return f(std::type_identity<std::int8_t>{});
        case value_type::uint16:
            return f(std::type_identity<std::uint16_t>{});
        case value_type::int16:
            return f(std::type_identity<std::int16_t>{});
        case value_type::uint32:
            return f(std::type_identity<std::uint32_t>{});
        case value_type::int32:
            return f(std::type_identity<std::int32_t>{});
        case value_type::float32:
            return f(std::type_identity<float>{});
        case value_type::boolean:
            return f(std::type_identity<bool>{});
        case value_type::string:
            return f(std::type_identity<std::string>{});
        case value_type::array:
            return f(std::type_identity<value>{});
        case value_type::uint64:
            return f(std::type_identity<std::uint64_t>{});
        case value_type::int64:
            return f(std::type_identity<std::int64_t>{});
        case value_type::float64:
            return f(std::type_identity<double>{});
    }
    throw invalid_argument_error("unknown GGUF value type id " + std::to_string(static_cast<std::uint32_t>(t)));
}

[[nodiscard]] inline bool known_type(std::uint32_t id) noexcept { return id <= static_cast<std::uint32_t>(value_type::float64); }

/// How deep the arrays in `v` nest (0 for a scalar).
[[nodiscard]] inline std::size_t array_depth(const value& v) {
    if (!v.is_array()) return 0;
    std::size_t deepest = 0;
    if (v.array_type() == value_type::array)
        for (const auto& e : v.as_array<value>()) deepest = std::max(deepest, array_depth(e));
    return deepest + 1;
}

template <class T>
void append_scalar(std::string& out, const T& x) {
    if constexpr (std::same_as<T, bool>) {
        out += x ? "true" : "false";
    } else if constexpr (std::same_as<T, std::string>) {
        // Display wants every byte visible; only the error messages cut long strings.
        out += quoted(x, std::numeric_limits<std::size_t>::max());
    } else if constexpr (std::floating_point<T>) {
        std::array<char, 64> buf{};
        const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), x);
        out.append(buf.data(), r.ptr);
    } else {
        out += std::to_string(x);
    }
}

}  // namespace detail

template <ElementValue T>
value::value(std::vector<T> elements) : data_(std::in_place_type<std::shared_ptr<const detail::array_data>>, nullptr) {
    if constexpr (std::same_as<T, value>) {
        for (std::size_t i = 0; i < elements.size(); ++i) {
            if (!elements[i].is_array()) {
                throw invalid_argument_error("gguf::value: element " + std::to_string(i) + " of an array of arrays is a " +
                                             std::string(type_name(elements[i].type())) + ", not an array");
            }
        }
    }
    auto payload = std::make_shared<detail::array_data>();
    payload->elements.template emplace<std::vector<T>>(std::move(elements));
    std::get<std::shared_ptr<const detail::array_data>>(data_) = std::move(payload);
}

inline value value::make_array(value_type element_type, const std::vector<value>& elements) {
    return detail::visit_type(element_type, [&]<class T>(std::type_identity<T>) -> value {
        std::vector<T> typed;
        typed.reserve(elements.size());
        for (std::size_t i = 0; i < elements.size(); ++i) {
            if (elements[i].type() != element_type) {
                throw invalid_argument_error("gguf::value::make_array: element " + std::to_string(i) + " is a " +
                                             std::string(type_name(elements[i].type())) + ", not a " +
                                             std::string(type_name(element_type)));
            }
            if constexpr (std::same_as<T, value>)
                typed.push_back(elements[i]);
            else if constexpr (std::same_as<T, std::string>)
                typed.push_back(elements[i].as_string());
            else
                typed.push_back(elements[i].as<T>());
        }
        return value(std::move(typed));
    });
}

inline void value::wrong_type(std::string_view wanted) const {
    std::string actual(type_name(type()));
    if (is_array()) actual = "array of " + std::string(type_name(array_type()));
    throw invalid_argument_error("gguf::value: the value is a " + actual + ", not a " + std::string(wanted));
}

inline const detail::array_data& value::array_payload(std::string_view wanted) const {
    if (const auto* p = std::get_if<std::shared_ptr<const detail::array_data>>(&data_)) return **p;
    wrong_type(wanted);
}

inline value_type value::array_type() const { return array_payload("array").element_type(); }

inline std::size_t value::array_size() const { return array_payload("array").size(); }

template <ElementValue T>
std::vector<T> value::as_array() const {
    const auto& payload = array_payload("array of " + std::string(type_name(detail::value_type_of<T>())));
    if constexpr (std::same_as<T, value>) {
        return std::visit(
                [](const auto& elements) {
                    std::vector<value> out;
                    out.reserve(elements.size());
                    for (const auto& e : elements) out.emplace_back(e);
                    return out;
                },
                payload.elements);
    } else {
        if (const auto* p = std::get_if<std::vector<T>>(&payload.elements)) return *p;
        wrong_type("array of " + std::string(type_name(detail::value_type_of<T>())));
    }
}

inline void value::append_to(std::string& out) const {
    std::visit(
            [&out](const auto& x) {
                using T = std::decay_t<decltype(x)>;
                if constexpr (std::same_as<T, std::shared_ptr<const detail::array_data>>) {
                    constexpr std::size_t shown = 8;
                    std::visit(
                            [&out](const auto& elements) {
                                out += '[';
                                for (std::size_t i = 0; i < elements.size() && i < shown; ++i) {
                                    if (i > 0) out += ", ";
                                    using E = typename std::decay_t<decltype(elements)>::value_type;
                                    if constexpr (std::same_as<E, value>)
                                        elements[i].append_to(out);
                                    else
                                        detail::append_scalar(out, static_cast<E>(elements[i]));
                                }
                                if (elements.size() > shown) out += ", ... (" + std::to_string(elements.size()) + " elements)";
                                out += ']';
                            },
                            x->elements);
                } else {
                    detail::append_scalar(out, x);
                }
            },
            data_);
}

inline std::string value::to_string() const {
    std::string out;
    append_to(out);
    return out;
}

inline bool operator==(const value& a, const value& b) {
    if (a.data_.index() != b.data_.index()) return false;
    return std::visit(
            [&b](const auto& x) -> bool {
                using T = std::decay_t<decltype(x)>;
                const auto& y = std::get<T>(b.data_);
                if constexpr (std::same_as<T, std::shared_ptr<const detail::array_data>>) {
                    if (x == y) return true;
                    if (x->elements.index() != y->elements.index()) return false;
                    return std::visit(
                            [&y](const auto& xs) {
                                const auto& ys = std::get<std::decay_t<decltype(xs)>>(y->elements);
                                return std::equal(xs.begin(), xs.end(), ys.begin(), ys.end(), [](const auto& p, const auto& q) {
                                    using E = typename std::decay_t<decltype(xs)>::value_type;
                                    return detail::same_bits<E>(p, q);
                                });
                            },
                            x->elements);
                } else {
                    return detail::same_bits(x, y);
                }
            },
            a.data_);
}

/// Where one tensor is and what it holds.
struct tensor_info {
    std::string name;
    std::vector<std::uint64_t> shape;  ///< ggml's ne: ne[0] is the contiguous row length; 1 to 4 dimensions
    ggml_type type = ggml_type::f32;
    std::uint64_t offset = 0;  ///< from the start of the data section

    /// Number of values. Throws shape_error when the product overflows.
    [[nodiscard]] std::uint64_t elements() const;
    /// Bytes of data: rows of ne[0]/block_size blocks, back to back. Throws shape_error when the shape has
    /// no or more than 4 dimensions, ne[0] is not a whole number of blocks, or the size overflows.
    [[nodiscard]] std::uint64_t bytes() const;

    friend bool operator==(const tensor_info&, const tensor_info&) = default;
};

namespace detail {

inline constexpr std::uint64_t max_int64 = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

using cogqat::checked_add;
using cogqat::checked_mul;

/// `x` rounded up to a multiple of `alignment` (a power of two), or nothing on overflow.
[[nodiscard]] inline std::optional<std::uint64_t> align_up(std::uint64_t x, std::uint64_t alignment) noexcept {
    const auto padded = checked_add(x, alignment - 1);
    if (!padded) return std::nullopt;
    return *padded & ~(alignment - 1);
}

/// Values and bytes of a tensor whose ne[0] is a whole number of blocks, or nothing when either overflows.
/// ggml stores ne as int64, so a count past 2^63-1 overflows too.
struct tensor_size {
    std::uint64_t elements;
    std::uint64_t bytes;
};
[[nodiscard]] inline std::optional<tensor_size> size_of(std::span<const std::uint64_t> shape, const type_info& t) noexcept {
    std::uint64_t elements = 1;
    std::uint64_t bytes = shape.empty() ? 0 : shape[0] / t.block_size * t.type_size;
    for (std::size_t d = 0; d < shape.size(); ++d) {
        const auto e = checked_mul(elements, shape[d]);
        if (!e || *e > max_int64) return std::nullopt;
        elements = *e;
        if (d > 0) {
            const auto b = checked_mul(bytes, shape[d]);
            if (!b) return std::nullopt;
            bytes = *b;
        }
    }
    return tensor_size{elements, bytes};
}

/// The size of `shape` of `type`, or shape_error prefixed by `context`.
[[nodiscard]] inline tensor_size checked_tensor_size(std::span<const std::uint64_t> shape, ggml_type type, std::string_view context) {
    const auto& t = info(type);
    if (shape.empty() || shape.size() > 4) {
        throw shape_error(std::string(context) + ": a tensor has 1 to 4 dimensions, not " + std::to_string(shape.size()));
    }
    if (shape[0] % t.block_size != 0) {
        throw shape_error(std::string(context) + ": ne[0] = " + std::to_string(shape[0]) + " is not a multiple of the block size " +
                          std::to_string(t.block_size) + " of " + std::string(t.name));
    }
    const auto size = size_of(shape, t);
    if (!size) throw shape_error(std::string(context) + ": the size of shape " + cogqat::shape_text(shape) + " overflows");
    return *size;
}

}  // namespace detail

inline std::uint64_t tensor_info::elements() const {
    std::uint64_t n = 1;
    for (const auto e : shape) {
        const auto product = detail::checked_mul(n, e);
        if (!product)
            throw shape_error("tensor " + detail::quoted(name) + ": the element count of " + cogqat::shape_text(shape) + " overflows");
        n = *product;
    }
    return n;
}

inline std::uint64_t tensor_info::bytes() const { return detail::checked_tensor_size(shape, type, "tensor " + detail::quoted(name)).bytes; }

}  // namespace cogqat::gguf
