#pragma once
// The ranks of MPI_COMM_WORLD as a process_group. Needs <mpi.h> and linking MPI (CMake: cogqat::mpi, defined
// when find_package(MPI) finds it); the rest of the library never includes this header.

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/process_group.hpp"

namespace cogqat {

class mpi_process_group final : public process_group {
public:
    /// Initializes MPI unless it already is (then the caller finalizes it); finalizes it on destruction when
    /// this object initialized it. Throws io_error when MPI cannot start.
    mpi_process_group(int* argc, char*** argv) {
        int initialized = 0;
        MPI_Initialized(&initialized);
        if (!initialized) {
            int provided = 0;
            if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) throw io_error("MPI: MPI_Init_thread failed");
            owns_ = true;
        }
        int rank = 0, size = 1;
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &size);
        rank_ = static_cast<std::size_t>(rank), size_ = static_cast<std::size_t>(size);
    }
    mpi_process_group(const mpi_process_group&) = delete;
    mpi_process_group& operator=(const mpi_process_group&) = delete;
    ~mpi_process_group() override {
        if (owns_) MPI_Finalize();
    }

    [[nodiscard]] std::size_t rank() const noexcept override { return rank_; }
    [[nodiscard]] std::size_t size() const noexcept override { return size_; }

    void all_gather(std::span<const float> mine, std::span<float> all) const override {
        require_gather_sizes(mine, all);
        // MPI counts are ints: long vectors go in pieces, each gathered into its place in every rank's share.
        const std::size_t piece = static_cast<std::size_t>(INT_MAX) / size_;
        std::vector<float> received;
        for (std::size_t first = 0; first < mine.size() || (first == 0 && mine.empty()); first += piece) {
            const std::size_t n = std::min(piece, mine.size() - first);
            received.resize(n * size_);
            if (MPI_Allgather(mine.data() + first, static_cast<int>(n), MPI_FLOAT, received.data(), static_cast<int>(n), MPI_FLOAT,
                              MPI_COMM_WORLD) != MPI_SUCCESS)
                throw io_error("MPI: MPI_Allgather of " + std::to_string(n) + " values failed");
            for (std::size_t r = 0; r < size_; ++r)
                std::copy(received.begin() + static_cast<std::ptrdiff_t>(r * n),
                          received.begin() + static_cast<std::ptrdiff_t>((r + 1) * n),
                          all.begin() + static_cast<std::ptrdiff_t>(r * mine.size() + first));
            if (mine.empty()) break;
        }
    }

    void broadcast(std::span<std::byte> data, std::size_t root) const override {
        require_root(root);
        constexpr std::size_t piece = INT_MAX;  // MPI counts are ints
        for (std::size_t first = 0; first < data.size(); first += piece) {
            const std::size_t n = std::min(piece, data.size() - first);
            if (MPI_Bcast(data.data() + first, static_cast<int>(n), MPI_BYTE, static_cast<int>(root), MPI_COMM_WORLD) != MPI_SUCCESS)
                throw io_error("MPI: MPI_Bcast of " + std::to_string(n) + " bytes failed");
        }
    }

    void barrier() const override {
        if (MPI_Barrier(MPI_COMM_WORLD) != MPI_SUCCESS) throw io_error("MPI: MPI_Barrier failed");
    }

    /// Ends every rank of the job (a rank that failed alone would leave the others waiting in a collective).
    [[noreturn]] void abort(int code) const noexcept {
        MPI_Abort(MPI_COMM_WORLD, code);
        std::abort();
    }

private:
    std::size_t rank_ = 0, size_ = 1;
    bool owns_ = false;
};

}  // namespace cogqat
