// The permit C++ SDK; see permit/client.h.
#include "permit/client.h"

#include <thread>

#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace permit {
namespace {

constexpr char kBadRequestType[] = "type.googleapis.com/google.rpc.BadRequest";

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  absl::Status out(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  google::rpc::Status detail;
  if (!s.error_details().empty() && detail.ParseFromString(s.error_details())) {
    for (const google::protobuf::Any& any : detail.details()) {
      out.SetPayload(any.type_url(), absl::Cord(any.value()));
    }
  }
  return out;
}

// Worth retrying, with backoff and the same request id: the server was
// unreachable or slow, or the caller is over its rate limit for now.
bool Transient(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE ||
         s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
         s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

}  // namespace

std::vector<FieldViolation> FieldViolations(const absl::Status& status) {
  std::vector<FieldViolation> out;
  auto payload = status.GetPayload(kBadRequestType);
  google::rpc::BadRequest detail;
  if (!payload.has_value() || !detail.ParseFromString(std::string(*payload))) {
    return out;
  }
  for (const auto& v : detail.field_violations()) {
    out.push_back({v.field(), v.description()});
  }
  return out;
}

std::string StatusCodeName(absl::StatusCode code) {
  std::string name = absl::StatusCodeToString(code);
  for (char& ch : name) ch = ch == ' ' ? '_' : static_cast<char>(std::toupper(ch));
  return name;
}

std::string Client::NewRequestId() {
  thread_local absl::BitGen gen;
  const uint64_t a = absl::Uniform<uint64_t>(gen);
  const uint64_t b = absl::Uniform<uint64_t>(gen);
  return absl::StrCat(absl::Hex(a, absl::kZeroPad16), absl::Hex(b, absl::kZeroPad16));
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(ClientOptions options) {
  if (options.address.empty()) {
    return absl::InvalidArgumentError("no server address");
  }
  if (options.max_attempts < 1) options.max_attempts = 1;
  if (options.cert_pem.empty() != options.key_pem.empty()) {
    return absl::InvalidArgumentError(
        "a client certificate needs its private key (and a key its certificate)");
  }
  if (options.insecure &&
      (!options.ca_pem.empty() || !options.cert_pem.empty())) {
    return absl::InvalidArgumentError(
        "insecure (plaintext) contradicts a CA or client certificate: drop one");
  }
  return std::unique_ptr<Client>(new Client(std::move(options)));
}

Client::Client(ClientOptions options) : options_(std::move(options)) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options_.insecure) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options_.ca_pem;
    ssl.pem_cert_chain = options_.cert_pem;
    ssl.pem_private_key = options_.key_pem;
    credentials = grpc::SslCredentials(ssl);
  }
  channel_ = grpc::CreateCustomChannel(options_.address, credentials, args);
  cases_ = v1::CaseService::NewStub(channel_);
  audit_ = v1::AuditService::NewStub(channel_);
  admin_ = v1::AdminService::NewStub(channel_);
}

absl::Status Client::CheckHealth() {
  auto stub = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.deadline));
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status s = stub->Check(&ctx, request, &response);
  if (!s.ok()) return FromGrpc(s);
  if (response.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    return absl::UnavailableError(absl::StrCat(
        "the server reports ",
        grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status())));
  }
  return absl::OkStatus();
}

void Client::Prepare(grpc::ClientContext* ctx, bool with_deadline) const {
  if (!options_.token.empty()) {
    ctx->AddMetadata("authorization", absl::StrCat("Bearer ", options_.token));
  }
  if (with_deadline) {
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + options_.deadline));
  }
}

template <typename Stub, typename Request, typename Response>
absl::StatusOr<Response> Client::Call(
    Stub* stub,
    grpc::Status (Stub::*rpc)(grpc::ClientContext*, const Request&, Response*),
    const Request& request) {
  absl::Duration backoff = options_.initial_backoff;
  for (int attempt = 1;; ++attempt) {
    grpc::ClientContext ctx;
    Prepare(&ctx, /*with_deadline=*/true);
    Response response;
    grpc::Status s = (stub->*rpc)(&ctx, request, &response);
    if (s.ok()) return response;
    // Reads are safe to repeat, and so are actions: they carry a request id.
    if (!Transient(s) || attempt >= options_.max_attempts) return FromGrpc(s);
    absl::SleepFor(backoff);
    backoff *= 2;
  }
}

#define PERMIT_ACTION(Method)                                                  \
  absl::StatusOr<v1::Case> Client::Method(v1::Method##Request request) {       \
    if (request.request_id().empty()) request.set_request_id(NewRequestId()); \
    return Call(cases_.get(), &v1::CaseService::Stub::Method, request);        \
  }

PERMIT_ACTION(SubmitCase)
PERMIT_ACTION(ReviewCase)
PERMIT_ACTION(ApproveCase)
PERMIT_ACTION(RejectCase)
PERMIT_ACTION(SuspendCase)
PERMIT_ACTION(ResumeCase)
PERMIT_ACTION(RevokeCase)
PERMIT_ACTION(WithdrawCase)
#undef PERMIT_ACTION

absl::StatusOr<v1::Case> Client::GetCase(const std::string& case_id) {
  v1::GetCaseRequest request;
  request.set_case_id(case_id);
  return GetCase(request);
}

absl::StatusOr<v1::Case> Client::GetCase(const v1::GetCaseRequest& request) {
  return Call(cases_.get(), &v1::CaseService::Stub::GetCase, request);
}

absl::StatusOr<v1::GetCaseHistoryResponse> Client::GetCaseHistory(
    const std::string& case_id) {
  v1::GetCaseHistoryRequest request;
  request.set_case_id(case_id);
  return GetCaseHistory(request);
}

absl::StatusOr<v1::GetCaseHistoryResponse> Client::GetCaseHistory(
    const v1::GetCaseHistoryRequest& request) {
  return Call(cases_.get(), &v1::CaseService::Stub::GetCaseHistory, request);
}

absl::StatusOr<v1::ListCasesResponse> Client::ListCases(
    const v1::ListCasesRequest& request) {
  return Call(cases_.get(), &v1::CaseService::Stub::ListCases, request);
}

absl::StatusOr<v1::BackupResponse> Client::Backup(const v1::BackupRequest& request) {
  grpc::ClientContext ctx;
  // A backup of a large log takes a while: no per-call deadline.
  Prepare(&ctx, /*with_deadline=*/false);
  v1::BackupResponse response;
  grpc::Status s = admin_->Backup(&ctx, request, &response);
  if (!s.ok()) return FromGrpc(s);
  return response;
}

absl::StatusOr<v1::LogHead> Client::GetLogHead() {
  return Call(audit_.get(), &v1::AuditService::Stub::GetLogHead,
              v1::GetLogHeadRequest());
}

absl::StatusOr<v1::ListDenialsResponse> Client::ListDenials(
    const v1::ListDenialsRequest& request) {
  return Call(audit_.get(), &v1::AuditService::Stub::ListDenials, request);
}

absl::StatusOr<v1::SignedCheckpoint> Client::GetCheckpoint() {
  return Call(audit_.get(), &v1::AuditService::Stub::GetCheckpoint,
              v1::GetCheckpointRequest());
}

absl::StatusOr<v1::InclusionProof> Client::GetInclusionProof(uint64_t sequence,
                                                             uint64_t tree_size) {
  v1::GetInclusionProofRequest request;
  request.set_sequence(sequence);
  request.set_tree_size(tree_size);
  return Call(audit_.get(), &v1::AuditService::Stub::GetInclusionProof, request);
}

absl::StatusOr<v1::ConsistencyProof> Client::GetConsistencyProof(uint64_t old_size,
                                                                 uint64_t new_size) {
  v1::GetConsistencyProofRequest request;
  request.set_old_size(old_size);
  request.set_new_size(new_size);
  return Call(audit_.get(), &v1::AuditService::Stub::GetConsistencyProof, request);
}

namespace {

// Drives one server stream, resuming after transient failures from the
// sequence after the last delivered entry.
template <typename Request, typename Open>
absl::Status Stream(Request request, int max_attempts, absl::Duration backoff,
                    Open open,
                    const std::function<bool(const v1::LogEntry&)>& on_entry) {
  int failures = 0;
  for (;;) {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<v1::ReadLogResponse>> reader =
        open(&ctx, request);
    v1::ReadLogResponse batch;
    bool delivered_any = false;
    while (reader->Read(&batch)) {
      for (const v1::LogEntry& entry : batch.entries()) {
        request.set_from_sequence(entry.event().sequence() + 1);
        delivered_any = true;
        if (!on_entry(entry)) {
          ctx.TryCancel();
          reader->Finish();
          return absl::OkStatus();
        }
      }
    }
    grpc::Status s = reader->Finish();
    if (s.ok()) return absl::OkStatus();
    if (delivered_any) failures = 0;
    if (!Transient(s) || ++failures >= max_attempts) {
      return FromGrpc(s);
    }
    if constexpr (std::is_same_v<Request, v1::ReadLogRequest>) {
      // Broke after the last entry of the range: nothing is left to read.
      if (request.to_sequence() != 0 &&
          request.from_sequence() > request.to_sequence()) {
        return absl::OkStatus();
      }
    }
    absl::SleepFor(backoff);
  }
}

}  // namespace

absl::Status Client::ReadLog(
    const v1::ReadLogRequest& request,
    const std::function<bool(const v1::LogEntry&)>& on_entry) {
  return Stream(
      request, options_.max_attempts, options_.initial_backoff,
      [this](grpc::ClientContext* ctx, const v1::ReadLogRequest& r) {
        Prepare(ctx, /*with_deadline=*/false);
        return audit_->ReadLog(ctx, r);
      },
      on_entry);
}

absl::Status Client::WatchLog(
    const v1::WatchLogRequest& request,
    const std::function<bool(const v1::LogEntry&)>& on_entry) {
  return Stream(
      request, options_.max_attempts, options_.initial_backoff,
      [this](grpc::ClientContext* ctx, const v1::WatchLogRequest& r) {
        Prepare(ctx, /*with_deadline=*/false);
        return audit_->WatchLog(ctx, r);
      },
      on_entry);
}

}  // namespace permit
