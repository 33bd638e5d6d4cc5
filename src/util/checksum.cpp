#include "util/checksum.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace ttt {

uint64_t checksum_bytes(const void* data, size_t size, uint64_t h) {
  constexpr uint64_t kPrime = 0x100000001b3ULL;
  const auto* bytes = static_cast<const unsigned char*>(data);
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes + i, 8);
    h = (h ^ word) * kPrime;
  }
  for (; i < size; ++i) h = (h ^ bytes[i]) * kPrime;
  return h;
}

std::string file_checksum(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
  // Blocks of a multiple of 8 bytes, so the words are the same as over the whole file at once.
  std::vector<char> block(1 << 20);
  uint64_t h = kChecksumSeed;
  while (in) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    h = checksum_bytes(block.data(), static_cast<size_t>(in.gcount()), h);
  }
  if (in.bad()) throw std::runtime_error("cannot read " + path + ": read error");
  return hex64(h);
}

std::string hex64(uint64_t value) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(value));
  return buf;
}

}  // namespace ttt
