// Tokenizers: the Llama-3 tokenizer.json must give Hugging Face `tokenizers`' ids exactly.
//
// Golden values come from three independent sources: facts read here from tokenizer.json itself
// (a word that is a vocabulary entry is that one id, under `ignore_merges`), the known Llama-3 ids
// ("Hello world" -> 9906 1917), and ids computed by a separate Python implementation of the same
// algorithm (the `regex` module for the pre-tokenizer, the textbook GPT-2 merge loop), which
// agreed with this one on all 18 Gutenberg books and 3000 random mixed-script strings.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace {

using Ids = std::vector<int32_t>;
const std::string kLlama3Dir = TTT_SOURCE_DIR "/data/tokenizer-llama3";
const std::string kLlama3Json = kLlama3Dir + "/tokenizer.json";
const std::string kBooks = TTT_SOURCE_DIR "/data/gutenberg";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string latin1_to_utf8(const std::string& bytes) {
  std::string out;
  for (unsigned char b : bytes) {
    if (b < 0x80) {
      out += static_cast<char>(b);
    } else {
      out += static_cast<char>(0xC0 | (b >> 6));
      out += static_cast<char>(0x80 | (b & 0x3F));
    }
  }
  return out;
}

// Printable ASCII, space, tab, CR and LF in GPT-2's byte-level spelling, written out by hand
// (space is U+0120 'Ġ', \t U+0109, \n U+010A, \r U+010D) so as not to rely on the code under test.
std::string byte_level_spelling(const std::string& ascii) {
  std::string out;
  for (char c : ascii) {
    if (c == ' ')
      out += "\xC4\xA0";
    else if (c == '\t')
      out += "\xC4\x89";
    else if (c == '\n')
      out += "\xC4\x8A";
    else if (c == '\r')
      out += "\xC4\x8D";
    else
      out += c;
  }
  return out;
}

class Llama3Tokenizer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tokenizer_ = ttt::load_tokenizer(kLlama3Json).release();
    vocab_ = new nlohmann::json(nlohmann::json::parse(read_file(kLlama3Json)).at("model").at("vocab"));
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    delete vocab_;
  }
  // The id tokenizer.json gives the token spelled `ascii` (in plain text, e.g. " world").
  static int32_t vocab_id(const std::string& ascii) { return vocab_->at(byte_level_spelling(ascii)).get<int32_t>(); }
  static Ids encode(const std::string& text, bool special = false) { return tokenizer_->encode(text, special); }

  static ttt::Tokenizer* tokenizer_;
  static nlohmann::json* vocab_;
};
ttt::Tokenizer* Llama3Tokenizer::tokenizer_ = nullptr;
nlohmann::json* Llama3Tokenizer::vocab_ = nullptr;

TEST_F(Llama3Tokenizer, Metadata) {
  EXPECT_EQ(tokenizer_->vocab_size(), 128256);
  EXPECT_EQ(tokenizer_->bos_id(), 128000);
  EXPECT_EQ(tokenizer_->eos_id(), 128001);
  EXPECT_EQ(tokenizer_->name(), kLlama3Json);
}

TEST_F(Llama3Tokenizer, KnownIds) {
  EXPECT_EQ(encode("Hello world"), (Ids{9906, 1917}));
  EXPECT_EQ(vocab_id(" world"), 1917);  // "Ġworld"
  EXPECT_EQ(encode("Hello, world!"), (Ids{9906, vocab_id(","), 1917, vocab_id("!")}));
  EXPECT_EQ(encode(""), Ids{});
}

// With ignore_merges, a pre-token that is itself a vocabulary entry is that one id: check every
// entry that is a single pre-token by construction (optional space + ASCII letters, or 1-3 digits).
TEST_F(Llama3Tokenizer, EveryWordTokenEncodesToItsId) {
  const std::regex word("^(\xC4\xA0)?[A-Za-z]+$|^[0-9]{1,3}$");
  int checked = 0;
  for (const auto& [spelling, id] : vocab_->items()) {
    if (!std::regex_match(spelling, word)) continue;
    std::string text = spelling;
    if (text.rfind("\xC4\xA0", 0) == 0) text = " " + text.substr(2);
    ASSERT_EQ(encode(text), Ids{id.get<int32_t>()}) << "token '" << spelling << "'";
    ++checked;
  }
  EXPECT_GT(checked, 50000);
}

TEST_F(Llama3Tokenizer, NumbersSplitInGroupsOfAtMostThreeDigits) {
  for (int n = 0; n < 1000; ++n) EXPECT_EQ(encode(std::to_string(n)), Ids{vocab_id(std::to_string(n))});
  EXPECT_EQ(encode("1234567"), (Ids{vocab_id("123"), vocab_id("456"), vocab_id("7")}));
  EXPECT_EQ(encode("12345"), (Ids{vocab_id("123"), vocab_id("45")}));
  EXPECT_EQ(encode("3.14159"), (Ids{vocab_id("3"), vocab_id("."), vocab_id("141"), vocab_id("59")}));
  EXPECT_EQ(encode("x 2024"), (Ids{vocab_id("x"), vocab_id(" "), vocab_id("202"), vocab_id("4")}));
}

TEST_F(Llama3Tokenizer, Contractions) {
  EXPECT_EQ(encode("I'm"), (Ids{vocab_id("I"), vocab_id("'m")}));
  EXPECT_EQ(encode("they'll"), (Ids{vocab_id("they"), vocab_id("'ll")}));
  EXPECT_EQ(encode("We've"), (Ids{vocab_id("We"), vocab_id("'ve")}));
  EXPECT_EQ(encode("she'd"), (Ids{vocab_id("she"), vocab_id("'d")}));
  // The contraction group is case-insensitive.
  EXPECT_EQ(encode("DON'T"), (Ids{vocab_id("DON"), vocab_id("'T")}));
  EXPECT_EQ(encode("DON'T"), (Ids{85741, 17773}));
}

TEST_F(Llama3Tokenizer, WhitespaceRuns) {
  // "\s+(?!\S)" leaves the last space of a run to the next word.
  EXPECT_EQ(encode("a  b"), (Ids{vocab_id("a"), vocab_id(" "), vocab_id(" b")}));
  EXPECT_EQ(encode("  leading"), (Ids{vocab_id(" "), vocab_id(" leading")}));
  EXPECT_EQ(encode("hi  "), (Ids{vocab_id("hi"), vocab_id("  ")}));
  EXPECT_EQ(encode("a\n\nb"), (Ids{vocab_id("a"), vocab_id("\n\n"), vocab_id("b")}));
  EXPECT_EQ(encode("a \n b"), (Ids{vocab_id("a"), vocab_id(" \n"), vocab_id(" b")}));
  EXPECT_EQ(encode(" \n\n  x"), (Ids{vocab_id(" \n\n"), vocab_id(" "), vocab_id(" x")}));
  EXPECT_EQ(encode("x\r\ny"), (Ids{vocab_id("x"), vocab_id("\r\n"), vocab_id("y")}));
  EXPECT_EQ(encode("tab\tsep"), (Ids{vocab_id("tab"), vocab_id("\t"), vocab_id("sep")}));
}

// Pieces that are not vocabulary entries go through the merges; ids from the Python reference.
TEST_F(Llama3Tokenizer, MergedPiecesMatchReference) {
  EXPECT_EQ(encode("Supercalifragilisticexpialidocious"),
            (Ids{10254, 3035, 278, 333, 4193, 321, 4633, 4683, 532, 307, 78287}));
  EXPECT_EQ(encode("tokenizer's"), (Ids{86693, 596}));
  EXPECT_EQ(encode("naïve café"), (Ids{3458, 38672, 588, 53050}));
  EXPECT_EQ(encode("€100"), (Ids{15406, 1041}));
  EXPECT_EQ(encode("你好，世界"), (Ids{57668, 53901, 3922, 102616}));
  EXPECT_EQ(encode("こんにちは"), (Ids{90115}));
  EXPECT_EQ(encode("😀👍🏽"), (Ids{76460, 222, 9468, 239, 235, 9468, 237, 121}));
}

TEST_F(Llama3Tokenizer, DecodeInvertsEncode) {
  const std::vector<std::string> texts = {"Hello world", "a  b\n\n\tc  ", "你好，世界 😀👍🏽 naïve",
                                          "\x7F\x01 x\r\n",
                                          "\xE1\xA0\x8E\xC2\x85\xE3\x80\x80 U+180E, NEL, ideographic space"};
  for (const std::string& text : texts) {
    EXPECT_EQ(tokenizer_->decode(encode(text)), text);
  }
  // A token can end inside a character: decode returns those bytes, unchanged.
  const Ids emoji = encode("😀👍🏽");
  std::string pieces;
  for (int32_t id : emoji) pieces += tokenizer_->decode({id});
  EXPECT_EQ(pieces, "😀👍🏽");
  EXPECT_EQ(tokenizer_->decode({}), "");
}

TEST_F(Llama3Tokenizer, SpecialTokens) {
  EXPECT_EQ(encode("<|begin_of_text|>", true), Ids{128000});
  EXPECT_EQ(encode("a<|end_of_text|>b", true), (Ids{vocab_id("a"), 128001, vocab_id("b")}));
  EXPECT_EQ(encode("<|eot_id|><|eot_id|>", true), (Ids{128009, 128009}));
  EXPECT_EQ(encode("Hi <|begin_of_text|> there", true),
            (Ids{vocab_id("Hi"), vocab_id(" "), 128000, vocab_id(" there")}));
  // Not allowed: the same text is ordinary text.
  const Ids plain = encode("<|begin_of_text|>");
  EXPECT_EQ(plain, (Ids{27, 91, 7413, 3659, 4424, 91, 29}));
  for (int32_t id : plain) EXPECT_LT(id, 128000);
  EXPECT_EQ(tokenizer_->decode(plain), "<|begin_of_text|>");
  EXPECT_EQ(tokenizer_->decode({128000, 9906, 128001}), "<|begin_of_text|>Hello<|end_of_text|>");
  EXPECT_EQ(tokenizer_->decode({128255}), "<|reserved_special_token_250|>");
  EXPECT_EQ(dynamic_cast<ttt::BpeTokenizer&>(*tokenizer_).added_token_id("<|eot_id|>"), 128009);
}

TEST_F(Llama3Tokenizer, DecodeRejectsUnknownIds) {
  for (int32_t id : {-1, 128256, 1 << 30}) EXPECT_THROW(tokenizer_->decode({9906, id}), std::invalid_argument);
}

TEST_F(Llama3Tokenizer, InvalidUtf8IsRejectedWithItsOffset) {
  const std::pair<std::string, std::size_t> cases[] = {
      {"\xFF", 0},              // never a UTF-8 byte
      {"ab\xC3", 2},            // truncated
      {"ok \xC0\xAF", 3},       // overlong '/'
      {"x\xED\xA0\x80", 1},     // surrogate U+D800
      {"\xF4\x90\x80\x80", 0},  // above U+10FFFF
      {"caf\xE9 au lait", 3},   // Latin-1
      {"valid \xE2\x82\xAC then \x80", 15},
  };
  for (const auto& [text, offset] : cases) {
    try {
      encode(text);
      ADD_FAILURE() << "no error for offset " << offset;
    } catch (const std::invalid_argument& e) {
      EXPECT_EQ(std::string(e.what()), "invalid UTF-8 at byte offset " + std::to_string(offset));
    }
  }
}

// Every book round-trips, and gives the token count and id sum of the Python reference. Two books
// are Latin-1: their raw bytes are rejected at the first non-ASCII byte, their UTF-8 conversion
// is encoded.
TEST_F(Llama3Tokenizer, GutenbergBooksMatchReference) {
  struct Book {
    const char* name;
    int64_t tokens;
    int64_t id_sum;
    int64_t latin1_offset;  // -1 for UTF-8 books
  };
  const Book books[] = {
      {"austen-emma", 211875, 1542793599LL, -1},
      {"austen-persuasion", 107542, 810881565LL, -1},
      {"austen-sense", 158499, 1184209802LL, -1},
      {"bible-kjv", 1152435, 8337057818LL, -1},
      {"blake-poems", 9675, 89912624LL, -1},
      {"bryant-stories", 61742, 442570697LL, -1},
      {"burgess-busterbrown", 20831, 169083663LL, -1},
      {"carroll-alice", 36798, 280123076LL, -1},
      {"chesterton-ball", 111794, 918570770LL, 227337},
      {"chesterton-brown", 97024, 775869740LL, -1},
      {"chesterton-thursday", 77374, 611602558LL, -1},
      {"edgeworth-parents", 237319, 1760897829LL, -1},
      {"melville-moby_dick", 313114, 2693472209LL, -1},
      {"milton-paradise", 119855, 1096031105LL, -1},
      {"shakespeare-caesar", 33116, 244361396LL, 3843},
      {"shakespeare-hamlet", 47816, 318370456LL, -1},
      {"shakespeare-macbeth", 29920, 215478247LL, -1},
      {"whitman-leaves", 173435, 1509181132LL, -1},
  };
  for (const Book& book : books) {
    SCOPED_TRACE(book.name);
    std::string text = read_file(kBooks + "/" + book.name + ".txt");
    if (book.latin1_offset >= 0) {
      try {
        encode(text);
        ADD_FAILURE() << "Latin-1 bytes were accepted";
      } catch (const std::invalid_argument& e) {
        EXPECT_EQ(std::string(e.what()), "invalid UTF-8 at byte offset " + std::to_string(book.latin1_offset));
      }
      text = latin1_to_utf8(text);
    }
    const Ids ids = encode(text);
    EXPECT_EQ(static_cast<int64_t>(ids.size()), book.tokens);
    int64_t sum = 0;
    for (int32_t id : ids) sum += id;
    EXPECT_EQ(sum, book.id_sum);
    EXPECT_TRUE(tokenizer_->decode(ids) == text) << "round trip differs";
  }
}

TEST_F(Llama3Tokenizer, ConcurrentEncodesAgree) {
  const std::string text = read_file(kBooks + "/carroll-alice.txt");
  const Ids expected = encode(text);
  Ids a, b;
  std::thread ta([&] { a = encode(text); });
  std::thread tb([&] { b = encode(text); });
  ta.join();
  tb.join();
  EXPECT_EQ(a, expected);
  EXPECT_EQ(b, expected);
}

TEST(ByteLevel, Gpt2Alphabet) {
  EXPECT_EQ(ttt::byte_level::byte_to_char(' '), U'\u0120');
  EXPECT_EQ(ttt::byte_level::byte_to_char('\n'), U'\u010A');
  EXPECT_EQ(ttt::byte_level::byte_to_char(0), U'\u0100');
  EXPECT_EQ(ttt::byte_level::byte_to_char('A'), U'A');
  EXPECT_EQ(ttt::byte_level::byte_to_char(0xAD), U'\u0143');  // soft hyphen: the last remapped byte
  EXPECT_EQ(ttt::byte_level::byte_to_char(0xFF), U'\u00FF');
  std::vector<bool> seen(0x144, false);
  for (int b = 0; b < 256; ++b) {
    const char32_t c = ttt::byte_level::byte_to_char(static_cast<uint8_t>(b));
    ASSERT_LT(c, 0x144u);
    EXPECT_FALSE(seen[c]) << "two bytes map to U+" << std::hex << static_cast<uint32_t>(c);
    seen[c] = true;
    EXPECT_EQ(ttt::byte_level::char_to_byte(c), b);
  }
  EXPECT_EQ(ttt::byte_level::bytes_to_text("Hello world\n"), "Hello\xC4\xA0world\xC4\x8A");
  EXPECT_EQ(ttt::byte_level::text_to_bytes("\xC4\xA0\xC4\x8A"), std::optional<std::string>(" \n"));
  EXPECT_EQ(ttt::byte_level::text_to_bytes("\xE2\x82\xAC"), std::nullopt);  // '€' is not in the alphabet
}

std::vector<std::string> pieces(const ttt::PretokenRegex& regex, const std::string& text) {
  std::vector<std::string> out;
  ttt::PretokenSplitter splitter(regex, text);
  std::string_view piece;
  while (splitter.next(piece)) out.emplace_back(piece);
  return out;
}

TEST(Pretokenizer, Llama3Pattern) {
  const std::string pattern = nlohmann::json::parse(read_file(kLlama3Json))
                                  .at("pre_tokenizer")
                                  .at("pretokenizers")
                                  .at(0)
                                  .at("pattern")
                                  .at("Regex");
  const ttt::PretokenRegex regex(pattern);
  using V = std::vector<std::string>;
  EXPECT_EQ(pieces(regex, "Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(pieces(regex, "a  b"), (V{"a", " ", " b"}));
  EXPECT_EQ(pieces(regex, "I'M 12345!!\n\n"), (V{"I", "'M", " ", "123", "45", "!!\n\n"}));
  // U+180E is not White_Space (Oniguruma agrees); PCRE2's own \s would split "\u180e|\u180ex".
  EXPECT_EQ(pieces(regex, "\xE1\xA0\x8E\xE1\xA0\x8Ex"), (V{"\xE1\xA0\x8E\xE1\xA0\x8E", "x"}));
  // U+0085 (NEL) is White_Space, so a run of two before a letter leaves one to the letter.
  EXPECT_EQ(pieces(regex, "x\xC2\x85\xC2\x85y"), (V{"x", "\xC2\x85", "\xC2\x85y"}));
}

TEST(Pretokenizer, GapsBetweenMatchesArePieces) {
  const ttt::PretokenRegex digits("[0-9]+");
  EXPECT_EQ(pieces(digits, "ab12cd345"), (std::vector<std::string>{"ab", "12", "cd", "345"}));
  EXPECT_EQ(pieces(digits, "xyz"), (std::vector<std::string>{"xyz"}));
  EXPECT_EQ(pieces(digits, ""), (std::vector<std::string>{}));
  EXPECT_EQ(ttt::with_white_space_classes("a\\sb[^\\s\\d]\\S"),
            "a[\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}"
            "\\x{3000}]b[^\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
            "\\x{205F}\\x{3000}\\d][^\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
            "\\x{202F}\\x{205F}\\x{3000}]");
  EXPECT_THROW(ttt::PretokenRegex("(unclosed"), std::runtime_error);
}

TEST(LoadTokenizer, Specs) {
  EXPECT_EQ(ttt::load_tokenizer("byte")->name(), "byte");
  EXPECT_EQ(ttt::load_tokenizer("byte")->vocab_size(), 258);
  const auto from_dir = ttt::load_tokenizer(kLlama3Dir);
  EXPECT_EQ(from_dir->name(), kLlama3Dir + "/tokenizer.json");
  EXPECT_EQ(from_dir->encode("Hello world"), (Ids{9906, 1917}));
}

TEST(LoadTokenizer, ErrorsNameThePath) {
  const std::string missing = TTT_BINARY_DIR "/no/such/tokenizer.json";
  const std::string empty_dir = TTT_BINARY_DIR "/test_tokenizer_empty_dir";
  const std::string bad_json = TTT_BINARY_DIR "/test_tokenizer_bad.json";
  std::filesystem::create_directories(empty_dir);
  std::ofstream(bad_json) << "{\"model\": ";
  for (const std::string& spec : {missing, empty_dir, bad_json}) {
    try {
      ttt::load_tokenizer(spec);
      ADD_FAILURE() << "no error for " << spec;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(spec), std::string::npos) << e.what();
    }
  }
}

TEST(LoadTokenizer, RejectsUnsupportedTokenizerJson) {
  const std::string path = TTT_BINARY_DIR "/test_tokenizer_wordpiece.json";
  std::ofstream(path) << R"({"normalizer": null, "pre_tokenizer": null, "decoder": null,
                             "model": {"type": "WordPiece", "vocab": {}}})";
  try {
    ttt::load_tokenizer(path);
    ADD_FAILURE() << "WordPiece accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("unsupported model WordPiece"), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(BpeTokenizer, TinyFixtureLoadsAndIdsMustBeDense) {
  // tests/data/tiny_tokenizer.json (tests/data/make_tiny_tokenizer.py): 256 bytes, 9 merges, BOS/EOS.
  const std::string text = read_file(TTT_SOURCE_DIR "/tests/data/tiny_tokenizer.json");
  const ttt::BpeTokenizer tiny(text, "tiny");
  EXPECT_EQ(tiny.vocab_size(), 267);
  EXPECT_EQ(tiny.encode("the and"), (Ids{257, 264}));
  EXPECT_EQ(tiny.decode(tiny.encode("the and thee")), "the and thee");
  // bad-input.md #10: one vocabulary entry with id 2^28 once sized the id tables by it (8.6 GiB).
  // Found by fuzz_tokenizer_json: an entry reusing another's id (its bytes then decoded as the other's).
  for (const std::string id : {"268435456", "1073741824", "-5", "1.5", "\"7\"", "110"}) {
    SCOPED_TRACE(id);
    auto json = nlohmann::json::parse(text);
    std::string edited = json.dump();
    const std::string vocab = "\"vocab\":{";
    edited.insert(edited.find(vocab) + vocab.size(), "\"zz\":" + id + ",");
    try {
      ttt::BpeTokenizer bad(edited, "edited.json");
      ADD_FAILURE() << "expected an error";
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("edited.json"), std::string::npos) << what;
      EXPECT_NE(what.find("zz"), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
  }
}
