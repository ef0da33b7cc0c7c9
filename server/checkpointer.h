// Checkpointer: signs checkpoints of the audit log (core/checkpoint.h) as
// it grows. After commits it signs the new head, at most once per
// `min_interval` under load and so always within a second of the last
// commit. Sizes only grow and every root comes from the same append-only
// tree, so no two checkpoints it signs are inconsistent.
//
// It also keeps the last checkpoint it signed beside the log and, on start,
// refuses (FAILED_PRECONDITION) a log that is shorter than it or whose
// prefix has another root: a restored old backup or a rewritten history is
// never signed with the same key.
//
// Thread-safety: Latest() may be called from any thread; signing runs on
// the Checkpointer's own thread.
#ifndef PERMIT_SERVER_CHECKPOINTER_H_
#define PERMIT_SERVER_CHECKPOINTER_H_

#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/checkpoint.h"
#include "permit/v1/audit_service.pb.h"
#include "server/case_manager.h"

namespace permit::server {

class Checkpointer {
 public:
  // Signs the current head at once, then follows commits. `manager` must
  // outlive the Checkpointer.
  static absl::StatusOr<std::unique_ptr<Checkpointer>> Start(
      CaseManager* manager, std::unique_ptr<core::NoteSigner> signer,
      absl::Duration min_interval = absl::Milliseconds(200));
  ~Checkpointer();

  // The latest signed checkpoint.
  v1::SignedCheckpoint Latest() const;
  const std::string& verifier_key() const { return signer_->verifier_key(); }

 private:
  Checkpointer(CaseManager* manager, std::unique_ptr<core::NoteSigner> signer,
               absl::Duration min_interval);
  void Loop();
  // Signs the current head and saves the checkpoint beside the log.
  absl::StatusOr<v1::SignedCheckpoint> Sign() const;

  CaseManager* const manager_;
  const std::unique_ptr<core::NoteSigner> signer_;
  const absl::Duration min_interval_;
  int subscription_ = 0;

  mutable absl::Mutex mu_;
  uint64_t wanted_size_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  v1::SignedCheckpoint latest_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace permit::server

#endif  // PERMIT_SERVER_CHECKPOINTER_H_
