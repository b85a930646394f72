// cogqat-quality: the table of docs/QUALITY.md. For every llama.cpp file in the anchors folder, a data-free
// `--auto` file of ours no larger than it, both judged on the same text by the same evaluator (PPL, KL to
// F32, top-1), plus the bits-per-weight targets. The sensitivity is measured once and every size written
// from it, as `cogqat quantize --auto` would write each one alone. The text is read only to evaluate.
//
//   cogqat-quality [--anchors DIR] [--text FILE] [--out DIR] [--tokens N] [--calib-tokens N] [--bpw X]... [-j N]

#include <cogqat/cogqat.hpp>
#include <cogqat/qat/auto_quantize.hpp>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

namespace {

std::filesystem::path shared_dir() {
    if (const char* env = std::getenv("COGQAT_SHARED_DIR"); env && *env) return env;
    return COGQAT_DEFAULT_SHARED_DIR;
}

struct judged {
    double ppl, kl, top1;
};

judged judge(const std::filesystem::path& file, const std::vector<cogqat::tokenizer::token>& tokens, const cogqat::llama_model& reference,
             unsigned threads) {
    const auto in = cogqat::gguf::reader::open(file);
    const auto model = cogqat::io::read_llama_model(in);
    const auto e = cogqat::evaluate_perplexity(model, tokens, 256, cogqat::activation_mode::quantized, threads, &reference);
    return {e.perplexity, *e.kl, *e.top1};
}

}  // namespace

int main(int argc, char** argv) {
    using namespace cogqat;
    CLI::App app{"cogqat-quality: our data-free files against llama.cpp's at equal or smaller size"};
    std::filesystem::path anchors = shared_dir() / "anchors" / "stories260K-llamacpp";
    std::filesystem::path text = shared_dir() / "models" / "tinystories-valid" / "tinystories_val_part.txt";
    std::filesystem::path out = "cogqat-quality";
    std::size_t max_tokens = 10000, calib_tokens = 2048;
    std::vector<double> bpw_targets{5.0, 6.0};
    unsigned threads = 0;
    app.add_option("--anchors", anchors, "Folder of llama.cpp files named <model>-<PRESET>.gguf, with <model>-F32.gguf");
    app.add_option("--text", text, "Evaluation text (never used to quantize)");
    app.add_option("--out", out, "Where our files go");
    app.add_option("--tokens", max_tokens, "Evaluate the first N tokens of the text (BOS included)");
    app.add_option("--calib-tokens", calib_tokens, "Synthetic calibration positions");
    app.add_option("--bpw", bpw_targets, "Bits-per-weight targets to add to the table")->take_all();
    app.add_option("-j,--threads", threads, "Threads (0: all)");
    CLI11_PARSE(app, argc, argv);

    try {
        std::vector<std::filesystem::path> files;
        std::filesystem::path f32;
        for (const auto& entry : std::filesystem::directory_iterator(anchors)) {
            const auto name = entry.path().filename().string();
            if (entry.path().extension() != ".gguf") continue;
            if (name.ends_with("-F32.gguf"))
                f32 = entry.path();
            else
                files.push_back(entry.path());
        }
        if (f32.empty()) throw io_error("no <model>-F32.gguf in " + anchors.string());
        std::sort(files.begin(), files.end(),
                  [](const auto& a, const auto& b) { return std::filesystem::file_size(a) > std::filesystem::file_size(b); });
        std::filesystem::create_directories(out);

        const auto reference_file = gguf::reader::open(f32);
        const auto reference = io::read_llama_model(reference_file);
        const auto tok = io::read_tokenizer(reference_file);
        const auto bytes = io::read_file(text);
        auto tokens = tokenize_text(tok, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
        if (tokens.size() > max_tokens + 1) tokens.resize(max_tokens + 1);

        auto_quantize_options o;
        o.calibration.tokens = calib_tokens;
        o.threads = threads;
        o.on_progress = [](const auto_progress& p) {
            if (p.done == p.total) fmt::print(stderr, "{}: {} done\n", p.phase, p.total);
        };
        fmt::print(stderr, "measuring the sensitivity of {} on {} synthetic positions\n", f32.string(), calib_tokens);
        const auto analysis = sensitivity_analysis::measure(reference_file, o);

        const auto f32_judged = judge(f32, tokens, reference, threads);
        fmt::print(
                "| file | bytes | bpw | PPL | KL to F32 | top-1 | calib KL | calib retention |\n| --- | --- | --- | --- | --- | --- | --- "
                "| --- |\n");
        fmt::print("| {} | {} | 32.00 | {:.4f} | {:.6f} | {:.1f}% | | |\n", f32.filename().string(), std::filesystem::file_size(f32),
                   f32_judged.ppl, f32_judged.kl, 100 * f32_judged.top1);
        int beaten = 0, total = 0;
        auto row = [&](const std::string& label, const std::filesystem::path& ours, const auto_report& r) {
            const auto j = judge(ours, tokens, reference, threads);
            fmt::print("| {} | {} | {:.2f} | {:.4f} | {:.6f} | {:.1f}% | {:.5f} | {:.4f} |\n", label, r.file_bytes, r.bits_per_weight,
                       j.ppl, j.kl, 100 * j.top1, r.validation.kl, r.validation.retention());
            std::fflush(stdout);
            return j;
        };
        for (const auto& anchor : files) {
            const auto size = std::filesystem::file_size(anchor);
            const auto theirs = judge(anchor, tokens, reference, threads);
            const auto in = gguf::reader::open(anchor);
            std::uint64_t tensor_bytes = 0, weights = 0;
            for (const auto& t : in.tensors()) tensor_bytes += t.bytes(), weights += t.elements();
            fmt::print("| llama.cpp {} | {} | {:.2f} | {:.4f} | {:.6f} | {:.1f}% | | |\n", anchor.filename().string(), size,
                       8.0 * static_cast<double>(tensor_bytes) / static_cast<double>(weights), theirs.ppl, theirs.kl, 100 * theirs.top1);
            auto_quantize_options target = o;
            target.target = size_target::file(size);
            const auto ours_path = out / ("cogqat-auto-" + std::to_string(size) + ".gguf");
            const auto report = analysis.quantize_to(ours_path, target);
            const auto ours = row("cogqat --auto --target-bytes " + std::to_string(size), ours_path, report);
            ++total;
            const bool wins = report.file_bytes <= size && ours.ppl < theirs.ppl && ours.kl < theirs.kl;
            beaten += wins ? 1 : 0;
            if (!wins) fmt::print("| ^ does NOT beat {} | | | | | | | |\n", anchor.filename().string());
        }
        for (double bpw : bpw_targets) {
            auto_quantize_options target = o;
            target.target = size_target::bits(bpw);
            const auto ours_path = out / fmt::format("cogqat-auto-{:.2f}bpw.gguf", bpw);
            std::optional<auto_report> report;
            try {
                report = analysis.quantize_to(ours_path, target);
            } catch (const invalid_argument_error& e) {
                fmt::print("| cogqat --auto --target-bpw {:.2f}: {} | | | | | | | |\n", bpw, e.what());
                continue;
            }
            const auto j = row(fmt::format("cogqat --auto --target-bpw {:.2f}", bpw), ours_path, *report);
            fmt::print("| ^ PPL {:+.2f}% against F32 | | | | | | | |\n", 100.0 * (j.ppl / f32_judged.ppl - 1.0));
        }
        fmt::print("\n{} of {} llama.cpp files beaten on size, PPL and KL\n", beaten, total);
        return beaten == total ? 0 : 3;
    } catch (const cogqat::error& e) {
        std::cerr << "cogqat-quality: error: " << e.what() << '\n';
        return 1;
    }
}
