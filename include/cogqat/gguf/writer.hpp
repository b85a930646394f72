#pragma once
// Writing GGUF v3 files: metadata held in memory, tensor data streamed one tensor at a time through an
// all-or-nothing io::output_file, so memory stays bounded by the largest tensor and the file appears only
// when complete (docs/gguf.md).

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/little_endian.hpp"
#include "cogqat/core/matrix_shape.hpp"
#include "cogqat/gguf/split.hpp"
#include "cogqat/gguf/value.hpp"
#include "cogqat/io/output_file.hpp"

namespace cogqat::gguf {

namespace detail {

/// Appends GGUF encodings to a byte buffer.
class encoder {
public:
    explicit encoder(std::vector<std::byte>& out) noexcept : out_(out) {}

    template <LittleEndianScalar T>
    void put(T v) {
        const auto at = out_.size();
        out_.resize(at + sizeof(T));
        store_le<T>(out_.data() + at, v);
    }
    void put_string(std::string_view s) {
        put<std::uint64_t>(s.size());
        const auto* p = reinterpret_cast<const std::byte*>(s.data());
        out_.insert(out_.end(), p, p + s.size());
    }
    /// A value without its type tag (the key/value pair or the enclosing array carries that).
    void put_payload(const value& v) {
        visit_type(v.type(), [&]<class T>(std::type_identity<T>) {
            if constexpr (std::same_as<T, value>)
                put_array(v);
            else if constexpr (std::same_as<T, std::string>)
                put_string(v.as_string());
            else if constexpr (std::same_as<T, bool>)
                put<std::uint8_t>(v.as<bool>() ? 1 : 0);
            else
                put<T>(v.as<T>());
        });
    }

private:
    void put_array(const value& v) {
        put<std::uint32_t>(static_cast<std::uint32_t>(v.array_type()));
        put<std::uint64_t>(v.array_size());
        visit_type(v.array_type(), [&]<class T>(std::type_identity<T>) {
            for (const auto& e : v.as_array<T>()) {
                if constexpr (std::same_as<T, value>)
                    put_array(e);
                else if constexpr (std::same_as<T, std::string>)
                    put_string(e);
                else if constexpr (std::same_as<T, bool>)
                    put<std::uint8_t>(e ? 1 : 0);
                else
                    put<T>(e);
            }
        });
    }

    std::vector<std::byte>& out_;
};

/// An output_file that pads to an alignment with zero bytes.
class file_sink {
public:
    explicit file_sink(const std::filesystem::path& path) : file_(path) {}

    void write(std::span<const std::byte> bytes) { file_.write(bytes); }
    /// Zero bytes up to the next multiple of `alignment`.
    void pad(std::uint64_t alignment) {
        static constexpr std::array<std::byte, 256> zeros{};
        auto n = (alignment - file_.written() % alignment) % alignment;
        while (n > 0) {
            const auto chunk = std::min<std::uint64_t>(n, zeros.size());
            write(std::span(zeros).first(static_cast<std::size_t>(chunk)));
            n -= chunk;
        }
    }
    /// Syncs and renames the file into place.
    void commit() { file_.commit(); }
    /// The bytes written so far.
    [[nodiscard]] std::uint64_t written() const noexcept { return file_.written(); }

private:
    io::output_file file_;
};

}  // namespace detail

/// Writes a GGUF v3 file, or a split set of them (set_split). Metadata is held in memory; tensor data is
/// produced one tensor at a time during finish(), so memory stays bounded by the largest tensor. The file, or
/// every shard, appears at its path only when all are complete.
class writer {
public:
    /// A function that writes a tensor's data into the buffer it is given (exactly the tensor's bytes, zeroed).
    using fill_function = std::function<void(std::span<std::byte>)>;

    /// A writer that will create `out` when finish() succeeds.
    explicit writer(std::filesystem::path out) : out_(std::move(out)) {}

    writer(writer&&) noexcept = default;
    writer& operator=(writer&&) noexcept = default;
    writer(const writer&) = delete;
    writer& operator=(const writer&) = delete;
    ~writer() = default;

    /// Sets `key` to `v`: an existing key keeps its place, a new one goes after the others. invalid_argument_error
    /// for a `general.alignment` that is not a uint32 power of two, arrays nested more than max_array_depth
    /// deep, or a writer already finished.
    void set(std::string key, value v) {
        require_open("set");
        if (key == "general.alignment" && (v.type() != value_type::uint32 || !std::has_single_bit(v.as<std::uint32_t>()))) {
            throw invalid_argument_error("gguf::writer::set: general.alignment must be a uint32 power of two, not " +
                                         std::string(type_name(v.type())) + " " + v.to_string());
        }
        if (detail::array_depth(v) > max_array_depth) {
            throw invalid_argument_error("gguf::writer::set: key " + detail::quoted(key) + ": arrays nested more than " +
                                         std::to_string(max_array_depth) + " deep");
        }
        for (auto& [k, existing] : metadata_) {
            if (k == key) {
                existing = std::move(v);
                return;
            }
        }
        metadata_.emplace_back(std::move(key), std::move(v));
    }

    /// Writes a split set (gguf/split.hpp) under `limits` instead of one file, when they are active: the
    /// shards are PREFIX-00001-of-0000N.gguf and so on, PREFIX being the output path without its .gguf
    /// extension. The first shard holds every key/value pair; each shard holds its tensors, the split.* keys
    /// and general.alignment when set. Inactive limits (both 0) write one file again.
    void set_split(split_limits limits) {
        require_open("set_split");
        split_ = limits;
    }

    /// The split limits set (inactive by default).
    [[nodiscard]] split_limits split() const noexcept { return split_; }

    /// The value set for `key`, or nullptr.
    [[nodiscard]] const value* find(std::string_view key) const {
        for (const auto& [k, v] : metadata_)
            if (k == key) return &v;
        return nullptr;
    }

    /// Adds a tensor whose data `fill` writes, once, during finish(), into a zeroed buffer of exactly the
    /// tensor's size: a caller can quantize on the fly. Tensors are stored in the order they are added.
    /// invalid_argument_error for an empty, over-long (> 63 bytes, which llama.cpp cannot load) or duplicate
    /// name, an unknown type or an empty `fill`; shape_error for 0 or more than 4 dimensions, ne[0] not a
    /// multiple of the type's block size, or a size that overflows.
    void add_tensor(std::string name, std::vector<std::uint64_t> shape, ggml_type type, fill_function fill) {
        require_open("add_tensor");
        if (name.empty() || name.size() > max_tensor_name_length) {
            throw invalid_argument_error("gguf::writer::add_tensor: tensor name " + detail::quoted(name) + " is " +
                                         std::to_string(name.size()) + " bytes long; ggml takes 1 to " +
                                         std::to_string(max_tensor_name_length));
        }
        if (tensor_names_.contains(name))
            throw invalid_argument_error("gguf::writer::add_tensor: duplicate tensor name " + detail::quoted(name));
        if (!fill) throw invalid_argument_error("gguf::writer::add_tensor: tensor " + detail::quoted(name) + " has no fill function");
        const std::string context = "gguf::writer::add_tensor: tensor " + detail::quoted(name);
        static_cast<void>(detail::checked_tensor_size(shape, type, context));
        tensor_names_.insert(name);
        tensors_.push_back({tensor_info{std::move(name), std::move(shape), type, 0}, std::move(fill)});
    }

    /// Adds a tensor with the given data, copied now (so `data` need not outlive the call). shape_error
    /// when `data` is not exactly the size of `shape` of `type`; otherwise as the overload above.
    void add_tensor(std::string name, std::vector<std::uint64_t> shape, ggml_type type, std::span<const std::byte> data) {
        require_open("add_tensor");
        const auto size = detail::checked_tensor_size(shape, type, "gguf::writer::add_tensor: tensor " + detail::quoted(name));
        if (data.size() != size.bytes) {
            throw shape_error("gguf::writer::add_tensor: tensor " + detail::quoted(name) + " of shape " + cogqat::shape_text(shape) +
                              " and type " + std::string(info(type).name) + " takes " + std::to_string(size.bytes) + " bytes, not " +
                              std::to_string(data.size()));
        }
        add_tensor(std::move(name), std::move(shape), type,
                   [copy = std::vector<std::byte>(data.begin(), data.end())](std::span<std::byte> out) {
                       std::copy(copy.begin(), copy.end(), out.begin());
                   });
    }

    /// Writes the file: header, key/value pairs, tensor infos, zero padding to the alignment (`general.alignment`
    /// if set, else 32), then each tensor's data padded to the alignment. The split.* keys are the writer's
    /// own: any set are left out, and a split set gets each shard's. All or nothing (io/output_file.hpp): on
    /// any exception (io_error, or whatever a fill function throws, passed on unchanged) no output file is
    /// changed; the shards of a split set are renamed into place only once all are written. A writer
    /// finishes once, whether or not that succeeds.
    void finish() {
        require_open("finish");
        finished_ = true;
        const std::uint32_t alignment = this->alignment();
        const auto shards = plan_shards();
        std::vector<detail::file_sink> sinks;
        sinks.reserve(shards.size());
        std::vector<std::byte> buffer;
        for (std::size_t s = 0; s < shards.size(); ++s) {
            const auto& shard = shards[s];
            assign_offsets(shard.begin, shard.end);
            auto& sink = sinks.emplace_back(shard.path);
            encode_header(s, shards.size(), shard.begin, shard.end, [&](std::vector<std::byte>& chunk) {
                sink.write(chunk);
                chunk.clear();
            });
            sink.pad(alignment);
            for (std::size_t i = shard.begin; i < shard.end; ++i) {
                const auto& t = tensors_[i];
                const auto size = t.info.bytes();
                if (size > std::numeric_limits<std::size_t>::max()) {
                    throw shape_error("gguf::writer::finish: tensor " + detail::quoted(t.info.name) + " does not fit in memory");
                }
                buffer.assign(static_cast<std::size_t>(size), std::byte{0});
                t.fill(buffer);
                sink.write(buffer);
                sink.pad(alignment);
            }
        }
        written_bytes_ = 0;
        for (const auto& sink : sinks) written_bytes_ += sink.written();
        for (auto& sink : sinks) sink.commit();
        for (const auto& shard : shards) written_paths_.push_back(shard.path);
    }

    /// The files finish() writes (or wrote): the output path, or the shards of a split set in order. Before
    /// finish() this is the plan for the tensors and types added so far.
    [[nodiscard]] std::vector<std::filesystem::path> output_paths() const {
        if (finished_ && !written_paths_.empty()) return written_paths_;
        std::vector<std::filesystem::path> paths;
        for (const auto& shard : plan_shards()) paths.push_back(shard.path);
        return paths;
    }

    /// The bytes finish() wrote, over every shard (0 before it succeeds).
    [[nodiscard]] std::uint64_t written_bytes() const noexcept { return written_bytes_; }

    /// The alignment of the tensor data: `general.alignment` if set, else 32.
    [[nodiscard]] std::uint32_t alignment() const {
        const value* a = find("general.alignment");
        return a ? a->as<std::uint32_t>() : default_alignment;
    }

    /// The size finish() would write now, without writing: the header (whose length does not depend on
    /// the tensor types) padded to the alignment, plus each tensor padded to it. What a size target needs.
    [[nodiscard]] std::uint64_t planned_file_size() {
        const std::uint64_t data = assign_offsets(0, tensors_.size());
        std::uint64_t header = 0;
        encode_header(0, 1, 0, tensors_.size(), [&](std::vector<std::byte>& chunk) {
            header += chunk.size();
            chunk.clear();
        });
        return *detail::align_up(header, alignment()) + data;
    }

    /// Changes the type of a tensor already added (its fill function must then write that type).
    void set_tensor_type(std::string_view name, ggml_type type) {
        require_open("set_tensor_type");
        for (auto& t : tensors_) {
            if (t.info.name != name) continue;
            static_cast<void>(detail::checked_tensor_size(t.info.shape, type,
                                                          "gguf::writer::set_tensor_type: tensor " + detail::quoted(t.info.name)));
            t.info.type = type;
            return;
        }
        throw invalid_argument_error("gguf::writer::set_tensor_type: no tensor " + detail::quoted(name));
    }

private:
    struct pending_tensor {
        tensor_info info;
        fill_function fill;
    };

    /// One file of the output: its path and the tensors [begin, end) it holds.
    struct shard_plan {
        std::filesystem::path path;
        std::size_t begin = 0, end = 0;
    };

    /// Sets the offsets of tensors [begin, end) within their file (they go into the tensor infos, ahead of the
    /// data); returns that file's data size.
    std::uint64_t assign_offsets(std::size_t begin, std::size_t end) {
        const std::uint32_t alignment = this->alignment();
        std::uint64_t offset = 0;
        for (std::size_t i = begin; i < end; ++i) {
            auto& t = tensors_[i];
            t.info.offset = offset;
            const auto next = detail::checked_add(offset, t.info.bytes());
            const auto padded = next ? detail::align_up(*next, alignment) : std::nullopt;
            if (!padded) throw shape_error("gguf::writer: the tensor data exceeds 2^64 bytes");
            offset = *padded;
        }
        return offset;
    }

    /// Whether a key/value pair goes into shard `shard`: the split.* keys never (encode_header writes them);
    /// after the first shard only general.alignment, which every shard's layout depends on.
    [[nodiscard]] static bool in_shard(std::string_view key, std::size_t shard) noexcept {
        if (is_split_key(key)) return false;
        return shard == 0 || key == "general.alignment";
    }

    /// The bytes of the encoded header of shard `shard` without its tensor infos.
    [[nodiscard]] std::uint64_t metadata_size(std::size_t shard) const {
        std::vector<std::byte> buffer;
        detail::encoder encode(buffer);
        std::uint64_t size = 4 + 4 + 8 + 8;
        for (const auto& [key, v] : metadata_) {
            if (!in_shard(key, shard)) continue;
            encode.put_string(key);
            encode.put<std::uint32_t>(0);
            encode.put_payload(v);
            size += buffer.size();
            buffer.clear();
        }
        if (split_.active()) size += split_key_size();
        return size;
    }

    /// The bytes of the three split.* pairs (their sizes do not depend on their values).
    [[nodiscard]] static std::uint64_t split_key_size() noexcept {
        return (8 + split_no_key.size() + 4 + 2) + (8 + split_count_key.size() + 4 + 2) + (8 + split_tensors_count_key.size() + 4 + 4);
    }

    /// The bytes of a tensor's info in the header.
    [[nodiscard]] static std::uint64_t info_size(const tensor_info& t) noexcept {
        return 8 + t.name.size() + 4 + 8 * t.shape.size() + 4 + 8;
    }

    /// The files to write: one, or the shards `split_` asks for (a shard closes before a tensor that would
    /// take its file past max_bytes, or its tensors past max_tensors; never empty of tensors but for a model
    /// with none).
    [[nodiscard]] std::vector<shard_plan> plan_shards() const {
        if (!split_.active()) return {{out_, 0, tensors_.size()}};
        const std::uint32_t alignment = this->alignment();
        const std::uint64_t first_header = metadata_size(0), other_header = metadata_size(1);
        std::vector<std::pair<std::size_t, std::size_t>> ranges{{0, 0}};
        std::uint64_t header = first_header, data = 0;
        for (std::size_t i = 0; i < tensors_.size(); ++i) {
            const auto& t = tensors_[i].info;
            const std::uint64_t padded = detail::align_up(t.bytes(), alignment).value_or(std::numeric_limits<std::uint64_t>::max());
            const std::size_t held = ranges.back().second - ranges.back().first;
            const auto size_with = [&] {
                const auto head = detail::align_up(header + info_size(t), alignment);
                const auto with_data = head ? detail::checked_add(*head, data) : std::nullopt;
                const auto total = with_data ? detail::checked_add(*with_data, padded) : std::nullopt;
                return total.value_or(std::numeric_limits<std::uint64_t>::max());
            };
            if (held > 0 &&
                ((split_.max_tensors != 0 && held >= split_.max_tensors) || (split_.max_bytes != 0 && size_with() > split_.max_bytes))) {
                ranges.emplace_back(i, i);
                header = other_header, data = 0;
            }
            header += info_size(t);
            data = detail::checked_add(data, padded).value_or(std::numeric_limits<std::uint64_t>::max());
            ++ranges.back().second;
        }
        if (ranges.size() > max_split_count) {
            throw invalid_argument_error("gguf::writer: the split limits make " + std::to_string(ranges.size()) +
                                         " shards; a set holds at most " + std::to_string(max_split_count));
        }
        const auto prefix = split_prefix_for(out_);
        const auto count = static_cast<std::uint32_t>(ranges.size());
        std::vector<shard_plan> plan;
        for (std::uint32_t s = 0; s < count; ++s) plan.push_back({split_path(prefix, s, count), ranges[s].first, ranges[s].second});
        return plan;
    }

    /// Encodes the header of shard `shard` of `count` holding tensors [begin, end): magic, version, counts,
    /// key/value pairs and tensor infos, handing out chunks (one per pair, so that a large vocabulary is not
    /// held twice); `sink` consumes and clears each.
    template <class Sink>
    void encode_header(std::size_t shard, std::size_t count, std::size_t begin, std::size_t end, Sink&& sink) const {
        std::vector<std::byte> buffer;
        detail::encoder encode(buffer);
        std::uint64_t pairs = split_.active() ? 3 : 0;
        for (const auto& [key, v] : metadata_) pairs += in_shard(key, shard) ? 1u : 0u;
        encode.put<std::uint32_t>(0x46554747u);  // "GGUF" read as a little-endian uint32
        encode.put<std::uint32_t>(format_version);
        encode.put<std::uint64_t>(end - begin);
        encode.put<std::uint64_t>(pairs);
        for (const auto& [key, v] : metadata_) {
            if (!in_shard(key, shard)) continue;
            encode.put_string(key);
            encode.put<std::uint32_t>(static_cast<std::uint32_t>(v.type()));
            encode.put_payload(v);
            sink(buffer);
        }
        if (split_.active()) {
            // The types llama.cpp's loader reads them as: uint16 index and count, int32 tensor count.
            const std::pair<std::string_view, value> keys[] = {
                    {split_no_key, value(static_cast<std::uint16_t>(shard))},
                    {split_count_key, value(static_cast<std::uint16_t>(count))},
                    {split_tensors_count_key, value(static_cast<std::int32_t>(tensors_.size()))}};
            for (const auto& [key, v] : keys) {
                encode.put_string(key);
                encode.put<std::uint32_t>(static_cast<std::uint32_t>(v.type()));
                encode.put_payload(v);
            }
        }
        for (std::size_t i = begin; i < end; ++i) {
            const auto& t = tensors_[i];
            encode.put_string(t.info.name);
            encode.put<std::uint32_t>(static_cast<std::uint32_t>(t.info.shape.size()));
            for (const auto ne : t.info.shape) encode.put<std::uint64_t>(ne);
            encode.put<std::uint32_t>(static_cast<std::uint32_t>(t.info.type));
            encode.put<std::uint64_t>(t.info.offset);
        }
        sink(buffer);
    }

    void require_open(std::string_view operation) const {
        if (finished_) throw invalid_argument_error("gguf::writer::" + std::string(operation) + ": the writer has already finished");
    }

    std::filesystem::path out_;
    std::vector<std::pair<std::string, value>> metadata_;
    std::vector<pending_tensor> tensors_;
    std::set<std::string, std::less<>> tensor_names_;
    split_limits split_;
    std::vector<std::filesystem::path> written_paths_;
    std::uint64_t written_bytes_ = 0;
    bool finished_ = false;
};

}  // namespace cogqat::gguf
