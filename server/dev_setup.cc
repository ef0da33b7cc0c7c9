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
#include "server/auth.h"

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

namespace {

// Writes `content` to a new file readable by its owner only, synced to disk
// before it is renamed into place, so a crash never leaves a partial file.
absl::Status WriteFile(const fs::path& path, absl::string_view content) {
  const std::string tmp = path.string() + ".tmp";
  auto fail = [&](absl::string_view what) {
    return absl::InternalError(absl::StrCat("cannot ", what, " ", tmp, ": ",
                                            std::strerror(errno)));
  };
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return fail("create");
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return fail("write");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return fail("sync");
  }
  if (::close(fd) != 0) return fail("close");
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("rename");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DevSetup> EnsureDevSetup(const std::string& data_dir) {
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
                      {"aud-1", "auditor", "", "", ""}};
  const bool exists = fs::exists(setup.principals_file);
  std::vector<std::string> entries;
  for (DevPrincipal& p : setup.principals) {
    p.token_file = (dir / (p.id + ".token")).string();
    if (exists) {
      std::ifstream in(p.token_file);
      std::stringstream ss;
      ss << in.rdbuf();
      p.token = std::string(absl::StripAsciiWhitespace(ss.str()));
      if (!in || p.token.empty()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "dev set-up in ", dir.string(), " is incomplete: ", p.token_file,
            " is missing; remove ", dir.string(), " to start afresh"));
      }
      continue;
    }
    absl::StatusOr<std::string> token = NewToken();
    if (!token.ok()) return token.status();
    p.token = *token;
    entries.push_back(absl::StrCat(
        "    {\"id\": \"", p.id, "\", \"role\": \"", p.role, "\"",
        p.org.empty() ? "" : absl::StrCat(", \"org\": \"", p.org, "\""),
        ", \"token_sha256\": \"", TokenSha256Hex(p.token), "\"}"));
  }
  setup.signing_key_file = (dir / "log-signing-key.pem").string();
  if (!fs::exists(setup.signing_key_file)) {
    absl::StatusOr<std::string> pem = core::NewSigningKeyPem();
    if (!pem.ok()) return pem.status();
    absl::Status s = WriteFile(setup.signing_key_file, *pem);
    if (!s.ok()) return s;
  }
  if (!exists) {
    for (const DevPrincipal& p : setup.principals) {
      absl::Status s = WriteFile(p.token_file, p.token + "\n");
      if (!s.ok()) return s;
    }
    // Written last: its presence means the set-up is complete.
    absl::Status s = WriteFile(
        setup.principals_file,
        absl::StrCat("{\"principals\": [\n", absl::StrJoin(entries, ",\n"),
                     "\n]}\n"));
    if (!s.ok()) return s;
  }
  return setup;
}

}  // namespace permit::server
