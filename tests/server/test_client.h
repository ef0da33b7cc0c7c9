// An SDK client of an in-process test server, as the server-level tests
// connect: loopback, a 5 s deadline, and one attempt (a retry would hide the
// failure a test looks for).
#ifndef PERMIT_TESTS_SERVER_TEST_CLIENT_H_
#define PERMIT_TESTS_SERVER_TEST_CLIENT_H_

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "permit/client.h"
#include "tests/test_util.h"

namespace permit::testing {

// A client of 127.0.0.1:`port` with `token`; the transport as `options`
// says (TLS unless options.insecure). A failed connect fails the test and
// returns null.
inline std::unique_ptr<Client> ConnectToTestServer(int port, const std::string& token,
                                                   ClientOptions options) {
  options.address = absl::StrCat("127.0.0.1:", port);
  options.token = token;
  options.deadline = absl::Seconds(5);
  options.max_attempts = 1;
  absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(options);
  EXPECT_THAT(c, IsOk());
  return c.ok() ? *std::move(c) : nullptr;
}

// The same over plaintext, as the test servers listen.
inline std::unique_ptr<Client> ConnectToTestServer(int port, const std::string& token) {
  ClientOptions options;
  options.insecure = true;
  return ConnectToTestServer(port, token, options);
}

}  // namespace permit::testing

#endif  // PERMIT_TESTS_SERVER_TEST_CLIENT_H_
