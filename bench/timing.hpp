#pragma once
// The benchmarks' own timing: wall time of a number of calls, and the median of repeated measurements, which
// the side-by-side benchmarks take of their paired ratios so that one descheduled run does not move them.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <iterator>
#include <limits>
#include <vector>

namespace cogqat::bench {

using steady = std::chrono::steady_clock;

/// Seconds that `calls` calls of f() take.
template <class F>
double time_calls(F& f, std::size_t calls) {
    const auto start = steady::now();
    for (std::size_t i = 0; i < calls; ++i) f();
    return std::chrono::duration<double>(steady::now() - start).count();
}

/// The median (the mean of the two middle values for an even count); NaN for none.
inline double median(std::vector<double> v) {
    if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
    const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
    std::nth_element(v.begin(), mid, v.end());
    if (v.size() % 2) return *mid;
    return 0.5 * (*mid + *std::max_element(v.begin(), mid));
}

}  // namespace cogqat::bench
