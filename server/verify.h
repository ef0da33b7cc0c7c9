// `permitd verify --data DIR`: checks a database folder directly, opened
// read-only (so also while a permitd serves it, or after a restore): every
// event with core::LogVerifier (sequence, parsing, per-case versions, the
// workflow rules), the Merkle root against the stored head and the stored
// tree nodes, and every stored case snapshot against the state re-derived
// from the log.
#ifndef PERMIT_SERVER_VERIFY_H_
#define PERMIT_SERVER_VERIFY_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace permit::server {

struct VerifyReport {
  uint64_t events = 0;
  uint64_t cases = 0;
  std::string root_hex;
  absl::Duration elapsed;
};

// Verifies the audit log in `db_path`. `progress(events_done, total)` is
// called now and then. DATA_LOSS naming the first bad sequence number or
// case if anything does not hold.
absl::StatusOr<VerifyReport> VerifyDatabase(
    const std::string& db_path,
    const std::function<void(uint64_t, uint64_t)>& progress = nullptr);

}  // namespace permit::server

#endif  // PERMIT_SERVER_VERIFY_H_
