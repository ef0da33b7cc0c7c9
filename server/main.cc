// permitd: the permit server. Parses flags, prepares dev credentials when
// asked, starts PermitServer and runs until SIGINT or SIGTERM, then shuts
// down gracefully (queued actions commit, the log is synced and closed).
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/dev_setup.h"
#include "server/server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7443",
          "Address to serve gRPC on, host:port. Port 0 picks a free port "
          "(printed at start).");
ABSL_FLAG(std::string, data, "./data",
          "Data folder: the RocksDB audit log lives in DATA/db (created if "
          "missing), dev credentials in DATA/dev.");
ABSL_FLAG(std::string, principals, "",
          "Principals file (JSON: id, role, org, token_sha256 per principal). "
          "Required unless --dev.");
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

int Fail(absl::string_view message) {
  std::cerr << "permitd: " << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "permit server: runs export-licence cases through their states and "
      "records every accepted action in an append-only, tamper-evident audit "
      "log.\n\n"
      "  permitd --dev                          local try-out, prints tokens\n"
      "  permitd --principals FILE --data DIR   production\n");
  absl::ParseCommandLine(argc, argv);

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

  // Signals are taken by sigwait below; block them before threads start.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  permit::server::ServerOptions options;
  options.listen = listen;
  options.db_path = (std::filesystem::path(data) / "db").string();
  options.principals = *std::move(registry);
  absl::StatusOr<std::unique_ptr<permit::server::PermitServer>> server =
      permit::server::PermitServer::Start(std::move(options));
  if (!server.ok()) return Fail(server.status().ToString());

  const std::string host = listen.substr(0, listen.rfind(':'));
  const permit::v1::LogHead head = (*server)->manager()->GetLogHead({});
  std::cerr << "permitd: listening on " << host << ":" << (*server)->port()
            << " (data " << data << ", " << head.tree_size()
            << " events in the audit log)\n";
  if (dev) {
    std::cout << "# permit dev credentials (kept in " << data
              << "/dev). Paste one export line to act as that principal:\n";
    for (const auto& p : dev_setup->principals) {
      std::cout << "# " << p.id << ": " << p.role
                << (p.org.empty() ? "" : absl::StrCat(", organisation ", p.org))
                << "\nexport PERMIT_TOKEN=" << p.token << "\n";
    }
    std::cout << "export PERMIT_SERVER=" << host << ":" << (*server)->port()
              << std::endl;
  }

  int sig = 0;
  sigwait(&signals, &sig);
  std::cerr << "permitd: " << (sig == SIGINT ? "SIGINT" : "SIGTERM")
            << ", shutting down\n";
  (*server)->Shutdown();
  std::cerr << "permitd: stopped; the audit log is closed\n";
  return 0;
}
