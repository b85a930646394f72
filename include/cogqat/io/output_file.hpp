#pragma once
// All-or-nothing output files. Bytes go to a new temporary file beside the target, whose name is unique and
// which is created exclusively (never through a link, never shared with another writer); commit() syncs it,
// gives it the mode of the file it replaces, and renames it over the target. Until then the target is
// untouched, and a writer that fails, is destroyed or is stopped by SIGINT/SIGTERM/SIGHUP (with
// remove_partial_outputs_on_signals()) removes its temporary file. Two processes writing one path end with one
// complete file, either's. A target that exists and is not a regular file (a symbolic link, a device such as
// /dev/null, a directory, a FIFO) is refused: replacing it with a regular file would lose what it was.

#include <signal.h>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cogqat/core/error.hpp"

namespace cogqat::io {

namespace detail {

/// What a path that exists is, in words, for a message; nullptr for a regular file.
[[nodiscard]] inline const char* non_regular_kind(mode_t mode) noexcept {
    if (S_ISREG(mode)) return nullptr;
    if (S_ISLNK(mode)) return "a symbolic link";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

/// The temporary files being written now, for a signal handler to remove. Fixed slots of fixed-size names,
/// so that removal needs no allocation and no lock (async-signal-safe); a writer that finds no free slot
/// is still removed on every error, only not on a signal.
class partial_registry {
public:
    static constexpr std::size_t slots = 64, name_capacity = 4096;

    static partial_registry& instance() noexcept {
        static partial_registry registry;
        return registry;
    }

    /// A slot holding `path`, or -1 when none is free or the path is too long.
    int add(const std::string& path) noexcept {
        if (path.size() >= name_capacity) return -1;
        for (std::size_t i = 0; i < slots; ++i) {
            bool expected = false;
            if (!claimed_[i].compare_exchange_strong(expected, true, std::memory_order_acquire)) continue;
            std::memcpy(names_[i].data(), path.c_str(), path.size() + 1);
            ready_[i].store(true, std::memory_order_release);
            return static_cast<int>(i);
        }
        return -1;
    }

    void remove(int slot) noexcept {
        if (slot < 0) return;
        ready_[static_cast<std::size_t>(slot)].store(false, std::memory_order_release);
        claimed_[static_cast<std::size_t>(slot)].store(false, std::memory_order_release);
    }

    /// Unlinks every registered file. Async-signal-safe.
    void unlink_all() noexcept {
        for (std::size_t i = 0; i < slots; ++i)
            if (ready_[i].load(std::memory_order_acquire)) ::unlink(names_[i].data());
    }

private:
    std::array<std::atomic<bool>, slots> claimed_{}, ready_{};
    std::array<std::array<char, name_capacity>, slots> names_{};
};

extern "C" inline void remove_partials_and_reraise(int signal_number) {
    partial_registry::instance().unlink_all();
    std::signal(signal_number, SIG_DFL);
    std::raise(signal_number);
}

/// The start of every temporary file name for `target`: hidden, tagged with the program, and short enough
/// that a target name of up to 255 bytes still leaves room for it.
[[nodiscard]] inline std::string partial_prefix_for(const std::filesystem::path& target) {
    return "." + target.filename().string().substr(0, 32) + ".cogqat-";
}

/// A temporary name beside `target`, unique with overwhelming probability (and created exclusively anyway).
[[nodiscard]] inline std::filesystem::path temporary_name_for(const std::filesystem::path& target) {
    static constexpr std::string_view alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    thread_local std::mt19937_64 generator{std::random_device{}() ^
                                           static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
                                           (static_cast<std::uint64_t>(::getpid()) << 32)};
    std::string name = partial_prefix_for(target);
    for (int i = 0; i < 10; ++i) name += alphabet[generator() % alphabet.size()];
    return target.parent_path() / name;
}

/// The status of an output path that exists (nullopt when it does not); io_error when it is not a regular
/// file or cannot be examined.
[[nodiscard]] inline std::optional<struct stat> existing_output(const std::filesystem::path& target) {
    if (target.empty()) throw io_error("cannot write to an empty path");
    struct stat st {};
    if (::lstat(target.c_str(), &st) != 0) {
        if (errno == ENOENT) return std::nullopt;
        throw io_error("cannot write '" + target.string() + "': " + std::strerror(errno));
    }
    if (const char* kind = non_regular_kind(st.st_mode))
        throw io_error("cannot write '" + target.string() + "': it is " + kind + "; cogqat writes only regular files");
    return st;
}

}  // namespace detail

/// Whether `candidate` is a temporary file an output_file for `target` creates: what a killed process may
/// leave (SIGKILL cannot be caught), for cleaning up and for tests.
[[nodiscard]] inline bool is_partial_output_of(const std::filesystem::path& candidate, const std::filesystem::path& target) {
    const auto directory = [](const std::filesystem::path& p) {
        return (p.parent_path().empty() ? "." : p.parent_path()).lexically_normal();
    };
    return directory(candidate) == directory(target) && candidate.filename().string().starts_with(detail::partial_prefix_for(target));
}

/// Whether no temporary file of an output_file for `target` is in its directory.
[[nodiscard]] inline bool no_partial_output_of(const std::filesystem::path& target) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(target.parent_path().empty() ? "." : target.parent_path(), ec))
        if (is_partial_output_of(entry.path(), target)) return false;
    return true;
}

/// Throws io_error when `target` exists and is not a regular file, or when its directory does not exist or
/// cannot be written: the checks a command runs on every output before it starts any work.
inline void check_writable(const std::filesystem::path& target) {
    static_cast<void>(detail::existing_output(target));
    const std::filesystem::path directory = target.parent_path().empty() ? std::filesystem::path(".") : target.parent_path();
    if (::access(directory.c_str(), W_OK | X_OK) != 0)
        throw io_error("cannot write '" + target.string() + "': directory '" + directory.string() + "': " + std::strerror(errno));
}

/// Installs handlers for SIGINT, SIGTERM and SIGHUP that remove every output_file's temporary file and then
/// end the process as the signal would have. A signal ignored when the program started (SIGINT for a shell's
/// background job, SIGHUP under nohup) stays ignored. For programs; a library never installs it by itself.
inline void remove_partial_outputs_on_signals() {
    static_cast<void>(detail::partial_registry::instance());  // constructed before any handler can run
    for (int s : {SIGINT, SIGTERM, SIGHUP}) {
        struct sigaction current {};
        if (::sigaction(s, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) continue;
        struct sigaction handler {};
        handler.sa_handler = detail::remove_partials_and_reraise;
        sigemptyset(&handler.sa_mask);
        ::sigaction(s, &handler, nullptr);
    }
}

/// A file written all or nothing; see the top of this header. Not copyable; movable.
class output_file {
public:
    /// Creates the temporary file. io_error when the target exists and is not a regular file, or the
    /// temporary file cannot be created (the directory is missing or not writable, ...).
    explicit output_file(std::filesystem::path target) : target_(std::move(target)) {
        if (const auto st = detail::existing_output(target_)) replaced_ = replaced_file{st->st_mode & 07777, st->st_uid, st->st_gid};
        for (int attempt = 0; fd_ < 0; ++attempt) {
            temporary_ = detail::temporary_name_for(target_);
            // O_EXCL: a name that exists (a file, or a link planted there) is never opened, only retried.
            fd_ = ::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
            if (fd_ < 0 && (errno != EEXIST || attempt == 16))
                throw io_error("cannot write '" + target_.string() + "': cannot create a file in its directory: " + std::strerror(errno));
        }
        slot_ = detail::partial_registry::instance().add(temporary_.string());
    }

    output_file(const output_file&) = delete;
    output_file& operator=(const output_file&) = delete;
    output_file(output_file&& other) noexcept
            : target_(std::move(other.target_)),
              temporary_(std::move(other.temporary_)),
              replaced_(other.replaced_),
              fd_(std::exchange(other.fd_, -1)),
              slot_(std::exchange(other.slot_, -1)),
              written_(other.written_) {}
    output_file& operator=(output_file&&) = delete;

    ~output_file() { discard(); }

    /// Appends `bytes`. io_error (disk full, I/O error) names the target.
    void write(std::span<const std::byte> bytes) {
        require_open();
        const auto* p = reinterpret_cast<const char*>(bytes.data());
        std::size_t left = bytes.size();
        while (left > 0) {
            const ::ssize_t n = ::write(fd_, p, left);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) fail(std::strerror(n < 0 ? errno : EIO));
            p += n, left -= static_cast<std::size_t>(n), written_ += static_cast<std::uint64_t>(n);
        }
    }

    /// Bytes written so far.
    [[nodiscard]] std::uint64_t written() const noexcept { return written_; }
    [[nodiscard]] const std::filesystem::path& target() const noexcept { return target_; }

    /// Syncs the data, gives the file the replaced file's mode (and owner, where permitted), and renames it
    /// over the target. io_error when any step fails; the temporary file is then removed and the target is
    /// as it was.
    void commit() {
        require_open();
        if (::fsync(fd_) != 0) fail(std::strerror(errno));
        if (replaced_) {
            if (::fchmod(fd_, replaced_->mode) != 0) fail(std::strerror(errno));
            // Best effort: only root may give a file away (elsewhere the new file is the writer's, as any
            // new file is), and some file systems refuse even root.
            if (::geteuid() == 0 && ::fchown(fd_, replaced_->uid, replaced_->gid) != 0) errno = 0;
        }
        const int fd = std::exchange(fd_, -1);
        if (::close(fd) != 0) fail(std::strerror(errno));
        // The target may have become something else meanwhile; rename would replace a device's entry.
        try {
            static_cast<void>(detail::existing_output(target_));
        } catch (const io_error&) {
            discard();
            throw;
        }
        if (::rename(temporary_.c_str(), target_.c_str()) != 0) fail(std::strerror(errno));
        detail::partial_registry::instance().remove(std::exchange(slot_, -1));
        temporary_.clear();
        sync_directory();
    }

    /// Removes the temporary file; the target stays as it was. Called by the destructor when not committed.
    void discard() noexcept {
        if (fd_ >= 0) ::close(std::exchange(fd_, -1));
        if (!temporary_.empty()) ::unlink(temporary_.c_str());
        temporary_.clear();
        detail::partial_registry::instance().remove(std::exchange(slot_, -1));
    }

private:
    struct replaced_file {
        mode_t mode;
        uid_t uid;
        gid_t gid;
    };

    void require_open() const {
        if (temporary_.empty()) throw io_error("cannot write '" + target_.string() + "': the file was already committed or discarded");
    }

    [[noreturn]] void fail(const std::string& reason) {
        discard();
        throw io_error("cannot write '" + target_.string() + "': " + reason);
    }

    /// Makes the rename durable. Best effort: some file systems cannot sync a directory, and the data
    /// itself is already on disk.
    void sync_directory() const noexcept {
        const std::filesystem::path directory = target_.parent_path().empty() ? std::filesystem::path(".") : target_.parent_path();
        const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) return;
        static_cast<void>(::fsync(fd));
        ::close(fd);
    }

    std::filesystem::path target_, temporary_;
    std::optional<replaced_file> replaced_;
    int fd_ = -1;
    int slot_ = -1;
    std::uint64_t written_ = 0;
};

}  // namespace cogqat::io
