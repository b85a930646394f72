#pragma once
// The random numbers of a MOSES run. <random>'s engines are fixed by the standard but its distributions are
// not, so a run seeded the same way could take different paths under libstdc++ and libc++; this generator
// and its conversions are written out here, and a seed gives the same run everywhere.

#include <cstdint>

namespace cogqat::moses {

/// xoshiro256** (Blackman and Vigna), seeded through splitmix64 so that any 64-bit seed, 0 included, gives
/// a well-mixed state.
class rng {
public:
    explicit rng(std::uint64_t seed) noexcept {
        for (auto& s : state_) {
            seed += 0x9e3779b97f4a7c15ull;
            std::uint64_t z = seed;
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            s = z ^ (z >> 31);
        }
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

    /// Uniform integer in [0, n); 0 when n is 0. Draws below 2^64 mod n are rejected, so every residue is
    /// equally likely.
    std::uint64_t below(std::uint64_t n) noexcept {
        if (n <= 1) return 0;
        const std::uint64_t threshold = (0 - n) % n;
        std::uint64_t x = next();
        while (x < threshold) x = next();
        return x % n;
    }

    /// Uniform double in [0, 1), with 53 random bits.
    double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

    /// A seed for an independent stream (one per deme), drawn from this one.
    std::uint64_t split() noexcept { return next() ^ 0x6a09e667f3bcc909ull; }

private:
    static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
    std::uint64_t state_[4]{};
};

} // namespace cogqat::moses
