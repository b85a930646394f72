// Tests of the persistent AtomSpace on RocksDB (cog/rocks_storage.hpp) and of truth values as bytes
// (cog/truth_value_bytes.hpp): round trips of whole spaces, values stored at their width, fetches by type and
// by incoming set, removal, every refused input, and a crash test that SIGKILLs a writer process at random
// points and checks every reopened database. Built only where RocksDB is found (cmake/cogqatRocksDB.cmake).

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <rocksdb/db.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "cogqat/cog/atom_types.hpp"
#include "cogqat/cog/atomspace.hpp"
#include "cogqat/cog/rocks_storage.hpp"
#include "cogqat/cog/truth_value.hpp"
#include "cogqat/cog/truth_value_bytes.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/policy.hpp"
#include "rocks_crash_workload.hpp"
#include "scratch_dir.hpp"

using namespace cogqat;
using namespace cogqat::cog;

extern char** environ;

namespace {

using q8_tv = quantized_truth_value<BitWidth<8>>;

/// Every atom of a space as text, with its truth value's strength and confidence: equal maps mean equal
/// spaces, whatever the handles.
template <class TV>
std::map<std::string, std::pair<float, float>> contents(const AtomSpace<TV>& space) {
    std::map<std::string, std::pair<float, float>> out;
    space.for_each_atom([&](handle h) { out[space.to_string(h)] = {space.truth_value(h).strength(), space.truth_value(h).confidence()}; });
    return out;
}

/// A space with what storage must carry: user types (a node type, a link type below a user link type),
/// unordered links, an empty link, names with zero bytes and UTF-8, an empty name, a deep chain of links,
/// a link holding one atom twice, and distinct truth values.
template <class TV>
AtomSpace<TV> sample_space() {
    AtomSpace<TV> s;
    const type_id gene = s.types().add("GeneNode", {types::node});
    const type_id relation = s.types().add("RelationLink", {types::ordered_link});
    const type_id regulates = s.types().add("RegulatesLink", {relation});
    const handle cat = s.add_node(types::concept_node, "cat", TV(0.25f, 0.5f));
    const handle dog = s.add_node(types::concept_node, "dog", TV(0.75f, 0.125f));
    const handle odd = s.add_node(types::concept_node, std::string("a\0b", 3), TV(1.0f, 1.0f));
    const handle utf8 = s.add_node(types::predicate_node, "m\xC3\xA4useln", TV(0.0f, 0.0f));
    const handle empty = s.add_node(types::schema_node, "");
    const handle g = s.add_node(gene, "BRCA1", TV(0.5f, 0.5f));
    s.add_link(types::inheritance_link, {cat, dog}, TV(0.875f, 0.25f));
    s.add_link(types::similarity_link, {dog, cat}, TV(0.5f, 0.75f));
    s.add_link(types::and_link, {utf8, odd, empty});
    s.add_link(types::list_link, std::span<const handle>{});
    s.add_link(types::list_link, {cat, cat}, TV(0.125f, 0.875f));
    s.add_link(regulates, {g, s.add_link(relation, {g, cat})}, TV(0.625f, 0.375f));
    handle chain = cat;
    for (int depth = 0; depth < 300; ++depth) chain = s.add_link(types::list_link, {chain});
    return s;
}

/// The database opened directly, for reading or damaging records behind the storage's back.
std::unique_ptr<rocksdb::DB> raw_db(const std::filesystem::path& dir, bool create = false) {
    rocksdb::Options options;
    options.create_if_missing = create;
    rocksdb::DB* db = nullptr;
    const rocksdb::Status status = rocksdb::DB::Open(options, dir.string(), &db);
    REQUIRE_MESSAGE(status.ok(), status.ToString());
    return std::unique_ptr<rocksdb::DB>(db);
}

/// The key and value of the atom record that ends with `suffix` (a node's name).
std::pair<std::string, std::string> record_ending_with(rocksdb::DB& db, const std::string& suffix) {
    const std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions()));
    for (it->Seek("A"); it->Valid() && it->key().starts_with("A"); it->Next()) {
        if (it->value().ToString().ends_with(suffix)) return {it->key().ToString(), it->value().ToString()};
    }
    FAIL("no atom record ends with " << suffix);
    return {};
}

/// Runs `f`, which must throw E whose message holds every one of `parts`.
template <class E, class F>
void check_throws(F&& f, std::initializer_list<std::string> parts) {
    try {
        f();
        FAIL("no exception");
    } catch (const E& e) {
        const std::string what = e.what();
        for (const std::string& part : parts) CHECK_MESSAGE(what.find(part) != std::string::npos, what, " lacks ", part);
    }
}

}  // namespace

// --------------------------------------------------------------------------------- truth values as bytes

TEST_CASE("truth_value_bytes: each type at its own width, every value round-trips exactly") {
    CHECK(truth_value_bytes<float_truth_value>::size == 8);
    CHECK(truth_value_bytes<quantized_truth_value<BitWidth<4>>>::size == 1);
    CHECK(truth_value_bytes<quantized_truth_value<BitWidth<5>>>::size == 2);
    CHECK(truth_value_bytes<q8_tv>::size == 2);
    CHECK(truth_value_bytes<quantized_truth_value<BitWidth<16>>>::size == 4);
    for (int s = 0; s < 256; ++s) {
        for (int c = 0; c < 256; c += 5) {
            const q8_tv tv = q8_tv::from_codes(static_cast<std::uint8_t>(s), static_cast<std::uint8_t>(c));
            std::array<std::byte, 2> bytes{};
            truth_value_bytes<q8_tv>::write(tv, bytes);
            CHECK(std::to_integer<int>(bytes[0]) == s);  // the codes themselves, not floats
            CHECK(truth_value_bytes<q8_tv>::read(bytes) == tv);
        }
    }
    using q4_tv = quantized_truth_value<BitWidth<4>>;
    for (int s = 0; s < 16; ++s) {
        for (int c = 0; c < 16; ++c) {
            const q4_tv tv = q4_tv::from_codes(static_cast<std::uint8_t>(s), static_cast<std::uint8_t>(c));
            std::array<std::byte, 1> bytes{};
            truth_value_bytes<q4_tv>::write(tv, bytes);
            CHECK(truth_value_bytes<q4_tv>::read(bytes) == tv);
        }
    }
    const float_truth_value f(0.1f, 0.7f);
    std::array<std::byte, 8> bytes{};
    truth_value_bytes<float_truth_value>::write(f, bytes);
    CHECK(truth_value_bytes<float_truth_value>::read(bytes) == f);
}

TEST_CASE("truth_value_bytes: bytes no value writes are refused") {
    std::array<std::byte, 8> nan{};
    truth_value_bytes<float_truth_value>::write(float_truth_value(0.5f, 0.5f), nan);
    nan[3] = std::byte{0x7F};
    nan[2] = std::byte{0xC0};  // strength NaN
    CHECK_THROWS_AS((void)truth_value_bytes<float_truth_value>::read(nan), format_error);
    std::array<std::byte, 8> big{};
    truth_value_bytes<float_truth_value>::write(float_truth_value(1.0f, 0.5f), big);
    big[0] = std::byte{1};  // strength just above 1
    CHECK_THROWS_AS((void)truth_value_bytes<float_truth_value>::read(big), format_error);
    using q5_tv = quantized_truth_value<BitWidth<5>>;
    const std::array<std::byte, 2> high{std::byte{0}, std::byte{0x04}};  // bit 10, above the two 5-bit codes
    CHECK_THROWS_AS((void)truth_value_bytes<q5_tv>::read(high), format_error);
    const std::array<std::byte, 3> long_q8{};
    CHECK_THROWS_AS((void)truth_value_bytes<q8_tv>::read(long_q8), format_error);
    std::array<std::byte, 1> short_q8{};
    CHECK_THROWS_AS(truth_value_bytes<q8_tv>::write(q8_tv{}, short_q8), format_error);
}

// ------------------------------------------------------------------------------------------ round trips

TEST_CASE_TEMPLATE("rocks_storage: store_all then load gives the same space, types and truth values", TV, float_truth_value, q8_tv) {
    const test::scratch_dir dir;
    const AtomSpace<TV> original = sample_space<TV>();
    {
        rocks_storage<TV> storage(dir / "db");
        CHECK(storage.empty());
        CHECK(storage.store_all(original) == original.size());
        CHECK(storage.size() == original.size());
        CHECK(storage.store_all(original) == 0);  // everything is there already
        CHECK(storage.size() == original.size());
        storage.verify();
    }
    rocks_storage<TV> storage(dir / "db", {open_mode::open_existing});
    CHECK(storage.size() == original.size());
    AtomSpace<TV> loaded;  // knows none of the user types: they come from the database
    CHECK(storage.load(loaded) == original.size());
    CHECK(contents(loaded) == contents(original));
    const type_id regulates = loaded.types().at("RegulatesLink");
    CHECK(loaded.types().is_a(regulates, loaded.types().at("RelationLink")));
    CHECK(loaded.types().is_link(regulates));
    CHECK(loaded.types().is_node(loaded.types().at("GeneNode")));

    // Loading into a space that holds some atoms already keeps their handles and takes the stored values.
    AtomSpace<TV> partial;
    const handle cat = partial.add_node(types::concept_node, "cat");
    CHECK(storage.load(partial) == original.size());
    CHECK(partial.contains(cat));
    CHECK(partial.truth_value(cat) == TV(0.25f, 0.5f));
    CHECK(contents(partial) == contents(original));
}

TEST_CASE("rocks_storage: a quantized truth value is stored as its codes, a float one as floats") {
    const test::scratch_dir dir;
    {
        AtomSpace<q8_tv> s;
        s.add_node(types::concept_node, "q8cat", q8_tv(0.5f, 1.0f));
        rocks_storage<q8_tv>(dir / "q8").store_all(s);
        AtomSpace<float_truth_value> f;
        f.add_node(types::concept_node, "f32cat", float_truth_value(0.5f, 1.0f));
        rocks_storage<float_truth_value>(dir / "f32").store_all(f);
    }
    const auto q8 = record_ending_with(*raw_db(dir / "q8"), "q8cat");
    CHECK(q8.second.size() == 2 + 2 + 5);  // type, two 8-bit codes, name
    CHECK(static_cast<unsigned char>(q8.second[2]) == q8_tv(0.5f, 1.0f).strength_code());
    CHECK(static_cast<unsigned char>(q8.second[3]) == 255);
    const auto f32 = record_ending_with(*raw_db(dir / "f32"), "f32cat");
    CHECK(f32.second.size() == 2 + 8 + 6);
}

TEST_CASE("rocks_storage: store() adds the outgoing set, replaces the named atom's value and keeps the others'") {
    const test::scratch_dir dir;
    AtomSpace<q8_tv> s;
    const handle cat = s.add_node(types::concept_node, "cat", q8_tv(0.25f, 0.25f));
    const handle animal = s.add_node(types::concept_node, "animal", q8_tv(0.5f, 0.5f));
    const handle isa = s.add_link(types::inheritance_link, {cat, animal}, q8_tv(1.0f, 0.5f));
    rocks_storage<q8_tv> storage(dir / "db");
    CHECK_FALSE(storage.contains(s, isa));
    CHECK(storage.store(s, isa) == 3);
    CHECK(storage.contains(s, cat));
    CHECK(storage.stored_truth_value(s, cat) == q8_tv(0.25f, 0.25f));

    s.set_truth_value(cat, q8_tv(0.75f, 0.75f));
    s.set_truth_value(isa, q8_tv(0.0f, 1.0f));
    CHECK(storage.store(s, isa) == 0);
    CHECK(storage.stored_truth_value(s, isa) == q8_tv(0.0f, 1.0f));
    CHECK(storage.stored_truth_value(s, cat) == q8_tv(0.25f, 0.25f));  // an outgoing atom keeps its stored value
    CHECK(storage.store(s, cat) == 0);
    CHECK(storage.stored_truth_value(s, cat) == q8_tv(0.75f, 0.75f));

    // Several atoms in one call; an unordered link is one record whatever the order its space keeps.
    const handle dog = s.add_node(types::concept_node, "dog");
    const std::array<handle, 2> both{s.add_link(types::similarity_link, {dog, cat}), dog};
    CHECK(storage.store(s, both) == 2);
    AtomSpace<q8_tv> other;
    const handle dog2 = other.add_node(types::concept_node, "dog");
    const handle cat2 = other.add_node(types::concept_node, "cat");
    CHECK(storage.contains(other, other.add_link(types::similarity_link, {cat2, dog2})));
    CHECK(storage.size() == 5);
    storage.verify();
}

TEST_CASE("rocks_storage: fetch by type and by incoming set load only what was asked, with the outgoing sets") {
    const test::scratch_dir dir;
    const AtomSpace<float_truth_value> original = sample_space<float_truth_value>();
    rocks_storage<float_truth_value> storage(dir / "db");
    storage.store_all(original);

    AtomSpace<float_truth_value> concepts;
    const std::vector<handle> got = storage.fetch_type(concepts, types::concept_node);
    CHECK(got.size() == 3);
    CHECK(concepts.size() == 3);
    for (const handle h : got) CHECK(concepts.type(h) == types::concept_node);

    AtomSpace<float_truth_value> links;
    const std::vector<handle> all_links = storage.fetch_type(links, types::link, true);
    CHECK(all_links.size() == original.link_count());
    CHECK(contents(links) == contents(original));  // every node is in some link's outgoing set
    CHECK_THROWS_AS((void)storage.fetch_type(links, static_cast<type_id>(9999)), invalid_argument_error);

    AtomSpace<float_truth_value> incoming;
    const handle cat = incoming.add_node(types::concept_node, "cat");
    const std::vector<handle> holding = storage.fetch_incoming(incoming, cat);
    CHECK(holding.size() == 5);  // inheritance, similarity, (List cat cat), (List cat), (RelationLink BRCA1 cat)
    for (const handle l : holding) CHECK(incoming.incoming_size(l) == 0);
    CHECK(incoming.incoming_size(cat) == 5);
    CHECK(incoming.truth_value(incoming.get_node(types::concept_node, "dog")) == float_truth_value(0.75f, 0.125f));

    AtomSpace<float_truth_value> lists;
    const handle cat3 = lists.add_node(types::concept_node, "cat");
    CHECK(storage.fetch_incoming(lists, cat3, types::list_link).size() == 2);
    CHECK(storage.fetch_incoming(lists, cat3, types::unordered_link, true).size() == 1);
    CHECK(storage.fetch_incoming(lists, lists.add_node(types::concept_node, "not stored")).empty());
}

TEST_CASE("rocks_storage: remove refuses a held atom, removes recursively on request, and survives reopening") {
    const test::scratch_dir dir;
    AtomSpace<q8_tv> s;
    const handle cat = s.add_node(types::concept_node, "cat");
    const handle dog = s.add_node(types::concept_node, "dog");
    const handle pair = s.add_link(types::list_link, {cat, dog});
    const handle eval = s.add_link(types::evaluation_link, {s.add_node(types::predicate_node, "likes"), pair});
    {
        rocks_storage<q8_tv> storage(dir / "db");
        storage.store_all(s);
        check_throws<invalid_argument_error>([&] { storage.remove(s, cat); }, {"held by stored links", (dir / "db").string()});
        CHECK(storage.size() == 5);
        storage.verify();
        CHECK(storage.remove(s, eval) == 1);
        CHECK(storage.remove(s, eval) == 0);
        storage.store(s, eval);
        CHECK(storage.remove(s, cat, AtomSpace<q8_tv>::removal::recursive) == 3);  // cat, the list, the evaluation
        CHECK(storage.size() == 2);
        storage.verify();
    }
    rocks_storage<q8_tv> storage(dir / "db", {open_mode::open_existing});
    storage.verify();
    AtomSpace<q8_tv> loaded;
    CHECK(storage.load(loaded) == 2);
    CHECK(loaded.get_node(types::concept_node, "cat").is_null());
    CHECK_FALSE(loaded.get_node(types::concept_node, "dog").is_null());
    // Stored again, the atom gets a new id, above its links' outgoing atoms as loading needs.
    CHECK(storage.store(s, eval) == 3);
    AtomSpace<q8_tv> again;
    CHECK(storage.load(again) == 5);
    CHECK(contents(again) == contents(s));
    storage.verify();
}

TEST_CASE("rocks_storage: durability::process_crash stores and loads as synced writes do") {
    const test::scratch_dir dir;
    const AtomSpace<q8_tv> original = sample_space<q8_tv>();
    rocks_storage<q8_tv>(dir / "db", {open_mode::create_if_missing, durability::process_crash}).store_all(original);
    AtomSpace<q8_tv> loaded;
    rocks_storage<q8_tv>(dir / "db", {open_mode::open_existing}).load(loaded);
    CHECK(contents(loaded) == contents(original));
}

// ------------------------------------------------------------------------------------------ bad input

TEST_CASE("rocks_storage: a missing, misplaced or foreign directory is refused, naming the path") {
    const test::scratch_dir dir;
    const std::string missing = (dir / "missing").string();
    check_throws<io_error>([&] { rocks_storage<q8_tv>(dir / "missing", {open_mode::open_existing}); }, {missing, "no such directory"});
    check_throws<io_error>([&] { rocks_storage<q8_tv>(dir / "no" / "db"); }, {"parent directory does not exist"});
    std::ofstream(dir / "file") << "x";
    check_throws<io_error>([&] { rocks_storage<q8_tv>(dir / "file"); }, {(dir / "file").string(), "not a directory"});
    std::filesystem::create_directories(dir / "empty");
    check_throws<io_error>([&] { rocks_storage<q8_tv>(dir / "empty", {open_mode::open_existing}); }, {"holds no database"});
    std::filesystem::create_directories(dir / "photos");
    std::ofstream(dir / "photos" / "cat.jpg") << "x";
    check_throws<io_error>([&] { rocks_storage<q8_tv>(dir / "photos"); }, {"cat.jpg", "refusing"});
    CHECK(std::filesystem::exists(dir / "photos" / "cat.jpg"));
    // A creation killed before RocksDB wrote CURRENT leaves RocksDB's own files alone: created again, it works.
    std::filesystem::create_directories(dir / "interrupted");
    std::ofstream(dir / "interrupted" / "LOCK") << "";
    std::ofstream(dir / "interrupted" / "LOG") << "";
    std::ofstream(dir / "interrupted" / "000001.dbtmp") << "";
    CHECK(rocks_storage<q8_tv>(dir / "interrupted").empty());
    {
        const auto db = raw_db(dir / "foreign", true);
        REQUIRE(db->Put(rocksdb::WriteOptions(), "hello", "world").ok());
    }
    check_throws<format_error>([&] { rocks_storage<q8_tv>(dir / "foreign"); },
                               {(dir / "foreign").string(), "not a cogqat AtomSpace database"});
}

TEST_CASE("rocks_storage: a corrupt database, format record or atom record is refused, naming path and record") {
    const test::scratch_dir dir;
    const AtomSpace<q8_tv> original = sample_space<q8_tv>();
    const auto fresh = [&](const std::string& name) {
        rocks_storage<q8_tv>(dir / name).store_all(original);
        return dir / name;
    };
    SUBCASE("a damaged CURRENT file") {
        const auto db = fresh("current");
        std::ofstream(db / "CURRENT", std::ios::trunc) << "MANIFEST-garbage";
        check_throws<format_error>([&] { rocks_storage<q8_tv>(db, {open_mode::open_existing}); }, {db.string(), "corrupt"});
    }
    SUBCASE("another magic, another format version") {
        const auto db = fresh("format");
        {
            auto raw = raw_db(db);
            std::string value;
            REQUIRE(raw->Get(rocksdb::ReadOptions(), "M:format", &value).ok());
            value[16] = 99;  // the version's low byte, after the 16-byte magic
            REQUIRE(raw->Put(rocksdb::WriteOptions(), "M:format", value).ok());
        }
        check_throws<format_error>([&] { rocks_storage<q8_tv>(db, {open_mode::open_existing}); }, {db.string(), "format version 99"});
        REQUIRE(raw_db(db)->Put(rocksdb::WriteOptions(), "M:format", "something else").ok());
        check_throws<format_error>([&] { rocks_storage<q8_tv>(db, {open_mode::open_existing}); }, {"not a cogqat AtomSpace database"});
    }
    SUBCASE("a truncated atom record") {
        const auto db = fresh("truncated");
        {
            auto raw = raw_db(db);
            const auto record = record_ending_with(*raw, "BRCA1");
            REQUIRE(raw->Put(rocksdb::WriteOptions(), record.first, record.second.substr(0, 3)).ok());
        }
        rocks_storage<q8_tv> storage(db, {open_mode::open_existing});
        AtomSpace<q8_tv> s;
        check_throws<format_error>([&] { storage.load(s); }, {db.string(), "record A:", "truth value is cut short"});
        check_throws<format_error>([&] { storage.verify(); }, {"truth value is cut short"});
    }
    SUBCASE("an unknown type id, an unparsable outgoing set") {
        const auto db = fresh("type");
        {
            auto raw = raw_db(db);
            auto record = record_ending_with(*raw, "dog");
            record.second[0] = '\x7F';
            REQUIRE(raw->Put(rocksdb::WriteOptions(), record.first, record.second).ok());
        }
        AtomSpace<q8_tv> s;
        check_throws<format_error>([&] { rocks_storage<q8_tv>(db, {open_mode::open_existing}).load(s); }, {"unknown type id 127"});
    }
    SUBCASE("a link whose outgoing atom is gone, indexes that disagree") {
        const auto db = fresh("dangling");
        {
            auto raw = raw_db(db);
            REQUIRE(raw->Delete(rocksdb::WriteOptions(), record_ending_with(*raw, "dog").first).ok());
        }
        AtomSpace<q8_tv> s;
        rocks_storage<q8_tv> storage(db, {open_mode::open_existing});
        check_throws<format_error>([&] { storage.load(s); }, {"is not stored before it"});
        check_throws<format_error>([&] { storage.verify(); }, {db.string()});
    }
    SUBCASE("a type index entry missing") {
        const auto db = fresh("index");
        {
            auto raw = raw_db(db);
            const std::unique_ptr<rocksdb::Iterator> it(raw->NewIterator(rocksdb::ReadOptions()));
            it->Seek("T");
            REQUIRE((it->Valid() && it->key().starts_with("T")));
            REQUIRE(raw->Delete(rocksdb::WriteOptions(), it->key()).ok());
        }
        check_throws<format_error>([&] { rocks_storage<q8_tv>(db, {open_mode::open_existing}).verify(); },
                                   {"the type index does not list this atom"});
    }
    SUBCASE("an incoming index entry for a link that does not exist, an atom count that is off") {
        const auto db = fresh("extra");
        {
            auto raw = raw_db(db);
            const std::string key = std::string("I") + std::string(17, '\0') + "\x7F";  // target 0, type 0, link 127
            REQUIRE(raw->Put(rocksdb::WriteOptions(), key, "").ok());
        }
        check_throws<format_error>([&] { rocks_storage<q8_tv>(db, {open_mode::open_existing}).verify(); },
                                   {db.string(), "the incoming index names an atom that is not stored so"});
        {
            auto raw = raw_db(db);
            std::string counters;
            REQUIRE(raw->Get(rocksdb::ReadOptions(), "M:count", &counters).ok());
            counters[8] = static_cast<char>(counters[8] - 1);  // one atom fewer than stored (the low byte is not 0)
            REQUIRE(raw->Put(rocksdb::WriteOptions(), "M:count", counters).ok());
        }
        check_throws<format_error>([&] { rocks_storage<q8_tv>(db, {open_mode::open_existing}).verify(); },
                                   {"record M:count", "atoms where"});
        REQUIRE(raw_db(db)->Put(rocksdb::WriteOptions(), "M:count", "short").ok());
        check_throws<format_error>([&] { rocks_storage<q8_tv>(db, {open_mode::open_existing}); }, {"the counter record is not 16 bytes"});
    }
}

TEST_CASE("rocks_storage: records damaged at random give cogqat errors, never a crash or another exception") {
    // Each round flips, truncates or extends a few random records behind the storage's back, then opens,
    // verifies, loads and fetches: each must succeed or throw a cogqat::error (sanitized in that pass).
    constexpr int rounds = 6;
    const test::scratch_dir dir;
    rocks_storage<q8_tv>(dir / "db").store_all(sample_space<q8_tv>());
    std::mt19937 rng(424242);
    int refused = 0;
    for (int round = 0; round < rounds; ++round) {
        {
            auto raw = raw_db(dir / "db");
            std::vector<std::pair<std::string, std::string>> records;
            const std::unique_ptr<rocksdb::Iterator> it(raw->NewIterator(rocksdb::ReadOptions()));
            for (it->SeekToFirst(); it->Valid(); it->Next()) records.emplace_back(it->key().ToString(), it->value().ToString());
            REQUIRE(!records.empty());
            for (int k = 0; k < 3; ++k) {
                auto [key, value] = records[rng() % records.size()];
                switch (rng() % 4) {
                    case 0:
                        if (!value.empty()) value[rng() % value.size()] ^= static_cast<char>(1 + rng() % 255);
                        break;
                    case 1:
                        value.resize(rng() % (value.size() + 1));
                        break;
                    case 2:
                        value.push_back(static_cast<char>(rng()));
                        break;
                    default:
                        key[rng() % key.size()] ^= static_cast<char>(1 + rng() % 255);
                        break;
                }
                REQUIRE(raw->Put(rocksdb::WriteOptions(), key, value).ok());
            }
        }
        try {
            rocks_storage<q8_tv> storage(dir / "db", {open_mode::open_existing});
            AtomSpace<q8_tv> space;
            try {
                storage.load(space);
                (void)storage.fetch_type(space, types::link, true);
                storage.verify();
            } catch (const error&) {
                ++refused;
            }
        } catch (const error&) {
            ++refused;
        }
    }
    CHECK(refused > 0);
}

TEST_CASE("rocks_storage: values of another width, a locked database and foreign handles are refused") {
    const test::scratch_dir dir;
    AtomSpace<float_truth_value> floats;
    const handle cat = floats.add_node(types::concept_node, "cat", float_truth_value(0.5f, 0.5f));
    rocks_storage<float_truth_value>(dir / "db").store(floats, cat);
    check_throws<invalid_argument_error>(
            [&] { rocks_storage<q8_tv>(dir / "db"); },
            {(dir / "db").string(), "float32 strength and confidence (8 bytes)", "quantized 8-bit", "(2 bytes)"});
    rocks_storage<float_truth_value> storage(dir / "db");
    check_throws<io_error>([&] { rocks_storage<float_truth_value>(dir / "db"); }, {(dir / "db").string(), "lock"});

    AtomSpace<float_truth_value> other;
    check_throws<invalid_argument_error>([&] { storage.store(other, cat); }, {"names no atom of the space"});
    const handle dog = floats.add_node(types::concept_node, "dog");
    floats.remove(dog);
    CHECK_THROWS_AS(storage.store(floats, dog), invalid_argument_error);
    CHECK_THROWS_AS(storage.remove(floats, dog), invalid_argument_error);
    CHECK_THROWS_AS((void)storage.contains(floats, dog), invalid_argument_error);
    CHECK_THROWS_AS((void)storage.fetch_incoming(floats, dog), invalid_argument_error);

    // A type the database has as a node type that the space has registered as a link type.
    AtomSpace<float_truth_value> genes;
    storage.store(genes, genes.add_node(genes.types().add("GeneNode", {types::node}), "BRCA1"));
    AtomSpace<float_truth_value> clash;
    clash.types().add("GeneNode", {types::ordered_link});
    check_throws<invalid_argument_error>([&] { storage.load(clash); },
                                         {"GeneNode", "a node type in the database but a link type in the space"});
    check_throws<invalid_argument_error>([&] { storage.store(clash, clash.add_link(clash.types().at("GeneNode"), {})); },
                                         {"GeneNode", "a link type in the space but a node type in the database"});

    rocks_storage<float_truth_value> moved = std::move(storage);
    CHECK(moved.size() == 2);
    check_throws<invalid_argument_error>([&] { storage.verify(); },
                                         {"moved from"});  // NOLINT(bugprone-use-after-move): the case under test
}

// ------------------------------------------------------------------------------------------ crash test

namespace {

/// A writer process and the read end of the pipe its reports come through.
struct writer_process {
    pid_t pid = 0;
    int reports = -1;
    std::string pending;     // a report line not complete yet
    std::vector<int> steps;  // the steps reported as returned

    writer_process(const std::filesystem::path& dir, int run, int steps_per_run) {
        const std::string writer = COGQAT_ROCKS_CRASH_WRITER;
        std::vector<std::string> args{writer, dir.string(), std::to_string(run), std::to_string(steps_per_run)};
        std::vector<char*> argv;
        for (std::string& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        posix_spawn_file_actions_t actions;
        ::posix_spawn_file_actions_init(&actions);
        ::posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);  // dup2 clears O_CLOEXEC on the copy
        const int rc = ::posix_spawn(&pid, writer.c_str(), &actions, nullptr, argv.data(), environ);
        ::posix_spawn_file_actions_destroy(&actions);
        ::close(fds[1]);
        reports = fds[0];
        REQUIRE_MESSAGE(rc == 0, "posix_spawn ", writer, " failed with ", rc);
    }
    writer_process(const writer_process&) = delete;
    writer_process& operator=(const writer_process&) = delete;
    ~writer_process() {
        if (reports >= 0) ::close(reports);
    }

    /// Reads reports until `count` steps are in or the pipe ends (the writer is gone); false on a timeout.
    bool read_until(std::size_t count, std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (steps.size() < count) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return false;
            pollfd p{reports, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
            char buf[256];
            const ssize_t n = ::read(reports, buf, sizeof buf);
            if (n <= 0) return true;
            pending.append(buf, static_cast<std::size_t>(n));
            for (std::size_t nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
                steps.push_back(std::stoi(pending.substr(0, nl)));
                pending.erase(0, nl + 1);
            }
        }
        return true;
    }
};

/// What of step (run, step) the space lacks or holds with another truth value; empty when it is all there.
/// Plain code rather than one assertion per atom: the crash test checks thousands of steps after every kill.
std::string missing_from(const test::rocks_crash::space_type& space, int run, int step) {
    namespace crash = test::rocks_crash;
    const auto crash_link = space.types().find("CrashLink");
    if (!crash_link) return "the CrashLink type is not stored";
    const handle c = space.get_node(types::concept_node, crash::concept_name(run, step));
    const handle p = space.get_node(types::predicate_node, crash::predicate_name(run, step));
    const handle earlier = space.get_node(types::concept_node, crash::concept_name(run, step / 2));
    if (c.is_null() || p.is_null() || earlier.is_null()) return "a node is missing";
    if (space.truth_value(c) != crash::concept_tv(run, step)) return "the concept's truth value differs";
    const handle list = space.get_link(types::list_link, {c, earlier});
    if (list.is_null()) return "the list link is missing";
    const handle link = space.get_link(*crash_link, {p, list});
    if (link.is_null()) return "the CrashLink is missing";
    if (space.truth_value(link) != crash::link_tv(run, step)) return "the CrashLink's truth value differs";
    return {};
}

}  // namespace

TEST_CASE("rocks_storage: a writer SIGKILLed at random points leaves a consistent database holding every returned store") {
    namespace crash = test::rocks_crash;
    constexpr int runs = 50;
    constexpr int steps_per_run = 40;
    // On a memory file system: the test is about what a killed process leaves, not about disks, and fsync on
    // a disk would make its 50 runs take half a minute.
    const test::scratch_dir dir(test::memory_file_system());
    std::mt19937 rng(20261206);
    std::vector<std::vector<int>> returned(runs);
    std::size_t killed_mid_run = 0;
    for (int run = 0; run < runs; ++run) {
        // Kill after a random number of returned stores (0: while the process starts, opens or recovers the
        // database), then a random few hundred microseconds into the next store.
        const std::size_t wait_for = std::uniform_int_distribution<std::size_t>(0, 5)(rng);
        const auto extra = std::chrono::microseconds(std::uniform_int_distribution<int>(0, 2000)(rng));
        writer_process writer(dir / "db", run, steps_per_run);
        REQUIRE_MESSAGE(writer.read_until(wait_for, std::chrono::seconds(20)), "the writer stalled");
        std::this_thread::sleep_for(extra);
        ::kill(writer.pid, SIGKILL);
        int status = 0;
        REQUIRE(::waitpid(writer.pid, &status, 0) == writer.pid);
        REQUIRE(writer.read_until(static_cast<std::size_t>(steps_per_run) + 1, std::chrono::seconds(20)));  // to the pipe's end
        INFO("run ", run);
        if (WIFEXITED(status)) {
            REQUIRE_MESSAGE(WEXITSTATUS(status) == 0, "the writer failed on its own");
        } else {
            REQUIRE(WIFSIGNALED(status));
            REQUIRE(WTERMSIG(status) == SIGKILL);
            ++killed_mid_run;
        }
        returned[static_cast<std::size_t>(run)] = writer.steps;

        // Reopen: the indexes agree with the records, and every store that returned is there, whole.
        rocks_storage<crash::tv_type> storage(dir / "db");
        storage.verify();
        crash::space_type space;
        storage.load(space);
        for (int r = 0; r <= run; ++r) {
            for (const int step : returned[static_cast<std::size_t>(r)]) {
                const std::string missing = missing_from(space, r, step);
                REQUIRE_MESSAGE(missing.empty(), "run ", r, " step ", step, " returned, yet after a kill in run ", run, ": ", missing);
            }
        }
    }
    std::size_t total = 0;
    for (const auto& r : returned) total += r.size();
    MESSAGE("crash test: ", runs, " runs, ", killed_mid_run, " killed, ", total, " returned stores checked after reopening");
    CHECK(killed_mid_run >= runs * 9 / 10);
    CHECK(total >= runs * 2);
}
