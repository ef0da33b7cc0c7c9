// Tests of server/checkpointer.h: checkpoints follow commits, open with the
// log's key, and a log that is shorter than, or diverges from, the last
// signed checkpoint is refused rather than signed again.
#include "server/checkpointer.h"

#include "absl/synchronization/notification.h"
#include "core/checkpoint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/rocksdb_event_store.h"
#include "tests/test_util.h"

namespace permit::server {
namespace {

using ::permit::testing::Exporter;
using ::permit::testing::IsOk;
using ::permit::testing::StatusIs;
using ::permit::testing::TempDir;
using ::permit::testing::ValidApplication;

class CheckpointerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> pem = core::NewSigningKeyPem();
    ASSERT_THAT(pem, IsOk());
    pem_ = *pem;
    OpenManager();
  }

  void OpenManager() {
    manager_.reset();
    auto store = storage::RocksDbEventStore::Open(dir_.path() + "/db");
    ASSERT_THAT(store, IsOk());
    auto manager = CaseManager::Create(*std::move(store));
    ASSERT_THAT(manager, IsOk());
    manager_ = *std::move(manager);
  }

  absl::StatusOr<std::unique_ptr<Checkpointer>> Start() {
    absl::StatusOr<std::unique_ptr<core::NoteSigner>> signer =
        core::NoteSigner::Create(pem_, "test.example/log");
    if (!signer.ok()) return signer.status();
    return Checkpointer::Start(manager_.get(), *std::move(signer),
                               absl::Milliseconds(10));
  }

  void Submit() {
    v1::SubmitCaseRequest r;
    r.set_request_id("r-" + std::to_string(++n_));
    *r.mutable_application() = ValidApplication();
    absl::Notification done;
    manager_->Submit(Exporter(), r, [&](absl::StatusOr<v1::Case> c) {
      EXPECT_THAT(c, IsOk());
      done.Notify();
    });
    done.WaitForNotification();
  }

  TempDir dir_;
  std::string pem_;
  std::unique_ptr<CaseManager> manager_;
  int n_ = 0;
};

TEST_F(CheckpointerTest, SignsTheHeadAfterCommits) {
  absl::StatusOr<std::unique_ptr<Checkpointer>> cp = Start();
  ASSERT_THAT(cp, IsOk());
  EXPECT_EQ((*cp)->Latest().tree_size(), 0u);
  for (int i = 0; i < 3; ++i) Submit();
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while ((*cp)->Latest().tree_size() < 3 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  const v1::SignedCheckpoint latest = (*cp)->Latest();
  ASSERT_EQ(latest.tree_size(), 3u);
  EXPECT_EQ(latest.root_hash(), manager_->GetLogHead(v1::Actor()).root_hash());
  absl::StatusOr<std::unique_ptr<core::NoteVerifier>> v =
      core::NoteVerifier::Create((*cp)->verifier_key());
  ASSERT_THAT(v, IsOk());
  absl::StatusOr<std::string> body = (*v)->Open(latest.note());
  ASSERT_THAT(body, IsOk());
  absl::StatusOr<core::Checkpoint> parsed = core::ParseCheckpointBody(*body);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->size, 3u);
  EXPECT_EQ(parsed->origin, "test.example/log");
}

TEST_F(CheckpointerTest, RestartOnTheSameLogSignsOn) {
  Submit();
  { ASSERT_THAT(Start(), IsOk()); }
  OpenManager();
  Submit();
  EXPECT_THAT(Start(), IsOk());
}

TEST_F(CheckpointerTest, RefusesALogShorterThanTheLastCheckpoint) {
  Submit();
  v1::SignedCheckpoint future;
  future.set_tree_size(5);
  future.set_root_hash(std::string(32, 'x'));
  ASSERT_THAT(manager_->SaveCheckpoint(future.SerializeAsString()), IsOk());
  absl::StatusOr<std::unique_ptr<Checkpointer>> cp = Start();
  EXPECT_THAT(cp, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(cp.status().message()), ::testing::HasSubstr("old backup"));
}

TEST_F(CheckpointerTest, RefusesALogWhosePrefixDiffersFromTheLastCheckpoint) {
  Submit();
  Submit();
  v1::SignedCheckpoint other;
  other.set_tree_size(1);
  other.set_root_hash(std::string(32, 'y'));  // not the root of event 1
  ASSERT_THAT(manager_->SaveCheckpoint(other.SerializeAsString()), IsOk());
  absl::StatusOr<std::unique_ptr<Checkpointer>> cp = Start();
  EXPECT_THAT(cp, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(cp.status().message()), ::testing::HasSubstr("rewritten"));
}

}  // namespace
}  // namespace permit::server
