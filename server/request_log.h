// permitd's log on stderr, as plain text or as JSON lines (--log_format):
// one line per lifecycle event (Logger::Event: starting, listening, log
// key, metrics, SIGHUP reload, shutting down, stopped, start-up errors) and
// one line per finished call (RequestLog, a CallObserver).
//
// Text (the default) keeps permitd's historical lines, "permitd: MESSAGE",
// for lifecycle events; a call is
//
//   permitd: call 2026-11-28T20:34:43.123Z SubmitCase OK 3.512ms principal=exp-acme case=PRM-2026-000001 request_id=… peer=ipv4:127.0.0.1:50312
//
// with values that are not plain (spaces, quotes, control characters, …)
// quoted and escaped as JSON strings, and empty ones left out. JSON gives
// one object per line, always with "time" (RFC 3339, UTC, milliseconds),
// "level" (info, warning, error), "event" and, for lifecycle events, "msg"
// (the text line without "permitd: ") plus the event's fields; a call has
// event "call" and method, code, latency_ms, principal, case, request_id and
// peer (empty strings when unknown).
//
// Never logged: bearer tokens (the authorization metadata is not part of a
// CallRecord), private keys, or status messages (a refusal's message can
// quote the request; ListDenials keeps it for auditors).
//
// Thread-safety: thread-safe, and lines from many threads never
// interleave. Lifecycle lines are written at once. Call lines are buffered
// and written by a background thread every 50 ms (or at once when 1 MiB is
// waiting), so a busy server makes one write(2) per few thousand calls
// instead of one per call; a crash can lose the last 50 ms of call lines,
// never a lifecycle line, and never anything of the audit log.
#ifndef PERMIT_SERVER_REQUEST_LOG_H_
#define PERMIT_SERVER_REQUEST_LOG_H_

#include <initializer_list>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/call_record.h"

namespace permit::server {

enum class LogFormat { kText, kJson };
enum class LogLevel { kInfo, kWarning, kError };

// "text" or "json"; INVALID_ARGUMENT otherwise.
absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name);

// `t` as RFC 3339 in UTC with milliseconds, e.g. 2026-11-28T20:34:43.123Z
// (the fraction truncated, as absl::FormatTime's %E3S does).
std::string Rfc3339Millis(absl::Time t);

// `s` as a JSON string literal, quotes included: ", \ and control
// characters escaped, bytes that are not UTF-8 replaced by U+FFFD.
std::string JsonQuote(absl::string_view s);

// One field of a lifecycle event, with its value already in JSON.
struct LogField {
  static LogField Str(absl::string_view key, absl::string_view value);
  static LogField Int(absl::string_view key, int64_t value);
  static LogField Bool(absl::string_view key, bool value);
  std::string key;
  std::string json;
};

class Logger {
 public:
  // Writes to file descriptor `fd` (not owned; stderr by default).
  explicit Logger(LogFormat format, int fd = 2) : format_(format), fd_(fd) {}
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  LogFormat format() const { return format_; }

  // A lifecycle event: "permitd: MESSAGE" in text; in JSON the message and
  // `fields` under `event` (a short snake_case name such as "listening").
  void Event(LogLevel level, absl::string_view event, absl::string_view message,
             std::initializer_list<LogField> fields = {});
  void Info(absl::string_view event, absl::string_view message,
            std::initializer_list<LogField> fields = {}) {
    Event(LogLevel::kInfo, event, message, fields);
  }

  // Writes `line` and a newline now, after any buffered lines.
  void WriteLine(std::string line);
  // Queues `line` and a newline for the background writer.
  void BufferLine(absl::string_view line);
  // Writes the buffered lines now.
  void Flush();

  // Writes what is buffered and stops the background writer.
  ~Logger();

 private:
  static constexpr size_t kMaxBuffered = 1 << 20;
  // Writes the buffer out (with `tail` after it), in order.
  void WriteOut(absl::string_view tail) ABSL_LOCKS_EXCLUDED(mu_);
  void FlushLoop();

  const LogFormat format_;
  const int fd_;
  // Held while writing to fd_, so chunks go out in the order they were
  // taken from the buffer.
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  absl::Mutex mu_;
  std::string buffer_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread flusher_ ABSL_GUARDED_BY(mu_);  // started by the first BufferLine
};

// Logs every finished call, one line each.
class RequestLog final : public CallObserver {
 public:
  // `logger` is not owned and must outlive this.
  explicit RequestLog(Logger* logger) : logger_(logger) {}

  void OnCallDone(const CallRecord& call) override;

  // The line for `call` in `format`, without the newline.
  static std::string Format(LogFormat format, const CallRecord& call);

 private:
  Logger* const logger_;
};

}  // namespace permit::server

#endif  // PERMIT_SERVER_REQUEST_LOG_H_
