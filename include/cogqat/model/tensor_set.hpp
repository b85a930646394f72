#pragma once
// Access to a llama model's tensors by schema entry, for the exact transforms (model/rotate.hpp,
// model/smooth.hpp). They are written once for any container shaped like llama_weights, so that the same
// code runs on float weights (what is written to GGUF) and on double copies (how the tests show the
// transforms are exact, free of float rounding).

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <ranges>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/matrix_shape.hpp"
#include "cogqat/model/llama_schema.hpp"
#include "cogqat/model/llama_weights.hpp"

namespace cogqat {

/// A llama model as named tensors of real values: llama_weights, or anything with its members (config;
/// tensors, each with name, GGUF shape and row-major values of float or double).
template <class W>
concept LlamaTensorSet = requires(W& w) {
    { w.config } -> std::convertible_to<llama_config>;
    { w.tensors.front().name } -> std::convertible_to<std::string>;
    { w.tensors.front().shape } -> std::convertible_to<std::vector<std::uint64_t>>;
    requires std::floating_point<std::ranges::range_value_t<decltype(w.tensors.front().values)>>;
};

/// The value type of a LlamaTensorSet's tensors.
template <LlamaTensorSet W>
using tensor_value_t = std::ranges::range_value_t<decltype(std::declval<W&>().tensors.front().values)>;

/// The tensor of `w` named `name`, or nullptr.
template <LlamaTensorSet W>
[[nodiscard]] auto* find_tensor_named(W& w, std::string_view name) {
    for (auto& t : w.tensors)
        if (t.name == name) return &t;
    return static_cast<decltype(&w.tensors.front())>(nullptr);
}

/// The tensor of `w` that holds `parameter` of `layer` (no_layer for a model-wide one). format_error naming it
/// when it is missing or not of the shape the config gives it; `who` names the caller in the message.
template <LlamaTensorSet W>
[[nodiscard]] auto& require_tensor(W& w, llama_parameter parameter, std::size_t layer, std::string_view who) {
    const tensor_schema& s = llama_tensor(parameter);
    const std::string name = s.gguf_name(s.per_layer ? layer : no_layer);
    auto* t = find_tensor_named(w, name);
    const auto shape = s.gguf_shape(w.config);
    if (!t) throw format_error(std::string(who) + ": the model has no " + name);
    if (t->shape != shape || t->values.size() != s.elements(w.config))
        throw format_error(std::string(who) + ": " + name + " is " + shape_text(t->shape) + ", not " + shape_text(shape));
    return *t;
}

/// Whether `w` has its own classifier (else the token embedding is the classifier).
template <LlamaTensorSet W>
[[nodiscard]] bool has_own_classifier(W& w) {
    return find_tensor_named(w, llama_tensor(llama_parameter::output).name) != nullptr;
}

}  // namespace cogqat
