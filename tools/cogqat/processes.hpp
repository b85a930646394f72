#pragma once
// The processes `cogqat` runs as: this one alone, or, when the tool was built with MPI and started by mpirun,
// the ranks of the MPI job. Only `qat --blockwise` shares its work among ranks; its leading rank writes the
// files and the report.

#include <cogqat/core/process_group.hpp>

namespace cogqat::cli {

/// Joins the MPI job when mpirun (or another MPI launcher) started this process; call first in main.
void start_processes(int* argc, char*** argv);

/// The processes of this run (single_process unless start_processes joined an MPI job of several ranks).
[[nodiscard]] const process_group& processes();

/// After a failure on one rank, ends every rank of the job, which would otherwise wait for it in a collective.
void end_processes_after_failure(int status);

}  // namespace cogqat::cli
