// ForwardingStore: an EventStore that passes every call to a real one.
// Tests derive from it and override the one operation they want to hold,
// slow down or fail.
#ifndef PERMIT_TESTS_SERVER_FORWARDING_STORE_H_
#define PERMIT_TESTS_SERVER_FORWARDING_STORE_H_

#include <memory>
#include <utility>

#include "storage/event_store.h"

namespace permit::testing {

class ForwardingStore : public storage::EventStore {
 public:
  explicit ForwardingStore(std::unique_ptr<storage::EventStore> inner)
      : inner_(std::move(inner)) {}

  absl::Status Append(const std::vector<storage::PendingEvent>& batch,
                      uint64_t new_cases) override {
    return inner_->Append(batch, new_cases);
  }
  storage::LogState State() const override { return inner_->State(); }
  absl::StatusOr<v1::Case> GetCase(absl::string_view id) const override {
    return inner_->GetCase(id);
  }
  absl::StatusOr<std::vector<v1::Case>> ListCases(const storage::CaseFilter& f,
                                                  absl::string_view after,
                                                  int limit) const override {
    return inner_->ListCases(f, after, limit);
  }
  absl::StatusOr<std::vector<uint64_t>> CaseEventSequences(
      absl::string_view id) const override {
    return inner_->CaseEventSequences(id);
  }
  absl::Status ReadEvents(
      uint64_t from, uint64_t to,
      const std::function<bool(uint64_t, absl::string_view)>& fn)
      const override {
    return inner_->ReadEvents(from, to, fn);
  }
  absl::StatusOr<std::optional<storage::RequestRecord>> GetRequest(
      absl::string_view p, absl::string_view r) const override {
    return inner_->GetRequest(p, r);
  }
  absl::StatusOr<core::Hash> TreeNode(int level,
                                      uint64_t index) const override {
    return inner_->TreeNode(level, index);
  }
  absl::Status SaveCheckpoint(absl::string_view bytes) override {
    return inner_->SaveCheckpoint(bytes);
  }
  absl::StatusOr<std::optional<std::string>> LoadCheckpoint() const override {
    return inner_->LoadCheckpoint();
  }
  absl::StatusOr<storage::BackupInfo> Backup(const std::string& backup_dir,
                                             uint32_t keep_last) override {
    return inner_->Backup(backup_dir, keep_last);
  }
  void StopBackups() override { inner_->StopBackups(); }

 private:
  std::unique_ptr<storage::EventStore> inner_;
};

}  // namespace permit::testing

#endif  // PERMIT_TESTS_SERVER_FORWARDING_STORE_H_
