#pragma once
// What the two QAT pipelines share: how a tensor's first blocks are chosen, the optimizer's settings, and
// what the report says of each tensor.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cogqat/format/ggml_type.hpp"

namespace cogqat {

/// How a tensor's blocks are first chosen when it is quantized.
enum class qat_init {
    gptq,       ///< Hessian-aware rounding on the synthetic inputs (data-free PTQ), where the format takes a scale
    reference,  ///< ggml's round-to-nearest, latent = the float weights
};

struct qat_optimizer_settings {
    float learning_rate = 0.02f;        ///< latent weights, in units of each tensor's quantization step per update
    float scale_learning_rate = 5e-4f;  ///< learned block scales, relative (0.0005 = 0.05% of the scale per update)
    std::size_t warmup_steps = 10;
    float final_ratio = 0.05f;   ///< the learning rate at the end, as a share of the peak (cosine decay)
    float gradient_clip = 1.0f;  ///< global L2 norm; 0 disables clipping
    float beta1 = 0.9f, beta2 = 0.999f;
    float weight_decay = 0.0f;
};

/// A tensor of a trained model as written.
struct qat_tensor {
    std::string name;
    std::vector<std::uint64_t> shape;
    ggml_type type = ggml_type::f32;
    std::uint64_t bytes = 0;
    std::string rule;  ///< why this type
};

}  // namespace cogqat
