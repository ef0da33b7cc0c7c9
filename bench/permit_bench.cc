// permit-bench: a load generator for permitd, with the two ceilings it is
// judged against measured in the same run on the same machine.
//
//   permit-bench                       start a permitd (the binary beside this
//                                      one) on a temp folder, run every mode
//                                      briefly, print one table, clean up
//   permit-bench --mode submit --duration 30s
//   permit-bench --target 127.0.0.1:7443 --tokens_dir data/dev
//
// Modes (each a closed loop of --concurrency clients, every client one call
// in flight, over the raw generated stubs and the gRPC callback API):
//   submit     SubmitCase, the exporters exp-acme and exp-globex by turns;
//   lifecycle  per client: submit (exporter), review (rev-1), approve
//              (rev-2), suspend (rev-2), resume (rev-1); every call counts
//              as one action;
//   read       90% GetCase of a random existing case (rev-1 or aud-1), 10%
//              ListCases pages of 10 from a random page token (aud-1);
//   replay     ReadLog of the whole log as aud-1 with include_event_bytes and
//              bytes_only, as `permitctl audit verify` reads it, one stream,
//              repeated for the duration; events/s;
//   echo       baseline: a trivial unary echo service (bench/echo.proto,
//              callback API like permitd) served by a second permit-bench
//              process (`--serve_echo PORT`), same client, same concurrency,
//              request as large as a SubmitCaseRequest;
//   rocksdb    baseline: --concurrency threads each writing one ~400-byte
//              Put per synced WriteBatch to a fresh RocksDB in the temp
//              folder (RocksDB's own write-group batching applies).
// Each permit figure is printed as a ratio of the echo baseline, and submit
// and lifecycle also of the RocksDB baseline. Only calls that complete in
// the measured window (after --warmup) count; failed calls are counted as
// errors and left out of the rates and latencies. The CPU columns are the
// cores the server process and permit-bench itself used in the window.
//
// Its own permitd gets a generated principals file (exp-acme, exp-globex,
// rev-1, rev-2, aud-1; random tokens, their SHA-256 in the file) and a fresh
// Ed25519 key, listens on 127.0.0.1 on a free port, and is stopped with
// SIGTERM at the end; its resident memory is reported before that. Not a
// test: nothing is asserted.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/bench_files.h"
#include "bench/echo.grpc.pb.h"
#include "bench/sample_application.h"
#include "core/checkpoint.h"
#include "core/merkle.h"
#include "core/runtime.h"
#include "core/time_util.h"
#include "grpcpp/grpcpp.h"
#include "permit/v1/audit_service.grpc.pb.h"
#include "permit/v1/case_service.grpc.pb.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"

ABSL_FLAG(std::string, mode, "all",
          "all, or a comma-separated list of submit, lifecycle, read, replay, "
          "echo, rocksdb (run in the order echo, rocksdb, submit, lifecycle, "
          "read, replay).");
ABSL_FLAG(int, concurrency, 64,
          "Clients, each with one call in flight (RocksDB baseline: threads).");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(8),
          "Measured time per mode, after --warmup.");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(1),
          "Time per mode before measuring starts (results discarded).");
ABSL_FLAG(std::string, target, "",
          "host:port of a running permitd to load instead of starting one; "
          "tokens then come from --tokens_dir.");
ABSL_FLAG(std::string, tokens_dir, "",
          "With --target: folder of <principal>.token files for exp-acme, "
          "exp-globex, rev-1, rev-2 and aud-1, as `permitd --dev` writes them "
          "in DATA/dev.");
ABSL_FLAG(std::string, permitd, "",
          "permitd binary to start (default: the permitd beside permit-bench).");
ABSL_FLAG(std::string, target_metrics, "",
          "With --target: host:port of its Prometheus metrics, to report "
          "commits, batch sizes and sync times.");
ABSL_FLAG(int, server_pid, 0,
          "With --target: the server's pid, to report its CPU and memory.");
ABSL_FLAG(bool, baselines, true,
          "With submit, lifecycle or read: also measure the echo baseline "
          "(and with submit or lifecycle the RocksDB one), for the ratios.");
ABSL_FLAG(int, channels, 2,
          "gRPC channels (HTTP/2 connections) the clients are spread over, "
          "for every gRPC mode alike. One connection is read by one server "
          "thread at a time; 2 (one per core here) gave the echo baseline "
          "its best figures.");
ABSL_FLAG(int, read_cases, 2000, "Cases the read mode reads among.");
ABSL_FLAG(int, replay_min_events, 20000,
          "Replay: first submit cases until the log holds this many events.");
ABSL_FLAG(int, rocksdb_value_bytes, 400, "RocksDB baseline: bytes per Put.");
ABSL_FLAG(bool, permitd_metrics, true,
          "Our permitd serves its Prometheus metrics (on a free port), as "
          "deployed; false passes --metrics_listen= (none). Only if permitd "
          "has the flag.");
ABSL_FLAG(bool, keep, false, "Keep the temp folder (permitd's data and log).");
ABSL_FLAG(int, serve_echo, -1,
          "Internal: serve the echo baseline on 127.0.0.1:PORT (0: a free "
          "port), print the port on stdout, run until SIGTERM.");

namespace permit::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kPrincipals[][16] = {"exp-acme", "exp-globex", "rev-1", "rev-2",
                                    "aud-1"};

int Fail(absl::string_view message) {
  std::cerr << "permit-bench: " << message << "\n";
  return 1;
}

std::string ReadFileOr(const fs::path& path, std::string fallback) {
  std::ifstream in(path);
  if (!in) return fallback;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// --- Processes --------------------------------------------------------------

// CPU seconds (user + system) a process has used so far; -1 if unknown.
double CpuSeconds(pid_t pid) {
  const std::string stat =
      ReadFileOr(pid == 0 ? "/proc/self/stat" : absl::StrCat("/proc/", pid, "/stat"), "");
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::vector<std::string> f = absl::StrSplit(stat.substr(paren + 2), ' ');
  uint64_t utime = 0, stime = 0;
  if (f.size() < 13 || !absl::SimpleAtoi(f[11], &utime) ||
      !absl::SimpleAtoi(f[12], &stime)) {
    return -1;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// A /proc/PID/status line such as "VmRSS:  31544 kB", in MB; -1 if unknown.
double StatusMb(pid_t pid, absl::string_view key) {
  std::istringstream in(ReadFileOr(absl::StrCat("/proc/", pid, "/status"), ""));
  for (std::string line; std::getline(in, line);) {
    absl::string_view v = line;
    if (!absl::ConsumePrefix(&v, key) || !absl::ConsumePrefix(&v, ":")) continue;
    v = absl::StripAsciiWhitespace(v);
    absl::ConsumeSuffix(&v, " kB");
    uint64_t kb = 0;
    if (absl::SimpleAtoi(v, &kb)) return kb / 1024.0;
  }
  return -1;
}

// A child process started with posix_spawn (no fork of a threaded process).
// Stopped with SIGTERM, then SIGKILL after 30 s, on Stop or destruction.
class Child {
 public:
  // Starts `argv[0]` with `argv`; stdout and stderr go to `log` if it is
  // set, stdout to `stdout_fd` if that is >= 0.
  static absl::StatusOr<std::unique_ptr<Child>> Spawn(
      const std::vector<std::string>& argv, const std::string& log, int stdout_fd) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (!log.empty()) {
      posix_spawn_file_actions_addopen(&fa, 2, log.c_str(),
                                       O_WRONLY | O_CREAT | O_APPEND, 0644);
      posix_spawn_file_actions_adddup2(&fa, 2, 1);
    }
    if (stdout_fd >= 0) {
      posix_spawn_file_actions_adddup2(&fa, stdout_fd, 1);
      posix_spawn_file_actions_addclose(&fa, stdout_fd);
    }
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      return absl::InternalError(
          absl::StrCat("cannot start ", argv[0], ": ", std::strerror(rc)));
    }
    return std::unique_ptr<Child>(new Child(pid));
  }

  ~Child() { Stop(); }

  pid_t pid() const { return pid_; }

  // True while the process has not exited.
  bool Running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      status_ = status;
      return false;
    }
    return true;
  }

  // SIGTERM, wait (SIGKILL after 30 s); returns the wait status.
  int Stop() {
    if (pid_ <= 0) return status_;
    kill(pid_, SIGTERM);
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    for (;;) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        status_ = status;
        break;
      }
      if (Clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status_, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;
    return status_;
  }

 private:
  explicit Child(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  int status_ = 0;
};

// --- The echo baseline's server (a second permit-bench process) ------------

class EchoServiceImpl final : public Echo::CallbackService {
  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* ctx,
                                 const EchoMessage* request,
                                 EchoMessage* response) override {
    response->set_payload(request->payload());
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

int ServeEcho(int port) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  EchoServiceImpl service;
  grpc::ServerBuilder builder;
  int chosen = 0;
  builder.AddListeningPort(absl::StrCat("127.0.0.1:", port),
                           grpc::InsecureServerCredentials(), &chosen);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || chosen == 0) return Fail("echo: cannot listen");
  std::cout << chosen << std::endl;
  int sig = 0;
  sigwait(&signals, &sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}

// Starts `permit-bench --serve_echo 0` and reads the port it chose.
absl::StatusOr<std::pair<std::unique_ptr<Child>, int>> StartEcho(const std::string& self) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return absl::InternalError("pipe");
  // The child's end must survive exec: dup2 in the child clears CLOEXEC.
  absl::StatusOr<std::unique_ptr<Child>> child =
      Child::Spawn({self, "--serve_echo=0"}, "", fds[1]);
  ::close(fds[1]);
  if (!child.ok()) {
    ::close(fds[0]);
    return child.status();
  }
  std::string line;
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (line.find('\n') == std::string::npos && Clock::now() < deadline) {
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    char buf[64];
    const ssize_t n = ::read(fds[0], buf, sizeof(buf));
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int port = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &port) || port <= 0) {
    return absl::UnavailableError("the echo server did not report its port");
  }
  return std::make_pair(*std::move(child), port);
}

// --- Our own permitd ---------------------------------------------------------

struct Server {
  std::unique_ptr<Child> process;  // null with --target
  std::string address;
  std::string metrics;  // host:port of its Prometheus metrics, if known
  std::map<std::string, std::string> tokens;  // principal id -> token
  std::vector<std::string> extra_flags;       // passed because permitd has them
};

// What `permitd --help` and `permitd --helpfull` print: the flags it has.
std::string PermitdHelp(const std::string& permitd) {
  std::string out;
  for (const char* flag : {" --help", " --helpfull"}) {
    FILE* p = popen((permitd + flag + " 2>&1").c_str(), "r");
    if (p == nullptr) continue;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
    pclose(p);
  }
  return out;
}

// A loopback port nobody listens on right now.
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

absl::StatusOr<Server> StartPermitd(const std::string& permitd, const fs::path& dir) {
  Server s;
  std::vector<std::string> entries;
  for (const char* id : kPrincipals) {
    absl::StatusOr<std::string> token = RandomHex(32);
    if (!token.ok()) return token.status();
    const std::string role = absl::StartsWith(id, "exp-")   ? "exporter"
                             : absl::StartsWith(id, "rev-") ? "reviewer"
                                                            : "auditor";
    const std::string org =
        role == "exporter" ? absl::StrCat(", \"org\": \"", std::string(id).substr(4), "\"")
                           : "";
    entries.push_back(absl::StrFormat(
        "    {\"id\": \"%s\", \"role\": \"%s\"%s, \"token_sha256\": \"%s\"}", id, role,
        org, core::ToHex(core::Sha256(*token))));
    s.tokens[id] = *std::move(token);
  }
  const fs::path principals = dir / "principals.json";
  if (absl::Status st = WritePrivateFile(principals, absl::StrCat("{\"principals\": [\n",
                                                           absl::StrJoin(entries, ",\n"),
                                                           "\n]}\n"));
      !st.ok()) {
    return st;
  }
  absl::StatusOr<std::string> key = core::NewSigningKeyPem();
  if (!key.ok()) return key.status();
  const fs::path key_file = dir / "log-key.pem";
  if (absl::Status st = WritePrivateFile(key_file, *key); !st.ok()) return st;

  // Flags that arrive this session: pass them only if this permitd has them.
  const std::string help = PermitdHelp(permitd);
  if (help.find("--rate_limit") != std::string::npos) {
    s.extra_flags.push_back("--rate_limit=0");  // no per-principal throttle
  }
  if (help.find("--metrics_listen") != std::string::npos) {
    // Metrics on, as deployed, on a free port (the default one may be taken
    // by another permitd); --permitd_metrics=false turns them off.
    if (absl::GetFlag(FLAGS_permitd_metrics)) {
      s.metrics = absl::StrCat("127.0.0.1:", FreePort());
    }
    s.extra_flags.push_back(absl::StrCat("--metrics_listen=", s.metrics));
  }
  std::vector<std::string> argv = {permitd,
                                   "--listen=127.0.0.1:0",
                                   "--data=" + (dir / "permitd").string(),
                                   "--principals=" + principals.string(),
                                   "--signing_key=" + key_file.string(),
                                   "--log_origin=bench.invalid/log"};
  argv.insert(argv.end(), s.extra_flags.begin(), s.extra_flags.end());
  const std::string log = (dir / "permitd.log").string();
  absl::StatusOr<std::unique_ptr<Child>> child = Child::Spawn(argv, log, -1);
  if (!child.ok()) return child.status();
  s.process = *std::move(child);

  // permitd prints "permitd: listening on 127.0.0.1:PORT (...)" once serving.
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    const std::string text = ReadFileOr(log, "");
    const size_t at = text.find("listening on 127.0.0.1:");
    if (at != std::string::npos) {
      int port = 0;
      const std::string rest = text.substr(at + strlen("listening on 127.0.0.1:"));
      if (absl::SimpleAtoi(rest.substr(0, rest.find_first_not_of("0123456789")), &port)) {
        s.address = absl::StrCat("127.0.0.1:", port);
        return s;
      }
    }
    if (!s.process->Running()) {
      return absl::UnavailableError(
          absl::StrCat("permitd exited at start; its log:\n", text));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError("permitd did not start within 60 s");
}

absl::StatusOr<Server> TargetServer(const std::string& target, const std::string& tokens_dir) {
  Server s;
  s.address = target;
  s.metrics = absl::GetFlag(FLAGS_target_metrics);
  if (tokens_dir.empty()) return absl::InvalidArgumentError("--target needs --tokens_dir");
  for (const char* id : kPrincipals) {
    std::string token(absl::StripAsciiWhitespace(
        ReadFileOr(fs::path(tokens_dir) / absl::StrCat(id, ".token"), "")));
    if (token.empty()) {
      return absl::NotFoundError(
          absl::StrCat("no token in ", tokens_dir, "/", id, ".token"));
    }
    s.tokens[id] = std::move(token);
  }
  return s;
}

// --- Closed-loop driver ------------------------------------------------------

// The measured part of a mode: [start, end).
struct Window {
  Clock::time_point start;
  Clock::time_point end;
  bool Contains(Clock::time_point t) const { return t >= start && t < end; }
};

struct Result {
  std::string mode;
  std::string unit = "ops/s";
  double rate = 0;
  std::vector<int64_t> latency_ns;  // successful calls in the window
  uint64_t errors = 0;
  std::string first_error;
  double server_cores = -1;  // CPU the server process used in the window
  double bench_cores = -1;   // CPU permit-bench used in the window
  std::string note;
  std::string writer;  // group commit in the window, from permitd's metrics
};

// One virtual client: a chain of calls, one in flight at a time.
class VirtualClient {
 public:
  virtual ~VirtualClient() = default;
  // Starts the next call; `done` runs once, on any thread, when it ends.
  virtual void Start(std::function<void(const grpc::Status&)> done) = 0;
};

// Runs clients in a closed loop until the window ends (or `budget` calls
// have been started, if it is >= 0), recording latencies of the calls that
// complete inside the window.
class ClosedLoop {
 public:
  ClosedLoop(std::vector<std::unique_ptr<VirtualClient>> clients, Window window,
             int64_t budget)
      : window_(window), budget_(budget) {
    for (auto& c : clients) {
      auto slot = std::make_unique<Slot>();
      slot->client = std::move(c);
      slots_.push_back(std::move(slot));
    }
    running_ = static_cast<int>(slots_.size());
  }

  ~ClosedLoop() {
    {
      absl::MutexLock lock(&mu_);
      trampoline_stop_ = true;
    }
    if (trampoline_.joinable()) trampoline_.join();
  }

  void Start() {
    trampoline_ = std::thread([this] { Trampoline(); });
    for (size_t i = 0; i < slots_.size(); ++i) Issue(i);
  }

  // Waits until every client has stopped (at most `timeout`); false if some
  // did not.
  bool Wait(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ == 0; };
    return mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
  }

  void Stop() { stop_ = true; }

  // After Wait: merges the clients' figures into `r`.
  void Collect(Result* r) {
    for (auto& s : slots_) {
      r->latency_ns.insert(r->latency_ns.end(), s->latency_ns.begin(), s->latency_ns.end());
      r->errors += s->errors;
      if (r->first_error.empty()) r->first_error = s->first_error;
    }
  }

 private:
  struct Slot {
    std::unique_ptr<VirtualClient> client;
    Clock::time_point started;
    std::vector<int64_t> latency_ns;
    uint64_t errors = 0;
    std::string first_error;
  };

  void Issue(size_t i) {
    if (stop_ || (budget_ >= 0 && started_.fetch_add(1) >= budget_)) {
      Finished();
      return;
    }
    Slot* s = slots_[i].get();
    s->started = Clock::now();
    s->client->Start([this, i](const grpc::Status& st) { Completed(i, st); });
  }

  void Completed(size_t i, const grpc::Status& st) {
    const Clock::time_point now = Clock::now();
    Slot* s = slots_[i].get();
    if (budget_ >= 0 || window_.Contains(now)) {
      if (st.ok()) {
        s->latency_ns.push_back(
            std::chrono::duration_cast<std::chrono::nanoseconds>(now - s->started).count());
      } else {
        ++s->errors;
        if (s->first_error.empty()) {
          s->first_error = absl::StrCat(st.error_code(), ": ", st.error_message());
        }
      }
    }
    if (budget_ < 0 && now >= window_.end) stop_ = true;
    // A call that fails at once may complete inline; don't recurse deeply.
    static thread_local int depth = 0;
    if (depth > 8) {
      absl::MutexLock lock(&mu_);
      deferred_.push_back(i);
      return;
    }
    ++depth;
    Issue(i);
    --depth;
  }

  void Finished() {
    absl::MutexLock lock(&mu_);
    --running_;
  }

  void Trampoline() {
    for (;;) {
      size_t i;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return !deferred_.empty() || trampoline_stop_;
        };
        mu_.Await(absl::Condition(&ready));
        if (deferred_.empty()) return;
        i = deferred_.front();
        deferred_.pop_front();
      }
      Issue(i);
    }
  }

  const Window window_;
  const int64_t budget_;
  std::atomic<int64_t> started_{0};
  std::atomic<bool> stop_{false};
  std::vector<std::unique_ptr<Slot>> slots_;
  absl::Mutex mu_;
  int running_ ABSL_GUARDED_BY(mu_);
  std::deque<size_t> deferred_ ABSL_GUARDED_BY(mu_);
  bool trampoline_stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread trampoline_;
};

// Starts one unary call with the bearer `token` (none if empty); `then` gets
// the status and the response. `start` begins the call on the stub's
// callback API.
template <typename Req, typename Resp, typename StartFn>
void UnaryCall(const std::string& token, Req request, StartFn start,
               std::function<void(const grpc::Status&, Resp*)> then) {
  struct State {
    grpc::ClientContext ctx;
    Req request;
    Resp response;
  };
  auto* s = new State;
  s->request = std::move(request);
  if (!token.empty()) s->ctx.AddMetadata("authorization", "Bearer " + token);
  s->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  start(&s->ctx, &s->request, &s->response,
        [s, then = std::move(then)](grpc::Status st) {
          std::unique_ptr<State> owned(s);
          then(st, &owned->response);
        });
}

std::vector<std::shared_ptr<grpc::Channel>> Channels(const std::string& address, int n) {
  std::vector<std::shared_ptr<grpc::Channel>> out;
  for (int i = 0; i < std::max(1, n); ++i) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    // A connection of its own per channel.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("permit.bench.channel", i);
    out.push_back(
        grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
  }
  for (auto& c : out) {
    c->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10));
  }
  return out;
}


// Request ids unique per run: "<run>-<client>-<n>".
class RequestIds {
 public:
  RequestIds(const std::string& run, int client) : prefix_(absl::StrCat(run, "-", client, "-")) {}
  std::string Next() { return absl::StrCat(prefix_, ++n_); }

 private:
  std::string prefix_;
  uint64_t n_ = 0;
};

class EchoClient final : public VirtualClient {
 public:
  EchoClient(std::shared_ptr<grpc::Channel> channel, size_t payload_bytes)
      : stub_(Echo::NewStub(channel)) {
    request_.set_payload(std::string(payload_bytes, 'x'));
  }
  void Start(std::function<void(const grpc::Status&)> done) override {
    UnaryCall<EchoMessage, EchoMessage>(
        "", request_,
        [this](grpc::ClientContext* c, const EchoMessage* q, EchoMessage* p,
               std::function<void(grpc::Status)> f) {
          stub_->async()->Echo(c, q, p, std::move(f));
        },
        [done = std::move(done)](const grpc::Status& st, EchoMessage*) { done(st); });
  }

 private:
  std::unique_ptr<Echo::Stub> stub_;
  EchoMessage request_;
};

class SubmitClient final : public VirtualClient {
 public:
  SubmitClient(std::shared_ptr<grpc::Channel> channel, std::string token,
               const std::string& run, int index)
      : stub_(v1::CaseService::NewStub(channel)),
        token_(std::move(token)),
        ids_(run, index) {
    *request_.mutable_application() = MagnetsToJapan();
  }
  void Start(std::function<void(const grpc::Status&)> done) override {
    request_.set_request_id(ids_.Next());
    UnaryCall<v1::SubmitCaseRequest, v1::Case>(
        token_, request_,
        [this](grpc::ClientContext* c, const v1::SubmitCaseRequest* q, v1::Case* p,
               std::function<void(grpc::Status)> f) {
          stub_->async()->SubmitCase(c, q, p, std::move(f));
        },
        [done = std::move(done)](const grpc::Status& st, v1::Case*) { done(st); });
  }

 private:
  std::unique_ptr<v1::CaseService::Stub> stub_;
  std::string token_;
  RequestIds ids_;
  v1::SubmitCaseRequest request_;
};

// submit -> review -> approve -> suspend -> resume, then a new case. A
// refused step starts a new case.
class LifecycleClient final : public VirtualClient {
 public:
  LifecycleClient(std::shared_ptr<grpc::Channel> channel,
                  const std::map<std::string, std::string>& tokens,
                  const std::string& run, int index)
      : stub_(v1::CaseService::NewStub(channel)),
        exporter_(tokens.at(index % 2 == 0 ? "exp-acme" : "exp-globex")),
        rev1_(tokens.at("rev-1")),
        rev2_(tokens.at("rev-2")),
        ids_(run, index) {
    *submit_.mutable_application() = MagnetsToJapan();
  }

  void Start(std::function<void(const grpc::Status&)> done) override {
    auto then = [this, done = std::move(done)](const grpc::Status& st, v1::Case* c) {
      if (st.ok()) {
        case_id_ = c->id();
        version_ = c->version();
        step_ = (step_ + 1) % 5;
      } else {
        step_ = 0;
      }
      done(st);
    };
    using F = std::function<void(grpc::Status)>;
    switch (step_) {
      case 0: {
        submit_.set_request_id(ids_.Next());
        UnaryCall<v1::SubmitCaseRequest, v1::Case>(
            exporter_, submit_,
            [this](grpc::ClientContext* c, const v1::SubmitCaseRequest* q, v1::Case* p,
                   F f) { stub_->async()->SubmitCase(c, q, p, std::move(f)); },
            std::move(then));
        return;
      }
      case 1: {
        v1::ReviewCaseRequest r;
        Fill(&r);
        r.set_recommendation(v1::RECOMMENDATION_APPROVE);
        r.set_findings("End user and end use verified; goods match 1C003");
        UnaryCall<v1::ReviewCaseRequest, v1::Case>(
            rev1_, std::move(r),
            [this](grpc::ClientContext* c, const v1::ReviewCaseRequest* q, v1::Case* p,
                   F f) { stub_->async()->ReviewCase(c, q, p, std::move(f)); },
            std::move(then));
        return;
      }
      case 2: {
        v1::ApproveCaseRequest r;
        Fill(&r);
        *r.mutable_valid_until() =
            core::ToProtoTime(absl::Now() + absl::Hours(24 * 365));
        r.set_conditions("No re-export without authorisation");
        UnaryCall<v1::ApproveCaseRequest, v1::Case>(
            rev2_, std::move(r),
            [this](grpc::ClientContext* c, const v1::ApproveCaseRequest* q, v1::Case* p,
                   F f) { stub_->async()->ApproveCase(c, q, p, std::move(f)); },
            std::move(then));
        return;
      }
      case 3: {
        v1::SuspendCaseRequest r;
        Fill(&r);
        r.set_reason("Consignee under investigation");
        UnaryCall<v1::SuspendCaseRequest, v1::Case>(
            rev2_, std::move(r),
            [this](grpc::ClientContext* c, const v1::SuspendCaseRequest* q, v1::Case* p,
                   F f) { stub_->async()->SuspendCase(c, q, p, std::move(f)); },
            std::move(then));
        return;
      }
      default: {
        v1::ResumeCaseRequest r;
        Fill(&r);
        r.set_reason("Consignee cleared");
        UnaryCall<v1::ResumeCaseRequest, v1::Case>(
            rev1_, std::move(r),
            [this](grpc::ClientContext* c, const v1::ResumeCaseRequest* q, v1::Case* p,
                   F f) { stub_->async()->ResumeCase(c, q, p, std::move(f)); },
            std::move(then));
        return;
      }
    }
  }

 private:
  template <typename R>
  void Fill(R* r) {
    r->set_request_id(ids_.Next());
    r->set_case_id(case_id_);
    r->set_expected_version(version_);
  }

  std::unique_ptr<v1::CaseService::Stub> stub_;
  const std::string exporter_, rev1_, rev2_;
  RequestIds ids_;
  v1::SubmitCaseRequest submit_;
  int step_ = 0;
  std::string case_id_;
  int64_t version_ = 0;
};

// What the read mode reads among: case ids and ListCases page tokens.
struct ReadSet {
  std::vector<std::string> case_ids;
  std::vector<std::string> page_tokens;  // "" is the first page
};

class ReadClient final : public VirtualClient {
 public:
  ReadClient(std::shared_ptr<grpc::Channel> channel,
             const std::map<std::string, std::string>& tokens, const ReadSet* set,
             int index)
      : stub_(v1::CaseService::NewStub(channel)),
        reviewer_(tokens.at("rev-1")),
        auditor_(tokens.at("aud-1")),
        set_(set),
        rng_(static_cast<uint64_t>(index) * 7919 + 1) {}

  void Start(std::function<void(const grpc::Status&)> done) override {
    using F = std::function<void(grpc::Status)>;
    auto then = [done = std::move(done)](const grpc::Status& st, auto*) { done(st); };
    if (rng_() % 10 != 0) {
      v1::GetCaseRequest r;
      r.set_case_id(set_->case_ids[rng_() % set_->case_ids.size()]);
      UnaryCall<v1::GetCaseRequest, v1::Case>(
          rng_() % 2 ? reviewer_ : auditor_, std::move(r),
          [this](grpc::ClientContext* c, const v1::GetCaseRequest* q, v1::Case* p, F f) {
            stub_->async()->GetCase(c, q, p, std::move(f));
          },
          std::move(then));
    } else {
      v1::ListCasesRequest r;
      r.set_page_size(10);
      r.set_page_token(set_->page_tokens[rng_() % set_->page_tokens.size()]);
      UnaryCall<v1::ListCasesRequest, v1::ListCasesResponse>(
          auditor_, std::move(r),
          [this](grpc::ClientContext* c, const v1::ListCasesRequest* q,
                 v1::ListCasesResponse* p,
                 F f) { stub_->async()->ListCases(c, q, p, std::move(f)); },
          std::move(then));
    }
  }

 private:
  std::unique_ptr<v1::CaseService::Stub> stub_;
  const std::string reviewer_, auditor_;
  const ReadSet* set_;
  std::mt19937_64 rng_;
};

struct RunOptions {
  int concurrency = 64;
  int channels = 1;
  absl::Duration warmup;
  absl::Duration duration;
  pid_t server_pid = 0;  // 0: unknown
  std::string metrics;   // the server's metrics address, if known
};

Window MakeWindow(const RunOptions& o) {
  Window w;
  w.start = Clock::now() + absl::ToChronoNanoseconds(o.warmup);
  w.end = w.start + absl::ToChronoNanoseconds(o.duration);
  return w;
}

// GET http://ADDRESS/metrics (Prometheus text format); empty on failure.
std::string ScrapeMetrics(const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    return "";
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  std::string out;
  if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr) == 1 &&
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = "GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n";
    if (::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buf[16384];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return out;
}

// The writer's totals from permitd's metrics: commits, actions, seconds in
// synced writes.
struct CommitTotals {
  double commits = 0, events = 0, sync_seconds = 0;
  bool ok = false;
};

CommitTotals ReadCommitTotals(const std::string& address) {
  CommitTotals t;
  if (address.empty()) return t;
  std::istringstream in(ScrapeMetrics(address));
  int found = 0;
  for (std::string line; std::getline(in, line);) {
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits(' ', 1));
    double v = 0;
    if (!absl::SimpleAtod(absl::StripAsciiWhitespace(kv.second), &v)) continue;
    if (kv.first == "permit_commit_batch_size_count") t.commits = v, ++found;
    if (kv.first == "permit_commit_batch_size_sum") t.events = v, ++found;
    if (kv.first == "permit_commit_sync_duration_seconds_sum") t.sync_seconds = v, ++found;
  }
  t.ok = found == 3;
  return t;
}

// Samples, over the window, the CPU used by the server and by permit-bench
// and the server's group-commit totals.
class CpuMeter {
 public:
  explicit CpuMeter(pid_t server, std::string metrics = "")
      : server_(server), metrics_(std::move(metrics)) {}
  void Begin() {
    server0_ = server_ > 0 ? CpuSeconds(server_) : -1;
    self0_ = CpuSeconds(0);
    commits0_ = ReadCommitTotals(metrics_);
  }
  void End(double seconds, Result* r) {
    if (server_ > 0 && server0_ >= 0) {
      r->server_cores = (CpuSeconds(server_) - server0_) / seconds;
    }
    r->bench_cores = (CpuSeconds(0) - self0_) / seconds;
    const CommitTotals c = ReadCommitTotals(metrics_);
    const double commits = c.commits - commits0_.commits;
    if (c.ok && commits0_.ok && commits > 0) {
      r->writer = absl::StrFormat(
          "%.0f synced writes/s, %.1f events per write, %.2f ms per write "
          "(serialise, insert, fdatasync): the writer spends %.0f%% of its time in them",
          commits / seconds, (c.events - commits0_.events) / commits,
          1e3 * (c.sync_seconds - commits0_.sync_seconds) / commits,
          100 * (c.sync_seconds - commits0_.sync_seconds) / seconds);
    }
  }

 private:
  pid_t server_;
  std::string metrics_;
  double server0_ = -1, self0_ = -1;
  CommitTotals commits0_;
};

Result RunLoop(const std::string& mode, std::vector<std::unique_ptr<VirtualClient>> clients,
               const RunOptions& o) {
  Result r;
  r.mode = mode;
  const Window w = MakeWindow(o);
  ClosedLoop loop(std::move(clients), w, /*budget=*/-1);
  CpuMeter cpu(o.server_pid, o.metrics);
  loop.Start();
  std::this_thread::sleep_until(w.start);
  cpu.Begin();
  std::this_thread::sleep_until(w.end);
  cpu.End(absl::ToDoubleSeconds(o.duration), &r);
  loop.Stop();
  if (!loop.Wait(absl::Seconds(60))) {
    std::cerr << "permit-bench: " << mode << ": calls still in flight after 60 s\n";
    std::exit(1);
  }
  loop.Collect(&r);
  r.rate = static_cast<double>(r.latency_ns.size()) / absl::ToDoubleSeconds(o.duration);
  return r;
}

// Submits `n` cases as fast as the clients go (no measurement).
absl::Status Populate(const Server& s, const RunOptions& o, int64_t n, const std::string& run) {
  if (n <= 0) return absl::OkStatus();
  std::cerr << "permit-bench: submitting " << n << " cases first\n";
  auto channels = Channels(s.address, o.channels);
  std::vector<std::unique_ptr<VirtualClient>> clients;
  for (int i = 0; i < o.concurrency; ++i) {
    clients.push_back(std::make_unique<SubmitClient>(
        channels[i % channels.size()], s.tokens.at(i % 2 ? "exp-globex" : "exp-acme"),
        run + "p", i));
  }
  Window forever{Clock::now(), Clock::now() + std::chrono::hours(24)};
  ClosedLoop loop(std::move(clients), forever, n);
  loop.Start();
  if (!loop.Wait(absl::Minutes(10))) return absl::DeadlineExceededError("populating");
  Result r;
  loop.Collect(&r);
  if (r.errors > 0) {
    return absl::UnavailableError(absl::StrCat("submitting failed: ", r.first_error));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> LogSize(const Server& s, const std::shared_ptr<grpc::Channel>& ch) {
  auto stub = v1::AuditService::NewStub(ch);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + s.tokens.at("aud-1"));
  v1::GetLogHeadRequest q;
  v1::LogHead head;
  grpc::Status st = stub->GetLogHead(&ctx, q, &head);
  if (!st.ok()) return absl::UnavailableError(absl::StrCat("GetLogHead: ", st.error_message()));
  return head.tree_size();
}

// Pages through ListCases (10 a page) as aud-1, keeping ids and page tokens.
absl::StatusOr<ReadSet> CollectReadSet(const Server& s, const std::shared_ptr<grpc::Channel>& ch,
                                       int want) {
  ReadSet set;
  auto stub = v1::CaseService::NewStub(ch);
  std::string token;
  while (static_cast<int>(set.case_ids.size()) < want) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + s.tokens.at("aud-1"));
    v1::ListCasesRequest q;
    q.set_page_size(10);
    q.set_page_token(token);
    v1::ListCasesResponse page;
    grpc::Status st = stub->ListCases(&ctx, q, &page);
    if (!st.ok()) return absl::UnavailableError(absl::StrCat("ListCases: ", st.error_message()));
    set.page_tokens.push_back(token);
    for (const v1::Case& c : page.cases()) set.case_ids.push_back(c.id());
    if (page.next_page_token().empty()) break;
    token = page.next_page_token();
  }
  return set;
}

absl::StatusOr<Result> RunRead(const Server& s, const RunOptions& o, int want,
                               const std::string& run) {
  auto channels = Channels(s.address, o.channels);
  absl::StatusOr<ReadSet> set = CollectReadSet(s, channels[0], want);
  if (!set.ok()) return set.status();
  if (static_cast<int>(set->case_ids.size()) < want) {
    if (absl::Status st = Populate(s, o, want - static_cast<int64_t>(set->case_ids.size()), run);
        !st.ok()) {
      return st;
    }
    set = CollectReadSet(s, channels[0], want);
    if (!set.ok()) return set.status();
  }
  std::vector<std::unique_ptr<VirtualClient>> clients;
  for (int i = 0; i < o.concurrency; ++i) {
    clients.push_back(std::make_unique<ReadClient>(channels[i % channels.size()], s.tokens,
                                                   &*set, i));
  }
  Result r = RunLoop("read", std::move(clients), o);
  r.note = absl::StrFormat("90%% GetCase, 10%% ListCases of 10, over %d cases",
                           set->case_ids.size());
  return r;
}

// ReadLog of the whole log, again and again, as `permitctl audit verify`
// reads it.
absl::StatusOr<Result> RunReplay(const Server& s, const RunOptions& o, int min_events,
                                 const std::string& run) {
  auto channels = Channels(s.address, 1);
  absl::StatusOr<uint64_t> size = LogSize(s, channels[0]);
  if (!size.ok()) return size.status();
  if (*size < static_cast<uint64_t>(min_events)) {
    if (absl::Status st = Populate(s, o, min_events - static_cast<int64_t>(*size), run);
        !st.ok()) {
      return st;
    }
    size = LogSize(s, channels[0]);
    if (!size.ok()) return size.status();
  }
  Result r;
  r.mode = "replay";
  r.unit = "events/s";
  auto stub = v1::AuditService::NewStub(channels[0]);
  const Window w = MakeWindow(o);
  CpuMeter cpu(o.server_pid, o.metrics);
  bool measuring = false;
  uint64_t events = 0, bytes = 0, passes = 0;
  while (Clock::now() < w.end) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + s.tokens.at("aud-1"));
    v1::ReadLogRequest q;
    q.set_from_sequence(1);
    q.set_include_event_bytes(true);
    q.set_bytes_only(true);
    const Clock::time_point pass_start = Clock::now();
    std::unique_ptr<grpc::ClientReader<v1::ReadLogResponse>> reader = stub->ReadLog(&ctx, q);
    v1::ReadLogResponse batch;
    bool cut = false;
    while (reader->Read(&batch)) {
      const Clock::time_point now = Clock::now();
      if (!measuring && now >= w.start) {
        measuring = true;
        cpu.Begin();
      }
      if (now >= w.end) {
        ctx.TryCancel();
        cut = true;
        break;
      }
      if (measuring) {
        events += static_cast<uint64_t>(batch.entries_size());
        for (const v1::LogEntry& e : batch.entries()) bytes += e.event_bytes().size();
      }
    }
    if (cut) {
      while (reader->Read(&batch)) {
      }
    }
    grpc::Status st = reader->Finish();
    if (!cut && !st.ok()) {
      ++r.errors;
      if (r.first_error.empty()) r.first_error = st.error_message();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (!cut && measuring && pass_start >= w.start) {
      ++passes;
      r.latency_ns.push_back(
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - pass_start)
              .count());
    }
  }
  cpu.End(absl::ToDoubleSeconds(o.duration), &r);
  const double secs = absl::ToDoubleSeconds(o.duration);
  r.rate = events / secs;
  r.note = absl::StrFormat(
      "one stream, log of %d events, %.0f MB/s of event bytes, %d full passes "
      "(latency: one full pass)",
      *size, bytes / secs / 1e6, passes);
  return r;
}

// N threads, each a synced WriteBatch of one Put at a time.
absl::StatusOr<Result> RunRocksDb(const fs::path& dir, const RunOptions& o, int value_bytes) {
  const fs::path db_path = dir / "rocksdb-baseline";
  fs::remove_all(db_path);
  rocksdb::Options options;
  options.create_if_missing = true;
  options.paranoid_checks = true;
  options.keep_log_file_num = 10;
  options.max_total_wal_size = 64 << 20;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, db_path.string(), &raw);
  if (!s.ok()) return absl::InternalError(s.ToString());
  std::unique_ptr<rocksdb::DB> db(raw);

  Result r;
  r.mode = "rocksdb";
  const Window w = MakeWindow(o);
  std::vector<std::vector<int64_t>> latencies(o.concurrency);
  std::atomic<uint64_t> errors{0};
  std::string value(static_cast<size_t>(value_bytes), 'v');
  std::vector<std::thread> threads;
  for (int t = 0; t < o.concurrency; ++t) {
    threads.emplace_back([&, t] {
      rocksdb::WriteOptions wo;
      wo.sync = true;
      for (uint64_t n = 0;; ++n) {
        const Clock::time_point start = Clock::now();
        if (start >= w.end) return;
        rocksdb::WriteBatch wb;
        wb.Put(absl::StrFormat("%04d-%012d", t, n), value);
        const rocksdb::Status ws = db->Write(wo, &wb);
        const Clock::time_point end = Clock::now();
        if (!w.Contains(end)) continue;
        if (ws.ok()) {
          latencies[t].push_back(
              std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count());
        } else {
          ++errors;
        }
      }
    });
  }
  CpuMeter cpu(0);
  std::this_thread::sleep_until(w.start);
  cpu.Begin();
  std::this_thread::sleep_until(w.end);
  cpu.End(absl::ToDoubleSeconds(o.duration), &r);
  for (std::thread& t : threads) t.join();
  for (auto& l : latencies) r.latency_ns.insert(r.latency_ns.end(), l.begin(), l.end());
  r.errors = errors;
  r.rate = static_cast<double>(r.latency_ns.size()) / absl::ToDoubleSeconds(o.duration);
  s = db->Close();
  db.reset();
  fs::remove_all(db_path);
  r.note = absl::StrFormat("%d-byte values, one synced WriteBatch per Put", value_bytes);
  return r;
}

// --- Output ------------------------------------------------------------------

std::string Grouped(double v) {
  std::string digits = absl::StrFormat("%.0f", v);
  std::string out;
  const int n = static_cast<int>(digits.size());
  for (int i = 0; i < n; ++i) {
    if (i > 0 && (n - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string Ms(double ns) {
  const double ms = ns / 1e6;
  return ms >= 100 ? absl::StrFormat("%.0f", ms) : absl::StrFormat("%.2f", ms);
}

void PrintTable(const std::vector<Result>& results, const RunOptions& o, double rss_mb,
                double hwm_mb) {
  const Result* echo = nullptr;
  const Result* rocks = nullptr;
  for (const Result& r : results) {
    if (r.mode == "echo") echo = &r;
    if (r.mode == "rocksdb") rocks = &r;
  }
  std::cout << absl::StrFormat(
      "\npermit-bench: %d concurrent clients over %d channel(s), %s per mode after %s "
      "warm-up, %d cores; client and server on this machine\n\n",
      o.concurrency, o.channels, absl::FormatDuration(o.duration),
      absl::FormatDuration(o.warmup), std::thread::hardware_concurrency());
  std::cout << absl::StrFormat("%-10s %17s %8s %8s %8s %8s %7s %7s %7s %7s %9s  %s\n", "mode",
                               "rate", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors",
                               "srv cpu", "cli cpu", "x echo", "x rocksdb", "target");
  for (const Result& r : results) {
    std::vector<int64_t> l = r.latency_ns;
    std::sort(l.begin(), l.end());
    auto at = [&](double q) -> std::string {
      if (l.empty()) return "-";
      return Ms(static_cast<double>(l[std::min(l.size() - 1, static_cast<size_t>(q * l.size()))]));
    };
    auto cores = [](double c) { return c < 0 ? std::string("-") : absl::StrFormat("%.2f", c); };
    std::string x_echo = "-", x_rocks = "-", target;
    const bool action_mode = r.mode == "submit" || r.mode == "lifecycle";
    if (echo != nullptr && echo->rate > 0 && (action_mode || r.mode == "read")) {
      x_echo = absl::StrFormat("%.2f", r.rate / echo->rate);
    }
    if (rocks != nullptr && rocks->rate > 0 && action_mode) {
      x_rocks = absl::StrFormat("%.2f", r.rate / rocks->rate);
    }
    if (action_mode) target = ">= 0.5 x echo, p99 <= 20 ms";
    if (r.mode == "read") target = ">= 0.7 x echo";
    if (r.mode == "replay") target = ">= 200,000 events/s";
    std::cout << absl::StrFormat("%-10s %17s %8s %8s %8s %8s %7d %7s %7s %7s %9s  %s\n", r.mode,
                                 absl::StrCat(Grouped(r.rate), " ", r.unit), at(0.50), at(0.90),
                                 at(0.99), l.empty() ? "-" : Ms(static_cast<double>(l.back())),
                                 r.errors, cores(r.server_cores), cores(r.bench_cores), x_echo,
                                 x_rocks, target);
  }
  std::cout << "\n";
  for (const Result& r : results) {
    if (!r.note.empty()) std::cout << absl::StrFormat("%-10s %s\n", r.mode, r.note);
    if (!r.writer.empty()) std::cout << absl::StrFormat("%-10s %s\n", r.mode, r.writer);
    if (!r.first_error.empty()) {
      std::cout << absl::StrFormat("%-10s first error: %s\n", r.mode, r.first_error);
    }
  }
  if (rss_mb >= 0) {
    std::cout << absl::StrFormat("permitd resident memory at the end: %.0f MB (peak %.0f MB)\n",
                                 rss_mb, hwm_mb);
  }
}

// --- Main --------------------------------------------------------------------

std::string SelfPath() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : p.string();
}

int Main() {
  // --mode: "all" or a comma-separated list of modes, run in this order.
  const std::vector<std::string> kModes = {"echo", "rocksdb", "submit", "lifecycle",
                                           "read", "replay"};
  std::set<std::string> modes;
  for (absl::string_view m : absl::StrSplit(absl::GetFlag(FLAGS_mode), ',')) {
    if (m == "all") {
      modes.insert(kModes.begin(), kModes.end());
    } else if (std::find(kModes.begin(), kModes.end(), m) != kModes.end()) {
      modes.insert(std::string(m));
    } else {
      return Fail(absl::StrCat("--mode ", m, ": expected all, or a comma-separated list of ",
                               absl::StrJoin(kModes, ", ")));
    }
  }
  auto has = [&](const char* m) { return modes.count(m) > 0; };
  RunOptions o;
  o.concurrency = absl::GetFlag(FLAGS_concurrency);
  o.channels = std::max(1, absl::GetFlag(FLAGS_channels));
  o.warmup = absl::GetFlag(FLAGS_warmup);
  o.duration = absl::GetFlag(FLAGS_duration);
  if (o.concurrency < 1) return Fail("--concurrency must be at least 1");
  if (o.duration <= absl::ZeroDuration()) return Fail("--duration must be positive");

  const bool permit_mode = has("submit") || has("lifecycle") || has("read") || has("replay");
  const bool baselines = absl::GetFlag(FLAGS_baselines);
  const bool run_echo =
      has("echo") || (baselines && (has("submit") || has("lifecycle") || has("read")));
  const bool run_rocks = has("rocksdb") || (baselines && (has("submit") || has("lifecycle")));

  const std::string self = SelfPath();
  if (self.empty()) return Fail("cannot read /proc/self/exe");
  char tmpl[] = "/tmp/permit-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return Fail("cannot create a temp folder");
  const fs::path dir = tmpl;
  struct Cleanup {
    fs::path dir;
    bool keep;
    ~Cleanup() {
      if (keep) {
        std::cerr << "permit-bench: kept " << dir.string() << "\n";
      } else {
        std::error_code ec;
        fs::remove_all(dir, ec);
      }
    }
  } cleanup{dir, absl::GetFlag(FLAGS_keep)};

  // Children first, before this process starts any gRPC threads.
  std::unique_ptr<Child> echo_server;
  int echo_port = 0;
  if (run_echo) {
    absl::StatusOr<std::pair<std::unique_ptr<Child>, int>> echo = StartEcho(self);
    if (!echo.ok()) return Fail(echo.status().ToString());
    echo_server = std::move(echo->first);
    echo_port = echo->second;
  }
  std::optional<Server> server;
  pid_t server_pid = absl::GetFlag(FLAGS_server_pid);
  if (permit_mode) {
    const std::string target = absl::GetFlag(FLAGS_target);
    absl::StatusOr<Server> s;
    if (!target.empty()) {
      s = TargetServer(target, absl::GetFlag(FLAGS_tokens_dir));
    } else {
      std::string permitd = absl::GetFlag(FLAGS_permitd);
      if (permitd.empty()) permitd = (fs::path(self).parent_path() / "permitd").string();
      s = StartPermitd(permitd, dir);
    }
    if (!s.ok()) return Fail(s.status().ToString());
    server = *std::move(s);
    if (server->process != nullptr) server_pid = server->process->pid();
    std::cerr << "permit-bench: permitd " << server->address;
    if (server_pid > 0) std::cerr << ", pid " << server_pid;
    if (!server->extra_flags.empty()) {
      std::cerr << ", started with " << absl::StrJoin(server->extra_flags, " ");
    }
    std::cerr << "\n";
  }
  o.server_pid = server_pid;
  if (server.has_value()) o.metrics = server->metrics;

  absl::StatusOr<std::string> run_id = RandomHex(4);
  if (!run_id.ok()) return Fail(run_id.status().ToString());

  std::vector<Result> results;
  auto report = [](const Result& r) {
    std::cerr << absl::StrFormat("permit-bench: %-9s %s %s, %d errors\n", r.mode,
                                 Grouped(r.rate), r.unit, r.errors);
  };

  if (run_echo) {
    RunOptions eo = o;
    eo.server_pid = echo_server->pid();
    eo.metrics.clear();
    auto channels = Channels(absl::StrCat("127.0.0.1:", echo_port), o.channels);
    v1::SubmitCaseRequest sample;
    sample.set_request_id(absl::StrCat(*run_id, "-0-1"));
    *sample.mutable_application() = MagnetsToJapan();
    std::vector<std::unique_ptr<VirtualClient>> clients;
    for (int i = 0; i < o.concurrency; ++i) {
      clients.push_back(
          std::make_unique<EchoClient>(channels[i % channels.size()], sample.ByteSizeLong()));
    }
    results.push_back(RunLoop("echo", std::move(clients), eo));
    results.back().note =
        absl::StrFormat("%d-byte request and response (a SubmitCaseRequest's size)",
                        sample.ByteSizeLong());
    report(results.back());
    echo_server->Stop();  // not to share the cores with what follows
  }
  if (run_rocks) {
    absl::StatusOr<Result> r = RunRocksDb(dir, o, absl::GetFlag(FLAGS_rocksdb_value_bytes));
    if (!r.ok()) return Fail(r.status().ToString());
    results.push_back(*std::move(r));
    report(results.back());
  }
  if (has("submit")) {
    auto channels = Channels(server->address, o.channels);
    std::vector<std::unique_ptr<VirtualClient>> clients;
    for (int i = 0; i < o.concurrency; ++i) {
      clients.push_back(std::make_unique<SubmitClient>(
          channels[i % channels.size()],
          server->tokens.at(i % 2 ? "exp-globex" : "exp-acme"), *run_id + "s", i));
    }
    results.push_back(RunLoop("submit", std::move(clients), o));
    results.back().unit = "cases/s";
    report(results.back());
  }
  if (has("lifecycle")) {
    auto channels = Channels(server->address, o.channels);
    std::vector<std::unique_ptr<VirtualClient>> clients;
    for (int i = 0; i < o.concurrency; ++i) {
      clients.push_back(std::make_unique<LifecycleClient>(channels[i % channels.size()],
                                                          server->tokens, *run_id + "l", i));
    }
    results.push_back(RunLoop("lifecycle", std::move(clients), o));
    results.back().unit = "actions/s";
    results.back().note =
        "submit (exporter), review (rev-1), approve (rev-2), suspend (rev-2), resume (rev-1)";
    report(results.back());
  }
  if (has("read")) {
    absl::StatusOr<Result> r = RunRead(*server, o, absl::GetFlag(FLAGS_read_cases), *run_id);
    if (!r.ok()) return Fail(r.status().ToString());
    results.push_back(*std::move(r));
    report(results.back());
  }
  if (has("replay")) {
    absl::StatusOr<Result> r =
        RunReplay(*server, o, absl::GetFlag(FLAGS_replay_min_events), *run_id);
    if (!r.ok()) return Fail(r.status().ToString());
    results.push_back(*std::move(r));
    report(results.back());
  }

  const double rss = server_pid > 0 ? StatusMb(server_pid, "VmRSS") : -1;
  const double hwm = server_pid > 0 ? StatusMb(server_pid, "VmHWM") : -1;
  PrintTable(results, o, rss, hwm);
  if (server.has_value() && server->process != nullptr) {
    const int status = server->process->Stop();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::cerr << "permit-bench: permitd did not exit cleanly (wait status " << status
                << "); its log:\n"
                << ReadFileOr(dir / "permitd.log", "") << "\n";
      return 1;
    }
  }
  return 0;
}

}  // namespace
}  // namespace permit::bench

int main(int argc, char** argv) {
  permit::core::UseReleaseRuntime();
  absl::SetProgramUsageMessage(
      "load generator for permitd, with an echo and a RocksDB baseline.\n\n"
      "  permit-bench                                  start a permitd, run every mode\n"
      "  permit-bench --mode submit --duration 30s     one mode (and its baselines)\n"
      "  permit-bench --target HOST:PORT --tokens_dir DATA/dev\n");
  absl::ParseCommandLine(argc, argv);
  if (const int port = absl::GetFlag(FLAGS_serve_echo); port >= 0) {
    return permit::bench::ServeEcho(port);
  }
  return permit::bench::Main();
}
