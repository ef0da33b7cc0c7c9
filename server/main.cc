// permitd: the permit server. Parses flags, prepares dev credentials when
// asked, starts PermitServer and runs until SIGINT or SIGTERM (SIGHUP
// reloads the principals file), then shuts
// down gracefully (queued actions commit, the log is synced and closed).
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/dev_setup.h"
#include "server/server.h"
#include "server/verify.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7443",
          "Address to serve gRPC on, host:port. Port 0 picks a free port "
          "(printed at start).");
ABSL_FLAG(std::string, data, "./data",
          "Data folder: the RocksDB audit log lives in DATA/db (created if "
          "missing), dev credentials in DATA/dev.");
ABSL_FLAG(std::string, principals, "",
          "Principals file (JSON: id, role, org, token_sha256 per principal). "
          "Required unless --dev.");
ABSL_FLAG(std::string, signing_key, "",
          "Ed25519 private key (PKCS#8 PEM) that signs the log's checkpoints; "
          "make one with `openssl genpkey -algorithm ed25519 -out FILE`. "
          "Required unless --dev, which creates DATA/dev/log-signing-key.pem.");
ABSL_FLAG(std::string, log_origin, "",
          "The log's origin: the first line of every checkpoint and the "
          "signing key's name (C2SP tlog-checkpoint), e.g. "
          "\"licensing.example.gov/permit\". Required unless --dev, which "
          "uses \"permit.invalid/log\". Choose it once: the verifier key "
          "that auditors pin depends on it.");
ABSL_FLAG(bool, dev, false,
          "Development mode: create (first time) and print tokens for "
          "exp-acme, exp-globex, rev-1, rev-2 and aud-1; loopback only.");

namespace {

// True for 127.0.0.0/8, ::1 and localhost.
bool IsLoopback(absl::string_view listen) {
  absl::string_view host = listen;
  if (absl::StartsWith(host, "[")) {
    host = host.substr(1, host.find(']') == absl::string_view::npos
                              ? absl::string_view::npos
                              : host.find(']') - 1);
    return host == "::1";
  }
  host = host.substr(0, host.rfind(':'));
  return host == "localhost" || absl::StartsWith(host, "127.");
}

int Fail(absl::string_view message);

// Every flag can also come from the environment as PERMIT_<FLAG> (e.g.
// PERMIT_LISTEN, PERMIT_LOG_ORIGIN); the command line wins. False with
// `error` set if a variable does not parse.
bool ApplyEnvironment(int argc, char** argv, std::string* error) {
  // The flags named on the command line ("--name", "--name=value",
  // "--noname"); those keep their command-line value.
  absl::flat_hash_set<std::string> given;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (!absl::ConsumePrefix(&arg, "--") && !absl::ConsumePrefix(&arg, "-")) continue;
    arg = arg.substr(0, arg.find('='));
    given.insert(std::string(arg));
    if (absl::ConsumePrefix(&arg, "no")) given.insert(std::string(arg));
  }
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!absl::StrContains(flag->Filename(), "server/main.cc") ||
        given.contains(std::string(name))) {
      continue;
    }
    const std::string var = absl::StrCat("PERMIT_", absl::AsciiStrToUpper(name));
    const char* value = std::getenv(var.c_str());
    if (value == nullptr) continue;
    std::string why;
    if (!flag->ParseFrom(value, &why)) {
      *error = absl::StrCat(var, "=", value, ": ", why);
      return false;
    }
  }
  return true;
}

int Fail(absl::string_view message) {
  std::cerr << "permitd: " << message << "\n";
  return 1;
}

// `permitd verify`: exit 0 if the log in DATA/db holds, 1 naming the first
// problem otherwise.
int Verify(const std::string& data) {
  const std::string db = (std::filesystem::path(data) / "db").string();
  if (!std::filesystem::exists(db)) {
    return Fail(absl::StrCat("no database in ", db, " (wrong --data?)"));
  }
  absl::StatusOr<permit::server::VerifyReport> report = permit::server::VerifyDatabase(
      db, [](uint64_t done, uint64_t total) {
        std::cerr << "\rpermitd verify: " << done << " / " << total << " events"
                  << std::flush;
      });
  std::cerr << "\n";
  if (!report.ok()) {
    std::cout << "FAILED: " << report.status().message() << "\n";
    return 1;
  }
  const double secs = absl::ToDoubleSeconds(report->elapsed);
  std::cout << "OK: " << report->events << " events, " << report->cases
            << " cases, tree size " << report->events << ", root "
            << report->root_hex << ", " << absl::StrFormat("%.2f", secs) << " s ("
            << absl::StrFormat("%.0f", secs > 0 ? report->events / secs : 0.0)
            << " events/s)\n";
  return 0;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "permit server: runs export-licence cases through their states and "
      "records every accepted action in an append-only, tamper-evident audit "
      "log.\n\n"
      "  permitd --dev                          local try-out, prints tokens\n"
      "  permitd --principals FILE --signing_key KEY --data DIR\n"
      "                                         production\n"
      "  permitd verify --data DIR              check a database folder\n"
      "                                         (read-only; also while it is served)\n"
      "\nEvery flag can also be set as PERMIT_<FLAG> in the environment\n"
      "(e.g. PERMIT_LISTEN=127.0.0.1:7500); the command line wins.\n");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (std::string env_error; !ApplyEnvironment(argc, argv, &env_error)) {
    return Fail(env_error);
  }
  if (args.size() > 1) {
    if (std::string(args[1]) == "verify") {
      if (args.size() > 2) {
        return Fail("verify takes no arguments; name the folder with --data DIR");
      }
      return Verify(absl::GetFlag(FLAGS_data));
    }
    return Fail(absl::StrCat("unknown command \"", args[1],
                             "\"; the only command is `verify` (see --help)"));
  }

  const std::string listen = absl::GetFlag(FLAGS_listen);
  const std::string data = absl::GetFlag(FLAGS_data);
  std::string principals_file = absl::GetFlag(FLAGS_principals);
  const bool dev = absl::GetFlag(FLAGS_dev);

  if (listen.rfind(':') == std::string::npos) {
    return Fail(absl::StrCat("--listen ", listen, ": expected host:port"));
  }
  std::error_code ec;
  std::filesystem::create_directories(data, ec);
  if (ec) {
    return Fail(absl::StrCat("cannot create the data folder ", data, ": ",
                             ec.message()));
  }

  absl::StatusOr<permit::server::DevSetup> dev_setup;
  if (dev) {
    if (!IsLoopback(listen)) {
      return Fail(absl::StrCat("--dev listens on loopback only; ", listen,
                               " is not a loopback address"));
    }
    if (!principals_file.empty()) {
      return Fail(
          "--dev makes its own principals and prints their tokens; drop "
          "--principals, or drop --dev to use your own file");
    }
    dev_setup = permit::server::EnsureDevSetup(data);
    if (!dev_setup.ok()) return Fail(dev_setup.status().ToString());
    principals_file = dev_setup->principals_file;
  } else if (principals_file.empty()) {
    return Fail(
        "no principals: pass --principals FILE, or --dev for a local try-out "
        "(see --help)");
  }

  absl::StatusOr<permit::server::PrincipalRegistry> registry =
      permit::server::PrincipalRegistry::Load(principals_file);
  if (!registry.ok()) return Fail(registry.status().message());

  std::string signing_key_file = absl::GetFlag(FLAGS_signing_key);
  if (signing_key_file.empty() && dev) signing_key_file = dev_setup->signing_key_file;
  if (signing_key_file.empty()) {
    return Fail(
        "no log signing key: pass --signing_key FILE (make one with `openssl "
        "genpkey -algorithm ed25519 -out FILE`), or --dev");
  }
  absl::StatusOr<std::string> signing_key = ReadFile(signing_key_file);
  if (!signing_key.ok()) return Fail(signing_key.status().message());
  std::string log_origin = absl::GetFlag(FLAGS_log_origin);
  if (log_origin.empty()) {
    if (!dev) {
      return Fail(
          "no log origin: pass --log_origin NAME (e.g. "
          "licensing.example.gov/permit); it names the log in every checkpoint "
          "and is part of the key auditors pin");
    }
    log_origin = "permit.invalid/log";
  }

  // Signals are taken by sigwait below; block them before threads start.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  permit::server::ServerOptions options;
  options.listen = listen;
  options.db_path = (std::filesystem::path(data) / "db").string();
  options.principals = *std::move(registry);
  options.signing_key_pem = *std::move(signing_key);
  options.log_origin = log_origin;
  absl::StatusOr<std::unique_ptr<permit::server::PermitServer>> server =
      permit::server::PermitServer::Start(std::move(options));
  if (!server.ok()) return Fail(server.status().ToString());

  const std::string host = listen.substr(0, listen.rfind(':'));
  const permit::v1::LogHead head = (*server)->manager()->GetLogHead({});
  std::cerr << "permitd: listening on " << host << ":" << (*server)->port()
            << " (data " << data << ", " << head.tree_size()
            << " events in the audit log)\n"
            << "permitd: log key " << (*server)->verifier_key() << "\n";
  if (dev) {
    std::cout << "# permit dev credentials (kept in " << data
              << "/dev). Paste one export line to act as that principal:\n";
    for (const auto& p : dev_setup->principals) {
      std::cout << "# " << p.id << ": " << p.role
                << (p.org.empty() ? "" : absl::StrCat(", organisation ", p.org))
                << "\nexport PERMIT_TOKEN=" << p.token << "\n";
    }
    std::cout << "# the log's checkpoint key, for `permitctl audit verify`:\n"
              << "export PERMIT_LOG_KEY=" << (*server)->verifier_key() << "\n";
    std::cout << "export PERMIT_SERVER=" << host << ":" << (*server)->port()
              << std::endl;
  }

  int sig = 0;
  for (;;) {
    sigwait(&signals, &sig);
    if (sig != SIGHUP) break;
    // SIGHUP: reload the principals. Calls in flight keep the principal they
    // started with; a file with a mistake is refused and the old one stays.
    absl::StatusOr<permit::server::PrincipalRegistry> reloaded =
        permit::server::PrincipalRegistry::Load(principals_file);
    if (!reloaded.ok()) {
      std::cerr << "permitd: SIGHUP: kept the current principals: "
                << reloaded.status().message() << "\n";
      continue;
    }
    const size_t count = reloaded->size();
    (*server)->ReplacePrincipals(*std::move(reloaded));
    std::cerr << "permitd: SIGHUP: reloaded " << count << " principals from "
              << principals_file << "\n";
  }
  std::cerr << "permitd: " << (sig == SIGINT ? "SIGINT" : "SIGTERM")
            << ", shutting down\n";
  (*server)->Shutdown();
  std::cerr << "permitd: stopped; the audit log is closed\n";
  return 0;
}
