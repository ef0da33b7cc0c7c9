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
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/cli/output.h"
#include "google/protobuf/util/json_util.h"
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
  std::string output = "table";
  double timeout_seconds = 10;
  Format format() const { return output == "json" ? Format::kJson : Format::kTable; }
};

std::unique_ptr<Client> MakeClient(const Globals& g) {
  ClientOptions options;
  options.address = g.server;
  options.token = g.token;
  options.deadline = absl::Seconds(g.timeout_seconds);
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
  if (!client.ok()) throw UsageError{std::string(client.status().message())};
  return *std::move(client);
}

// Prints the error and gives the exit code for a failed call.
int Failed(const absl::Status& status) {
  PrintError(std::cerr, status);
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

  std::string get_id;
  CLI::App* get = cases->add_subcommand("get", "Show a case");
  get->add_option("ID", get_id, "Case id")->required();
  get->callback([&] {
    run = [&] {
      absl::StatusOr<v1::Case> c = MakeClient(g)->GetCase(get_id);
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

  std::string history_id;
  CLI::App* history = cases->add_subcommand("history", "Every event of a case");
  history->add_option("ID", history_id, "Case id")->required();
  history->callback([&] {
    run = [&] {
      absl::StatusOr<v1::GetCaseHistoryResponse> h =
          MakeClient(g)->GetCaseHistory(history_id);
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

  // --- audit --------------------------------------------------------------
  CLI::App* audit = app.add_subcommand("audit", "Read the audit log");
  audit->require_subcommand(1);

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
  std::string replay_case;
  CLI::App* replay = audit->add_subcommand(
      "replay", "Every event of the log in order: who did what, when");
  replay->add_option("--from", replay_from, "First sequence number")->capture_default_str();
  replay->add_option("--to", replay_to, "Last sequence number (default: the end)");
  replay->add_option("--case", replay_case, "Only events of this case");
  replay->callback([&] {
    run = [&] {
      v1::ReadLogRequest r;
      r.set_from_sequence(replay_from);
      r.set_to_sequence(replay_to);
      r.set_case_id(replay_case);
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
  try {
    return run ? run() : kExitUsage;
  } catch (const UsageError& e) {
    std::cerr << "error: " << e.message << "\n";
    return kExitUsage;
  }
}

}  // namespace permit::cli

int main(int argc, char** argv) { return permit::cli::Main(argc, argv); }
