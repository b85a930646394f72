// `cogqat convert llama2c|synthetic|hf`: a model into an F32 (or F16, BF16) GGUF; `hf` reads a Hugging Face folder
// (io/hf_import.hpp).

#include <cogqat/core/error.hpp>
#include <cogqat/format/ggml_type.hpp>
#include <cogqat/io/hf_import.hpp>
#include <cogqat/io/llama2c.hpp>
#include <cogqat/io/llama_gguf.hpp>
#include <cogqat/model/llama_weights.hpp>
#include <cogqat/model/synthetic.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "commands.hpp"
#include "options.hpp"

namespace cogqat::cli {

namespace {

struct convert_arguments {
    std::string model, tokenizer, output, float_type = "f32";
    std::uint64_t seed = 1;
    gguf::split_limits split;
    llama_config shape{256, 768, 2, 4, 2, 259, 256};  ///< synthetic: make_synthetic_llama's default shape
};

/// The synthetic shape checked before anything is made: the runtime's own requirements, said per option.
void check_synthetic_shape(const llama_config& c) {
    if (c.dim % c.n_heads != 0)
        throw invalid_argument_error("--dim " + std::to_string(c.dim) + " is not a multiple of --heads " + std::to_string(c.n_heads));
    if (c.head_size() % 2 != 0)
        throw invalid_argument_error("--dim / --heads = " + std::to_string(c.head_size()) + " must be even (rotary pairs)");
    if (c.n_heads % c.n_kv_heads != 0)
        throw invalid_argument_error("--heads " + std::to_string(c.n_heads) + " is not a multiple of --kv-heads " +
                                     std::to_string(c.n_kv_heads));
}

ggml_type float_type_of(const std::string& name) {
    const ggml_type t = parse_type(name);
    if (t != ggml_type::f32 && t != ggml_type::f16 && t != ggml_type::bf16)
        throw invalid_argument_error("convert writes f32, f16 or bf16; use `cogqat quantize` for " + name);
    return t;
}

int write_converted(const llama_weights& weights, const std::string& output, ggml_type type, gguf::split_limits split) {
    const auto files = io::write_llama_gguf(weights, output, type, split);
    std::uint64_t bytes = 0;
    for (const auto& f : files) bytes += std::filesystem::file_size(f);
    const auto& c = weights.config;
    fmt::print("{}: llama, dim {}, hidden {}, {} layers, {} heads ({} kv), vocab {}, context {}, {} tensors, {} bytes\n",
               written_files(files), c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.context_length,
               weights.tensors.size(), bytes);
    return exit_success;
}

/// `convert hf`'s --type: f32, f16, bf16, or a format written without importance weights.
ggml_type hf_type_of(const std::string& name) {
    const ggml_type t = parse_type(name);
    io::check_conversion_type(t);
    return t;
}

/// The files of a Hugging Face folder, as inputs the output must not replace.
std::vector<named_path> folder_inputs(const std::string& dir) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) throw io_error("cannot read '" + dir + "': not a directory (a Hugging Face model folder)");
    std::vector<named_path> inputs;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
        if (entry.is_regular_file(ec)) inputs.push_back({"DIR", entry.path().string()});
    return inputs;
}

int write_hf(const std::string& dir, const std::string& output, ggml_type type, gguf::split_limits split) {
    const auto r = io::convert_hf(dir, output, type, split);
    std::uint64_t bytes = 0;
    for (const auto& f : r.files) bytes += std::filesystem::file_size(f);
    const auto& s = r.config.sizes;
    fmt::print(
            "{}: {}, dim {}, hidden {}, {} layers, {} heads ({} kv, size {}), vocab {} ({} merges, pre-tokenizer {}), {} tensors, {} "
            "bytes\n",
            written_files(r.files), r.config.architecture->name, s.hidden, s.feed_forward, s.layers, s.heads, s.kv_heads, s.head_dim,
            s.vocab, r.merges, r.pre, r.tensors.size(), bytes);
    return exit_success;
}

}  // namespace

void add_convert_commands(command_line& app, command_list& commands) {
    auto convert = app.subcommand("convert", "Convert a model into a GGUF");
    convert.require_subcommand();

    auto l = std::make_shared<convert_arguments>();
    auto llama2c = convert.subcommand("llama2c", "A llama2.c checkpoint (version 0) and its tokenizer into a llama GGUF");
    llama2c.text("model", l->model, "llama2.c checkpoint, e.g. stories260K.bin").required();
    llama2c.text("tokenizer", l->tokenizer, "llama2.c tokenizer, e.g. tok512.bin").required();
    llama2c.text("output", l->output, "GGUF to write").required();
    llama2c.text("--type", l->float_type, "f32 (default), f16 or bf16");
    llama2c.split(l->split);
    commands.push_back({llama2c, [l] {
                            const ggml_type type = float_type_of(l->float_type);
                            check_files({{"MODEL", l->model}, {"TOKENIZER", l->tokenizer}}, {{"OUTPUT", l->output}});
                            return write_converted(io::read_llama2c(l->model, l->tokenizer), l->output, type, l->split);
                        }});

    auto h = std::make_shared<convert_arguments>();
    auto hf = convert.subcommand(
            "hf", "A Hugging Face folder (llama, mistral, qwen2, qwen3: config.json, tokenizer.json, safetensors) into GGUF");
    hf.text("dir", h->model, "the folder: config.json, tokenizer.json, tokenizer_config.json, model.safetensors or its shards").required();
    hf.text("output", h->output, "GGUF to write").required();
    hf.text("--type", h->float_type, "f32 (default), f16, bf16, or a type written without importance weights (q8_0, ...)");
    hf.split(h->split);
    commands.push_back({hf, [h] {
                            const ggml_type type = hf_type_of(h->float_type);
                            check_files(folder_inputs(h->model), {{"OUTPUT", h->output}});
                            return write_hf(h->model, h->output, type, h->split);
                        }});

    auto s = std::make_shared<convert_arguments>();
    auto synthetic = convert.subcommand("synthetic", "Generate a small llama-shaped model with random weights (a test fixture)");
    synthetic.text("output", s->output, "GGUF to write").required();
    synthetic.whole("--seed", s->seed, 0, UINT64_MAX, "Random seed");
    synthetic.text("--type", s->float_type, "f32 (default), f16 or bf16");
    synthetic.split(s->split);
    // The shape: e.g. --dim 512 --ffn 1408 --layers 8 --heads 8 --kv-heads 8 --vocab 32000 for a 58M-weight model.
    synthetic.whole("--dim", s->shape.dim, 2, 1u << 16, "Embedding width (default 256)");
    synthetic.whole("--ffn", s->shape.hidden_dim, 1, 1u << 18, "Feed-forward width (default 768)");
    synthetic.whole("--layers", s->shape.n_layers, 1, 1024, "Decoder layers (default 2)");
    synthetic.whole("--heads", s->shape.n_heads, 1, 1024, "Attention heads (default 4)");
    synthetic.whole("--kv-heads", s->shape.n_kv_heads, 1, 1024, "Key/value heads (default 2)");
    synthetic.whole("--vocab", s->shape.vocab_size, 259, 1u << 20, "Vocabulary, at least the 259 special and byte tokens (default 259)");
    synthetic.whole("--context", s->shape.context_length, 1, 1u << 20, "Context length (default 256)");
    commands.push_back({synthetic, [s] {
                            const ggml_type type = float_type_of(s->float_type);
                            check_synthetic_shape(s->shape);
                            check_files({}, {{"OUTPUT", s->output}});
                            return write_converted(make_synthetic_llama(s->seed, s->shape), s->output, type, s->split);
                        }});
}

}  // namespace cogqat::cli
