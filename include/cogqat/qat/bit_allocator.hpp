#pragma once
// Spending a byte budget where it buys the most accuracy: one option (a type, its size and its measured
// cost, e.g. the KL it adds) per tensor, chosen to minimize the summed cost with the summed size at most the
// budget. Solved exactly, as a multiple-choice knapsack by dynamic programming over the budget in units
// of the greatest common divisor of all option sizes.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/format/ggml_type.hpp"

namespace cogqat {

/// One way to store a tensor.
struct allocation_option {
    ggml_type type = ggml_type::f32;
    std::uint64_t bytes = 0;  ///< what it costs in the file (alignment padding included)
    double cost = 0.0;        ///< what it costs in accuracy (additive across tensors), >= 0
};

/// The choice per tensor: an index into that tensor's options.
struct allocation {
    std::vector<std::size_t> choice;
    std::uint64_t bytes = 0;
    double cost = 0.0;
};

/// Chooses one option per tensor minimizing the summed cost with summed bytes <= budget. Ties go to the
/// smaller total size. Throws invalid_argument_error when even the smallest options exceed the budget, or
/// for a tensor without options; the budget table is capped at `max_units` cells per tensor (the sizes are
/// then rounded up to a coarser unit, so the result still never exceeds the budget).
[[nodiscard]] inline allocation allocate_bits(const std::vector<std::vector<allocation_option>>& options, std::uint64_t budget,
                                              std::uint64_t max_units = 1u << 20) {
    std::uint64_t smallest = 0, unit = 0;
    for (std::size_t t = 0; t < options.size(); ++t) {
        if (options[t].empty()) throw invalid_argument_error("allocate_bits: tensor " + std::to_string(t) + " has no options");
        std::uint64_t least = std::numeric_limits<std::uint64_t>::max();
        for (const auto& o : options[t]) {
            if (!(o.cost >= 0.0))
                throw invalid_argument_error("allocate_bits: tensor " + std::to_string(t) + " has an option of negative or NaN cost");
            least = std::min(least, o.bytes);
            unit = std::gcd(unit, o.bytes);
        }
        smallest += least;
    }
    if (smallest > budget)
        throw invalid_argument_error("size target of " + std::to_string(budget) + " bytes is below the smallest possible size, " +
                                     std::to_string(smallest) + " bytes");
    if (options.empty()) return {};
    unit = std::max<std::uint64_t>(unit, 1);
    while (budget / unit > max_units) unit *= 2;
    auto units_of = [&](std::uint64_t bytes) { return (bytes + unit - 1) / unit; };  // rounded up: never over budget
    const std::size_t capacity = static_cast<std::size_t>(budget / unit);

    // best[c]: least cost of the tensors so far within c units; choice[t][c] remembers the option taken.
    constexpr double none = std::numeric_limits<double>::infinity();
    std::vector<double> best(capacity + 1, 0.0), next(capacity + 1);
    std::vector<std::vector<std::uint8_t>> taken(options.size(), std::vector<std::uint8_t>(capacity + 1));
    if (std::any_of(options.begin(), options.end(), [](const auto& o) { return o.size() > 255; }))
        throw invalid_argument_error("allocate_bits: at most 255 options per tensor");
    for (std::size_t t = 0; t < options.size(); ++t) {
        std::fill(next.begin(), next.end(), none);
        for (std::size_t k = 0; k < options[t].size(); ++k) {
            const std::size_t w = static_cast<std::size_t>(units_of(options[t][k].bytes));
            if (w > capacity) continue;
            for (std::size_t c = w; c <= capacity; ++c) {
                const double v = best[c - w] + options[t][k].cost;
                if (v < next[c]) next[c] = v, taken[t][c] = static_cast<std::uint8_t>(k);
            }
        }
        best.swap(next);
    }
    std::size_t c = capacity;
    // The least capacity reaching the optimum: ties resolve to the smaller file.
    const double optimum = best[capacity];
    if (!(optimum < none))
        throw invalid_argument_error("size target of " + std::to_string(budget) + " bytes cannot be met at this granularity");
    while (c > 0 && best[c - 1] <= optimum) --c;
    // Each stage recorded its option per capacity given the previous stage's best: walk back from the end.
    allocation a;
    a.choice.resize(options.size());
    for (std::size_t t = options.size(); t-- > 0;) {
        const std::size_t k = taken[t][c];
        a.choice[t] = k;
        c -= static_cast<std::size_t>(units_of(options[t][k].bytes));
    }
    for (std::size_t t = 0; t < options.size(); ++t) a.bytes += options[t][a.choice[t]].bytes, a.cost += options[t][a.choice[t]].cost;
    return a;
}

}  // namespace cogqat
