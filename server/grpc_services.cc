// Thin gRPC handlers over CaseManager; see grpc_services.h.
#include "server/grpc_services.h"

#include <algorithm>
#include <atomic>

#include "absl/strings/str_cat.h"
#include "core/time_util.h"
#include "core/validation.h"
#include "grpc/grpc_security_constants.h"
#include "server/grpc_status.h"

namespace permit::server {
namespace {

// A ReadLog/WatchLog message carries at most this much.
constexpr size_t kMaxEventsPerMessage = 1024;
constexpr size_t kMaxBytesPerMessage = 1 << 20;

// The first `max` bytes of `s`, cut back to a UTF-8 character boundary.
absl::string_view Clip(absl::string_view s, size_t max) {
  if (s.size() <= max) return s;
  while (max > 0 && (static_cast<unsigned char>(s[max]) & 0xC0) == 0x80) --max;
  return s.substr(0, max);
}

// One call from arrival to reply: it authenticates the caller and applies
// the rate limit (Begin), then turns the outcome into the reply status and
// reports the call to the observers (End). Copyable, so an action's
// callback can carry it to the writer thread.
class Call {
 public:
  Call(const Frontend* fe, grpc::CallbackServerContext* ctx, const char* method,
       absl::string_view case_id = "", absl::string_view request_id = "")
      : fe_(fe), ctx_(ctx), start_(absl::Now()) {
    // What the client sent is kept only as far as a valid value can reach
    // (case ids are 15 bytes, request ids at most 128), so a hostile client
    // cannot grow the denials record or the log with huge strings.
    record_.method = method;
    record_.case_id = std::string(Clip(case_id, 64));
    record_.request_id = std::string(Clip(request_id, 128));
    record_.start = start_;
  }

  // Who is calling, within their rate limit; UNAUTHENTICATED or
  // RESOURCE_EXHAUSTED otherwise.
  absl::Status Begin() {
    absl::StatusOr<v1::Actor> actor = fe_->auth->Authenticate(*ctx_);
    if (!actor.ok()) return actor.status();
    record_.actor = *std::move(actor);
    // Admins operate the server and do nothing else: no case, no event.
    if (record_.actor.role() == v1::ROLE_ADMIN && record_.method != "Backup") {
      return absl::PermissionDeniedError(
          "admin principals may only take backups (AdminService)");
    }
    return fe_->rate_limiter->Acquire(record_.actor.principal_id(), start_);
  }
  const v1::Actor& actor() const { return record_.actor; }
  grpc::CallbackServerContext* ctx() const { return ctx_; }
  // The absolute deadline the client gave (infinite if none).
  absl::Time deadline() const {
    return ctx_->deadline() == std::chrono::system_clock::time_point::max()
               ? absl::InfiniteFuture()
               : absl::FromChrono(ctx_->deadline());
  }

  // Reports the finished call and gives its reply status.
  grpc::Status End(const absl::Status& status) {
    // The reply carries the whole status; observers keep a bounded copy.
    record_.status = status.message().size() <= 1024
                         ? status
                         : absl::Status(status.code(), Clip(status.message(), 1024));
    record_.latency = absl::Now() - start_;
    record_.peer = ctx_->peer();
    for (CallObserver* o : fe_->observers) o->OnCallDone(record_);
    return ToGrpcStatus(status);
  }

  // Ends a unary call now.
  grpc::ServerUnaryReactor* Finish(const absl::Status& status) {
    grpc::ServerUnaryReactor* reactor = ctx_->DefaultReactor();
    reactor->Finish(End(status));
    return reactor;
  }

 private:
  const Frontend* fe_;
  grpc::CallbackServerContext* ctx_;
  absl::Time start_;
  CallRecord record_;
};

}  // namespace

// Streams log entries in batches. For ReadLog it ends at `to`; for WatchLog
// it then waits for commits and streams new entries until the client
// cancels or the server shuts down. It never holds more than one message in
// memory: a slow reader only slows its own stream, and LogStreams drops one
// that stops reading altogether.
class LogStreamReactor final : public grpc::ServerWriteReactor<v1::ReadLogResponse> {
 public:
  // `call` has passed Begin; the stream slot of its principal is taken.
  LogStreamReactor(const Frontend* fe, Call call, CaseManager::LogQuery query,
                   bool watch)
      : fe_(fe),
        manager_(fe->manager),
        call_(std::move(call)),
        token_hash_(Authenticator::TokenHash(*call_.ctx())),
        query_(std::move(query)),
        watch_(watch),
        next_(std::max<uint64_t>(query_.from, 1)) {
    fe_->streams->Add(this);
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
      FinishOnce(DropReasonOr(absl::CancelledError("the stream broke")));
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
    if (idle) FinishOnce(DropReasonOr(absl::CancelledError("cancelled by the client")));
  }

  void OnDone() override {
    if (subscription_ != 0) manager_->Unsubscribe(subscription_);
    fe_->streams->Remove(this);
    fe_->stream_limiter->Close(call_.actor().principal_id());
    delete this;
  }

  // Called by LogStreams' watchdog (with its lock held): true, and the
  // stream is cancelled, if a write has waited for the client since before
  // `stalled_since`.
  bool DropIfStalled(absl::Time stalled_since) {
    {
      absl::MutexLock lock(&mu_);
      if (!writing_ || finished_ || write_started_ > stalled_since) return false;
    }
    Drop(absl::ResourceExhaustedError(
        "log stream dropped: the client stopped reading; read promptly, and "
        "resume from the next sequence number"));
    return true;
  }

  // Called by LogStreams (with its lock held) after the principals changed:
  // ends the stream if the token it was opened with no longer names a
  // principal. True if it did.
  bool DropIfRevoked(const PrincipalRegistry& registry) {
    if (registry.KnowsTokenHash(token_hash_)) return false;
    Drop(absl::UnauthenticatedError(
        "the token this stream was opened with has been revoked"));
    return true;
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
            call_.actor(), q, kMaxEventsPerMessage, kMaxBytesPerMessage, &response_);
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
        write_started_ = absl::Now();
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
  // Ends the stream with `reason` (in the call record; the client sees the
  // stream cancelled): TryCancel makes gRPC call OnCancel, or OnWriteDone
  // with ok=false, which finish it.
  void Drop(absl::Status reason) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || !drop_reason_.ok()) return;
      drop_reason_ = std::move(reason);
    }
    call_.ctx()->TryCancel();
  }

  absl::Status DropReasonOr(absl::Status otherwise) {
    absl::MutexLock lock(&mu_);
    return drop_reason_.ok() ? otherwise : drop_reason_;
  }

  void FinishOnce(const absl::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
      waiting_ = false;
    }
    Finish(call_.End(status));
  }

  const Frontend* const fe_;
  CaseManager* const manager_;
  Call call_;
  const std::string token_hash_;  // of the token the stream was opened with
  CaseManager::LogQuery query_;
  const bool watch_;
  int subscription_ = 0;

  absl::Mutex mu_;
  uint64_t next_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time write_started_ ABSL_GUARDED_BY(mu_);
  bool waiting_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> cancelled_{false};
  absl::Status drop_reason_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  v1::ReadLogResponse response_;  // owned by the in-flight write
};

namespace {

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
  FailedStream(Call call, const absl::Status& status) { Finish(call.End(status)); }
  void OnDone() override { delete this; }
};

// Starts a log stream for a checked query, within the principal's stream
// limit.
grpc::ServerWriteReactor<v1::ReadLogResponse>* StartStream(
    const Frontend* fe, Call call, CaseManager::LogQuery q, bool watch) {
  if (absl::Status s = fe->manager->CheckLogQuery(call.actor(), q); !s.ok()) {
    return new FailedStream(std::move(call), s);
  }
  if (absl::Status s = fe->stream_limiter->Open(call.actor().principal_id()); !s.ok()) {
    return new FailedStream(std::move(call), s);
  }
  return new LogStreamReactor(fe, std::move(call), std::move(q), watch);
}

}  // namespace

LogStreams::LogStreams(absl::Duration write_timeout)
    : write_timeout_(write_timeout), watchdog_([this] { Watch(); }) {}

LogStreams::~LogStreams() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  watchdog_.join();
}

void LogStreams::Add(LogStreamReactor* stream) {
  absl::MutexLock lock(&mu_);
  streams_.push_back(stream);
}

void LogStreams::Remove(LogStreamReactor* stream) {
  absl::MutexLock lock(&mu_);
  streams_.erase(std::find(streams_.begin(), streams_.end(), stream));
}

void LogStreams::EndRevoked(const PrincipalRegistry& registry) {
  absl::MutexLock lock(&mu_);
  for (LogStreamReactor* stream : streams_) stream->DropIfRevoked(registry);
}

uint64_t LogStreams::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

void LogStreams::Watch() {
  const absl::Duration tick =
      std::min(absl::Seconds(1), std::max(absl::Milliseconds(10), write_timeout_ / 4));
  absl::MutexLock lock(&mu_);
  while (!mu_.AwaitWithTimeout(absl::Condition(&stop_), tick)) {
    const absl::Time stalled_since = absl::Now() - write_timeout_;
    for (LogStreamReactor* stream : streams_) {
      if (stream->DropIfStalled(stalled_since)) ++dropped_;
    }
  }
}

absl::StatusOr<v1::Actor> Authenticator::Authenticate(
    const grpc::ServerContextBase& ctx) const {
  absl::string_view header;
  const auto& md = ctx.client_metadata();
  if (auto it = md.find("authorization"); it != md.end()) {
    header = absl::string_view(it->second.data(), it->second.size());
  }
  // The client certificate, when the call came over mutual TLS (gRPC has
  // verified it against --client_ca before the call reaches us).
  PeerCertificate peer;
  if (std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
      auth != nullptr && auth->IsPeerAuthenticated()) {
    auto first = [&](const char* name) {
      std::vector<grpc::string_ref> values = auth->FindPropertyValues(name);
      return values.empty() ? std::string()
                            : std::string(values[0].data(), values[0].size());
    };
    peer.subject = first(GRPC_X509_SUBJECT_PROPERTY_NAME);
    peer.common_name = first(GRPC_X509_CN_PROPERTY_NAME);
    for (const grpc::string_ref& v :
         auth->FindPropertyValues(GRPC_X509_SAN_PROPERTY_NAME)) {
      peer.alt_names.emplace_back(v.data(), v.size());
    }
  }
  std::shared_ptr<const PrincipalRegistry> registry;
  {
    absl::MutexLock lock(&mu_);
    registry = registry_;
  }
  return registry->Authenticate(header, peer);
}

std::string Authenticator::TokenHash(const grpc::ServerContextBase& ctx) {
  const auto& md = ctx.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return "";
  return BearerTokenSha256Hex(absl::string_view(it->second.data(), it->second.size()))
      .value_or("");
}

std::shared_ptr<const PrincipalRegistry> Authenticator::Current() const {
  absl::MutexLock lock(&mu_);
  return registry_;
}

void Authenticator::Replace(PrincipalRegistry registry) {
  auto next = std::make_shared<const PrincipalRegistry>(std::move(registry));
  absl::MutexLock lock(&mu_);
  registry_ = std::move(next);
}


// --- CaseService -----------------------------------------------------------

template <typename Request>
grpc::ServerUnaryReactor* CaseServiceImpl::Act(
    grpc::CallbackServerContext* ctx, const char* method, const Request* request,
    v1::Case* response,
    void (CaseManager::*action)(const v1::Actor&, const Request&,
                                CaseManager::Done, absl::Time)) {
  std::string case_id;
  if constexpr (!std::is_same_v<Request, v1::SubmitCaseRequest>) {
    case_id = request->case_id();
  }
  Call call(fe_, ctx, method, std::move(case_id), request->request_id());
  if (absl::Status s = call.Begin(); !s.ok()) return call.Finish(s);
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const v1::Actor& actor = call.actor();
  const absl::Time deadline = call.deadline();
  (fe_->manager->*action)(
      actor, *request,
      [reactor, response, call](absl::StatusOr<v1::Case> result) mutable {
        if (result.ok()) *response = *std::move(result);
        reactor->Finish(call.End(result.status()));
      },
      deadline);
  return reactor;
}

#define PERMIT_ACTION_HANDLER(Method, Request, ManagerMethod)              \
  grpc::ServerUnaryReactor* CaseServiceImpl::Method(                      \
      grpc::CallbackServerContext* ctx, const v1::Request* request,       \
      v1::Case* response) {                                               \
    return Act(ctx, #Method, request, response, &CaseManager::ManagerMethod); \
  }
PERMIT_ACTION_HANDLER(SubmitCase, SubmitCaseRequest, Submit)
PERMIT_ACTION_HANDLER(ReviewCase, ReviewCaseRequest, Review)
PERMIT_ACTION_HANDLER(ApproveCase, ApproveCaseRequest, Approve)
PERMIT_ACTION_HANDLER(RejectCase, RejectCaseRequest, Reject)
PERMIT_ACTION_HANDLER(SuspendCase, SuspendCaseRequest, Suspend)
PERMIT_ACTION_HANDLER(ResumeCase, ResumeCaseRequest, Resume)
PERMIT_ACTION_HANDLER(RevokeCase, RevokeCaseRequest, Revoke)
PERMIT_ACTION_HANDLER(WithdrawCase, WithdrawCaseRequest, Withdraw)
#undef PERMIT_ACTION_HANDLER

grpc::ServerUnaryReactor* CaseServiceImpl::GetCase(
    grpc::CallbackServerContext* ctx, const v1::GetCaseRequest* request,
    v1::Case* response) {
  Call call(fe_, ctx, "GetCase", request->case_id());
  if (absl::Status s = call.Begin(); !s.ok()) return call.Finish(s);
  absl::StatusOr<AsOf> as_of =
      ParseAsOf(request->as_of_sequence(), request->has_as_of_time(),
                request->as_of_time());
  if (!as_of.ok()) return call.Finish(as_of.status());
  absl::StatusOr<v1::Case> c =
      fe_->manager->GetCase(call.actor(), request->case_id(), *as_of);
  if (c.ok()) *response = *std::move(c);
  return call.Finish(c.status());
}

grpc::ServerUnaryReactor* CaseServiceImpl::ListCases(
    grpc::CallbackServerContext* ctx, const v1::ListCasesRequest* request,
    v1::ListCasesResponse* response) {
  Call call(fe_, ctx, "ListCases");
  if (absl::Status s = call.Begin(); !s.ok()) return call.Finish(s);
  absl::StatusOr<v1::ListCasesResponse> r =
      fe_->manager->ListCases(call.actor(), *request);
  if (r.ok()) *response = *std::move(r);
  return call.Finish(r.status());
}

grpc::ServerUnaryReactor* CaseServiceImpl::GetCaseHistory(
    grpc::CallbackServerContext* ctx, const v1::GetCaseHistoryRequest* request,
    v1::GetCaseHistoryResponse* response) {
  Call call(fe_, ctx, "GetCaseHistory", request->case_id());
  if (absl::Status s = call.Begin(); !s.ok()) return call.Finish(s);
  absl::StatusOr<AsOf> as_of =
      ParseAsOf(request->as_of_sequence(), request->has_as_of_time(),
                request->as_of_time());
  if (!as_of.ok()) return call.Finish(as_of.status());
  absl::StatusOr<std::vector<v1::Event>> events =
      fe_->manager->GetCaseHistory(call.actor(), request->case_id(), *as_of);
  if (events.ok()) {
    for (v1::Event& e : *events) *response->add_events() = std::move(e);
  }
  return call.Finish(events.status());
}

// --- AuditService ----------------------------------------------------------

grpc::ServerUnaryReactor* AuditServiceImpl::GetLogHead(
    grpc::CallbackServerContext* ctx, const v1::GetLogHeadRequest* request,
    v1::LogHead* response) {
  Call call(fe_, ctx, "GetLogHead");
  if (absl::Status s = call.Begin(); !s.ok()) return call.Finish(s);
  *response = fe_->manager->GetLogHead(call.actor());
  return call.Finish(absl::OkStatus());
}

grpc::ServerWriteReactor<v1::ReadLogResponse>* AuditServiceImpl::ReadLog(
    grpc::CallbackServerContext* ctx, const v1::ReadLogRequest* request) {
  Call call(fe_, ctx, "ReadLog", request->case_id());
  if (absl::Status s = call.Begin(); !s.ok()) return new FailedStream(call, s);
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
  return StartStream(fe_, std::move(call), std::move(q), /*watch=*/false);
}

grpc::ServerWriteReactor<v1::ReadLogResponse>* AuditServiceImpl::WatchLog(
    grpc::CallbackServerContext* ctx, const v1::WatchLogRequest* request) {
  Call call(fe_, ctx, "WatchLog", request->case_id());
  if (absl::Status s = call.Begin(); !s.ok()) return new FailedStream(call, s);
  CaseManager::LogQuery q;
  q.from = request->from_sequence();
  q.case_id = request->case_id();
  q.include_event_bytes = request->include_event_bytes();
  return StartStream(fe_, std::move(call), std::move(q), /*watch=*/true);
}

grpc::ServerUnaryReactor* AuditServiceImpl::GetCheckpoint(
    grpc::CallbackServerContext* ctx, const v1::GetCheckpointRequest* request,
    v1::SignedCheckpoint* response) {
  Call call(fe_, ctx, "GetCheckpoint");
  if (absl::Status s = call.Begin(); !s.ok()) return call.Finish(s);
  *response = fe_->checkpointer->Latest();
  return call.Finish(absl::OkStatus());
}

grpc::ServerUnaryReactor* AuditServiceImpl::GetInclusionProof(
    grpc::CallbackServerContext* ctx, const v1::GetInclusionProofRequest* request,
    v1::InclusionProof* response) {
  Call call(fe_, ctx, "GetInclusionProof");
  if (absl::Status s = call.Begin(); !s.ok()) return call.Finish(s);
  absl::StatusOr<v1::InclusionProof> p = fe_->manager->GetInclusionProof(
      call.actor(), request->sequence(), request->tree_size());
  if (p.ok()) *response = *std::move(p);
  return call.Finish(p.status());
}

grpc::ServerUnaryReactor* AuditServiceImpl::GetConsistencyProof(
    grpc::CallbackServerContext* ctx, const v1::GetConsistencyProofRequest* request,
    v1::ConsistencyProof* response) {
  Call call(fe_, ctx, "GetConsistencyProof");
  if (absl::Status s = call.Begin(); !s.ok()) return call.Finish(s);
  absl::StatusOr<v1::ConsistencyProof> p = fe_->manager->GetConsistencyProof(
      call.actor(), request->old_size(), request->new_size());
  if (p.ok()) *response = *std::move(p);
  return call.Finish(p.status());
}

grpc::ServerUnaryReactor* AuditServiceImpl::ListDenials(
    grpc::CallbackServerContext* ctx, const v1::ListDenialsRequest* request,
    v1::ListDenialsResponse* response) {
  Call call(fe_, ctx, "ListDenials", request->case_id());
  if (absl::Status s = call.Begin(); !s.ok()) return call.Finish(s);
  absl::StatusOr<v1::ListDenialsResponse> r =
      fe_->denials->List(call.actor(), *request);
  if (r.ok()) *response = *std::move(r);
  return call.Finish(r.status());
}

// --- AdminService ----------------------------------------------------------

grpc::ServerUnaryReactor* AdminServiceImpl::Backup(grpc::CallbackServerContext* ctx,
                                                   const v1::BackupRequest* request,
                                                   v1::BackupResponse* response) {
  Call call(fe_, ctx, "Backup");
  if (absl::Status s = call.Begin(); !s.ok()) return call.Finish(s);
  if (absl::Status s = CaseManager::CheckMayBackUp(call.actor()); !s.ok()) {
    return call.Finish(s);
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::Status refusal = absl::AbortedError(
      "a backup is already being taken on this server; try again when it "
      "has finished");
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) {
      refusal = absl::UnavailableError(
          "permitd is shutting down; take the backup once it is back");
    } else if (!backing_up_) {
      // The last backup's thread has cleared backing_up_ and at most has
      // its reply left to send.
      if (worker_.joinable()) worker_.join();
      backing_up_ = true;
      worker_ = std::thread([this, call, request, response, reactor]() mutable {
        absl::StatusOr<v1::BackupResponse> r =
            fe_->manager->Backup(call.actor(), *request, fe_->backup_dir);
        if (r.ok()) *response = *std::move(r);
        {
          absl::MutexLock lock(&mu_);
          backing_up_ = false;
        }
        reactor->Finish(call.End(r.status()));
      });
      return reactor;
    }
  }
  // The reactor is taken above (gRPC hands it out once): finish through it.
  reactor->Finish(call.End(refusal));
  return reactor;
}

void AdminServiceImpl::StopBackupsBy(absl::Time deadline) {
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    if (mu_.AwaitWithDeadline(
            absl::Condition(+[](bool* busy) { return !*busy; }, &backing_up_),
            deadline)) {
      return;
    }
  }
  fe_->manager->StopBackups();
}

void AdminServiceImpl::WaitForBackup() {
  std::thread last;
  {
    absl::MutexLock lock(&mu_);
    last = std::move(worker_);
  }
  if (last.joinable()) last.join();
}

}  // namespace permit::server
