// The gRPC face of permitd: CaseService and AuditService on gRPC's callback
// API. Handlers are thin: they authenticate the caller, hand the request to
// the CaseManager and turn its absl::Status into a grpc::Status
// (grpc_status.h). No workflow logic lives here.
//
// Thread-safety: the services are called by gRPC from many threads; they
// share only the CaseManager and the Authenticator, both thread-safe.
#ifndef PERMIT_SERVER_GRPC_SERVICES_H_
#define PERMIT_SERVER_GRPC_SERVICES_H_

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "permit/v1/audit_service.grpc.pb.h"
#include "permit/v1/case_service.grpc.pb.h"
#include "server/auth.h"
#include "server/case_manager.h"
#include "server/checkpointer.h"

namespace permit::server {

// Maps a call's `authorization` metadata to a principal. The registry can be
// replaced while calls run (calls keep the principal they started with).
class Authenticator {
 public:
  explicit Authenticator(PrincipalRegistry registry)
      : registry_(std::make_shared<PrincipalRegistry>(std::move(registry))) {}

  absl::StatusOr<v1::Actor> Authenticate(const grpc::ServerContextBase& ctx) const;
  void Replace(PrincipalRegistry registry);

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const PrincipalRegistry> registry_ ABSL_GUARDED_BY(mu_);
};

class CaseServiceImpl final : public v1::CaseService::CallbackService {
 public:
  CaseServiceImpl(CaseManager* manager, const Authenticator* auth)
      : manager_(manager), auth_(auth) {}

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
      grpc::CallbackServerContext* ctx, const Request* request,
      v1::Case* response,
      void (CaseManager::*action)(const v1::Actor&, const Request&,
                                  CaseManager::Done));

  CaseManager* const manager_;
  const Authenticator* const auth_;
};

class AuditServiceImpl final : public v1::AuditService::CallbackService {
 public:
  AuditServiceImpl(CaseManager* manager, const Checkpointer* checkpointer,
                   const Authenticator* auth)
      : manager_(manager), checkpointer_(checkpointer), auth_(auth) {}

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

 private:
  CaseManager* const manager_;
  const Checkpointer* const checkpointer_;
  const Authenticator* const auth_;
};

}  // namespace permit::server

#endif  // PERMIT_SERVER_GRPC_SERVICES_H_
