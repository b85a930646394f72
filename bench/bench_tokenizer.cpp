// Tokenization speed (docs/PERFORMANCE.md, "Tokenizer"): the stories260K vocabulary (512 pieces) on the
// TinyStories text from ../shared, repeated to the size asked, as lines (how eval reads a text) and as one
// line (a prompt, or a file without newlines: the case where searching the whole text after every merge made
// the old tokenizer quadratic). The full search itself, the definition the heap must match
// (tests/tokenizer_reference.hpp), runs on 24 KiB for comparison. Byte-level BPE: a vocabulary of 3,000 merges
// learned from the text's first 64 KiB (tests/bpe_fixture.hpp), the text encoded whole, per pre-tokenizer.
//
//   build/bench/cogqat_bench_tokenizer [--benchmark_filter=REGEX]
//
// Counters: bytes_per_second, and seconds per iteration in the time column.

#include <cogqat/io/file.hpp>
#include <cogqat/io/llama2c.hpp>
#include <cogqat/model/evaluate.hpp>
#include <cogqat/model/tokenizer.hpp>

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>

#include "../tests/bpe_fixture.hpp"
#include "../tests/tokenizer_reference.hpp"

namespace {

struct corpus {
    cogqat::llama_weights weights;
    std::string text;
};

const std::optional<corpus>& shared_corpus() {
    static const std::optional<corpus> c = []() -> std::optional<corpus> {
        const char* env = std::getenv("COGQAT_SHARED_DIR");
        const std::filesystem::path models = std::filesystem::path(env && *env ? env : COGQAT_BENCH_SHARED_DIR) / "models";
        const auto text_path = models / "tinystories-valid" / "tinystories_val_part.txt";
        if (!std::filesystem::exists(models / "stories260K" / "tok512.bin") || !std::filesystem::exists(text_path)) return std::nullopt;
        corpus c{cogqat::io::read_llama2c(models / "stories260K" / "stories260K.bin", models / "stories260K" / "tok512.bin"), {}};
        const auto bytes = cogqat::io::read_file(text_path);
        c.text.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        return c;
    }();
    return c;
}

/// `bytes` of the text, repeated as needed; newlines become spaces for one line.
std::string text_of(std::size_t bytes, bool one_line) {
    const auto& source = shared_corpus()->text;
    std::string out;
    out.reserve(bytes);
    while (out.size() < bytes) out.append(source, 0, std::min(source.size(), bytes - out.size()));
    if (one_line)
        for (auto& c : out)
            if (c == '\n') c = ' ';
    return out;
}

void tokenize(benchmark::State& state, std::size_t bytes, bool one_line, bool full_search) {
    if (!shared_corpus()) {
        state.SkipWithError("the stories260K tokenizer or the TinyStories text is not in ../shared/models");
        return;
    }
    const cogqat::tokenizer tok(shared_corpus()->weights.vocab);
    const auto text = text_of(bytes, one_line);
    std::size_t tokens = 0;
    for (auto _ : state) {
        if (full_search)
            tokens = cogqat::test::reference_encode(shared_corpus()->weights.vocab, text, true).size();
        else if (one_line)
            tokens = tok.encode(text, true).size();
        else
            tokens = cogqat::tokenize_text(tok, text).size();
        benchmark::DoNotOptimize(tokens);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
    state.counters["tokens"] = static_cast<double>(tokens);
}

/// A byte-level BPE tokenizer for `pre`, trained once on the text's first 64 KiB.
const cogqat::tokenizer& bpe_for(const std::string& pre) {
    static std::map<std::string, cogqat::tokenizer> trained;
    auto it = trained.find(pre);
    if (it == trained.end()) {
        const std::string_view sample = std::string_view(shared_corpus()->text).substr(0, 64 * 1024);
        it = trained.emplace(pre, cogqat::tokenizer(cogqat::test::train_bpe(sample, 3000, pre))).first;
    }
    return it->second;
}

void tokenize_bpe(benchmark::State& state, const std::string& pre, std::size_t bytes) {
    if (!shared_corpus()) {
        state.SkipWithError("the TinyStories text is not in ../shared/models");
        return;
    }
    const cogqat::tokenizer& tok = bpe_for(pre);
    const auto text = text_of(bytes, false);
    std::size_t tokens = 0;
    for (auto _ : state) {
        tokens = cogqat::tokenize_text(tok, text).size();
        benchmark::DoNotOptimize(tokens);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
    state.counters["tokens"] = static_cast<double>(tokens);
}

void register_all() {
    constexpr std::size_t KiB = 1024, MiB = 1024 * KiB;
    auto add = [](const std::string& name, std::size_t bytes, bool one_line, bool full_search) {
        auto* b = benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& s) { tokenize(s, bytes, one_line, full_search); });
        b->Unit(benchmark::kMillisecond)->UseRealTime();
        if (bytes >= 16 * MiB) b->Iterations(1);
    };
    add("tokenize/lines/1MiB", MiB, false, false);
    add("tokenize/one_line/1MiB", MiB, true, false);
    add("tokenize/lines/50MiB", 50 * MiB, false, false);
    add("tokenize/one_line/50MiB", 50 * MiB, true, false);
    add("tokenize/one_line/24KiB", 24 * KiB, true, false);
    add("tokenize/full_search/one_line/24KiB", 24 * KiB, true, true);
    for (const std::string pre : {"default", "llama-bpe", "qwen2"})
        benchmark::RegisterBenchmark(("tokenize_bpe/" + pre + "/1MiB").c_str(), [=](benchmark::State& s) { tokenize_bpe(s, pre, MiB); })
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
    register_all();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
