// CaseManager: the domain service behind permitd, with no gRPC in it. It
// validates requests, applies the workflow rules (core/rules.h), and commits
// accepted actions to the audit log through one writer thread that groups
// concurrent requests into a single synced batch (group commit). Reads go
// straight to the store and never wait for the writer.
//
// Thread-safety: every public method may be called from any thread. An
// action's callback runs once: on the caller's thread if the request is
// invalid or the manager is shutting down, otherwise on the writer thread
// after the batch holding the action is durable (or has failed). Callbacks
// must not block. Subscribers are told of commits by a separate notifier
// thread, so a slow log reader never delays a commit.
#ifndef PERMIT_SERVER_CASE_MANAGER_H_
#define PERMIT_SERVER_CASE_MANAGER_H_

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "permit/v1/admin_service.pb.h"
#include "permit/v1/audit_service.pb.h"
#include "permit/v1/case_service.pb.h"
#include "storage/event_store.h"

namespace permit::server {

// A point in time for reads: up to event `sequence` (0: no limit) and at or
// before `time` (unset: no limit).
struct AsOf {
  uint64_t sequence = 0;
  std::optional<absl::Time> time;
  bool now() const { return sequence == 0 && !time.has_value(); }
};

class CaseManager {
 public:
  using Done = std::function<void(absl::StatusOr<v1::Case>)>;
  using Clock = std::function<absl::Time()>;

  // One synced write of the writer, as told to Options::on_commit.
  struct CommitStats {
    // Actions the writer decided in this batch (expired ones left out).
    size_t actions = 0;
    // The events the write appended, in sequence order (never empty); each
    // event says the case's state before (from_state) and after
    // (to_state). The snapshots have been handed to the callers (moved
    // out). Valid only during the call.
    const std::vector<storage::PendingEvent>* events = nullptr;
    // The synced write alone, and its outcome (on error nothing was
    // appended and the log refuses further writes).
    absl::Duration sync_latency;
    absl::Status status;
    // The log size after the write.
    uint64_t log_size = 0;
  };

  struct Options {
    // At most this many actions share one synced batch.
    int max_batch = 512;
    // Server time; tests may fix it.
    Clock clock = [] { return absl::Now(); };
    // If set, called by the writer thread after each synced write that
    // appended events (batches whose actions were all refused write
    // nothing and are not reported), after the callers have been answered
    // and in commit order, so every event after initial_log_size() is
    // reported exactly once. It delays the next batch: keep it to a few
    // atomic updates, take no lock and never block (metrics.h).
    std::function<void(const CommitStats&)> on_commit;
    // If set, called once by the writer thread when a synced write first
    // fails: the store then refuses every later write (UNAVAILABLE) until
    // permitd restarts, and the server reports itself NOT_SERVING.
    std::function<void(const absl::Status&)> on_storage_failure;
  };

  // Takes ownership of `store` and starts the writer thread.
  static absl::StatusOr<std::unique_ptr<CaseManager>> Create(
      std::unique_ptr<storage::EventStore> store, Options options);
  static absl::StatusOr<std::unique_ptr<CaseManager>> Create(
      std::unique_ptr<storage::EventStore> store) {
    return Create(std::move(store), Options());
  }

  CaseManager(const CaseManager&) = delete;
  CaseManager& operator=(const CaseManager&) = delete;
  // Stops taking actions, commits those already queued, joins the writer.
  ~CaseManager();

  // Actions. `done` receives the case after the action, or why it was
  // refused; it is called exactly once, after the outcome is durable. An
  // action still queued when `deadline` passes is dropped unwritten with
  // DEADLINE_EXCEEDED (the caller has stopped waiting).
  void Submit(const v1::Actor& actor, const v1::SubmitCaseRequest& r, Done done,
              absl::Time deadline = absl::InfiniteFuture());
  void Review(const v1::Actor& actor, const v1::ReviewCaseRequest& r, Done done,
              absl::Time deadline = absl::InfiniteFuture());
  void Approve(const v1::Actor& actor, const v1::ApproveCaseRequest& r, Done done,
               absl::Time deadline = absl::InfiniteFuture());
  void Reject(const v1::Actor& actor, const v1::RejectCaseRequest& r, Done done,
              absl::Time deadline = absl::InfiniteFuture());
  void Suspend(const v1::Actor& actor, const v1::SuspendCaseRequest& r, Done done,
               absl::Time deadline = absl::InfiniteFuture());
  void Resume(const v1::Actor& actor, const v1::ResumeCaseRequest& r, Done done,
              absl::Time deadline = absl::InfiniteFuture());
  void Revoke(const v1::Actor& actor, const v1::RevokeCaseRequest& r, Done done,
              absl::Time deadline = absl::InfiniteFuture());
  void Withdraw(const v1::Actor& actor, const v1::WithdrawCaseRequest& r, Done done,
                absl::Time deadline = absl::InfiniteFuture());

  // Reads. Exporters see only their organisation's cases; anything else is
  // NOT_FOUND to them.
  absl::StatusOr<v1::Case> GetCase(const v1::Actor& actor,
                                   absl::string_view case_id) const {
    return GetCase(actor, case_id, AsOf());
  }
  // The case as it stood at `as_of`, rebuilt from its events with the rules
  // module; NOT_FOUND if it did not exist yet.
  absl::StatusOr<v1::Case> GetCase(const v1::Actor& actor,
                                   absl::string_view case_id,
                                   const AsOf& as_of) const;
  absl::StatusOr<v1::ListCasesResponse> ListCases(
      const v1::Actor& actor, const v1::ListCasesRequest& r) const;
  absl::StatusOr<std::vector<v1::Event>> GetCaseHistory(
      const v1::Actor& actor, absl::string_view case_id,
      const AsOf& as_of = AsOf()) const;

  // RFC 9162 proofs over the current tree (auditors and reviewers only).
  // `tree_size` / `new_size` 0 means the current size.
  absl::StatusOr<v1::InclusionProof> GetInclusionProof(const v1::Actor& actor,
                                                       uint64_t sequence,
                                                       uint64_t tree_size) const;
  absl::StatusOr<v1::ConsistencyProof> GetConsistencyProof(
      const v1::Actor& actor, uint64_t old_size, uint64_t new_size) const;
  // The root hash of the first `size` events (0 < size <= log size).
  absl::StatusOr<std::string> RootAt(uint64_t size) const;
  v1::LogHead GetLogHead(const v1::Actor& actor) const;

  // For shutdown: stops a backup in progress and refuses later ones
  // (EventStore::StopBackups).
  void StopBackups() { store_->StopBackups(); }
  // PERMISSION_DENIED unless `actor` may take backups (admins only).
  static absl::Status CheckMayBackUp(const v1::Actor& actor);
  // An online backup of the log into `backup_dir`, keeping the newest
  // `r.keep_last()`. Admins only (PERMISSION_DENIED otherwise).
  absl::StatusOr<v1::BackupResponse> Backup(const v1::Actor& actor,
                                            const v1::BackupRequest& r,
                                            const std::string& backup_dir);

  // Reads up to `max_events` log entries from `from` (inclusive) to `to`
  // (inclusive, clamped to the log size) that `actor` may see and that
  // belong to `case_id` if it is set. Returns the sequence number to
  // continue from; `*out` gets the entries.
  struct LogQuery {
    uint64_t from = 1;
    uint64_t to = UINT64_MAX;
    std::string case_id;
    bool include_event_bytes = false;
    // Audit filters: principal id, action, time range [start, end).
    std::string actor;
    v1::Action action = v1::ACTION_UNSPECIFIED;
    std::optional<absl::Time> start_time;
    std::optional<absl::Time> end_time;
    // With include_event_bytes: entries carry only the bytes and the
    // sequence number.
    bool bytes_only = false;
  };
  absl::StatusOr<uint64_t> ReadLog(const v1::Actor& actor, const LogQuery& q,
                                   size_t max_events, size_t max_bytes,
                                   v1::ReadLogResponse* out) const;
  absl::StatusOr<uint64_t> ReadLog(const v1::Actor& actor, const LogQuery& q,
                                   size_t max_events, size_t max_bytes,
                                   std::vector<v1::LogEntry>* out) const;
  // Checks a ReadLog/WatchLog request before streaming starts.
  absl::Status CheckLogQuery(const v1::Actor& actor, const LogQuery& q) const;

  // Log size now.
  uint64_t LogSize() const;

  // The signed checkpoint kept beside the log (see EventStore).
  absl::Status SaveCheckpoint(absl::string_view bytes) {
    return store_->SaveCheckpoint(bytes);
  }
  absl::StatusOr<std::optional<std::string>> LoadCheckpoint() const {
    return store_->LoadCheckpoint();
  }

  // Calls `fn(log_size)` from the notifier thread after commits (several
  // commits may be reported by one call), until the returned id is passed to
  // Unsubscribe, and once with 0 when the manager shuts down. UNAVAILABLE if
  // it has already shut down. `fn` should be quick; it runs with the
  // subscriber lock held, so it must not call Subscribe or Unsubscribe.
  // After Unsubscribe returns, `fn` is not running and will not run again.
  absl::StatusOr<int> Subscribe(std::function<void(uint64_t)> fn);
  void Unsubscribe(int id);

  // Actions waiting for the writer (a gauge for operators and tests).
  size_t QueuedActions() const;

  // The log size when the manager was created: Options::on_commit is told
  // of every event after it, and of none before.
  uint64_t initial_log_size() const { return initial_size_; }
  // Calls `fn(sequence, stored event bytes)` for events from..to (inclusive,
  // clamped to the log size) in order until it returns false, straight from
  // the store with no access check: for server-internal background work
  // (metrics.h counts cases by state with it), never for callers.
  absl::Status ScanEvents(
      uint64_t from, uint64_t to,
      const std::function<bool(uint64_t, absl::string_view)>& fn) const {
    return store_->ReadEvents(from, to, fn);
  }

  // Stops taking actions (UNAVAILABLE), lets queued ones finish, tells
  // subscribers. Idempotent.
  void Shutdown();

 private:
  // A validated action waiting for the writer.
  struct Command {
    v1::Actor actor;
    v1::Action action;
    std::string request_id;
    std::string case_id;  // empty for a submit
    int64_t expected_version = 0;
    std::string fingerprint;
    v1::Event details;     // carries only the action's details oneof
    bool default_valid_from = false;  // approve without valid_from
    absl::Time deadline = absl::InfiniteFuture();
    Done done;
  };

  // A command for an action on an existing case, from its request.
  template <typename Request>
  static Command NewCommand(const v1::Actor& actor, v1::Action action,
                            const Request& r);

  CaseManager(std::unique_ptr<storage::EventStore> store, Options options);
  void Enqueue(Command cmd, absl::Time deadline);
  void WriterLoop();
  // Reports commits beyond `reported` (the log size at start).
  void NotifierLoop(uint64_t reported);
  void CommitBatch(std::vector<Command>& batch);
  // Rebuilds the case as it stood at `version` from its events.
  absl::StatusOr<v1::Case> CaseAtVersion(absl::string_view case_id,
                                         int64_t version) const;
  absl::StatusOr<v1::Event> ReadEvent(uint64_t sequence) const;

  const std::unique_ptr<storage::EventStore> store_;
  const Options options_;
  uint64_t initial_size_ = 0;  // set before the writer starts

  bool storage_failed_ = false;  // writer thread only

  mutable absl::Mutex mu_;
  std::deque<Command> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  // Writer -> notifier: the log size after the latest commit, and whether
  // the writer has exited.
  absl::Mutex notify_mu_;
  uint64_t committed_size_ ABSL_GUARDED_BY(notify_mu_) = 0;
  bool writer_done_ ABSL_GUARDED_BY(notify_mu_) = false;

  absl::Mutex subscribers_mu_ ABSL_ACQUIRED_AFTER(notify_mu_);
  int next_subscriber_ ABSL_GUARDED_BY(subscribers_mu_) = 0;
  bool subscribers_closed_ ABSL_GUARDED_BY(subscribers_mu_) = false;
  std::vector<std::pair<int, std::function<void(uint64_t)>>> subscribers_
      ABSL_GUARDED_BY(subscribers_mu_);

  std::thread writer_;
  std::thread notifier_;
};

}  // namespace permit::server

#endif  // PERMIT_SERVER_CASE_MANAGER_H_
