// Split GGUF models: the shard names and keys llama.cpp's gguf-split writes, a writer that splits by size or
// tensor count with every shard all or nothing, a reader that opens the first shard and reads one model,
// and a named error for each way a set can be broken (a missing shard, a shard opened out of turn, shards
// that disagree, a shard of another set, a tensor in two shards, a wrong tensor count).

#include <doctest/doctest.h>

#include <cogqat/gguf/reader.hpp>
#include <cogqat/gguf/split.hpp>
#include <cogqat/gguf/writer.hpp>
#include <cogqat/io/file.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "scratch_dir.hpp"

using namespace cogqat;

namespace {

/// The bytes of a float tensor of `n` values, each its index plus `base`.
std::vector<std::byte> floats(std::size_t n, float base) {
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = base + static_cast<float>(i);
    const auto* p = reinterpret_cast<const std::byte*>(v.data());
    return {p, p + n * sizeof(float)};
}

/// A writer for `out` with a little metadata and one f32 tensor per entry of `sizes`, named `stem` + index.
gguf::writer model(const std::filesystem::path& out, const std::vector<std::size_t>& sizes, const std::string& stem = "t") {
    gguf::writer w(out);
    w.set("general.architecture", gguf::value(std::string("llama")));
    w.set("general.name", gguf::value(std::string("split test")));
    for (std::size_t i = 0; i < sizes.size(); ++i)
        w.add_tensor(stem + std::to_string(i), {sizes[i]}, ggml_type::f32, floats(sizes[i], static_cast<float>(100 * i)));
    return w;
}

/// Writes the model and returns the files written.
std::vector<std::filesystem::path> write(gguf::writer w) {
    w.finish();
    return w.output_paths();
}

std::string message_of(auto&& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "no exception";
}

}  // namespace

TEST_CASE("split shard names follow llama_split_path and llama_split_prefix") {
    CHECK(gguf::split_path("dir/model", 0, 3) == std::filesystem::path("dir/model-00001-of-00003.gguf"));
    CHECK(gguf::split_path("m", 11, 12) == std::filesystem::path("m-00012-of-00012.gguf"));
    CHECK(gguf::split_prefix("dir/model-00002-of-00003.gguf", 1, 3) == std::filesystem::path("dir/model"));
    CHECK_FALSE(gguf::split_prefix("dir/model-00002-of-00003.gguf", 0, 3));
    CHECK_FALSE(gguf::split_prefix("model.gguf", 0, 1));
    CHECK_FALSE(gguf::split_prefix("-00001-of-00001.gguf", 0, 1));  // no prefix at all
    CHECK(gguf::split_prefix_for("out/m.gguf") == std::filesystem::path("out/m"));
    CHECK(gguf::split_prefix_for("out/m.bin") == std::filesystem::path("out/m.bin"));
    CHECK(gguf::is_split_key("split.count"));
    CHECK_FALSE(gguf::is_split_key("general.split"));
    CHECK_THROWS_AS(static_cast<void>(gguf::split_path("m", 3, 3)), invalid_argument_error);
    CHECK_THROWS_AS(static_cast<void>(gguf::split_path("m", 0, 0)), invalid_argument_error);
    CHECK_THROWS_AS(static_cast<void>(gguf::split_path("m", 0, 65536)), invalid_argument_error);
}

TEST_CASE("a split write by tensor count reads back as the unsplit model") {
    test::scratch_dir dir;
    const std::vector<std::size_t> sizes{64, 8, 32, 16, 128};
    write(model(dir / "whole.gguf", sizes));
    auto w = model(dir / "m.gguf", sizes);
    w.set_split({0, 2});
    const auto paths = write(std::move(w));
    REQUIRE(paths.size() == 3);
    CHECK(dir.listing() ==
          std::vector<std::string>{"m-00001-of-00003.gguf", "m-00002-of-00003.gguf", "m-00003-of-00003.gguf", "whole.gguf"});

    // Each shard: its split keys with gguf-split's types, all metadata in the first only, its tensors.
    for (std::uint16_t i = 0; i < 3; ++i) {
        const auto bytes = io::read_file(paths[i]);
        const auto shard = gguf::reader::parse(bytes);
        CHECK(shard.find("split.no")->as<std::uint16_t>() == i);
        CHECK(shard.find("split.count")->as<std::uint16_t>() == 3);
        CHECK(shard.find("split.tensors.count")->as<std::int32_t>() == 5);
        CHECK((shard.find("general.name") != nullptr) == (i == 0));
        CHECK(shard.tensors().size() == (i < 2 ? 2u : 1u));
        CHECK(shard.tensors().front().offset == 0);
    }

    const auto whole = gguf::reader::open(dir / "whole.gguf");
    const auto split = gguf::reader::open(paths[0]);
    CHECK(whole.find("split.count") == nullptr);
    CHECK(split.shard_count() == 3);
    CHECK(split.paths() == paths);
    CHECK(split.total_size() ==
          std::filesystem::file_size(paths[0]) + std::filesystem::file_size(paths[1]) + std::filesystem::file_size(paths[2]));
    CHECK(split.find("general.name")->as_string() == "split test");
    REQUIRE(split.tensors().size() == whole.tensors().size());
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        const auto& a = whole.tensors()[i];
        const auto& b = split.tensors()[i];
        CHECK(a.name == b.name);
        CHECK(a.shape == b.shape);
        const auto da = whole.tensor_data(a), db = split.tensor_data(b);
        CHECK(std::equal(da.begin(), da.end(), db.begin(), db.end()));
        CHECK(split.find_tensor(a.name) == &b);
    }
    // A tensor_info no shard holds is refused, not read from the wrong file.
    gguf::tensor_info stranger{"nobody", {8}, ggml_type::f32, 0};
    CHECK_THROWS_AS(static_cast<void>(split.tensor_data(stranger)), invalid_argument_error);
}

TEST_CASE("a split write by size keeps every shard within the limit, an oversized tensor alone") {
    test::scratch_dir dir;
    const std::vector<std::size_t> sizes{100, 100, 100, 2000, 100, 100, 100, 100};
    const std::uint64_t limit = 2048;
    auto w = model(dir / "m.gguf", sizes);
    w.set_split({limit, 0});
    const auto planned = w.output_paths();
    const auto paths = write(std::move(w));
    CHECK(paths == planned);
    REQUIRE(paths.size() >= 3);
    std::size_t tensors = 0;
    std::uint64_t total = 0;
    for (const auto& p : paths) {
        const auto bytes = io::read_file(p);
        const auto shard = gguf::reader::parse(bytes);
        tensors += shard.tensors().size();
        total += bytes.size();
        CAPTURE(p);
        CHECK(shard.tensors().size() >= 1);
        if (shard.tensors().size() > 1) CHECK(bytes.size() <= limit);
        if (shard.find_tensor("t3")) CHECK(shard.tensors().size() == 1);  // 8000 bytes: more than the limit alone
    }
    CHECK(tensors == sizes.size());
    const auto r = gguf::reader::open(paths.front());
    CHECK(r.tensors().size() == sizes.size());
    CHECK(r.total_size() == total);
}

TEST_CASE("split limits that fit everything still write a set of one, as gguf-split does; no limits write one file") {
    test::scratch_dir dir;
    auto w = model(dir / "m.gguf", {16, 16});
    w.set_split({1u << 30, 0});
    const auto paths = write(std::move(w));
    REQUIRE(paths.size() == 1);
    CHECK(paths[0].filename() == "m-00001-of-00001.gguf");
    const auto r = gguf::reader::open(paths[0]);
    CHECK(r.shard_count() == 1);
    CHECK(r.find("split.count")->as<std::uint16_t>() == 1);
    CHECK(r.tensors().size() == 2);

    // A model read from a split set and written whole loses the split keys (llama.cpp would look for shards).
    gguf::writer copy(dir / "copy.gguf");
    for (const auto& [k, v] : r.metadata()) copy.set(k, v);
    for (const auto& t : r.tensors()) copy.add_tensor(t.name, t.shape, t.type, r.tensor_data(t));
    CHECK(copy.output_paths() == std::vector<std::filesystem::path>{dir / "copy.gguf"});
    copy.finish();
    CHECK(copy.written_bytes() == std::filesystem::file_size(dir / "copy.gguf"));
    const auto c = gguf::reader::open(dir / "copy.gguf");
    CHECK(c.find("split.count") == nullptr);
    CHECK(c.find("split.no") == nullptr);
    CHECK(c.find("split.tensors.count") == nullptr);
}

TEST_CASE("a split write that fails leaves no shard behind") {
    test::scratch_dir dir;
    gguf::writer w(dir / "m.gguf");
    w.add_tensor("a", {8}, ggml_type::f32, floats(8, 0));
    w.add_tensor("b", {8}, ggml_type::f32, floats(8, 0));
    w.add_tensor("c", {8}, ggml_type::f32, [](std::span<std::byte>) { throw std::runtime_error("fill failed"); });
    w.set_split({0, 1});
    CHECK_THROWS_WITH_AS(w.finish(), "fill failed", std::runtime_error);
    CHECK(dir.listing().empty());
    CHECK_THROWS_AS(w.set_split({}), invalid_argument_error);  // finished, even though it failed
}

TEST_CASE("a broken split set is refused with the file named") {
    test::scratch_dir dir;
    auto a = model(dir / "a.gguf", {8, 8, 8, 8, 8, 8});
    a.set_split({0, 2});
    const auto set = write(std::move(a));  // a-0000i-of-00003.gguf, two tensors each
    REQUIRE(set.size() == 3);
    const auto damaged = dir / "damaged";
    auto fresh = [&] {
        std::filesystem::remove_all(damaged);
        std::filesystem::create_directories(damaged);
        for (const auto& p : set) std::filesystem::copy_file(p, damaged / p.filename());
        return damaged / set[0].filename();
    };
    auto put = [&](const std::filesystem::path& from, std::size_t shard) {
        std::filesystem::copy_file(from, damaged / set[shard].filename(), std::filesystem::copy_options::overwrite_existing);
    };

    SUBCASE("a missing shard") {
        const auto first = fresh();
        std::filesystem::remove(damaged / set[2].filename());
        const auto m = message_of([&] { static_cast<void>(gguf::reader::open(first)); });
        CHECK_THROWS_AS(static_cast<void>(gguf::reader::open(first)), io_error);
        CHECK(m.find("a-00003-of-00003.gguf': missing") != std::string::npos);
    }
    SUBCASE("a shard that is not the first") {
        fresh();
        const auto second = damaged / set[1].filename();
        CHECK_THROWS_AS(static_cast<void>(gguf::reader::open(second)), format_error);
        const auto m = message_of([&] { static_cast<void>(gguf::reader::open(second)); });
        CHECK(m.find("shard 2 of 3") != std::string::npos);
        CHECK(m.find("a-00001-of-00003.gguf") != std::string::npos);
    }
    SUBCASE("a first shard whose name does not say where the others are") {
        fresh();
        std::filesystem::copy_file(set[0], damaged / "renamed.gguf");
        const auto m = message_of([&] { static_cast<void>(gguf::reader::open(damaged / "renamed.gguf")); });
        CHECK(m.find("renamed.gguf") != std::string::npos);
        CHECK(m.find("-00001-of-00003.gguf") != std::string::npos);
    }
    SUBCASE("shards that disagree on the count") {
        auto b = model(dir / "b.gguf", {8, 8, 8, 8, 8, 8, 8, 8});
        b.set_split({0, 2});
        const auto other = write(std::move(b));  // four shards
        const auto first = fresh();
        put(other[1], 1);
        const auto m = message_of([&] { static_cast<void>(gguf::reader::open(first)); });
        CHECK_THROWS_AS(static_cast<void>(gguf::reader::open(first)), format_error);
        CHECK(m.find("a-00002-of-00003.gguf") != std::string::npos);
        CHECK(m.find("split.count is 4") != std::string::npos);
    }
    SUBCASE("a split key of another type than llama.cpp reads") {
        // A key the writer keeps, renamed in the bytes to split.count: a uint32 where a uint16 belongs.
        std::filesystem::create_directories(damaged);
        gguf::writer w(damaged / "typed.gguf");
        w.set("split.coun_", gguf::value(std::uint32_t{3}));
        w.add_tensor("t", {8}, ggml_type::f32, floats(8, 0));
        w.finish();
        auto bytes = io::read_file(damaged / "typed.gguf");
        const std::string from = "split.coun_";
        const auto at = std::search(bytes.begin(), bytes.end(), reinterpret_cast<const std::byte*>(from.data()),
                                    reinterpret_cast<const std::byte*>(from.data()) + from.size());
        REQUIRE(at != bytes.end());
        *(at + static_cast<std::ptrdiff_t>(from.size()) - 1) = static_cast<std::byte>('t');
        io::write_file_atomically(damaged / "typed-00001-of-00003.gguf", bytes);
        const auto m = message_of([&] { static_cast<void>(gguf::reader::open(damaged / "typed-00001-of-00003.gguf")); });
        CHECK(m.find("typed-00001-of-00003.gguf': split.count must be a uint16, not a uint32") != std::string::npos);
    }
    SUBCASE("a shard in the wrong place") {
        const auto first = fresh();
        put(set[2], 1);
        const auto m = message_of([&] { static_cast<void>(gguf::reader::open(first)); });
        CHECK(m.find("a-00002-of-00003.gguf") != std::string::npos);
        CHECK(m.find("split.no is 2, expected 1") != std::string::npos);
    }
    SUBCASE("a shard of another set of the same shape but another tensor count") {
        auto b = model(dir / "b.gguf", {8, 8, 8, 8, 8}, "u");
        b.set_split({0, 2});
        const auto other = write(std::move(b));  // three shards, five tensors
        const auto first = fresh();
        put(other[2], 2);
        const auto m = message_of([&] { static_cast<void>(gguf::reader::open(first)); });
        CHECK(m.find("a-00003-of-00003.gguf") != std::string::npos);
        CHECK(m.find("split.tensors.count is 5") != std::string::npos);
    }
    SUBCASE("a tensor in two shards") {
        // Another set whose second shard holds t0 and t1, which the first shard of this one holds too.
        gguf::writer b(dir / "b.gguf");
        for (const char* name : {"x0", "x1", "t0", "t1", "x4", "x5"}) b.add_tensor(name, {8}, ggml_type::f32, floats(8, 0));
        b.set_split({0, 2});
        const auto other = write(std::move(b));
        const auto first = fresh();
        put(other[1], 1);
        const auto m = message_of([&] { static_cast<void>(gguf::reader::open(first)); });
        CHECK_THROWS_AS(static_cast<void>(gguf::reader::open(first)), format_error);
        CHECK(m.find("tensor 't0' is also in") != std::string::npos);
        CHECK(m.find("a-00001-of-00003.gguf") != std::string::npos);
    }
    SUBCASE("shards that hold another number of tensors than split.tensors.count") {
        // Another set of six tensors in three shards, split by size: its third shard holds three.
        gguf::writer b(dir / "b.gguf");
        const std::vector<std::size_t> sizes{256, 256, 8, 8, 8, 8};
        for (std::size_t i = 0; i < sizes.size(); ++i)
            b.add_tensor("y" + std::to_string(i), {sizes[i]}, ggml_type::f32, floats(sizes[i], 0));
        b.set_split({1400, 0});
        const auto other = write(std::move(b));
        REQUIRE(other.size() == 3);
        REQUIRE(gguf::reader::open(other[0]).tensors().size() == 6);
        const auto first = fresh();
        put(other[2], 2);
        const auto m = message_of([&] { static_cast<void>(gguf::reader::open(first)); });
        CHECK(m.find("a-00001-of-00003.gguf") != std::string::npos);
        CHECK(m.find("split.tensors.count is 6, but the 3 shards hold") != std::string::npos);
    }
}
