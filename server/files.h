// Whole-file helpers for permitd's own small files (dev credentials, TLS
// copies, flags that name a PEM or JSON file).
#ifndef PERMIT_SERVER_FILES_H_
#define PERMIT_SERVER_FILES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace permit::server {

// Writes `content` to a new file readable by its owner only (0600), synced
// to disk before it is renamed over `path`, so a crash never leaves a
// partial file. INTERNAL naming the step that failed.
absl::Status WritePrivateFile(const std::string& path,
                              absl::string_view content);

// The whole file. "cannot read PATH: <reason>": PERMISSION_DENIED if it may
// not be opened, NOT_FOUND if it cannot be for another reason (missing),
// DATA_LOSS if reading it fails.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

}  // namespace permit::server

#endif  // PERMIT_SERVER_FILES_H_
