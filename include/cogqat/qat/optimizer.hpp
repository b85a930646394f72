#pragma once
// AdamW over groups of float parameters, a warm-up + cosine learning-rate schedule, and clipping by the
// global gradient norm: what the QAT pipeline trains with. The moments are plain arrays so a checkpoint
// can save and restore them exactly.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include "cogqat/core/error.hpp"
#include "cogqat/core/parallel.hpp"

namespace cogqat {

/// One tensor the optimizer updates: its values, their gradient, and its own learning-rate multiplier.
struct parameter_group {
    std::span<float> values;
    std::span<const float> gradient;
    float learning_rate_scale = 1.0f;
    float weight_decay = 0.0f;  ///< decoupled (AdamW): values -= lr * decay * values
};

struct adamw_options {
    float beta1 = 0.9f;
    float beta2 = 0.999f;
    float epsilon = 1e-8f;
};

/// Linear warm-up over `warmup` steps to the peak, then a cosine decay to peak * final_ratio at `total`.
struct learning_rate_schedule {
    float peak = 1e-3f;
    std::size_t warmup = 0;
    std::size_t total = 1;
    float final_ratio = 0.1f;

    [[nodiscard]] float at(std::size_t step) const noexcept {
        if (step < warmup) return peak * static_cast<float>(step + 1) / static_cast<float>(warmup + 1);
        if (total <= warmup) return peak;
        const double progress = std::min(1.0, static_cast<double>(step - warmup) / static_cast<double>(total - warmup));
        const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
        return static_cast<float>(peak * (final_ratio + (1.0 - final_ratio) * cosine));
    }
};

/// The L2 norm of all groups' gradients together.
[[nodiscard]] inline double global_gradient_norm(std::span<const parameter_group> groups) noexcept {
    double sum = 0.0;
    for (const auto& g : groups)
        for (float v : g.gradient) sum += static_cast<double>(v) * v;
    return std::sqrt(sum);
}

class adamw {
public:
    explicit adamw(adamw_options options = {}) : options_(options) {}

    /// One update of every group with learning rate `lr`; gradients are multiplied by `gradient_scale` first
    /// (clipping). Groups keep their index from call to call. A group's moments start (at zero, with its own
    /// bias correction) the first time it is non-empty, so tensors may join training late. Throws
    /// value_error when a gradient is not finite (training diverged), naming the group and element, before
    /// changing anything; shape_error when a group changes size.
    /// Elements are updated on `threads` threads, each the same arithmetic as on one.
    void step(std::span<const parameter_group> groups, float lr, float gradient_scale = 1.0f, unsigned threads = 1) {
        for (std::size_t g = 0; g < groups.size(); ++g) {
            if (groups[g].gradient.size() != groups[g].values.size())
                throw shape_error("adamw: parameter group " + std::to_string(g) + " has " + std::to_string(groups[g].values.size()) +
                                  " values and " + std::to_string(groups[g].gradient.size()) + " gradients");
            for (std::size_t i = 0; i < groups[g].gradient.size(); ++i)
                if (!std::isfinite(groups[g].gradient[i]))
                    throw value_error(
                            "adamw: gradient " + std::to_string(i) + " of parameter group " + std::to_string(g) + " is not finite", i);
        }
        if (first_.size() < groups.size()) first_.resize(groups.size()), second_.resize(groups.size()), counts_.resize(groups.size(), 0);
        for (std::size_t g = 0; g < groups.size(); ++g) {
            const auto& group = groups[g];
            if (group.values.empty()) continue;
            if (first_[g].empty()) {
                first_[g].assign(group.values.size(), 0.0f);
                second_[g].assign(group.values.size(), 0.0f);
                counts_[g] = 0;
            } else if (first_[g].size() != group.values.size()) {
                throw shape_error("adamw: parameter group " + std::to_string(g) + " changed size from " + std::to_string(first_[g].size()) +
                                  " to " + std::to_string(group.values.size()));
            }
            const auto t = static_cast<double>(++counts_[g]);
            const double correction1 = 1.0 - std::pow(static_cast<double>(options_.beta1), t);
            const double correction2 = 1.0 - std::pow(static_cast<double>(options_.beta2), t);
            const float rate = lr * group.learning_rate_scale;
            const float step_size = static_cast<float>(rate / correction1);
            const float root_correction = static_cast<float>(std::sqrt(correction2));
            float* m = first_[g].data();
            float* v = second_[g].data();
            parallel_for(
                    group.values.size(), threads,
                    [&](std::size_t begin, std::size_t end) {
                        for (std::size_t i = begin; i < end; ++i) {
                            const float grad = group.gradient[i] * gradient_scale;
                            m[i] = options_.beta1 * m[i] + (1.0f - options_.beta1) * grad;
                            v[i] = options_.beta2 * v[i] + (1.0f - options_.beta2) * grad * grad;
                            const float denominator = std::sqrt(v[i]) / root_correction + options_.epsilon;
                            group.values[i] -= step_size * m[i] / denominator + rate * group.weight_decay * group.values[i];
                        }
                    },
                    std::size_t{1} << 16);
        }
    }

    /// Per group: the first and second moments and the number of updates it has had (for checkpoints).
    [[nodiscard]] std::vector<std::vector<float>>& first_moments() noexcept { return first_; }
    [[nodiscard]] std::vector<std::vector<float>>& second_moments() noexcept { return second_; }
    [[nodiscard]] std::vector<std::uint64_t>& update_counts() noexcept { return counts_; }
    [[nodiscard]] const std::vector<std::vector<float>>& first_moments() const noexcept { return first_; }
    [[nodiscard]] const std::vector<std::vector<float>>& second_moments() const noexcept { return second_; }
    [[nodiscard]] const std::vector<std::uint64_t>& update_counts() const noexcept { return counts_; }

private:
    adamw_options options_;
    std::vector<std::vector<float>> first_, second_;
    std::vector<std::uint64_t> counts_;
};

}  // namespace cogqat
