#pragma once
// JSON shared by the commands: one line on stdout, or a whole document in a file. Names, metadata and paths
// come from files and command lines and may hold bytes that are not UTF-8: they are written as U+FFFD, as the
// HTML reports write them (html_report.hpp), never refused half-way through a report.

#include <cogqat/calib/calibration_set.hpp>
#include <cogqat/core/error_metrics.hpp>
#include <cogqat/io/file.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>
#include <span>
#include <string>
#include <vector>

namespace cogqat::cli {

using json = nlohmann::ordered_json;

/// `document` as text; invalid UTF-8 becomes U+FFFD.
[[nodiscard]] inline std::string json_text(const json& document, int indent = -1) {
    return document.dump(indent, ' ', false, json::error_handler_t::replace);
}

inline void print_json(const json& line) { std::cout << json_text(line) << '\n'; }

inline void write_json_file(const std::filesystem::path& path, const json& document) {
    const std::string text = json_text(document, 2) + "\n";
    io::write_file_atomically(path, std::as_bytes(std::span(text.data(), text.size())));
}

inline json metrics_json(const error_metrics& m) {
    return {{"rmse", m.rmse}, {"max_abs_error", m.max_abs_error}, {"relative_rmse", m.relative_rmse}};
}

/// The files a command wrote (the output, or the shards of a split set), as an array of paths.
inline json files_json(const std::vector<std::filesystem::path>& files) {
    json list = json::array();
    for (const auto& f : files) list.push_back(f.string());
    return list;
}

inline json score_json(const calibration_score& s) {
    return {{"kl", s.kl}, {"top1", s.top1}, {"nll", s.nll}, {"delta_nll", s.delta_nll}, {"retention", s.retention()}};
}

}  // namespace cogqat::cli
