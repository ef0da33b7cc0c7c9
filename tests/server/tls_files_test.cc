// Tests of server/tls_files.h: a changed set of TLS files is passed on only
// when it passes the checks, in one switch; a refused set leaves the last
// good one served; the timer tells each refusal once; the copies go with
// TlsFiles.
#include "server/tls_files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "absl/synchronization/mutex.h"
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

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
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
  // By default with a timer that never fires within a test: Reload()
  // drives it.
  std::unique_ptr<TlsFiles> StartFiles(
      absl::Duration refresh = absl::Hours(1)) {
    absl::StatusOr<std::unique_ptr<TlsFiles>> t = TlsFiles::Start(
        source_, served_, refresh, [this](const absl::Status& s) {
          absl::MutexLock lock(&mu_);
          heard_.push_back(s);
        });
    EXPECT_THAT(t, IsOk());
    return t.ok() ? *std::move(t) : nullptr;
  }
  std::vector<absl::Status> Heard() {
    absl::MutexLock lock(&mu_);
    return heard_;
  }
  // Waits (at most 10 s) until the timer has told `n` outcomes.
  bool HeardAtLeast(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return heard_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
  }

  TempDir dir_;
  const std::string served_ = dir_.path() + "/served";
  CertAndKey ca_, other_ca_, first_, second_;
  TlsFiles::Paths source_;
  absl::Mutex mu_;
  std::vector<absl::Status> heard_ ABSL_GUARDED_BY(mu_);
};

TEST_F(TlsFilesTest, ServesACheckedCopyInAPrivateFolder) {
  std::unique_ptr<TlsFiles> t = StartFiles();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(Served(t->served().cert), first_.cert_pem);
  EXPECT_EQ(Served(t->served().key), first_.key_pem);
  EXPECT_EQ(Served(t->served().client_ca), ca_.cert_pem);
  EXPECT_THAT(t->served().cert, HasSubstr(served_ + "/current/"));
  struct stat st;
  ASSERT_EQ(stat(served_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat(t->served().key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Nothing changed: nothing to do.
  EXPECT_THAT(t->Reload(), IsOkAndHolds(false));
  EXPECT_TRUE(Heard().empty());
}

TEST_F(TlsFilesTest, AHalfRenewedPairIsRefusedAndTheOldOneStays) {
  std::unique_ptr<TlsFiles> t = StartFiles();
  ASSERT_NE(t, nullptr);
  Put(source_.cert, second_.cert_pem);  // the new certificate, the old key
  EXPECT_THAT(t->Reload(), StatusIs(absl::StatusCode::kInvalidArgument,
                                    HasSubstr(source_.key)));
  EXPECT_EQ(Served(t->served().cert), first_.cert_pem);
  EXPECT_EQ(Served(t->served().key), first_.key_pem);
  // Asked again: the same answer.
  EXPECT_THAT(t->Reload(), StatusIs(absl::StatusCode::kInvalidArgument));

  Put(source_.key, second_.key_pem);  // now a pair
  EXPECT_THAT(t->Reload(), IsOkAndHolds(true));
  EXPECT_EQ(Served(t->served().cert), second_.cert_pem);
  EXPECT_EQ(Served(t->served().key), second_.key_pem);

  // The same bad mix again, after a good set: refused again.
  Put(source_.key, first_.key_pem);
  EXPECT_THAT(t->Reload(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(Served(t->served().key), second_.key_pem);
}

TEST_F(TlsFilesTest, TheTimerTellsARefusedSetOnceAndThenTheRenewedOne) {
  std::unique_ptr<TlsFiles> t = StartFiles(absl::Milliseconds(20));
  ASSERT_NE(t, nullptr);
  Put(source_.cert, second_.cert_pem);
  ASSERT_TRUE(HeardAtLeast(1));
  absl::SleepFor(absl::Milliseconds(200));  // about ten rereads more
  std::vector<absl::Status> heard = Heard();
  ASSERT_EQ(heard.size(), 1u);
  EXPECT_THAT(heard[0], StatusIs(absl::StatusCode::kInvalidArgument,
                                 HasSubstr("not the private key of")));
  EXPECT_EQ(Served(t->served().cert), first_.cert_pem);

  Put(source_.key, second_.key_pem);
  ASSERT_TRUE(HeardAtLeast(2));
  EXPECT_THAT(Heard()[1], IsOk());
  EXPECT_EQ(Served(t->served().cert), second_.cert_pem);
}

TEST_F(TlsFilesTest, EmptyFilesAreRefusedNotTaken) {
  std::unique_ptr<TlsFiles> t = StartFiles();
  ASSERT_NE(t, nullptr);
  Put(source_.cert, "");
  Put(source_.key, "");
  Put(source_.client_ca, "");
  EXPECT_THAT(t->Reload(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(t->Reload(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(Served(t->served().cert), first_.cert_pem);
}

TEST_F(TlsFilesTest, ABadOrMissingClientCaIsRefusedAndTheOldOneStays) {
  std::unique_ptr<TlsFiles> t = StartFiles();
  ASSERT_NE(t, nullptr);
  Put(source_.client_ca, "not a certificate\n");
  EXPECT_THAT(t->Reload(), StatusIs(absl::StatusCode::kInvalidArgument,
                                    HasSubstr(source_.client_ca)));
  EXPECT_EQ(Served(t->served().client_ca), ca_.cert_pem);
  ASSERT_EQ(std::remove(source_.client_ca.c_str()), 0);
  EXPECT_THAT(t->Reload(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("No such file")));
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
  EXPECT_FALSE(Exists(served_ + "/gen-3"));
  EXPECT_TRUE(Exists(served_ + "/gen-4"));
  EXPECT_TRUE(Exists(served_ + "/gen-5"));
  EXPECT_EQ(Served(t->served().cert), first_.cert_pem);
}

TEST_F(TlsFilesTest, TheCopiesGoWhenTlsFilesGoes) {
  std::unique_ptr<TlsFiles> t = StartFiles();
  ASSERT_NE(t, nullptr);
  const std::string key = t->served().key;
  ASSERT_EQ(Served(key), first_.key_pem);
  t.reset();
  EXPECT_FALSE(Exists(key));
  EXPECT_FALSE(Exists(served_ + "/gen-1"));
  EXPECT_FALSE(Exists(served_ + "/current"));
}

TEST_F(TlsFilesTest, AStartRemovesWhatAKilledRunLeftAndNothingElse) {
  ASSERT_EQ(::mkdir(served_.c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((served_ + "/gen-7").c_str(), 0700), 0);
  Put(served_ + "/gen-7/tls.key", second_.key_pem);
  ASSERT_EQ(::symlink("gen-7", (served_ + "/current").c_str()), 0);
  Put(served_ + "/README", "the operator's note\n");
  std::unique_ptr<TlsFiles> t = StartFiles();
  ASSERT_NE(t, nullptr);
  EXPECT_FALSE(Exists(served_ + "/gen-7"));
  EXPECT_TRUE(Exists(served_ + "/gen-1"));
  EXPECT_EQ(Served(served_ + "/README"), "the operator's note\n");
  EXPECT_EQ(Served(t->served().key), first_.key_pem);
}

TEST_F(TlsFilesTest, AFirstSetThatFailsTheChecksIsAnErrorAtStart) {
  Put(source_.key, second_.key_pem);
  EXPECT_THAT(
      TlsFiles::Start(source_, served_, absl::Hours(1), nullptr),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(source_.key)));
  EXPECT_THAT(TlsFiles::Start({dir_.path() + "/none.crt", source_.key, ""},
                              served_, absl::Hours(1), nullptr),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("none.crt")));
}

}  // namespace
}  // namespace permit::server
