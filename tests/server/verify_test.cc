// Tests server/verify.cc (`permitd verify --data DIR`) on real databases:
// a log written by an in-process permitd driven through the SDK verifies and
// is reported (events, cases, root); then, each on its own copy of the
// folder, the database is tampered with through RocksDB's own API (every
// column family open) and VerifyDatabase must answer DATA_LOSS naming what
// was changed: a byte flipped in an event in the middle of the log (which
// the head check on open does not see), an event deleted, two events
// swapped, a case snapshot altered or removed while the log is intact, and
// a stored Merkle tree node altered. Verification also runs read-only while
// a permitd has the folder open, and the server keeps working.
#include "server/verify.h"

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/merkle.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "permit/client.h"
#include "permit/v1/resources.pb.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "server/server.h"
#include "storage/rocksdb_event_store.h"
#include "tests/server/test_principals.h"
#include "tests/test_util.h"

namespace permit::server {
namespace {

using ::permit::storage::RocksDbEventStore;
using ::permit::testing::IsOk;
using ::permit::testing::StatusIs;
using ::permit::testing::TempDir;
using ::permit::testing::ValidApplication;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// The 9-byte key of a Merkle tree node in the "tree" family (level byte,
// then the index big-endian), as docs/storage.md lays it out.
std::string NodeKey(int level, uint64_t index) {
  std::string key(1, static_cast<char>(level));
  key += RocksDbEventStore::EventKey(index);  // 8 bytes big-endian
  return key;
}

// Opens the (closed) database in `path` with RocksDB itself, every column
// family open, runs `edit` with the DB and a family lookup, closes it.
void EditRawDatabase(
    const std::string& path,
    const std::function<void(
        rocksdb::DB*,
        const std::function<rocksdb::ColumnFamilyHandle*(absl::string_view)>&)>&
        edit) {
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : RocksDbEventStore::ColumnFamilyNames()) {
    descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  rocksdb::DB* raw = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(), path, descriptors,
                                        &handles, &raw);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::unique_ptr<rocksdb::DB> db(raw);
  auto family = [&](absl::string_view name) -> rocksdb::ColumnFamilyHandle* {
    const std::vector<std::string>& names =
        RocksDbEventStore::ColumnFamilyNames();
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == name) return handles[i];
    }
    ADD_FAILURE() << "no column family " << name;
    return nullptr;
  };
  edit(db.get(), family);
  for (rocksdb::ColumnFamilyHandle* h : handles) {
    s = db->DestroyColumnFamilyHandle(h);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  s = db->Close();
  EXPECT_TRUE(s.ok()) << s.ToString();
}

using Family = std::function<rocksdb::ColumnFamilyHandle*(absl::string_view)>;

std::string Get(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                const std::string& key) {
  std::string value;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), cf, key, &value);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return value;
}

void Put(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
         const std::string& key, const std::string& value) {
  rocksdb::Status s = db->Put(rocksdb::WriteOptions(), cf, key, value);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

void Delete(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
            const std::string& key) {
  rocksdb::Status s = db->Delete(rocksdb::WriteOptions(), cf, key);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

// A stored Merkle tree node. With ten events the stored perfect nodes are
// the ten leaves (level 0), five at level 1, two at level 2 and one at
// level 3 (events 1..8).
struct Node {
  int level;
  uint64_t index;
};

// A database written by a real permitd: SetUp starts one in-process, drives
// three cases through the SDK (ten events, interleaved), and shuts it down.
//
//   1 submit A (acme)     6 reject B by rev-1
//   2 submit B (globex)   7 submit C (acme)
//   3 review A by rev-1   8 suspend A by rev-1
//   4 review B by rev-2   9 withdraw C
//   5 approve A by rev-2 10 resume A by rev-2
class VerifyDatabaseTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kEvents = 10;

  void SetUp() override {
    absl::StatusOr<PrincipalRegistry> registry = testing::TestPrincipals();
    ASSERT_THAT(registry, IsOk());
    registry_ = *std::move(registry);

    ASSERT_NO_FATAL_FAILURE(StartServer());
    ASSERT_NO_FATAL_FAILURE(DriveCases());
    absl::StatusOr<v1::LogHead> head = as("aud-1").GetLogHead();
    ASSERT_THAT(head, IsOk());
    ASSERT_EQ(head->tree_size(), kEvents);
    root_hex_ = core::ToHex(*core::HashFromBytes(head->root_hash()));
    v1::ReadLogRequest all;
    all.set_include_event_bytes(true);
    ASSERT_THAT(as("aud-1").ReadLog(all,
                                    [&](const v1::LogEntry& e) {
                                      event_bytes_[e.event().sequence()] =
                                          e.event_bytes();
                                      return true;
                                    }),
                IsOk());
    ASSERT_EQ(event_bytes_.size(), kEvents);
    StopServer();
  }

  void TearDown() override { StopServer(); }

  std::string db_path() const { return dir_.path() + "/db"; }

  void StartServer() {
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.db_path = db_path();
    options.principals = registry_;
    options.shutdown_grace = absl::Seconds(1);
    absl::StatusOr<std::unique_ptr<PermitServer>> server =
        PermitServer::Start(std::move(options));
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    for (const auto& [id, role, org] : testing::TestPrincipalList()) {
      ClientOptions c;
      c.insecure = true;  // the test server is plaintext on loopback
      c.address = "127.0.0.1:" + std::to_string(server_->port());
      c.token = std::string("token-") + id;
      c.deadline = absl::Seconds(5);
      c.max_attempts = 1;
      absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(c);
      ASSERT_THAT(client, IsOk());
      clients_[id] = *std::move(client);
    }
  }

  void StopServer() {
    clients_.clear();
    if (server_ != nullptr) server_->Shutdown();
    server_.reset();
  }

  Client& as(const std::string& who) { return *clients_.at(who); }

  template <typename Request>
  static Request On(const v1::Case& c) {
    Request r;
    r.set_case_id(c.id());
    r.set_expected_version(c.version());
    return r;
  }

  absl::StatusOr<v1::Case> Submit(const std::string& who) {
    v1::SubmitCaseRequest r;
    *r.mutable_application() = ValidApplication();
    return as(who).SubmitCase(r);
  }

  absl::StatusOr<v1::Case> Review(const v1::Case& c, const std::string& who) {
    auto r = On<v1::ReviewCaseRequest>(c);
    r.set_recommendation(v1::RECOMMENDATION_APPROVE);
    r.set_findings("End user and end use check out.");
    return as(who).ReviewCase(r);
  }

  void DriveCases() {
    absl::StatusOr<v1::Case> a = Submit("exp-acme");  // 1
    ASSERT_THAT(a, IsOk());
    absl::StatusOr<v1::Case> b = Submit("exp-globex");  // 2
    ASSERT_THAT(b, IsOk());
    a = Review(*a, "rev-1");  // 3
    ASSERT_THAT(a, IsOk());
    b = Review(*b, "rev-2");  // 4
    ASSERT_THAT(b, IsOk());
    auto approve = On<v1::ApproveCaseRequest>(*a);
    approve.mutable_valid_until()->set_seconds(
        absl::ToUnixSeconds(absl::Now() + absl::Hours(24 * 365)));
    approve.set_conditions("No re-export without authorisation.");
    a = as("rev-2").ApproveCase(approve);  // 5
    ASSERT_THAT(a, IsOk());
    auto reject = On<v1::RejectCaseRequest>(*b);
    reject.set_reason("End user on a list");
    b = as("rev-1").RejectCase(reject);  // 6
    ASSERT_THAT(b, IsOk());
    absl::StatusOr<v1::Case> c = Submit("exp-acme");  // 7
    ASSERT_THAT(c, IsOk());
    auto suspend = On<v1::SuspendCaseRequest>(*a);
    suspend.set_reason("Policy change");
    a = as("rev-1").SuspendCase(suspend);  // 8
    ASSERT_THAT(a, IsOk());
    c = as("exp-acme").WithdrawCase(On<v1::WithdrawCaseRequest>(*c));  // 9
    ASSERT_THAT(c, IsOk());
    auto resume = On<v1::ResumeCaseRequest>(*a);
    resume.set_reason("Clarified");
    a = as("rev-2").ResumeCase(resume);  // 10
    ASSERT_THAT(a, IsOk());
    case_a_ = a->id();
    case_b_ = b->id();
    case_c_ = c->id();
  }

  // A fresh copy of the database folder (the server is stopped).
  std::string CopyDatabase() {
    copies_.push_back(std::make_unique<TempDir>());
    const std::string to = copies_.back()->path() + "/db";
    std::error_code ec;
    std::filesystem::copy(db_path(), to,
                          std::filesystem::copy_options::recursive, ec);
    EXPECT_FALSE(ec) << ec.message();
    return to;
  }

  // Alters each node in its own copy of the database and expects
  // VerifyDatabase to report the tree damaged.
  void AlterTreeNodes(const std::vector<Node>& nodes) {
    for (const Node& node : nodes) {
      SCOPED_TRACE(absl::StrCat("level ", node.level, ", index ", node.index));
      const std::string path = CopyDatabase();
      EditRawDatabase(path, [&](rocksdb::DB* db, const Family& family) {
        std::string hash =
            Get(db, family("tree"), NodeKey(node.level, node.index));
        ASSERT_EQ(hash.size(), 32u);
        hash[7] ^= 0x20;
        Put(db, family("tree"), NodeKey(node.level, node.index), hash);
      });
      absl::StatusOr<VerifyReport> report = VerifyDatabase(path);
      EXPECT_THAT(report, StatusIs(absl::StatusCode::kDataLoss));
      EXPECT_THAT(std::string(report.status().message()), HasSubstr("tree"));
    }
  }

  TempDir dir_;
  PrincipalRegistry registry_;
  std::unique_ptr<PermitServer> server_;
  std::map<std::string, std::unique_ptr<Client>> clients_;
  std::string root_hex_;
  std::map<uint64_t, std::string> event_bytes_;
  std::string case_a_, case_b_, case_c_;
  std::vector<std::unique_ptr<TempDir>> copies_;
};

TEST_F(VerifyDatabaseTest, RealLogVerifiesAndIsReported) {
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  absl::StatusOr<VerifyReport> report =
      VerifyDatabase(db_path(), [&](uint64_t done, uint64_t total) {
        progress.emplace_back(done, total);
      });
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report->events, kEvents);
  EXPECT_EQ(report->cases, 3u);
  EXPECT_EQ(report->root_hex, root_hex_);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), std::make_pair(kEvents, kEvents));
  // A plain copy of the folder (as after a restore) verifies the same.
  absl::StatusOr<VerifyReport> copy = VerifyDatabase(CopyDatabase());
  ASSERT_THAT(copy, IsOk());
  EXPECT_EQ(copy->root_hex, root_hex_);
}

TEST_F(VerifyDatabaseTest, MissingFolderIsAnError) {
  // Read-only open creates nothing: a mistyped path must not pass as an
  // empty log.
  TempDir empty;
  EXPECT_THAT(VerifyDatabase(empty.path() + "/db"), Not(IsOk()));
}

TEST_F(VerifyDatabaseTest, ByteFlippedInAnEventInTheMiddleIsNamed) {
  // Event 4 is B's review; its findings text is a string field, so a flip
  // there still parses and is still a legal step: only the hashes can tell.
  const std::string& original = event_bytes_.at(4);
  const size_t text = original.find("End user and end use");
  ASSERT_NE(text, std::string::npos);
  struct Flip {
    std::string name;
    size_t offset;
  };
  const std::vector<Flip> flips = {
      {"in the findings text", text + 4},
      {"in the middle of the bytes", original.size() / 2},
      {"in the first byte", 0},
      {"in the last byte", original.size() - 1},
  };
  for (const Flip& flip : flips) {
    SCOPED_TRACE(flip.name);
    const std::string path = CopyDatabase();
    EditRawDatabase(path, [&](rocksdb::DB* db, const Family& family) {
      std::string bytes =
          Get(db, family("events"), RocksDbEventStore::EventKey(4));
      ASSERT_EQ(bytes, original);
      bytes[flip.offset] ^= 0x01;
      Put(db, family("events"), RocksDbEventStore::EventKey(4), bytes);
    });
    absl::StatusOr<VerifyReport> report = VerifyDatabase(path);
    EXPECT_THAT(report, StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_THAT(std::string(report.status().message()), HasSubstr("event 4"));
  }
}

TEST_F(VerifyDatabaseTest, EventDeletedFromTheMiddleIsNamedMissing) {
  const std::string path = CopyDatabase();
  EditRawDatabase(path, [&](rocksdb::DB* db, const Family& family) {
    Delete(db, family("events"), RocksDbEventStore::EventKey(5));
  });
  absl::StatusOr<VerifyReport> report = VerifyDatabase(path);
  EXPECT_THAT(report, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(std::string(report.status().message()),
              AllOf(HasSubstr("event 5"), HasSubstr("missing")));
}

TEST_F(VerifyDatabaseTest, SwappedEventsNameTheFirstWrongSequence) {
  const std::string path = CopyDatabase();
  EditRawDatabase(path, [&](rocksdb::DB* db, const Family& family) {
    Put(db, family("events"), RocksDbEventStore::EventKey(3),
        event_bytes_.at(6));
    Put(db, family("events"), RocksDbEventStore::EventKey(6),
        event_bytes_.at(3));
  });
  absl::StatusOr<VerifyReport> report = VerifyDatabase(path);
  EXPECT_THAT(report, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(std::string(report.status().message()),
              AllOf(HasSubstr("event 3"), Not(HasSubstr("event 6"))));
}

TEST_F(VerifyDatabaseTest, AlteredCaseSnapshotIsNamedWhileTheLogIsIntact) {
  struct Alteration {
    std::string name;
    std::function<void(v1::Case*)> change;
  };
  const std::vector<Alteration> alterations = {
      {"findings", [](v1::Case* c) { c->set_findings("Nothing checked."); }},
      {"state", [](v1::Case* c) { c->set_state(v1::CASE_STATE_APPROVED); }},
      {"decided_by", [](v1::Case* c) { c->set_decided_by("rev-2"); }},
      {"quantity",
       [](v1::Case* c) {
         c->mutable_application()
             ->mutable_goods(0)
             ->mutable_quantity()
             ->set_value(12);
       }},
  };
  for (const Alteration& alteration : alterations) {
    SCOPED_TRACE(alteration.name);
    const std::string path = CopyDatabase();
    EditRawDatabase(path, [&](rocksdb::DB* db, const Family& family) {
      v1::Case c;
      ASSERT_TRUE(c.ParseFromString(Get(db, family("cases"), case_b_)));
      alteration.change(&c);
      Put(db, family("cases"), case_b_, c.SerializeAsString());
    });
    absl::StatusOr<VerifyReport> report = VerifyDatabase(path);
    EXPECT_THAT(report, StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_THAT(std::string(report.status().message()),
                AllOf(HasSubstr(case_b_), Not(HasSubstr("event "))));
  }
}

TEST_F(VerifyDatabaseTest, RemovedCaseSnapshotIsNamed) {
  const std::string path = CopyDatabase();
  EditRawDatabase(path, [&](rocksdb::DB* db, const Family& family) {
    Delete(db, family("cases"), case_c_);
  });
  absl::StatusOr<VerifyReport> report = VerifyDatabase(path);
  EXPECT_THAT(report, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(std::string(report.status().message()), HasSubstr(case_c_));
}

TEST_F(VerifyDatabaseTest, AlteredTreeNodeOfTheRootIsCaught) {
  AlterTreeNodes({
      {3, 0},  // events 1..8: part of the root of all ten events
      {1, 4},  // events 9..10: the other part
  });
}

TEST_F(VerifyDatabaseTest, AlteredTreeNodeUsedOnlyByProofsIsCaught) {
  // These nodes are not on the root's path, but inclusion and consistency
  // proofs are served from them: an auditor would be handed proofs that do
  // not verify, so verification must check them too.
  AlterTreeNodes({
      {0, 4},  // event 5's leaf hash
      {1, 1},  // events 3..4
      {2, 1},  // events 5..8
  });
}

TEST_F(VerifyDatabaseTest, MissingTreeNodeIsCaught) {
  const std::string path = CopyDatabase();
  EditRawDatabase(path, [&](rocksdb::DB* db, const Family& family) {
    Delete(db, family("tree"), NodeKey(0, 6));
  });
  absl::StatusOr<VerifyReport> report = VerifyDatabase(path);
  EXPECT_THAT(report, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(std::string(report.status().message()), HasSubstr("tree"));
}

TEST_F(VerifyDatabaseTest, VerifiesReadOnlyWhileAServerHasTheFolderOpen) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  absl::StatusOr<VerifyReport> report = VerifyDatabase(db_path());
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report->events, kEvents);
  EXPECT_EQ(report->root_hex, root_hex_);

  // The server is unharmed: it still takes actions and serves reads.
  absl::StatusOr<v1::Case> d = Submit("exp-globex");
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->last_sequence(), kEvents + 1);
  EXPECT_THAT(as("aud-1").GetCase(case_a_), IsOk());

  // A second verification sees the new event.
  report = VerifyDatabase(db_path());
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report->events, kEvents + 1);
  EXPECT_EQ(report->cases, 4u);
  absl::StatusOr<v1::LogHead> head = as("aud-1").GetLogHead();
  ASSERT_THAT(head, IsOk());
  EXPECT_EQ(report->root_hex,
            core::ToHex(*core::HashFromBytes(head->root_hash())));
  EXPECT_THAT(Review(*d, "rev-1"), IsOk());
}

}  // namespace
}  // namespace permit::server
