// Reload test: permitd re-reads its principals file on SIGHUP. Added tokens
// work at once, removed ones stop at once, and a file with a mistake is
// refused while the old principals stay in force.
#include <fstream>

#include "core/checkpoint.h"
#include "core/merkle.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "permit/client.h"
#include "tests/e2e/permitd_process.h"
#include "tests/test_util.h"

namespace permit {
namespace {

using ::permit::testing::IsOk;
using ::permit::testing::StatusIs;
using ::permit::testing::TempDir;

std::string Entry(const std::string& id, const std::string& role, const std::string& token) {
  return "{\"id\": \"" + id + "\", \"role\": \"" + role + "\", \"token_sha256\": \"" +
         core::ToHex(core::Sha256(token)) + "\"}";
}

class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    principals_ = dir_.path() + "/principals.json";
    const std::string key = dir_.path() + "/log-key.pem";
    absl::StatusOr<std::string> pem = core::NewSigningKeyPem();
    ASSERT_THAT(pem, IsOk());
    std::ofstream(key) << *pem;
    WritePrincipals("{\"principals\": [" + Entry("aud-1", "auditor", "t-old") + "]}");
    port_ = testing::FreePort();
    server_ = std::make_unique<testing::PermitdProcess>(dir_.path() + "/data",
                                                        principals_, key, port_);
    server_->Start();
    ASSERT_TRUE(Eventually("t-old", absl::StatusCode::kOk));
  }

  void WritePrincipals(const std::string& json) {
    const std::string tmp = principals_ + ".tmp";
    std::ofstream(tmp) << json;
    std::rename(tmp.c_str(), principals_.c_str());
  }

  absl::Status Head(const std::string& token) {
    ClientOptions options;
    options.insecure = true;  // the test server is plaintext on loopback
    options.address = "127.0.0.1:" + std::to_string(port_);
    options.token = token;
    options.max_attempts = 1;
    options.deadline = absl::Seconds(2);
    return (*Client::Connect(options))->GetLogHead().status();
  }

  // Polls until a call with `token` gets `code` (bounded: 10 s).
  bool Eventually(const std::string& token, absl::StatusCode code) {
    for (int i = 0; i < 200; ++i) {
      if (Head(token).code() == code) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }

  TempDir dir_;
  std::string principals_;
  int port_ = 0;
  std::unique_ptr<testing::PermitdProcess> server_;
};

TEST_F(ReloadTest, SighupAddsAndRemovesTokens) {
  EXPECT_THAT(Head("t-new"), StatusIs(absl::StatusCode::kUnauthenticated));
  WritePrincipals("{\"principals\": [" + Entry("aud-2", "auditor", "t-new") + "]}");
  server_->Signal(SIGHUP);
  EXPECT_TRUE(Eventually("t-new", absl::StatusCode::kOk));
  EXPECT_THAT(Head("t-old"), StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(ReloadTest, SighupWithAMalformedFileKeepsTheOldPrincipals) {
  WritePrincipals("{\"principals\": [{\"id\": \"x\", \"role\": \"boss\"}]}");
  server_->Signal(SIGHUP);
  // Give the reload its moment, then the old token must still work.
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_THAT(Head("t-old"), IsOk());
  // And a good file later is still taken.
  WritePrincipals("{\"principals\": [" + Entry("aud-2", "auditor", "t-new") + "]}");
  server_->Signal(SIGHUP);
  EXPECT_TRUE(Eventually("t-new", absl::StatusCode::kOk));
}

}  // namespace
}  // namespace permit

namespace permit {
namespace {

TEST(EnvironmentTest, PermitFlagVariablesSetFlags) {
  TempDir dir;
  const std::string principals = dir.path() + "/principals.json";
  std::ofstream(principals) << "{\"principals\": [" << Entry("aud-1", "auditor", "t")
                            << "]}";
  const std::string key = dir.path() + "/log-key.pem";
  std::ofstream(key) << *core::NewSigningKeyPem();
  const int port = testing::FreePort();
  testing::PermitdProcess server(dir.path() + "/data", principals, key, port);
  server.SetEnvironment({"PERMIT_LOG_ORIGIN=env.example/log"}, /*origin_from_env=*/true);
  server.Start();
  ClientOptions options;
  options.insecure = true;  // the test server is plaintext on loopback
  options.address = "127.0.0.1:" + std::to_string(port);
  options.token = "t";
  options.max_attempts = 1;
  absl::StatusOr<v1::SignedCheckpoint> cp;
  for (int i = 0; i < 200; ++i) {
    cp = (*Client::Connect(options))->GetCheckpoint();
    if (cp.ok()) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_THAT(cp, IsOk());
  EXPECT_EQ(cp->note().substr(0, cp->note().find('\n')), "env.example/log");
}

}  // namespace
}  // namespace permit
