// Tests core/rules.h: who may do what to a case in which state (Decide), how
// accepted events fold into a case snapshot (ApplyEvent), who may read a case
// (CanRead) and which states are final (IsFinal).
//
// The central test walks every combination of case state x action x actor
// and compares Decide against an expectation written out by hand from the
// workflow table in the specification, never computed by the code under test.
#include "core/rules.h"

#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "permit/v1/resources.pb.h"
#include "tests/test_util.h"

namespace permit::testing {
namespace {

using ::permit::core::ApplyEvent;
using ::permit::core::CanRead;
using ::permit::core::Decide;
using ::permit::core::IsFinal;
using ::testing::HasSubstr;

constexpr char kCaseId[] = "PRM-2026-000042";
constexpr int64_t kVersion = 4;

// ---------------------------------------------------------------------------
// The fixtures of the exhaustive table.

enum class Fixture {
  kSubmitted,
  kReviewed,
  kApproved,
  kRejected,
  kSuspendedFromSubmitted,
  kSuspendedFromReviewed,
  kSuspendedFromApproved,
  kRevoked,
  kWithdrawn,
};

constexpr Fixture kAllFixtures[] = {
    Fixture::kSubmitted,
    Fixture::kReviewed,
    Fixture::kApproved,
    Fixture::kRejected,
    Fixture::kSuspendedFromSubmitted,
    Fixture::kSuspendedFromReviewed,
    Fixture::kSuspendedFromApproved,
    Fixture::kRevoked,
    Fixture::kWithdrawn,
};

std::string FixtureName(Fixture f) {
  switch (f) {
    case Fixture::kSubmitted:
      return "SUBMITTED";
    case Fixture::kReviewed:
      return "REVIEWED";
    case Fixture::kApproved:
      return "APPROVED";
    case Fixture::kRejected:
      return "REJECTED";
    case Fixture::kSuspendedFromSubmitted:
      return "SUSPENDED-from-SUBMITTED";
    case Fixture::kSuspendedFromReviewed:
      return "SUSPENDED-from-REVIEWED";
    case Fixture::kSuspendedFromApproved:
      return "SUSPENDED-from-APPROVED";
    case Fixture::kRevoked:
      return "REVOKED";
    case Fixture::kWithdrawn:
      return "WITHDRAWN";
  }
  return "?";
}

// A case of organisation "acme" at version kVersion in the fixture's state.
// From REVIEWED onwards rev-1 is the reviewer of record; a case that never
// got past SUBMITTED has no reviewer, so rev-1 and rev-2 are alike there.
v1::Case MakeCase(Fixture f) {
  v1::Case c;
  c.set_id(kCaseId);
  c.set_organisation("acme");
  c.set_version(kVersion);
  c.set_submitted_by("exp-acme");
  *c.mutable_application() = ValidApplication();
  bool reviewed = true;
  switch (f) {
    case Fixture::kSubmitted:
      c.set_state(v1::CASE_STATE_SUBMITTED);
      reviewed = false;
      break;
    case Fixture::kReviewed:
      c.set_state(v1::CASE_STATE_REVIEWED);
      break;
    case Fixture::kApproved:
      c.set_state(v1::CASE_STATE_APPROVED);
      break;
    case Fixture::kRejected:
      c.set_state(v1::CASE_STATE_REJECTED);
      break;
    case Fixture::kSuspendedFromSubmitted:
      c.set_state(v1::CASE_STATE_SUSPENDED);
      c.set_suspended_from(v1::CASE_STATE_SUBMITTED);
      reviewed = false;
      break;
    case Fixture::kSuspendedFromReviewed:
      c.set_state(v1::CASE_STATE_SUSPENDED);
      c.set_suspended_from(v1::CASE_STATE_REVIEWED);
      break;
    case Fixture::kSuspendedFromApproved:
      c.set_state(v1::CASE_STATE_SUSPENDED);
      c.set_suspended_from(v1::CASE_STATE_APPROVED);
      break;
    case Fixture::kRevoked:
      c.set_state(v1::CASE_STATE_REVOKED);
      break;
    case Fixture::kWithdrawn:
      c.set_state(v1::CASE_STATE_WITHDRAWN);
      break;
  }
  if (reviewed) {
    c.set_reviewed_by("rev-1");
    c.set_recommendation(v1::RECOMMENDATION_APPROVE);
    c.set_findings("End user verified.");
  }
  return c;
}

constexpr v1::Action kAllActions[] = {
    v1::ACTION_REVIEW,   v1::ACTION_APPROVE, v1::ACTION_REJECT,
    v1::ACTION_SUSPEND,  v1::ACTION_RESUME,  v1::ACTION_REVOKE,
    v1::ACTION_WITHDRAW,
};

enum class Who {
  kExporterOfCaseOrg,   // exp-acme of "acme", the case's organisation
  kExporterOfOtherOrg,  // exp-globex of "globex"
  kReviewerOfRecord,    // rev-1, who recorded the review (if any)
  kOtherReviewer,       // rev-2
  kAuditor,             // aud-1
};

constexpr Who kAllActors[] = {
    Who::kExporterOfCaseOrg, Who::kExporterOfOtherOrg,
    Who::kReviewerOfRecord,  Who::kOtherReviewer,
    Who::kAuditor,
};

v1::Actor ActorFor(Who who) {
  switch (who) {
    case Who::kExporterOfCaseOrg:
      return Exporter("exp-acme", "acme");
    case Who::kExporterOfOtherOrg:
      return Exporter("exp-globex", "globex");
    case Who::kReviewerOfRecord:
      return Reviewer("rev-1");
    case Who::kOtherReviewer:
      return Reviewer("rev-2");
    case Who::kAuditor:
      return Auditor("aud-1");
  }
  return v1::Actor();
}

std::string WhoName(Who who) {
  switch (who) {
    case Who::kExporterOfCaseOrg:
      return "exporter of acme";
    case Who::kExporterOfOtherOrg:
      return "exporter of globex";
    case Who::kReviewerOfRecord:
      return "reviewer rev-1 (of record)";
    case Who::kOtherReviewer:
      return "reviewer rev-2";
    case Who::kAuditor:
      return "auditor";
  }
  return "?";
}

// ---------------------------------------------------------------------------
// The expectation, transcribed from the specification:
//
// clang-format off
// | action   | by                          | from                | to        |
// |----------|-----------------------------|---------------------|-----------|
// | review   | reviewer                    | SUBMITTED           | REVIEWED  |
// | approve  | reviewer who did not record | REVIEWED            | APPROVED  |
// |          | the review                  |                     |           |
// | reject   | reviewer who did not record | REVIEWED            | REJECTED  |
// |          | the review                  |                     |           |
// | suspend  | reviewer                    | SUBMITTED, REVIEWED,| SUSPENDED |
// |          |                             | APPROVED            |           |
// | resume   | reviewer                    | SUSPENDED           | the state |
// |          |                             |                     | it left   |
// | revoke   | reviewer                    | APPROVED, SUSPENDED | REVOKED   |
// | withdraw | exporter of the case's      | SUBMITTED, REVIEWED,| WITHDRAWN |
// |          | organisation                | SUSPENDED (unless   |           |
// |          |                             | from APPROVED)      |           |
// clang-format on
//
// REJECTED, REVOKED and WITHDRAWN are final: they appear in no "from" column.

// Every (state, action) pair the table allows, and where it leads. Any pair
// not listed is FAILED_PRECONDITION.
const std::map<std::pair<Fixture, v1::Action>, v1::CaseState>&
AllowedTransitions() {
  static const auto* const kTable =
      new std::map<std::pair<Fixture, v1::Action>, v1::CaseState>{
          // review: SUBMITTED -> REVIEWED
          {{Fixture::kSubmitted, v1::ACTION_REVIEW}, v1::CASE_STATE_REVIEWED},
          // approve / reject: REVIEWED -> APPROVED / REJECTED
          {{Fixture::kReviewed, v1::ACTION_APPROVE}, v1::CASE_STATE_APPROVED},
          {{Fixture::kReviewed, v1::ACTION_REJECT}, v1::CASE_STATE_REJECTED},
          // suspend: SUBMITTED, REVIEWED, APPROVED -> SUSPENDED
          {{Fixture::kSubmitted, v1::ACTION_SUSPEND}, v1::CASE_STATE_SUSPENDED},
          {{Fixture::kReviewed, v1::ACTION_SUSPEND}, v1::CASE_STATE_SUSPENDED},
          {{Fixture::kApproved, v1::ACTION_SUSPEND}, v1::CASE_STATE_SUSPENDED},
          // resume: SUSPENDED -> the state it was suspended from
          {{Fixture::kSuspendedFromSubmitted, v1::ACTION_RESUME},
           v1::CASE_STATE_SUBMITTED},
          {{Fixture::kSuspendedFromReviewed, v1::ACTION_RESUME},
           v1::CASE_STATE_REVIEWED},
          {{Fixture::kSuspendedFromApproved, v1::ACTION_RESUME},
           v1::CASE_STATE_APPROVED},
          // revoke: APPROVED, SUSPENDED -> REVOKED
          {{Fixture::kApproved, v1::ACTION_REVOKE}, v1::CASE_STATE_REVOKED},
          {{Fixture::kSuspendedFromSubmitted, v1::ACTION_REVOKE},
           v1::CASE_STATE_REVOKED},
          {{Fixture::kSuspendedFromReviewed, v1::ACTION_REVOKE},
           v1::CASE_STATE_REVOKED},
          {{Fixture::kSuspendedFromApproved, v1::ACTION_REVOKE},
           v1::CASE_STATE_REVOKED},
          // withdraw: SUBMITTED, REVIEWED, SUSPENDED (not from APPROVED)
          {{Fixture::kSubmitted, v1::ACTION_WITHDRAW},
           v1::CASE_STATE_WITHDRAWN},
          {{Fixture::kReviewed, v1::ACTION_WITHDRAW}, v1::CASE_STATE_WITHDRAWN},
          {{Fixture::kSuspendedFromSubmitted, v1::ACTION_WITHDRAW},
           v1::CASE_STATE_WITHDRAWN},
          {{Fixture::kSuspendedFromReviewed, v1::ACTION_WITHDRAW},
           v1::CASE_STATE_WITHDRAWN},
      };
  return *kTable;
}

// The "by" column: withdraw belongs to exporters, everything else to
// reviewers. Auditors may perform no action.
bool RoleMayAttempt(Who who, v1::Action action) {
  const bool is_exporter =
      who == Who::kExporterOfCaseOrg || who == Who::kExporterOfOtherOrg;
  const bool is_reviewer =
      who == Who::kReviewerOfRecord || who == Who::kOtherReviewer;
  if (action == v1::ACTION_WITHDRAW) return is_exporter;
  return is_reviewer;
}

// True if the fixture has rev-1 as reviewer of record (see MakeCase).
bool HasReviewerOfRecord(Fixture f) {
  return f != Fixture::kSubmitted && f != Fixture::kSuspendedFromSubmitted;
}

struct Expected {
  absl::StatusCode code;
  v1::CaseState state;  // when code is OK
  // True when the refusal comes before the version check (NOT_FOUND or a
  // role refusal), so a stale expected_version does not change it.
  bool before_version_check;
};

// The outcome the specification gives, applying Decide's documented order:
// NOT_FOUND (other org's exporter), PERMISSION_DENIED (role), ABORTED
// (version), FAILED_PRECONDITION (state), PERMISSION_DENIED (four-eyes).
Expected ExpectedOutcome(Fixture f, v1::Action action, Who who) {
  if (who == Who::kExporterOfOtherOrg) {
    return {absl::StatusCode::kNotFound, v1::CASE_STATE_UNSPECIFIED, true};
  }
  if (!RoleMayAttempt(who, action)) {
    return {absl::StatusCode::kPermissionDenied, v1::CASE_STATE_UNSPECIFIED,
            true};
  }
  auto it = AllowedTransitions().find({f, action});
  if (it == AllowedTransitions().end()) {
    return {absl::StatusCode::kFailedPrecondition, v1::CASE_STATE_UNSPECIFIED,
            false};
  }
  if ((action == v1::ACTION_APPROVE || action == v1::ACTION_REJECT) &&
      who == Who::kReviewerOfRecord && HasReviewerOfRecord(f)) {
    return {absl::StatusCode::kPermissionDenied, v1::CASE_STATE_UNSPECIFIED,
            false};
  }
  return {absl::StatusCode::kOk, it->second, false};
}

TEST(DecideTest, EveryStateActionAndActorGivesTheSpecifiedOutcome) {
  int combinations = 0;
  int allowed = 0;
  for (Fixture f : kAllFixtures) {
    const v1::Case c = MakeCase(f);
    for (v1::Action action : kAllActions) {
      for (Who who : kAllActors) {
        ++combinations;
        SCOPED_TRACE(absl::StrCat(FixtureName(f), " x ",
                                  core::ActionName(action), " x ",
                                  WhoName(who)));
        const Expected want = ExpectedOutcome(f, action, who);
        absl::StatusOr<v1::CaseState> got =
            Decide(&c, action, ActorFor(who), kVersion);
        EXPECT_EQ(got.status().code(), want.code) << got.status();
        if (want.code == absl::StatusCode::kOk && got.ok()) {
          ++allowed;
          EXPECT_EQ(*got, want.state)
              << "got " << core::StateName(*got) << ", want "
              << core::StateName(want.state);
        }
        if (!got.ok()) {
          EXPECT_FALSE(got.status().message().empty());
        }
      }
    }
  }
  EXPECT_EQ(combinations, 9 * 7 * 5);
  // 17 allowed (state, action) pairs; withdraw has one permitted actor, the
  // other 13 have two reviewers, minus the reviewer of record on approve and
  // reject of the reviewed case: 4 + 13 * 2 - 2.
  EXPECT_EQ(allowed, 4 + 13 * 2 - 2);
}

TEST(DecideTest, StaleVersionIsAbortedUnlessRefusedEarlier) {
  for (Fixture f : kAllFixtures) {
    const v1::Case c = MakeCase(f);
    for (v1::Action action : kAllActions) {
      for (Who who : kAllActors) {
        SCOPED_TRACE(absl::StrCat(FixtureName(f), " x ",
                                  core::ActionName(action), " x ",
                                  WhoName(who)));
        const Expected want = ExpectedOutcome(f, action, who);
        const absl::StatusCode want_code =
            want.before_version_check ? want.code : absl::StatusCode::kAborted;
        for (int64_t stale : {kVersion - 1, kVersion + 1, int64_t{0}}) {
          SCOPED_TRACE(absl::StrCat("expected_version ", stale));
          EXPECT_THAT(Decide(&c, action, ActorFor(who), stale),
                      StatusIs(want_code));
        }
      }
    }
  }
}

TEST(DecideTest, StaleExpectedVersionIsAborted) {
  const v1::Case c = MakeCase(Fixture::kSubmitted);
  absl::StatusOr<v1::CaseState> got =
      Decide(&c, v1::ACTION_REVIEW, Reviewer("rev-1"), kVersion - 1);
  EXPECT_THAT(got, StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(got.status().message(),
              HasSubstr(absl::StrCat("version ", kVersion)));
}

TEST(DecideTest, ReviewerOfRecordMayNotApprove) {
  const v1::Case c = MakeCase(Fixture::kReviewed);
  absl::StatusOr<v1::CaseState> got =
      Decide(&c, v1::ACTION_APPROVE, Reviewer("rev-1"), kVersion);
  EXPECT_THAT(got, StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(got.status().message(), HasSubstr("four-eyes"));
  EXPECT_THAT(got.status().message(), HasSubstr("rev-1"));
}

TEST(DecideTest, ReviewerOfRecordMayNotReject) {
  const v1::Case c = MakeCase(Fixture::kReviewed);
  absl::StatusOr<v1::CaseState> got =
      Decide(&c, v1::ACTION_REJECT, Reviewer("rev-1"), kVersion);
  EXPECT_THAT(got, StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(got.status().message(), HasSubstr("rev-1"));
}

TEST(DecideTest, FourEyesMessageNamesTheReviewerOfRecord) {
  v1::Case c = MakeCase(Fixture::kReviewed);
  c.set_reviewed_by("rev-carol");
  absl::StatusOr<v1::CaseState> got =
      Decide(&c, v1::ACTION_APPROVE, Reviewer("rev-carol"), kVersion);
  EXPECT_THAT(got, StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(got.status().message(), HasSubstr("rev-carol"));
  EXPECT_THAT(got.status().message(), HasSubstr(kCaseId));
}

TEST(DecideTest, ExporterSubmitsANewCase) {
  absl::StatusOr<v1::CaseState> got =
      Decide(nullptr, v1::ACTION_SUBMIT, Exporter(), 0);
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(*got, v1::CASE_STATE_SUBMITTED);
}

TEST(DecideTest, OnlyExportersWithAnOrganisationMaySubmit) {
  struct Row {
    std::string name;
    v1::Actor actor;
  };
  const std::vector<Row> rows = {
      {"reviewer", Reviewer("rev-1")},
      {"auditor", Auditor()},
      {"exporter without organisation", Exporter("exp-lone", "")},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    EXPECT_THAT(Decide(nullptr, v1::ACTION_SUBMIT, row.actor, 0),
                StatusIs(absl::StatusCode::kPermissionDenied));
  }
}

TEST(DecideTest, SubmitOnAnExistingCaseIsRefused) {
  const v1::Case c = MakeCase(Fixture::kSubmitted);
  EXPECT_THAT(Decide(&c, v1::ACTION_SUBMIT, Exporter(), kVersion),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(DecideTest, ActionOnAMissingCaseIsNotFound) {
  EXPECT_THAT(Decide(nullptr, v1::ACTION_REVIEW, Reviewer("rev-1"), 1),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(DecideTest, UnknownActionIsInvalidArgument) {
  const v1::Case c = MakeCase(Fixture::kSubmitted);
  EXPECT_THAT(Decide(&c, v1::ACTION_UNSPECIFIED, Reviewer("rev-1"), kVersion),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(DecideTest, WithdrawingASuspendedLicenceExplainsItMustBeRevoked) {
  const v1::Case c = MakeCase(Fixture::kSuspendedFromApproved);
  absl::StatusOr<v1::CaseState> got =
      Decide(&c, v1::ACTION_WITHDRAW, Exporter(), kVersion);
  EXPECT_THAT(got, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(got.status().message(), HasSubstr("revoked"));
}

// ---------------------------------------------------------------------------
// CanRead and IsFinal.

TEST(CanReadTest, ExportersReadOnlyTheirOwnOrganisationsCases) {
  v1::Case c = MakeCase(Fixture::kSubmitted);
  struct Row {
    std::string name;
    v1::Actor actor;
    bool want;
  };
  v1::Actor nobody;
  nobody.set_principal_id("nobody");
  const std::vector<Row> rows = {
      {"exporter of the case's org", Exporter("exp-acme", "acme"), true},
      {"exporter of another org", Exporter("exp-globex", "globex"), false},
      {"exporter without org", Exporter("exp-lone", ""), false},
      {"reviewer", Reviewer("rev-1"), true},
      {"auditor", Auditor(), true},
      {"unspecified role", nobody, false},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    EXPECT_EQ(CanRead(row.actor, c), row.want);
  }
}

TEST(CanReadTest,
     ExporterWithoutOrganisationCannotReadCaseWithoutOrganisation) {
  v1::Case c;
  c.set_id(kCaseId);
  EXPECT_FALSE(CanRead(Exporter("exp-lone", ""), c));
}

TEST(IsFinalTest, OnlyRejectedRevokedAndWithdrawnAreFinal) {
  const std::vector<std::pair<v1::CaseState, bool>> rows = {
      {v1::CASE_STATE_UNSPECIFIED, false}, {v1::CASE_STATE_SUBMITTED, false},
      {v1::CASE_STATE_REVIEWED, false},    {v1::CASE_STATE_APPROVED, false},
      {v1::CASE_STATE_REJECTED, true},     {v1::CASE_STATE_SUSPENDED, false},
      {v1::CASE_STATE_REVOKED, true},      {v1::CASE_STATE_WITHDRAWN, true},
  };
  for (const auto& [state, want] : rows) {
    SCOPED_TRACE(core::StateName(state));
    EXPECT_EQ(IsFinal(state), want);
  }
}

// ---------------------------------------------------------------------------
// ApplyEvent.

google::protobuf::Timestamp At(int64_t seconds) {
  google::protobuf::Timestamp t;
  t.set_seconds(seconds);
  return t;
}

v1::Event BaseEvent(uint64_t sequence, int64_t case_version, v1::Action action,
                    const v1::Actor& actor, v1::CaseState from,
                    v1::CaseState to) {
  v1::Event e;
  e.set_sequence(sequence);
  e.set_case_id(kCaseId);
  e.set_case_version(case_version);
  e.set_organisation("acme");
  e.set_action(action);
  *e.mutable_actor() = actor;
  *e.mutable_time() = At(1767225600 + static_cast<int64_t>(sequence) * 60);
  e.set_request_id(absl::StrCat("req-", sequence));
  e.set_from_state(from);
  e.set_to_state(to);
  return e;
}

v1::Event SubmitEvent(uint64_t sequence = 1) {
  v1::Event e = BaseEvent(sequence, 1, v1::ACTION_SUBMIT, Exporter(),
                          v1::CASE_STATE_UNSPECIFIED, v1::CASE_STATE_SUBMITTED);
  *e.mutable_submit()->mutable_application() = ValidApplication();
  return e;
}

v1::Event ReviewEvent(uint64_t sequence, int64_t version,
                      const std::string& reviewer) {
  v1::Event e =
      BaseEvent(sequence, version, v1::ACTION_REVIEW, Reviewer(reviewer),
                v1::CASE_STATE_SUBMITTED, v1::CASE_STATE_REVIEWED);
  e.mutable_review()->set_recommendation(v1::RECOMMENDATION_APPROVE);
  e.mutable_review()->set_findings("End user verified on site.");
  return e;
}

v1::Event ApproveEvent(uint64_t sequence, int64_t version,
                       const std::string& reviewer, v1::CaseState from) {
  v1::Event e = BaseEvent(sequence, version, v1::ACTION_APPROVE,
                          Reviewer(reviewer), from, v1::CASE_STATE_APPROVED);
  *e.mutable_approve()->mutable_valid_from() = At(1767225600);
  *e.mutable_approve()->mutable_valid_until() = At(1798761600);
  e.mutable_approve()->set_conditions("No re-export.");
  return e;
}

v1::Event ReasonEvent(uint64_t sequence, int64_t version, v1::Action action,
                      const std::string& reviewer, v1::CaseState from,
                      v1::CaseState to, const std::string& reason) {
  v1::Event e =
      BaseEvent(sequence, version, action, Reviewer(reviewer), from, to);
  e.mutable_reason()->set_reason(reason);
  return e;
}

TEST(ApplyEventTest, FoldsAFullLifecycleIntoTheSnapshot) {
  v1::Case c;

  ASSERT_THAT(ApplyEvent(SubmitEvent(1), &c), IsOk());
  EXPECT_EQ(c.id(), kCaseId);
  EXPECT_EQ(c.organisation(), "acme");
  EXPECT_EQ(c.state(), v1::CASE_STATE_SUBMITTED);
  EXPECT_EQ(c.version(), 1);
  EXPECT_EQ(c.submitted_by(), "exp-acme");
  EXPECT_EQ(c.application().goods_size(), 1);
  EXPECT_EQ(c.application().destination_country(), "JP");
  EXPECT_EQ(c.create_time().seconds(), 1767225600 + 60);
  EXPECT_EQ(c.last_sequence(), 1u);
  EXPECT_EQ(c.reviewed_by(), "");

  ASSERT_THAT(ApplyEvent(ReviewEvent(3, 2, "rev-1"), &c), IsOk());
  EXPECT_EQ(c.state(), v1::CASE_STATE_REVIEWED);
  EXPECT_EQ(c.version(), 2);
  EXPECT_EQ(c.reviewed_by(), "rev-1");
  EXPECT_EQ(c.recommendation(), v1::RECOMMENDATION_APPROVE);
  EXPECT_EQ(c.findings(), "End user verified on site.");
  EXPECT_EQ(c.decided_by(), "");
  EXPECT_EQ(c.last_sequence(), 3u);

  ASSERT_THAT(
      ApplyEvent(ApproveEvent(7, 3, "rev-2", v1::CASE_STATE_REVIEWED), &c),
      IsOk());
  EXPECT_EQ(c.state(), v1::CASE_STATE_APPROVED);
  EXPECT_EQ(c.version(), 3);
  EXPECT_EQ(c.reviewed_by(), "rev-1");
  EXPECT_EQ(c.decided_by(), "rev-2");
  EXPECT_EQ(c.valid_from().seconds(), 1767225600);
  EXPECT_EQ(c.valid_until().seconds(), 1798761600);
  EXPECT_EQ(c.conditions(), "No re-export.");
  EXPECT_EQ(c.suspended_from(), v1::CASE_STATE_UNSPECIFIED);
  EXPECT_EQ(c.last_sequence(), 7u);

  ASSERT_THAT(
      ApplyEvent(ReasonEvent(8, 4, v1::ACTION_SUSPEND, "rev-1",
                             v1::CASE_STATE_APPROVED, v1::CASE_STATE_SUSPENDED,
                             "End user under investigation."),
                 &c),
      IsOk());
  EXPECT_EQ(c.state(), v1::CASE_STATE_SUSPENDED);
  EXPECT_EQ(c.version(), 4);
  EXPECT_EQ(c.suspended_from(), v1::CASE_STATE_APPROVED);
  EXPECT_EQ(c.last_reason(), "End user under investigation.");
  EXPECT_EQ(c.last_sequence(), 8u);

  ASSERT_THAT(
      ApplyEvent(ReasonEvent(12, 5, v1::ACTION_RESUME, "rev-2",
                             v1::CASE_STATE_SUSPENDED, v1::CASE_STATE_APPROVED,
                             "Investigation closed."),
                 &c),
      IsOk());
  EXPECT_EQ(c.state(), v1::CASE_STATE_APPROVED);
  EXPECT_EQ(c.version(), 5);
  EXPECT_EQ(c.suspended_from(), v1::CASE_STATE_UNSPECIFIED);
  EXPECT_EQ(c.last_reason(), "Investigation closed.");
  EXPECT_EQ(c.reviewed_by(), "rev-1");
  EXPECT_EQ(c.decided_by(), "rev-2");
  EXPECT_EQ(c.submitted_by(), "exp-acme");
  EXPECT_EQ(c.create_time().seconds(), 1767225600 + 60);
  EXPECT_EQ(c.update_time().seconds(), 1767225600 + 12 * 60);
  EXPECT_EQ(c.last_sequence(), 12u);
}

// Applies `history` (which must succeed) and then `bad` to a fresh case.
// Returns bad's status and checks that the refused event left the case as
// it was.
absl::Status ApplyAfter(const std::vector<v1::Event>& history,
                        const v1::Event& bad) {
  v1::Case c;
  for (const v1::Event& e : history) {
    absl::Status s = ApplyEvent(e, &c);
    EXPECT_THAT(s, IsOk()) << "history event " << e.sequence();
    if (!s.ok()) return s;
  }
  const v1::Case before = c;
  absl::Status s = ApplyEvent(bad, &c);
  if (!s.ok()) {
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(before, c))
        << "a refused event changed the case";
  }
  return s;
}

TEST(ApplyEventTest, RefusesInconsistentEventsAsDataLoss) {
  v1::Event wrong_version = ReviewEvent(2, 3, "rev-1");

  v1::Event approve_by_reviewer_of_record =
      ApproveEvent(3, 3, "rev-1", v1::CASE_STATE_REVIEWED);

  v1::Event approve_without_review =
      ApproveEvent(2, 2, "rev-2", v1::CASE_STATE_SUBMITTED);

  v1::Event wrong_to_state = ReviewEvent(2, 2, "rev-1");
  wrong_to_state.set_to_state(v1::CASE_STATE_APPROVED);

  v1::Event wrong_from_state = ReviewEvent(2, 2, "rev-1");
  wrong_from_state.set_from_state(v1::CASE_STATE_REVIEWED);

  v1::Event submit_for_other_org = SubmitEvent(1);
  submit_for_other_org.set_organisation("globex");

  v1::Event second_submit = SubmitEvent(2);
  second_submit.set_case_version(2);

  v1::Event review_of_unsubmitted = ReviewEvent(1, 1, "rev-1");

  v1::Event other_case = ReviewEvent(2, 2, "rev-1");
  other_case.set_case_id("PRM-2026-000043");

  v1::Event review_without_details = ReviewEvent(2, 2, "rev-1");
  review_without_details.clear_review();

  v1::Event suspend_without_reason =
      ReasonEvent(2, 2, v1::ACTION_SUSPEND, "rev-1", v1::CASE_STATE_SUBMITTED,
                  v1::CASE_STATE_SUSPENDED, "x");
  suspend_without_reason.clear_reason();

  struct Row {
    std::string name;
    std::vector<v1::Event> history;
    v1::Event bad;
  };
  const std::vector<Row> rows = {
      {"wrong case_version", {SubmitEvent()}, wrong_version},
      {"approval by the reviewer of record",
       {SubmitEvent(), ReviewEvent(2, 2, "rev-1")},
       approve_by_reviewer_of_record},
      {"approval with no review", {SubmitEvent()}, approve_without_review},
      {"wrong to_state recorded", {SubmitEvent()}, wrong_to_state},
      {"wrong from_state recorded", {SubmitEvent()}, wrong_from_state},
      {"submit for another organisation than the actor's",
       {},
       submit_for_other_org},
      {"second submit of the same case", {SubmitEvent()}, second_submit},
      {"action on a case never submitted", {}, review_of_unsubmitted},
      {"event of another case", {SubmitEvent()}, other_case},
      {"review without its details", {SubmitEvent()}, review_without_details},
      {"suspend without its reason", {SubmitEvent()}, suspend_without_reason},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    EXPECT_THAT(ApplyAfter(row.history, row.bad),
                StatusIs(absl::StatusCode::kDataLoss));
  }
}

TEST(ApplyEventTest, DataLossMessageNamesTheEvent) {
  v1::Event bad = ReviewEvent(17, 3, "rev-1");
  absl::Status s = ApplyAfter({SubmitEvent()}, bad);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(s.message(), HasSubstr("event 17"));
  EXPECT_THAT(s.message(), HasSubstr(kCaseId));
}

TEST(ApplyEventTest, WithdrawWithoutReasonTextIsAccepted) {
  v1::Event withdraw =
      BaseEvent(2, 2, v1::ACTION_WITHDRAW, Exporter(), v1::CASE_STATE_SUBMITTED,
                v1::CASE_STATE_WITHDRAWN);
  withdraw.mutable_reason();  // present, empty reason
  v1::Case c;
  ASSERT_THAT(ApplyEvent(SubmitEvent(), &c), IsOk());
  ASSERT_THAT(ApplyEvent(withdraw, &c), IsOk());
  EXPECT_EQ(c.state(), v1::CASE_STATE_WITHDRAWN);
  EXPECT_EQ(c.version(), 2);
}

TEST(ApplyEventTest, WithdrawFromSuspensionClearsSuspendedFrom) {
  v1::Case c;
  ASSERT_THAT(ApplyEvent(SubmitEvent(), &c), IsOk());
  ASSERT_THAT(ApplyEvent(ReasonEvent(2, 2, v1::ACTION_SUSPEND, "rev-1",
                                     v1::CASE_STATE_SUBMITTED,
                                     v1::CASE_STATE_SUSPENDED, "Hold."),
                         &c),
              IsOk());
  EXPECT_EQ(c.suspended_from(), v1::CASE_STATE_SUBMITTED);
  v1::Event withdraw =
      BaseEvent(3, 3, v1::ACTION_WITHDRAW, Exporter(), v1::CASE_STATE_SUSPENDED,
                v1::CASE_STATE_WITHDRAWN);
  withdraw.mutable_reason()->set_reason("No longer needed.");
  ASSERT_THAT(ApplyEvent(withdraw, &c), IsOk());
  EXPECT_EQ(c.state(), v1::CASE_STATE_WITHDRAWN);
  EXPECT_EQ(c.suspended_from(), v1::CASE_STATE_UNSPECIFIED);
  EXPECT_EQ(c.last_reason(), "No longer needed.");
}

TEST(ApplyEventTest, RejectRecordsTheDecidingReviewer) {
  v1::Case c;
  ASSERT_THAT(ApplyEvent(SubmitEvent(), &c), IsOk());
  ASSERT_THAT(ApplyEvent(ReviewEvent(2, 2, "rev-1"), &c), IsOk());
  ASSERT_THAT(
      ApplyEvent(
          ReasonEvent(3, 3, v1::ACTION_REJECT, "rev-2", v1::CASE_STATE_REVIEWED,
                      v1::CASE_STATE_REJECTED, "End user on a watch list."),
          &c),
      IsOk());
  EXPECT_EQ(c.state(), v1::CASE_STATE_REJECTED);
  EXPECT_EQ(c.decided_by(), "rev-2");
  EXPECT_EQ(c.last_reason(), "End user on a watch list.");
}

}  // namespace
}  // namespace permit::testing
