// The job `cogqat` runs with no subcommand: stories260K from ../shared (or a generated llama-shaped model) as
// an F32 GGUF, quantized with the default policy, then the data-free path at the same size.

#include <cogqat/io/llama2c.hpp>
#include <cogqat/io/llama_gguf.hpp>
#include <cogqat/model/synthetic.hpp>
#include <cogqat/quant/mix_policy.hpp>

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>

#include "commands.hpp"
#include "json_output.hpp"
#include "options.hpp"
#include "quantize.hpp"
#include "shared_dir.hpp"

namespace cogqat::cli {

namespace {

/// The second half: the data-free path at the default policy's file size, so that the two files compare at
/// equal size (its own report says how close each stays to the F32 model).
int default_auto_job(const std::filesystem::path& out_dir, const std::string& name, const std::filesystem::path& f32,
                     const std::filesystem::path& same_size_as, unsigned threads, bool small_budget) {
    const auto size = std::filesystem::file_size(same_size_as);
    fmt::print("\nthe data-free path at the same size ({} bytes): synthetic calibration, sensitivity, allocation\n\n", size);
    std::fflush(stdout);
    quantize_arguments q;
    q.input = f32.string();
    q.output = (out_dir / (name + "-auto.gguf")).string();
    q.json_file = (out_dir / (name + "-auto.json")).string();
    q.threads = threads;
    auto_arguments a;
    a.target_bytes = size;
    // The generated stand-in model is ten times larger and random: a short calibration and four types keep
    // the job to seconds; stories260K gets the full treatment.
    a.calib_tokens = small_budget ? 128 : 1024;
    if (small_budget) a.candidates = {"q4_0", "q8_0", "q4_K", "q6_K"};
    a.html_file = (out_dir / (name + "-auto.html")).string();
    const int status = run_auto_quantize(q, a);
    if (status == exit_success) fmt::print("report: {}\n", a.html_file);
    return status;
}

}  // namespace

int run_default_job(const std::filesystem::path& out_dir, unsigned threads) {
    std::error_code ec;
    if (std::filesystem::exists(out_dir, ec) && !std::filesystem::is_directory(out_dir, ec))
        throw invalid_argument_error("--out-dir '" + out_dir.string() + "' exists and is not a directory");
    const auto model_dir = shared_dir() / "models" / "stories260K";
    llama_weights weights;
    bool generated = false;
    if (std::filesystem::exists(model_dir / "stories260K.bin", ec) && std::filesystem::exists(model_dir / "tok512.bin", ec)) {
        fmt::print("importing {}\n", (model_dir / "stories260K.bin").string());
        weights = io::read_llama2c(model_dir / "stories260K.bin", model_dir / "tok512.bin");
    } else {
        fmt::print("no shared models at {}: generating a small llama-shaped model\n", shared_dir().string());
        weights = make_synthetic_llama();
        generated = true;
    }
    std::filesystem::create_directories(out_dir);
    const auto f32 = out_dir / (weights.name + "-F32.gguf");
    const auto quantized = out_dir / (weights.name + "-default.gguf");
    check_files({}, {{"the F32 model", f32.string()}});
    io::write_llama_gguf(weights, f32);
    fmt::print("wrote {} ({} bytes)\nquantizing with the default policy: {}\n\n", f32.string(), std::filesystem::file_size(f32),
               find_preset("default").description);
    std::fflush(stdout);  // keep our lines ahead of the progress lines on stderr when both go to one file
    quantize_arguments a;
    a.input = f32.string();
    a.output = quantized.string();
    a.threads = threads;
    a.json_file = (out_dir / (weights.name + "-default.json")).string();
    if (const int status = run_quantize(a); status != exit_success) return status;
    return default_auto_job(out_dir, weights.name, f32, quantized, threads, generated);
}

}  // namespace cogqat::cli
