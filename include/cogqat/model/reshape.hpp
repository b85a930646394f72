#pragma once
// Exact rewrites of a float Llama model that let the block formats fit it better, the function unchanged:
//  - a classifier that is a bit-identical copy of the token embedding is dropped (llama.cpp then uses the
//    embedding as classifier), so the same weights are not stored twice;
//  - the feed-forward width is padded with zero units up to a multiple of the block size. A padded unit's
//    gate and up rows are zero, so silu(0) * 0 = 0 exactly, whatever its ffn_down column holds; ffn_down's
//    rows then fit 32-value blocks instead of falling back to f16. Zero rows quantize to zero blocks in
//    every format, so the padding stays exact after quantization too.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/matrix_shape.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/model/llama_model.hpp"
#include "cogqat/model/llama_schema.hpp"
#include "cogqat/model/llama_weights.hpp"
#include "cogqat/model/tensor_set.hpp"

namespace cogqat {

/// Drops output.weight when it holds exactly token_embd.weight's values. Returns whether it did.
inline bool drop_duplicate_classifier(llama_weights& w) {
    const std::string_view classifier = llama_tensor(llama_parameter::output).name;
    const auto* embedding = find_tensor_named(w, llama_tensor(llama_parameter::token_embedding).name);
    const auto* output = find_tensor_named(w, classifier);
    if (!embedding || !output || embedding->shape != output->shape) return false;
    for (std::size_t i = 0; i < embedding->values.size(); ++i)
        if (std::bit_cast<std::uint32_t>(embedding->values[i]) != std::bit_cast<std::uint32_t>(output->values[i])) return false;
    std::erase_if(w.tensors, [&](const float_tensor& t) { return t.name == classifier; });
    return true;
}

/// The values of tensor `s` in a model of config `from` (row-major, its GGUF shape there) laid out for config
/// `to`, whose extents are at least as large: each row's values first, zeros after them, zero rows at the end.
inline void pad_to_shape(const tensor_schema& s, const llama_config& from, const llama_config& to, std::vector<float>& values) {
    const auto old_shape = s.gguf_shape(from), new_shape = s.gguf_shape(to);
    const std::uint64_t old_cols = old_shape[0], rows = s.is_vector() ? 1 : old_shape[1];
    if (values.size() != old_cols * rows)
        throw shape_error("pad_to_shape: " + std::string(s.name) + " holds " + std::to_string(values.size()) + " values, not " +
                          shape_text(old_shape));
    std::vector<float> padded(static_cast<std::size_t>(s.elements(to)), 0.0f);
    for (std::uint64_t r = 0; r < rows; ++r)
        std::copy_n(values.begin() + static_cast<std::ptrdiff_t>(r * old_cols), old_cols,
                    padded.begin() + static_cast<std::ptrdiff_t>(r * new_shape[0]));
    values = std::move(padded);
}

/// Pads the feed-forward width up to a multiple of `multiple` with zero units (see the file comment): the
/// tensors whose rows are the feed-forward units (gate, up) get zero rows, those whose rows are that wide
/// (down) zero columns. Returns the new width (the old one when it already fits). Throws format_error for
/// a tensor of the wrong shape.
inline std::uint32_t pad_feed_forward(llama_weights& w, std::uint32_t multiple) {
    if (multiple == 0) throw invalid_argument_error("pad_feed_forward: the multiple must be positive");
    const std::uint32_t old_width = w.config.hidden_dim;
    const std::uint32_t width = (old_width + multiple - 1) / multiple * multiple;
    if (width == old_width) return width;
    llama_config padded_config = w.config;
    padded_config.hidden_dim = width;
    for_each_llama_tensor(w.config, true, [&](const tensor_schema& s, std::size_t layer) {
        const bool unit_rows = s.rows == config_extent::hidden, unit_columns = s.row_length == config_extent::hidden;
        if (!unit_rows && !unit_columns) return;
        const std::string name = s.gguf_name(layer);
        auto* t = find_tensor_named(w, name);
        if (!t || t->shape != s.gguf_shape(w.config))
            throw format_error("pad_feed_forward: " + name + " is missing or not " + shape_text(s.gguf_shape(w.config)));
        pad_to_shape(s, w.config, padded_config, t->values);
        t->shape = s.gguf_shape(padded_config);
    });
    w.config.hidden_dim = width;
    return width;
}

}  // namespace cogqat
