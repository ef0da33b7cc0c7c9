// Event-by-event verification of an audit log; see log_verifier.h.
#include "core/log_verifier.h"

#include "absl/strings/str_cat.h"
#include "core/rules.h"
#include "google/protobuf/util/message_differencer.h"

namespace permit::core {

absl::Status LogVerifier::Add(uint64_t sequence, absl::string_view bytes,
                              std::vector<TreeNode>* completed) {
  if (!failed_.ok()) return failed_;
  auto fail = [&](absl::string_view why) {
    failed_ = absl::DataLossError(absl::StrCat("event ", sequence, ": ", why));
    return failed_;
  };
  const uint64_t expected = tree_.size() + 1;
  if (sequence != expected) {
    return fail(sequence > expected
                    ? absl::StrCat("events ", expected, " to ", sequence - 1,
                                   " are missing")
                    : absl::StrCat("out of order; expected event ", expected));
  }
  v1::Event e;
  if (!e.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return fail("the stored bytes do not parse as an event");
  }
  if (e.sequence() != sequence) {
    return fail(absl::StrCat("it records sequence number ", e.sequence()));
  }
  tree_.Append(LeafHash(bytes), completed);

  auto [it, inserted] = cases_.try_emplace(e.case_id());
  v1::Case& c = it->second;
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
  if (auto t = trusted_.find(e.case_id()); t != trusted_.end()) {
    // A case taken on trust: versions must still follow on.
    if (e.case_version() != c.version() + 1) {
      return fail(absl::StrCat("case ", e.case_id(), " jumps from version ",
                               c.version(), " to ", e.case_version()));
    }
    c.set_state(e.to_state());
    c.set_version(e.case_version());
    c.set_last_sequence(e.sequence());
    return absl::OkStatus();
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
    if (stored.version() != it->second.version() || stored.state() != it->second.state()) {
      return absl::DataLossError(absl::StrCat(
          "case ", stored.id(), ": the stored snapshot (version ", stored.version(),
          ") differs from the log (version ", it->second.version(), ")"));
    }
    return absl::OkStatus();
  }
  std::string diff;
  google::protobuf::util::MessageDifferencer d;
  d.ReportDifferencesToString(&diff);
  if (!d.Compare(it->second, stored)) {
    if (diff.size() > 300) diff = diff.substr(0, 300) + "...";
    return absl::DataLossError(absl::StrCat(
        "case ", stored.id(), ": the stored snapshot differs from the state "
        "re-derived from the log: ", diff));
  }
  return absl::OkStatus();
}

}  // namespace permit::core
