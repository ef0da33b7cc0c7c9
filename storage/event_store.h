// EventStore: the storage interface of the audit log. It appends events
// (with the case snapshots, indexes and idempotency records they produce)
// atomically and durably, and reads them back. There is deliberately no
// operation that rewrites or deletes an event.
//
// Thread-safety: Append() is called by one writer at a time (the server's
// commit thread); every read may run concurrently with it and with other
// reads, and never waits for an Append() to finish.
#ifndef PERMIT_STORAGE_EVENT_STORE_H_
#define PERMIT_STORAGE_EVENT_STORE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/merkle.h"
#include "permit/v1/resources.pb.h"
#include "storage/records.pb.h"

namespace permit::storage {

// The state of the log as of the last committed batch.
struct LogState {
  uint64_t tree_size = 0;
  core::Hash root = core::EmptyRoot();
  uint64_t case_count = 0;
  std::optional<google::protobuf::Timestamp> last_event_time;
};

// One event to append, with what it changes.
struct PendingEvent {
  // The event; `sequence` must be the next one (tree_size + 1, + 2, ...).
  v1::Event event;
  // The case after the event.
  v1::Case snapshot;
  // The case's state before the event (unspecified for a submit), so that
  // the state index can move.
  v1::CaseState previous_state = v1::CASE_STATE_UNSPECIFIED;
  // Idempotency key (principal id, request id) and its record.
  std::string principal_id;
  RequestRecord request;
};

// Filters of ListCases; empty fields match everything.
struct CaseFilter {
  v1::CaseState state = v1::CASE_STATE_UNSPECIFIED;
  std::string organisation;
  std::string destination_country;
};

// What Backup made.
struct BackupInfo {
  uint32_t backup_id = 0;
  int64_t unix_time = 0;
  uint64_t size_bytes = 0;
  // Backups in the folder after rotation, oldest first.
  std::vector<uint32_t> kept_ids;
};

class EventStore {
 public:
  virtual ~EventStore() = default;

  // Appends `batch` in one atomic, synced write; the case count grows by
  // `new_cases`. Either all of it is durable when OK is returned, or none
  // of it is visible. A failed write is UNAVAILABLE, and so is every later
  // append: the on-disk state is unknown until the store is reopened.
  virtual absl::Status Append(const std::vector<PendingEvent>& batch,
                              uint64_t new_cases) = 0;

  // The log as of the last successful Append.
  virtual LogState State() const = 0;

  // The latest snapshot of a case; NOT_FOUND if there is none.
  virtual absl::StatusOr<v1::Case> GetCase(absl::string_view case_id) const = 0;

  // Up to `limit` cases matching `filter` with ids after `after_id`, in id
  // order.
  virtual absl::StatusOr<std::vector<v1::Case>> ListCases(
      const CaseFilter& filter, absl::string_view after_id, int limit) const = 0;

  // The sequence numbers of a case's events, by version.
  virtual absl::StatusOr<std::vector<uint64_t>> CaseEventSequences(
      absl::string_view case_id) const = 0;

  // Calls `fn(sequence, stored_bytes)` for events from..to (inclusive,
  // clamped to the log size) in order, until `fn` returns false. DATA_LOSS
  // if an event in the range is missing.
  virtual absl::Status ReadEvents(
      uint64_t from, uint64_t to,
      const std::function<bool(uint64_t, absl::string_view)>& fn) const = 0;

  // The idempotency record of (principal, request id), if any.
  virtual absl::StatusOr<std::optional<RequestRecord>> GetRequest(
      absl::string_view principal_id, absl::string_view request_id) const = 0;

  // The hash of a completed perfect subtree of the Merkle tree (level 0: a
  // leaf hash), for proofs. NOT_FOUND if the node is not complete yet.
  virtual absl::StatusOr<core::Hash> TreeNode(int level, uint64_t index) const = 0;

  // The latest signed checkpoint (opaque bytes), kept beside the log (not
  // in it, and not part of the tree) so that a restarted server can refuse
  // to sign a history that diverges from what it signed before. Durable
  // with the next synced Append or on close; an older one may survive a
  // crash.
  virtual absl::Status SaveCheckpoint(absl::string_view bytes) = 0;
  virtual absl::StatusOr<std::optional<std::string>> LoadCheckpoint() const = 0;

  // An online, consistent backup into `backup_dir` (created if missing),
  // then only the newest `keep_last` backups kept (0: all). Stores that
  // cannot back up return UNIMPLEMENTED.
  virtual absl::StatusOr<BackupInfo> Backup(const std::string& backup_dir,
                                            uint32_t keep_last) {
    return absl::UnimplementedError("this store cannot take backups");
  }
  // For shutdown: a Backup in progress stops soon and returns UNAVAILABLE
  // (what it had copied is not kept as a backup), and every later Backup
  // is refused the same way. Any thread.
  virtual void StopBackups() {}
};

}  // namespace permit::storage

#endif  // PERMIT_STORAGE_EVENT_STORE_H_
