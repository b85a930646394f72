#pragma once
// Reproducible test data: the same numbers with every standard library (std::*_distribution is not).

#include <cmath>
#include <cstdint>
#include <vector>

namespace cogqat::test {

/// splitmix64: small, fast and fully specified.
class rng {
public:
    explicit rng(std::uint64_t seed) : state_(seed) {}
    std::uint64_t next() {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    /// Uniform in (0, 1).
    double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1p-53; }
    double gaussian() { return std::sqrt(-2.0 * std::log(uniform())) * std::cos(6.283185307179586 * uniform()); }
    double laplace() {
        const double u = uniform() - 0.5;
        return (u < 0 ? 1.0 : -1.0) * std::log(1.0 - 2.0 * std::fabs(u));
    }

private:
    std::uint64_t state_;
};

inline std::vector<float> gaussian_values(std::size_t n, std::uint64_t seed, double scale = 1.0) {
    rng r(seed);
    std::vector<float> v(n);
    for (auto& x : v) x = static_cast<float>(scale * r.gaussian());
    return v;
}

inline std::vector<float> laplace_with_outliers(std::size_t n, std::uint64_t seed) {
    rng r(seed);
    std::vector<float> v(n);
    for (auto& x : v) x = static_cast<float>(r.laplace());
    for (std::size_t i = 37; i < n; i += 301) v[i] *= 40.0f;
    return v;
}

/// n values of both signs, uniform in ±0.5 times 2^e, e uniform in [min_exponent, min_exponent + exponents):
/// magnitudes over several orders, whose products a fused multiply-add rounds differently from the
/// reference's two roundings (the tests that hold a kernel to an unfused or fused reference bit for bit).
template <class T>
std::vector<T> spread_values(std::size_t n, std::uint64_t seed, int min_exponent, int exponents) {
    rng r(seed);
    std::vector<T> v(n);
    for (auto& x : v)
        x = static_cast<T>(
                std::ldexp(r.uniform() - 0.5, static_cast<int>(r.next() % static_cast<std::uint64_t>(exponents)) + min_exponent));
    return v;
}

}  // namespace cogqat::test
