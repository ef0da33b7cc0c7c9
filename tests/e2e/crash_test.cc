// Crash test: the real permitd process under concurrent load is killed with
// SIGKILL, restarted on the same data folder, and must still hold every
// action it acknowledged, with sequence numbers 1..N without a gap and a head
// root equal to the Merkle root recomputed from every stored event.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>

#include "core/checkpoint.h"
#include "core/merkle.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "permit/client.h"
#include "tests/e2e/permitd_process.h"
#include "tests/test_util.h"

namespace permit {
namespace {

using ::permit::testing::IsOk;
using ::permit::testing::TempDir;
using ::permit::testing::ValidApplication;
using ::testing::Gt;

// Progress on stderr, with seconds since the test binary started.
void Log(const std::string& what) {
  static const absl::Time start = absl::Now();
  std::cerr << "[crash_test +" << absl::ToDoubleSeconds(absl::Now() - start)
            << "s] " << what << std::endl;
}

// Hex SHA-256, as the principals file stores tokens.
std::string Sha256Hex(const std::string& s) { return core::ToHex(core::Sha256(s)); }


struct Ack {
  std::string principal;
  std::string request_id;
  std::string case_id;
  int64_t version;
};

class CrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    principals_ = dir_.path() + "/principals.json";
    std::ofstream(principals_)
        << "{\"principals\": ["
        << "{\"id\": \"exp-acme\", \"role\": \"exporter\", \"org\": \"acme\", "
           "\"token_sha256\": \"" << Sha256Hex("t-exp") << "\"},"
        << "{\"id\": \"rev-1\", \"role\": \"reviewer\", \"token_sha256\": \""
        << Sha256Hex("t-rev") << "\"},"
        << "{\"id\": \"aud-1\", \"role\": \"auditor\", \"token_sha256\": \""
        << Sha256Hex("t-aud") << "\"}]}";
    signing_key_ = dir_.path() + "/log-key.pem";
    absl::StatusOr<std::string> pem = core::NewSigningKeyPem();
    ASSERT_THAT(pem, IsOk());
    std::ofstream(signing_key_) << *pem;
    port_ = testing::FreePort();
    server_ = std::make_unique<testing::PermitdProcess>(dir_.path() + "/data", principals_,
                                               signing_key_, port_);
    // The test drives as many actions as it can: no per-principal rate limit.
    server_->SetEnvironment({"PERMIT_RATE_LIMIT=0"}, /*origin_from_env=*/false);
  }

  std::unique_ptr<Client> Connect(const std::string& token, int attempts = 1) {
    ClientOptions options;
    options.insecure = true;  // the test server is plaintext on loopback
    options.address = "127.0.0.1:" + std::to_string(port_);
    options.token = token;
    options.deadline = absl::Seconds(3);
    options.max_attempts = attempts;
    return *Client::Connect(options);
  }

  // Starts permitd and waits until it answers.
  void StartAndWait() {
    server_->Start();
    for (int i = 0; i < 200; ++i) {
      // A fresh channel each time: a refused one waits out gRPC's reconnect
      // backoff before it tries again.
      if (Connect("t-aud")->GetLogHead().ok()) return;
      absl::SleepFor(absl::Milliseconds(50));
    }
    FAIL() << "permitd did not start; see " << dir_.path() << "/data/permitd.log";
  }

  // Concurrent submits and reviews until permitd dies; returns what it acked.
  std::vector<Ack> LoadUntilKilled(absl::Duration run_for) {
    std::mutex mu;
    std::vector<Ack> acks;
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        std::unique_ptr<Client> exporter = Connect("t-exp");
        std::unique_ptr<Client> reviewer = Connect("t-rev");
        for (int i = 0; !stop; ++i) {
          v1::SubmitCaseRequest s;
          s.set_request_id(Client::NewRequestId());
          *s.mutable_application() = ValidApplication();
          absl::StatusOr<v1::Case> c = exporter->SubmitCase(s);
          if (!c.ok()) continue;
          {
            std::lock_guard<std::mutex> lock(mu);
            acks.push_back({"exp-acme", s.request_id(), c->id(), c->version()});
          }
          v1::ReviewCaseRequest r;
          r.set_request_id(Client::NewRequestId());
          r.set_case_id(c->id());
          r.set_expected_version(c->version());
          r.set_recommendation(v1::RECOMMENDATION_REJECT);
          r.set_findings("Load test " + std::to_string(t));
          absl::StatusOr<v1::Case> reviewed = reviewer->ReviewCase(r);
          if (!reviewed.ok()) continue;
          std::lock_guard<std::mutex> lock(mu);
          acks.push_back({"rev-1", r.request_id(), reviewed->id(), reviewed->version()});
        }
      });
    }
    absl::SleepFor(run_for);
    const int status = server_->Kill(SIGKILL);
    EXPECT_TRUE(WIFSIGNALED(status));
    stop = true;
    for (auto& t : threads) t.join();
    return acks;
  }

  // Every acked action is stored; the log is gapless and hashes to its head.
  void CheckLog(const std::vector<Ack>& acks) {
    std::unique_ptr<Client> auditor = Connect("t-aud", 3);
    for (const Ack& ack : acks) {
      absl::StatusOr<v1::GetCaseHistoryResponse> h = auditor->GetCaseHistory(ack.case_id);
      ASSERT_THAT(h, IsOk()) << ack.case_id;
      ASSERT_GE(h->events_size(), ack.version) << ack.case_id;
      const v1::Event& e = h->events(static_cast<int>(ack.version - 1));
      EXPECT_EQ(e.request_id(), ack.request_id) << ack.case_id;
      EXPECT_EQ(e.actor().principal_id(), ack.principal);
    }
    std::vector<core::Hash> leaves;
    uint64_t expected = 1;
    v1::ReadLogRequest r;
    r.set_include_event_bytes(true);
    ASSERT_THAT(auditor->ReadLog(r, [&](const v1::LogEntry& e) {
      EXPECT_EQ(e.event().sequence(), expected++);
      leaves.push_back(core::LeafHash(e.event_bytes()));
      return true;
    }),
                IsOk());
    absl::StatusOr<v1::LogHead> head = auditor->GetLogHead();
    ASSERT_THAT(head, IsOk());
    EXPECT_EQ(head->tree_size(), leaves.size());
    EXPECT_EQ(head->root_hash(),
              std::string(core::AsBytes(core::RootFromLeafHashes(leaves))));
  }

  TempDir dir_;
  std::string principals_;
  std::string signing_key_;
  int port_ = 0;
  std::unique_ptr<testing::PermitdProcess> server_;
};

TEST_F(CrashTest, KilledServerKeepsEveryAcknowledgedAction) {
  std::vector<Ack> all;
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    StartAndWait();
    Log("loading");
    std::vector<Ack> acks = LoadUntilKilled(absl::Milliseconds(1500));
    Log("killed after " + std::to_string(acks.size()) + " acknowledged actions");
    ASSERT_THAT(acks.size(), Gt(10u)) << "the load produced too little to test";
    all.insert(all.end(), acks.begin(), acks.end());
    StartAndWait();
    Log("restarted");
    CheckLog(all);
    Log("checked");

    // A retry of an acknowledged submit gets the original case, nothing new.
    std::unique_ptr<Client> exporter = Connect("t-exp", 3);
    std::unique_ptr<Client> auditor = Connect("t-aud", 3);
    const Ack& first = all.front();
    absl::StatusOr<v1::LogHead> before = auditor->GetLogHead();
    ASSERT_THAT(before, IsOk());
    v1::SubmitCaseRequest retry;
    retry.set_request_id(first.request_id);
    *retry.mutable_application() = ValidApplication();
    absl::StatusOr<v1::Case> c = exporter->SubmitCase(retry);
    ASSERT_THAT(c, IsOk());
    EXPECT_EQ(c->id(), first.case_id);
    absl::StatusOr<v1::LogHead> after = auditor->GetLogHead();
    ASSERT_THAT(after, IsOk());
    EXPECT_EQ(after->tree_size(), before->tree_size());
    server_->Kill(SIGKILL);
  }
  // Finally a clean stop: SIGTERM exits 0.
  StartAndWait();
  const int status = server_->Kill(SIGTERM);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace permit
