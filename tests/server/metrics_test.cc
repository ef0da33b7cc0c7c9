// Metrics tests: permitd in-process on a free loopback port with its
// Prometheus endpoint on another, driven through the SDK; /metrics is read
// over HTTP as a scraper reads it. Covers the request and refusal counters,
// the commit histograms, the gauges read from the server, and the
// cases-by-state count right after a restart on an existing log (also while
// commits run during the count).
#include <map>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "permit/client.h"
#include "server/metrics.h"
#include "server/server.h"
#include "tests/server/metrics_http.h"
#include "tests/server/test_client.h"
#include "tests/server/test_principals.h"
#include "tests/test_util.h"

namespace permit::server {
namespace {

using ::permit::testing::HttpGet;
using ::permit::testing::IsOk;
using ::permit::testing::MetricValue;
using ::permit::testing::StatusIs;
using ::permit::testing::TempDir;
using ::permit::testing::ValidApplication;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;

constexpr const char* kStates[] = {"submitted", "reviewed",  "approved", "rejected",
                                   "suspended", "revoked", "withdrawn"};

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<PrincipalRegistry> registry = testing::TestPrincipals();
    ASSERT_THAT(registry, IsOk());
    registry_ = *std::move(registry);
    ASSERT_NO_FATAL_FAILURE(StartServer());
  }

  void TearDown() override { StopServer(); }

  // A fresh Metrics (as a restarted permitd has) and a server on the
  // test's data folder feeding it.
  void StartServer() {
    absl::StatusOr<std::unique_ptr<Metrics>> metrics = Metrics::Start("127.0.0.1:0");
    ASSERT_THAT(metrics, IsOk());
    metrics_ = *std::move(metrics);
    ASSERT_GT(metrics_->port(), 0);
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.db_path = dir_.path() + "/db";
    options.principals = registry_;
    options.shutdown_grace = absl::Seconds(1);
    options.observers.push_back(metrics_.get());
    options.manager.on_commit = metrics_->CommitHook();
    absl::StatusOr<std::unique_ptr<PermitServer>> server =
        PermitServer::Start(std::move(options));
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    metrics_->Attach(server_.get());
  }

  // As permitd stops: metrics detach, the server shuts down, then metrics go.
  void StopServer() {
    clients_.clear();
    if (metrics_ != nullptr) metrics_->Detach();
    if (server_ != nullptr) server_->Shutdown();
    server_.reset();
    metrics_.reset();
  }

  Client& as(const std::string& who) {
    std::unique_ptr<Client>& c = clients_[who];
    if (c == nullptr) {
      c = testing::ConnectToTestServer(server_->port(),
                                       who.empty() ? "not-a-token" : "token-" + who);
    }
    return *c;
  }

  absl::StatusOr<v1::Case> Submit() {
    v1::SubmitCaseRequest r;
    *r.mutable_application() = ValidApplication();
    return as("exp-acme").SubmitCase(r);
  }
  absl::StatusOr<v1::Case> Review(const v1::Case& c) {
    v1::ReviewCaseRequest r;
    r.set_case_id(c.id());
    r.set_expected_version(c.version());
    r.set_recommendation(v1::RECOMMENDATION_APPROVE);
    r.set_findings("Checked.");
    return as("rev-1").ReviewCase(r);
  }
  absl::StatusOr<v1::Case> Approve(const v1::Case& c) {
    v1::ApproveCaseRequest r;
    r.set_case_id(c.id());
    r.set_expected_version(c.version());
    r.mutable_valid_until()->set_seconds(
        absl::ToUnixSeconds(absl::Now() + absl::Hours(24 * 365)));
    return as("rev-2").ApproveCase(r);
  }
  absl::StatusOr<v1::Case> Suspend(const v1::Case& c) {
    v1::SuspendCaseRequest r;
    r.set_case_id(c.id());
    r.set_expected_version(c.version());
    r.set_reason("Consignee under investigation");
    return as("rev-1").SuspendCase(r);
  }

  std::string Scrape() {
    std::optional<std::string> body = HttpGet(metrics_->port(), "/metrics");
    EXPECT_TRUE(body.has_value()) << "GET /metrics failed";
    return body.value_or("");
  }

  // Scrapes until `series` reads `value` (the commit hook runs just after
  // callers are answered; the start-up count in the background), at most
  // 10 s. Returns the last scrape.
  std::string ScrapeUntil(const std::string& series, double value) {
    std::string text;
    for (int i = 0; i < 200; ++i) {
      text = Scrape();
      if (MetricValue(text, series) == value) break;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return text;
  }

  // Cases in each state as ListCases (the store's state index) has them.
  std::map<std::string, double> ListedCasesByState() {
    std::map<std::string, double> out;
    for (int s = 1; s <= 7; ++s) {
      v1::ListCasesRequest r;
      r.set_state(static_cast<v1::CaseState>(s));
      r.set_page_size(500);
      double n = 0;
      for (;;) {
        absl::StatusOr<v1::ListCasesResponse> page = as("aud-1").ListCases(r);
        EXPECT_THAT(page, IsOk());
        if (!page.ok()) break;
        n += page->cases_size();
        if (page->next_page_token().empty()) break;
        r.set_page_token(page->next_page_token());
      }
      out[kStates[s - 1]] = n;
    }
    return out;
  }

  std::map<std::string, double> ExposedCasesByState(const std::string& text) {
    std::map<std::string, double> out;
    for (const char* state : kStates) {
      out[state] = MetricValue(text, std::string("permit_cases{state=\"") + state + "\"}")
                       .value_or(-1);
    }
    return out;
  }

  TempDir dir_;
  PrincipalRegistry registry_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<PermitServer> server_;
  std::map<std::string, std::unique_ptr<Client>> clients_;
};

TEST_F(MetricsTest, ServesRequestAndRefusalCountersAfterCalls) {
  for (int i = 0; i < 3; ++i) ASSERT_THAT(Submit(), IsOk());
  // Refused: a bad token, and an exporter asking for a proof.
  EXPECT_THAT(as("").GetLogHead(), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(as("exp-acme").GetInclusionProof(1, 0),
              StatusIs(absl::StatusCode::kPermissionDenied));
  // Failed but not refused: an invalid application.
  EXPECT_THAT(as("exp-acme").SubmitCase(v1::SubmitCaseRequest()),
              StatusIs(absl::StatusCode::kInvalidArgument));

  const std::string text = ScrapeUntil("permit_commit_batch_size_count", 3);
  EXPECT_THAT(text, HasSubstr("permit_requests_total{code=\"OK\",method=\"SubmitCase\"} 3\n"));
  EXPECT_THAT(MetricValue(text, "permit_requests_total{code=\"INVALID_ARGUMENT\",method=\"SubmitCase\"}"),
              Optional(1.0));
  EXPECT_THAT(MetricValue(text, "permit_requests_total{code=\"UNAUTHENTICATED\",method=\"GetLogHead\"}"),
              Optional(1.0));
  EXPECT_THAT(MetricValue(text, "permit_request_duration_seconds_count{code=\"OK\",method=\"SubmitCase\"}"),
              Optional(3.0));
  EXPECT_THAT(MetricValue(text, "permit_request_duration_seconds_bucket{code=\"OK\",method=\"SubmitCase\",le=\"+Inf\"}"),
              Optional(3.0));
  EXPECT_THAT(MetricValue(text, "permit_refused_total{code=\"UNAUTHENTICATED\"}"), Optional(1.0));
  EXPECT_THAT(MetricValue(text, "permit_refused_total{code=\"PERMISSION_DENIED\"}"), Optional(1.0));
  EXPECT_THAT(MetricValue(text, "permit_refused_total{code=\"ABORTED\"}"), Optional(0.0));
  EXPECT_THAT(text, Not(HasSubstr("permit_refused_total{code=\"INVALID_ARGUMENT\"}")));

  // Three sequential submits: three synced writes of one event each.
  EXPECT_THAT(MetricValue(text, "permit_commit_batch_size_count"), Optional(3.0));
  EXPECT_THAT(MetricValue(text, "permit_commit_batch_size_sum"), Optional(3.0));
  EXPECT_THAT(MetricValue(text, "permit_commit_batch_size_bucket{le=\"1\"}"), Optional(3.0));
  EXPECT_THAT(MetricValue(text, "permit_commit_sync_duration_seconds_count"), Optional(3.0));
  EXPECT_THAT(MetricValue(text, "permit_commit_failures_total"), Optional(0.0));
  EXPECT_THAT(MetricValue(text, "permit_log_events"), Optional(3.0));
  EXPECT_THAT(MetricValue(text, "permit_queued_actions"), Optional(0.0));
  EXPECT_THAT(MetricValue(text, "permit_log_streams_open"), Optional(0.0));
  EXPECT_THAT(MetricValue(text, "permit_log_streams_dropped_total"), Optional(0.0));
  EXPECT_THAT(MetricValue(ScrapeUntil("permit_cases{state=\"submitted\"}", 3),
                          "permit_cases{state=\"submitted\"}"),
              Optional(3.0));
}

TEST_F(MetricsTest, CountsOpenLogStreams) {
  ASSERT_THAT(Submit(), IsOk());
  absl::Notification started;
  absl::Notification stop;
  std::thread watcher([&] {
    v1::WatchLogRequest r;
    r.set_from_sequence(1);
    EXPECT_THAT(as("aud-1").WatchLog(r, [&](const v1::LogEntry& e) {
      if (e.event().sequence() == 1) started.Notify();
      // Stops at the first event committed after the check below.
      return !stop.HasBeenNotified();
    }),
                IsOk());
  });
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_THAT(MetricValue(ScrapeUntil("permit_log_streams_open", 1),
                          "permit_log_streams_open"),
              Optional(1.0));
  stop.Notify();
  ASSERT_THAT(Submit(), IsOk());
  watcher.join();
  EXPECT_THAT(MetricValue(ScrapeUntil("permit_log_streams_open", 0),
                          "permit_log_streams_open"),
              Optional(0.0));
}

TEST_F(MetricsTest, CountsCasesByStateRightAfterRestart) {
  absl::StatusOr<v1::Case> a = Submit();
  absl::StatusOr<v1::Case> b = Submit();
  absl::StatusOr<v1::Case> c = Submit();
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  ASSERT_THAT(c, IsOk());
  a = Review(*a);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(Approve(*a), IsOk());
  ASSERT_THAT(Suspend(*b), IsOk());

  StopServer();
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::string text = ScrapeUntil("permit_cases{state=\"approved\"}", 1);
  EXPECT_TRUE(metrics_->cases_counted());
  const std::map<std::string, double> expected = {
      {"submitted", 1}, {"reviewed", 0},  {"approved", 1},  {"rejected", 0},
      {"suspended", 1}, {"revoked", 0},   {"withdrawn", 0}};
  EXPECT_EQ(ExposedCasesByState(text), expected);
  EXPECT_EQ(ListedCasesByState(), expected);
  EXPECT_THAT(MetricValue(text, "permit_log_events"), Optional(6.0));

  // Later commits move the counts.
  ASSERT_THAT(Review(*c), IsOk());
  text = ScrapeUntil("permit_cases{state=\"reviewed\"}", 1);
  EXPECT_THAT(MetricValue(text, "permit_cases{state=\"reviewed\"}"), Optional(1.0));
  EXPECT_THAT(MetricValue(text, "permit_cases{state=\"submitted\"}"), Optional(0.0));
}

// A bigger log, restarted with commits racing the start-up count: the
// count must still equal the store's state index exactly.
TEST_F(MetricsTest, CaseCountIsExactWhenCommitsRunDuringTheCount) {
  const v1::Actor exporter = testing::Exporter();
  const v1::Actor reviewer = testing::Reviewer("rev-1");
  // Enqueued at once, the actions commit in a few large batches. The
  // callbacks run on the writer thread and share `Pending` with the waiter.
  struct Pending {
    absl::Mutex mu;
    int left = 0;
    std::vector<v1::Case> made;
  };
  auto wait = [](Pending& p) {
    absl::MutexLock lock(&p.mu);
    p.mu.Await(absl::Condition(+[](int* left) { return *left == 0; }, &p.left));
    return p.made;
  };
  auto done = [](std::shared_ptr<Pending> p) {
    return [p](absl::StatusOr<v1::Case> c) {
      absl::MutexLock lock(&p->mu);
      EXPECT_THAT(c, IsOk());
      if (c.ok()) p->made.push_back(*std::move(c));
      --p->left;
    };
  };
  auto submit_many = [&](int n) {
    auto p = std::make_shared<Pending>();
    p->left = n;
    for (int i = 0; i < n; ++i) {
      v1::SubmitCaseRequest r;
      *r.mutable_application() = ValidApplication();
      r.set_request_id(Client::NewRequestId());
      server_->manager()->Submit(exporter, r, done(p));
    }
    return wait(*p);
  };
  auto review_all = [&](const std::vector<v1::Case>& cases) {
    auto p = std::make_shared<Pending>();
    p->left = static_cast<int>(cases.size());
    for (const v1::Case& c : cases) {
      v1::ReviewCaseRequest r;
      r.set_case_id(c.id());
      r.set_expected_version(c.version());
      r.set_recommendation(v1::RECOMMENDATION_APPROVE);
      r.set_findings("Checked.");
      r.set_request_id(Client::NewRequestId());
      server_->manager()->Review(reviewer, r, done(p));
    }
    wait(*p);
  };
  std::vector<v1::Case> cases = submit_many(3000);
  review_all(std::vector<v1::Case>(cases.begin(), cases.begin() + 1000));

  StopServer();
  ASSERT_NO_FATAL_FAILURE(StartServer());
  // At once, while the count runs: reviews of earlier cases and new ones.
  review_all(std::vector<v1::Case>(cases.begin() + 1000, cases.begin() + 1500));
  submit_many(200);

  std::string text;
  for (int i = 0; i < 200 && !metrics_->cases_counted(); ++i) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(metrics_->cases_counted());
  // The last commit hook runs just after its callers are answered.
  text = ScrapeUntil("permit_log_events", 3000 + 1000 + 500 + 200);
  text = ScrapeUntil("permit_cases{state=\"submitted\"}", 1700);
  std::map<std::string, double> listed = ListedCasesByState();
  EXPECT_EQ(listed["submitted"], 1700);
  EXPECT_EQ(listed["reviewed"], 1500);
  EXPECT_EQ(ExposedCasesByState(text), listed);
}

TEST(MetricsStartTest, RefusesAnAddressInUse) {
  absl::StatusOr<std::unique_ptr<Metrics>> first = Metrics::Start("127.0.0.1:0");
  ASSERT_THAT(first, IsOk());
  EXPECT_THAT(Metrics::Start("127.0.0.1:" + std::to_string((*first)->port())),
              StatusIs(absl::StatusCode::kUnavailable));
}

// Stopping wakes the listener's poll, which would otherwise wait out its
// 2 s timeout, with a connection to the address it listens on.
TEST(MetricsStartTest, StopsWithoutWaitingOutThePoll) {
  for (const std::string listen : {"127.0.0.1:0", "0.0.0.0:0"}) {
    SCOPED_TRACE(listen);
    absl::StatusOr<std::unique_ptr<Metrics>> m = Metrics::Start(listen);
    ASSERT_THAT(m, IsOk());
    absl::SleepFor(absl::Milliseconds(100));  // the listener is in its poll
    const absl::Time start = absl::Now();
    m->reset();
    EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  }
}

// Debian's civetweb (under prometheus-cpp) is built without IPv6: say so,
// rather than "cannot bind".
TEST(MetricsStartTest, RefusesAnIpv6AddressAndSuggestsAnIpv4One) {
  for (const std::string listen : {"[::1]:9464", "[::]:0", "::1:9464"}) {
    EXPECT_THAT(Metrics::Start(listen),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr(listen), HasSubstr("IPv6"),
                               HasSubstr("127.0.0.1:9464"))));
  }
}

TEST(MetricsStartTest, WithoutAnAddressServesNothingButScrapes) {
  absl::StatusOr<std::unique_ptr<Metrics>> m = Metrics::Start("");
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ((*m)->port(), 0);
  CallRecord call;
  call.method = "GetCase";
  call.status = absl::NotFoundError("case PRM-2026-000001 not found");
  call.latency = absl::Milliseconds(2);
  (*m)->OnCallDone(call);
  const std::string text = (*m)->Scrape();
  EXPECT_THAT(MetricValue(text, "permit_requests_total{code=\"NOT_FOUND\",method=\"GetCase\"}"),
              Optional(1.0));
  EXPECT_THAT(MetricValue(text, "permit_refused_total{code=\"NOT_FOUND\"}"), Optional(1.0));
  // 2 ms lands in the 2.5 ms bucket, not the 1 ms one.
  EXPECT_THAT(MetricValue(text, "permit_request_duration_seconds_bucket{code=\"NOT_FOUND\",method=\"GetCase\",le=\"0.001\"}"),
              Optional(0.0));
  EXPECT_THAT(MetricValue(text, "permit_request_duration_seconds_bucket{code=\"NOT_FOUND\",method=\"GetCase\",le=\"0.0025\"}"),
              Optional(1.0));
  // No server attached: no gauges read from one.
  EXPECT_THAT(text, Not(HasSubstr("permit_log_events")));
}

}  // namespace
}  // namespace permit::server
