#pragma once
// What quantization costs, measured: perplexity over a text in non-overlapping windows, KL divergence and
// top-1 agreement against a reference model, and generation.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <istream>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/model/llama_model.hpp"
#include "cogqat/model/tokenizer.hpp"

namespace cogqat {

namespace detail {
/// Appends one line's tokens (the space prefix on the first line only), then a newline's when one follows.
inline void append_line(const tokenizer& tok, std::vector<tokenizer::token>& out, std::string_view line, bool first, bool newline_follows) {
    const auto tokens = tok.encode(line, false, first);
    out.insert(out.end(), tokens.begin(), tokens.end());
    if (newline_follows) {
        const auto newline = tok.encode("\n", false, false);
        out.insert(out.end(), newline.begin(), newline.end());
    }
}
}  // namespace detail

/// Tokenizes a whole text as llama.cpp does (BOS once at the start when `add_bos` and the vocabulary adds one).
/// SentencePiece: one space prefix; no vocabulary piece holds a newline, so merges never cross one and lines are
/// encoded one by one. Byte-level BPE: the whole text at once (its words may hold newlines).
[[nodiscard]] inline std::vector<tokenizer::token> tokenize_text(const tokenizer& tok, std::string_view text, bool add_bos = true) {
    std::vector<tokenizer::token> out;
    if (add_bos && tok.adds_bos()) out.push_back(tok.bos());
    if (tok.bpe()) {
        const auto words = tok.encode(text);
        out.insert(out.end(), words.begin(), words.end());
        return out;
    }
    for (std::size_t start = 0, line = 0;; ++line) {
        const std::size_t end = std::min(text.find('\n', start), text.size());
        detail::append_line(tok, out, text.substr(start, end - start), line == 0, end < text.size());
        if (end == text.size()) break;
        start = end + 1;
    }
    return out;
}

namespace detail {
/// Whether a byte-level BPE text may be cut before `line` when `buffered` ends the text so far: the buffer ends in
/// a printable ASCII character and one newline, and the line starts with an ASCII letter. No pre-tokenizer's word
/// then crosses the cut, and each matches the same words on both sides of it as over the whole text (a lone
/// newline between a non-space and a letter is a word of its own, or ends the punctuation run before it), unless
/// a special token's text spans lines.
inline bool bpe_cut_before(const tokenizer& tok, std::string_view buffered, std::string_view line) {
    if (buffered.size() < 2 || line.empty() || tok.bpe()->special_text_spans_lines()) return false;
    const char before = buffered[buffered.size() - 2], first = line.front();
    return buffered.back() == '\n' && before > ' ' && before < 0x7F && ((first >= 'a' && first <= 'z') || (first >= 'A' && first <= 'Z'));
}

/// tokenize_stream for byte-level BPE: lines gather into a block of at least `block_bytes` bytes, which is encoded
/// at the next place where bpe_cut_before allows a cut.
inline void tokenize_bpe_stream(const tokenizer& tok, std::istream& in, std::size_t max_tokens, std::vector<tokenizer::token>& out,
                                std::size_t block_bytes) {
    std::string block, line;
    const auto flush = [&] {
        const auto tokens = tok.encode(block);
        out.insert(out.end(), tokens.begin(), tokens.end());
        block.clear();
    };
    while ((max_tokens == 0 || out.size() < max_tokens) && std::getline(in, line)) {
        if (block.size() >= block_bytes && bpe_cut_before(tok, block, line)) flush();
        block += line;
        if (!in.eof()) block += '\n';
    }
    if (max_tokens == 0 || out.size() < max_tokens) flush();
}
}  // namespace detail

/// The tokens tokenize_text gives for the whole of `in`, read a line at a time, and no more than `max_tokens`
/// of them (0: all): reading stops once they are reached, so a large text or an endless stream costs only
/// what is kept. A byte-level BPE text is encoded in blocks of at least `bpe_block_bytes`, cut where that gives
/// the whole text's tokens. io_error when reading fails.
[[nodiscard]] inline std::vector<tokenizer::token> tokenize_stream(const tokenizer& tok, std::istream& in, std::size_t max_tokens = 0,
                                                                   bool add_bos = true, std::size_t bpe_block_bytes = 1 << 16) {
    std::vector<tokenizer::token> out;
    if (add_bos && tok.adds_bos()) out.push_back(tok.bos());
    std::string line;
    if (tok.bpe()) {
        detail::tokenize_bpe_stream(tok, in, max_tokens, out, bpe_block_bytes);
    } else {
        for (bool first = true; (max_tokens == 0 || out.size() < max_tokens) && std::getline(in, line); first = false)
            detail::append_line(tok, out, line, first, !in.eof());
    }
    if (in.bad()) throw io_error("cannot read the text: an I/O error after " + std::to_string(out.size()) + " tokens");
    if (max_tokens && out.size() > max_tokens) out.resize(max_tokens);
    return out;
}

struct evaluation {
    double nll = 0.0;         ///< mean negative log-likelihood per scored token (nats)
    double perplexity = 0.0;  ///< exp(nll)
    std::size_t tokens = 0;   ///< tokens scored
    double seconds = 0.0;
    double tokens_per_second = 0.0;
    std::optional<double> kl;    ///< mean KL(reference || model) per token, when a reference was given
    std::optional<double> top1;  ///< fraction of positions where both models' argmax agree
};

namespace detail {
/// The log-probabilities of `logits` into out[0..n), computed in double (max subtracted) and stored as T.
template <class T>
void log_softmax(std::span<const float> logits, T* out) {
    double max = -INFINITY;
    for (float v : logits) max = std::max(max, static_cast<double>(v));
    double sum = 0.0;
    for (float v : logits) sum += std::exp(static_cast<double>(v) - max);
    const double log_sum = max + std::log(sum);
    for (std::size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<T>(static_cast<double>(logits[i]) - log_sum);
}
inline void log_softmax(std::span<const float> logits, std::vector<double>& out) {
    out.resize(logits.size());
    log_softmax(logits, out.data());
}
inline std::size_t argmax(std::span<const float> v) {
    std::size_t best = 0;
    for (std::size_t i = 1; i < v.size(); ++i)
        if (v[i] > v[best]) best = i;
    return best;
}
}  // namespace detail

/// Perplexity of `model` on `tokens` in non-overlapping windows of `window` tokens: each window starts a
/// fresh KV cache at position 0 and every next-token prediction inside it is scored. With `reference`,
/// also the mean KL(reference || model) and the top-1 agreement over the same positions.
[[nodiscard]] inline evaluation evaluate_perplexity(const llama_model& model, const std::vector<tokenizer::token>& tokens,
                                                    std::size_t window, activation_mode mode = activation_mode::quantized,
                                                    unsigned threads = 1, const llama_model* reference = nullptr,
                                                    const std::function<void(std::size_t, std::size_t)>& progress = {}) {
    if (window < 2) throw invalid_argument_error("evaluation window must hold at least 2 tokens");
    if (window > model.config.context_length)
        throw invalid_argument_error("evaluation window of " + std::to_string(window) + " tokens exceeds the model's context of " +
                                     std::to_string(model.config.context_length));
    if (tokens.size() < 2) throw invalid_argument_error("evaluation needs at least 2 tokens");
    const auto start = std::chrono::steady_clock::now();
    llama_session session(model, window, mode, threads);
    std::optional<llama_session> ref_session;
    if (reference) ref_session.emplace(*reference, window, mode, threads);
    double nll = 0.0, kl = 0.0;
    std::size_t scored = 0, agree = 0;
    std::vector<double> logp, ref_logp;
    constexpr std::size_t evaluation_batch = 64;
    const std::size_t vocab = model.config.vocab_size;
    if (reference && reference->config.vocab_size != vocab)
        throw invalid_argument_error("evaluate_perplexity: the reference has " + std::to_string(reference->config.vocab_size) +
                                     " tokens, the model " + std::to_string(vocab));
    for (std::size_t begin = 0; begin + 1 < tokens.size(); begin += window) {
        const std::size_t end = std::min(tokens.size(), begin + window);
        // Batches of positions, as llama.cpp evaluates a window: the same logits as one token at a time.
        for (std::size_t first = begin; first + 1 < end; first += evaluation_batch) {
            const std::size_t count = std::min(evaluation_batch, end - 1 - first);
            const std::span<const tokenizer::token> batch(tokens.data() + first, count);
            const auto all = session.forward_batch(batch, first - begin, true);
            const auto ref_all = ref_session ? ref_session->forward_batch(batch, first - begin, true) : std::span<const float>{};
            for (std::size_t k = 0; k < count; ++k) {
                const std::size_t i = first + k;
                const auto logits = all.subspan(k * vocab, vocab);
                detail::log_softmax(logits, logp);
                nll -= logp[static_cast<std::size_t>(tokens[i + 1])];
                if (ref_session) {
                    const auto ref_logits = ref_all.subspan(k * vocab, vocab);
                    detail::log_softmax(ref_logits, ref_logp);
                    double d = 0.0;
                    for (std::size_t v = 0; v < logp.size(); ++v) d += std::exp(ref_logp[v]) * (ref_logp[v] - logp[v]);
                    kl += d;
                    if (detail::argmax(logits) == detail::argmax(ref_logits)) ++agree;
                }
                ++scored;
            }
        }
        if (progress) progress(end, tokens.size());
    }
    evaluation e;
    e.tokens = scored;
    e.nll = nll / static_cast<double>(scored);
    e.perplexity = std::exp(e.nll);
    e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    e.tokens_per_second = e.seconds > 0 ? static_cast<double>(scored) / e.seconds : 0.0;
    if (reference) {
        e.kl = kl / static_cast<double>(scored);
        e.top1 = static_cast<double>(agree) / static_cast<double>(scored);
    }
    return e;
}

/// Continues `prompt` (token ids, BOS included if wanted) by up to `count` tokens, greedy when `temperature`
/// is 0, else sampling from softmax(logits / temperature) with a seeded generator. Stops at EOS and at the
/// model's context. invalid_argument_error for a negative or non-finite temperature.
[[nodiscard]] inline std::vector<tokenizer::token> generate(const llama_model& model, std::vector<tokenizer::token> prompt,
                                                            std::size_t count, float temperature = 0.0f, std::uint64_t seed = 1,
                                                            tokenizer::token eos = 2, activation_mode mode = activation_mode::quantized,
                                                            unsigned threads = 1) {
    if (prompt.empty()) throw invalid_argument_error("generate needs at least one prompt token (e.g. BOS)");
    if (!(std::isfinite(temperature) && temperature >= 0.0f))
        throw invalid_argument_error("generate: temperature " + std::to_string(temperature) +
                                     " is not 0 (greedy) or a positive finite number");
    if (count > model.config.context_length) count = model.config.context_length;  // no more can follow; prompt.size() + count stays exact
    const std::size_t context = std::min<std::size_t>(model.config.context_length, prompt.size() + count);
    if (prompt.size() > context) throw invalid_argument_error("the prompt is longer than the context length");
    llama_session session(model, context, mode, threads);
    std::mt19937_64 rng(seed);
    std::vector<tokenizer::token> out;
    std::span<const float> logits = session.forward_batch(prompt, 0);
    for (std::size_t pos = prompt.size(); out.size() < count; ++pos) {
        tokenizer::token next;
        if (temperature == 0.0f) {
            next = static_cast<tokenizer::token>(detail::argmax(logits));
        } else {
            std::vector<double> p;
            detail::log_softmax(logits, p);
            // Relative to the most likely token, so that a tiny temperature gives it weight 1 rather than
            // every weight underflowing to 0.
            const double top = *std::max_element(p.begin(), p.end());
            for (auto& v : p) v = std::exp((v - top) / static_cast<double>(temperature));
            std::discrete_distribution<int> pick(p.begin(), p.end());
            next = pick(rng);
        }
        if (next == eos) break;
        out.push_back(next);
        if (pos >= context) break;
        logits = session.forward(next, pos);
    }
    return out;
}

}  // namespace cogqat
