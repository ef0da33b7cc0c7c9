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
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/arena.h"
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
    replayed_ = tree_.size();
  }

  // Checks the next event. On failure returns DATA_LOSS naming the
  // sequence number and what is wrong; the verifier then stays failed.
  // If `completed` is set, the Merkle tree nodes this event completes are
  // added to it (the leaf first), so a caller can compare stored nodes.
  absl::Status Add(uint64_t sequence, absl::string_view stored_bytes,
                   std::vector<TreeNode>* completed = nullptr);

  // Replays an event through the rules only, without hashing: for callers
  // that hash on another thread. Use either Add or Replay for a log.
  absl::Status Replay(uint64_t sequence, absl::string_view stored_bytes);

  // Makes this verifier one shard of several that replay disjoint sets of
  // cases: it then sees only some sequence numbers, so it checks that each
  // event names its position but leaves the check for gaps to the caller.
  void SetShard() { shard_ = true; }

  uint64_t size() const { return tree_.size(); }
  uint64_t replayed() const { return replayed_; }
  Hash root() const { return tree_.Root(); }
  const CompactTree& tree() const { return tree_; }
  // Cases seen, and each as re-derived from its events (nullptr if unseen).
  size_t case_count() const { return cases_.size(); }
  const v1::Case* FindCase(absl::string_view id) const;
  // The ids of all cases seen, in no particular order.
  std::vector<std::string> CaseIds() const;
  uint64_t unchecked_cases() const { return unchecked_cases_; }

  // DATA_LOSS unless `stored` equals the re-derived case of the same id.
  absl::Status CheckSnapshot(const v1::Case& stored) const;
  // The same for a stored snapshot's bytes; fast when they are equal.
  absl::Status CheckSnapshotBytes(absl::string_view id, absl::string_view stored_bytes);

 private:
  absl::Status Fail(uint64_t sequence, absl::string_view why);
  std::string GapMessage(uint64_t sequence) const;

  CompactTree tree_;
  // Re-derived cases live on an arena: millions of small strings are
  // allocated by bumping a pointer and freed at once. In large blocks: the
  // default 8 KiB ones are malloc'ed by the ten thousand, each large enough
  // to make glibc consolidate its free lists.
  static google::protobuf::ArenaOptions CasesArenaOptions() {
    google::protobuf::ArenaOptions o;
    o.start_block_size = 64 << 10;
    o.max_block_size = 4 << 20;
    return o;
  }
  google::protobuf::Arena cases_arena_{CasesArenaOptions()};
  // A re-derived case. A submit's application is usually kept as the raw
  // bytes it had in the event (copied onto cases_arena_) rather than parsed:
  // the rules never look inside it, and parsing then copying its many
  // strings was most of the cost of replaying. The case then holds an empty
  // application until something needs the full case (Materialized).
  struct Entry {
    v1::Case* c = nullptr;
    mutable const char* app = nullptr;  // set while the application is raw
    mutable size_t app_size = 0;
  };
  // The case of `e` with its application parsed in, if it was kept raw.
  const v1::Case* Materialized(const Entry& e) const;

  absl::flat_hash_map<std::string, Entry> cases_;
  absl::flat_hash_map<std::string, bool> trusted_;  // partial: unchecked cases
  uint64_t unchecked_cases_ = 0;
  uint64_t replayed_ = 0;
  // Events are parsed onto a scratch arena that is reset every thousand or
  // so events. It starts on a block of its own, which Reset keeps, so that
  // parsing allocates no arena blocks once warm.
  static constexpr size_t kScratchBlock = 2 << 20;
  static google::protobuf::ArenaOptions ScratchOptions(char* block) {
    google::protobuf::ArenaOptions o;
    o.initial_block = block;
    o.initial_block_size = kScratchBlock;
    o.max_block_size = 1 << 20;
    return o;
  }
  std::unique_ptr<char[]> scratch_block_{new char[kScratchBlock]};
  google::protobuf::Arena scratch_{ScratchOptions(scratch_block_.get())};
  int scratch_events_ = 0;
  std::string buffer_;  // reused serialization buffer
  std::string stripped_;  // reused: an event's bytes without its application
  bool partial_ = false;
  bool shard_ = false;
  absl::Status failed_;
};

}  // namespace permit::core

#endif  // PERMIT_CORE_LOG_VERIFIER_H_
