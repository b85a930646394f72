#pragma once
// The processes one run is shared among: this process alone, or the ranks of an MPI job
// (core/mpi_process_group.hpp). Work that is split over processes meets again through all_gather, whose result
// is in rank order on every process, so that what the processes then compute from it is the same everywhere
// and the same as one process computing it alone.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/parallel.hpp"

namespace cogqat {

class process_group {
public:
    virtual ~process_group() = default;

    [[nodiscard]] virtual std::size_t rank() const noexcept = 0;
    [[nodiscard]] virtual std::size_t size() const noexcept = 0;

    /// Every process passes `mine`, of the same length everywhere; `all` (size() times that) receives every
    /// process's in rank order. Collective: each process calls it, in the same order as the others. Throws
    /// shape_error when `all` is not size() times `mine`.
    virtual void all_gather(std::span<const float> mine, std::span<float> all) const = 0;

    /// `root`'s `data` lands in every process's `data`, of the same length everywhere. Collective. Throws
    /// invalid_argument_error when `root` is not a rank.
    virtual void broadcast(std::span<std::byte> data, std::size_t root) const = 0;

    /// Returns once every process has called it.
    virtual void barrier() const = 0;

    /// Whether this process writes what the run produces (files, reports): rank 0.
    [[nodiscard]] bool leads() const noexcept { return rank() == 0; }

protected:
    void require_root(std::size_t root) const {
        if (root >= size())
            throw invalid_argument_error("process_group::broadcast: root " + std::to_string(root) + " of " + std::to_string(size()) +
                                         " processes");
    }

    void require_gather_sizes(std::span<const float> mine, std::span<float> all) const {
        if (all.size() != mine.size() * size())
            throw shape_error("process_group::all_gather: " + std::to_string(all.size()) + " values to receive " + std::to_string(size()) +
                              " x " + std::to_string(mine.size()));
    }
};

/// This process alone.
class single_process final : public process_group {
public:
    [[nodiscard]] std::size_t rank() const noexcept override { return 0; }
    [[nodiscard]] std::size_t size() const noexcept override { return 1; }
    void all_gather(std::span<const float> mine, std::span<float> all) const override {
        require_gather_sizes(mine, all);
        std::copy(mine.begin(), mine.end(), all.begin());
    }
    void broadcast(std::span<std::byte>, std::size_t root) const override { require_root(root); }
    void barrier() const override {}
};

/// `root`'s `value` in every process's `value`.
template <class T>
requires std::is_trivially_copyable_v<T>
void broadcast_value(const process_group& processes, T& value, std::size_t root) {
    processes.broadcast(std::as_writable_bytes(std::span<T>(&value, 1)), root);
}

/// `root`'s `bytes`, whatever their length, in every process's `bytes`: the length goes first.
inline void broadcast_bytes(const process_group& processes, std::vector<std::byte>& bytes, std::size_t root) {
    auto length = static_cast<std::uint64_t>(bytes.size());
    broadcast_value(processes, length, root);
    bytes.resize(static_cast<std::size_t>(length));
    processes.broadcast(bytes, root);
}

/// The groups of a step's work this process computes: g % size() == rank(), in ascending order.
[[nodiscard]] inline std::vector<std::size_t> own_groups(std::size_t groups, const process_group& processes) {
    std::vector<std::size_t> own;
    for (std::size_t g = processes.rank(); g < groups; g += processes.size()) own.push_back(g);
    return own;
}

/// How many of its groups this process runs at once: at most `threads`, at most its groups, at least 1. A
/// caller keeps this many slots of buffers, one per group in flight.
[[nodiscard]] inline std::size_t group_wave(std::size_t groups, unsigned threads, const process_group& processes) {
    const std::size_t own = own_groups(groups, processes).size();
    return std::max<std::size_t>(1, std::min<std::size_t>(std::max(1u, threads), own));
}

/// Calls work(g, k) for each of this process's groups g, group_wave() of them at once, k being g's slot in its
/// wave; after each wave, done(i, k) for the wave's groups in order, i being g's place among own_groups().
template <class Work, class Done>
void for_own_groups(std::size_t groups, unsigned threads, const process_group& processes, Work&& work, Done&& done) {
    const auto own = own_groups(groups, processes);
    const std::size_t wave = group_wave(groups, threads, processes);
    for (std::size_t first = 0; first < own.size(); first += wave) {
        const std::size_t count = std::min(wave, own.size() - first);
        parallel_for(count, static_cast<unsigned>(count), [&](std::size_t begin, std::size_t end) {
            for (std::size_t k = begin; k < end; ++k) work(own[first + k], k);
        });
        for (std::size_t k = 0; k < count; ++k) done(first + k, k);
    }
}

/// A sum over `groups` groups of work with the same bits whichever thread or process computed each group: the
/// groups are added to the total in group order. compute(g, k) computes group g into slot k (< group_wave())
/// and returns its loss. On one process, add(k) adds slot k to the total as soon as its wave is done; over
/// several, flatten(k, span) writes slot k as `n` floats, all_gather gives every process every group's, and
/// add_flat(span) adds each in group order. Returns the groups' losses summed in group order (over several
/// processes, each travels as a float).
template <class Compute, class Add, class Flatten, class AddFlat>
double sum_groups_in_order(std::size_t groups, std::size_t n, unsigned threads, const process_group& processes, Compute&& compute,
                           Add&& add, Flatten&& flatten, AddFlat&& add_flat) {
    const std::size_t ranks = processes.size();
    std::vector<double> in_wave(group_wave(groups, threads, processes)), losses(ranks == 1 ? groups : 0);
    const std::size_t per_rank = (groups + ranks - 1) / ranks, stride = n + 1;
    std::vector<float> mine(ranks == 1 ? 0 : per_rank * stride, 0.0f);
    const auto own = own_groups(groups, processes);
    for_own_groups(
            groups, threads, processes, [&](std::size_t g, std::size_t k) { in_wave[k] = compute(g, k); },
            [&](std::size_t i, std::size_t k) {
                if (ranks == 1) {
                    add(k);
                    losses[own[i]] = in_wave[k];
                    return;
                }
                const std::span<float> slot(mine.data() + i * stride, stride);
                flatten(k, slot.first(n));
                slot[n] = static_cast<float>(in_wave[k]);
            });
    double loss = 0.0;
    if (ranks == 1) {
        for (double v : losses) loss += v;
        return loss;
    }
    std::vector<float> all(mine.size() * ranks);
    processes.all_gather(mine, all);
    for (std::size_t g = 0; g < groups; ++g) {
        const std::size_t r = g % ranks, i = g / ranks;
        const std::span<const float> slot(all.data() + (r * per_rank + i) * stride, stride);
        add_flat(slot.first(n));
        loss += slot[n];
    }
    return loss;
}

}  // namespace cogqat
