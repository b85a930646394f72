#pragma once
// The AtomSpace: a deduplicated hypergraph of typed nodes (type + name) and links (type + ordered outgoing
// set), each with a truth value stored through a TruthValue policy.
//
// Layout (why it is lean): atoms live in parallel arrays indexed by a 32-bit atom index (type, generation,
// data offset, size, head of the incoming list, truth value): 18 bytes per atom plus the truth value. Node
// names share one character arena; outgoing sets share one pool of "slots" (target, owning link, and the
// next/previous slot in the target's incoming list), so an incoming set is an intrusive list threaded
// through the outgoing sets that point at the atom: no per-atom container, no allocation per atom.
// Deduplication is an open-addressing table of 32-bit entries (27 bits of atom index + 5 bits of hash tag).
// Removal frees the index for reuse and bumps its generation, so a handle (index, generation) of a removed
// atom is recognised as stale instead of silently naming its successor; the arena and the slot pool are
// compacted when more than half of them is dead.
//
// Not thread-safe: one writer, or any number of readers, at a time.

#include <algorithm>
#include <bit>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cogqat/cog/atom_types.hpp"
#include "cogqat/cog/truth_value.hpp"
#include "cogqat/core/error.hpp"

namespace cogqat::cog {

/// Names one atom of one AtomSpace: its index and the generation of that index. A handle stays valid while
/// its atom exists, whatever else is added or removed; once the atom is removed the handle is stale (the
/// index may be reused by a new atom, with a new generation). The default handle is null.
struct handle {
    static constexpr std::uint32_t null_index = 0xFFFFFFFFu;

    std::uint32_t index = null_index;
    std::uint32_t generation = 0;

    /// Whether this is the null handle (which names no atom).
    [[nodiscard]] constexpr bool is_null() const noexcept { return index == null_index; }
    friend constexpr auto operator<=>(const handle&, const handle&) = default;
};

/// "#index.generation", for messages.
[[nodiscard]] inline std::string to_string(handle h) {
    if (h.is_null()) return "null handle";
    return "handle #" + std::to_string(h.index) + "." + std::to_string(h.generation);
}

namespace detail::atomspace_impl {

inline constexpr std::uint32_t nil = 0xFFFFFFFFu;
inline constexpr type_id free_type = 0xFFFF;

// Hash table entries: 27 bits of (index + 1), 0 meaning empty, and 5 bits of tag from the hash's top bits.
inline constexpr int index_bits = 27;
inline constexpr std::uint32_t index_mask = (1u << index_bits) - 1;
/// Largest atom index + 1 the dedup table can name.
inline constexpr std::size_t max_atoms = index_mask - 1;

[[nodiscard]] constexpr std::uint64_t fmix64(std::uint64_t h) noexcept {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

[[nodiscard]] constexpr std::uint64_t combine(std::uint64_t h, std::uint64_t v) noexcept {
    return std::rotl(h ^ (v * 0x9E3779B97F4A7C15ULL), 27) * 0x87C37B91114253D5ULL + 0x52DCE729ULL;
}

[[nodiscard]] inline std::uint64_t hash_node(type_id type, std::string_view name) noexcept {
    std::uint64_t h = combine(0x6E6F6465ULL, (std::uint64_t{type} << 32) | name.size());
    std::size_t i = 0;
    for (; i + 8 <= name.size(); i += 8) {
        std::uint64_t chunk;
        std::memcpy(&chunk, name.data() + i, 8);
        h = combine(h, chunk);
    }
    if (i < name.size()) {
        std::uint64_t chunk = 0;
        std::memcpy(&chunk, name.data() + i, name.size() - i);
        h = combine(h, chunk);
    }
    return fmix64(h);
}

[[nodiscard]] inline std::uint64_t hash_link(type_id type, std::span<const std::uint32_t> outgoing) noexcept {
    std::uint64_t h = combine(0x6C696E6BULL, (std::uint64_t{type} << 32) | outgoing.size());
    std::size_t i = 0;
    for (; i + 2 <= outgoing.size(); i += 2) h = combine(h, outgoing[i] | (std::uint64_t{outgoing[i + 1]} << 32));
    if (i < outgoing.size()) h = combine(h, outgoing[i]);
    return fmix64(h);
}

}  // namespace detail::atomspace_impl

/// A deduplicated store of typed nodes and links with one truth value (of type TV) per atom.
template <TruthValue TV = float_truth_value>
class AtomSpace {
    static constexpr std::uint32_t nil = detail::atomspace_impl::nil;
    static constexpr type_id free_type = detail::atomspace_impl::free_type;

public:
    using truth_value_type = TV;

    /// Told about atoms an AtomSpace removes and about the space's own moves and end, so that data kept
    /// beside the atoms by index (an AttentionBank's values) stays in step. atom_removed is called while the
    /// atom still exists (it may be read, not changed); a listener must not add or remove atoms from it.
    class listener {
    public:
        virtual void atom_removed(handle h) = 0;
        /// The space now lives at `to` (it was moved).
        virtual void space_moved(AtomSpace& to) noexcept = 0;
        /// The space is being destroyed or overwritten; the listener is dropped.
        virtual void space_destroyed() noexcept = 0;

    protected:
        listener() = default;
        listener(const listener&) = default;
        listener& operator=(const listener&) = default;
        ~listener() = default;
    };

    /// An empty space knowing the built-in types.
    AtomSpace() = default;
    /// An empty space knowing the types of `types` (which must include the built-ins, as every registry does).
    explicit AtomSpace(atom_type_registry types) : types_(std::move(types)) {}

    /// A copy of the atoms and types; listeners are not copied.
    AtomSpace(const AtomSpace& other)
            : types_(other.types_),
              type_(other.type_),
              gen_(other.gen_),
              data_(other.data_),
              size_(other.size_),
              head_(other.head_),
              tv_(other.tv_),
              names_(other.names_),
              slot_target_(other.slot_target_),
              slot_owner_(other.slot_owner_),
              slot_next_(other.slot_next_),
              slot_prev_(other.slot_prev_),
              table_(other.table_),
              free_head_(other.free_head_),
              live_(other.live_),
              nodes_(other.nodes_),
              dead_name_bytes_(other.dead_name_bytes_),
              dead_slots_(other.dead_slots_) {}
    /// Moves the atoms; listeners move along and are told where the space now is. The moved-from space is
    /// empty and usable.
    AtomSpace(AtomSpace&& other) noexcept { take(std::move(other)); }
    AtomSpace& operator=(const AtomSpace& other) {
        if (this != &other) *this = AtomSpace(other);
        return *this;
    }
    AtomSpace& operator=(AtomSpace&& other) noexcept {
        if (this != &other) {
            drop_listeners();
            take(std::move(other));
        }
        return *this;
    }
    ~AtomSpace() { drop_listeners(); }

    // ------------------------------------------------------------------------------------------- types

    /// The registry of atom types; add user types through it.
    [[nodiscard]] atom_type_registry& types() noexcept { return types_; }
    [[nodiscard]] const atom_type_registry& types() const noexcept { return types_; }

    // ---------------------------------------------------------------------------------------- insertion

    /// The node (type, name), added with the default truth value when it is not there yet. Throws
    /// invalid_argument_error when `type` is not a node type, shape_error when the space is full.
    handle add_node(type_id type, std::string_view name) {
        if (!types_.is_node(type)) throw invalid_argument_error("AtomSpace::add_node: " + type_text(type) + " is not a node type");
        const std::uint64_t h = detail::atomspace_impl::hash_node(type, name);
        std::size_t pos = 0;
        if (const std::uint32_t found = find_node(type, name, h, pos); found != nil) return {found, gen_[found]};
        if (names_.size() + name.size() > 0xFFFFFFFFull) throw shape_error("AtomSpace::add_node: the name arena is full (4 GiB)");
        // Everything that may throw happens before the first change, so a failure leaves the space as it was.
        reserve_more(names_, name.size());
        prepare_index("AtomSpace::add_node");
        if (grow_table_if_needed()) find_node(type, name, h, pos);
        const std::uint32_t idx = take_index(type);
        data_[idx] = static_cast<std::uint32_t>(names_.size());
        size_[idx] = static_cast<std::uint32_t>(name.size());
        names_.insert(names_.end(), name.begin(), name.end());
        table_[pos] = entry(idx, h);
        ++nodes_;
        return {idx, gen_[idx]};
    }
    /// As above, then sets the node's truth value (also when it existed already).
    handle add_node(type_id type, std::string_view name, const TV& tv) {
        const handle h = add_node(type, name);
        tv_[h.index] = tv;
        return h;
    }

    /// The link (type, outgoing), added with the default truth value when it is not there yet. For an
    /// unordered type the outgoing set is stored sorted by atom index, so any order names the same link.
    /// Throws invalid_argument_error when `type` is not a link type or an outgoing handle names no atom of
    /// this space, shape_error when the space is full.
    handle add_link(type_id type, std::span<const handle> outgoing) {
        if (!types_.is_link(type)) throw invalid_argument_error("AtomSpace::add_link: " + type_text(type) + " is not a link type");
        outgoing_key(type, outgoing, key_, "AtomSpace::add_link");
        const std::span<const std::uint32_t> key = key_;
        const std::uint64_t h = detail::atomspace_impl::hash_link(type, key);
        std::size_t pos = 0;
        if (const std::uint32_t found = find_link(type, key, h, pos); found != nil) return {found, gen_[found]};
        if (slot_target_.size() + key.size() >= nil) throw shape_error("AtomSpace::add_link: the outgoing-set pool is full (2^32 slots)");
        for_each_slot_array([&](auto& v) { reserve_more(v, key.size()); });
        prepare_index("AtomSpace::add_link");
        if (grow_table_if_needed()) find_link(type, key, h, pos);
        const std::uint32_t idx = take_index(type);
        data_[idx] = static_cast<std::uint32_t>(slot_target_.size());
        size_[idx] = static_cast<std::uint32_t>(key.size());
        for (const std::uint32_t target : key) {
            const auto s = static_cast<std::uint32_t>(slot_target_.size());
            slot_target_.push_back(target);
            slot_owner_.push_back(idx);
            slot_next_.push_back(nil);
            slot_prev_.push_back(nil);
            push_incoming(target, s);
        }
        table_[pos] = entry(idx, h);
        return {idx, gen_[idx]};
    }
    /// As above, with the outgoing set listed in place.
    handle add_link(type_id type, std::initializer_list<handle> outgoing) {
        return add_link(type, std::span<const handle>(outgoing.begin(), outgoing.size()));
    }
    /// As above, then sets the link's truth value (also when it existed already).
    handle add_link(type_id type, std::span<const handle> outgoing, const TV& tv) {
        const handle h = add_link(type, outgoing);
        tv_[h.index] = tv;
        return h;
    }
    /// As above, with the outgoing set listed in place.
    handle add_link(type_id type, std::initializer_list<handle> outgoing, const TV& tv) {
        return add_link(type, std::span<const handle>(outgoing.begin(), outgoing.size()), tv);
    }

    // ------------------------------------------------------------------------------------------- lookup

    /// The node (type, name), or the null handle when there is none (or `type` is not a node type).
    [[nodiscard]] handle get_node(type_id type, std::string_view name) const noexcept {
        if (!types_.is_node(type)) return {};
        std::size_t pos = 0;
        const std::uint32_t found = find_node(type, name, detail::atomspace_impl::hash_node(type, name), pos);
        return found == nil ? handle{} : handle{found, gen_[found]};
    }
    /// The link (type, outgoing), or the null handle when there is none. Throws invalid_argument_error when
    /// an outgoing handle names no atom of this space.
    [[nodiscard]] handle get_link(type_id type, std::span<const handle> outgoing) const {
        if (!types_.is_link(type)) return {};
        std::vector<std::uint32_t> key;  // local, so concurrent readers do not share a buffer
        outgoing_key(type, outgoing, key, "AtomSpace::get_link");
        std::size_t pos = 0;
        const std::uint32_t found = find_link(type, key, detail::atomspace_impl::hash_link(type, key), pos);
        return found == nil ? handle{} : handle{found, gen_[found]};
    }
    /// As above, with the outgoing set listed in place.
    [[nodiscard]] handle get_link(type_id type, std::initializer_list<handle> outgoing) const {
        return get_link(type, std::span<const handle>(outgoing.begin(), outgoing.size()));
    }

    /// Whether `h` names an atom of this space (false for null and stale handles).
    [[nodiscard]] bool contains(handle h) const noexcept {
        return h.index < type_.size() && type_[h.index] != free_type && gen_[h.index] == h.generation;
    }
    /// The handle of the atom at `index`, or null when that index holds no atom.
    [[nodiscard]] handle handle_at(std::uint32_t index) const noexcept {
        if (index >= type_.size() || type_[index] == free_type) return {};
        return {index, gen_[index]};
    }
    /// One past the largest atom index in use: arrays indexed by atom index need this many entries.
    [[nodiscard]] std::size_t index_bound() const noexcept { return type_.size(); }

    /// Number of atoms.
    [[nodiscard]] std::size_t size() const noexcept { return live_; }
    [[nodiscard]] bool empty() const noexcept { return live_ == 0; }
    /// Number of nodes.
    [[nodiscard]] std::size_t node_count() const noexcept { return nodes_; }
    /// Number of links.
    [[nodiscard]] std::size_t link_count() const noexcept { return live_ - nodes_; }

    // ------------------------------------------------------------------------------------------ reading

    /// Type of the atom. Every accessor taking a handle throws invalid_argument_error for a null or stale one.
    [[nodiscard]] type_id type(handle h) const { return type_[checked(h, "type")]; }
    [[nodiscard]] bool is_node(handle h) const { return types_.is_node(type(h)); }
    [[nodiscard]] bool is_link(handle h) const { return types_.is_link(type(h)); }

    /// Name of a node (invalid_argument_error for a link). The view lives until the next change of the space.
    [[nodiscard]] std::string_view name(handle h) const {
        const std::uint32_t i = checked(h, "name");
        if (!types_.is_node(type_[i])) throw invalid_argument_error("AtomSpace::name: " + cog::to_string(h) + " is a link, not a node");
        return {names_.data() + data_[i], size_[i]};
    }

    /// Handles of a link's outgoing set, in order; empty for a node. Invalidated by the next change.
    class outgoing_range {
    public:
        class iterator {
        public:
            using iterator_category = std::forward_iterator_tag;
            using value_type = handle;
            using difference_type = std::ptrdiff_t;
            using pointer = void;
            using reference = handle;
            iterator() = default;
            handle operator*() const noexcept { return {*p_, (*gen_)[*p_]}; }
            iterator& operator++() noexcept {
                ++p_;
                return *this;
            }
            iterator operator++(int) noexcept {
                iterator t = *this;
                ++p_;
                return t;
            }
            friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.p_ == b.p_; }

        private:
            friend class outgoing_range;
            iterator(const std::uint32_t* p, const std::vector<std::uint32_t>* gen) : p_(p), gen_(gen) {}
            const std::uint32_t* p_ = nullptr;
            const std::vector<std::uint32_t>* gen_ = nullptr;
        };
        [[nodiscard]] iterator begin() const noexcept { return {targets_.data(), gen_}; }
        [[nodiscard]] iterator end() const noexcept { return {targets_.data() + targets_.size(), gen_}; }
        [[nodiscard]] std::size_t size() const noexcept { return targets_.size(); }
        [[nodiscard]] bool empty() const noexcept { return targets_.empty(); }
        /// The i-th atom (unchecked, like std::span).
        [[nodiscard]] handle operator[](std::size_t i) const noexcept { return {targets_[i], (*gen_)[targets_[i]]}; }
        /// The atom indices themselves.
        [[nodiscard]] std::span<const std::uint32_t> indices() const noexcept { return targets_; }

    private:
        friend class AtomSpace;
        outgoing_range(std::span<const std::uint32_t> targets, const std::vector<std::uint32_t>* gen) : targets_(targets), gen_(gen) {}
        std::span<const std::uint32_t> targets_;
        const std::vector<std::uint32_t>* gen_;
    };
    /// The outgoing set of a link (empty for a node).
    [[nodiscard]] outgoing_range outgoing(handle h) const {
        const std::uint32_t i = checked(h, "outgoing");
        if (!types_.is_link(type_[i])) return {{}, &gen_};
        return {std::span<const std::uint32_t>(slot_target_.data() + data_[i], size_[i]), &gen_};
    }
    /// The outgoing set as a vector.
    [[nodiscard]] std::vector<handle> outgoing_set(handle h) const {
        const outgoing_range r = outgoing(h);
        return {r.begin(), r.end()};
    }
    /// Arity of a link, 0 for a node.
    [[nodiscard]] std::size_t arity(handle h) const { return outgoing(h).size(); }

    /// The links whose outgoing set holds an atom, each once (a link holding the atom twice is listed once),
    /// newest first. No copy is made; invalidated by the next change.
    class incoming_range {
    public:
        class iterator {
        public:
            using iterator_category = std::forward_iterator_tag;
            using value_type = handle;
            using difference_type = std::ptrdiff_t;
            using pointer = void;
            using reference = handle;
            iterator() = default;
            handle operator*() const noexcept {
                const std::uint32_t owner = space_->slot_owner_[slot_];
                return {owner, space_->gen_[owner]};
            }
            iterator& operator++() noexcept {
                // A link's slots that point at one atom are adjacent in its list (they are pushed together
                // and the list is only ever pushed at the front), so skipping equal owners deduplicates.
                const std::uint32_t owner = space_->slot_owner_[slot_];
                do slot_ = space_->slot_next_[slot_];
                while (slot_ != nil && space_->slot_owner_[slot_] == owner);
                return *this;
            }
            iterator operator++(int) noexcept {
                iterator t = *this;
                ++*this;
                return t;
            }
            friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.slot_ == b.slot_; }

        private:
            friend class incoming_range;
            iterator(const AtomSpace* space, std::uint32_t slot) : space_(space), slot_(slot) {}
            const AtomSpace* space_ = nullptr;
            std::uint32_t slot_ = nil;
        };
        [[nodiscard]] iterator begin() const noexcept { return {space_, head_}; }
        [[nodiscard]] iterator end() const noexcept { return {space_, nil}; }
        [[nodiscard]] bool empty() const noexcept { return head_ == nil; }

    private:
        friend class AtomSpace;
        incoming_range(const AtomSpace* space, std::uint32_t head) : space_(space), head_(head) {}
        const AtomSpace* space_;
        std::uint32_t head_;
    };
    /// The incoming set of an atom, without copying.
    [[nodiscard]] incoming_range incoming(handle h) const { return {this, head_[checked(h, "incoming")]}; }
    /// The incoming set as a vector.
    [[nodiscard]] std::vector<handle> incoming_set(handle h) const {
        const incoming_range r = incoming(h);
        return {r.begin(), r.end()};
    }
    /// The links of the incoming set whose type is `link_type` (or, with `with_subtypes`, descends from it).
    [[nodiscard]] std::vector<handle> incoming_set(handle h, type_id link_type, bool with_subtypes = false) const {
        std::vector<handle> out;
        for (const handle l : incoming(h)) {
            const type_id t = type_[l.index];
            if (with_subtypes ? types_.is_a(t, link_type) : t == link_type) out.push_back(l);
        }
        return out;
    }
    /// Number of links in the incoming set.
    [[nodiscard]] std::size_t incoming_size(handle h) const {
        const incoming_range r = incoming(h);
        return static_cast<std::size_t>(std::distance(r.begin(), r.end()));
    }

    /// Calls f(handle) for every atom of type `t` (or, with `with_subtypes`, of a descendant of it), in
    /// index order. f must not change the space.
    template <class F>
    void for_each_of_type(type_id t, bool with_subtypes, F&& f) const {
        if (!types_.contains(t)) return;
        if (!with_subtypes) {
            for (std::size_t i = 0; i < type_.size(); ++i)
                if (type_[i] == t) f(handle{static_cast<std::uint32_t>(i), gen_[i]});
            return;
        }
        const std::vector<std::uint8_t> match = types_.match_table(t, true);
        const std::size_t marker = match.size() - 1;
        for (std::size_t i = 0; i < type_.size(); ++i) {
            const type_id ti = type_[i];
            if (match[ti == free_type ? marker : ti]) f(handle{static_cast<std::uint32_t>(i), gen_[i]});
        }
    }
    /// Every atom of type `t`, with or without its subtypes, in index order.
    [[nodiscard]] std::vector<handle> get_by_type(type_id t, bool with_subtypes = false) const {
        std::vector<handle> out;
        for_each_of_type(t, with_subtypes, [&](handle h) { out.push_back(h); });
        return out;
    }
    /// Calls f(handle) for every atom, in index order. f must not change the space.
    template <class F>
    void for_each_atom(F&& f) const {
        for (std::size_t i = 0; i < type_.size(); ++i)
            if (type_[i] != free_type) f(handle{static_cast<std::uint32_t>(i), gen_[i]});
    }

    /// OpenCog's notation: (ConceptNode "cat"), (InheritanceLink (ConceptNode "cat") (ConceptNode "animal")).
    /// Iterative, so arbitrarily deep links cannot overflow the stack.
    [[nodiscard]] std::string to_string(handle h) const {
        checked(h, "to_string");
        std::string out;
        struct frame {
            std::uint32_t atom;
            std::uint32_t next;
        };
        std::vector<frame> stack{{h.index, 0}};
        while (!stack.empty()) {
            frame& f = stack.back();
            const std::uint32_t i = f.atom;
            if (types_.is_node(type_[i])) {
                out += '(';
                out += types_.name(type_[i]);
                out += " \"";
                out.append(names_.data() + data_[i], size_[i]);
                out += "\")";
                stack.pop_back();
                if (!stack.empty()) out += stack.back().next < size_[stack.back().atom] ? " " : "";
                continue;
            }
            if (f.next == 0) {
                out += '(';
                out += types_.name(type_[i]);
                if (size_[i] > 0) out += ' ';
            }
            if (f.next < size_[i]) {
                const std::uint32_t child = slot_target_[data_[i] + f.next];
                ++f.next;
                stack.push_back({child, 0});
                continue;
            }
            out += ')';
            stack.pop_back();
            if (!stack.empty()) out += stack.back().next < size_[stack.back().atom] ? " " : "";
        }
        return out;
    }

    // ------------------------------------------------------------------------------------- truth values

    /// Truth value of the atom.
    [[nodiscard]] TV truth_value(handle h) const { return tv_[checked(h, "truth_value")]; }
    /// Replaces the truth value of the atom.
    void set_truth_value(handle h, const TV& tv) { tv_[checked(h, "set_truth_value")] = tv; }
    /// Merges `tv` into the atom's truth value by PLN revision (see revise()) and returns the result.
    TV merge_truth_value(handle h, const TV& tv) {
        const std::uint32_t i = checked(h, "merge_truth_value");
        tv_[i] = revise(tv_[i], tv);
        return tv_[i];
    }

    // ----------------------------------------------------------------------------------------- removal

    /// How remove() treats an atom that other links still hold.
    enum class removal { refuse_if_held, recursive };

    /// Removes the atom and returns how many atoms went (0 when `h` names no atom of this space). An atom
    /// held by links is removed only with removal::recursive, together with every link above it; otherwise
    /// the call throws invalid_argument_error and changes nothing.
    std::size_t remove(handle h, removal mode = removal::refuse_if_held) {
        if (!contains(h)) return 0;
        if (mode == removal::refuse_if_held && head_[h.index] != nil) {
            throw invalid_argument_error("AtomSpace::remove: " + cog::to_string(h) + " " + describe(h.index) + " is held by " +
                                         std::to_string(incoming_size(h)) + " link(s); remove those first or ask for a recursive removal");
        }
        std::size_t removed = 0;
        // Post-order without recursion: the top's incoming links go first, one at a time.
        std::vector<std::uint32_t> stack{h.index};
        while (!stack.empty()) {
            const std::uint32_t top = stack.back();
            if (head_[top] != nil) {
                stack.push_back(slot_owner_[head_[top]]);
                continue;
            }
            stack.pop_back();
            erase_one(top);
            ++removed;
        }
        compact_if_sparse();
        return removed;
    }

    // ------------------------------------------------------------------------------------------ memory

    /// Reserves room for `atoms` atoms in the per-atom arrays and the dedup table.
    void reserve(std::size_t atoms) {
        for_each_atom_array([&](auto& v) { v.reserve(atoms); });
        std::size_t cap = std::max(min_table, table_.size());
        while (atoms * 4 >= cap * 3) cap *= 2;
        if (cap != table_.size()) rehash(cap);
    }
    /// Drops dead space and spare capacity: compacts the arena and the slot pool, shrinks the arrays and
    /// the dedup table to the smallest power of two that keeps its load under 3/4.
    void shrink_to_fit() {
        if (dead_name_bytes_ > 0) compact_names();
        if (dead_slots_ > 0) compact_slots();
        for_each_atom_array([](auto& v) { v.shrink_to_fit(); });
        names_.shrink_to_fit();
        for_each_slot_array([](auto& v) { v.shrink_to_fit(); });
        std::size_t cap = min_table;
        while (live_ * 4 >= cap * 3) cap *= 2;
        if (cap != table_.size()) rehash(cap);
    }
    /// Bytes the space holds in its arrays (capacity, not size), without the type registry.
    [[nodiscard]] std::size_t memory_bytes() const noexcept {
        std::size_t bytes = names_.capacity() + table_.capacity() * sizeof(std::uint32_t);
        for_each_atom_array([&](const auto& v) { bytes += v.capacity() * sizeof(typename std::decay_t<decltype(v)>::value_type); });
        for_each_slot_array([&](const auto& v) { bytes += v.capacity() * sizeof(std::uint32_t); });
        return bytes;
    }

    // ------------------------------------------------------------------------------------- listeners

    /// Registers a listener; it must stay alive until unsubscribed or told space_destroyed().
    void subscribe(listener& l) {
        if (std::find(listeners_.begin(), listeners_.end(), &l) == listeners_.end()) listeners_.push_back(&l);
    }
    /// Unregisters a listener (no effect when it is not registered).
    void unsubscribe(listener& l) noexcept { std::erase(listeners_, &l); }

private:
    static constexpr std::size_t min_table = 16;

    template <class F>
    void for_each_atom_array(F&& f) {
        f(type_), f(gen_), f(data_), f(size_), f(head_), f(tv_);
    }
    template <class F>
    void for_each_atom_array(F&& f) const {
        f(type_), f(gen_), f(data_), f(size_), f(head_), f(tv_);
    }
    template <class F>
    void for_each_slot_array(F&& f) {
        f(slot_target_), f(slot_owner_), f(slot_next_), f(slot_prev_);
    }
    template <class F>
    void for_each_slot_array(F&& f) const {
        f(slot_target_), f(slot_owner_), f(slot_next_), f(slot_prev_);
    }

    [[nodiscard]] std::string type_text(type_id t) const {
        if (!types_.contains(t)) return "unknown type id " + std::to_string(t);
        return "type " + std::string(types_.name(t));
    }
    [[nodiscard]] std::string describe(std::uint32_t i) const {
        if (types_.is_node(type_[i])) {
            return "(" + std::string(types_.name(type_[i])) + " \"" + std::string(names_.data() + data_[i], size_[i]) + "\")";
        }
        return "(" + std::string(types_.name(type_[i])) + " of arity " + std::to_string(size_[i]) + ")";
    }

    std::uint32_t checked(handle h, std::string_view context) const {
        if (!contains(h)) {
            throw invalid_argument_error("AtomSpace::" + std::string(context) + ": " + cog::to_string(h) + " names no atom of this space" +
                                         (h.index < type_.size() && !h.is_null() ? " (it was removed)" : ""));
        }
        return h.index;
    }

    /// Atom indices of `outgoing` into `key`, checked and (for an unordered type) sorted.
    void outgoing_key(type_id type, std::span<const handle> outgoing, std::vector<std::uint32_t>& key, std::string_view context) const {
        key.clear();
        key.reserve(outgoing.size());
        for (std::size_t k = 0; k < outgoing.size(); ++k) {
            if (!contains(outgoing[k])) {
                throw invalid_argument_error(std::string(context) + ": outgoing[" + std::to_string(k) + "] (" +
                                             cog::to_string(outgoing[k]) + ") names no atom of this space");
            }
            key.push_back(outgoing[k].index);
        }
        if (types_.is_unordered(type)) std::sort(key.begin(), key.end());
    }

    /// Grows `v` geometrically so that n more elements fit (reserve(size + n) alone would make every
    /// insertion reallocate).
    template <class V>
    static void reserve_more(V& v, std::size_t n) {
        if (v.capacity() - v.size() >= n) return;
        v.reserve(std::max(v.size() + n, v.capacity() * 2));
    }

    static std::uint32_t entry(std::uint32_t idx, std::uint64_t h) noexcept {
        return (static_cast<std::uint32_t>(h >> 59) << detail::atomspace_impl::index_bits) | (idx + 1);
    }
    static std::uint32_t entry_tag(std::uint32_t e) noexcept { return e >> detail::atomspace_impl::index_bits; }
    static std::uint32_t entry_index(std::uint32_t e) noexcept { return (e & detail::atomspace_impl::index_mask) - 1; }

    /// Probes for a node; returns its index or nil and leaves in `pos` the empty entry where it would go.
    std::uint32_t find_node(type_id type, std::string_view name, std::uint64_t h, std::size_t& pos) const noexcept {
        pos = 0;
        if (table_.empty()) return nil;
        const std::size_t mask = table_.size() - 1;
        const auto tag = static_cast<std::uint32_t>(h >> 59);
        for (pos = h & mask;; pos = (pos + 1) & mask) {
            const std::uint32_t e = table_[pos];
            if (e == 0) return nil;
            if (entry_tag(e) != tag) continue;
            const std::uint32_t i = entry_index(e);
            if (type_[i] == type && size_[i] == name.size() && std::memcmp(names_.data() + data_[i], name.data(), name.size()) == 0)
                return i;
        }
    }
    std::uint32_t find_link(type_id type, std::span<const std::uint32_t> key, std::uint64_t h, std::size_t& pos) const noexcept {
        pos = 0;
        if (table_.empty()) return nil;
        const std::size_t mask = table_.size() - 1;
        const auto tag = static_cast<std::uint32_t>(h >> 59);
        for (pos = h & mask;; pos = (pos + 1) & mask) {
            const std::uint32_t e = table_[pos];
            if (e == 0) return nil;
            if (entry_tag(e) != tag) continue;
            const std::uint32_t i = entry_index(e);
            if (type_[i] == type && size_[i] == key.size() && std::equal(key.begin(), key.end(), slot_target_.begin() + data_[i])) {
                return i;
            }
        }
    }

    /// Hash of a stored atom (for rehashing and for deletion, which must know where entries belong).
    std::uint64_t hash_of(std::uint32_t i) const noexcept {
        if (types_.is_node(type_[i])) return detail::atomspace_impl::hash_node(type_[i], {names_.data() + data_[i], size_[i]});
        return detail::atomspace_impl::hash_link(type_[i], {slot_target_.data() + data_[i], size_[i]});
    }

    /// Doubles the table when one more atom would push its load over 3/4; true when it did.
    bool grow_table_if_needed() {
        if ((live_ + 1) * 4 < table_.size() * 3) return false;
        rehash(std::max(min_table, table_.size() * 2));
        return true;
    }
    void rehash(std::size_t capacity) {
        std::vector<std::uint32_t> table(capacity, 0);
        const std::size_t mask = capacity - 1;
        for (std::size_t i = 0; i < type_.size(); ++i) {
            if (type_[i] == free_type) continue;
            const std::uint64_t h = hash_of(static_cast<std::uint32_t>(i));
            std::size_t pos = h & mask;
            while (table[pos] != 0) pos = (pos + 1) & mask;
            table[pos] = entry(static_cast<std::uint32_t>(i), h);
        }
        table_.swap(table);
    }
    /// Removes atom i's entry, shifting later entries of its cluster back so no tombstone is needed.
    void table_erase(std::uint32_t i) noexcept {
        const std::size_t mask = table_.size() - 1;
        std::size_t pos = hash_of(i) & mask;
        while (table_[pos] == 0 || entry_index(table_[pos]) != i) pos = (pos + 1) & mask;
        table_[pos] = 0;
        for (std::size_t next = (pos + 1) & mask; table_[next] != 0; next = (next + 1) & mask) {
            const std::size_t home = hash_of(entry_index(table_[next])) & mask;
            // The entry at `next` may fill the hole at `pos` when its home is not inside (pos, next].
            if (((next - home) & mask) >= ((next - pos) & mask)) {
                table_[pos] = table_[next];
                table_[next] = 0;
                pos = next;
            }
        }
    }

    /// Makes sure take_index() will not throw: room in every per-atom array when no freed index is waiting.
    void prepare_index(std::string_view context) {
        if (free_head_ != nil) return;
        if (type_.size() >= detail::atomspace_impl::max_atoms) {
            throw shape_error(std::string(context) + ": the space is full (" + std::to_string(detail::atomspace_impl::max_atoms) +
                              " atoms)");
        }
        for_each_atom_array([](auto& v) { reserve_more(v, 1); });
    }
    /// A fresh atom index of type `type` with no incoming links and the default truth value: a freed one
    /// (its generation already bumped) or a new one. Call prepare_index() first.
    std::uint32_t take_index(type_id type) noexcept {
        std::uint32_t idx;
        if (free_head_ != nil) {
            idx = free_head_;
            free_head_ = data_[idx];
        } else {
            idx = static_cast<std::uint32_t>(type_.size());
            type_.push_back(free_type);
            gen_.push_back(0);
            data_.push_back(0);
            size_.push_back(0);
            head_.push_back(nil);
            tv_.push_back(TV{});
        }
        type_[idx] = type;
        head_[idx] = nil;
        tv_[idx] = TV{};
        ++live_;
        return idx;
    }

    void push_incoming(std::uint32_t target, std::uint32_t s) noexcept {
        const std::uint32_t first = head_[target];
        slot_next_[s] = first;
        slot_prev_[s] = nil;
        if (first != nil) slot_prev_[first] = s;
        head_[target] = s;
    }
    void unlink_incoming(std::uint32_t s) noexcept {
        const std::uint32_t prev = slot_prev_[s];
        const std::uint32_t next = slot_next_[s];
        if (prev != nil)
            slot_next_[prev] = next;
        else
            head_[slot_target_[s]] = next;
        if (next != nil) slot_prev_[next] = prev;
    }

    void erase_one(std::uint32_t i) {
        const handle h{i, gen_[i]};
        for (listener* l : listeners_) l->atom_removed(h);
        table_erase(i);
        if (types_.is_node(type_[i])) {
            dead_name_bytes_ += size_[i];
            --nodes_;
        } else {
            for (std::uint32_t s = data_[i]; s < data_[i] + size_[i]; ++s) {
                unlink_incoming(s);
                slot_owner_[s] = nil;
            }
            dead_slots_ += size_[i];
        }
        type_[i] = free_type;
        ++gen_[i];
        data_[i] = free_head_;
        size_[i] = 0;
        tv_[i] = TV{};
        free_head_ = i;
        --live_;
    }

    void compact_if_sparse() {
        constexpr std::size_t min_dead = 4096;
        if (dead_name_bytes_ > min_dead && dead_name_bytes_ * 2 > names_.size()) compact_names();
        if (dead_slots_ > min_dead && dead_slots_ * 2 > slot_target_.size()) compact_slots();
    }
    void compact_names() {
        std::vector<char> names;
        names.reserve(names_.size() - dead_name_bytes_);
        for (std::size_t i = 0; i < type_.size(); ++i) {
            if (type_[i] == free_type || !types_.is_node(type_[i])) continue;
            const auto offset = static_cast<std::uint32_t>(names.size());
            names.insert(names.end(), names_.begin() + data_[i], names_.begin() + data_[i] + size_[i]);
            data_[i] = offset;
        }
        names_.swap(names);
        dead_name_bytes_ = 0;
    }
    void compact_slots() {
        const std::size_t live_slots = slot_target_.size() - dead_slots_;
        std::vector<std::uint32_t> target, owner;
        target.reserve(live_slots);
        owner.reserve(live_slots);
        for (std::size_t i = 0; i < type_.size(); ++i) {
            if (type_[i] == free_type || !types_.is_link(type_[i])) continue;
            const auto first = static_cast<std::uint32_t>(target.size());
            for (std::uint32_t s = data_[i]; s < data_[i] + size_[i]; ++s) {
                target.push_back(slot_target_[s]);
                owner.push_back(static_cast<std::uint32_t>(i));
            }
            data_[i] = first;
        }
        slot_target_.swap(target);
        slot_owner_.swap(owner);
        slot_next_.assign(live_slots, nil);
        slot_prev_.assign(live_slots, nil);
        slot_next_.shrink_to_fit();
        slot_prev_.shrink_to_fit();
        std::fill(head_.begin(), head_.end(), nil);
        for (std::size_t s = 0; s < live_slots; ++s) push_incoming(slot_target_[s], static_cast<std::uint32_t>(s));
        dead_slots_ = 0;
    }

    void take(AtomSpace&& other) noexcept {
        // Swapped, not moved: the moved-from space keeps a complete registry and stays usable.
        std::swap(types_, other.types_);
        type_ = std::move(other.type_);
        gen_ = std::move(other.gen_);
        data_ = std::move(other.data_);
        size_ = std::move(other.size_);
        head_ = std::move(other.head_);
        tv_ = std::move(other.tv_);
        names_ = std::move(other.names_);
        slot_target_ = std::move(other.slot_target_);
        slot_owner_ = std::move(other.slot_owner_);
        slot_next_ = std::move(other.slot_next_);
        slot_prev_ = std::move(other.slot_prev_);
        table_ = std::move(other.table_);
        free_head_ = std::exchange(other.free_head_, nil);
        live_ = std::exchange(other.live_, 0);
        nodes_ = std::exchange(other.nodes_, 0);
        dead_name_bytes_ = std::exchange(other.dead_name_bytes_, 0);
        dead_slots_ = std::exchange(other.dead_slots_, 0);
        listeners_ = std::move(other.listeners_);
        other.listeners_.clear();
        // The moved-from space stays usable (and empty).
        other.type_.clear(), other.gen_.clear(), other.data_.clear(), other.size_.clear(), other.head_.clear(), other.tv_.clear();
        other.names_.clear();
        other.slot_target_.clear(), other.slot_owner_.clear(), other.slot_next_.clear(), other.slot_prev_.clear();
        other.table_.clear();  // an empty table is valid: the first insertion allocates one
        for (listener* l : listeners_) l->space_moved(*this);
    }
    void drop_listeners() noexcept {
        const std::vector<listener*> listeners = std::move(listeners_);
        listeners_.clear();
        for (listener* l : listeners) l->space_destroyed();
    }

    atom_type_registry types_;
    std::vector<type_id> type_;
    std::vector<std::uint32_t> gen_;
    std::vector<std::uint32_t> data_;  // node: name offset; link: first slot; free: next free index
    std::vector<std::uint32_t> size_;  // node: name length; link: arity
    std::vector<std::uint32_t> head_;  // first slot of the incoming list
    std::vector<TV> tv_;
    std::vector<char> names_;
    std::vector<std::uint32_t> slot_target_;
    std::vector<std::uint32_t> slot_owner_;  // nil once the owning link is removed
    std::vector<std::uint32_t> slot_next_;
    std::vector<std::uint32_t> slot_prev_;
    std::vector<std::uint32_t> table_;
    mutable std::vector<std::uint32_t> key_;  // scratch for outgoing_key
    std::uint32_t free_head_ = nil;
    std::size_t live_ = 0;
    std::size_t nodes_ = 0;
    std::size_t dead_name_bytes_ = 0;
    std::size_t dead_slots_ = 0;
    std::vector<listener*> listeners_;
};

}  // namespace cogqat::cog

/// Handles hash by index and generation, so they can key unordered containers.
template <>
struct std::hash<cogqat::cog::handle> {
    std::size_t operator()(const cogqat::cog::handle& h) const noexcept {
        return static_cast<std::size_t>(cogqat::cog::detail::atomspace_impl::fmix64((std::uint64_t{h.generation} << 32) | h.index));
    }
};
