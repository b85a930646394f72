// Our byte-level BPE tokenizer against a real llama.cpp's, one vocabulary per pre-tokenizer (default, llama-bpe,
// qwen2). Two steps around llamacpp_tokenize.mjs (run_bpe_interop.sh drives them):
//   test_bpe_interop prepare WORK [TRAINING_TEXT]  trains the vocabularies (tests/bpe_fixture.hpp; on the text and
//       the corpus, merges across word boundaries so that a word split too finely shows), writes WORK/bpe-PRE.gguf (a tiny random llama carrying each) and the
//       corpus: WORK/corpus.bin (each entry's bytes, for us) and WORK/corpus.json (what llama.cpp reads: JavaScript
//       strings cannot hold malformed UTF-8, so each malformed byte is written as the U+FFFD llama.cpp reads it
//       as, core/unicode.hpp; the raw bytes are what we tokenize).
//   test_bpe_interop check WORK  compares llama.cpp's ids (WORK/llamacpp-PRE.txt) with ours, with and without
//       special-token parsing, and its detokenized text with ours, with and without special tokens' text; prints
//       the corpus size and the result; exit 1 on any difference.
// The corpus: English, code, digit runs, whitespace runs, emoji, CJK, accented Latin, contractions in both cases,
// special tokens, malformed UTF-8, and random joins of all of them.

#include <cogqat/core/unicode.hpp>
#include <cogqat/core/utf8.hpp>
#include <cogqat/gguf/reader.hpp>
#include <cogqat/io/llama_gguf.hpp>
#include <cogqat/io/read_llama.hpp>
#include <cogqat/model/bpe_tokenizer.hpp>
#include <cogqat/model/synthetic.hpp>
#include <cogqat/model/tokenizer.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../bpe_fixture.hpp"

using namespace cogqat;

namespace {

const std::vector<std::string> pre_tokenizers{"default", "llama-bpe", "qwen2"};
constexpr std::size_t merges = 3000;

/// The hand-written entries; `corpus()` adds random joins of their parts.
std::vector<std::string> fixed_entries() {
    return {
            "Once upon a time, there was a little girl named Lily. She loved to play outside.",
            "It's Tom's ball. They're happy, we've won, I'm here, you'll see, he'd go, don't stop.",
            "IT'S TOM'S BALL. THEY'RE HAPPY, WE'VE WON, I'M HERE, YOU'LL SEE, HE'D GO, DON'T STOP. It'S mIxEd'Re",
            "he'Sam THEY'REALLY WE'LLAMA I'Ma you'VEry it'Dog o'Tis 'tHis 'sun",
            "int main(int argc, char** argv) {\n    for (int i = 0; i < argc; ++i) printf(\"%s\\n\", argv[i]);\n    return 0;\n}\n",
            "def f(x):\n\tif x >= 10 and x != 0:\n\t\treturn x ** 2  # square\n\treturn [y for y in range(x)]\n",
            "a->b; c::d; e ||= f && g; h <<= 3; $var = @list[0]; `tick` ~x ^ y | z",
            "Run `make` then `make test`; `a` `b` ``c`` ```d``` and `e`, `f` or `g`.",
            "1234567890123456789 3.14159265358979 1,000,000 007 42nd 2024-12-06 12:30:45 +1 (555) 010-9999",
            "\xD9\xA3\xD9\xA4\xD9\xA5 \xC2\xB2\xC2\xB3 \xE2\x85\xAB \xEF\xBC\x91\xEF\xBC\x92\xEF\xBC\x93",  // Arabic-Indic, superscripts, roman, fullwidth
            "a  b   c    d\t\te\n\nf\n\n\ng \n h\t\n\ti\r\nj\r\n\r\nk   ",
            "   leading spaces",
            "trailing spaces   ",
            "\n\n\n",
            " ",
            "\t",
            "  \n  \n  ",
            "x \t \n \t y",
            "\r\r\n\n",
            "\xF0\x9F\x98\x80\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD family "
            "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7 "
            "\xF0\x9F\x87\xAB\xF0\x9F\x87\xB7 \xE2\x9D\xA4\xEF\xB8\x8F!",
            "\xE6\x9D\xB1\xE4\xBA\xAC\xE3\x81\xAF\xE6\x97\xA5\xE6\x9C\xAC\xE3\x81\xAE\xE9\xA6\x96\xE9\x83\xBD\xE3\x81\xA7\xE3\x81\x99\xE3"
            "\x80\x82 "
            "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C\xEF\xBC\x81 "
            "\xEC\x95\x88\xEB\x85\x95\xED\x95\x98\xEC\x84\xB8\xEC\x9A\x94",
            "caf\xC3\xA9 cr\xC3\xA8me br\xC3\xBBl\xC3\xA9\x65 na\xC3\xAFve fa\xC3\xA7\x61\x64\x65 \xC3\x85ngstr\xC3\xB6m \xC3\x98resund "
            "stra\xC3\x9F\x65 "
            "e\xCC\x81 \xC5\x81\xC3\xB3\x64\xC5\xBA",
            "non\xC2\xA0"
            "breaking\xE3\x80\x80ideographic\xE2\x80\x83"
            "em\xE2\x80\x8Bzero-width",
            "<|endoftext|>Hello<tag> world<|im_start|>user\n<tag><tag>x<|endoftext|>",
            "abc\xFF"
            "def",
            "\xC3(",
            "x\xE2\x82",
            "\x80\x80 x",
            "caf\xE9 na\xEFve",
            "\xF0\x9F\x98 half emoji",
            "\xFE\xFF\xC0 z",
            "",
            "'",
            "'s",
            "''",
            "a'",
            "'S'T'RE",
            "\xE2\x80\x94 dash \xE2\x80\x9Cquoted\xE2\x80\x9D \xC2\xBFqu\xC3\xA9?",
    };
}

std::vector<std::string> corpus() {
    std::vector<std::string> out = fixed_entries();
    const std::vector<std::string> parts{"the",
                                         " cat",
                                         "'s",
                                         "'LL",
                                         "  ",
                                         "\n",
                                         "\t",
                                         "\r\n",
                                         "123",
                                         "4567",
                                         "\xC3\xA9",
                                         "\xE6\x9D\xB1",
                                         "\xF0\x9F\x98\x80",
                                         "!",
                                         "?!",
                                         "{",
                                         "->",
                                         "\xFF",
                                         "\x80",
                                         "<tag>",
                                         "<|endoftext|>",
                                         " \xC2\xA0",
                                         "\xD9\xA3",
                                         "x=1;",
                                         "   ",
                                         "\n\n",
                                         "Lily",
                                         " Tom",
                                         "DON'T"};
    std::mt19937 rng(21);
    for (int i = 0; i < 400; ++i) {
        std::string s;
        for (int n = 1 + static_cast<int>(rng() % 12); n > 0; --n) s += parts[rng() % parts.size()];
        out.push_back(s);
    }
    return out;
}

/// The text llama.cpp's pre-tokenizer reads `raw` as, written back as UTF-8.
std::string as_llamacpp_reads(const std::string& raw) {
    std::string out;
    for (const char32_t c : lenient_code_points(raw)) append_utf8(out, c);
    return out;
}

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\', out += c;
        } else if (u < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", u);
            out += buf;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

/// The string a JSON string literal (as JSON.stringify writes it) stands for, as UTF-8.
std::string json_unquote(const std::string& literal) {
    std::string out;
    const auto hex4 = [&](std::size_t at) { return static_cast<char32_t>(std::stoul(literal.substr(at, 4), nullptr, 16)); };
    for (std::size_t i = 1; i + 1 < literal.size(); ++i) {
        if (literal[i] != '\\') {
            out += literal[i];
            continue;
        }
        const char e = literal[++i];
        if (e == 'u') {
            char32_t c = hex4(i + 1);
            i += 4;
            if (c >= 0xD800 && c < 0xDC00 && literal.compare(i + 1, 2, "\\u") == 0) {
                c = 0x10000 + ((c - 0xD800) << 10) + (hex4(i + 3) - 0xDC00);
                i += 6;
            }
            append_utf8(out, c);
        } else {
            out += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == 'b' ? '\b' : e == 'f' ? '\f' : e;
        }
    }
    return out;
}

std::string read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    return {std::istreambuf_iterator<char>(in), {}};
}

int prepare(const std::string& work, const std::string& training_path) {
    const auto entries = corpus();
    std::string training;
    if (!training_path.empty()) {
        std::ifstream in(training_path);
        // The first 600 lines: enough words for the merges, cheap to train on.
        for (std::string line; training.size() < 60000 && std::getline(in, line);) training += line + "\n";
    }
    for (const auto& e : entries) training += e + "\n";
    std::ofstream bin(work + "/corpus.bin", std::ios::binary), json(work + "/corpus.json");
    json << "[";
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const std::string seen = as_llamacpp_reads(entries[i]);
        if (!is_valid_utf8(seen)) throw std::runtime_error("corpus entry " + std::to_string(i) + " is not one JavaScript can carry");
        json << (i ? ",\n" : "") << json_string(seen);
        const std::uint32_t n = static_cast<std::uint32_t>(entries[i].size());
        bin.write(reinterpret_cast<const char*>(&n), sizeof n);
        bin.write(entries[i].data(), static_cast<std::streamsize>(n));
        bytes += n;
    }
    json << "]\n";
    for (const auto& pre : pre_tokenizers) {
        const vocabulary v = test::train_bpe(training, merges, pre, true);
        llama_weights w = make_synthetic_llama(21, {64, 128, 1, 2, 2, static_cast<std::uint32_t>(v.pieces.size()), 64});
        w.vocab = v;
        w.name = "bpe-" + pre;
        io::write_llama_gguf(w, work + "/bpe-" + pre + ".gguf");
        std::cout << "bpe-" << pre << ".gguf: " << v.pieces.size() << " tokens, " << v.merges.size() << " merges\n";
    }
    std::cout << "corpus: " << entries.size() << " entries, " << bytes << " bytes\n";
    return 0;
}

int check(const std::string& work) {
    std::vector<std::string> entries;
    const std::string bin = read_all(work + "/corpus.bin");
    for (std::size_t at = 0; at + 4 <= bin.size();) {
        std::uint32_t n = 0;
        std::memcpy(&n, bin.data() + at, sizeof n);
        entries.push_back(bin.substr(at + 4, n));
        at += 4 + n;
    }
    bool ok = true;
    for (const auto& pre : pre_tokenizers) {
        const auto file = gguf::reader::open(work + "/bpe-" + pre + ".gguf");
        const tokenizer tok = io::read_tokenizer(file);
        std::istringstream theirs(read_all(work + "/llamacpp-" + pre + ".txt"));
        std::size_t compared = 0, tokens = 0, differ = 0, detokenized = 0, texts_differ = 0;
        const auto next_line = [&] {
            std::string line;
            if (!std::getline(theirs, line)) throw std::runtime_error("llamacpp-" + pre + ".txt ends early");
            return line;
        };
        for (std::size_t i = 0; i < entries.size(); ++i) {
            std::vector<tokenizer::token> ours;
            for (const bool special : {false, true}) {
                std::vector<tokenizer::token> expected;
                std::istringstream ids(next_line());
                for (tokenizer::token id; ids >> id;) expected.push_back(id);
                ours = tok.bpe()->encode(entries[i], false, special);
                ++compared, tokens += expected.size();
                if (ours == expected) continue;
                if (++differ <= 5) {
                    std::cout << pre << ": entry " << i << (special ? " (special tokens parsed)" : "") << " " << json_string(entries[i])
                              << "\n  llama.cpp:";
                    for (auto id : expected) std::cout << ' ' << id;
                    std::cout << "\n  ours:     ";
                    for (auto id : ours) std::cout << ' ' << id;
                    std::cout << '\n';
                }
            }
            // JavaScript received llama.cpp's text with each ill-formed part as U+FFFD (WHATWG's maximal subparts).
            for (const bool special : {false, true}) {
                const std::string expected = json_unquote(next_line()), text = valid_utf8(tok.bpe()->detokenize(ours, special));
                ++detokenized;
                if (text == expected) continue;
                if (++texts_differ <= 5)
                    std::cout << pre << ": entry " << i << " detokenized" << (special ? " with special tokens" : "")
                              << "\n  llama.cpp: " << json_string(expected) << "\n  ours:      " << json_string(text) << '\n';
            }
        }
        std::cout << pre << ": " << compared << " tokenizations of " << entries.size() << " entries, " << tokens << " tokens, "
                  << (differ ? std::to_string(differ) + " differ" : std::string("all equal")) << "; " << detokenized << " detokenizations, "
                  << (texts_differ ? std::to_string(texts_differ) + " differ" : std::string("all equal")) << '\n';
        ok = ok && differ == 0 && texts_differ == 0;
    }
    return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const std::string mode = argc > 2 ? argv[1] : "";
        if (mode == "prepare") return prepare(argv[2], argc > 3 ? argv[3] : "");
        if (mode == "check") return check(argv[2]);
        std::cerr << "usage: test_bpe_interop prepare WORK [TRAINING_TEXT] | check WORK\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "test_bpe_interop: " << e.what() << '\n';
        return 1;
    }
}
