// Offline verification of a database folder; see verify.h.
#include "server/verify.h"

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

  core::LogVerifier verifier;
  absl::Status bad;
  RETURN_IF_ERROR(store->ReadEvents(1, size, [&](uint64_t seq, absl::string_view b) {
    bad = verifier.Add(seq, b);
    if (progress && seq % 65536 == 0) progress(seq, size);
    return bad.ok();
  }));
  RETURN_IF_ERROR(bad);
  if (verifier.size() != size) {
    return absl::DataLossError(absl::StrCat("the head counts ", size,
                                            " events but the log holds ",
                                            verifier.size()));
  }
  const core::Hash root = verifier.root();
  if (core::AsBytes(root) != head.root_hash()) {
    return absl::DataLossError(
        "the events do not hash to the head's root: an event was altered, "
        "or the head was");
  }
  if (size > 0) {
    // The stored tree nodes, which proofs are made of, must agree too.
    absl::StatusOr<core::Hash> from_nodes =
        core::RangeHash(0, size, [&](int level, uint64_t index) {
          return store->TreeNode(level, index);
        });
    if (!from_nodes.ok() || *from_nodes != root) {
      return absl::DataLossError(
          "the stored Merkle tree nodes do not give the log's root; proofs "
          "served from them would not verify");
    }
  }

  uint64_t snapshots = 0;
  std::string after;
  for (;;) {
    ASSIGN_OR_RETURN(std::vector<v1::Case> page,
                     store->ListCases(storage::CaseFilter(), after, 1000));
    for (const v1::Case& c : page) {
      RETURN_IF_ERROR(verifier.CheckSnapshot(c));
      ++snapshots;
    }
    if (page.size() < 1000) break;
    after = page.back().id();
  }
  if (snapshots != verifier.cases().size()) {
    return absl::DataLossError(absl::StrCat(
        "the log has ", verifier.cases().size(), " cases but ", snapshots,
        " snapshots are stored"));
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
