#pragma once
// `cogqat eval` (perplexity, KL and top-1 against a reference) and `cogqat generate`.

#include <cogqat/cogqat.hpp>
#include <cogqat/model/evaluate.hpp>
#include <cogqat/model/llama_model.hpp>
#include <cogqat/model/tokenizer.hpp>

#include <fmt/format.h>

#include <cstdio>
#include <string>

#include "json_output.hpp"

namespace cogqat::cli {

struct eval_arguments {
    std::string model, text, kl_against;
    std::size_t context = 256;
    std::size_t max_tokens = 0;  ///< 0: the whole text
    unsigned threads = 1;
    bool float_activations = false;
    bool as_json = false;
};

inline int eval_command(const eval_arguments& a) {
    const auto file = gguf::reader::open(a.model);
    const auto model = llama_model::from_gguf(file);
    const auto tok = tokenizer::from_gguf(file);
    const auto bytes = io::read_file(a.text);
    auto tokens = tokenize_text(tok, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    if (a.max_tokens && tokens.size() > a.max_tokens) tokens.resize(a.max_tokens);
    std::optional<gguf::reader> reference_file;
    std::optional<llama_model> reference;
    if (!a.kl_against.empty()) {
        reference_file.emplace(gguf::reader::open(a.kl_against));
        reference.emplace(llama_model::from_gguf(*reference_file));
        if (reference->config.vocab_size != model.config.vocab_size)
            throw invalid_argument_error("--kl-against: the reference has a vocabulary of " + std::to_string(reference->config.vocab_size) +
                                         ", the model " + std::to_string(model.config.vocab_size));
    }
    const auto mode = a.float_activations ? activation_mode::float32 : activation_mode::quantized;
    const auto e = evaluate_perplexity(model, tokens, a.context, mode, a.threads, reference ? &*reference : nullptr);
    if (a.as_json) {
        json line{{"ppl", e.perplexity}, {"nll", e.nll}, {"tokens", e.tokens}, {"tokens_per_second", e.tokens_per_second}};
        if (e.kl) {
            line["kl"] = *e.kl;
            line["top1"] = *e.top1;
        }
        print_json(line);
    } else {
        fmt::print("{}: perplexity {:.4f} (mean NLL {:.4f}) over {} tokens in windows of {}, {:.0f} tokens/s\n", a.model, e.perplexity, e.nll, e.tokens,
                   a.context, e.tokens_per_second);
        if (e.kl) fmt::print("against {}: mean KL {:.6f} nats per token, top-1 agreement {:.2f}%\n", a.kl_against, *e.kl, 100.0 * *e.top1);
    }
    return 0;
}

struct generate_arguments {
    std::string model, prompt;
    std::size_t count = 128;
    float temperature = 0.0f;
    std::uint64_t seed = 1;
    unsigned threads = 1;
};

inline int generate_command(const generate_arguments& a) {
    const auto file = gguf::reader::open(a.model);
    const auto model = llama_model::from_gguf(file);
    const auto tok = tokenizer::from_gguf(file);
    auto prompt = tok.encode(a.prompt, true);
    const auto out = generate(model, prompt, a.count, a.temperature, a.seed, tok.eos(), activation_mode::quantized, a.threads);
    prompt.erase(prompt.begin());
    prompt.insert(prompt.end(), out.begin(), out.end());
    fmt::print("{}\n", tok.decode(prompt));
    return 0;
}

} // namespace cogqat::cli
