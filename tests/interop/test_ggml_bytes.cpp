// Our quantizers against the prebuilt ggml that ships with node-llama-cpp, loaded at run time: for the same
// floats, ggml_quantize_chunk must write the bytes we write. Runs on random data for every weight format,
// and on every quantized tensor of the GGUF files named in $COGQAT_INTEROP_FILES (against the f32 tensors
// of $COGQAT_INTEROP_F32). Exit code 77 (skipped) when the library is not installed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cogqat/cogqat.hpp>
#include <cogqat/io/gguf.hpp>

#include <dlfcn.h>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "../random_data.hpp"

namespace {

using quantize_chunk_fn = std::size_t (*)(int type, const float* src, void* dst, std::int64_t start, std::int64_t nrows,
                                          std::int64_t n_per_row, const float* imatrix);
using quantize_init_fn = void (*)(int type);
quantize_chunk_fn ggml_quantize_chunk = nullptr;
quantize_init_fn ggml_quantize_init = nullptr;

std::filesystem::path ggml_base_path() {
    if (const char* env = std::getenv("COGQAT_GGML_BASE"); env && *env) return env;
    return COGQAT_DEFAULT_GGML_BASE;
}

std::vector<std::byte> ggml_quantize(cogqat::ggml_type type, std::span<const float> values, std::size_t row_length) {
    const std::size_t rows = values.size() / row_length;
    std::vector<std::byte> out(cogqat::storage_size(type, values.size()));
    ggml_quantize_init(static_cast<int>(type));
    const std::size_t written = ggml_quantize_chunk(static_cast<int>(type), values.data(), out.data(), 0, static_cast<std::int64_t>(rows),
                                                    static_cast<std::int64_t>(row_length), nullptr);
    REQUIRE(written == out.size());
    return out;
}

constexpr cogqat::ggml_type weight_types[] = {cogqat::ggml_type::q4_0, cogqat::ggml_type::q4_1, cogqat::ggml_type::q5_0,
                                              cogqat::ggml_type::q5_1, cogqat::ggml_type::q8_0, cogqat::ggml_type::q2_K,
                                              cogqat::ggml_type::q3_K, cogqat::ggml_type::q4_K, cogqat::ggml_type::q5_K,
                                              cogqat::ggml_type::q6_K, cogqat::ggml_type::f16,  cogqat::ggml_type::bf16};

}  // namespace

TEST_CASE("ggml's prebuilt quantizer writes our bytes for the same floats") {
    const auto gaussian = cogqat::test::gaussian_values(8 * 1024, 31, 0.05);
    const auto heavy = cogqat::test::laplace_with_outliers(8 * 1024, 32);
    for (auto type : weight_types) {
        CAPTURE(cogqat::info(type).name);
        for (const auto* values : {&gaussian, &heavy}) {
            CHECK(cogqat::quantize(type, *values) == ggml_quantize(type, *values, 1024));
        }
    }
}

TEST_CASE("every quantized tensor of the files we wrote is what ggml makes of the f32 source") {
    const char* f32_path = std::getenv("COGQAT_INTEROP_F32");
    const char* files = std::getenv("COGQAT_INTEROP_FILES");
    if (!f32_path || !files) {
        MESSAGE("COGQAT_INTEROP_F32 / COGQAT_INTEROP_FILES not set: only the random-data comparison ran");
        return;
    }
    const auto source = cogqat::gguf::reader::open(f32_path);
    std::istringstream list(files);
    std::size_t compared = 0;
    for (std::string path; list >> path;) {
        const auto file = cogqat::gguf::reader::open(path);
        for (const auto& t : file.tensors()) {
            if (t.type == cogqat::ggml_type::f32) continue;
            CAPTURE(path);
            CAPTURE(t.name);
            const auto* original = source.find_tensor(t.name);
            REQUIRE(original != nullptr);
            REQUIRE(original->type == cogqat::ggml_type::f32);
            const auto values = cogqat::dequantize(cogqat::ggml_type::f32, source.tensor_data(*original));
            const auto theirs = ggml_quantize(t.type, values, static_cast<std::size_t>(t.shape[0]));
            const auto ours = file.tensor_data(t);
            CHECK(std::equal(ours.begin(), ours.end(), theirs.begin(), theirs.end()));
            ++compared;
        }
    }
    MESSAGE(compared << " tensors compared with ggml");
    CHECK(compared > 0);
}

int main(int argc, char** argv) {
    const auto path = ggml_base_path();
    void* library = std::filesystem::exists(path) ? dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL) : nullptr;
    if (!library) {
        std::cout << "skipped: ggml's libggml-base not found at " << path.string()
                  << " (scripts/test.sh installs node-llama-cpp with npm; or set COGQAT_GGML_BASE)\n";
        return 77;
    }
    ggml_quantize_chunk = reinterpret_cast<quantize_chunk_fn>(dlsym(library, "ggml_quantize_chunk"));
    ggml_quantize_init = reinterpret_cast<quantize_init_fn>(dlsym(library, "ggml_quantize_init"));
    if (!ggml_quantize_chunk || !ggml_quantize_init) {
        std::cout << "libggml-base at " << path.string() << " lacks ggml_quantize_chunk\n";
        return 1;
    }
    doctest::Context context(argc, argv);
    return context.run();
}
