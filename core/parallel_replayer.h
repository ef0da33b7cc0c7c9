// ParallelReplayer: replays events (parsing and the workflow rules) on
// threads of its own while the caller reads and hashes the next ones.
// Cases are independent under the rules, so events are spread over
// `shards` LogVerifiers by case id (read straight from the event's wire
// bytes); each shard sees its cases' events in log order. Events travel in
// chunks through small bounded queues.
//
// Thread-safety: Add, Finish and the accessors are called from one thread.
#ifndef PERMIT_CORE_PARALLEL_REPLAYER_H_
#define PERMIT_CORE_PARALLEL_REPLAYER_H_

#include <deque>
#include <memory>
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
  explicit ParallelReplayer(int shards = 1);
  ~ParallelReplayer();
  ParallelReplayer(const ParallelReplayer&) = delete;
  ParallelReplayer& operator=(const ParallelReplayer&) = delete;

  // Queues the next event. Returns false once a replay has failed: the
  // caller may stop feeding.
  bool Add(uint64_t sequence, absl::string_view bytes);
  // Waits until every queued event is replayed. The error of the earliest
  // bad event, if any.
  absl::Status Finish();

  // After Finish: the cases re-derived, over all shards.
  size_t case_count() const;
  std::vector<std::string> CaseIds() const;
  // DATA_LOSS unless the stored snapshot equals the re-derived case.
  absl::Status CheckSnapshotBytes(absl::string_view id, absl::string_view bytes);
  // After Finish: queues a stored snapshot to be compared, on the shard
  // threads, with the re-derived case of its id (as CheckSnapshotBytes).
  // Returns false once one is found to differ: the caller may stop.
  bool AddSnapshot(absl::string_view id, absl::string_view bytes);
  // Waits until every queued snapshot is compared. The error of the first
  // bad one in the order they were added, if any.
  absl::Status FinishSnapshots();
  absl::Status CheckSnapshot(const v1::Case& stored);

 private:
  // Consecutive events' bytes in one buffer: one allocation per chunk.
  struct Chunk {
    std::string data;
    std::vector<size_t> ends;
    std::vector<uint64_t> sequences;  // for snapshots: 1, 2, ... in order added
    // Set for a chunk of snapshots: each entry is the case id (of this
    // size) followed by the snapshot's bytes.
    bool snapshots = false;
    std::vector<size_t> id_sizes;
  };
  struct Shard {
    LogVerifier verifier;
    Chunk filling;
    absl::Mutex mu;
    std::deque<Chunk> chunks ABSL_GUARDED_BY(mu);
    // Replayed chunks, cleared, for the reader to fill again: buffers are
    // not freed on one thread after being allocated on another.
    std::vector<Chunk> spare ABSL_GUARDED_BY(mu);
    bool closed ABSL_GUARDED_BY(mu) = false;
    bool busy ABSL_GUARDED_BY(mu) = false;  // replaying a chunk taken off `chunks`
    absl::Status status ABSL_GUARDED_BY(mu);
    uint64_t failed_at ABSL_GUARDED_BY(mu) = 0;
    std::thread thread;
  };
  static constexpr size_t kChunkEvents = 2048;
  static constexpr size_t kMaxChunks = 8;

  Shard& ShardOf(absl::string_view case_id);
  void Push(Shard& shard);
  // Queues every shard's partial chunk and waits until all are replayed or
  // one has failed; the error of the earliest failure (by sequence).
  absl::Status Drain();
  static void Loop(Shard* shard);

  std::vector<std::unique_ptr<Shard>> shards_;
  bool failed_ = false;
  bool finished_ = false;
  uint64_t snapshots_ = 0;
  absl::Status status_;
};

// The case id of a serialized Event, read from the wire without parsing the
// rest; empty if it cannot be found.
absl::string_view CaseIdOfEvent(absl::string_view bytes);

}  // namespace permit::core

#endif  // PERMIT_CORE_PARALLEL_REPLAYER_H_
