// PermitServer: permitd assembled. Opens the audit log in a data folder,
// starts the CaseManager's writer, and serves CaseService and AuditService
// on one gRPC listening address. Used by main.cc and, in-process on a free
// loopback port, by the integration tests.
//
// Thread-safety: Start, Shutdown and the destructor are called from one
// thread; port() and manager() from any.
#ifndef PERMIT_SERVER_SERVER_H_
#define PERMIT_SERVER_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "server/auth.h"
#include "server/case_manager.h"
#include "server/checkpointer.h"
#include "server/grpc_services.h"
#include "server/tls_files.h"
#include "storage/event_store.h"

namespace permit::server {

struct ServerOptions {
  // host:port; port 0 picks a free one (see PermitServer::port()).
  std::string listen = "127.0.0.1:7443";
  // Folder of the RocksDB audit log.
  std::string db_path = "./data/db";
  // Opens the store at db_path; unset: RocksDbEventStore::Open. Tests wrap
  // the RocksDB store to hold or fail its operations.
  std::function<absl::StatusOr<std::unique_ptr<storage::EventStore>>(
      const std::string& db_path)>
      open_store;
  // Who may call, and as what.
  PrincipalRegistry principals;
  // Passed to the CaseManager (batch size, clock).
  CaseManager::Options manager;
  // In-flight calls get this long to finish on shutdown.
  absl::Duration shutdown_grace = absl::Seconds(5);
  // The log's Ed25519 signing key (PKCS#8 PEM) and origin, for checkpoints.
  // With no key, an ephemeral one is made (tests; permitd requires a key).
  std::string signing_key_pem;
  std::string log_origin = "permit.invalid/log";
  // TLS: the server's certificate (chain) and private key, PEM. Both empty:
  // plaintext (main.cc allows that on loopback only, or with --insecure).
  std::string tls_cert_pem;
  std::string tls_key_pem;
  // With TLS: the CA (PEM) that client certificates are verified against.
  // Clients may then present one; principals bound to a certificate must.
  std::string client_ca_pem;
  // The files the three PEMs above were read from (permitd sets them; tests
  // may leave them empty). When tls_cert_file is set, the server rereads
  // them every tls_refresh (and on ReloadTls) and serves a changed set once
  // it passes the same checks as at start, so a renewed certificate needs
  // no restart; a set that fails them (a certificate renewed before its
  // key) is refused and the last good one stays. Checked copies are kept in
  // tls_dir (see tls_files.h); on_tls_reload hears of each changed set.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string client_ca_file;
  absl::Duration tls_refresh = absl::Minutes(1);
  std::string tls_dir = "./data/tls";
  TlsFiles::Listener on_tls_reload;

  // Per-principal limits (see limits.h): calls per second and burst (rate 0:
  // no limit), and open log streams (0: no limit).
  double rate_limit = 200;
  double rate_burst = 400;
  int max_streams_per_principal = 8;
  // A log stream whose client takes no message for this long is dropped.
  absl::Duration stream_write_timeout = absl::Seconds(30);
  // Where AdminService.Backup writes (created when first needed).
  std::string backup_dir = "./data/backups";
  // Refused calls kept for ListDenials (the oldest are evicted).
  size_t denials_kept = 10000;
  // Told of every finished call, besides the denials record. Not owned;
  // must outlive the server.
  std::vector<CallObserver*> observers;
};

class PermitServer {
 public:
  // Opens the log (refusing a damaged one with DATA_LOSS, a folder in use
  // with FAILED_PRECONDITION) and starts serving. UNAVAILABLE if the address
  // cannot be bound; INVALID_ARGUMENT for half a TLS configuration;
  // FAILED_PRECONDITION if principals are bound to certificates but no
  // client CA is set.
  static absl::StatusOr<std::unique_ptr<PermitServer>> Start(ServerOptions options);

  PermitServer(const PermitServer&) = delete;
  PermitServer& operator=(const PermitServer&) = delete;
  ~PermitServer();

  // The bound port.
  int port() const { return port_; }
  CaseManager* manager() { return manager_.get(); }
  const DenialRecord& denials() const { return *denials_; }
  const LogStreams& log_streams() const { return *log_streams_; }
  const StreamLimiter& stream_limiter() const { return *stream_limiter_; }
  // "<name>+<hex key id>+<base64 key>" of the checkpoint signing key.
  const std::string& verifier_key() const { return checkpointer_->verifier_key(); }
  // Replaces the principals (e.g. after the file changed); calls in flight
  // keep the principal they started with. FAILED_PRECONDITION (and the old
  // principals stay) if the new ones are bound to certificates that this
  // server cannot check.
  absl::Status ReplacePrincipals(PrincipalRegistry registry);
  // True if calls come over TLS.
  bool tls() const { return tls_; }
  // Rereads the TLS files now (see ServerOptions::tls_cert_file): true if
  // a changed set was taken, false if nothing changed, the refusal
  // otherwise. FAILED_PRECONDITION if TLS is not served from files.
  absl::StatusOr<bool> ReloadTls();

  // Stops taking calls, lets queued actions commit, ends watch streams,
  // waits up to the grace period for in-flight calls (a backup still running
  // then is stopped), closes the log.
  void Shutdown();
  // Blocks until the server has shut down.
  void Wait();

 private:
  PermitServer() = default;

  absl::Duration grace_;
  int port_ = 0;
  bool tls_ = false;
  bool client_ca_ = false;
  bool shut_down_ = false;
  std::unique_ptr<CaseManager> manager_;
  std::unique_ptr<Checkpointer> checkpointer_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<RateLimiter> rate_limiter_;
  std::unique_ptr<StreamLimiter> stream_limiter_;
  std::unique_ptr<LogStreams> log_streams_;
  std::unique_ptr<DenialRecord> denials_;
  Frontend frontend_;
  std::unique_ptr<CaseServiceImpl> case_service_;
  std::unique_ptr<AuditServiceImpl> audit_service_;
  std::unique_ptr<AdminServiceImpl> admin_service_;
  std::unique_ptr<TlsFiles> tls_files_;  // outlives the gRPC server
  std::unique_ptr<grpc::Server> grpc_server_;
};

}  // namespace permit::server

#endif  // PERMIT_SERVER_SERVER_H_
