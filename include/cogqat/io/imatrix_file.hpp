#pragma once
// Importance matrix files as llama.cpp writes and reads them: the GGUF format of its imatrix tool
// (general.type = "imatrix", imatrix.datasets, imatrix.chunk_count, imatrix.chunk_size; per matrix the f32
// tensors NAME.in_sum2, ne = [columns, matrices], and NAME.counts, ne = [1, matrices]) and the legacy binary
// `.dat` format (int32 entry count; per entry int32 name length, name, int32 call count, int32 value count,
// the values as float32, already scaled to the call count; then int32 chunk count, int32 dataset length and
// the dataset name). Every read is checked: a file that does not hold a whole, finite, non-negative
// importance matrix is refused with the file, the tensor and what is wrong.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cogqat/calib/importance.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/little_endian.hpp"
#include "cogqat/gguf/reader.hpp"
#include "cogqat/gguf/writer.hpp"
#include "cogqat/io/byte_cursor.hpp"
#include "cogqat/io/file.hpp"

namespace cogqat::io {

namespace detail {

inline constexpr std::string_view imatrix_sums_suffix = ".in_sum2";
inline constexpr std::string_view imatrix_counts_suffix = ".counts";

/// Checks that every stored number is finite and >= 0, naming the file, the tensor and the index.
inline void require_importance_values(std::span<const float> values, const std::string& file, const std::string& what) {
    for (std::size_t i = 0; i < values.size(); ++i)
        if (!std::isfinite(values[i]) || values[i] < 0.0f)
            throw value_error("imatrix '" + file + "': " + what + "[" + std::to_string(i) + "] = " + std::to_string(values[i]) +
                                      " is not a finite value >= 0",
                              i);
}

inline std::vector<float> f32_tensor(const gguf::reader& in, const gguf::tensor_info& t, const std::string& file) {
    if (t.type != ggml_type::f32)
        throw format_error("imatrix '" + file + "': tensor '" + t.name + "' is " + std::string(info(t.type).name) + ", not f32");
    const auto bytes = in.tensor_data(t);
    std::vector<float> values(bytes.size() / sizeof(float));
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = load_le<float>(bytes.data() + i * sizeof(float));
    return values;
}

inline std::uint32_t required_u32(const gguf::reader& in, std::string_view key, const std::string& file) {
    const auto* v = in.find(key);
    if (!v) throw format_error("imatrix '" + file + "': the key " + std::string(key) + " is missing (not an imatrix GGUF)");
    if (v->type() != gguf::value_type::uint32)
        throw format_error("imatrix '" + file + "': " + std::string(key) + " is " + std::string(gguf::type_name(v->type())) +
                           ", not uint32");
    return v->as<std::uint32_t>();
}

inline importance_matrix read_imatrix_gguf(const std::filesystem::path& path) {
    const std::string file = path.string();
    const auto in = gguf::reader::open(path);
    importance_matrix m;
    const auto* datasets = in.find("imatrix.datasets");
    if (!datasets) throw format_error("imatrix '" + file + "': the key imatrix.datasets is missing (not an imatrix GGUF)");
    if (!datasets->is_array() || datasets->array_type() != gguf::value_type::string)
        throw format_error("imatrix '" + file + "': imatrix.datasets is not an array of strings");
    m.datasets = datasets->as_array<std::string>();
    m.chunk_count = required_u32(in, "imatrix.chunk_count", file);
    m.chunk_size = required_u32(in, "imatrix.chunk_size", file);

    std::map<std::string, std::pair<const gguf::tensor_info*, const gguf::tensor_info*>, std::less<>> pairs;
    for (const auto& t : in.tensors()) {
        const std::string_view name = t.name;
        if (name.ends_with(imatrix_sums_suffix))
            pairs[std::string(name.substr(0, name.size() - imatrix_sums_suffix.size()))].first = &t;
        else if (name.ends_with(imatrix_counts_suffix))
            pairs[std::string(name.substr(0, name.size() - imatrix_counts_suffix.size()))].second = &t;
        // Other tensors (the newer NAME.in_sum, Σx) carry nothing the quantizers use.
    }
    if (pairs.empty()) throw format_error("imatrix '" + file + "': no NAME.in_sum2 / NAME.counts tensors (no data in file)");
    for (const auto& [name, pair] : pairs) {
        const auto [sums, counts] = pair;
        if (!sums || !counts)
            throw format_error("imatrix '" + file + "': tensor '" + name + "' has " +
                               (sums ? "in_sum2 but no counts" : "counts but no in_sum2"));
        const std::uint64_t matrices = sums->shape.size() > 1 ? sums->shape[1] : 1;
        if (sums->shape.size() > 2 || counts->shape[0] != 1 || (counts->shape.size() > 1 ? counts->shape[1] : 1) != matrices ||
            counts->shape.size() > 2)
            throw format_error("imatrix '" + file + "': tensor '" + name + "': in_sum2 and counts shapes do not agree (in_sum2 must be " +
                               "[columns, matrices], counts [1, matrices])");
        importance_entry e;
        e.sums = f32_tensor(in, *sums, file);
        e.counts = f32_tensor(in, *counts, file);
        require_importance_values(e.sums, file, name + ".in_sum2");
        require_importance_values(e.counts, file, name + ".counts");
        m.entries.emplace(name, std::move(e));
    }
    return m;
}

inline importance_matrix read_imatrix_legacy(std::span<const std::byte> bytes, const std::string& file) {
    byte_cursor in(bytes, "imatrix '" + file + "'");
    importance_matrix m;
    m.legacy = true;
    const auto n_entries = in.read<std::int32_t>("the entry count");
    if (n_entries < 1) throw format_error("imatrix '" + file + "': " + std::to_string(n_entries) + " entries (no data in file)");
    for (std::int32_t i = 0; i < n_entries; ++i) {
        const std::string entry = "entry " + std::to_string(i);
        const auto length = in.read<std::int32_t>(entry + "'s name length");
        if (length < 1) throw format_error("imatrix '" + file + "': " + entry + " has a name of " + std::to_string(length) + " bytes");
        std::string name = in.read_string(static_cast<std::size_t>(length), entry + "'s name");
        const auto calls = in.read<std::int32_t>("the call count of '" + name + "'");
        const auto values = in.read<std::int32_t>("the value count of '" + name + "'");
        if (values < 1) throw format_error("imatrix '" + file + "': tensor '" + name + "' has " + std::to_string(values) + " values");
        in.require(static_cast<std::size_t>(values) * sizeof(float), "the values of '" + name + "'");  // before allocating them
        importance_entry e;
        e.sums.resize(static_cast<std::size_t>(values));
        for (auto& v : e.sums) v = in.read<float>("the values of '" + name + "'");
        require_importance_values(e.sums, file, name);
        e.counts.assign(1, static_cast<float>(calls));
        if (!m.entries.emplace(name, std::move(e)).second)
            throw format_error("imatrix '" + file + "': tensor '" + name + "' appears twice");
    }
    // The newest legacy files end with the chunk count and the dataset's name; older ones stop here.
    if (!in.at_end()) {
        const auto chunks = in.read<std::int32_t>("the chunk count");
        m.chunk_count = chunks > 0 ? static_cast<std::uint32_t>(chunks) : 0;
        const auto length = in.read<std::int32_t>("the dataset name length");
        if (length < 0) throw format_error("imatrix '" + file + "': a dataset name of " + std::to_string(length) + " bytes");
        m.datasets.push_back(in.read_string(static_cast<std::size_t>(length), "the dataset name"));
        if (!in.at_end())
            throw format_error("imatrix '" + file + "': " + std::to_string(bytes.size() - in.offset()) + " bytes after the dataset name");
    }
    return m;
}

}  // namespace detail

/// Reads an importance matrix file of either format: llama.cpp's imatrix GGUF (recognised by its magic) or
/// the legacy `.dat`. io_error when the file cannot be read; format_error (naming the file, and the tensor
/// where there is one) for a truncated or malformed file, missing imatrix.* keys, an in_sum2 without its
/// counts or shapes that disagree; value_error for a stored number that is not finite and >= 0.
[[nodiscard]] inline importance_matrix read_imatrix(const std::filesystem::path& path) {
    const auto bytes = read_file(path);
    if (bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0) return detail::read_imatrix_gguf(path);
    return detail::read_imatrix_legacy(bytes, path.string());
}

/// Writes `m` in llama.cpp's imatrix GGUF format, entries in name order as llama.cpp writes them, all or
/// nothing. invalid_argument_error for an entry whose sums are not a whole number of columns per count.
inline void write_imatrix(const std::filesystem::path& path, const importance_matrix& m) {
    gguf::writer out(path);
    out.set("general.type", gguf::value("imatrix"));
    out.set("imatrix.datasets", gguf::value(m.datasets));
    out.set("imatrix.chunk_count", gguf::value(m.chunk_count));
    out.set("imatrix.chunk_size", gguf::value(m.chunk_size));
    for (const auto& [name, e] : m.entries) {
        if (e.counts.empty() || e.sums.size() % e.counts.size() != 0 || e.sums.empty())
            throw invalid_argument_error("write_imatrix: entry '" + name + "' has " + std::to_string(e.sums.size()) + " sums for " +
                                         std::to_string(e.counts.size()) + " counts");
        const auto as_bytes = [](const std::vector<float>& v) {
            std::vector<std::byte> b(v.size() * sizeof(float));
            for (std::size_t i = 0; i < v.size(); ++i) store_le<float>(b.data() + i * sizeof(float), v[i]);
            return b;
        };
        out.add_tensor(name + std::string(detail::imatrix_sums_suffix), {e.columns(), e.counts.size()}, ggml_type::f32, as_bytes(e.sums));
        out.add_tensor(name + std::string(detail::imatrix_counts_suffix), {1, e.counts.size()}, ggml_type::f32, as_bytes(e.counts));
    }
    out.finish();
}

/// Writes `m` (read from GGUF or computed) in the legacy `.dat` format as llama.cpp's imatrix tool does with
/// --output-format dat: each sum divided by its count and scaled by the call count, ceil(largest count /
/// chunk_size) (1 when chunk_size is 0); a matrix that saw no input stores 1. All or nothing.
inline void write_imatrix_legacy(const std::filesystem::path& path, const importance_matrix& m) {
    std::vector<std::byte> out;
    const auto put = [&out]<class T>(T v) {
        const std::size_t at = out.size();
        out.resize(at + sizeof(T));
        store_le<T>(out.data() + at, v);
    };
    const auto put_string = [&](const std::string& s) {
        put(static_cast<std::int32_t>(s.size()));
        for (char c : s) out.push_back(static_cast<std::byte>(c));
    };
    put(static_cast<std::int32_t>(m.entries.size()));
    for (const auto& [name, e] : m.entries) {
        put_string(name);
        float largest = 0.0f;
        for (float c : e.counts) largest = std::max(largest, c);
        const std::int64_t chunk = m.chunk_size ? m.chunk_size : 1;
        const auto calls = static_cast<std::int32_t>((static_cast<std::int64_t>(largest) + chunk - 1) / chunk);
        put(calls);
        put(static_cast<std::int32_t>(e.sums.size()));
        const std::size_t n = e.columns();
        for (std::size_t i = 0; i < e.sums.size(); ++i) {
            float count = e.counts[n ? i / n : 0], value = e.sums[i];
            if (m.legacy) count = static_cast<float>(calls);  // legacy sums are already scaled to the call count
            if (count == 0.0f) value = 1.0f, count = 1.0f;
            put((value / count) * static_cast<float>(calls));
        }
    }
    put(static_cast<std::int32_t>(m.chunk_count));
    put_string(m.datasets.empty() ? std::string() : m.datasets.back());
    write_file_atomically(path, out);
}

/// Checks `m` against the tensors of the model it will quantize: every entry must name a tensor of the
/// model, with one sum per column of each of its matrices (ne[0] x ne[2], as llama.cpp's quantize demands).
/// invalid_argument_error naming the imatrix file and the tensor otherwise.
inline void check_imatrix_against(const importance_matrix& m, std::span<const gguf::tensor_info> tensors, std::string_view file) {
    for (const auto& [name, e] : m.entries) {
        const gguf::tensor_info* tensor = nullptr;
        for (const auto& t : tensors)
            if (t.name == name) tensor = &t;
        if (!tensor)
            throw invalid_argument_error("imatrix '" + std::string(file) + "': tensor '" + name +
                                         "' is not in the model (an imatrix of another model?)");
        const std::uint64_t expected = tensor->shape[0] * (tensor->shape.size() > 2 ? tensor->shape[2] : 1);
        if (e.sums.size() != expected)
            throw invalid_argument_error("imatrix '" + std::string(file) + "': tensor '" + name + "' has " + std::to_string(e.sums.size()) +
                                         " values, the model's tensor needs " + std::to_string(expected) + " (one per input column)");
    }
}

}  // namespace cogqat::io
