// Our Llama runtime's tokens per second against llama.cpp's, on the same GGUF files and thread counts, in
// the same run (docs/PERFORMANCE.md, "Runtime: tokens per second against llama.cpp").
//
//   build/bench/cogqat_bench_runtime [--benchmark_filter=REGEX] [--benchmark_format=json --benchmark_out=FILE]
//
// Files, written once into $COGQAT_BENCH_CACHE (default ${TMPDIR:-/tmp}/cogqat-bench-runtime) and reused:
//   stories260K-{f32,q8_0,q4_0,q4_k_m}   llama2.c's stories260K converted by the library, then quantized
//   synth1024-{f32,q8_0,q4_0,q4_k_m}     a generated llama-shaped model (dim 1024, FFN 2816, 8 layers, 16 heads,
//                                        4 KV heads, vocabulary 32000): 624 MB at F32, so generation is bound by
//                                        memory bandwidth rather than by the cache
// Benchmarks, for every file and for 1 thread and all hardware threads:
//   pp/FILE/P/tN   prompt processing: P tokens into an empty cache
//   tg/FILE/G/tN   generation: G tokens, greedy, one at a time, after an 8-token prompt
// Ours runs with activation_mode::quantized, as llama.cpp's CPU backend does. llama.cpp runs in a node
// process (bench/llamacpp_speed.mjs --serve, node-llama-cpp 3.22.1) started once per file and thread count,
// model load and warm-up excluded; every iteration runs one measurement of each side, the side that goes
// first alternating, so that load from elsewhere on the machine falls on both halves of a pair.
// Counters: tokens_per_second (ours, from the median iteration), llamacpp_tokens_per_second (the same for
// llama.cpp), vs_llamacpp (the median over iterations of ours / llama.cpp's per pair), and on 4-bit files
// vs_own_f32 (our generation speed over our own on the F32 file of the same model and thread count).
// Without node or node-llama-cpp ours runs alone and one line says why. Environment: COGQAT_NODE (node
// binary), COGQAT_NODE_MODULES (where node-llama-cpp is installed), COGQAT_SHARED_DIR (holds
// models/stories260K), COGQAT_BENCH_CACHE.

#include <cogqat/core/parallel.hpp>
#include <cogqat/dispatch/kernel_table.hpp>
#include <cogqat/io/gguf.hpp>
#include <cogqat/io/llama2c.hpp>
#include <cogqat/io/llama_gguf.hpp>
#include <cogqat/io/read_llama.hpp>
#include <cogqat/model/llama_model.hpp>
#include <cogqat/model/synthetic.hpp>
#include <cogqat/quant/gguf_quantize.hpp>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>
#include "timing.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using cogqat::activation_mode;
using cogqat::ggml_type;

constexpr std::size_t generation_prompt = 8;
constexpr double llamacpp_seconds_per_benchmark = 15.0;

/// One model at one size: how long its runs are. The big model's iterations take seconds, so their
/// count is fixed and small; the small model's are milliseconds, so more of them steady the median.
struct family {
    std::string name;
    std::size_t prompt_tokens, generated_tokens;
    benchmark::IterationCount pp_iterations, tg_iterations;
};

struct bench_file {
    const family* model;
    std::string variant;  ///< "f32" or a preset name
    fs::path path;
    [[nodiscard]] std::string name() const { return model->name + "-" + variant; }
    [[nodiscard]] bool four_bit() const { return variant.starts_with("q4"); }
};

std::string environment(const char* name, std::string fallback = {}) {
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : fallback;
}

fs::path cache_dir() {
    if (auto dir = environment("COGQAT_BENCH_CACHE"); !dir.empty()) return dir;
    return fs::path(environment("TMPDIR", "/tmp")) / "cogqat-bench-runtime";
}

const family stories{"stories260K", 64, 64, 12, 12};
const family synthetic{"synth1024", 64, 16, 3, 5};
const cogqat::llama_config synthetic_config{1024, 2816, 8, 16, 4, 32000, 512};
const std::vector<std::string> presets{"q8_0", "q4_0", "q4_k_m"};

void note(const std::string& line) { std::cerr << "cogqat_bench_runtime: " << line << std::endl; }

/// The F32 file and its quantized presets, each made only when absent (files appear only once complete).
std::vector<bench_file> prepare(const family& f, const std::function<cogqat::llama_weights()>& make) {
    const fs::path dir = cache_dir();
    fs::create_directories(dir);
    std::vector<bench_file> files{{&f, "f32", dir / (f.name + "-f32.gguf")}};
    if (!fs::exists(files[0].path)) {
        note("writing " + files[0].path.string());
        cogqat::io::write_llama_gguf(make(), files[0].path, ggml_type::f32);
    }
    std::optional<cogqat::gguf::reader> source;
    for (const auto& preset : presets) {
        files.push_back({&f, preset, dir / (f.name + "-" + preset + ".gguf")});
        if (fs::exists(files.back().path)) continue;
        if (!source) source.emplace(cogqat::gguf::reader::open(files[0].path));
        note("quantizing " + files.back().path.string());
        cogqat::quantize_options options;
        options.policy = {cogqat::find_preset(preset), {}};
        (void)cogqat::quantize_gguf(*source, files.back().path, options);
    }
    return files;
}

/// What a file holds: the share of tensor bytes of each type, largest first ("q4_K 58% q6_K 30% ...").
std::string holdings(const cogqat::gguf::reader& in) {
    std::map<ggml_type, std::uint64_t> bytes;
    std::uint64_t total = 0;
    for (const auto& t : in.tensors()) {
        const auto n = cogqat::storage_size(t.type, static_cast<std::size_t>(t.elements()));
        bytes[t.type] += n;
        total += n;
    }
    std::vector<std::pair<std::uint64_t, ggml_type>> order;
    for (const auto& [type, n] : bytes) order.emplace_back(n, type);
    std::sort(order.rbegin(), order.rend());
    std::string out;
    for (const auto& [n, type] : order) {
        const long percent = std::lround(100.0 * static_cast<double>(n) / static_cast<double>(total));
        if (percent == 0) continue;
        out += (out.empty() ? "" : " ") + std::string(cogqat::info(type).name) + " " + std::to_string(percent) + "%";
    }
    return out;
}

struct loaded_model {
    cogqat::gguf::reader reader;
    cogqat::llama_model model;
    std::string holds;
    std::int32_t bos = 1;
    explicit loaded_model(const fs::path& path)
            : reader(cogqat::gguf::reader::open(path)), model(cogqat::io::read_llama_model(reader)), holds(holdings(reader)) {
        if (const auto* v = reader.find("tokenizer.ggml.bos_token_id")) bos = static_cast<std::int32_t>(v->as<std::uint32_t>());
    }
};

/// One model mapped at a time: the big files together would not stay in the page cache on a small machine.
loaded_model& model_for(const bench_file& f) {
    static std::pair<fs::path, std::unique_ptr<loaded_model>> current;
    if (current.first != f.path || !current.second) {
        current.second.reset();
        current.second = std::make_unique<loaded_model>(f.path);
        current.first = f.path;
    }
    return *current.second;
}

/// BOS, then 3 + (131 i mod (V - 3)): the ids llamacpp_speed.mjs builds, none a control token.
std::vector<std::int32_t> prompt_ids(std::int32_t bos, std::size_t length, std::uint32_t vocab) {
    std::vector<std::int32_t> ids{bos};
    for (std::size_t i = 1; i < length; ++i) ids.push_back(static_cast<std::int32_t>(3 + (131 * i) % (vocab - 3)));
    return ids;
}

std::int32_t argmax(std::span<const float> v) { return static_cast<std::int32_t>(std::max_element(v.begin(), v.end()) - v.begin()); }

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::size_t session_length(const family& f) { return std::max(f.prompt_tokens, generation_prompt + f.generated_tokens) + 1; }

/// Prompt processing as our runtime does it: the whole prompt as one batch (llama_session::forward_batch),
/// the next token chosen greedily at the end as llama.cpp's sampler does.
double our_prompt_seconds(const loaded_model& m, const family& f, unsigned threads) {
    cogqat::llama_session s(m.model, session_length(f), activation_mode::quantized, threads);
    const auto ids = prompt_ids(m.bos, f.prompt_tokens, m.model.config.vocab_size);
    const auto start = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(argmax(s.forward_batch(ids, 0)));
    return seconds_since(start);
}

double our_generation_seconds(const loaded_model& m, const family& f, unsigned threads) {
    cogqat::llama_session s(m.model, session_length(f), activation_mode::quantized, threads);
    const auto ids = prompt_ids(m.bos, generation_prompt, m.model.config.vocab_size);
    std::int32_t next = argmax(s.forward_batch(ids, 0));
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t g = 0; g < f.generated_tokens; ++g) next = argmax(s.forward(next, ids.size() + g));
    benchmark::DoNotOptimize(next);
    return seconds_since(start);
}

/// Two tokens fault every mapped weight page in, which is all a first run would do differently.
void warm_up(const loaded_model& m, unsigned threads) {
    cogqat::llama_session s(m.model, 2, activation_mode::quantized, threads);
    for (std::size_t i = 0; i < 2; ++i) benchmark::DoNotOptimize(s.forward(m.bos, i).data());
}

/// llamacpp_speed.mjs --serve as a child process: one command line in, one JSON line out.
class llamacpp_peer {
public:
    /// Starts the child and waits until it has loaded the model; on failure returns null and sets `why`.
    static std::unique_ptr<llamacpp_peer> start(const bench_file& f, unsigned threads, std::uint32_t vocab, std::string& why) {
        int to_child[2], from_child[2];
        if (pipe(to_child) != 0) return fail(why, "pipe() failed");
        if (pipe(from_child) != 0) {
            close(to_child[0]), close(to_child[1]);
            return fail(why, "pipe() failed");
        }
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, to_child[0], STDIN_FILENO);
        posix_spawn_file_actions_adddup2(&actions, from_child[1], STDOUT_FILENO);
        for (int fd : {to_child[0], to_child[1], from_child[0], from_child[1]}) posix_spawn_file_actions_addclose(&actions, fd);
        const std::string node = environment("COGQAT_NODE", "node");
        const std::string script = environment("COGQAT_LLAMACPP_SPEED", COGQAT_BENCH_SOURCE_DIR "/llamacpp_speed.mjs");
        std::vector<std::string> args{node,
                                      script,
                                      "--serve",
                                      "--model",
                                      f.path.string(),
                                      "--threads",
                                      std::to_string(threads),
                                      "--prompt",
                                      std::to_string(f.model->prompt_tokens),
                                      "--gen",
                                      std::to_string(f.model->generated_tokens),
                                      "--gen-prompt",
                                      std::to_string(generation_prompt),
                                      "--vocab",
                                      std::to_string(vocab)};
        if (auto modules = environment("COGQAT_NODE_MODULES"); !modules.empty()) args.insert(args.end(), {"--modules", modules});
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        pid_t pid = 0;
        const int spawned = posix_spawnp(&pid, node.c_str(), &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        close(to_child[0]), close(from_child[1]);
        if (spawned != 0) {
            close(to_child[1]), close(from_child[0]);
            return fail(why, "cannot run '" + node + "' (" + std::string(std::strerror(spawned)) + "); install node or set COGQAT_NODE");
        }
        FILE* to = fdopen(to_child[1], "w");
        if (!to) {
            close(to_child[1]), close(from_child[0]);
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
            return fail(why, "fdopen() failed");
        }
        auto peer = std::unique_ptr<llamacpp_peer>(new llamacpp_peer(pid, to, from_child[0]));
        const auto ready = peer->receive(120);
        if (!ready || !ready->value("ready", false)) {
            why = ready && ready->contains("error") ? ready->at("error").get<std::string>()
                                                    : "llamacpp_speed.mjs exited before loading the model";
            return nullptr;
        }
        return peer;
    }

    llamacpp_peer(const llamacpp_peer&) = delete;
    llamacpp_peer& operator=(const llamacpp_peer&) = delete;
    ~llamacpp_peer() {
        std::fputs("quit\n", to_);
        std::fclose(to_);
        close(from_);
        int status = 0;
        waitpid(pid_, &status, 0);
    }

    /// Seconds of one "pp" or "tg" measurement, or nothing when the child failed.
    std::optional<double> measure(const std::string& command) {
        if (std::fputs((command + "\n").c_str(), to_) < 0 || std::fflush(to_) != 0) return std::nullopt;
        const auto reply = receive(20);
        const std::string key = command + "_seconds";
        if (!reply || !reply->contains(key)) {
            if (reply && reply->contains("error")) note("llama.cpp: " + reply->at("error").get<std::string>());
            return std::nullopt;
        }
        return reply->at(key).get<double>();
    }

private:
    llamacpp_peer(pid_t pid, FILE* to, int from) : pid_(pid), to_(to), from_(from) {}

    static std::unique_ptr<llamacpp_peer> fail(std::string& why, std::string reason) {
        why = std::move(reason);
        return nullptr;
    }

    /// The next line that is a JSON object (anything else a library prints on stdout is skipped), or
    /// nothing when the child exits or stays silent past the deadline: then it is killed, since a machine
    /// oversubscribed by other work can slow ggml's spinning threads by orders of magnitude.
    std::optional<nlohmann::json> receive(int timeout_seconds) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
        for (;;) {
            if (const auto end = pending_.find('\n'); end != std::string::npos) {
                auto j = nlohmann::json::parse(pending_.substr(0, end), nullptr, false);
                pending_.erase(0, end + 1);
                if (!j.is_discarded() && j.is_object()) return j;
                continue;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
            pollfd p{from_, POLLIN, 0};
            if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0) {
                note("llama.cpp gave no answer within " + std::to_string(timeout_seconds) + " s; stopping it");
                kill(pid_, SIGKILL);
                return std::nullopt;
            }
            char buffer[4096];
            const ssize_t n = read(from_, buffer, sizeof buffer);
            if (n <= 0) return std::nullopt;
            pending_.append(buffer, static_cast<std::size_t>(n));
        }
    }

    pid_t pid_;
    FILE* to_;
    int from_;
    std::string pending_;
};

struct comparison_state {
    std::optional<std::string> unavailable;  ///< set once llama.cpp cannot run at all: ours then runs alone
    bool ever_started = false;
    std::string key;
    std::unique_ptr<llamacpp_peer> peer;
    std::map<std::string, double> own_f32_generation;  ///< "model/threads" -> our F32 tokens/s
};

comparison_state& comparison() {
    static comparison_state state;
    return state;
}

/// The child for this file and thread count, started on first use and kept for the following benchmark.
llamacpp_peer* peer_for(const bench_file& f, unsigned threads, std::uint32_t vocab) {
    auto& c = comparison();
    if (c.unavailable) return nullptr;
    const std::string key = f.path.string() + "/" + std::to_string(threads);
    if (c.key == key) return c.peer.get();
    c.peer.reset();
    c.key = key;
    std::string why;
    c.peer = llamacpp_peer::start(f, threads, vocab, why);
    if (c.peer) {
        c.ever_started = true;
    } else if (!c.ever_started) {
        c.unavailable = why;
        std::cout << "llama.cpp comparison off, our runtime runs alone: " << why << std::endl;
    } else {
        note("llama.cpp could not run " + f.name() + " on " + std::to_string(threads) + " threads: " + why);
    }
    return c.peer.get();
}

/// `node --version`, or why there is none: the context line of the report.
std::string node_version() {
    const std::string command = "'" + environment("COGQAT_NODE", "node") + "' --version 2>/dev/null";
    FILE* p = popen(command.c_str(), "r");
    if (!p) return "not run";
    char buffer[64] = {};
    const bool got = std::fgets(buffer, sizeof buffer, p) != nullptr;
    const int status = pclose(p);
    std::string v = got ? buffer : "";
    while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
    return status == 0 && !v.empty() ? v : "absent";
}

using cogqat::bench::median;

enum class phase { prompt, generation };

void run(benchmark::State& state, const bench_file& f, phase p, unsigned threads) {
    const loaded_model& m = model_for(f);
    state.SetLabel(m.holds);
    llamacpp_peer* peer = peer_for(f, threads, m.model.config.vocab_size);
    const char* command = p == phase::prompt ? "pp" : "tg";
    const double tokens = static_cast<double>(p == phase::prompt ? f.model->prompt_tokens : f.model->generated_tokens);
    auto ours = [&] {
        return p == phase::prompt ? our_prompt_seconds(m, *f.model, threads) : our_generation_seconds(m, *f.model, threads);
    };

    warm_up(m, threads);  // the peer warmed up before it said it was ready
    std::vector<double> our_seconds, their_seconds, ratios;
    double their_total = 0;
    for (auto _ : state) {
        // On a machine other work oversubscribes, ggml's spinning threads can run a hundred times slower
        // than on a quiet one; past this much llama.cpp time the remaining iterations time ours alone.
        if (peer && their_total > llamacpp_seconds_per_benchmark) {
            note("llama.cpp took " + std::to_string(their_total) + " s on " + command + " of " + f.name() +
                 "; the remaining iterations time ours alone");
            peer = nullptr;
        }
        const bool theirs_first = peer && their_seconds.size() % 2 == 1;
        std::optional<double> theirs;
        if (theirs_first) theirs = peer->measure(command);
        const double s = ours();
        if (peer && !theirs_first) theirs = peer->measure(command);
        state.SetIterationTime(s);
        our_seconds.push_back(s);
        if (peer && !theirs) {
            note("llama.cpp stopped answering on " + f.name() + "; the rest of this benchmark runs ours alone");
            comparison().peer.reset();
            peer = nullptr;
        }
        if (theirs) {
            their_total += *theirs;
            their_seconds.push_back(*theirs);
            ratios.push_back(*theirs / s);
        }
    }
    const double ours_tps = tokens / median(our_seconds);
    state.counters["tokens_per_second"] = ours_tps;
    state.counters["threads"] = threads;
    state.counters["file_mb"] = static_cast<double>(fs::file_size(f.path)) / 1e6;
    if (!ratios.empty()) {
        state.counters["llamacpp_tokens_per_second"] = tokens / median(their_seconds);
        state.counters["vs_llamacpp"] = median(ratios);
    }
    const std::string own_key = f.model->name + "/" + std::to_string(threads);
    if (p == phase::generation && f.variant == "f32") comparison().own_f32_generation[own_key] = ours_tps;
    if (p == phase::generation && f.four_bit()) {
        if (const auto it = comparison().own_f32_generation.find(own_key); it != comparison().own_f32_generation.end())
            state.counters["vs_own_f32"] = ours_tps / it->second;
    }
}

void register_benchmarks(const std::vector<bench_file>& files, const std::vector<unsigned>& thread_counts) {
    for (const auto& f : files) {
        for (unsigned t : thread_counts) {
            const std::string suffix = "/t" + std::to_string(t);
            benchmark::RegisterBenchmark(("pp/" + f.name() + "/" + std::to_string(f.model->prompt_tokens) + suffix).c_str(),
                                         [f, t](benchmark::State& s) { run(s, f, phase::prompt, t); })
                    ->UseManualTime()
                    ->Iterations(f.model->pp_iterations)
                    ->Unit(benchmark::kMillisecond);
            benchmark::RegisterBenchmark(("tg/" + f.name() + "/" + std::to_string(f.model->generated_tokens) + suffix).c_str(),
                                         [f, t](benchmark::State& s) { run(s, f, phase::generation, t); })
                    ->UseManualTime()
                    ->Iterations(f.model->tg_iterations)
                    ->Unit(benchmark::kMillisecond);
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    // A llama.cpp child that died must show up as a failed write, not end this process.
    std::signal(SIGPIPE, SIG_IGN);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    try {
        std::vector<bench_file> files;
        const fs::path shared = environment("COGQAT_SHARED_DIR", COGQAT_BENCH_SHARED_DIR);
        const fs::path stories_dir = shared / "models" / "stories260K";
        if (fs::exists(stories_dir / "stories260K.bin") && fs::exists(stories_dir / "tok512.bin")) {
            for (auto& f :
                 prepare(stories, [&] { return cogqat::io::read_llama2c(stories_dir / "stories260K.bin", stories_dir / "tok512.bin"); }))
                files.push_back(std::move(f));
        } else {
            std::cout << "stories260K skipped: " << (stories_dir / "stories260K.bin").string() << " not found (set COGQAT_SHARED_DIR)"
                      << std::endl;
        }
        for (auto& f : prepare(synthetic, [] { return cogqat::make_synthetic_llama(1, synthetic_config); })) files.push_back(std::move(f));

        std::vector<unsigned> thread_counts{1};
        if (const unsigned all = cogqat::resolve_threads(0); all > 1) thread_counts.push_back(all);
        register_benchmarks(files, thread_counts);
        benchmark::AddCustomContext("simd_isa", std::string(cogqat::dispatch::active().isa));
        benchmark::AddCustomContext("node", node_version());
        benchmark::AddCustomContext("bench_cache", cache_dir().string());
        benchmark::RunSpecifiedBenchmarks();
        comparison().peer.reset();
    } catch (const std::exception& e) {
        std::cerr << "cogqat_bench_runtime: " << e.what() << std::endl;
        return 1;
    }
    benchmark::Shutdown();
    return 0;
}
