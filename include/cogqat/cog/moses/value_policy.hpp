#pragma once
// How an instance stores the values of its constant knobs. The default keeps them as 6-bit codes with one
// scale per group of 8, through the core quantizer: every program MOSES scores is then scored with the
// constants it would ship with, so the search is quantization-aware rather than quantized after the fact.
// The codes are held packed at their bit width (quant/packed_quantizer.hpp): a deme keeps many instances, and
// 6-bit codes in bytes would waste a quarter of the code memory. Plain floats are the reference to compare against.

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cogqat/core/bit_packing.hpp"
#include "cogqat/core/error.hpp"
#include "cogqat/core/policy.hpp"
#include "cogqat/quant/packed_quantizer.hpp"
#include "cogqat/quant/quantizer.hpp"

namespace cogqat::cog::moses {

/// What a value policy provides: a name, a storage type for one instance's constant values (copyable and
/// comparable, so instances can be told apart), store() from floats, load() back into floats (exactly what
/// evaluation will see), the number of values stored, the spacing of representable values around value i
/// (0 when storage is exact) and the storage size in bits.
template <class P>
concept ValuePolicy = requires(std::span<const float> values, const typename P::storage_type& stored, std::span<float> out, std::size_t i) {
    { P::name } -> std::convertible_to<std::string_view>;
    requires std::regular<typename P::storage_type>;
    { P::store(values) } -> std::same_as<typename P::storage_type>;
    { P::load(stored, out) } -> std::same_as<void>;
    { P::size(stored) } -> std::same_as<std::size_t>;
    { P::step(stored, i) } -> std::same_as<float>;
    { P::storage_bits(stored) } -> std::same_as<std::size_t>;
};

namespace detail {
inline void require_load_size(std::size_t have, std::size_t want, std::string_view policy) {
    if (have != want) {
        throw shape_error(std::string(policy) + " values: load into " + std::to_string(want) + " floats, but " + std::to_string(have) +
                          " are stored");
    }
}

/// The tensor a quantized_values holds: packed codes, or the quantizer's own for codes wider than a byte (named
/// lazily, as packed_tensor_of exists only for the former).
template <class Q, bool Packed>
struct stored_tensor {
    using type = typename Q::tensor_type;
};
template <class Q>
struct stored_tensor<Q, true> {
    using type = packed_tensor_of<Q>;
};
}  // namespace detail

/// Constants kept as 32-bit floats.
struct float_values {
    static constexpr std::string_view name = "float";
    using storage_type = std::vector<float>;

    /// A copy of `values`.
    [[nodiscard]] static storage_type store(std::span<const float> values) { return storage_type(values.begin(), values.end()); }
    /// Copies the values into `out`, which must hold size(stored) floats (shape_error otherwise).
    static void load(const storage_type& stored, std::span<float> out) {
        detail::require_load_size(stored.size(), out.size(), name);
        // Bounded by both sizes (equal here) so that GCC's -Warray-bounds sees no way past `out`.
        for (std::size_t i = 0; i < out.size() && i < stored.size(); ++i) out[i] = stored[i];
    }
    [[nodiscard]] static std::size_t size(const storage_type& stored) noexcept { return stored.size(); }
    /// Floats are stored exactly.
    [[nodiscard]] static float step(const storage_type& /*stored*/, std::size_t /*i*/) noexcept { return 0.0f; }
    [[nodiscard]] static std::size_t storage_bits(const storage_type& stored) noexcept { return 32 * stored.size(); }
};

/// Constants quantized with quantizer<Bits, PerGroup<Group>, Mode>: consecutive constant knobs share a scale
/// in groups of Group (the last group padded with zeros, which never widen a scale). Each value comes back
/// within half of its group's scale; 0 comes back exactly, so a term switched off stays off. Codes of up to 8
/// bits are held packed (packed_quantized_tensor), wider ones one 16-bit word each.
template <BitWidthPolicy Bits = BitWidth<6>, std::size_t Group = 8, ModePolicy Mode = Symmetric>
struct quantized_values {
    using quantizer_type = quantizer<Bits, PerGroup<Group>, Mode>;
    static constexpr std::string_view name = "quantized";
    static constexpr std::size_t group_size = Group;
    /// Whether the codes are held packed at Bits::bits bits each.
    static constexpr bool packed = Bits::bits <= max_packed_bits;
    using tensor_type = typename detail::stored_tensor<quantizer_type, packed>::type;

    /// The quantized groups and the number of real values (the rest is padding).
    struct storage_type {
        tensor_type tensor;
        std::size_t count = 0;
        friend bool operator==(const storage_type&, const storage_type&) = default;
    };

    /// Quantizes `values`. Throws value_error (with the index) on NaN or Inf.
    [[nodiscard]] static storage_type store(std::span<const float> values) {
        if (values.empty()) return {};
        std::vector<float> padded((values.size() + Group - 1) / Group * Group, 0.0f);
        std::copy(values.begin(), values.end(), padded.begin());
        if constexpr (packed)
            return {quantize_packed<quantizer_type>(std::span<const float>(padded)), values.size()};
        else
            return {quantizer_type::quantize(std::span<const float>(padded)), values.size()};
    }
    /// Decodes the values into `out`, which must hold size(stored) floats (shape_error otherwise).
    static void load(const storage_type& stored, std::span<float> out) {
        detail::require_load_size(stored.count, out.size(), name);
        if (stored.count == 0) return;
        std::vector<float> all;
        if constexpr (packed)
            all = dequantize_packed<quantizer_type>(stored.tensor);
        else
            all = quantizer_type::dequantize(stored.tensor);
        std::copy_n(all.begin(), stored.count, out.begin());
    }
    [[nodiscard]] static std::size_t size(const storage_type& stored) noexcept { return stored.count; }
    /// The scale of value i's group: representable values are this far apart. i must be below size().
    [[nodiscard]] static float step(const storage_type& stored, std::size_t i) noexcept {
        return stored.tensor.effective_params(i / Group).scale;
    }
    /// Bits of the packed form, padding and per-group scales included (quantized_tensor::storage_bits()).
    [[nodiscard]] static std::size_t storage_bits(const storage_type& stored) noexcept { return stored.tensor.storage_bits(); }
    /// Bytes the stored constants take in memory (codes and group parameters as held; the vectors' own headers
    /// left out): ceil(padded count * Bits / 8) + 8 per group when packed.
    [[nodiscard]] static std::size_t memory_bytes(const storage_type& stored) noexcept {
        if constexpr (packed)
            return stored.tensor.storage_bytes();
        else
            return stored.tensor.size() * sizeof(typename quantizer_type::code_type) + stored.tensor.group_count() * sizeof(affine_params);
    }
};

/// The default: 6-bit symmetric codes, one float scale per 8 constants.
using q6_values = quantized_values<BitWidth<6>, 8, Symmetric>;

static_assert(ValuePolicy<float_values>);
static_assert(ValuePolicy<q6_values>);

}  // namespace cogqat::cog::moses
