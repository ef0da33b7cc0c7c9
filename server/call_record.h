// CallRecord: what one finished RPC was, as seen by the gRPC layer (method,
// caller, case, outcome, latency). The handlers fill one per call and hand
// it to a CallObserver: the denials record, metrics and the request log all
// read the same record, so they cannot disagree. No gRPC types here.
//
// Thread-safety: a CallObserver is called from many gRPC threads at once
// and must be thread-safe and quick (it runs before the reply is sent).
#ifndef PERMIT_SERVER_CALL_RECORD_H_
#define PERMIT_SERVER_CALL_RECORD_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "permit/v1/resources.pb.h"

namespace permit::server {

struct CallRecord {
  std::string method;      // e.g. "ApproveCase"
  v1::Actor actor;         // empty principal_id if authentication failed
  std::string case_id;     // the case the call named, if any
  std::string request_id;  // the client's idempotency key, if any
  std::string peer;        // e.g. "ipv4:127.0.0.1:50312"
  absl::Time start;
  absl::Duration latency;
  absl::Status status;
};

class CallObserver {
 public:
  virtual ~CallObserver() = default;
  virtual void OnCallDone(const CallRecord& call) = 0;
};

}  // namespace permit::server

#endif  // PERMIT_SERVER_CALL_RECORD_H_
