// permitd: the permit server. Parses flags, prepares dev credentials when
// asked, starts PermitServer and runs until SIGINT or SIGTERM (SIGHUP
// reloads the principals file and rereads the TLS files), then shuts
// down gracefully (queued actions commit, the log is synced and closed).
#include <signal.h>

#include <algorithm>
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
#include "absl/flags/commandlineflag.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/runtime.h"
#include "server/certs.h"
#include "server/dev_setup.h"
#include "server/files.h"
#include "server/metrics.h"
#include "server/request_log.h"
#include "server/server.h"
#include "server/verify.h"
#include "storage/rocksdb_event_store.h"

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
          "exp-acme, exp-globex, rev-1, rev-2, aud-1 and adm-1 (admin: backups), "
          "and a local CA and "
          "server certificate for localhost (TLS; see --insecure); loopback "
          "only.");
ABSL_FLAG(std::string, tls_cert, "",
          "TLS: the server's certificate chain (PEM). With --tls_key, permitd "
          "serves TLS only. permitd rereads it, --tls_key and --client_ca "
          "every minute and on SIGHUP, and serves a renewed set once the "
          "key matches the certificate (no restart).");
ABSL_FLAG(std::string, tls_key, "", "TLS: the private key of --tls_cert (PEM).");
ABSL_FLAG(std::string, client_ca, "",
          "Mutual TLS: CA certificates (PEM) that client certificates are "
          "verified against. Clients may then present one; principals with "
          "\"cert_subject\" in the principals file must (as well as their "
          "token). Needs --tls_cert.");
ABSL_FLAG(std::string, backup_dir, "",
          "Folder that `permitctl admin backup` writes backups into (default "
          "DATA/backups). Put it on another disk, and copy it off the host.");
ABSL_FLAG(std::string, from, "",
          "`permitd restore`: the backup folder to restore from.");
ABSL_FLAG(uint32_t, backup_id, 0,
          "`permitd restore`: which backup (0: the newest).");
ABSL_FLAG(double, rate_limit, 200,
          "Calls per second each principal may make on average (token "
          "bucket); beyond it calls get RESOURCE_EXHAUSTED. 0 turns the limit "
          "off.");
ABSL_FLAG(double, rate_burst, 400,
          "Calls a principal may make at once after a quiet spell (the "
          "bucket's size).");
ABSL_FLAG(int, max_streams_per_principal, 8,
          "ReadLog/WatchLog streams one principal may hold open at once "
          "(0: no limit).");
ABSL_FLAG(absl::Duration, stream_write_timeout, absl::Seconds(30),
          "A log stream whose client takes no message for this long is "
          "dropped (RESOURCE_EXHAUSTED), so a stuck reader holds no server "
          "memory.");
ABSL_FLAG(int, denials_kept, 10000,
          "Refused calls kept in memory for `permitctl audit denials` (the "
          "oldest are evicted; counts by code cover all since start).");
ABSL_FLAG(bool, insecure, false,
          "Serve plaintext gRPC. Without TLS, permitd listens only on "
          "loopback unless this is given (e.g. behind a TLS-terminating "
          "proxy): bearer tokens would otherwise cross the network in the "
          "clear. With --dev: no dev CA, plaintext on loopback.");

ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9464",
          "Address to serve Prometheus metrics on, IPv4 host:port, at "
          "/metrics (plain HTTP). Empty: no metrics. If the address cannot "
          "be bound, permitd logs a warning and serves without metrics.");
ABSL_FLAG(std::string, log_format, "text",
          "Log lines on stderr: text (\"permitd: ...\") or json (one JSON "
          "object per line). Both carry one line per finished call and one "
          "per lifecycle event.");

namespace {

// Lifecycle events and start-up errors; text until --log_format is read.
std::unique_ptr<permit::server::Logger> g_log;
permit::server::Logger& Log() {
  if (g_log == nullptr) {
    g_log = std::make_unique<permit::server::Logger>(permit::server::LogFormat::kText);
  }
  return *g_log;
}

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
  Log().Event(permit::server::LogLevel::kError, "error", message);
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

// `permitd restore --from BACKUP --data DIR`: restores a backup into
// DIR/db (which must not exist), verifies it as `permitd verify` does, and
// only then puts it in place. Exit 0 when the restored log holds.
int Restore(const std::string& from, uint32_t backup_id, const std::string& data) {
  namespace fs = std::filesystem;
  if (from.empty()) return Fail("restore needs --from BACKUP_FOLDER");
  const fs::path db = fs::path(data) / "db";
  if (fs::exists(db)) {
    return Fail(absl::StrCat(db.string(), " exists: restore into a data folder "
                             "with no database (stop permitd, move the old one "
                             "aside)"));
  }
  std::error_code ec;
  fs::create_directories(data, ec);
  const fs::path staging = fs::path(data) / "db.restoring";
  fs::remove_all(staging, ec);
  if (absl::Status s = permit::storage::RocksDbEventStore::RestoreBackup(
          from, backup_id, staging.string());
      !s.ok()) {
    fs::remove_all(staging, ec);
    return Fail(absl::StrCat("restore failed: ", s.message()));
  }
  absl::StatusOr<permit::server::VerifyReport> report =
      permit::server::VerifyDatabase(staging.string(), nullptr);
  if (!report.ok()) {
    std::cout << "FAILED: the restored log does not verify: "
              << report.status().message() << " (left in " << staging.string()
              << " for inspection; not put in place)\n";
    return 1;
  }
  fs::rename(staging, db, ec);
  if (ec) return Fail(absl::StrCat("cannot move the restored log into place: ", ec.message()));
  std::cout << "OK: restored " << (backup_id == 0 ? "the newest backup" : absl::StrCat("backup ", backup_id))
            << " from " << from << " into " << db.string() << ": " << report->events
            << " events, " << report->cases << " cases, root " << report->root_hex
            << ", verified\n"
            << "note: auditors who saved a checkpoint beyond " << report->events
            << " events will see this log as rolled back; tell them, and see "
               "docs/security.md on rotating the signing key\n";
  return 0;
}

// `permitd --help`: the flags grouped by topic, each with its default and
// its environment variable. A flag of this file missing from the topics is
// listed under "Other" (the walkthrough test fails if there is one).
void PrintHelp(absl::string_view usage) {
  struct Topic {
    const char* title;
    std::vector<const char*> flags;
  };
  const std::vector<Topic> topics = {
      {"Serving", {"listen", "data", "dev"}},
      {"Identity and transport security",
       {"principals", "tls_cert", "tls_key", "client_ca", "insecure"}},
      {"The audit log's checkpoints", {"signing_key", "log_origin"}},
      {"Limits per principal",
       {"rate_limit", "rate_burst", "max_streams_per_principal",
        "stream_write_timeout"}},
      {"Operations", {"metrics_listen", "log_format", "backup_dir", "denials_kept"}},
      {"`permitd restore`", {"from", "backup_id"}},
  };
  std::cout << usage << "\n";
  absl::flat_hash_set<std::string> shown;
  auto print = [&](absl::string_view name) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) return;
    shown.insert(std::string(name));
    std::string def = flag->DefaultValue();
    if (def.empty()) def = "\"\"";
    std::cout << "  --" << name << "  (default " << def << "; env PERMIT_"
              << absl::AsciiStrToUpper(name) << ")\n      " << flag->Help() << "\n";
  };
  for (const Topic& t : topics) {
    std::cout << "\n" << t.title << ":\n";
    for (const char* f : t.flags) print(f);
  }
  std::vector<std::string> others;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::StrContains(flag->Filename(), "server/main.cc") &&
        !shown.contains(std::string(name))) {
      others.emplace_back(name);
    }
  }
  if (!others.empty()) {
    std::sort(others.begin(), others.end());
    std::cout << "\nOther:\n";
    for (const std::string& f : others) print(f);
  }
  std::cout << "\n--helpfull lists every flag, including the libraries'.\n";
}

}  // namespace

int main(int argc, char** argv) {
  permit::core::UseReleaseRuntime();
  absl::SetProgramUsageMessage(
      "permit server: runs export-licence cases through their states and "
      "records every accepted action in an append-only, tamper-evident audit "
      "log.\n\n"
      "  permitd --dev                          local try-out, prints tokens\n"
      "  permitd --principals FILE --signing_key KEY --data DIR\n"
      "                                         production\n"
      "  permitd verify --data DIR              check a database folder\n"
      "                                         (read-only; also while it is served)\n"
      "  permitd restore --from BACKUP --data DIR\n"
      "                                         restore a backup and verify it\n"
      "\nEvery flag can also be set as PERMIT_<FLAG> in the environment\n"
      "(e.g. PERMIT_LISTEN=127.0.0.1:7500); the command line wins.\n");
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg == "--help" || arg == "-help" || arg == "-h") {
      PrintHelp(absl::ProgramUsageMessage());
      return 0;
    }
  }
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (std::string env_error; !ApplyEnvironment(argc, argv, &env_error)) {
    return Fail(env_error);
  }
  absl::StatusOr<permit::server::LogFormat> log_format =
      permit::server::ParseLogFormat(absl::GetFlag(FLAGS_log_format));
  if (!log_format.ok()) return Fail(log_format.status().message());
  g_log = std::make_unique<permit::server::Logger>(*log_format);
  if (args.size() > 1) {
    if (std::string(args[1]) == "verify") {
      if (args.size() > 2) {
        return Fail("verify takes no arguments; name the folder with --data DIR");
      }
      return Verify(absl::GetFlag(FLAGS_data));
    }
    if (std::string(args[1]) == "restore") {
      if (args.size() > 2) {
        return Fail("restore takes no arguments; use --from BACKUP --data DIR");
      }
      return Restore(absl::GetFlag(FLAGS_from), absl::GetFlag(FLAGS_backup_id),
                     absl::GetFlag(FLAGS_data));
    }
    return Fail(absl::StrCat("unknown command \"", args[1],
                             "\"; the commands are `verify` and `restore` (see --help)"));
  }

  const std::string listen = absl::GetFlag(FLAGS_listen);
  const std::string data = absl::GetFlag(FLAGS_data);
  std::string principals_file = absl::GetFlag(FLAGS_principals);
  const bool dev = absl::GetFlag(FLAGS_dev);

  if (listen.rfind(':') == std::string::npos) {
    return Fail(absl::StrCat("--listen ", listen, ": expected host:port"));
  }
  const std::string metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  if (!metrics_listen.empty() && metrics_listen.rfind(':') == std::string::npos) {
    return Fail(absl::StrCat("--metrics_listen ", metrics_listen,
                             ": expected host:port (or empty: no metrics)"));
  }
  std::error_code ec;
  std::filesystem::create_directories(data, ec);
  if (ec) {
    return Fail(absl::StrCat("cannot create the data folder ", data, ": ",
                             ec.message()));
  }

  const bool insecure = absl::GetFlag(FLAGS_insecure);
  std::string tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  std::string tls_key_file = absl::GetFlag(FLAGS_tls_key);
  const std::string client_ca_file = absl::GetFlag(FLAGS_client_ca);
  if (insecure && (!tls_cert_file.empty() || !client_ca_file.empty())) {
    return Fail("--insecure turns TLS off; drop it, or drop --tls_cert/--client_ca");
  }
  if (tls_cert_file.empty() != tls_key_file.empty()) {
    return Fail("TLS needs both --tls_cert and --tls_key");
  }
  if (!client_ca_file.empty() && tls_cert_file.empty()) {
    return Fail("--client_ca checks client certificates, which needs TLS: "
                "pass --tls_cert and --tls_key too");
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
    if (!tls_cert_file.empty()) {
      return Fail("--dev makes its own CA and server certificate; drop "
                  "--tls_cert/--tls_key, or drop --dev");
    }
    dev_setup = permit::server::EnsureDevSetup(data, /*tls=*/!insecure);
    if (!dev_setup.ok()) return Fail(dev_setup.status().ToString());
    principals_file = dev_setup->principals_file;
    tls_cert_file = dev_setup->server_cert_file;
    tls_key_file = dev_setup->server_key_file;
  } else if (principals_file.empty()) {
    return Fail(
        "no principals: pass --principals FILE, or --dev for a local try-out "
        "(see --help)");
  }
  if (tls_cert_file.empty() && !insecure && !IsLoopback(listen)) {
    return Fail(absl::StrCat(
        "refusing to serve plaintext on ", listen,
        ", which is not a loopback address: bearer tokens and case data would "
        "cross the network in the clear. Pass --tls_cert and --tls_key, or "
        "--insecure if a TLS-terminating proxy sits in front"));
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
  absl::StatusOr<std::string> signing_key = permit::server::ReadWholeFile(signing_key_file);
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
  // A file-size limit (RLIMIT_FSIZE) or full quota must fail the write with
  // EFBIG, which the log reports and latches, not kill the process mid-batch.
  signal(SIGXFSZ, SIG_IGN);

  permit::server::ServerOptions options;
  options.manager.on_storage_failure = [](const absl::Status& status) {
    Log().Event(permit::server::LogLevel::kError, "storage_failure",
                absl::StrCat("STORAGE FAILURE, writes stopped until restart: ",
                             status.message()));
  };
  if (!tls_cert_file.empty()) {
    absl::StatusOr<std::string> cert = permit::server::ReadWholeFile(tls_cert_file);
    if (!cert.ok()) return Fail(cert.status().message());
    absl::StatusOr<std::string> key = permit::server::ReadWholeFile(tls_key_file);
    if (!key.ok()) return Fail(key.status().message());
    if (absl::Status s = permit::server::CheckCertificateAndKey(
            *cert, *key, tls_cert_file, tls_key_file);
        !s.ok()) {
      return Fail(s.message());
    }
    options.tls_cert_pem = *std::move(cert);
    options.tls_key_pem = *std::move(key);
    options.tls_cert_file = tls_cert_file;
    options.tls_key_file = tls_key_file;
    options.tls_dir = (std::filesystem::path(data) / "tls").string();
    options.on_tls_reload = [cert = tls_cert_file](const absl::Status& status) {
      if (status.ok()) {
        Log().Info("tls_reloaded",
                   absl::StrCat("serving the renewed TLS certificate from ", cert),
                   {permit::server::LogField::Str("file", cert)});
      } else {
        Log().Event(permit::server::LogLevel::kWarning, "tls_reload_refused",
                    absl::StrCat("TLS files not taken; still serving the last "
                                 "good set: ",
                                 status.message()),
                    {permit::server::LogField::Str("file", cert)});
      }
    };
  }
  if (!client_ca_file.empty()) {
    absl::StatusOr<std::string> ca = permit::server::ReadWholeFile(client_ca_file);
    if (!ca.ok()) return Fail(ca.status().message());
    if (absl::Status s = permit::server::CheckCertificates(*ca, client_ca_file);
        !s.ok()) {
      return Fail(s.message());
    }
    options.client_ca_pem = *std::move(ca);
    options.client_ca_file = client_ca_file;
  }
  options.rate_limit = absl::GetFlag(FLAGS_rate_limit);
  options.rate_burst = absl::GetFlag(FLAGS_rate_burst);
  options.max_streams_per_principal = absl::GetFlag(FLAGS_max_streams_per_principal);
  options.stream_write_timeout = absl::GetFlag(FLAGS_stream_write_timeout);
  options.denials_kept = static_cast<size_t>(std::max(0, absl::GetFlag(FLAGS_denials_kept)));
  if (options.rate_limit < 0 || options.rate_burst < 1 ||
      options.max_streams_per_principal < 0 ||
      options.stream_write_timeout <= absl::ZeroDuration()) {
    return Fail("--rate_limit and --max_streams_per_principal must be >= 0, "
                "--rate_burst >= 1 and --stream_write_timeout > 0");
  }
  options.backup_dir = absl::GetFlag(FLAGS_backup_dir).empty()
                           ? (std::filesystem::path(data) / "backups").string()
                           : absl::GetFlag(FLAGS_backup_dir);
  options.listen = listen;
  options.db_path = (std::filesystem::path(data) / "db").string();
  options.principals = *std::move(registry);
  options.signing_key_pem = *std::move(signing_key);
  options.log_origin = log_origin;

  using permit::server::LogField;
  // Metrics and the request log see every finished call; metrics also
  // every commit. Both outlive the server (declared before it).
  std::unique_ptr<permit::server::Metrics> metrics;
  if (!metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<permit::server::Metrics>> m =
        permit::server::Metrics::Start(metrics_listen);
    if (m.status().code() == absl::StatusCode::kInvalidArgument) {
      return Fail(absl::StrCat("--metrics_listen: ", m.status().message()));
    }
    if (m.ok()) {
      metrics = *std::move(m);
      options.observers.push_back(metrics.get());
      options.manager.on_commit = metrics->CommitHook();
    } else {
      // Not fatal: approvals and the audit log do not depend on metrics,
      // and a second permitd on the host (tests, a migration) would
      // otherwise refuse to start over the default port.
      Log().Event(permit::server::LogLevel::kWarning, "metrics_off",
                  absl::StrCat("metrics off: ", m.status().message()),
                  {LogField::Str("address", metrics_listen)});
    }
  }
  permit::server::RequestLog request_log(&Log());
  options.observers.push_back(&request_log);

  Log().Info("starting",
             absl::StrCat("starting: opening the audit log in ", options.db_path),
             {LogField::Str("data", data), LogField::Str("db", options.db_path)});
  absl::StatusOr<std::unique_ptr<permit::server::PermitServer>> server =
      permit::server::PermitServer::Start(std::move(options));
  if (!server.ok()) return Fail(server.status().ToString());
  if (metrics != nullptr) metrics->Attach(server->get());

  const std::string host = listen.substr(0, listen.rfind(':'));
  const permit::v1::LogHead head = (*server)->manager()->GetLogHead({});
  const std::string address = absl::StrCat(host, ":", (*server)->port());
  const int64_t events = static_cast<int64_t>(head.tree_size());
  Log().Info(
      "listening",
      absl::StrCat("listening on ", address,
                   (*server)->tls() ? " (TLS" : " (plaintext",
                   client_ca_file.empty() ? "" : ", client certificates checked",
                   "; data ", data, ", ", events, " events in the audit log)"),
      {LogField::Str("address", address), LogField::Bool("tls", (*server)->tls()),
       LogField::Bool("client_certificates", !client_ca_file.empty()),
       LogField::Str("data", data), LogField::Int("events", events)});
  Log().Info("log_key", absl::StrCat("log key ", (*server)->verifier_key()),
             {LogField::Str("key", (*server)->verifier_key())});
  if (metrics != nullptr) {
    const std::string metrics_address = absl::StrCat(
        metrics_listen.substr(0, metrics_listen.rfind(':')), ":", metrics->port());
    Log().Info("metrics",
               absl::StrCat("metrics on http://", metrics_address, "/metrics"),
               {LogField::Str("address", metrics_address)});
  }
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
    std::cout << "export PERMIT_SERVER=" << host << ":" << (*server)->port() << "\n";
    if ((*server)->tls()) {
      std::cout << "# the dev CA that signed the server's certificate:\n"
                << "export PERMIT_CA="
                << std::filesystem::absolute(dev_setup->ca_file).string() << "\n";
    } else {
      std::cout << "# plaintext (--insecure): permitctl needs --insecure too\n"
                << "export PERMIT_INSECURE=1\n";
    }
    std::cout << std::flush;
  }

  int sig = 0;
  for (;;) {
    sigwait(&signals, &sig);
    if (sig != SIGHUP) break;
    // SIGHUP: reread the TLS files now and log what that found, and reload
    // the principals. Calls in flight keep the
    // principal they started with; a file with a mistake is refused and the
    // old one stays.
    if ((*server)->tls()) {
      absl::StatusOr<bool> tls = (*server)->ReloadTls();
      if (!tls.ok() && tls.status().code() != absl::StatusCode::kFailedPrecondition) {
        Log().Event(permit::server::LogLevel::kWarning, "tls_reload_refused",
                    absl::StrCat("SIGHUP: TLS files not taken; still serving the "
                                 "last good set: ",
                                 tls.status().message()));
      } else if (tls.ok()) {
        Log().Info("tls_reloaded", *tls ? "SIGHUP: serving the renewed TLS files"
                                        : "SIGHUP: the TLS files are unchanged");
      }
    }
    absl::StatusOr<permit::server::PrincipalRegistry> reloaded =
        permit::server::PrincipalRegistry::Load(principals_file);
    const int64_t count = reloaded.ok() ? static_cast<int64_t>(reloaded->size()) : 0;
    const absl::Status refused = reloaded.ok()
                                     ? (*server)->ReplacePrincipals(*std::move(reloaded))
                                     : reloaded.status();
    if (!refused.ok()) {
      Log().Event(permit::server::LogLevel::kWarning, "reload_refused",
                  absl::StrCat("SIGHUP: kept the current principals: ",
                               refused.message()),
                  {LogField::Str("file", principals_file)});
      continue;
    }
    Log().Info("reloaded",
               absl::StrCat("SIGHUP: reloaded ", count, " principals from ",
                            principals_file),
               {LogField::Str("file", principals_file),
                LogField::Int("principals", count)});
  }
  const char* signal_name = sig == SIGINT ? "SIGINT" : "SIGTERM";
  Log().Info("shutting_down", absl::StrCat(signal_name, ", shutting down"),
             {LogField::Str("signal", signal_name)});
  // Metrics stop reading the server before it goes away; the commit hook
  // stays valid until the manager is gone (metrics outlives the server).
  if (metrics != nullptr) metrics->Detach();
  (*server)->Shutdown();
  Log().Info("stopped", "stopped; the audit log is closed");
  return 0;
}
