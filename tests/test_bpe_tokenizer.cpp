// The byte-level BPE tokenizer (model/bpe_tokenizer.hpp) and its pre-tokenizers (model/bpe_pretokenizer.hpp):
// the code point classes against hand-checked ones, each pattern's splits of hand-checked strings, merges by hand
// on tiny vocabularies and against the quadratic definition on a trained one, special tokens, BOS/EOS, the round
// trip, the GGUF keys read, written and kept by quantization, and every refusal. Equality with llama.cpp itself
// is the interop test's (tests/interop/test_bpe_interop.cpp).

#include <doctest/doctest.h>

#include <cogqat/core/unicode.hpp>
#include <cogqat/gguf/reader.hpp>
#include <cogqat/io/llama_gguf.hpp>
#include <cogqat/io/read_llama.hpp>
#include <cogqat/model/bpe_pretokenizer.hpp>
#include <cogqat/model/bpe_tokenizer.hpp>
#include <cogqat/model/evaluate.hpp>
#include <cogqat/model/synthetic.hpp>
#include <cogqat/model/tokenizer.hpp>
#include <cogqat/quant/gguf_quantize.hpp>

#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bpe_fixture.hpp"

using namespace cogqat;

namespace {

const std::string training_text =
        "Once upon a time, there was a little girl named Lily. She liked to play outside in the sun with her dog.\n"
        "One day, Lily's mom said: \"Don't go far!\" Lily smiled. They'll be back at 12:30, she thought; it's 2024.\n"
        "int main() { return 0; }  // the answer is 42\n\tfor (int i = 0; i < 10; ++i) x += i * 3.14159;\n"
        "The café served crème brûlée to 1234567 guests. 東京 is big. 😀 I'M HAPPY, YOU'RE TOO, WE'VE WON.\n";

/// The words of `text` under `pattern`, as the bytes they stand for.
std::vector<std::string> split(std::string_view text, bpe_pre_tokenizer pattern) {
    std::vector<std::string> out;
    for (const auto& w : bpe_words(text, pattern)) out.push_back(bpe_piece_bytes(w));
    return out;
}

/// A tiny vocabulary: the 256 byte tokens, then `pieces` (each the join of a merge), then bpe_specials.
vocabulary tiny(const std::vector<std::string>& merges, const std::string& pre = "", const std::vector<std::string>& extra = {}) {
    vocabulary v = test::train_bpe("", 0, pre);
    v.pieces.resize(256), v.kinds.resize(256);
    for (const auto& m : merges) {
        v.merges.push_back(m);
        const std::string joined = m.substr(0, m.find(' ', 1)) + m.substr(m.find(' ', 1) + 1);
        if (std::find(v.pieces.begin(), v.pieces.end(), joined) == v.pieces.end())
            v.pieces.push_back(joined), v.kinds.push_back(token_kind::normal);
    }
    for (const auto& p : extra) v.pieces.push_back(p), v.kinds.push_back(token_kind::normal);
    for (const auto& [piece, kind] : test::bpe_specials) v.pieces.push_back(piece), v.kinds.push_back(kind);
    v.bos_id = v.eos_id = static_cast<std::uint32_t>(v.pieces.size() - test::bpe_specials.size());
    return v;
}

/// The id of `piece` in `v`.
tokenizer::token id_of(const vocabulary& v, const std::string& piece) {
    const auto it = std::find(v.pieces.begin(), v.pieces.end(), piece);
    REQUIRE(it != v.pieces.end());
    return static_cast<tokenizer::token>(it - v.pieces.begin());
}

}  // namespace

TEST_CASE("unicode classes: the generated table's categories and White_Space, as llama.cpp's tables give them") {
    CHECK(category_of(U'a') == unicode_category::letter);
    CHECK(category_of(U'\u00E9') == unicode_category::letter);      // é
    CHECK(category_of(U'\u6771') == unicode_category::letter);      // 東
    CHECK(category_of(U'\U0002EBF0') == unicode_category::letter);  // CJK Extension I (Unicode 15.1)
    CHECK(category_of(U'7') == unicode_category::number);
    CHECK(category_of(U'\u0663') == unicode_category::number);  // Arabic-Indic three
    CHECK(category_of(U'\u00B2') == unicode_category::number);  // superscript two
    CHECK(category_of(U'!') == unicode_category::punctuation);
    CHECK(category_of(U'\u2014') == unicode_category::punctuation);  // em dash
    CHECK(category_of(U'$') == unicode_category::symbol);
    CHECK(category_of(U'\U0001F600') == unicode_category::symbol);  // 😀
    CHECK(category_of(U'\u0301') == unicode_category::mark);
    CHECK(category_of(U' ') == unicode_category::separator);
    CHECK(category_of(U'\n') == unicode_category::control);
    CHECK(category_of(U'\u0378') == unicode_category::undefined);
    CHECK(category_of(char32_t{0x110000}) == unicode_category::undefined);
    CHECK(is_unicode_whitespace(U'\u3000'));
    CHECK(is_unicode_whitespace(U'\u0085'));
    CHECK_FALSE(is_unicode_whitespace(U'\u200B'));  // zero width space is not White_Space
}

TEST_CASE("lenient_code_points reads malformed UTF-8 as llama.cpp does") {
    CHECK(lenient_code_points("a\xC3\xA9") == std::vector<char32_t>{U'a', U'\u00E9'});
    // A stray continuation byte, a truncated sequence and a byte that starts none: one U+FFFD each byte.
    CHECK(lenient_code_points("\x80") == std::vector<char32_t>{0xFFFD});
    CHECK(lenient_code_points("\xE2\x82z") == std::vector<char32_t>{0xFFFD, 0xFFFD, U'z'});
    CHECK(lenient_code_points("\xFF") == std::vector<char32_t>{0xFFFD});
    // No overlong or surrogate checks: they decode to what their bits say.
    CHECK(lenient_code_points(std::string_view("\xC0\x80", 2)) == std::vector<char32_t>{0});
    CHECK(lenient_code_points("\xED\xA0\x80") == std::vector<char32_t>{0xD800});
    // Beyond U+10FFFF (where llama.cpp throws) each byte is malformed.
    CHECK(lenient_code_points("\xF7\xBF\xBF\xBF") == std::vector<char32_t>(4, 0xFFFD));
}

TEST_CASE("GPT-2's byte alphabet: printable bytes stand for themselves, the rest for U+0100 onwards") {
    CHECK(test::byte_piece(' ') == "\xC4\xA0");   // Ġ
    CHECK(test::byte_piece('\n') == "\xC4\x8A");  // Ċ
    CHECK(test::byte_piece('a') == "a");
    CHECK(test::byte_piece(0xAD) == "\xC5\x83");  // the last of the 68
    for (unsigned b = 0; b < 256; ++b)
        CHECK(bpe_piece_bytes(test::byte_piece(static_cast<unsigned char>(b))) == std::string(1, static_cast<char>(b)));
    // A code point outside the alphabet is written as llama.cpp writes it.
    CHECK(bpe_piece_bytes("\xE4\xB8\xAD") == "[UNK_BYTE_0xe4b8ad\xE4\xB8\xAD]");
}

TEST_CASE("pre-tokenizers split hand-checked strings as llama.cpp's matchers do") {
    using P = bpe_pre_tokenizer;
    const std::string text = "Hello world's 12345 ok!!\n\n  x";
    // The default: punctuation runs are cut out first (so "'s" is no contraction), digits in threes; a
    // whitespace run before a word leaves its last space to the word.
    CHECK(split(text, P::gpt2) == std::vector<std::string>{"Hello", " world", "'", "s", " ", "123", "45", " ok", "!!", "\n\n ", " x"});
    CHECK(split(text, P::llama3) == std::vector<std::string>{"Hello", " world", "'s", " ", "123", "45", " ok", "!!\n\n", " ", " x"});
    CHECK(split(text, P::qwen2) ==
          std::vector<std::string>{"Hello", " world", "'s", " ", "1", "2", "3", "4", "5", " ok", "!!\n\n", " ", " x"});
    // Contractions fold case in Llama 3's pattern only.
    CHECK(split("I'M here", P::llama3) == std::vector<std::string>{"I", "'M", " here"});
    CHECK(split("I'M here", P::gpt2) == std::vector<std::string>{"I", "'", "M", " here"});
    CHECK(split("we'll", P::gpt2) == std::vector<std::string>{"we", "'", "ll"});
    // The default's first pass takes every ASCII punctuation mark and symbol but the backtick.
    CHECK(split("a `b`+c", P::gpt2) == std::vector<std::string>{"a", " `", "b", "`", "+", "c"});
    // A non-letter lead joins the letters after it; whitespace before a newline goes with it.
    CHECK(split("café 東京😀.x", P::llama3) == std::vector<std::string>{"café", " 東京", "😀.", "x"});
    CHECK(split("a  \n\tb", P::llama3) == std::vector<std::string>{"a", "  \n", "\tb"});
    CHECK(split("a  \n\tb", P::gpt2) == std::vector<std::string>{"a", "  \n", "\t", "b"});
    CHECK(split("x   ", P::llama3) == std::vector<std::string>{"x", "   "});
    // Malformed bytes are U+FFFD, a symbol: a lead before letters.
    CHECK(split("a\xFF"
                "b",
                P::llama3) == std::vector<std::string>{"a",
                                                       "\xEF\xBF\xBD"
                                                       "b"});
    CHECK(split("", P::gpt2).empty());
}

TEST_CASE("bpe merges: lowest rank first, leftmost on ties, stale pairs skipped") {
    // "b c" outranks "a b": abc -> a, bc.
    vocabulary v = tiny({"b c", "a b"});
    bpe_tokenizer tok(v);
    CHECK(tok.encode("abc") == std::vector<tokenizer::token>{'a', id_of(v, "bc")});
    CHECK(tok.encode("ab") == std::vector<tokenizer::token>{id_of(v, "ab")});
    // Ties: the leftmost pair merges first: aaa -> aa, a.
    v = tiny({"a a"});
    CHECK(bpe_tokenizer(v).encode("aaa") == std::vector<tokenizer::token>{id_of(v, "aa"), 'a'});
    // Chains: h e, l l, he ll, hell o; the space is Ġ.
    v = tiny({"h e", "l l", "he ll", "hell o", "\xC4\xA0 w"});
    CHECK(bpe_tokenizer(v).encode("hello hello") ==
          std::vector<tokenizer::token>{id_of(v, "hello"), id_of(v, "\xC4\xA0"), id_of(v, "hello")});
    CHECK(bpe_tokenizer(v).encode(" w") == std::vector<tokenizer::token>{id_of(v, "\xC4\xA0w")});
}

TEST_CASE("bpe: Llama 3 takes a word that is a token whole; others merge it") {
    const vocabulary qwen = tiny({"a b"}, "qwen2", {"abc"});
    const vocabulary llama = tiny({"a b"}, "llama-bpe", {"abc"});
    CHECK(bpe_tokenizer(qwen).encode("abc") == std::vector<tokenizer::token>{id_of(qwen, "ab"), 'c'});
    CHECK(bpe_tokenizer(llama).encode("abc") == std::vector<tokenizer::token>{id_of(llama, "abc")});
}

TEST_CASE("bpe: a symbol the vocabulary lacks becomes its bytes' one-byte tokens, where there are some") {
    vocabulary v = tiny({});
    // Without Ã (C3 83), é's first character has no token, nor do its two bytes: it is dropped, as in llama.cpp.
    v.pieces[0xC3] = "unused-c3";
    const bpe_tokenizer tok(v);
    CHECK(tok.encode("\xC3\xA9") == std::vector<tokenizer::token>{0xA9});
}

TEST_CASE("bpe: special tokens are matched whole, control ones only when parsing specials") {
    const vocabulary v = tiny({"a b"});
    const bpe_tokenizer tok(v);
    const auto eot = id_of(v, "<|endoftext|>"), tag = id_of(v, "<tag>");
    CHECK(tok.encode("ab<tag>b<|endoftext|>", false, true) == std::vector<tokenizer::token>{id_of(v, "ab"), tag, 'b', eot});
    const auto plain = tok.encode("ab<tag>b<|endoftext|>", false, false);
    CHECK(plain.size() > 4);
    CHECK(plain[1] == tag);
    CHECK(std::find(plain.begin(), plain.end(), eot) == plain.end());
    CHECK(tok.decode(plain) == "ab<tag>b<|endoftext|>");
    CHECK(tok.piece(eot).empty());  // control tokens print as nothing
}

TEST_CASE("bpe: detokenize cleans spaces as llama.cpp's llama_detokenize does, but for Qwen2") {
    const std::string text = "Hello , world ! It 's ' quoted ' we 're , 'd 'll";
    vocabulary v = tiny({"l l"});
    CHECK(bpe_tokenizer(v).detokenize(bpe_tokenizer(v).encode(text)) == "Hello, world! It's'quoted'we're, 'd 'll");
    v.pre = "qwen2";
    CHECK(bpe_tokenizer(v).detokenize(bpe_tokenizer(v).encode(text)) == text);
    const bpe_tokenizer tok(v);
    const auto ids = tok.encode("a<|endoftext|>", false, true);
    CHECK(tok.detokenize(ids) == "a");
    CHECK(tok.detokenize(ids, true) == "a<|endoftext|>");
    CHECK(tok.detokenize({}).empty());
}

TEST_CASE("bpe: BOS and EOS as the pre-tokenizer and the add_bos/add_eos keys say") {
    vocabulary v = tiny({}, "llama-bpe");
    CHECK(bpe_tokenizer(v).encode("a", true) == std::vector<tokenizer::token>{static_cast<tokenizer::token>(v.bos_id), 'a'});
    v.pre = "qwen2";
    CHECK(bpe_tokenizer(v).encode("a", true) == std::vector<tokenizer::token>{'a'});
    v.add_bos = true, v.add_eos = true;
    const auto b = static_cast<tokenizer::token>(v.bos_id), e = static_cast<tokenizer::token>(v.eos_id);
    CHECK(bpe_tokenizer(v).encode("a", true) == std::vector<tokenizer::token>{b, 'a', e});
    CHECK(bpe_tokenizer(v).encode("a", false) == std::vector<tokenizer::token>{'a'});
    // Through the tokenizer users hold.
    const tokenizer tok(v);
    CHECK(tok.bpe() != nullptr);
    CHECK(tok.adds_bos());
    CHECK(tokenize_text(tok, "a") == std::vector<tokenizer::token>{b, 'a'});
}

TEST_CASE("bpe: a trained vocabulary merges as the definition says, and decode(encode(x)) == x") {
    std::mt19937 rng(7);
    const std::vector<std::string> atoms{"the",  " the", "little", " girl", "Lily",   "'s",     "'LL",  " ", "  ", "\n",
                                         "\n\n", "\t",   "123",    "4567",  "café",   " crème", "東京", "😀", "!",  "...",
                                         "()",   "{",    "}",      ";",     "x += i", "YOU'RE", "\r\n", "ß"};
    for (const std::string pre : {"default", "llama-bpe", "qwen2"}) {
        CAPTURE(pre);
        const vocabulary v = test::train_bpe(training_text, 150, pre);
        CHECK(v.merges.size() == 150);
        const bpe_tokenizer tok(v);
        const test::reference_bpe reference(v);
        for (const auto& word : bpe_words(training_text, tok.pre_tokenizer())) {
            if (pre == "llama-bpe" && reference.id(word) >= 0) continue;  // taken whole
            CHECK(tok.encode(bpe_piece_bytes(word)) == reference.merge(word));
        }
        for (int trial = 0; trial < 200; ++trial) {
            std::string text;
            for (int n = static_cast<int>(rng() % 10); n > 0; --n) text += atoms[rng() % atoms.size()];
            CAPTURE(text);
            const auto ids = tok.encode(text);
            CHECK(tok.decode(ids) == text);
            std::vector<tokenizer::token> by_word;
            for (const auto& word : bpe_words(text, tok.pre_tokenizer())) {
                const auto w = tok.encode(bpe_piece_bytes(word));
                by_word.insert(by_word.end(), w.begin(), w.end());
            }
            CHECK(ids == by_word);
        }
    }
}

TEST_CASE("bpe: tokenize_stream gives tokenize_text's tokens, cut into blocks") {
    const tokenizer tok(test::train_bpe(training_text, 200, "llama-bpe"));
    std::string text;
    for (int i = 0; i < 20; ++i) text += training_text;
    const auto whole = tokenize_text(tok, text);
    for (const std::size_t block : {std::size_t{1}, std::size_t{100}, std::size_t{1} << 16}) {
        std::istringstream in(text);
        CHECK(tokenize_stream(tok, in, 0, true, block) == whole);
    }
    std::istringstream in(text);
    CHECK(tokenize_stream(tok, in, 50, true, 1) == std::vector<tokenizer::token>(whole.begin(), whole.begin() + 50));
}

TEST_CASE("bpe: bad vocabularies are refused, naming what is wrong") {
    const vocabulary good = tiny({"a b"});
    auto refused = [](vocabulary v, const std::string& says) {
        CAPTURE(says);
        try {
            const tokenizer tok(std::move(v));
            FAIL("accepted");
        } catch (const invalid_argument_error& e) {
            CHECK(std::string(e.what()).find(says) != std::string::npos);
        }
    };
    vocabulary v = good;
    v.pre = "falcon";
    refused(v, "pre-tokenizer 'falcon' is not supported");
    v = good, v.merges.push_back("a q");
    v.pieces[static_cast<std::size_t>('q')] = "Q?";  // 'q' is no longer a piece
    refused(v, "merge 1 'a q' names 'q'");
    v = good, v.merges.push_back("ab");
    refused(v, "merge 1 'ab' is not two pieces");
    v = good, v.merges.push_back("b a");  // "ba" is no token
    refused(v, "names 'ba'");
    v = good, v.bos_id = static_cast<std::uint32_t>(v.pieces.size());
    refused(v, "BOS id");
    v = good, v.eos_id = 1u << 30;
    refused(v, "EOS id");
    v = good, v.pieces[1] = v.pieces[0];
    refused(v, "tokens 0 and 1 are the same piece");
    v = good, v.kinds.pop_back();
    refused(v, "token types");
    v = good, v.model = "bert";
    refused(v, "tokenizer model 'bert' is not supported");
    const bpe_tokenizer tok(good);
    CHECK_THROWS_AS(static_cast<void>(tok.piece(-1)), invalid_argument_error);
    CHECK_THROWS_AS(static_cast<void>(tok.piece(static_cast<tokenizer::token>(good.pieces.size()))), invalid_argument_error);
}

TEST_CASE("bpe GGUF: the keys are written, read back, and kept by quantization") {
    const auto dir = std::filesystem::temp_directory_path() / "cogqat_bpe_gguf";
    std::filesystem::create_directories(dir);
    vocabulary v = test::train_bpe(training_text, 100, "qwen2");
    v.add_bos = false;
    llama_weights w = make_synthetic_llama(3, {64, 128, 1, 2, 2, static_cast<std::uint32_t>(v.pieces.size()), 32});
    w.vocab = v;
    const auto f32 = dir / "bpe-f32.gguf", q8 = dir / "bpe-q8_0.gguf";
    io::write_llama_gguf(w, f32);
    {
        const auto in = gguf::reader::open(f32);
        const vocabulary back = io::read_vocabulary(in);
        CHECK(back.model == "gpt2");
        CHECK(back.pre == "qwen2");
        CHECK(back.pieces == v.pieces);
        CHECK(back.kinds == v.kinds);
        CHECK(back.merges == v.merges);
        CHECK(back.scores.empty());
        CHECK(back.bos_id == v.bos_id);
        CHECK(back.add_bos == std::optional<bool>(false));
        CHECK_FALSE(back.add_eos.has_value());
        CHECK(in.find("tokenizer.ggml.unknown_token_id") == nullptr);
        CHECK(io::read_tokenizer(in).encode(training_text) == tokenizer(v).encode(training_text));
        quantize_options options;
        options.policy.preset = find_preset("q8_0");
        options.threads = 1;
        static_cast<void>(quantize_gguf(in, q8, options));
    }
    const auto a = gguf::reader::open(f32), b = gguf::reader::open(q8);
    std::size_t keys = 0;
    for (const auto& [key, value] : a.metadata()) {
        if (!key.starts_with("tokenizer.")) continue;
        ++keys;
        const auto* copy = b.find(key);
        REQUIRE(copy != nullptr);
        CHECK(*copy == value);  // whole arrays, not their printed prefix
    }
    CHECK(keys == 8);  // model, pre, tokens, token_type, merges, bos and eos ids, add_bos
    std::filesystem::remove_all(dir);
}

TEST_CASE("read_tokenizer refuses a gpt2 vocabulary without merges and another model") {
    const auto dir = std::filesystem::temp_directory_path() / "cogqat_bpe_refuse";
    std::filesystem::create_directories(dir);
    const auto path = dir / "m.gguf";
    const auto write = [&](const std::string& model, bool merges) {
        gguf::writer out(path);
        out.set("tokenizer.ggml.model", gguf::value(model));
        out.set("tokenizer.ggml.tokens", gguf::value(std::vector<std::string>{"a", "b", "ab"}));
        if (merges) out.set("tokenizer.ggml.merges", gguf::value(std::vector<std::string>{"a b"}));
        out.set("tokenizer.ggml.bos_token_id", gguf::value(std::uint32_t{0}));
        out.set("tokenizer.ggml.eos_token_id", gguf::value(std::uint32_t{0}));
        out.finish();
    };
    write("gpt2", false);
    CHECK_THROWS_AS(static_cast<void>(io::read_tokenizer(gguf::reader::open(path))), format_error);
    write("gpt2", true);
    CHECK(io::read_tokenizer(gguf::reader::open(path)).encode("ab") == std::vector<tokenizer::token>{2});
    write("t5", true);
    CHECK_THROWS_AS(static_cast<void>(io::read_tokenizer(gguf::reader::open(path))), invalid_argument_error);
    std::filesystem::remove_all(dir);
}
