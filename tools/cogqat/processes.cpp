#include "processes.hpp"

#include <cstdlib>
#include <memory>

#include <cogqat/core/error.hpp>

#ifdef COGQAT_WITH_MPI
#include <cogqat/core/mpi_process_group.hpp>
#endif

namespace cogqat::cli {

namespace {

std::unique_ptr<process_group>& current() {
    static std::unique_ptr<process_group> group = std::make_unique<single_process>();
    return group;
}

/// Whether an MPI launcher started this process: Open MPI's, or a PMI/PMIx one's (MPICH, Slurm).
[[maybe_unused]] bool launched_by_mpi() {
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
        if (std::getenv(name)) return true;
    return false;
}

}  // namespace

void start_processes([[maybe_unused]] int* argc, [[maybe_unused]] char*** argv) {
#ifdef COGQAT_WITH_MPI
    if (launched_by_mpi()) current() = std::make_unique<mpi_process_group>(argc, argv);
#endif
}

const process_group& processes() { return *current(); }

void require_one_process() {
    if (processes().size() > 1)
        throw invalid_argument_error(
                "only `cogqat qat --blockwise` and `cogqat quantize --auto` share their work among MPI ranks; run this "
                "command as one process");
}

void end_processes_after_failure([[maybe_unused]] int status) {
#ifdef COGQAT_WITH_MPI
    if (const auto* mpi = dynamic_cast<const mpi_process_group*>(current().get()); mpi && mpi->size() > 1) mpi->abort(status);
#endif
}

}  // namespace cogqat::cli
