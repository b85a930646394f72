#pragma once
// The subcommands of `cogqat`. Each lives in a unit of its own with its own arguments struct, adds its
// subcommand to the command line, and hands back what runs it once the command line parsed.

#include <filesystem>
#include <functional>
#include <vector>

#include "options.hpp"

namespace cogqat::cli {

/// A subcommand and what runs it; run() returns the exit status. One that shares its work among MPI ranks
/// says so (shares_work), and refuses itself the cases that do not; the others are refused under several ranks.
struct command {
    command_line line;
    std::function<int()> run;
    bool shares_work = false;
};
using command_list = std::vector<command>;

void add_raw_commands(command_line& app, command_list& commands);      // raw.cpp
void add_convert_commands(command_line& app, command_list& commands);  // convert.cpp
void add_quantize_command(command_line& app, command_list& commands);  // quantize.cpp
void add_imatrix_command(command_line& app, command_list& commands);   // imatrix.cpp
void add_qat_command(command_line& app, command_list& commands);       // qat.cpp
void add_inspect_command(command_line& app, command_list& commands);   // inspect.cpp
void add_eval_command(command_line& app, command_list& commands);      // eval.cpp
void add_generate_command(command_line& app, command_list& commands);  // generate.cpp

/// The job `cogqat` runs with no subcommand (default_job.cpp).
int run_default_job(const std::filesystem::path& out_dir, unsigned threads);

}  // namespace cogqat::cli
