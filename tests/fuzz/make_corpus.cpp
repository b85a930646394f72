// Writes the fuzzer's seed corpus: small valid GGUF files that between them use every value type, nested
// arrays, several tensor types and shapes, both alignments and an empty file. Regenerate with
//   g++ -std=c++20 -Iinclude tests/fuzz/make_corpus.cpp -o /tmp/make_corpus && /tmp/make_corpus tests/fuzz/corpus

#include <cogqat/io/gguf.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

using namespace cogqat;
using gguf::value;

namespace {

/// A fixed pattern, so that the corpus is the same on every run.
gguf::writer::fill_function pattern(std::uint8_t seed) {
    return [seed](std::span<std::byte> out) {
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::byte>((i * 37 + seed) & 0xFF);
    };
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: make_corpus DIRECTORY\n";
        return 2;
    }
    const std::filesystem::path dir = argv[1];
    std::filesystem::create_directories(dir);

    gguf::writer(dir / "empty.gguf").finish();

    gguf::writer metadata(dir / "metadata.gguf");
    metadata.set("u8", std::uint8_t{1});
    metadata.set("i8", std::int8_t{-1});
    metadata.set("u16", std::uint16_t{2});
    metadata.set("i16", std::int16_t{-2});
    metadata.set("u32", std::uint32_t{3});
    metadata.set("i32", std::int32_t{-3});
    metadata.set("f32", 0.5f);
    metadata.set("bool", true);
    metadata.set("str", "text");
    metadata.set("u64", std::uint64_t{4});
    metadata.set("i64", std::int64_t{-4});
    metadata.set("f64", 0.25);
    metadata.set("a.str", std::vector<std::string>{"a", "", "bc"});
    metadata.set("a.bool", std::vector<bool>{true, false});
    metadata.set("a.f32", std::vector<float>{1.0f, -2.0f});
    metadata.set("a.i64", std::vector<std::int64_t>{});
    metadata.set("a.nested", std::vector<value>{std::vector<std::uint16_t>{1, 2}, std::vector<value>{std::vector<double>{3.0}}});
    metadata.finish();

    gguf::writer tensors(dir / "tensors.gguf");
    tensors.set("general.architecture", "llama");
    tensors.set("llama.block_count", std::uint32_t{1});
    tensors.add_tensor("f32", {4, 2}, ggml_type::f32, pattern(1));
    tensors.add_tensor("f16", {3}, ggml_type::f16, pattern(2));
    tensors.add_tensor("q8_0", {32}, ggml_type::q8_0, pattern(3));
    tensors.add_tensor("q4_K", {256}, ggml_type::q4_K, pattern(4));
    tensors.finish();

    gguf::writer aligned(dir / "aligned64.gguf");
    aligned.set("general.alignment", std::uint32_t{64});
    aligned.add_tensor("q4_0", {32, 1, 2}, ggml_type::q4_0, pattern(5));
    aligned.add_tensor("bf16", {2, 1, 1, 2}, ggml_type::bf16, pattern(6));
    aligned.add_tensor("empty", {0}, ggml_type::i8, pattern(7));
    aligned.add_tensor("i32", {1}, ggml_type::i32, pattern(8));
    aligned.finish();

    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        std::cout << entry.path().filename().string() << ": " << std::filesystem::file_size(entry.path()) << " bytes\n";
        static_cast<void>(gguf::reader::open(entry.path()));  // every seed must parse
    }
    return 0;
}
