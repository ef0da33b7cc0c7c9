// Principals and bearer-token authentication. The principals file is JSON:
//   {"principals": [
//     {"id": "exp-acme", "role": "exporter", "org": "acme",
//      "token_sha256": "<hex SHA-256 of the token>"}, ...]}
// Only token hashes are kept, in the file and in memory. A caller sends
// `authorization: Bearer <token>`; the SHA-256 of the token names the
// principal.
//
// Thread-safety: a PrincipalRegistry is immutable after construction.
#ifndef PERMIT_SERVER_AUTH_H_
#define PERMIT_SERVER_AUTH_H_

#include <string>
#include "absl/strings/string_view.h"

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "permit/v1/resources.pb.h"

namespace permit::server {

class PrincipalRegistry {
 public:
  // Parses a principals file's content. INVALID_ARGUMENT naming the entry
  // and field for any mistake: unknown role, missing org for an exporter,
  // org on a reviewer, malformed or duplicate hash, duplicate id.
  static absl::StatusOr<PrincipalRegistry> Parse(absl::string_view json);
  // Reads and parses a principals file.
  static absl::StatusOr<PrincipalRegistry> Load(const std::string& path);

  // The principal whose token is in `authorization` ("Bearer <token>").
  // UNAUTHENTICATED if it is missing, malformed or unknown.
  absl::StatusOr<v1::Actor> Authenticate(absl::string_view authorization) const;

  size_t size() const { return by_hash_.size(); }

 private:
  absl::flat_hash_map<std::string, v1::Actor> by_hash_;  // hex hash -> actor
};

// Hex SHA-256 of a token, as stored in the principals file.
std::string TokenSha256Hex(absl::string_view token);

}  // namespace permit::server

#endif  // PERMIT_SERVER_AUTH_H_
