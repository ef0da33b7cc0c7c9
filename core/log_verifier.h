// LogVerifier: checks an audit log event by event, with no trust in whoever
// stored or served it. Fed the stored bytes of events in order, it checks
// that sequence numbers run 1..N with no gap, that each event parses and
// names its own sequence, that each case's versions are contiguous, and
// that every event is a legal step under the workflow rules (core/rules.h:
// roles, states, the four-eyes rule), re-deriving each case's state. It
// also rebuilds the RFC 6962 root over the events' leaf hashes, to compare
// with a signed checkpoint or a stored head.
//
// Used by `permitd verify` (on a database folder) and `permitctl audit
// verify` (over gRPC or on an export file). Not thread-safe.
#ifndef PERMIT_CORE_LOG_VERIFIER_H_
#define PERMIT_CORE_LOG_VERIFIER_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/merkle.h"
#include "permit/v1/resources.pb.h"

namespace permit::core {

class LogVerifier {
 public:
  // Verifies a log from its first event.
  LogVerifier() = default;
  // Verifies events from `tree.size() + 1` on, given the compact tree of the
  // events before them. Cases first seen after their submit are taken on
  // trust from that event on (counted in unchecked_cases()).
  explicit LogVerifier(CompactTree tree) : tree_(std::move(tree)) {
    partial_ = tree_.size() > 0;
  }

  // Checks the next event. On failure returns DATA_LOSS naming the
  // sequence number and what is wrong; the verifier then stays failed.
  // If `completed` is set, the Merkle tree nodes this event completes are
  // added to it (the leaf first), so a caller can compare stored nodes.
  absl::Status Add(uint64_t sequence, absl::string_view stored_bytes,
                   std::vector<TreeNode>* completed = nullptr);

  uint64_t size() const { return tree_.size(); }
  Hash root() const { return tree_.Root(); }
  const CompactTree& tree() const { return tree_; }
  // Every case seen, as re-derived from its events.
  const absl::flat_hash_map<std::string, v1::Case>& cases() const { return cases_; }
  uint64_t unchecked_cases() const { return unchecked_cases_; }

  // DATA_LOSS unless `stored` equals the re-derived case of the same id.
  absl::Status CheckSnapshot(const v1::Case& stored) const;

 private:
  CompactTree tree_;
  absl::flat_hash_map<std::string, v1::Case> cases_;
  absl::flat_hash_map<std::string, bool> trusted_;  // partial: unchecked cases
  uint64_t unchecked_cases_ = 0;
  bool partial_ = false;
  absl::Status failed_;
};

}  // namespace permit::core

#endif  // PERMIT_CORE_LOG_VERIFIER_H_
