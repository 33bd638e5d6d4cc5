#include "tokenizer/token_tables.h"

#include <cstring>
#include <functional>

namespace ttt {
namespace {

// Smallest power of two holding `entries` at most half full (at least 16 slots).
std::size_t capacity_for(std::size_t entries) {
  std::size_t capacity = 16;
  while (capacity < 2 * entries) capacity *= 2;
  return capacity;
}

uint64_t hash_bytes(std::string_view bytes) { return std::hash<std::string_view>{}(bytes); }

uint64_t hash_pair(uint64_t key) {
  // A multiplicative mix (the 64-bit golden ratio) spreads consecutive ids over the table.
  key ^= key >> 29;
  key *= 0x9E3779B97F4A7C15ULL;
  return key ^ (key >> 32);
}

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

}  // namespace

TokenBytesTable::TokenBytesTable(std::size_t expected_entries) : slots_(capacity_for(expected_entries), Slot{0, -1}) {
  keys_.reserve(expected_entries);
  ids_.reserve(expected_entries);
}

bool TokenBytesTable::insert(std::string_view bytes, int32_t id) {
  if (find(bytes) >= 0) return false;
  if (2 * (keys_.size() + 1) > slots_.size()) grow();
  const uint64_t hash = hash_bytes(bytes);
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = hash & mask;
  while (slots_[i].entry >= 0) i = (i + 1) & mask;
  slots_[i] = Slot{static_cast<uint32_t>(hash >> 32), static_cast<int32_t>(keys_.size())};
  keys_.emplace_back(bytes);
  ids_.push_back(id);
  return true;
}

int32_t TokenBytesTable::find(std::string_view bytes) const {
  const uint64_t hash = hash_bytes(bytes);
  const uint32_t tag = static_cast<uint32_t>(hash >> 32);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& slot = slots_[i];
    if (slot.entry < 0) return -1;
    if (slot.tag == tag) {
      const std::string& key = keys_[slot.entry];
      if (key.size() == bytes.size() && std::memcmp(key.data(), bytes.data(), bytes.size()) == 0)
        return ids_[slot.entry];
    }
  }
}

void TokenBytesTable::grow() {
  std::vector<Slot> old(slots_.size() * 2, Slot{0, -1});
  old.swap(slots_);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t e = 0; e < keys_.size(); ++e) {
    const uint64_t hash = hash_bytes(keys_[e]);
    std::size_t i = hash & mask;
    while (slots_[i].entry >= 0) i = (i + 1) & mask;
    slots_[i] = Slot{static_cast<uint32_t>(hash >> 32), static_cast<int32_t>(e)};
  }
}

MergeTable::MergeTable(std::size_t expected_entries)
    : slots_(capacity_for(expected_entries), Slot{kEmpty, Merge{0, 0}}) {}

void MergeTable::assign(int32_t left, int32_t right, Merge merge) {
  if (2 * (size_ + 1) > slots_.size()) grow();
  const uint64_t key = pair_key(left, right);
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = hash_pair(key) & mask;
  while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & mask;
  if (slots_[i].key == kEmpty) ++size_;
  slots_[i] = Slot{key, merge};
}

const MergeTable::Merge* MergeTable::find(int32_t left, int32_t right) const {
  const uint64_t key = pair_key(left, right);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = hash_pair(key) & mask;; i = (i + 1) & mask) {
    const Slot& slot = slots_[i];
    if (slot.key == key) return &slot.merge;
    if (slot.key == kEmpty) return nullptr;
  }
}

void MergeTable::grow() {
  std::vector<Slot> old(slots_.size() * 2, Slot{kEmpty, Merge{0, 0}});
  old.swap(slots_);
  const std::size_t mask = slots_.size() - 1;
  for (const Slot& slot : old) {
    if (slot.key == kEmpty) continue;
    std::size_t i = hash_pair(slot.key) & mask;
    while (slots_[i].key != kEmpty) i = (i + 1) & mask;
    slots_[i] = slot;
  }
}

}  // namespace ttt
