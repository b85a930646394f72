#pragma once
// Whole-file reads and all-or-nothing writes (io/output_file.hpp): a failure never leaves a half-written
// output behind.

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/little_endian.hpp"
#include "cogqat/io/output_file.hpp"

namespace cogqat::io {

/// The whole content of `path`. Throws io_error naming the path and the reason.
[[nodiscard]] inline std::vector<std::byte> read_file(const std::filesystem::path& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) throw io_error("cannot read '" + path.string() + "': it is a directory");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw io_error("cannot open '" + path.string() + "' for reading: " + std::strerror(errno));
    in.seekg(0, std::ios::end);
    const auto size = static_cast<std::streamoff>(in.tellg());
    if (size < 0) throw io_error("cannot determine the size of '" + path.string() + "'");
    in.seekg(0, std::ios::beg);
    std::vector<std::byte> bytes(static_cast<std::size_t>(size));
    if (!bytes.empty() && !in.read(reinterpret_cast<char*>(bytes.data()), size)) throw io_error("cannot read '" + path.string() + "'");
    return bytes;
}

/// Writes `bytes` to `path` all or nothing (io/output_file.hpp): through a temporary file beside it, renamed
/// into place once complete, keeping the mode of the file it replaces.
inline void write_file_atomically(const std::filesystem::path& path, std::span<const std::byte> bytes) {
    output_file out(path);
    out.write(bytes);
    out.commit();
}

/// A raw little-endian float32 array file, as `cogqat raw` reads it. Throws format_error when the size
/// is not a whole number of floats (a truncated file).
[[nodiscard]] inline std::vector<float> read_f32_file(const std::filesystem::path& path) {
    const auto bytes = read_file(path);
    if (bytes.size() % sizeof(float) != 0) {
        throw format_error("'" + path.string() + "' has " + std::to_string(bytes.size()) +
                           " bytes, not a whole number of float32 values (truncated?)");
    }
    std::vector<float> values(bytes.size() / sizeof(float));
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = load_le<float>(bytes.data() + i * sizeof(float));
    return values;
}

/// Writes floats as a raw little-endian float32 array, all or nothing.
inline void write_f32_file(const std::filesystem::path& path, std::span<const float> values) {
    std::vector<std::byte> bytes(values.size() * sizeof(float));
    for (std::size_t i = 0; i < values.size(); ++i) store_le<float>(bytes.data() + i * sizeof(float), values[i]);
    write_file_atomically(path, bytes);
}

}  // namespace cogqat::io
