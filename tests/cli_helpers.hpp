#pragma once
// Running the built `cogqat` as a user would, and the files it works on, for the command-line tests.

#include <doctest/doctest.h>

#include <cogqat/io/file.hpp>

#include "sanitizer.hpp"
#include "scratch_dir.hpp"

#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace cogqat::test {

namespace fs = std::filesystem;

struct run_result {
    int status;          ///< the exit status, or 128 + the signal that ended the process
    std::string output;  ///< stdout and stderr together
};

/// The built tool's path, quoted for the shell; $COGQAT_CLI runs the tests against another build of it.
inline std::string cli_path() {
    const char* other = std::getenv("COGQAT_CLI");
    return std::string("'") + (other && *other ? other : COGQAT_CLI_PATH) + "'";
}

/// Runs a shell script (bash) with stderr joined to stdout.
inline run_result run_shell(const std::string& script) {
    std::string quoted;
    for (char c : script) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    const std::string command = "bash -c '" + quoted + "' 2>&1";
    FILE* pipe = popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::string output;
    std::array<char, 4096> buffer{};
    while (std::fgets(buffer.data(), buffer.size(), pipe)) output += buffer.data();
    const int raw = pclose(pipe);
    // The shell reports a command killed by signal N as exit status 128 + N.
    return {WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw), output};
}

/// Runs `cogqat ARGUMENTS` through the shell (so arguments are quoted as in a terminal), after `environment`
/// (e.g. "VAR=value ").
inline run_result run_cli(const std::string& arguments, const std::string& environment = "") {
    return run_shell(environment + cli_path() + " " + arguments);
}

using temp_dir = scratch_dir;

inline void write_bytes(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

inline std::string read_text(const std::string& path) {
    const auto bytes = cogqat::io::read_file(path);
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace cogqat::test
