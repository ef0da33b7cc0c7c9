// Tests the SDK's auditing (client/src/audit.cc, permit/audit.h) and the
// AuditService features it relies on, against permitd in-process on a
// loopback port with a fixed signing key, driven through the SDK:
//   - VerifyLog on a real log; trust on first use (said out loud, key
//     saved) and, on later runs, consistency with the checkpoint verified
//     last time; a checkpoint signed by another key; a forged but
//     self-consistent history, or a log that shrank, served on the same
//     address after the auditor saved a checkpoint; VerifyLog while the log
//     grows;
//   - ExportLog and VerifyExport, whole and by range; every flipped byte in
//     an export's events; the wrong key or none;
//   - point-in-time GetCase and GetCaseHistory against a replay done by
//     hand with core::ApplyEvent;
//   - inclusion and consistency proofs for every sequence and size, who may
//     ask for them, and bad sizes;
//   - ReadLog's audit filters (actor, action, time range) against a filter
//     applied by hand to the whole log.
#include "permit/audit.h"

#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/types/span.h"
#include "core/checkpoint.h"
#include "core/merkle.h"
#include "core/rules.h"
#include "gmock/gmock.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "permit/client.h"
#include "server/auth.h"
#include "server/server.h"
#include "tests/server/test_principals.h"
#include "tests/test_util.h"

namespace permit {
namespace {

namespace fs = std::filesystem;
using ::google::protobuf::util::MessageDifferencer;
using ::permit::server::PermitServer;
using ::permit::server::PrincipalRegistry;
using ::permit::server::ServerOptions;
using ::permit::testing::IsOk;
using ::permit::testing::StatusIs;
using ::permit::testing::TempDir;
using ::permit::testing::ValidApplication;
using ::testing::AllOf;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

constexpr char kOrigin[] = "permit.invalid/log";

MATCHER_P(EqualsProto, expected, "equals " + expected.ShortDebugString()) {
  std::string diff;
  MessageDifferencer d;
  d.ReportDifferencesToString(&diff);
  if (d.Compare(expected, arg)) return true;
  *result_listener << "differs: " << diff;
  return false;
}

google::protobuf::Timestamp ToProto(absl::Time t) {
  google::protobuf::Timestamp p;
  const int64_t ns = absl::ToUnixNanos(t);
  p.set_seconds(ns / 1000000000);
  p.set_nanos(static_cast<int32_t>(ns % 1000000000));
  return p;
}

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

std::string Hex(const std::string& bytes) {
  return absl::BytesToHexString(bytes);
}

// The verifier key of a fresh key pair named `name`.
std::string OtherVerifierKey(const std::string& name = kOrigin) {
  absl::StatusOr<std::string> pem = core::NewSigningKeyPem();
  EXPECT_THAT(pem, IsOk());
  absl::StatusOr<std::unique_ptr<core::NoteSigner>> signer =
      core::NoteSigner::Create(*pem, name);
  EXPECT_THAT(signer, IsOk());
  return (*signer)->verifier_key();
}

// One permitd and a client per principal. Every server of a test shares the
// principals; each has its own data folder, signing key and address.
class Permitd {
 public:
  Permitd() = default;

  static std::unique_ptr<Permitd> Start(const PrincipalRegistry& registry,
                                        const std::string& db_path,
                                        const std::string& signing_key_pem,
                                        const std::string& listen,
                                        std::function<absl::Time()> clock) {
    ServerOptions options;
    options.listen = listen;
    options.db_path = db_path;
    options.principals = registry;
    options.shutdown_grace = absl::Seconds(1);
    options.signing_key_pem = signing_key_pem;
    options.log_origin = kOrigin;
    if (clock) options.manager.clock = std::move(clock);
    absl::StatusOr<std::unique_ptr<PermitServer>> server =
        PermitServer::Start(std::move(options));
    EXPECT_THAT(server, IsOk());
    if (!server.ok()) return nullptr;
    auto d = std::make_unique<Permitd>();
    d->server_ = *std::move(server);
    for (const auto& [id, role, org] : testing::TestPrincipalList()) {
      ClientOptions c;
      c.insecure = true;  // the test server is plaintext on loopback
      c.address = absl::StrCat("127.0.0.1:", d->server_->port());
      c.token = std::string("token-") + id;
      c.deadline = absl::Seconds(10);
      c.max_attempts = 1;
      absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(c);
      EXPECT_THAT(client, IsOk());
      d->clients_[id] = *std::move(client);
    }
    return d;
  }

  ~Permitd() { Stop(); }

  void Stop() {
    clients_.clear();
    if (server_ != nullptr) server_->Shutdown();
    server_.reset();
  }

  Client& as(const std::string& who) { return *clients_.at(who); }
  PermitServer& server() { return *server_; }
  int port() const { return server_->port(); }

  // Waits until the signed checkpoint covers `size` events.
  void WaitForCheckpoint(uint64_t size) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    uint64_t seen = 0;
    while (absl::Now() < deadline) {
      absl::StatusOr<v1::SignedCheckpoint> cp = as("aud-1").GetCheckpoint();
      ASSERT_THAT(cp, IsOk());
      seen = cp->tree_size();
      if (seen == size) return;
      absl::SleepFor(absl::Milliseconds(20));
    }
    FAIL() << "the checkpoint reached " << seen << " events, not " << size;
  }

  template <typename Request>
  static Request On(const v1::Case& c, const std::string& reason = "") {
    Request r;
    r.set_case_id(c.id());
    r.set_expected_version(c.version());
    if constexpr (!std::is_same_v<Request, v1::ReviewCaseRequest> &&
                  !std::is_same_v<Request, v1::ApproveCaseRequest>) {
      r.set_reason(reason);
    }
    return r;
  }

  absl::StatusOr<v1::Case> Submit(const std::string& who,
                                  const std::string& country = "JP") {
    v1::SubmitCaseRequest r;
    *r.mutable_application() = ValidApplication();
    r.mutable_application()->set_destination_country(country);
    r.mutable_application()->mutable_end_user()->set_country(country);
    return as(who).SubmitCase(r);
  }
  absl::StatusOr<v1::Case> Review(const v1::Case& c, const std::string& who) {
    auto r = On<v1::ReviewCaseRequest>(c);
    r.set_recommendation(v1::RECOMMENDATION_APPROVE);
    r.set_findings("End user and end use check out.");
    return as(who).ReviewCase(r);
  }
  absl::StatusOr<v1::Case> Approve(const v1::Case& c, const std::string& who) {
    auto r = On<v1::ApproveCaseRequest>(c);
    r.mutable_valid_until()->set_seconds(
        absl::ToUnixSeconds(absl::Now() + absl::Hours(24 * 365 * 2)));
    r.set_conditions("No re-export without authorisation.");
    return as(who).ApproveCase(r);
  }

  // Ten events over three cases, interleaved:
  //   1 submit A (acme)     6 reject B by rev-1
  //   2 submit B (globex)   7 submit C (acme)
  //   3 review A by rev-1   8 suspend A by rev-1
  //   4 review B by rev-2   9 withdraw C by exp-acme
  //   5 approve A by rev-2 10 resume A by rev-2
  void DriveTenEvents() {
    absl::StatusOr<v1::Case> a = Submit("exp-acme");
    ASSERT_THAT(a, IsOk());
    absl::StatusOr<v1::Case> b = Submit("exp-globex", "KR");
    ASSERT_THAT(b, IsOk());
    ASSERT_THAT(a = Review(*a, "rev-1"), IsOk());
    ASSERT_THAT(b = Review(*b, "rev-2"), IsOk());
    ASSERT_THAT(a = Approve(*a, "rev-2"), IsOk());
    ASSERT_THAT(
        b = as("rev-1").RejectCase(On<v1::RejectCaseRequest>(*b, "Listed")),
        IsOk());
    absl::StatusOr<v1::Case> c = Submit("exp-acme");
    ASSERT_THAT(c, IsOk());
    ASSERT_THAT(
        a = as("rev-1").SuspendCase(On<v1::SuspendCaseRequest>(*a, "Policy")),
        IsOk());
    ASSERT_THAT(
        c = as("exp-acme").WithdrawCase(On<v1::WithdrawCaseRequest>(*c)),
        IsOk());
    ASSERT_THAT(
        a = as("rev-2").ResumeCase(On<v1::ResumeCaseRequest>(*a, "Cleared")),
        IsOk());
    ASSERT_EQ(a->last_sequence(), 10u);
  }

  // `n` submits by exp-globex: a history of its own.
  void DriveSubmits(int n) {
    for (int i = 0; i < n; ++i) ASSERT_THAT(Submit("exp-globex", "KR"), IsOk());
  }

  // The whole log as an auditor reads it, with the stored bytes.
  std::vector<v1::LogEntry> ReadAll() {
    std::vector<v1::LogEntry> out;
    v1::ReadLogRequest r;
    r.set_include_event_bytes(true);
    EXPECT_THAT(as("aud-1").ReadLog(r,
                                    [&](const v1::LogEntry& e) {
                                      out.push_back(e);
                                      return true;
                                    }),
                IsOk());
    return out;
  }

 private:
  std::unique_ptr<PermitServer> server_;
  std::map<std::string, std::unique_ptr<Client>> clients_;
};

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<PrincipalRegistry> registry = testing::TestPrincipals();
    ASSERT_THAT(registry, IsOk());
    registry_ = *std::move(registry);
    absl::StatusOr<std::string> pem = core::NewSigningKeyPem();
    ASSERT_THAT(pem, IsOk());
    signing_key_pem_ = *std::move(pem);
    absl::StatusOr<std::unique_ptr<core::NoteSigner>> signer =
        core::NoteSigner::Create(signing_key_pem_, kOrigin);
    ASSERT_THAT(signer, IsOk());
    log_key_ = (*signer)->verifier_key();

    permitd_ = StartPermitd(db_path("main"));
    ASSERT_NE(permitd_, nullptr);
    ASSERT_EQ(permitd_->server().verifier_key(), log_key_);
  }

  std::string db_path(const std::string& name) const {
    return dir_.path() + "/" + name;
  }

  // A permitd with the test's key on `db` (port 0: a free one). Its clock
  // ticks a second per reading, so every event has its own time.
  std::unique_ptr<Permitd> StartPermitd(const std::string& db, int port = 0,
                                        const std::string& pem = "") {
    auto ticks = std::make_shared<std::atomic<int64_t>>(0);
    const absl::Time base = absl::Now();
    return Permitd::Start(registry_, db, pem.empty() ? signing_key_pem_ : pem,
                          absl::StrCat("127.0.0.1:", port), [ticks, base] {
                            return base +
                                   absl::Seconds(ticks->fetch_add(1) + 1);
                          });
  }

  Permitd& permitd() { return *permitd_; }
  Client& as(const std::string& who) { return permitd_->as(who); }

  // Options that pin the test's key and keep nothing.
  VerifyOptions Pinned() const {
    VerifyOptions o;
    o.log_key = log_key_;
    o.remember = false;
    return o;
  }

  // Options that remember checkpoints in `state_dir` and pin nothing.
  static VerifyOptions Remembering(
      const std::string& state_dir,
      std::vector<std::string>* notices = nullptr) {
    VerifyOptions o;
    o.state_dir = state_dir;
    o.remember = true;
    if (notices != nullptr) {
      o.on_notice = [notices](const std::string& n) { notices->push_back(n); };
    }
    return o;
  }

  std::string Export(uint64_t from, uint64_t to) {
    std::ostringstream out;
    absl::StatusOr<uint64_t> n = ExportLog(as("aud-1"), from, to, out);
    EXPECT_THAT(n, IsOk());
    return out.str();
  }

  static absl::StatusOr<VerifyReport> VerifyFile(const std::string& file,
                                                 const VerifyOptions& options) {
    std::istringstream in(file);
    return VerifyExport(in, options);
  }

  TempDir dir_;
  PrincipalRegistry registry_;
  std::string signing_key_pem_;
  std::string log_key_;
  std::unique_ptr<Permitd> permitd_;
};

// The files named `name` anywhere under `dir`.
std::vector<fs::path> FilesNamed(const std::string& dir,
                                 const std::string& name) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    if (e.path().filename() == name) out.push_back(e.path());
  }
  return out;
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// --- VerifyLog --------------------------------------------------------------

TEST_F(AuditTest, VerifyLogChecksARealLog) {
  ASSERT_NO_FATAL_FAILURE(permitd().DriveTenEvents());
  ASSERT_NO_FATAL_FAILURE(permitd().WaitForCheckpoint(10));
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  VerifyOptions options = Pinned();
  options.on_progress = [&](uint64_t done, uint64_t total) {
    progress.emplace_back(done, total);
  };
  absl::StatusOr<VerifyReport> report = VerifyLog(as("aud-1"), options);
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report->events, 10u);
  EXPECT_EQ(report->tree_size, 10u);
  EXPECT_EQ(report->cases, 3u);
  EXPECT_EQ(report->snapshots_checked, 3u);
  EXPECT_EQ(report->previous_size, 0u);
  absl::StatusOr<v1::LogHead> head = as("aud-1").GetLogHead();
  ASSERT_THAT(head, IsOk());
  EXPECT_EQ(report->root_hex, Hex(head->root_hash()));
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), std::make_pair(uint64_t{10}, uint64_t{10}));
  // Nothing pinned and nothing remembered: the key is trusted for this run
  // only, and the user is told.
  std::vector<std::string> notices;
  VerifyOptions unpinned;
  unpinned.remember = false;
  unpinned.on_notice = [&](const std::string& n) { notices.push_back(n); };
  EXPECT_THAT(VerifyLog(as("aud-1"), unpinned), IsOk());
  ASSERT_THAT(notices, SizeIs(1));
  EXPECT_THAT(notices[0], AllOf(HasSubstr("first use"), HasSubstr(log_key_)));
}

TEST_F(AuditTest, VerifyLogOfAnEmptyLog) {
  absl::StatusOr<VerifyReport> report = VerifyLog(as("aud-1"), Pinned());
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report->events, 0u);
  EXPECT_EQ(report->cases, 0u);
  EXPECT_EQ(report->root_hex, core::ToHex(core::EmptyRoot()));
}

TEST_F(AuditTest, TrustOnFirstUseThenConsistencyWithTheSavedCheckpoint) {
  TempDir state;
  ASSERT_NO_FATAL_FAILURE(permitd().DriveTenEvents());
  ASSERT_NO_FATAL_FAILURE(permitd().WaitForCheckpoint(10));

  std::vector<std::string> notices;
  absl::StatusOr<VerifyReport> first =
      VerifyLog(as("aud-1"), Remembering(state.path(), &notices));
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(first->previous_size, 0u);
  EXPECT_EQ(first->events, 10u);
  ASSERT_THAT(notices, SizeIs(1));
  EXPECT_THAT(notices[0], AllOf(HasSubstr("first use"), HasSubstr(log_key_),
                                HasSubstr("saved")));
  std::vector<fs::path> keys = FilesNamed(state.path(), "log-key");
  ASSERT_THAT(keys, SizeIs(1));
  EXPECT_EQ(absl::StripSuffix(ReadFile(keys[0]), "\n"), log_key_);
  std::vector<fs::path> checkpoints = FilesNamed(state.path(), "checkpoint");
  ASSERT_THAT(checkpoints, SizeIs(1));
  absl::StatusOr<CheckpointInfo> saved =
      OpenCheckpoint(ReadFile(checkpoints[0]), log_key_);
  ASSERT_THAT(saved, IsOk());
  EXPECT_EQ(saved->size, 10u);

  // More events; the second run uses the saved key (no notice) and proves
  // the new log extends the one verified before.
  ASSERT_NO_FATAL_FAILURE(permitd().DriveSubmits(3));
  ASSERT_NO_FATAL_FAILURE(permitd().WaitForCheckpoint(13));
  notices.clear();
  absl::StatusOr<VerifyReport> second =
      VerifyLog(as("aud-1"), Remembering(state.path(), &notices));
  ASSERT_THAT(second, IsOk());
  EXPECT_THAT(notices, IsEmpty());
  EXPECT_EQ(second->previous_size, 10u);
  EXPECT_EQ(second->tree_size, 13u);
  EXPECT_EQ(second->events, 13u);
  EXPECT_EQ(second->cases, 6u);
  saved = OpenCheckpoint(ReadFile(checkpoints[0]), log_key_);
  ASSERT_THAT(saved, IsOk());
  EXPECT_EQ(saved->size, 13u);

  // Nothing new: still consistent (equal sizes, equal roots).
  absl::StatusOr<VerifyReport> third =
      VerifyLog(as("aud-1"), Remembering(state.path()));
  ASSERT_THAT(third, IsOk());
  EXPECT_EQ(third->previous_size, 13u);
}

TEST_F(AuditTest, CheckpointSignedByAnotherKeyIsPermissionDenied) {
  ASSERT_NO_FATAL_FAILURE(permitd().DriveTenEvents());
  ASSERT_NO_FATAL_FAILURE(permitd().WaitForCheckpoint(10));
  // Pinned keys that did not sign it: another key of the same name, and a
  // key of another name.
  for (const std::string& key :
       {OtherVerifierKey(), OtherVerifierKey("other.example/log")}) {
    SCOPED_TRACE(key);
    VerifyOptions options = Pinned();
    options.log_key = key;
    EXPECT_THAT(VerifyLog(as("aud-1"), options),
                StatusIs(absl::StatusCode::kPermissionDenied));
    EXPECT_THAT(FetchVerifiedCheckpoint(as("aud-1"), options),
                StatusIs(absl::StatusCode::kPermissionDenied));
  }

  // A key saved on first use is required later: the same address serving
  // checkpoints signed by another key is refused.
  TempDir state;
  ASSERT_THAT(VerifyLog(as("aud-1"), Remembering(state.path())), IsOk());
  const int port = permitd().port();
  permitd_->Stop();
  absl::StatusOr<std::string> other_pem = core::NewSigningKeyPem();
  ASSERT_THAT(other_pem, IsOk());
  std::unique_ptr<Permitd> impostor =
      StartPermitd(db_path("main"), port, *other_pem);
  ASSERT_NE(impostor, nullptr);
  std::vector<std::string> notices;
  absl::StatusOr<VerifyReport> r =
      VerifyLog(impostor->as("aud-1"), Remembering(state.path(), &notices));
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(notices, IsEmpty());
}

TEST_F(AuditTest, RewrittenHistoryServedAfterACheckpointWasSavedIsCaught) {
  ASSERT_NO_FATAL_FAILURE(permitd().DriveTenEvents());
  ASSERT_NO_FATAL_FAILURE(permitd().WaitForCheckpoint(10));
  const int port = permitd().port();
  permitd_->Stop();

  // Each forgery is a self-consistent log signed with the real key, served
  // on the address the auditor verified before.
  struct Forgery {
    std::string name;
    int events;
    std::string says;
  };
  const std::vector<Forgery> forgeries = {
      {"other history, more events", 14, "rewritten"},
      {"other history, same size", 10, "rewritten"},
      {"other history, fewer events", 5, "shrank"},
  };
  int n = 0;
  for (const Forgery& forgery : forgeries) {
    SCOPED_TRACE(forgery.name);
    TempDir state;
    {
      // The auditor verifies the real log and saves its checkpoint.
      std::unique_ptr<Permitd> real = StartPermitd(db_path("main"), port);
      ASSERT_NE(real, nullptr);
      absl::StatusOr<VerifyReport> r =
          VerifyLog(real->as("aud-1"), Remembering(state.path()));
      ASSERT_THAT(r, IsOk());
      ASSERT_EQ(r->tree_size, 10u);
    }
    std::unique_ptr<Permitd> forged =
        StartPermitd(db_path(absl::StrCat("forged-", ++n)), port);
    ASSERT_NE(forged, nullptr);
    ASSERT_NO_FATAL_FAILURE(forged->DriveSubmits(forgery.events));
    ASSERT_NO_FATAL_FAILURE(forged->WaitForCheckpoint(forgery.events));
    // On its own the forgery is a valid log under the same key.
    EXPECT_THAT(VerifyLog(forged->as("aud-1"), Pinned()), IsOk());
    absl::StatusOr<VerifyReport> r =
        VerifyLog(forged->as("aud-1"), Remembering(state.path()));
    EXPECT_THAT(r, StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(forgery.says));
    // The saved checkpoint is not replaced by the forgery's.
    std::vector<fs::path> saved = FilesNamed(state.path(), "checkpoint");
    ASSERT_THAT(saved, SizeIs(1));
    absl::StatusOr<CheckpointInfo> info =
        OpenCheckpoint(ReadFile(saved[0]), log_key_);
    ASSERT_THAT(info, IsOk());
    EXPECT_EQ(info->size, 10u);
  }

  // The honest server restarted on that address, grown, still passes.
  TempDir state;
  std::unique_ptr<Permitd> real = StartPermitd(db_path("main"), port);
  ASSERT_NE(real, nullptr);
  ASSERT_THAT(VerifyLog(real->as("aud-1"), Remembering(state.path())), IsOk());
  ASSERT_NO_FATAL_FAILURE(real->DriveSubmits(2));
  ASSERT_NO_FATAL_FAILURE(real->WaitForCheckpoint(12));
  absl::StatusOr<VerifyReport> r =
      VerifyLog(real->as("aud-1"), Remembering(state.path()));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->previous_size, 10u);
}

TEST_F(AuditTest, VerifyLogPassesWhileTheLogGrows) {
  // The checkpoint follows commits with a lag (at most one signature per
  // 200 ms): right after the first events it most likely still covers
  // none of them, and the cases it does not cover are not compared.
  ASSERT_NO_FATAL_FAILURE(permitd().DriveTenEvents());
  absl::StatusOr<VerifyReport> early = VerifyLog(as("aud-1"), Pinned());
  ASSERT_THAT(early, IsOk());
  EXPECT_EQ(early->events, early->tree_size);
  ASSERT_NO_FATAL_FAILURE(permitd().WaitForCheckpoint(10));

  // Verifications against the checkpoint of 10 while cases are added and
  // changed: the changed ones are compared as they stood at 10.
  std::atomic<bool> done{false};
  std::thread writer([&] {
    // New cases, and old ones changed after the checkpoint being verified.
    for (int i = 0; i < 8; ++i) {
      absl::StatusOr<v1::Case> c = permitd().Submit("exp-acme");
      EXPECT_THAT(c, IsOk());
      if (c.ok()) {
        EXPECT_THAT(permitd().Review(*c, "rev-1"), IsOk());
      }
    }
    done = true;
  });
  int runs = 0;
  while (!done || runs == 0) {
    absl::StatusOr<VerifyReport> r = VerifyLog(as("aud-1"), Pinned());
    EXPECT_THAT(r, IsOk());
    ++runs;
  }
  writer.join();
  ASSERT_NO_FATAL_FAILURE(permitd().WaitForCheckpoint(26));
  absl::StatusOr<VerifyReport> r = VerifyLog(as("aud-1"), Pinned());
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->events, 26u);
  EXPECT_EQ(r->cases, 11u);
}

// --- Export -----------------------------------------------------------------

TEST_F(AuditTest, ExportRoundTripsWholeAndByRange) {
  ASSERT_NO_FATAL_FAILURE(permitd().DriveTenEvents());
  ASSERT_NO_FATAL_FAILURE(permitd().WaitForCheckpoint(10));
  absl::StatusOr<v1::LogHead> head = as("aud-1").GetLogHead();
  ASSERT_THAT(head, IsOk());
  const std::vector<std::pair<uint64_t, uint64_t>> ranges = {
      {0, 0}, {1, 10}, {3, 7}, {1, 1},  {10, 10}, {5, 8}, {4, 0},
      {8, 9}, {2, 2},  {1, 8}, {9, 10}, {6, 10},  {3, 3}, {7, 7}};
  for (const auto& [from, to] : ranges) {
    SCOPED_TRACE(absl::StrCat("from ", from, " to ", to));
    std::ostringstream out;
    absl::StatusOr<uint64_t> n = ExportLog(as("aud-1"), from, to, out);
    const uint64_t first = from == 0 ? 1 : from;
    const uint64_t last = to == 0 ? 10 : to;
    ASSERT_THAT(n, IsOk());
    EXPECT_EQ(*n, last - first + 1);
    absl::StatusOr<VerifyReport> r = VerifyFile(out.str(), Pinned());
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->events, last - first + 1);
    EXPECT_EQ(r->tree_size, 10u);
    EXPECT_EQ(r->root_hex, Hex(head->root_hash()));
  }
  std::ostringstream out;
  EXPECT_THAT(ExportLog(as("aud-1"), 7, 3, out),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ExportLog(as("aud-1"), 11, 0, out),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// The offset of the first event record in an export: after the magic line
// and the length-delimited header.
size_t BodyStart(const std::string& file) {
  size_t pos = file.find('\n') + 1;
  uint64_t length = 0;
  int shift = 0;
  while (static_cast<uint8_t>(file[pos]) & 0x80) {
    length |= uint64_t{static_cast<uint8_t>(file[pos++]) & 0x7fu} << shift;
    shift += 7;
  }
  length |= uint64_t{static_cast<uint8_t>(file[pos++])} << shift;
  return pos + length;
}

TEST_F(AuditTest, ExportWithAnyByteOfItsEventsFlippedIsDataLoss) {
  ASSERT_NO_FATAL_FAILURE(permitd().DriveTenEvents());
  ASSERT_NO_FATAL_FAILURE(permitd().WaitForCheckpoint(10));
  for (const auto& [from, to] :
       std::vector<std::pair<uint64_t, uint64_t>>{{0, 0}, {3, 7}}) {
    SCOPED_TRACE(absl::StrCat("from ", from, " to ", to));
    const std::string file = Export(from, to);
    ASSERT_THAT(VerifyFile(file, Pinned()), IsOk());
    const size_t body = BodyStart(file);
    ASSERT_LT(body, file.size());
    // Damaged strings make protobuf log "invalid UTF-8" at every parse.
    google::protobuf::LogSilencer quiet;
    for (size_t i = body; i < file.size(); ++i) {
      for (uint8_t bit : {0x01, 0x80}) {
        std::string damaged = file;
        damaged[i] = static_cast<char>(damaged[i] ^ bit);
        absl::StatusOr<VerifyReport> r = VerifyFile(damaged, Pinned());
        ASSERT_THAT(r, StatusIs(absl::StatusCode::kDataLoss))
            << "byte " << i << " of " << file.size() << " xor " << int{bit};
      }
    }
    // Cut short, or with something appended.
    for (size_t cut : {size_t{1}, size_t{10}, file.size() - body}) {
      SCOPED_TRACE(absl::StrCat("cut ", cut));
      EXPECT_THAT(VerifyFile(file.substr(0, file.size() - cut), Pinned()),
                  StatusIs(absl::StatusCode::kDataLoss));
    }
    EXPECT_THAT(VerifyFile(file + std::string(1, '\x12'), Pinned()),
                StatusIs(absl::StatusCode::kDataLoss));
  }
}

TEST_F(AuditTest, VerifyExportNeedsTheRightPinnedKey) {
  ASSERT_NO_FATAL_FAILURE(permitd().DriveTenEvents());
  ASSERT_NO_FATAL_FAILURE(permitd().WaitForCheckpoint(10));
  const std::string file = Export(0, 0);
  VerifyOptions wrong = Pinned();
  wrong.log_key = OtherVerifierKey();
  EXPECT_THAT(VerifyFile(file, wrong),
              StatusIs(absl::StatusCode::kPermissionDenied));
  // No key: the key written in the file proves nothing, so none is taken.
  VerifyOptions none = Pinned();
  none.log_key.clear();
  absl::StatusOr<VerifyReport> r = VerifyFile(file, none);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("key"));
  // Not an export at all.
  EXPECT_THAT(VerifyFile("hello\n", Pinned()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// --- Point-in-time reads ----------------------------------------------------

// Replays `history` up to and including sequence `s` with the rules module,
// as an auditor would by hand. nullopt if the case did not exist yet.
std::optional<v1::Case> ReplayUpTo(
    const std::vector<v1::Event>& history,
    const std::function<bool(const v1::Event&)>& in) {
  v1::Case c;
  bool any = false;
  for (const v1::Event& e : history) {
    if (!in(e)) break;
    absl::Status s = core::ApplyEvent(e, &c);
    EXPECT_THAT(s, IsOk());
    any = true;
  }
  if (!any) return std::nullopt;
  return c;
}

TEST_F(AuditTest, AsOfReadsEqualAReplayByHand) {
  // Case X goes through submit, review, approve, suspend, resume, revoke;
  // case Y's events fall between, so X's sequences are not contiguous.
  std::map<uint64_t, v1::Case>
      after;  // X after each of its events, by sequence
  absl::StatusOr<v1::Case> y0 = permitd().Submit("exp-globex", "KR");  // 1
  ASSERT_THAT(y0, IsOk());
  absl::StatusOr<v1::Case> x = permitd().Submit("exp-acme");  // 2
  ASSERT_THAT(x, IsOk());
  after[x->last_sequence()] = *x;
  ASSERT_THAT(x = permitd().Review(*x, "rev-1"), IsOk());  // 3
  after[x->last_sequence()] = *x;
  ASSERT_THAT(permitd().Review(*y0, "rev-2"), IsOk());      // 4
  ASSERT_THAT(x = permitd().Approve(*x, "rev-2"), IsOk());  // 5
  after[x->last_sequence()] = *x;
  ASSERT_THAT(x = as("rev-1").SuspendCase(
                  Permitd::On<v1::SuspendCaseRequest>(*x, "Policy change")),
              IsOk());  // 6
  after[x->last_sequence()] = *x;
  ASSERT_THAT(permitd().Submit("exp-globex"), IsOk());  // 7
  ASSERT_THAT(x = as("rev-2").ResumeCase(
                  Permitd::On<v1::ResumeCaseRequest>(*x, "Clarified")),
              IsOk());  // 8
  after[x->last_sequence()] = *x;
  ASSERT_THAT(x = as("rev-1").RevokeCase(
                  Permitd::On<v1::RevokeCaseRequest>(*x, "Licence misused")),
              IsOk());  // 9
  after[x->last_sequence()] = *x;
  ASSERT_THAT(permitd().Submit("exp-globex"), IsOk());  // 10
  const uint64_t n = 10;
  ASSERT_EQ(after.size(), 6u);

  absl::StatusOr<v1::GetCaseHistoryResponse> full =
      as("aud-1").GetCaseHistory(x->id());
  ASSERT_THAT(full, IsOk());
  const std::vector<v1::Event> history(full->events().begin(),
                                       full->events().end());
  ASSERT_THAT(history, SizeIs(6));

  for (uint64_t s = 1; s <= n + 2; ++s) {
    SCOPED_TRACE(absl::StrCat("as of sequence ", s));
    std::optional<v1::Case> replayed = ReplayUpTo(
        history, [s](const v1::Event& e) { return e.sequence() <= s; });
    v1::GetCaseRequest r;
    r.set_case_id(x->id());
    r.set_as_of_sequence(s);
    absl::StatusOr<v1::Case> got = as("aud-1").GetCase(r);
    std::vector<uint64_t> expected_history;
    for (const v1::Event& e : history) {
      if (e.sequence() <= s) expected_history.push_back(e.sequence());
    }
    if (!replayed.has_value()) {
      EXPECT_THAT(got, StatusIs(absl::StatusCode::kNotFound));
    } else {
      ASSERT_THAT(got, IsOk());
      EXPECT_THAT(*got, EqualsProto(*replayed));
      // And it is what the action returned when it was taken.
      auto last = std::prev(after.upper_bound(s));
      EXPECT_THAT(*got, EqualsProto(last->second));
      // The exporter of the case reads the same.
      EXPECT_THAT(as("exp-acme").GetCase(r), IsOk());
    }
    // Another organisation's exporter learns nothing, at any point.
    EXPECT_THAT(as("exp-globex").GetCase(r),
                StatusIs(absl::StatusCode::kNotFound));

    v1::GetCaseHistoryRequest h;
    h.set_case_id(x->id());
    h.set_as_of_sequence(s);
    absl::StatusOr<v1::GetCaseHistoryResponse> truncated =
        as("aud-1").GetCaseHistory(h);
    ASSERT_THAT(truncated, IsOk());
    std::vector<uint64_t> seqs;
    for (const v1::Event& e : truncated->events()) seqs.push_back(e.sequence());
    EXPECT_THAT(seqs, ElementsAreArray(expected_history));
  }

  // By time: at each event's own time the case includes it, a nanosecond
  // before it does not.
  for (size_t i = 0; i < history.size(); ++i) {
    const absl::Time t = FromProto(history[i].time());
    SCOPED_TRACE(
        absl::StrCat("as of the time of event ", history[i].sequence()));
    for (const auto& [when, includes] :
         std::vector<std::pair<absl::Time, size_t>>{
             {t, i + 1}, {t - absl::Nanoseconds(1), i}}) {
      v1::GetCaseRequest r;
      r.set_case_id(x->id());
      *r.mutable_as_of_time() = ToProto(when);
      absl::StatusOr<v1::Case> got = as("aud-1").GetCase(r);
      std::optional<v1::Case> replayed = ReplayUpTo(
          history,
          [&](const v1::Event& e) { return FromProto(e.time()) <= when; });
      if (includes == 0) {
        EXPECT_FALSE(replayed.has_value());
        EXPECT_THAT(got, StatusIs(absl::StatusCode::kNotFound));
      } else {
        ASSERT_TRUE(replayed.has_value());
        EXPECT_EQ(replayed->version(), static_cast<int64_t>(includes));
        ASSERT_THAT(got, IsOk());
        EXPECT_THAT(*got, EqualsProto(*replayed));
      }
      v1::GetCaseHistoryRequest h;
      h.set_case_id(x->id());
      *h.mutable_as_of_time() = ToProto(when);
      absl::StatusOr<v1::GetCaseHistoryResponse> truncated =
          as("aud-1").GetCaseHistory(h);
      ASSERT_THAT(truncated, IsOk());
      EXPECT_THAT(truncated->events(), SizeIs(includes));
    }
  }

  // Both at once is refused.
  v1::GetCaseRequest both;
  both.set_case_id(x->id());
  both.set_as_of_sequence(3);
  *both.mutable_as_of_time() = history[1].time();
  EXPECT_THAT(as("aud-1").GetCase(both),
              StatusIs(absl::StatusCode::kInvalidArgument));
  v1::GetCaseHistoryRequest both_history;
  both_history.set_case_id(x->id());
  both_history.set_as_of_sequence(3);
  *both_history.mutable_as_of_time() = history[1].time();
  EXPECT_THAT(as("aud-1").GetCaseHistory(both_history),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// --- Proofs -----------------------------------------------------------------

TEST_F(AuditTest, EveryInclusionAndConsistencyProofVerifies) {
  ASSERT_NO_FATAL_FAILURE(permitd().DriveTenEvents());
  const std::vector<v1::LogEntry> log = permitd().ReadAll();
  ASSERT_THAT(log, SizeIs(10));
  std::vector<core::Hash> leaves;
  for (const v1::LogEntry& e : log)
    leaves.push_back(core::LeafHash(e.event_bytes()));
  auto root_of = [&](uint64_t size) {
    return std::string(core::AsBytes(core::RootFromLeafHashes(
        absl::MakeConstSpan(leaves).subspan(0, size))));
  };
  const uint64_t n = log.size();

  for (const std::string who : {"aud-1", "rev-2"}) {
    SCOPED_TRACE(who);
    for (uint64_t size = 1; size <= n; ++size) {
      for (uint64_t seq = 1; seq <= size; ++seq) {
        SCOPED_TRACE(absl::StrCat("inclusion of ", seq, " in ", size));
        absl::StatusOr<v1::InclusionProof> p =
            as(who).GetInclusionProof(seq, size);
        ASSERT_THAT(p, IsOk());
        EXPECT_EQ(p->sequence(), seq);
        EXPECT_EQ(p->tree_size(), size);
        EXPECT_EQ(p->leaf_hash(), std::string(core::AsBytes(leaves[seq - 1])));
        EXPECT_EQ(p->root_hash(), root_of(size));
        EXPECT_THAT(VerifyInclusionProof(*p), IsOk());
        // Against another event's leaf, the proof fails.
        v1::InclusionProof other = *p;
        other.set_leaf_hash(std::string(core::AsBytes(leaves[seq % n])));
        if (seq % n != seq - 1) {
          EXPECT_THAT(VerifyInclusionProof(other), Not(IsOk()));
        }
      }
      for (uint64_t old_size = 1; old_size <= size; ++old_size) {
        SCOPED_TRACE(absl::StrCat("consistency of ", old_size, " with ", size));
        absl::StatusOr<v1::ConsistencyProof> p =
            as(who).GetConsistencyProof(old_size, size);
        ASSERT_THAT(p, IsOk());
        EXPECT_EQ(p->old_root_hash(), root_of(old_size));
        EXPECT_EQ(p->new_root_hash(), root_of(size));
        EXPECT_THAT(VerifyConsistencyProof(*p), IsOk());
        if (old_size < size) {
          // A different old root is not consistent with the new one.
          v1::ConsistencyProof forged = *p;
          std::string root = forged.old_root_hash();
          root[0] ^= 1;
          forged.set_old_root_hash(root);
          EXPECT_THAT(VerifyConsistencyProof(forged), Not(IsOk()));
        }
      }
    }
    // Size 0 means the current size.
    absl::StatusOr<v1::InclusionProof> current =
        as(who).GetInclusionProof(4, 0);
    ASSERT_THAT(current, IsOk());
    EXPECT_EQ(current->tree_size(), n);
    EXPECT_THAT(VerifyInclusionProof(*current), IsOk());
    absl::StatusOr<v1::ConsistencyProof> to_now =
        as(who).GetConsistencyProof(3, 0);
    ASSERT_THAT(to_now, IsOk());
    EXPECT_EQ(to_now->new_size(), n);
    EXPECT_THAT(VerifyConsistencyProof(*to_now), IsOk());
  }

  // The proofs lead to the signed checkpoint's root.
  ASSERT_NO_FATAL_FAILURE(permitd().WaitForCheckpoint(n));
  absl::StatusOr<VerifiedCheckpoint> cp =
      FetchVerifiedCheckpoint(as("aud-1"), Pinned());
  ASSERT_THAT(cp, IsOk());
  EXPECT_EQ(cp->info.root, root_of(n));
}

TEST_F(AuditTest, ProofsAreForAuditorsAndReviewers) {
  ASSERT_NO_FATAL_FAILURE(permitd().DriveTenEvents());
  for (const std::string who : {"exp-acme", "exp-globex"}) {
    SCOPED_TRACE(who);
    EXPECT_THAT(as(who).GetInclusionProof(1, 10),
                StatusIs(absl::StatusCode::kPermissionDenied));
    EXPECT_THAT(as(who).GetConsistencyProof(3, 10),
                StatusIs(absl::StatusCode::kPermissionDenied));
  }
}

TEST_F(AuditTest, ProofsWithBadSizesAreInvalidArgument) {
  ASSERT_NO_FATAL_FAILURE(permitd().DriveTenEvents());
  const std::vector<std::pair<uint64_t, uint64_t>> inclusion = {
      {0, 10}, {0, 0}, {11, 10}, {11, 0}, {5, 4}, {1, 11}, {10, 11}};
  for (const auto& [seq, size] : inclusion) {
    SCOPED_TRACE(absl::StrCat("inclusion of ", seq, " in ", size));
    EXPECT_THAT(as("aud-1").GetInclusionProof(seq, size),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
  const std::vector<std::pair<uint64_t, uint64_t>> consistency = {
      {0, 10}, {0, 0}, {5, 4}, {11, 0}, {3, 11}, {11, 11}};
  for (const auto& [old_size, new_size] : consistency) {
    SCOPED_TRACE(absl::StrCat("consistency of ", old_size, " with ", new_size));
    EXPECT_THAT(as("aud-1").GetConsistencyProof(old_size, new_size),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

// --- ReadLog filters
// ----------------------------------------------------------

TEST_F(AuditTest, ReadLogFiltersReturnExactlyTheMatchingEvents) {
  ASSERT_NO_FATAL_FAILURE(permitd().DriveTenEvents());
  const std::vector<v1::LogEntry> log = permitd().ReadAll();
  ASSERT_THAT(log, SizeIs(10));
  auto time_of = [&](uint64_t seq) { return log[seq - 1].event().time(); };
  auto plus_ns = [](google::protobuf::Timestamp t, int ns) {
    return ToProto(FromProto(t) + absl::Nanoseconds(ns));
  };

  struct Filter {
    std::string name;
    std::function<void(v1::ReadLogRequest*)> set;
  };
  const std::vector<Filter> filters = {
      {"actor rev-1", [](v1::ReadLogRequest* r) { r->set_actor("rev-1"); }},
      {"actor exp-acme",
       [](v1::ReadLogRequest* r) { r->set_actor("exp-acme"); }},
      {"actor nobody", [](v1::ReadLogRequest* r) { r->set_actor("nobody"); }},
      {"action submit",
       [](v1::ReadLogRequest* r) { r->set_action(v1::ACTION_SUBMIT); }},
      {"action approve",
       [](v1::ReadLogRequest* r) { r->set_action(v1::ACTION_APPROVE); }},
      {"action revoke",
       [](v1::ReadLogRequest* r) { r->set_action(v1::ACTION_REVOKE); }},
      {"actor rev-2 and action review",
       [](v1::ReadLogRequest* r) {
         r->set_actor("rev-2");
         r->set_action(v1::ACTION_REVIEW);
       }},
      {"start at event 4",
       [&](v1::ReadLogRequest* r) { *r->mutable_start_time() = time_of(4); }},
      {"start just after event 4",
       [&](v1::ReadLogRequest* r) {
         *r->mutable_start_time() = plus_ns(time_of(4), 1);
       }},
      {"end at event 8 (exclusive)",
       [&](v1::ReadLogRequest* r) { *r->mutable_end_time() = time_of(8); }},
      {"end just after event 8",
       [&](v1::ReadLogRequest* r) {
         *r->mutable_end_time() = plus_ns(time_of(8), 1);
       }},
      {"events 3 to 7 by rev-1",
       [&](v1::ReadLogRequest* r) {
         *r->mutable_start_time() = time_of(3);
         *r->mutable_end_time() = time_of(8);
         r->set_actor("rev-1");
       }},
      {"an empty time range",
       [&](v1::ReadLogRequest* r) {
         *r->mutable_start_time() = time_of(5);
         *r->mutable_end_time() = time_of(5);
       }},
      {"sequences 2..9, action review",
       [](v1::ReadLogRequest* r) {
         r->set_from_sequence(2);
         r->set_to_sequence(9);
         r->set_action(v1::ACTION_REVIEW);
       }},
      {"case of event 1, actor rev-2",
       [&](v1::ReadLogRequest* r) {
         r->set_case_id(log[0].event().case_id());
         r->set_actor("rev-2");
       }},
  };
  // The same filter applied by hand, with the documented semantics:
  // [start_time, end_time), sequences [from, to].
  auto matches = [](const v1::ReadLogRequest& r, const v1::Event& e) {
    return (r.actor().empty() || e.actor().principal_id() == r.actor()) &&
           (r.action() == v1::ACTION_UNSPECIFIED || e.action() == r.action()) &&
           (!r.has_start_time() ||
            FromProto(e.time()) >= FromProto(r.start_time())) &&
           (!r.has_end_time() ||
            FromProto(e.time()) < FromProto(r.end_time())) &&
           (r.case_id().empty() || e.case_id() == r.case_id()) &&
           e.sequence() >= std::max<uint64_t>(r.from_sequence(), 1) &&
           (r.to_sequence() == 0 || e.sequence() <= r.to_sequence());
  };
  for (const Filter& f : filters) {
    SCOPED_TRACE(f.name);
    v1::ReadLogRequest r;
    f.set(&r);
    for (const std::string who : {"aud-1", "rev-1", "exp-acme"}) {
      SCOPED_TRACE(who);
      std::vector<uint64_t> expected;
      for (const v1::LogEntry& e : log) {
        const bool visible =
            who != "exp-acme" || e.event().organisation() == "acme";
        if (visible && matches(r, e.event()))
          expected.push_back(e.event().sequence());
      }
      std::vector<uint64_t> got;
      ASSERT_THAT(as(who).ReadLog(r,
                                  [&](const v1::LogEntry& e) {
                                    got.push_back(e.event().sequence());
                                    return true;
                                  }),
                  IsOk());
      EXPECT_THAT(got, ElementsAreArray(expected));
    }
  }
}

}  // namespace
}  // namespace permit
