#pragma once
// A model taken one decoder layer at a time: the layer decoded to float from the (mapped) model, and run over
// the residual stream of every calibration position at once. What the layer-by-layer pipelines (block-wise
// QAT, the streaming sensitivity analysis) share, so that memory holds one layer's floats and the stream,
// never the whole model's.

#include <cstddef>
#include <map>
#include <span>
#include <type_traits>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/parallel.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/model/llama_backward.hpp"
#include "cogqat/model/llama_model.hpp"
#include "cogqat/model/llama_schema.hpp"
#include "cogqat/model/reshape.hpp"

namespace cogqat::detail::layerwise {

/// Parameters of one decoder layer (config.n_layers = 1), so that the schema's visitors reach its tensors.
[[nodiscard]] inline llama_parameters one_layer(const llama_config& c) {
    llama_parameters p;
    p.config = c;
    p.config.n_layers = 1;
    p.layers.resize(1);
    return p;
}

/// Calls f(tensor) for each per-layer tensor of c's architecture, in the schema's order.
template <class F>
void for_each_layer_tensor(const llama_config& c, F&& f) {
    for (const auto& t : llama_tensors)
        if (t.per_layer && t.present_in(c, false)) f(t);
}

/// Layer `l` of the mapped model, decoded to float and laid out for `shape` (the model's config, its
/// feed-forward width possibly padded with zero units).
[[nodiscard]] inline llama_parameters decode_layer(const llama_model& m, std::size_t l, const llama_config& shape) {
    auto p = one_layer(shape);
    p.rope_freqs = m.rope_freqs;
    for_each_layer_tensor(m.config, [&](const tensor_schema& t) {
        std::vector<float>& out = p.values(t.parameter, 0);
        visit_parameter(m, t.parameter, l, [&](const auto& member) {
            if constexpr (std::is_same_v<std::remove_cvref_t<decltype(member)>, weight_matrix>) {
                out.resize(member.rows * member.cols);
                dequantize(member.type, member.bytes(), out);
            } else {
                out.assign(member.begin(), member.end());
            }
        });
        if (shape.hidden_dim != m.config.hidden_dim) pad_to_shape(t, m.config, shape, out);
    });
    return p;
}

/// The matrices whose inputs a layer's other matrices share: K and V read Q's input, up reads gate's.
inline constexpr llama_parameter input_readers[] = {llama_parameter::wq, llama_parameter::wo, llama_parameter::gate, llama_parameter::down};

/// The matrix of input_readers whose input `p` reads.
[[nodiscard]] constexpr llama_parameter input_reader_of(llama_parameter p) noexcept {
    switch (p) {
        case llama_parameter::wk:
        case llama_parameter::wv:
            return llama_parameter::wq;
        case llama_parameter::up:
            return llama_parameter::gate;
        default:
            return p;
    }
}

/// out = layer W (shape `c`) applied to `in`, sequences of `length` positions one after another, threads over
/// sequences; when `inputs` is given, also the rows each matrix of input_readers was fed, by that matrix, in
/// position order.
inline void forward_layer(const llama_config& c, const llama_parameters& W, std::span<const float> in, std::vector<float>& out,
                          std::size_t length, unsigned threads, std::map<llama_parameter, std::vector<float>>* inputs = nullptr) {
    const std::size_t per_sequence = length * c.dim;
    if (length == 0 || in.size() % per_sequence != 0)
        throw shape_error("forward_layer: " + std::to_string(in.size()) + " stream values are not sequences of " + std::to_string(length) +
                          " positions of width " + std::to_string(c.dim));
    const std::size_t sequences = in.size() / per_sequence, positions = sequences * length;
    out.resize(in.size());
    if (inputs)
        for (auto p : input_readers) (*inputs)[p].resize(positions * llama_tensor(p).shape(c).cols);
    parallel_for(sequences, threads, [&](std::size_t first, std::size_t last) {
        llama_layer_pass pass(c);
        for (std::size_t s = first; s < last; ++s) {
            const auto y = pass.forward(W.layers[0], W.rope_freqs, in.subspan(s * per_sequence, per_sequence));
            std::copy(y.begin(), y.end(), out.begin() + static_cast<std::ptrdiff_t>(s * per_sequence));
            if (!inputs) continue;
            for (auto p : input_readers) {
                const auto x = pass.matrix_input(p);
                auto& to = inputs->at(p);
                std::copy(x.begin(), x.end(), to.begin() + static_cast<std::ptrdiff_t>(s * x.size()));
            }
        }
    });
}

}  // namespace cogqat::detail::layerwise
