// Fuzzes the principals file parser and token authentication
// (server/auth.h PrincipalRegistry::Parse and Authenticate). An input whose
// first byte is even is a principals file as it is, byte for byte; one whose
// first byte is odd describes principals (id, role, organisation, bearer
// token, each fuzz-chosen) from which a file is written with each token's
// SHA-256, as an operator would. Beyond "no crash":
//   - Parse accepts a file exactly when its entries follow the documented
//     rules (checked here independently of server/auth.cc): at least one
//     principal; ids non-empty, unique, of letters, digits, '-', '_', '.';
//     role exporter, reviewer, auditor or admin; an organisation for
//     exporters and only for them, of the same characters; 64 hex digits of
//     hash, in either case, no two alike; a certificate subject, if any,
//     without control characters;
//   - a file that parses has one principal per entry, and authenticates
//     each of its own tokens (odd inputs) as the principal it was given to,
//     with that role and organisation; for a principal bound to a client
//     certificate, only together with a certificate that names it;
//   - any bearer token that does authenticate without a certificate (even
//     inputs: the bytes after a NUL that ends the file are tried as one) is
//     one whose SHA-256 the file lists, for a principal bound to none.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/stubs/common.h"
#include "google/protobuf/util/json_util.h"
#include "server/auth.h"
#include "server/principals.pb.h"
#include "tests/fuzz/fuzz_inputs.h"

namespace {

using permit::server::PrincipalEntry;
using permit::server::PrincipalRegistry;
using permit::server::PrincipalsFile;

[[noreturn]] void Fail(const std::string& what, const std::string& json) {
  std::fprintf(stderr, "principals_fuzz: %s\nfile: %s\n", what.c_str(),
               absl::CHexEscape(json).c_str());
  std::abort();
}

bool NameChars(const std::string& s) {
  for (char ch : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_' &&
        ch != '.') {
      return false;
    }
  }
  return true;
}

// The documented rules, written out again.
bool FollowsRules(const PrincipalsFile& file) {
  if (file.principals_size() == 0) return false;
  absl::flat_hash_set<std::string> ids, hashes;
  for (const PrincipalEntry& p : file.principals()) {
    if (p.id().empty() || !NameChars(p.id()) || !ids.insert(p.id()).second) return false;
    if (p.role() != "exporter" && p.role() != "reviewer" && p.role() != "auditor" &&
        p.role() != "admin") {
      return false;
    }
    if ((p.role() == "exporter") == p.org().empty() || !NameChars(p.org())) return false;
    const std::string hash = absl::AsciiStrToLower(p.token_sha256());
    if (hash.size() != 64 || hash.find_first_not_of("0123456789abcdef") != std::string::npos ||
        !hashes.insert(hash).second) {
      return false;
    }
    for (unsigned char ch : p.cert_subject()) {
      if (ch < 0x20 || ch == 0x7f) return false;
    }
  }
  return true;
}

permit::v1::Role RoleOf(const std::string& role) {
  if (role == "exporter") return permit::v1::ROLE_EXPORTER;
  if (role == "reviewer") return permit::v1::ROLE_REVIEWER;
  if (role == "admin") return permit::v1::ROLE_ADMIN;
  return permit::v1::ROLE_AUDITOR;
}

bool IsActor(const permit::v1::Actor& a, const PrincipalEntry& p) {
  return a.principal_id() == p.id() && a.role() == RoleOf(p.role()) &&
         a.organisation() == p.org();
}

void Check(const std::string& json, const std::vector<std::string>& tokens,
           const std::string& stray_token) {
  absl::StatusOr<PrincipalRegistry> reg = PrincipalRegistry::Parse(json);
  PrincipalsFile file;
  google::protobuf::util::JsonParseOptions options;
  const bool json_ok = google::protobuf::util::JsonStringToMessage(json, &file, options).ok();
  const bool valid = json_ok && FollowsRules(file);
  if (reg.ok() != valid) {
    Fail(reg.ok() ? "Parse accepts a file that breaks the rules"
                  : "Parse refuses a file that follows the rules: " + reg.status().ToString(),
         json);
  }
  if (!reg.ok()) {
    if (reg.status().code() != absl::StatusCode::kInvalidArgument) {
      Fail("Parse fails with another code than INVALID_ARGUMENT", json);
    }
    return;
  }
  if (reg->size() != static_cast<size_t>(file.principals_size())) {
    Fail("not one principal per entry", json);
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    const PrincipalEntry& p = file.principals(static_cast<int>(i));
    const std::string bearer = "Bearer " + tokens[i];
    permit::server::PeerCertificate named, other;
    named.subject = p.cert_subject();
    other.subject = "CN=x" + p.cert_subject();  // names someone else
    other.common_name = p.cert_subject() + "x";
    auto actor = reg->Authenticate(bearer, p.cert_subject().empty() ? other : named);
    if (tokens[i].empty()) {
      if (actor.ok()) Fail("an empty token authenticates", json);
      continue;
    }
    if (!actor.ok() || !IsActor(*actor, p)) {
      Fail("token " + absl::CHexEscape(tokens[i]) + " does not authenticate as " + p.id(),
           json);
    }
    if (!p.cert_subject().empty() &&
        (reg->Authenticate(bearer).ok() || reg->Authenticate(bearer, other).ok())) {
      Fail("principal " + p.id() + " authenticates without its certificate", json);
    }
  }
  auto actor = reg->Authenticate("Bearer " + stray_token);
  if (actor.ok()) {
    const std::string hash = permit::server::TokenSha256Hex(stray_token);
    bool listed = false;
    for (const PrincipalEntry& p : file.principals()) {
      listed = listed || (absl::AsciiStrToLower(p.token_sha256()) == hash &&
                          p.cert_subject().empty() && IsActor(*actor, p));
    }
    if (!listed) Fail("a token whose hash is not listed authenticates", json);
  } else if (actor.status().code() != absl::StatusCode::kUnauthenticated) {
    Fail("Authenticate fails with another code than UNAUTHENTICATED", json);
  }
}

// Odd inputs: principals described field by field.
void Described(FuzzedDataProvider& in) {
  PrincipalsFile file;
  std::vector<std::string> tokens;
  const int count = in.ConsumeIntegralInRange(0, 8);
  for (int i = 0; i < count; ++i) {
    PrincipalEntry* p = file.add_principals();
    p->set_id(in.ConsumeRandomLengthString(24));
    switch (in.ConsumeIntegralInRange(0, 4)) {
      case 0: p->set_role("exporter"); break;
      case 1: p->set_role("reviewer"); break;
      case 2: p->set_role("auditor"); break;
      case 3: p->set_role("admin"); break;
      default: p->set_role(in.ConsumeRandomLengthString(12)); break;
    }
    if (in.ConsumeBool()) p->set_org(in.ConsumeRandomLengthString(24));
    if (in.ConsumeIntegralInRange(0, 3) == 0) {
      p->set_cert_subject(in.ConsumeRandomLengthString(32));
    }
    // Sometimes the same token as an earlier principal.
    const bool reuse = !tokens.empty() && in.ConsumeIntegralInRange(0, 7) == 0;
    tokens.push_back(reuse ? tokens.back() : in.ConsumeRandomLengthString(48));
    std::string hash = permit::server::TokenSha256Hex(tokens.back());
    if (in.ConsumeIntegralInRange(0, 3) == 0) hash = absl::AsciiStrToUpper(hash);
    p->set_token_sha256(hash);
  }
  // The JSON writer and parser need UTF-8; other bytes are not a file.
  for (const PrincipalEntry& p : file.principals()) {
    for (const std::string* s : {&p.id(), &p.role(), &p.org(), &p.cert_subject()}) {
      if (!google::protobuf::internal::IsStructurallyValidUTF8(s->data(),
                                                               static_cast<int>(s->size()))) {
        return;
      }
    }
  }
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(file, &json).ok()) return;
  Check(json, tokens, in.ConsumeRemainingBytesAsString());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  permit::fuzz::QuietProtobufLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  if (data[0] % 2 == 1) {
    FuzzedDataProvider in(data + 1, size - 1);
    Described(in);
    return 0;
  }
  // A NUL, which no principals file contains, may end the file; the bytes
  // after it are tried as a bearer token.
  const std::string input(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t nul = input.find('\0');
  Check(input.substr(0, nul), {}, nul == std::string::npos ? "" : input.substr(nul + 1));
  return 0;
}
