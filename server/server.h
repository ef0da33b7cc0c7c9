// PermitServer: permitd assembled. Opens the audit log in a data folder,
// starts the CaseManager's writer, and serves CaseService and AuditService
// on one gRPC listening address. Used by main.cc and, in-process on a free
// loopback port, by the integration tests.
//
// Thread-safety: Start, Shutdown and the destructor are called from one
// thread; port() and manager() from any.
#ifndef PERMIT_SERVER_SERVER_H_
#define PERMIT_SERVER_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "server/auth.h"
#include "server/case_manager.h"
#include "server/checkpointer.h"
#include "server/grpc_services.h"

namespace permit::server {

struct ServerOptions {
  // host:port; port 0 picks a free one (see PermitServer::port()).
  std::string listen = "127.0.0.1:7443";
  // Folder of the RocksDB audit log.
  std::string db_path = "./data/db";
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
};

class PermitServer {
 public:
  // Opens the log (refusing a damaged one with DATA_LOSS, a folder in use
  // with FAILED_PRECONDITION) and starts serving. UNAVAILABLE if the address
  // cannot be bound.
  static absl::StatusOr<std::unique_ptr<PermitServer>> Start(ServerOptions options);

  PermitServer(const PermitServer&) = delete;
  PermitServer& operator=(const PermitServer&) = delete;
  ~PermitServer();

  // The bound port.
  int port() const { return port_; }
  CaseManager* manager() { return manager_.get(); }
  // "<name>+<hex key id>+<base64 key>" of the checkpoint signing key.
  const std::string& verifier_key() const { return checkpointer_->verifier_key(); }
  // Replaces the principals (e.g. after the file changed).
  void ReplacePrincipals(PrincipalRegistry registry) {
    auth_->Replace(std::move(registry));
  }

  // Stops taking calls, lets queued actions commit, ends watch streams,
  // waits up to the grace period for in-flight calls, closes the log.
  void Shutdown();
  // Blocks until the server has shut down.
  void Wait();

 private:
  PermitServer() = default;

  absl::Duration grace_;
  int port_ = 0;
  bool shut_down_ = false;
  std::unique_ptr<CaseManager> manager_;
  std::unique_ptr<Checkpointer> checkpointer_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<CaseServiceImpl> case_service_;
  std::unique_ptr<AuditServiceImpl> audit_service_;
  std::unique_ptr<grpc::Server> grpc_server_;
};

}  // namespace permit::server

#endif  // PERMIT_SERVER_SERVER_H_
