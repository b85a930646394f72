#pragma once
// Split GGUF models as llama.cpp's gguf-split writes and its loader reads them: shards named
// PREFIX-00001-of-0000N.gguf, the first holding every key/value pair, each holding `split.no` (uint16, from 0),
// `split.count` (uint16) and `split.tensors.count` (int32, the tensors of the whole set), and every tensor in
// exactly one shard (docs/gguf.md).

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "cogqat/core/error.hpp"

namespace cogqat::gguf {

/// The key of a shard's index, counted from 0 (uint16).
inline constexpr std::string_view split_no_key = "split.no";
/// The key of the number of shards in the set (uint16).
inline constexpr std::string_view split_count_key = "split.count";
/// The key of the number of tensors in the whole set (int32).
inline constexpr std::string_view split_tensors_count_key = "split.tensors.count";
/// The most shards a set can have: split.count is a uint16.
inline constexpr std::uint32_t max_split_count = 65535;

/// Whether `key` is one of the three keys that describe a shard (a merged or unsplit file must not carry them:
/// llama.cpp would look for shards that do not exist).
[[nodiscard]] constexpr bool is_split_key(std::string_view key) noexcept {
    return key == split_no_key || key == split_count_key || key == split_tensors_count_key;
}

/// How a writer splits its tensors over shards: a shard is closed before a tensor that would take it past
/// `max_bytes` (the whole shard file: header, tensor infos, data and padding) or past `max_tensors` tensors.
/// A tensor larger than `max_bytes` alone gets a shard of its own. 0 means no limit; both 0 writes one file.
struct split_limits {
    std::uint64_t max_bytes = 0;
    std::uint64_t max_tensors = 0;

    /// Whether the output is a split set (named PREFIX-0000i-of-0000N.gguf even when N is 1, as gguf-split does).
    [[nodiscard]] constexpr bool active() const noexcept { return max_bytes != 0 || max_tensors != 0; }
    friend constexpr bool operator==(const split_limits&, const split_limits&) = default;
};

/// The path of shard `index` (from 0) of `count`: PREFIX-%05d-of-%05d.gguf with index + 1, as llama_split_path.
/// invalid_argument_error for a count of 0 or above max_split_count, or an index not below the count.
[[nodiscard]] inline std::filesystem::path split_path(const std::filesystem::path& prefix, std::uint32_t index, std::uint32_t count) {
    if (count == 0 || count > max_split_count || index >= count) {
        throw invalid_argument_error("gguf::split_path: shard " + std::to_string(index) + " of " + std::to_string(count) +
                                     " (a set has 1 to " + std::to_string(max_split_count) + " shards, numbered from 0)");
    }
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, "-%05u-of-%05u.gguf", index + 1, count);
    std::filesystem::path p = prefix;
    p += suffix;
    return p;
}

/// The prefix of `path` when it is shard `index` of `count` (it ends in that shard's -0000i-of-0000N.gguf), as
/// llama_split_prefix; nothing otherwise.
[[nodiscard]] inline std::optional<std::filesystem::path> split_prefix(const std::filesystem::path& path, std::uint32_t index,
                                                                       std::uint32_t count) {
    if (count == 0 || count > max_split_count || index >= count) return std::nullopt;
    const std::string name = path.string();
    const std::string suffix = split_path("", index, count).string();
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return std::nullopt;
    return std::filesystem::path(name.substr(0, name.size() - suffix.size()));
}

/// The prefix a split set written for `out` takes: `out` without its .gguf extension (model.gguf gives
/// model-00001-of-00003.gguf, ...), or `out` itself when it has another extension or none.
[[nodiscard]] inline std::filesystem::path split_prefix_for(const std::filesystem::path& out) {
    if (out.extension() == ".gguf") {
        std::filesystem::path p = out;
        return p.replace_extension();
    }
    return out;
}

}  // namespace cogqat::gguf
