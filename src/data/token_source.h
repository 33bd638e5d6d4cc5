// A 1-D stream of token ids with random access: held in memory, or read from a zarr array
// chunk by chunk (the official datasets do not fit in memory). Not thread-safe: one reader each.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ttt {

class ZarrArrayReader;

class TokenSource {
 public:
  virtual ~TokenSource() = default;
  virtual int64_t size() const = 0;
  // Tokens [start, start + count) into out. Throws on out-of-range reads or unreadable data.
  virtual void read(int64_t start, int64_t count, int64_t* out) = 0;
  virtual std::string describe() const = 0;
};

class VectorTokenSource : public TokenSource {
 public:
  explicit VectorTokenSource(std::vector<int64_t> tokens, std::string description = "in-memory tokens");
  int64_t size() const override { return static_cast<int64_t>(tokens_.size()); }
  void read(int64_t start, int64_t count, int64_t* out) override;
  std::string describe() const override { return description_; }

 private:
  std::vector<int64_t> tokens_;
  std::string description_;
};

class ZarrTokenSource : public TokenSource {
 public:
  explicit ZarrTokenSource(const std::string& array_dir);
  ~ZarrTokenSource() override;
  int64_t size() const override;
  void read(int64_t start, int64_t count, int64_t* out) override;
  std::string describe() const override { return "zarr array " + dir_; }

 private:
  std::string dir_;
  std::unique_ptr<ZarrArrayReader> reader_;
};

// The reference's dummy dataset (training.dummy_dataset): seeded tokens drawn uniformly from
// [0, 20) (or the whole vocabulary when smaller), BOS included when it is among them. A
// distribution a model can learn, so a smoke run shows the loss fall.
inline constexpr int64_t kDummyTokenRange = 20;
std::unique_ptr<TokenSource> dummy_token_source(int64_t num_tokens, int64_t vocab_size, uint64_t seed);

}  // namespace ttt
