// `permitd --dev`: a ready-to-use local set-up. The first time, it creates
// the data folder, fresh random tokens for the dev principals (exp-acme in
// organisation acme, exp-globex in globex, reviewers rev-1 and rev-2,
// auditor aud-1), a principals file holding only their SHA-256 hashes, and
// one file per token (mode 0600) so that they can be printed again on every
// start, and the log's Ed25519 checkpoint signing key. Later starts reuse them. For development only: a real deployment
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
};

// Creates (first time) or reads the dev credentials under `data_dir`/dev.
absl::StatusOr<DevSetup> EnsureDevSetup(const std::string& data_dir);

// A random token: 32 bytes from OpenSSL's CSPRNG, hex-encoded.
absl::StatusOr<std::string> NewToken();

}  // namespace permit::server

#endif  // PERMIT_SERVER_DEV_SETUP_H_
