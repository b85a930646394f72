// The llama.cpp interop tests, one program for the three suites (one unit: they share most of the library's
// code, which three programs compiled three times):
//   cogqat_interop_tests ggml-bytes [doctest options]       our quantizers' bytes against ggml's (test_ggml_bytes.cpp)
//   cogqat_interop_tests ggml-iq-bytes [--all-types] [--write-vectors FILE] [doctest options]
//                                                          the grid i-quants against ggml's (test_ggml_iq_bytes.cpp)
//   cogqat_interop_tests llamacpp-logits [doctest options]  our runtime against llama.cpp's logits (test_llamacpp_logits.cpp)
// Exit code 77 (skipped) when what a suite compares against is absent: ggml's libggml-base for the first two,
// the cases run_interop.sh writes for the third.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "ggml_library.hpp"

namespace {

int usage() {
    std::cerr << "usage: cogqat_interop_tests ggml-bytes|ggml-iq-bytes|llamacpp-logits [options]\n";
    return 2;
}

/// 0 when the suite can run, else the exit code (77: skipped, 1: a broken install).
int prepare(std::string_view suite) {
    if (suite == "llamacpp-logits") {
        if (std::getenv("COGQAT_LOGITS_CASES") && std::getenv("COGQAT_LOGITS_TEXT") && std::getenv("COGQAT_LOGITS_WINDOW")) return 0;
        std::cout << "skipped: COGQAT_LOGITS_CASES, COGQAT_LOGITS_TEXT and COGQAT_LOGITS_WINDOW are set by tests/interop/run_interop.sh\n";
        return 77;
    }
    std::string missing;
    switch (cogqat::test::ggml::load(missing)) {
        case cogqat::test::ggml::load_result::loaded:
            return 0;
        case cogqat::test::ggml::load_result::absent:
            std::cout << "skipped: ggml's libggml-base not found at " << cogqat::test::ggml::base_path().string()
                      << " (scripts/test.sh installs node-llama-cpp with npm; or set COGQAT_GGML_BASE)\n";
            return 77;
        case cogqat::test::ggml::load_result::incomplete:
            break;
    }
    std::cout << "libggml-base at " << cogqat::test::ggml::base_path().string() << " lacks " << missing << "\n";
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage();
    const std::string suite = argv[1];
    if (suite != "ggml-bytes" && suite != "ggml-iq-bytes" && suite != "llamacpp-logits") return usage();
    if (const int status = prepare(suite)) return status;
    const std::string filter = "--test-suite=" + suite;
    std::vector<char*> args{argv[0], const_cast<char*>(filter.c_str())};
    auto& iq = cogqat::test::ggml::iq_options();
    for (int i = 2; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (suite == "ggml-iq-bytes" && arg == "--all-types") {
            iq.all_types = true;
        } else if (suite == "ggml-iq-bytes" && arg == "--write-vectors" && i + 1 < argc) {
            iq.vectors_out = argv[++i];
            iq.all_types = true;
        } else {
            args.push_back(argv[i]);
        }
    }
    doctest::Context context(static_cast<int>(args.size()), args.data());
    return context.run();
}
