#include "data/prefetch_loader.h"

namespace ttt {

PrefetchLoader::PrefetchLoader(std::unique_ptr<SequenceLoader> loader, size_t depth)
    : loader_(std::move(loader)), depth_(std::max<size_t>(depth, 1)) {
  consumed_ = loader_->position();
  start();
}

PrefetchLoader::~PrefetchLoader() { stop(); }

void PrefetchLoader::start() {
  stopping_ = false;
  worker_ = std::thread([this] { run(); });
}

void PrefetchLoader::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (worker_.joinable()) worker_.join();
  queue_.clear();
  error_ = nullptr;
}

void PrefetchLoader::run() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [this] { return stopping_ || queue_.size() < depth_; });
      if (stopping_) return;
    }
    std::optional<Batch> batch;
    try {
      batch = loader_->next();  // only this thread touches the loader while it runs
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
      changed_.notify_all();
      return;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(batch);
    changed_.notify_all();
    if (!batch) return;  // end of a single pass
  }
}

std::optional<Batch> PrefetchLoader::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return !queue_.empty() || error_; });
  if (queue_.empty()) std::rethrow_exception(error_);
  if (!queue_.front()) return std::nullopt;  // the end of a pass stays the end
  auto batch = std::move(queue_.front());
  queue_.pop_front();
  changed_.notify_all();
  consumed_ += loader_->global_batch_size();
  return batch;
}

void PrefetchLoader::set_position(int64_t position) {
  stop();
  loader_->set_position(position);
  consumed_ = position;
  start();
}

}  // namespace ttt
