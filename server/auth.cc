// Principals file parsing and token authentication; see auth.h.
#include "server/auth.h"

#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/merkle.h"
#include "google/protobuf/util/json_util.h"
#include "server/principals.pb.h"

namespace permit::server {

std::string TokenSha256Hex(absl::string_view token) {
  return core::ToHex(core::Sha256(token));
}

absl::StatusOr<PrincipalRegistry> PrincipalRegistry::Parse(absl::string_view json) {
  PrincipalsFile file;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto parsed =
      google::protobuf::util::JsonStringToMessage(std::string(json), &file, options);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("principals file: ", parsed.message().as_string()));
  }
  if (file.principals_size() == 0) {
    return absl::InvalidArgumentError("principals file: no principals");
  }
  PrincipalRegistry reg;
  absl::flat_hash_set<std::string> ids;
  for (int i = 0; i < file.principals_size(); ++i) {
    const PrincipalEntry& p = file.principals(i);
    auto bad = [&](absl::string_view field, absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat(
          "principals file: principals[", i, "]", p.id().empty() ? "" : " (",
          p.id(), p.id().empty() ? "" : ")", ".", field, ": ", why));
    };
    if (p.id().empty()) return bad("id", "required");
    for (char ch : p.id()) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(ch)) && ch != '-' &&
          ch != '_' && ch != '.') {
        return bad("id", "only letters, digits, '-', '_' and '.'");
      }
    }
    if (!ids.insert(p.id()).second) return bad("id", "duplicate id");
    v1::Actor actor;
    actor.set_principal_id(p.id());
    if (p.role() == "exporter") {
      actor.set_role(v1::ROLE_EXPORTER);
      if (p.org().empty()) return bad("org", "required for an exporter");
    } else if (p.role() == "reviewer") {
      actor.set_role(v1::ROLE_REVIEWER);
    } else if (p.role() == "auditor") {
      actor.set_role(v1::ROLE_AUDITOR);
    } else if (p.role() == "admin") {
      actor.set_role(v1::ROLE_ADMIN);
    } else {
      return bad("role", "must be exporter, reviewer, auditor or admin");
    }
    for (char ch : p.org()) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(ch)) && ch != '-' &&
          ch != '_' && ch != '.') {
        return bad("org", "only letters, digits, '-', '_' and '.'");
      }
    }
    if (actor.role() != v1::ROLE_EXPORTER && !p.org().empty()) {
      return bad("org", "only exporters belong to an organisation");
    }
    actor.set_organisation(p.org());
    const std::string hash = absl::AsciiStrToLower(p.token_sha256());
    if (hash.size() != 64 ||
        hash.find_first_not_of("0123456789abcdef") != std::string::npos) {
      return bad("token_sha256", "must be 64 hex digits (SHA-256 of the token)");
    }
    for (unsigned char ch : p.cert_subject()) {
      if (ch < 0x20 || ch == 0x7f) return bad("cert_subject", "control character");
    }
    if (!p.cert_subject().empty()) reg.binds_certificates_ = true;
    if (!reg.by_hash_.emplace(hash, Entry{std::move(actor), p.cert_subject()})
             .second) {
      return bad("token_sha256", "the same token is given to two principals");
    }
  }
  return reg;
}

absl::StatusOr<PrincipalRegistry> PrincipalRegistry::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read the principals file ", path));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  absl::StatusOr<PrincipalRegistry> reg = Parse(ss.str());
  if (!reg.ok()) {
    return absl::Status(reg.status().code(),
                        absl::StrCat(path, ": ", reg.status().message()));
  }
  return reg;
}

absl::StatusOr<v1::Actor> PrincipalRegistry::Authenticate(
    absl::string_view authorization, const PeerCertificate& peer) const {
  if (authorization.empty()) {
    return absl::UnauthenticatedError(
        "no credentials: send the metadata 'authorization: Bearer <token>'");
  }
  const std::optional<std::string> hash = BearerTokenSha256Hex(authorization);
  if (!hash.has_value()) {
    return absl::UnauthenticatedError(
        "the authorization metadata must be 'Bearer <token>'");
  }
  auto it = by_hash_.find(*hash);
  if (it == by_hash_.end()) {
    return absl::UnauthenticatedError("unknown token");
  }
  const Entry& entry = it->second;
  if (!entry.cert_subject.empty()) {
    const std::string& want = entry.cert_subject;
    if (!peer.present()) {
      return absl::UnauthenticatedError(absl::StrCat(
          "principal ", entry.actor.principal_id(),
          " must also present its client certificate (mutual TLS)"));
    }
    bool match = peer.subject == want || peer.common_name == want;
    for (const std::string& name : peer.alt_names) match = match || name == want;
    if (!match) {
      return absl::UnauthenticatedError(
          absl::StrCat("the client certificate (", peer.subject,
                       ") is not the one bound to principal ",
                       entry.actor.principal_id()));
    }
  }
  return entry.actor;
}

std::optional<std::string> BearerTokenSha256Hex(absl::string_view authorization) {
  constexpr absl::string_view kBearer = "Bearer ";
  if (!absl::StartsWithIgnoreCase(authorization, kBearer) ||
      authorization.size() == kBearer.size()) {
    return std::nullopt;
  }
  return TokenSha256Hex(authorization.substr(kBearer.size()));
}

}  // namespace permit::server
