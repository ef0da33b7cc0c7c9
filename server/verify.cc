// Offline verification of a database folder; see verify.h.
#include "server/verify.h"

#include "absl/container/flat_hash_set.h"
#include <optional>

#include "absl/strings/str_cat.h"
#include "core/log_verifier.h"
#include "core/status_macros.h"
#include "storage/rocksdb_event_store.h"

namespace permit::server {

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

  // Every event, and every stored Merkle tree node (which proofs are made
  // of) against the node recomputed from the events. Nodes of a level are
  // completed in index order, so one sequential scan per level suffices.
  core::LogVerifier verifier;
  std::vector<std::unique_ptr<storage::RocksDbEventStore::TreeLevelScanner>> levels(64);
  auto scanner = [&](int level) -> storage::RocksDbEventStore::TreeLevelScanner& {
    if (levels[level] == nullptr) levels[level] = store->ScanTreeLevel(level);
    return *levels[level];
  };
  std::vector<core::TreeNode> completed;
  struct Mismatch {
    uint64_t sequence;
    int level;
    uint64_t index;
  };
  std::optional<Mismatch> mismatch;
  absl::Status bad;
  RETURN_IF_ERROR(store->ReadEvents(1, size, [&](uint64_t seq, absl::string_view b) {
    completed.clear();
    bad = verifier.Add(seq, b, &completed);
    for (size_t i = 0; bad.ok() && i < completed.size(); ++i) {
      const core::TreeNode& want = completed[i];
      absl::StatusOr<std::optional<core::TreeNode>> got = scanner(want.level).Next();
      if (!got.ok()) {
        bad = got.status();
      } else if (!got->has_value() || (*got)->index != want.index) {
        bad = absl::DataLossError(absl::StrCat(
            "event ", seq, ": Merkle tree node (level ", want.level, ", index ",
            want.index, ") is missing; proofs that need it cannot be served"));
      } else if ((*got)->hash != want.hash && !mismatch.has_value()) {
        // Either the events or the node changed; the root decides which.
        mismatch = Mismatch{seq, want.level, want.index};
      }
    }
    if (progress && seq % 65536 == 0) progress(seq, size);
    return bad.ok();
  }));
  RETURN_IF_ERROR(bad);
  if (verifier.size() != size) {
    return absl::DataLossError(absl::StrCat("the head counts ", size,
                                            " events but the log holds ",
                                            verifier.size()));
  }
  for (int level = 0; level < 64; ++level) {
    ASSIGN_OR_RETURN(std::optional<core::TreeNode> extra, scanner(level).Next());
    if (extra.has_value()) {
      return absl::DataLossError(absl::StrCat(
          "Merkle tree node (level ", level, ", index ", extra->index,
          ") is stored but covers events beyond the log"));
    }
  }
  const core::Hash root = verifier.root();
  const bool root_ok = core::AsBytes(root) == head.root_hash();
  if (mismatch.has_value()) {
    if (!root_ok) {
      return absl::DataLossError(absl::StrCat(
          "event ", mismatch->sequence,
          ": its stored bytes differ from those committed (they no longer hash "
          "to the Merkle tree recorded at commit, nor to the head's root): the "
          "event was altered"));
    }
    return absl::DataLossError(absl::StrCat(
        "Merkle tree node (level ", mismatch->level, ", index ", mismatch->index,
        ", covering event ", mismatch->sequence,
        ") differs from the one recomputed from the events; proofs served from "
        "it would not verify"));
  }
  if (!root_ok) {
    return absl::DataLossError(
        "the events hash to a different root than the head's: the head was altered");
  }

  uint64_t snapshots = 0;
  absl::flat_hash_set<std::string> stored;
  std::string after;
  for (;;) {
    ASSIGN_OR_RETURN(std::vector<v1::Case> page,
                     store->ListCases(storage::CaseFilter(), after, 1000));
    for (const v1::Case& c : page) {
      RETURN_IF_ERROR(verifier.CheckSnapshot(c));
      stored.insert(c.id());
      ++snapshots;
    }
    if (page.size() < 1000) break;
    after = page.back().id();
  }
  if (snapshots != verifier.cases().size()) {
    // Name the first case (in id order) that has events but no snapshot.
    std::string missing;
    for (const auto& [id, c] : verifier.cases()) {
      if (!stored.contains(id) && (missing.empty() || id < missing)) missing = id;
    }
    return absl::DataLossError(absl::StrCat(
        "the log has ", verifier.cases().size(), " cases but ", snapshots,
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
