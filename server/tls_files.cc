// Checked, reloadable copies of the TLS files; see tls_files.h.
#include "server/tls_files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "server/certs.h"
#include "server/files.h"

namespace permit::server {
namespace fs = std::filesystem;

namespace {

std::string GenerationName(uint64_t n) { return absl::StrCat("gen-", n); }

}  // namespace

TlsFiles::TlsFiles(Paths source, std::string dir, Listener listener)
    : source_(std::move(source)),
      dir_(std::move(dir)),
      listener_(std::move(listener)) {
  const fs::path current = fs::path(dir_) / "current";
  served_.cert = (current / "tls.crt").string();
  served_.key = (current / "tls.key").string();
  if (!source_.client_ca.empty())
    served_.client_ca = (current / "ca.crt").string();
}

absl::StatusOr<std::unique_ptr<TlsFiles>> TlsFiles::Start(
    Paths source, std::string dir, absl::Duration refresh, Listener listener) {
  std::unique_ptr<TlsFiles> t(
      new TlsFiles(std::move(source), std::move(dir), std::move(listener)));
  ASSIGN_OR_RETURN(Contents first, t->Read());
  RETURN_IF_ERROR(t->Check(first));
  // What an earlier run left is removed (only the names TlsFiles makes):
  // only this run's copies are served.
  std::error_code ec;
  fs::create_directories(t->dir_, ec);
  t->RemoveCopies();
  if (ec || ::chmod(t->dir_.c_str(), 0700) != 0) {
    return absl::InternalError(absl::StrCat(
        "cannot make the folder ", t->dir_, " for the served TLS files: ",
        ec ? ec.message() : std::strerror(errno)));
  }
  {
    absl::MutexLock lock(&t->mu_);
    RETURN_IF_ERROR(t->Install(first));
  }
  t->timer_ = std::thread([raw = t.get(), refresh] { raw->Timer(refresh); });
  return t;
}

TlsFiles::~TlsFiles() {
  {
    absl::MutexLock lock(&stop_mu_);
    stop_ = true;
  }
  if (timer_.joinable()) timer_.join();
  RemoveCopies();
}

absl::StatusOr<TlsFiles::Contents> TlsFiles::Read() const {
  Contents c;
  ASSIGN_OR_RETURN(c.cert, ReadWholeFile(source_.cert));
  ASSIGN_OR_RETURN(c.key, ReadWholeFile(source_.key));
  if (!source_.client_ca.empty()) {
    ASSIGN_OR_RETURN(c.client_ca, ReadWholeFile(source_.client_ca));
  }
  return c;
}

absl::Status TlsFiles::Check(const Contents& c) const {
  RETURN_IF_ERROR(
      CheckCertificateAndKey(c.cert, c.key, source_.cert, source_.key));
  if (!source_.client_ca.empty()) {
    RETURN_IF_ERROR(CheckCertificates(c.client_ca, source_.client_ca));
  }
  return absl::OkStatus();
}

absl::Status TlsFiles::Install(const Contents& c) {
  const uint64_t next = generation_ + 1;
  const fs::path gen = fs::path(dir_) / GenerationName(next);
  std::error_code ec;
  fs::remove_all(gen, ec);
  if (::mkdir(gen.c_str(), 0700) != 0) {
    return absl::InternalError(
        absl::StrCat("cannot make ", gen.string(), ": ", std::strerror(errno)));
  }
  RETURN_IF_ERROR(WritePrivateFile((gen / "tls.crt").string(), c.cert));
  RETURN_IF_ERROR(WritePrivateFile((gen / "tls.key").string(), c.key));
  if (!source_.client_ca.empty()) {
    RETURN_IF_ERROR(WritePrivateFile((gen / "ca.crt").string(), c.client_ca));
  }
  // Switch `current` in one rename, so a reader sees the old set or the new
  // one. The generation before the old one goes: the old one may still be
  // being read.
  const fs::path link = fs::path(dir_) / "current";
  const fs::path tmp = fs::path(dir_) / "current.tmp";
  ::unlink(tmp.c_str());
  if (::symlink(GenerationName(next).c_str(), tmp.c_str()) != 0 ||
      ::rename(tmp.c_str(), link.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot switch ", link.string(),
                                            " to ", gen.string(), ": ",
                                            std::strerror(errno)));
  }
  if (generation_ > 1)
    fs::remove_all(fs::path(dir_) / GenerationName(generation_ - 1), ec);
  generation_ = next;
  taken_ = c;
  refused_ = Contents();
  refusal_ = absl::OkStatus();
  return absl::OkStatus();
}

absl::StatusOr<bool> TlsFiles::ReloadAndTell(bool tell) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Contents> c = Read();
  if (c.ok() && *c == taken_) return false;
  if (c.ok() && !refusal_.ok() && *c == refused_) return refusal_;
  absl::Status outcome = c.ok() ? Check(*c) : c.status();
  if (!outcome.ok() && c.ok()) {
    // The files' content is wrong: told once. (Unreadable files, or a copy
    // that cannot be written, are retried and told every time.)
    refused_ = *c;
    refusal_ = outcome;
  } else if (outcome.ok()) {
    outcome = Install(*c);
  }
  if (tell && listener_) listener_(outcome);
  if (!outcome.ok()) return outcome;
  return true;
}

void TlsFiles::Timer(absl::Duration refresh) {
  for (;;) {
    {
      absl::MutexLock lock(&stop_mu_);
      if (stop_mu_.AwaitWithTimeout(absl::Condition(&stop_), refresh)) return;
    }
    (void)ReloadAndTell(/*tell=*/true);
  }
}

void TlsFiles::RemoveCopies() const {
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    if (name == "current" || name == "current.tmp" ||
        name.rfind("gen-", 0) == 0) {
      std::error_code ignored;
      fs::remove_all(e.path(), ignored);
    }
  }
}

}  // namespace permit::server
