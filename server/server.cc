// Assembly of permitd; see server.h.
#include "server/server.h"

#include "absl/strings/str_cat.h"
#include "core/checkpoint.h"
#include "core/validation.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/server_builder.h"
#include "storage/rocksdb_event_store.h"

namespace permit::server {

absl::StatusOr<std::unique_ptr<PermitServer>> PermitServer::Start(
    ServerOptions options) {
  absl::StatusOr<std::unique_ptr<storage::RocksDbEventStore>> store =
      storage::RocksDbEventStore::Open(options.db_path);
  if (!store.ok()) return store.status();
  absl::StatusOr<std::unique_ptr<CaseManager>> manager =
      CaseManager::Create(*std::move(store), std::move(options.manager));
  if (!manager.ok()) return manager.status();

  std::unique_ptr<PermitServer> s(new PermitServer());
  s->grace_ = options.shutdown_grace;
  s->manager_ = *std::move(manager);

  std::string pem = options.signing_key_pem;
  if (pem.empty()) {
    absl::StatusOr<std::string> fresh = core::NewSigningKeyPem();
    if (!fresh.ok()) return fresh.status();
    pem = *std::move(fresh);
  }
  absl::StatusOr<std::unique_ptr<core::NoteSigner>> signer =
      core::NoteSigner::Create(pem, options.log_origin);
  if (!signer.ok()) return signer.status();
  absl::StatusOr<std::unique_ptr<Checkpointer>> checkpointer =
      Checkpointer::Start(s->manager_.get(), *std::move(signer));
  if (!checkpointer.ok()) return checkpointer.status();
  s->checkpointer_ = *std::move(checkpointer);

  s->auth_ = std::make_unique<Authenticator>(std::move(options.principals));
  s->case_service_ =
      std::make_unique<CaseServiceImpl>(s->manager_.get(), s->auth_.get());
  s->audit_service_ = std::make_unique<AuditServiceImpl>(
      s->manager_.get(), s->checkpointer_.get(), s->auth_.get());

  // The standard grpc.health.v1 service (SERVING once the log is open and
  // checked, NOT_SERVING while shutting down) and server reflection, so
  // stock gRPC tools can probe, list and call the API.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(),
                           &s->port_);
  builder.SetMaxReceiveMessageSize(core::Limits::kMaxRequestBytes);
  builder.RegisterService(s->case_service_.get());
  builder.RegisterService(s->audit_service_.get());
  s->grpc_server_ = builder.BuildAndStart();
  if (s->grpc_server_ == nullptr || s->port_ == 0) {
    s->checkpointer_.reset();
    s->manager_.reset();
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options.listen,
        " (address in use, or not an address of this host?)"));
  }
  // The log was opened and checked above: ready.
  s->grpc_server_->GetHealthCheckService()->SetServingStatus(true);
  return s;
}

void PermitServer::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  grpc_server_->GetHealthCheckService()->SetServingStatus(false);
  manager_->Shutdown();
  grpc_server_->Shutdown(absl::ToChronoTime(absl::Now() + grace_));
  grpc_server_->Wait();
  checkpointer_.reset();
  manager_.reset();  // joins the writer and closes the log
}

void PermitServer::Wait() {
  if (grpc_server_ != nullptr) grpc_server_->Wait();
}

PermitServer::~PermitServer() {
  if (grpc_server_ != nullptr) Shutdown();
}

}  // namespace permit::server
