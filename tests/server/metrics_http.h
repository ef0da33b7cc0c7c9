// Test helpers for permitd's /metrics: a tiny HTTP/1.0 GET over a loopback
// socket (what a Prometheus scraper does), and a reader of one sample out
// of the text exposition format.
#ifndef PERMIT_TESTS_SERVER_METRICS_HTTP_H_
#define PERMIT_TESTS_SERVER_METRICS_HTTP_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace permit::testing {

// The body of GET http://127.0.0.1:`port``path`, or nullopt if the request
// failed or the status was not 200.
inline std::optional<std::string> HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return std::nullopt;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return std::nullopt;
  }
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return std::nullopt;
  }
  std::string response;
  char buf[8192];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    response.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  if (body == std::string::npos || response.rfind("HTTP/1.", 0) != 0 ||
      response.find(" 200 ") > response.find("\r\n")) {
    return std::nullopt;
  }
  return response.substr(body + 4);
}

// The value of the sample `series` (name and labels exactly as exposed,
// e.g. `permit_requests_total{code="OK",method="SubmitCase"}`) in an
// exposition text, or nullopt if there is no such sample.
inline std::optional<double> MetricValue(absl::string_view text,
                                         absl::string_view series) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.size() <= series.size() || line.substr(0, series.size()) != series ||
        line[series.size()] != ' ') {
      continue;
    }
    double v;
    if (absl::SimpleAtod(line.substr(series.size() + 1), &v)) return v;
  }
  return std::nullopt;
}

}  // namespace permit::testing

#endif  // PERMIT_TESTS_SERVER_METRICS_HTTP_H_
