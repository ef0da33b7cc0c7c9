// Request log tests: the text and JSON lines of RequestLog and Logger,
// their escaping, and permitd in-process logging real calls through the SDK
// (every JSON line parses and carries the call's fields; no token appears).
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <regex>
#include <sstream>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "permit/client.h"
#include "server/request_log.h"
#include "server/server.h"
#include "tests/server/test_client.h"
#include "tests/server/test_principals.h"
#include "tests/test_util.h"

namespace permit::server {
namespace {

using ::google::protobuf::Struct;
using ::google::protobuf::Value;
using ::permit::testing::IsOk;
using ::permit::testing::StatusIs;
using ::permit::testing::TempDir;
using ::permit::testing::ValidApplication;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// `line` parsed as a JSON object (fails the test if it is not one).
Struct ParseJson(const std::string& line) {
  Struct s;
  const auto status = google::protobuf::util::JsonStringToMessage(line, &s);
  EXPECT_TRUE(status.ok()) << status.ToString() << " in: " << line;
  return s;
}

std::string Str(const Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  if (it == s.fields().end()) {
    ADD_FAILURE() << "no field " << key;
    return "";
  }
  EXPECT_EQ(it->second.kind_case(), Value::kStringValue) << key;
  return it->second.string_value();
}

bool IsRfc3339Utc(const std::string& t) {
  static const std::regex re(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)");
  return std::regex_match(t, re);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> Lines(const std::string& path) {
  return absl::StrSplit(ReadAll(path), '\n', absl::SkipEmpty());
}

// A log file in a temporary folder, open for appending as permitd's stderr
// would be; closed and removed when it goes.
class LogFile {
 public:
  LogFile() : path_(dir_.path() + "/log") {
    fd_ = open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    EXPECT_GE(fd_, 0) << path_;
  }
  ~LogFile() {
    if (fd_ >= 0) close(fd_);
  }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  std::vector<std::string> lines() const { return Lines(path_); }

 private:
  TempDir dir_;
  std::string path_;
  int fd_ = -1;
};

CallRecord SampleCall() {
  CallRecord call;
  call.method = "ApproveCase";
  call.actor.set_principal_id("rev-2");
  call.case_id = "PRM-2026-000042";
  call.request_id = "r-1";
  call.peer = "ipv4:127.0.0.1:50312";
  call.start = absl::FromUnixMillis(1795898083123);  // 2026-11-28T20:34:43.123Z
  call.latency = absl::Microseconds(3512);
  call.status = absl::PermissionDeniedError("four-eyes rule");
  return call;
}

TEST(JsonQuoteTest, EscapesWhatJsonRequires) {
  const struct {
    std::string in;
    std::string out;
  } cases[] = {
      {"", R"("")"},
      {"plain", R"("plain")"},
      {"a\"b\\c", R"("a\"b\\c")"},
      {"line\nbreak\r\t", R"("line\nbreak\r\t")"},
      {std::string("nul\0x", 5), R"("nul\u0000x")"},
      {"\x1b[31m", R"("\u001b[31m")"},
      {"Kantō ✓ 𝄞", "\"Kantō ✓ 𝄞\""},
      {"bad\xff\xc3(", R"("bad\ufffd\ufffd(")"},
      {"\xed\xa0\x80", R"("\ufffd\ufffd\ufffd")"},  // a UTF-16 surrogate
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    EXPECT_EQ(JsonQuote(c.in), c.out);
    Value v;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(c.out, &v).ok());
  }
}

// The hand-written formatter gives exactly what absl::FormatTime gives, over
// instants spread across four centuries (leap days and year ends among them)
// and at the edges of a second.
TEST(Rfc3339MillisTest, MatchesAbslFormatTime) {
  std::vector<absl::Time> times = {
      absl::UnixEpoch(),
      absl::FromUnixMillis(1795898083123),
      absl::FromCivil(absl::CivilSecond(2024, 2, 29, 23, 59, 59), absl::UTCTimeZone()) +
          absl::Microseconds(999999),
      absl::FromCivil(absl::CivilSecond(1999, 12, 31, 23, 59, 59), absl::UTCTimeZone()) +
          absl::Nanoseconds(999999999),
      absl::FromCivil(absl::CivilSecond(2100, 1, 1, 0, 0, 0), absl::UTCTimeZone()),
      absl::FromUnixMillis(-1),  // 1969-12-31T23:59:59.999Z
      absl::FromUnixNanos(-1),
  };
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> ms(-2208988800000, 7258118400000);  // 1900-2200
  for (int i = 0; i < 2000; ++i) times.push_back(absl::FromUnixMillis(ms(rng)));
  for (absl::Time t : times) {
    EXPECT_EQ(Rfc3339Millis(t),
              absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone()))
        << absl::ToUnixNanos(t);
  }
}

TEST(ParseLogFormatTest, TextOrJson) {
  EXPECT_THAT(ParseLogFormat("text"), IsOk());
  EXPECT_EQ(*ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_THAT(ParseLogFormat("yaml"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(RequestLogTest, JsonLineCarriesEveryField) {
  const std::string line = RequestLog::Format(LogFormat::kJson, SampleCall());
  const Struct s = ParseJson(line);
  EXPECT_EQ(Str(s, "time"), "2026-11-28T20:34:43.126Z");  // start + latency
  EXPECT_EQ(Str(s, "level"), "info");
  EXPECT_EQ(Str(s, "event"), "call");
  EXPECT_EQ(Str(s, "method"), "ApproveCase");
  EXPECT_EQ(Str(s, "code"), "PERMISSION_DENIED");
  EXPECT_EQ(Str(s, "principal"), "rev-2");
  EXPECT_EQ(Str(s, "case"), "PRM-2026-000042");
  EXPECT_EQ(Str(s, "request_id"), "r-1");
  EXPECT_EQ(Str(s, "peer"), "ipv4:127.0.0.1:50312");
  EXPECT_DOUBLE_EQ(s.fields().at("latency_ms").number_value(), 3.512);
  // The status message can quote the request; it is not logged.
  EXPECT_THAT(line, Not(HasSubstr("four-eyes")));
}

TEST(RequestLogTest, HostileValuesStayOneLineAndValidJson) {
  CallRecord call = SampleCall();
  call.request_id = "x\" injected\n{\"level\":\"error\"} \xff";
  call.actor.clear_principal_id();  // authentication failed
  const std::string json = RequestLog::Format(LogFormat::kJson, call);
  EXPECT_EQ(json.find('\n'), std::string::npos);
  const Struct s = ParseJson(json);
  EXPECT_EQ(Str(s, "request_id"), "x\" injected\n{\"level\":\"error\"} \xef\xbf\xbd");
  EXPECT_EQ(Str(s, "principal"), "");

  const std::string text = RequestLog::Format(LogFormat::kText, call);
  EXPECT_EQ(text.find('\n'), std::string::npos);
  EXPECT_THAT(text, HasSubstr(R"(request_id="x\" injected\n{\"level\":\"error\"} \ufffd")"));
  EXPECT_THAT(text, Not(HasSubstr("principal=")));
}

TEST(RequestLogTest, TextLine) {
  EXPECT_EQ(RequestLog::Format(LogFormat::kText, SampleCall()),
            "permitd: call 2026-11-28T20:34:43.126Z ApproveCase PERMISSION_DENIED "
            "3.512ms principal=rev-2 case=PRM-2026-000042 request_id=r-1 "
            "peer=ipv4:127.0.0.1:50312");
}

TEST(LoggerTest, LifecycleEventsInBothFormats) {
  LogFile file;
  {
    Logger text(LogFormat::kText, file.fd());
    text.Info("stopped", "stopped; the audit log is closed");
    Logger json(LogFormat::kJson, file.fd());
    json.Info("listening", "listening on 127.0.0.1:7443 (TLS; data ./data, 5 events in the audit log)",
              {LogField::Str("address", "127.0.0.1:7443"), LogField::Bool("tls", true),
               LogField::Int("events", 5)});
    json.Event(LogLevel::kWarning, "reload_refused",
               "SIGHUP: kept the current principals: principals file: \"x\"");
  }
  const std::vector<std::string> lines = file.lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "permitd: stopped; the audit log is closed");
  const Struct listening = ParseJson(lines[1]);
  EXPECT_TRUE(IsRfc3339Utc(Str(listening, "time"))) << lines[1];
  EXPECT_EQ(Str(listening, "level"), "info");
  EXPECT_EQ(Str(listening, "event"), "listening");
  EXPECT_THAT(Str(listening, "msg"), StartsWith("listening on 127.0.0.1:7443 (TLS"));
  EXPECT_EQ(Str(listening, "address"), "127.0.0.1:7443");
  EXPECT_TRUE(listening.fields().at("tls").bool_value());
  EXPECT_EQ(listening.fields().at("events").number_value(), 5);
  const Struct refused = ParseJson(lines[2]);
  EXPECT_EQ(Str(refused, "level"), "warning");
  EXPECT_EQ(Str(refused, "msg"), "SIGHUP: kept the current principals: principals file: \"x\"");
}

// Call lines are buffered; a lifecycle line written after them still comes
// after them, and whatever is buffered is written when the logger goes.
TEST(LoggerTest, BufferedLinesKeepTheirOrderAndAreWrittenAtTheEnd) {
  LogFile file;
  {
    Logger logger(LogFormat::kText, file.fd());
    logger.BufferLine("call 1");
    logger.BufferLine("call 2");
    logger.Info("stopping", "shutting down");
    logger.BufferLine("call 3");
  }
  EXPECT_THAT(file.lines(),
              ElementsAre("call 1", "call 2", "permitd: shutting down", "call 3"));
}

// At most 1 MiB waits for the background writer: the call that fills the
// buffer writes it out itself before it returns.
TEST(LoggerTest, AFullBufferIsWrittenByTheCallThatFillsIt) {
  LogFile file;
  Logger logger(LogFormat::kText, file.fd());
  const std::string line(1023, 'x');  // 1 KiB with its newline
  for (int i = 0; i < 1024; ++i) logger.BufferLine(line);
  EXPECT_EQ(file.lines().size(), 1024u);
}

// Without any flush, a buffered line reaches the file within moments.
TEST(LoggerTest, BufferedLinesAreWrittenInTheBackground) {
  LogFile file;
  Logger logger(LogFormat::kJson, file.fd());
  logger.BufferLine("{\"event\":\"call\"}");
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (file.lines().empty() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_THAT(file.lines(), ElementsAre("{\"event\":\"call\"}"));
}

// permitd in-process with a JSON request log in a file, called through the
// SDK as users call it.
class RequestLogServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<PrincipalRegistry> registry = testing::TestPrincipals();
    ASSERT_THAT(registry, IsOk());
    logger_ = std::make_unique<Logger>(LogFormat::kJson, log_.fd());
    request_log_ = std::make_unique<RequestLog>(logger_.get());
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.db_path = dir_.path() + "/db";
    options.principals = *std::move(registry);
    options.shutdown_grace = absl::Seconds(1);
    options.observers.push_back(request_log_.get());
    absl::StatusOr<std::unique_ptr<PermitServer>> server =
        PermitServer::Start(std::move(options));
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  std::unique_ptr<Client> Connect(const std::string& token) {
    return testing::ConnectToTestServer(server_->port(), token);
  }

  TempDir dir_;
  LogFile log_;  // outlives the logger, which writes into it
  std::unique_ptr<Logger> logger_;
  std::unique_ptr<RequestLog> request_log_;
  std::unique_ptr<PermitServer> server_;
};

TEST_F(RequestLogServerTest, LogsEachCallAsJsonWithoutTheToken) {
  std::unique_ptr<Client> exporter = Connect("token-exp-acme");
  v1::SubmitCaseRequest submit;
  *submit.mutable_application() = ValidApplication();
  submit.set_request_id("req-0001");
  absl::StatusOr<v1::Case> c = exporter->SubmitCase(submit);
  ASSERT_THAT(c, IsOk());
  EXPECT_THAT(Connect("token-exp-globex")->GetCase(c->id()),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Connect("not-a-token")->GetLogHead(),
              StatusIs(absl::StatusCode::kUnauthenticated));

  logger_->Flush();  // call lines are written in the background
  const std::vector<std::string> lines = log_.lines();
  ASSERT_EQ(lines.size(), 3u) << ReadAll(log_.path());
  std::vector<Struct> calls;
  for (const std::string& line : lines) {
    calls.push_back(ParseJson(line));
    const Struct& s = calls.back();
    EXPECT_TRUE(IsRfc3339Utc(Str(s, "time"))) << line;
    EXPECT_EQ(Str(s, "event"), "call");
    EXPECT_THAT(Str(s, "peer"), StartsWith("ipv4:127.0.0.1:"));
    ASSERT_EQ(s.fields().at("latency_ms").kind_case(), Value::kNumberValue);
    EXPECT_GE(s.fields().at("latency_ms").number_value(), 0);
  }
  EXPECT_EQ(Str(calls[0], "method"), "SubmitCase");
  EXPECT_EQ(Str(calls[0], "code"), "OK");
  EXPECT_EQ(Str(calls[0], "principal"), "exp-acme");
  EXPECT_EQ(Str(calls[0], "request_id"), "req-0001");
  EXPECT_EQ(Str(calls[0], "case"), "");  // a submit names no case yet
  EXPECT_EQ(Str(calls[1], "method"), "GetCase");
  EXPECT_EQ(Str(calls[1], "code"), "NOT_FOUND");
  EXPECT_EQ(Str(calls[1], "principal"), "exp-globex");
  EXPECT_EQ(Str(calls[1], "case"), c->id());
  EXPECT_EQ(Str(calls[2], "method"), "GetLogHead");
  EXPECT_EQ(Str(calls[2], "code"), "UNAUTHENTICATED");
  EXPECT_EQ(Str(calls[2], "principal"), "");

  const std::string all = ReadAll(log_.path());
  EXPECT_THAT(all, Not(HasSubstr("token-exp-acme")));
  EXPECT_THAT(all, Not(HasSubstr("token-exp-globex")));
  EXPECT_THAT(all, Not(HasSubstr("not-a-token")));
  EXPECT_THAT(all, Not(HasSubstr("Bearer")));
}

}  // namespace
}  // namespace permit::server
