// Tests of the C++ SDK (client/include/permit/client.h) against fake
// services in-process: retries of transient failures reuse one request id,
// permanent errors are not retried, the bearer token is sent, field
// violations are decoded from the status details, and a broken log stream
// resumes after the last entry delivered.
#include "permit/client.h"

#include <mutex>

#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace permit {
namespace {

using ::permit::testing::IsOk;
using ::permit::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::Each;
using ::testing::Not;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// Fails the first `failures` calls with `failure`, then succeeds; records
// the request id and authorization header of every call.
class FakeCaseService final : public v1::CaseService::Service {
 public:
  grpc::Status SubmitCase(grpc::ServerContext* ctx, const v1::SubmitCaseRequest* r,
                          v1::Case* out) override {
    std::lock_guard<std::mutex> lock(mu);
    request_ids.push_back(r->request_id());
    auto it = ctx->client_metadata().find("authorization");
    authorization = it == ctx->client_metadata().end()
                        ? ""
                        : std::string(it->second.data(), it->second.size());
    if (failures > 0) {
      --failures;
      return failure;
    }
    out->set_id("PRM-2026-000001");
    out->set_version(1);
    return grpc::Status::OK;
  }

  std::mutex mu;
  int failures = 0;
  grpc::Status failure{grpc::StatusCode::UNAVAILABLE, "try again"};
  std::vector<std::string> request_ids;
  std::string authorization;
};

// Serves events 1..total; the first call breaks (UNAVAILABLE) after
// `break_after` events.
class FakeAuditService final : public v1::AuditService::Service {
 public:
  grpc::Status ReadLog(grpc::ServerContext*, const v1::ReadLogRequest* r,
                       grpc::ServerWriter<v1::ReadLogResponse>* w) override {
    from_sequences.push_back(r->from_sequence());
    const bool first = from_sequences.size() == 1;
    for (uint64_t seq = std::max<uint64_t>(r->from_sequence(), 1); seq <= total; ++seq) {
      if (first && seq > break_after) {
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection reset");
      }
      v1::ReadLogResponse batch;
      batch.add_entries()->mutable_event()->set_sequence(seq);
      w->Write(batch);
    }
    return grpc::Status::OK;
  }

  uint64_t total = 5;
  uint64_t break_after = 3;
  std::vector<uint64_t> from_sequences;
};

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&cases_);
    builder.RegisterService(&audit_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override { server_->Shutdown(); }

  std::unique_ptr<Client> Connect(int attempts = 4) {
    ClientOptions options;
    options.insecure = true;  // the test server is plaintext on loopback
    options.address = "127.0.0.1:" + std::to_string(port_);
    options.token = "secret";
    options.max_attempts = attempts;
    options.initial_backoff = absl::Milliseconds(10);
    absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(options);
    EXPECT_THAT(c, IsOk());
    return *std::move(c);
  }

  v1::SubmitCaseRequest Request() {
    v1::SubmitCaseRequest r;
    *r.mutable_application() = testing::ValidApplication();
    return r;
  }

  FakeCaseService cases_;
  FakeAuditService audit_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(ClientTest, RetriesTransientFailuresWithTheSameRequestId) {
  cases_.failures = 2;
  absl::StatusOr<v1::Case> c = Connect()->SubmitCase(Request());
  ASSERT_THAT(c, IsOk());
  ASSERT_THAT(cases_.request_ids, SizeIs(3));
  EXPECT_THAT(cases_.request_ids[0], Not(IsEmpty()));
  EXPECT_THAT(cases_.request_ids, Each(cases_.request_ids[0]));
}

TEST_F(ClientTest, KeepsACallerChosenRequestId) {
  v1::SubmitCaseRequest r = Request();
  r.set_request_id("mine-1");
  ASSERT_THAT(Connect()->SubmitCase(r), IsOk());
  EXPECT_THAT(cases_.request_ids, ElementsAre("mine-1"));
}

TEST_F(ClientTest, GivesUpAfterMaxAttempts) {
  cases_.failures = 100;
  EXPECT_THAT(Connect(3)->SubmitCase(Request()),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(cases_.request_ids, SizeIs(3));
}

TEST_F(ClientTest, DoesNotRetryPermanentErrors) {
  cases_.failures = 1;
  cases_.failure = grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "wrong state");
  absl::StatusOr<v1::Case> c = Connect()->SubmitCase(Request());
  EXPECT_THAT(c, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(c.status().message(), "wrong state");
  EXPECT_THAT(cases_.request_ids, SizeIs(1));
}

TEST_F(ClientTest, SendsTheBearerToken) {
  ASSERT_THAT(Connect()->SubmitCase(Request()), IsOk());
  EXPECT_EQ(cases_.authorization, "Bearer secret");
}

TEST_F(ClientTest, DecodesFieldViolationsFromStatusDetails) {
  google::rpc::BadRequest bad;
  auto* v = bad.add_field_violations();
  v->set_field("application.goods[1].quantity.value");
  v->set_description("must be greater than zero");
  google::rpc::Status detail;
  detail.set_code(grpc::StatusCode::INVALID_ARGUMENT);
  detail.set_message("1 invalid field");
  detail.add_details()->PackFrom(bad);
  cases_.failures = 1;
  cases_.failure = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "1 invalid field",
                                detail.SerializeAsString());
  absl::StatusOr<v1::Case> c = Connect()->SubmitCase(Request());
  ASSERT_THAT(c, StatusIs(absl::StatusCode::kInvalidArgument));
  std::vector<FieldViolation> violations = FieldViolations(c.status());
  ASSERT_THAT(violations, SizeIs(1));
  EXPECT_EQ(violations[0].field, "application.goods[1].quantity.value");
  EXPECT_EQ(violations[0].description, "must be greater than zero");
  EXPECT_EQ(StatusCodeName(c.status().code()), "INVALID_ARGUMENT");
}

TEST_F(ClientTest, ReadLogResumesAfterTheLastDeliveredEntry) {
  std::vector<uint64_t> seen;
  absl::Status s = Connect()->ReadLog(v1::ReadLogRequest(), [&](const v1::LogEntry& e) {
    seen.push_back(e.event().sequence());
    return true;
  });
  ASSERT_THAT(s, IsOk());
  EXPECT_THAT(seen, ElementsAre(1, 2, 3, 4, 5));
  EXPECT_THAT(audit_.from_sequences, ElementsAre(0, 4));
}

TEST_F(ClientTest, UnreachableServerIsUnavailable) {
  ClientOptions options;
  options.insecure = true;  // the test server is plaintext on loopback
  options.address = "127.0.0.1:" + std::to_string(testing::FreePort());
  options.max_attempts = 2;
  options.initial_backoff = absl::Milliseconds(10);
  options.deadline = absl::Seconds(2);
  absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(options);
  ASSERT_THAT(c, IsOk());
  EXPECT_THAT((*c)->GetLogHead(), StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace permit
