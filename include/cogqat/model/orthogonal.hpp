#pragma once
// Orthogonal matrices for the exact rotations of model/rotate.hpp, built in double and seeded so that a
// rotated file can be made again bit for bit. A randomized Hadamard matrix spreads every channel over all
// the others with equal weight, which is what flattens outlier channels before rounding (QuaRot); a random
// orthogonal one does the same in distribution and exists for every width.

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/random.hpp"

namespace cogqat {

/// An n x n orthogonal matrix, row-major, in double: Q·Qᵀ = I to rounding.
struct orthogonal_matrix {
    std::size_t n = 0;
    std::vector<double> values;  ///< n * n
    std::string kind;            ///< how it was built, for reports: "hadamard 64", "hadamard 16 x random 3", "random 18"

    [[nodiscard]] double operator()(std::size_t row, std::size_t col) const noexcept { return values[row * n + col]; }
    /// max |Q·Qᵀ - I|: how far rounding has taken it from orthogonal.
    [[nodiscard]] double orthogonality_error() const {
        double worst = 0.0;
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t j = 0; j < n; ++j) {
                double dot = 0.0;
                for (std::size_t k = 0; k < n; ++k) dot += values[i * n + k] * values[j * n + k];
                worst = std::max(worst, std::fabs(dot - (i == j ? 1.0 : 0.0)));
            }
        return worst;
    }
};

/// The identity of size n.
[[nodiscard]] inline orthogonal_matrix identity_matrix(std::size_t n) {
    orthogonal_matrix q{n, std::vector<double>(n * n, 0.0), "identity " + std::to_string(n)};
    for (std::size_t i = 0; i < n; ++i) q.values[i * n + i] = 1.0;
    return q;
}

/// A Haar-distributed random orthogonal matrix of size n (Gram-Schmidt, twice, on Gaussian rows), seeded.
/// invalid_argument_error for n = 0.
[[nodiscard]] inline orthogonal_matrix random_orthogonal(std::size_t n, std::uint64_t seed) {
    if (n == 0) throw invalid_argument_error("random_orthogonal: the size must be positive");
    xoshiro256 rng(seed);
    orthogonal_matrix q{n, std::vector<double>(n * n), "random " + std::to_string(n)};
    for (auto& v : q.values) v = rng.gaussian();
    for (std::size_t i = 0; i < n; ++i) {
        double* row = q.values.data() + i * n;
        // Twice: one pass of classical Gram-Schmidt leaves errors of the order of the condition number times
        // the rounding; a second pass brings them to rounding (Giraud et al.'s "twice is enough").
        for (int pass = 0; pass < 2; ++pass)
            for (std::size_t j = 0; j < i; ++j) {
                const double* other = q.values.data() + j * n;
                double dot = 0.0;
                for (std::size_t k = 0; k < n; ++k) dot += row[k] * other[k];
                for (std::size_t k = 0; k < n; ++k) row[k] -= dot * other[k];
            }
        double norm = 0.0;
        for (std::size_t k = 0; k < n; ++k) norm += row[k] * row[k];
        norm = std::sqrt(norm);
        for (std::size_t k = 0; k < n; ++k) row[k] /= norm;
    }
    return q;
}

/// A randomized Hadamard matrix of size n = 2^k · m (m odd): diag(±1) · (H_{2^k} ⊗ R_m) / sqrt(2^k), where
/// H is Sylvester's Hadamard matrix, R_m a random orthogonal matrix (the identity for m = 1) and the signs
/// random. For a power of two it is a pure Hadamard rotation, every entry ±1/sqrt(n); otherwise the power-of-
/// two factor spreads each channel over 2^k groups and R_m mixes within each group. With no power-of-two
/// factor (n odd) it is random_orthogonal(n). invalid_argument_error for n = 0.
[[nodiscard]] inline orthogonal_matrix randomized_hadamard(std::size_t n, std::uint64_t seed) {
    if (n == 0) throw invalid_argument_error("randomized_hadamard: the size must be positive");
    const std::size_t power = std::size_t{1} << std::countr_zero(n), odd = n / power;
    if (power == 1) return random_orthogonal(n, seed);
    xoshiro256 rng(seed);
    const orthogonal_matrix r = odd == 1 ? identity_matrix(1) : random_orthogonal(odd, rng.next());
    orthogonal_matrix q{n, std::vector<double>(n * n), "hadamard " + std::to_string(power)};
    if (odd > 1) q.kind += " x random " + std::to_string(odd);
    const double scale = 1.0 / std::sqrt(static_cast<double>(power));
    for (std::size_t a = 0; a < power; ++a) {
        for (std::size_t b = 0; b < odd; ++b) {
            const double sign = (rng.next() >> 63) != 0 ? -scale : scale;
            double* row = q.values.data() + (a * odd + b) * n;
            for (std::size_t c = 0; c < power; ++c) {
                const double h = (std::popcount(a & c) & 1) != 0 ? -sign : sign;
                for (std::size_t d = 0; d < odd; ++d) row[c * odd + d] = h * r(b, d);
            }
        }
    }
    return q;
}

}  // namespace cogqat
