// io::output_file: all-or-nothing writes under a unique temporary name, the replaced file's mode kept, links
// and special files refused, nothing left behind on failure, and concurrent writers of one path ending with
// one writer's complete file.

#include <doctest/doctest.h>

#include <cogqat/io/file.hpp>
#include <cogqat/io/output_file.hpp>

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include "scratch_dir.hpp"

using namespace cogqat;
namespace fs = std::filesystem;

namespace {

std::vector<std::byte> bytes_of(const std::string& text) {
    std::vector<std::byte> b(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) b[i] = static_cast<std::byte>(text[i]);
    return b;
}

std::string text_of(const fs::path& path) {
    const auto b = io::read_file(path);
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace

TEST_CASE("output_file: the target appears only at commit, complete, and nothing else is left") {
    test::scratch_dir dir;
    const auto target = dir / "out.bin";
    {
        io::output_file out(target);
        out.write(bytes_of("hello "));
        out.write(bytes_of("world"));
        CHECK(out.written() == 11);
        CHECK_FALSE(fs::exists(target));
        CHECK_FALSE(io::no_partial_output_of(target));  // the temporary file, beside the target
        out.commit();
        CHECK_THROWS_AS(out.write(bytes_of("x")), io_error);
        CHECK_THROWS_AS(out.commit(), io_error);
    }
    CHECK(text_of(target) == "hello world");
    CHECK(io::no_partial_output_of(target));
}

TEST_CASE("output_file: a writer destroyed before commit (an exception) leaves the old file and no temporary") {
    test::scratch_dir dir;
    const auto target = dir / "out.bin";
    io::write_file_atomically(target, bytes_of("old"));
    try {
        io::output_file out(target);
        out.write(bytes_of("new, half"));
        throw std::runtime_error("failed half-way");
    } catch (const std::runtime_error&) {}
    CHECK(text_of(target) == "old");
    CHECK(io::no_partial_output_of(target));
}

TEST_CASE("output_file: the replaced file's mode is kept; a new file gets the umask's") {
    test::scratch_dir dir;
    const auto target = dir / "private.bin";
    io::write_file_atomically(target, bytes_of("secret"));
    fs::permissions(target, fs::perms::owner_read | fs::perms::owner_write);
    io::write_file_atomically(target, bytes_of("still secret"));
    CHECK(fs::status(target).permissions() == (fs::perms::owner_read | fs::perms::owner_write));

    const mode_t mask = ::umask(0);
    ::umask(mask);
    io::write_file_atomically(dir / "new.bin", bytes_of("x"));
    CHECK(static_cast<mode_t>(fs::status(dir / "new.bin").permissions()) == (0666 & ~mask));
}

TEST_CASE("output_file: links, directories and FIFOs are refused as targets, and left as they are") {
    test::scratch_dir dir;
    io::write_file_atomically(dir / "victim", bytes_of("victim"));
    fs::create_symlink(dir / "victim", dir / "link");
    fs::create_directory(dir / "directory");
    REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
    for (const auto& [name, kind] :
         std::vector<std::pair<std::string, std::string>>{{"link", "a symbolic link"}, {"directory", "a directory"}, {"fifo", "a FIFO"}}) {
        const std::string& target = name;  // a lambda cannot capture a structured binding in C++20 before clang 16
        CAPTURE(target);
        CHECK_THROWS_WITH_AS(io::write_file_atomically(dir / name, bytes_of("x")), doctest::Contains(("it is " + kind).c_str()), io_error);
        CHECK_THROWS_AS(io::check_writable(dir / name), io_error);
        CHECK(io::no_partial_output_of(dir / name));
    }
    CHECK(text_of(dir / "victim") == "victim");
    CHECK(fs::is_symlink(dir / "link"));
    CHECK_THROWS_WITH_AS(io::check_writable("/dev/null"), doctest::Contains("it is a device"), io_error);
    CHECK_THROWS_WITH_AS(io::check_writable(dir / "missing" / "out.bin"), doctest::Contains("missing"), io_error);
    CHECK_THROWS_AS(io::output_file(dir / "missing" / "out.bin"), io_error);
    io::check_writable(dir / "fine.bin");
    CHECK_FALSE(fs::exists(dir / "fine.bin"));
}

TEST_CASE("output_file: temporary names are short and unique; a 255-byte target name works") {
    test::scratch_dir dir;
    const std::string name(250, 'n');
    io::write_file_atomically(dir / (name + ".gguf"), bytes_of("long"));
    CHECK(text_of(dir / (name + ".gguf")) == "long");
    const auto target = dir / "t.bin";
    io::output_file a(target), b(target);
    a.write(bytes_of("a")), b.write(bytes_of("b"));
    std::vector<fs::path> partials;
    for (const auto& e : fs::directory_iterator(dir.path))
        if (io::is_partial_output_of(e.path(), target)) partials.push_back(e.path());
    REQUIRE(partials.size() == 2);
    CHECK(partials[0] != partials[1]);
    CHECK(partials[0].filename().string().size() < 64);
    CHECK_FALSE(io::is_partial_output_of(dir / "t.bin", target));
    CHECK_FALSE(io::is_partial_output_of(dir / "other" / partials[0].filename(), target));
    b.commit(), a.commit();
    CHECK(text_of(target) == "a");
}

TEST_CASE("output_file: concurrent writers of one path end with one writer's complete file, never a mix") {
    test::scratch_dir dir;
    const auto target = dir / "shared.bin";
    const std::size_t writers = 4, rounds = 25, size = 1 << 16;
    std::vector<std::thread> threads;
    for (std::size_t w = 0; w < writers; ++w) {
        threads.emplace_back([&, w] {
            const std::vector<std::byte> content(size, static_cast<std::byte>('a' + w));
            for (std::size_t r = 0; r < rounds; ++r) {
                io::output_file out(target);
                for (std::size_t at = 0; at < size; at += 4096) out.write(std::span(content).subspan(at, 4096));
                out.commit();
            }
        });
    }
    for (auto& t : threads) t.join();
    const auto final_bytes = io::read_file(target);
    REQUIRE(final_bytes.size() == size);
    CHECK(std::all_of(final_bytes.begin(), final_bytes.end(), [&](std::byte b) { return b == final_bytes.front(); }));
    CHECK(io::no_partial_output_of(target));
}
