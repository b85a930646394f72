#pragma once
// A weight tensor trained through its GGUF quantization. The latent float weights are what the optimizer
// moves; the forward gives exactly the values llama.cpp will decode from the blocks export writes, so
// what was trained is what ships. Gradients reach the latent weights by the straight-through estimator
// (zero where a weight is clamped to the outermost level), and, for the 32-value formats whose block
// stores a plain fp16 scale (and min), reach learned per-block step sizes as in LSQ.
//
// The learned parameters are scale-free: a block's scale is base_scale * rho and its min is
// base_min + base_scale * mu, with rho = 1 and mu = 0 at the start. One learning rate then suits every
// block whatever its magnitude (a step of 1e-3 changes any scale by 0.1%).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/float16.hpp"
#include "cogqat/core/strict_fp.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/format/legacy_formats.hpp"
#include "cogqat/format/weighted_block_search.hpp"
#include "cogqat/quant/gptq.hpp"

namespace cogqat {

/// How a fake-quantized type passes gradients.
enum class fake_quant_kind {
    exact,          ///< f32: the forward is the latent itself
    rounded,        ///< f16, bf16, the K formats: the forward is ggml's encoding of the latent; identity gradient
    learned_scale,  ///< q4_0, q4_1, q5_0, q5_1, q8_0: nearest levels under learned block scales; STE + LSQ
};

[[nodiscard]] inline fake_quant_kind fake_quant_kind_of(ggml_type type) noexcept {
    if (type == ggml_type::f32) return fake_quant_kind::exact;
    return gptq_supports(type) ? fake_quant_kind::learned_scale : fake_quant_kind::rounded;
}

class fake_quantized_tensor {
public:
    fake_quantized_tensor() = default;

    /// Starts from an encoded tensor: the block parameters are its stored scales (and mins), and the
    /// latent weights are `latent` if given (rows * cols values), else the decoded values, so that the
    /// forward reproduces `bytes` exactly (for the K formats, whose encoding is ggml's search run again on the
    /// latent, only when `latent` is what `bytes` were made from). Throws shape_error when the sizes do not fit the type and
    /// value_error on a non-finite latent value.
    [[nodiscard]] static fake_quantized_tensor from_encoded(ggml_type type, std::size_t rows, std::size_t cols,
                                                            std::span<const std::byte> bytes, std::span<const float> latent = {}) {
        fake_quantized_tensor t;
        t.type_ = type, t.rows_ = rows, t.cols_ = cols;
        const std::string context = "fake_quantized_tensor " + std::string(info(type).name);
        detail::require_whole_blocks(type, cols, context + " (row length)");
        if (bytes.size() != storage_size(type, rows * cols))
            throw shape_error(context + ": " + std::to_string(bytes.size()) + " bytes for a " + std::to_string(rows) + " x " +
                              std::to_string(cols) + " tensor, which takes " + std::to_string(storage_size(type, rows * cols)));
        if (latent.empty()) {
            t.latent_ = dequantize(type, bytes);
        } else {
            if (latent.size() != rows * cols)
                throw shape_error(context + ": " + std::to_string(latent.size()) + " latent values for a " + std::to_string(rows) + " x " +
                                  std::to_string(cols) + " tensor");
            t.latent_.assign(latent.begin(), latent.end());
        }
        detail::require_finite(t.latent_, context + " latent weights");
        if (t.kind() == fake_quant_kind::learned_scale) {
            detail::visit_directly_scaled(type, [&]<class F>() {
                const std::size_t blocks = rows * cols / F::block_size;
                t.base_.resize(blocks);
                t.parameters_.resize(blocks * parameters_per_block<F>());
                for (std::size_t b = 0; b < blocks; ++b) {
                    t.base_[b] = F::sub_block_scale(bytes.data() + b * F::type_size, 0);
                    t.parameters_[b * parameters_per_block<F>()] = 1.0f;
                }
            });
        }
        return t;
    }

    /// Starts from float weights quantized by ggml's reference (the round-to-nearest baseline), latent = values.
    [[nodiscard]] static fake_quantized_tensor from_values(ggml_type type, std::size_t rows, std::size_t cols,
                                                           std::span<const float> values) {
        if (values.size() != rows * cols)
            throw shape_error("fake_quantized_tensor " + std::string(info(type).name) + ": " + std::to_string(values.size()) +
                              " values for a " + std::to_string(rows) + " x " + std::to_string(cols) + " tensor");
        detail::require_whole_blocks(type, cols, "fake_quantized_tensor " + std::string(info(type).name) + " (row length)");
        return from_encoded(type, rows, cols, quantize(type, values), values);
    }

    [[nodiscard]] ggml_type type() const noexcept { return type_; }
    [[nodiscard]] fake_quant_kind kind() const noexcept { return fake_quant_kind_of(type_); }
    [[nodiscard]] std::size_t rows() const noexcept { return rows_; }
    [[nodiscard]] std::size_t cols() const noexcept { return cols_; }

    /// The weights the optimizer moves.
    [[nodiscard]] std::span<float> latent() noexcept { return latent_; }
    [[nodiscard]] std::span<const float> latent() const noexcept { return latent_; }
    /// Learned block parameters, per block (rho) or (rho, mu) for formats with a min; empty for other kinds.
    [[nodiscard]] std::span<float> parameters() noexcept { return parameters_; }
    [[nodiscard]] std::span<const float> parameters() const noexcept { return parameters_; }
    /// The scales (and mins) the parameters are relative to, one per block; empty unless learned_scale.
    [[nodiscard]] std::span<const affine_scale> base_scales() const noexcept { return base_; }

    /// Restores learned state (a checkpoint): sizes must match this tensor's.
    void restore(std::span<const float> latent, std::span<const affine_scale> base, std::span<const float> parameters) {
        if (latent.size() != latent_.size() || base.size() != base_.size() || parameters.size() != parameters_.size())
            throw shape_error("fake_quantized_tensor::restore: state of another shape (" + std::to_string(latent.size()) + "/" +
                              std::to_string(base.size()) + "/" + std::to_string(parameters.size()) + " values, expected " +
                              std::to_string(latent_.size()) + "/" + std::to_string(base_.size()) + "/" +
                              std::to_string(parameters_.size()) + ")");
        std::copy(latent.begin(), latent.end(), latent_.begin());
        std::copy(base.begin(), base.end(), base_.begin());
        std::copy(parameters.begin(), parameters.end(), parameters_.begin());
    }

    /// The GGUF bytes of the current state: what export writes. Throws value_error if training has made a
    /// latent weight or a scale non-finite.
    [[nodiscard]] std::vector<std::byte> encode() const {
        check_finite("encode");
        if (kind() != fake_quant_kind::learned_scale) return quantize(type_, latent_);
        std::vector<std::byte> out(storage_size(type_, latent_.size()));
        detail::visit_directly_scaled(type_, [&]<class F>() {
            for (std::size_t b = 0; b < base_.size(); ++b)
                encode_block<F>(latent_.data() + b * F::block_size, block_scale<F>(b), out.data() + b * F::type_size);
        });
        return out;
    }

    /// out = the dequantization of encode(), computed without the bytes (rows * cols values).
    void forward(std::span<float> out) const {
        require_size(out.size(), "forward output");
        check_finite("forward");
        switch (kind()) {
            case fake_quant_kind::exact:
                std::copy(latent_.begin(), latent_.end(), out.begin());
                return;
            case fake_quant_kind::rounded:
                dequantize(type_, quantize(type_, latent_), out);
                return;
            case fake_quant_kind::learned_scale:
                detail::visit_directly_scaled(type_, [&]<class F>() {
                    for (std::size_t b = 0; b < base_.size(); ++b) {
                        const affine_scale s = block_scale<F>(b);
                        for (std::size_t i = b * F::block_size; i < (b + 1) * F::block_size; ++i)
                            out[i] = decode_level<F>(s, nearest_level<F>(latent_[i], s));
                    }
                });
                return;
        }
    }

    /// Given dL/d(forward output), writes dL/dlatent (straight-through, zero where the weight is clamped)
    /// and dL/dparameters (LSQ: d(decoded)/d(scale) = level - x/scale inside the range, the clamped level
    /// outside; the min's derivative is 0 inside, -1 outside). grad_parameters may be empty to skip them.
    void backward(std::span<const float> grad_out, std::span<float> grad_latent, std::span<float> grad_parameters) const {
        require_size(grad_out.size(), "backward gradient");
        require_size(grad_latent.size(), "backward latent gradient");
        if (!grad_parameters.empty() && grad_parameters.size() != parameters_.size())
            throw shape_error("fake_quantized_tensor::backward: " + std::to_string(grad_parameters.size()) + " parameter gradients for " +
                              std::to_string(parameters_.size()) + " parameters");
        if (kind() != fake_quant_kind::learned_scale) {
            std::copy(grad_out.begin(), grad_out.end(), grad_latent.begin());
            return;
        }
        detail::visit_directly_scaled(type_, [&]<class F>() {
            constexpr auto range = weight_levels<F>;
            constexpr std::size_t per_block = parameters_per_block<F>();
            for (std::size_t b = 0; b < base_.size(); ++b) {
                const affine_scale s = block_scale<F>(b);
                double d_scale = 0.0, d_min = 0.0;
                for (std::size_t i = b * F::block_size; i < (b + 1) * F::block_size; ++i) {
                    if (s.scale == 0.0f) {
                        grad_latent[i] = 0.0f;
                        continue;
                    }
                    const double u = (static_cast<double>(latent_[i]) + s.min) / s.scale;
                    const int unclamped = detail::nearest_int(static_cast<float>((latent_[i] + s.min) / s.scale)) + F::level_offset;
                    const int level = std::clamp(unclamped, range.lowest, range.highest);
                    const bool inside = unclamped == level;
                    grad_latent[i] = inside ? grad_out[i] : 0.0f;
                    const double step = static_cast<double>(level - F::level_offset);
                    d_scale += grad_out[i] * (inside ? step - u : step);
                    if (!inside) d_min -= grad_out[i];
                }
                if (grad_parameters.empty()) continue;
                // Chain rule through scale = base * rho and min = base_min + base * mu.
                grad_parameters[b * per_block] = static_cast<float>(d_scale * base_[b].scale);
                if constexpr (F::has_min) grad_parameters[b * per_block + 1] = static_cast<float>(d_min * base_[b].scale);
            }
        });
    }

private:
    template <class F>
    static constexpr std::size_t parameters_per_block() noexcept {
        return F::has_min ? 2 : 1;
    }

    /// The block's scale and min as the file stores them (fp16), clamped to what fp16 can hold.
    template <class F>
    [[nodiscard]] affine_scale block_scale(std::size_t b) const noexcept {
        constexpr float fp16_max = 65504.0f;
        constexpr std::size_t per_block = parameters_per_block<F>();
        const float rho = parameters_[b * per_block];
        float scale = base_[b].scale * rho;
        float min = base_[b].min;
        if constexpr (F::has_min) min = base_[b].min + base_[b].scale * parameters_[b * per_block + 1];
        scale = std::clamp(scale, -fp16_max, fp16_max);
        min = std::clamp(min, -fp16_max, fp16_max);
        return as_stored({scale, min});
    }

    void require_size(std::size_t n, const char* what) const {
        if (n != latent_.size())
            throw shape_error(std::string("fake_quantized_tensor: ") + what + " holds " + std::to_string(n) + " values, the tensor " +
                              std::to_string(latent_.size()));
    }

    void check_finite(const char* operation) const {
        const std::string context = std::string("fake_quantized_tensor::") + operation;
        detail::require_finite(latent_, context + " latent weights");
        detail::require_finite(parameters_, context + " block parameters");
    }

    ggml_type type_ = ggml_type::f32;
    std::size_t rows_ = 0, cols_ = 0;
    std::vector<float> latent_;
    std::vector<affine_scale> base_;
    std::vector<float> parameters_;
};

/// Gradients of the generic `quantizer<Bits, Granularity, Mode>::fake_quantize` at `x` (row-major), given the
/// tensor `q` it quantized x into. grad_x receives the straight-through gradient: grad_out where x lies inside
/// its group's level range, zero where it was clamped (a group of scale 0 passes it unchanged, since the
/// quantizer derives new parameters on the next call). grad_scale, if not empty (one per group), receives
/// the LSQ derivative with respect to each group's effective scale: the sum over the group of grad_out times
/// (level - zero_point - x / scale) inside the range, (level - zero_point) where clamped. Throws shape_error
/// when the sizes do not match q.
template <class Tensor>
void fake_quantize_backward(std::span<const float> x, const Tensor& q, std::span<const float> grad_out, std::span<float> grad_x,
                            std::span<float> grad_scale = {}) {
    if (x.size() != q.size() || grad_out.size() != q.size() || grad_x.size() != q.size())
        throw shape_error("fake_quantize_backward: " + std::to_string(x.size()) + " values, " + std::to_string(grad_out.size()) + " and " +
                          std::to_string(grad_x.size()) + " gradients for a tensor of " + std::to_string(q.size()));
    if (!grad_scale.empty() && grad_scale.size() != q.group_count())
        throw shape_error("fake_quantize_backward: " + std::to_string(grad_scale.size()) + " scale gradients for " +
                          std::to_string(q.group_count()) + " groups");
    const std::size_t length = q.group_length();
    for (std::size_t g = 0; g < q.group_count(); ++g) {
        const auto p = q.effective_params(g);
        double d_scale = 0.0;
        for (std::size_t i = g * length; i < (g + 1) * length; ++i) {
            if (!p.scale) {
                grad_x[i] = grad_out[i];
                continue;
            }
            const int level = q.level(i);
            const double u = static_cast<double>(x[i]) / p.scale + p.zero_point;
            // Nearest rounding leaves a level within half a step of u unless the level was clamped.
            const bool inside = std::fabs(u - level) <= 0.5 + 1e-6;
            grad_x[i] = inside ? grad_out[i] : 0.0f;
            d_scale += grad_out[i] * (inside ? level - u : static_cast<double>(level - p.zero_point));
        }
        if (!grad_scale.empty()) grad_scale[g] = static_cast<float>(d_scale);
    }
}

}  // namespace cogqat
