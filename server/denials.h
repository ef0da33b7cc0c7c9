// DenialRecord: the bounded, queryable record of refused calls (wrong role,
// four-eyes, wrong state, stale version, not found, unauthenticated,
// rate-limited) that auditors read with ListDenials. Refusals are evidence
// of attempts, not changes: they are kept in memory beside the audit log,
// never in it, and recording one takes a short lock of its own, never the
// writer's, so accepted writes are not slowed. The oldest entries are
// evicted beyond the capacity; counts by code cover everything since start.
//
// Thread-safety: thread-safe.
#ifndef PERMIT_SERVER_DENIALS_H_
#define PERMIT_SERVER_DENIALS_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "permit/v1/audit_service.pb.h"
#include "server/call_record.h"

namespace permit::server {

class DenialRecord : public CallObserver {
 public:
  explicit DenialRecord(size_t capacity) : capacity_(capacity) {}

  // True for the codes that mean "refused" rather than "failed".
  static bool IsRefusal(absl::StatusCode code);

  // Records `call` if its status is a refusal.
  void OnCallDone(const CallRecord& call) override;

  // The refusals matching `r`, newest first. PERMISSION_DENIED unless
  // `actor` is an auditor; INVALID_ARGUMENT for an unknown code name or a
  // page size out of range.
  absl::StatusOr<v1::ListDenialsResponse> List(const v1::Actor& actor,
                                               const v1::ListDenialsRequest& r) const;

  uint64_t total() const;

 private:
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::deque<v1::Denial> kept_ ABSL_GUARDED_BY(mu_);  // oldest first
  uint64_t total_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, uint64_t> by_code_ ABSL_GUARDED_BY(mu_);
};

}  // namespace permit::server

#endif  // PERMIT_SERVER_DENIALS_H_
