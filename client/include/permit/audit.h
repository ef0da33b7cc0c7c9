// permit SDK, auditing: verify the audit log without trusting the server.
//
//   permit::VerifyOptions options;
//   options.log_key = std::getenv("PERMIT_LOG_KEY");    // pinned out of band
//   absl::StatusOr<permit::VerifyReport> r = permit::VerifyLog(client, options);
//
// VerifyLog checks, against the latest signed checkpoint:
//   - the checkpoint's signature, with the pinned verifier key (or, with
//     none given, the key saved on first use; see VerifyOptions::state_dir);
//   - a consistency proof from the checkpoint verified last time, so a
//     rewritten history is caught even if it is self-consistent;
//   - every event's leaf hash and the Merkle root over them;
//   - sequence numbers 1..N without a gap, per-case versions contiguous, and
//     every event a legal step under the server's own rules module;
//   - every case's state re-derived from its events equals what GetCase
//     returns as of the checkpoint.
// It names the first bad sequence number (or case) and why.
//
// Thread-safety: the functions are thread-safe; a Client may be shared.
#ifndef PERMIT_AUDIT_H_
#define PERMIT_AUDIT_H_

#include <cstdint>
#include <functional>
#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "permit/client.h"

namespace permit {

struct VerifyOptions {
  // The log's verifier key, "<name>+<hex key id>+<base64 key>". When empty,
  // the key saved in `state_dir` is used; when there is none either, the
  // server's key is trusted on first use and saved (on_notice says so).
  std::string log_key;
  // Where the trusted key and the last verified checkpoint are kept, one
  // folder per server. Default: $XDG_CONFIG_HOME/permit (or
  // ~/.config/permit). Empty string and `remember` false: keep nothing.
  std::string state_dir;
  bool remember = true;
  // Called about once a second with (events checked, events in total).
  std::function<void(uint64_t, uint64_t)> on_progress;
  // Called with things the user must know (trust on first use).
  std::function<void(const std::string&)> on_notice;
};

struct VerifyReport {
  uint64_t events = 0;        // events checked
  uint64_t cases = 0;         // cases re-derived
  uint64_t tree_size = 0;     // the checkpoint's size
  std::string root_hex;       // the checkpoint's root
  uint64_t previous_size = 0; // size of the checkpoint verified last time (0: none)
  uint64_t snapshots_checked = 0;
  absl::Duration elapsed;
};

// What a signed checkpoint commits to.
struct CheckpointInfo {
  std::string origin;
  uint64_t size = 0;
  std::string root;  // 32 bytes
};

// The server's latest checkpoint, its signature verified with the pinned,
// saved, or (first use) served key, as VerifyLog resolves it.
struct VerifiedCheckpoint {
  CheckpointInfo info;
  std::string note;       // exactly as signed
  std::string log_key;    // the key it was verified with
  std::string state_dir;  // this server's folder, empty if nothing is kept
};
absl::StatusOr<VerifiedCheckpoint> FetchVerifiedCheckpoint(
    Client& client, const VerifyOptions& options);

// Verifies the whole log served by `client` (an auditor's).
absl::StatusOr<VerifyReport> VerifyLog(Client& client, const VerifyOptions& options);

// Writes events from..to (0: to the checkpoint's size) with the signed
// checkpoint and the proofs needed to check them offline (docs/export.md).
// Returns the number of events written.
absl::StatusOr<uint64_t> ExportLog(Client& client, uint64_t from, uint64_t to,
                                   std::ostream& out);

// Verifies an export file with no server: the checkpoint's signature with
// `options.log_key` (required), the events' hashes against it, and the
// rules. Snapshots cannot be compared offline.
absl::StatusOr<VerifyReport> VerifyExport(std::istream& in,
                                          const VerifyOptions& options);

// Checks a served proof on its own terms: the path leads from the leaf (or
// the old root) to the root it states. Callers must also check that the
// proof's sizes are the ones they asked for and that its root is a signed
// one (as `permitctl audit prove` does).
absl::Status VerifyInclusionProof(const v1::InclusionProof& proof);
absl::Status VerifyConsistencyProof(const v1::ConsistencyProof& proof);

// Opens a signed checkpoint note with `log_key`: PERMISSION_DENIED if it
// is not signed by that key.
absl::StatusOr<CheckpointInfo> OpenCheckpoint(const std::string& note,
                                              const std::string& log_key);

}  // namespace permit

#endif  // PERMIT_AUDIT_H_
