// Principals and bearer-token authentication. The principals file is JSON:
//   {"principals": [
//     {"id": "exp-acme", "role": "exporter", "org": "acme",
//      "token_sha256": "<hex SHA-256 of the token>"}, ...]}
// Only token hashes are kept, in the file and in memory. A caller sends
// `authorization: Bearer <token>`; the SHA-256 of the token names the
// principal. A principal may also carry "cert_subject": then the call must
// come over mutual TLS with a client certificate (verified against
// permitd --client_ca) that names it, as well as the token: two factors,
// so neither a stolen token nor a stolen certificate alone is enough.
//
// Thread-safety: a PrincipalRegistry is immutable after construction.
#ifndef PERMIT_SERVER_AUTH_H_
#define PERMIT_SERVER_AUTH_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "permit/v1/resources.pb.h"

namespace permit::server {

// The verified client certificate of a call, as the TLS layer reports it.
// Empty when the call has none (plaintext, or TLS without a client
// certificate).
struct PeerCertificate {
  std::string subject;      // e.g. "CN=rev-1,O=Ministry"
  std::string common_name;  // e.g. "rev-1"
  std::vector<std::string> alt_names;  // subjectAltName entries
  bool present() const { return !subject.empty() || !common_name.empty(); }
};

class PrincipalRegistry {
 public:
  // Parses a principals file's content. INVALID_ARGUMENT naming the entry
  // and field for any mistake: unknown role, missing org for an exporter,
  // org on a reviewer, malformed or duplicate hash, duplicate id.
  static absl::StatusOr<PrincipalRegistry> Parse(absl::string_view json);
  // Reads and parses a principals file.
  static absl::StatusOr<PrincipalRegistry> Load(const std::string& path);

  // The principal whose token is in `authorization` ("Bearer <token>").
  // UNAUTHENTICATED if it is missing, malformed or unknown, or if the
  // principal is bound to a certificate and `peer` does not name it.
  absl::StatusOr<v1::Actor> Authenticate(absl::string_view authorization,
                                         const PeerCertificate& peer = {}) const;

  size_t size() const { return by_hash_.size(); }
  // True if `hex_sha256` is the hash of some principal's token.
  bool KnowsTokenHash(const std::string& hex_sha256) const {
    return by_hash_.contains(hex_sha256);
  }
  // True if some principal is bound to a client certificate.
  bool binds_certificates() const { return binds_certificates_; }

 private:
  struct Entry {
    v1::Actor actor;
    std::string cert_subject;  // empty: token only
  };
  absl::flat_hash_map<std::string, Entry> by_hash_;  // hex hash -> principal
  bool binds_certificates_ = false;
};

// Hex SHA-256 of a token, as stored in the principals file.
std::string TokenSha256Hex(absl::string_view token);

// Hex SHA-256 of the token in an authorization value "Bearer <token>" (the
// scheme in any case, the token not empty); nullopt if it is not one.
std::optional<std::string> BearerTokenSha256Hex(absl::string_view authorization);

}  // namespace permit::server

#endif  // PERMIT_SERVER_AUTH_H_
