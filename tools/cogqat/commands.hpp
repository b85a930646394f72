#pragma once
// The subcommands of `cogqat`. Each lives in a unit of its own with its own arguments struct, adds its
// CLI11 subcommand to the app, and hands back what runs it once the command line parsed.

#include <CLI/CLI.hpp>

#include <filesystem>
#include <functional>
#include <vector>

namespace cogqat::cli {

/// A parsed subcommand and what runs it; run() returns the exit status.
struct command {
    CLI::App* app = nullptr;
    std::function<int()> run;
};
using command_list = std::vector<command>;

void add_raw_commands(CLI::App& app, command_list& commands);       // raw.cpp
void add_convert_commands(CLI::App& app, command_list& commands);   // convert.cpp
void add_quantize_command(CLI::App& app, command_list& commands);   // quantize.cpp
void add_qat_command(CLI::App& app, command_list& commands);        // qat.cpp
void add_inspect_command(CLI::App& app, command_list& commands);    // inspect.cpp
void add_eval_command(CLI::App& app, command_list& commands);       // eval.cpp
void add_generate_command(CLI::App& app, command_list& commands);   // generate.cpp

/// The job `cogqat` runs with no subcommand (default_job.cpp).
int run_default_job(const std::filesystem::path& out_dir, unsigned threads);

} // namespace cogqat::cli
