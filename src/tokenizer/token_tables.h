// Open-addressing hash tables for the two lookups on the BPE hot path (byte string -> token id,
// token pair -> merge). std::unordered_map keeps one heap node per entry, and with 128k tokens and
// 280k merges nearly every lookup was a cache miss (half of the encoding time in profiles); these
// keep the probe sequence in one contiguous array.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ttt {

// Byte strings -> ids. Build with insert(), then only find().
class TokenBytesTable {
 public:
  explicit TokenBytesTable(std::size_t expected_entries = 0);
  // Returns false (and changes nothing) if `bytes` is already present.
  bool insert(std::string_view bytes, int32_t id);
  // The id of `bytes`, or -1.
  int32_t find(std::string_view bytes) const;
  std::size_t size() const { return keys_.size(); }

 private:
  struct Slot {
    uint32_t tag;   // high bits of the hash, to skip most string comparisons
    int32_t entry;  // index into keys_/ids_, -1 when empty
  };
  void grow();
  std::vector<Slot> slots_;
  std::vector<std::string> keys_;
  std::vector<int32_t> ids_;
};

// (left id, right id) -> (rank, merged id).
class MergeTable {
 public:
  struct Merge {
    int32_t rank;    // position in the merges list: lower merges first
    int32_t new_id;  // the token the pair becomes
  };
  explicit MergeTable(std::size_t expected_entries = 0);
  // Inserts or replaces (a pair listed twice keeps its last rank, as Hugging Face's map does).
  void assign(int32_t left, int32_t right, Merge merge);
  const Merge* find(int32_t left, int32_t right) const;
  std::size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t key;  // kEmpty when free
    Merge merge;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  void grow();
  std::vector<Slot> slots_;
  std::size_t size_ = 0;
};

}  // namespace ttt
