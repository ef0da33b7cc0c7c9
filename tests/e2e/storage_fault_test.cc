// Storage fault test: the real permitd process loses the ability to write
// (RLIMIT_FSIZE lowered on the running process, so the WAL write fails with
// EFBIG) while many clients submit. Every failed request must get
// UNAVAILABLE or INTERNAL, no request may get OK for an event that is not on
// disk, and once one write has failed every later write must fail too while
// reads go on. Restarted without the limit on the same data folder, permitd
// must hold every action it acknowledged, with sequence numbers 1..N without
// a gap, a head root equal to the root that `permitd verify` recomputes, and
// take writes again.
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "core/checkpoint.h"
#include "core/merkle.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "permit/client.h"
#include "tests/e2e/permitd_process.h"
#include "tests/test_util.h"

namespace permit {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::permit::testing::IsOk;
using ::permit::testing::StatusIs;
using ::permit::testing::TempDir;
using ::permit::testing::ValidApplication;
using ::testing::AnyOf;
using ::testing::Gt;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// Progress on stderr, with seconds since the test binary started.
void Log(const std::string& what) {
  static const absl::Time start = absl::Now();
  std::cerr << "[storage_fault_test +" << absl::ToDoubleSeconds(absl::Now() - start)
            << "s] " << what << std::endl;
}

// Hex SHA-256, as the principals file stores tokens.
std::string Sha256Hex(const std::string& s) { return core::ToHex(core::Sha256(s)); }

// An action permitd answered OK: the case as the answer showed it.
struct Ack {
  std::string principal;
  std::string request_id;
  v1::Case result;
};

// A submit permitd refused, and when the answer arrived.
struct Failure {
  std::string principal;
  std::string request_id;
  absl::Status status;
  Clock::time_point answered;
};

// What a phase of concurrent submits produced.
struct LoadResult {
  std::vector<Ack> acks;
  std::vector<Clock::time_point> ack_sent;  // when each ack's request left
  std::vector<Failure> failures;
};

constexpr int kThreads = 8;  // load threads, each its own exporter

std::string Exporter(int thread) { return "exp-" + std::to_string(thread); }

// Calls `fn` again while permitd answers RESOURCE_EXHAUSTED (its
// per-principal rate limit; bounded at about 10 s): that refusal comes
// before anything is queued, and this test is about what happens behind it.
template <typename Fn>
auto Unthrottled(Fn fn) -> decltype(fn()) {
  for (int attempt = 1;; ++attempt) {
    auto result = fn();
    if (result.status().code() != absl::StatusCode::kResourceExhausted ||
        attempt == 1000) {
      return result;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

// The size of the largest file under `dir`.
uintmax_t LargestFile(const std::string& dir) {
  uintmax_t largest = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) largest = std::max(largest, entry.file_size());
  }
  return largest;
}

// Runs `permitd verify --data=DIR` and returns its stdout ("OK: N events, ...
// root <hex>, ..." or "FAILED: ..."); its exit status goes to `exit_status`.
std::string RunVerify(const std::string& data, int* exit_status) {
  const std::string command = std::string("'") + PERMITD_PATH + "' verify '--data=" +
                              data + "' 2>>'" + data + "/verify.log'";
  FILE* out = popen(command.c_str(), "r");
  if (out == nullptr) return "popen failed";
  std::string text;
  char buf[512];
  while (fgets(buf, sizeof(buf), out) != nullptr) text += buf;
  *exit_status = pclose(out);
  return text;
}

// The hex root in `permitd verify` output, "" if there is none.
std::string VerifiedRoot(const std::string& output) {
  const std::string marker = ", root ";
  const size_t at = output.find(marker);
  if (at == std::string::npos) return "";
  const size_t begin = at + marker.size();
  return output.substr(begin, output.find(',', begin) - begin);
}

class StorageFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    principals_ = dir_.path() + "/principals.json";
    // One exporter per load thread: permitd rate-limits each principal.
    std::ofstream out(principals_);
    out << "{\"principals\": [";
    for (int t = 0; t < kThreads; ++t) {
      out << "{\"id\": \"" << Exporter(t) << "\", \"role\": \"exporter\", "
          << "\"org\": \"acme\", \"token_sha256\": \"" << Sha256Hex("t-" + Exporter(t))
          << "\"},";
    }
    out << "{\"id\": \"rev-1\", \"role\": \"reviewer\", \"token_sha256\": \""
        << Sha256Hex("t-rev") << "\"},"
        << "{\"id\": \"aud-1\", \"role\": \"auditor\", \"token_sha256\": \""
        << Sha256Hex("t-aud") << "\"}]}";
    out.close();
    signing_key_ = dir_.path() + "/log-key.pem";
    absl::StatusOr<std::string> pem = core::NewSigningKeyPem();
    ASSERT_THAT(pem, IsOk());
    std::ofstream(signing_key_) << *pem;
    data_ = dir_.path() + "/data";
    port_ = testing::FreePort();
    server_ = std::make_unique<testing::PermitdProcess>(data_, principals_,
                                                        signing_key_, port_);
    // permitd ignores SIGXFSZ itself; ignoring it before exec as well keeps
    // this test about the write path, whatever main() does.
    server_->IgnoreFileSizeSignal(true);
  }

  // One attempt per call: the test sees every answer permitd gives.
  std::unique_ptr<Client> Connect(const std::string& token, int attempts = 1) {
    ClientOptions options;
    options.address = "127.0.0.1:" + std::to_string(port_);
    options.token = token;
    // Generous: a deadline that expires after permitd wrote the event would
    // hide an acknowledgement (two shared cores, fsync per batch).
    options.deadline = absl::Seconds(20);
    options.max_attempts = attempts;
    options.insecure = true;  // the test's permitd serves plaintext on loopback
    return *Client::Connect(options);
  }

  // Starts permitd and waits until it answers.
  void StartAndWait() {
    server_->Start();
    for (int i = 0; i < 200; ++i) {
      // A fresh channel each time: a refused one waits out gRPC's reconnect
      // backoff before it tries again.
      if (Unthrottled([&] { return Connect("t-aud")->GetLogHead(); }).ok()) return;
      absl::SleepFor(absl::Milliseconds(50));
    }
    FAIL() << "permitd did not start; see " << data_ << "/permitd.log";
  }

  // `threads` exporters (exp-0, exp-1, ...) submit, and with `review`
  // rev-1 reviews each new case, until each thread has made `per_thread`
  // submits, `failures_wanted` actions have failed, or `time_limit` is up.
  // Every thread is joined before it returns.
  LoadResult Load(int threads, int per_thread, bool review, size_t failures_wanted,
                  absl::Duration time_limit) {
    std::mutex mu;
    LoadResult result;
    std::atomic<bool> stop{false};
    const absl::Time give_up = absl::Now() + time_limit;
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        std::unique_ptr<Client> exporter = Connect("t-" + Exporter(t));
        std::unique_ptr<Client> reviewer = Connect("t-rev");
        // Records an answer; true if it was OK.
        auto record = [&](const std::string& principal, const std::string& request_id,
                          Clock::time_point sent, const absl::StatusOr<v1::Case>& c) {
          std::lock_guard<std::mutex> lock(mu);
          if (c.ok()) {
            result.acks.push_back({principal, request_id, *c});
            result.ack_sent.push_back(sent);
            return true;
          }
          result.failures.push_back({principal, request_id, c.status(), Clock::now()});
          if (result.failures.size() >= failures_wanted) stop = true;
          return false;
        };
        for (int i = 0; i < per_thread && !stop && absl::Now() < give_up; ++i) {
          v1::SubmitCaseRequest s;
          s.set_request_id(Client::NewRequestId());
          *s.mutable_application() = ValidApplication();
          Clock::time_point sent;
          absl::StatusOr<v1::Case> c = Unthrottled([&] {
            sent = Clock::now();
            return exporter->SubmitCase(s);
          });
          if (!record(Exporter(t), s.request_id(), sent, c) || !review) continue;
          v1::ReviewCaseRequest r;
          r.set_request_id(Client::NewRequestId());
          r.set_case_id(c->id());
          r.set_expected_version(c->version());
          r.set_recommendation(v1::RECOMMENDATION_APPROVE);
          r.set_findings("Storage fault test " + std::to_string(t));
          absl::StatusOr<v1::Case> reviewed = Unthrottled([&] {
            sent = Clock::now();
            return reviewer->ReviewCase(r);
          });
          record("rev-1", r.request_id(), sent, reviewed);
        }
      });
    }
    for (std::thread& w : workers) w.join();
    return result;
  }

  TempDir dir_;
  std::string principals_;
  std::string signing_key_;
  std::string data_;
  int port_ = 0;
  std::unique_ptr<testing::PermitdProcess> server_;
};

TEST_F(StorageFaultTest, FailedWriteStopsWritesAndLosesNothingAcknowledged) {
  Log("starting permitd");
  ASSERT_NO_FATAL_FAILURE(StartAndWait());

  // 1. A known set of acknowledged actions, written with no limit.
  LoadResult before = Load(/*threads=*/4, /*per_thread=*/50, /*review=*/true,
                           /*failures_wanted=*/1, absl::Seconds(60));
  ASSERT_TRUE(before.failures.empty()) << before.failures.front().status;
  ASSERT_EQ(before.acks.size(), 400u);
  Log("wrote " + std::to_string(before.acks.size()) + " actions");

  // 2. From now on no file may grow more than 1 MiB past the largest one
  // (the WAL): about a thousand more submits fit, then the WAL write fails.
  const uintmax_t limit = LargestFile(data_) + (1 << 20);
  ASSERT_EQ(server_->LimitFileSize(limit), 0) << "prlimit(RLIMIT_FSIZE)";
  Log("RLIMIT_FSIZE " + std::to_string(limit) + " bytes");
  LoadResult during = Load(kThreads, /*per_thread=*/100000, /*review=*/false,
                           /*failures_wanted=*/40, absl::Seconds(20));
  Log(std::to_string(during.acks.size()) + " acknowledged, " +
      std::to_string(during.failures.size()) + " failed");
  ASSERT_THAT(during.failures.size(), Gt(0u)) << "the file-size limit was never hit";
  ASSERT_THAT(during.acks.size(), Gt(0u)) << "the limit left no room for a write";

  // Every refusal says "retry later" or "server fault", nothing else.
  std::set<std::string> messages;
  for (const Failure& f : during.failures) {
    EXPECT_THAT(f.status.code(), AnyOf(absl::StatusCode::kUnavailable,
                                       absl::StatusCode::kInternal))
        << f.status;
    messages.insert(f.status.ToString());
  }
  for (const std::string& m : messages) Log("refusal: " + m);

  // The latch: no request sent after a refusal arrived was acknowledged.
  Clock::time_point first_refusal = during.failures.front().answered;
  for (const Failure& f : during.failures) {
    first_refusal = std::min(first_refusal, f.answered);
  }
  for (size_t i = 0; i < during.acks.size(); ++i) {
    EXPECT_LT(during.ack_sent[i], first_refusal)
        << during.acks[i].result.id() << " was acknowledged after a write failed";
  }

  // Acknowledged actions hold sequence numbers 1..K without a gap: every OK
  // came from a batch committed before the failed one.
  std::vector<Ack> acks = before.acks;
  acks.insert(acks.end(), during.acks.begin(), during.acks.end());
  std::vector<uint64_t> sequences;
  for (const Ack& a : acks) sequences.push_back(a.result.last_sequence());
  std::sort(sequences.begin(), sequences.end());
  for (size_t i = 0; i < sequences.size(); ++i) {
    ASSERT_EQ(sequences[i], i + 1) << "acknowledged sequence numbers have a gap";
  }
  const uint64_t acked_size = sequences.size();

  // 3. The faulted permitd keeps running, refuses every write and serves
  // reads of what it acknowledged; its database on disk holds exactly that.
  std::string faulted_root;
  ASSERT_TRUE(server_->Running()) << "permitd exited on the storage fault; see "
                                  << data_ << "/permitd.log";
  {
    std::unique_ptr<Client> exporter = Connect("t-" + Exporter(0));
    std::unique_ptr<Client> reviewer = Connect("t-rev");
    std::unique_ptr<Client> auditor = Connect("t-aud");
    for (int i = 0; i < 5; ++i) {
      v1::SubmitCaseRequest s;
      *s.mutable_application() = ValidApplication();
      absl::StatusOr<v1::Case> c = Unthrottled([&] { return exporter->SubmitCase(s); });
      EXPECT_THAT(c, StatusIs(absl::StatusCode::kUnavailable));
      EXPECT_THAT(std::string(c.status().message()), HasSubstr("stopped taking writes"));
    }
    // Another kind of action, on a case that exists, is refused the same way.
    const v1::Case& submitted = during.acks.front().result;
    v1::ReviewCaseRequest r;
    r.set_case_id(submitted.id());
    r.set_expected_version(submitted.version());
    r.set_recommendation(v1::RECOMMENDATION_REJECT);
    r.set_findings("After the fault");
    EXPECT_THAT(Unthrottled([&] { return reviewer->ReviewCase(r); }),
                StatusIs(absl::StatusCode::kUnavailable));

    // It tells health probes it can no longer serve, and says why in its log.
    EXPECT_THAT(auditor->CheckHealth(),
                StatusIs(absl::StatusCode::kUnavailable, HasSubstr("NOT_SERVING")));
    {
      std::ifstream log(data_ + "/permitd.log");
      std::stringstream text;
      text << log.rdbuf();
      EXPECT_THAT(text.str(), HasSubstr("STORAGE FAILURE, writes stopped until restart"));
    }

    absl::StatusOr<v1::LogHead> head = Unthrottled([&] { return auditor->GetLogHead(); });
    ASSERT_THAT(head, IsOk());
    EXPECT_EQ(head->tree_size(), acked_size);
    absl::StatusOr<core::Hash> root = core::HashFromBytes(head->root_hash());
    ASSERT_THAT(root, IsOk());
    faulted_root = core::ToHex(*root);
    absl::StatusOr<v1::Case> read = Unthrottled([&] { return exporter->GetCase(submitted.id()); });
    ASSERT_THAT(read, IsOk());
    EXPECT_TRUE(MessageDifferencer::Equals(*read, submitted)) << read->DebugString();
    uint64_t entries = 0;
    EXPECT_THAT(auditor->ReadLog(v1::ReadLogRequest(), [&](const v1::LogEntry&) {
      ++entries;
      return true;
    }),
                IsOk());
    EXPECT_EQ(entries, acked_size);
  }
  {
    int verify_status = -1;
    const std::string verified = RunVerify(data_, &verify_status);
    Log("permitd verify, faulted permitd still running: " + verified);
    EXPECT_THAT(verified, HasSubstr("OK: " + std::to_string(acked_size) + " events"));
    EXPECT_EQ(VerifiedRoot(verified), faulted_root) << verified;
  }
  ASSERT_TRUE(server_->Running());

  // 4. Stop it (SIGTERM; SIGKILL after 10 s) with the limit still in place.
  const int status = server_->Stop(std::chrono::seconds(10));
  Log("faulted permitd stopped: " +
      (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                         : "signal " + std::to_string(WTERMSIG(status))));
  EXPECT_TRUE(WIFEXITED(status)) << "SIGTERM did not stop the faulted permitd";
  {
    // What an operator would see, without the per-call lines.
    std::ifstream in(data_ + "/permitd.log");
    std::string text;
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("permitd: call ", 0) != 0) text += line + "\n";
    }
    Log("the faulted permitd's stderr:\n" + text);
  }

  // 5. Restarted without the limit: nothing acknowledged is lost. Every case
  // is as last acknowledged (all cases, a few pages of ListCases)...
  ASSERT_NO_FATAL_FAILURE(StartAndWait());
  std::unique_ptr<Client> auditor = Connect("t-aud", 3);
  std::map<std::string, v1::Case> latest;  // case id -> last acknowledged
  for (const Ack& a : acks) {
    v1::Case& c = latest[a.result.id()];
    if (a.result.version() > c.version()) c = a.result;
  }
  std::map<std::string, v1::Case> stored;
  v1::ListCasesRequest list;
  list.set_page_size(500);
  do {
    absl::StatusOr<v1::ListCasesResponse> page =
        Unthrottled([&] { return auditor->ListCases(list); });
    ASSERT_THAT(page, IsOk());
    for (const v1::Case& c : page->cases()) stored[c.id()] = c;
    list.set_page_token(page->next_page_token());
  } while (!list.page_token().empty());
  for (const auto& [id, acked] : latest) {
    auto it = stored.find(id);
    ASSERT_NE(it, stored.end()) << id << " was acknowledged and is gone";
    EXPECT_TRUE(MessageDifferencer::Equals(it->second, acked))
        << id << " now:\n" << it->second.DebugString() << "acknowledged:\n"
        << acked.DebugString();
  }

  // ... the log is gapless and holds each acknowledged action at its
  // sequence number; past the acknowledged prefix it may only hold refused
  // requests (their outcome was unknown to the caller), nothing else.
  std::map<uint64_t, const Ack*> by_sequence;
  for (const Ack& a : acks) by_sequence[a.result.last_sequence()] = &a;
  std::set<std::string> refused;
  for (const Failure& f : during.failures) refused.insert(f.request_id);
  std::vector<core::Hash> leaves;
  uint64_t expected = 1;
  v1::ReadLogRequest read_all;
  read_all.set_include_event_bytes(true);
  ASSERT_THAT(auditor->ReadLog(read_all, [&](const v1::LogEntry& entry) {
    const v1::Event& e = entry.event();
    EXPECT_EQ(e.sequence(), expected++);
    if (auto it = by_sequence.find(e.sequence()); it != by_sequence.end()) {
      const Ack& a = *it->second;
      EXPECT_EQ(e.request_id(), a.request_id) << e.sequence();
      EXPECT_EQ(e.actor().principal_id(), a.principal) << e.sequence();
      EXPECT_EQ(e.case_id(), a.result.id()) << e.sequence();
      EXPECT_EQ(e.case_version(), a.result.version()) << e.sequence();
    } else {
      EXPECT_GT(e.sequence(), acked_size);
      EXPECT_TRUE(refused.count(e.request_id()))
          << "sequence " << e.sequence() << " is no request of this test";
    }
    leaves.push_back(core::LeafHash(entry.event_bytes()));
    return true;
  }),
              IsOk());
  Log("restarted: " + std::to_string(leaves.size()) + " events in the log, " +
      std::to_string(acked_size) + " acknowledged");
  EXPECT_GE(leaves.size(), acked_size);

  // ... and the head's root is the root of those events, as `permitd
  // verify` recomputes it from the database.
  absl::StatusOr<v1::LogHead> head = Unthrottled([&] { return auditor->GetLogHead(); });
  ASSERT_THAT(head, IsOk());
  EXPECT_EQ(head->tree_size(), leaves.size());
  const core::Hash root = core::RootFromLeafHashes(leaves);
  EXPECT_EQ(head->root_hash(), std::string(core::AsBytes(root)));
  int verify_status = -1;
  const std::string verified = RunVerify(data_, &verify_status);
  Log("permitd verify: " + verified);
  EXPECT_TRUE(WIFEXITED(verify_status) && WEXITSTATUS(verify_status) == 0) << verified;
  EXPECT_THAT(verified, HasSubstr("OK: " + std::to_string(leaves.size()) + " events"));
  EXPECT_EQ(VerifiedRoot(verified), core::ToHex(root)) << verified;

  // 6. Writes work again, and a refused request retried with its own id
  // succeeds (as a new case, or as the one written if it was).
  std::unique_ptr<Client> exporter = Connect("t-" + Exporter(0), 3);
  v1::SubmitCaseRequest s;
  *s.mutable_application() = ValidApplication();
  absl::StatusOr<v1::Case> fresh = Unthrottled([&] { return exporter->SubmitCase(s); });
  ASSERT_THAT(fresh, IsOk());
  EXPECT_EQ(fresh->last_sequence(), leaves.size() + 1);
  const Failure& refusal = during.failures.front();
  v1::SubmitCaseRequest retry;
  retry.set_request_id(refusal.request_id);
  *retry.mutable_application() = ValidApplication();
  std::unique_ptr<Client> original = Connect("t-" + refusal.principal, 3);
  EXPECT_THAT(Unthrottled([&] { return original->SubmitCase(retry); }), IsOk());

  // Channels close first: with one open, permitd's graceful stop waits out
  // its whole grace period (5 s) for the connection.
  auditor.reset();
  exporter.reset();
  original.reset();

  const int clean = server_->Stop(std::chrono::seconds(10));
  ASSERT_TRUE(WIFEXITED(clean));
  EXPECT_EQ(WEXITSTATUS(clean), 0);
}

}  // namespace
}  // namespace permit
