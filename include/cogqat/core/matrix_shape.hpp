#pragma once
// The one description of a matrix: rows x cols, row-major, cols being the row length (GGUF's ne[0], the
// input width of a weight). The runtime's weight_matrix, the trainer's trainable_tensor and views of
// llama_parameters are matrix_shapes with their storage; a float_tensor's GGUF ne and a tensor_schema give
// one. A vector is a 1 x n matrix.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cogqat/core/checked.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/tensor_view.hpp"

namespace cogqat {

/// "[a, b, ...]": a tensor's extents (GGUF's order, innermost first), as messages and listings print them.
[[nodiscard]] inline std::string shape_text(std::span<const std::uint64_t> extents) {
    std::string text = "[";
    for (std::size_t d = 0; d < extents.size(); ++d) text += (d ? ", " : "") + std::to_string(extents[d]);
    return text + "]";
}

struct matrix_shape {
    std::size_t rows = 0;
    std::size_t cols = 0;  ///< the row length: GGUF's ne[0]

    [[nodiscard]] constexpr std::size_t elements() const noexcept { return rows * cols; }
    [[nodiscard]] constexpr bool is_vector() const noexcept { return rows == 1; }
    /// The shape alone, for the types that are a matrix_shape with storage (weight_matrix, trainable_tensor).
    [[nodiscard]] constexpr const matrix_shape& shape() const noexcept { return *this; }
    friend constexpr bool operator==(const matrix_shape&, const matrix_shape&) = default;

    /// The shape of a tensor of GGUF dimensions `ne` (ne[0] innermost): {n} is 1 x n, {n, m} is m x n.
    /// shape_error for more than two dimensions, none, or an element count that does not fit in memory.
    [[nodiscard]] static matrix_shape from_gguf(std::span<const std::uint64_t> ne) {
        if (ne.empty() || ne.size() > 2) throw shape_error("a matrix has one or two dimensions, not " + std::to_string(ne.size()));
        const std::uint64_t rows = ne.size() == 2 ? ne[1] : 1;
        const auto elements = checked_mul(ne[0], rows);
        if (!elements || *elements > SIZE_MAX / sizeof(float))
            throw shape_error("a " + std::to_string(rows) + " x " + std::to_string(ne[0]) + " matrix does not fit in memory");
        return {static_cast<std::size_t>(rows), static_cast<std::size_t>(ne[0])};
    }

    /// GGUF's ne: {cols} for a vector written 1-D, else {cols, rows}.
    [[nodiscard]] std::vector<std::uint64_t> gguf_ne(bool one_dimensional) const {
        if (one_dimensional) return {cols};
        return {cols, rows};
    }

    /// A row-major view of `values` with this shape; shape_error unless they are exactly rows x cols.
    template <class T>
    [[nodiscard]] matrix_view<T> view(std::span<T> values) const {
        if (values.size() != elements())
            throw shape_error(std::to_string(values.size()) + " values for a " + std::to_string(rows) + " x " + std::to_string(cols) +
                              " matrix");
        return make_matrix_view(values.data(), rows, cols);
    }
};

/// The shape of a rows x cols view.
template <class T>
[[nodiscard]] constexpr matrix_shape shape_of(const matrix_view<T>& view) noexcept {
    return {view.extent(0), view.extent(1)};
}

}  // namespace cogqat
