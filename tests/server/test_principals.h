// The principals the server-level tests run with: exp-acme (organisation
// acme), exp-globex (globex), reviewers rev-1 and rev-2, auditor aud-1, each
// with the bearer token "token-<id>".
#ifndef PERMIT_TESTS_SERVER_TEST_PRINCIPALS_H_
#define PERMIT_TESTS_SERVER_TEST_PRINCIPALS_H_

#include <array>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/auth.h"

namespace permit::testing {

// {id, role, organisation} of each test principal.
inline const std::vector<std::array<std::string, 3>>& TestPrincipalList() {
  static const auto* list = new std::vector<std::array<std::string, 3>>{
      {"exp-acme", "exporter", "acme"},
      {"exp-globex", "exporter", "globex"},
      {"rev-1", "reviewer", ""},
      {"rev-2", "reviewer", ""},
      {"aud-1", "auditor", ""}};
  return *list;
}

// The registry of TestPrincipalList(), parsed from a principals file as
// permitd reads one.
inline absl::StatusOr<server::PrincipalRegistry> TestPrincipals() {
  std::string json = "{\"principals\": [";
  const auto& list = TestPrincipalList();
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& [id, role, org] = list[i];
    json += (i ? "," : "") + std::string("{\"id\":\"") + id + "\",\"role\":\"" + role +
            "\"" + (org.empty() ? "" : ",\"org\":\"" + org + "\"") +
            ",\"token_sha256\":\"" + server::TokenSha256Hex("token-" + id) + "\"}";
  }
  return server::PrincipalRegistry::Parse(json + "]}");
}

}  // namespace permit::testing

#endif  // PERMIT_TESTS_SERVER_TEST_PRINCIPALS_H_
