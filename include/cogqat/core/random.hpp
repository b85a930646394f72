#pragma once
// Reproducible random numbers: <random>'s engines are fixed by the standard but its distributions are not,
// so the generator and its conversions to uniform, Gaussian and Laplace values are written out here. A seed
// gives the same integers everywhere; real-valued samples are the same up to the last-ulp accuracy of the
// platform's std::log, std::cos and std::sqrt.

#include <cmath>
#include <cstdint>

namespace cogqat {

/// xoshiro256** (Blackman and Vigna, 2018), its 256-bit state filled from the seed by splitmix64 so that every
/// 64-bit seed, 0 included, gives a well-mixed state.
class xoshiro256 {
public:
    explicit xoshiro256(std::uint64_t seed) noexcept {
        for (auto& s : state_) s = splitmix64(seed);
    }

    /// splitmix64 (Steele, Lea and Flood): advances `state` by the golden-ratio increment and returns the
    /// mixed value. Also used to derive independent seeds.
    [[nodiscard]] static constexpr std::uint64_t splitmix64(std::uint64_t& state) noexcept {
        std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }

    /// 64 random bits.
    std::uint64_t next() noexcept {
        const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
        const std::uint64_t t = state_[1] << 17;
        state_[2] ^= state_[0];
        state_[3] ^= state_[1];
        state_[1] ^= state_[2];
        state_[0] ^= state_[3];
        state_[2] ^= t;
        state_[3] = rotl(state_[3], 45);
        return result;
    }

    /// Uniform integer in [0, n), 0 when n <= 1. Draws below 2^64 mod n are rejected, so every value is
    /// exactly equally likely.
    std::uint64_t below(std::uint64_t n) noexcept {
        if (n <= 1) return 0;
        const std::uint64_t threshold = (0 - n) % n;
        std::uint64_t x = next();
        while (x < threshold) x = next();
        return x % n;
    }

    /// Uniform double in the open interval (0, 1): (k + 1/2) / 2^53 for 53 random bits k, never 0 or 1, so
    /// its logarithm is always finite.
    double uniform() noexcept { return (static_cast<double>(next() >> 11) + 0.5) * 0x1p-53; }

    /// Standard normal by Box-Muller, one value per two uniforms: sqrt(-2 ln u1) * cos(2 pi u2).
    double gaussian() noexcept {
        const double radius = std::sqrt(-2.0 * std::log(uniform()));
        return radius * std::cos(6.283185307179586476925 * uniform());
    }

    /// Laplace with location 0 and scale 1 (variance 2) by inverting its distribution function:
    /// u - 1/2 = v, x = -sign(v) ln(1 - 2|v|). v is never 0 or +-1/2 for uniform()'s values.
    double laplace() noexcept {
        const double v = uniform() - 0.5;
        const double magnitude = -std::log(1.0 - 2.0 * std::fabs(v));
        return v < 0.0 ? -magnitude : magnitude;
    }

private:
    static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
    std::uint64_t state_[4]{};
};

}  // namespace cogqat
