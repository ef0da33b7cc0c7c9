// Tests core/log_verifier.h: a legal log verifies, re-derives every case and
// rebuilds the RFC 6962 root; crafted bad logs (gaps, swaps, wrong stored
// sequence numbers, unparseable bytes, rule violations) fail with DATA_LOSS
// naming the first bad sequence number; stored snapshots are compared with
// the re-derived cases; and a verifier started mid-log (from a compact tree)
// reaches the same root and counts the cases it takes on trust.
#include "core/log_verifier.h"

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/merkle.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "permit/v1/resources.pb.h"
#include "tests/test_util.h"

namespace permit::testing {
namespace {

using ::permit::core::CompactTree;
using ::permit::core::Hash;
using ::permit::core::LeafHash;
using ::permit::core::LogVerifier;
using ::permit::core::RootFromLeafHashes;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kA[] = "PRM-2026-000001";  // acme: approved, suspended, resumed, revoked
constexpr char kB[] = "PRM-2026-000002";  // beta: reviewed, rejected
constexpr char kC[] = "PRM-2026-000003";  // acme: withdrawn

// --- Building events by hand. ----------------------------------------------

v1::Event Base(uint64_t seq, const std::string& case_id, int64_t version,
               const std::string& org, v1::Action action, const v1::Actor& actor,
               v1::CaseState from, v1::CaseState to) {
  v1::Event e;
  e.set_sequence(seq);
  e.set_case_id(case_id);
  e.set_case_version(version);
  e.set_organisation(org);
  e.set_action(action);
  *e.mutable_actor() = actor;
  e.mutable_time()->set_seconds(1767225600 + static_cast<int64_t>(seq) * 60);
  e.set_request_id(absl::StrCat("req-", seq));
  e.set_from_state(from);
  e.set_to_state(to);
  return e;
}

v1::Event Submit(uint64_t seq, const std::string& case_id,
                 const v1::Actor& exporter = Exporter()) {
  v1::Event e = Base(seq, case_id, 1, exporter.organisation(), v1::ACTION_SUBMIT,
                     exporter, v1::CASE_STATE_UNSPECIFIED, v1::CASE_STATE_SUBMITTED);
  *e.mutable_submit()->mutable_application() = ValidApplication();
  return e;
}

v1::Event Review(uint64_t seq, const std::string& case_id, int64_t version,
                 const std::string& org, const v1::Actor& actor) {
  v1::Event e = Base(seq, case_id, version, org, v1::ACTION_REVIEW, actor,
                     v1::CASE_STATE_SUBMITTED, v1::CASE_STATE_REVIEWED);
  e.mutable_review()->set_recommendation(v1::RECOMMENDATION_APPROVE);
  e.mutable_review()->set_findings(absl::StrCat("Findings on ", case_id));
  return e;
}

v1::Event Approve(uint64_t seq, const std::string& case_id, int64_t version,
                  const std::string& org, const v1::Actor& actor,
                  v1::CaseState from = v1::CASE_STATE_REVIEWED) {
  v1::Event e = Base(seq, case_id, version, org, v1::ACTION_APPROVE, actor, from,
                     v1::CASE_STATE_APPROVED);
  e.mutable_approve()->mutable_valid_from()->set_seconds(1767225600);
  e.mutable_approve()->mutable_valid_until()->set_seconds(1798761600);
  e.mutable_approve()->set_conditions("No re-export.");
  return e;
}

v1::Event WithReason(uint64_t seq, const std::string& case_id, int64_t version,
                     const std::string& org, v1::Action action,
                     const v1::Actor& actor, v1::CaseState from, v1::CaseState to) {
  v1::Event e = Base(seq, case_id, version, org, action, actor, from, to);
  e.mutable_reason()->set_reason(absl::StrCat("reason ", seq));
  return e;
}

std::string Bytes(const v1::Event& e) {
  std::string out;
  EXPECT_TRUE(e.SerializeToString(&out));
  return out;
}

// A legal log of 11 events over three cases and two organisations.
std::vector<v1::Event> LegalLog() {
  const v1::Actor beta = Exporter("exp-beta", "beta");
  return {
      Submit(1, kA),
      Submit(2, kB, beta),
      Review(3, kA, 2, "acme", Reviewer("rev-1")),
      Approve(4, kA, 3, "acme", Reviewer("rev-2")),
      WithReason(5, kA, 4, "acme", v1::ACTION_SUSPEND, Reviewer("rev-1"),
                 v1::CASE_STATE_APPROVED, v1::CASE_STATE_SUSPENDED),
      Review(6, kB, 2, "beta", Reviewer("rev-2")),
      WithReason(7, kB, 3, "beta", v1::ACTION_REJECT, Reviewer("rev-1"),
                 v1::CASE_STATE_REVIEWED, v1::CASE_STATE_REJECTED),
      WithReason(8, kA, 5, "acme", v1::ACTION_RESUME, Reviewer("rev-2"),
                 v1::CASE_STATE_SUSPENDED, v1::CASE_STATE_APPROVED),
      WithReason(9, kA, 6, "acme", v1::ACTION_REVOKE, Reviewer("rev-1"),
                 v1::CASE_STATE_APPROVED, v1::CASE_STATE_REVOKED),
      Submit(10, kC),
      WithReason(11, kC, 2, "acme", v1::ACTION_WITHDRAW, Exporter(),
                 v1::CASE_STATE_SUBMITTED, v1::CASE_STATE_WITHDRAWN),
  };
}

std::vector<std::string> AllBytes(const std::vector<v1::Event>& events) {
  std::vector<std::string> out;
  for (const v1::Event& e : events) out.push_back(Bytes(e));
  return out;
}

Hash ReferenceRoot(const std::vector<std::string>& bytes) {
  std::vector<Hash> leaves;
  for (const std::string& b : bytes) leaves.push_back(LeafHash(b));
  return RootFromLeafHashes(leaves);
}

// The message of a DATA_LOSS that names `seq` as the bad event: it starts
// "event <seq>:" (sequence checks) or "event <seq> (case ...)" (rules).
::testing::Matcher<std::string> NamesEvent(uint64_t seq) {
  return AnyOf(StartsWith(absl::StrCat("event ", seq, ":")),
               StartsWith(absl::StrCat("event ", seq, " (")));
}

// Feeds `events` in order, at positions 1, 2, ...; all but the last must be
// accepted; returns the status of the last.
absl::Status AddAllExpectLastFails(const std::vector<std::string>& bytes) {
  LogVerifier v;
  for (size_t i = 0; i + 1 < bytes.size(); ++i) {
    absl::Status s = v.Add(i + 1, bytes[i]);
    EXPECT_THAT(s, IsOk()) << "event " << i + 1;
    if (!s.ok()) return s;
  }
  return v.Add(bytes.size(), bytes.back());
}

// --- A legal log. ----------------------------------------------------------

TEST(LogVerifierTest, LegalLogVerifiesAndRederivesEveryCase) {
  const std::vector<v1::Event> events = LegalLog();
  const std::vector<std::string> bytes = AllBytes(events);
  LogVerifier v;
  for (size_t i = 0; i < bytes.size(); ++i) {
    ASSERT_THAT(v.Add(i + 1, bytes[i]), IsOk()) << "event " << i + 1;
  }
  EXPECT_EQ(v.size(), bytes.size());
  EXPECT_EQ(v.root(), ReferenceRoot(bytes));
  EXPECT_EQ(v.tree().Root(), v.root());
  EXPECT_EQ(v.unchecked_cases(), 0u);
  ASSERT_EQ(v.case_count(), 3u);

  const v1::Case& a = (*v.FindCase(kA));
  EXPECT_EQ(a.id(), kA);
  EXPECT_EQ(a.organisation(), "acme");
  EXPECT_EQ(a.state(), v1::CASE_STATE_REVOKED);
  EXPECT_EQ(a.version(), 6);
  EXPECT_EQ(a.last_sequence(), 9u);
  EXPECT_EQ(a.submitted_by(), "exp-acme");
  EXPECT_EQ(a.reviewed_by(), "rev-1");
  EXPECT_EQ(a.decided_by(), "rev-2");
  EXPECT_EQ(a.findings(), absl::StrCat("Findings on ", kA));
  EXPECT_EQ(a.conditions(), "No re-export.");
  EXPECT_EQ(a.last_reason(), "reason 9");
  EXPECT_EQ(a.suspended_from(), v1::CASE_STATE_UNSPECIFIED);
  EXPECT_EQ(a.create_time().seconds(), 1767225600 + 60);
  EXPECT_EQ(a.update_time().seconds(), 1767225600 + 9 * 60);
  EXPECT_EQ(a.application().destination_country(), "JP");

  const v1::Case& b = (*v.FindCase(kB));
  EXPECT_EQ(b.organisation(), "beta");
  EXPECT_EQ(b.state(), v1::CASE_STATE_REJECTED);
  EXPECT_EQ(b.version(), 3);
  EXPECT_EQ(b.last_sequence(), 7u);
  EXPECT_EQ(b.submitted_by(), "exp-beta");
  EXPECT_EQ(b.reviewed_by(), "rev-2");
  EXPECT_EQ(b.decided_by(), "rev-1");

  const v1::Case& c = (*v.FindCase(kC));
  EXPECT_EQ(c.state(), v1::CASE_STATE_WITHDRAWN);
  EXPECT_EQ(c.version(), 2);
  EXPECT_EQ(c.last_sequence(), 11u);
}

TEST(LogVerifierTest, RootAfterEachEventEqualsReferenceRoot) {
  const std::vector<std::string> bytes = AllBytes(LegalLog());
  LogVerifier v;
  EXPECT_EQ(v.root(), RootFromLeafHashes({}));
  for (size_t i = 0; i < bytes.size(); ++i) {
    ASSERT_THAT(v.Add(i + 1, bytes[i]), IsOk());
    EXPECT_EQ(v.root(), ReferenceRoot(std::vector<std::string>(
                            bytes.begin(), bytes.begin() + i + 1)));
  }
}

// --- Bad logs: each names the first bad sequence number. -------------------

TEST(LogVerifierTest, GapIsDataLossNamingTheEventAfterIt) {
  const std::vector<std::string> bytes = AllBytes(LegalLog());
  LogVerifier v;
  ASSERT_THAT(v.Add(1, bytes[0]), IsOk());
  ASSERT_THAT(v.Add(2, bytes[1]), IsOk());
  absl::Status s = v.Add(4, bytes[3]);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(std::string(s.message()), NamesEvent(4));
  EXPECT_THAT(std::string(s.message()), HasSubstr("3"));
}

TEST(LogVerifierTest, SwappedEventsAreDataLoss) {
  const std::vector<std::string> bytes = AllBytes(LegalLog());
  {
    SCOPED_TRACE("event 2 served before event 1");
    LogVerifier v;
    absl::Status s = v.Add(2, bytes[1]);
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_THAT(std::string(s.message()), NamesEvent(2));
  }
  {
    SCOPED_TRACE("the stored bytes of events 1 and 2 swapped");
    LogVerifier v;
    absl::Status s = v.Add(1, bytes[1]);
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_THAT(std::string(s.message()), NamesEvent(1));
  }
  {
    SCOPED_TRACE("event 2 repeated");
    LogVerifier v;
    ASSERT_THAT(v.Add(1, bytes[0]), IsOk());
    ASSERT_THAT(v.Add(2, bytes[1]), IsOk());
    absl::Status s = v.Add(2, bytes[1]);
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_THAT(std::string(s.message()), NamesEvent(2));
  }
  {
    SCOPED_TRACE("sequence 0");
    LogVerifier v;
    EXPECT_THAT(v.Add(0, bytes[0]), StatusIs(absl::StatusCode::kDataLoss));
  }
}

TEST(LogVerifierTest, StoredSequenceDifferentFromPositionIsDataLoss) {
  std::vector<v1::Event> events = LegalLog();
  events[2].set_sequence(5);  // stored at position 3, says 5
  absl::Status s = AddAllExpectLastFails(
      AllBytes(std::vector<v1::Event>(events.begin(), events.begin() + 3)));
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(std::string(s.message()), NamesEvent(3));
  EXPECT_THAT(std::string(s.message()), HasSubstr("5"));
}

TEST(LogVerifierTest, UnparseableBytesAreDataLoss) {
  const std::vector<std::string> bytes = AllBytes(LegalLog());
  std::string truncated = bytes[1];
  truncated.pop_back();  // cuts the last field, a submessage, short
  for (const std::string& bad :
       {std::string("\x08", 1), std::string("\x0a\x05" "ab", 4),
        std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11), truncated}) {
    LogVerifier v;
    ASSERT_THAT(v.Add(1, bytes[0]), IsOk());
    absl::Status s = v.Add(2, bad);
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_THAT(std::string(s.message()), NamesEvent(2));
  }
}

TEST(LogVerifierTest, RuleViolationsAreDataLossNamingTheEvent) {
  struct Row {
    const char* what;
    std::vector<v1::Event> log;  // the last event is the bad one
  };
  const std::vector<Row> rows = {
      {"approval by the reviewer of record",
       {Submit(1, kA), Review(2, kA, 2, "acme", Reviewer("rev-1")),
        Approve(3, kA, 3, "acme", Reviewer("rev-1"))}},
      {"rejection by the reviewer of record",
       {Submit(1, kA), Review(2, kA, 2, "acme", Reviewer("rev-1")),
        WithReason(3, kA, 3, "acme", v1::ACTION_REJECT, Reviewer("rev-1"),
                   v1::CASE_STATE_REVIEWED, v1::CASE_STATE_REJECTED)}},
      {"approval with no review",
       {Submit(1, kA), Approve(2, kA, 2, "acme", Reviewer("rev-2"),
                               v1::CASE_STATE_SUBMITTED)}},
      {"case version skips one",
       {Submit(1, kA), Review(2, kA, 3, "acme", Reviewer("rev-1"))}},
      {"case version repeats",
       {Submit(1, kA), Review(2, kA, 1, "acme", Reviewer("rev-1"))}},
      {"review by an auditor",
       {Submit(1, kA), Review(2, kA, 2, "acme", Auditor())}},
      {"withdraw by an auditor",
       {Submit(1, kA), WithReason(2, kA, 2, "acme", v1::ACTION_WITHDRAW, Auditor(),
                                  v1::CASE_STATE_SUBMITTED, v1::CASE_STATE_WITHDRAWN)}},
      {"withdraw by another organisation's exporter",
       {Submit(1, kA),
        WithReason(2, kA, 2, "acme", v1::ACTION_WITHDRAW, Exporter("exp-beta", "beta"),
                   v1::CASE_STATE_SUBMITTED, v1::CASE_STATE_WITHDRAWN)}},
      {"review by an exporter",
       {Submit(1, kA), Review(2, kA, 2, "acme", Exporter())}},
      {"submit by a reviewer",
       {Submit(1, kA, Reviewer("rev-1"))}},
      {"second submit of a case",
       {Submit(1, kA), Submit(2, kA)}},
      {"action on a case never submitted",
       {Submit(1, kA), Review(2, kB, 2, "acme", Reviewer("rev-1"))}},
      {"event moves the case to another organisation",
       {Submit(1, kA), Review(2, kA, 2, "beta", Reviewer("rev-1"))}},
      {"recorded states differ from the rules",
       {Submit(1, kA), WithReason(2, kA, 2, "acme", v1::ACTION_SUSPEND, Reviewer("rev-1"),
                                  v1::CASE_STATE_SUBMITTED, v1::CASE_STATE_REVOKED)}},
      {"action after a final state",
       {Submit(1, kA),
        WithReason(2, kA, 2, "acme", v1::ACTION_WITHDRAW, Exporter(),
                   v1::CASE_STATE_SUBMITTED, v1::CASE_STATE_WITHDRAWN),
        Review(3, kA, 3, "acme", Reviewer("rev-1"))}},
      {"withdraw of a suspended licence",
       {Submit(1, kA), Review(2, kA, 2, "acme", Reviewer("rev-1")),
        Approve(3, kA, 3, "acme", Reviewer("rev-2")),
        WithReason(4, kA, 4, "acme", v1::ACTION_SUSPEND, Reviewer("rev-1"),
                   v1::CASE_STATE_APPROVED, v1::CASE_STATE_SUSPENDED),
        WithReason(5, kA, 5, "acme", v1::ACTION_WITHDRAW, Exporter(),
                   v1::CASE_STATE_SUSPENDED, v1::CASE_STATE_WITHDRAWN)}},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.what);
    absl::Status s = AddAllExpectLastFails(AllBytes(row.log));
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_THAT(std::string(s.message()), NamesEvent(row.log.size()));
  }
}

TEST(LogVerifierTest, StaysFailedAfterTheFirstBadEvent) {
  const std::vector<std::string> bytes = AllBytes(LegalLog());
  LogVerifier v;
  ASSERT_THAT(v.Add(1, bytes[0]), IsOk());
  const absl::Status first = v.Add(3, bytes[2]);
  ASSERT_THAT(first, StatusIs(absl::StatusCode::kDataLoss));
  // Even the event that was missing does not bring it back.
  EXPECT_EQ(v.Add(2, bytes[1]), first);
  EXPECT_EQ(v.Add(3, bytes[2]), first);
}

// --- Snapshots. -------------------------------------------------------------

TEST(LogVerifierTest, CheckSnapshotComparesWithTheRederivedCase) {
  const std::vector<std::string> bytes = AllBytes(LegalLog());
  LogVerifier v;
  for (size_t i = 0; i < bytes.size(); ++i) ASSERT_THAT(v.Add(i + 1, bytes[i]), IsOk());

  for (const char* id : {kA, kB, kC}) {
    SCOPED_TRACE(id);
    const v1::Case stored = (*v.FindCase(id));
    EXPECT_THAT(v.CheckSnapshot(stored), IsOk());

    std::vector<v1::Case> altered(6, stored);
    altered[0].set_state(v1::CASE_STATE_APPROVED);
    altered[1].set_version(stored.version() + 1);
    altered[2].set_findings("Nothing to see here.");
    altered[3].mutable_application()->set_destination_country("KP");
    altered[4].set_last_sequence(stored.last_sequence() - 1);
    altered[5].set_decided_by("rev-9");
    for (size_t i = 0; i < altered.size(); ++i) {
      absl::Status s = v.CheckSnapshot(altered[i]);
      EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss)) << "alteration " << i;
      EXPECT_THAT(std::string(s.message()), HasSubstr(id)) << "alteration " << i;
    }
  }
  v1::Case unknown;
  unknown.set_id("PRM-2026-000099");
  absl::Status s = v.CheckSnapshot(unknown);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(std::string(s.message()), HasSubstr("PRM-2026-000099"));
}

// --- Partial verification from a compact tree. -----------------------------

CompactTree TreeOf(const std::vector<std::string>& bytes, size_t n) {
  CompactTree t;
  for (size_t i = 0; i < n; ++i) t.Append(LeafHash(bytes[i]));
  return t;
}

TEST(LogVerifierTest, PartialVerificationReachesTheFullRoot) {
  const std::vector<v1::Event> events = LegalLog();
  const std::vector<std::string> bytes = AllBytes(events);
  const Hash full_root = ReferenceRoot(bytes);
  LogVerifier full;
  for (size_t i = 0; i < bytes.size(); ++i) ASSERT_THAT(full.Add(i + 1, bytes[i]), IsOk());
  for (size_t start = 0; start < bytes.size(); ++start) {
    SCOPED_TRACE(absl::StrCat("verifying from event ", start + 1));
    LogVerifier v(TreeOf(bytes, start));
    for (size_t i = start; i < bytes.size(); ++i) {
      ASSERT_THAT(v.Add(i + 1, bytes[i]), IsOk()) << "event " << i + 1;
    }
    EXPECT_EQ(v.size(), bytes.size());
    EXPECT_EQ(v.root(), full_root);

    // Cases whose first event in range is not their submit are on trust.
    std::set<std::string> seen;
    uint64_t on_trust = 0;
    for (size_t i = start; i < events.size(); ++i) {
      if (seen.insert(events[i].case_id()).second &&
          events[i].action() != v1::ACTION_SUBMIT) {
        ++on_trust;
      }
    }
    EXPECT_EQ(v.unchecked_cases(), on_trust);
    EXPECT_EQ(v.case_count(), seen.size());
    // Every case seen ends where the full verification has it.
    for (const std::string& id : seen) {
      SCOPED_TRACE(id);
      EXPECT_EQ((*v.FindCase(id)).state(), (*full.FindCase(id)).state());
      EXPECT_EQ((*v.FindCase(id)).version(), (*full.FindCase(id)).version());
      EXPECT_EQ((*v.FindCase(id)).last_sequence(), (*full.FindCase(id)).last_sequence());
      EXPECT_THAT(v.CheckSnapshot((*full.FindCase(id))), IsOk());
    }
  }
}

TEST(LogVerifierTest, PartialVerificationFromTheMiddle) {
  const std::vector<std::string> bytes = AllBytes(LegalLog());
  // From event 4: A (first seen at its approve) and B (at its review) are
  // taken on trust; C is submitted in range and checked in full.
  LogVerifier v(TreeOf(bytes, 3));
  EXPECT_EQ(v.size(), 3u);
  for (size_t i = 3; i < bytes.size(); ++i) {
    ASSERT_THAT(v.Add(i + 1, bytes[i]), IsOk()) << "event " << i + 1;
  }
  EXPECT_EQ(v.root(), ReferenceRoot(bytes));
  EXPECT_EQ(v.unchecked_cases(), 2u);
  EXPECT_EQ((*v.FindCase(kA)).state(), v1::CASE_STATE_REVOKED);
  EXPECT_EQ((*v.FindCase(kA)).version(), 6);
  EXPECT_EQ((*v.FindCase(kA)).last_sequence(), 9u);
  EXPECT_EQ((*v.FindCase(kB)).state(), v1::CASE_STATE_REJECTED);
  EXPECT_EQ((*v.FindCase(kC)).state(), v1::CASE_STATE_WITHDRAWN);

  // A snapshot of a case on trust is compared on version and state.
  LogVerifier full;
  for (size_t i = 0; i < bytes.size(); ++i) ASSERT_THAT(full.Add(i + 1, bytes[i]), IsOk());
  EXPECT_THAT(v.CheckSnapshot((*full.FindCase(kA))), IsOk());
  v1::Case wrong_state = (*full.FindCase(kA));
  wrong_state.set_state(v1::CASE_STATE_APPROVED);
  absl::Status s = v.CheckSnapshot(wrong_state);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(std::string(s.message()), HasSubstr(kA));
  v1::Case wrong_version = (*full.FindCase(kA));
  wrong_version.set_version(5);
  EXPECT_THAT(v.CheckSnapshot(wrong_version), StatusIs(absl::StatusCode::kDataLoss));
  // A case checked in full is compared field by field.
  v1::Case c = (*full.FindCase(kC));
  EXPECT_THAT(v.CheckSnapshot(c), IsOk());
  c.set_findings("edited");
  EXPECT_THAT(v.CheckSnapshot(c), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(LogVerifierTest, PartialVerificationStillChecksWhatItCan) {
  const std::vector<std::string> prefix = AllBytes({Submit(1, kA), Submit(2, kB)});
  {
    SCOPED_TRACE("the first event is not the next sequence number");
    LogVerifier v(TreeOf(prefix, 2));
    absl::Status s = v.Add(4, Bytes(Review(4, kA, 2, "acme", Reviewer("rev-1"))));
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_THAT(std::string(s.message()), NamesEvent(4));
  }
  {
    SCOPED_TRACE("a case on trust jumps a version");
    LogVerifier v(TreeOf(prefix, 2));
    ASSERT_THAT(v.Add(3, Bytes(Review(3, kA, 2, "acme", Reviewer("rev-1")))), IsOk());
    absl::Status s = v.Add(4, Bytes(Approve(4, kA, 4, "acme", Reviewer("rev-2"))));
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_THAT(std::string(s.message()), NamesEvent(4));
  }
  {
    SCOPED_TRACE("a case submitted in range breaks the rules");
    LogVerifier v(TreeOf(prefix, 2));
    ASSERT_THAT(v.Add(3, Bytes(Submit(3, kC))), IsOk());
    absl::Status s = v.Add(4, Bytes(Approve(4, kC, 2, "acme", Reviewer("rev-2"),
                                            v1::CASE_STATE_SUBMITTED)));
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_THAT(std::string(s.message()), NamesEvent(4));
    EXPECT_EQ(v.unchecked_cases(), 0u);
  }
  {
    SCOPED_TRACE("unparseable bytes");
    LogVerifier v(TreeOf(prefix, 2));
    absl::Status s = v.Add(3, std::string("\x08", 1));
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_THAT(std::string(s.message()), NamesEvent(3));
  }
}

// --- Applications kept as bytes. --------------------------------------------
// A submit's application is not parsed during replay; snapshots are still
// compared in full and FindCase still returns whole cases.

std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}

// `e` (a submit) serialized with `app` as its application's bytes.
std::string WithApplicationBytes(v1::Event e, const std::string& app) {
  e.clear_submit();
  const std::string submit = "\x0A" + Varint(app.size()) + app;
  return Bytes(e) + "\x5A" + Varint(submit.size()) + submit;
}

TEST(LogVerifierTest, CheckSnapshotBytesComparesTheWholeCase) {
  const std::vector<std::string> bytes = AllBytes(LegalLog());
  LogVerifier full;
  for (size_t i = 0; i < bytes.size(); ++i) ASSERT_THAT(full.Add(i + 1, bytes[i]), IsOk());
  LogVerifier v;
  for (size_t i = 0; i < bytes.size(); ++i) ASSERT_THAT(v.Add(i + 1, bytes[i]), IsOk());

  for (const char* id : {kA, kB, kC}) {
    SCOPED_TRACE(id);
    const v1::Case stored = *full.FindCase(id);
    ASSERT_TRUE(stored.has_application());
    EXPECT_THAT(v.CheckSnapshotBytes(id, stored.SerializeAsString()), IsOk());

    std::vector<v1::Case> altered(5, stored);
    altered[0].mutable_application()->set_destination_country("KP");
    altered[1].mutable_application()->mutable_end_user()->set_name("Someone Else Entirely Ltd");
    altered[2].clear_application();
    altered[3].set_last_reason("another reason altogether");
    altered[4].set_version(stored.version() + 1);
    for (size_t i = 0; i < altered.size(); ++i) {
      absl::Status s = v.CheckSnapshotBytes(id, altered[i].SerializeAsString());
      EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss)) << "alteration " << i;
      EXPECT_THAT(std::string(s.message()), HasSubstr(id)) << "alteration " << i;
    }
    // Still whole after the slow comparisons.
    EXPECT_THAT(v.CheckSnapshotBytes(id, stored.SerializeAsString()), IsOk());
  }
}

TEST(LogVerifierTest, FindCaseReturnsTheApplication) {
  const std::vector<std::string> bytes = AllBytes(LegalLog());
  LogVerifier v;
  for (size_t i = 0; i < bytes.size(); ++i) ASSERT_THAT(v.Add(i + 1, bytes[i]), IsOk());
  for (const char* id : {kA, kB, kC}) {
    SCOPED_TRACE(id);
    const v1::Case* c = v.FindCase(id);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->application().SerializeAsString(), ValidApplication().SerializeAsString());
    // Asking again gives the same.
    EXPECT_EQ(v.FindCase(id)->application().SerializeAsString(),
              ValidApplication().SerializeAsString());
  }
}

TEST(LogVerifierTest, UnusualApplicationBytesAreParsedAsBefore) {
  const std::string app = ValidApplication().SerializeAsString();
  {
    SCOPED_TRACE("an unknown field is kept");
    const std::string unknown = app + Varint(99 << 3) + Varint(1);
    LogVerifier v;
    ASSERT_THAT(v.Add(1, WithApplicationBytes(Submit(1, kA), unknown)), IsOk());
    const v1::Case c = *v.FindCase(kA);
    EXPECT_EQ(c.application().destination_country(), "JP");
    LogVerifier w;
    ASSERT_THAT(w.Add(1, WithApplicationBytes(Submit(1, kA), unknown)), IsOk());
    EXPECT_THAT(w.CheckSnapshotBytes(kA, c.SerializeAsString()), IsOk());
  }
  {
    SCOPED_TRACE("a field given twice: the last wins");
    const std::string twice = app + "\x22\x02KR";  // destination_country = "KR"
    LogVerifier v;
    ASSERT_THAT(v.Add(1, WithApplicationBytes(Submit(1, kA), twice)), IsOk());
    v1::Case c = *v.FindCase(kA);
    EXPECT_EQ(c.application().destination_country(), "KR");
    LogVerifier w;
    ASSERT_THAT(w.Add(1, WithApplicationBytes(Submit(1, kA), twice)), IsOk());
    EXPECT_THAT(w.CheckSnapshotBytes(kA, c.SerializeAsString()), IsOk());
    c.mutable_application()->set_destination_country("JP");
    EXPECT_THAT(w.CheckSnapshotBytes(kA, c.SerializeAsString()),
                StatusIs(absl::StatusCode::kDataLoss));
  }
  {
    SCOPED_TRACE("a string that is not UTF-8 does not parse");
    LogVerifier v;
    absl::Status s =
        v.Add(1, WithApplicationBytes(Submit(1, kA), app + std::string("\x22\x01\xC0", 3)));
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_THAT(std::string(s.message()), HasSubstr("do not parse"));
  }
  {
    SCOPED_TRACE("truncated application bytes do not parse");
    LogVerifier v;
    absl::Status s =
        v.Add(1, WithApplicationBytes(Submit(1, kA), app.substr(0, app.size() - 1)));
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss));
  }
  {
    SCOPED_TRACE("an empty application");
    LogVerifier v;
    ASSERT_THAT(v.Add(1, WithApplicationBytes(Submit(1, kA), "")), IsOk());
    EXPECT_TRUE(v.FindCase(kA)->has_application());
    EXPECT_EQ(v.FindCase(kA)->application().ByteSizeLong(), 0u);
  }
}

}  // namespace
}  // namespace permit::testing
