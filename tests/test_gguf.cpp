// The GGUF container: every value type and tensor layout survives writer -> reader, the layout is the one
// ggml loads (canonical offsets, alignment, zero padding), a failed write leaves nothing behind, and hostile
// bytes (every truncation, targeted corruptions, byte flips) are refused with a format_error that says what
// and where, never a crash. llama.cpp's own stories260K files are read when ../shared is present.

#include <doctest/doctest.h>

#include <cogqat/cogqat.hpp>
#include <cogqat/io/gguf.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "random_data.hpp"
#include "scratch_dir.hpp"
#ifdef COGQAT_DEFAULT_SHARED_DIR
#include "shared_data.hpp"
#endif

using namespace cogqat;
using gguf::value;
using gguf::value_type;

namespace {

/// A fresh directory under the system temp directory, removed with everything in it at scope exit.
using temp_dir = test::scratch_dir;

std::vector<std::byte> random_bytes(std::size_t n, std::uint64_t seed) {
    test::rng r(seed);
    std::vector<std::byte> v(n);
    for (auto& b : v) b = static_cast<std::byte>(r.next() & 0xFF);
    return v;
}

std::uint64_t round_up(std::uint64_t x, std::uint64_t a) { return (x + a - 1) / a * a; }

/// ../shared, from $COGQAT_SHARED_DIR or the configured default; a target built without the default (the
/// unit tests) still finds it through the environment.
std::filesystem::path shared_dir() {
#ifdef COGQAT_DEFAULT_SHARED_DIR
    return test::shared_dir();
#else
    const char* env = std::getenv("COGQAT_SHARED_DIR");
    return env != nullptr ? env : "";
#endif
}

/// The offset just past the GGUF string `s` (its uint64 length and bytes) in `file`; the length prefix keeps
/// a key from matching inside a longer one.
std::size_t after_string(const std::vector<std::byte>& file, std::string_view s) {
    std::vector<std::byte> needle(8);
    store_le<std::uint64_t>(needle.data(), s.size());
    for (const char c : s) needle.push_back(static_cast<std::byte>(c));
    const auto it = std::search(file.begin(), file.end(), needle.begin(), needle.end());
    REQUIRE_MESSAGE(it != file.end(), "string '" << s << "' not found");
    return static_cast<std::size_t>(it - file.begin()) + needle.size();
}

template <class T>
std::vector<std::byte> with(std::vector<std::byte> file, std::size_t at, T v) {
    REQUIRE(at + sizeof(T) <= file.size());
    store_le<T>(file.data() + at, v);
    return file;
}

/// Parses `file` from a heap copy of exactly its size (so AddressSanitizer sees any read past the end) and
/// checks that it is refused with a format_error whose message contains `phrase` and a byte offset.
void check_rejected(const std::vector<std::byte>& file, std::string_view phrase) {
    const std::vector<std::byte> exact(file.begin(), file.end());
    try {
        static_cast<void>(gguf::reader::parse(exact));
        FAIL("accepted; expected a format_error containing '" << phrase << "'");
    } catch (const format_error& e) {
        const std::string_view what = e.what();
        CHECK_MESSAGE(what.find(phrase) != std::string_view::npos, "message: " << what << "\nexpected to contain: " << phrase);
        CHECK_MESSAGE(what.find("byte offset") != std::string_view::npos, "message: " << what);
    }
}

/// Writes `w` and returns the file's bytes.
std::vector<std::byte> finish_and_read(gguf::writer& w, const std::filesystem::path& path) {
    w.finish();
    return io::read_file(path);
}

// The small valid file the hostile tests corrupt. Keys of equal length (test.aa/test.bb) and tensor names of
// equal length (tensor.aa/bb/cc) let a corruption turn one into the other.
struct sample {
    std::vector<std::byte> bytes;
    std::vector<std::byte> f32_data = random_bytes(8 * 2 * 4, 1);
    std::vector<std::byte> q8_data = random_bytes(34 * 2, 2);
    std::vector<std::byte> f16_data = random_bytes(4 * 2, 3);
};

sample make_sample() {
    temp_dir dir;
    sample s;
    gguf::writer w(dir / "sample.gguf");
    w.set("general.architecture", "llama");
    w.set("general.alignment", std::uint32_t{32});
    w.set("test.aa", "hello");
    w.set("test.bb", std::uint32_t{7});
    w.set("test.flag", true);
    w.set("test.u32s", std::vector<std::uint32_t>{1, 2, 3});
    w.set("test.strs", std::vector<std::string>{"x", "", "yz"});
    w.add_tensor("tensor.aa", {8, 2}, ggml_type::f32, s.f32_data);
    w.add_tensor("tensor.bb", {32, 2}, ggml_type::q8_0, s.q8_data);
    w.add_tensor("tensor.cc", {4}, ggml_type::f16, s.f16_data);
    s.bytes = finish_and_read(w, dir / "sample.gguf");
    return s;
}

// Positions of fields in the sample's tensor infos: after the name come n_dims, ne[n_dims], type, offset.
std::size_t ndims_at(const sample& s, std::string_view name) { return after_string(s.bytes, name); }
std::size_t ne_at(const sample& s, std::string_view name, std::size_t d) { return ndims_at(s, name) + 4 + 8 * d; }
std::size_t type_at(const sample& s, std::string_view name, std::size_t n_dims) { return ne_at(s, name, n_dims); }
std::size_t offset_at(const sample& s, std::string_view name, std::size_t n_dims) { return type_at(s, name, n_dims) + 4; }

}  // namespace

TEST_CASE("gguf::value: constructors, typed getters and wrong-type errors") {
    CHECK(value(std::uint8_t{1}).type() == value_type::uint8);
    CHECK(value(std::int8_t{1}).type() == value_type::int8);
    CHECK(value(std::uint16_t{1}).type() == value_type::uint16);
    CHECK(value(std::int16_t{1}).type() == value_type::int16);
    CHECK(value(1u).type() == value_type::uint32);
    CHECK(value(1).type() == value_type::int32);
    CHECK(value(1.0f).type() == value_type::float32);
    CHECK(value(true).type() == value_type::boolean);
    CHECK(value("s").type() == value_type::string);
    CHECK(value(std::string("s")).type() == value_type::string);
    CHECK(value(std::string_view("s")).type() == value_type::string);
    CHECK(value(std::uint64_t{1}).type() == value_type::uint64);
    CHECK(value(std::int64_t{1}).type() == value_type::int64);
    CHECK(value(1ll).type() == value_type::int64);
    CHECK(value(std::size_t{1}).type() == value_type::uint64);
    CHECK(value(1.0).type() == value_type::float64);
    CHECK(value(std::vector<float>{1, 2}).type() == value_type::array);

    const value u = 4000000000u;
    CHECK(u.as<std::uint32_t>() == 4000000000u);
    CHECK_THROWS_WITH_AS(static_cast<void>(u.as<std::uint64_t>()), "gguf::value: the value is a uint32, not a uint64",
                         invalid_argument_error);
    CHECK_THROWS_WITH_AS(static_cast<void>(u.as_string()), "gguf::value: the value is a uint32, not a string", invalid_argument_error);
    CHECK_THROWS_AS(static_cast<void>(u.array_size()), invalid_argument_error);
    CHECK_THROWS_AS(static_cast<void>(u.array_type()), invalid_argument_error);

    const value a = std::vector<std::string>{"a", "b"};
    CHECK(a.is_array());
    CHECK(a.array_type() == value_type::string);
    CHECK(a.array_size() == 2);
    CHECK(a.as_array<std::string>() == std::vector<std::string>{"a", "b"});
    CHECK(a.as_array<value>() == std::vector<value>{"a", "b"});
    CHECK_THROWS_WITH_AS(static_cast<void>(a.as_array<float>()), "gguf::value: the value is a array of string, not a array of float32",
                         invalid_argument_error);
    CHECK_THROWS_AS(static_cast<void>(a.as<bool>()), invalid_argument_error);

    CHECK_THROWS_AS(value(std::vector<value>{value(1)}), invalid_argument_error);  // an array of arrays holds arrays
    CHECK_THROWS_AS(value(static_cast<const char*>(nullptr)), invalid_argument_error);
    CHECK(value::make_array(value_type::int16, {value(std::int16_t{3}), value(std::int16_t{-4})}) ==
          value(std::vector<std::int16_t>{3, -4}));
    CHECK_THROWS_AS(static_cast<void>(value::make_array(value_type::int16, {value(3)})), invalid_argument_error);
}

TEST_CASE("gguf::value: equality is by type and bits; to_string abbreviates arrays") {
    CHECK(value(1) == value(1));
    CHECK(value(1) != value(1u));  // same number, different type
    CHECK(value(std::numeric_limits<float>::quiet_NaN()) == value(std::numeric_limits<float>::quiet_NaN()));
    CHECK(value(0.0) != value(-0.0));
    CHECK(value(std::vector<float>{}) != value(std::vector<std::int32_t>{}));  // empty arrays differ by element type
    CHECK(value(std::vector<float>{1, 2}) == value(std::vector<float>{1, 2}));
    CHECK(value(std::vector<float>{1, 2}) != value(std::vector<float>{1, 3}));

    CHECK(value(-3).to_string() == "-3");
    CHECK(value(std::uint8_t{200}).to_string() == "200");
    CHECK(value(0.1f).to_string() == "0.1");
    CHECK(value(false).to_string() == "false");
    CHECK(value("it's\n").to_string() == "'it\\'s\\x0a'");
    CHECK(value(std::vector<std::int32_t>{1, 2, 3}).to_string() == "[1, 2, 3]");
    std::vector<std::uint16_t> many(100);
    std::iota(many.begin(), many.end(), std::uint16_t{0});
    CHECK(value(many).to_string() == "[0, 1, 2, 3, 4, 5, 6, 7, ... (100 elements)]");
    CHECK(value(std::vector<value>{std::vector<bool>{true}, std::vector<std::string>{}}).to_string() == "[[true], []]");
}

TEST_CASE("gguf: every value type round-trips through writer and reader, in order") {
    temp_dir dir;
    std::vector<std::pair<std::string, value>> kv = {
            {"u8", std::uint8_t{200}},
            {"i8", std::int8_t{-128}},
            {"u16", std::uint16_t{65535}},
            {"i16", std::int16_t{-32768}},
            {"u32", std::uint32_t{4000000000u}},
            {"i32", std::int32_t{-7}},
            {"f32", 1.25f},
            {"f32.nan", std::numeric_limits<float>::quiet_NaN()},
            {"true", true},
            {"false", false},
            {"string", std::string("text with \0 inside", 18)},
            {"string.empty", ""},
            {"string.utf8", "h\xc3\xa9llo"},
            {"u64", std::numeric_limits<std::uint64_t>::max()},
            {"i64", std::numeric_limits<std::int64_t>::min()},
            {"f64", -2.5e300},
            {"f64.neg0", -0.0},
            {"", "an empty key is a key"},
            {"a.u8", std::vector<std::uint8_t>{0, 255}},
            {"a.i8", std::vector<std::int8_t>{-1, 1}},
            {"a.u16", std::vector<std::uint16_t>{7}},
            {"a.i16", std::vector<std::int16_t>{-7, 7}},
            {"a.u32", std::vector<std::uint32_t>{1, 2, 3}},
            {"a.i32", std::vector<std::int32_t>{-1, 0, 1}},
            {"a.f32", std::vector<float>{0.5f, -1e30f}},
            {"a.bool", std::vector<bool>{true, false, true}},
            {"a.string", std::vector<std::string>{"a", "", "ccc"}},
            {"a.u64", std::vector<std::uint64_t>{std::numeric_limits<std::uint64_t>::max()}},
            {"a.i64", std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::min()}},
            {"a.f64", std::vector<double>{1e-300}},
            {"a.empty.f32", std::vector<float>{}},
            {"a.empty.string", std::vector<std::string>{}},
            {"a.empty.array", std::vector<value>{}},
            {"a.nested", std::vector<value>{std::vector<std::int32_t>{1, 2}, std::vector<std::string>{"x"}, std::vector<value>{}}},
    };
    // The deepest nesting the reader accepts.
    value deep = std::vector<std::uint8_t>{42};
    for (std::size_t d = 1; d < gguf::max_array_depth; ++d) deep = std::vector<value>{deep};
    kv.emplace_back("a.deepest", deep);

    gguf::writer w(dir / "values.gguf");
    for (const auto& [k, v] : kv) w.set(k, v);
    w.set("u8", std::uint8_t{201});  // replacing keeps the key's place
    kv[0].second = std::uint8_t{201};
    w.finish();

    const auto r = gguf::reader::open(dir / "values.gguf");
    CHECK(r.version() == 3);
    CHECK(r.alignment() == 32);
    CHECK(r.tensors().empty());
    REQUIRE(r.metadata().size() == kv.size());
    for (std::size_t i = 0; i < kv.size(); ++i) {
        CAPTURE(kv[i].first);
        CHECK(r.metadata()[i].first == kv[i].first);
        CHECK(r.metadata()[i].second == kv[i].second);
        const value* found = r.find(kv[i].first);
        REQUIRE(found != nullptr);
        CHECK(found == &r.metadata()[i].second);
    }
    CHECK(r.find("absent") == nullptr);
    CHECK(r.find("string")->as_string() == std::string("text with \0 inside", 18));
    CHECK(r.find("a.bool")->as_array<bool>() == std::vector<bool>{true, false, true});
    CHECK(r.find("a.nested")->as_array<value>()[1].as_array<std::string>() == std::vector<std::string>{"x"});
    CHECK(r.file_size() == r.data_offset());
    CHECK(r.data_offset() % 32 == 0);

    gguf::writer too_deep(dir / "deep.gguf");
    CHECK_THROWS_AS(too_deep.set("x", std::vector<value>{deep}), invalid_argument_error);
}

TEST_CASE("gguf: tensors round-trip with canonical offsets and zero padding (alignment 32 and 64)") {
    const auto x = test::gaussian_values(512, 7);
    for (const std::uint32_t alignment : {0u, 64u}) {  // 0: no general.alignment key, so the default 32
        CAPTURE(alignment);
        temp_dir dir;
        const auto path = dir / "tensors.gguf";
        gguf::writer w(path);
        w.set("general.architecture", "llama");
        if (alignment != 0) w.set("general.alignment", alignment);

        const auto f32 = random_bytes(8 * 3 * 4, 11);
        const auto f16 = random_bytes(16 * 2, 12);
        const auto q8 = quantize(ggml_type::q8_0, std::span(x).first(128));
        int q4k_calls = 0;
        std::vector<std::byte> q4k;
        w.add_tensor("f32", {8, 3}, ggml_type::f32, f32);
        w.add_tensor("f16", {16}, ggml_type::f16, f16);
        w.add_tensor("q8_0", {64, 2}, ggml_type::q8_0, q8);
        // Quantized on the fly, into the writer's buffer.
        w.add_tensor("q4_K", {256, 1, 2}, ggml_type::q4_K, [&](std::span<std::byte> out) {
            ++q4k_calls;
            REQUIRE(out.size() == 2 * 144);
            CHECK(std::all_of(out.begin(), out.end(), [](std::byte b) { return b == std::byte{0}; }));
            quantize(ggml_type::q4_K, x, out);
            q4k.assign(out.begin(), out.end());
        });
        w.add_tensor("empty", {0, 5}, ggml_type::f32, std::span<const std::byte>{});
        CHECK(q4k_calls == 0);  // not before finish()
        const auto file = finish_and_read(w, path);
        CHECK(q4k_calls == 1);
        CHECK(io::no_partial_output_of(path));

        const auto r = gguf::reader::open(path);
        const std::uint32_t a = alignment == 0 ? 32 : alignment;
        CHECK(r.alignment() == a);
        REQUIRE(r.tensors().size() == 5);
        CHECK(r.data_offset() % a == 0);
        const std::vector<std::vector<std::byte>> expected{f32, f16, q8, q4k, {}};
        std::uint64_t offset = 0;
        for (std::size_t i = 0; i < r.tensors().size(); ++i) {
            const auto& t = r.tensors()[i];
            CAPTURE(t.name);
            CHECK(t.offset == offset);  // canonical: back to back, each padded to the alignment
            const auto data = r.tensor_data(t);
            CHECK(data.size() == t.bytes());
            CHECK(std::equal(data.begin(), data.end(), expected[i].begin(), expected[i].end()));
            const auto end = r.data_offset() + t.offset + t.bytes();
            const auto padded_end = r.data_offset() + round_up(t.offset + t.bytes(), a);
            CHECK(std::all_of(file.begin() + static_cast<std::ptrdiff_t>(end), file.begin() + static_cast<std::ptrdiff_t>(padded_end),
                              [](std::byte b) { return b == std::byte{0}; }));
            offset = round_up(offset + t.bytes(), a);
            CHECK(r.find_tensor(t.name) == &t);
        }
        CHECK(r.file_size() == r.data_offset() + offset);
        CHECK(r.find_tensor("absent") == nullptr);

        const auto& q4 = *r.find_tensor("q4_K");
        CHECK(q4.shape == std::vector<std::uint64_t>{256, 1, 2});
        CHECK(q4.type == ggml_type::q4_K);
        CHECK(q4.elements() == 512);
        CHECK(q4.bytes() == 288);
        const auto back = dequantize(ggml_type::q4_K, r.tensor_data(q4));
        CHECK(measure_error(x, back).relative_rmse < 0.1);

        gguf::tensor_info outside{"outside", {1024}, ggml_type::f32, 0};
        CHECK_THROWS_AS(static_cast<void>(r.tensor_data(outside)), invalid_argument_error);
    }
}

TEST_CASE("gguf::reader::release_pages: a released tensor reads the same bytes again, its neighbours untouched") {
    temp_dir dir;
    const auto path = dir / "pages.gguf";
    gguf::writer w(path);
    w.set("general.architecture", "llama");
    const auto big = random_bytes(4 * 8192 * 4, 21), small = random_bytes(4 * 16, 22);  // 32 pages of 4 KiB, and a few bytes
    w.add_tensor("big", {8192, 4}, ggml_type::f32, big);
    w.add_tensor("small", {16}, ggml_type::f32, small);
    w.finish();
    const auto in = gguf::reader::open(path);
    const auto& t = *in.find_tensor("big");
    const std::vector<std::byte> before(in.tensor_data(t).begin(), in.tensor_data(t).end());
    in.release_pages(t);
    in.release_pages(*in.find_tensor("small"));  // inside one page: nothing to give back
    CHECK(std::vector<std::byte>(in.tensor_data(t).begin(), in.tensor_data(t).end()) == before);
    CHECK(before == big);
    const auto s = in.tensor_data(*in.find_tensor("small"));
    CHECK(std::vector<std::byte>(s.begin(), s.end()) == small);
    gguf::tensor_info outside = t;
    outside.offset = 1ull << 40;
    in.release_pages(outside);  // a tensor outside the data: refused quietly, nothing released
}

TEST_CASE("gguf::writer: refuses what would not load, and a failed write leaves nothing behind") {
    temp_dir dir;
    const auto out = dir / "out.gguf";
    const std::vector<std::byte> four_floats(16);

    SUBCASE("validation") {
        gguf::writer w(out);
        w.add_tensor("a", {4}, ggml_type::f32, four_floats);
        CHECK_THROWS_WITH_AS(w.add_tensor("a", {4}, ggml_type::f32, four_floats), doctest::Contains("duplicate tensor name 'a'"),
                             invalid_argument_error);
        CHECK_THROWS_WITH_AS(w.add_tensor("b", {33}, ggml_type::q8_0, [](std::span<std::byte>) {}),
                             doctest::Contains("not a multiple of the block size 32"), shape_error);
        CHECK_THROWS_AS(w.add_tensor("c", {1, 1, 1, 1, 1}, ggml_type::f32, [](std::span<std::byte>) {}), shape_error);
        CHECK_THROWS_AS(w.add_tensor("d", {}, ggml_type::f32, [](std::span<std::byte>) {}), shape_error);
        CHECK_THROWS_AS(w.add_tensor("e", {1ull << 62, 4}, ggml_type::f32, [](std::span<std::byte>) {}), shape_error);
        CHECK_THROWS_WITH_AS(w.add_tensor("f", {8}, ggml_type::f32, four_floats), doctest::Contains("takes 32 bytes, not 16"), shape_error);
        CHECK_THROWS_AS(w.add_tensor("g", {4}, static_cast<ggml_type>(4), [](std::span<std::byte>) {}), invalid_argument_error);
        CHECK_THROWS_AS(w.add_tensor("h", {4}, ggml_type::f32, gguf::writer::fill_function{}), invalid_argument_error);
        CHECK_THROWS_AS(w.add_tensor("", {4}, ggml_type::f32, four_floats), invalid_argument_error);
        CHECK_THROWS_AS(w.add_tensor(std::string(64, 'n'), {4}, ggml_type::f32, four_floats), invalid_argument_error);
        w.add_tensor(std::string(63, 'n'), {4}, ggml_type::f32, four_floats);
        CHECK_THROWS_AS(w.set("general.alignment", 0u), invalid_argument_error);
        CHECK_THROWS_AS(w.set("general.alignment", 3u), invalid_argument_error);
        CHECK_THROWS_AS(w.set("general.alignment", std::uint64_t{64}), invalid_argument_error);
        w.finish();
        CHECK(gguf::reader::open(out).tensors().size() == 2);
        CHECK_THROWS_AS(w.finish(), invalid_argument_error);
        CHECK_THROWS_AS(w.set("k", 1), invalid_argument_error);
    }
    SUBCASE("a throwing fill leaves no file, and an existing file untouched") {
        struct fill_failed : std::runtime_error {
            using std::runtime_error::runtime_error;
        };
        for (const bool existing : {false, true}) {
            CAPTURE(existing);
            if (existing) io::write_file_atomically(out, random_bytes(10, 5));
            gguf::writer w(out);
            w.set("general.name", "x");
            w.add_tensor("ok", {4}, ggml_type::f32, four_floats);
            w.add_tensor("bad", {4}, ggml_type::f32, [](std::span<std::byte>) { throw fill_failed("quantizer failed"); });
            CHECK_THROWS_AS(w.finish(), fill_failed);
            CHECK(io::no_partial_output_of(out));
            CHECK(std::filesystem::exists(out) == existing);
            if (existing) CHECK(io::read_file(out) == random_bytes(10, 5));
        }
    }
    SUBCASE("an unwritable destination is an io_error and leaves nothing") {
        gguf::writer w(dir / "no" / "such" / "dir" / "out.gguf");
        w.add_tensor("ok", {4}, ggml_type::f32, four_floats);
        CHECK_THROWS_AS(w.finish(), io_error);
        CHECK_FALSE(std::filesystem::exists(dir / "no"));
    }
}

TEST_CASE("gguf::reader::open: file errors are io_error, bad content is format_error naming the path") {
    temp_dir dir;
    CHECK_THROWS_AS(static_cast<void>(gguf::reader::open(dir / "missing.gguf")), io_error);
    CHECK_THROWS_AS(static_cast<void>(gguf::reader::open(dir.path)), io_error);
    io::write_file_atomically(dir / "empty.gguf", {});
    CHECK_THROWS_WITH_AS(static_cast<void>(gguf::reader::open(dir / "empty.gguf")), doctest::Contains("empty.gguf"), format_error);
    auto s = make_sample();
    s.bytes.resize(s.bytes.size() - 1);
    io::write_file_atomically(dir / "short.gguf", s.bytes);
    CHECK_THROWS_WITH_AS(static_cast<void>(gguf::reader::open(dir / "short.gguf")), doctest::Contains("short.gguf': GGUF: truncated"),
                         format_error);

    // A reader moved from holds nothing; the one moved to keeps the mapping.
    const auto full = make_sample();
    io::write_file_atomically(dir / "full.gguf", full.bytes);
    auto r = gguf::reader::open(dir / "full.gguf");
    gguf::reader moved = std::move(r);
    const auto* t = moved.find_tensor("tensor.bb");
    REQUIRE(t != nullptr);
    const auto data = moved.tensor_data(*t);
    CHECK(std::equal(data.begin(), data.end(), full.q8_data.begin(), full.q8_data.end()));
}

TEST_CASE("gguf: the hostile-file corpus") {
    const auto s = make_sample();
    {
        const auto r = gguf::reader::parse(s.bytes);  // the corruptions below start from a valid file
        REQUIRE(r.tensors().size() == 3);
        REQUIRE(r.metadata().size() == 7);
        CHECK(r.file_size() == s.bytes.size());
    }

    SUBCASE("truncation at every offset is a format_error") {
        for (std::size_t n = 0; n < s.bytes.size(); ++n) {
            const std::vector<std::byte> prefix(s.bytes.begin(), s.bytes.begin() + static_cast<std::ptrdiff_t>(n));
            CAPTURE(n);
            CHECK_THROWS_AS(static_cast<void>(gguf::reader::parse(prefix)), format_error);
        }
        auto longer = s.bytes;  // trailing bytes after the data section are ignored, as ggml does
        longer.resize(longer.size() + 7);
        CHECK_NOTHROW(static_cast<void>(gguf::reader::parse(longer)));
    }

    SUBCASE("header") {
        check_rejected(with<std::uint8_t>(s.bytes, 0, 'X'), "bad magic");
        check_rejected(with<std::uint32_t>(s.bytes, 4, 2), "unsupported GGUF version 2");
        check_rejected(with<std::uint32_t>(s.bytes, 4, 4), "unsupported GGUF version 4");
        check_rejected(with<std::uint32_t>(s.bytes, 4, 0x03000000), "big-endian");
        check_rejected(with<std::uint64_t>(s.bytes, 8, ~std::uint64_t{0} - 3), "tensor count 18446744073709551612 cannot fit");
        check_rejected(with<std::uint64_t>(s.bytes, 8, 1ull << 40), "tensor count");
        check_rejected(with<std::uint64_t>(s.bytes, 16, ~std::uint64_t{0}), "key/value count 18446744073709551615");
        check_rejected(with<std::uint64_t>(s.bytes, 16, 1ull << 33), "key/value count");
    }

    SUBCASE("metadata") {
        check_rejected(with<std::uint64_t>(s.bytes, 24, ~std::uint64_t{0} - 1), "string length 18446744073709551614");
        const auto arch = after_string(s.bytes, "general.architecture");
        check_rejected(with<std::uint64_t>(s.bytes, arch + 4, std::uint64_t{1} << 63), "string length");
        check_rejected(with<std::uint32_t>(s.bytes, arch, 13), "unknown value type 13");
        check_rejected(with<std::uint32_t>(s.bytes, arch, 0xFFFFFFFF), "unknown value type -1");

        const auto u32s = after_string(s.bytes, "test.u32s");
        check_rejected(with<std::uint64_t>(s.bytes, u32s + 8, ~std::uint64_t{0}), "array length 18446744073709551615");
        check_rejected(with<std::uint64_t>(s.bytes, u32s + 8, 1ull << 62), "array length");
        check_rejected(with<std::uint32_t>(s.bytes, u32s + 4, 99), "unknown value type 99");
        const auto strs = after_string(s.bytes, "test.strs");
        check_rejected(with<std::uint64_t>(s.bytes, strs + 8, ~std::uint64_t{0} / 2), "array length");
        check_rejected(with<std::uint64_t>(s.bytes, strs + 16, ~std::uint64_t{0}), "string length");

        check_rejected(with<std::uint8_t>(s.bytes, after_string(s.bytes, "test.flag") + 4, 2), "boolean value 2");

        auto dup = s.bytes;
        dup[after_string(s.bytes, "test.bb") - 1] = std::byte{'a'};  // test.bb -> test.aa
        dup[after_string(s.bytes, "test.bb") - 2] = std::byte{'a'};
        check_rejected(dup, "duplicate key 'test.aa'");

        const auto alignment = after_string(s.bytes, "general.alignment");
        check_rejected(with<std::uint32_t>(s.bytes, alignment + 4, 0), "general.alignment 0 is not a power of two");
        check_rejected(with<std::uint32_t>(s.bytes, alignment + 4, 3), "general.alignment 3 is not a power of two");
        check_rejected(with<std::uint32_t>(s.bytes, alignment, static_cast<std::uint32_t>(value_type::int32)),
                       "general.alignment must be a uint32, not a int32");
        check_rejected(with<std::uint32_t>(s.bytes, alignment, static_cast<std::uint32_t>(value_type::float32)),
                       "general.alignment must be a uint32, not a float32");
    }

    SUBCASE("arrays nested deeper than the limit") {
        // One key whose value is max_array_depth + 1 arrays, one inside the other, around an empty uint8 array.
        std::vector<std::byte> file(24);
        std::memcpy(file.data(), "GGUF", 4);
        store_le<std::uint32_t>(file.data() + 4, 3);
        store_le<std::uint64_t>(file.data() + 8, 0);
        store_le<std::uint64_t>(file.data() + 16, 1);
        auto put = [&file]<class T>(T v) {
            file.resize(file.size() + sizeof(T));
            store_le<T>(file.data() + file.size() - sizeof(T), v);
        };
        put(std::uint64_t{1});
        put(std::uint8_t{'k'});
        put(std::uint32_t{9});
        for (std::size_t d = 0; d < gguf::max_array_depth; ++d) {
            put(std::uint32_t{9});
            put(std::uint64_t{1});
        }
        put(std::uint32_t{0});
        put(std::uint64_t{0});
        file.resize(round_up(file.size(), 32));
        check_rejected(file, "arrays nested more than 8 deep");
    }

    SUBCASE("tensor infos") {
        check_rejected(with<std::uint32_t>(s.bytes, ndims_at(s, "tensor.aa"), 5), "n_dims 5 is not 1 to 4");
        check_rejected(with<std::uint32_t>(s.bytes, ndims_at(s, "tensor.aa"), 0), "n_dims 0 is not 1 to 4");
        check_rejected(with<std::uint64_t>(s.bytes, ne_at(s, "tensor.aa", 1), ~std::uint64_t{0}), "ne[1] = -1 is negative");
        check_rejected(with<std::uint64_t>(s.bytes, ne_at(s, "tensor.aa", 1), 1ull << 62), "overflows");
        check_rejected(with<std::uint64_t>(with<std::uint64_t>(s.bytes, ne_at(s, "tensor.aa", 0), 1ull << 32), ne_at(s, "tensor.aa", 1),
                                           1ull << 32),
                       "overflows");
        // Elements fit in int64, bytes do not fit in uint64.
        check_rejected(with<std::uint64_t>(with<std::uint64_t>(s.bytes, ne_at(s, "tensor.aa", 0), 1ull << 31), ne_at(s, "tensor.aa", 1),
                                           1ull << 31),
                       "overflows");
        check_rejected(with<std::uint32_t>(s.bytes, type_at(s, "tensor.aa", 2), 4), "unknown tensor type id 4");
        check_rejected(with<std::uint32_t>(s.bytes, type_at(s, "tensor.aa", 2), 99), "unknown tensor type id 99");
        check_rejected(with<std::uint64_t>(s.bytes, ne_at(s, "tensor.bb", 0), 33),
                       "ne[0] = 33 is not a multiple of the block size 32 of q8_0");
        // f32 -> q8_0 keeps the layout but 8 values are not a block.
        check_rejected(with<std::uint32_t>(s.bytes, type_at(s, "tensor.aa", 2), 8), "not a multiple of the block size");

        auto dup = s.bytes;
        dup[after_string(s.bytes, "tensor.cc") - 1] = std::byte{'b'};
        dup[after_string(s.bytes, "tensor.cc") - 2] = std::byte{'b'};
        check_rejected(dup, "duplicate tensor name 'tensor.bb'");
    }

    SUBCASE("tensor offsets") {
        const auto bb = offset_at(s, "tensor.bb", 2);
        CHECK(load_le<std::uint64_t>(s.bytes.data() + bb) == 64);
        const std::string past_end = "runs past the end of the " + std::to_string(s.bytes.size()) + "-byte file";
        check_rejected(with<std::uint64_t>(s.bytes, bb, 1ull << 40), past_end);
        check_rejected(with<std::uint64_t>(s.bytes, bb, ~std::uint64_t{0} - 31), past_end);
        check_rejected(with<std::uint64_t>(s.bytes, bb, 65), "tensor data offset 65 is not a multiple of the alignment 32");
        check_rejected(with<std::uint64_t>(s.bytes, bb, 0), "tensor data offset 0, expected 64");    // overlap
        check_rejected(with<std::uint64_t>(s.bytes, bb, 96), "tensor data offset 96, expected 64");  // gap
        check_rejected(with<std::uint64_t>(with<std::uint64_t>(s.bytes, bb, 0), offset_at(s, "tensor.aa", 2), 64),
                       "expected 0");  // swapped
        // A bigger alignment moves the data section and every offset out of line.
        check_rejected(with<std::uint32_t>(s.bytes, after_string(s.bytes, "general.alignment") + 4, 64), "tensor");
    }

    SUBCASE("single-byte corruptions anywhere never crash") {
        // Not a fuzzer, but every byte of the file set to a few values: each parse either succeeds or throws
        // format_error. Run under the sanitizers, this catches out-of-bounds reads the targeted cases miss.
        std::size_t accepted = 0;
        for (std::size_t at = 0; at < s.bytes.size(); ++at) {
            for (const std::uint8_t b : {0x00, 0x01, 0x7F, 0x80, 0xFF}) {
                auto corrupt = s.bytes;
                corrupt[at] = std::byte{b};
                try {
                    const auto r = gguf::reader::parse(corrupt);
                    for (const auto& t : r.tensors()) REQUIRE(r.tensor_data(t).size() == t.bytes());
                    ++accepted;
                } catch (const format_error&) {}
            }
        }
        CHECK(accepted > 0);  // tensor data and string bytes can take any value
        MESSAGE(accepted << " of " << 5 * s.bytes.size() << " single-byte corruptions still parse");
    }
}

TEST_CASE("gguf: llama.cpp's stories260K files") {
    const auto dir = shared_dir() / "anchors" / "stories260K-llamacpp";
    const auto f32_path = dir / "stories260K-F32.gguf";
    if (!std::filesystem::exists(f32_path)) {
        MESSAGE("skipped: " << f32_path.string() << " is absent (set COGQAT_SHARED_DIR)");
        return;
    }
    const auto r = gguf::reader::open(f32_path);
    CHECK(r.version() == 3);
    REQUIRE(r.find("general.architecture") != nullptr);
    CHECK(r.find("general.architecture")->as_string() == "llama");
    CHECK(r.find("llama.block_count")->as<std::uint32_t>() == 5);
    CHECK(r.find("tokenizer.ggml.tokens")->array_size() == 512);
    const auto* embd = r.find_tensor("token_embd.weight");
    REQUIRE(embd != nullptr);
    CHECK(embd->type == ggml_type::f32);
    CHECK(embd->shape == std::vector<std::uint64_t>{64, 512});
    std::uint64_t total = 0;
    for (const auto& t : r.tensors()) {
        CHECK(r.tensor_data(t).size() == t.bytes());
        total += round_up(t.bytes(), r.alignment());
    }
    CHECK(r.file_size() == r.data_offset() + total);

    // Our writer, given the same metadata and tensors, writes llama.cpp's file byte for byte.
    temp_dir tmp;
    gguf::writer w(tmp / "copy.gguf");
    for (const auto& [k, v] : r.metadata()) w.set(k, v);
    for (const auto& t : r.tensors()) w.add_tensor(t.name, t.shape, t.type, r.tensor_data(t));
    CHECK(finish_and_read(w, tmp / "copy.gguf") == io::read_file(f32_path));

    // Every quantized file of the set parses, with its data where the infos say.
    std::size_t files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        if (entry.path().extension() != ".gguf") continue;
        CAPTURE(entry.path().filename().string());
        const auto q = gguf::reader::open(entry.path());
        CHECK(q.find("general.architecture")->as_string() == "llama");
        CHECK(q.tensors().size() == r.tensors().size());
        for (const auto& t : q.tensors()) CHECK(q.tensor_data(t).size() == t.bytes());
        ++files;
    }
    CHECK(files == 12);
}
