// Thin gRPC handlers over CaseManager; see grpc_services.h.
#include "server/grpc_services.h"

#include <atomic>

#include "absl/strings/str_cat.h"
#include "core/time_util.h"
#include "core/validation.h"
#include "server/grpc_status.h"

namespace permit::server {
namespace {

// A ReadLog/WatchLog message carries at most this much.
constexpr size_t kMaxEventsPerMessage = 1024;
constexpr size_t kMaxBytesPerMessage = 1 << 20;

grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* ctx,
                                    const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// Streams log entries in batches. For ReadLog it ends at `to`; for WatchLog
// it then waits for commits and streams new entries until the client
// cancels or the server shuts down. It never holds more than one message in
// memory: a slow reader only slows its own stream.
class LogStreamReactor final : public grpc::ServerWriteReactor<v1::ReadLogResponse> {
 public:
  LogStreamReactor(CaseManager* manager, v1::Actor actor,
                   CaseManager::LogQuery query, bool watch)
      : manager_(manager),
        actor_(std::move(actor)),
        query_(std::move(query)),
        watch_(watch),
        next_(std::max<uint64_t>(query_.from, 1)) {
    if (watch_) {
      absl::StatusOr<int> id =
          manager_->Subscribe([this](uint64_t size) { OnCommit(size); });
      if (!id.ok()) {
        FinishOnce(id.status());
        return;
      }
      subscription_ = *id;
    } else {
      query_.to = std::min(query_.to, manager_->LogSize());
    }
    Pump();
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
    }
    if (!ok) {
      FinishOnce(absl::CancelledError("the stream broke"));
      return;
    }
    Pump();
  }

  void OnCancel() override {
    // Set before taking the lock: a Pump scanning a long filtered range
    // holds it, and checks this flag between reads.
    cancelled_ = true;
    bool idle;
    {
      absl::MutexLock lock(&mu_);
      idle = !writing_;
    }
    if (idle) FinishOnce(absl::CancelledError("cancelled by the client"));
  }

  void OnDone() override {
    if (subscription_ != 0) manager_->Unsubscribe(subscription_);
    delete this;
  }

 private:
  // Called from CaseManager's notifier thread after commits (size 0:
  // shutdown), with the subscriber lock held. Calling StartWrite or Finish
  // from here is safe because gRPC never runs OnDone (which unsubscribes)
  // inline in them: it comes later from gRPC's own threads.
  void OnCommit(uint64_t size) {
    bool wake;
    {
      absl::MutexLock lock(&mu_);
      wake = waiting_;
      waiting_ = false;
      if (size == 0) stopping_ = true;
    }
    if (!wake) return;
    if (size == 0) {
      FinishOnce(ShuttingDown());
    } else {
      Pump();
    }
  }

  // Reads the next batch and writes it, finishes, or waits for a commit.
  void Pump() {
    absl::Status error;
    bool write = false;
    bool finish_ok = false;
    bool stopped = false;
    {
      absl::MutexLock lock(&mu_);
      if (writing_ || finished_) return;
      if (cancelled_) error = absl::CancelledError("cancelled by the client");
      response_.Clear();  // keeps the cleared entries for reuse
      while (error.ok()) {
        if (cancelled_) {
          error = absl::CancelledError("cancelled by the client");
          break;
        }
        const uint64_t limit = watch_ ? manager_->LogSize() : query_.to;
        if (next_ > limit) break;
        CaseManager::LogQuery q = query_;
        q.from = next_;
        q.to = limit;
        absl::StatusOr<uint64_t> next = manager_->ReadLog(
            actor_, q, kMaxEventsPerMessage, kMaxBytesPerMessage, &response_);
        if (!next.ok()) {
          error = next.status();
          break;
        }
        next_ = *next;
        if (response_.entries_size() > 0) break;
      }
      if (!error.ok()) {
        // Finished below with the error.
      } else if (response_.entries_size() > 0) {
        writing_ = true;
        write = true;
      } else if (!watch_) {
        finish_ok = true;
      } else if (stopping_) {
        stopped = true;
      } else {
        waiting_ = true;
      }
    }
    if (write) {
      StartWrite(&response_);
    } else if (!error.ok()) {
      FinishOnce(error);
    } else if (finish_ok) {
      FinishOnce(absl::OkStatus());
    } else if (stopped) {
      FinishOnce(ShuttingDown());
    }
  }

  static absl::Status ShuttingDown() {
    return absl::UnavailableError(
        "permitd is shutting down; resume from the next sequence number");
  }

  void FinishOnce(const absl::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
      waiting_ = false;
    }
    Finish(ToGrpcStatus(status));
  }

  CaseManager* const manager_;
  const v1::Actor actor_;
  CaseManager::LogQuery query_;
  const bool watch_;
  int subscription_ = 0;

  absl::Mutex mu_;
  uint64_t next_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool waiting_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> cancelled_{false};
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  v1::ReadLogResponse response_;  // owned by the in-flight write
};

absl::StatusOr<AsOf> ParseAsOf(uint64_t sequence, bool has_time,
                               const google::protobuf::Timestamp& time) {
  if (sequence != 0 && has_time) {
    return core::InvalidArgument(
        {{"as_of_time", "give as_of_sequence or as_of_time, not both"}});
  }
  AsOf as_of;
  as_of.sequence = sequence;
  if (has_time) as_of.time = core::FromProtoTime(time);
  return as_of;
}

// A stream that fails before it starts.
class FailedStream final : public grpc::ServerWriteReactor<v1::ReadLogResponse> {
 public:
  explicit FailedStream(const absl::Status& status) { Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

absl::StatusOr<v1::Actor> Authenticator::Authenticate(
    const grpc::ServerContextBase& ctx) const {
  absl::string_view header;
  const auto& md = ctx.client_metadata();
  if (auto it = md.find("authorization"); it != md.end()) {
    header = absl::string_view(it->second.data(), it->second.size());
  }
  std::shared_ptr<const PrincipalRegistry> registry;
  {
    absl::MutexLock lock(&mu_);
    registry = registry_;
  }
  return registry->Authenticate(header);
}

void Authenticator::Replace(PrincipalRegistry registry) {
  auto next = std::make_shared<const PrincipalRegistry>(std::move(registry));
  absl::MutexLock lock(&mu_);
  registry_ = std::move(next);
}

// --- CaseService -----------------------------------------------------------

template <typename Request>
grpc::ServerUnaryReactor* CaseServiceImpl::Act(
    grpc::CallbackServerContext* ctx, const Request* request, v1::Case* response,
    void (CaseManager::*action)(const v1::Actor&, const Request&,
                                CaseManager::Done)) {
  absl::StatusOr<v1::Actor> actor = auth_->Authenticate(*ctx);
  if (!actor.ok()) return FinishNow(ctx, actor.status());
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  (manager_->*action)(*actor, *request,
                      [reactor, response](absl::StatusOr<v1::Case> result) {
                        if (result.ok()) *response = *std::move(result);
                        reactor->Finish(ToGrpcStatus(result.status()));
                      });
  return reactor;
}

grpc::ServerUnaryReactor* CaseServiceImpl::SubmitCase(
    grpc::CallbackServerContext* ctx, const v1::SubmitCaseRequest* request,
    v1::Case* response) {
  return Act(ctx, request, response, &CaseManager::Submit);
}
grpc::ServerUnaryReactor* CaseServiceImpl::ReviewCase(
    grpc::CallbackServerContext* ctx, const v1::ReviewCaseRequest* request,
    v1::Case* response) {
  return Act(ctx, request, response, &CaseManager::Review);
}
grpc::ServerUnaryReactor* CaseServiceImpl::ApproveCase(
    grpc::CallbackServerContext* ctx, const v1::ApproveCaseRequest* request,
    v1::Case* response) {
  return Act(ctx, request, response, &CaseManager::Approve);
}
grpc::ServerUnaryReactor* CaseServiceImpl::RejectCase(
    grpc::CallbackServerContext* ctx, const v1::RejectCaseRequest* request,
    v1::Case* response) {
  return Act(ctx, request, response, &CaseManager::Reject);
}
grpc::ServerUnaryReactor* CaseServiceImpl::SuspendCase(
    grpc::CallbackServerContext* ctx, const v1::SuspendCaseRequest* request,
    v1::Case* response) {
  return Act(ctx, request, response, &CaseManager::Suspend);
}
grpc::ServerUnaryReactor* CaseServiceImpl::ResumeCase(
    grpc::CallbackServerContext* ctx, const v1::ResumeCaseRequest* request,
    v1::Case* response) {
  return Act(ctx, request, response, &CaseManager::Resume);
}
grpc::ServerUnaryReactor* CaseServiceImpl::RevokeCase(
    grpc::CallbackServerContext* ctx, const v1::RevokeCaseRequest* request,
    v1::Case* response) {
  return Act(ctx, request, response, &CaseManager::Revoke);
}
grpc::ServerUnaryReactor* CaseServiceImpl::WithdrawCase(
    grpc::CallbackServerContext* ctx, const v1::WithdrawCaseRequest* request,
    v1::Case* response) {
  return Act(ctx, request, response, &CaseManager::Withdraw);
}

grpc::ServerUnaryReactor* CaseServiceImpl::GetCase(
    grpc::CallbackServerContext* ctx, const v1::GetCaseRequest* request,
    v1::Case* response) {
  absl::StatusOr<v1::Actor> actor = auth_->Authenticate(*ctx);
  if (!actor.ok()) return FinishNow(ctx, actor.status());
  absl::StatusOr<AsOf> as_of =
      ParseAsOf(request->as_of_sequence(), request->has_as_of_time(),
                request->as_of_time());
  if (!as_of.ok()) return FinishNow(ctx, as_of.status());
  absl::StatusOr<v1::Case> c = manager_->GetCase(*actor, request->case_id(), *as_of);
  if (c.ok()) *response = *std::move(c);
  return FinishNow(ctx, c.status());
}

grpc::ServerUnaryReactor* CaseServiceImpl::ListCases(
    grpc::CallbackServerContext* ctx, const v1::ListCasesRequest* request,
    v1::ListCasesResponse* response) {
  absl::StatusOr<v1::Actor> actor = auth_->Authenticate(*ctx);
  if (!actor.ok()) return FinishNow(ctx, actor.status());
  absl::StatusOr<v1::ListCasesResponse> r = manager_->ListCases(*actor, *request);
  if (r.ok()) *response = *std::move(r);
  return FinishNow(ctx, r.status());
}

grpc::ServerUnaryReactor* CaseServiceImpl::GetCaseHistory(
    grpc::CallbackServerContext* ctx, const v1::GetCaseHistoryRequest* request,
    v1::GetCaseHistoryResponse* response) {
  absl::StatusOr<v1::Actor> actor = auth_->Authenticate(*ctx);
  if (!actor.ok()) return FinishNow(ctx, actor.status());
  absl::StatusOr<AsOf> as_of =
      ParseAsOf(request->as_of_sequence(), request->has_as_of_time(),
                request->as_of_time());
  if (!as_of.ok()) return FinishNow(ctx, as_of.status());
  absl::StatusOr<std::vector<v1::Event>> events =
      manager_->GetCaseHistory(*actor, request->case_id(), *as_of);
  if (events.ok()) {
    for (v1::Event& e : *events) *response->add_events() = std::move(e);
  }
  return FinishNow(ctx, events.status());
}

// --- AuditService ----------------------------------------------------------

grpc::ServerUnaryReactor* AuditServiceImpl::GetLogHead(
    grpc::CallbackServerContext* ctx, const v1::GetLogHeadRequest* request,
    v1::LogHead* response) {
  absl::StatusOr<v1::Actor> actor = auth_->Authenticate(*ctx);
  if (!actor.ok()) return FinishNow(ctx, actor.status());
  *response = manager_->GetLogHead(*actor);
  return FinishNow(ctx, absl::OkStatus());
}

grpc::ServerWriteReactor<v1::ReadLogResponse>* AuditServiceImpl::ReadLog(
    grpc::CallbackServerContext* ctx, const v1::ReadLogRequest* request) {
  absl::StatusOr<v1::Actor> actor = auth_->Authenticate(*ctx);
  if (!actor.ok()) return new FailedStream(actor.status());
  CaseManager::LogQuery q;
  q.from = request->from_sequence();
  if (request->to_sequence() != 0) q.to = request->to_sequence();
  q.case_id = request->case_id();
  q.include_event_bytes = request->include_event_bytes();
  q.actor = request->actor();
  q.action = request->action();
  q.bytes_only = request->bytes_only();
  if (request->has_start_time()) q.start_time = core::FromProtoTime(request->start_time());
  if (request->has_end_time()) q.end_time = core::FromProtoTime(request->end_time());
  if (absl::Status s = manager_->CheckLogQuery(*actor, q); !s.ok()) {
    return new FailedStream(s);
  }
  return new LogStreamReactor(manager_, *std::move(actor), std::move(q),
                              /*watch=*/false);
}

grpc::ServerWriteReactor<v1::ReadLogResponse>* AuditServiceImpl::WatchLog(
    grpc::CallbackServerContext* ctx, const v1::WatchLogRequest* request) {
  absl::StatusOr<v1::Actor> actor = auth_->Authenticate(*ctx);
  if (!actor.ok()) return new FailedStream(actor.status());
  CaseManager::LogQuery q;
  q.from = request->from_sequence();
  q.case_id = request->case_id();
  q.include_event_bytes = request->include_event_bytes();
  if (absl::Status s = manager_->CheckLogQuery(*actor, q); !s.ok()) {
    return new FailedStream(s);
  }
  return new LogStreamReactor(manager_, *std::move(actor), std::move(q),
                              /*watch=*/true);
}

grpc::ServerUnaryReactor* AuditServiceImpl::GetCheckpoint(
    grpc::CallbackServerContext* ctx, const v1::GetCheckpointRequest* request,
    v1::SignedCheckpoint* response) {
  absl::StatusOr<v1::Actor> actor = auth_->Authenticate(*ctx);
  if (!actor.ok()) return FinishNow(ctx, actor.status());
  *response = checkpointer_->Latest();
  return FinishNow(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* AuditServiceImpl::GetInclusionProof(
    grpc::CallbackServerContext* ctx, const v1::GetInclusionProofRequest* request,
    v1::InclusionProof* response) {
  absl::StatusOr<v1::Actor> actor = auth_->Authenticate(*ctx);
  if (!actor.ok()) return FinishNow(ctx, actor.status());
  absl::StatusOr<v1::InclusionProof> p = manager_->GetInclusionProof(
      *actor, request->sequence(), request->tree_size());
  if (p.ok()) *response = *std::move(p);
  return FinishNow(ctx, p.status());
}

grpc::ServerUnaryReactor* AuditServiceImpl::GetConsistencyProof(
    grpc::CallbackServerContext* ctx, const v1::GetConsistencyProofRequest* request,
    v1::ConsistencyProof* response) {
  absl::StatusOr<v1::Actor> actor = auth_->Authenticate(*ctx);
  if (!actor.ok()) return FinishNow(ctx, actor.status());
  absl::StatusOr<v1::ConsistencyProof> p = manager_->GetConsistencyProof(
      *actor, request->old_size(), request->new_size());
  if (p.ok()) *response = *std::move(p);
  return FinishNow(ctx, p.status());
}

}  // namespace permit::server
