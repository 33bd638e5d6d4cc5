// A text document for `ttt prepare`: UTF-8 validation, the Latin-1 fallback, newline
// normalisation, then both tokenizers, which must round-trip every document they accept.
#include "data/text_documents.h"
#include "fuzz_support.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/byte_tokenizer.h"
#include "util/file_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ttt::ByteTokenizer bytes;
  static const ttt::BpeTokenizer bpe(TTT_SOURCE_DIR "/tests/data/tiny_tokenizer.json");
  if (size == 0) return 0;
  const bool latin1 = (data[0] & 1) != 0;
  ttt::fuzz::runs_cleanly([&] {
    const std::string text = ttt::decode_text_document(ttt::fuzz::as_string(data + 1, size - 1), "doc.txt", latin1);
    ttt::fuzz::require(text.find('\r') == std::string::npos, "a CR survived normalisation");
    ttt::fuzz::require(bytes.decode(bytes.encode(text)) == text, "byte tokenizer round trip");
    ttt::fuzz::require(bpe.decode(bpe.encode(text)) == text, "BPE tokenizer round trip");
  });
  return 0;
}
