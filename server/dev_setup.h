// `permitd --dev`: a ready-to-use local set-up. The first time, it creates
// the data folder, fresh random tokens for the dev principals (exp-acme in
// organisation acme, exp-globex in globex, reviewers rev-1 and rev-2,
// auditor aud-1, admin adm-1), a principals file holding only their SHA-256 hashes, and
// one file per token (mode 0600) so that they can be printed again on every
// start, the log's Ed25519 checkpoint signing key, and (unless TLS is off)
// a local CA and server certificate. Later starts reuse them. For development only: a real deployment
// writes its own principals file and never keeps tokens on the server.
#ifndef PERMIT_SERVER_DEV_SETUP_H_
#define PERMIT_SERVER_DEV_SETUP_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace permit::server {

struct DevPrincipal {
  std::string id;
  std::string role;
  std::string org;
  std::string token;
  std::string token_file;
};

struct DevSetup {
  std::string principals_file;
  // The log's checkpoint signing key (Ed25519, PEM), created once.
  std::string signing_key_file;
  std::vector<DevPrincipal> principals;
  // With TLS: the local CA's certificate (what clients trust, PERMIT_CA),
  // and the server's certificate and key for localhost and 127.0.0.1.
  std::string ca_file;
  std::string server_cert_file;
  std::string server_key_file;
};

// Creates (first time) or reads the dev credentials under `data_dir`/dev;
// with `tls`, also a local CA (ca.pem, ca-key.pem) and a server certificate
// for localhost/127.0.0.1/::1 (server.pem, server-key.pem), all made with
// OpenSSL's API. Private keys and tokens are written with mode 0600.
absl::StatusOr<DevSetup> EnsureDevSetup(const std::string& data_dir, bool tls);

// A random token: 32 bytes from OpenSSL's CSPRNG, hex-encoded.
absl::StatusOr<std::string> NewToken();

}  // namespace permit::server

#endif  // PERMIT_SERVER_DEV_SETUP_H_
