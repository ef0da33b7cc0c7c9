// RocksDbEventStore: the EventStore on RocksDB. One database folder holds
// the events, the case snapshots, their indexes, the idempotency records and
// the log head in separate column families; each Append is one WriteBatch
// written with sync = true. The key layout and record format are specified
// in docs/storage.md.
//
// Thread-safety: as EventStore. A read-write Open() takes RocksDB's lock
// file, so a second read-write open of the same folder is refused; a
// read-only open (Options::read_only) takes no lock.
#ifndef PERMIT_STORAGE_ROCKSDB_EVENT_STORE_H_
#define PERMIT_STORAGE_ROCKSDB_EVENT_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/db.h"
#include "storage/event_store.h"

namespace rocksdb {
class BackupEngine;
}  // namespace rocksdb

namespace permit::storage {

class RocksDbEventStore final : public EventStore {
 public:
  // Opens (creating if missing) the store in `path` and checks that the
  // head matches the last stored event: DATA_LOSS, naming what differs, if
  // not. FAILED_PRECONDITION if another process holds the folder.
  struct Options {
    // The RocksDB Env to run on (default: the real file system). Tests pass
    // one that counts syncs or injects I/O failures. Not owned; must outlive
    // the store.
    rocksdb::Env* env = nullptr;
    // Open without writing anything (RocksDB's read-only mode, which takes
    // no lock and so also works while a permitd has the folder open). The
    // store then sees the log as of the moment it was opened, and Append
    // is refused.
    bool read_only = false;
  };
  static absl::StatusOr<std::unique_ptr<RocksDbEventStore>> Open(
      const std::string& path, const Options& options);
  static absl::StatusOr<std::unique_ptr<RocksDbEventStore>> Open(
      const std::string& path) {
    return Open(path, Options());
  }

  RocksDbEventStore(const RocksDbEventStore&) = delete;
  RocksDbEventStore& operator=(const RocksDbEventStore&) = delete;
  ~RocksDbEventStore() override;

  absl::Status Append(const std::vector<PendingEvent>& batch,
                      uint64_t new_cases) override;
  LogState State() const override;
  absl::StatusOr<v1::Case> GetCase(absl::string_view case_id) const override;
  absl::StatusOr<std::vector<v1::Case>> ListCases(
      const CaseFilter& filter, absl::string_view after_id,
      int limit) const override;
  absl::StatusOr<std::vector<uint64_t>> CaseEventSequences(
      absl::string_view case_id) const override;
  absl::Status ReadEvents(
      uint64_t from, uint64_t to,
      const std::function<bool(uint64_t, absl::string_view)>& fn) const override;
  absl::StatusOr<std::optional<RequestRecord>> GetRequest(
      absl::string_view principal_id,
      absl::string_view request_id) const override;
  absl::StatusOr<core::Hash> TreeNode(int level, uint64_t index) const override;
  absl::Status SaveCheckpoint(absl::string_view bytes) override;
  absl::StatusOr<std::optional<std::string>> LoadCheckpoint() const override;
  // RocksDB's BackupEngine, online: files are shared between backups (only
  // new ones are copied), the live WAL is included, so the backup is one
  // consistent point across every column family.
  absl::StatusOr<BackupInfo> Backup(const std::string& backup_dir,
                                    uint32_t keep_last) override;
  void StopBackups() override;

  // Restores backup `backup_id` (0: the newest) from `backup_dir` into
  // `db_path`, which must not exist yet, after checking every file's
  // checksum. NOT_FOUND for a missing backup, DATA_LOSS for a damaged one.
  // The restored log is not checked here (see server/verify.h).
  static absl::Status RestoreBackup(const std::string& backup_dir,
                                    uint32_t backup_id, const std::string& db_path);

  // The head record as stored (for verification tools).
  HeadRecord Head() const;

  // Reads the stored nodes of one Merkle tree level in index order, for
  // verification tools that check every node sequentially.
  class TreeLevelScanner {
   public:
    // The next stored node of the level, or nullopt after the last.
    absl::StatusOr<std::optional<core::TreeNode>> Next();

   private:
    friend class RocksDbEventStore;
    std::unique_ptr<rocksdb::Iterator> it_;
    int level_ = 0;
    bool started_ = false;
  };
  std::unique_ptr<TreeLevelScanner> ScanTreeLevel(int level) const;

  // Calls `fn(case id, stored snapshot bytes)` for every case in id order,
  // until it returns false (for verification tools).
  absl::Status ScanCaseSnapshots(
      const std::function<bool(absl::string_view, absl::string_view)>& fn) const;

  // Column family names, in open order (also in docs/storage.md).
  static const std::vector<std::string>& ColumnFamilyNames();
  // The 8-byte big-endian key of event `sequence` in the "events" family.
  static std::string EventKey(uint64_t sequence);

 private:
  enum Cf {
    kMeta = 0,
    kEvents,
    kCases,
    kCaseEvents,
    kCaseIndex,
    kRequests,
    kTree,
    kNumCf
  };

  RocksDbEventStore(std::string path, rocksdb::DB* db,
                    std::vector<rocksdb::ColumnFamilyHandle*> handles);
  // Loads the head and checks it against the stored events.
  absl::Status LoadAndCheckHead();
  // Writes the Merkle tree's nodes if the "tree" family lacks them (a log
  // written before it existed), checking the rebuilt root against the head.
  absl::Status BackfillTree() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  const std::string path_;
  rocksdb::DB* const db_;
  const std::vector<rocksdb::ColumnFamilyHandle*> handles_;

  // Serializes appends (the contract asks for one writer; this enforces it).
  mutable absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(state_mu_);
  core::CompactTree tree_ ABSL_GUARDED_BY(write_mu_);
  HeadRecord head_ ABSL_GUARDED_BY(write_mu_);
  bool failed_ ABSL_GUARDED_BY(write_mu_) = false;
  bool read_only_ = false;
  // One backup at a time: BackupEngine owns its folder while it runs.
  absl::Mutex backup_mu_ ABSL_ACQUIRED_BEFORE(stop_mu_);
  // StopBackups: the engine of the backup in progress, if any.
  absl::Mutex stop_mu_;
  bool backups_stopped_ ABSL_GUARDED_BY(stop_mu_) = false;
  rocksdb::BackupEngine* running_backup_ ABSL_GUARDED_BY(stop_mu_) = nullptr;

  mutable absl::Mutex state_mu_;
  LogState state_ ABSL_GUARDED_BY(state_mu_);
};

}  // namespace permit::storage

#endif  // PERMIT_STORAGE_ROCKSDB_EVENT_STORE_H_
