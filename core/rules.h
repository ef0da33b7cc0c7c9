// The case workflow's rules: who may do what to a case in which state, and
// how an accepted event changes the case. Pure functions over the API's
// protobuf messages, with no gRPC and no storage, so the server, the audit
// verifier and the tests all apply exactly the same rules.
//
// | action   | by                                   | from                      | to        |
// |----------|--------------------------------------|---------------------------|-----------|
// | submit   | exporter                             | (new case)                | SUBMITTED |
// | review   | reviewer                             | SUBMITTED                 | REVIEWED  |
// | approve  | reviewer other than the reviewer of record | REVIEWED            | APPROVED  |
// | reject   | reviewer other than the reviewer of record | REVIEWED            | REJECTED  |
// | suspend  | reviewer                             | SUBMITTED, REVIEWED, APPROVED | SUSPENDED |
// | resume   | reviewer                             | SUSPENDED                 | suspended_from |
// | revoke   | reviewer                             | APPROVED, SUSPENDED       | REVOKED   |
// | withdraw | exporter of the case's organisation  | SUBMITTED, REVIEWED, SUSPENDED (not from APPROVED) | WITHDRAWN |
//
// Thread-safe: every function here is pure.
#ifndef PERMIT_CORE_RULES_H_
#define PERMIT_CORE_RULES_H_

#include <cstdint>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "permit/v1/resources.pb.h"

namespace permit::core {

// True if `actor` may read `c`: reviewers and auditors read every case,
// exporters only their own organisation's.
bool CanRead(const v1::Actor& actor, const v1::Case& c);

// True if `state` admits no further action.
bool IsFinal(v1::CaseState state);

// Decides whether `actor` may perform `action` on `current` (nullptr for a
// submit), given the version the caller expects. Checks, in this order:
//   NOT_FOUND            an exporter acting on another organisation's case;
//   PERMISSION_DENIED    the role may not perform the action;
//   ABORTED              `expected_version` differs from the case's version;
//   FAILED_PRECONDITION  the action is not allowed in the case's state;
//   PERMISSION_DENIED    four-eyes: the reviewer of record approving/rejecting.
// On success returns the state the case moves to.
absl::StatusOr<v1::CaseState> Decide(const v1::Case* current,
                                     v1::Action action,
                                     const v1::Actor& actor,
                                     int64_t expected_version);

// Folds an accepted event into the case snapshot: `c` is the case before
// (empty for a submit) and is updated in place to the case after. Checks
// that the event fits the case (id, version, state, legality under Decide)
// and returns DATA_LOSS naming the mismatch if it does not, so replaying a
// stored log also verifies it.
absl::Status ApplyEvent(const v1::Event& event, v1::Case* c);

// Lower-case names used in messages and the CLI: "submitted", "approve",
// "reviewer".
absl::string_view StateName(v1::CaseState state);
absl::string_view ActionName(v1::Action action);
absl::string_view RoleName(v1::Role role);

}  // namespace permit::core

#endif  // PERMIT_CORE_RULES_H_
