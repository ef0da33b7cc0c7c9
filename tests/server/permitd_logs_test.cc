// permitd's logs and metrics as a process: the real binary, configured
// through the environment (PERMIT_LOG_FORMAT, PERMIT_METRICS_LISTEN) as a
// deployment configures it. Text mode keeps the lifecycle lines that
// operators and scripts grep for; JSON mode gives one parseable object per
// line for the same events and for every call; /metrics answers; a busy
// metrics port is a warning, not a failed start.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_split.h"
#include "core/checkpoint.h"
#include "core/merkle.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "permit/client.h"
#include "server/certs.h"
#include "server/files.h"
#include "tests/e2e/permitd_process.h"
#include "tests/server/metrics_http.h"
#include "tests/test_util.h"

namespace permit {
namespace {

using ::permit::testing::HttpGet;
using ::permit::testing::IsOk;
using ::permit::testing::MetricValue;
using ::permit::testing::TempDir;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;

constexpr char kToken[] = "t-auditor-secret-0123456789";

std::string Entry(const std::string& id, const std::string& token) {
  return "{\"id\": \"" + id + "\", \"role\": \"auditor\", \"token_sha256\": \"" +
         core::ToHex(core::Sha256(token)) + "\"}";
}

class PermitdLogsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    principals_ = dir_.path() + "/principals.json";
    key_ = dir_.path() + "/log-key.pem";
    absl::StatusOr<std::string> pem = core::NewSigningKeyPem();
    ASSERT_THAT(pem, IsOk());
    std::ofstream(key_) << *pem;
    WritePrincipals("{\"principals\": [" + Entry("aud-1", kToken) + "]}");
    port_ = testing::FreePort();
    metrics_port_ = testing::FreePort();
    server_ = std::make_unique<testing::PermitdProcess>(data(), principals_, key_, port_);
  }

  std::string data() const { return dir_.path() + "/data"; }

  void WritePrincipals(const std::string& json) {
    const std::string tmp = principals_ + ".tmp";
    std::ofstream(tmp) << json;
    std::rename(tmp.c_str(), principals_.c_str());
  }

  // Starts permitd with `env` and waits until a call succeeds (at most 20 s).
  void Start(std::vector<std::string> env) {
    server_->SetEnvironment(std::move(env), /*origin_from_env=*/false);
    server_->Start();
    for (int i = 0; i < 400; ++i) {
      if (Head().ok()) return;
      ASSERT_TRUE(server_->Running()) << Log();
      absl::SleepFor(absl::Milliseconds(50));
    }
    FAIL() << "permitd did not answer within 20 s:\n" << Log();
  }

  // GetLogHead as aud-1, on a fresh connection (one refused while permitd
  // started would wait out gRPC's reconnect backoff): plaintext, or TLS
  // trusting `ca_pem`.
  absl::Status Head(const std::string& ca_pem = "") {
    ClientOptions options;
    options.insecure = ca_pem.empty();
    options.ca_pem = ca_pem;
    options.address = "127.0.0.1:" + std::to_string(port_);
    options.token = kToken;
    options.max_attempts = 1;
    options.deadline = absl::Seconds(2);
    absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(options);
    if (!c.ok()) return c.status();
    return (*c)->GetLogHead().status();
  }

  // Waits (at most 5 s) until the log has a line containing `text`.
  bool LogEventually(const std::string& text) {
    for (int i = 0; i < 100; ++i) {
      if (Log().find(text) != std::string::npos) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }

  // Reload twice: a good file, then a bad one; stop with SIGTERM.
  void ReloadAndStop() {
    server_->Signal(SIGHUP);
    ASSERT_TRUE(LogEventually("reloaded")) << Log();
    WritePrincipals("{\"principals\": [");
    server_->Signal(SIGHUP);
    ASSERT_TRUE(LogEventually("kept the current principals")) << Log();
    const int status = server_->Stop(std::chrono::seconds(30));
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Log();
  }

  std::string Log() const {
    std::ifstream in(data() + "/permitd.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  TempDir dir_;
  std::string principals_;
  std::string key_;
  int port_ = 0;
  int metrics_port_ = 0;
  std::unique_ptr<testing::PermitdProcess> server_;
};

TEST_F(PermitdLogsTest, TextKeepsTheLifecycleLines) {
  ASSERT_NO_FATAL_FAILURE(Start({"PERMIT_METRICS_LISTEN=127.0.0.1:" +
                                 std::to_string(metrics_port_)}));
  ASSERT_NO_FATAL_FAILURE(ReloadAndStop());
  const std::string log = Log();
  const std::string port = std::to_string(port_);
  EXPECT_THAT(log, HasSubstr("permitd: starting: opening the audit log in "));
  EXPECT_THAT(log, HasSubstr("permitd: listening on 127.0.0.1:" + port +
                             " (plaintext; data " + data() +
                             ", 0 events in the audit log)\n"));
  EXPECT_THAT(log, HasSubstr("permitd: log key crash-test.invalid/log+"));
  EXPECT_THAT(log, HasSubstr("permitd: metrics on http://127.0.0.1:" +
                             std::to_string(metrics_port_) + "/metrics\n"));
  EXPECT_THAT(log, HasSubstr("permitd: call "));
  EXPECT_THAT(log, HasSubstr(" GetLogHead OK "));
  EXPECT_THAT(log, HasSubstr("principal=aud-1"));
  EXPECT_THAT(log, HasSubstr("permitd: SIGHUP: reloaded 1 principals from " +
                             principals_ + "\n"));
  EXPECT_THAT(log, HasSubstr("permitd: SIGHUP: kept the current principals: "));
  EXPECT_THAT(log, HasSubstr("permitd: SIGTERM, shutting down\n"));
  EXPECT_THAT(log, HasSubstr("permitd: stopped; the audit log is closed\n"));
  EXPECT_THAT(log, Not(HasSubstr(kToken)));
}

TEST_F(PermitdLogsTest, JsonLinesParseAndCarryTheEvents) {
  ASSERT_NO_FATAL_FAILURE(
      Start({"PERMIT_LOG_FORMAT=json",
             "PERMIT_METRICS_LISTEN=127.0.0.1:" + std::to_string(metrics_port_)}));
  ASSERT_NO_FATAL_FAILURE(ReloadAndStop());
  const std::string log = Log();
  EXPECT_THAT(log, Not(HasSubstr(kToken)));
  std::vector<std::string> events;
  bool saw_call = false;
  for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
    google::protobuf::Struct s;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(std::string(line), &s).ok())
        << line;
    const auto& f = s.fields();
    ASSERT_TRUE(f.contains("time") && f.contains("level") && f.contains("event")) << line;
    const std::string event = f.at("event").string_value();
    events.push_back(event);
    if (event == "listening") {
      EXPECT_EQ(f.at("address").string_value(), "127.0.0.1:" + std::to_string(port_));
      EXPECT_FALSE(f.at("tls").bool_value());
      EXPECT_EQ(f.at("events").number_value(), 0);
      EXPECT_THAT(f.at("msg").string_value(), HasSubstr("listening on "));
    } else if (event == "call" && !saw_call) {
      saw_call = true;
      EXPECT_EQ(f.at("method").string_value(), "GetLogHead");
      EXPECT_EQ(f.at("code").string_value(), "OK");
      EXPECT_EQ(f.at("principal").string_value(), "aud-1");
      EXPECT_THAT(f.at("peer").string_value(), HasSubstr("127.0.0.1"));
      EXPECT_TRUE(f.contains("latency_ms") && f.contains("request_id") &&
                  f.contains("case"));
    } else if (event == "reload_refused") {
      EXPECT_EQ(f.at("level").string_value(), "warning");
    } else if (event == "stopped") {
      EXPECT_EQ(f.at("msg").string_value(), "stopped; the audit log is closed");
    }
  }
  EXPECT_TRUE(saw_call);
  for (const char* e : {"starting", "listening", "log_key", "metrics", "call",
                        "reloaded", "reload_refused", "shutting_down", "stopped"}) {
    EXPECT_THAT(events, Contains(e));
  }
}

TEST_F(PermitdLogsTest, ServesMetricsOnTheConfiguredAddress) {
  ASSERT_NO_FATAL_FAILURE(Start({"PERMIT_METRICS_LISTEN=127.0.0.1:" +
                                 std::to_string(metrics_port_)}));
  std::optional<std::string> text = HttpGet(metrics_port_, "/metrics");
  ASSERT_TRUE(text.has_value());
  EXPECT_THAT(MetricValue(*text, "permit_log_events"), Optional(0.0));
  EXPECT_GE(MetricValue(*text, "permit_requests_total{code=\"OK\",method=\"GetLogHead\"}")
                .value_or(0),
            1);
  const int status = server_->Stop(std::chrono::seconds(30));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Log();
}

TEST_F(PermitdLogsTest, BusyMetricsPortIsAWarningNotAFailedStart) {
  // Hold the metrics port.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(metrics_port_));
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  ASSERT_NO_FATAL_FAILURE(Start({"PERMIT_METRICS_LISTEN=127.0.0.1:" +
                                 std::to_string(metrics_port_)}));
  EXPECT_THAT(Log(), HasSubstr("permitd: metrics off: cannot serve metrics on 127.0.0.1:" +
                               std::to_string(metrics_port_)));
  const int status = server_->Stop(std::chrono::seconds(30));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Log();
  close(fd);
}

TEST_F(PermitdLogsTest, SighupServesARenewedTlsPairAndRefusesAHalfRenewedOne) {
  absl::StatusOr<server::CertAndKey> ca =
      server::NewCertificateAuthority("old CA", absl::Hours(1));
  absl::StatusOr<server::CertAndKey> new_ca =
      server::NewCertificateAuthority("new CA", absl::Hours(1));
  ASSERT_THAT(ca, IsOk());
  ASSERT_THAT(new_ca, IsOk());
  server::LeafSpec spec;
  spec.common_name = "localhost";
  spec.ip_addresses = {"127.0.0.1"};
  absl::StatusOr<server::CertAndKey> old_leaf = server::IssueCertificate(*ca, spec);
  absl::StatusOr<server::CertAndKey> new_leaf = server::IssueCertificate(*new_ca, spec);
  ASSERT_THAT(old_leaf, IsOk());
  ASSERT_THAT(new_leaf, IsOk());
  const std::string cert = dir_.path() + "/tls.crt";
  const std::string key = dir_.path() + "/tls.key";
  ASSERT_THAT(server::WritePrivateFile(cert, old_leaf->cert_pem), IsOk());
  ASSERT_THAT(server::WritePrivateFile(key, old_leaf->key_pem), IsOk());

  server_->SetEnvironment({"PERMIT_TLS_CERT=" + cert, "PERMIT_TLS_KEY=" + key},
                          /*origin_from_env=*/false);
  server_->Start();
  absl::Status up;
  for (int i = 0; i < 400; ++i) {
    up = Head(ca->cert_pem);
    if (up.ok()) break;
    ASSERT_TRUE(server_->Running()) << Log();
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_THAT(up, IsOk()) << Log();

  // The certificate renewed, the key not yet: refused, the old pair served.
  ASSERT_THAT(server::WritePrivateFile(cert, new_leaf->cert_pem), IsOk());
  server_->Signal(SIGHUP);
  ASSERT_TRUE(LogEventually("SIGHUP: TLS files not taken; still serving the last good set"))
      << Log();
  EXPECT_THAT(Log(), HasSubstr("not the private key of"));
  absl::SleepFor(absl::Milliseconds(1500));  // past gRPC's 1 s reread
  EXPECT_THAT(Head(ca->cert_pem), IsOk());

  // The key follows: the new pair is served, without a restart.
  ASSERT_THAT(server::WritePrivateFile(key, new_leaf->key_pem), IsOk());
  server_->Signal(SIGHUP);
  ASSERT_TRUE(LogEventually("SIGHUP: serving the renewed TLS files")) << Log();
  absl::Status renewed;
  for (int i = 0; i < 60; ++i) {
    renewed = Head(new_ca->cert_pem);
    if (renewed.ok()) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_THAT(renewed, IsOk());
  EXPECT_FALSE(Head(ca->cert_pem).ok());
  const int status = server_->Stop(std::chrono::seconds(30));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Log();
}

TEST_F(PermitdLogsTest, Ipv6MetricsAddressIsABadFlagNotAWarning) {
  server_->SetEnvironment({"PERMIT_METRICS_LISTEN=[::1]:" + std::to_string(metrics_port_)},
                          /*origin_from_env=*/false);
  server_->Start();
  for (int i = 0; i < 400 && server_->Running(); ++i) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_FALSE(server_->Running()) << Log();
  const int status = server_->Stop(std::chrono::seconds(1));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << Log();
  EXPECT_THAT(Log(), HasSubstr("--metrics_listen: cannot serve metrics on [::1]:"));
  EXPECT_THAT(Log(), HasSubstr("IPv6 is not supported"));
  EXPECT_FALSE(Head().ok());
}

}  // namespace
}  // namespace permit
