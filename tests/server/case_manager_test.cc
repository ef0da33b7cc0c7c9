// Tests of server/case_manager.h, the domain service without gRPC: actions
// through the rules, idempotent retries (also across reopen), group commit,
// storage failures, read visibility per role, and log reads. Batches are
// made deterministic by holding the writer at a gate in the store's Append
// while the actions to batch queue up behind it.
#include "server/case_manager.h"

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "core/merkle.h"
#include "core/validation.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/rocksdb_event_store.h"
#include "tests/server/forwarding_store.h"
#include "tests/test_util.h"

namespace permit::server {
namespace {

using ::permit::testing::Auditor;
using ::permit::testing::Exporter;
using ::permit::testing::IsOk;
using ::permit::testing::Reviewer;
using ::permit::testing::StatusIs;
using ::permit::testing::TempDir;
using ::permit::testing::ValidApplication;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Lt;
using ::testing::SizeIs;

// Holds the writer inside one Append: `entered` is notified when the
// writer gets there, and it stays there until `release` is notified.
struct Gate {
  absl::Notification entered;
  absl::Notification release;
};

// Forwards to a real store; can be slowed down (to force batching), held at
// a gate (to queue actions behind a write in progress) or made to fail (to
// simulate a full or broken disk). Counts appends.
class TestStore final : public testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;

  absl::Status Append(const std::vector<storage::PendingEvent>& batch,
                      uint64_t new_cases) override {
    // Only the first Append after the gate is set waits at it.
    if (Gate* g = gate.exchange(nullptr); g != nullptr) {
      g->entered.Notify();
      g->release.WaitForNotification();
    }
    if (delay > absl::ZeroDuration()) absl::SleepFor(delay);
    appends.fetch_add(1);
    events_appended.fetch_add(batch.size());
    if (fail.load()) return absl::UnavailableError("simulated disk failure");
    return ForwardingStore::Append(batch, new_cases);
  }

  absl::Duration delay = absl::ZeroDuration();
  std::atomic<Gate*> gate{nullptr};
  std::atomic<bool> fail{false};
  std::atomic<int> appends{0};
  std::atomic<int> events_appended{0};
};

const absl::Time kNow = absl::FromCivil(absl::CivilSecond(2026, 3, 1, 12, 0, 0),
                                        absl::UTCTimeZone());

class CaseManagerTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    auto rocks = storage::RocksDbEventStore::Open(dir_.path() + "/db");
    ASSERT_THAT(rocks, IsOk());
    auto store = std::make_unique<TestStore>(*std::move(rocks));
    store_ = store.get();
    CaseManager::Options options;
    options.clock = [this] {
      absl::MutexLock lock(&clock_mu_);
      return now_;
    };
    auto manager = CaseManager::Create(std::move(store), options);
    ASSERT_THAT(manager, IsOk());
    manager_ = *std::move(manager);
  }

  void Reopen() {
    manager_.reset();
    Open();
  }

  // Runs one action and waits for its result.
  template <typename Request>
  absl::StatusOr<v1::Case> Run(
      void (CaseManager::*action)(const v1::Actor&, const Request&,
                                  CaseManager::Done, absl::Time),
      const v1::Actor& actor, const Request& r) {
    absl::StatusOr<v1::Case> result;
    absl::Notification done;
    (manager_.get()->*action)(
        actor, r,
        [&](absl::StatusOr<v1::Case> c) {
          result = std::move(c);
          done.Notify();
        },
        absl::InfiniteFuture());
    done.WaitForNotification();
    return result;
  }

  absl::StatusOr<v1::Case> Submit(const v1::Actor& actor = Exporter(),
                                  const std::string& request_id = "") {
    v1::SubmitCaseRequest r;
    r.set_request_id(request_id.empty() ? "submit-" + std::to_string(++counter_)
                                        : request_id);
    *r.mutable_application() = ValidApplication();
    return Run(&CaseManager::Submit, actor, r);
  }

  absl::StatusOr<v1::Case> Review(const v1::Case& c, const v1::Actor& actor,
                                  const std::string& request_id = "") {
    v1::ReviewCaseRequest r;
    r.set_request_id(request_id.empty() ? "review-" + std::to_string(++counter_)
                                        : request_id);
    r.set_case_id(c.id());
    r.set_expected_version(c.version());
    r.set_recommendation(v1::RECOMMENDATION_APPROVE);
    r.set_findings("End user checked against the consolidated list.");
    return Run(&CaseManager::Review, actor, r);
  }

  absl::StatusOr<v1::Case> Approve(const v1::Case& c, const v1::Actor& actor) {
    v1::ApproveCaseRequest r;
    r.set_request_id("approve-" + std::to_string(++counter_));
    r.set_case_id(c.id());
    r.set_expected_version(c.version());
    r.mutable_valid_until()->set_seconds(absl::ToUnixSeconds(kNow + absl::Hours(24 * 300)));
    return Run(&CaseManager::Approve, actor, r);
  }

  template <typename Request>
  Request ReasonRequest(const v1::Case& c, const std::string& reason) {
    Request r;
    r.set_request_id("act-" + std::to_string(++counter_));
    r.set_case_id(c.id());
    r.set_expected_version(c.version());
    r.set_reason(reason);
    return r;
  }

  // Sets `gate` and submits an unrelated case on `thread`, returning once
  // the writer is held in that case's Append with nothing left queued: every
  // action started from now on waits in the queue until gate->release, and
  // then they all go into one batch. The submit's result goes to `*result`.
  void HoldWriter(Gate* gate, std::thread* thread,
                  absl::StatusOr<v1::Case>* result) {
    store_->gate = gate;
    v1::SubmitCaseRequest r;
    r.set_request_id("unrelated-" + std::to_string(++counter_));
    *r.mutable_application() = ValidApplication();
    *thread = std::thread(
        [this, r, result] { *result = Run(&CaseManager::Submit, Exporter(), r); });
    EXPECT_TRUE(gate->entered.WaitForNotificationWithTimeout(absl::Seconds(10)));
    EXPECT_EQ(manager_->QueuedActions(), 0u);
  }

  // Polls QueuedActions() until it is `n`; false if it is not within 10 s.
  bool AwaitQueuedActions(size_t n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (manager_->QueuedActions() != n) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(1));
    }
    return true;
  }

  void SetClock(absl::Time t) {
    absl::MutexLock lock(&clock_mu_);
    now_ = t;
  }

  absl::Mutex clock_mu_;
  absl::Time now_ ABSL_GUARDED_BY(clock_mu_) = kNow;
  TempDir dir_;
  TestStore* store_ = nullptr;
  std::unique_ptr<CaseManager> manager_;
  int counter_ = 0;
};

TEST_F(CaseManagerTest, LifecycleMovesThroughStatesAndVersions) {
  absl::StatusOr<v1::Case> c = Submit();
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->id(), "PRM-2026-000001");
  EXPECT_EQ(c->organisation(), "acme");
  EXPECT_EQ(c->state(), v1::CASE_STATE_SUBMITTED);
  EXPECT_EQ(c->version(), 1);

  c = Review(*c, Reviewer("rev-1"));
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->state(), v1::CASE_STATE_REVIEWED);
  EXPECT_EQ(c->reviewed_by(), "rev-1");

  c = Approve(*c, Reviewer("rev-2"));
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->state(), v1::CASE_STATE_APPROVED);
  EXPECT_EQ(c->decided_by(), "rev-2");
  // No valid_from sent: the server's time of acceptance.
  EXPECT_EQ(c->valid_from().seconds(), absl::ToUnixSeconds(kNow));

  c = Run(&CaseManager::Suspend, Reviewer("rev-1"),
          ReasonRequest<v1::SuspendCaseRequest>(*c, "Policy change"));
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->state(), v1::CASE_STATE_SUSPENDED);
  EXPECT_EQ(c->suspended_from(), v1::CASE_STATE_APPROVED);

  c = Run(&CaseManager::Resume, Reviewer("rev-2"),
          ReasonRequest<v1::ResumeCaseRequest>(*c, "Policy clarified"));
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->state(), v1::CASE_STATE_APPROVED);
  EXPECT_EQ(c->version(), 5);
  EXPECT_EQ(c->last_sequence(), 5u);

  absl::StatusOr<std::vector<v1::Event>> history =
      manager_->GetCaseHistory(Exporter(), c->id());
  ASSERT_THAT(history, IsOk());
  std::vector<v1::Action> actions;
  for (const v1::Event& e : *history) actions.push_back(e.action());
  EXPECT_THAT(actions, ElementsAre(v1::ACTION_SUBMIT, v1::ACTION_REVIEW,
                                   v1::ACTION_APPROVE, v1::ACTION_SUSPEND,
                                   v1::ACTION_RESUME));
  EXPECT_EQ((*history)[2].actor().principal_id(), "rev-2");
  EXPECT_EQ((*history)[0].time().seconds(), absl::ToUnixSeconds(kNow));
}

TEST_F(CaseManagerTest, InvalidRequestWritesNothing) {
  v1::SubmitCaseRequest r;
  r.set_request_id("bad-1");
  *r.mutable_application() = ValidApplication();
  r.mutable_application()->mutable_goods(0)->set_hs_code("12");
  r.mutable_application()->set_destination_country("XX");
  absl::StatusOr<v1::Case> c = Run(&CaseManager::Submit, Exporter(), r);
  EXPECT_THAT(c, StatusIs(absl::StatusCode::kInvalidArgument));
  std::vector<core::FieldViolation> v = core::ViolationsOf(c.status());
  ASSERT_THAT(v, SizeIs(2));
  EXPECT_EQ(v[0].field, "application.goods[0].hs_code");
  EXPECT_EQ(v[1].field, "application.destination_country");
  EXPECT_EQ(manager_->LogSize(), 0u);
}

TEST_F(CaseManagerTest, RetriedRequestReturnsOriginalResultAndWritesNothing) {
  absl::StatusOr<v1::Case> first = Submit(Exporter(), "same-id");
  ASSERT_THAT(first, IsOk());
  absl::StatusOr<v1::Case> reviewed = Review(*first, Reviewer("rev-1"));
  ASSERT_THAT(reviewed, IsOk());
  const uint64_t size = manager_->LogSize();

  // The case moved on, yet the retry answers with the case as it was.
  absl::StatusOr<v1::Case> retry = Submit(Exporter(), "same-id");
  ASSERT_THAT(retry, IsOk());
  EXPECT_EQ(retry->id(), first->id());
  EXPECT_EQ(retry->version(), 1);
  EXPECT_EQ(retry->state(), v1::CASE_STATE_SUBMITTED);
  EXPECT_EQ(manager_->LogSize(), size);
}

TEST_F(CaseManagerTest, RequestIdReusedForDifferentContentIsRefused) {
  ASSERT_THAT(Submit(Exporter(), "dup"), IsOk());
  v1::SubmitCaseRequest r;
  r.set_request_id("dup");
  *r.mutable_application() = ValidApplication();
  r.mutable_application()->set_requested_validity_months(24);
  absl::StatusOr<v1::Case> c = Run(&CaseManager::Submit, Exporter(), r);
  EXPECT_THAT(c, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("request_id"));
  EXPECT_EQ(manager_->LogSize(), 1u);
}

// The fingerprint is SHA-256 of "<action number>:" and the request
// serialized deterministically without its request id. CaseManager cuts the
// id's bytes out of the serialization instead of clearing it on a copy; the
// stored record must be what the definition gives (records written by older
// permitd versions were made from a copy), for ids whose length takes one
// varint byte and two.
TEST_F(CaseManagerTest, StoredFingerprintIsTheRequestWithoutItsId) {
  for (const std::string& id : {std::string("short-id"), std::string(128, 'x')}) {
    v1::SubmitCaseRequest r;
    r.set_request_id(id);
    *r.mutable_application() = ValidApplication();
    ASSERT_THAT(Run(&CaseManager::Submit, Exporter(), r), IsOk());

    v1::SubmitCaseRequest without_id = r;
    without_id.clear_request_id();
    std::string bytes = absl::StrCat(static_cast<int>(v1::ACTION_SUBMIT), ":");
    {
      google::protobuf::io::StringOutputStream raw(&bytes);
      google::protobuf::io::CodedOutputStream out(&raw);
      out.SetSerializationDeterministic(true);
      without_id.SerializeToCodedStream(&out);
    }
    absl::StatusOr<std::optional<storage::RequestRecord>> record =
        store_->GetRequest(Exporter().principal_id(), id);
    ASSERT_THAT(record, IsOk());
    ASSERT_TRUE(record->has_value()) << id;
    EXPECT_EQ((*record)->fingerprint(), core::AsBytes(core::Sha256(bytes))) << id;

    // A retry is recognised; a one-byte change of the body is not.
    EXPECT_THAT(Run(&CaseManager::Submit, Exporter(), r), IsOk());
    r.mutable_application()->set_requested_validity_months(
        r.application().requested_validity_months() + 1);
    EXPECT_THAT(Run(&CaseManager::Submit, Exporter(), r),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
  EXPECT_EQ(manager_->LogSize(), 2u);
}

TEST_F(CaseManagerTest, RequestIdsAreScopedPerPrincipal) {
  absl::StatusOr<v1::Case> a = Submit(Exporter("exp-acme", "acme"), "r1");
  absl::StatusOr<v1::Case> b = Submit(Exporter("exp-globex", "globex"), "r1");
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_NE(a->id(), b->id());
  EXPECT_EQ(b->organisation(), "globex");
}

TEST_F(CaseManagerTest, IdempotencySurvivesReopen) {
  absl::StatusOr<v1::Case> first = Submit(Exporter(), "durable-id");
  ASSERT_THAT(first, IsOk());
  Reopen();
  absl::StatusOr<v1::Case> retry = Submit(Exporter(), "durable-id");
  ASSERT_THAT(retry, IsOk());
  EXPECT_EQ(retry->id(), first->id());
  EXPECT_EQ(manager_->LogSize(), 1u);
  // Case numbering continues after a reopen; numbers are never reused.
  absl::StatusOr<v1::Case> next = Submit();
  ASSERT_THAT(next, IsOk());
  EXPECT_EQ(next->id(), "PRM-2026-000002");
}

TEST_F(CaseManagerTest, ConcurrentActionsShareSyncedBatches) {
  store_->delay = absl::Milliseconds(20);  // a slow disk
  constexpr int kThreads = 64;
  std::vector<absl::StatusOr<v1::Case>> results(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      v1::SubmitCaseRequest r;
      r.set_request_id("c-" + std::to_string(i));
      *r.mutable_application() = ValidApplication();
      results[i] = Run(&CaseManager::Submit, Exporter(), r);
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> ids;
  for (const auto& r : results) {
    ASSERT_THAT(r, IsOk());
    ids.insert(r->id());
  }
  EXPECT_THAT(ids, SizeIs(kThreads));
  EXPECT_EQ(manager_->LogSize(), static_cast<uint64_t>(kThreads));
  // Far fewer synced writes than requests: group commit.
  EXPECT_THAT(store_->appends.load(), Lt(kThreads / 2));
}

TEST_F(CaseManagerTest, DuplicateRequestsInOneBatchActOnce) {
  Gate gate;
  std::thread unrelated;
  absl::StatusOr<v1::Case> unrelated_result;
  HoldWriter(&gate, &unrelated, &unrelated_result);

  // The same request twice, both queued behind the held write: they are
  // committed together in the next batch.
  v1::SubmitCaseRequest r;
  r.set_request_id("twice");
  *r.mutable_application() = ValidApplication();
  std::vector<absl::StatusOr<v1::Case>> results(2);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back(
        [&, i] { results[i] = Run(&CaseManager::Submit, Exporter(), r); });
  }
  const bool both_queued = AwaitQueuedActions(2);
  gate.release.Notify();
  for (auto& t : threads) t.join();
  unrelated.join();
  ASSERT_TRUE(both_queued) << "queued: " << manager_->QueuedActions();

  ASSERT_THAT(unrelated_result, IsOk());
  ASSERT_THAT(results[0], IsOk());
  ASSERT_THAT(results[1], IsOk());
  EXPECT_EQ(results[0]->id(), results[1]->id());
  EXPECT_NE(results[0]->id(), unrelated_result->id());
  EXPECT_EQ(manager_->LogSize(), 2u);
  // One write for the held submit, one for the batch with both duplicates.
  EXPECT_EQ(store_->appends.load(), 2);
  EXPECT_EQ(store_->events_appended.load(), 2);
}

TEST_F(CaseManagerTest, ActionWhoseDeadlinePassedInTheQueueIsDroppedUnwritten) {
  Gate gate;
  std::thread unrelated;
  absl::StatusOr<v1::Case> unrelated_result;
  HoldWriter(&gate, &unrelated, &unrelated_result);

  // Queued behind the held write with a deadline that passes while it waits,
  // next to one without a deadline.
  v1::SubmitCaseRequest late;
  late.set_request_id("late");
  *late.mutable_application() = ValidApplication();
  v1::SubmitCaseRequest patient = late;
  patient.set_request_id("patient");
  absl::StatusOr<v1::Case> late_result, patient_result;
  absl::Notification late_done, patient_done;
  manager_->Submit(
      Exporter(), late,
      [&](absl::StatusOr<v1::Case> c) {
        late_result = std::move(c);
        late_done.Notify();
      },
      absl::Now() + absl::Milliseconds(50));
  manager_->Submit(Exporter(), patient, [&](absl::StatusOr<v1::Case> c) {
    patient_result = std::move(c);
    patient_done.Notify();
  });
  const bool queued = AwaitQueuedActions(2);
  absl::SleepFor(absl::Milliseconds(100));
  gate.release.Notify();
  late_done.WaitForNotification();
  patient_done.WaitForNotification();
  unrelated.join();
  ASSERT_TRUE(queued);

  EXPECT_THAT(late_result, StatusIs(absl::StatusCode::kDeadlineExceeded,
                                    HasSubstr("nothing was written")));
  ASSERT_THAT(patient_result, IsOk());
  // The held submit and the patient one: the late one left no event.
  EXPECT_EQ(manager_->LogSize(), 2u);
  // A retry with the same request id acts now.
  EXPECT_THAT(Run(&CaseManager::Submit, Exporter(), late), IsOk());
  EXPECT_EQ(manager_->LogSize(), 3u);
}

TEST_F(CaseManagerTest, TwoActionsOnOneCaseInOneBatch) {
  absl::StatusOr<v1::Case> c = Submit();
  ASSERT_THAT(c, IsOk());
  const int appends_before = store_->appends.load();
  Gate gate;
  std::thread unrelated;
  absl::StatusOr<v1::Case> unrelated_result;
  HoldWriter(&gate, &unrelated, &unrelated_result);

  // Two reviewers review the same version in the same batch: the first one
  // the writer takes wins, the second finds the case moved on.
  const std::vector<std::string> reviewers = {"rev-1", "rev-2"};
  std::vector<absl::StatusOr<v1::Case>> results(2);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    v1::ReviewCaseRequest r;
    r.set_request_id("race-" + reviewers[i]);
    r.set_case_id(c->id());
    r.set_expected_version(c->version());
    r.set_recommendation(v1::RECOMMENDATION_APPROVE);
    r.set_findings("Checked by " + reviewers[i]);
    threads.emplace_back([&, i, r] {
      results[i] = Run(&CaseManager::Review, Reviewer(reviewers[i]), r);
    });
  }
  const bool both_queued = AwaitQueuedActions(2);
  gate.release.Notify();
  for (auto& t : threads) t.join();
  unrelated.join();
  ASSERT_TRUE(both_queued) << "queued: " << manager_->QueuedActions();
  ASSERT_THAT(unrelated_result, IsOk());

  int ok = 0;
  int aborted = 0;
  std::string winner;
  for (int i = 0; i < 2; ++i) {
    if (results[i].ok()) {
      ++ok;
      winner = reviewers[i];
    } else if (absl::IsAborted(results[i].status())) {
      ++aborted;
    } else {
      ADD_FAILURE() << reviewers[i] << ": " << results[i].status();
    }
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(aborted, 1);
  // The case, the unrelated case and one review: the log grew by one event
  // for the two reviews, written in one batch after the held one.
  EXPECT_EQ(manager_->LogSize(), 3u);
  EXPECT_EQ(store_->appends.load(), appends_before + 2);
  absl::StatusOr<v1::Case> now = manager_->GetCase(Auditor(), c->id());
  ASSERT_THAT(now, IsOk());
  EXPECT_EQ(now->version(), 2);
  EXPECT_EQ(now->state(), v1::CASE_STATE_REVIEWED);
  EXPECT_EQ(now->reviewed_by(), winner);
}

TEST_F(CaseManagerTest, FailedWriteAnswersNoOkAndWritesNothing) {
  ASSERT_THAT(Submit(), IsOk());
  store_->fail = true;
  EXPECT_THAT(Submit(), StatusIs(absl::StatusCode::kUnavailable));
  store_->fail = false;
  EXPECT_EQ(manager_->LogSize(), 1u);
}

TEST_F(CaseManagerTest, RefusalsCarryTheRightCode) {
  absl::StatusOr<v1::Case> c = Submit();
  ASSERT_THAT(c, IsOk());
  // Wrong role.
  EXPECT_THAT(Review(*c, Exporter()), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(Review(*c, Auditor()), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(Submit(Reviewer("rev-1")), StatusIs(absl::StatusCode::kPermissionDenied));
  // Another organisation's case does not exist for an exporter.
  v1::WithdrawCaseRequest w = ReasonRequest<v1::WithdrawCaseRequest>(*c, "");
  EXPECT_THAT(Run(&CaseManager::Withdraw, Exporter("exp-globex", "globex"), w),
              StatusIs(absl::StatusCode::kNotFound));
  // Wrong state.
  EXPECT_THAT(Approve(*c, Reviewer("rev-2")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // Stale version.
  absl::StatusOr<v1::Case> reviewed = Review(*c, Reviewer("rev-1"));
  ASSERT_THAT(reviewed, IsOk());
  EXPECT_THAT(Approve(*c, Reviewer("rev-2")), StatusIs(absl::StatusCode::kAborted));
  // Four eyes.
  EXPECT_THAT(Approve(*reviewed, Reviewer("rev-1")),
              StatusIs(absl::StatusCode::kPermissionDenied));
  // No such case.
  v1::Case ghost;
  ghost.set_id("PRM-2026-999999");
  ghost.set_version(1);
  EXPECT_THAT(Review(ghost, Reviewer("rev-1")), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(manager_->LogSize(), 2u);
}

TEST_F(CaseManagerTest, ExportersSeeOnlyTheirOrganisation) {
  ASSERT_THAT(Submit(Exporter("exp-acme", "acme")), IsOk());
  absl::StatusOr<v1::Case> globex = Submit(Exporter("exp-globex", "globex"));
  ASSERT_THAT(globex, IsOk());

  EXPECT_THAT(manager_->GetCase(Exporter(), globex->id()),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(manager_->GetCaseHistory(Exporter(), globex->id()),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(manager_->GetCase(Auditor(), globex->id()), IsOk());

  v1::ListCasesRequest list;
  absl::StatusOr<v1::ListCasesResponse> mine = manager_->ListCases(Exporter(), list);
  ASSERT_THAT(mine, IsOk());
  ASSERT_THAT(mine->cases(), SizeIs(1));
  EXPECT_EQ(mine->cases(0).organisation(), "acme");
  list.set_organisation("globex");
  EXPECT_THAT(manager_->ListCases(Exporter(), list),
              StatusIs(absl::StatusCode::kPermissionDenied));
  absl::StatusOr<v1::ListCasesResponse> all =
      manager_->ListCases(Reviewer("rev-1"), v1::ListCasesRequest());
  ASSERT_THAT(all, IsOk());
  EXPECT_THAT(all->cases(), SizeIs(2));

  std::vector<v1::LogEntry> entries;
  CaseManager::LogQuery q;
  ASSERT_THAT(manager_->ReadLog(Exporter(), q, 100, 1 << 20, &entries), IsOk());
  ASSERT_THAT(entries, SizeIs(1));
  EXPECT_EQ(entries[0].event().organisation(), "acme");
  q.case_id = globex->id();
  EXPECT_THAT(manager_->CheckLogQuery(Exporter(), q),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(CaseManagerTest, ListCasesPagesInIdOrder) {
  for (int i = 0; i < 7; ++i) ASSERT_THAT(Submit(), IsOk());
  v1::ListCasesRequest r;
  r.set_page_size(3);
  std::vector<std::string> ids;
  for (int page = 0; page < 5; ++page) {
    absl::StatusOr<v1::ListCasesResponse> resp =
        manager_->ListCases(Reviewer("rev-1"), r);
    ASSERT_THAT(resp, IsOk());
    for (const v1::Case& c : resp->cases()) ids.push_back(c.id());
    if (resp->next_page_token().empty()) break;
    r.set_page_token(resp->next_page_token());
  }
  ASSERT_THAT(ids, SizeIs(7));
  EXPECT_EQ(ids.front(), "PRM-2026-000001");
  EXPECT_EQ(ids.back(), "PRM-2026-000007");
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));

  r.set_page_token("not-a-token");
  EXPECT_THAT(manager_->ListCases(Reviewer("rev-1"), r),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(CaseManagerTest, ReadLogBytesRebuildTheHeadRoot) {
  for (int i = 0; i < 5; ++i) ASSERT_THAT(Submit(), IsOk());
  std::vector<v1::LogEntry> entries;
  CaseManager::LogQuery q;
  q.include_event_bytes = true;
  absl::StatusOr<uint64_t> next =
      manager_->ReadLog(Auditor(), q, 100, 1 << 20, &entries);
  ASSERT_THAT(next, IsOk());
  EXPECT_EQ(*next, 6u);
  std::vector<core::Hash> leaves;
  for (const v1::LogEntry& e : entries) leaves.push_back(core::LeafHash(e.event_bytes()));
  EXPECT_EQ(std::string(core::AsBytes(core::RootFromLeafHashes(leaves))),
            manager_->GetLogHead(Auditor()).root_hash());

  // Limits: at most two entries per call, continuing where it stopped.
  entries.clear();
  next = manager_->ReadLog(Auditor(), q, 2, 1 << 20, &entries);
  ASSERT_THAT(next, IsOk());
  EXPECT_EQ(*next, 3u);
  EXPECT_THAT(entries, SizeIs(2));
}

TEST_F(CaseManagerTest, SubscribersHearOfCommitsUntilUnsubscribed) {
  absl::Mutex mu;
  uint64_t seen = 0;
  absl::StatusOr<int> id = manager_->Subscribe([&](uint64_t size) {
    absl::MutexLock lock(&mu);
    seen = size;
  });
  ASSERT_THAT(id, IsOk());
  ASSERT_THAT(Submit(), IsOk());
  {
    absl::MutexLock lock(&mu);
    EXPECT_TRUE(mu.AwaitWithTimeout(
        absl::Condition(+[](uint64_t* s) { return *s == 1; }, &seen),
        absl::Seconds(10)));
  }
  manager_->Unsubscribe(*id);
  ASSERT_THAT(Submit(), IsOk());
  // The notifier reports the second commit to nobody.
  absl::SleepFor(absl::Milliseconds(100));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(seen, 1u);
}

TEST_F(CaseManagerTest, SubscribersHearOfShutdownAndLateOnesAreRefused) {
  absl::Notification told;
  absl::StatusOr<int> id = manager_->Subscribe([&](uint64_t size) {
    if (size == 0) told.Notify();
  });
  ASSERT_THAT(id, IsOk());
  manager_->Shutdown();
  EXPECT_TRUE(told.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_THAT(manager_->Subscribe([](uint64_t) {}),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(CaseManagerTest, EventTimesNeverGoBackwards) {
  absl::StatusOr<v1::Case> first = Submit();
  ASSERT_THAT(first, IsOk());
  SetClock(kNow - absl::Hours(1));  // the system clock is set back
  absl::StatusOr<v1::Case> second = Submit();
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(second->create_time().seconds(), absl::ToUnixSeconds(kNow));
  SetClock(kNow + absl::Hours(1));
  absl::StatusOr<v1::Case> third = Submit();
  ASSERT_THAT(third, IsOk());
  EXPECT_EQ(third->create_time().seconds(), absl::ToUnixSeconds(kNow + absl::Hours(1)));
}

TEST_F(CaseManagerTest, ShutdownRefusesNewActions) {
  manager_->Shutdown();
  EXPECT_THAT(Submit(), StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace permit::server
