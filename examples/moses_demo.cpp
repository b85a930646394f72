// moses-demo: MOSES program evolution on its classic problems, with constant knobs stored as 6-bit codes
// (the default) or as floats.
//
//   moses-demo --problem parity|mux|maj|sr|rule -k K --seed S --max-evals N [--values q6|float] [--threads T] [--json]
//
// -k is the number of inputs for parity, mux (3, 6, 11 or 20) and maj (odd), the degree for sr
// (x + x^2 + ... + x^k on 20 points), and the number of continuous features for rule (a threshold rule over
// the first three, 10% of the labels flipped). Without -k: 4-parity, 6-mux, 5-majority, k = 2 regression,
// 4 features.

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>

#include "cogqat/cog/moses/moses.hpp"
#include "cogqat/cog/moses/problems.hpp"
#include "cogqat/cog/moses/program.hpp"
#include "cogqat/cog/moses/value_policy.hpp"
#include "cogqat/core/error.hpp"

namespace {

/// The text as a JSON string literal.
std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char buffer[8];
            std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
            out += buffer;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

/// A double as JSON (which has no NaN or Inf: those become null).
std::string json_number(double v) {
    if (!std::isfinite(v)) return "null";
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.10g", v);
    return buffer;
}

std::size_t default_k(const std::string& problem) {
    if (problem == "mux") return 6;
    if (problem == "maj") return 5;
    if (problem == "sr") return 2;
    return 4;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace cogqat::cog::moses;
    CLI::App app{"moses-demo: MOSES program evolution with quantized constants"};
    std::string problem_name = "parity";
    std::size_t k = 0;
    std::uint64_t seed = 1;
    std::size_t max_evals = 200000;
    std::string values = "q6";
    bool as_json = false;
    app.add_option("--problem", problem_name,
                   "parity (even parity), mux (multiplexer), maj (majority), sr (regression of x + ... + x^k) or rule (noisy threshold "
                   "rule over continuous features)")
            ->check(CLI::IsMember({"parity", "mux", "maj", "sr", "rule"}));
    app.add_option("-k", k, "Inputs (parity, mux, maj, rule) or degree (sr); default 4, 6, 5, 2 or 4");
    unsigned threads = 1;
    app.add_option("--threads", threads, "Threads scoring a deme (0: one per hardware thread); the result does not depend on it")
            ->check(CLI::Range(0u, 1024u));
    app.add_option("--seed", seed, "Random seed; a seed fixes the run");
    app.add_option("--max-evals", max_evals, "Budget of scored programs")->check(CLI::PositiveNumber);
    app.add_option("--values", values, "Storage of constant knobs: q6 (6-bit codes, a scale per 8) or float")
            ->check(CLI::IsMember({"q6", "float"}));
    app.add_flag("--json", as_json, "One JSON line: solved, evaluations, seconds, program, ...");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }

    try {
        if (k == 0) k = default_k(problem_name);
        const problem prob = make_problem(problem_name, k);
        moses_params params;
        params.seed = seed;
        params.max_evals = max_evals;
        params.threads = threads;
        const moses_result r = values == "float" ? run_moses<float_values>(prob, params) : run_moses<q6_values>(prob, params);

        if (as_json) {
            std::cout << "{\"problem\":" << json_string(problem_name) << ",\"k\":" << k << ",\"values\":" << json_string(values)
                      << ",\"seed\":" << seed << ",\"solved\":" << (r.solved ? "true" : "false") << ",\"evaluations\":" << r.evaluations
                      << ",\"seconds\":" << json_number(r.seconds) << ",\"program\":" << json_string(to_string(r.best))
                      << ",\"score\":" << json_number(r.score.raw) << ",\"complexity\":" << r.score.complexity << ",\"demes\":" << r.demes
                      << "}\n";
        } else {
            std::cout << "problem:     " << prob.name << " (seed " << seed << ", constants " << values << ", budget " << max_evals << ")\n"
                      << "solution:    " << to_string(r.best) << '\n'
                      << "score:       " << r.score.raw << " (complexity " << r.score.complexity << ", penalized " << r.score.penalized
                      << ")\n"
                      << "perfect:     " << (r.solved ? "yes" : "no") << '\n'
                      << "evaluations: " << r.evaluations << " in " << r.demes << " demes\n"
                      << "seconds:     " << r.seconds << '\n';
        }
        return 0;
    } catch (const cogqat::error& e) {
        std::cerr << "moses-demo: error: " << e.what() << '\n';
        return 1;
    }
}
