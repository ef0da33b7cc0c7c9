// Helpers shared by permit's tests: a temporary folder that cleans itself
// up, a valid application to start from, actors of each role, a free
// loopback port, and gMock matchers for absl::Status codes.
#ifndef PERMIT_TESTS_TEST_UTIL_H_
#define PERMIT_TESTS_TEST_UTIL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "permit/v1/case_service.pb.h"

namespace permit::testing {

// A fresh folder under $TMPDIR (or /tmp), removed with everything in it
// when the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A complete, valid application: NdFeB magnets to an end user in Japan.
v1::Application ValidApplication();

v1::Actor Exporter(const std::string& id = "exp-acme",
                   const std::string& org = "acme");
v1::Actor Reviewer(const std::string& id);
v1::Actor Auditor(const std::string& id = "aud-1");

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

// Matches an absl::Status or absl::StatusOr whose code is `code`.
MATCHER_P(StatusIs, code,
          std::string(negation ? "has no " : "has ") + "status code " +
              absl::StatusCodeToString(code)) {
  absl::Status s;
  if constexpr (std::is_same_v<std::decay_t<arg_type>, absl::Status>) {
    s = arg;
  } else {
    s = arg.status();
  }
  *result_listener << "status is " << s;
  return s.code() == code;
}

// Matches an absl::Status or absl::StatusOr whose code is `code` and whose
// message matches `message` (e.g. HasSubstr("...")).
MATCHER_P2(StatusIs, code, message,
           std::string(negation ? "has no " : "has ") + "status code " +
               absl::StatusCodeToString(code) + " with a matching message") {
  absl::Status s;
  if constexpr (std::is_same_v<std::decay_t<arg_type>, absl::Status>) {
    s = arg;
  } else {
    s = arg.status();
  }
  *result_listener << "status is " << s;
  return s.code() == code &&
         ::testing::Matches(message)(std::string(s.message()));
}

// Matches an OK absl::Status or absl::StatusOr.
MATCHER(IsOk, negation ? "is not OK" : "is OK") {
  absl::Status s;
  if constexpr (std::is_same_v<std::decay_t<arg_type>, absl::Status>) {
    s = arg;
  } else {
    s = arg.status();
  }
  *result_listener << "status is " << s;
  return s.ok();
}

// Matches an OK absl::StatusOr whose value matches `value`.
MATCHER_P(IsOkAndHolds, value, "is OK and holds a matching value") {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(value, *arg, result_listener);
}

}  // namespace permit::testing

#endif  // PERMIT_TESTS_TEST_UTIL_H_
