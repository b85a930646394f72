#pragma once
// A persistent AtomSpace on RocksDB: atoms stored, loaded whole, fetched by type or by incoming set, and
// deleted, with each truth value written at its type's own width (truth_value_bytes). Needs RocksDB
// (<rocksdb/db.h>, link RocksDB::rocksdb); that is why the umbrella header cogqat.hpp leaves it out.
//
// Key schema (docs/COGNITIVE.md, "Persistence"). Atoms get a database id, a 64-bit counter that never goes
// back, so that the file names atoms independently of any in-memory handle. An atom's outgoing atoms always
// have smaller ids than the atom (they are stored first), so one pass in key order loads everything.
//   "M:format"                      magic, format version, truth-value size and description
//   "M:count"                       next id, number of atoms (both u64, little-endian)
//   'Y' be16 type                   kind ('N' node, 'L' link, 'A' abstract), parent count and parent types
//                                   (be16), name: the database's own type table, names resolved per space
//   'A' be64 id                     the atom: le16 type, truth value bytes, then the node's name or the
//                                   link's outgoing ids (LEB128 varints)
//   'N' be16 type, name             -> id (varint)           node by content
//   'L' be16 type, varint ids       -> id (varint)           link by content (varints are prefix-free)
//   'T' be16 type, be64 id          (empty)                  atoms by type
//   'I' be64 target, be16 type, be64 link  (empty)           incoming sets, by target then link type
// Big-endian ids keep key order equal to id order; RocksDB's block prefix compression takes back the
// leading zero bytes.
//
// Durability: every call that changes the database writes one rocksdb::WriteBatch, so it happens entirely
// or not at all, through the write-ahead log. With durability::synced (the default) the log is fsynced
// before the call returns: a store that returned survives a crash of the process or of the machine. With
// durability::process_crash the log is written but not fsynced: a returned store survives the process
// being killed (the bytes are in the kernel), not a power loss, and stores run several times faster.
//
// One storage object per database at a time (RocksDB locks the directory); not thread-safe.

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/status.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "cogqat/cog/atom_types.hpp"
#include "cogqat/cog/atomspace.hpp"
#include "cogqat/cog/truth_value_bytes.hpp"
#include "cogqat/core/error.hpp"

namespace cogqat::cog {

/// Whether opening a rocks_storage may create the database.
enum class open_mode {
    open_existing,     ///< the directory must hold a database already
    create_if_missing  ///< creates one in a missing or empty directory (whose parent must exist)
};

/// How far a store or removal that returned is guaranteed to survive (see the header's opening comment).
enum class durability {
    synced,        ///< the write-ahead log is fsynced before returning: survives power loss
    process_crash  ///< the log is written, not fsynced: survives the process being killed
};

/// How rocks_storage opens its database.
struct rocks_options {
    /// Whether the database may be created.
    open_mode mode = open_mode::create_if_missing;
    /// How far every store or removal that returned survives.
    durability sync = durability::synced;
};

namespace detail::rocks_impl {

inline constexpr std::string_view format_key = "M:format";
inline constexpr std::string_view count_key = "M:count";
inline constexpr std::string_view magic = "cogqat-atomspace";
inline constexpr std::uint32_t format_version = 1;
inline constexpr char type_prefix = 'Y';
inline constexpr char atom_prefix = 'A';
inline constexpr char node_prefix = 'N';
inline constexpr char link_prefix = 'L';
inline constexpr char by_type_prefix = 'T';
inline constexpr char incoming_prefix = 'I';

inline void put_be(std::string& out, std::uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}
inline void put_le(std::string& out, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}
inline void put_varint(std::string& out, std::uint64_t v) {
    while (v >= 0x80) {
        out.push_back(static_cast<char>((v & 0x7Fu) | 0x80u));
        v >>= 7;
    }
    out.push_back(static_cast<char>(v));
}

/// Reads fixed-width and varint fields from a record; every read is bounds-checked.
class reader {
public:
    explicit reader(std::string_view bytes) : bytes_(bytes) {}
    [[nodiscard]] std::size_t left() const noexcept { return bytes_.size() - pos_; }
    [[nodiscard]] bool done() const noexcept { return pos_ == bytes_.size(); }
    [[nodiscard]] std::optional<std::uint64_t> be(int bytes) { return fixed(bytes, true); }
    [[nodiscard]] std::optional<std::uint64_t> le(int bytes) { return fixed(bytes, false); }
    [[nodiscard]] std::optional<std::uint64_t> varint() {
        std::uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (pos_ == bytes_.size()) return std::nullopt;
            const auto b = static_cast<unsigned char>(bytes_[pos_++]);
            if (shift == 63 && (b & 0x7Eu) != 0) return std::nullopt;  // more than 64 bits
            v |= std::uint64_t{b & 0x7Fu} << shift;
            if ((b & 0x80u) == 0) {
                // A non-canonical encoding (a trailing zero group) would give one link two keys.
                if (b == 0 && shift > 0) return std::nullopt;
                return v;
            }
        }
        return std::nullopt;
    }
    [[nodiscard]] std::optional<std::string_view> take(std::size_t n) {
        if (left() < n) return std::nullopt;
        const std::string_view out = bytes_.substr(pos_, n);
        pos_ += n;
        return out;
    }
    [[nodiscard]] std::string_view rest() noexcept {
        const std::string_view out = bytes_.substr(pos_);
        pos_ = bytes_.size();
        return out;
    }

private:
    std::optional<std::uint64_t> fixed(int bytes, bool big_endian) {
        const auto n = static_cast<std::size_t>(bytes);
        if (left() < n) return std::nullopt;
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const auto b = static_cast<unsigned char>(bytes_[pos_ + (big_endian ? i : n - 1 - i)]);
            v = (v << 8) | b;
        }
        pos_ += n;
        return v;
    }
    std::string_view bytes_;
    std::size_t pos_ = 0;
};

[[nodiscard]] inline std::string atom_key(std::uint64_t id) {
    std::string k(1, atom_prefix);
    put_be(k, id, 8);
    return k;
}
[[nodiscard]] inline std::string type_key(std::uint16_t t) {
    std::string k(1, type_prefix);
    put_be(k, t, 2);
    return k;
}
[[nodiscard]] inline std::string by_type_key(std::uint16_t t, std::uint64_t id) {
    std::string k(1, by_type_prefix);
    put_be(k, t, 2);
    put_be(k, id, 8);
    return k;
}
[[nodiscard]] inline std::string incoming_key(std::uint64_t target, std::uint16_t t, std::uint64_t link) {
    std::string k(1, incoming_prefix);
    put_be(k, target, 8);
    put_be(k, t, 2);
    put_be(k, link, 8);
    return k;
}
[[nodiscard]] inline std::string node_key(std::uint16_t t, std::string_view name) {
    std::string k(1, node_prefix);
    put_be(k, t, 2);
    k.append(name);
    return k;
}
[[nodiscard]] inline std::string link_key(std::uint16_t t, std::span<const std::uint64_t> outgoing) {
    std::string k(1, link_prefix);
    put_be(k, t, 2);
    for (const std::uint64_t id : outgoing) put_varint(k, id);
    return k;
}

/// A key as text for messages: its prefix letter, then hex.
[[nodiscard]] inline std::string key_text(std::string_view key) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    if (key.empty()) return "(empty key)";
    // The metadata keys are text; every other key is a letter and binary fields.
    if (std::all_of(key.begin(), key.end(), [](char c) { return c >= 0x20 && c < 0x7F; })) return std::string(key);
    out.push_back(key[0]);
    out.push_back(':');
    for (std::size_t i = 1; i < key.size() && i < 48; ++i) {
        const auto b = static_cast<unsigned char>(key[i]);
        out.push_back(hex[b >> 4]);
        out.push_back(hex[b & 0xFu]);
    }
    if (key.size() > 48) out += "...";
    return out;
}

[[nodiscard]] inline rocksdb::Slice slice(std::string_view s) noexcept { return {s.data(), s.size()}; }
[[nodiscard]] inline std::string_view view(const rocksdb::Slice& s) noexcept { return {s.data(), s.size()}; }

/// Whether `key` starts with `prefix`.
[[nodiscard]] inline bool has_prefix(std::string_view key, std::string_view prefix) noexcept {
    return key.size() >= prefix.size() && key.substr(0, prefix.size()) == prefix;
}

/// One type of the database's own table.
struct stored_type {
    char kind = 'A';  // 'N' node, 'L' link, 'A' neither (Atom and other abstract roots)
    std::string name;
    std::vector<std::uint16_t> parents;
};

/// One decoded atom record.
template <class TV>
struct stored_atom {
    std::uint16_t type = 0;
    TV tv{};
    std::string_view name;                // a node's name (views the record)
    std::vector<std::uint64_t> outgoing;  // a link's outgoing ids
};

}  // namespace detail::rocks_impl

/// An AtomSpace<TV>'s atoms in a RocksDB database directory. The storage and the spaces it fills are
/// separate: store() copies atoms of a space into the database, load() and the fetches copy them back into
/// any space (types are matched by name; user types are registered as the database has them).
template <StorableTruthValue TV>
class rocks_storage {
    using encoding = truth_value_bytes<TV>;
    static constexpr std::uint16_t unmapped = 0xFFFF;

public:
    /// The spaces this storage fills and stores.
    using space_type = AtomSpace<TV>;
    /// remove()'s modes, the space's own.
    using removal = typename space_type::removal;

    /// Opens (or, with open_mode::create_if_missing, creates) the database in directory `dir`. Throws
    /// io_error when the directory is missing, is not a directory, holds other files but no database, or
    /// is locked by another storage; format_error when it is not a cogqat AtomSpace database or is corrupt;
    /// invalid_argument_error when it stores another truth-value type than TV. Each message names the path.
    explicit rocks_storage(std::filesystem::path dir, rocks_options options = {}) : path_(std::move(dir)) {
        write_options_.sync = options.sync == durability::synced;
        check_directory(options.mode);
        open_database(options.mode);
        read_or_write_format();
        read_counters();
        read_types();
    }
    rocks_storage(rocks_storage&&) noexcept = default;
    rocks_storage& operator=(rocks_storage&&) noexcept = default;
    rocks_storage(const rocks_storage&) = delete;
    rocks_storage& operator=(const rocks_storage&) = delete;
    ~rocks_storage() = default;

    /// The database's directory.
    [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
    /// Number of atoms stored.
    [[nodiscard]] std::size_t size() const noexcept { return static_cast<std::size_t>(count_); }
    /// Whether no atom is stored.
    [[nodiscard]] bool empty() const noexcept { return count_ == 0; }

    // ---------------------------------------------------------------------------------------- storing

    /// Stores the atom `h` of `space` with its truth value (replacing a stored one), and every atom of its
    /// outgoing set, recursively, that is not stored yet (with its truth value; stored ones keep theirs).
    /// One atomic, durable write. Returns how many atoms were new to the database. Throws
    /// invalid_argument_error when `h` names no atom of `space`.
    std::size_t store(const space_type& space, handle h) { return store(space, std::span<const handle>(&h, 1)); }
    /// As above for several atoms, in one atomic write.
    std::size_t store(const space_type& space, std::span<const handle> atoms) {
        for (std::size_t k = 0; k < atoms.size(); ++k) {
            if (!space.contains(atoms[k])) {
                throw invalid_argument_error("rocks_storage::store: " + where() + ": atoms[" + std::to_string(k) + "] (" +
                                             to_string(atoms[k]) + ") names no atom of the space");
            }
        }
        write_context ctx(space, *this);
        for (const handle h : atoms) resolve(ctx, h, true);
        commit(ctx, "store");
        return ctx.added;
    }
    /// Stores every atom of `space` with its truth value, in one atomic write. Returns how many were new.
    std::size_t store_all(const space_type& space) {
        write_context ctx(space, *this);
        space.for_each_atom([&](handle h) { resolve(ctx, h, true); });
        commit(ctx, "store_all");
        return ctx.added;
    }

    // ---------------------------------------------------------------------------------------- loading

    /// Adds every stored atom to `space` with its stored truth value (an atom already there keeps its
    /// handle and takes the stored value). Returns the number of atoms read. Throws format_error naming the
    /// record when one does not decode (the atoms read before it stay in the space).
    std::size_t load(space_type& space) const {
        read_context ctx(space);
        std::unordered_map<std::uint64_t, handle> loaded;
        // Capped: the count comes from the file, and a damaged one must not ask for all memory at once.
        loaded.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(count_, std::uint64_t{1} << 24)));
        std::size_t n = 0;
        const std::string prefix(1, detail::rocks_impl::atom_prefix);
        for_each_with_prefix(prefix, [&](std::string_view key, std::string_view value) {
            const std::uint64_t id = id_of_atom_key(key);
            const auto atom = decode_atom(key, value);
            std::vector<handle> outgoing;
            outgoing.reserve(atom.outgoing.size());
            for (const std::uint64_t child : atom.outgoing) {
                const auto it = loaded.find(child);
                if (it == loaded.end()) throw corrupt(key, "outgoing atom #" + std::to_string(child) + " is not stored before it");
                outgoing.push_back(it->second);
            }
            loaded.emplace(id, add_to_space(ctx, key, atom, outgoing));
            ++n;
        });
        return n;
    }

    /// Adds to `space` every stored atom of type `t` (with `with_subtypes`, of a type descending from it in
    /// `space`'s registry), with the atoms of their outgoing sets. Returns their handles, type by type, in id
    /// order within a type.
    std::vector<handle> fetch_type(space_type& space, type_id t, bool with_subtypes = false) const {
        if (!space.types().contains(t))
            throw invalid_argument_error("rocks_storage::fetch_type: " + where() + ": unknown type id " + std::to_string(t));
        read_context ctx(space);
        std::vector<handle> out;
        for (std::size_t db = 0; db < types_.size(); ++db) {
            const type_id mapped = space_type_of(ctx, static_cast<std::uint16_t>(db));
            if (with_subtypes ? !space.types().is_a(mapped, t) : mapped != t) continue;
            std::string prefix(1, detail::rocks_impl::by_type_prefix);
            detail::rocks_impl::put_be(prefix, db, 2);
            for_each_with_prefix(prefix, [&](std::string_view key, std::string_view) {
                detail::rocks_impl::reader r(key.substr(prefix.size()));
                const auto id = r.be(8);
                if (!id || !r.done()) throw corrupt(key, "a type index key is not 11 bytes");
                out.push_back(fetch_atom(ctx, *id));
            });
        }
        return out;
    }

    /// Adds to `space` the stored links whose outgoing set holds `h` (each with its outgoing set). Returns
    /// their handles; none when `h` is not stored. Throws invalid_argument_error when `h` names no atom of
    /// `space`.
    std::vector<handle> fetch_incoming(space_type& space, handle h) const { return fetch_incoming_impl(space, h, std::nullopt, false); }
    /// As above, only the links of type `link_type` (with `with_subtypes`, of types descending from it).
    std::vector<handle> fetch_incoming(space_type& space, handle h, type_id link_type, bool with_subtypes = false) const {
        return fetch_incoming_impl(space, h, link_type, with_subtypes);
    }

    /// Whether the atom `h` of `space` is stored.
    [[nodiscard]] bool contains(const space_type& space, handle h) const {
        require_atom(space, h, "contains");
        return find_id(space, h).has_value();
    }
    /// The stored truth value of the atom `h` of `space`, if it is stored.
    [[nodiscard]] std::optional<TV> stored_truth_value(const space_type& space, handle h) const {
        require_atom(space, h, "stored_truth_value");
        const auto id = find_id(space, h);
        if (!id) return std::nullopt;
        const std::string key = detail::rocks_impl::atom_key(*id);
        std::string value;
        if (!get(key, value)) throw corrupt(key, "an index names this atom but its record is missing");
        return decode_atom(key, value).tv;
    }

    // ---------------------------------------------------------------------------------------- removal

    /// Deletes the atom `h` of `space` from the database (not from the space) and returns how many stored
    /// atoms went: 0 when it is not stored. A stored atom that stored links hold is deleted only with
    /// removal::recursive, together with every stored link above it; otherwise the call throws
    /// invalid_argument_error and changes nothing. One atomic, durable write.
    std::size_t remove(const space_type& space, handle h, removal mode = removal::refuse_if_held) {
        require_atom(space, h, "remove");
        const auto root = find_id(space, h);
        if (!root) return 0;
        std::vector<std::uint64_t> doomed;
        std::unordered_set<std::uint64_t> seen{*root};
        std::vector<std::uint64_t> stack{*root};
        while (!stack.empty()) {
            const std::uint64_t id = stack.back();
            stack.pop_back();
            doomed.push_back(id);
            for_each_incoming(id, [&](std::uint64_t link, std::uint16_t) {
                if (mode == removal::refuse_if_held) {
                    throw invalid_argument_error("rocks_storage::remove: " + where() + ": " + space.to_string(h) +
                                                 " is held by stored links; remove those first or ask for a recursive removal");
                }
                if (seen.insert(link).second) stack.push_back(link);
            });
        }
        rocksdb::WriteBatch batch;
        for (const std::uint64_t id : doomed) {
            const std::string key = detail::rocks_impl::atom_key(id);
            std::string value;
            if (!get(key, value)) throw corrupt(key, "an index names this atom but its record is missing");
            const auto atom = decode_atom(key, value);
            check(batch.Delete(detail::rocks_impl::slice(key)), "remove");
            check(batch.Delete(detail::rocks_impl::slice(content_key(atom))), "remove");
            check(batch.Delete(detail::rocks_impl::slice(detail::rocks_impl::by_type_key(atom.type, id))), "remove");
            for (const std::uint64_t child : atom.outgoing)
                check(batch.Delete(detail::rocks_impl::slice(detail::rocks_impl::incoming_key(child, atom.type, id))), "remove");
        }
        put_counters(batch, next_id_, count_ - doomed.size());
        write(batch, "remove");
        count_ -= doomed.size();
        return doomed.size();
    }

    // ----------------------------------------------------------------------------------- consistency

    /// Checks the whole database: every record decodes, every link's outgoing atoms are stored (with smaller
    /// ids), and the content, type and incoming indexes, the atom count and the id counter agree with the
    /// atom records, both ways. Throws format_error naming the first disagreement.
    void verify() const {
        namespace ri = detail::rocks_impl;
        // One scan of the records gives every index entry they need (key -> atom id); one scan of each index
        // then ticks them off. Hash lookups instead of a point read per entry: several times faster.
        std::unordered_map<std::uint64_t, std::uint16_t> atoms;    // id -> type
        std::unordered_map<std::string, std::uint64_t> wanted[3];  // content, type and incoming entries
        std::uint64_t max_id = 0;
        for_each_with_prefix(std::string(1, ri::atom_prefix), [&](std::string_view key, std::string_view value) {
            const std::uint64_t id = id_of_atom_key(key);
            const auto atom = decode_atom(key, value);
            for (const std::uint64_t child : atom.outgoing) {
                if (child >= id || !atoms.contains(child))
                    throw corrupt(key, "outgoing atom #" + std::to_string(child) + " is not stored before it");
            }
            if (!wanted[0].emplace(content_key(atom), id).second) throw corrupt(key, "another atom has the same type and content");
            wanted[1].emplace(ri::by_type_key(atom.type, id), id);
            for (const std::uint64_t child : atom.outgoing) wanted[2].emplace(ri::incoming_key(child, atom.type, id), id);
            atoms.emplace(id, atom.type);
            max_id = std::max(max_id, id);
        });
        if (atoms.size() != count_)
            throw corrupt(ri::count_key,
                          "counts " + std::to_string(count_) + " atoms where " + std::to_string(atoms.size()) + " are stored");
        if (!atoms.empty() && next_id_ <= max_id)
            throw corrupt(ri::count_key,
                          "the next id " + std::to_string(next_id_) + " is not above the largest stored id " + std::to_string(max_id));
        static constexpr const char* index_names[3] = {"content", "type", "incoming"};
        const auto tick = [&](int index, std::string_view key, std::optional<std::uint64_t> id) {
            const auto it = wanted[index].find(std::string(key));
            if (it == wanted[index].end() || (id && *id != it->second)) {
                throw corrupt(key, std::string("the ") + index_names[index] + " index names an atom that is not stored so");
            }
            wanted[index].erase(it);
        };
        for (const char prefix : {ri::node_prefix, ri::link_prefix}) {
            for_each_with_prefix(std::string(1, prefix),
                                 [&](std::string_view key, std::string_view value) { tick(0, key, decode_id(key, value)); });
        }
        for_each_with_prefix(std::string(1, ri::by_type_prefix),
                             [&](std::string_view key, std::string_view) { tick(1, key, std::nullopt); });
        for_each_with_prefix(std::string(1, ri::incoming_prefix),
                             [&](std::string_view key, std::string_view) { tick(2, key, std::nullopt); });
        static constexpr const char* lacks[3] = {"the content index does not name this atom", "the type index does not list this atom",
                                                 "the incoming index of one of its outgoing atoms does not list this link"};
        for (int index = 0; index < 3; ++index) {
            if (!wanted[index].empty()) throw corrupt(ri::atom_key(wanted[index].begin()->second), lacks[index]);
        }
    }

    /// Flushes the memory table and compacts the files, so that the directory holds the data alone, at its
    /// smallest (for measuring bytes on disk, or before copying the directory).
    void compact() {
        check(db_->Flush(rocksdb::FlushOptions()), "compact");
        check(db_->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr), "compact");
    }

private:
    using stored_atom = detail::rocks_impl::stored_atom<TV>;

    /// What one store or lookup call carries: the ids found or given so far, and the types and records it
    /// adds (written only when the batch is, so a failed write leaves this object as it was).
    struct write_context {
        write_context(const space_type& s, const rocks_storage& storage, bool creating = true)
                : space(s), create(creating), next_id(storage.next_id_), to_db(s.types().size(), unmapped) {}
        const space_type& space;
        bool create;
        std::uint64_t next_id;
        std::size_t added = 0;
        rocksdb::WriteBatch batch;
        std::unordered_map<handle, std::uint64_t> ids;
        std::unordered_set<handle> written;  // atoms whose record this batch puts
        std::vector<std::uint16_t> to_db;    // space type -> database type
        std::vector<detail::rocks_impl::stored_type> pending_types;
        std::unordered_map<std::string, std::uint16_t> pending_by_name;
    };
    /// What one load or fetch carries: the atoms added so far and the type mapping into the space.
    struct read_context {
        explicit read_context(space_type& s) : space(s) {}
        space_type& space;
        std::vector<type_id> to_space;
        std::unordered_map<std::uint64_t, handle> loaded;
    };

    // ------------------------------------------------------------------------------------------ opening

    [[nodiscard]] std::string where() const { return "\"" + path_.string() + "\""; }

    [[nodiscard]] rocksdb::DB& db() const {
        if (!db_) throw invalid_argument_error("rocks_storage: used after it was moved from");
        return *db_;
    }

    void check(const rocksdb::Status& status, std::string_view context) const {
        if (status.ok()) return;
        const std::string what = "rocks_storage::" + std::string(context) + ": " + where() + ": ";
        if (status.IsCorruption()) throw format_error(what + "the database is corrupt (RocksDB: " + status.ToString() + ")");
        throw io_error(what + "RocksDB: " + status.ToString());
    }

    [[nodiscard]] format_error corrupt(std::string_view key, const std::string& reason) const {
        return format_error("rocks_storage: " + where() + ": record " + detail::rocks_impl::key_text(key) + ": " + reason);
    }

    /// The files RocksDB itself puts in a database directory: a directory holding only these is one a
    /// creation was interrupted in, and may be created in again.
    [[nodiscard]] static bool is_rocksdb_file(const std::string& name) {
        const auto starts = [&](std::string_view p) { return name.starts_with(p); };
        const auto ends = [&](std::string_view p) { return name.ends_with(p); };
        return name == "CURRENT" || name == "LOCK" || name == "IDENTITY" || starts("LOG") || starts("MANIFEST-") || starts("OPTIONS-") ||
               ends(".dbtmp") || ends(".log") || ends(".sst") || ends(".blob");
    }

    void check_directory(open_mode mode) const {
        namespace fs = std::filesystem;
        std::error_code ec;
        const fs::file_status st = fs::status(path_, ec);
        if (!fs::exists(st)) {
            if (mode == open_mode::open_existing) throw io_error("rocks_storage: " + where() + ": no such directory");
            const fs::path parent = path_.parent_path();
            if (!parent.empty() && !fs::is_directory(parent, ec))
                throw io_error("rocks_storage: " + where() + ": its parent directory does not exist");
            return;
        }
        if (!fs::is_directory(st)) throw io_error("rocks_storage: " + where() + ": not a directory");
        if (fs::exists(path_ / "CURRENT", ec)) return;
        if (mode == open_mode::open_existing)
            throw io_error("rocks_storage: " + where() + ": the directory holds no database (no CURRENT file)");
        for (const auto& entry : fs::directory_iterator(path_, ec)) {
            if (!is_rocksdb_file(entry.path().filename().string())) {
                throw io_error("rocks_storage: " + where() + ": the directory holds other files (" + entry.path().filename().string() +
                               ") and no database; refusing to create one among them");
            }
        }
    }

    void open_database(open_mode mode) {
        rocksdb::Options options;
        options.create_if_missing = mode == open_mode::create_if_missing;
        options.keep_log_file_num = 4;  // RocksDB's own text logs, one per open
        rocksdb::DB* raw = nullptr;
        check(rocksdb::DB::Open(options, path_.string(), &raw), "open");
        db_.reset(raw);
    }

    [[nodiscard]] static std::string format_record() {
        std::string value(detail::rocks_impl::magic);
        detail::rocks_impl::put_le(value, detail::rocks_impl::format_version, 4);
        detail::rocks_impl::put_le(value, encoding::size, 4);
        value += encoding::description();
        return value;
    }

    void read_or_write_format() {
        namespace ri = detail::rocks_impl;
        std::string value;
        if (!get(ri::format_key, value)) {
            const std::unique_ptr<rocksdb::Iterator> it(db().NewIterator(rocksdb::ReadOptions()));
            it->SeekToFirst();
            if (it->Valid()) {
                throw format_error("rocks_storage: " + where() + ": not a cogqat AtomSpace database (it holds keys, such as " +
                                   ri::key_text(ri::view(it->key())) + ", but no format record)");
            }
            check(it->status(), "open");
            rocksdb::WriteBatch batch;
            check(batch.Put(ri::slice(ri::format_key), ri::slice(format_record())), "open");
            put_counters(batch, 0, 0);
            write(batch, "open");
            return;
        }
        ri::reader r(value);
        const auto magic = r.take(ri::magic.size());
        const auto version = r.le(4);
        const auto tv_size = r.le(4);
        if (!magic || *magic != ri::magic || !version) {
            throw format_error("rocks_storage: " + where() + ": not a cogqat AtomSpace database (its format record does not start with \"" +
                               std::string(ri::magic) + "\")");
        }
        if (*version != ri::format_version) {
            throw format_error("rocks_storage: " + where() + ": format version " + std::to_string(*version) +
                               "; this build reads version " + std::to_string(ri::format_version));
        }
        const std::string_view description = r.rest();
        if (!tv_size || *tv_size != encoding::size || description != encoding::description()) {
            throw invalid_argument_error("rocks_storage: " + where() + ": the database stores truth values as " + std::string(description) +
                                         "; this storage's truth value type " + std::string(TV::name) + " is " + encoding::description() +
                                         ": open it with the AtomSpace type it was written with");
        }
    }

    void read_counters() {
        namespace ri = detail::rocks_impl;
        std::string value;
        if (!get(ri::count_key, value)) throw corrupt(ri::count_key, "the counter record is missing");
        ri::reader r(value);
        const auto next = r.le(8);
        const auto count = r.le(8);
        if (!next || !count || !r.done()) throw corrupt(ri::count_key, "the counter record is not 16 bytes");
        if (*count > *next) throw corrupt(ri::count_key, "counts more atoms than ids were ever given");
        next_id_ = *next;
        count_ = *count;
    }

    void read_types() {
        namespace ri = detail::rocks_impl;
        types_.clear();
        type_by_name_.clear();
        for_each_with_prefix(std::string(1, ri::type_prefix), [&](std::string_view key, std::string_view value) {
            ri::reader k(key.substr(1));
            const auto id = k.be(2);
            if (!id || !k.done() || *id != types_.size()) throw corrupt(key, "type ids are not 0, 1, 2, ... in order");
            ri::reader r(value);
            ri::stored_type t;
            const auto kind = r.take(1);
            const auto parents = r.be(2);
            if (!kind || ((*kind)[0] != 'N' && (*kind)[0] != 'L' && (*kind)[0] != 'A') || !parents)
                throw corrupt(key, "a malformed type record");
            t.kind = (*kind)[0];
            for (std::uint64_t p = 0; p < *parents; ++p) {
                const auto parent = r.be(2);
                if (!parent || *parent >= *id) throw corrupt(key, "a parent type that is not stored before the type");
                t.parents.push_back(static_cast<std::uint16_t>(*parent));
            }
            t.name = std::string(r.rest());
            if (t.name.empty() || type_by_name_.contains(t.name)) throw corrupt(key, "an empty or repeated type name");
            type_by_name_.emplace(t.name, static_cast<std::uint16_t>(*id));
            types_.push_back(std::move(t));
        });
    }

    // ---------------------------------------------------------------------------------------- records

    [[nodiscard]] bool get(std::string_view key, std::string& value) const {
        const rocksdb::Status status = db().Get(rocksdb::ReadOptions(), detail::rocks_impl::slice(key), &value);
        if (status.IsNotFound()) return false;
        check(status, "read");
        return true;
    }

    template <class F>
    void for_each_with_prefix(const std::string& prefix, F&& f) const {
        const std::unique_ptr<rocksdb::Iterator> it(db().NewIterator(rocksdb::ReadOptions()));
        for (it->Seek(detail::rocks_impl::slice(prefix)); it->Valid(); it->Next()) {
            const std::string_view key = detail::rocks_impl::view(it->key());
            if (!detail::rocks_impl::has_prefix(key, prefix)) break;
            f(key, detail::rocks_impl::view(it->value()));
        }
        check(it->status(), "read");
    }

    template <class F>
    void for_each_incoming(std::uint64_t target, F&& f) const {
        std::string prefix(1, detail::rocks_impl::incoming_prefix);
        detail::rocks_impl::put_be(prefix, target, 8);
        for_each_with_prefix(prefix, [&](std::string_view key, std::string_view) {
            detail::rocks_impl::reader r(key.substr(prefix.size()));
            const auto t = r.be(2);
            const auto link = r.be(8);
            if (!t || !link || !r.done()) throw corrupt(key, "an incoming index key is not 19 bytes");
            f(*link, static_cast<std::uint16_t>(*t));
        });
    }

    void put_counters(rocksdb::WriteBatch& batch, std::uint64_t next, std::uint64_t count) const {
        std::string value;
        detail::rocks_impl::put_le(value, next, 8);
        detail::rocks_impl::put_le(value, count, 8);
        check(batch.Put(detail::rocks_impl::slice(detail::rocks_impl::count_key), detail::rocks_impl::slice(value)), "write");
    }

    void write(rocksdb::WriteBatch& batch, std::string_view context) { check(db().Write(write_options_, &batch), context); }

    [[nodiscard]] std::uint64_t id_of_atom_key(std::string_view key) const {
        detail::rocks_impl::reader r(key.substr(1));
        const auto id = r.be(8);
        if (!id || !r.done()) throw corrupt(key, "an atom key is not 9 bytes");
        return *id;
    }
    [[nodiscard]] std::uint64_t decode_id(std::string_view key, std::string_view value) const {
        detail::rocks_impl::reader r(value);
        const auto id = r.varint();
        if (!id || !r.done()) throw corrupt(key, "the value is not one atom id");
        return *id;
    }

    [[nodiscard]] stored_atom decode_atom(std::string_view key, std::string_view value) const {
        detail::rocks_impl::reader r(value);
        stored_atom atom;
        const auto type = r.le(2);
        if (!type || *type >= types_.size())
            throw corrupt(key, type ? "an unknown type id " + std::to_string(*type) : "a truncated atom record");
        atom.type = static_cast<std::uint16_t>(*type);
        const auto tv = r.take(encoding::size);
        if (!tv)
            throw corrupt(key, "the truth value is cut short (" + std::to_string(r.left()) + " bytes where it takes " +
                                       std::to_string(encoding::size) + ")");
        try {
            atom.tv = encoding::read(std::as_bytes(std::span<const char>(tv->data(), tv->size())));
        } catch (const error& e) {
            throw corrupt(key, e.what());
        }
        const char kind = types_[atom.type].kind;
        if (kind == 'N') {
            atom.name = r.rest();
        } else if (kind == 'L') {
            while (!r.done()) {
                const auto id = r.varint();
                if (!id) throw corrupt(key, "a malformed outgoing id");
                atom.outgoing.push_back(*id);
            }
        } else {
            throw corrupt(key, "type " + types_[atom.type].name + " is neither a node nor a link type");
        }
        return atom;
    }

    /// The content index's key of a decoded atom.
    [[nodiscard]] std::string content_key(const stored_atom& atom) const {
        if (types_[atom.type].kind == 'N') return detail::rocks_impl::node_key(atom.type, atom.name);
        return detail::rocks_impl::link_key(atom.type, atom.outgoing);
    }

    [[nodiscard]] std::string atom_record(std::uint16_t type, const TV& tv, std::string_view name,
                                          std::span<const std::uint64_t> outgoing) const {
        std::string value;
        detail::rocks_impl::put_le(value, type, 2);
        const std::size_t at = value.size();
        value.resize(at + encoding::size);
        encoding::write(tv, std::as_writable_bytes(std::span<char>(value.data() + at, encoding::size)));
        value.append(name);
        for (const std::uint64_t id : outgoing) detail::rocks_impl::put_varint(value, id);
        return value;
    }

    // ------------------------------------------------------------------------------------------- types

    [[nodiscard]] static char kind_in(const atom_type_registry& types, type_id t) {
        return types.is_node(t) ? 'N' : types.is_link(t) ? 'L' : 'A';
    }
    [[nodiscard]] static std::string_view kind_text(char kind) {
        return kind == 'N' ? "a node type" : kind == 'L' ? "a link type" : "an abstract type";
    }

    /// The database type of the space's type `t`: found by name, or (when creating) added with its parents.
    std::optional<std::uint16_t> db_type_of(write_context& ctx, type_id t) const {
        if (ctx.to_db[t] != unmapped) return ctx.to_db[t];
        const atom_type_registry& types = ctx.space.types();
        const std::string name(types.name(t));
        const char kind = kind_in(types, t);
        std::optional<std::uint16_t> id;
        if (const auto it = type_by_name_.find(name); it != type_by_name_.end()) {
            id = it->second;
            if (types_[*id].kind != kind) {
                throw invalid_argument_error("rocks_storage: " + where() + ": type " + name + " is " + std::string(kind_text(kind)) +
                                             " in the space but " + std::string(kind_text(types_[*id].kind)) + " in the database");
            }
        } else if (const auto pending = ctx.pending_by_name.find(name); pending != ctx.pending_by_name.end()) {
            id = pending->second;
        } else {
            if (!ctx.create) return std::nullopt;
            detail::rocks_impl::stored_type stored{kind, name, {}};
            for (const type_id p : types.parents(t)) stored.parents.push_back(*db_type_of(ctx, p));
            const std::size_t next = types_.size() + ctx.pending_types.size();
            if (next >= unmapped) throw shape_error("rocks_storage: " + where() + ": the database's type table is full");
            id = static_cast<std::uint16_t>(next);
            std::string value(1, kind);
            detail::rocks_impl::put_be(value, stored.parents.size(), 2);
            for (const std::uint16_t p : stored.parents) detail::rocks_impl::put_be(value, p, 2);
            value += name;
            check(ctx.batch.Put(detail::rocks_impl::slice(detail::rocks_impl::type_key(*id)), detail::rocks_impl::slice(value)), "store");
            ctx.pending_by_name.emplace(name, *id);
            ctx.pending_types.push_back(std::move(stored));
        }
        ctx.to_db[t] = *id;
        return id;
    }

    /// The space's type for the database type `db`: found by name, or registered with its parents.
    type_id space_type_of(read_context& ctx, std::uint16_t db) const {
        if (ctx.to_space.size() < types_.size()) ctx.to_space.resize(types_.size(), free_type_marker);
        if (ctx.to_space[db] != free_type_marker) return ctx.to_space[db];
        const detail::rocks_impl::stored_type& stored = types_[db];
        atom_type_registry& types = ctx.space.types();
        type_id t;
        if (const auto found = types.find(stored.name)) {
            t = *found;
            if (kind_in(types, t) != stored.kind) {
                throw invalid_argument_error("rocks_storage: " + where() + ": type " + stored.name + " is " +
                                             std::string(kind_text(stored.kind)) + " in the database but " +
                                             std::string(kind_text(kind_in(types, t))) + " in the space");
            }
        } else {
            std::vector<type_id> parents;
            for (const std::uint16_t p : stored.parents) parents.push_back(space_type_of(ctx, p));
            t = types.add(stored.name, parents);
            if (kind_in(types, t) != stored.kind) {
                throw format_error("rocks_storage: " + where() + ": type " + stored.name + " is stored as " +
                                   std::string(kind_text(stored.kind)) + " but its stored parents make it " +
                                   std::string(kind_text(kind_in(types, t))));
            }
        }
        ctx.to_space[db] = t;
        return t;
    }

    // ------------------------------------------------------------------------------------------- atoms

    /// The database id of the atom `h` (post-order over its outgoing set, without recursion). When the
    /// context creates, atoms not stored yet are added to its batch, and a `named` atom's record is put with
    /// its truth value; otherwise nullopt when the atom is not stored.
    std::optional<std::uint64_t> resolve(write_context& ctx, handle h, bool named) const {
        struct frame {
            handle atom;
            std::size_t next;
        };
        std::vector<frame> stack{{h, 0}};
        while (!stack.empty()) {
            frame& f = stack.back();
            if (ctx.ids.contains(f.atom)) {
                stack.pop_back();
                continue;
            }
            const auto outgoing = ctx.space.outgoing(f.atom);
            if (f.next < outgoing.size()) {
                const handle child = outgoing[f.next++];
                if (!ctx.ids.contains(child)) stack.push_back({child, 0});
                continue;
            }
            if (!assign(ctx, f.atom)) return std::nullopt;
            stack.pop_back();
        }
        const std::uint64_t id = ctx.ids.at(h);
        if (named && !ctx.written.contains(h)) {
            const auto type = *db_type_of(ctx, ctx.space.type(h));
            const std::vector<std::uint64_t> outgoing = outgoing_ids(ctx, h);
            const std::string_view name = ctx.space.is_node(h) ? ctx.space.name(h) : std::string_view{};
            check(ctx.batch.Put(detail::rocks_impl::slice(detail::rocks_impl::atom_key(id)),
                                detail::rocks_impl::slice(atom_record(type, ctx.space.truth_value(h), name, outgoing))),
                  "store");
            ctx.written.insert(h);
        }
        return id;
    }

    /// Database ids of a link's outgoing set (all resolved), sorted for an unordered type so that every
    /// space's order gives one key.
    [[nodiscard]] static std::vector<std::uint64_t> outgoing_ids(const write_context& ctx, handle h) {
        std::vector<std::uint64_t> ids;
        for (const handle child : ctx.space.outgoing(h)) ids.push_back(ctx.ids.at(child));
        if (ctx.space.types().is_unordered(ctx.space.type(h))) std::sort(ids.begin(), ids.end());
        return ids;
    }

    /// Finds the stored atom with the content of `h` (whose outgoing atoms are resolved) or, when creating,
    /// adds it to the batch. False when it is not stored and the context does not create.
    bool assign(write_context& ctx, handle h) const {
        namespace ri = detail::rocks_impl;
        const auto type = db_type_of(ctx, ctx.space.type(h));
        if (!type) return false;
        const bool node = ctx.space.is_node(h);
        const std::vector<std::uint64_t> outgoing = node ? std::vector<std::uint64_t>{} : outgoing_ids(ctx, h);
        const std::string_view name = node ? ctx.space.name(h) : std::string_view{};
        const std::string key = node ? ri::node_key(*type, name) : ri::link_key(*type, outgoing);
        std::string found;
        if (get(key, found)) {
            ctx.ids.emplace(h, decode_id(key, found));
            return true;
        }
        if (!ctx.create) return false;
        const std::uint64_t id = ctx.next_id++;
        std::string id_value;
        ri::put_varint(id_value, id);
        check(ctx.batch.Put(ri::slice(key), ri::slice(id_value)), "store");
        check(ctx.batch.Put(ri::slice(ri::atom_key(id)), ri::slice(atom_record(*type, ctx.space.truth_value(h), name, outgoing))), "store");
        check(ctx.batch.Put(ri::slice(ri::by_type_key(*type, id)), rocksdb::Slice()), "store");
        for (const std::uint64_t child : outgoing)
            check(ctx.batch.Put(ri::slice(ri::incoming_key(child, *type, id)), rocksdb::Slice()), "store");
        ctx.ids.emplace(h, id);
        ctx.written.insert(h);
        ++ctx.added;
        return true;
    }

    /// Writes the context's batch with the new counters, then takes its types and counters as this object's.
    void commit(write_context& ctx, std::string_view context) {
        put_counters(ctx.batch, ctx.next_id, count_ + ctx.added);
        write(ctx.batch, context);
        next_id_ = ctx.next_id;
        count_ += ctx.added;
        for (auto& t : ctx.pending_types) {
            type_by_name_.emplace(t.name, static_cast<std::uint16_t>(types_.size()));
            types_.push_back(std::move(t));
        }
    }

    [[nodiscard]] std::optional<std::uint64_t> find_id(const space_type& space, handle h) const {
        write_context ctx(space, *this, false);
        return resolve(ctx, h, false);
    }

    void require_atom(const space_type& space, handle h, std::string_view context) const {
        if (!space.contains(h)) {
            throw invalid_argument_error("rocks_storage::" + std::string(context) + ": " + where() + ": " + to_string(h) +
                                         " names no atom of the space");
        }
    }

    handle add_to_space(read_context& ctx, std::string_view key, const stored_atom& atom, std::span<const handle> outgoing) const {
        const type_id t = space_type_of(ctx, atom.type);
        try {
            if (types_[atom.type].kind == 'N') return ctx.space.add_node(t, atom.name, atom.tv);
            return ctx.space.add_link(t, outgoing, atom.tv);
        } catch (const invalid_argument_error& e) {
            throw corrupt(key, e.what());
        }
    }

    /// Adds the stored atom `id` and its outgoing atoms to the space (post-order, without recursion; an
    /// outgoing id must be smaller than its link's, which also rules out cycles in a corrupt file).
    handle fetch_atom(read_context& ctx, std::uint64_t id) const {
        if (const auto it = ctx.loaded.find(id); it != ctx.loaded.end()) return it->second;
        struct frame {
            std::uint64_t id;
            std::string key;
            std::string value;
            stored_atom atom;
            std::size_t next = 0;
        };
        std::deque<frame> stack;  // a deque: the atom's name views its frame's value, which must not move
        const auto push = [&](std::uint64_t atom_id) {
            frame& f = stack.emplace_back();
            f.id = atom_id;
            f.key = detail::rocks_impl::atom_key(atom_id);
            if (!get(f.key, f.value)) throw corrupt(f.key, "an index names this atom but its record is missing");
            f.atom = decode_atom(f.key, f.value);
        };
        push(id);
        while (!stack.empty()) {
            frame& f = stack.back();
            if (f.next < f.atom.outgoing.size()) {
                const std::uint64_t child = f.atom.outgoing[f.next++];
                if (child >= f.id) throw corrupt(f.key, "outgoing atom #" + std::to_string(child) + " is not stored before it");
                if (!ctx.loaded.contains(child)) push(child);
                continue;
            }
            std::vector<handle> outgoing;
            outgoing.reserve(f.atom.outgoing.size());
            for (const std::uint64_t child : f.atom.outgoing) outgoing.push_back(ctx.loaded.at(child));
            ctx.loaded.emplace(f.id, add_to_space(ctx, f.key, f.atom, outgoing));
            stack.pop_back();
        }
        return ctx.loaded.at(id);
    }

    std::vector<handle> fetch_incoming_impl(space_type& space, handle h, std::optional<type_id> link_type, bool with_subtypes) const {
        require_atom(space, h, "fetch_incoming");
        if (link_type && !space.types().contains(*link_type))
            throw invalid_argument_error("rocks_storage::fetch_incoming: " + where() + ": unknown type id " + std::to_string(*link_type));
        const auto id = find_id(space, h);
        if (!id) return {};
        read_context ctx(space);
        ctx.loaded.emplace(*id, h);
        std::vector<std::uint64_t> links;
        for_each_incoming(*id, [&](std::uint64_t link, std::uint16_t db_type) {
            if (link_type) {
                const type_id t = space_type_of(ctx, db_type);
                if (with_subtypes ? !space.types().is_a(t, *link_type) : t != *link_type) return;
            }
            links.push_back(link);
        });
        std::vector<handle> out;
        out.reserve(links.size());
        for (const std::uint64_t link : links) out.push_back(fetch_atom(ctx, link));
        return out;
    }

    static constexpr type_id free_type_marker = 0xFFFF;  // never a registry's type id (max_types is 0xFFFE)

    std::filesystem::path path_;
    rocksdb::WriteOptions write_options_;
    std::unique_ptr<rocksdb::DB> db_;
    std::uint64_t next_id_ = 0;
    std::uint64_t count_ = 0;
    std::vector<detail::rocks_impl::stored_type> types_;
    std::unordered_map<std::string, std::uint16_t> type_by_name_;
};

}  // namespace cogqat::cog
