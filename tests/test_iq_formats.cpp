// The grid i-quants without ggml: the grid tables' facts, our bytes against the recorded digests of ggml's (all
// seven types, with and without importance weights), round trips within error bounds, bad input, the codec,
// the q8_K dot products, and a model of them run by the runtime.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstdint>
#include <regex>
#include <string>
#include <vector>

#include "cogqat/format/activation_quantize.hpp"
#include "cogqat/format/codec.hpp"
#include "cogqat/format/iq_grids.hpp"
#include "cogqat/format/iq_quantize.hpp"
#include "cogqat/format/vec_dot.hpp"
#include "cogqat/io/llama_gguf.hpp"
#include "cogqat/io/read_llama.hpp"
#include "cogqat/model/evaluate.hpp"
#include "cogqat/model/synthetic.hpp"
#include "cogqat/quant/gguf_quantize.hpp"
#include "iq_vector_inputs.hpp"
#include "iq_vectors.hpp"
#include "scratch_dir.hpp"

namespace {

namespace iq = cogqat::formats::iq;
namespace vectors = cogqat::test::iq_vectors;
using cogqat::ggml_type;

// A grid point as ggml's decoded tables hold it: coordinate j in byte j of a little-endian word.
std::uint64_t decoded_word(const iq::grid_spec& g, std::size_t point) {
    std::uint64_t word = 0;
    for (unsigned j = 0; j < g.dim; ++j) word |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(g.decoded(point, j))) << (8 * j);
    return word;
}

constexpr iq::grid_kind grid_kinds[] = {iq::grid_kind::iq2xxs, iq::grid_kind::iq2xs,  iq::grid_kind::iq2s,
                                        iq::grid_kind::iq1s,   iq::grid_kind::iq3xxs, iq::grid_kind::iq3s};

}  // namespace

TEST_CASE("grid i-quant tables: sizes, ordering and entries as ggml's decoded tables hold them") {
    const std::size_t sizes[] = {256, 512, 1024, 2048, 256, 512};
    for (std::size_t k = 0; k < std::size(grid_kinds); ++k) {
        const auto g = iq::spec(grid_kinds[k]);
        CAPTURE(k);
        CHECK(g.codes.size() == sizes[k]);
        bool ascending = true, levels_in_range = true;  // ascending, hence distinct
        for (std::size_t p = 0; p < g.codes.size(); ++p) {
            ascending = ascending && (p == 0 || g.codes[p - 1] < g.codes[p]);
            for (unsigned i = 0; i < g.dim; ++i) levels_in_range = levels_in_range && g.level(p, i) < g.levels;
        }
        CHECK(ascending);
        CHECK(levels_in_range);
    }
    // Entries of ggml-common.h's iq2xxs_grid, iq2xs_grid, iq2s_grid, iq3xxs_grid, iq3s_grid and iq1s_grid.
    CHECK(decoded_word(iq::spec(iq::grid_kind::iq2xxs), 0) == 0x0808080808080808ull);
    CHECK(decoded_word(iq::spec(iq::grid_kind::iq2xxs), 255) == 0x2b2b2b1908081908ull);
    CHECK(decoded_word(iq::spec(iq::grid_kind::iq2xs), 511) == 0x2b2b2b2b2b2b2b2bull);
    CHECK(decoded_word(iq::spec(iq::grid_kind::iq2s), 1023) == 0x2b2b2b2b2b2b2b2bull);
    CHECK(decoded_word(iq::spec(iq::grid_kind::iq3xxs), 255) == 0x3e341c04ull);
    CHECK(decoded_word(iq::spec(iq::grid_kind::iq3s), 511) == 0x0f0f0101ull);
    CHECK(decoded_word(iq::spec(iq::grid_kind::iq1s), 1) == 0xffffffffffffff01ull);
    CHECK(decoded_word(iq::spec(iq::grid_kind::iq1s), 2047) == 0x0101010101010101ull);
    // ksigns_iq2xs: the 8th sign makes the count of negatives even.
    CHECK(iq::even_signs(0) == 0);
    CHECK(iq::even_signs(1) == 0x81);
    CHECK(iq::even_signs(3) == 3);
    CHECK(iq::even_signs(127) == 0xff);
    bool even = true;
    for (unsigned s = 0; s < 128; ++s)
        even = even && std::popcount(static_cast<unsigned>(iq::even_signs(s))) % 2 == 0 && (iq::even_signs(s) & 127) == s;
    CHECK(even);
}

TEST_CASE("grid i-quant lattices: every point a search reaches is on the grid or has its nearest grid points") {
    for (const auto kind : grid_kinds) {
        const auto& lattice = iq::lattice_of(kind);
        const auto& g = lattice.grid();
        std::size_t on_grid = 0, off_grid = 0;
        bool maps_back = true, ordered = true, nearest_first = true;
        const std::uint32_t codes = 1u << (g.bits * g.dim);
        for (std::uint32_t code = 0; code < codes; ++code) {
            bool reachable = true;
            for (unsigned i = 0; i < g.dim; ++i)
                reachable = reachable && static_cast<int>((code >> (g.bits * i)) & ((1u << g.bits) - 1)) < g.levels;
            if (!reachable) continue;
            if (lattice.point(code) >= 0) {
                maps_back = maps_back && g.codes[static_cast<std::size_t>(lattice.point(code))] == code;
                ++on_grid;
                continue;
            }
            ++off_grid;
            const auto near = lattice.neighbours(code);
            if (near.empty()) {
                FAIL("no neighbours for code " << code);
                continue;
            }
            // Ordered by distance, then index; the first shell holds the nearest grid points of all.
            auto distance = [&](std::size_t p) {
                int d2 = 0;
                for (unsigned i = 0; i < g.dim; ++i) {
                    const int diff = g.level(p, i) - static_cast<int>((code >> (g.bits * i)) & ((1u << g.bits) - 1));
                    d2 += diff * diff;
                }
                return d2;
            };
            for (std::size_t j = 1; j < near.size(); ++j) {
                const int a = distance(near[j - 1]), b = distance(near[j]);
                ordered = ordered && (a < b || (a == b && near[j - 1] < near[j]));
            }
            if (off_grid % 97 == 0) {  // a sample: the full scan is quadratic
                int nearest = INT32_MAX;
                for (std::size_t p = 0; p < g.codes.size(); ++p) nearest = std::min(nearest, distance(p));
                nearest_first = nearest_first && distance(near[0]) == nearest;
            }
        }
        CHECK(maps_back);
        CHECK(ordered);
        CHECK(nearest_first);
        CHECK(on_grid == g.codes.size());
        CHECK(off_grid > 0);
    }
}

TEST_CASE("grid i-quants write the bytes ggml writes (recorded digests), with and without importance weights") {
    const auto importance = vectors::importance();
    std::size_t compared = 0;
    for (const auto& r : vectors::ggml_bytes) {
        const auto type = cogqat::parse_type(r.type);
        CAPTURE(r.type);
        CAPTURE(std::string(r.input));
        CAPTURE(r.importance);
        const auto values = vectors::values(r.input);
        const auto ours = cogqat::quantize_iq(type, values, vectors::row_length,
                                              r.importance ? std::span<const float>(importance) : std::span<const float>());
        CHECK(vectors::digest(ours) == r.digest);
        ++compared;
    }
    // Every type and input, with importance weights; without them where ggml quantizes without.
    CHECK(compared == vectors::types.size() * vectors::cases.size() * 2 - 3 * vectors::cases.size());
}

TEST_CASE("grid i-quants decode to the floats ggml decodes (recorded digests over every grid point)") {
    std::size_t compared = 0;
    for (const auto& r : vectors::ggml_floats) {
        CAPTURE(r.type);
        const auto type = cogqat::parse_type(r.type);
        CHECK(vectors::digest(cogqat::dequantize_iq(type, vectors::random_blocks(type, vectors::decode_blocks))) == r.digest);
        ++compared;
    }
    CHECK(compared == vectors::types.size());
}

TEST_CASE("grid i-quant round trips stay within each type's error bound") {
    // Relative RMS error of Gaussian values, weighted by importance where a type needs it. Bounds sit above the
    // measured errors (iq3_s 0.139, iq3_xxs 0.181, iq2_s 0.251, iq2_xs 0.299, iq2_xxs 0.343, iq1_m 0.455, iq1_s 0.487)
    // and far below 1 (all zero); each is below the next smaller type's.
    const std::pair<ggml_type, double> bounds[] = {{ggml_type::iq3_s, 0.15},  {ggml_type::iq3_xxs, 0.20}, {ggml_type::iq2_s, 0.27},
                                                   {ggml_type::iq2_xs, 0.32}, {ggml_type::iq2_xxs, 0.37}, {ggml_type::iq1_m, 0.48},
                                                   {ggml_type::iq1_s, 0.52}};
    const auto values = cogqat::test::gaussian_values(2048, 7, 0.02);
    const std::vector<float> ones(512, 1.0f);
    for (const auto& type_bound : bounds) {
        const ggml_type type = type_bound.first;
        const double bound = type_bound.second;
        CAPTURE(cogqat::info(type).name);
        const auto bytes = cogqat::quantize_iq(type, values, 512, ones);
        const auto back = cogqat::dequantize_iq(type, bytes);
        REQUIRE(back.size() == values.size());
        double err = 0, sum = 0;
        for (std::size_t i = 0; i < values.size(); ++i) {
            err += (back[i] - values[i]) * (back[i] - values[i]);
            sum += values[i] * values[i];
        }
        CHECK(std::sqrt(err / sum) < bound);
    }
}

TEST_CASE("grid i-quants refuse bad input with what and where") {
    const auto values = cogqat::test::gaussian_values(512, 8);
    const std::vector<float> weights(512, 1.0f);
    std::vector<std::byte> out(cogqat::storage_size(ggml_type::iq3_s, 512));

    SUBCASE("a type that is not a grid i-quant") {
        CHECK_THROWS_AS((void)cogqat::quantize_iq(ggml_type::q4_K, values, 512, weights), cogqat::invalid_argument_error);
        CHECK_THROWS_AS((void)cogqat::dequantize_iq(ggml_type::q4_K, std::vector<std::byte>(144)), cogqat::invalid_argument_error);
        CHECK(!cogqat::is_grid_iquant(ggml_type::iq4_nl));
        CHECK(cogqat::is_grid_iquant(ggml_type::iq1_m));
    }
    SUBCASE("no importance weights where ggml requires them") {
        for (const auto type : {ggml_type::iq2_xxs, ggml_type::iq2_xs, ggml_type::iq1_s}) {
            CHECK(cogqat::requires_importance(type));
            CHECK_THROWS_WITH_AS((void)cogqat::quantize_iq(type, values, 512),
                                 doctest::Contains(std::string(cogqat::info(type).name).c_str()), cogqat::invalid_argument_error);
        }
        for (const auto type : {ggml_type::iq2_s, ggml_type::iq3_xxs, ggml_type::iq3_s, ggml_type::iq1_m})
            CHECK(!cogqat::requires_importance(type));
    }
    SUBCASE("sizes that do not fit") {
        CHECK_THROWS_AS(cogqat::quantize_iq(ggml_type::iq3_s, values, 128, out), cogqat::shape_error);  // row not whole blocks
        CHECK_THROWS_AS(cogqat::quantize_iq(ggml_type::iq3_s, values, 0, out), cogqat::shape_error);
        CHECK_THROWS_AS(cogqat::quantize_iq(ggml_type::iq3_s, values, 1024, out), cogqat::shape_error);  // not whole rows
        CHECK_THROWS_AS(cogqat::quantize_iq(ggml_type::iq3_s, values, 512, std::span<std::byte>(out).first(100)), cogqat::shape_error);
        CHECK_THROWS_AS(cogqat::quantize_iq(ggml_type::iq3_s, values, 512, out, std::span<const float>(weights).first(256)),
                        cogqat::shape_error);
        CHECK_THROWS_AS((void)cogqat::dequantize_iq(ggml_type::iq3_s, std::vector<std::byte>(111)), cogqat::shape_error);
        std::vector<float> wrong(100);
        CHECK_THROWS_AS(cogqat::dequantize_iq(ggml_type::iq3_s, out, wrong), cogqat::shape_error);
    }
    SUBCASE("NaN and Inf values, at their index") {
        for (const float bad : {NAN, INFINITY, -INFINITY}) {
            auto v = values;
            v[300] = bad;
            std::vector<std::byte> o(cogqat::storage_size(ggml_type::iq2_s, 512));
            try {
                cogqat::quantize_iq(ggml_type::iq2_s, v, 512, o);
                FAIL("no error for a non-finite value");
            } catch (const cogqat::value_error& e) {
                CHECK(e.index() == 300);
            }
        }
    }
    SUBCASE("importance weights that are NaN, infinite or negative, at their column") {
        for (const float bad : {NAN, INFINITY, -1.0f}) {
            auto w = weights;
            w[17] = bad;
            std::vector<std::byte> o(cogqat::storage_size(ggml_type::iq3_xxs, 512));
            try {
                cogqat::quantize_iq(ggml_type::iq3_xxs, values, 512, o, w);
                FAIL("no error for a bad importance weight");
            } catch (const cogqat::value_error& e) {
                CHECK(e.index() == 17);
            }
        }
    }
    SUBCASE("values whose squares overflow float: ggml's search aborts, ours says so at the block") {
        std::vector<float> huge(512, 1.0f);
        for (std::size_t i = 256; i < 512; ++i) huge[i] = (i % 2 ? 1 : -1) * FLT_MAX;
        std::vector<std::byte> o(cogqat::storage_size(ggml_type::iq3_xxs, 512));
        try {
            cogqat::quantize_iq(ggml_type::iq3_xxs, huge, 512, o);
            FAIL("no error for overflowing values");
        } catch (const cogqat::value_error& e) {
            CHECK(e.index() == 256);
        }
    }
}

TEST_CASE("the codec quantizes and decodes the grid i-quants that need no importance weights, and reads all seven") {
    const auto values = cogqat::test::gaussian_values(1024, 9, 0.03);
    for (const auto type : vectors::types) {
        CAPTURE(cogqat::info(type).name);
        CHECK(cogqat::is_quantizable(type));
        CHECK(cogqat::info(type).quantizable == !cogqat::requires_importance(type));
        if (cogqat::requires_importance(type)) {
            CHECK_THROWS_WITH_AS((void)cogqat::quantize(type, values), doctest::Contains("importance"), cogqat::invalid_argument_error);
            const std::vector<float> ones(256, 1.0f);
            const auto bytes = cogqat::quantize_iq(type, values, 256, ones);
            CHECK(cogqat::dequantize(type, bytes) == cogqat::dequantize_iq(type, bytes));
            continue;
        }
        const auto bytes = cogqat::quantize(type, values);
        CHECK(bytes == cogqat::quantize_iq(type, values, 1024));  // rows do not matter without importance weights
        CHECK(cogqat::dequantize(type, bytes) == cogqat::dequantize_iq(type, bytes));
    }
}

TEST_CASE("the codec's importance overload gives quantize_iq's bytes for all seven grid i-quants") {
    const auto values = cogqat::test::gaussian_values(1024, 11, 0.03);
    std::vector<float> importance(512);
    for (std::size_t c = 0; c < importance.size(); ++c) importance[c] = 0.25f + static_cast<float>(c % 7);
    for (const auto type : vectors::types) {
        CAPTURE(cogqat::info(type).name);
        CHECK(cogqat::uses_importance(type));
        CHECK(cogqat::quantize(type, values, 512, importance) == cogqat::quantize_iq(type, values, 512, importance));
    }
}

TEST_CASE("grid i-quant dot products with q8_K activations match the decoded product within rounding") {
    const auto weights = cogqat::test::gaussian_values(4 * 512, 10, 0.02);
    const auto x = cogqat::test::gaussian_values(512, 11);
    const std::vector<float> ones(512, 1.0f);
    std::vector<std::byte> activations(cogqat::storage_size(ggml_type::q8_K, x.size()));
    cogqat::quantize_activations(ggml_type::q8_K, x, activations);
    const auto xq = cogqat::dequantize(ggml_type::q8_K, activations);
    for (const auto type : vectors::types) {
        CAPTURE(cogqat::info(type).name);
        CHECK(cogqat::activation_type_for(type) == ggml_type::q8_K);
        const auto dot = cogqat::quantized_dot_for(type);
        const auto bytes = cogqat::quantize_iq(type, weights, 512, ones);
        const auto decoded = cogqat::dequantize_iq(type, bytes);
        const std::size_t row_bytes = cogqat::storage_size(type, 512);
        for (std::size_t r = 0; r < 4; ++r) {
            // The integer sums are exact; only the per-block float products and their sum round.
            double expected = 0, magnitude = 0;
            for (std::size_t i = 0; i < 512; ++i) {
                expected += static_cast<double>(decoded[r * 512 + i]) * xq[i];
                magnitude += std::fabs(static_cast<double>(decoded[r * 512 + i]) * xq[i]);
            }
            const float got = dot(std::span<const std::byte>(bytes).subspan(r * row_bytes, row_bytes), activations, 512);
            CHECK(std::fabs(got - expected) <= 1e-5 * magnitude);
        }
    }
}

TEST_CASE("the runtime runs a model whose matrices are grid i-quants, in both activation modes") {
    cogqat::test::scratch_dir dir;
    cogqat::io::write_llama_gguf(cogqat::make_synthetic_llama(9, {256, 256, 1, 4, 2, 259, 32}), dir.path / "f32.gguf");
    const auto source = cogqat::gguf::reader::open(dir.path / "f32.gguf");
    const auto reference = cogqat::io::read_llama_model(source);
    const std::vector<cogqat::tokenizer::token> tokens{1, 40, 77, 12, 200, 5, 99, 3, 18};
    for (const auto type : {ggml_type::iq3_s, ggml_type::iq1_m}) {
        CAPTURE(cogqat::info(type).name);
        cogqat::quantize_options options;
        options.threads = 1;
        // No importance matrix and no data-free one: iq1_m is written without, as ggml_quantize_chunk allows.
        options.policy.overrides.push_back(cogqat::parse_override("blk=" + std::string(cogqat::info(type).name)));
        const auto path = dir.path / (std::string(cogqat::info(type).name) + ".gguf");
        (void)cogqat::quantize_gguf(source, path, options);
        const auto file = cogqat::gguf::reader::open(path);
        CHECK(file.find_tensor("blk.0.ffn_down.weight")->type == type);
        const auto model = cogqat::io::read_llama_model(file);
        const auto quantized = cogqat::evaluate_perplexity(model, tokens, 8, cogqat::activation_mode::quantized, 1, &reference);
        const auto decoded = cogqat::evaluate_perplexity(model, tokens, 8, cogqat::activation_mode::float32, 1, &reference);
        // Low-bit weights move the logits a little, q8_K activations a little more; nothing breaks.
        CHECK(std::isfinite(quantized.perplexity));
        CHECK(*quantized.kl < 0.2);
        CHECK(*decoded.kl < 0.2);
        CHECK(*quantized.kl == doctest::Approx(*decoded.kl).epsilon(0.2));
    }
    CHECK(static_cast<std::uint32_t>(cogqat::file_type_for(ggml_type::iq3_s)) == 26);  // llama.h's LLAMA_FTYPE_MOSTLY_IQ3_S
    CHECK(static_cast<std::uint32_t>(cogqat::file_type_for(ggml_type::iq1_m)) == 31);
}
