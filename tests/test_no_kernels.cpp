// A program that links no SIMD kernels, as a user's program is when the kernel library was left out: the
// run-time query says so, backend::Simd and the GGUF entry points give the scalar reference's results, and the
// first of them to run warns once on stderr, unless the program chose the reference (COGQAT_SIMD=scalar, or
// use_isa("scalar") first). Built without doctest's main and without cogqat_simd_kernels, on purpose.
//
//   cogqat_no_kernels warn     expects the warning exactly once
//   cogqat_no_kernels use_isa  calls use_isa("scalar") first and expects no warning
//   cogqat_no_kernels quiet    run with COGQAT_SIMD=scalar; expects no warning

#include <cogqat/core/policy.hpp>
#include <cogqat/dispatch/kernel_table.hpp>
#include <cogqat/format/codec.hpp>
#include <cogqat/format/ggml_type.hpp>
#include <cogqat/quant/quantizer.hpp>

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace {

int failures = 0;

void check(bool ok, const char* what) {
    if (!ok) {
        std::printf("FAILED: %s\n", what);
        ++failures;
    }
}

std::string read_file(const std::string& path) {
    std::string text;
    if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
        char buffer[4096];
        std::size_t got = 0;
        while ((got = std::fread(buffer, 1, sizeof buffer, f)) > 0) text.append(buffer, got);
        std::fclose(f);
    }
    return text;
}

std::size_t occurrences(std::string_view text, std::string_view what) {
    std::size_t count = 0;
    for (auto at = text.find(what); at != std::string_view::npos; at = text.find(what, at + 1)) ++count;
    return count;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace cogqat;
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode != "warn" && mode != "use_isa" && mode != "quiet") {
        std::printf("usage: %s warn|use_isa|quiet\n", argv[0]);
        return 2;
    }
    // stderr into a file, to count the warnings the program printed.
    const std::string log = std::string(argc > 2 ? argv[2] : "cogqat_no_kernels") + "." + mode + ".stderr";
    if (!std::freopen(log.c_str(), "w", stderr)) {
        std::printf("cannot write %s\n", log.c_str());
        return 2;
    }
    if (mode == "use_isa") check(dispatch::use_isa("scalar") == dispatch::scalar_isa, "use_isa(\"scalar\") with nothing linked");

    check(!dispatch::kernels_linked(), "kernels_linked() is false");
    check(dispatch::linked_isas() == std::vector<std::string_view>{dispatch::scalar_isa}, "linked_isas() is {scalar}");
    check(dispatch::describe() == "cogqat SIMD: active scalar; no SIMD kernels linked", "describe()");
    check(dispatch::active().isa == dispatch::scalar_isa, "the scalar table is active");
    bool refused = false;
    try {
        (void)dispatch::table_for("avx2");
    } catch (const invalid_argument_error&) {
        refused = true;
    }
    check(refused, "table_for(\"avx2\") is refused");

    std::vector<float> values(4 * 64);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = std::sin(0.37f * static_cast<float>(i)) * 3.0f;
    const auto x = make_matrix_view(values.data(), 4, 64);
    using simd = quantizer<BitWidth<4>, PerGroup<32>, Symmetric, backend::Simd>;
    using scalar = quantizer<BitWidth<4>, PerGroup<32>, Symmetric, backend::Scalar>;
    for (int round = 0; round < 2; ++round) {
        const auto got = simd::quantize(x);
        const auto expected = scalar::quantize(x);
        check(std::vector<std::uint8_t>(got.codes().begin(), got.codes().end()) ==
                      std::vector<std::uint8_t>(expected.codes().begin(), expected.codes().end()),
              "backend::Simd gives the scalar codes");
        check(simd::dequantize(got) == scalar::dequantize(expected), "backend::Simd gives the scalar floats");
    }
    const auto blocks = cogqat::quantize(ggml_type::q4_K, values);
    std::vector<std::byte> reference(blocks.size());
    quantize<formats::q4_K>(values, reference);
    check(blocks == reference, "quantize(q4_K) gives the reference's bytes");

    std::fflush(stderr);
    const std::string printed = read_file(log);
    const std::size_t warnings = occurrences(printed, dispatch::detail::missing_kernels_warning);
    check(warnings == (mode == "warn" ? 1u : 0u), mode == "warn" ? "the warning is printed exactly once" : "no warning");
    std::printf("%s: %zu warning(s); %s\n", mode.c_str(), warnings, failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
