// Integration tests: permitd in-process on a free loopback port, driven
// through the C++ SDK exactly as users drive it. Covers the walkthrough,
// every refusal with its exact gRPC code, field violations decoded from the
// status details, cross-organisation isolation, log reads and WatchLog.
#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "core/merkle.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "permit/client.h"
#include "server/server.h"
#include "tests/test_util.h"

namespace permit::server {
namespace {

using ::permit::testing::IsOk;
using ::permit::testing::StatusIs;
using ::permit::testing::TempDir;
using ::permit::testing::ValidApplication;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

class IntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string json = "{\"principals\": [";
    const std::vector<std::array<std::string, 3>> principals = {
        {"exp-acme", "exporter", "acme"},
        {"exp-globex", "exporter", "globex"},
        {"rev-1", "reviewer", ""},
        {"rev-2", "reviewer", ""},
        {"aud-1", "auditor", ""}};
    for (size_t i = 0; i < principals.size(); ++i) {
      const auto& [id, role, org] = principals[i];
      json += (i ? "," : "") + std::string("{\"id\":\"") + id + "\",\"role\":\"" +
              role + "\"" + (org.empty() ? "" : ",\"org\":\"" + org + "\"") +
              ",\"token_sha256\":\"" + TokenSha256Hex("token-" + id) + "\"}";
    }
    json += "]}";
    absl::StatusOr<PrincipalRegistry> registry = PrincipalRegistry::Parse(json);
    ASSERT_THAT(registry, IsOk());
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.db_path = dir_.path() + "/db";
    options.principals = *std::move(registry);
    options.shutdown_grace = absl::Seconds(1);
    absl::StatusOr<std::unique_ptr<PermitServer>> server =
        PermitServer::Start(std::move(options));
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    for (const auto& p : principals) clients_[p[0]] = Connect("token-" + p[0]);
    clients_["anonymous"] = Connect("");
    clients_["forger"] = Connect("not-a-token");
  }

  void TearDown() override {
    clients_.clear();
    if (server_) server_->Shutdown();
  }

  std::unique_ptr<Client> Connect(const std::string& token) {
    ClientOptions options;
    options.address = "127.0.0.1:" + std::to_string(server_->port());
    options.token = token;
    options.deadline = absl::Seconds(5);
    options.max_attempts = 1;
    absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(options);
    EXPECT_THAT(c, IsOk());
    return *std::move(c);
  }

  Client& as(const std::string& who) { return *clients_.at(who); }

  absl::StatusOr<v1::Case> Submit(const std::string& who = "exp-acme") {
    v1::SubmitCaseRequest r;
    *r.mutable_application() = ValidApplication();
    return as(who).SubmitCase(r);
  }

  absl::StatusOr<v1::Case> Review(const v1::Case& c, const std::string& who) {
    v1::ReviewCaseRequest r;
    r.set_case_id(c.id());
    r.set_expected_version(c.version());
    r.set_recommendation(v1::RECOMMENDATION_APPROVE);
    r.set_findings("Checked.");
    return as(who).ReviewCase(r);
  }

  absl::StatusOr<v1::Case> Approve(const v1::Case& c, const std::string& who) {
    v1::ApproveCaseRequest r;
    r.set_case_id(c.id());
    r.set_expected_version(c.version());
    r.mutable_valid_until()->set_seconds(
        absl::ToUnixSeconds(absl::Now() + absl::Hours(24 * 365)));
    r.set_conditions("No re-export without authorisation.");
    return as(who).ApproveCase(r);
  }

  template <typename Request>
  static Request Reason(const v1::Case& c, const std::string& reason) {
    Request r;
    r.set_case_id(c.id());
    r.set_expected_version(c.version());
    r.set_reason(reason);
    return r;
  }

  std::vector<v1::Event> ReadAll(const std::string& who, bool bytes = false) {
    std::vector<v1::Event> out;
    v1::ReadLogRequest r;
    r.set_include_event_bytes(bytes);
    EXPECT_THAT(as(who).ReadLog(r, [&](const v1::LogEntry& e) {
      out.push_back(e.event());
      if (bytes) leaf_hashes_.push_back(core::LeafHash(e.event_bytes()));
      return true;
    }),
                IsOk());
    return out;
  }

  TempDir dir_;
  std::unique_ptr<PermitServer> server_;
  std::map<std::string, std::unique_ptr<Client>> clients_;
  std::vector<core::Hash> leaf_hashes_;
};

TEST_F(IntegrationTest, WalkthroughFromFilingToResumedLicence) {
  absl::StatusOr<v1::Case> c = Submit();
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->state(), v1::CASE_STATE_SUBMITTED);
  c = Review(*c, "rev-1");
  ASSERT_THAT(c, IsOk());
  EXPECT_THAT(Approve(*c, "rev-1"), StatusIs(absl::StatusCode::kPermissionDenied));
  c = Approve(*c, "rev-2");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->state(), v1::CASE_STATE_APPROVED);
  c = as("rev-2").SuspendCase(Reason<v1::SuspendCaseRequest>(*c, "Policy change"));
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->state(), v1::CASE_STATE_SUSPENDED);
  c = as("rev-1").ResumeCase(Reason<v1::ResumeCaseRequest>(*c, "Clarified"));
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->state(), v1::CASE_STATE_APPROVED);

  // The exporter sees every change on its case.
  absl::StatusOr<v1::GetCaseHistoryResponse> h = as("exp-acme").GetCaseHistory(c->id());
  ASSERT_THAT(h, IsOk());
  ASSERT_THAT(h->events(), SizeIs(5));
  EXPECT_EQ(h->events(1).actor().principal_id(), "rev-1");
  EXPECT_EQ(h->events(2).actor().principal_id(), "rev-2");

  // The auditor replays the whole log, in order, and it hashes to the head.
  std::vector<v1::Event> events = ReadAll("aud-1", /*bytes=*/true);
  ASSERT_THAT(events, SizeIs(5));
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].sequence(), i + 1);
  absl::StatusOr<v1::LogHead> head = as("aud-1").GetLogHead();
  ASSERT_THAT(head, IsOk());
  EXPECT_EQ(head->tree_size(), 5u);
  EXPECT_EQ(head->root_hash(),
            std::string(core::AsBytes(core::RootFromLeafHashes(leaf_hashes_))));
}

TEST_F(IntegrationTest, EveryRefusalHasItsCode) {
  absl::StatusOr<v1::Case> c = Submit();
  ASSERT_THAT(c, IsOk());
  // Authentication.
  EXPECT_THAT(as("anonymous").GetCase(c->id()),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(as("forger").GetCase(c->id()),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(as("forger").GetLogHead(), StatusIs(absl::StatusCode::kUnauthenticated));
  // Roles.
  EXPECT_THAT(Submit("rev-1"), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(Submit("aud-1"), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(Review(*c, "exp-acme"), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(Review(*c, "aud-1"), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(as("rev-1").WithdrawCase(Reason<v1::WithdrawCaseRequest>(*c, "")),
              StatusIs(absl::StatusCode::kPermissionDenied));
  // Organisation.
  EXPECT_THAT(as("exp-globex").WithdrawCase(Reason<v1::WithdrawCaseRequest>(*c, "")),
              StatusIs(absl::StatusCode::kNotFound));
  // State.
  EXPECT_THAT(as("rev-1").RevokeCase(Reason<v1::RevokeCaseRequest>(*c, "x")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(as("rev-1").ResumeCase(Reason<v1::ResumeCaseRequest>(*c, "x")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // Version.
  absl::StatusOr<v1::Case> reviewed = Review(*c, "rev-1");
  ASSERT_THAT(reviewed, IsOk());
  EXPECT_THAT(as("rev-2").RejectCase(Reason<v1::RejectCaseRequest>(*c, "x")),
              StatusIs(absl::StatusCode::kAborted));
  // Four eyes.
  EXPECT_THAT(as("rev-1").RejectCase(Reason<v1::RejectCaseRequest>(*reviewed, "x")),
              StatusIs(absl::StatusCode::kPermissionDenied));
  // Final states stay final.
  absl::StatusOr<v1::Case> rejected =
      as("rev-2").RejectCase(Reason<v1::RejectCaseRequest>(*reviewed, "End user on a list"));
  ASSERT_THAT(rejected, IsOk());
  EXPECT_THAT(as("exp-acme").WithdrawCase(Reason<v1::WithdrawCaseRequest>(*rejected, "")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // Unknown case.
  EXPECT_THAT(as("aud-1").GetCase("PRM-2026-424242"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(as("aud-1").GetCase("42"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(IntegrationTest, FieldViolationsTravelInStatusDetails) {
  v1::SubmitCaseRequest r;
  *r.mutable_application() = ValidApplication();
  *r.mutable_application()->add_goods() = r.application().goods(0);
  r.mutable_application()->mutable_goods(1)->mutable_quantity()->set_value(-3);
  r.mutable_application()->mutable_end_user()->set_country("Japan");
  absl::StatusOr<v1::Case> c = as("exp-acme").SubmitCase(r);
  ASSERT_THAT(c, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(c.status().message()),
              HasSubstr("application.goods[1].quantity.value"));
  std::vector<FieldViolation> v = FieldViolations(c.status());
  ASSERT_THAT(v, SizeIs(2));
  EXPECT_EQ(v[0].field, "application.goods[1].quantity.value");
  EXPECT_EQ(v[1].field, "application.end_user.country");
}

TEST_F(IntegrationTest, OrganisationsAreIsolated) {
  absl::StatusOr<v1::Case> acme = Submit("exp-acme");
  absl::StatusOr<v1::Case> globex = Submit("exp-globex");
  ASSERT_THAT(acme, IsOk());
  ASSERT_THAT(globex, IsOk());

  EXPECT_THAT(as("exp-globex").GetCase(acme->id()),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(as("exp-globex").GetCaseHistory(acme->id()),
              StatusIs(absl::StatusCode::kNotFound));
  absl::StatusOr<v1::ListCasesResponse> list =
      as("exp-globex").ListCases(v1::ListCasesRequest());
  ASSERT_THAT(list, IsOk());
  ASSERT_THAT(list->cases(), SizeIs(1));
  EXPECT_EQ(list->cases(0).id(), globex->id());

  std::vector<v1::Event> seen = ReadAll("exp-globex");
  ASSERT_THAT(seen, SizeIs(1));
  EXPECT_EQ(seen[0].case_id(), globex->id());
  v1::ReadLogRequest by_case;
  by_case.set_case_id(acme->id());
  EXPECT_THAT(as("exp-globex").ReadLog(by_case, [](const v1::LogEntry&) { return true; }),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(ReadAll("aud-1"), SizeIs(2));
}

TEST_F(IntegrationTest, ReadLogHonoursRangeAndCase) {
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<v1::Case> c = Submit();
    ASSERT_THAT(c, IsOk());
    ids.push_back(c->id());
  }
  ASSERT_THAT(Review(v1::Case(*as("aud-1").GetCase(ids[1])), "rev-1"), IsOk());
  v1::ReadLogRequest r;
  r.set_from_sequence(2);
  r.set_to_sequence(4);
  std::vector<uint64_t> seqs;
  ASSERT_THAT(as("aud-1").ReadLog(r, [&](const v1::LogEntry& e) {
    seqs.push_back(e.event().sequence());
    return true;
  }),
              IsOk());
  EXPECT_THAT(seqs, ElementsAre(2, 3, 4));

  v1::ReadLogRequest by_case;
  by_case.set_case_id(ids[1]);
  seqs.clear();
  ASSERT_THAT(as("aud-1").ReadLog(by_case, [&](const v1::LogEntry& e) {
    seqs.push_back(e.event().sequence());
    return true;
  }),
              IsOk());
  EXPECT_THAT(seqs, ElementsAre(2, 5));

  r.set_from_sequence(4);
  r.set_to_sequence(2);
  EXPECT_THAT(as("aud-1").ReadLog(r, [](const v1::LogEntry&) { return true; }),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(IntegrationTest, WatchLogDeliversEventsCommittedAfterItStarted) {
  ASSERT_THAT(Submit(), IsOk());
  std::vector<v1::Event> received;
  absl::Notification got_two;
  absl::Status watch_status;
  std::thread watcher([&] {
    v1::WatchLogRequest r;
    r.set_from_sequence(1);
    watch_status = as("aud-1").WatchLog(r, [&](const v1::LogEntry& e) {
      received.push_back(e.event());
      if (received.size() == 3) {
        got_two.Notify();
        return false;
      }
      return true;
    });
  });
  // The watch has the existing event; these two commit after it started.
  absl::SleepFor(absl::Milliseconds(200));
  ASSERT_THAT(Submit(), IsOk());
  ASSERT_THAT(Submit("exp-globex"), IsOk());
  EXPECT_TRUE(got_two.WaitForNotificationWithTimeout(absl::Seconds(10)));
  watcher.join();
  EXPECT_THAT(watch_status, IsOk());
  ASSERT_THAT(received, SizeIs(3));
  EXPECT_EQ(received[2].sequence(), 3u);
  EXPECT_EQ(received[2].organisation(), "globex");
}

TEST_F(IntegrationTest, ShutdownEndsAnIdleWatch) {
  absl::Status watch_status;
  absl::Notification ended;
  std::thread watcher([&] {
    v1::WatchLogRequest r;
    watch_status =
        as("aud-1").WatchLog(r, [](const v1::LogEntry&) { return true; });
    ended.Notify();
  });
  absl::SleepFor(absl::Milliseconds(200));
  server_->Shutdown();
  EXPECT_TRUE(ended.WaitForNotificationWithTimeout(absl::Seconds(10)));
  watcher.join();
  EXPECT_THAT(watch_status, StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(IntegrationTest, RetriedSubmitFilesOneCase) {
  v1::SubmitCaseRequest r;
  r.set_request_id("client-chosen-1");
  *r.mutable_application() = ValidApplication();
  absl::StatusOr<v1::Case> a = as("exp-acme").SubmitCase(r);
  absl::StatusOr<v1::Case> b = as("exp-acme").SubmitCase(r);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(a->id(), b->id());
  absl::StatusOr<v1::LogHead> head = as("aud-1").GetLogHead();
  ASSERT_THAT(head, IsOk());
  EXPECT_EQ(head->tree_size(), 1u);
}

}  // namespace
}  // namespace permit::server
