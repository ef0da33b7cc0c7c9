// Replay on a second thread; see parallel_replayer.h.
#include "core/parallel_replayer.h"

namespace permit::core {

ParallelReplayer::ParallelReplayer(LogVerifier* verifier) : verifier_(verifier) {
  filling_.ends.reserve(kChunkEvents);
  thread_ = std::thread([this] { Loop(); });
}

ParallelReplayer::~ParallelReplayer() { (void)Finish(); }

bool ParallelReplayer::Add(uint64_t sequence, absl::string_view bytes) {
  if (filling_.ends.empty()) filling_.first = sequence;
  filling_.data.append(bytes.data(), bytes.size());
  filling_.ends.push_back(filling_.data.size());
  if (filling_.ends.size() < kChunkEvents) return true;
  Push();
  absl::MutexLock lock(&mu_);
  return !failed_;
}

void ParallelReplayer::Push() {
  absl::MutexLock lock(&mu_);
  auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return chunks_.size() < kMaxChunks || failed_;
  };
  mu_.Await(absl::Condition(&room));
  if (!failed_) chunks_.push_back(std::move(filling_));
  filling_ = Chunk();
  filling_.ends.reserve(kChunkEvents);
}

absl::Status ParallelReplayer::Finish() {
  if (!thread_.joinable()) {
    absl::MutexLock lock(&mu_);
    return status_;
  }
  if (!filling_.ends.empty()) Push();
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }
  thread_.join();
  absl::MutexLock lock(&mu_);
  return status_;
}

void ParallelReplayer::Loop() {
  for (;;) {
    Chunk chunk;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !chunks_.empty() || closed_;
      };
      mu_.Await(absl::Condition(&ready));
      if (chunks_.empty()) return;
      chunk = std::move(chunks_.front());
      chunks_.pop_front();
    }
    absl::Status s;
    size_t begin = 0;
    for (size_t i = 0; i < chunk.ends.size() && s.ok(); ++i) {
      s = verifier_->Replay(chunk.first + i,
                            absl::string_view(chunk.data).substr(begin, chunk.ends[i] - begin));
      begin = chunk.ends[i];
    }
    if (!s.ok()) {
      absl::MutexLock lock(&mu_);
      failed_ = true;
      status_ = s;
      chunks_.clear();
      return;
    }
  }
}

}  // namespace permit::core
