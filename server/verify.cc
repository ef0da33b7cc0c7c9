// Offline verification of a database folder; see verify.h.
//
// Two threads share the work: a reader scans the events in order, hashes
// them into the Merkle tree and checks every stored tree node on the way;
// the caller's thread replays the same events through the rules. Chunks of
// event bytes pass between them through a small bounded queue.
#include "server/verify.h"

#include <deque>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/log_verifier.h"
#include "core/status_macros.h"
#include "storage/rocksdb_event_store.h"

namespace permit::server {
namespace {

using Scanner = storage::RocksDbEventStore::TreeLevelScanner;

// Consecutive events' bytes in one buffer: one allocation per chunk, not
// per event.
struct Chunk {
  uint64_t first = 0;          // sequence of the first event
  std::string data;            // the events' bytes, back to back
  std::vector<size_t> ends;    // end offset of each event in `data`
  size_t size() const { return ends.size(); }
  absl::string_view event(size_t i) const {
    const size_t begin = i == 0 ? 0 : ends[i - 1];
    return absl::string_view(data).substr(begin, ends[i] - begin);
  }
};

// A bounded hand-over of chunks from the reader to the replayer.
class ChunkQueue {
 public:
  // False if the consumer has stopped.
  bool Push(Chunk chunk) {
    absl::MutexLock lock(&mu_);
    auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return chunks_.size() < kMaxChunks || stopped_;
    };
    mu_.Await(absl::Condition(&room));
    if (stopped_) return false;
    chunks_.push_back(std::move(chunk));
    return true;
  }
  void Close() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }
  void Stop() {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
  }
  // nullopt once the producer closed the queue and it is empty.
  std::optional<Chunk> Pop() {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !chunks_.empty() || closed_;
    };
    mu_.Await(absl::Condition(&ready));
    if (chunks_.empty()) return std::nullopt;
    Chunk c = std::move(chunks_.front());
    chunks_.pop_front();
    return c;
  }

 private:
  static constexpr size_t kMaxChunks = 8;
  absl::Mutex mu_;
  std::deque<Chunk> chunks_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

// The reader's findings.
struct TreeCheck {
  core::CompactTree tree;
  absl::Status status;  // a read error or a missing/extra node
  // The first node that differs from the one recomputed from the events:
  // either that event or the node was altered; the root tells which.
  struct Mismatch {
    uint64_t sequence;
    int level;
    uint64_t index;
  };
  std::optional<Mismatch> mismatch;
};

// Scans events 1..size: hashes them, checks the stored tree nodes, and hands
// the bytes on. Runs on its own thread.
void ReadAndHash(const storage::RocksDbEventStore& store, uint64_t size,
                 ChunkQueue* queue, TreeCheck* out,
                 const std::function<void(uint64_t, uint64_t)>& progress) {
  constexpr size_t kChunkEvents = 2048;
  std::vector<std::unique_ptr<Scanner>> levels(64);
  auto scanner = [&](int level) -> Scanner& {
    if (levels[level] == nullptr) levels[level] = store.ScanTreeLevel(level);
    return *levels[level];
  };
  std::vector<core::TreeNode> completed;
  Chunk chunk;
  chunk.first = 1;
  bool consumer_gone = false;
  absl::Status scan = store.ReadEvents(1, size, [&](uint64_t seq, absl::string_view b) {
    completed.clear();
    out->tree.Append(core::LeafHash(b), &completed);
    for (const core::TreeNode& want : completed) {
      absl::StatusOr<std::optional<core::TreeNode>> got = scanner(want.level).Next();
      if (!got.ok()) {
        out->status = got.status();
      } else if (!got->has_value() || (*got)->index != want.index) {
        out->status = absl::DataLossError(absl::StrCat(
            "event ", seq, ": Merkle tree node (level ", want.level, ", index ",
            want.index, ") is missing; proofs that need it cannot be served"));
      } else if ((*got)->hash != want.hash && !out->mismatch.has_value()) {
        out->mismatch = TreeCheck::Mismatch{seq, want.level, want.index};
      }
      if (!out->status.ok()) return false;
    }
    chunk.data.append(b.data(), b.size());
    chunk.ends.push_back(chunk.data.size());
    if (chunk.size() == kChunkEvents) {
      const uint64_t next = seq + 1;
      if (!queue->Push(std::move(chunk))) {
        consumer_gone = true;
        return false;
      }
      chunk = Chunk();
      chunk.first = next;
      chunk.ends.reserve(kChunkEvents);
    }
    if (progress && seq % 65536 == 0) progress(seq, size);
    return true;
  });
  if (out->status.ok()) out->status = scan;
  if (out->status.ok() && !consumer_gone && chunk.size() > 0) {
    queue->Push(std::move(chunk));
  }
  if (out->status.ok() && !consumer_gone) {
    for (int level = 0; level < 64; ++level) {
      absl::StatusOr<std::optional<core::TreeNode>> extra = scanner(level).Next();
      if (!extra.ok()) {
        out->status = extra.status();
        break;
      }
      if (extra->has_value()) {
        out->status = absl::DataLossError(absl::StrCat(
            "Merkle tree node (level ", level, ", index ", (*extra)->index,
            ") is stored but covers events beyond the log"));
        break;
      }
    }
  }
  queue->Close();
}

}  // namespace

absl::StatusOr<VerifyReport> VerifyDatabase(
    const std::string& db_path,
    const std::function<void(uint64_t, uint64_t)>& progress) {
  const absl::Time start = absl::Now();
  storage::RocksDbEventStore::Options options;
  options.read_only = true;
  ASSIGN_OR_RETURN(std::unique_ptr<storage::RocksDbEventStore> store,
                   storage::RocksDbEventStore::Open(db_path, options));
  const storage::HeadRecord head = store->Head();
  const uint64_t size = head.tree_size();

  ChunkQueue queue;
  TreeCheck tree_check;
  std::thread reader([&] { ReadAndHash(*store, size, &queue, &tree_check, progress); });
  core::LogVerifier verifier;
  absl::Status replay;
  while (std::optional<Chunk> chunk = queue.Pop()) {
    for (size_t i = 0; i < chunk->size() && replay.ok(); ++i) {
      replay = verifier.Replay(chunk->first + i, chunk->event(i));
    }
    if (!replay.ok()) {
      queue.Stop();
      break;
    }
  }
  reader.join();
  // A read error or a missing node first; then a rule broken by an event
  // (naming the first bad sequence); then hash mismatches.
  RETURN_IF_ERROR(tree_check.status);
  RETURN_IF_ERROR(replay);
  if (verifier.replayed() != size || tree_check.tree.size() != size) {
    return absl::DataLossError(absl::StrCat("the head counts ", size,
                                            " events but the log holds ",
                                            verifier.replayed()));
  }
  const core::Hash root = tree_check.tree.Root();
  const bool root_ok = core::AsBytes(root) == head.root_hash();
  if (const auto& m = tree_check.mismatch; m.has_value()) {
    if (!root_ok) {
      return absl::DataLossError(absl::StrCat(
          "event ", m->sequence,
          ": its stored bytes differ from those committed (they no longer hash "
          "to the Merkle tree recorded at commit, nor to the head's root): the "
          "event was altered"));
    }
    return absl::DataLossError(absl::StrCat(
        "Merkle tree node (level ", m->level, ", index ", m->index,
        ", covering event ", m->sequence,
        ") differs from the one recomputed from the events; proofs served from "
        "it would not verify"));
  }
  if (!root_ok) {
    return absl::DataLossError(
        "the events hash to a different root than the head's: the head was altered");
  }

  // Every stored snapshot equals the case re-derived from the log.
  uint64_t snapshots = 0;
  absl::Status bad;
  RETURN_IF_ERROR(store->ScanCaseSnapshots([&](absl::string_view id, absl::string_view b) {
    bad = verifier.CheckSnapshotBytes(id, b);
    ++snapshots;
    return bad.ok();
  }));
  RETURN_IF_ERROR(bad);
  if (snapshots != verifier.case_count()) {
    // Name the first case (in id order) that has events but no snapshot.
    absl::flat_hash_set<std::string> stored;
    RETURN_IF_ERROR(store->ScanCaseSnapshots([&](absl::string_view id, absl::string_view) {
      stored.insert(std::string(id));
      return true;
    }));
    std::string missing;
    for (const std::string& id : verifier.CaseIds()) {
      if (!stored.contains(id) && (missing.empty() || id < missing)) missing = id;
    }
    return absl::DataLossError(absl::StrCat(
        "the log has ", verifier.case_count(), " cases but ", snapshots,
        " snapshots are stored", missing.empty() ? "" : ": case ", missing,
        missing.empty() ? "" : " has events but no stored snapshot"));
  }
  if (progress) progress(size, size);
  VerifyReport report;
  report.events = size;
  report.cases = snapshots;
  report.root_hex = core::ToHex(root);
  report.elapsed = absl::Now() - start;
  return report;
}

}  // namespace permit::server
