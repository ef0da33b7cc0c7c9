// Tests of server/auth.h: parsing the principals file (every mistake named
// by entry and field) and authenticating bearer tokens by their SHA-256.
#include "server/auth.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace permit::server {
namespace {

using ::permit::testing::IsOk;
using ::permit::testing::StatusIs;
using ::testing::HasSubstr;

std::string Entry(const std::string& id, const std::string& role,
                  const std::string& org, const std::string& token) {
  return "{\"id\": \"" + id + "\", \"role\": \"" + role + "\"" +
         (org.empty() ? "" : ", \"org\": \"" + org + "\"") +
         ", \"token_sha256\": \"" + TokenSha256Hex(token) + "\"}";
}

std::string File(const std::vector<std::string>& entries) {
  std::string out = "{\"principals\": [";
  for (size_t i = 0; i < entries.size(); ++i) {
    out += (i ? ", " : "") + entries[i];
  }
  return out + "]}";
}

TEST(PrincipalRegistryTest, AuthenticatesEachRoleByToken) {
  absl::StatusOr<PrincipalRegistry> reg = PrincipalRegistry::Parse(
      File({Entry("exp-acme", "exporter", "acme", "t-exp"),
            Entry("rev-1", "reviewer", "", "t-rev"),
            Entry("aud-1", "auditor", "", "t-aud")}));
  ASSERT_THAT(reg, IsOk());
  EXPECT_EQ(reg->size(), 3u);

  absl::StatusOr<v1::Actor> a = reg->Authenticate("Bearer t-exp");
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->principal_id(), "exp-acme");
  EXPECT_EQ(a->role(), v1::ROLE_EXPORTER);
  EXPECT_EQ(a->organisation(), "acme");

  a = reg->Authenticate("Bearer t-rev");
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->role(), v1::ROLE_REVIEWER);
  EXPECT_EQ(a->organisation(), "");

  a = reg->Authenticate("bearer t-aud");
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->role(), v1::ROLE_AUDITOR);
}

// An admin (backups only) is, like reviewers and auditors, of no
// organisation: the file may not give it one.
TEST(PrincipalRegistryTest, AdminHasNoOrganisation) {
  absl::StatusOr<PrincipalRegistry> reg = PrincipalRegistry::Parse(
      File({Entry("rev-1", "reviewer", "", "t-rev"), Entry("adm-1", "admin", "", "t-adm")}));
  ASSERT_THAT(reg, IsOk());
  EXPECT_EQ(reg->size(), 2u);
  absl::StatusOr<v1::Actor> a = reg->Authenticate("Bearer t-adm");
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->principal_id(), "adm-1");
  EXPECT_EQ(a->role(), v1::ROLE_ADMIN);
  EXPECT_EQ(a->organisation(), "");

  reg = PrincipalRegistry::Parse(File({Entry("rev-1", "reviewer", "", "t-rev"),
                                       Entry("adm-1", "admin", "acme", "t-adm")}));
  EXPECT_THAT(reg, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(reg.status().message()), HasSubstr("principals[1] (adm-1).org"));
}

TEST(BearerTokenSha256HexTest, ReadsTheSchemeInAnyCaseAndNothingElse) {
  const std::string want = TokenSha256Hex("t-1");
  EXPECT_EQ(BearerTokenSha256Hex("Bearer t-1"), want);
  EXPECT_EQ(BearerTokenSha256Hex("bearer t-1"), want);
  EXPECT_EQ(BearerTokenSha256Hex("BEARER t-1"), want);
  EXPECT_EQ(BearerTokenSha256Hex(""), std::nullopt);
  EXPECT_EQ(BearerTokenSha256Hex("Bearer "), std::nullopt);
  EXPECT_EQ(BearerTokenSha256Hex("Basic dDox"), std::nullopt);
  EXPECT_EQ(BearerTokenSha256Hex("t-1"), std::nullopt);
}

TEST(PrincipalRegistryTest, MissingMalformedOrUnknownTokenIsUnauthenticated) {
  absl::StatusOr<PrincipalRegistry> reg =
      PrincipalRegistry::Parse(File({Entry("rev-1", "reviewer", "", "secret")}));
  ASSERT_THAT(reg, IsOk());
  EXPECT_THAT(reg->Authenticate(""), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(reg->Authenticate("secret"),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(reg->Authenticate("Bearer "),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(reg->Authenticate("Bearer wrong"),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(reg->Authenticate("Basic secret"),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(PrincipalRegistryTest, RefusesMistakesNamingEntryAndField) {
  struct Case {
    std::string name;
    std::string json;
    std::string expected;  // part of the message
  };
  const std::string good = Entry("rev-1", "reviewer", "", "a");
  const std::vector<Case> cases = {
      {"not json", "{\"principals\": [", "principals file"},
      {"unknown field",
       "{\"principals\": [{\"id\": \"x\", \"role\": \"auditor\", \"colour\": 1}]}",
       "colour"},
      {"empty", "{\"principals\": []}", "no principals"},
      {"unknown role", File({good, Entry("boss", "superuser", "", "b")}),
       "principals[1] (boss).role"},
      {"exporter without org", File({Entry("exp", "exporter", "", "b")}),
       "principals[0] (exp).org"},
      {"reviewer with org", File({Entry("rev", "reviewer", "acme", "b")}),
       "principals[0] (rev).org"},
      {"duplicate id", File({good, Entry("rev-1", "auditor", "", "b")}),
       "principals[1] (rev-1).id: duplicate"},
      {"shared token", File({good, Entry("rev-2", "reviewer", "", "a")}),
       "principals[1] (rev-2).token_sha256"},
      {"bad hash",
       "{\"principals\": [{\"id\": \"x\", \"role\": \"auditor\", "
       "\"token_sha256\": \"abc\"}]}",
       "principals[0] (x).token_sha256"},
      {"missing id",
       "{\"principals\": [{\"role\": \"auditor\", \"token_sha256\": \"" +
           TokenSha256Hex("z") + "\"}]}",
       "principals[0].id"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<PrincipalRegistry> reg = PrincipalRegistry::Parse(c.json);
    EXPECT_THAT(reg, StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(std::string(reg.status().message()), HasSubstr(c.expected));
  }
}

TEST(PrincipalRegistryTest, LoadNamesAMissingFile) {
  absl::StatusOr<PrincipalRegistry> reg =
      PrincipalRegistry::Load("/nonexistent/principals.json");
  EXPECT_THAT(reg, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(std::string(reg.status().message()),
              HasSubstr("/nonexistent/principals.json"));
}

}  // namespace
}  // namespace permit::server
