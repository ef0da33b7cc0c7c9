// Offline verification of a database folder; see verify.h.
//
// Two threads share the work: the caller's thread scans the events in
// order, hashes them into the Merkle tree and checks every stored tree node
// on the way; a core::ParallelReplayer replays the same events through the
// rules on two more (cases split by id), then compares the stored case
// snapshots with the re-derived cases while this thread reads them.
#include "server/verify.h"

#include <optional>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/log_verifier.h"
#include "core/parallel_replayer.h"
#include "core/status_macros.h"
#include "storage/rocksdb_event_store.h"

namespace permit::server {
namespace {

using Scanner = storage::RocksDbEventStore::TreeLevelScanner;

// What reading and hashing found.
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

// Scans events 1..size: hashes them into the tree, checks every stored tree
// node against the recomputed one (nodes of a level complete in index
// order, so one sequential scan per level suffices), and hands the bytes to
// the replayer.
void ReadAndHash(const storage::RocksDbEventStore& store, uint64_t size,
                 core::ParallelReplayer* replayer, TreeCheck* out,
                 const std::function<void(uint64_t, uint64_t)>& progress) {
  std::vector<std::unique_ptr<Scanner>> levels(64);
  auto scanner = [&](int level) -> Scanner& {
    if (levels[level] == nullptr) levels[level] = store.ScanTreeLevel(level);
    return *levels[level];
  };
  std::vector<core::TreeNode> completed;
  bool replay_failed = false;
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
    if (!replayer->Add(seq, b)) {
      replay_failed = true;
      return false;
    }
    if (progress && seq % 65536 == 0) progress(seq, size);
    return true;
  });
  if (out->status.ok()) out->status = scan;
  if (!out->status.ok() || replay_failed) return;
  for (int level = 0; level < 64; ++level) {
    absl::StatusOr<std::optional<core::TreeNode>> extra = scanner(level).Next();
    if (!extra.ok()) {
      out->status = extra.status();
      return;
    }
    if (extra->has_value()) {
      out->status = absl::DataLossError(absl::StrCat(
          "Merkle tree node (level ", level, ", index ", (*extra)->index,
          ") is stored but covers events beyond the log"));
      return;
    }
  }
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

  // Two replay shards (cases split by id) and this thread reading and
  // hashing: three threads keep both cores busy.
  core::ParallelReplayer replayer(/*shards=*/2);
  TreeCheck tree_check;
  ReadAndHash(*store, size, &replayer, &tree_check, progress);
  const absl::Status replay = replayer.Finish();
  // A read error or a missing node first; then a rule broken by an event
  // (naming the first bad sequence); then hash mismatches.
  RETURN_IF_ERROR(tree_check.status);
  RETURN_IF_ERROR(replay);
  if (tree_check.tree.size() != size) {
    return absl::DataLossError(absl::StrCat("the head counts ", size,
                                            " events but the log holds ",
                                            tree_check.tree.size()));
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
  // Compared on the replayer's threads while this one reads on; the first
  // bad snapshot (in id order) is reported, and a read error only after it.
  uint64_t snapshots = 0;
  const absl::Status scan =
      store->ScanCaseSnapshots([&](absl::string_view id, absl::string_view b) {
        ++snapshots;
        return replayer.AddSnapshot(id, b);
      });
  RETURN_IF_ERROR(replayer.FinishSnapshots());
  RETURN_IF_ERROR(scan);
  if (snapshots != replayer.case_count()) {
    // Name the first case (in id order) that has events but no snapshot.
    absl::flat_hash_set<std::string> stored;
    RETURN_IF_ERROR(store->ScanCaseSnapshots([&](absl::string_view id, absl::string_view) {
      stored.insert(std::string(id));
      return true;
    }));
    std::string missing;
    for (const std::string& id : replayer.CaseIds()) {
      if (!stored.contains(id) && (missing.empty() || id < missing)) missing = id;
    }
    return absl::DataLossError(absl::StrCat(
        "the log has ", replayer.case_count(), " cases but ", snapshots,
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
