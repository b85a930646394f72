#pragma once
// Packed storage of N-bit unsigned codes (N = 2..8) at exactly N bits per code: an owning container,
// packed_codes<N>, and span-like views over a sub-range of whole codes, packed_view<N> (mutable) and
// packed_view<N, const std::byte>. The bit order is core/bit_packing.hpp's little-endian bit stream (code i at bit
// i N); a view may start at any code, so at any bit offset within a byte.
//
// Bulk pack and unpack run the active instruction set's kernel (dispatch::kernel_table::packing) from the
// first whole byte on, and the scalar reference elsewhere; both give the same bits. This header sits in the
// format layer, not in core, because it calls through the dispatch table.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "cogqat/core/bit_packing.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/dispatch/kernel_table.hpp"

namespace cogqat {

namespace detail::packed {

/// Codes before this one start mid-byte: the count of codes (below 8) from bit `first_bit` until a code
/// starts on a byte boundary, or n when none does within the range.
[[nodiscard]] inline std::size_t codes_before_whole_byte(std::size_t first_bit, std::size_t n, int bits) noexcept {
    const auto width = static_cast<std::size_t>(bits);
    for (std::size_t k = 0; k < 8 && k < n; ++k)
        if ((first_bit + k * width) % 8 == 0) return k;
    return n;
}

/// Packs codes[0, n) (each below 2^bits) from bit `first_bit` of `stream`, leaving the bits around them.
inline void pack(const std::uint8_t* codes, std::size_t n, int bits, std::byte* stream, std::size_t first_bit) {
    const std::size_t head = codes_before_whole_byte(first_bit, n, bits);
    reference::pack_codes(codes, head, bits, stream, first_bit);
    if (head == n) return;
    const std::size_t bit = first_bit + head * static_cast<std::size_t>(bits);
    if (const auto kernel = dispatch::active().packing.pack[static_cast<std::size_t>(bits)])
        kernel(codes + head, n - head, stream + bit / 8);
    else
        reference::pack_codes(codes + head, n - head, bits, stream, bit);
}

/// Unpacks n codes from bit `first_bit` of `stream`.
inline void unpack(const std::byte* stream, std::size_t first_bit, std::size_t n, int bits, std::uint8_t* codes) {
    const std::size_t head = codes_before_whole_byte(first_bit, n, bits);
    reference::unpack_codes(stream, first_bit, head, bits, codes);
    if (head == n) return;
    const std::size_t bit = first_bit + head * static_cast<std::size_t>(bits);
    if (const auto kernel = dispatch::active().packing.unpack[static_cast<std::size_t>(bits)])
        kernel(stream + bit / 8, n - head, codes + head);
    else
        reference::unpack_codes(stream, bit, n - head, bits, codes + head);
}

/// Throws value_error, naming the index, at the first code above max_code.
inline void require_codes_fit(std::span<const std::uint8_t> codes, int bits, std::string_view context) {
    const auto max_code = static_cast<std::uint8_t>((1u << bits) - 1u);
    const auto kernel = dispatch::active().packing.first_code_above;
    const std::size_t bad =
            kernel ? kernel(codes.data(), codes.size(), max_code) : reference::first_code_above(codes.data(), codes.size(), max_code);
    if (bad != codes.size()) {
        throw value_error(std::string(context) + ": code[" + std::to_string(bad) + "] = " + std::to_string(codes[bad]) +
                                  " does not fit in " + std::to_string(bits) + " bits (largest " + std::to_string(max_code) + ")",
                          bad);
    }
}

/// Tag of a view's private constructor from a byte pointer and a bit offset.
struct from_bits {};

inline void require_index(std::size_t i, std::size_t size, std::string_view context) {
    if (i >= size)
        throw shape_error(std::string(context) + ": index " + std::to_string(i) + " is past the " + std::to_string(size) + " codes");
}

inline void require_same_size(std::size_t have, std::size_t want, std::string_view context) {
    if (have != want) {
        throw shape_error(std::string(context) + ": " + std::to_string(have) + " byte codes for " + std::to_string(want) + " packed codes");
    }
}

}  // namespace detail::packed

/// A view of `size()` consecutive N-bit codes of a packed stream, like std::span: it owns nothing and copying it
/// copies the reference. `Byte` is std::byte for a view that may write, const std::byte for one that reads.
template <int Bits, class Byte = std::byte>
class packed_view {
    static_assert(Bits >= min_packed_bits && Bits <= max_packed_bits, "packed_view<N> holds codes of 2 to 8 bits");
    static_assert(std::is_same_v<std::remove_const_t<Byte>, std::byte>, "packed_view's bytes are std::byte or const std::byte");
    static constexpr bool is_mutable = !std::is_const_v<Byte>;
    static constexpr auto width = static_cast<std::size_t>(Bits);

public:
    static constexpr int bits = Bits;
    /// The largest code: 2^N - 1.
    static constexpr std::uint8_t max_code = static_cast<std::uint8_t>((1u << Bits) - 1u);

    /// An empty view.
    constexpr packed_view() noexcept = default;
    /// Codes [first, first + count) of the stream that starts at `stream`. The caller vouches that the stream
    /// holds them (packed_codes::view checks it).
    packed_view(Byte* stream, std::size_t first, std::size_t count) noexcept
            : data_(stream + first * width / 8), bit_(first * width % 8), size_(count) {}

    /// A read-only view of the same codes.
    operator packed_view<Bits, const std::byte>() const noexcept requires is_mutable {
        return packed_view<Bits, const std::byte>(data_, bit_, size_, detail::packed::from_bits{});
    }

    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    /// The byte that holds the first code's first bit, and that bit's position in it (0..7).
    [[nodiscard]] Byte* data() const noexcept { return data_; }
    [[nodiscard]] std::size_t bit_offset() const noexcept { return bit_; }

    /// Code i, unchecked: i must be below size().
    [[nodiscard]] std::uint8_t operator[](std::size_t i) const noexcept { return reference::get_code(data_, bit_ + i * width, Bits); }
    /// Code i; shape_error when i is past the end.
    [[nodiscard]] std::uint8_t get(std::size_t i) const {
        detail::packed::require_index(i, size_, "packed_view::get");
        return (*this)[i];
    }
    /// Sets code i; shape_error when i is past the end, value_error (index i) when the code needs more than N bits.
    void set(std::size_t i, std::uint8_t code) const requires is_mutable {
        detail::packed::require_index(i, size_, "packed_view::set");
        if (code > max_code) {
            throw value_error("packed_view::set: code[" + std::to_string(i) + "] = " + std::to_string(code) + " does not fit in " +
                                      std::to_string(Bits) + " bits",
                              i);
        }
        reference::put_code(data_, bit_ + i * width, Bits, code);
    }

    /// Codes [first, first + count) of this view; shape_error when they are not all inside it.
    [[nodiscard]] packed_view subview(std::size_t first, std::size_t count) const {
        if (first > size_ || count > size_ - first) {
            throw shape_error("packed_view::subview: codes [" + std::to_string(first) + ", " + std::to_string(first) + " + " +
                              std::to_string(count) + ") are not inside the view's " + std::to_string(size_));
        }
        const std::size_t bit = bit_ + first * width;
        return packed_view(data_ + bit / 8, bit % 8, count, from_bits{});
    }

    /// Writes the codes, one byte each, into `out`, which must hold size() bytes (shape_error otherwise).
    void unpack_to(std::span<std::uint8_t> out) const {
        detail::packed::require_same_size(out.size(), size_, "packed_view::unpack_to");
        detail::packed::unpack(data_, bit_, size_, Bits, out.data());
    }
    /// The codes, one byte each.
    [[nodiscard]] std::vector<std::uint8_t> unpack() const {
        std::vector<std::uint8_t> out(size_);
        detail::packed::unpack(data_, bit_, size_, Bits, out.data());
        return out;
    }
    /// Replaces the codes with `codes` (one byte each, size() of them: shape_error otherwise). Every code is checked
    /// before any is written: value_error with the index of the first that needs more than N bits, the view unchanged.
    void pack_from(std::span<const std::uint8_t> codes) const requires is_mutable {
        detail::packed::require_same_size(codes.size(), size_, "packed_view::pack_from");
        detail::packed::require_codes_fit(codes, Bits, "packed_view::pack_from");
        detail::packed::pack(codes.data(), size_, Bits, data_, bit_);
    }

private:
    template <int, class>
    friend class packed_view;
    using from_bits = detail::packed::from_bits;
    packed_view(Byte* data, std::size_t bit, std::size_t count, from_bits) noexcept : data_(data), bit_(bit), size_(count) {}

    Byte* data_ = nullptr;
    std::size_t bit_ = 0;
    std::size_t size_ = 0;
};

/// A read-only view of packed N-bit codes.
template <int Bits>
using const_packed_view = packed_view<Bits, const std::byte>;

/// An owning array of N-bit codes (N = 2..8) at exactly N bits each: ceil(size N / 8) bytes. The bits after the
/// last code are always zero, so equal codes are equal bytes.
template <int Bits>
class packed_codes {
    static_assert(Bits >= min_packed_bits && Bits <= max_packed_bits, "packed_codes<N> holds codes of 2 to 8 bits");

public:
    static constexpr int bits = Bits;
    static constexpr std::uint8_t max_code = packed_view<Bits>::max_code;

    /// No codes.
    packed_codes() = default;
    /// `count` zero codes; shape_error when count N bits does not fit in std::size_t.
    explicit packed_codes(std::size_t count) : bytes_(byte_count(count, "packed_codes")), size_(count) {}
    /// Packs byte codes; value_error with the index of the first code that needs more than N bits.
    explicit packed_codes(std::span<const std::uint8_t> codes) {
        detail::packed::require_codes_fit(codes, Bits, "packed_codes");
        bytes_.resize(byte_count(codes.size(), "packed_codes"));
        size_ = codes.size();
        detail::packed::pack(codes.data(), size_, Bits, bytes_.data(), 0);
    }
    /// Adopts a packed stream of `count` codes, as bytes() gave it: shape_error unless it is ceil(count N / 8)
    /// bytes, value_error (with the byte's index) when the bits after the last code are not zero.
    [[nodiscard]] static packed_codes from_bytes(std::span<const std::byte> bytes, std::size_t count) {
        constexpr std::string_view context = "packed_codes::from_bytes";
        const std::size_t want = byte_count(count, context);
        if (bytes.size() != want) {
            throw shape_error(std::string(context) + ": " + std::to_string(bytes.size()) + " bytes for " + std::to_string(count) +
                              " codes of " + std::to_string(Bits) + " bits, which take " + std::to_string(want));
        }
        const std::size_t used = count * static_cast<std::size_t>(Bits) % 8;
        if (used != 0 && (static_cast<unsigned>(bytes.back()) >> used) != 0) {
            throw value_error(std::string(context) + ": byte " + std::to_string(want - 1) + " has bits set after the last code", want - 1);
        }
        packed_codes out;
        out.bytes_.assign(bytes.begin(), bytes.end());
        out.size_ = count;
        return out;
    }

    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    /// The packed stream: what the codes take in memory, and what from_bytes takes back.
    [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return bytes_; }
    /// Bytes of the stream: ceil(size() N / 8).
    [[nodiscard]] std::size_t storage_bytes() const noexcept { return bytes_.size(); }

    /// Code i, unchecked.
    [[nodiscard]] std::uint8_t operator[](std::size_t i) const noexcept { return view()[i]; }
    /// Code i; shape_error past the end.
    [[nodiscard]] std::uint8_t get(std::size_t i) const { return view().get(i); }
    /// Sets code i; shape_error past the end, value_error (index i) when the code needs more than N bits.
    void set(std::size_t i, std::uint8_t code) { view().set(i, code); }

    /// Every code, writable through the view.
    [[nodiscard]] packed_view<Bits> view() noexcept { return packed_view<Bits>(bytes_.data(), 0, size_); }
    [[nodiscard]] const_packed_view<Bits> view() const noexcept { return const_packed_view<Bits>(bytes_.data(), 0, size_); }
    /// Codes [first, first + count); shape_error unless they are all inside.
    [[nodiscard]] packed_view<Bits> view(std::size_t first, std::size_t count) { return view().subview(first, count); }
    [[nodiscard]] const_packed_view<Bits> view(std::size_t first, std::size_t count) const { return view().subview(first, count); }

    /// The codes, one byte each.
    [[nodiscard]] std::vector<std::uint8_t> unpack() const { return view().unpack(); }
    /// Writes the codes into `out` (size() bytes; shape_error otherwise).
    void unpack_to(std::span<std::uint8_t> out) const { view().unpack_to(out); }

    friend bool operator==(const packed_codes&, const packed_codes&) = default;

private:
    static std::size_t byte_count(std::size_t count, std::string_view context) {
        if (!packed_count_fits(count))
            throw shape_error(std::string(context) + ": " + std::to_string(count) + " codes are more than a stream can address");
        return packed_byte_count(count, Bits);
    }

    std::vector<std::byte> bytes_;
    std::size_t size_ = 0;
};

}  // namespace cogqat
