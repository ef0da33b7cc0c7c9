// Dev-mode credentials; see dev_setup.h.
#include "server/dev_setup.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/checkpoint.h"
#include "core/status_macros.h"
#include "server/certs.h"
#include "server/auth.h"
#include "server/files.h"

namespace permit::server {
namespace fs = std::filesystem;

absl::StatusOr<std::string> NewToken() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    return absl::InternalError("OpenSSL could not produce random bytes");
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}


absl::StatusOr<DevSetup> EnsureDevSetup(const std::string& data_dir, bool tls) {
  const fs::path dir = fs::path(data_dir) / "dev";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create ", dir.string(), ": ", ec.message()));
  }
  fs::permissions(dir, fs::perms::owner_all, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot restrict ", dir.string(),
                                            " to its owner: ", ec.message()));
  }

  DevSetup setup;
  setup.principals_file = (dir / "principals.json").string();
  setup.principals = {{"exp-acme", "exporter", "acme", "", ""},
                      {"exp-globex", "exporter", "globex", "", ""},
                      {"rev-1", "reviewer", "", "", ""},
                      {"rev-2", "reviewer", "", "", ""},
                      {"aud-1", "auditor", "", "", ""},
                      {"adm-1", "admin", "", "", ""}};
  // Tokens kept from an earlier start are reused; a principal added to the
  // dev set since (or a lost token file) gets a fresh token, and then the
  // principals file is rewritten.
  bool changed = !fs::exists(setup.principals_file);
  std::vector<std::string> entries;
  for (DevPrincipal& p : setup.principals) {
    p.token_file = (dir / (p.id + ".token")).string();
    if (std::ifstream in(p.token_file); in) {
      std::stringstream ss;
      ss << in.rdbuf();
      p.token = std::string(absl::StripAsciiWhitespace(ss.str()));
    }
    if (p.token.empty()) {
      absl::StatusOr<std::string> token = NewToken();
      if (!token.ok()) return token.status();
      p.token = *token;
      RETURN_IF_ERROR(WritePrivateFile(p.token_file, p.token + "\n"));
      changed = true;
    }
    entries.push_back(absl::StrCat(
        "    {\"id\": \"", p.id, "\", \"role\": \"", p.role, "\"",
        p.org.empty() ? "" : absl::StrCat(", \"org\": \"", p.org, "\""),
        ", \"token_sha256\": \"", TokenSha256Hex(p.token), "\"}"));
  }
  setup.signing_key_file = (dir / "log-signing-key.pem").string();
  if (!fs::exists(setup.signing_key_file)) {
    ASSIGN_OR_RETURN(std::string pem, core::NewSigningKeyPem());
    RETURN_IF_ERROR(WritePrivateFile(setup.signing_key_file, pem));
  }
  if (changed) {
    RETURN_IF_ERROR(WritePrivateFile(
        setup.principals_file,
        absl::StrCat("{\"principals\": [\n", absl::StrJoin(entries, ",\n"),
                     "\n]}\n")));
  }
  if (tls) {
    // A local CA (kept, so clients keep trusting it across restarts) and a
    // certificate for localhost and 127.0.0.1 signed by it.
    setup.ca_file = (dir / "ca.pem").string();
    setup.server_cert_file = (dir / "server.pem").string();
    setup.server_key_file = (dir / "server-key.pem").string();
    const fs::path ca_key_file = dir / "ca-key.pem";
    if (!fs::exists(setup.ca_file) || !fs::exists(ca_key_file)) {
      ASSIGN_OR_RETURN(CertAndKey ca, NewCertificateAuthority(
                                          "permit dev CA", absl::Hours(24 * 3650)));
      RETURN_IF_ERROR(WritePrivateFile(ca_key_file, ca.key_pem));
      RETURN_IF_ERROR(WritePrivateFile(setup.ca_file, ca.cert_pem));
      fs::remove(setup.server_cert_file, ec);
    }
    if (!fs::exists(setup.server_cert_file) || !fs::exists(setup.server_key_file)) {
      CertAndKey ca;
      ASSIGN_OR_RETURN(ca.cert_pem, ReadWholeFile(setup.ca_file));
      ASSIGN_OR_RETURN(ca.key_pem, ReadWholeFile(ca_key_file.string()));
      LeafSpec spec;
      spec.common_name = "localhost";
      spec.dns_names = {"localhost"};
      spec.ip_addresses = {"127.0.0.1", "::1"};
      ASSIGN_OR_RETURN(CertAndKey leaf, IssueCertificate(ca, spec));
      RETURN_IF_ERROR(WritePrivateFile(setup.server_key_file, leaf.key_pem));
      RETURN_IF_ERROR(WritePrivateFile(setup.server_cert_file, leaf.cert_pem));
    }
  }
  return setup;
}

}  // namespace permit::server
