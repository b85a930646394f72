#pragma once
// `cogqat quantize` with a policy, and with --auto: what the default job runs too.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <cogqat/gguf/split.hpp>

namespace cogqat::cli {

struct quantize_arguments {
    std::string input, output, preset = "default", json_file;
    std::string imatrix_file;  ///< --imatrix: llama.cpp's imatrix GGUF or legacy .dat
    /// The data-free importance for the types llama.cpp refuses without an imatrix (--calib, --calib-tokens, --seed).
    std::string importance_calib = "self";
    std::size_t importance_tokens = 2048;
    std::uint64_t importance_seed = 1;
    std::vector<std::string> tensor_types;
    unsigned threads = 0;
    bool quiet = false;
    gguf::split_limits split;  ///< --split-max-size, --split-max-tensors
};

/// --auto's own options.
struct auto_arguments {
    std::optional<double> target_bpw, memory_reduction;
    std::optional<std::uint64_t> target_bytes;
    std::string calib = "self";
    std::size_t calib_tokens = 2048;
    std::uint64_t seed = 1;
    std::optional<double> max_kl;
    double accuracy_threshold = 0.98;
    bool no_pad = false, no_tie = false, no_gptq = false;
    std::string html_file;
    std::vector<std::string> candidates;
    std::string rotate = "none";
    bool smooth = false;
    std::string sensitivity = "auto";    ///< auto, exact or blockwise
    std::string stream_layers = "auto";  ///< auto, on (one layer at a time) or off (the whole model)
    std::size_t check_tokens = 512;
};

int run_quantize(const quantize_arguments& a);
int run_auto_quantize(const quantize_arguments& a, const auto_arguments& automatic);

}  // namespace cogqat::cli
