// Reads batches ahead on a background thread so that data loading (zarr decoding, sample
// assembly) overlaps the training step. The state is the number of batches handed out, not read
// ahead, so a checkpoint taken between steps restores the stream exactly.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include "data/sequence_loader.h"

namespace ttt {

class PrefetchLoader {
 public:
  PrefetchLoader(std::unique_ptr<SequenceLoader> loader, size_t depth = 2);
  ~PrefetchLoader();
  PrefetchLoader(const PrefetchLoader&) = delete;
  PrefetchLoader& operator=(const PrefetchLoader&) = delete;

  // The next batch (nullopt at the end of a non-repeating pass). Rethrows a reader's error.
  std::optional<Batch> next();
  int64_t position() const { return consumed_; }  // global samples of the batches handed out
  // Drops what was read ahead and continues from `position`.
  void set_position(int64_t position);
  const SequenceLoader& loader() const { return *loader_; }

 private:
  void start();
  void stop();
  void run();

  std::unique_ptr<SequenceLoader> loader_;
  size_t depth_;
  int64_t consumed_ = 0;
  std::thread worker_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::optional<Batch>> queue_;
  std::exception_ptr error_;
  bool stopping_ = false;
};

}  // namespace ttt
