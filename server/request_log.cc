// permitd's text and JSON log lines; see request_log.h.
#include "server/request_log.h"

#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace permit::server {
namespace {

// The length of the well-formed UTF-8 sequence at s[i] (a byte >= 0x80),
// or 0 if there is none (RFC 3629: no overlongs, surrogates or > U+10FFFF).
size_t Utf8Length(absl::string_view s, size_t i) {
  const auto at = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = at(i);
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (at(i + 1) < lo || at(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (at(i + k) < 0x80 || at(i + k) > 0xBF) return 0;
  }
  return n;
}

// A text-format value: as is if it is plain printable ASCII with nothing
// that could be read as a separator; JSON-quoted otherwise.
void AppendTextValue(std::string* out, absl::string_view v) {
  bool plain = !v.empty();
  for (char ch : v) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7F || c == '"' || c == '\\' || c == '=') {
      plain = false;
      break;
    }
  }
  if (plain) {
    out->append(v.data(), v.size());
  } else {
    out->append(JsonQuote(v));
  }
}

}  // namespace

// absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, UTC) without the format
// interpreter: one line per call is formatted, and FormatTime was the
// largest part of formatting it.
std::string Rfc3339Millis(absl::Time t) {
  const int64_t ms = absl::ToUnixMillis(t);  // rounds down, as %E3S does
  const int64_t floor_ms = ((ms % 1000) + 1000) % 1000;
  const absl::CivilSecond cs =
      absl::ToCivilSecond(absl::FromUnixMillis(ms - floor_ms), absl::UTCTimeZone());
  const int64_t year = cs.year();
  if (year < 0 || year > 9999) {
    return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
  }
  char out[] = "0000-00-00T00:00:00.000Z";
  auto put = [&](int at, int64_t v, int digits) {
    for (int i = digits - 1; i >= 0; --i, v /= 10) out[at + i] = static_cast<char>('0' + v % 10);
  };
  put(0, year, 4);
  put(5, cs.month(), 2);
  put(8, cs.day(), 2);
  put(11, cs.hour(), 2);
  put(14, cs.minute(), 2);
  put(17, cs.second(), 2);
  put(20, floor_ms, 3);
  return std::string(out, sizeof(out) - 1);
}

namespace {

absl::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
    case LogLevel::kInfo:
      break;
  }
  return "info";
}

}  // namespace

absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("--log_format ", name, ": expected text or json"));
}

std::string JsonQuote(absl::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      if (const size_t n = Utf8Length(s, i); n > 0) {
        out.append(s.data() + i, n);
        i += n;
      } else {
        out.append("\\ufffd");
        ++i;
      }
      continue;
    }
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          absl::StrAppendFormat(&out, "\\u%04x", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
  return out;
}

LogField LogField::Str(absl::string_view key, absl::string_view value) {
  return LogField{std::string(key), JsonQuote(value)};
}

LogField LogField::Int(absl::string_view key, int64_t value) {
  return LogField{std::string(key), absl::StrCat(value)};
}

LogField LogField::Bool(absl::string_view key, bool value) {
  return LogField{std::string(key), value ? "true" : "false"};
}

void Logger::Event(LogLevel level, absl::string_view event,
                   absl::string_view message,
                   std::initializer_list<LogField> fields) {
  if (format_ == LogFormat::kText) {
    WriteLine(absl::StrCat("permitd: ", message));
    return;
  }
  std::string line = absl::StrCat(
      "{\"time\":\"", Rfc3339Millis(absl::Now()), "\",\"level\":\"", LevelName(level),
      "\",\"event\":", JsonQuote(event), ",\"msg\":", JsonQuote(message));
  for (const LogField& f : fields) {
    absl::StrAppend(&line, ",", JsonQuote(f.key), ":", f.json);
  }
  line.push_back('}');
  WriteLine(std::move(line));
}

namespace {

void WriteAll(int fd, absl::string_view bytes) {
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere to report it
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace

Logger::~Logger() {
  std::thread flusher;
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    flusher = std::move(flusher_);
  }
  if (flusher.joinable()) flusher.join();
  Flush();
}

void Logger::WriteOut(absl::string_view tail) {
  absl::MutexLock write_lock(&write_mu_);
  std::string chunk;
  {
    absl::MutexLock lock(&mu_);
    chunk.swap(buffer_);
  }
  chunk.append(tail.data(), tail.size());
  if (!chunk.empty()) WriteAll(fd_, chunk);
}

void Logger::WriteLine(std::string line) {
  line.push_back('\n');
  WriteOut(line);
}

void Logger::Flush() { WriteOut(""); }

void Logger::BufferLine(absl::string_view line) {
  bool full;
  {
    absl::MutexLock lock(&mu_);
    buffer_.append(line.data(), line.size());
    buffer_.push_back('\n');
    full = buffer_.size() >= kMaxBuffered;
    if (!flusher_.joinable() && !stop_) {
      flusher_ = std::thread([this] { FlushLoop(); });
    }
  }
  if (full) Flush();  // the writer fell behind: this caller pays
}

void Logger::FlushLoop() {
  for (;;) {
    bool stop;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::Milliseconds(50));
      stop = stop_;
    }
    Flush();
    if (stop) return;
  }
}

std::string RequestLog::Format(LogFormat format, const CallRecord& call) {
  const std::string time = Rfc3339Millis(call.start + call.latency);
  const std::string code = absl::StatusCodeToString(call.status.code());
  const double ms = absl::ToDoubleMilliseconds(call.latency);
  const std::string& principal = call.actor.principal_id();
  if (format == LogFormat::kJson) {
    const absl::StatusCode c = call.status.code();
    const bool error = c == absl::StatusCode::kInternal ||
                       c == absl::StatusCode::kDataLoss ||
                       c == absl::StatusCode::kUnknown;
    return absl::StrCat(
        "{\"time\":\"", time, "\",\"level\":\"", error ? "error" : "info",
        "\",\"event\":\"call\",\"method\":", JsonQuote(call.method),
        ",\"code\":\"", code, "\",\"latency_ms\":", absl::StrFormat("%.3f", ms),
        ",\"principal\":", JsonQuote(principal), ",\"case\":", JsonQuote(call.case_id),
        ",\"request_id\":", JsonQuote(call.request_id), ",\"peer\":",
        JsonQuote(call.peer), "}");
  }
  std::string line = absl::StrCat("permitd: call ", time, " ");
  AppendTextValue(&line, call.method);
  absl::StrAppend(&line, " ", code, " ", absl::StrFormat("%.3f", ms), "ms");
  const std::pair<absl::string_view, absl::string_view> fields[] = {
      {"principal", principal},
      {"case", call.case_id},
      {"request_id", call.request_id},
      {"peer", call.peer}};
  for (const auto& [key, value] : fields) {
    if (value.empty()) continue;
    absl::StrAppend(&line, " ", key, "=");
    AppendTextValue(&line, value);
  }
  return line;
}

void RequestLog::OnCallDone(const CallRecord& call) {
  logger_->BufferLine(Format(logger_->format(), call));
}

}  // namespace permit::server
