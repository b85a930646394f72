#pragma once
// Non-owning views over the caller's memory: a pointer, extents and strides (in elements), row-major by
// default. Nothing is copied; the caller keeps the memory alive while a view is used.

#include <array>
#include <cstddef>
#include <span>
#include <type_traits>

namespace cogqat {

/// A strided Rank-dimensional view of T. The last extent is the innermost (row) dimension.
template <class T, std::size_t Rank = 1>
class tensor_view {
    static_assert(Rank >= 1, "a tensor view has at least one dimension");

public:
    using element_type = T;
    using extents_type = std::array<std::size_t, Rank>;
    static constexpr std::size_t rank = Rank;

    constexpr tensor_view() noexcept = default;

    /// A contiguous row-major view of `extents` elements starting at `data`.
    constexpr tensor_view(T* data, const extents_type& extents) noexcept
            : data_(data), extents_(extents), strides_(row_major_strides(extents)) {}

    /// A view with explicit strides (in elements) for each dimension.
    constexpr tensor_view(T* data, const extents_type& extents, const extents_type& strides) noexcept
            : data_(data), extents_(extents), strides_(strides) {}

    /// A 1-D view over a span.
    template <class U, std::size_t N>
    requires(Rank == 1 && std::is_convertible_v<U (*)[], T (*)[]>) constexpr tensor_view(std::span<U, N> s) noexcept
            : tensor_view(s.data(), {s.size()}) {}

    /// Views of T convert to views of const T.
    template <class U>
    requires(!std::is_same_v<U, T> &&
             std::is_convertible_v<U (*)[], T (*)[]>) constexpr tensor_view(const tensor_view<U, Rank>& other) noexcept
            : data_(other.data()), extents_(other.extents()), strides_(other.strides()) {}

    [[nodiscard]] constexpr T* data() const noexcept { return data_; }
    [[nodiscard]] constexpr const extents_type& extents() const noexcept { return extents_; }
    [[nodiscard]] constexpr const extents_type& strides() const noexcept { return strides_; }
    [[nodiscard]] constexpr std::size_t extent(std::size_t dim) const noexcept { return extents_[dim]; }
    [[nodiscard]] constexpr std::size_t stride(std::size_t dim) const noexcept { return strides_[dim]; }

    /// Number of elements.
    [[nodiscard]] constexpr std::size_t size() const noexcept {
        std::size_t n = 1;
        for (auto e : extents_) n *= e;
        return n;
    }
    [[nodiscard]] constexpr bool empty() const noexcept { return size() == 0; }

    /// True when the elements are back to back in row-major order.
    [[nodiscard]] constexpr bool is_contiguous() const noexcept { return empty() || strides_ == row_major_strides(extents_); }

    /// Element access by multi-index.
    template <class... I>
    requires(sizeof...(I) == Rank && (std::is_convertible_v<I, std::size_t> && ...)) [[nodiscard]] constexpr T& operator()(
            I... index) const noexcept {
        const std::array<std::size_t, Rank> idx{static_cast<std::size_t>(index)...};
        std::size_t offset = 0;
        for (std::size_t d = 0; d < Rank; ++d) offset += idx[d] * strides_[d];
        return data_[offset];
    }

    /// Number of rows: the product of every extent but the last.
    [[nodiscard]] constexpr std::size_t rows() const noexcept { return extents_[Rank - 1] == 0 ? 0 : size() / extents_[Rank - 1]; }
    /// Length of one row (the last extent).
    [[nodiscard]] constexpr std::size_t row_length() const noexcept { return extents_[Rank - 1]; }

    /// Row `r` (rows numbered in row-major order over the leading dimensions) as a span.
    /// Requires a unit innermost stride, which every view this library makes has.
    [[nodiscard]] constexpr std::span<T> row(std::size_t r) const noexcept {
        std::size_t offset = 0;
        for (std::size_t d = Rank - 1; d-- > 0;) {
            offset += (r % extents_[d]) * strides_[d];
            r /= extents_[d];
        }
        return {data_ + offset, extents_[Rank - 1]};
    }

    /// The whole view as one span; only valid when is_contiguous().
    [[nodiscard]] constexpr std::span<T> flat() const noexcept { return {data_, size()}; }

private:
    static constexpr extents_type row_major_strides(const extents_type& extents) noexcept {
        extents_type strides{};
        std::size_t s = 1;
        for (std::size_t d = Rank; d-- > 0;) {
            strides[d] = s;
            s *= extents[d];
        }
        return strides;
    }

    T* data_ = nullptr;
    extents_type extents_{};
    extents_type strides_{};
};

template <class T, std::size_t N>
tensor_view(std::span<T, N>) -> tensor_view<T, 1>;

/// A rows x cols view.
template <class T>
using matrix_view = tensor_view<T, 2>;

/// A contiguous rows x cols view over `data`.
template <class T>
[[nodiscard]] constexpr matrix_view<T> make_matrix_view(T* data, std::size_t rows, std::size_t cols) noexcept {
    return matrix_view<T>(data, {rows, cols});
}

/// The transpose of a matrix view: the same elements, its extents and strides swapped; nothing is copied.
template <class T>
[[nodiscard]] constexpr matrix_view<T> transposed(const matrix_view<T>& v) noexcept {
    return matrix_view<T>(v.data(), {v.extent(1), v.extent(0)}, {v.stride(1), v.stride(0)});
}

}  // namespace cogqat
