// Authorization, tested as a matrix: every RPC of CaseService, AuditService
// and AdminService, called by every kind of caller, must get exactly the
// status code written in kMatrix below. permitd runs in-process on a free
// loopback port and is driven through the SDK, as users drive it.
//
// Each cell that acts on a case gets a fresh case, put into a state in which
// the action is valid for the right role, so that a cell tests who may call,
// not what state the case is in. Besides the code, every cell checks that:
//   - nothing of another organisation reaches an exporter or an
//     unauthenticated caller, and nothing of any organisation reaches an
//     admin: not in a refusal's message, not in a reply;
//   - an exporter's NOT_FOUND for another organisation's case is the very
//     refusal a case id that does not exist gets (it learns nothing);
//   - a refused call writes nothing to the log, and an accepted action
//     writes exactly one event;
//   - a refused call shows up in ListDenials (read as the auditor), counted
//     under its code, with its method, principal and case;
//   - the log reads return exactly what the caller may see: an exporter
//     every event of its organisation's cases and nothing else;
//   - an accepted Backup really wrote a backup into the server's backup
//     folder (it restores, holding the whole log), and a refused one wrote
//     nothing there.
#include <array>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "permit/client.h"
#include "server/denials.h"
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
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

using Code = absl::StatusCode;
constexpr Code OK = Code::kOk;
constexpr Code NF = Code::kNotFound;
constexpr Code PD = Code::kPermissionDenied;
constexpr Code UA = Code::kUnauthenticated;

// The callers, one column each.
enum Caller {
  kOwn,      // exp-acme: exporter of the case's organisation (acme)
  kOther,    // exp-globex: exporter of another organisation (globex)
  kRev1,     // rev-1: reviewer; the reviewer of record where the case has a review
  kRev2,     // rev-2: reviewer
  kAuditor,  // aud-1: auditor
  kAdmin,    // adm-1: admin (backups only)
  kNoToken,  // no authorization header
  kBadToken, // a token no principal has
  kRevoked,  // rev-3's token, after ReplacePrincipals removed rev-3
  kCallers
};

struct CallerInfo {
  const char* column;
  std::string principal;  // as authenticated; "" when authentication fails
  std::string token;
  std::string org;  // exporters only
};

const std::array<CallerInfo, kCallers>& Callers() {
  static const auto* callers = new std::array<CallerInfo, kCallers>{{
      {"own exporter", "exp-acme", "token-exp-acme", "acme"},
      {"other exporter", "exp-globex", "token-exp-globex", "globex"},
      {"rev-1", "rev-1", "token-rev-1", ""},
      {"rev-2", "rev-2", "token-rev-2", ""},
      {"auditor", "aud-1", "token-aud-1", ""},
      {"admin", "adm-1", "token-adm-1", ""},
      {"no token", "", "", ""},
      {"bad token", "", "not-a-token", ""},
      {"revoked token", "", "token-rev-3", ""},
  }};
  return *callers;
}

// The case a cell acts on, made afresh for each cell where the cell changes
// it. The exporter is always exp-acme; rev-1 reviews, rev-2 decides.
enum Given {
  kNoCase,         // SubmitCase files a new one
  kWorldCase,      // the shared approved acme case, read only
  kSubmitted,      // fresh: submitted
  kReviewedByRev1, // fresh: submitted, reviewed by rev-1
  kSuspended,      // fresh: submitted, suspended by rev-2 (from submitted)
  kApproved,       // fresh: submitted, reviewed by rev-1, approved by rev-2
  kLastInLog,      // fresh: submitted, its submit the newest event of the log
};

struct Row {
  const char* rpc;  // method name, then the request's variant if any
  Given given;
  std::array<Code, kCallers> expected;
};

// The policy. OK: allowed; NF: NOT_FOUND; PD: PERMISSION_DENIED;
// UA: UNAUTHENTICATED.
//
// - Every caller without a valid token (none, unknown, or removed by a
//   principals reload: rev-3*, a reviewer until then) is UA, whatever it
//   asks.
// - An exporter naming another organisation's case gets NF, as for a case
//   that does not exist (checked before the role, core/rules.h).
// - SubmitCase: an exporter files for the organisation in its credentials,
//   so there is no "other organisation" to refuse; exp-globex files a
//   globex case.
// - ApproveCase / RejectCase: the case was reviewed by rev-1, who may not
//   also decide it (four-eyes): PD for rev-1, OK for rev-2.
// - SuspendCase on a case rev-1 reviewed, and ResumeCase by rev-2 who
//   suspended: the four-eyes rule covers only the decision, so both OK.
// - ListCases: an exporter's listing is cut down to its own organisation;
//   asking for another organisation by name is PD (ListCasesRequest says
//   "Exporters may name only their own").
// - ReadLog / WatchLog: exporters get only their organisation's events
//   (other events are skipped); naming another organisation's case is NF.
// - GetLogHead / GetCheckpoint: size and root of the whole log, for any
//   principal; no event content.
// - Proofs cover every organisation's events: auditors and reviewers only.
// - ListDenials: auditors only.
// - Admins operate the server: Backup (AdminService) is theirs alone, and
//   every other RPC is PD for them, before any case is looked at (so never
//   NF), even those open to every other principal (GetLogHead,
//   GetCheckpoint, ReadLog, WatchLog, ListCases).
const Row kMatrix[] = {
    //                                                 own oth rev rev aud adm no  bad rev
    // RPC                           the case          exp exp -1  -2      -1  tok tok -3*
    {"SubmitCase",                   kNoCase,         {OK, OK, PD, PD, PD, PD, UA, UA, UA}},
    {"GetCase",                      kWorldCase,      {OK, NF, OK, OK, OK, PD, UA, UA, UA}},
    {"ListCases",                    kWorldCase,      {OK, OK, OK, OK, OK, PD, UA, UA, UA}},
    {"ListCases(organisation=acme)", kWorldCase,      {OK, PD, OK, OK, OK, PD, UA, UA, UA}},
    {"GetCaseHistory",               kWorldCase,      {OK, NF, OK, OK, OK, PD, UA, UA, UA}},
    {"ReviewCase",                   kSubmitted,      {PD, NF, OK, OK, PD, PD, UA, UA, UA}},
    {"ApproveCase",                  kReviewedByRev1, {PD, NF, PD, OK, PD, PD, UA, UA, UA}},
    {"RejectCase",                   kReviewedByRev1, {PD, NF, PD, OK, PD, PD, UA, UA, UA}},
    {"SuspendCase",                  kReviewedByRev1, {PD, NF, OK, OK, PD, PD, UA, UA, UA}},
    {"ResumeCase",                   kSuspended,      {PD, NF, OK, OK, PD, PD, UA, UA, UA}},
    {"RevokeCase",                   kApproved,       {PD, NF, OK, OK, PD, PD, UA, UA, UA}},
    {"WithdrawCase",                 kSubmitted,      {OK, NF, PD, PD, PD, PD, UA, UA, UA}},
    {"GetLogHead",                   kWorldCase,      {OK, OK, OK, OK, OK, PD, UA, UA, UA}},
    {"ReadLog",                      kWorldCase,      {OK, OK, OK, OK, OK, PD, UA, UA, UA}},
    {"ReadLog(bytes_only)",          kWorldCase,      {OK, OK, OK, OK, OK, PD, UA, UA, UA}},
    {"ReadLog(case_id)",             kWorldCase,      {OK, NF, OK, OK, OK, PD, UA, UA, UA}},
    {"WatchLog",                     kWorldCase,      {OK, OK, OK, OK, OK, PD, UA, UA, UA}},
    {"WatchLog(case_id)",            kLastInLog,      {OK, NF, OK, OK, OK, PD, UA, UA, UA}},
    {"GetCheckpoint",                kWorldCase,      {OK, OK, OK, OK, OK, PD, UA, UA, UA}},
    {"GetInclusionProof",            kWorldCase,      {PD, PD, OK, OK, OK, PD, UA, UA, UA}},
    {"GetConsistencyProof",          kWorldCase,      {PD, PD, OK, OK, OK, PD, UA, UA, UA}},
    {"ListDenials",                  kWorldCase,      {PD, PD, PD, PD, OK, PD, UA, UA, UA}},
    {"Backup",                       kNoCase,         {PD, PD, PD, PD, PD, OK, UA, UA, UA}},
};

std::string MethodOf(const Row& row) {
  const std::string rpc = row.rpc;
  return rpc.substr(0, rpc.find('('));
}

// True for the RPCs that append an event when they succeed.
bool Acts(const Row& row) {
  static const auto* actions = new std::set<std::string>{
      "SubmitCase", "ReviewCase", "ApproveCase", "RejectCase",
      "SuspendCase", "ResumeCase", "RevokeCase", "WithdrawCase"};
  return actions->count(MethodOf(row)) > 0;
}

// Each organisation's applications carry names found nowhere else, so any
// of them showing up in another organisation's view is a leak.
struct Org {
  std::string name;
  v1::Application application;
  std::vector<std::string> markers;  // matched case-insensitively
};

Org Acme() {
  Org o{"acme", ValidApplication(), {}};
  v1::Application& a = o.application;
  a.mutable_goods(0)->set_description("NdFeB magnet blocks for Osaka traction motors");
  a.mutable_end_user()->set_name("Osaka Traction Motors K.K.");
  v1::Party* c = a.mutable_consignee();
  c->set_name("Kobe Forwarding Co., Ltd.");
  c->set_address("1-1 Minatojima, Chuo-ku, Kobe");
  c->set_country("JP");
  a.set_end_use_statement("Traction motors for Osaka city buses.");
  o.markers = {"acme", "Osaka", "Kobe Forwarding"};
  return o;
}

Org Globex() {
  Org o{"globex", ValidApplication(), {}};
  v1::Application& a = o.application;
  a.mutable_goods(0)->set_description("Dysprosium oxide powder for Lyon wind turbines");
  a.mutable_goods(0)->set_hs_code("2846.90");
  a.mutable_end_user()->set_name("Lyon Eolien SAS");
  a.mutable_end_user()->set_address("12 quai Perrache, Lyon");
  a.mutable_end_user()->set_country("FR");
  a.set_destination_country("FR");
  a.set_end_use_statement("Generators for wind turbines near Lyon.");
  o.markers = {"globex", "Lyon"};
  return o;
}

// What a cell's call returned.
struct Outcome {
  absl::Status status;
  std::string named_case;         // the case id the request named, if any
  std::vector<v1::Case> cases;    // cases in the reply
  std::vector<v1::Event> events;  // events in the reply
  std::string other;              // any other reply content, as text
};

class AuthzMatrixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    orgs_["acme"] = Acme();
    orgs_["globex"] = Globex();
    absl::StatusOr<PrincipalRegistry> with_rev3 = Registry({"rev-3"});
    absl::StatusOr<PrincipalRegistry> without_rev3 = Registry({});
    ASSERT_THAT(with_rev3, IsOk());
    ASSERT_THAT(without_rev3, IsOk());

    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.db_path = dir_.path() + "/db";
    options.principals = *with_rev3;
    options.backup_dir = backup_dir();
    options.shutdown_grace = absl::Seconds(1);
    // This test is about who may call, not how often: no rate or stream
    // limit may refuse a cell (limits have their own tests).
    options.rate_limit = 0;
    options.max_streams_per_principal = 0;
    absl::StatusOr<std::unique_ptr<PermitServer>> server =
        PermitServer::Start(std::move(options));
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    for (int who = 0; who < kCallers; ++who) {
      clients_[who] = Connect(Callers()[who].token);
    }
    for (const char* setup : {"exp-acme", "exp-globex", "rev-1", "rev-2", "aud-1"}) {
      setup_[setup] = Connect(absl::StrCat("token-", setup));
    }

    // rev-3's token works until the principals are replaced without it, and
    // from that moment on it does not.
    ASSERT_THAT(as(kRevoked).GetLogHead(), IsOk());
    ASSERT_THAT(server_->ReplacePrincipals(*std::move(without_rev3)), IsOk());
    ASSERT_THAT(as(kRevoked).GetLogHead(), StatusIs(UA));
    // Only the Backup cell may make the backup folder.
    ASSERT_FALSE(std::filesystem::exists(backup_dir()));

    // The shared world: an approved acme case and a suspended globex case,
    // their events interleaved in the log.
    absl::StatusOr<v1::Case> acme = Submit("exp-acme");
    absl::StatusOr<v1::Case> globex = Submit("exp-globex");
    ASSERT_THAT(acme, IsOk());
    ASSERT_THAT(globex, IsOk());
    acme = Review(*acme, "rev-1");
    ASSERT_THAT(acme, IsOk());
    globex = Review(*globex, "rev-2");
    ASSERT_THAT(globex, IsOk());
    acme = Approve(*acme, "rev-2");
    ASSERT_THAT(acme, IsOk());
    globex = setup("rev-1").SuspendCase(Reason<v1::SuspendCaseRequest>(*globex));
    ASSERT_THAT(globex, IsOk());
    world_case_ = *acme;
  }

  void TearDown() override {
    for (auto& c : clients_) c.reset();
    setup_.clear();
    if (server_) server_->Shutdown();
  }

  // The test principals, plus those in `extra` (reviewers).
  static absl::StatusOr<PrincipalRegistry> Registry(
      const std::vector<std::string>& extra) {
    std::string json = "{\"principals\": [";
    auto add = [&](const std::string& id, const std::string& role,
                   const std::string& org) {
      if (json.back() != '[') json += ",";
      json += absl::StrCat("{\"id\":\"", id, "\",\"role\":\"", role, "\"",
                           org.empty() ? "" : absl::StrCat(",\"org\":\"", org, "\""),
                           ",\"token_sha256\":\"", TokenSha256Hex("token-" + id),
                           "\"}");
    };
    for (const auto& [id, role, org] : testing::TestPrincipalList()) add(id, role, org);
    add("adm-1", "admin", "");
    for (const std::string& id : extra) add(id, "reviewer", "");
    return PrincipalRegistry::Parse(json + "]}");
  }

  std::unique_ptr<Client> Connect(const std::string& token) {
    return testing::ConnectToTestServer(server_->port(), token);
  }

  Client& as(int who) { return *clients_[who]; }
  Client& setup(const std::string& principal) { return *setup_.at(principal); }
  Client& auditor() { return setup("aud-1"); }

  // --- Building cases (as the setup clients) ---------------------------

  absl::StatusOr<v1::Case> Submit(const std::string& exporter) {
    v1::SubmitCaseRequest r;
    *r.mutable_application() =
        orgs_.at(exporter == "exp-globex" ? "globex" : "acme").application;
    return setup(exporter).SubmitCase(r);
  }

  absl::StatusOr<v1::Case> Review(const v1::Case& c, const std::string& reviewer) {
    return setup(reviewer).ReviewCase(ReviewRequest(c));
  }

  absl::StatusOr<v1::Case> Approve(const v1::Case& c, const std::string& reviewer) {
    return setup(reviewer).ApproveCase(ApproveRequest(c));
  }

  static v1::ReviewCaseRequest ReviewRequest(const v1::Case& c) {
    v1::ReviewCaseRequest r;
    r.set_case_id(c.id());
    r.set_expected_version(c.version());
    r.set_recommendation(v1::RECOMMENDATION_APPROVE);
    r.set_findings("End user and end use verified.");
    return r;
  }

  static v1::ApproveCaseRequest ApproveRequest(const v1::Case& c) {
    v1::ApproveCaseRequest r;
    r.set_case_id(c.id());
    r.set_expected_version(c.version());
    r.mutable_valid_until()->set_seconds(
        absl::ToUnixSeconds(absl::Now() + absl::Hours(24 * 365)));
    r.set_conditions("No re-export without authorisation.");
    return r;
  }

  template <typename Request>
  static Request Reason(const v1::Case& c) {
    Request r;
    r.set_case_id(c.id());
    r.set_expected_version(c.version());
    r.set_reason("Policy review.");
    return r;
  }

  // The case a cell of `row` for `who` acts on.
  absl::StatusOr<v1::Case> Prepare(const Row& row, int who) {
    // WatchLog reads up to the newest event and then stops: for an
    // exporter, that event must be one it may see.
    if (row.rpc == std::string("WatchLog") && !Callers()[who].org.empty()) {
      absl::StatusOr<v1::Case> mine = Submit(Callers()[who].principal);
      if (!mine.ok()) return mine.status();
    }
    absl::StatusOr<v1::Case> c;
    switch (row.given) {
      case kNoCase:
      case kWorldCase:
        return world_case_;
      case kSubmitted:
      case kLastInLog:
        return Submit("exp-acme");
      case kReviewedByRev1:
        c = Submit("exp-acme");
        if (c.ok()) c = Review(*c, "rev-1");
        return c;
      case kSuspended:
        c = Submit("exp-acme");
        if (c.ok()) c = setup("rev-2").SuspendCase(Reason<v1::SuspendCaseRequest>(*c));
        return c;
      case kApproved:
        c = Submit("exp-acme");
        if (c.ok()) c = Review(*c, "rev-1");
        if (c.ok()) c = Approve(*c, "rev-2");
        return c;
    }
    return absl::InternalError("unknown given");
  }

  // --- Reading as the auditor ------------------------------------------

  uint64_t LogSize() {
    absl::StatusOr<v1::LogHead> head = auditor().GetLogHead();
    EXPECT_THAT(head, IsOk());
    return head.ok() ? head->tree_size() : 0;
  }

  std::vector<v1::Event> AllEvents() {
    std::vector<v1::Event> out;
    EXPECT_THAT(auditor().ReadLog(v1::ReadLogRequest(), [&](const v1::LogEntry& e) {
      out.push_back(e.event());
      return true;
    }),
                IsOk());
    return out;
  }

  // Sequence numbers of the events a caller of `org` ("" for every
  // organisation) and, if set, of case `case_id` may see.
  std::vector<uint64_t> Visible(const std::string& org, const std::string& case_id = "") {
    std::vector<uint64_t> out;
    for (const v1::Event& e : AllEvents()) {
      if ((org.empty() || e.organisation() == org) &&
          (case_id.empty() || e.case_id() == case_id)) {
        out.push_back(e.sequence());
      }
    }
    return out;
  }

  std::vector<std::string> CaseIds(const std::string& org) {
    v1::ListCasesRequest r;
    r.set_organisation(org);
    r.set_page_size(500);
    absl::StatusOr<v1::ListCasesResponse> list = auditor().ListCases(r);
    EXPECT_THAT(list, IsOk());
    std::vector<std::string> out;
    if (list.ok()) {
      for (const v1::Case& c : list->cases()) out.push_back(c.id());
    }
    return out;
  }

  v1::ListDenialsResponse Denials() {
    v1::ListDenialsRequest r;
    r.set_page_size(1);
    absl::StatusOr<v1::ListDenialsResponse> d = auditor().ListDenials(r);
    EXPECT_THAT(d, IsOk());
    return d.ok() ? *std::move(d) : v1::ListDenialsResponse();
  }

  // --- The calls ---------------------------------------------------------

  // Watches the log as `who` until the event numbered `until` has arrived,
  // then cancels. If it never arrives within 5 s the server is shut down to
  // end the watch, and `hung_` is set.
  absl::Status WatchUntil(int who, const v1::WatchLogRequest& r, uint64_t until,
                          std::vector<v1::Event>* out) {
    absl::Status status;
    absl::Notification done;
    std::thread watcher([&] {
      status = as(who).WatchLog(r, [&](const v1::LogEntry& e) {
        out->push_back(e.event());
        return e.event().sequence() < until;
      });
      done.Notify();
    });
    if (!done.WaitForNotificationWithTimeout(absl::Seconds(5))) {
      hung_ = true;
      server_->Shutdown();
    }
    watcher.join();
    return status;
  }

  Outcome Call(const Row& row, int who, const v1::Case& c) {
    const std::string rpc = row.rpc;
    Client& client = as(who);
    Outcome o;
    auto one = [&](const absl::StatusOr<v1::Case>& r) {
      o.status = r.status();
      if (r.ok()) o.cases.push_back(*r);
    };
    auto read_log = [&](const v1::ReadLogRequest& r) {
      o.status = client.ReadLog(r, [&](const v1::LogEntry& e) {
        if (r.bytes_only()) {
          // Only the bytes travel: the event is what they hold.
          v1::Event parsed;
          EXPECT_TRUE(parsed.ParseFromString(e.event_bytes()));
          EXPECT_EQ(parsed.sequence(), e.event().sequence());
          o.events.push_back(parsed);
        } else {
          o.events.push_back(e.event());
        }
        return true;
      });
    };

    if (rpc == "SubmitCase") {
      v1::SubmitCaseRequest r;
      *r.mutable_application() =
          orgs_.at(who == kOther ? "globex" : "acme").application;
      one(client.SubmitCase(r));
    } else if (rpc == "GetCase") {
      o.named_case = c.id();
      one(client.GetCase(c.id()));
    } else if (rpc == "ListCases" || rpc == "ListCases(organisation=acme)") {
      v1::ListCasesRequest r;
      if (rpc != "ListCases") r.set_organisation(c.organisation());
      r.set_page_size(500);
      absl::StatusOr<v1::ListCasesResponse> list = client.ListCases(r);
      o.status = list.status();
      if (list.ok()) {
        std::vector<std::string> ids;
        for (const v1::Case& listed : list->cases()) {
          o.cases.push_back(listed);
          ids.push_back(listed.id());
        }
        // Exactly the cases of the caller's organisation (for an exporter)
        // or of the organisation asked for, or all of them.
        const std::string org =
            !Callers()[who].org.empty() ? Callers()[who].org : r.organisation();
        EXPECT_THAT(ids, ElementsAreArray(CaseIds(org)));
        EXPECT_THAT(ids, ::testing::Not(IsEmpty()));
      }
    } else if (rpc == "GetCaseHistory") {
      o.named_case = c.id();
      absl::StatusOr<v1::GetCaseHistoryResponse> h = client.GetCaseHistory(c.id());
      o.status = h.status();
      if (h.ok()) {
        o.events.assign(h->events().begin(), h->events().end());
        EXPECT_EQ(o.events.size(), static_cast<size_t>(c.version()));
      }
    } else if (rpc == "ReviewCase") {
      o.named_case = c.id();
      one(client.ReviewCase(ReviewRequest(c)));
    } else if (rpc == "ApproveCase") {
      o.named_case = c.id();
      one(client.ApproveCase(ApproveRequest(c)));
    } else if (rpc == "RejectCase") {
      o.named_case = c.id();
      one(client.RejectCase(Reason<v1::RejectCaseRequest>(c)));
    } else if (rpc == "SuspendCase") {
      o.named_case = c.id();
      one(client.SuspendCase(Reason<v1::SuspendCaseRequest>(c)));
    } else if (rpc == "ResumeCase") {
      o.named_case = c.id();
      one(client.ResumeCase(Reason<v1::ResumeCaseRequest>(c)));
    } else if (rpc == "RevokeCase") {
      o.named_case = c.id();
      one(client.RevokeCase(Reason<v1::RevokeCaseRequest>(c)));
    } else if (rpc == "WithdrawCase") {
      o.named_case = c.id();
      one(client.WithdrawCase(Reason<v1::WithdrawCaseRequest>(c)));
    } else if (rpc == "GetLogHead") {
      absl::StatusOr<v1::LogHead> head = client.GetLogHead();
      o.status = head.status();
      if (head.ok()) {
        EXPECT_EQ(head->tree_size(), LogSize());
      }
    } else if (rpc == "ReadLog" || rpc == "ReadLog(bytes_only)") {
      v1::ReadLogRequest r;
      if (rpc != "ReadLog") {
        // The path on which permitd sends stored bytes without parsing
        // them must still filter an exporter's view.
        r.set_include_event_bytes(true);
        r.set_bytes_only(true);
      }
      read_log(r);
    } else if (rpc == "ReadLog(case_id)") {
      o.named_case = c.id();
      v1::ReadLogRequest r;
      r.set_case_id(c.id());
      read_log(r);
    } else if (rpc == "WatchLog" || rpc == "WatchLog(case_id)") {
      v1::WatchLogRequest r;
      r.set_from_sequence(1);
      if (rpc != "WatchLog") {
        o.named_case = c.id();
        r.set_case_id(c.id());
      }
      // Prepare made the newest event one this caller may see.
      o.status = WatchUntil(who, r, LogSize(), &o.events);
    } else if (rpc == "GetCheckpoint") {
      o.status = client.GetCheckpoint().status();
    } else if (rpc == "GetInclusionProof") {
      // The proof of one of the acme case's events.
      o.status = client.GetInclusionProof(c.last_sequence(), 0).status();
    } else if (rpc == "GetConsistencyProof") {
      o.status = client.GetConsistencyProof(1, 0).status();
    } else if (rpc == "Backup") {
      v1::BackupRequest r;
      r.set_keep_last(2);
      const uint64_t size = LogSize();
      absl::StatusOr<v1::BackupResponse> b = client.Backup(r);
      o.status = b.status();
      if (b.ok()) {
        // The reply, for the leak checks, less the folder (a random temp
        // name, which is no case data).
        v1::BackupResponse shown = *b;
        shown.clear_backup_dir();
        o.other = shown.DebugString();
        ++backups_;
        ExpectBackup(*b, size);
      } else if (backups_ == 0) {
        // A refused Backup does not even open the folder.
        EXPECT_FALSE(std::filesystem::exists(backup_dir())) << o.status;
      }
    } else if (rpc == "ListDenials") {
      absl::StatusOr<v1::ListDenialsResponse> d =
          client.ListDenials(v1::ListDenialsRequest());
      o.status = d.status();
      if (d.ok()) o.other = d->DebugString();
    } else {
      ADD_FAILURE() << "no call for " << rpc;
    }

    // What the log reads must hold, beyond their code.
    if (o.status.ok() && absl::StartsWith(rpc, "ReadLog")) {
      std::vector<uint64_t> seqs;
      for (const v1::Event& e : o.events) seqs.push_back(e.sequence());
      EXPECT_THAT(seqs, ElementsAreArray(Visible(Callers()[who].org, o.named_case)));
    }
    if (o.status.ok() && absl::StartsWith(rpc, "WatchLog")) {
      // Up to the head at the start of the watch: all it may see.
      std::vector<uint64_t> seqs;
      for (const v1::Event& e : o.events) seqs.push_back(e.sequence());
      std::vector<uint64_t> expected = Visible(Callers()[who].org, o.named_case);
      EXPECT_THAT(seqs, ElementsAreArray(expected));
    }
    return o;
  }

  std::string backup_dir() const { return dir_.path() + "/backups"; }

  // Checks that `b` describes a real backup in backup_dir(), of a log of
  // `size` events (nothing was written during the backup): it is in the
  // folder, and restoring it gives back the whole log.
  void ExpectBackup(const v1::BackupResponse& b, uint64_t size) {
    EXPECT_GT(b.backup_id(), 0u);
    EXPECT_EQ(b.backup_dir(), backup_dir());
    EXPECT_EQ(b.tree_size_at_least(), size);
    EXPECT_GT(b.size_bytes(), 0u);
    EXPECT_GT(b.time().seconds(), 0);
    EXPECT_THAT(b.kept_backup_ids(), ::testing::Contains(b.backup_id()));
    ASSERT_TRUE(std::filesystem::is_directory(backup_dir()));
    EXPECT_FALSE(std::filesystem::is_empty(backup_dir()));
    const std::string restored =
        absl::StrCat(dir_.path(), "/restored-", b.backup_id());
    ASSERT_THAT(
        storage::RocksDbEventStore::RestoreBackup(backup_dir(), b.backup_id(), restored),
        IsOk());
    storage::RocksDbEventStore::Options read_only;
    read_only.read_only = true;
    absl::StatusOr<std::unique_ptr<storage::RocksDbEventStore>> store =
        storage::RocksDbEventStore::Open(restored, read_only);
    ASSERT_THAT(store, IsOk());
    EXPECT_EQ((*store)->State().tree_size, size);
  }

  // An id of the same year as `id` that no case has.
  static std::string PhantomId(const std::string& id) {
    return id.substr(0, id.size() - 6) + "999999";
  }

  // Fails if any of `org`'s names appear in `text`.
  void ExpectNoTraceOf(const Org& org, const std::string& text, const std::string& where) {
    const std::string lower = absl::AsciiStrToLower(text);
    for (const std::string& marker : org.markers) {
      EXPECT_FALSE(absl::StrContains(lower, absl::AsciiStrToLower(marker)))
          << where << " reveals \"" << marker << "\" of organisation " << org.name
          << ": " << text;
    }
  }

  TempDir dir_;
  std::unique_ptr<PermitServer> server_;
  std::array<std::unique_ptr<Client>, kCallers> clients_;
  std::map<std::string, std::unique_ptr<Client>> setup_;
  std::map<std::string, Org> orgs_;
  v1::Case world_case_;
  int backups_ = 0;  // accepted Backup cells so far
  bool hung_ = false;
};

TEST_F(AuthzMatrixTest, EveryRpcByEveryCallerGetsTheCodeInTheTable) {
  for (const Row& row : kMatrix) {
    for (int who = 0; who < kCallers; ++who) {
      const CallerInfo& caller = Callers()[who];
      const Code expected = row.expected[who];
      SCOPED_TRACE(absl::StrCat(row.rpc, " by ", caller.column, ": expected ",
                                absl::StatusCodeToString(expected)));
      absl::StatusOr<v1::Case> c = Prepare(row, who);
      ASSERT_THAT(c, IsOk());
      const uint64_t size_before = LogSize();
      const v1::ListDenialsResponse denials_before = Denials();

      const Outcome o = Call(row, who, *c);
      ASSERT_FALSE(hung_) << "a WatchLog never reached the newest event";

      // The cell.
      EXPECT_EQ(o.status.code(), expected)
          << row.rpc << " by " << caller.column << ": " << o.status;

      // An accepted action writes one event; anything else writes none.
      EXPECT_EQ(LogSize(), size_before + (Acts(row) && o.status.ok() ? 1 : 0));

      // A refused call is a denial, counted under its code; nothing else is.
      const v1::ListDenialsResponse denials_after = Denials();
      const std::string code = absl::StatusCodeToString(o.status.code());
      if (DenialRecord::IsRefusal(o.status.code())) {
        EXPECT_EQ(denials_after.total(), denials_before.total() + 1);
        const auto count = [&](const v1::ListDenialsResponse& d) {
          auto it = d.by_code().find(code);
          return it == d.by_code().end() ? 0 : it->second;
        };
        EXPECT_EQ(count(denials_after), count(denials_before) + 1) << code;
        if (denials_after.denials_size() == 1) {
          const v1::Denial& d = denials_after.denials(0);
          EXPECT_EQ(d.method(), MethodOf(row));
          EXPECT_EQ(d.code(), code);
          EXPECT_EQ(d.principal_id(), caller.principal);
          EXPECT_EQ(d.case_id(), o.named_case);
          EXPECT_EQ(d.message(), o.status.message());
        } else {
          ADD_FAILURE() << "no denial recorded";
        }
      } else {
        EXPECT_EQ(denials_after.total(), denials_before.total());
      }

      // A refused call returns nothing.
      if (!o.status.ok()) {
        EXPECT_THAT(o.cases, IsEmpty());
        EXPECT_THAT(o.events, IsEmpty());
      }

      // An exporter sees only its organisation: every case and event it
      // gets is its own, and nothing of the other organisation appears.
      if (!caller.org.empty()) {
        for (const v1::Case& got : o.cases) EXPECT_EQ(got.organisation(), caller.org);
        for (const v1::Event& got : o.events) {
          EXPECT_EQ(got.organisation(), caller.org) << "event " << got.sequence();
        }
      }
      // Nor does anything of acme's reach globex or an unauthenticated
      // caller (nor globex's reach acme): not in a message, not in a reply.
      std::vector<const Org*> hidden;
      if (who == kOwn) hidden = {&orgs_.at("globex")};
      if (who == kOther || expected == UA) hidden = {&orgs_.at("acme")};
      // An admin reads no case and no event, of any organisation, even
      // when its call is accepted.
      if (who == kAdmin) {
        hidden = {&orgs_.at("acme"), &orgs_.at("globex")};
        EXPECT_THAT(o.cases, IsEmpty());
        EXPECT_THAT(o.events, IsEmpty());
        if (!o.named_case.empty()) {
          EXPECT_FALSE(absl::StrContains(o.status.message(), o.named_case))
              << o.status;
        }
      }
      for (const Org* org : hidden) {
        ExpectNoTraceOf(*org, std::string(o.status.message()), "the status message");
        for (const v1::Case& got : o.cases) {
          ExpectNoTraceOf(*org, got.DebugString(), "a case");
        }
        for (const v1::Event& got : o.events) {
          ExpectNoTraceOf(*org, got.DebugString(), "an event");
        }
        ExpectNoTraceOf(*org, o.other, "the reply");
      }

      // Another organisation's case is refused exactly as a case id that
      // does not exist: same code, same message.
      if (who == kOther && o.status.code() == NF) {
        v1::Case phantom = *c;
        phantom.set_id(PhantomId(c->id()));
        const Outcome p = Call(row, who, phantom);
        EXPECT_EQ(p.status.code(), NF) << p.status;
        EXPECT_EQ(absl::StrReplaceAll(p.status.message(), {{phantom.id(), c->id()}}),
                  o.status.message());
      }
    }
  }
  // The one accepted Backup cell (the admin's) took one backup.
  EXPECT_EQ(backups_, 1);
}

// Every RPC of the services has a row, so a new RPC cannot go untested.
TEST(AuthzMatrixCoverageTest, EveryRpcHasARow) {
  std::set<std::string> rows;
  for (const Row& row : kMatrix) rows.insert(MethodOf(row));
  const google::protobuf::DescriptorPool* pool =
      google::protobuf::DescriptorPool::generated_pool();
  for (const char* name :
       {"permit.v1.CaseService", "permit.v1.AuditService", "permit.v1.AdminService"}) {
    const google::protobuf::ServiceDescriptor* service = pool->FindServiceByName(name);
    ASSERT_NE(service, nullptr) << name;
    for (int i = 0; i < service->method_count(); ++i) {
      EXPECT_TRUE(rows.count(service->method(i)->name()))
          << name << "." << service->method(i)->name() << " has no row in kMatrix";
    }
  }
}

}  // namespace
}  // namespace permit::server
