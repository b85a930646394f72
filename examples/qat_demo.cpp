// qat-demo: data-free quantization-aware training of stories260K on two cores in a few minutes.
//
// Every matrix goes to 4 bits (q4_0; the feed-forward padded to whole blocks, the classifier tied), three
// ways: ggml's round-to-nearest, our data-free GPTQ rounding, and QAT starting from it. The training data
// are stories the model writes itself; the validation text is read only to print the perplexities.
//
//   qat-demo [--model stories260K.gguf] [--text FILE] [--steps N] [--tokens N] [-j N]

#include <cogqat/cogqat.hpp>
#include <cogqat/io/llama2c.hpp>
#include <cogqat/io/llama_gguf.hpp>
#include <cogqat/qat/qat_pipeline.hpp>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace {

std::filesystem::path shared_dir() {
    if (const char* env = std::getenv("COGQAT_SHARED_DIR"); env && *env) return env;
    return COGQAT_DEFAULT_SHARED_DIR;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace cogqat;
    CLI::App app{"qat-demo: data-free QAT of stories260K to 4 bits, perplexity before and after"};
    std::filesystem::path model, text = shared_dir() / "models" / "tinystories-valid" / "tinystories_val_part.txt", out = "qat-demo-out";
    cogqat::qat_config config;
    std::size_t max_tokens = 10000;
    app.add_option("--model", model, "F32 llama GGUF (default: stories260K from ../shared, converted)");
    app.add_option("--text", text, "Validation text, for the perplexities only");
    app.add_option("--out", out, "Where the files go");
    app.add_option("--steps", config.steps, "Global fine-tuning steps");
    app.add_option("--tokens", max_tokens, "Evaluate the first N tokens of the text");
    app.add_option("-j,--threads", config.threads, "Threads (0: all)");
    CLI11_PARSE(app, argc, argv);
    try {
        std::filesystem::create_directories(out);
        if (model.empty()) {
            const auto dir = shared_dir() / "models" / "stories260K";
            if (!std::filesystem::exists(dir / "stories260K.bin")) {
                fmt::print("qat-demo: no stories260K under {} (set COGQAT_SHARED_DIR); nothing to do\n", dir.string());
                return 0;
            }
            model = out / "stories260K-f32.gguf";
            io::write_llama_gguf(io::read_llama2c(dir / "stories260K.bin", dir / "tok512.bin"), model);
        }
        const auto in = gguf::reader::open(model);
        const auto teacher = io::read_llama_model(in);
        const auto bytes = io::read_file(text);
        auto tokens = tokenize_text(io::read_tokenizer(in), std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
        if (tokens.size() > max_tokens + 1) tokens.resize(max_tokens + 1);
        const auto judge = [&](const std::filesystem::path& file) {
            const auto f = gguf::reader::open(file);
            return evaluate_perplexity(io::read_llama_model(f), tokens, 256, activation_mode::quantized, config.threads, &teacher);
        };

        auto run = [&](const char* label, qat_config c, const std::filesystem::path& file) {
            fmt::print("{}...\n", label);
            std::fflush(stdout);
            return quantization_aware_training(in, file, c, [&](const qat_progress& p) {
                if ((p.phase == "fine-tune" || p.phase == "progressive") && (p.step % 25 == 0 || p.step == p.total))
                    fmt::print("  step {:>4}/{}  {:<11} loss {:.5f}  KL {:.5f}\n", p.step, p.total, p.phase, p.loss, p.kl);
                std::fflush(stdout);
                return true;
            });
        };
        qat_config none = config;
        none.steps = 0, none.steps_per_unit = 0;
        none.init = qat_init::reference;
        const auto rtn_report = run("round-to-nearest (ggml's q4_0, no training)", none, out / "rtn-q4_0.gguf");
        none.init = qat_init::gptq;
        const auto gptq_report = run("data-free GPTQ rounding (no training)", none, out / "gptq-q4_0.gguf");
        const auto qat_report = run("data-free QAT from the GPTQ rounding", config, out / "qat-q4_0.gguf");

        const auto f32 = evaluate_perplexity(teacher, tokens, 256, activation_mode::quantized, config.threads, &teacher);
        const auto rtn = judge(out / "rtn-q4_0.gguf"), gptq = judge(out / "gptq-q4_0.gguf"), qat = judge(out / "qat-q4_0.gguf");
        fmt::print("\nperplexity on {} tokens of {} (never used to train):\n", f32.tokens, text.filename().string());
        fmt::print("  {:<34} {:>9} {:>8} {:>10} {:>8} {:>9}\n", "model", "bytes", "PPL", "KL to F32", "top-1", "gap left");
        auto line = [&](const char* name, std::uint64_t size, const evaluation& e) {
            const double gap = rtn.perplexity - f32.perplexity;
            fmt::print("  {:<34} {:>9} {:>8.4f} {:>10.6f} {:>7.2f}% {:>8.1f}%\n", name, size, e.perplexity, e.kl.value_or(0.0),
                       100.0 * e.top1.value_or(1.0), gap > 0 ? 100.0 * (e.perplexity - f32.perplexity) / gap : 0.0);
        };
        line("F32", std::filesystem::file_size(model), f32);
        line("q4_0 round-to-nearest", rtn_report.file_bytes, rtn);
        line("q4_0 data-free GPTQ", gptq_report.file_bytes, gptq);
        line("q4_0 data-free QAT", qat_report.file_bytes, qat);
        fmt::print("QAT: {} steps in {:.0f} s; recovers {:.1f}% of the perplexity gap between F32 and round-to-nearest\n",
                   qat_report.steps_total, qat_report.seconds,
                   100.0 * (rtn.perplexity - qat.perplexity) / (rtn.perplexity - f32.perplexity));
    } catch (const cogqat::error& e) {
        fmt::print(stderr, "qat-demo: error: {}\n", e.what());
        return 1;
    }
    return 0;
}
