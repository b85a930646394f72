#pragma once
// Exact rewrites of a float Llama model that let the block formats fit it better, the function unchanged:
//  - a classifier that is a bit-identical copy of the token embedding is dropped (llama.cpp then uses the
//    embedding as classifier), so the same weights are not stored twice;
//  - the feed-forward width is padded with zero units up to a multiple of the block size. A padded unit's
//    gate and up rows are zero, so silu(0) * 0 = 0 exactly, whatever its ffn_down column holds; ffn_down's
//    rows then fit 32-value blocks instead of falling back to f16. Zero rows quantize to zero blocks in
//    every format, so the padding stays exact after quantization too.

#include <cstdint>
#include <string>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/model/llama_model.hpp"
#include "cogqat/model/llama_weights.hpp"

namespace cogqat {

namespace detail {
inline float_tensor* find_tensor(llama_weights& w, std::string_view name) {
    for (auto& t : w.tensors)
        if (t.name == name) return &t;
    return nullptr;
}
}  // namespace detail

/// Drops output.weight when it holds exactly token_embd.weight's values. Returns whether it did.
inline bool drop_duplicate_classifier(llama_weights& w) {
    const auto* embedding = detail::find_tensor(w, "token_embd.weight");
    const auto* output = detail::find_tensor(w, "output.weight");
    if (!embedding || !output || embedding->shape != output->shape) return false;
    for (std::size_t i = 0; i < embedding->values.size(); ++i)
        if (std::bit_cast<std::uint32_t>(embedding->values[i]) != std::bit_cast<std::uint32_t>(output->values[i])) return false;
    std::erase_if(w.tensors, [](const float_tensor& t) { return t.name == "output.weight"; });
    return true;
}

/// Pads the feed-forward width up to a multiple of `multiple` with zero units (see the file comment).
/// Returns the new width (the old one when it already fits). Throws format_error for tensors of the wrong shape.
inline std::uint32_t pad_feed_forward(llama_weights& w, std::uint32_t multiple) {
    if (multiple == 0) throw invalid_argument_error("pad_feed_forward: the multiple must be positive");
    const std::uint32_t old_width = w.config.hidden_dim;
    const std::uint32_t width = (old_width + multiple - 1) / multiple * multiple;
    if (width == old_width) return width;
    const std::uint64_t dim = w.config.dim;
    for (std::uint32_t l = 0; l < w.config.n_layers; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        for (const char* name : {"ffn_gate.weight", "ffn_up.weight"}) {
            auto* t = detail::find_tensor(w, p + name);
            if (!t || t->shape != std::vector<std::uint64_t>{dim, old_width})
                throw format_error("pad_feed_forward: " + p + name + " is missing or not [dim, ffn]");
            t->values.resize(static_cast<std::size_t>(dim * width), 0.0f);  // appended rows: zero units
            t->shape[1] = width;
        }
        auto* down = detail::find_tensor(w, p + "ffn_down.weight");
        if (!down || down->shape != std::vector<std::uint64_t>{old_width, dim})
            throw format_error("pad_feed_forward: " + p + "ffn_down.weight is missing or not [ffn, dim]");
        std::vector<float> padded(static_cast<std::size_t>(dim * width), 0.0f);
        for (std::size_t r = 0; r < dim; ++r)
            std::copy_n(down->values.begin() + static_cast<std::ptrdiff_t>(r * old_width), old_width,
                        padded.begin() + static_cast<std::ptrdiff_t>(r * width));
        down->values = std::move(padded);
        down->shape[0] = width;
    }
    w.config.hidden_dim = width;
    return width;
}

}  // namespace cogqat
