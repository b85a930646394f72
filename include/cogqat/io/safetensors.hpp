#pragma once
// Reading safetensors files (Hugging Face's weight format), memory-mapped: an 8-byte little-endian header
// length, a JSON header naming each tensor's dtype, shape and [begin, end) byte offsets within the data that
// follows, and an optional "__metadata__" object of strings. Only float tensors are read (F32, F16, BF16);
// others are refused by name. Every structural rule is checked before a view is handed out, and a failure
// names the file and the reason (scripts/fuzz.sh fuzzes the header parser): a header longer than the file,
// offsets out of range, overlapping or leaving bytes uncovered, a byte count that does not match dtype and
// shape, a header that is not JSON, a tensor named twice. A sharded model (model.safetensors.index.json) is
// one safetensors_model over all its shards.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/float16.hpp"
#include "cogqat/core/little_endian.hpp"
#include "cogqat/gguf/reader.hpp"
#include "cogqat/io/file.hpp"
#include "cogqat/io/json.hpp"

namespace cogqat::io {

/// The element types cogqat reads from safetensors.
enum class safetensors_dtype : std::uint8_t { f32, f16, bf16 };

/// The bytes of one element of `t`.
[[nodiscard]] constexpr std::size_t element_size(safetensors_dtype t) noexcept { return t == safetensors_dtype::f32 ? 4 : 2; }

/// The name safetensors gives `t` ("F32", "F16", "BF16").
[[nodiscard]] constexpr std::string_view dtype_name(safetensors_dtype t) noexcept {
    return t == safetensors_dtype::f32 ? "F32" : t == safetensors_dtype::f16 ? "F16" : "BF16";
}

/// Largest header accepted (safetensors' own limit): a longer one is hostile, not a model.
inline constexpr std::uint64_t max_safetensors_header = 100'000'000;

/// One tensor of a safetensors file: a view into the file's mapping. Shape is outermost first (PyTorch's
/// order: a linear layer's weight is {out_features, in_features}).
struct safetensors_tensor {
    std::string name;
    safetensors_dtype dtype = safetensors_dtype::f32;
    std::vector<std::uint64_t> shape;
    std::span<const std::byte> data;

    [[nodiscard]] std::uint64_t elements() const noexcept {
        std::uint64_t n = 1;
        for (auto d : shape) n *= d;  // no overflow: checked against the byte count when parsed
        return n;
    }
};

/// Decodes `t`'s values into `out` (exactly t.elements() floats). shape_error for another size.
inline void decode_to_f32(const safetensors_tensor& t, std::span<float> out) {
    if (out.size() != t.elements())
        throw shape_error("safetensors tensor '" + t.name + "' has " + std::to_string(t.elements()) + " values, not " +
                          std::to_string(out.size()));
    const std::byte* p = t.data.data();
    switch (t.dtype) {
        case safetensors_dtype::f32:
            for (std::size_t i = 0; i < out.size(); ++i) out[i] = load_le<float>(p + 4 * i);
            return;
        case safetensors_dtype::f16:
            for (std::size_t i = 0; i < out.size(); ++i) out[i] = fp16_bits_to_fp32(load_le<std::uint16_t>(p + 2 * i));
            return;
        case safetensors_dtype::bf16:
            for (std::size_t i = 0; i < out.size(); ++i) out[i] = bf16_bits_to_fp32(load_le<std::uint16_t>(p + 2 * i));
            return;
    }
}

/// A parsed safetensors file: its tensors in data order and its metadata, viewing a mapping it owns or bytes
/// the caller owns. Movable, not copyable.
class safetensors_file {
public:
    /// Maps `path` read-only and parses it. io_error when it cannot be read; format_error naming the path and
    /// the reason when it is not a valid safetensors file.
    [[nodiscard]] static safetensors_file open(const std::filesystem::path& path) {
        safetensors_file f;
        f.source_ = std::make_unique<gguf::detail::byte_source>(gguf::detail::byte_source::map(path));
        f.parse_bytes(f.source_->bytes(), path.string());
        return f;
    }

    /// Parses bytes the caller keeps alive as long as the result; `source` names them in messages.
    [[nodiscard]] static safetensors_file parse(std::span<const std::byte> bytes, std::string_view source) {
        safetensors_file f;
        f.parse_bytes(bytes, std::string(source));
        return f;
    }

    /// The tensors in the order of their data.
    [[nodiscard]] const std::vector<safetensors_tensor>& tensors() const noexcept { return tensors_; }
    /// The "__metadata__" pairs, in file order.
    [[nodiscard]] const std::vector<std::pair<std::string, std::string>>& metadata() const noexcept { return metadata_; }
    /// The tensor named `name`, or nullptr.
    [[nodiscard]] const safetensors_tensor* find(std::string_view name) const noexcept {
        const auto it = index_.find(name);
        return it == index_.end() ? nullptr : &tensors_[it->second];
    }
    /// The name messages give this file.
    [[nodiscard]] const std::string& source() const noexcept { return name_; }

private:
    safetensors_file() = default;

    [[noreturn]] void fail(const std::string& reason) const { throw format_error("safetensors '" + name_ + "': " + reason); }

    void parse_bytes(std::span<const std::byte> bytes, std::string source) {
        name_ = std::move(source);
        if (bytes.size() < 8) fail("shorter than the 8-byte header length (" + std::to_string(bytes.size()) + " bytes)");
        const auto header_length = load_le<std::uint64_t>(bytes.data());
        if (header_length > max_safetensors_header)
            fail("the header length " + std::to_string(header_length) + " is above the limit of " + std::to_string(max_safetensors_header));
        if (header_length > bytes.size() - 8)
            fail("the header length " + std::to_string(header_length) + " is larger than the " + std::to_string(bytes.size() - 8) +
                 " bytes after it");
        const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), static_cast<std::size_t>(header_length));
        const auto data = bytes.subspan(8 + static_cast<std::size_t>(header_length));
        data_start_ = data.data();
        // Offsets in the message count from the header's start, 8 bytes into the file.
        const json_value header = parse_json(text, "safetensors '" + name_ + "' header");
        if (!header.is_object()) fail(std::string("the header is ") + std::string(header.type_name()) + ", not an object");
        for (const auto& [key, value] : header.members()) {
            if (key == "__metadata__")
                read_metadata(value);
            else
                tensors_.push_back(read_tensor(key, value, data));
        }
        check_coverage(data.size());
        for (std::size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
    }

    void read_metadata(const json_value& value) {
        if (!value.is_object()) fail("__metadata__ is " + std::string(value.type_name()) + ", not an object of strings");
        for (const auto& [key, v] : value.members()) {
            if (!v.is_string()) fail("__metadata__ \"" + key + "\" is " + std::string(v.type_name()) + ", not a string");
            metadata_.emplace_back(key, *v.as_string());
        }
    }

    [[nodiscard]] safetensors_dtype read_dtype(const std::string& name, const json_value* dtype) const {
        if (dtype == nullptr || !dtype->is_string()) fail("tensor '" + name + "' has no dtype string");
        const std::string& d = *dtype->as_string();
        for (auto t : {safetensors_dtype::f32, safetensors_dtype::f16, safetensors_dtype::bf16})
            if (d == dtype_name(t)) return t;
        fail("tensor '" + name + "' has dtype " + d + "; cogqat reads F32, F16 and BF16");
    }

    [[nodiscard]] safetensors_tensor read_tensor(const std::string& name, const json_value& entry, std::span<const std::byte> data) const {
        if (!entry.is_object()) fail("tensor '" + name + "' is " + std::string(entry.type_name()) + ", not an object");
        safetensors_tensor t;
        t.name = name;
        t.dtype = read_dtype(name, entry.find("dtype"));
        const json_value* shape = entry.find("shape");
        if (shape == nullptr || !shape->is_array()) fail("tensor '" + name + "' has no shape array");
        // The element count is bounded by the data's bytes, so an overflowing product is caught on the way.
        std::uint64_t elements = 1;
        for (const auto& d : shape->elements()) {
            const auto extent = d.as_uint();
            if (!extent) fail("tensor '" + name + "' has a shape entry that is not a non-negative integer");
            t.shape.push_back(*extent);
            if (*extent != 0 && elements > std::numeric_limits<std::uint64_t>::max() / *extent)
                fail("tensor '" + name + "' has a shape whose element count overflows");
            elements *= *extent;
        }
        const json_value* offsets = entry.find("data_offsets");
        if (offsets == nullptr || !offsets->is_array() || offsets->elements().size() != 2)
            fail("tensor '" + name + "' has no data_offsets pair [begin, end]");
        const auto begin = offsets->elements()[0].as_uint(), end = offsets->elements()[1].as_uint();
        if (!begin || !end) fail("tensor '" + name + "' has data_offsets that are not non-negative integers");
        if (*begin > *end)
            fail("tensor '" + name + "' has data_offsets [" + std::to_string(*begin) + ", " + std::to_string(*end) +
                 "] that end before they begin");
        if (*end > data.size())
            fail("tensor '" + name + "' has data_offsets [" + std::to_string(*begin) + ", " + std::to_string(*end) +
                 "] out of range: the data has " + std::to_string(data.size()) + " bytes");
        const std::uint64_t bytes = *end - *begin;
        if (elements > std::numeric_limits<std::uint64_t>::max() / element_size(t.dtype) || elements * element_size(t.dtype) != bytes)
            fail("tensor '" + name + "' is " + std::string(dtype_name(t.dtype)) + " of " + std::to_string(elements) +
                 " elements, which is not its " + std::to_string(bytes) + " bytes");
        t.data = data.subspan(static_cast<std::size_t>(*begin), static_cast<std::size_t>(bytes));
        return t;
    }

    /// The tensors must tile the data exactly: in offset order, each begins where the previous ended, the
    /// last ends at the end of the file (safetensors' own rule; a gap could hide bytes, an overlap aliases).
    void check_coverage(std::size_t data_size) {
        std::sort(tensors_.begin(), tensors_.end(), [](const safetensors_tensor& a, const safetensors_tensor& b) {
            return a.data.data() != b.data.data() ? a.data.data() < b.data.data() : a.data.size() < b.data.size();
        });
        std::uint64_t expected = 0;
        for (const auto& t : tensors_) {
            const std::uint64_t begin = offset_of(t);
            if (begin < expected)
                fail("tensor '" + t.name + "' at bytes [" + std::to_string(begin) + ", " + std::to_string(begin + t.data.size()) +
                     ") overlaps the tensor before it, which ends at " + std::to_string(expected));
            if (begin > expected)
                fail("bytes [" + std::to_string(expected) + ", " + std::to_string(begin) + ") of the data belong to no tensor");
            expected = begin + t.data.size();
        }
        if (expected != data_size)
            fail("bytes [" + std::to_string(expected) + ", " + std::to_string(data_size) + ") of the data belong to no tensor");
    }

    [[nodiscard]] std::uint64_t offset_of(const safetensors_tensor& t) const noexcept {
        return static_cast<std::uint64_t>(t.data.data() - data_start_);
    }

    std::unique_ptr<gguf::detail::byte_source> source_;
    std::string name_;
    const std::byte* data_start_ = nullptr;  ///< where the data after the header begins
    std::vector<safetensors_tensor> tensors_;
    std::vector<std::pair<std::string, std::string>> metadata_;
    std::map<std::string, std::size_t, std::less<>> index_;
};

/// The file names of a Hugging Face folder's weights.
inline constexpr std::string_view safetensors_single_file = "model.safetensors";
inline constexpr std::string_view safetensors_index_file = "model.safetensors.index.json";

/// A model's weights: one safetensors file, or the shards a model.safetensors.index.json names. Every
/// tensor of every shard is found by name, wherever it is.
class safetensors_model {
public:
    /// The weights of the folder `dir`: its index and shards when it has model.safetensors.index.json, else
    /// its model.safetensors. io_error when neither exists or a shard is missing; format_error, naming the
    /// file, for an index that is not JSON or lacks a weight_map, a shard named with a directory part, a
    /// tensor the index places in a shard that lacks it, or a tensor held by two shards.
    [[nodiscard]] static safetensors_model open_folder(const std::filesystem::path& dir) {
        safetensors_model m;
        const auto index = dir / safetensors_index_file;
        std::error_code ec;
        if (std::filesystem::exists(index, ec)) {
            m.open_index(dir, index);
        } else if (std::filesystem::exists(dir / safetensors_single_file, ec)) {
            m.add_file(dir / safetensors_single_file);
        } else {
            throw io_error("'" + dir.string() + "' holds neither " + std::string(safetensors_single_file) + " nor " +
                           std::string(safetensors_index_file));
        }
        return m;
    }

    /// The tensor named `name`, or nullptr.
    [[nodiscard]] const safetensors_tensor* find(std::string_view name) const noexcept {
        const auto it = index_.find(name);
        return it == index_.end() ? nullptr : it->second;
    }
    /// Every tensor, by name.
    [[nodiscard]] const std::map<std::string, const safetensors_tensor*, std::less<>>& tensors() const noexcept { return index_; }
    /// The files read, in the order they were opened.
    [[nodiscard]] std::vector<std::string> files() const {
        std::vector<std::string> names;
        for (const auto& f : files_) names.push_back(f.source());
        return names;
    }

private:
    void open_index(const std::filesystem::path& dir, const std::filesystem::path& index) {
        const auto bytes = read_file(index);
        const json_value root =
                parse_json(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), "'" + index.string() + "'");
        const json_value* map = root.find("weight_map");
        if (map == nullptr || !map->is_object()) throw format_error("'" + index.string() + "': no \"weight_map\" object");
        std::map<std::string, std::vector<std::string>> by_shard;
        for (const auto& [tensor, shard] : map->members()) {
            const std::string* file = shard.as_string();
            if (file == nullptr) throw format_error("'" + index.string() + "': weight_map \"" + tensor + "\" is not a file name");
            // A shard is a file beside the index: a path that leaves the folder is refused.
            if (file->empty() || file->find('/') != std::string::npos || file->find('\\') != std::string::npos || *file == "." ||
                *file == "..")
                throw format_error("'" + index.string() + "': weight_map \"" + tensor + "\" names '" + *file +
                                   "', not a file in the folder");
            by_shard[*file].push_back(tensor);
        }
        for (const auto& [file, names] : by_shard) {
            const auto path = dir / file;
            std::error_code ec;
            if (!std::filesystem::exists(path, ec))
                throw io_error("'" + index.string() + "' names the shard '" + file + "', which is missing (it holds '" + names.front() +
                               "')");
            const safetensors_file& shard = add_file(path);
            for (const auto& name : names)
                if (shard.find(name) == nullptr)
                    throw format_error("'" + index.string() + "' places tensor '" + name + "' in '" + file + "', which does not hold it");
        }
    }

    const safetensors_file& add_file(const std::filesystem::path& path) {
        files_.push_back(safetensors_file::open(path));
        const safetensors_file& f = files_.back();
        for (const auto& t : f.tensors()) {
            const auto [it, added] = index_.emplace(t.name, &t);
            if (!added) throw format_error("safetensors '" + f.source() + "': tensor '" + t.name + "' is also in another shard");
        }
        return f;
    }

    std::deque<safetensors_file> files_;  ///< a deque: the index points into files that never move
    std::map<std::string, const safetensors_tensor*, std::less<>> index_;
};

}  // namespace cogqat::io
