// A 64-bit FNV-1a checksum (over 64-bit words, then the tail bytes): fast enough for every byte
// of a large model, and plenty to notice a corrupted or swapped file. Not a cryptographic hash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ttt {

inline constexpr uint64_t kChecksumSeed = 0xcbf29ce484222325ULL;

// Continues the checksum `h` over `size` bytes.
uint64_t checksum_bytes(const void* data, size_t size, uint64_t h = kChecksumSeed);

// The checksum of a whole file, as 16 hex digits. Throws std::runtime_error naming the file.
std::string file_checksum(const std::string& path);

// 16 lower-case hex digits.
std::string hex64(uint64_t value);

}  // namespace ttt
