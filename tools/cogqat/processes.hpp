#pragma once
// The processes `cogqat` runs as: this one alone, or, when the tool was built with MPI and started by mpirun,
// the ranks of the MPI job. `qat --blockwise` and `quantize --auto` share their work among ranks; the leading
// rank writes the files and the report. The other commands refuse to run on several.

#include <cogqat/core/process_group.hpp>

namespace cogqat::cli {

/// Joins the MPI job when mpirun (or another MPI launcher) started this process; call first in main.
void start_processes(int* argc, char*** argv);

/// The processes of this run (single_process unless start_processes joined an MPI job of several ranks).
[[nodiscard]] const process_group& processes();

/// Refuses (invalid_argument_error) to run under several ranks a command that does not share its work: each
/// rank would do all of it, and write the same files at once.
void require_one_process();

/// After a failure on one rank, ends every rank of the job, which would otherwise wait for it in a collective.
void end_processes_after_failure(int status);

}  // namespace cogqat::cli
