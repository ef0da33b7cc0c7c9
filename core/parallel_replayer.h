// ParallelReplayer: runs LogVerifier::Replay (parsing and the workflow
// rules) on a thread of its own, so that the caller can read and hash the
// next events at the same time. Events are handed over in chunks of
// consecutive events through a small bounded queue.
//
// Thread-safety: Add and Finish are called from one thread.
#ifndef PERMIT_CORE_PARALLEL_REPLAYER_H_
#define PERMIT_CORE_PARALLEL_REPLAYER_H_

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "core/log_verifier.h"

namespace permit::core {

class ParallelReplayer {
 public:
  // Replays into `verifier`, which must outlive this object and not be used
  // elsewhere until Finish returns.
  explicit ParallelReplayer(LogVerifier* verifier);
  ~ParallelReplayer();
  ParallelReplayer(const ParallelReplayer&) = delete;
  ParallelReplayer& operator=(const ParallelReplayer&) = delete;

  // Queues the next event (sequence numbers must follow on). Returns false
  // once the replay has failed: the caller may stop feeding.
  bool Add(uint64_t sequence, absl::string_view bytes);
  // Waits until every queued event is replayed; the first error, if any.
  absl::Status Finish();

 private:
  // Consecutive events' bytes in one buffer: one allocation per chunk.
  struct Chunk {
    uint64_t first = 0;
    std::string data;
    std::vector<size_t> ends;
  };
  static constexpr size_t kChunkEvents = 2048;
  static constexpr size_t kMaxChunks = 8;

  void Push();
  void Loop();

  LogVerifier* const verifier_;
  Chunk filling_;

  absl::Mutex mu_;
  std::deque<Chunk> chunks_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace permit::core

#endif  // PERMIT_CORE_PARALLEL_REPLAYER_H_
