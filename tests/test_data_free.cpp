// The data-free path opens no text: this executable interposes the C library's file-opening functions,
// records every path opened while auto_quantize runs, and checks that only the model read and the model
// written are among them (plus the kernel's own pseudo-files, which thread start-up may read).
// A separate executable, so that the interposition touches no other test.

#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <dlfcn.h>
#include <fcntl.h>

#include <unistd.h>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "cogqat/io/gguf.hpp"
#include "cogqat/io/llama_gguf.hpp"
#include "cogqat/io/output_file.hpp"
#include "cogqat/model/synthetic.hpp"
#include "cogqat/qat/auto_quantize.hpp"
#include "cogqat/qat/qat_pipeline.hpp"

namespace {

std::mutex opened_mutex;
std::vector<std::string> opened;
bool recording = false;

void record(const char* path) {
    std::lock_guard lock(opened_mutex);
    if (recording && path) opened.emplace_back(path);
}

template <class F>
F next_symbol(const char* name) {
    return reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
}

/// Records `path`, then calls the next definition of `name` (the C library's, or a sanitizer's).
template <class F, class... Args>
auto forward_open(const char* name, const char* path, Args... args) {
    record(path);
    return next_symbol<F>(name)(path, args...);
}

}  // namespace

extern "C" {

// The optional mode is read only when the flags say one was passed (O_CREAT), as the C library does.
int open(const char* path, int flags, ...) {
    va_list args;
    va_start(args, flags);
    const mode_t mode = (flags & O_CREAT) ? static_cast<mode_t>(va_arg(args, int)) : 0;
    va_end(args);
    return forward_open<int (*)(const char*, int, ...)>("open", path, flags, mode);
}
int open64(const char* path, int flags, ...) {
    va_list args;
    va_start(args, flags);
    const mode_t mode = (flags & O_CREAT) ? static_cast<mode_t>(va_arg(args, int)) : 0;
    va_end(args);
    return forward_open<int (*)(const char*, int, ...)>("open64", path, flags, mode);
}
int openat(int dir, const char* path, int flags, ...) {
    record(path);
    va_list args;
    va_start(args, flags);
    const mode_t mode = (flags & O_CREAT) ? static_cast<mode_t>(va_arg(args, int)) : 0;
    va_end(args);
    static const auto real = next_symbol<int (*)(int, const char*, int, ...)>("openat");
    return real(dir, path, flags, mode);
}
FILE* fopen(const char* path, const char* mode) {
    record(path);
    static const auto real = next_symbol<FILE* (*)(const char*, const char*)>("fopen");
    return real(path, mode);
}
FILE* fopen64(const char* path, const char* mode) {
    record(path);
    static const auto real = next_symbol<FILE* (*)(const char*, const char*)>("fopen64");
    return real(path, mode);
}

}  // extern "C"

/// Every recorded path is the model read, the file written (or its temporary file, or its directory, which is
/// synced after the rename), the checkpoint (likewise, when given) or a kernel pseudo-file; none is a text.
void check_opened_only(const std::filesystem::path& in_path, const std::filesystem::path& out_path,
                       const std::filesystem::path& checkpoint) {
    const auto written = [](const std::filesystem::path& opened_path, const std::filesystem::path& target) {
        return opened_path == target || opened_path == target.parent_path() || cogqat::io::is_partial_output_of(opened_path, target);
    };
    for (const auto& path : opened) {
        CAPTURE(path);
        const bool ours = path == in_path.string() || written(path, out_path) || (!checkpoint.empty() && written(path, checkpoint));
        const bool kernel = path.starts_with("/proc/") || path.starts_with("/sys/") || path.starts_with("/dev/");
        CHECK((ours || kernel));
        CHECK_FALSE(path.ends_with(".txt"));
    }
}

TEST_CASE("auto_quantize opens the model it reads and the file it writes, and nothing else, with or without rotation and smoothing") {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("cogqat-data-free-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const auto in_path = dir / "model.gguf", out_path = dir / "model-auto.gguf";
    cogqat::io::write_llama_gguf(cogqat::make_synthetic_llama(9, {64, 96, 1, 4, 2, 259, 64}), in_path);

    // The recorder works: a plain read is seen.
    recording = true;
    {
        std::FILE* probe = std::fopen(in_path.c_str(), "rb");
        REQUIRE(probe);
        std::fclose(probe);
    }
    recording = false;
    REQUIRE(opened.size() == 1);
    opened.clear();

    cogqat::auto_quantize_options o;
    o.target = cogqat::size_target::bits(6.0);
    o.calibration.tokens = 64;
    o.calibration.sequence_length = 32;
    o.candidates = {cogqat::ggml_type::q4_0, cogqat::ggml_type::q8_0};
    o.threads = 2;
    // Each calibration source, without and with the exact transforms (rotation and smoothing measure on
    // calibration of their own).
    for (const bool transforms : {false, true})
        for (auto source : {cogqat::calibration_source::self_generated, cogqat::calibration_source::random_tokens,
                            cogqat::calibration_source::hidden_states}) {
            CAPTURE(transforms);
            o.calibration.source = source;
            o.transforms.rotate = transforms ? cogqat::rotation_mode::hadamard : cogqat::rotation_mode::none;
            o.transforms.smooth = transforms;
            recording = true;
            {
                const auto in = cogqat::gguf::reader::open(in_path);
                static_cast<void>(cogqat::auto_quantize(in, out_path, o));
            }
            recording = false;
            check_opened_only(in_path, out_path, {});
            CHECK(opened.size() >= 2);  // the model read, the file written (and read back to validate)
            opened.clear();
        }
    std::error_code ec;
    fs::remove_all(dir, ec);
}

TEST_CASE(
        "quantization-aware training (rotated and smoothed) opens the model, the file it writes and its own checkpoint, and nothing else") {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("cogqat-data-free-qat-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const auto in_path = dir / "model.gguf", out_path = dir / "model-qat.gguf", checkpoint = dir / "model-qat.ckpt";
    cogqat::io::write_llama_gguf(cogqat::make_synthetic_llama(9, {64, 96, 1, 4, 2, 259, 64}), in_path);
    cogqat::qat_config c;
    c.steps = 3, c.steps_per_unit = 1, c.batch = 2, c.sequence_length = 16, c.samples = 4, c.validation_samples = 2, c.threads = 2;
    c.checkpoint = checkpoint, c.checkpoint_every = 2;
    c.transforms.rotate = cogqat::rotation_mode::hadamard;  // the exact transforms measure on the model's own text too
    c.transforms.smooth = true;
    recording = true;
    {
        const auto in = cogqat::gguf::reader::open(in_path);
        static_cast<void>(cogqat::quantization_aware_training(in, out_path, c));
    }
    recording = false;
    check_opened_only(in_path, out_path, checkpoint);
    CHECK(opened.size() >= 3);
    opened.clear();
    std::error_code ec;
    fs::remove_all(dir, ec);
}
