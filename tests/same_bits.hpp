#pragma once
// Bit-for-bit comparison of two arrays of floating-point values, for the tests that hold a kernel to its scalar
// reference: equal values are not enough (0.0 and -0.0, NaN payloads), the bits are.

#include <cstddef>
#include <cstring>
#include <span>

namespace cogqat::test {

/// Whether a and b have the same length and the same bits.
template <class T>
[[nodiscard]] bool same_bits(std::span<const T> a, std::span<const T> b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

/// The first index where the bits of a and b differ (the shorter length where none does), for a failure message.
template <class T>
[[nodiscard]] std::size_t first_difference(std::span<const T> a, std::span<const T> b) {
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i)
        if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0) return i;
    return a.size() < b.size() ? a.size() : b.size();
}

}  // namespace cogqat::test
