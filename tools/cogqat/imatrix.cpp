// `cogqat imatrix MODEL OUT`: the data-free importance matrix (calib/importance.hpp) written in llama.cpp's
// imatrix GGUF format (or its legacy .dat format for an OUT ending in .dat), so that llama-quantize
// --imatrix and `cogqat quantize --imatrix` read it.

#include <cogqat/calib/importance.hpp>
#include <cogqat/io/gguf.hpp>
#include <cogqat/io/imatrix_file.hpp>
#include <cogqat/io/read_llama.hpp>

#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "commands.hpp"
#include "options.hpp"

namespace cogqat::cli {

namespace {

struct imatrix_arguments {
    std::string input, output, calib = "self";
    std::size_t tokens = 2048;
    std::uint64_t seed = 1;
    unsigned threads = 0;
    bool quiet = false;
};

int run_imatrix(const imatrix_arguments& a) {
    check_files({{"MODEL", a.input}}, {{"OUT", a.output}});
    calibration_options calibration;
    calibration.source = parse_calibration_source(a.calib);
    calibration.tokens = a.tokens;
    calibration.seed = a.seed;
    const auto start = std::chrono::steady_clock::now();
    const auto in = gguf::reader::open(a.input);
    const auto model = io::read_llama_model(in);
    const auto m = compute_importance(model, calibration, usable_threads(a.threads));
    const bool legacy = a.output.ends_with(".dat");
    if (legacy)
        io::write_imatrix_legacy(a.output, m);
    else
        io::write_imatrix(a.output, m);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!a.quiet)
        for (const auto& [name, e] : m.entries) {
            double sum = 0.0;
            for (float v : e.sums) sum += v;
            fmt::print("{:<28} {:>6} columns, mean x^2 {:.4e}\n", name, e.columns(),
                       e.counts[0] > 0.0f && !e.sums.empty() ? sum / static_cast<double>(e.sums.size()) / e.counts[0] : 0.0);
        }
    fmt::print("{}: importance matrix of {} matrices from {} chunks of {} positions ({}; no text read), {} format, {:.2f} s\n", a.output,
               m.entries.size(), m.chunk_count, m.chunk_size, m.datasets.front(), legacy ? "legacy .dat" : "llama.cpp imatrix GGUF",
               seconds);
    return exit_success;
}

}  // namespace

void add_imatrix_command(command_line& app, command_list& commands) {
    auto a = std::make_shared<imatrix_arguments>();
    auto c = app.subcommand(
            "imatrix", "Write a data-free importance matrix (sum of x^2 per input column of every matrix) in llama.cpp's imatrix format");
    c.text("model", a->input, "GGUF model to run (llama architecture)").required();
    c.text("output", a->output, "imatrix file to write: GGUF, or the legacy binary format when the name ends in .dat").required();
    c.text("--calib", a->calib,
           "calibration inputs: self (text the model writes itself, default), random (tokens) or stats (hidden states)")
            .one_of({"self", "random", "stats"});
    c.whole("--tokens", a->tokens, 2, 1u << 20, "calibration positions (default 2048)");
    c.whole("--seed", a->seed, 0, UINT64_MAX, "calibration seed (default 1)");
    c.threads(a->threads);
    c.flag("--quiet,-q", a->quiet, "Only the summary line");
    commands.push_back({c, [a] { return run_imatrix(*a); }});
}

}  // namespace cogqat::cli
