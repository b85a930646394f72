// cogqat: the command-line face of the library. A thin layer: every step is a library call. Each subcommand
// is a unit of its own (commands.hpp); this file builds the app, runs what was parsed, and turns every
// failure into one message on stderr and an exit status.
//
//   cogqat                                          the default job (import, convert, quantize, report)
//   cogqat convert llama2c MODEL.bin TOKENIZER.bin OUT.gguf [--type f32|f16|bf16]
//   cogqat convert synthetic OUT.gguf [--seed S]
//   cogqat quantize IN.gguf OUT.gguf [--preset NAME|TYPE] [--tensor-type REGEX=TYPE]... [--threads N] [--json FILE]
//   cogqat quantize IN.gguf OUT.gguf --auto [--target-bpw X | --memory-reduction R | --target-bytes N] [--calib self|random|stats] ...
//   cogqat quantize IN.gguf OUT.gguf --imatrix FILE [--preset iq2_xxs ...]   importance-weighted (llama.cpp's imatrix GGUF or .dat)
//   cogqat imatrix MODEL.gguf OUT.gguf [--calib self|random|stats] [--tokens N]   data-free importance matrix
//   cogqat qat IN.gguf OUT.gguf [--preset NAME|TYPE | --auto --target-bpw X] [--steps N] [--batch B] [--lr X] ...
//   [mpirun -np N] cogqat qat IN.gguf OUT.gguf --blockwise [--steps-per-layer N] ...   layer by layer, bounded memory
//   cogqat inspect FILE.gguf [--json]
//   cogqat eval MODEL.gguf --text FILE|- [--ctx N] [--kl-against REF.gguf] [--json]
//   cogqat generate MODEL.gguf [--prompt TEXT] [-n N] [--temp T] [--seed S]
//   cogqat raw quantize|dequantize|survey ...      raw float32 arrays

#include <CLI/CLI.hpp>

#include <cogqat/core/error.hpp>
#include <cogqat/core/memory.hpp>
#include <cogqat/io/output_file.hpp>

#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <new>
#include <string>
#include <system_error>

#include "commands.hpp"
#include "options.hpp"
#include "out_of_memory.hpp"
#include "processes.hpp"

namespace {

using namespace cogqat::cli;

int fail(int status, const std::string& message) {
    fmt::print(stderr, "cogqat: error: {}\n", message);
    return status;
}

/// Runs `job`; whatever it throws becomes a message and an exit status (options.hpp's exit_status).
template <class Job>
int run_reporting_errors(Job&& job) {
    try {
        return job();
    } catch (const cogqat::invalid_argument_error& e) {
        return fail(exit_bad_arguments, e.what());
    } catch (const cogqat::error& e) {
        return fail(exit_failure, e.what());
    } catch (const std::bad_alloc&) {
        const auto bytes = failed_allocation_bytes();
        return fail(exit_failure,
                    "out of memory: the command asked for " +
                            (bytes ? cogqat::human_bytes(static_cast<double>(bytes)) + " (" + std::to_string(bytes) + " bytes) at once"
                                   : std::string("more memory than there is")) +
                            (cogqat::physical_memory_bytes()
                                     ? "; this machine has " + cogqat::human_bytes(static_cast<double>(*cogqat::physical_memory_bytes()))
                                     : std::string()));
    } catch (const std::filesystem::filesystem_error& e) {
        std::string paths = "'" + e.path1().string() + "'";
        if (!e.path2().empty()) paths += " and '" + e.path2().string() + "'";
        return fail(exit_failure, paths + ": " + e.code().message());
    } catch (const std::system_error& e) {
        return fail(exit_failure, std::string(e.what()) + " (" + e.code().message() + ")");
    } catch (const std::exception& e) {
        return fail(exit_failure, e.what());
    } catch (...) {
        return fail(exit_failure, "an unknown exception");
    }
}

}  // namespace

int main(int argc, char** argv) {
    cogqat::io::remove_partial_outputs_on_signals();
    start_processes(&argc, &argv);
    CLI::App app{
            "cogqat: data-free quantization of language models into GGUF\n"
            "With no command: imports stories260K (or generates a small model), converts and quantizes it."};
    app.footer(
            "Exit status: 0 when the command succeeded, 1 when it failed (a file that cannot be read or written, a malformed model, "
            "out of memory), 2 for bad arguments (an unknown option, a value out of range, an output that is also an input). "
            "Outputs are written all or nothing: a failed or interrupted command leaves an existing file as it was.");
    app.require_subcommand(0, 1);
    app.failure_message([](const CLI::App*, const CLI::Error& e) {
        return "cogqat: error: " + std::string(e.what()) + "\nRun with --help for more information.\n";
    });
    std::string out_dir = "cogqat-out";
    unsigned threads = 0;
    command_line line(app);
    line.text("--out-dir", out_dir, "Where the default job writes its files");
    line.threads(threads, "Threads for the default job (0: all)");

    command_list commands;
    add_raw_commands(line, commands);
    add_convert_commands(line, commands);
    add_quantize_command(line, commands);
    add_imatrix_command(line, commands);
    add_qat_command(line, commands);
    add_inspect_command(line, commands);
    add_eval_command(line, commands);
    add_generate_command(line, commands);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? exit_success : exit_bad_arguments;  // app.exit prints the help, or the error and a hint
    }
    const int status = run_reporting_errors([&] {
        for (const auto& c : commands)
            if (c.line.parsed()) {
                if (!c.shares_work) require_one_process();
                return c.run();
            }
        require_one_process();
        return run_default_job(out_dir, usable_threads(threads));
    });
    if (status != exit_success) end_processes_after_failure(status);
    return status;
}
