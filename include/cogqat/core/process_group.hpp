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

}  // namespace cogqat
