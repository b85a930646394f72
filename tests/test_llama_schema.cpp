// The llama schema: one table of tensors and one of keys, and every reader, writer and model walking it
// agrees with it (names, order, shapes, members, keys); and matrix_shape, the one description of a matrix.

#include <doctest/doctest.h>

#include <cogqat/core/matrix_shape.hpp>
#include <cogqat/gguf/reader.hpp>
#include <cogqat/io/llama_gguf.hpp>
#include <cogqat/io/read_llama.hpp>
#include <cogqat/model/llama_backward.hpp>
#include <cogqat/model/llama_model.hpp>
#include <cogqat/model/llama_schema.hpp>
#include <cogqat/model/synthetic.hpp>

#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "scratch_dir.hpp"

using namespace cogqat;

namespace {
// Grouped-query attention and a feed-forward width unlike the embedding's, so that every extent differs.
const llama_config small{64, 96, 3, 4, 2, 259, 32};

std::vector<std::string> names_of(std::size_t layers, bool tied, model_architecture architecture = model_architecture::llama) {
    llama_config c = small;
    c.n_layers = static_cast<std::uint32_t>(layers);
    c.architecture = architecture;
    std::vector<std::string> names;
    for_each_llama_tensor(c, tied, [&](const tensor_schema& t, std::size_t layer) { names.push_back(t.gguf_name(layer)); });
    return names;
}
}  // namespace

TEST_CASE("llama schema: each parameter once, names unique, the order llama.cpp's llama2.c converter writes") {
    std::set<std::string_view> names;
    std::set<llama_parameter> parameters;
    for (const auto& t : llama_tensors) {
        CHECK(names.insert(t.name).second);
        CHECK(parameters.insert(t.parameter).second);
        CHECK(llama_tensor(t.parameter).name == t.name);
    }
    CHECK(parameters.size() == llama_tensors.size());

    const std::vector<std::string> expected{"token_embd.weight",        "output_norm.weight",     "output.weight",
                                            "blk.0.attn_q.weight",      "blk.0.attn_k.weight",    "blk.0.attn_v.weight",
                                            "blk.0.attn_output.weight", "blk.0.attn_norm.weight", "blk.0.ffn_gate.weight",
                                            "blk.0.ffn_down.weight",    "blk.0.ffn_up.weight",    "blk.0.ffn_norm.weight"};
    CHECK(names_of(1, false) == expected);
    auto tied = expected;
    tied.erase(tied.begin() + 2);
    CHECK(names_of(1, true) == tied);
    CHECK(names_of(3, false).size() == 3 + 3 * 9);
    CHECK(names_of(3, false).back() == "blk.2.ffn_norm.weight");
}

TEST_CASE("llama schema: shapes from the config, in GGUF's ne order") {
    using v = std::vector<std::uint64_t>;
    CHECK(llama_tensor(llama_parameter::token_embedding).gguf_shape(small) == v{64, 259});
    CHECK(llama_tensor(llama_parameter::output_norm).gguf_shape(small) == v{64});
    CHECK(llama_tensor(llama_parameter::wq).gguf_shape(small) == v{64, 64});
    CHECK(llama_tensor(llama_parameter::wk).gguf_shape(small) == v{64, 32});  // kv_dim: 2 kv heads of 16
    CHECK(llama_tensor(llama_parameter::wv).gguf_shape(small) == v{64, 32});
    CHECK(llama_tensor(llama_parameter::gate).gguf_shape(small) == v{64, 96});
    CHECK(llama_tensor(llama_parameter::down).gguf_shape(small) == v{96, 64});
    CHECK(llama_tensor(llama_parameter::down).elements(small) == 96 * 64);
    CHECK(llama_tensor(llama_parameter::ffn_norm).is_vector());
    CHECK_FALSE(llama_tensor(llama_parameter::up).is_vector());
}

TEST_CASE("llama schema: a GGUF name reads back as its entry and layer, and only a name of the schema does") {
    for_each_llama_tensor(small, false, [&](const tensor_schema& t, std::size_t layer) {
        const std::string name = t.gguf_name(layer);
        CAPTURE(name);
        const auto parsed = parse_llama_tensor_name(name);
        REQUIRE(parsed);
        CHECK(parsed->tensor == &t);
        CHECK(parsed->layer == layer);
    });
    for (const char* bad : {"", "blk.", "blk.1", "blk.1.", "blk..attn_q.weight", "blk.-1.attn_q.weight", "blk.1.token_embd.weight",
                            "attn_q.weight", "blk.99999999999999999999999.attn_q.weight", "output.weight.", "token_embd"})
        CHECK_FALSE(parse_llama_tensor_name(bad));
}

TEST_CASE("llama schema: the synthetic model, the GGUF writer and reader, the runtime and the trainer agree with it") {
    const auto weights = make_synthetic_llama(3, small);
    std::vector<std::string> written;
    for (std::size_t i = 0; i < weights.tensors.size(); ++i) {
        const auto& t = weights.tensors[i];
        const auto parsed = parse_llama_tensor_name(t.name);
        REQUIRE(parsed);
        CHECK(t.shape == parsed->tensor->gguf_shape(small));
        written.push_back(t.name);
    }
    CHECK(written == names_of(small.n_layers, false));

    test::scratch_dir dir;
    const auto path = dir.path / "schema.gguf";
    io::write_llama_gguf(weights, path);
    const auto file = gguf::reader::open(path);
    // The head size is written only when explicit (not dim / heads): llama.cpp's converter writes it then.
    for (const auto& key : llama_config_keys) CHECK_MESSAGE((file.find(gguf_key(key)) != nullptr) == !key.written_when_set, gguf_key(key));
    CHECK(gguf_key(&llama_config::n_layers) == "llama.block_count");
    CHECK_THROWS_AS(static_cast<void>(gguf_key(&llama_config::vocab_size)), invalid_argument_error);

    const auto model = io::read_llama_model(file);
    CHECK(model.config.dim == small.dim);
    CHECK(model.config.hidden_dim == small.hidden_dim);
    CHECK(model.config.n_kv_heads == small.n_kv_heads);
    CHECK(model.config.vocab_size == small.vocab_size);
    CHECK(model.config.context_length == small.context_length);
    CHECK(model.config.rope_freq_base == small.rope_freq_base);
    CHECK(model.config.rms_norm_eps == small.rms_norm_eps);

    // Each parameter of the runtime and of the trainer holds the schema's tensor of that name, in step.
    const auto from_file = llama_parameters::from_model(model);
    const auto imported = llama_model::from_weights(weights);
    std::size_t visited = 0;
    for_each_llama_tensor(small, false, [&](const tensor_schema& t, std::size_t layer) {
        const std::string name = t.gguf_name(layer);
        CAPTURE(name);
        const auto* source = &weights.tensors[visited++];
        REQUIRE(source->name == name);
        CHECK(from_file.values(t.parameter, layer) == source->values);
        visit_parameters(
                t.parameter, layer,
                [&](const auto& read, const auto& built) {
                    if constexpr (std::is_same_v<std::remove_cvref_t<decltype(read)>, weight_matrix>) {
                        CHECK(read.rows == extent_of(small, t.rows));
                        CHECK(read.cols == extent_of(small, t.row_length));
                        CHECK(built.rows == read.rows);
                        CHECK(built.cols == read.cols);
                    } else {
                        CHECK(read == source->values);
                        CHECK(built == source->values);
                    }
                },
                model, imported);
    });
    CHECK(visited == weights.tensors.size());
}

TEST_CASE("llama schema: a block count the file cannot hold is refused before anything is allocated") {
    auto weights = make_synthetic_llama(3, small);
    weights.config.n_layers = 4000000000u;  // the tensors are those of 3 layers
    test::scratch_dir dir;
    const auto path = dir.path / "layers.gguf";
    io::write_llama_gguf(weights, path);
    const auto file = gguf::reader::open(path);
    CHECK_THROWS_WITH_AS(static_cast<void>(io::read_llama_model(file)), doctest::Contains("declares 4000000000 layers"), format_error);
}

TEST_CASE("matrix_shape: one description of a matrix, from GGUF's ne, to views; the model's matrices are matrix_shapes") {
    using ne = std::vector<std::uint64_t>;
    CHECK(matrix_shape::from_gguf(ne{64, 96}) == matrix_shape{96, 64});
    CHECK(matrix_shape::from_gguf(ne{64}) == matrix_shape{1, 64});
    CHECK(matrix_shape{96, 64}.gguf_ne(false) == ne{64, 96});
    CHECK(matrix_shape{1, 64}.gguf_ne(true) == ne{64});
    CHECK_THROWS_AS(static_cast<void>(matrix_shape::from_gguf(ne{})), shape_error);
    CHECK_THROWS_AS(static_cast<void>(matrix_shape::from_gguf(ne{2, 3, 4})), shape_error);
    CHECK_THROWS_WITH_AS(static_cast<void>(matrix_shape::from_gguf(ne{1ull << 40, 1ull << 40})), doctest::Contains("does not fit"),
                         shape_error);

    std::vector<float> values(6);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i);
    const auto view = matrix_shape{2, 3}.view(std::span<float>(values));
    CHECK(view(1, 0) == 3.0f);
    CHECK(shape_of(view) == matrix_shape{2, 3});
    CHECK_THROWS_WITH_AS(static_cast<void>(matrix_shape{3, 3}.view(std::span<float>(values))), doctest::Contains("6 values for a 3 x 3"),
                         shape_error);

    auto weights = make_synthetic_llama(3, small);
    const auto& down = weights.tensors[9];
    REQUIRE(down.name == "blk.0.ffn_down.weight");
    CHECK(down.matrix() == llama_tensor(llama_parameter::down).shape(small));
    CHECK(down.view()(63, 95) == down.values.back());

    const auto model = llama_model::from_weights(weights);
    const matrix_shape& gate = model.layers[2].gate;  // a weight_matrix is a matrix_shape with its bytes
    CHECK(gate == llama_tensor(llama_parameter::gate).shape(small));

    auto parameters = llama_parameters::from_model(model);
    CHECK(shape_of(parameters.matrix(llama_parameter::wk, 1)) == matrix_shape{32, 64});
    CHECK(parameters.matrix(llama_parameter::down, 0)(63, 95) == down.values.back());
    parameters.values(llama_parameter::up, 2).pop_back();
    CHECK_THROWS_AS(static_cast<void>(parameters.matrix(llama_parameter::up, 2)), shape_error);
}
