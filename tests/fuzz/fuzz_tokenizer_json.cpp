// A Hugging Face tokenizer.json; a tokenizer that loads must encode and decode losslessly.
#include "fuzz_support.h"
#include "tokenizer/bpe_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ttt::fuzz::runs_cleanly([&] {
    const ttt::BpeTokenizer tokenizer(ttt::fuzz::as_string(data, size), "tokenizer.json");
    const std::string text = "The and the 1234 thee,\n  caf\xc3\xa9 <|begin_of_text|>!";
    const auto ids = tokenizer.encode(text);
    for (int32_t id : ids) ttt::fuzz::require(id >= 0 && id < tokenizer.vocab_size(), "id outside the vocabulary");
    ttt::fuzz::require(tokenizer.decode(ids) == text, "decode(encode(text)) != text");
  });
  return 0;
}
