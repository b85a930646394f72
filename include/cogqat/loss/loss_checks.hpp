#pragma once
// The input checks every distillation loss runs before any arithmetic, shared by the free functions
// (loss/kl_divergence.hpp) and the policy types (loss/kl_loss.hpp), so that both backends reject the same
// inputs with the same messages: what is wrong, with the numbers, and for a bad value its index.

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cogqat/core/error.hpp"

namespace cogqat::detail::loss {

/// Shortest text that reads back as `x` (std::to_string would print 1e-30 as 0.000000).
inline std::string format_float(float x) {
    std::array<char, 32> buffer{};
    const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), x);
    return std::string(buffer.data(), result.ptr);
}

/// Exponent bits all ones: Inf or NaN. Tested on the bits rather than with std::isfinite so that the check
/// survives -ffinite-math-only (part of -ffast-math), under which the compiler may assume isfinite is true.
inline bool non_finite_bits(float x) noexcept { return (std::bit_cast<std::uint32_t>(x) & 0x7f800000u) == 0x7f800000u; }

inline void check_temperature(const char* function, float temperature) {
    if (non_finite_bits(temperature) || temperature <= 0.0f) {
        throw invalid_argument_error(std::string(function) + ": temperature must be positive and finite, got " + format_float(temperature));
    }
}

inline void check_kl_weight(const char* function, float kl_weight) {
    if (non_finite_bits(kl_weight) || kl_weight < 0.0f || kl_weight > 1.0f) {
        throw invalid_argument_error(std::string(function) + ": kl_weight must be in [0, 1], got " + format_float(kl_weight));
    }
}

inline void check_same_size(const char* function, std::size_t teacher, std::size_t student) {
    if (teacher == 0 || teacher != student) {
        throw shape_error(std::string(function) + ": " + std::to_string(teacher) + " teacher logits and " + std::to_string(student) +
                          " student logits; they must be the same, non-zero number");
    }
}

inline void check_target(const char* function, std::int32_t target, std::size_t logits) {
    if (target < 0 || static_cast<std::size_t>(target) >= logits) {
        throw invalid_argument_error(std::string(function) + ": target " + std::to_string(target) + " is out of range for " +
                                     std::to_string(logits) + " logits");
    }
}

/// The gradient buffer holds one value per logit, or none where the gradient is optional (`required` false).
inline void check_gradient_size(const char* function, std::size_t logits, std::size_t gradient, bool required = false) {
    if ((gradient != 0 || required) && gradient != logits) {
        throw shape_error(std::string(function) + ": the gradient buffer has " + std::to_string(gradient) + " values for " +
                          std::to_string(logits) + " logits");
    }
}

/// Rows of `vocab` logits: vocab positive, the size a non-zero multiple of it.
inline void check_rows(const char* function, std::size_t logits, std::size_t vocab) {
    if (vocab == 0) throw shape_error(std::string(function) + ": vocab must be positive");
    if (logits % vocab != 0) {
        throw shape_error(std::string(function) + ": " + std::to_string(logits) + " logits are not a multiple of vocab " +
                          std::to_string(vocab));
    }
}

/// Throws value_error at the first NaN or Inf. The scan is a branch-free OR, so the common all-finite case
/// costs one vectorizable pass; only a bad input pays for the second, searching pass.
inline void check_finite(const char* function, const char* name, std::span<const float> x) {
    std::uint32_t non_finite = 0;
    for (const float v : x) non_finite |= static_cast<std::uint32_t>(non_finite_bits(v));
    if (non_finite == 0) return;
    for (std::size_t i = 0; i < x.size(); ++i) {
        if (non_finite_bits(x[i])) {
            const std::uint32_t bits = std::bit_cast<std::uint32_t>(x[i]);
            const char* what = (bits & 0x007fffffu) != 0 ? "NaN" : (bits >> 31) != 0 ? "-Inf" : "+Inf";
            throw value_error(std::string(function) + ": " + name + "[" + std::to_string(i) + "] is " + what + "; logits must be finite",
                              i);
        }
    }
}

/// A top-k teacher of `rows` rows against a vocabulary of `vocab`: k in [1, vocab], as many indices as
/// logits (rows * k), every index in [0, vocab) and distinct within its row. value_error's index counts
/// entries from the start of `indices`.
inline void check_top_k(const char* function, std::span<const std::int32_t> indices, std::size_t logits, std::size_t k, std::size_t rows,
                        std::size_t vocab) {
    if (k == 0 || k > vocab) {
        throw shape_error(std::string(function) + ": top-k teacher with k = " + std::to_string(k) + " for a vocabulary of " +
                          std::to_string(vocab) + "; k must be in [1, vocab]");
    }
    if (indices.size() != logits || indices.size() != rows * k) {
        throw shape_error(std::string(function) + ": top-k teacher with " + std::to_string(indices.size()) + " indices and " +
                          std::to_string(logits) + " logits for " + std::to_string(rows) + " rows of k = " + std::to_string(k));
    }
    std::vector<unsigned char> seen(vocab, 0);  // cleared row by row, so one allocation serves the batch
    for (std::size_t r = 0; r < rows; ++r) {
        const auto row = indices.subspan(r * k, k);
        std::size_t bad = k;
        std::string what;
        for (std::size_t j = 0; j < k && bad == k; ++j) {
            const std::int32_t index = row[j];
            if (index < 0 || static_cast<std::size_t>(index) >= vocab) {
                bad = j;
                what = "index " + std::to_string(index) + " is outside the vocabulary of " + std::to_string(vocab);
            } else if (seen[static_cast<std::size_t>(index)] != 0) {
                bad = j;
                what = "index " + std::to_string(index) + " appears twice in row " + std::to_string(r);
            } else {
                seen[static_cast<std::size_t>(index)] = 1;
            }
        }
        for (std::size_t j = 0; j < bad; ++j) seen[static_cast<std::size_t>(row[j])] = 0;
        if (bad != k) {
            const std::size_t at = r * k + bad;
            throw value_error(std::string(function) + ": top-k teacher indices[" + std::to_string(at) + "]: " + what, at);
        }
    }
}

}  // namespace cogqat::detail::loss
