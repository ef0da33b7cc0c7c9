// permitctl: the command-line client of permit, built only on the SDK
// (permit/client.h). Exporters file and track cases, reviewers act on them,
// auditors replay and follow the audit log.
//
// Exit codes: 0 success, 1 the server refused or failed (the gRPC code, the
// message and each bad field are printed), 2 a usage error (bad flags, an
// unreadable or malformed input file).
#include <fstream>
#include <iostream>
#include <sstream>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/cli/output.h"
#include "google/protobuf/util/json_util.h"
#include "permit/audit.h"
#include "permit/client.h"

namespace permit::cli {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitServer = 1;
constexpr int kExitUsage = 2;

// Thrown for usage mistakes found after parsing (bad file, bad date).
struct UsageError {
  std::string message;
};

struct Globals {
  std::string server = "127.0.0.1:7443";
  std::string token;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool insecure = false;
  std::string output = "table";
  double timeout_seconds = 10;
  Format format() const { return output == "json" ? Format::kJson : Format::kTable; }
};

std::string ReadPemFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UsageError{absl::StrCat(flag, " ", path, ": cannot read the file")};
  std::stringstream ss;
  ss << in.rdbuf();
  if (ss.str().find("-----BEGIN ") == std::string::npos) {
    throw UsageError{absl::StrCat(flag, " ", path, ": not a PEM file")};
  }
  return ss.str();
}

std::unique_ptr<Client> MakeClient(const Globals& g) {
  ClientOptions options;
  options.address = g.server;
  options.token = g.token;
  options.deadline = absl::Seconds(g.timeout_seconds);
  options.insecure = g.insecure;
  if (g.insecure && (!g.ca_file.empty() || !g.cert_file.empty())) {
    throw UsageError{
        "--insecure (plaintext) contradicts --ca/--cert (check PERMIT_CA, "
        "PERMIT_CERT and PERMIT_INSECURE in the environment)"};
  }
  if (g.cert_file.empty() != g.key_file.empty()) {
    throw UsageError{"--cert and --key go together (a client certificate and its key)"};
  }
  if (!g.ca_file.empty()) options.ca_pem = ReadPemFile("--ca", g.ca_file);
  if (!g.cert_file.empty()) {
    options.cert_pem = ReadPemFile("--cert", g.cert_file);
    options.key_pem = ReadPemFile("--key", g.key_file);
  }
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
  if (!client.ok()) throw UsageError{std::string(client.status().message())};
  return *std::move(client);
}

// Set from the global flags: whether the call went over TLS.
bool g_tls = true;

// Prints the error and gives the exit code for a failed call.
int Failed(const absl::Status& status) {
  PrintError(std::cerr, status);
  if (status.code() == absl::StatusCode::kUnavailable) {
    std::cerr << (g_tls ? "hint: permitctl uses TLS by default. A server "
                          "started with --insecure needs --insecure here; a "
                          "server with a private CA (permitd --dev) needs "
                          "--ca FILE (PERMIT_CA)\n"
                        : "hint: if the server uses TLS, drop --insecure "
                          "(and PERMIT_INSECURE)\n");
  }
  return kExitServer;
}

v1::Application ReadApplication(const std::string& path) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(path);
    if (!in) throw UsageError{absl::StrCat("cannot read ", path)};
    ss << in.rdbuf();
  }
  v1::Application app;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto s = google::protobuf::util::JsonStringToMessage(ss.str(), &app, options);
  if (!s.ok()) {
    throw UsageError{absl::StrCat(path, " is not an application in JSON: ",
                                  s.message().as_string())};
  }
  return app;
}

// YYYY-MM-DD as the end (23:59:59 UTC) or start (00:00:00 UTC) of that day.
google::protobuf::Timestamp ParseDay(const std::string& flag,
                                     const std::string& day, bool end_of_day) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime("%Y-%m-%d", day, absl::UTCTimeZone(), &t, &err)) {
    throw UsageError{absl::StrCat(flag, " ", day, ": expected a date YYYY-MM-DD")};
  }
  if (end_of_day) t += absl::Hours(24) - absl::Seconds(1);
  google::protobuf::Timestamp ts;
  ts.set_seconds(absl::ToUnixSeconds(t));
  return ts;
}

// A time to the nanosecond, as RFC 3339 times may give fractions.
google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  google::protobuf::Timestamp ts;
  const int64_t seconds = absl::ToUnixSeconds(t);
  ts.set_seconds(seconds);
  ts.set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds))));
  return ts;
}

// --as-of: a sequence number, or an RFC 3339 time.
template <typename Request>
void SetAsOf(const std::string& as_of, Request* r) {
  if (as_of.empty()) return;
  uint64_t seq = 0;
  if (absl::SimpleAtoi(as_of, &seq) && seq > 0) {
    r->set_as_of_sequence(seq);
    return;
  }
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, as_of, &t, &err)) {
    throw UsageError{absl::StrCat("--as-of ", as_of,
                                  ": expected a sequence number or an RFC 3339 "
                                  "time such as 2026-11-28T12:00:00Z")};
  }
  *r->mutable_as_of_time() = ToTimestamp(t);
}

google::protobuf::Timestamp ParseTimeFlag(const std::string& flag,
                                          const std::string& value) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, value, &t, &err)) {
    throw UsageError{absl::StrCat(flag, " ", value,
                                  ": expected an RFC 3339 time such as "
                                  "2026-11-28T12:00:00Z")};
  }
  return ToTimestamp(t);
}

// Options shared by every action on an existing case.
struct ActionArgs {
  std::string case_id;
  int64_t expected_version = 0;
  std::string request_id;
  std::string reason;
};

void AddActionArgs(CLI::App* cmd, ActionArgs* a) {
  cmd->add_option("ID", a->case_id, "Case id, e.g. PRM-2026-000042")->required();
  cmd->add_option("--expected-version", a->expected_version,
                  "Act only if the case is at this version (default: fetch the "
                  "current version first)");
  cmd->add_option("--request-id", a->request_id,
                  "Idempotency key (default: a fresh random id; retries reuse it)");
}

// The version to send: the flag's, or the case's current one.
absl::StatusOr<int64_t> VersionFor(Client& client, const ActionArgs& a) {
  if (a.expected_version > 0) return a.expected_version;
  absl::StatusOr<v1::Case> c = client.GetCase(a.case_id);
  if (!c.ok()) return c.status();
  return c->version();
}

template <typename Request, typename Fill, typename Call>
int RunAction(const Globals& g, const ActionArgs& a, Fill fill, Call call) {
  std::unique_ptr<Client> client = MakeClient(g);
  absl::StatusOr<int64_t> version = VersionFor(*client, a);
  if (!version.ok()) return Failed(version.status());
  Request r;
  r.set_request_id(a.request_id.empty() ? Client::NewRequestId() : a.request_id);
  r.set_case_id(a.case_id);
  r.set_expected_version(*version);
  fill(r);
  absl::StatusOr<v1::Case> c = call(*client, r);
  if (!c.ok()) return Failed(c.status());
  PrintCase(std::cout, *c, g.format());
  return kExitOk;
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{
      "permitctl: file export-licence applications, act on them, and audit "
      "the log of permit.\n\n"
      "Examples:\n"
      "  permitctl case submit -f examples/magnets-to-japan.json\n"
      "  permitctl case review PRM-2026-000001 --recommend approve --findings "
      "\"End user verified\"\n"
      "  permitctl case list --state reviewed\n"
      "  permitctl audit replay -o json\n",
      "permitctl"};
  app.require_subcommand(1);
  app.fallthrough();
  Globals g;
  app.add_option("--server", g.server, "permitd address, host:port")
      ->envname("PERMIT_SERVER")
      ->capture_default_str();
  app.add_option("--token", g.token, "Bearer token of the principal to act as")
      ->envname("PERMIT_TOKEN");
  app.add_option("--ca", g.ca_file,
                 "CA certificates (PEM) to check the server's certificate "
                 "against (default: the system's trusted roots)")
      ->envname("PERMIT_CA");
  app.add_option("--cert", g.cert_file,
                 "Client certificate (PEM), for principals bound to one")
      ->envname("PERMIT_CERT");
  app.add_option("--key", g.key_file, "Private key of --cert (PEM)")
      ->envname("PERMIT_KEY");
  app.add_flag("--insecure", g.insecure,
               "Plaintext, no TLS (a server started with --insecure)")
      ->envname("PERMIT_INSECURE");
  app.add_option("-o,--output", g.output, "Output format: table or json (the "
                                          "proto3 JSON mapping)")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  app.add_option("--timeout", g.timeout_seconds,
                 "Seconds to wait for each call before retrying")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();

  std::function<int()> run;

  // --- case ---------------------------------------------------------------
  CLI::App* cases = app.add_subcommand("case", "File, read and act on cases");
  cases->require_subcommand(1);

  std::string submit_file;
  std::string submit_request_id;
  CLI::App* submit = cases->add_subcommand(
      "submit", "File a new case (exporters). The file is an application in "
                "JSON; see examples/.");
  submit->add_option("-f,--file", submit_file, "Application JSON file, or - for stdin")
      ->required();
  submit->add_option("--request-id", submit_request_id,
                     "Idempotency key (default: a fresh random id)");
  submit->callback([&] {
    run = [&] {
      v1::SubmitCaseRequest r;
      *r.mutable_application() = ReadApplication(submit_file);
      r.set_request_id(submit_request_id.empty() ? Client::NewRequestId()
                                                 : submit_request_id);
      absl::StatusOr<v1::Case> c = MakeClient(g)->SubmitCase(r);
      if (!c.ok()) return Failed(c.status());
      PrintCase(std::cout, *c, g.format());
      return kExitOk;
    };
  });

  std::string get_id, get_as_of;
  CLI::App* get = cases->add_subcommand("get", "Show a case (now, or as it stood then)");
  get->add_option("ID", get_id, "Case id")->required();
  get->add_option("--as-of", get_as_of,
                  "A log sequence number or an RFC 3339 time: show the case as "
                  "it stood then");
  get->callback([&] {
    run = [&] {
      v1::GetCaseRequest r;
      r.set_case_id(get_id);
      SetAsOf(get_as_of, &r);
      absl::StatusOr<v1::Case> c = MakeClient(g)->GetCase(r);
      if (!c.ok()) return Failed(c.status());
      PrintCase(std::cout, *c, g.format());
      return kExitOk;
    };
  });

  std::string list_state, list_org, list_country, list_token;
  int list_page_size = 0;
  CLI::App* list = cases->add_subcommand("list", "List cases, filtered and paged");
  list->add_option("--state", list_state, "Only cases in this state")
      ->check(CLI::IsMember({"submitted", "reviewed", "approved", "rejected",
                             "suspended", "revoked", "withdrawn"}));
  list->add_option("--org", list_org, "Only cases of this organisation");
  list->add_option("--country", list_country,
                   "Only cases bound for this country (ISO 3166-1 alpha-2)");
  list->add_option("--page-size", list_page_size, "Cases per page (default 50, max 500)");
  list->add_option("--page-token", list_token, "Continue after a previous page");
  list->callback([&] {
    run = [&] {
      v1::ListCasesRequest r;
      if (!list_state.empty()) {
        v1::CaseState s;
        v1::CaseState_Parse("CASE_STATE_" + absl::AsciiStrToUpper(list_state), &s);
        r.set_state(s);
      }
      r.set_organisation(list_org);
      r.set_destination_country(list_country);
      r.set_page_size(list_page_size);
      r.set_page_token(list_token);
      absl::StatusOr<v1::ListCasesResponse> resp = MakeClient(g)->ListCases(r);
      if (!resp.ok()) return Failed(resp.status());
      PrintCaseList(std::cout, *resp, g.format());
      return kExitOk;
    };
  });

  std::string history_id, history_as_of;
  CLI::App* history = cases->add_subcommand("history", "Every event of a case");
  history->add_option("ID", history_id, "Case id")->required();
  history->add_option("--as-of", history_as_of,
                      "Only events up to this sequence number or RFC 3339 time");
  history->callback([&] {
    run = [&] {
      v1::GetCaseHistoryRequest r;
      r.set_case_id(history_id);
      SetAsOf(history_as_of, &r);
      absl::StatusOr<v1::GetCaseHistoryResponse> h = MakeClient(g)->GetCaseHistory(r);
      if (!h.ok()) return Failed(h.status());
      if (g.format() == Format::kJson) {
        std::cout << Json(*h, true) << "\n";
        return kExitOk;
      }
      PrintEventHeader(std::cout, g.format());
      for (const v1::Event& e : h->events()) PrintEvent(std::cout, e, g.format());
      return kExitOk;
    };
  });

  ActionArgs review_args;
  std::string recommend, findings;
  CLI::App* review = cases->add_subcommand(
      "review", "Record findings and a recommendation (reviewers): submitted -> reviewed");
  AddActionArgs(review, &review_args);
  review->add_option("--recommend", recommend, "approve or reject")
      ->required()
      ->check(CLI::IsMember({"approve", "reject"}));
  review->add_option("--findings", findings, "What the review found")->required();
  review->callback([&] {
    run = [&] {
      return RunAction<v1::ReviewCaseRequest>(
          g, review_args,
          [&](v1::ReviewCaseRequest& r) {
            r.set_recommendation(recommend == "approve" ? v1::RECOMMENDATION_APPROVE
                                                        : v1::RECOMMENDATION_REJECT);
            r.set_findings(findings);
          },
          [](Client& c, const v1::ReviewCaseRequest& r) { return c.ReviewCase(r); });
    };
  });

  ActionArgs approve_args;
  std::string valid_from, valid_until, conditions;
  CLI::App* approve = cases->add_subcommand(
      "approve",
      "Grant the licence (a reviewer other than the one who reviewed): "
      "reviewed -> approved");
  AddActionArgs(approve, &approve_args);
  approve->add_option("--valid-until", valid_until,
                      "Last day of validity, YYYY-MM-DD (valid through 23:59:59 UTC)")
      ->required();
  approve->add_option("--valid-from", valid_from,
                      "First day of validity, YYYY-MM-DD (default: now)");
  approve->add_option("--conditions", conditions, "Conditions attached to the licence");
  approve->callback([&] {
    run = [&] {
      v1::ApproveCaseRequest proto;
      *proto.mutable_valid_until() = ParseDay("--valid-until", valid_until, true);
      if (!valid_from.empty()) {
        *proto.mutable_valid_from() = ParseDay("--valid-from", valid_from, false);
      }
      return RunAction<v1::ApproveCaseRequest>(
          g, approve_args,
          [&](v1::ApproveCaseRequest& r) {
            *r.mutable_valid_until() = proto.valid_until();
            if (proto.has_valid_from()) *r.mutable_valid_from() = proto.valid_from();
            r.set_conditions(conditions);
          },
          [](Client& c, const v1::ApproveCaseRequest& r) { return c.ApproveCase(r); });
    };
  });

  // reject, suspend, resume, revoke, withdraw: a case and a reason.
  struct ReasonCommand {
    const char* name;
    const char* help;
    bool reason_required;
    ActionArgs args;
  };
  static ReasonCommand reason_commands[] = {
      {"reject", "Refuse the licence (a reviewer other than the one who reviewed): "
                 "reviewed -> rejected", true, {}},
      {"suspend", "Put a case or licence on hold (reviewers): submitted, reviewed "
                  "or approved -> suspended", true, {}},
      {"resume", "Lift a suspension (reviewers): back to the state it left", true, {}},
      {"revoke", "Withdraw a licence (reviewers): approved or suspended -> revoked",
       true, {}},
      {"withdraw", "Withdraw your application (exporters): submitted, reviewed "
                   "or suspended -> withdrawn", false, {}},
  };
  for (ReasonCommand& rc : reason_commands) {
    CLI::App* cmd = cases->add_subcommand(rc.name, rc.help);
    AddActionArgs(cmd, &rc.args);
    CLI::Option* opt = cmd->add_option("--reason", rc.args.reason, "Why");
    if (rc.reason_required) opt->required();
    const std::string name = rc.name;
    ActionArgs* args = &rc.args;
    cmd->callback([&, name, args] {
      run = [&, name, args]() -> int {
        auto fill = [&](auto& r) { r.set_reason(args->reason); };
        if (name == "reject") {
          return RunAction<v1::RejectCaseRequest>(
              g, *args, fill,
              [](Client& c, const v1::RejectCaseRequest& r) { return c.RejectCase(r); });
        }
        if (name == "suspend") {
          return RunAction<v1::SuspendCaseRequest>(
              g, *args, fill,
              [](Client& c, const v1::SuspendCaseRequest& r) { return c.SuspendCase(r); });
        }
        if (name == "resume") {
          return RunAction<v1::ResumeCaseRequest>(
              g, *args, fill,
              [](Client& c, const v1::ResumeCaseRequest& r) { return c.ResumeCase(r); });
        }
        if (name == "revoke") {
          return RunAction<v1::RevokeCaseRequest>(
              g, *args, fill,
              [](Client& c, const v1::RevokeCaseRequest& r) { return c.RevokeCase(r); });
        }
        return RunAction<v1::WithdrawCaseRequest>(
            g, *args, fill,
            [](Client& c, const v1::WithdrawCaseRequest& r) { return c.WithdrawCase(r); });
      };
    });
  }

  // --- admin ---------------------------------------------------------------
  CLI::App* admin = app.add_subcommand("admin", "Operate the server (admin principals)");
  admin->require_subcommand(1);
  CLI::App* backup = admin->add_subcommand(
      "backup",
      "Take an online, consistent backup of the audit log into the server's "
      "backup folder (permitd --backup_dir); writes go on meanwhile. Restore "
      "with `permitd restore --from FOLDER --data DIR`, which verifies it");
  uint32_t backup_keep = 0;
  backup->add_option("--keep", backup_keep,
                     "Then keep only the newest N backups in the folder (0: all)")
      ->capture_default_str();
  backup->callback([&] {
    run = [&] {
      v1::BackupRequest r;
      r.set_keep_last(backup_keep);
      absl::StatusOr<v1::BackupResponse> b = MakeClient(g)->Backup(r);
      if (!b.ok()) return Failed(b.status());
      if (g.format() == Format::kJson) {
        std::cout << Json(*b, true) << "\n";
        return kExitOk;
      }
      std::string kept;
      for (uint32_t id : b->kept_backup_ids()) {
        absl::StrAppend(&kept, kept.empty() ? "" : " ", id);
      }
      std::cout << absl::StrFormat(
          "backup      %d\ntime        %s\nevents      at least %d\nsize        "
          "%d bytes\nfolder      %s (on the server)\nkept        %s\n",
          b->backup_id(), TimeText(b->time()), b->tree_size_at_least(),
          b->size_bytes(), b->backup_dir(), kept);
      return kExitOk;
    };
  });

  // --- health --------------------------------------------------------------
  CLI::App* health = app.add_subcommand(
      "health",
      "Ask the server's standard gRPC health service: exit 0 when it is "
      "SERVING, 1 otherwise (needs no token; for probes and scripts)");
  health->callback([&] {
    run = [&] {
      if (absl::Status s = MakeClient(g)->CheckHealth(); !s.ok()) return Failed(s);
      std::cout << "SERVING\n";
      return kExitOk;
    };
  });

  // --- audit --------------------------------------------------------------
  CLI::App* audit = app.add_subcommand("audit", "Read the audit log");
  audit->require_subcommand(1);

  CLI::App* denials = audit->add_subcommand(
      "denials",
      "Refused calls (wrong role, four-eyes, wrong state, stale version, not "
      "found, unauthenticated, rate-limited), newest first. Kept by permitd "
      "in memory since it started, outside the audit log. Auditors only");
  v1::ListDenialsRequest denials_req;
  denials->add_option("--principal", *denials_req.mutable_principal_id(),
                      "Only refusals of this principal id");
  denials->add_option("--case", *denials_req.mutable_case_id(),
                      "Only refusals naming this case");
  denials->add_option("--code", *denials_req.mutable_code(),
                      "Only this code, e.g. PERMISSION_DENIED");
  int denials_limit = 100;
  denials->add_option("--limit", denials_limit, "At most this many (1..1000)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  uint64_t denials_before = 0;
  denials->add_option("--before", denials_before,
                      "Only refusals older than this id (from a previous page)");
  denials->callback([&] {
    run = [&] {
      denials_req.set_page_size(denials_limit);
      denials_req.set_before_id(denials_before);
      absl::StatusOr<v1::ListDenialsResponse> r =
          MakeClient(g)->ListDenials(denials_req);
      if (!r.ok()) return Failed(r.status());
      PrintDenials(std::cout, *r, g.format());
      return kExitOk;
    };
  });

  CLI::App* head = audit->add_subcommand("head", "Size of the log and its Merkle root");
  head->callback([&] {
    run = [&] {
      absl::StatusOr<v1::LogHead> h = MakeClient(g)->GetLogHead();
      if (!h.ok()) return Failed(h.status());
      PrintHead(std::cout, *h, g.format());
      return kExitOk;
    };
  });

  uint64_t replay_from = 1, replay_to = 0;
  std::string replay_case, replay_actor, replay_action, replay_since, replay_until;
  CLI::App* replay = audit->add_subcommand(
      "replay", "Every event of the log in order: who did what, when");
  replay->add_option("--from", replay_from, "First sequence number")->capture_default_str();
  replay->add_option("--to", replay_to, "Last sequence number (default: the end)");
  replay->add_option("--case", replay_case, "Only events of this case");
  replay->add_option("--actor", replay_actor, "Only events by this principal id");
  replay->add_option("--action", replay_action, "Only events of this action")
      ->check(CLI::IsMember({"submit", "review", "approve", "reject", "suspend",
                             "resume", "revoke", "withdraw"}));
  replay->add_option("--since", replay_since, "Only events at or after this RFC 3339 time");
  replay->add_option("--until", replay_until, "Only events before this RFC 3339 time");
  replay->callback([&] {
    run = [&] {
      v1::ReadLogRequest r;
      r.set_from_sequence(replay_from);
      r.set_to_sequence(replay_to);
      r.set_case_id(replay_case);
      r.set_actor(replay_actor);
      if (!replay_action.empty()) {
        v1::Action a;
        v1::Action_Parse("ACTION_" + absl::AsciiStrToUpper(replay_action), &a);
        r.set_action(a);
      }
      if (!replay_since.empty()) {
        *r.mutable_start_time() = ParseTimeFlag("--since", replay_since);
      }
      if (!replay_until.empty()) {
        *r.mutable_end_time() = ParseTimeFlag("--until", replay_until);
      }
      PrintEventHeader(std::cout, g.format());
      absl::Status s = MakeClient(g)->ReadLog(r, [&](const v1::LogEntry& e) {
        PrintEvent(std::cout, e.event(), g.format());
        return true;
      });
      if (!s.ok()) return Failed(s);
      return kExitOk;
    };
  });

  uint64_t tail_from = 0;
  std::string tail_case;
  CLI::App* tail = audit->add_subcommand(
      "tail", "Follow the log: print events as they commit, until Ctrl-C");
  tail->add_option("--from", tail_from,
                   "First sequence number (default: only events from now on)");
  tail->add_option("--case", tail_case, "Only events of this case");
  tail->callback([&] {
    run = [&] {
      std::unique_ptr<Client> client = MakeClient(g);
      v1::WatchLogRequest r;
      if (tail_from == 0) {
        absl::StatusOr<v1::LogHead> h = client->GetLogHead();
        if (!h.ok()) return Failed(h.status());
        tail_from = h->tree_size() + 1;
      }
      r.set_from_sequence(tail_from);
      r.set_case_id(tail_case);
      PrintEventHeader(std::cout, g.format());
      std::cout.flush();
      absl::Status s = client->WatchLog(r, [&](const v1::LogEntry& e) {
        PrintEvent(std::cout, e.event(), g.format());
        std::cout.flush();
        return true;  // until Ctrl-C ends the process
      });
      if (!s.ok()) return Failed(s);
      return kExitOk;
    };
  });

  // --- audit: checkpoints, proofs, verification, export --------------------
  std::string log_key;
  bool no_save = false;
  audit->add_option("--log-key", log_key,
                    "The log's verifier key <name>+<id>+<key>, pinned out of "
                    "band (default: the key saved on first use)")
      ->envname("PERMIT_LOG_KEY");
  audit->add_flag("--no-save", no_save,
                  "Neither trust a key on first use permanently nor remember "
                  "the verified checkpoint");
  auto verify_options = [&] {
    VerifyOptions o;
    o.log_key = log_key;
    o.remember = !no_save;
    o.on_notice = [](const std::string& s) { std::cerr << "NOTICE: " << s << "\n"; };
    o.on_progress = [](uint64_t done, uint64_t total) {
      std::cerr << "\rverifying: " << done << " / " << total << " events" << std::flush;
    };
    return o;
  };

  CLI::App* checkpoint = audit->add_subcommand(
      "checkpoint", "Print the latest signed checkpoint exactly as signed");
  checkpoint->callback([&] {
    run = [&] {
      std::unique_ptr<Client> client = MakeClient(g);
      absl::StatusOr<v1::SignedCheckpoint> cp = client->GetCheckpoint();
      if (!cp.ok()) return Failed(cp.status());
      if (g.format() == Format::kJson) {
        std::cout << Json(*cp, true) << "\n";
      } else {
        std::cout << cp->note();
      }
      if (!log_key.empty()) {
        absl::StatusOr<CheckpointInfo> info = OpenCheckpoint(cp->note(), log_key);
        if (!info.ok()) return Failed(info.status());
        std::cerr << "signature verified with the pinned key\n";
      }
      return kExitOk;
    };
  });

  uint64_t prove_seq = 0;
  CLI::App* prove = audit->add_subcommand(
      "prove", "Fetch and verify the inclusion proof of one event in the latest "
               "signed checkpoint");
  prove->add_option("SEQ", prove_seq, "Sequence number of the event")->required();
  prove->callback([&] {
    run = [&] {
      std::unique_ptr<Client> client = MakeClient(g);
      VerifyOptions o = verify_options();
      absl::StatusOr<VerifiedCheckpoint> cp = FetchVerifiedCheckpoint(*client, o);
      if (!cp.ok()) return Failed(cp.status());
      absl::StatusOr<v1::InclusionProof> proof =
          client->GetInclusionProof(prove_seq, cp->info.size);
      if (!proof.ok()) return Failed(proof.status());
      // The event itself must hash to the proven leaf.
      std::string bytes;
      v1::ReadLogRequest r;
      r.set_from_sequence(prove_seq);
      r.set_to_sequence(prove_seq);
      r.set_include_event_bytes(true);
      absl::Status read = client->ReadLog(r, [&](const v1::LogEntry& e) {
        bytes = e.event_bytes();
        return true;
      });
      if (!read.ok()) return Failed(read);
      if (proof->root_hash() != cp->info.root) {
        return Failed(absl::DataLossError("the proof's root is not the signed root"));
      }
      if (proof->sequence() != prove_seq || proof->tree_size() != cp->info.size) {
        return Failed(absl::DataLossError(absl::StrCat(
            "the server proved event ", proof->sequence(), " in a tree of ",
            proof->tree_size(), " events instead of event ", prove_seq, " in ",
            cp->info.size)));
      }
      v1::Event served;
      if (!served.ParseFromString(bytes) || served.sequence() != prove_seq) {
        return Failed(absl::DataLossError(absl::StrCat(
            "the bytes served for event ", prove_seq, " are not that event")));
      }
      if (LeafHashHex(bytes) != absl::BytesToHexString(proof->leaf_hash())) {
        return Failed(absl::DataLossError(absl::StrCat(
            "event ", prove_seq, " as served does not hash to the proven leaf")));
      }
      if (absl::Status s = VerifyInclusionProof(*proof); !s.ok()) return Failed(s);
      if (g.format() == Format::kJson) {
        std::cout << Json(*proof, true) << "\n";
      } else {
        PrintInclusionProof(std::cout, *proof);
        std::cout << "verified: event " << prove_seq << " is in the signed tree of "
                  << cp->info.size << " events\n";
      }
      return kExitOk;
    };
  });

  uint64_t cons_old = 0, cons_new = 0;
  CLI::App* consistency = audit->add_subcommand(
      "consistency", "Fetch and verify the consistency proof between two tree sizes");
  consistency->add_option("OLD", cons_old, "The smaller tree size")->required();
  consistency->add_option("NEW", cons_new,
                          "The larger tree size (default: the latest checkpoint's)");
  consistency->callback([&] {
    run = [&] {
      std::unique_ptr<Client> client = MakeClient(g);
      absl::StatusOr<VerifiedCheckpoint> cp =
          FetchVerifiedCheckpoint(*client, verify_options());
      if (!cp.ok()) return Failed(cp.status());
      const uint64_t new_size = cons_new == 0 ? cp->info.size : cons_new;
      absl::StatusOr<v1::ConsistencyProof> proof =
          client->GetConsistencyProof(cons_old, new_size);
      if (!proof.ok()) return Failed(proof.status());
      if (proof->old_size() != cons_old || proof->new_size() != new_size) {
        return Failed(absl::DataLossError(absl::StrCat(
            "the server answered for sizes ", proof->old_size(), " and ",
            proof->new_size(), " instead of ", cons_old, " and ", new_size)));
      }
      if (new_size == cp->info.size && proof->new_root_hash() != cp->info.root) {
        return Failed(absl::DataLossError("the proof's new root is not the signed root"));
      }
      if (absl::Status s = VerifyConsistencyProof(*proof); !s.ok()) return Failed(s);
      if (g.format() == Format::kJson) {
        std::cout << Json(*proof, true) << "\n";
      } else {
        PrintConsistencyProof(std::cout, *proof);
        std::cout << "verified: the tree of " << cons_old << " events is a prefix of the "
                  << "tree of " << new_size << " events"
                  << (new_size == cp->info.size ? " (the signed checkpoint)" : "") << "\n"
                  << "note: the old root is as the server states it; compare it with "
                     "a checkpoint you saved at size "
                  << cons_old << "\n";
      }
      return kExitOk;
    };
  });

  std::string verify_file;
  CLI::App* verify = audit->add_subcommand(
      "verify",
      "Check the whole log against the signed checkpoint: signature, consistency "
      "with the last verified checkpoint, every hash, gaps, versions, the rules "
      "(roles, states, four-eyes) and every case's state");
  verify->add_option("--file", verify_file,
                     "Verify an export file (from `audit export`) with no server");
  verify->callback([&] {
    run = [&] {
      VerifyOptions o = verify_options();
      absl::StatusOr<VerifyReport> report;
      if (!verify_file.empty()) {
        if (log_key.empty()) {
          throw UsageError{
              "audit verify --file needs the log key pinned with --log-key (or "
              "PERMIT_LOG_KEY): a key read from the file itself proves nothing"};
        }
        std::ifstream in(verify_file, std::ios::binary);
        if (!in) throw UsageError{absl::StrCat("cannot read ", verify_file)};
        report = VerifyExport(in, o);
      } else {
        std::unique_ptr<Client> client = MakeClient(g);
        report = VerifyLog(*client, o);
      }
      std::cerr << "\n";
      if (!report.ok()) {
        std::cout << "FAILED: " << report.status().message() << "\n";
        return Failed(report.status());
      }
      const double secs = absl::ToDoubleSeconds(report->elapsed);
      std::cout << "OK: " << report->events << " events, " << report->cases
                << " cases, tree size " << report->tree_size << ", root "
                << report->root_hex << ", "
                << absl::StrFormat("%.2f s (%.0f events/s)", secs,
                                   secs > 0 ? report->events / secs : 0.0)
                << "\n";
      if (report->previous_size > 0) {
        std::cout << "consistent with the checkpoint verified last time (size "
                  << report->previous_size << ")\n";
      }
      if (verify_file.empty()) {
        std::cout << report->snapshots_checked
                  << " case states match the states re-derived from the log\n";
      } else {
        std::cout << "(an export file holds no case snapshots to compare)\n";
      }
      return kExitOk;
    };
  });

  uint64_t export_from = 1, export_to = 0;
  std::string export_out;
  CLI::App* exp = audit->add_subcommand(
      "export", "Write events with the signed checkpoint and proofs, to check "
                "offline with `audit verify --file`");
  exp->add_option("--from", export_from, "First sequence number")->capture_default_str();
  exp->add_option("--to", export_to, "Last sequence number (default: the checkpoint's size)");
  exp->add_option("--out", export_out, "Output file (default: standard output)");
  exp->callback([&] {
    run = [&] {
      std::unique_ptr<Client> client = MakeClient(g);
      std::ofstream file;
      std::ostream* out = &std::cout;
      if (!export_out.empty()) {
        file.open(export_out, std::ios::binary | std::ios::trunc);
        if (!file) throw UsageError{absl::StrCat("cannot write ", export_out)};
        out = &file;
      }
      absl::StatusOr<uint64_t> n = ExportLog(*client, export_from, export_to, *out);
      if (!n.ok()) return Failed(n.status());
      out->flush();
      std::cerr << "exported " << *n << " events\n";
      return kExitOk;
    };
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: " << e.what() << "\nRun 'permitctl --help' (or "
              << "'permitctl <command> <subcommand> --help') for usage.\n";
    return kExitUsage;
  }
  g_tls = !g.insecure;
  try {
    return run ? run() : kExitUsage;
  } catch (const UsageError& e) {
    std::cerr << "error: " << e.message << "\n";
    return kExitUsage;
  }
}

}  // namespace permit::cli

int main(int argc, char** argv) { return permit::cli::Main(argc, argv); }
