// `cogqat generate`: continue a prompt with a GGUF model, greedy or sampled.

#include <cogqat/io/gguf.hpp>
#include <cogqat/io/read_llama.hpp>
#include <cogqat/model/evaluate.hpp>
#include <cogqat/model/llama_model.hpp>
#include <cogqat/model/tokenizer.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <memory>
#include <string>

#include "commands.hpp"
#include "options.hpp"

namespace cogqat::cli {

namespace {

/// --temp: 0 (greedy), or from min_temperature to max_temperature. Below the minimum, sampling is greedy in
/// all but name; above the maximum, the distribution is flat in all but name.
inline constexpr double min_temperature = 0.01, max_temperature = 100.0;

struct generate_arguments {
    std::string model, prompt;
    std::size_t count = 128;
    float temperature = 0.0f;
    std::uint64_t seed = 1;
    unsigned threads = 1;
};

int run_generate(const generate_arguments& a) {
    const auto file = gguf::reader::open(a.model);
    const auto model = io::read_llama_model(file);
    const auto tok = io::read_tokenizer(file);
    const std::size_t context = model.config.context_length;
    // A token covers at most max_piece_bytes() bytes: a prompt this long cannot fit, whatever it encodes to.
    if (a.prompt.size() / tok.max_piece_bytes() + 1 > context)
        throw invalid_argument_error("the prompt of " + std::to_string(a.prompt.size()) + " bytes is longer than the model's context of " +
                                     std::to_string(context) + " tokens");
    auto prompt = tok.encode(a.prompt, true);
    // A vocabulary that adds no BOS (the Qwens') gives an empty prompt nothing to continue: start from its BOS,
    // as llama.cpp does, and leave it out of the text.
    const bool start_from_bos = prompt.empty();
    if (start_from_bos) prompt.push_back(tok.bos());
    if (prompt.size() + a.count > context)
        throw invalid_argument_error("the prompt's " + std::to_string(prompt.size()) + " tokens (BOS included) and -n " +
                                     std::to_string(a.count) + " exceed the model's context of " + std::to_string(context) + " tokens");
    const auto out =
            generate(model, prompt, a.count, a.temperature, a.seed, tok.eos(), activation_mode::quantized, usable_threads(a.threads));
    if (tok.adds_bos() || start_from_bos) prompt.erase(prompt.begin());  // the BOS that encode or we added
    prompt.insert(prompt.end(), out.begin(), out.end());
    fmt::print("{}\n", tok.decode(prompt));
    return exit_success;
}

}  // namespace

void add_generate_command(command_line& app, command_list& commands) {
    auto a = std::make_shared<generate_arguments>();
    auto gen = app.subcommand("generate", "Continue a prompt with a GGUF model");
    gen.text("model", a->model, "GGUF (llama, qwen2 or qwen3 architecture)").required();
    gen.text("--prompt,-p", a->prompt, "Text to continue (default: nothing, start from BOS)");
    gen.whole("-n", a->count, 0, UINT32_MAX, "Tokens to generate (the prompt and these must fit the model's context)");
    gen.real("--temp", a->temperature, {min_temperature, max_temperature, false, true},
             "Sampling temperature: 0 (greedy, the default) or 0.01 to 100");
    gen.whole("--seed", a->seed, 0, UINT64_MAX, "Sampling seed");
    gen.threads(a->threads);
    commands.push_back({gen, [a] { return run_generate(*a); }});
}

}  // namespace cogqat::cli
