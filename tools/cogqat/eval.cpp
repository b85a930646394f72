// `cogqat eval`: perplexity of a GGUF on a text, and KL / top-1 against a reference model; or, with no text,
// against the reference on sequences the reference writes itself (data-free).

#include <cogqat/calib/calibration_set.hpp>
#include <cogqat/io/gguf.hpp>
#include <cogqat/io/read_llama.hpp>
#include <cogqat/model/evaluate.hpp>
#include <cogqat/model/llama_model.hpp>
#include <cogqat/model/tokenizer.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "commands.hpp"
#include "json_output.hpp"
#include "options.hpp"
#include "terminal.hpp"

namespace cogqat::cli {

namespace {

struct eval_arguments {
    std::string model, text, kl_against;
    std::size_t context = 256;
    std::size_t max_tokens = 0;      ///< 0: the whole text
    std::size_t self_generated = 0;  ///< tokens the reference writes itself, in place of a text (0: a text)
    std::uint64_t seed = 7;
    unsigned threads = 1;
    bool float_activations = false;
    bool as_json = false;
    bool quiet = false;
};

/// The text to read: a file, or standard input for "-".
class text_source {
public:
    explicit text_source(const std::string& path) {
        if (path == "-") return;
        file_.open(path, std::ios::binary);
        if (!file_) throw io_error("cannot open '" + path + "' for reading: " + std::strerror(errno));
    }
    std::istream& stream() { return file_.is_open() ? static_cast<std::istream&>(file_) : std::cin; }

private:
    std::ifstream file_;
};

/// The model against the reference on sequences of --ctx tokens the reference writes itself: no text.
int run_self_generated(const eval_arguments& a) {
    const auto file = gguf::reader::open(a.model);
    const auto model = io::read_llama_model(file);
    const auto reference_file = gguf::reader::open(a.kl_against);
    const auto reference = io::read_llama_model(reference_file);
    if (reference.config.vocab_size != model.config.vocab_size)
        throw invalid_argument_error("--kl-against: the reference has a vocabulary of " + std::to_string(reference.config.vocab_size) +
                                     ", the model " + std::to_string(model.config.vocab_size));
    const unsigned threads = usable_threads(a.threads);
    const phase_progress progress(a.quiet);
    auto options = self_generated_sequences(std::max<std::size_t>(1, a.self_generated / a.context), a.context, a.seed, threads);
    options.on_tokens = [&](std::size_t done, std::size_t total) { progress("generate", done, total, {}, "tokens"); };
    const auto set = make_calibration_set(reference, options);
    progress("eval", 0, 2, {}, "passes");
    const auto answers = run_teacher(reference, set, threads);
    progress("eval", 1, 2, {}, "passes");
    const auto mode = a.float_activations ? activation_mode::float32 : activation_mode::quantized;
    const auto score = score_against_teacher(model, set, answers, mode, threads);
    progress("eval", 2, 2, {}, "passes");
    progress.finish();
    const double ppl = std::exp(score.nll), reference_ppl = std::exp(answers.nll);
    if (a.as_json) {
        print_json({{"ppl", ppl},
                    {"nll", score.nll},
                    {"tokens", set.positions()},
                    {"kl", score.kl},
                    {"top1", score.top1},
                    {"reference_ppl", reference_ppl},
                    {"seed", a.seed}});
    } else {
        fmt::print(
                "{} against {} on {} tokens it wrote itself (seed {}, sequences of {}): mean KL {:.6f} nats per token, top-1 "
                "agreement {:.2f}%; perplexity {:.4f} (the reference's {:.4f})\n",
                a.model, a.kl_against, set.positions(), a.seed, a.context, score.kl, 100.0 * score.top1, ppl, reference_ppl);
    }
    return exit_success;
}

int run_eval(const eval_arguments& a) {
    if (a.self_generated) {
        if (a.kl_against.empty())
            throw invalid_argument_error("--self-generated: the reference that writes the tokens (--kl-against) is needed");
        if (!a.text.empty()) throw invalid_argument_error("--self-generated takes no --text");
        return run_self_generated(a);
    }
    if (a.text.empty()) throw invalid_argument_error("a text to score (--text), or --self-generated N with --kl-against");
    text_source text(a.text);  // a missing text fails before a model is loaded
    const auto file = gguf::reader::open(a.model);
    const auto model = io::read_llama_model(file);
    if (a.context > model.config.context_length)
        throw invalid_argument_error("--ctx " + std::to_string(a.context) + " exceeds the model's context of " +
                                     std::to_string(model.config.context_length) + " tokens");
    const auto tok = io::read_tokenizer(file);
    std::optional<gguf::reader> reference_file;
    std::optional<llama_model> reference;
    if (!a.kl_against.empty()) {
        reference_file.emplace(gguf::reader::open(a.kl_against));
        reference.emplace(io::read_llama_model(*reference_file));
        if (reference->config.vocab_size != model.config.vocab_size)
            throw invalid_argument_error("--kl-against: the reference has a vocabulary of " + std::to_string(reference->config.vocab_size) +
                                         ", the model " + std::to_string(model.config.vocab_size));
    }
    const auto tokens = tokenize_stream(tok, text.stream(), a.max_tokens);
    const auto mode = a.float_activations ? activation_mode::float32 : activation_mode::quantized;
    const phase_progress progress(a.quiet);
    const auto e = evaluate_perplexity(model, tokens, a.context, mode, usable_threads(a.threads), reference ? &*reference : nullptr,
                                       [&](std::size_t done, std::size_t total) { progress("eval", done, total, {}, "tokens"); });
    progress.finish();
    if (a.as_json) {
        json line{{"ppl", e.perplexity}, {"nll", e.nll}, {"tokens", e.tokens}, {"tokens_per_second", e.tokens_per_second}};
        if (e.kl) {
            line["kl"] = *e.kl;
            line["top1"] = *e.top1;
        }
        print_json(line);
    } else {
        fmt::print("{}: perplexity {:.4f} (mean NLL {:.4f}) over {} tokens in windows of {}, {:.0f} tokens/s\n", a.model, e.perplexity,
                   e.nll, e.tokens, a.context, e.tokens_per_second);
        if (e.kl) fmt::print("against {}: mean KL {:.6f} nats per token, top-1 agreement {:.2f}%\n", a.kl_against, *e.kl, 100.0 * *e.top1);
    }
    return exit_success;
}

}  // namespace

void add_eval_command(command_line& app, command_list& commands) {
    auto a = std::make_shared<eval_arguments>();
    auto eval = app.subcommand("eval", "Perplexity of a GGUF on a text (and KL / top-1 against a reference)");
    eval.text("model", a->model, "GGUF (llama, qwen2 or qwen3 architecture)").required();
    eval.text("--text", a->text, "UTF-8 text file, or - for standard input (or --self-generated)");
    eval.whole("--ctx", a->context, 2, UINT32_MAX,
               "Window length in tokens, at most the model's context (non-overlapping windows, BOS once at the start)");
    eval.whole("--max-tokens", a->max_tokens, 0, SIZE_MAX, "Read and score only the first N tokens of the text (0: all)");
    eval.text("--kl-against", a->kl_against, "Reference GGUF: also report mean KL(reference || model) and top-1 agreement");
    eval.whole("--self-generated", a->self_generated, 2, 1u << 24,
               "Instead of a text: N tokens the --kl-against reference writes itself, in sequences of --ctx (data-free held-out "
               "scoring; the model's KL, top-1 and perplexity on them)");
    eval.whole("--seed", a->seed, 0, UINT64_MAX, "--self-generated: the sampling seed (default 7)");
    eval.threads(a->threads);
    eval.flag("--float-activations", a->float_activations, "Decode weights to float instead of quantizing activations as llama.cpp does");
    eval.flag("--json", a->as_json, "One JSON line on stdout: ppl, nll, tokens, tokens_per_second (kl, top1); progress stays on stderr");
    eval.flag("--quiet,-q", a->quiet, "No progress output");
    commands.push_back({eval, [a] { return run_eval(*a); }});
}

}  // namespace cogqat::cli
