// permit C++ SDK: a client for permitd's CaseService and AuditService.
//
//   permit::ClientOptions options;
//   options.address = "127.0.0.1:7443";
//   options.token = std::getenv("PERMIT_TOKEN");
//   auto client = permit::Client::Connect(options);
//   if (!client.ok()) ...;
//   absl::StatusOr<permit::v1::Case> c = (*client)->GetCase("PRM-2026-000001");
//
// Every method returns absl::Status / absl::StatusOr carrying the server's
// gRPC code and message; FieldViolations() extracts the per-field reasons of
// an INVALID_ARGUMENT. Mutating methods fill in a fresh request_id when the
// request has none and retry transient failures (UNAVAILABLE,
// DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED from the rate limit) with that same
// id, so a retry never acts twice.
//
// Thread-safety: a Client may be used from many threads at once.
// Transport: TLS by default, checking the server's certificate against
// `ca_pem` (or the system's trusted roots); `insecure` for plaintext.
#ifndef PERMIT_CLIENT_H_
#define PERMIT_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "permit/v1/admin_service.grpc.pb.h"
#include "permit/v1/audit_service.grpc.pb.h"
#include "permit/v1/case_service.grpc.pb.h"

namespace permit {

struct ClientOptions {
  // permitd's address, host:port.
  std::string address = "127.0.0.1:7443";
  // Bearer token of the principal to act as.
  std::string token;
  // Deadline of each unary call attempt.
  absl::Duration deadline = absl::Seconds(10);
  // Attempts per call for transient failures (1 = no retry).
  int max_attempts = 4;
  // Wait before the first retry; doubles each time.
  absl::Duration initial_backoff = absl::Milliseconds(200);

  // Transport security. TLS unless `insecure`: the server's certificate must
  // chain to `ca_pem` (PEM; empty: the system's trusted roots) and name the
  // host in `address`. `cert_pem` and `key_pem` (PEM, both or neither): a
  // client certificate, for principals bound to one (mutual TLS).
  // `insecure`: plaintext, for a server started with --insecure.
  bool insecure = false;
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
};

// One bad field of an INVALID_ARGUMENT, from google.rpc.BadRequest.
struct FieldViolation {
  std::string field;
  std::string description;
};

// The field violations carried by a status returned by the Client.
std::vector<FieldViolation> FieldViolations(const absl::Status& status);

// The name of a status code as gRPC spells it: "INVALID_ARGUMENT".
std::string StatusCodeName(absl::StatusCode code);

class Client {
 public:
  // Creates a channel to `options.address`. Connection happens lazily, so
  // an unreachable server (or a failed TLS handshake) shows as UNAVAILABLE
  // on the first call. INVALID_ARGUMENT for contradictory transport options
  // (a certificate without its key, `insecure` with certificates).
  static absl::StatusOr<std::unique_ptr<Client>> Connect(ClientOptions options);

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // CaseService. The action methods fill `request_id` if it is empty.
  absl::StatusOr<v1::Case> SubmitCase(v1::SubmitCaseRequest request);
  absl::StatusOr<v1::Case> GetCase(const std::string& case_id);
  // With `as_of_sequence` or `as_of_time` set: the case as it stood then.
  absl::StatusOr<v1::Case> GetCase(const v1::GetCaseRequest& request);
  absl::StatusOr<v1::ListCasesResponse> ListCases(const v1::ListCasesRequest& request);
  absl::StatusOr<v1::GetCaseHistoryResponse> GetCaseHistory(
      const std::string& case_id);
  absl::StatusOr<v1::GetCaseHistoryResponse> GetCaseHistory(
      const v1::GetCaseHistoryRequest& request);
  absl::StatusOr<v1::Case> ReviewCase(v1::ReviewCaseRequest request);
  absl::StatusOr<v1::Case> ApproveCase(v1::ApproveCaseRequest request);
  absl::StatusOr<v1::Case> RejectCase(v1::RejectCaseRequest request);
  absl::StatusOr<v1::Case> SuspendCase(v1::SuspendCaseRequest request);
  absl::StatusOr<v1::Case> ResumeCase(v1::ResumeCaseRequest request);
  absl::StatusOr<v1::Case> RevokeCase(v1::RevokeCaseRequest request);
  absl::StatusOr<v1::Case> WithdrawCase(v1::WithdrawCaseRequest request);

  // The standard grpc.health.v1 check of the whole server: OK when it is
  // SERVING, UNAVAILABLE (naming the status) otherwise. Needs no token.
  absl::Status CheckHealth();

  // AuditService.
  absl::StatusOr<v1::LogHead> GetLogHead();
  absl::StatusOr<v1::SignedCheckpoint> GetCheckpoint();
  // Refused calls on record (auditors only), newest first.
  absl::StatusOr<v1::ListDenialsResponse> ListDenials(const v1::ListDenialsRequest& request);
  // The proofs as served; permit/audit.h verifies them.
  absl::StatusOr<v1::InclusionProof> GetInclusionProof(uint64_t sequence,
                                                       uint64_t tree_size);
  absl::StatusOr<v1::ConsistencyProof> GetConsistencyProof(uint64_t old_size,
                                                           uint64_t new_size);

  // AdminService (admin principals only): an online backup into the
  // server's backup folder. Not retried: a retry would take a second backup.
  absl::StatusOr<v1::BackupResponse> Backup(const v1::BackupRequest& request);

  // Calls `on_entry` for each entry of ReadLog(request), in order, until it
  // returns false or the range ends. If the stream breaks transiently it
  // resumes after the last sequence number delivered, so no entry is seen
  // twice or skipped.
  absl::Status ReadLog(const v1::ReadLogRequest& request,
                       const std::function<bool(const v1::LogEntry&)>& on_entry);

  // Like ReadLog but follows the log live (WatchLog) until `on_entry`
  // returns false, resuming after transient failures from the last sequence
  // number delivered. Returns OK when stopped by `on_entry`.
  absl::Status WatchLog(const v1::WatchLogRequest& request,
                        const std::function<bool(const v1::LogEntry&)>& on_entry);

  // A fresh random request id (32 hex digits).
  static std::string NewRequestId();
  // The server address this client talks to.
  const std::string& address() const { return options_.address; }

 private:
  explicit Client(ClientOptions options);

  // One unary call, retried with backoff on transient failures.
  template <typename Stub, typename Request, typename Response>
  absl::StatusOr<Response> Call(
      Stub* stub,
      grpc::Status (Stub::*rpc)(grpc::ClientContext*, const Request&, Response*),
      const Request& request);
  void Prepare(grpc::ClientContext* ctx, bool with_deadline) const;

  const ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::CaseService::Stub> cases_;
  std::unique_ptr<v1::AuditService::Stub> audit_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
};

}  // namespace permit

#endif  // PERMIT_CLIENT_H_
