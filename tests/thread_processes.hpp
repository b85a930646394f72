#pragma once
// Several processes as threads of this one, for the tests of work shared over a process_group: the exchanges
// go through shared memory between barriers, so a test runs the MPI code paths without MPI.

#include <algorithm>
#include <barrier>
#include <cstddef>
#include <span>
#include <vector>

#include "cogqat/core/process_group.hpp"

namespace cogqat::test {

/// What the `n` thread processes share.
struct thread_processes {
    explicit thread_processes(std::size_t n) : sync(static_cast<std::ptrdiff_t>(n)), shares(n) {}
    std::barrier<> sync;
    std::vector<std::vector<float>> shares;
    std::vector<std::byte> broadcast;
};

/// Rank `rank` of `all`: each thread that plays a process holds one.
class thread_process final : public process_group {
public:
    thread_process(thread_processes& all, std::size_t rank) : all_(&all), rank_(rank) {}
    [[nodiscard]] std::size_t rank() const noexcept override { return rank_; }
    [[nodiscard]] std::size_t size() const noexcept override { return all_->shares.size(); }
    void all_gather(std::span<const float> mine, std::span<float> all) const override {
        require_gather_sizes(mine, all);
        all_->shares[rank_].assign(mine.begin(), mine.end());
        all_->sync.arrive_and_wait();
        for (std::size_t r = 0; r < size(); ++r)
            std::copy(all_->shares[r].begin(), all_->shares[r].end(), all.begin() + static_cast<std::ptrdiff_t>(r * mine.size()));
        all_->sync.arrive_and_wait();
    }
    void broadcast(std::span<std::byte> data, std::size_t root) const override {
        require_root(root);
        if (rank_ == root) all_->broadcast.assign(data.begin(), data.end());
        all_->sync.arrive_and_wait();
        if (rank_ != root) std::copy_n(all_->broadcast.begin(), std::min(data.size(), all_->broadcast.size()), data.begin());
        all_->sync.arrive_and_wait();
    }
    void barrier() const override { all_->sync.arrive_and_wait(); }

private:
    thread_processes* all_;
    std::size_t rank_;
};

}  // namespace cogqat::test
