// Tests of server/tls_files.h: a changed set of TLS files is passed on only
// when it passes the checks, in one switch, and a refused set leaves the
// last good one served.
#include "server/tls_files.h"

#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/certs.h"
#include "server/files.h"
#include "tests/test_util.h"

namespace permit::server {
namespace {

using ::permit::testing::IsOk;
using ::permit::testing::IsOkAndHolds;
using ::permit::testing::StatusIs;
using ::permit::testing::TempDir;
using ::testing::HasSubstr;

CertAndKey Must(absl::StatusOr<CertAndKey> c) {
  EXPECT_THAT(c, IsOk());
  return c.ok() ? *std::move(c) : CertAndKey();
}

class TlsFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = Must(NewCertificateAuthority("test CA", absl::Hours(1)));
    other_ca_ = Must(NewCertificateAuthority("other CA", absl::Hours(1)));
    LeafSpec spec;
    spec.common_name = "localhost";
    first_ = Must(IssueCertificate(ca_, spec));
    second_ = Must(IssueCertificate(other_ca_, spec));
    source_ = {dir_.path() + "/tls.crt", dir_.path() + "/tls.key",
               dir_.path() + "/ca.crt"};
    Put(source_.cert, first_.cert_pem);
    Put(source_.key, first_.key_pem);
    Put(source_.client_ca, ca_.cert_pem);
  }

  void Put(const std::string& path, const std::string& content) {
    ASSERT_THAT(WritePrivateFile(path, content), IsOk());
  }
  static std::string Served(const std::string& path) {
    absl::StatusOr<std::string> s = ReadWholeFile(path);
    return s.ok() ? *s : "<" + std::string(s.status().message()) + ">";
  }
  // Started with a timer that never fires within a test: Reload() drives it.
  std::unique_ptr<TlsFiles> StartFiles() {
    absl::StatusOr<std::unique_ptr<TlsFiles>> t =
        TlsFiles::Start(source_, dir_.path() + "/served", absl::Hours(1),
                        [this](const absl::Status& s) { heard_.push_back(s); });
    EXPECT_THAT(t, IsOk());
    return t.ok() ? *std::move(t) : nullptr;
  }

  TempDir dir_;
  CertAndKey ca_, other_ca_, first_, second_;
  TlsFiles::Paths source_;
  std::vector<absl::Status> heard_;
};

TEST_F(TlsFilesTest, ServesACheckedCopyInAPrivateFolder) {
  std::unique_ptr<TlsFiles> t = StartFiles();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(Served(t->served().cert), first_.cert_pem);
  EXPECT_EQ(Served(t->served().key), first_.key_pem);
  EXPECT_EQ(Served(t->served().client_ca), ca_.cert_pem);
  EXPECT_THAT(t->served().cert, HasSubstr(dir_.path() + "/served/current/"));
  struct stat st;
  ASSERT_EQ(stat((dir_.path() + "/served").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat(t->served().key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Nothing changed: nothing to do, nothing heard.
  EXPECT_THAT(t->Reload(), IsOkAndHolds(false));
  EXPECT_TRUE(heard_.empty());
}

TEST_F(TlsFilesTest, AHalfRenewedPairIsRefusedOnceAndTheOldOneStays) {
  std::unique_ptr<TlsFiles> t = StartFiles();
  ASSERT_NE(t, nullptr);
  Put(source_.cert, second_.cert_pem);  // the new certificate, the old key
  EXPECT_THAT(t->Reload(), StatusIs(absl::StatusCode::kInvalidArgument,
                                    HasSubstr(source_.key)));
  EXPECT_EQ(Served(t->served().cert), first_.cert_pem);
  EXPECT_EQ(Served(t->served().key), first_.key_pem);
  // The same refused set is told of once.
  EXPECT_FALSE(t->Reload().ok());
  ASSERT_EQ(heard_.size(), 1u);
  EXPECT_FALSE(heard_[0].ok());

  Put(source_.key, second_.key_pem);  // now a pair
  EXPECT_THAT(t->Reload(), IsOkAndHolds(true));
  EXPECT_EQ(Served(t->served().cert), second_.cert_pem);
  EXPECT_EQ(Served(t->served().key), second_.key_pem);
  ASSERT_EQ(heard_.size(), 2u);
  EXPECT_THAT(heard_[1], IsOk());
}

TEST_F(TlsFilesTest, EmptyFilesAreRefusedNotTaken) {
  std::unique_ptr<TlsFiles> t = StartFiles();
  ASSERT_NE(t, nullptr);
  Put(source_.cert, "");
  Put(source_.key, "");
  Put(source_.client_ca, "");
  EXPECT_FALSE(t->Reload().ok());
  EXPECT_FALSE(t->Reload().ok());
  EXPECT_EQ(Served(t->served().cert), first_.cert_pem);
  EXPECT_EQ(heard_.size(), 1u);
}

TEST_F(TlsFilesTest, ABadOrMissingClientCaIsRefusedAndTheOldOneStays) {
  std::unique_ptr<TlsFiles> t = StartFiles();
  ASSERT_NE(t, nullptr);
  Put(source_.client_ca, "not a certificate\n");
  EXPECT_THAT(t->Reload(), StatusIs(absl::StatusCode::kInvalidArgument,
                                    HasSubstr(source_.client_ca)));
  EXPECT_EQ(Served(t->served().client_ca), ca_.cert_pem);
  ASSERT_EQ(std::remove(source_.client_ca.c_str()), 0);
  EXPECT_THAT(t->Reload(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(Served(t->served().client_ca), ca_.cert_pem);
  Put(source_.client_ca, other_ca_.cert_pem);
  EXPECT_THAT(t->Reload(), IsOkAndHolds(true));
  EXPECT_EQ(Served(t->served().client_ca), other_ca_.cert_pem);
}

TEST_F(TlsFilesTest, OnlyTheLastTwoSetsAreKept) {
  std::unique_ptr<TlsFiles> t = StartFiles();
  ASSERT_NE(t, nullptr);
  for (int i = 0; i < 4; ++i) {
    const CertAndKey& next = i % 2 == 0 ? second_ : first_;
    Put(source_.cert, next.cert_pem);
    Put(source_.key, next.key_pem);
    ASSERT_THAT(t->Reload(), IsOkAndHolds(true));
  }
  struct stat st;
  EXPECT_NE(stat((dir_.path() + "/served/gen-3").c_str(), &st), 0);
  EXPECT_EQ(stat((dir_.path() + "/served/gen-4").c_str(), &st), 0);
  EXPECT_EQ(stat((dir_.path() + "/served/gen-5").c_str(), &st), 0);
  EXPECT_EQ(Served(t->served().cert), first_.cert_pem);
}

TEST_F(TlsFilesTest, AStartRemovesTheLastRunsCopiesAndNothingElse) {
  const std::string served = dir_.path() + "/served";
  {
    std::unique_ptr<TlsFiles> t = StartFiles();
    ASSERT_NE(t, nullptr);
    Put(source_.cert, second_.cert_pem);
    Put(source_.key, second_.key_pem);
    ASSERT_THAT(t->Reload(), IsOkAndHolds(true));  // gen-1 and gen-2
  }
  Put(served + "/README", "the operator's note\n");
  Put(source_.cert, first_.cert_pem);
  Put(source_.key, first_.key_pem);
  std::unique_ptr<TlsFiles> t = StartFiles();
  ASSERT_NE(t, nullptr);
  struct stat st;
  EXPECT_EQ(stat((served + "/gen-1").c_str(), &st), 0);  // this run's first
  EXPECT_NE(stat((served + "/gen-2").c_str(), &st), 0);
  EXPECT_EQ(Served(served + "/README"), "the operator's note\n");
  EXPECT_EQ(Served(t->served().cert), first_.cert_pem);
}

TEST_F(TlsFilesTest, AFirstSetThatFailsTheChecksIsAnErrorAtStart) {
  Put(source_.key, second_.key_pem);
  EXPECT_THAT(
      TlsFiles::Start(source_, dir_.path() + "/served", absl::Hours(1),
                      nullptr),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(source_.key)));
  EXPECT_THAT(TlsFiles::Start({dir_.path() + "/none.crt", source_.key, ""},
                              dir_.path() + "/served", absl::Hours(1), nullptr),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("none.crt")));
}

}  // namespace
}  // namespace permit::server
