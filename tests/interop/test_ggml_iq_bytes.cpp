// The grid i-quants (iq2_xxs, iq2_xs, iq2_s, iq3_xxs, iq3_s, iq1_s, iq1_m) against the prebuilt ggml that ships
// with node-llama-cpp, loaded at run time: for the same floats and importance weights ggml_quantize_chunk must
// write our bytes (and the digests tests/iq_vectors.hpp records), and ggml's to_float must decode any block to
// our floats (which checks every grid table entry), and its baseline CPU vec_dot must give our dot products
// with q8_K activations. `--write-vectors FILE` records the digests anew. And an importance matrix file we
// write, read by ggml's own gguf reader and turned into weights as llama.cpp's quantize does, makes
// ggml_quantize_chunk write the bytes `cogqat quantize --imatrix` writes.
// Exit code 77 (skipped) when the library is not installed (interop_main.cpp).
#include <doctest/doctest.h>

#include <cogqat/calib/importance.hpp>
#include <cogqat/core/float16.hpp>
#include <cogqat/format/activation_quantize.hpp>
#include <cogqat/format/iq_quantize.hpp>
#include <cogqat/format/vec_dot.hpp>
#include <cogqat/io/imatrix_file.hpp>
#include <cogqat/io/llama_gguf.hpp>
#include <cogqat/io/read_llama.hpp>
#include <cogqat/model/synthetic.hpp>
#include <cogqat/quant/gguf_quantize.hpp>

#include <unistd.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "../iq_vector_inputs.hpp"
#include "../iq_vectors.hpp"
#include "ggml_library.hpp"

namespace {
namespace ggml_iq_bytes_test {

namespace ggml = cogqat::test::ggml;
namespace vectors = cogqat::test::iq_vectors;

// Floats equal bit for bit (signed zeros included).
bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// ggml builds its neighbour maps in ggml_quantize_init: about 2 s for iq2_xxs, 4 s for iq2_xs, 6 s for iq2_s and
// 15 s for iq1_s/iq1_m on one core. By default the bytes are compared for the types whose maps are quick to build
// (iq2_xxs, iq3_xxs, iq3_s); --all-types (or writing the vectors) compares all seven. The recorded digests
// (tests/iq_vectors.hpp, checked by the unit tests) cover all seven in every build.
bool& all_types = ggml::iq_options().all_types;
const char*& vectors_out = ggml::iq_options().vectors_out;

bool compare_bytes_of(cogqat::ggml_type type) {
    return all_types || type == cogqat::ggml_type::iq2_xxs || type == cogqat::ggml_type::iq3_xxs || type == cogqat::ggml_type::iq3_s;
}

std::string hex(std::uint64_t v) {
    char text[24];
    std::snprintf(text, sizeof text, "0x%016llxull", static_cast<unsigned long long>(v));
    return text;
}

// llama.cpp's load_imatrix (tools/quantize/quantize.cpp) through ggml's own reader: the imatrix.* keys
// required, NAME.in_sum2 paired with NAME.counts, each sum divided by its matrix's count (1 where it is 0).
std::map<std::string, std::vector<float>> llama_cpp_load_imatrix(const std::filesystem::path& file) {
    void* ctx = nullptr;
    const auto& gguf = ggml::bound().gguf;
    void* g = gguf.init_from_file(file.c_str(), {false, &ctx});
    REQUIRE(g != nullptr);
    for (const char* key : {"imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size"}) CHECK(gguf.find_key(g, key) >= 0);
    std::map<std::string, std::pair<const void*, const void*>> pairs;
    for (const void* t = gguf.first_tensor(ctx); t; t = gguf.next_tensor(ctx, t)) {
        std::string name = gguf.name(t);
        for (const std::string suffix : {".in_sum2", ".counts"})
            if (name.size() > suffix.size() && name.ends_with(suffix)) {
                auto& pair = pairs[name.substr(0, name.size() - suffix.size())];
                (suffix == ".in_sum2" ? pair.first : pair.second) = t;
            }
    }
    std::map<std::string, std::vector<float>> weights;
    for (const auto& [name, pair] : pairs) {
        REQUIRE(pair.first != nullptr);
        REQUIRE(pair.second != nullptr);
        const auto n = gguf.nelements(pair.first), matrices = gguf.nelements(pair.second), columns = n / matrices;
        const float* sums = gguf.data_f32(pair.first);
        const float* counts = gguf.data_f32(pair.second);
        auto& e = weights[name];
        e.resize(static_cast<std::size_t>(n));
        for (std::int64_t j = 0; j < matrices; ++j)
            for (std::int64_t i = 0; i < columns; ++i) {
                const auto at = static_cast<std::size_t>(j * columns + i);
                e[at] = counts[j] > 0.0f ? sums[at] / counts[j] : 1.0f;
            }
    }
    gguf.free_gguf(g);
    gguf.free_ggml(ctx);
    return weights;
}

TEST_SUITE_BEGIN("ggml-iq-bytes");

TEST_CASE("an imatrix we write, read by ggml as llama.cpp's quantize reads it, gives ggml our --imatrix bytes") {
    // run_interop.sh points COGQAT_INTEROP_IMATRIX_DIR at what the CLI wrote (synthetic-f32.gguf, imatrix.gguf
    // and synthetic-iq2_xxs.gguf, --preset iq2_xxs --imatrix); otherwise the library writes the same here.
    std::filesystem::path dir;
    std::filesystem::path quantized;
    if (const char* env = std::getenv("COGQAT_INTEROP_IMATRIX_DIR"); env && *env) {
        dir = env;
        quantized = dir / "synthetic-iq2_xxs.gguf";
    } else {
        dir = std::filesystem::temp_directory_path() / ("cogqat-imatrix-interop-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir);
        cogqat::io::write_llama_gguf(cogqat::make_synthetic_llama(7), dir / "synthetic-f32.gguf");
        const auto source = cogqat::gguf::reader::open(dir / "synthetic-f32.gguf");
        cogqat::calibration_options calibration;
        calibration.tokens = 64;
        calibration.sequence_length = 32;
        const auto m = cogqat::compute_importance(cogqat::io::read_llama_model(source), calibration, 2);
        cogqat::io::write_imatrix(dir / "imatrix.gguf", m);
        const auto read = cogqat::io::read_imatrix(dir / "imatrix.gguf");
        cogqat::quantize_options o;
        o.policy.preset = cogqat::find_preset("q8_0");
        for (const char* rule :
             {"blk\\.0\\.attn_q=q4_1", "attn_q=iq3_s", "blk\\.1\\.ffn_up=q6_K", "blk\\.0\\.ffn_up=q4_0", "attn_k=iq2_xxs",
              "blk\\.1\\.attn_output=q3_K", "attn_output=iq3_xxs", "blk\\.1\\.ffn_gate=q5_1", "ffn_gate=iq4_xs", "blk\\.1\\.attn_v=q2_K",
              "attn_v=iq4_nl", "blk\\.1\\.ffn_down=q5_0", "ffn_down=q5_K", "output=q4_K"})
            o.policy.overrides.push_back(cogqat::parse_override(rule));
        o.importance = &read;
        o.threads = 2;
        quantized = dir / "synthetic-imatrix.gguf";
        (void)cogqat::quantize_gguf(source, quantized, o);
    }
    const auto weights = llama_cpp_load_imatrix(dir / "imatrix.gguf");
    const auto source = cogqat::gguf::reader::open(dir / "synthetic-f32.gguf");
    const auto ours = cogqat::gguf::reader::open(quantized);
    std::size_t compared = 0;
    for (const auto& t : ours.tensors()) {
        if (!cogqat::uses_importance(t.type)) continue;  // the types whose ggml search reads the weights
        CAPTURE(t.name);
        // A tensor without an entry (an untied token embedding, only looked up) was quantized without, as ggml does.
        const auto it = weights.find(t.name);
        const float* imatrix = it == weights.end() ? nullptr : it->second.data();
        const auto* s = source.find_tensor(t.name);
        REQUIRE(s != nullptr);
        REQUIRE(s->type == cogqat::ggml_type::f32);
        const auto in = source.tensor_data(*s);
        std::vector<float> values(static_cast<std::size_t>(s->elements()));
        std::memcpy(values.data(), in.data(), in.size());
        std::vector<std::byte> theirs(cogqat::storage_size(t.type, values.size()));
        ggml::bound().quantize_init(static_cast<int>(t.type));
        ggml::bound().quantize_chunk(static_cast<int>(t.type), values.data(), theirs.data(), 0, static_cast<std::int64_t>(t.shape[1]),
                                     static_cast<std::int64_t>(t.shape[0]), imatrix);
        const auto bytes = ours.tensor_data(t);
        CHECK(std::vector<std::byte>(bytes.begin(), bytes.end()) == theirs);
        ++compared;
    }
    MESSAGE(compared << " tensors of " << quantized.string()
                     << " compared with ggml_quantize_chunk given llama.cpp's reading of the imatrix");
    CHECK(compared >= 4);
    if (!std::getenv("COGQAT_INTEROP_IMATRIX_DIR")) std::filesystem::remove_all(dir);
}

TEST_CASE("ggml's prebuilt quantizer writes our grid i-quant bytes, with and without importance weights") {
    const auto importance = vectors::importance();
    std::string recorded;
    for (const auto type : vectors::types) {
        if (!compare_bytes_of(type)) continue;
        CAPTURE(cogqat::info(type).name);
        for (const auto name : vectors::cases) {
            const std::string case_name(name);
            CAPTURE(case_name);
            const auto values = vectors::values(name);
            for (const bool weighted : {true, false}) {
                if (!weighted && cogqat::requires_importance(type)) continue;
                CAPTURE(weighted);
                const std::span<const float> weights = weighted ? std::span<const float>(importance) : std::span<const float>();
                const auto theirs = ggml::quantize(type, values, vectors::row_length, weighted ? importance.data() : nullptr);
                CHECK(cogqat::quantize_iq(type, values, vectors::row_length, weights) == theirs);
                bool found = false;
                for (const auto& r : vectors::ggml_bytes) {
                    if (r.type != cogqat::info(type).name || r.input != name || r.importance != weighted) continue;
                    found = true;
                    CHECK_MESSAGE(r.digest == vectors::digest(theirs), "tests/iq_vectors.hpp no longer records this ggml's bytes");
                }
                if (!vectors_out) CHECK(found);
                recorded += "{\"" + std::string(cogqat::info(type).name) + "\", \"" + case_name + "\", " + (weighted ? "true" : "false") +
                            ", " + hex(vectors::digest(theirs)) + "},\n";
            }
        }
    }
    if (!vectors_out) return;
    std::string decoded;
    for (const auto type : vectors::types)
        decoded += "{\"" + std::string(cogqat::info(type).name) + "\", " +
                   hex(vectors::digest(ggml::to_float(type, vectors::random_blocks(type, vectors::decode_blocks)))) + "},\n";
    std::ofstream out(vectors_out);
    out << "#pragma once\n// Digests (FNV-1a, tests/iq_vector_inputs.hpp) of what the prebuilt ggml (node-llama-cpp 3.22.1, ggml "
        << ggml::bound().version
        << ")\n// writes for the grid i-quant vector inputs, and of the floats its to_float decodes from the random blocks.\n"
        << "// Generated by `cogqat_interop_tests ggml-iq-bytes --write-vectors tests/iq_vectors.hpp`; do not edit.\n\n"
        << "#include <cstdint>\n#include <string_view>\n\nnamespace cogqat::test::iq_vectors {\n\n"
        << "struct recorded_bytes {\n    std::string_view type, input;\n    bool importance;\n    std::uint64_t digest;\n};\n"
        << "inline constexpr recorded_bytes ggml_bytes[] = {\n"
        << recorded << "};\n\n"
        << "struct recorded_floats {\n    std::string_view type;\n    std::uint64_t digest;\n};\n"
        << "inline constexpr recorded_floats ggml_floats[] = {\n"
        << decoded << "};\n\n}  // namespace cogqat::test::iq_vectors\n";
    REQUIRE(out.good());
}

TEST_CASE("ggml's to_float decodes any grid i-quant block to our floats (every grid point, sign and scale code)") {
    for (const auto type : vectors::types) {
        CAPTURE(cogqat::info(type).name);
        const auto bytes = vectors::random_blocks(type, vectors::decode_blocks);
        CHECK(same_bits(cogqat::dequantize_iq(type, bytes), ggml::to_float(type, bytes)));
    }
}

TEST_CASE("ggml's baseline CPU vec_dot gives our dot products with q8_K activations, bit for bit") {
    // libggml-cpu-x64.so is the variant without AVX: its iq vec_dots are ggml's generic reference loops.
    const auto dir = ggml::base_path().parent_path();
    void* cpu = dlopen((dir / "libggml-cpu-x64.so").c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!cpu) {
        MESSAGE("libggml-cpu-x64.so not found next to libggml-base: the dot products were not compared");
        return;
    }
    using vec_dot_fn = void (*)(int n, float* s, std::size_t bs, const void* x, std::size_t bx, const void* y, std::size_t by, int nrc);
    if (auto* init = reinterpret_cast<void (*)()>(dlsym(cpu, "ggml_cpu_init"))) init();  // ggml's fp16 tables
    const auto weights = cogqat::test::gaussian_values(4 * vectors::row_length, 47, 0.02);
    const auto x = cogqat::test::gaussian_values(vectors::row_length, 48);
    std::vector<std::byte> activations(cogqat::storage_size(cogqat::ggml_type::q8_K, x.size()));
    cogqat::quantize_activations(cogqat::ggml_type::q8_K, x, activations);
    const auto importance = vectors::importance();
    for (const auto type : vectors::types) {
        CAPTURE(cogqat::info(type).name);
        const std::string symbol = "ggml_vec_dot_" + std::string(cogqat::info(type).name) + "_q8_K";
        const auto theirs_fn = reinterpret_cast<vec_dot_fn>(dlsym(cpu, symbol.c_str()));
        REQUIRE(static_cast<bool>(theirs_fn));
        const auto bytes = cogqat::quantize_iq(type, weights, vectors::row_length, importance);
        const std::size_t row_bytes = cogqat::storage_size(type, vectors::row_length);
        for (std::size_t r = 0; r < 4; ++r) {
            const auto row = std::span<const std::byte>(bytes).subspan(r * row_bytes, row_bytes);
            float theirs = 0;
            theirs_fn(static_cast<int>(vectors::row_length), &theirs, 0, row.data(), 0, activations.data(), 0, 1);
            const float ours = cogqat::quantized_dot_for(type)(row, activations, vectors::row_length);
            CHECK(std::memcmp(&ours, &theirs, sizeof ours) == 0);
        }
    }
}

TEST_SUITE_END();

}  // namespace ggml_iq_bytes_test
}  // namespace
