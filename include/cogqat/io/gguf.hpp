#pragma once
// GGUF v3 files. The reader memory-maps a file and checks every structural rule before it hands out views
// into the bytes; the writer streams tensor data one tensor at a time into a temporary file that is renamed
// into place only when complete. The rules are ggml's (gguf.cpp), listed in docs/gguf.md. Hostile input is
// answered with a format_error naming the byte offset, never with a crash, an overflow or a huge allocation.

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

#if __has_include(<sys/mman.h>) && __has_include(<sys/stat.h>) && __has_include(<fcntl.h>) && __has_include(<unistd.h>)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include "cogqat/io/file.hpp"
#include "cogqat/io/output_file.hpp"

#include "cogqat/core/checked.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/little_endian.hpp"
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
    constexpr std::array<std::string_view, 13> names{"uint8",   "int8", "uint16", "int16",  "uint32", "int32",  "float32",
                                                     "bool",    "string", "array", "uint64", "int64", "float64"};
    const auto id = static_cast<std::uint32_t>(t);
    return id < names.size() ? names[id] : std::string_view("unknown");
}

class value;

/// The fixed-size types a value holds directly, exactly as `as<T>()` names them.
template <class T>
concept scalar_value = std::same_as<T, std::uint8_t> || std::same_as<T, std::int8_t> || std::same_as<T, std::uint16_t> ||
                       std::same_as<T, std::int16_t> || std::same_as<T, std::uint32_t> || std::same_as<T, std::int32_t> ||
                       std::same_as<T, std::uint64_t> || std::same_as<T, std::int64_t> || std::same_as<T, float> ||
                       std::same_as<T, double> || std::same_as<T, bool>;

/// The C++ element types of an array value: the scalars, std::string, and value for arrays of arrays.
template <class T>
concept element_value = scalar_value<T> || std::same_as<T, std::string> || std::same_as<T, value>;

namespace detail {

/// The value_type that stores T.
template <element_value T>
[[nodiscard]] consteval value_type value_type_of() noexcept {
    if constexpr (std::same_as<T, std::uint8_t>) return value_type::uint8;
    else if constexpr (std::same_as<T, std::int8_t>) return value_type::int8;
    else if constexpr (std::same_as<T, std::uint16_t>) return value_type::uint16;
    else if constexpr (std::same_as<T, std::int16_t>) return value_type::int16;
    else if constexpr (std::same_as<T, std::uint32_t>) return value_type::uint32;
    else if constexpr (std::same_as<T, std::int32_t>) return value_type::int32;
    else if constexpr (std::same_as<T, float>) return value_type::float32;
    else if constexpr (std::same_as<T, bool>) return value_type::boolean;
    else if constexpr (std::same_as<T, std::string>) return value_type::string;
    else if constexpr (std::same_as<T, value>) return value_type::array;
    else if constexpr (std::same_as<T, std::uint64_t>) return value_type::uint64;
    else if constexpr (std::same_as<T, std::int64_t>) return value_type::int64;
    else return value_type::float64;
}

/// The fixed-width integer that holds any integer type of the same size and signedness, so that
/// `value(1ll)` and `value(std::size_t{1})` work wherever long long or size_t is not int64_t/uint64_t.
template <std::integral T>
using fixed_width_t = std::conditional_t<
    std::is_signed_v<T>,
    std::conditional_t<sizeof(T) == 1, std::int8_t,
                       std::conditional_t<sizeof(T) == 2, std::int16_t, std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>>>,
    std::conditional_t<sizeof(T) == 1, std::uint8_t,
                       std::conditional_t<sizeof(T) == 2, std::uint16_t, std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>>>;

template <class T>
concept plain_integer = std::integral<T> && !std::same_as<T, bool> && !std::same_as<T, char> && !std::same_as<T, wchar_t> &&
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

} // namespace detail

/// One metadata value: a number, a bool, a string, or an array (an element type and its elements; arrays of
/// strings and of arrays are allowed). Values are immutable; copies of an array share its elements.
class value {
public:
    /// An integer, stored as the fixed-width GGUF type of the same size and signedness (int -> int32,
    /// std::uint64_t -> uint64, ...). `char` is refused: say std::int8_t/std::uint8_t or use a string.
    template <detail::plain_integer T>
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
        requires(!std::same_as<std::remove_cv_t<P>, char>)
    value(P*) = delete;
    /// An array of T (T = value makes an array of arrays: every element must itself be an array).
    template <element_value T>
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
    template <scalar_value T>
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
    template <element_value T>
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
        case value_type::uint8: return f(std::type_identity<std::uint8_t>{});
        case value_type::int8: return f(std::type_identity<std::int8_t>{});
        case value_type::uint16: return f(std::type_identity<std::uint16_t>{});
        case value_type::int16: return f(std::type_identity<std::int16_t>{});
        case value_type::uint32: return f(std::type_identity<std::uint32_t>{});
        case value_type::int32: return f(std::type_identity<std::int32_t>{});
        case value_type::float32: return f(std::type_identity<float>{});
        case value_type::boolean: return f(std::type_identity<bool>{});
        case value_type::string: return f(std::type_identity<std::string>{});
        case value_type::array: return f(std::type_identity<value>{});
        case value_type::uint64: return f(std::type_identity<std::uint64_t>{});
        case value_type::int64: return f(std::type_identity<std::int64_t>{});
        case value_type::float64: return f(std::type_identity<double>{});
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

} // namespace detail

template <element_value T>
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
            if constexpr (std::same_as<T, value>) typed.push_back(elements[i]);
            else if constexpr (std::same_as<T, std::string>) typed.push_back(elements[i].as_string());
            else typed.push_back(elements[i].as<T>());
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

template <element_value T>
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
                            if constexpr (std::same_as<E, value>) elements[i].append_to(out);
                            else detail::append_scalar(out, static_cast<E>(elements[i]));
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

[[nodiscard]] inline std::string shape_string(std::span<const std::uint64_t> shape) {
    std::string s = "[";
    for (std::size_t d = 0; d < shape.size(); ++d) s += (d ? ", " : "") + std::to_string(shape[d]);
    return s + "]";
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
    if (!size) throw shape_error(std::string(context) + ": the size of shape " + shape_string(shape) + " overflows");
    return *size;
}

} // namespace detail

inline std::uint64_t tensor_info::elements() const {
    std::uint64_t n = 1;
    for (const auto e : shape) {
        const auto product = detail::checked_mul(n, e);
        if (!product) throw shape_error("tensor " + detail::quoted(name) + ": the element count of " + detail::shape_string(shape) + " overflows");
        n = *product;
    }
    return n;
}

inline std::uint64_t tensor_info::bytes() const { return detail::checked_tensor_size(shape, type, "tensor " + detail::quoted(name)).bytes; }

namespace detail {

/// The bytes a reader parsed: a read-only mapping it owns, or memory the caller owns. Moving hands the
/// mapping over and leaves the source empty, so a moved-from reader holds no dangling view.
class byte_source {
public:
    byte_source() = default;
    explicit byte_source(std::span<const std::byte> borrowed) noexcept : bytes_(borrowed) {}
    byte_source(byte_source&& other) noexcept
        : bytes_(std::exchange(other.bytes_, {})), mapping_(std::exchange(other.mapping_, nullptr)),
          mapping_size_(std::exchange(other.mapping_size_, 0)), owned_(std::move(other.owned_)) {}
    byte_source& operator=(byte_source&& other) noexcept {
        if (this != &other) {
            release();
            bytes_ = std::exchange(other.bytes_, {});
            mapping_ = std::exchange(other.mapping_, nullptr);
            mapping_size_ = std::exchange(other.mapping_size_, 0);
            owned_ = std::move(other.owned_);
        }
        return *this;
    }
    byte_source(const byte_source&) = delete;
    byte_source& operator=(const byte_source&) = delete;
    ~byte_source() { release(); }

    [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return bytes_; }

    /// The whole of `path`, memory-mapped read-only (read into memory where there is no mmap).
    [[nodiscard]] static byte_source map(const std::filesystem::path& path) {
        byte_source source;
#if __has_include(<sys/mman.h>) && __has_include(<sys/stat.h>) && __has_include(<fcntl.h>) && __has_include(<unistd.h>)
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) throw io_error("cannot open '" + path.string() + "' for reading: " + std::strerror(errno));
        struct fd_closer {
            int fd;
            ~fd_closer() { ::close(fd); }
        } closer{fd};
        struct stat st {};
        if (::fstat(fd, &st) != 0) throw io_error("cannot stat '" + path.string() + "': " + std::strerror(errno));
        if (!S_ISREG(st.st_mode)) throw io_error("cannot read '" + path.string() + "': not a regular file");
        if (st.st_size <= 0) return source;  // mmap refuses length 0; an empty file is simply no bytes
        if (static_cast<std::uint64_t>(st.st_size) > std::numeric_limits<std::size_t>::max()) {
            throw io_error("cannot map '" + path.string() + "': too large for this address space");
        }
        const auto size = static_cast<std::size_t>(st.st_size);
        void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) throw io_error("cannot map '" + path.string() + "': " + std::strerror(errno));
        source.mapping_ = p;
        source.mapping_size_ = size;
        source.bytes_ = {static_cast<const std::byte*>(p), size};
#else
        source.owned_ = io::read_file(path);
        source.bytes_ = source.owned_;
#endif
        return source;
    }

private:
    void release() noexcept {
#if __has_include(<sys/mman.h>) && __has_include(<sys/stat.h>) && __has_include(<fcntl.h>) && __has_include(<unistd.h>)
        if (mapping_ != nullptr) ::munmap(mapping_, mapping_size_);
#endif
        mapping_ = nullptr;
        mapping_size_ = 0;
        bytes_ = {};
    }

    std::span<const std::byte> bytes_;
    void* mapping_ = nullptr;
    std::size_t mapping_size_ = 0;
    std::vector<std::byte> owned_;
};

[[noreturn]] inline void fail(std::uint64_t offset, std::string_view context, std::string message) {
    message = "GGUF: " + message + " (at byte offset " + std::to_string(offset);
    if (!context.empty()) {
        message += ", ";
        message += context;
    }
    message += ')';
    throw format_error(message);
}

/// A type id as the file stores it: an int32, so a negative one reads as negative.
[[nodiscard]] inline std::string id_string(std::uint32_t id) { return std::to_string(static_cast<std::int32_t>(id)); }

/// The smallest encoding of one element of `t`: its fixed size, a string's length field, or an array's
/// element type and count. Multiplying a count by it bounds what the rest of the file can hold.
[[nodiscard]] constexpr std::uint64_t min_encoded_size(value_type t) noexcept {
    constexpr std::array<std::uint8_t, 13> sizes{1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8};
    return sizes[static_cast<std::uint32_t>(t)];
}

/// Reads the little-endian fields of a GGUF file with a bounds check before every access.
class cursor {
public:
    explicit cursor(std::span<const std::byte> bytes) noexcept : bytes_(bytes) {}

    [[nodiscard]] std::uint64_t offset() const noexcept { return pos_; }
    [[nodiscard]] std::uint64_t remaining() const noexcept { return bytes_.size() - pos_; }

    void require(std::uint64_t n, std::string_view what, std::string_view context) const {
        if (n > remaining()) {
            fail(pos_, context,
                 "truncated: " + std::to_string(n) + " bytes needed for " + std::string(what) + ", " + std::to_string(remaining()) +
                     " remain");
        }
    }

    template <little_endian_scalar T>
    [[nodiscard]] T read(std::string_view what, std::string_view context) {
        require(sizeof(T), what, context);
        const T v = load_le<T>(bytes_.data() + pos_);
        pos_ += sizeof(T);
        return v;
    }

    [[nodiscard]] std::string read_string(std::string_view what, std::string_view context) {
        const auto at = pos_;
        const auto n = read<std::uint64_t>("the length of " + std::string(what), context);
        if (n > remaining()) {
            fail(at, context,
                 "string length " + std::to_string(n) + " of " + std::string(what) + " exceeds the " + std::to_string(remaining()) +
                     " bytes that remain");
        }
        std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<std::size_t>(n));
        pos_ += n;
        return s;
    }

private:
    std::span<const std::byte> bytes_;
    std::uint64_t pos_ = 0;
};

[[nodiscard]] inline bool read_bool(cursor& c, std::string_view context) {
    const auto at = c.offset();
    const auto b = c.read<std::uint8_t>("a bool", context);
    // Any other byte would read back differently from how it was written.
    if (b > 1) fail(at, context, "boolean value " + std::to_string(b) + " is neither 0 nor 1");
    return b == 1;
}

[[nodiscard]] inline value read_array(cursor& c, std::string_view context, std::size_t depth);

template <class T>
[[nodiscard]] value read_scalar(cursor& c, std::string_view context) {
    if constexpr (std::same_as<T, bool>) return value(read_bool(c, context));
    else if constexpr (std::same_as<T, std::string>) return value(c.read_string("a string value", context));
    else return value(c.read<T>("a " + std::string(type_name(value_type_of<T>())) + " value", context));
}

/// The value of type `type_id` (read at `type_at`) that follows. `depth` counts the arrays around it.
[[nodiscard]] inline value read_value(cursor& c, std::uint32_t type_id, std::uint64_t type_at, std::string_view context, std::size_t depth) {
    if (!known_type(type_id)) fail(type_at, context, "unknown value type " + id_string(type_id));
    return visit_type(static_cast<value_type>(type_id), [&]<class T>(std::type_identity<T>) -> value {
        if constexpr (std::same_as<T, value>) return read_array(c, context, depth);
        else return read_scalar<T>(c, context);
    });
}

/// An array's element type, count and elements.
inline value read_array(cursor& c, std::string_view context, std::size_t depth) {
    if (depth >= max_array_depth) fail(c.offset(), context, "arrays nested more than " + std::to_string(max_array_depth) + " deep");
    const auto type_at = c.offset();
    const auto type_id = c.read<std::uint32_t>("an array element type", context);
    if (!known_type(type_id)) fail(type_at, context, "unknown value type " + id_string(type_id) + " of array elements");
    const auto element_type = static_cast<value_type>(type_id);
    const auto count_at = c.offset();
    const auto count = c.read<std::uint64_t>("an array length", context);
    // Checked before anything is allocated: a count the remaining bytes cannot hold is a lie.
    if (count > c.remaining() / min_encoded_size(element_type)) {
        fail(count_at, context,
             "array length " + std::to_string(count) + " of " + std::string(type_name(element_type)) + " elements cannot fit in the " +
                 std::to_string(c.remaining()) + " bytes that remain");
    }
    return visit_type(element_type, [&]<class T>(std::type_identity<T>) -> value {
        std::vector<T> elements;
        elements.reserve(static_cast<std::size_t>(count));
        for (std::uint64_t i = 0; i < count; ++i) {
            if constexpr (std::same_as<T, value>) elements.push_back(read_array(c, context, depth + 1));
            else if constexpr (std::same_as<T, bool>) elements.push_back(read_bool(c, context));
            else if constexpr (std::same_as<T, std::string>) elements.push_back(c.read_string("a string array element", context));
            else elements.push_back(c.read<T>("an array element", context));
        }
        return value(std::move(elements));
    });
}

} // namespace detail

/// A parsed GGUF v3 file: its metadata and tensor infos, and views of the tensor data. Every structural rule
/// is checked while parsing (docs/gguf.md lists them), so the views it hands out are always in bounds.
class reader {
public:
    /// Memory-maps `path` read-only and parses it. The mapping lives as long as the reader (or whatever the
    /// reader is moved into). io_error when the file cannot be opened or mapped; format_error, prefixed by
    /// the path, when its bytes are not a valid GGUF v3 file. Note that another process truncating the file
    /// while it is mapped makes later reads of the views fault (SIGBUS), as with any mmap.
    [[nodiscard]] static reader open(const std::filesystem::path& path) {
        auto source = detail::byte_source::map(path);
        try {
            reader r = parse(source.bytes());
            r.source_ = std::move(source);
            return r;
        } catch (const format_error& e) {
            throw format_error("'" + path.string() + "': " + e.what());
        }
    }

    /// Parses a GGUF file held in memory, without copying: the views point into `bytes`, which the caller
    /// keeps alive and unchanged as long as the reader is used. format_error when the bytes are not valid.
    [[nodiscard]] static reader parse(std::span<const std::byte> bytes) {
        reader r;
        r.source_ = detail::byte_source(bytes);
        r.parse_all();
        return r;
    }

    reader(reader&&) noexcept = default;
    reader& operator=(reader&&) noexcept = default;
    reader(const reader&) = delete;
    reader& operator=(const reader&) = delete;
    ~reader() = default;

    /// The format version (always 3).
    [[nodiscard]] std::uint32_t version() const noexcept { return version_; }
    /// The alignment of the data section and tensors: `general.alignment`, or 32 when absent.
    [[nodiscard]] std::uint32_t alignment() const noexcept { return alignment_; }
    /// The key/value pairs, in file order.
    [[nodiscard]] const std::vector<std::pair<std::string, value>>& metadata() const noexcept { return metadata_; }
    /// The value of `key`, or nullptr when the file has no such key.
    [[nodiscard]] const value* find(std::string_view key) const {
        const auto it = key_index_.find(key);
        return it == key_index_.end() ? nullptr : &metadata_[it->second].second;
    }
    /// The tensor infos, in file order (which is also the order of their data).
    [[nodiscard]] const std::vector<tensor_info>& tensors() const noexcept { return tensors_; }
    /// The tensor called `name`, or nullptr.
    [[nodiscard]] const tensor_info* find_tensor(std::string_view name) const {
        const auto it = tensor_index_.find(name);
        return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
    }
    /// The bytes of a tensor's data: `t.bytes()` bytes at `data_offset() + t.offset`. Always in bounds for the
    /// reader's own tensors; invalid_argument_error for a tensor_info that does not lie inside the data section.
    [[nodiscard]] std::span<const std::byte> tensor_data(const tensor_info& t) const {
        const auto bytes = t.bytes();
        if (data_offset_ > file_size()) throw invalid_argument_error("gguf::reader::tensor_data: the reader holds no file (moved from?)");
        const auto data_size = file_size() - data_offset_;
        if (t.offset > data_size || bytes > data_size - t.offset) {
            throw invalid_argument_error("gguf::reader::tensor_data: tensor " + detail::quoted(t.name) + " (" + std::to_string(bytes) +
                                         " bytes at offset " + std::to_string(t.offset) + ") lies outside the " +
                                         std::to_string(data_size) + "-byte data section");
        }
        return source_.bytes().subspan(static_cast<std::size_t>(data_offset_ + t.offset), static_cast<std::size_t>(bytes));
    }
    /// Where the data section starts, from the start of the file (a multiple of the alignment).
    [[nodiscard]] std::uint64_t data_offset() const noexcept { return data_offset_; }
    /// The size of the file (or buffer) in bytes.
    [[nodiscard]] std::uint64_t file_size() const noexcept { return source_.bytes().size(); }

private:
    reader() = default;

    void parse_all();

    detail::byte_source source_;
    std::uint32_t version_ = 0;
    std::uint32_t alignment_ = default_alignment;
    std::vector<std::pair<std::string, value>> metadata_;
    std::map<std::string, std::size_t, std::less<>> key_index_;
    std::vector<tensor_info> tensors_;
    std::map<std::string, std::size_t, std::less<>> tensor_index_;
    std::uint64_t data_offset_ = 0;
};

inline void reader::parse_all() {
    using detail::fail;
    const auto bytes = source_.bytes();
    detail::cursor c(bytes);

    c.require(4, "the magic 'GGUF'", {});
    if (std::memcmp(bytes.data(), "GGUF", 4) != 0) {
        fail(0, {}, "bad magic " + detail::quoted({reinterpret_cast<const char*>(bytes.data()), 4}) + ", expected 'GGUF' (not a GGUF file)");
    }
    static_cast<void>(c.read<std::uint32_t>("the magic", {}));

    version_ = c.read<std::uint32_t>("the version", {});
    if (version_ != format_version) {
        std::string hint;
        if (version_ != 0 && (version_ & 0xFFFFu) == 0) hint = "; a big-endian file?";
        fail(4, {}, "unsupported GGUF version " + std::to_string(version_) + " (only version 3 is read" + hint + ")");
    }

    const auto tensor_count = c.read<std::uint64_t>("the tensor count", {});
    const auto kv_count = c.read<std::uint64_t>("the key/value count", {});
    // Each tensor info and each key/value pair takes a minimum number of bytes, so a count the rest of the file
    // cannot hold is refused before anything is reserved: a count near 2^64 never allocates or loops.
    constexpr std::uint64_t min_tensor_info = 8 + 4 + 8 + 4 + 8;  // name length, n_dims, ne[0], type, offset
    constexpr std::uint64_t min_kv = 8 + 4 + 1;                    // key length, value type, a one-byte value
    if (tensor_count > c.remaining() / min_tensor_info) {
        fail(8, {}, "tensor count " + std::to_string(tensor_count) + " cannot fit in the " + std::to_string(c.remaining()) +
                        " bytes after the header");
    }
    if (kv_count > c.remaining() / min_kv || kv_count * min_kv > c.remaining() - tensor_count * min_tensor_info) {
        fail(16, {}, "key/value count " + std::to_string(kv_count) + " (with " + std::to_string(tensor_count) +
                         " tensors) cannot fit in the " + std::to_string(c.remaining()) + " bytes after the header");
    }

    metadata_.reserve(static_cast<std::size_t>(kv_count));
    std::optional<std::uint64_t> alignment_type_at;
    for (std::uint64_t i = 0; i < kv_count; ++i) {
        const auto key_at = c.offset();
        std::string key = c.read_string("a key", "key #" + std::to_string(i));
        const std::string context = "key " + detail::quoted(key);
        if (key_index_.contains(key)) fail(key_at, context, "duplicate key " + detail::quoted(key));
        const auto type_at = c.offset();
        const auto type_id = c.read<std::uint32_t>("a value type", context);
        value v = detail::read_value(c, type_id, type_at, context, 0);
        if (key == "general.alignment") alignment_type_at = type_at;
        key_index_.emplace(key, metadata_.size());
        metadata_.emplace_back(std::move(key), std::move(v));
    }

    if (alignment_type_at) {
        const value& a = *find("general.alignment");
        if (a.type() != value_type::uint32) {
            fail(*alignment_type_at, "key 'general.alignment'",
                 "general.alignment must be a uint32, not a " + std::string(type_name(a.type())));
        }
        alignment_ = a.as<std::uint32_t>();
        if (!std::has_single_bit(alignment_)) {
            fail(*alignment_type_at + 4, "key 'general.alignment'",
                 "general.alignment " + std::to_string(alignment_) + " is not a power of two");
        }
    }

    tensors_.reserve(static_cast<std::size_t>(tensor_count));
    std::vector<std::uint64_t> offset_at;  // where each tensor's offset field is, for the messages below
    offset_at.reserve(static_cast<std::size_t>(tensor_count));
    for (std::uint64_t i = 0; i < tensor_count; ++i) {
        tensor_info t;
        const auto name_at = c.offset();
        t.name = c.read_string("a tensor name", "tensor #" + std::to_string(i));
        const std::string context = "tensor " + detail::quoted(t.name);
        if (tensor_index_.contains(t.name)) fail(name_at, context, "duplicate tensor name " + detail::quoted(t.name));

        const auto dims_at = c.offset();
        const auto n_dims = c.read<std::uint32_t>("n_dims", context);
        if (n_dims == 0 || n_dims > 4) fail(dims_at, context, "n_dims " + std::to_string(n_dims) + " is not 1 to 4");
        t.shape.resize(n_dims);
        for (std::uint32_t d = 0; d < n_dims; ++d) {
            const auto at = c.offset();
            t.shape[d] = c.read<std::uint64_t>("ne[" + std::to_string(d) + "]", context);
            if (t.shape[d] > detail::max_int64) {
                fail(at, context, "ne[" + std::to_string(d) + "] = " + std::to_string(static_cast<std::int64_t>(t.shape[d])) + " is negative");
            }
        }

        const auto type_at = c.offset();
        const auto type_id = c.read<std::uint32_t>("the tensor type", context);
        const auto type = find_type(type_id);
        if (!type) fail(type_at, context, "unknown tensor type id " + detail::id_string(type_id));
        t.type = type->type;
        if (t.shape[0] % type->block_size != 0) {
            fail(dims_at + 4, context,
                 "ne[0] = " + std::to_string(t.shape[0]) + " is not a multiple of the block size " + std::to_string(type->block_size) +
                     " of " + std::string(type->name));
        }
        if (!detail::size_of(t.shape, *type)) {
            fail(dims_at + 4, context, "the size of shape " + detail::shape_string(t.shape) + " of " + std::string(type->name) + " overflows");
        }

        offset_at.push_back(c.offset());
        t.offset = c.read<std::uint64_t>("the tensor data offset", context);
        tensor_index_.emplace(t.name, tensors_.size());
        tensors_.push_back(std::move(t));
    }

    const auto infos_end = c.offset();
    const auto data_offset = detail::align_up(infos_end, alignment_);
    if (!data_offset || *data_offset > bytes.size()) {
        fail(infos_end, {},
             "truncated: the data section starts at the next multiple of " + std::to_string(alignment_) + ", past the end of the " +
                 std::to_string(bytes.size()) + "-byte file");
    }
    data_offset_ = *data_offset;
    const std::uint64_t data_size = bytes.size() - data_offset_;

    // ggml loads a tensor only where it expects it: in info order, back to back, each padded to the alignment.
    // Requiring exactly that rules out overlaps, gaps and reordering in one check.
    std::uint64_t expected = 0;
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
        const auto& t = tensors_[i];
        const std::string context = "tensor " + detail::quoted(t.name);
        const auto size = detail::size_of(t.shape, info(t.type))->bytes;
        if (t.offset % alignment_ != 0) {
            fail(offset_at[i], context,
                 "tensor data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " + std::to_string(alignment_));
        }
        if (t.offset > data_size || size > data_size - t.offset) {
            fail(offset_at[i], context,
                 "tensor data of " + std::to_string(size) + " bytes at data offset " + std::to_string(t.offset) +
                     " runs past the end of the " + std::to_string(bytes.size()) + "-byte file, whose data section starts at byte " +
                     std::to_string(data_offset_) + " (truncated?)");
        }
        if (t.offset != expected) {
            fail(offset_at[i], context,
                 "tensor data offset " + std::to_string(t.offset) + ", expected " + std::to_string(expected) +
                     ": tensors must be stored in info order, back to back, each padded to the alignment (overlap or out of order)");
        }
        expected = *detail::align_up(t.offset + size, alignment_);  // t.offset + size <= data_size: no overflow
    }
    // ggml's writer pads after the last tensor too, and ggml reads that padding as part of the data section.
    if (expected > data_size) {
        fail(bytes.size(), {},
             "truncated: the data section needs " + std::to_string(expected) + " bytes (padding after the last tensor included) from byte offset " +
                 std::to_string(data_offset_) + ", but only " + std::to_string(data_size) + " remain");
    }
}

namespace detail {

/// Appends GGUF encodings to a byte buffer.
class encoder {
public:
    explicit encoder(std::vector<std::byte>& out) noexcept : out_(out) {}

    template <little_endian_scalar T>
    void put(T v) {
        const auto at = out_.size();
        out_.resize(at + sizeof(T));
        store_le<T>(out_.data() + at, v);
    }
    void put_string(std::string_view s) {
        put<std::uint64_t>(s.size());
        const auto* p = reinterpret_cast<const std::byte*>(s.data());
        out_.insert(out_.end(), p, p + s.size());
    }
    /// A value without its type tag (the key/value pair or the enclosing array carries that).
    void put_payload(const value& v) {
        visit_type(v.type(), [&]<class T>(std::type_identity<T>) {
            if constexpr (std::same_as<T, value>) put_array(v);
            else if constexpr (std::same_as<T, std::string>) put_string(v.as_string());
            else if constexpr (std::same_as<T, bool>) put<std::uint8_t>(v.as<bool>() ? 1 : 0);
            else put<T>(v.as<T>());
        });
    }

private:
    void put_array(const value& v) {
        put<std::uint32_t>(static_cast<std::uint32_t>(v.array_type()));
        put<std::uint64_t>(v.array_size());
        visit_type(v.array_type(), [&]<class T>(std::type_identity<T>) {
            for (const auto& e : v.as_array<T>()) {
                if constexpr (std::same_as<T, value>) put_array(e);
                else if constexpr (std::same_as<T, std::string>) put_string(e);
                else if constexpr (std::same_as<T, bool>) put<std::uint8_t>(e ? 1 : 0);
                else put<T>(e);
            }
        });
    }

    std::vector<std::byte>& out_;
};

/// An output_file that pads to an alignment with zero bytes.
class file_sink {
public:
    explicit file_sink(const std::filesystem::path& path) : file_(path) {}

    void write(std::span<const std::byte> bytes) { file_.write(bytes); }
    /// Zero bytes up to the next multiple of `alignment`.
    void pad(std::uint64_t alignment) {
        static constexpr std::array<std::byte, 256> zeros{};
        auto n = (alignment - file_.written() % alignment) % alignment;
        while (n > 0) {
            const auto chunk = std::min<std::uint64_t>(n, zeros.size());
            write(std::span(zeros).first(static_cast<std::size_t>(chunk)));
            n -= chunk;
        }
    }
    /// Syncs and renames the file into place.
    void commit() { file_.commit(); }

private:
    io::output_file file_;
};

} // namespace detail

/// Writes a GGUF v3 file. Metadata is held in memory; tensor data is produced one tensor at a time during
/// finish(), so memory stays bounded by the largest tensor. The file appears at its path only when complete.
class writer {
public:
    /// A function that writes a tensor's data into the buffer it is given (exactly the tensor's bytes, zeroed).
    using fill_function = std::function<void(std::span<std::byte>)>;

    /// A writer that will create `out` when finish() succeeds.
    explicit writer(std::filesystem::path out) : out_(std::move(out)) {}

    writer(writer&&) noexcept = default;
    writer& operator=(writer&&) noexcept = default;
    writer(const writer&) = delete;
    writer& operator=(const writer&) = delete;
    ~writer() = default;

    /// Sets `key` to `v`: an existing key keeps its place, a new one goes after the others. invalid_argument_error
    /// for a `general.alignment` that is not a uint32 power of two, arrays nested more than max_array_depth
    /// deep, or a writer already finished.
    void set(std::string key, value v) {
        require_open("set");
        if (key == "general.alignment" && (v.type() != value_type::uint32 || !std::has_single_bit(v.as<std::uint32_t>()))) {
            throw invalid_argument_error("gguf::writer::set: general.alignment must be a uint32 power of two, not " +
                                         std::string(type_name(v.type())) + " " + v.to_string());
        }
        if (detail::array_depth(v) > max_array_depth) {
            throw invalid_argument_error("gguf::writer::set: key " + detail::quoted(key) + ": arrays nested more than " +
                                         std::to_string(max_array_depth) + " deep");
        }
        for (auto& [k, existing] : metadata_) {
            if (k == key) {
                existing = std::move(v);
                return;
            }
        }
        metadata_.emplace_back(std::move(key), std::move(v));
    }

    /// The value set for `key`, or nullptr.
    [[nodiscard]] const value* find(std::string_view key) const {
        for (const auto& [k, v] : metadata_)
            if (k == key) return &v;
        return nullptr;
    }

    /// Adds a tensor whose data `fill` writes, once, during finish(), into a zeroed buffer of exactly the
    /// tensor's size: a caller can quantize on the fly. Tensors are stored in the order they are added.
    /// invalid_argument_error for an empty, over-long (> 63 bytes, which llama.cpp cannot load) or duplicate
    /// name, an unknown type or an empty `fill`; shape_error for 0 or more than 4 dimensions, ne[0] not a
    /// multiple of the type's block size, or a size that overflows.
    void add_tensor(std::string name, std::vector<std::uint64_t> shape, ggml_type type, fill_function fill) {
        require_open("add_tensor");
        if (name.empty() || name.size() > max_tensor_name_length) {
            throw invalid_argument_error("gguf::writer::add_tensor: tensor name " + detail::quoted(name) + " is " +
                                         std::to_string(name.size()) + " bytes long; ggml takes 1 to " +
                                         std::to_string(max_tensor_name_length));
        }
        if (tensor_names_.contains(name)) throw invalid_argument_error("gguf::writer::add_tensor: duplicate tensor name " + detail::quoted(name));
        if (!fill) throw invalid_argument_error("gguf::writer::add_tensor: tensor " + detail::quoted(name) + " has no fill function");
        const std::string context = "gguf::writer::add_tensor: tensor " + detail::quoted(name);
        static_cast<void>(detail::checked_tensor_size(shape, type, context));
        tensor_names_.insert(name);
        tensors_.push_back({tensor_info{std::move(name), std::move(shape), type, 0}, std::move(fill)});
    }

    /// Adds a tensor with the given data, copied now (so `data` need not outlive the call). shape_error
    /// when `data` is not exactly the size of `shape` of `type`; otherwise as the overload above.
    void add_tensor(std::string name, std::vector<std::uint64_t> shape, ggml_type type, std::span<const std::byte> data) {
        require_open("add_tensor");
        const auto size = detail::checked_tensor_size(shape, type, "gguf::writer::add_tensor: tensor " + detail::quoted(name));
        if (data.size() != size.bytes) {
            throw shape_error("gguf::writer::add_tensor: tensor " + detail::quoted(name) + " of shape " + detail::shape_string(shape) +
                              " and type " + std::string(info(type).name) + " takes " + std::to_string(size.bytes) + " bytes, not " +
                              std::to_string(data.size()));
        }
        add_tensor(std::move(name), std::move(shape), type,
                   [copy = std::vector<std::byte>(data.begin(), data.end())](std::span<std::byte> out) {
                       std::copy(copy.begin(), copy.end(), out.begin());
                   });
    }

    /// Writes the file: header, key/value pairs, tensor infos, zero padding to the alignment (`general.alignment`
    /// if set, else 32), then each tensor's data padded to the alignment. All or nothing (io/output_file.hpp):
    /// on any exception (io_error, or whatever a fill function throws, passed on unchanged) `out` is left as it
    /// was. A writer finishes once, whether or not that succeeds.
    void finish() {
        require_open("finish");
        finished_ = true;
        const std::uint32_t alignment = this->alignment();
        assign_offsets();

        detail::file_sink sink(out_);
        encode_header([&](std::vector<std::byte>& chunk) {
            sink.write(chunk);
            chunk.clear();
        });
        sink.pad(alignment);
        std::vector<std::byte> buffer;
        for (const auto& t : tensors_) {
            const auto size = t.info.bytes();
            if (size > std::numeric_limits<std::size_t>::max()) {
                throw shape_error("gguf::writer::finish: tensor " + detail::quoted(t.info.name) + " does not fit in memory");
            }
            buffer.assign(static_cast<std::size_t>(size), std::byte{0});
            t.fill(buffer);
            sink.write(buffer);
            sink.pad(alignment);
        }
        sink.commit();
    }

    /// The alignment of the tensor data: `general.alignment` if set, else 32.
    [[nodiscard]] std::uint32_t alignment() const {
        const value* a = find("general.alignment");
        return a ? a->as<std::uint32_t>() : default_alignment;
    }

    /// The size finish() would write now, without writing: the header (whose length does not depend on
    /// the tensor types) padded to the alignment, plus each tensor padded to it. What a size target needs.
    [[nodiscard]] std::uint64_t planned_file_size() {
        const std::uint64_t data = assign_offsets();
        std::uint64_t header = 0;
        encode_header([&](std::vector<std::byte>& chunk) {
            header += chunk.size();
            chunk.clear();
        });
        return *detail::align_up(header, alignment()) + data;
    }

    /// Changes the type of a tensor already added (its fill function must then write that type).
    void set_tensor_type(std::string_view name, ggml_type type) {
        require_open("set_tensor_type");
        for (auto& t : tensors_) {
            if (t.info.name != name) continue;
            static_cast<void>(detail::checked_tensor_size(t.info.shape, type, "gguf::writer::set_tensor_type: tensor " + detail::quoted(t.info.name)));
            t.info.type = type;
            return;
        }
        throw invalid_argument_error("gguf::writer::set_tensor_type: no tensor " + detail::quoted(name));
    }

private:
    struct pending_tensor {
        tensor_info info;
        fill_function fill;
    };

    /// Sets each tensor's offset (they go into the tensor infos, ahead of the data); returns the data size.
    std::uint64_t assign_offsets() {
        const std::uint32_t alignment = this->alignment();
        std::uint64_t offset = 0;
        for (auto& t : tensors_) {
            t.info.offset = offset;
            const auto next = detail::checked_add(offset, t.info.bytes());
            const auto padded = next ? detail::align_up(*next, alignment) : std::nullopt;
            if (!padded) throw shape_error("gguf::writer: the tensor data exceeds 2^64 bytes");
            offset = *padded;
        }
        return offset;
    }

    /// Encodes header, key/value pairs and tensor infos, handing out chunks (one per pair, so that a large
    /// vocabulary is not held twice); `sink` consumes and clears each.
    template <class Sink>
    void encode_header(Sink&& sink) const {
        std::vector<std::byte> buffer;
        detail::encoder encode(buffer);
        encode.put<std::uint32_t>(0x46554747u);  // "GGUF" read as a little-endian uint32
        encode.put<std::uint32_t>(format_version);
        encode.put<std::uint64_t>(tensors_.size());
        encode.put<std::uint64_t>(metadata_.size());
        for (const auto& [key, v] : metadata_) {
            encode.put_string(key);
            encode.put<std::uint32_t>(static_cast<std::uint32_t>(v.type()));
            encode.put_payload(v);
            sink(buffer);
        }
        for (const auto& t : tensors_) {
            encode.put_string(t.info.name);
            encode.put<std::uint32_t>(static_cast<std::uint32_t>(t.info.shape.size()));
            for (const auto ne : t.info.shape) encode.put<std::uint64_t>(ne);
            encode.put<std::uint32_t>(static_cast<std::uint32_t>(t.info.type));
            encode.put<std::uint64_t>(t.info.offset);
        }
        sink(buffer);
    }

    void require_open(std::string_view operation) const {
        if (finished_) throw invalid_argument_error("gguf::writer::" + std::string(operation) + ": the writer has already finished");
    }

    std::filesystem::path out_;
    std::vector<std::pair<std::string, value>> metadata_;
    std::vector<pending_tensor> tensors_;
    std::set<std::string, std::less<>> tensor_names_;
    bool finished_ = false;
};

} // namespace cogqat::gguf
