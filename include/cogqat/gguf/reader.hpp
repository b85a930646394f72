#pragma once
// Reading GGUF v3 files. The reader memory-maps a file and checks every structural rule before it hands out
// views into the bytes. Hostile input is answered with a format_error naming the byte offset, never with a
// crash, an overflow or a huge allocation (docs/gguf.md; scripts/fuzz.sh fuzzes it).

#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#if __has_include(<sys/mman.h>) && __has_include(<sys/stat.h>) && __has_include(<fcntl.h>) && __has_include(<unistd.h>)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include "cogqat/core/error.hpp"
#include "cogqat/core/matrix_shape.hpp"
#include "cogqat/gguf/split.hpp"
#include "cogqat/gguf/value.hpp"
#include "cogqat/io/file.hpp"

namespace cogqat::gguf {

namespace detail {

/// The bytes a reader parsed: a read-only mapping it owns, or memory the caller owns. Moving hands the
/// mapping over and leaves the source empty, so a moved-from reader holds no dangling view.
class byte_source {
public:
    byte_source() = default;
    explicit byte_source(std::span<const std::byte> borrowed) noexcept : bytes_(borrowed) {}
    byte_source(byte_source&& other) noexcept
            : bytes_(std::exchange(other.bytes_, {})),
              mapping_(std::exchange(other.mapping_, nullptr)),
              mapping_size_(std::exchange(other.mapping_size_, 0)),
              owned_(std::move(other.owned_)) {}
    byte_source& operator=(byte_source&& other) noexcept {
        if (this != &other) {
            release();
            bytes_ = std::exchange(other.bytes_, {});
            mapping_ = std::exchange(other.mapping_, nullptr);
            mapping_size_ = std::exchange(other.mapping_size_, 0);
            owned_ = std::move(other.owned_);
        }
        return *this;
    }
    byte_source(const byte_source&) = delete;
    byte_source& operator=(const byte_source&) = delete;
    ~byte_source() { release(); }

    [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return bytes_; }

    /// The whole of `path`, memory-mapped read-only (read into memory where there is no mmap).
    [[nodiscard]] static byte_source map(const std::filesystem::path& path) {
        byte_source source;
#if __has_include(<sys/mman.h>) && __has_include(<sys/stat.h>) && __has_include(<fcntl.h>) && __has_include(<unistd.h>)
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) throw io_error("cannot open '" + path.string() + "' for reading: " + std::strerror(errno));
        struct fd_closer {
            int fd;
            ~fd_closer() { ::close(fd); }
        } closer{fd};
        struct stat st {};
        if (::fstat(fd, &st) != 0) throw io_error("cannot stat '" + path.string() + "': " + std::strerror(errno));
        if (!S_ISREG(st.st_mode)) throw io_error("cannot read '" + path.string() + "': not a regular file");
        if (st.st_size <= 0) return source;  // mmap refuses length 0; an empty file is simply no bytes
        if (static_cast<std::uint64_t>(st.st_size) > std::numeric_limits<std::size_t>::max()) {
            throw io_error("cannot map '" + path.string() + "': too large for this address space");
        }
        const auto size = static_cast<std::size_t>(st.st_size);
        void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) throw io_error("cannot map '" + path.string() + "': " + std::strerror(errno));
        source.mapping_ = p;
        source.mapping_size_ = size;
        source.bytes_ = {static_cast<const std::byte*>(p), size};
#else
        source.owned_ = io::read_file(path);
        source.bytes_ = source.owned_;
#endif
        return source;
    }

    /// Lets the kernel drop the mapped pages wholly inside `range` (part of bytes()): touched again, they are read
    /// from the file again, so only the memory they hold changes. Nothing happens without a mapping.
    void release_pages(std::span<const std::byte> range) const noexcept {
#if __has_include(<sys/mman.h>) && __has_include(<sys/stat.h>) && __has_include(<fcntl.h>) && __has_include(<unistd.h>)
        if (mapping_ == nullptr || range.empty()) return;
        const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
        const auto low = reinterpret_cast<std::uintptr_t>(mapping_), high = low + mapping_size_;
        auto begin = reinterpret_cast<std::uintptr_t>(range.data()), end = begin + range.size();
        if (begin < low || end > high || page == 0) return;
        begin = (begin + page - 1) / page * page;
        end = end / page * page;
        if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
#else
        (void)range;
#endif
    }

private:
    void release() noexcept {
#if __has_include(<sys/mman.h>) && __has_include(<sys/stat.h>) && __has_include(<fcntl.h>) && __has_include(<unistd.h>)
        if (mapping_ != nullptr) ::munmap(mapping_, mapping_size_);
#endif
        mapping_ = nullptr;
        mapping_size_ = 0;
        bytes_ = {};
    }

    std::span<const std::byte> bytes_;
    void* mapping_ = nullptr;
    std::size_t mapping_size_ = 0;
    std::vector<std::byte> owned_;
};

[[noreturn]] inline void fail(std::uint64_t offset, std::string_view context, std::string message) {
    message = "GGUF: " + message + " (at byte offset " + std::to_string(offset);
    if (!context.empty()) {
        message += ", ";
        message += context;
    }
    message += ')';
    throw format_error(message);
}

/// A type id as the file stores it: an int32, so a negative one reads as negative.
[[nodiscard]] inline std::string id_string(std::uint32_t id) { return std::to_string(static_cast<std::int32_t>(id)); }

/// The smallest encoding of one element of `t`: its fixed size, a string's length field, or an array's
/// element type and count. Multiplying a count by it bounds what the rest of the file can hold.
[[nodiscard]] constexpr std::uint64_t min_encoded_size(value_type t) noexcept {
    constexpr std::array<std::uint8_t, 13> sizes{1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8};
    return sizes[static_cast<std::uint32_t>(t)];
}

/// Reads the little-endian fields of a GGUF file with a bounds check before every access.
class cursor {
public:
    explicit cursor(std::span<const std::byte> bytes) noexcept : bytes_(bytes) {}

    [[nodiscard]] std::uint64_t offset() const noexcept { return pos_; }
    [[nodiscard]] std::uint64_t remaining() const noexcept { return bytes_.size() - pos_; }

    void require(std::uint64_t n, std::string_view what, std::string_view context) const {
        if (n > remaining()) {
            fail(pos_, context,
                 "truncated: " + std::to_string(n) + " bytes needed for " + std::string(what) + ", " + std::to_string(remaining()) +
                         " remain");
        }
    }

    template <LittleEndianScalar T>
    [[nodiscard]] T read(std::string_view what, std::string_view context) {
        require(sizeof(T), what, context);
        const T v = load_le<T>(bytes_.data() + pos_);
        pos_ += sizeof(T);
        return v;
    }

    [[nodiscard]] std::string read_string(std::string_view what, std::string_view context) {
        const auto at = pos_;
        const auto n = read<std::uint64_t>("the length of " + std::string(what), context);
        if (n > remaining()) {
            fail(at, context,
                 "string length " + std::to_string(n) + " of " + std::string(what) + " exceeds the " + std::to_string(remaining()) +
                         " bytes that remain");
        }
        std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<std::size_t>(n));
        pos_ += n;
        return s;
    }

private:
    std::span<const std::byte> bytes_;
    std::uint64_t pos_ = 0;
};

[[nodiscard]] inline bool read_bool(cursor& c, std::string_view context) {
    const auto at = c.offset();
    const auto b = c.read<std::uint8_t>("a bool", context);
    // Any other byte would read back differently from how it was written.
    if (b > 1) fail(at, context, "boolean value " + std::to_string(b) + " is neither 0 nor 1");
    return b == 1;
}

[[nodiscard]] inline value read_array(cursor& c, std::string_view context, std::size_t depth);

template <class T>
[[nodiscard]] value read_scalar(cursor& c, std::string_view context) {
    if constexpr (std::same_as<T, bool>)
        return value(read_bool(c, context));
    else if constexpr (std::same_as<T, std::string>)
        return value(c.read_string("a string value", context));
    else
        return value(c.read<T>("a " + std::string(type_name(value_type_of<T>())) + " value", context));
}

/// The value of type `type_id` (read at `type_at`) that follows. `depth` counts the arrays around it.
[[nodiscard]] inline value read_value(cursor& c, std::uint32_t type_id, std::uint64_t type_at, std::string_view context,
                                      std::size_t depth) {
    if (!known_type(type_id)) fail(type_at, context, "unknown value type " + id_string(type_id));
    return visit_type(static_cast<value_type>(type_id), [&]<class T>(std::type_identity<T>) -> value {
        if constexpr (std::same_as<T, value>)
            return read_array(c, context, depth);
        else
            return read_scalar<T>(c, context);
    });
}

/// An array's element type, count and elements.
inline value read_array(cursor& c, std::string_view context, std::size_t depth) {
    if (depth >= max_array_depth) fail(c.offset(), context, "arrays nested more than " + std::to_string(max_array_depth) + " deep");
    const auto type_at = c.offset();
    const auto type_id = c.read<std::uint32_t>("an array element type", context);
    if (!known_type(type_id)) fail(type_at, context, "unknown value type " + id_string(type_id) + " of array elements");
    const auto element_type = static_cast<value_type>(type_id);
    const auto count_at = c.offset();
    const auto count = c.read<std::uint64_t>("an array length", context);
    // Checked before anything is allocated: a count the remaining bytes cannot hold is a lie.
    if (count > c.remaining() / min_encoded_size(element_type)) {
        fail(count_at, context,
             "array length " + std::to_string(count) + " of " + std::string(type_name(element_type)) + " elements cannot fit in the " +
                     std::to_string(c.remaining()) + " bytes that remain");
    }
    return visit_type(element_type, [&]<class T>(std::type_identity<T>) -> value {
        std::vector<T> elements;
        elements.reserve(static_cast<std::size_t>(count));
        for (std::uint64_t i = 0; i < count; ++i) {
            if constexpr (std::same_as<T, value>)
                elements.push_back(read_array(c, context, depth + 1));
            else if constexpr (std::same_as<T, bool>)
                elements.push_back(read_bool(c, context));
            else if constexpr (std::same_as<T, std::string>)
                elements.push_back(c.read_string("a string array element", context));
            else
                elements.push_back(c.read<T>("an array element", context));
        }
        return value(std::move(elements));
    });
}

}  // namespace detail

/// A parsed GGUF v3 file: its metadata and tensor infos, and views of the tensor data. Every structural rule
/// is checked while parsing (docs/gguf.md lists them), so the views it hands out are always in bounds. A split
/// model (gguf/split.hpp) opened by its first shard reads as one file: the first shard's metadata, and the
/// tensors of every shard in shard order.
class reader {
public:
    /// Memory-maps `path` read-only and parses it. The mapping lives as long as the reader (or whatever the
    /// reader is moved into). io_error when the file cannot be opened or mapped; format_error, prefixed by
    /// the path, when its bytes are not a valid GGUF v3 file. Note that another process truncating the file
    /// while it is mapped makes later reads of the views fault (SIGBUS), as with any mmap.
    ///
    /// When the file is the first shard of a split model (`split.count` above 1), every other shard is mapped
    /// and parsed too. io_error names a shard that is missing; format_error names the file for a shard that is
    /// not the first, a name that does not end in -00001-of-0000N.gguf, shards that disagree on split.count or
    /// split.tensors.count, a shard whose split.no is not its place in the set, a tensor in two shards, and a
    /// tensor count that is not split.tensors.count.
    [[nodiscard]] static reader open(const std::filesystem::path& path) {
        reader r = open_one(path);
        r.paths_.push_back(path);
        r.open_shards(path);
        return r;
    }

    /// Parses a GGUF file held in memory, without copying: the views point into `bytes`, which the caller
    /// keeps alive and unchanged as long as the reader is used. format_error when the bytes are not valid.
    [[nodiscard]] static reader parse(std::span<const std::byte> bytes) {
        reader r;
        r.source_ = detail::byte_source(bytes);
        r.parse_all();
        return r;
    }

    reader(reader&&) noexcept = default;
    reader& operator=(reader&&) noexcept = default;
    reader(const reader&) = delete;
    reader& operator=(const reader&) = delete;
    ~reader() = default;

    /// The format version (always 3).
    [[nodiscard]] std::uint32_t version() const noexcept { return version_; }
    /// The alignment of the data section and tensors: `general.alignment`, or 32 when absent.
    [[nodiscard]] std::uint32_t alignment() const noexcept { return alignment_; }
    /// The key/value pairs, in file order.
    [[nodiscard]] const std::vector<std::pair<std::string, value>>& metadata() const noexcept { return metadata_; }
    /// The value of `key`, or nullptr when the file has no such key.
    [[nodiscard]] const value* find(std::string_view key) const {
        const auto it = key_index_.find(key);
        return it == key_index_.end() ? nullptr : &metadata_[it->second].second;
    }
    /// The tensor infos, in file order (which is also the order of their data).
    [[nodiscard]] const std::vector<tensor_info>& tensors() const noexcept { return tensors_; }
    /// The tensor called `name`, or nullptr.
    [[nodiscard]] const tensor_info* find_tensor(std::string_view name) const {
        const auto it = tensor_index_.find(name);
        return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
    }
    /// The bytes of a tensor's data: `t.bytes()` bytes at `data_offset() + t.offset`. Always in bounds for the
    /// reader's own tensors; invalid_argument_error for a tensor_info that does not lie inside the data section.
    /// In a split model the data is in the shard that holds the tensor of that name (invalid_argument_error
    /// when no shard does).
    [[nodiscard]] std::span<const std::byte> tensor_data(const tensor_info& t) const {
        const auto bytes = t.bytes();
        std::span<const std::byte> file = source_.bytes();
        std::uint64_t data_offset = data_offset_;
        if (!tensor_shard_.empty()) {
            const auto it = tensor_index_.find(t.name);
            if (it == tensor_index_.end())
                throw invalid_argument_error("gguf::reader::tensor_data: no shard of this split model holds tensor " +
                                             detail::quoted(t.name));
            if (const auto shard = tensor_shard_[it->second]; shard != 0) {
                file = shards_[shard - 1].source.bytes();
                data_offset = shards_[shard - 1].data_offset;
            }
        }
        if (data_offset > file.size()) throw invalid_argument_error("gguf::reader::tensor_data: the reader holds no file (moved from?)");
        const auto data_size = file.size() - data_offset;
        if (t.offset > data_size || bytes > data_size - t.offset) {
            throw invalid_argument_error("gguf::reader::tensor_data: tensor " + detail::quoted(t.name) + " (" + std::to_string(bytes) +
                                         " bytes at offset " + std::to_string(t.offset) + ") lies outside the " +
                                         std::to_string(data_size) + "-byte data section");
        }
        return file.subspan(static_cast<std::size_t>(data_offset + t.offset), static_cast<std::size_t>(bytes));
    }
    /// Gives back the memory that the mapped pages of tensor t hold, once a command is done reading it (a page it
    /// shares with a neighbour stays). Reading t again reads the file again.
    void release_pages(const tensor_info& t) const noexcept {
        try {
            const auto data = tensor_data(t);
            source_.release_pages(data);
            for (const auto& shard : shards_) shard.source.release_pages(data);
        } catch (const error&) {
            // A tensor outside the data holds no pages of ours.
        }
    }
    /// Where the data section starts, from the start of the file (a multiple of the alignment).
    [[nodiscard]] std::uint64_t data_offset() const noexcept { return data_offset_; }
    /// The size of the file (or buffer) in bytes; of the first shard for a split model.
    [[nodiscard]] std::uint64_t file_size() const noexcept { return source_.bytes().size(); }
    /// The number of files the model was read from: 1, or the shards of a split model.
    [[nodiscard]] std::size_t shard_count() const noexcept { return 1 + shards_.size(); }
    /// The files the model was read from, first shard first (empty for a reader of bytes in memory).
    [[nodiscard]] const std::vector<std::filesystem::path>& paths() const noexcept { return paths_; }
    /// The size of every file the model was read from, together.
    [[nodiscard]] std::uint64_t total_size() const noexcept {
        std::uint64_t n = file_size();
        for (const auto& s : shards_) n += s.source.bytes().size();
        return n;
    }

private:
    reader() = default;

    /// A shard after the first: its mapping, its path for messages, and where its data section starts.
    struct shard_file {
        std::filesystem::path path;
        detail::byte_source source;
        std::uint64_t data_offset = 0;
    };

    [[nodiscard]] static reader open_one(const std::filesystem::path& path) {
        auto source = detail::byte_source::map(path);
        try {
            reader r = parse(source.bytes());
            r.source_ = std::move(source);
            return r;
        } catch (const format_error& e) {
            throw format_error("'" + path.string() + "': " + e.what());
        }
    }

    void open_shards(const std::filesystem::path& first);
    void add_shard(const std::filesystem::path& path, std::uint32_t index, std::uint32_t count, std::uint64_t tensor_count);

    /// Parses the whole file: header, metadata, tensor infos, then the data section's layout.
    void parse_all();
    struct counts {
        std::uint64_t tensors, key_values;
    };
    counts read_header(detail::cursor& c);
    void read_metadata(detail::cursor& c, std::uint64_t kv_count);
    std::vector<std::uint64_t> read_tensor_infos(detail::cursor& c, std::uint64_t tensor_count);
    void check_data_section(std::uint64_t infos_end, const std::vector<std::uint64_t>& offset_at);

    detail::byte_source source_;
    std::uint32_t version_ = 0;
    std::uint32_t alignment_ = default_alignment;
    std::vector<std::pair<std::string, value>> metadata_;
    std::map<std::string, std::size_t, std::less<>> key_index_;
    std::vector<tensor_info> tensors_;
    std::map<std::string, std::size_t, std::less<>> tensor_index_;
    std::uint64_t data_offset_ = 0;
    std::vector<shard_file> shards_;           ///< the shards after the first, of a split model
    std::vector<std::uint32_t> tensor_shard_;  ///< per tensor, its shard (0: the first); empty when not split
    std::vector<std::filesystem::path> paths_;
};

namespace detail {

/// The uint16 `key` of a shard (split.no or split.count, as gguf-split writes them), or nothing when absent.
[[nodiscard]] inline std::optional<std::uint32_t> split_u16(const reader& r, std::string_view key, const std::filesystem::path& path) {
    const value* v = r.find(key);
    if (!v) return std::nullopt;
    if (v->type() != value_type::uint16)
        throw format_error("'" + path.string() + "': " + std::string(key) + " must be a uint16, not a " +
                           std::string(type_name(v->type())));
    return v->as<std::uint16_t>();
}

/// split.tensors.count of a shard (int32, as gguf-split writes it), or nothing when absent.
[[nodiscard]] inline std::optional<std::uint64_t> split_tensor_count(const reader& r, const std::filesystem::path& path) {
    const value* v = r.find(split_tensors_count_key);
    if (!v) return std::nullopt;
    if (v->type() != value_type::int32 || v->as<std::int32_t>() < 0)
        throw format_error("'" + path.string() + "': " + std::string(split_tensors_count_key) + " must be a non-negative int32, not " +
                           std::string(type_name(v->type())) + " " + v->to_string());
    return static_cast<std::uint64_t>(v->as<std::int32_t>());
}

}  // namespace detail

inline void reader::open_shards(const std::filesystem::path& first) {
    const auto count = detail::split_u16(*this, split_count_key, first);
    if (!count) return;
    const std::string where = "'" + first.string() + "': ";
    const std::uint32_t no = detail::split_u16(*this, split_no_key, first).value_or(0);
    if (*count == 0) throw format_error(where + "split.count is 0: a split model has at least one shard");
    if (no >= *count)
        throw format_error(where + "split.no " + std::to_string(no) + " is not below split.count " + std::to_string(*count) +
                           ": not a shard of a valid set");
    if (no != 0) {
        const auto prefix = split_prefix(first, no, *count);
        throw format_error(where + "this is shard " + std::to_string(no + 1) + " of " + std::to_string(*count) +
                           " of a split model; open the first shard" +
                           (prefix ? ", '" + split_path(*prefix, 0, *count).string() + "'" : std::string()));
    }
    if (*count == 1) return;  // a set of one shard is a whole model
    const auto prefix = split_prefix(first, 0, *count);
    if (!prefix)
        throw format_error(where + "split.count is " + std::to_string(*count) + ", but the name does not end in '" +
                           split_path("", 0, *count).string() + "', so the other shards cannot be found (llama.cpp names them so)");
    const auto tensor_count = detail::split_tensor_count(*this, first);
    if (!tensor_count) throw format_error(where + "a split model's first shard must hold " + std::string(split_tensors_count_key));
    tensor_shard_.assign(tensors_.size(), 0);
    for (std::uint32_t i = 1; i < *count; ++i) add_shard(split_path(*prefix, i, *count), i, *count, *tensor_count);
    if (tensors_.size() != *tensor_count)
        throw format_error(where + std::string(split_tensors_count_key) + " is " + std::to_string(*tensor_count) + ", but the " +
                           std::to_string(*count) + " shards hold " + std::to_string(tensors_.size()) + " tensors");
}

inline void reader::add_shard(const std::filesystem::path& path, std::uint32_t index, std::uint32_t count, std::uint64_t tensor_count) {
    const std::string set = "shard " + std::to_string(index + 1) + " of " + std::to_string(count) + " of '" + paths_.front().string() + "'";
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw io_error("'" + path.string() + "': missing: it is " + set);
    reader part = open_one(path);
    const std::string where = "'" + path.string() + "' (" + set + "): ";
    const auto part_count = detail::split_u16(part, split_count_key, path);
    const auto part_no = detail::split_u16(part, split_no_key, path);
    if (!part_count || !part_no) throw format_error(where + "not part of a split set: it has no split.count or split.no");
    if (*part_count != count)
        throw format_error(where + "its split.count is " + std::to_string(*part_count) + ", the first shard's " + std::to_string(count) +
                           ": not part of this set");
    if (*part_no != index)
        throw format_error(where + "its split.no is " + std::to_string(*part_no) + ", expected " + std::to_string(index) +
                           ": not part of this set");
    if (const auto n = detail::split_tensor_count(part, path); n && *n != tensor_count)
        throw format_error(where + "its split.tensors.count is " + std::to_string(*n) + ", the first shard's " +
                           std::to_string(tensor_count) + ": not part of this set");
    for (auto& t : part.tensors_) {
        if (const auto it = tensor_index_.find(t.name); it != tensor_index_.end()) {
            const auto other = tensor_shard_[it->second];
            throw format_error(where + "tensor " + detail::quoted(t.name) + " is also in '" + paths_[other].string() + "'");
        }
        tensor_index_.emplace(t.name, tensors_.size());
        tensors_.push_back(std::move(t));
        tensor_shard_.push_back(index);
    }
    shards_.push_back({path, std::move(part.source_), part.data_offset_});
    paths_.push_back(path);
}

inline void reader::parse_all() {
    const auto bytes = source_.bytes();
    detail::cursor c(bytes);
    const auto [tensor_count, kv_count] = read_header(c);
    read_metadata(c, kv_count);
    const auto offset_at = read_tensor_infos(c, tensor_count);
    check_data_section(c.offset(), offset_at);
}

inline reader::counts reader::read_header(detail::cursor& c) {
    using detail::fail;
    const auto bytes = source_.bytes();
    c.require(4, "the magic 'GGUF'", {});
    if (std::memcmp(bytes.data(), "GGUF", 4) != 0) {
        fail(0, {},
             "bad magic " + detail::quoted({reinterpret_cast<const char*>(bytes.data()), 4}) + ", expected 'GGUF' (not a GGUF file)");
    }
    static_cast<void>(c.read<std::uint32_t>("the magic", {}));

    version_ = c.read<std::uint32_t>("the version", {});
    if (version_ != format_version) {
        std::string hint;
        if (version_ != 0 && (version_ & 0xFFFFu) == 0) hint = "; a big-endian file?";
        fail(4, {}, "unsupported GGUF version " + std::to_string(version_) + " (only version 3 is read" + hint + ")");
    }

    const auto tensor_count = c.read<std::uint64_t>("the tensor count", {});
    const auto kv_count = c.read<std::uint64_t>("the key/value count", {});
    // Each tensor info and each key/value pair takes a minimum number of bytes, so a count the rest of the file
    // cannot hold is refused before anything is reserved: a count near 2^64 never allocates or loops.
    constexpr std::uint64_t min_tensor_info = 8 + 4 + 8 + 4 + 8;  // name length, n_dims, ne[0], type, offset
    constexpr std::uint64_t min_kv = 8 + 4 + 1;                   // key length, value type, a one-byte value
    if (tensor_count > c.remaining() / min_tensor_info) {
        fail(8, {},
             "tensor count " + std::to_string(tensor_count) + " cannot fit in the " + std::to_string(c.remaining()) +
                     " bytes after the header");
    }
    if (kv_count > c.remaining() / min_kv || kv_count * min_kv > c.remaining() - tensor_count * min_tensor_info) {
        fail(16, {},
             "key/value count " + std::to_string(kv_count) + " (with " + std::to_string(tensor_count) + " tensors) cannot fit in the " +
                     std::to_string(c.remaining()) + " bytes after the header");
    }
    return {tensor_count, kv_count};
}

inline void reader::read_metadata(detail::cursor& c, std::uint64_t kv_count) {
    using detail::fail;
    metadata_.reserve(static_cast<std::size_t>(kv_count));
    std::optional<std::uint64_t> alignment_type_at;
    for (std::uint64_t i = 0; i < kv_count; ++i) {
        const auto key_at = c.offset();
        std::string key = c.read_string("a key", "key #" + std::to_string(i));
        const std::string context = "key " + detail::quoted(key);
        if (key_index_.contains(key)) fail(key_at, context, "duplicate key " + detail::quoted(key));
        const auto type_at = c.offset();
        const auto type_id = c.read<std::uint32_t>("a value type", context);
        value v = detail::read_value(c, type_id, type_at, context, 0);
        if (key == "general.alignment") alignment_type_at = type_at;
        key_index_.emplace(key, metadata_.size());
        metadata_.emplace_back(std::move(key), std::move(v));
    }

    if (alignment_type_at) {
        const value& a = *find("general.alignment");
        if (a.type() != value_type::uint32) {
            fail(*alignment_type_at, "key 'general.alignment'",
                 "general.alignment must be a uint32, not a " + std::string(type_name(a.type())));
        }
        alignment_ = a.as<std::uint32_t>();
        if (!std::has_single_bit(alignment_)) {
            fail(*alignment_type_at + 4, "key 'general.alignment'",
                 "general.alignment " + std::to_string(alignment_) + " is not a power of two");
        }
    }
}

inline std::vector<std::uint64_t> reader::read_tensor_infos(detail::cursor& c, std::uint64_t tensor_count) {
    using detail::fail;
    tensors_.reserve(static_cast<std::size_t>(tensor_count));
    std::vector<std::uint64_t> offset_at;  // where each tensor's offset field is, for the messages of check_data_section
    offset_at.reserve(static_cast<std::size_t>(tensor_count));
    for (std::uint64_t i = 0; i < tensor_count; ++i) {
        tensor_info t;
        const auto name_at = c.offset();
        t.name = c.read_string("a tensor name", "tensor #" + std::to_string(i));
        const std::string context = "tensor " + detail::quoted(t.name);
        if (tensor_index_.contains(t.name)) fail(name_at, context, "duplicate tensor name " + detail::quoted(t.name));

        const auto dims_at = c.offset();
        const auto n_dims = c.read<std::uint32_t>("n_dims", context);
        if (n_dims == 0 || n_dims > 4) fail(dims_at, context, "n_dims " + std::to_string(n_dims) + " is not 1 to 4");
        t.shape.resize(n_dims);
        for (std::uint32_t d = 0; d < n_dims; ++d) {
            const auto at = c.offset();
            t.shape[d] = c.read<std::uint64_t>("ne[" + std::to_string(d) + "]", context);
            if (t.shape[d] > detail::max_int64) {
                fail(at, context,
                     "ne[" + std::to_string(d) + "] = " + std::to_string(static_cast<std::int64_t>(t.shape[d])) + " is negative");
            }
        }

        const auto type_at = c.offset();
        const auto type_id = c.read<std::uint32_t>("the tensor type", context);
        const auto type = find_type(type_id);
        if (!type) fail(type_at, context, "unknown tensor type id " + detail::id_string(type_id));
        t.type = type->type;
        if (t.shape[0] % type->block_size != 0) {
            fail(dims_at + 4, context,
                 "ne[0] = " + std::to_string(t.shape[0]) + " is not a multiple of the block size " + std::to_string(type->block_size) +
                         " of " + std::string(type->name));
        }
        if (!detail::size_of(t.shape, *type)) {
            fail(dims_at + 4, context,
                 "the size of shape " + cogqat::shape_text(t.shape) + " of " + std::string(type->name) + " overflows");
        }

        offset_at.push_back(c.offset());
        t.offset = c.read<std::uint64_t>("the tensor data offset", context);
        tensor_index_.emplace(t.name, tensors_.size());
        tensors_.push_back(std::move(t));
    }
    return offset_at;
}

inline void reader::check_data_section(std::uint64_t infos_end, const std::vector<std::uint64_t>& offset_at) {
    using detail::fail;
    const auto bytes = source_.bytes();
    const auto data_offset = detail::align_up(infos_end, alignment_);
    if (!data_offset || *data_offset > bytes.size()) {
        fail(infos_end, {},
             "truncated: the data section starts at the next multiple of " + std::to_string(alignment_) + ", past the end of the " +
                     std::to_string(bytes.size()) + "-byte file");
    }
    data_offset_ = *data_offset;
    const std::uint64_t data_size = bytes.size() - data_offset_;

    // ggml loads a tensor only where it expects it: in info order, back to back, each padded to the alignment.
    // Requiring exactly that rules out overlaps, gaps and reordering in one check.
    std::uint64_t expected = 0;
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
        const auto& t = tensors_[i];
        const std::string context = "tensor " + detail::quoted(t.name);
        const auto size = detail::size_of(t.shape, info(t.type))->bytes;
        if (t.offset % alignment_ != 0) {
            fail(offset_at[i], context,
                 "tensor data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " + std::to_string(alignment_));
        }
        if (t.offset > data_size || size > data_size - t.offset) {
            fail(offset_at[i], context,
                 "tensor data of " + std::to_string(size) + " bytes at data offset " + std::to_string(t.offset) +
                         " runs past the end of the " + std::to_string(bytes.size()) + "-byte file, whose data section starts at byte " +
                         std::to_string(data_offset_) + " (truncated?)");
        }
        if (t.offset != expected) {
            fail(offset_at[i], context,
                 "tensor data offset " + std::to_string(t.offset) + ", expected " + std::to_string(expected) +
                         ": tensors must be stored in info order, back to back, each padded to the alignment (overlap or out of order)");
        }
        expected = *detail::align_up(t.offset + size, alignment_);  // t.offset + size <= data_size: no overflow
    }
    // ggml's writer pads after the last tensor too, and ggml reads that padding as part of the data section.
    if (expected > data_size) {
        fail(bytes.size(), {},
             "truncated: the data section needs " + std::to_string(expected) +
                     " bytes (padding after the last tensor included) from byte offset " + std::to_string(data_offset_) + ", but only " +
                     std::to_string(data_size) + " remain");
    }
}

}  // namespace cogqat::gguf
