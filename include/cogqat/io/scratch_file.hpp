#pragma once
// A scratch file: bytes a pipeline measured and may want again, kept on disk instead of in memory. The file
// is unlinked as soon as it is created, so nothing is left behind whatever way the program ends; it lives
// while it is open. Appends from several threads are serialized; reads may run concurrently.

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "cogqat/core/error.hpp"

namespace cogqat::io {

class scratch_file {
public:
    /// Where some bytes were put.
    struct extent {
        std::uint64_t offset = 0, size = 0;
    };

    /// Creates the file in `directory` (io_error, with the directory and the system's reason, when it cannot).
    explicit scratch_file(const std::filesystem::path& directory = std::filesystem::temp_directory_path()) : directory_(directory) {
        std::string name = (directory / "cogqat-scratch-XXXXXX").string();
        fd_ = ::mkstemp(name.data());
        if (fd_ < 0) throw io_error("cannot create a scratch file in " + directory.string() + ": " + std::strerror(errno));
        ::unlink(name.c_str());
    }
    scratch_file(const scratch_file&) = delete;
    scratch_file& operator=(const scratch_file&) = delete;
    ~scratch_file() {
        if (fd_ >= 0) ::close(fd_);
    }

    /// Appends `bytes`; io_error (the disk full, say) names the directory and the reason.
    extent append(std::span<const std::byte> bytes) {
        std::lock_guard lock(append_);
        const extent e{end_, bytes.size()};
        std::size_t done = 0;
        while (done < bytes.size()) {
            const auto n = ::pwrite(fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(end_ + done));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0)
                throw io_error("cannot write " + std::to_string(bytes.size()) + " bytes to the scratch file in " + directory_.string() +
                               " (" + std::to_string(end_) + " bytes written so far): " + (n < 0 ? std::strerror(errno) : "no space"));
            done += static_cast<std::size_t>(n);
        }
        end_ += bytes.size();
        return e;
    }

    /// The bytes of `e`, which append returned.
    [[nodiscard]] std::vector<std::byte> read(extent e) const {
        std::vector<std::byte> bytes(e.size);
        std::size_t done = 0;
        while (done < bytes.size()) {
            const auto n = ::pread(fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(e.offset + done));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0)
                throw io_error("cannot read " + std::to_string(e.size) + " bytes at " + std::to_string(e.offset) +
                               " of the scratch file in " + directory_.string() + ": " + (n < 0 ? std::strerror(errno) : "past its end"));
            done += static_cast<std::size_t>(n);
        }
        return bytes;
    }

    /// Bytes appended so far.
    [[nodiscard]] std::uint64_t size() const {
        std::lock_guard lock(append_);
        return end_;
    }

private:
    std::filesystem::path directory_;
    int fd_ = -1;
    mutable std::mutex append_;
    std::uint64_t end_ = 0;
};

}  // namespace cogqat::io
