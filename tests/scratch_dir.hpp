#pragma once
// A directory of its own for one test, removed with everything in it afterwards.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <sys/statvfs.h>
#include <unistd.h>

namespace cogqat::test {

/// /dev/shm where it has at least `room` bytes free, else the system's temporary directory: for tests about
/// what a killed process leaves (the kernel keeps every byte it wrote), where fsync on a disk only costs time.
inline std::filesystem::path memory_file_system(std::uint64_t room = std::uint64_t{1} << 30) {
    struct statvfs fs {};
    if (::statvfs("/dev/shm", &fs) == 0 && std::uint64_t{fs.f_bavail} * fs.f_frsize >= room) return "/dev/shm";
    return std::filesystem::temp_directory_path();
}

struct scratch_dir {
    std::filesystem::path path;

    /// Under `base`: the system's temporary directory unless a test needs another (memory_file_system()).
    explicit scratch_dir(const std::filesystem::path& base = std::filesystem::temp_directory_path()) {
        static std::atomic<unsigned> count{0};
        path = base / ("cogqat-test-" + std::to_string(::getpid()) + "-" + std::to_string(count++));
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
