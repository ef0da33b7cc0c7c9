// Event-by-event verification of an audit log; see log_verifier.h.
#include "core/log_verifier.h"

#include "absl/strings/str_cat.h"
#include "core/rules.h"
#include "google/protobuf/util/message_differencer.h"

namespace permit::core {

absl::Status LogVerifier::Add(uint64_t sequence, absl::string_view bytes,
                              std::vector<TreeNode>* completed) {
  if (!failed_.ok()) return failed_;
  if (sequence != tree_.size() + 1) return Fail(sequence, GapMessage(sequence));
  tree_.Append(LeafHash(bytes), completed);
  return Replay(sequence, bytes);
}

std::string LogVerifier::GapMessage(uint64_t sequence) const {
  const uint64_t expected = replayed_ + 1;
  return sequence > expected ? absl::StrCat("events ", expected, " to ", sequence - 1,
                                            " are missing")
                             : absl::StrCat("out of order; expected event ", expected);
}

absl::Status LogVerifier::Fail(uint64_t sequence, absl::string_view why) {
  failed_ = absl::DataLossError(absl::StrCat("event ", sequence, ": ", why));
  return failed_;
}

absl::Status LogVerifier::Replay(uint64_t sequence, absl::string_view bytes) {
  if (!failed_.ok()) return failed_;
  if (!shard_ && sequence != replayed_ + 1) return Fail(sequence, GapMessage(sequence));
  if (++scratch_events_ == 4096) {
    scratch_.Reset();
    scratch_events_ = 0;
  }
  v1::Event& e = *google::protobuf::Arena::CreateMessage<v1::Event>(&scratch_);
  if (!e.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Fail(sequence, "the stored bytes do not parse as an event");
  }
  if (e.sequence() != sequence) {
    return Fail(sequence, absl::StrCat("it records sequence number ", e.sequence()));
  }
  ++replayed_;

  auto [it, inserted] = cases_.try_emplace(e.case_id(), nullptr);
  if (inserted) it->second = google::protobuf::Arena::CreateMessage<v1::Case>(&cases_arena_);
  v1::Case& c = *it->second;
  if (inserted && partial_ && e.action() != v1::ACTION_SUBMIT) {
    // Its earlier events precede this range: take the event's word for
    // where the case stood, and check from here on.
    ++unchecked_cases_;
    trusted_[e.case_id()] = true;
    c.set_id(e.case_id());
    c.set_organisation(e.organisation());
    c.set_state(e.to_state());
    c.set_version(e.case_version());
    c.set_last_sequence(e.sequence());
    return absl::OkStatus();
  }
  if (partial_) {
    if (auto t = trusted_.find(e.case_id()); t != trusted_.end()) {
      // A case taken on trust: versions must still follow on.
      if (e.case_version() != c.version() + 1) {
        return Fail(sequence, absl::StrCat("case ", e.case_id(), " jumps from version ",
                                           c.version(), " to ", e.case_version()));
      }
      c.set_state(e.to_state());
      c.set_version(e.case_version());
      c.set_last_sequence(e.sequence());
      return absl::OkStatus();
    }
  }
  if (absl::Status s = ApplyEvent(e, &c); !s.ok()) {
    // ApplyEvent names the event already.
    failed_ = absl::DataLossError(s.message());
    return failed_;
  }
  return absl::OkStatus();
}

absl::Status LogVerifier::CheckSnapshot(const v1::Case& stored) const {
  auto it = cases_.find(stored.id());
  if (it == cases_.end()) {
    return absl::DataLossError(
        absl::StrCat("case ", stored.id(), " is stored but has no events in the log"));
  }
  if (trusted_.contains(stored.id())) {
    if (stored.version() != it->second->version() ||
        stored.state() != it->second->state()) {
      return absl::DataLossError(absl::StrCat(
          "case ", stored.id(), ": the stored snapshot (version ", stored.version(),
          ") differs from the log (version ", it->second->version(), ")"));
    }
    return absl::OkStatus();
  }
  std::string diff;
  google::protobuf::util::MessageDifferencer d;
  d.ReportDifferencesToString(&diff);
  if (!d.Compare(*it->second, stored)) {
    if (diff.size() > 300) diff = diff.substr(0, 300) + "...";
    return absl::DataLossError(absl::StrCat(
        "case ", stored.id(), ": the stored snapshot differs from the state "
        "re-derived from the log: ", diff));
  }
  return absl::OkStatus();
}

const v1::Case* LogVerifier::FindCase(absl::string_view id) const {
  auto it = cases_.find(id);
  return it == cases_.end() ? nullptr : it->second;
}

std::vector<std::string> LogVerifier::CaseIds() const {
  std::vector<std::string> ids;
  ids.reserve(cases_.size());
  for (const auto& [id, c] : cases_) ids.push_back(id);
  return ids;
}

absl::Status LogVerifier::CheckSnapshotBytes(absl::string_view id,
                                             absl::string_view stored_bytes) {
  auto it = cases_.find(id);
  if (it != cases_.end() && !trusted_.contains(id)) {
    // The writer serialized the same message the rules derive here, so equal
    // cases have equal bytes; only a difference needs the slow comparison.
    buffer_.clear();
    if (it->second->SerializeToString(&buffer_) && buffer_ == stored_bytes) {
      return absl::OkStatus();
    }
  }
  v1::Case stored;
  if (!stored.ParseFromArray(stored_bytes.data(), static_cast<int>(stored_bytes.size()))) {
    return absl::DataLossError(absl::StrCat("the stored snapshot of case ", id,
                                            " does not parse"));
  }
  if (stored.id() != id) {
    return absl::DataLossError(absl::StrCat("the snapshot stored under ", id,
                                            " is of case ", stored.id()));
  }
  return CheckSnapshot(stored);
}

}  // namespace permit::core
