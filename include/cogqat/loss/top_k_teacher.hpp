#pragma once
// A sparse teacher: per row, the k largest teacher logits and their vocabulary indices (say the top 64 of
// 32,000), which is what a distillation set stores instead of every logit. The KL losses (loss/kl_loss.hpp)
// take it in place of a dense teacher row.
//
// What the teacher's remaining mass becomes: nothing. The teacher distribution is the softmax of its k
// logits at the temperature, i.e. the full teacher restricted to its top k and renormalized; the student
// keeps its softmax over the whole vocabulary. So KL = Σ_j p_j (log p_j - log q_{idx_j}) over the k entries,
// and its exact gradient with respect to the student logits is (q - p) / T, p being 0 outside the k indices.
// The student is thereby pushed to put all its mass on the teacher's top k; with k = vocab this is the dense
// KL. (Logits alone do not say how much mass the tail had, so a tail bucket would need the teacher's full
// normalizer stored as well.)

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "cogqat/core/error.hpp"

namespace cogqat {

/// A view of `rows` top-k teacher rows: row r's entries are indices[r*k, r*k + k) and logits[r*k, r*k + k).
/// Indices are vocabulary positions, distinct within a row and in [0, vocab); their order does not matter.
/// The losses check all of this and throw (shape_error, value_error with the entry's index).
struct top_k_teacher {
    std::span<const std::int32_t> indices;  ///< rows * k vocabulary indices
    std::span<const float> logits;          ///< rows * k teacher logits, the same order
    std::size_t k = 0;                      ///< entries per row

    /// Number of rows (0 when k is 0).
    [[nodiscard]] std::size_t rows() const noexcept { return k == 0 ? 0 : indices.size() / k; }
    /// Row r alone, as a one-row view.
    [[nodiscard]] top_k_teacher row(std::size_t r) const { return {indices.subspan(r * k, k), logits.subspan(r * k, k), k}; }
};

/// A top-k teacher that owns its entries: what top_k_of builds from dense logits.
struct top_k_logits {
    std::vector<std::int32_t> indices;  ///< rows * k vocabulary indices, each row's by descending logit
    std::vector<float> logits;          ///< the teacher logits at those indices
    std::size_t k = 0;                  ///< entries per row

    /// The view the losses take.
    [[nodiscard]] top_k_teacher view() const noexcept { return {indices, logits, k}; }
};

/// The k largest logits of every row of `vocab` logits, largest first (ties: the lower index first), for
/// storing a teacher sparsely. Throws shape_error when vocab is 0, the size is not a non-zero multiple of
/// vocab, or k is not in [1, vocab].
[[nodiscard]] inline top_k_logits top_k_of(std::span<const float> dense, std::size_t vocab, std::size_t k) {
    if (vocab == 0 || dense.empty() || dense.size() % vocab != 0) {
        throw shape_error("top_k_of: " + std::to_string(dense.size()) + " logits are not a non-zero multiple of vocab " +
                          std::to_string(vocab));
    }
    if (k == 0 || k > vocab) {
        throw shape_error("top_k_of: k = " + std::to_string(k) + " for a vocabulary of " + std::to_string(vocab) +
                          "; k must be in [1, vocab]");
    }
    const std::size_t rows = dense.size() / vocab;
    top_k_logits out{std::vector<std::int32_t>(rows * k), std::vector<float>(rows * k), k};
    std::vector<std::int32_t> order(vocab);
    for (std::size_t r = 0; r < rows; ++r) {
        const auto row = dense.subspan(r * vocab, vocab);
        std::iota(order.begin(), order.end(), 0);
        const auto by_value = [&](std::int32_t x, std::int32_t y) {
            const float vx = row[static_cast<std::size_t>(x)], vy = row[static_cast<std::size_t>(y)];
            return vx > vy || (vx == vy && x < y);
        };
        std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(), by_value);
        for (std::size_t j = 0; j < k; ++j) {
            out.indices[r * k + j] = order[j];
            out.logits[r * k + j] = row[static_cast<std::size_t>(order[j])];
        }
    }
    return out;
}

}  // namespace cogqat
