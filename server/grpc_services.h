// The gRPC face of permitd: CaseService and AuditService on gRPC's callback
// API. Handlers are thin: they authenticate the caller, apply the
// per-principal limits, hand the request to the CaseManager, turn its
// absl::Status into a grpc::Status (grpc_status.h), and report every
// finished call once, as a CallRecord, to the observers (the denials record,
// metrics, the request log). No workflow logic lives here.
//
// Thread-safety: the services are called by gRPC from many threads; they
// share only thread-safe objects (Frontend's members).
#ifndef PERMIT_SERVER_GRPC_SERVICES_H_
#define PERMIT_SERVER_GRPC_SERVICES_H_

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "permit/v1/admin_service.grpc.pb.h"
#include "permit/v1/audit_service.grpc.pb.h"
#include "permit/v1/case_service.grpc.pb.h"
#include <thread>
#include <vector>

#include "server/auth.h"
#include "server/call_record.h"
#include "server/case_manager.h"
#include "server/checkpointer.h"
#include "server/denials.h"
#include "server/limits.h"

namespace permit::server {

// Maps a call's `authorization` metadata to a principal. The registry can be
// replaced while calls run (calls keep the principal they started with).
class Authenticator {
 public:
  explicit Authenticator(PrincipalRegistry registry)
      : registry_(std::make_shared<PrincipalRegistry>(std::move(registry))) {}

  absl::StatusOr<v1::Actor> Authenticate(const grpc::ServerContextBase& ctx) const;
  void Replace(PrincipalRegistry registry);
  // The principals now.
  std::shared_ptr<const PrincipalRegistry> Current() const;
  // Hex SHA-256 of the call's bearer token ("" if it has none), as
  // PrincipalRegistry::Authenticate reads it.
  static std::string TokenHash(const grpc::ServerContextBase& ctx);

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const PrincipalRegistry> registry_ ABSL_GUARDED_BY(mu_);
};

class LogStreamReactor;

// The open ReadLog/WatchLog streams, watched by a thread that drops any
// stream whose client has not taken a message for `write_timeout`: a stuck
// reader then holds no server memory (one message at most while it lasts)
// and no stream slot. Dropped streams end RESOURCE_EXHAUSTED in the call
// record; the client, which is not reading, sees the stream cancelled.
class LogStreams {
 public:
  explicit LogStreams(absl::Duration write_timeout);
  ~LogStreams();  // stops the watchdog; every stream must have ended

  void Add(LogStreamReactor* stream);
  void Remove(LogStreamReactor* stream);
  // Ends (UNAUTHENTICATED in the call record) every stream opened with a
  // token that `registry` no longer has: a revoked token stops at once,
  // open streams included.
  void EndRevoked(const PrincipalRegistry& registry);
  // Streams dropped for not reading, since start.
  uint64_t dropped() const;

 private:
  void Watch();

  const absl::Duration write_timeout_;
  mutable absl::Mutex mu_;
  std::vector<LogStreamReactor*> streams_ ABSL_GUARDED_BY(mu_);
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread watchdog_;
};

// What every handler shares. Not owned; all outlive the services.
struct Frontend {
  CaseManager* manager = nullptr;
  const Checkpointer* checkpointer = nullptr;
  const Authenticator* auth = nullptr;
  RateLimiter* rate_limiter = nullptr;
  StreamLimiter* stream_limiter = nullptr;
  LogStreams* streams = nullptr;
  DenialRecord* denials = nullptr;
  // Told of every finished call (the denials record among them).
  std::vector<CallObserver*> observers;
  // Where AdminService.Backup writes.
  std::string backup_dir;
};

class CaseServiceImpl final : public v1::CaseService::CallbackService {
 public:
  explicit CaseServiceImpl(const Frontend* fe) : fe_(fe) {}

  grpc::ServerUnaryReactor* SubmitCase(grpc::CallbackServerContext* ctx,
                                       const v1::SubmitCaseRequest* request,
                                       v1::Case* response) override;
  grpc::ServerUnaryReactor* GetCase(grpc::CallbackServerContext* ctx,
                                    const v1::GetCaseRequest* request,
                                    v1::Case* response) override;
  grpc::ServerUnaryReactor* ListCases(grpc::CallbackServerContext* ctx,
                                      const v1::ListCasesRequest* request,
                                      v1::ListCasesResponse* response) override;
  grpc::ServerUnaryReactor* GetCaseHistory(
      grpc::CallbackServerContext* ctx, const v1::GetCaseHistoryRequest* request,
      v1::GetCaseHistoryResponse* response) override;
  grpc::ServerUnaryReactor* ReviewCase(grpc::CallbackServerContext* ctx,
                                       const v1::ReviewCaseRequest* request,
                                       v1::Case* response) override;
  grpc::ServerUnaryReactor* ApproveCase(grpc::CallbackServerContext* ctx,
                                        const v1::ApproveCaseRequest* request,
                                        v1::Case* response) override;
  grpc::ServerUnaryReactor* RejectCase(grpc::CallbackServerContext* ctx,
                                       const v1::RejectCaseRequest* request,
                                       v1::Case* response) override;
  grpc::ServerUnaryReactor* SuspendCase(grpc::CallbackServerContext* ctx,
                                        const v1::SuspendCaseRequest* request,
                                        v1::Case* response) override;
  grpc::ServerUnaryReactor* ResumeCase(grpc::CallbackServerContext* ctx,
                                       const v1::ResumeCaseRequest* request,
                                       v1::Case* response) override;
  grpc::ServerUnaryReactor* RevokeCase(grpc::CallbackServerContext* ctx,
                                       const v1::RevokeCaseRequest* request,
                                       v1::Case* response) override;
  grpc::ServerUnaryReactor* WithdrawCase(grpc::CallbackServerContext* ctx,
                                         const v1::WithdrawCaseRequest* request,
                                         v1::Case* response) override;

 private:
  template <typename Request>
  grpc::ServerUnaryReactor* Act(
      grpc::CallbackServerContext* ctx, const char* method, const Request* request,
      v1::Case* response,
      void (CaseManager::*action)(const v1::Actor&, const Request&,
                                  CaseManager::Done, absl::Time));

  const Frontend* const fe_;
};

class AuditServiceImpl final : public v1::AuditService::CallbackService {
 public:
  explicit AuditServiceImpl(const Frontend* fe) : fe_(fe) {}

  grpc::ServerUnaryReactor* GetLogHead(grpc::CallbackServerContext* ctx,
                                       const v1::GetLogHeadRequest* request,
                                       v1::LogHead* response) override;
  grpc::ServerWriteReactor<v1::ReadLogResponse>* ReadLog(
      grpc::CallbackServerContext* ctx,
      const v1::ReadLogRequest* request) override;
  grpc::ServerWriteReactor<v1::ReadLogResponse>* WatchLog(
      grpc::CallbackServerContext* ctx,
      const v1::WatchLogRequest* request) override;
  grpc::ServerUnaryReactor* GetCheckpoint(grpc::CallbackServerContext* ctx,
                                          const v1::GetCheckpointRequest* request,
                                          v1::SignedCheckpoint* response) override;
  grpc::ServerUnaryReactor* GetInclusionProof(
      grpc::CallbackServerContext* ctx, const v1::GetInclusionProofRequest* request,
      v1::InclusionProof* response) override;
  grpc::ServerUnaryReactor* GetConsistencyProof(
      grpc::CallbackServerContext* ctx,
      const v1::GetConsistencyProofRequest* request,
      v1::ConsistencyProof* response) override;
  grpc::ServerUnaryReactor* ListDenials(grpc::CallbackServerContext* ctx,
                                        const v1::ListDenialsRequest* request,
                                        v1::ListDenialsResponse* response) override;

 private:
  const Frontend* const fe_;
};

// Backups run on a thread of their own, one at a time: a backup of a large
// log takes minutes, and gRPC has only a few threads to run every call's
// handler on. A Backup while one is running is refused with ABORTED.
class AdminServiceImpl final : public v1::AdminService::CallbackService {
 public:
  explicit AdminServiceImpl(const Frontend* fe) : fe_(fe) {}
  ~AdminServiceImpl() override { WaitForBackup(); }

  // For shutdown: refuses new backups (UNAVAILABLE), and stops one still
  // running at `deadline` (CaseManager::StopBackups). Returns when no backup
  // runs or at `deadline`.
  void StopBackupsBy(absl::Time deadline);
  // Waits until the last backup's thread has ended; the server calls it on
  // shutdown before it closes the log.
  void WaitForBackup();

  grpc::ServerUnaryReactor* Backup(grpc::CallbackServerContext* ctx,
                                   const v1::BackupRequest* request,
                                   v1::BackupResponse* response) override;

 private:
  const Frontend* const fe_;
  absl::Mutex mu_;
  bool backing_up_ ABSL_GUARDED_BY(mu_) = false;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  std::thread worker_ ABSL_GUARDED_BY(mu_);  // the last backup's
};

}  // namespace permit::server

#endif  // PERMIT_SERVER_GRPC_SERVICES_H_
