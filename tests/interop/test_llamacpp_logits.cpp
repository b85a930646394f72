// Our runtime against a real llama.cpp on the same GGUF and the same text. For each case
// "MODEL.gguf:TOKENS.bin:LOGITS.bin:TOLERANCE" in $COGQAT_LOGITS_CASES (the .bin files written by
// llamacpp_logits.mjs): our tokenizer gives llama.cpp's token ids; at every position our logits are within
// TOLERANCE of llama.cpp's, relative to the largest logit magnitude, and pick the same top-1 token wherever
// llama.cpp's top two are further apart than that tolerance; and the perplexity both give over those
// positions agrees within 0.5%. A case with a fifth field GREEDY.bin (llamacpp_logits.mjs's greedy output)
// also gives llama.cpp's greedy continuation of the same prompt, token for token. Exit code 77 (skipped)
// without cases (interop_main.cpp).
#include <doctest/doctest.h>

#include <cogqat/cogqat.hpp>
#include <cogqat/model/evaluate.hpp>

#include <cmath>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {
namespace llamacpp_logits_test {

struct logits_case {
    std::string model, tokens, logits;
    double tolerance;
    std::string greedy;  ///< empty: no greedy check
};

std::vector<logits_case> cases() {
    std::vector<logits_case> out;
    std::istringstream list(std::getenv("COGQAT_LOGITS_CASES"));
    for (std::string item; list >> item;) {
        std::vector<std::string> parts;
        std::istringstream fields(item);
        for (std::string f; std::getline(fields, f, ':');) parts.push_back(f);
        REQUIRE((parts.size() == 4 || parts.size() == 5));
        out.push_back({parts[0], parts[1], parts[2], std::stod(parts[3]), parts.size() == 5 ? parts[4] : std::string()});
    }
    return out;
}

template <class T>
std::vector<T> read_array(const std::string& path) {
    const auto bytes = cogqat::io::read_file(path);
    std::vector<T> v(bytes.size() / sizeof(T));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = cogqat::load_le<T>(bytes.data() + i * sizeof(T));
    return v;
}

double nll_of(std::span<const float> logits, int target) {
    double max = -INFINITY, sum = 0.0;
    for (float v : logits) max = std::max(max, static_cast<double>(v));
    for (float v : logits) sum += std::exp(static_cast<double>(v) - max);
    return max + std::log(sum) - static_cast<double>(logits[static_cast<std::size_t>(target)]);
}

TEST_SUITE_BEGIN("llamacpp-logits");

TEST_CASE("our tokens and logits are llama.cpp's on the same GGUF") {
    const std::size_t window = std::stoul(std::getenv("COGQAT_LOGITS_WINDOW"));
    const auto text = cogqat::io::read_file(std::getenv("COGQAT_LOGITS_TEXT"));
    for (const auto& c : cases()) {
        CAPTURE(c.model);
        const auto file = cogqat::gguf::reader::open(c.model);
        const auto model = cogqat::io::read_llama_model(file);
        const auto tok = cogqat::io::read_tokenizer(file);
        const auto theirs_tokens = read_array<std::int32_t>(c.tokens);
        const auto theirs = read_array<float>(c.logits);
        const std::size_t vocab = model.config.vocab_size;
        REQUIRE(theirs.size() == theirs_tokens.size() * vocab);

        // llamacpp_logits.mjs puts BOS first whether or not the vocabulary asks for it (the Qwens do not).
        auto ours_tokens = cogqat::tokenize_text(tok, std::string_view(reinterpret_cast<const char*>(text.data()), text.size()), false);
        ours_tokens.insert(ours_tokens.begin(), tok.bos());
        REQUIRE(ours_tokens.size() >= theirs_tokens.size());
        CHECK(std::equal(theirs_tokens.begin(), theirs_tokens.end(), ours_tokens.begin()));

        cogqat::llama_session session(model, window);
        double worst = 0.0, our_nll = 0.0, their_nll = 0.0;
        std::size_t top1_mismatch = 0, near_ties = 0, scored = 0;
        for (std::size_t i = 0; i < theirs_tokens.size(); ++i) {
            const auto ours = session.forward(theirs_tokens[i], i % window);
            const std::span<const float> ref(theirs.data() + i * vocab, vocab);
            double scale = 0.0, diff = 0.0;
            for (std::size_t v = 0; v < vocab; ++v) {
                scale = std::max(scale, std::fabs(static_cast<double>(ref[v])));
                diff = std::max(diff, std::fabs(static_cast<double>(ours[v]) - ref[v]));
            }
            worst = std::max(worst, diff / scale);
            // A top-1 decision counts when llama.cpp's own first and second logits are further apart than
            // the tolerance: inside it, the two runs may legitimately pick either.
            const std::size_t best = cogqat::detail::argmax(ref);
            double second = -INFINITY;
            for (std::size_t v = 0; v < vocab; ++v)
                if (v != best) second = std::max(second, static_cast<double>(ref[v]));
            if (cogqat::detail::argmax(ours) != best) {
                ++near_ties;
                if (ref[best] - second > c.tolerance * scale) ++top1_mismatch;
            }
            if (i + 1 < theirs_tokens.size() && (i + 1) % window != 0) {
                our_nll += nll_of(ours, theirs_tokens[i + 1]);
                their_nll += nll_of(ref, theirs_tokens[i + 1]);
                ++scored;
            }
        }
        const double our_ppl = std::exp(our_nll / static_cast<double>(scored)),
                     their_ppl = std::exp(their_nll / static_cast<double>(scored));
        MESSAGE(c.model << ": " << theirs_tokens.size() << " positions, worst relative logit difference " << worst << ", top-1 differs at "
                        << near_ties << " near-ties, " << top1_mismatch << " clear mismatches"
                        << ", perplexity ours " << our_ppl << " llama.cpp " << their_ppl);
        CHECK(worst <= c.tolerance);
        CHECK(top1_mismatch == 0);
        CHECK(std::fabs(our_ppl / their_ppl - 1.0) <= 0.005);

        if (c.greedy.empty()) continue;
        const auto greedy = read_array<std::int32_t>(c.greedy);
        REQUIRE(!greedy.empty());
        const auto prompt_length = static_cast<std::size_t>(greedy[0]);
        REQUIRE(greedy.size() > 1 + prompt_length);
        const std::vector<std::int32_t> prompt(greedy.begin() + 1, greedy.begin() + 1 + static_cast<std::ptrdiff_t>(prompt_length));
        const std::vector<std::int32_t> theirs_greedy(greedy.begin() + 1 + static_cast<std::ptrdiff_t>(prompt_length), greedy.end());
        cogqat::llama_session generator(model, prompt_length + theirs_greedy.size());
        std::vector<std::int32_t> ours_greedy;
        auto logits = generator.forward_batch(prompt, 0);
        for (std::size_t step = 0; step < theirs_greedy.size(); ++step) {
            ours_greedy.push_back(static_cast<std::int32_t>(cogqat::detail::argmax(logits)));
            if (step + 1 < theirs_greedy.size()) logits = generator.forward(ours_greedy.back(), prompt_length + step);
        }
        MESSAGE(c.model << ": greedy continuation of " << prompt_length << " tokens, " << theirs_greedy.size() << " steps");
        CHECK(ours_greedy == theirs_greedy);
    }
}

TEST_SUITE_END();

}  // namespace llamacpp_logits_test
}  // namespace
