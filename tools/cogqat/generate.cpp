// `cogqat generate`: continue a prompt with a GGUF model, greedy or sampled.

#include <cogqat/io/gguf.hpp>
#include <cogqat/model/evaluate.hpp>
#include <cogqat/model/llama_model.hpp>
#include <cogqat/model/tokenizer.hpp>

#include <fmt/format.h>

#include <charconv>
#include <cmath>
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
    const auto model = llama_model::from_gguf(file);
    const auto tok = tokenizer::from_gguf(file);
    const std::size_t context = model.config.context_length;
    // A token covers at most max_piece_bytes() bytes: a prompt this long cannot fit, whatever it encodes to.
    if (a.prompt.size() / tok.max_piece_bytes() + 1 > context)
        throw invalid_argument_error("the prompt of " + std::to_string(a.prompt.size()) + " bytes is longer than the model's context of " +
                                     std::to_string(context) + " tokens");
    auto prompt = tok.encode(a.prompt, true);
    if (prompt.size() + a.count > context)
        throw invalid_argument_error("the prompt's " + std::to_string(prompt.size()) + " tokens (BOS included) and -n " + std::to_string(a.count) +
                                     " exceed the model's context of " + std::to_string(context) + " tokens");
    const auto out = generate(model, prompt, a.count, a.temperature, a.seed, tok.eos(), activation_mode::quantized, usable_threads(a.threads));
    prompt.erase(prompt.begin());
    prompt.insert(prompt.end(), out.begin(), out.end());
    fmt::print("{}\n", tok.decode(prompt));
    return exit_success;
}

CLI::Validator temperature_range() {
    const auto range = fmt::format("0 (greedy), or a number from {} to {}", min_temperature, max_temperature);
    return CLI::Validator(
        [=](std::string& text) -> std::string {
            double v = -1.0;
            const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), v);
            const bool ok = !text.empty() && error == std::errc() && end == text.data() + text.size() && std::isfinite(v) &&
                            (v == 0.0 || (v >= min_temperature && v <= max_temperature));
            return ok ? std::string() : "'" + text + "' is not " + range;
        },
        range);
}

} // namespace

void add_generate_command(CLI::App& app, command_list& commands) {
    auto a = std::make_shared<generate_arguments>();
    auto* gen = app.add_subcommand("generate", "Continue a prompt with a GGUF model");
    gen->add_option("model", a->model, "GGUF (llama architecture)")->required();
    gen->add_option("--prompt,-p", a->prompt, "Text to continue (default: nothing, start from BOS)");
    add_whole(*gen, "-n", a->count, 0, UINT32_MAX, "Tokens to generate (the prompt and these must fit the model's context)");
    gen->add_option("--temp", a->temperature, "Sampling temperature: 0 (greedy, the default) or 0.01 to 100")->check(temperature_range());
    add_whole(*gen, "--seed", a->seed, 0, UINT64_MAX, "Sampling seed");
    add_threads(*gen, a->threads);
    commands.push_back({gen, [a] { return run_generate(*a); }});
}

} // namespace cogqat::cli
