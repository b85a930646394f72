#pragma once
// What every subcommand checks before it starts any work. Numbers are checked while parsing: whole numbers
// are plain decimal digits within a range (so "-1" is not read as 2^64 - 1, nor "010" as octal), reals are
// finite and within a range. Files: no output is an input or another output (by path or by inode), and every
// output can be written (io::check_writable). Errors of this kind are bad arguments: exit status 2.

#include <CLI/CLI.hpp>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace cogqat::cli {

/// The exit statuses, as `cogqat --help` lists them.
enum exit_status : int { exit_success = 0, exit_failure = 1, exit_bad_arguments = 2 };

/// The most threads -j takes; more than the machine has are cut to what it has (usable_threads).
inline constexpr std::uint64_t max_threads = 1024;

namespace detail {
[[nodiscard]] CLI::Validator whole_number(std::uint64_t min, std::uint64_t max);
[[nodiscard]] CLI::Validator real_number(double min, double max, bool min_exclusive);
} // namespace detail

/// An option taking a whole number in [min, max].
template <class T>
CLI::Option* add_whole(CLI::App& app, const std::string& name, T& value, std::uint64_t min, std::uint64_t max, const std::string& description) {
    return app.add_option(name, value, description)->check(detail::whole_number(min, max));
}

/// An option taking a finite real in [min, max] (or (min, max] when `min_exclusive`).
template <class T>
CLI::Option* add_real(CLI::App& app, const std::string& name, T& value, double min, double max, const std::string& description,
                      bool min_exclusive = false) {
    return app.add_option(name, value, description)->check(detail::real_number(min, max, min_exclusive));
}

/// --threads,-j: 0 (every hardware thread) to max_threads.
CLI::Option* add_threads(CLI::App& app, unsigned& threads, const std::string& description = "Threads (0: all)");

/// `requested` threads, cut to the machine's hardware threads with a note on stderr when it asks for more:
/// workers beyond the cores only take turns, and a loop that waits for all of them waits for every turn.
[[nodiscard]] unsigned usable_threads(unsigned requested);

/// A file a command reads or writes, with the option or argument that named it (for messages).
struct named_path {
    std::string name;  ///< e.g. "OUTPUT", "--json"
    std::string path;  ///< empty: not given, skipped
};

/// invalid_argument_error when an output is an input or another output (the same path, or the same file under
/// another name); io_error when an output exists and is not a regular file or its directory cannot be written.
void check_files(const std::vector<named_path>& inputs, const std::vector<named_path>& outputs);

} // namespace cogqat::cli
