#pragma once
// A directory of its own for one test, removed with everything in it afterwards.

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <unistd.h>

namespace cogqat::test {

struct scratch_dir {
    std::filesystem::path path;

    scratch_dir() {
        static std::atomic<unsigned> count{0};
        path = std::filesystem::temp_directory_path() / ("cogqat-test-" + std::to_string(::getpid()) + "-" + std::to_string(count++));
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    scratch_dir(const scratch_dir&) = delete;
    scratch_dir& operator=(const scratch_dir&) = delete;
    ~scratch_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }

    [[nodiscard]] std::filesystem::path operator/(const std::string& name) const { return path / name; }
    [[nodiscard]] std::string file(const std::string& name) const { return (path / name).string(); }
    /// The names of the entries in the directory, sorted.
    [[nodiscard]] std::vector<std::string> listing() const {
        std::vector<std::string> names;
        for (const auto& e : std::filesystem::directory_iterator(path)) names.push_back(e.path().filename().string());
        std::sort(names.begin(), names.end());
        return names;
    }
};

}  // namespace cogqat::test
