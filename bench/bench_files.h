// Small file helpers that permit-bench and permit-gen-log share: random
// tokens and owner-only files for the principals and keys they write.
#ifndef PERMIT_BENCH_BENCH_FILES_H_
#define PERMIT_BENCH_BENCH_FILES_H_

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace permit::bench {

// `bytes` random bytes from OpenSSL, as lower-case hex.
inline absl::StatusOr<std::string> RandomHex(int bytes) {
  std::string raw(static_cast<size_t>(bytes), '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), bytes) != 1) {
    return absl::InternalError("OpenSSL could not produce random bytes");
  }
  return absl::BytesToHexString(raw);
}

// Writes `content` to `path` (replacing it), readable by its owner only.
inline absl::Status WritePrivateFile(const std::filesystem::path& path,
                                     absl::string_view content) {
  const int fd =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("cannot create ", path.string(),
                                            ": ", std::strerror(errno)));
  }
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return absl::InternalError(absl::StrCat("cannot write ", path.string(),
                                              ": ", std::strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return absl::OkStatus();
}

}  // namespace permit::bench

#endif  // PERMIT_BENCH_BENCH_FILES_H_
