#pragma once
// The command line as the subcommands set it up, and what every subcommand checks before it starts any work.
//
// `command_line` and `option` are thin handles on CLI11's App and Option: CLI11 is header-only and heavy, and
// compiled once here (options.cpp) rather than in every subcommand's unit. They also make the checks
// unavoidable: a number can only be added with its range. Whole numbers are plain decimal digits within it
// (so "-1" is not read as 2^64 - 1, nor "010" as octal); reals are finite and within it. Files: no output is
// an input or another output (by path or by inode), and every output can be written (io::check_writable).
// Errors of this kind are bad arguments: exit status 2.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <cogqat/gguf/split.hpp>

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace cogqat::cli {

/// The exit statuses, as `cogqat --help` lists them.
enum exit_status : int { exit_success = 0, exit_failure = 1, exit_bad_arguments = 2 };

/// The most threads -j takes; more than the machine has are cut to what it has (usable_threads).
inline constexpr std::uint64_t max_threads = 1024;

/// The range a real option takes: [min, max], or (min, max] when `min_exclusive`; 0 too when `or_zero`.
struct real_range {
    double min, max;
    bool min_exclusive = false;
    bool or_zero = false;
};

/// One option: what else it needs or excludes.
class option {
public:
    explicit option(CLI::Option* o) noexcept : option_(o) {}
    option& required();
    option& needs(const option& other);
    option& excludes(const option& other);
    /// Every occurrence's values are kept (a repeatable option).
    option& take_all();
    /// One value holds several items, `separator` between them.
    option& list(char separator);
    /// The value must be one of `allowed`.
    option& one_of(const std::vector<std::string>& allowed);
    /// Whether the command line gave it (after parsing).
    [[nodiscard]] bool given() const;

private:
    CLI::Option* option_;
};

/// A command or subcommand and its options.
class command_line {
public:
    explicit command_line(CLI::App& app) noexcept : app_(&app) {}

    [[nodiscard]] command_line subcommand(const std::string& name, const std::string& description);
    /// Exactly one of the subcommands must be given.
    void require_subcommand();
    /// Whether this (sub)command was on the command line.
    [[nodiscard]] bool parsed() const;

    option text(const std::string& name, std::string& value, const std::string& description);
    option texts(const std::string& name, std::vector<std::string>& values, const std::string& description);
    option flag(const std::string& name, bool& value, const std::string& description);
    option whole(const std::string& name, unsigned& value, std::uint64_t min, std::uint64_t max, const std::string& description);
    option whole(const std::string& name, std::uint64_t& value, std::uint64_t min, std::uint64_t max, const std::string& description);
    option whole(const std::string& name, std::optional<std::uint64_t>& value, std::uint64_t min, std::uint64_t max,
                 const std::string& description);
    option real(const std::string& name, float& value, real_range range, const std::string& description);
    option real(const std::string& name, double& value, real_range range, const std::string& description);
    option real(const std::string& name, std::optional<double>& value, real_range range, const std::string& description);
    /// --threads,-j: 0 (every hardware thread) to max_threads.
    option threads(unsigned& value, const std::string& description = "Threads (0: all)");
    /// --split-max-size N[K|M|G] and --split-max-tensors N, the options of every command that writes a GGUF: the
    /// output becomes a split set (gguf/split.hpp) under these limits.
    void split(gguf::split_limits& limits);

private:
    CLI::App* app_;
};

/// `requested` threads, cut to the machine's hardware threads with a note on stderr when it asks for more:
/// workers beyond the cores only take turns, and a loop that waits for all of them waits for every turn.
[[nodiscard]] unsigned usable_threads(unsigned requested);

/// "N", "NK", "NM" or "NG" in bytes: decimal units (K = 1000, M = 1000^2, G = 1000^3), as gguf-split reads
/// its M and G; nothing for anything else, 0, or a size of 2^64 bytes or more.
[[nodiscard]] std::optional<std::uint64_t> parse_byte_size(const std::string& text);

/// What the command wrote, for its report: the output, or "FIRST (N shards: FIRST ... LAST)" for a split set.
[[nodiscard]] std::string written_files(const std::vector<std::filesystem::path>& files);

/// A file a command reads or writes, with the option or argument that named it (for messages).
struct named_path {
    std::string name;  ///< e.g. "OUTPUT", "--json"
    std::string path;  ///< empty: not given, skipped
};

/// invalid_argument_error when an output is an input or another output (the same path, or the same file under
/// another name); io_error when an output exists and is not a regular file or its directory cannot be written.
void check_files(const std::vector<named_path>& inputs, const std::vector<named_path>& outputs);

/// invalid_argument_error when the model written to `output` under `split` could replace a file of the model
/// read from `inputs` (every shard of a split input): OUTPUT naming a shard after the first, or a split output
/// whose shards take the input's names (the same PREFIX). Called once the input is open and its shards known.
void check_model_output(const std::vector<std::filesystem::path>& inputs, const std::string& output, const gguf::split_limits& split);

}  // namespace cogqat::cli
