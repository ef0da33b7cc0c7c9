// TlsFiles: the server's TLS certificate, key and client CA, reread from the
// operator's files on a timer and passed on to gRPC only as a checked whole,
// so a renewed certificate is served without a restart.
//
// gRPC's own file watcher serves whatever the files hold when it reads them:
// a certificate renewed before its key (certbot replaces them one by one)
// would be served with the old key and fail every handshake until both are
// in place. TlsFiles instead copies a set that passed CheckCertificateAndKey
// (and CheckCertificates for the CA) into a folder of its own,
// `DIR/gen-N/`, and switches the symlink `DIR/current` to it in one rename;
// gRPC's watcher reads `DIR/current/...` (see served()). A set that fails
// the checks is refused and the last good one stays.
//
// The copies (the private key among them) are removed when TlsFiles goes.
//
// Thread-safety: Reload() may be called from any thread; reloads (the
// timer's too) run one at a time.
#ifndef PERMIT_SERVER_TLS_FILES_H_
#define PERMIT_SERVER_TLS_FILES_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace permit::server {

class TlsFiles {
 public:
  struct Paths {
    std::string cert;
    std::string key;
    std::string client_ca;  // empty: no client certificates
  };

  // Told by the timer of what its rereads found: OK when a changed set was
  // taken, the reason when one was refused (once per refused set) or the
  // files could not be read or copied (every time). Called on the timer
  // thread, one call at a time. Reload()'s own outcome goes to its caller.
  using Listener = std::function<void(const absl::Status&)>;

  // Checks and copies `source` into `dir` (created, mode 0700; the copies
  // an earlier run left there are removed, nothing else), then rereads it
  // every `refresh`.
  // INVALID_ARGUMENT naming the file if the first set fails the checks,
  // NOT_FOUND if a file cannot be read, INTERNAL if `dir` cannot be written.
  static absl::StatusOr<std::unique_ptr<TlsFiles>> Start(Paths source,
                                                         std::string dir,
                                                         absl::Duration refresh,
                                                         Listener listener);
  TlsFiles(const TlsFiles&) = delete;
  TlsFiles& operator=(const TlsFiles&) = delete;
  ~TlsFiles();  // stops the timer and removes the copies

  // The files for gRPC's watcher: `dir/current/tls.crt`, `tls.key` and
  // `ca.crt` (empty without a client CA).
  const Paths& served() const { return served_; }

  // Rereads the source files now: true if a changed set was taken, false if
  // nothing changed; otherwise why not (the last good set stays served).
  absl::StatusOr<bool> Reload() { return ReloadAndTell(/*tell=*/false); }

 private:
  struct Contents {
    std::string cert, key, client_ca;
    bool operator==(const Contents& o) const {
      return cert == o.cert && key == o.key && client_ca == o.client_ca;
    }
  };

  TlsFiles(Paths source, std::string dir, Listener listener);
  absl::StatusOr<bool> ReloadAndTell(bool tell);
  absl::StatusOr<Contents> Read() const;
  absl::Status Check(const Contents& c) const;
  absl::Status Install(const Contents& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveCopies() const;
  void Timer(absl::Duration refresh);

  const Paths source_;
  const std::string dir_;
  const Listener listener_;
  Paths served_;

  absl::Mutex mu_;  // held through a whole reload
  Contents taken_ ABSL_GUARDED_BY(mu_);
  Contents refused_
      ABSL_GUARDED_BY(mu_);  // the last set that failed the checks
  absl::Status refusal_ ABSL_GUARDED_BY(mu_);  // and why
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Mutex stop_mu_;
  bool stop_ ABSL_GUARDED_BY(stop_mu_) = false;
  std::thread timer_;
};

}  // namespace permit::server

#endif  // PERMIT_SERVER_TLS_FILES_H_
