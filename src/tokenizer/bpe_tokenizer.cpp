#include "tokenizer/bpe_tokenizer.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <unordered_map>

#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"
#include "util/file_io.h"
#include "util/strings.h"

namespace ttt {
namespace {

using json = nlohmann::json;

// The pattern Hugging Face's ByteLevel pre-tokenizer applies when `use_regex` is true (GPT-2's).
constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Distinct pieces a single encode call remembers the BPE result of; beyond this the cache stops
// growing, so that encoding one huge text cannot exhaust memory.
constexpr std::size_t kMaxCachedPieces = 1 << 20;

[[noreturn]] void unsupported(const std::string& what) { throw std::runtime_error("unsupported " + what); }

bool is_null_or(const json& object, const char* key, const json& allowed) {
  auto it = object.find(key);
  return it == object.end() || it->is_null() || *it == allowed;
}

std::string type_of(const json& j) { return j.is_object() ? j.value("type", std::string("?")) : std::string("?"); }

// The regex of the pre-tokenizer; throws for pre-tokenizers that we do not reproduce.
std::string pretokenizer_pattern(const json& pre) {
  if (!pre.is_object()) unsupported("pre_tokenizer (none; a byte-level one is needed)");
  std::vector<json> steps =
      type_of(pre) == "Sequence" ? pre.at("pretokenizers").get<std::vector<json>>() : std::vector<json>{pre};
  std::vector<std::string> patterns;
  bool byte_level = false;
  for (const auto& step : steps) {
    const std::string type = type_of(step);
    if (type == "Split") {
      const json& pattern = step.at("pattern");
      if (!pattern.contains("Regex")) unsupported("Split pattern (only Regex)");
      if (step.value("behavior", std::string()) != "Isolated") unsupported("Split behavior (only Isolated)");
      if (step.value("invert", false)) unsupported("Split with invert");
      patterns.push_back(pattern.at("Regex").get<std::string>());
    } else if (type == "ByteLevel") {
      if (step.value("add_prefix_space", false)) unsupported("ByteLevel with add_prefix_space");
      if (step.value("use_regex", true)) patterns.push_back(kGpt2Pattern);
      byte_level = true;
    } else {
      unsupported("pre_tokenizer step " + type);
    }
  }
  if (!byte_level) unsupported("pre_tokenizer without ByteLevel");
  if (patterns.size() != 1) unsupported("pre_tokenizer with " + std::to_string(patterns.size()) + " regex stages");
  return patterns.front();
}

}  // namespace

struct BpeTokenizer::Workspace {
  struct Symbol {
    int32_t id;
    int32_t prev;  // index of the previous live symbol, -1 at the start
    int32_t next;  // index of the next live symbol, -1 at the end
    bool alive;    // false once merged into its left neighbour
  };
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
  };
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
  std::unordered_map<std::string_view, std::pair<uint32_t, uint32_t>> cache;  // piece -> span of cached_ids
  std::vector<int32_t> cached_ids;
};

BpeTokenizer::BpeTokenizer(const std::string& path) : BpeTokenizer(read_file(path), path) {}

BpeTokenizer::BpeTokenizer(const std::string& json_text, const std::string& name) : path_(name) {
  try {
    load(json_text);
  } catch (const std::exception& e) {
    throw std::runtime_error(single_line("tokenizer " + name + ": " + e.what()));
  }
}

BpeTokenizer::~BpeTokenizer() = default;

void BpeTokenizer::load(const std::string& json_text) {
  const json root = json::parse(json_text);
  if (root.contains("normalizer") && !root["normalizer"].is_null())
    unsupported("normalizer " + type_of(root["normalizer"]));
  const json& model = root.at("model");
  if (type_of(model) != "BPE") unsupported("model " + type_of(model));
  if (!is_null_or(model, "dropout", json()) || !is_null_or(model, "continuing_subword_prefix", "") ||
      !is_null_or(model, "end_of_word_suffix", "") || !is_null_or(model, "byte_fallback", false))
    unsupported("BPE options (dropout, subword prefix/suffix or byte fallback)");
  ignore_merges_ = model.value("ignore_merges", false);
  if (type_of(root.value("decoder", json())) != "ByteLevel") unsupported("decoder (only ByteLevel)");
  const std::string pattern = pretokenizer_pattern(root.value("pre_tokenizer", json()));

  // Ids: the model's vocabulary, then the added tokens (which may extend it).
  const json& vocab = model.at("vocab");
  const json added = root.value("added_tokens", json::array());
  if (!vocab.is_object()) throw std::runtime_error("model.vocab is not an object");
  if (!added.is_array()) throw std::runtime_error("added_tokens is not a list");
  // Ids are dense in every tokenizer.json we know: the vocabulary's, then the added tokens'. An id
  // past the count of both is damage, and would size the id tables by it.
  const int64_t id_bound = static_cast<int64_t>(vocab.size() + added.size());
  int64_t max_id = -1;
  auto check_id = [&](const json& value, const std::string& what) {
    if (!value.is_number_integer()) throw std::runtime_error(what + " has a non-integer id " + value.dump());
    const int64_t id = value.is_number_unsigned()
                           ? static_cast<int64_t>(std::min<uint64_t>(value.get<uint64_t>(), 1ULL << 62))
                           : value.get<int64_t>();
    if (id < 0 || id >= id_bound)
      throw std::runtime_error(what + " has id " + value.dump() + ", outside [0, " + std::to_string(id_bound) +
                               ") (vocabulary entries + added tokens)");
    max_id = std::max(max_id, id);
  };
  for (const auto& item : vocab.items()) check_id(item.value(), "vocab token '" + item.key() + "'");
  for (const auto& token : added) {
    if (!token.is_object()) throw std::runtime_error("an added token is not an object");
    check_id(token.at("id"), "added token");
  }
  vocab_size_ = max_id + 1;
  id_to_bytes_.assign(vocab_size_, std::string());
  id_defined_.assign(vocab_size_, false);

  // Token text -> bytes. A token with a character outside the byte alphabet can never be produced
  // from bytes, so it takes no part in encoding; it decodes to its own text, as in Hugging Face.
  bytes_to_id_ = TokenBytesTable(vocab.size());
  for (const auto& item : vocab.items()) {
    const int32_t id = item.value().get<int32_t>();
    if (id < 0) throw std::runtime_error("negative id in vocab");
    // An id decodes to one token: two entries with the same id could not both round-trip.
    if (id_defined_[id]) throw std::runtime_error("vocab token '" + item.key() + "' reuses id " + std::to_string(id));
    auto bytes = byte_level::text_to_bytes(item.key());
    id_to_bytes_[id] = bytes ? *bytes : item.key();
    id_defined_[id] = true;
    if (bytes && !bytes_to_id_.insert(*bytes, id)) throw std::runtime_error("token '" + item.key() + "' listed twice");
  }

  for (int b = 0; b < 256; ++b) {
    byte_id_[b] = bytes_to_id_.find(std::string(1, static_cast<char>(b)));
    if (byte_id_[b] < 0) throw std::runtime_error("vocab lacks the token of byte " + std::to_string(b));
  }

  // Merges, as "left right" strings or [left, right] pairs; a pair listed twice keeps its last
  // rank, as Hugging Face's map does.
  const json& merges = model.at("merges");
  merges_ = MergeTable(merges.size());
  auto id_of_text = [&](const std::string& text) -> int32_t {
    auto bytes = byte_level::text_to_bytes(text);
    const int32_t id = bytes ? bytes_to_id_.find(*bytes) : -1;
    if (id < 0) throw std::runtime_error("merge token '" + text + "' is not in the vocab");
    return id;
  };
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    std::string left, right;
    if (merges[rank].is_string()) {
      const std::string line = merges[rank].get<std::string>();
      const std::size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
        throw std::runtime_error("merge " + std::to_string(rank) + " is not 'left right'");
      left = line.substr(0, space);
      right = line.substr(space + 1);
    } else {
      left = merges[rank].at(0).get<std::string>();
      right = merges[rank].at(1).get<std::string>();
    }
    const Merge merge{static_cast<int32_t>(rank), id_of_text(left + right)};
    merges_.assign(id_of_text(left), id_of_text(right), merge);
  }

  for (const auto& token : added) {
    if (token.value("lstrip", false) || token.value("rstrip", false) || token.value("single_word", false))
      unsupported("added token flags lstrip/rstrip/single_word");
    AddedToken t{token.at("content").get<std::string>(), token.at("id").get<int32_t>(), token.value("special", false)};
    if (t.content.empty() || t.id < 0) throw std::runtime_error("added token with empty content or negative id");
    // An id decodes to one text: an added token may reuse an id only for the same text.
    if (id_defined_[t.id] && id_to_bytes_[t.id] != t.content)
      throw std::runtime_error("added token '" + t.content + "' has id " + std::to_string(t.id) +
                               ", which names another token already");
    id_to_bytes_[t.id] = t.content;
    id_defined_[t.id] = true;
    has_ordinary_added_ = has_ordinary_added_ || !t.special;
    added_first_byte_[static_cast<unsigned char>(t.content[0])] = true;
    added_.push_back(std::move(t));
  }
  std::stable_sort(added_.begin(), added_.end(),
                   [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });

  // tokenizer.json does not name BOS/EOS; these are the conventional texts of the families we load.
  for (const char* text : {"<|begin_of_text|>", "<s>", "<|startoftext|>", "<bos>", "<|endoftext|>"})
    if (bos_id_ < 0) bos_id_ = added_token_id(text);
  for (const char* text : {"<|end_of_text|>", "</s>", "<|endoftext|>", "<eos>"})
    if (eos_id_ < 0) eos_id_ = added_token_id(text);
  if (bos_id_ < 0 || eos_id_ < 0) throw std::runtime_error("no BOS/EOS added token found");

  regex_ = std::make_unique<PretokenRegex>(pattern);
}

int32_t BpeTokenizer::added_token_id(std::string_view content) const {
  for (const auto& token : added_)
    if (token.content == content) return token.id;
  return -1;
}

const BpeTokenizer::Merge* BpeTokenizer::find_merge(int32_t left, int32_t right) const {
  return merges_.find(left, right);
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, bool allow_special) const {
  const std::size_t bad = utf8::find_invalid(text);
  if (bad != std::string_view::npos) throw std::invalid_argument("invalid UTF-8 at byte offset " + std::to_string(bad));
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  Workspace ws;
  if (!has_ordinary_added_ && !(allow_special && !added_.empty())) {
    encode_ordinary(text, ids, ws);
    return ids;
  }
  // Added tokens are cut out first; the stretches between them are encoded separately.
  std::size_t pos = 0;
  while (true) {
    std::size_t at = 0;
    const int found = find_added(text, pos, allow_special, at);
    if (found < 0) break;
    encode_ordinary(text.substr(pos, at - pos), ids, ws);
    ids.push_back(added_[found].id);
    pos = at + added_[found].content.size();
  }
  encode_ordinary(text.substr(pos), ids, ws);
  return ids;
}

int BpeTokenizer::find_added(std::string_view text, std::size_t from, bool allow_special, std::size_t& at) const {
  for (std::size_t pos = from; pos < text.size(); ++pos) {
    if (!added_first_byte_[static_cast<unsigned char>(text[pos])]) continue;
    for (std::size_t k = 0; k < added_.size(); ++k) {
      const AddedToken& token = added_[k];
      if ((allow_special || !token.special) && text.compare(pos, token.content.size(), token.content) == 0) {
        at = pos;
        return static_cast<int>(k);
      }
    }
  }
  return -1;
}

void BpeTokenizer::encode_ordinary(std::string_view text, std::vector<int32_t>& ids, Workspace& ws) const {
  PretokenSplitter splitter(*regex_, text);
  std::string_view piece;
  while (splitter.next(piece)) encode_piece(piece, ids, ws);
}

void BpeTokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& ids, Workspace& ws) const {
  if (piece.size() == 1) {
    ids.push_back(byte_id_[static_cast<unsigned char>(piece[0])]);
    return;
  }
  if (ignore_merges_) {  // a piece that is itself a token is taken whole, merges or not
    const int32_t id = bytes_to_id_.find(piece);
    if (id >= 0) {
      ids.push_back(id);
      return;
    }
  }
  auto cached = ws.cache.find(piece);
  if (cached != ws.cache.end()) {
    const auto [offset, count] = cached->second;
    ids.insert(ids.end(), ws.cached_ids.begin() + offset, ws.cached_ids.begin() + offset + count);
    return;
  }
  const std::size_t first = ids.size();
  merge_piece(piece, ids, ws);
  if (ws.cache.size() < kMaxCachedPieces) {
    ws.cache.emplace(
        piece, std::make_pair(static_cast<uint32_t>(ws.cached_ids.size()), static_cast<uint32_t>(ids.size() - first)));
    ws.cached_ids.insert(ws.cached_ids.end(), ids.begin() + first, ids.end());
  }
}

// Hugging Face's merge loop: a heap of adjacent pairs ordered by (rank, position); the best pair
// is merged and the pairs it forms with its neighbours are pushed. Entries made stale by earlier
// merges are recognised by re-checking the pair. Same order as HF, hence the same tokens.
void BpeTokenizer::merge_piece(std::string_view piece, std::vector<int32_t>& ids, Workspace& ws) const {
  using Candidate = Workspace::Candidate;
  auto& symbols = ws.symbols;
  auto& heap = ws.heap;
  const int32_t n = static_cast<int32_t>(piece.size());
  symbols.clear();
  for (int32_t i = 0; i < n; ++i)
    symbols.push_back({byte_id_[static_cast<unsigned char>(piece[i])], i - 1, i + 1 < n ? i + 1 : -1, true});
  const auto later = [](const Candidate& a, const Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  };
  heap.clear();
  for (int32_t i = 0; i + 1 < n; ++i)
    if (const Merge* m = find_merge(symbols[i].id, symbols[i + 1].id)) heap.push_back({m->rank, i, m->new_id});
  std::make_heap(heap.begin(), heap.end(), later);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Candidate top = heap.back();
    heap.pop_back();
    auto& current = symbols[top.pos];
    if (!current.alive || current.next < 0) continue;
    auto& right = symbols[current.next];
    const Merge* m = find_merge(current.id, right.id);
    if (!m || m->new_id != top.new_id) continue;  // stale: a neighbour changed since it was pushed
    current.id = top.new_id;
    right.alive = false;
    current.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (current.prev >= 0)
      if (const Merge* left = find_merge(symbols[current.prev].id, current.id)) {
        heap.push_back({left->rank, current.prev, left->new_id});
        std::push_heap(heap.begin(), heap.end(), later);
      }
    if (current.next >= 0)
      if (const Merge* next = find_merge(current.id, symbols[current.next].id)) {
        heap.push_back({next->rank, top.pos, next->new_id});
        std::push_heap(heap.begin(), heap.end(), later);
      }
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) ids.push_back(symbols[i].id);
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (const int32_t id : ids) {
    if (id < 0 || id >= vocab_size_ || !id_defined_[id])
      throw std::invalid_argument("token id " + std::to_string(id) + " is not in the vocabulary of " + path_);
    out += id_to_bytes_[id];
  }
  return out;
}

}  // namespace ttt
