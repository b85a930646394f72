#pragma once
// JSON helpers shared by the commands: one line on stdout, or a whole document in a file.

#include <cogqat/cogqat.hpp>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

namespace cogqat::cli {

using json = nlohmann::ordered_json;

inline void print_json(const json& line) { std::cout << line.dump() << '\n'; }

inline void write_json_file(const std::filesystem::path& path, const json& document) {
    const std::string text = document.dump(2) + "\n";
    io::write_file_atomically(path, std::as_bytes(std::span(text.data(), text.size())));
}

inline json metrics_json(const error_metrics& m) {
    return {{"rmse", m.rmse}, {"max_abs_error", m.max_abs_error}, {"relative_rmse", m.relative_rmse}};
}

/// ../shared beside the checkout, as configured at build time, unless $COGQAT_SHARED_DIR says otherwise.
inline std::filesystem::path shared_dir() {
    if (const char* env = std::getenv("COGQAT_SHARED_DIR"); env && *env) return env;
    return COGQAT_DEFAULT_SHARED_DIR;
}

} // namespace cogqat::cli
