#pragma once
// The random numbers of a MOSES run: the project's own generator (core/random.hpp) rather than <random>'s
// distributions, which differ between standard libraries, so a seed gives the same run everywhere.

#include <cstdint>

#include "cogqat/core/random.hpp"

namespace cogqat::cog::moses {

/// xoshiro256** (core/random.hpp) with MOSES's own uniform in [0, 1) and stream splitting.
class rng : public xoshiro256 {
public:
    using xoshiro256::xoshiro256;

    /// Uniform double in [0, 1), with 53 random bits.
    double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

    /// A seed for an independent stream (one per deme), drawn from this one.
    std::uint64_t split() noexcept { return next() ^ 0x6a09e667f3bcc909ull; }
};

}  // namespace cogqat::cog::moses
