// Assembly of permitd; see server.h.
#include "server/server.h"


#include "absl/strings/str_cat.h"
#include "core/checkpoint.h"
#include "core/status_macros.h"
#include "core/validation.h"
#include "server/certs.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/server_builder.h"
#include "storage/rocksdb_event_store.h"

namespace permit::server {

namespace {

absl::Status CheckCertificateBindings(const PrincipalRegistry& principals,
                                      bool client_ca) {
  if (principals.binds_certificates() && !client_ca) {
    return absl::FailedPreconditionError(
        "the principals file binds principals to client certificates "
        "(cert_subject), but no client CA is set to verify them: pass "
        "--client_ca FILE (with --tls_cert and --tls_key)");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<PermitServer>> PermitServer::Start(
    ServerOptions options) {
  if (options.tls_cert_pem.empty() != options.tls_key_pem.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs both a certificate and its private key (--tls_cert and "
        "--tls_key)");
  }
  const bool tls = !options.tls_cert_pem.empty();
  if (tls) {
    RETURN_IF_ERROR(CheckCertificateAndKey(options.tls_cert_pem, options.tls_key_pem,
                                           "the TLS certificate", "the TLS key"));
  }
  if (!options.client_ca_pem.empty()) {
    RETURN_IF_ERROR(CheckCertificates(options.client_ca_pem, "the client CA"));
  }
  if (!options.client_ca_pem.empty() && !tls) {
    return absl::InvalidArgumentError(
        "--client_ca checks client certificates, which needs TLS: pass "
        "--tls_cert and --tls_key too");
  }
  RETURN_IF_ERROR(CheckCertificateBindings(options.principals,
                                           !options.client_ca_pem.empty()));
  std::unique_ptr<storage::EventStore> store;
  if (options.open_store) {
    ASSIGN_OR_RETURN(store, options.open_store(options.db_path));
  } else {
    ASSIGN_OR_RETURN(store, storage::RocksDbEventStore::Open(options.db_path));
  }
  // After the store: its lock keeps a second permitd on the same data
  // folder from replacing this one's copies in tls_dir.
  std::unique_ptr<TlsFiles> tls_files;
  if (tls && !options.tls_cert_file.empty()) {
    ASSIGN_OR_RETURN(tls_files,
                     TlsFiles::Start({options.tls_cert_file, options.tls_key_file,
                                      options.client_ca_file},
                                     options.tls_dir, options.tls_refresh,
                                     std::move(options.on_tls_reload)));
  }
  std::unique_ptr<PermitServer> s(new PermitServer());
  // A failed synced write latches the log shut for writes: tell load
  // balancers and orchestrators (health NOT_SERVING) to stop sending work
  // here, after the caller's own hook (permitd logs it). Reads keep working
  // until permitd is restarted.
  options.manager.on_storage_failure =
      [self = s.get(), then = std::move(options.manager.on_storage_failure)](
          const absl::Status& status) {
        if (then) then(status);
        if (self->grpc_server_ != nullptr) {
          self->grpc_server_->GetHealthCheckService()->SetServingStatus(false);
        }
      };
  absl::StatusOr<std::unique_ptr<CaseManager>> manager =
      CaseManager::Create(std::move(store), std::move(options.manager));
  if (!manager.ok()) return manager.status();

  s->grace_ = options.shutdown_grace;
  s->tls_files_ = std::move(tls_files);
  s->tls_ = tls;
  s->client_ca_ = !options.client_ca_pem.empty();
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
  s->rate_limiter_ =
      std::make_unique<RateLimiter>(options.rate_limit, options.rate_burst);
  s->stream_limiter_ =
      std::make_unique<StreamLimiter>(options.max_streams_per_principal);
  s->log_streams_ = std::make_unique<LogStreams>(options.stream_write_timeout);
  s->denials_ = std::make_unique<DenialRecord>(options.denials_kept);
  Frontend& fe = s->frontend_;
  fe.manager = s->manager_.get();
  fe.checkpointer = s->checkpointer_.get();
  fe.auth = s->auth_.get();
  fe.rate_limiter = s->rate_limiter_.get();
  fe.stream_limiter = s->stream_limiter_.get();
  fe.streams = s->log_streams_.get();
  fe.denials = s->denials_.get();
  fe.backup_dir = options.backup_dir;
  fe.observers = options.observers;
  fe.observers.push_back(s->denials_.get());
  s->case_service_ = std::make_unique<CaseServiceImpl>(&s->frontend_);
  s->audit_service_ = std::make_unique<AuditServiceImpl>(&s->frontend_);
  s->admin_service_ = std::make_unique<AdminServiceImpl>(&s->frontend_);

  // The standard grpc.health.v1 service (SERVING once the log is open and
  // checked, NOT_SERVING while shutting down) and server reflection, so
  // stock gRPC tools can probe, list and call the API.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  std::shared_ptr<grpc::ServerCredentials> credentials =
      grpc::InsecureServerCredentials();
  const grpc_ssl_client_certificate_request_type client_certs =
      s->client_ca_ ? GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY
                    : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
  if (tls && !options.tls_cert_file.empty()) {
    // A certificate renewed in place (certbot, cert-manager's Secret) is
    // served without a restart: TlsFiles passes on checked sets, and gRPC's
    // watcher reads them from there every second.
    const TlsFiles::Paths& served = s->tls_files_->served();
    auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
        served.key, served.cert, served.client_ca, /*refresh_interval_sec=*/1);
    grpc::experimental::TlsServerCredentialsOptions watched(provider);
    watched.watch_identity_key_cert_pairs();
    if (s->client_ca_) watched.watch_root_certs();
    watched.set_cert_request_type(client_certs);
    credentials = grpc::experimental::TlsServerCredentials(watched);
  } else if (tls) {
    grpc::SslServerCredentialsOptions ssl(client_certs);
    ssl.pem_root_certs = options.client_ca_pem;
    ssl.pem_key_cert_pairs.push_back({options.tls_key_pem, options.tls_cert_pem});
    credentials = grpc::SslServerCredentials(ssl);
  }
  builder.AddListeningPort(options.listen, credentials, &s->port_);
  builder.SetMaxReceiveMessageSize(core::Limits::kMaxRequestBytes);
  builder.RegisterService(s->case_service_.get());
  builder.RegisterService(s->audit_service_.get());
  builder.RegisterService(s->admin_service_.get());
  s->grpc_server_ = builder.BuildAndStart();
  if (s->grpc_server_ == nullptr || s->port_ == 0) {
    s->checkpointer_.reset();
    s->manager_.reset();
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options.listen,
        tls ? " (address in use, not an address of this host, or a TLS "
              "certificate and key that do not parse or do not match?)"
            : " (address in use, or not an address of this host?)"));
  }
  // The log was opened and checked above: ready.
  s->grpc_server_->GetHealthCheckService()->SetServingStatus(true);
  return s;
}

absl::Status PermitServer::ReplacePrincipals(PrincipalRegistry registry) {
  RETURN_IF_ERROR(CheckCertificateBindings(registry, client_ca_));
  auth_->Replace(std::move(registry));
  log_streams_->EndRevoked(*auth_->Current());
  return absl::OkStatus();
}

absl::StatusOr<bool> PermitServer::ReloadTls() {
  if (tls_files_ == nullptr) {
    return absl::FailedPreconditionError("TLS is not served from files here");
  }
  return tls_files_->Reload();
}

void PermitServer::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  grpc_server_->GetHealthCheckService()->SetServingStatus(false);
  const absl::Time deadline = absl::Now() + grace_;
  manager_->Shutdown();
  // A backup still running at the end of the grace period is stopped (its
  // caller hears UNAVAILABLE): gRPC waits for it, and so would shutdown.
  std::thread backup_stopper([this, deadline] { admin_service_->StopBackupsBy(deadline); });
  grpc_server_->Shutdown(absl::ToChronoTime(deadline));
  grpc_server_->Wait();
  backup_stopper.join();
  admin_service_->WaitForBackup();
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
