// Integration tests: permitd in-process on a free loopback port, driven
// through the C++ SDK exactly as users drive it. Covers the walkthrough,
// every refusal with its exact gRPC code, field violations decoded from the
// status details, cross-organisation isolation, log reads, WatchLog's live
// delivery, and PermitServer::Start refusing a damaged or busy data folder.
#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "core/merkle.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "permit/client.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "server/server.h"
#include "storage/rocksdb_event_store.h"
#include "tests/server/test_client.h"
#include "tests/server/test_principals.h"
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
    const auto& principals = testing::TestPrincipalList();
    absl::StatusOr<PrincipalRegistry> registry = testing::TestPrincipals();
    ASSERT_THAT(registry, IsOk());
    registry_ = *std::move(registry);
    absl::StatusOr<std::unique_ptr<PermitServer>> server =
        PermitServer::Start(Options());
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    for (const auto& p : principals) clients_[p[0]] = Connect("token-" + p[0]);
    clients_["anonymous"] = Connect("");
    clients_["forger"] = Connect("not-a-token");
  }

  // Options of a server on a free port with the test's principals and data
  // folder.
  ServerOptions Options() const {
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.db_path = db_path();
    options.principals = registry_;
    options.shutdown_grace = absl::Seconds(1);
    return options;
  }

  std::string db_path() const { return dir_.path() + "/db"; }

  void TearDown() override {
    clients_.clear();
    if (server_) server_->Shutdown();
  }

  std::unique_ptr<Client> Connect(const std::string& token) {
    return testing::ConnectToTestServer(server_->port(), token);
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
  PrincipalRegistry registry_;
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
  absl::StatusOr<v1::Case> second = as("aud-1").GetCase(ids[1]);
  ASSERT_THAT(second, IsOk());
  ASSERT_THAT(Review(*second, "rev-1"), IsOk());
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
  absl::Notification got_first;
  absl::Notification got_three;
  absl::Status watch_status;
  std::thread watcher([&] {
    v1::WatchLogRequest r;
    r.set_from_sequence(1);
    watch_status = as("aud-1").WatchLog(r, [&](const v1::LogEntry& e) {
      received.push_back(e.event());
      if (received.size() == 1) got_first.Notify();
      if (received.size() == 3) {
        got_three.Notify();
        return false;
      }
      return true;
    });
  });
  // The watch has delivered the existing event, so it is running; only then
  // are the next two committed, and the watch must deliver them live.
  const bool started = got_first.WaitForNotificationWithTimeout(absl::Seconds(10));
  EXPECT_TRUE(started) << "the watch did not deliver event 1";
  if (started) {
    EXPECT_THAT(Submit(), IsOk());
    EXPECT_THAT(Submit("exp-globex"), IsOk());
  }
  const bool delivered =
      got_three.WaitForNotificationWithTimeout(absl::Seconds(10));
  if (!delivered) server_->Shutdown();  // ends the watch so it can be joined
  watcher.join();
  ASSERT_TRUE(delivered) << "events committed after the watch started were "
                            "not delivered";
  EXPECT_THAT(watch_status, IsOk());
  ASSERT_THAT(received, SizeIs(3));
  EXPECT_EQ(received[0].sequence(), 1u);
  EXPECT_EQ(received[1].sequence(), 2u);
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

TEST_F(IntegrationTest, HealthServiceSaysServingOnceTheLogIsOpen) {
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status s = stub->Check(&ctx, request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(IntegrationTest, HealthWatchSeesNotServingWhenShutdownBegins) {
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  grpc::health::v1::HealthCheckRequest request;
  std::unique_ptr<grpc::ClientReader<grpc::health::v1::HealthCheckResponse>> reader =
      stub->Watch(&ctx, request);
  grpc::health::v1::HealthCheckResponse response;
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  std::thread stopper([&] { server_->Shutdown(); });
  bool saw_not_serving = false;
  while (reader->Read(&response)) {
    if (response.status() == grpc::health::v1::HealthCheckResponse::NOT_SERVING) {
      saw_not_serving = true;
      ctx.TryCancel();
      break;
    }
  }
  reader->Finish();
  stopper.join();
  EXPECT_TRUE(saw_not_serving);
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

TEST_F(IntegrationTest, RequestIdReusedWithDifferentContentIsInvalidArgument) {
  v1::SubmitCaseRequest r;
  r.set_request_id("client-chosen-2");
  *r.mutable_application() = ValidApplication();
  ASSERT_THAT(as("exp-acme").SubmitCase(r), IsOk());

  r.mutable_application()->set_requested_validity_months(24);
  absl::StatusOr<v1::Case> c = as("exp-acme").SubmitCase(r);
  ASSERT_THAT(c, StatusIs(absl::StatusCode::kInvalidArgument));
  std::vector<FieldViolation> v = FieldViolations(c.status());
  ASSERT_THAT(v, SizeIs(1));
  EXPECT_EQ(v[0].field, "request_id");
  EXPECT_THAT(v[0].description, HasSubstr("client-chosen-2"));
  absl::StatusOr<v1::LogHead> head = as("aud-1").GetLogHead();
  ASSERT_THAT(head, IsOk());
  EXPECT_EQ(head->tree_size(), 1u);
}

TEST_F(IntegrationTest, WithdrawOfACaseSuspendedFromApprovedIsFailedPrecondition) {
  absl::StatusOr<v1::Case> c = Submit();
  ASSERT_THAT(c, IsOk());
  c = Review(*c, "rev-1");
  ASSERT_THAT(c, IsOk());
  c = Approve(*c, "rev-2");
  ASSERT_THAT(c, IsOk());
  c = as("rev-1").SuspendCase(Reason<v1::SuspendCaseRequest>(*c, "Policy change"));
  ASSERT_THAT(c, IsOk());
  ASSERT_EQ(c->suspended_from(), v1::CASE_STATE_APPROVED);

  EXPECT_THAT(as("exp-acme").WithdrawCase(Reason<v1::WithdrawCaseRequest>(*c, "")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  absl::StatusOr<v1::Case> now = as("exp-acme").GetCase(c->id());
  ASSERT_THAT(now, IsOk());
  EXPECT_EQ(now->state(), v1::CASE_STATE_SUSPENDED);
  EXPECT_EQ(now->version(), 4);
}

TEST_F(IntegrationTest, AuditorMayNotTakeAnyAction) {
  // A case in each state where each action is legal for its own role, so
  // the only reason to refuse is the auditor's role.
  absl::StatusOr<v1::Case> submitted = Submit();
  ASSERT_THAT(submitted, IsOk());
  absl::StatusOr<v1::Case> reviewed = Submit();
  ASSERT_THAT(reviewed, IsOk());
  reviewed = Review(*reviewed, "rev-1");
  ASSERT_THAT(reviewed, IsOk());
  absl::StatusOr<v1::Case> approved = Submit();
  ASSERT_THAT(approved, IsOk());
  approved = Review(*approved, "rev-1");
  ASSERT_THAT(approved, IsOk());
  approved = Approve(*approved, "rev-2");
  ASSERT_THAT(approved, IsOk());
  absl::StatusOr<v1::Case> suspended =
      as("rev-1").SuspendCase(Reason<v1::SuspendCaseRequest>(*approved, "x"));
  ASSERT_THAT(suspended, IsOk());
  approved = Submit();
  ASSERT_THAT(approved, IsOk());
  approved = Review(*approved, "rev-1");
  ASSERT_THAT(approved, IsOk());
  approved = Approve(*approved, "rev-2");
  ASSERT_THAT(approved, IsOk());
  absl::StatusOr<v1::LogHead> before = as("aud-1").GetLogHead();
  ASSERT_THAT(before, IsOk());

  Client& auditor = as("aud-1");
  const std::vector<std::pair<std::string, absl::StatusOr<v1::Case>>> attempts = {
      {"review", Review(*submitted, "aud-1")},
      {"approve", Approve(*reviewed, "aud-1")},
      {"reject", auditor.RejectCase(
                     Reason<v1::RejectCaseRequest>(*reviewed, "End user listed"))},
      {"suspend", auditor.SuspendCase(
                      Reason<v1::SuspendCaseRequest>(*approved, "Policy change"))},
      {"resume", auditor.ResumeCase(
                     Reason<v1::ResumeCaseRequest>(*suspended, "Cleared"))},
      {"revoke", auditor.RevokeCase(
                     Reason<v1::RevokeCaseRequest>(*approved, "Licence misused"))},
      {"withdraw", auditor.WithdrawCase(
                       Reason<v1::WithdrawCaseRequest>(*submitted, ""))},
      {"submit", Submit("aud-1")},
  };
  for (const auto& [action, result] : attempts) {
    SCOPED_TRACE(action);
    EXPECT_THAT(result, StatusIs(absl::StatusCode::kPermissionDenied));
  }
  absl::StatusOr<v1::LogHead> after = as("aud-1").GetLogHead();
  ASSERT_THAT(after, IsOk());
  EXPECT_EQ(after->tree_size(), before->tree_size());
}

TEST_F(IntegrationTest, ExporterListingAnotherOrganisationIsPermissionDenied) {
  ASSERT_THAT(Submit("exp-globex"), IsOk());
  v1::ListCasesRequest r;
  r.set_organisation("globex");
  EXPECT_THAT(as("exp-acme").ListCases(r),
              StatusIs(absl::StatusCode::kPermissionDenied));
  // Its own organisation, named explicitly, is fine.
  r.set_organisation("acme");
  EXPECT_THAT(as("exp-acme").ListCases(r), IsOk());
}

TEST_F(IntegrationTest, StartOnADamagedHeadIsDataLoss) {
  ASSERT_THAT(Submit(), IsOk());
  ASSERT_THAT(Submit(), IsOk());
  clients_.clear();
  server_->Shutdown();
  server_.reset();

  // Damage the head with RocksDB's own API, every column family open.
  {
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const std::string& name :
         storage::RocksDbEventStore::ColumnFamilyNames()) {
      descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
    rocksdb::DB* raw = nullptr;
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(), db_path(),
                                          descriptors, &handles, &raw);
    ASSERT_TRUE(s.ok()) << s.ToString();
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_EQ(storage::RocksDbEventStore::ColumnFamilyNames()[0],
              rocksdb::kDefaultColumnFamilyName);
    // 0xff... is an unterminated varint tag: not a protobuf message.
    s = db->Put(rocksdb::WriteOptions(), handles[0], "head",
                "\xff\xff\xff\xff garbage");
    EXPECT_TRUE(s.ok()) << s.ToString();
    for (rocksdb::ColumnFamilyHandle* h : handles) {
      EXPECT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
    }
    s = db->Close();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  absl::StatusOr<std::unique_ptr<PermitServer>> server =
      PermitServer::Start(Options());
  EXPECT_THAT(server, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("damaged"));
}

TEST_F(IntegrationTest, StartOnAFolderInUseIsFailedPrecondition) {
  absl::StatusOr<v1::Case> c = Submit();
  ASSERT_THAT(c, IsOk());
  absl::StatusOr<std::unique_ptr<PermitServer>> second =
      PermitServer::Start(Options());
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("in use"));
  // The first server is unharmed.
  EXPECT_THAT(as("exp-acme").GetCase(c->id()), IsOk());
  EXPECT_THAT(Submit(), IsOk());
}

}  // namespace
}  // namespace permit::server
