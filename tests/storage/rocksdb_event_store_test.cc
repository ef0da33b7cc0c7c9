// Tests storage/rocksdb_event_store.cc through the EventStore interface:
// events read back as the exact bytes appended, the head (size, RFC 6962
// root, case count) and every derived record (snapshots, case history,
// listing indexes, idempotency records) survive a reopen, out-of-sequence
// appends write nothing, Open refuses a database whose head does not match
// its events (damaged here with RocksDB's own API) or a folder already
// open, and concurrent writers leave no gap in the log. Through a
// fault-injecting RocksDB file system: every append syncs the WAL before it
// returns, a failed write is UNAVAILABLE and stops all later appends until
// a reopen, and a reopen after a failed write finds a consistent log.
#include "storage/rocksdb_event_store.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "core/merkle.h"
#include "core/rules.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "permit/v1/resources.pb.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/io_status.h"
#include "rocksdb/options.h"
#include "storage/event_store.h"
#include "storage/records.pb.h"
#include "tests/test_util.h"

namespace permit::testing {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::permit::storage::BackupInfo;
using ::permit::storage::CaseFilter;
using ::permit::storage::LogState;
using ::permit::storage::PendingEvent;
using ::permit::storage::RequestRecord;
using ::permit::storage::RocksDbEventStore;
using ::testing::ElementsAre;
using ::testing::AnyOf;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// 2026-01-01T00:00:00Z; event n happens n seconds later.
constexpr int64_t kEpochSeconds = 1767225600;

std::string CaseId(uint64_t number) {
  return absl::StrFormat("PRM-2026-%06d", number);
}

google::protobuf::Timestamp EventTime(uint64_t sequence) {
  google::protobuf::Timestamp t;
  t.set_seconds(kEpochSeconds + static_cast<int64_t>(sequence));
  return t;
}

RequestRecord RecordFor(const v1::Event& e) {
  RequestRecord r;
  r.set_fingerprint(std::string(core::AsBytes(
      core::Sha256(absl::StrCat("fingerprint of ", e.request_id())))));
  r.set_case_id(e.case_id());
  r.set_case_version(e.case_version());
  r.set_sequence(e.sequence());
  return r;
}

// Event `sequence` files case `case_number` for `organisation`, bound for
// `destination`.
PendingEvent Submit(uint64_t sequence, uint64_t case_number,
                    const std::string& organisation = "acme",
                    const std::string& destination = "JP") {
  const v1::Actor actor =
      Exporter(absl::StrCat("exp-", organisation), organisation);
  PendingEvent p;
  v1::Event& e = p.event;
  e.set_sequence(sequence);
  e.set_case_id(CaseId(case_number));
  e.set_case_version(1);
  e.set_organisation(organisation);
  e.set_action(v1::ACTION_SUBMIT);
  *e.mutable_actor() = actor;
  *e.mutable_time() = EventTime(sequence);
  e.set_request_id(absl::StrCat("req-", sequence));
  e.set_from_state(v1::CASE_STATE_UNSPECIFIED);
  e.set_to_state(v1::CASE_STATE_SUBMITTED);
  v1::Application app = ValidApplication();
  app.set_destination_country(destination);
  app.mutable_end_user()->set_country(destination);
  *e.mutable_submit()->mutable_application() = std::move(app);

  absl::Status applied = core::ApplyEvent(e, &p.snapshot);
  EXPECT_TRUE(applied.ok()) << applied;
  p.previous_state = v1::CASE_STATE_UNSPECIFIED;
  p.principal_id = actor.principal_id();
  p.request = RecordFor(e);
  return p;
}

// Event `sequence`: a reviewer reviews `before`, a SUBMITTED case.
PendingEvent Review(uint64_t sequence, const v1::Case& before) {
  const v1::Actor actor = Reviewer("rev-1");
  PendingEvent p;
  v1::Event& e = p.event;
  e.set_sequence(sequence);
  e.set_case_id(before.id());
  e.set_case_version(before.version() + 1);
  e.set_organisation(before.organisation());
  e.set_action(v1::ACTION_REVIEW);
  *e.mutable_actor() = actor;
  *e.mutable_time() = EventTime(sequence);
  e.set_request_id(absl::StrCat("req-", sequence));
  e.set_from_state(before.state());
  e.set_to_state(v1::CASE_STATE_REVIEWED);
  e.mutable_review()->set_recommendation(v1::RECOMMENDATION_APPROVE);
  e.mutable_review()->set_findings("End user and end use check out.");

  p.snapshot = before;
  absl::Status applied = core::ApplyEvent(e, &p.snapshot);
  EXPECT_TRUE(applied.ok()) << applied;
  p.previous_state = before.state();
  p.principal_id = actor.principal_id();
  p.request = RecordFor(e);
  return p;
}

std::string Bytes(const PendingEvent& p) { return p.event.SerializeAsString(); }

// RFC 6962 root over the leaf hashes of `events`, straight from the
// recursive definition.
core::Hash BruteForceRoot(const std::vector<std::string>& events) {
  std::vector<core::Hash> leaves;
  leaves.reserve(events.size());
  for (const std::string& e : events) leaves.push_back(core::LeafHash(e));
  return core::RootFromLeafHashes(leaves);
}

MATCHER_P(EqualsProto, expected, "equals " + expected.ShortDebugString()) {
  return MessageDifferencer::Equals(arg, expected);
}

// Matches an OK absl::StatusOr whose value matches `inner`.
MATCHER_P(
    IsOkAndHolds, inner,
    "is OK and holds a value that " +
        ::testing::DescribeMatcher<typename std::decay_t<arg_type>::value_type>(
            inner, negation)) {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(inner, *arg, result_listener);
}

CaseFilter Filter(v1::CaseState state, const std::string& organisation,
                  const std::string& destination_country) {
  CaseFilter f;
  f.state = state;
  f.organisation = organisation;
  f.destination_country = destination_country;
  return f;
}
CaseFilter ByState(v1::CaseState state) { return Filter(state, "", ""); }
CaseFilter ByOrganisation(const std::string& organisation) {
  return Filter(v1::CASE_STATE_UNSPECIFIED, organisation, "");
}
CaseFilter ByCountry(const std::string& country) {
  return Filter(v1::CASE_STATE_UNSPECIFIED, "", country);
}

std::vector<std::string> Ids(const std::vector<v1::Case>& cases) {
  std::vector<std::string> ids;
  for (const v1::Case& c : cases) ids.push_back(c.id());
  return ids;
}

// --- Fault injection --------------------------------------------------------

// Shared between a test and the files of its FaultInjectingFs.
struct FaultState {
  // While set, Append, Sync and Fsync of every writable file fail.
  std::atomic<bool> fail{false};
  // While set, only Sync and Fsync fail: the data reaches the OS.
  std::atomic<bool> fail_syncs{false};
  // Sync and Fsync calls on write-ahead log files ("*.log").
  std::atomic<int> wal_syncs{0};
};

rocksdb::IOStatus Injected() { return rocksdb::IOStatus::IOError("injected"); }

// A writable file that counts WAL syncs and fails on demand.
class FaultInjectingFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultInjectingFile(std::unique_ptr<rocksdb::FSWritableFile> file, bool is_wal,
                     std::shared_ptr<FaultState> state)
      : FSWritableFileOwnerWrapper(std::move(file)),
        is_wal_(is_wal),
        state_(std::move(state)) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    if (state_->fail.load()) return Injected();
    return FSWritableFileOwnerWrapper::Append(data, options, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    if (state_->fail.load()) return Injected();
    return FSWritableFileOwnerWrapper::Append(data, options, info, dbg);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                         rocksdb::IODebugContext* dbg) override {
    if (is_wal_) state_->wal_syncs.fetch_add(1);
    if (state_->fail.load() || state_->fail_syncs.load()) return Injected();
    return FSWritableFileOwnerWrapper::Sync(options, dbg);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    if (is_wal_) state_->wal_syncs.fetch_add(1);
    if (state_->fail.load() || state_->fail_syncs.load()) return Injected();
    return FSWritableFileOwnerWrapper::Fsync(options, dbg);
  }

 private:
  const bool is_wal_;
  const std::shared_ptr<FaultState> state_;
};

// The default file system, with every new writable file a FaultInjectingFile.
class FaultInjectingFs final : public rocksdb::FileSystemWrapper {
 public:
  explicit FaultInjectingFs(std::shared_ptr<FaultState> state)
      : FileSystemWrapper(rocksdb::FileSystem::Default()),
        state_(std::move(state)) {}

  const char* Name() const override { return "FaultInjectingFs"; }

  rocksdb::IOStatus NewWritableFile(const std::string& name,
                                    const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = target()->NewWritableFile(name, options, &file, dbg);
    if (!s.ok()) return s;
    *result = std::make_unique<FaultInjectingFile>(
        std::move(file), absl::EndsWith(name, ".log"), state_);
    return s;
  }

 private:
  const std::shared_ptr<FaultState> state_;
};

// An Env on a FaultInjectingFs driven by `state`.
std::unique_ptr<rocksdb::Env> FaultInjectingEnv(
    std::shared_ptr<FaultState> state) {
  return rocksdb::NewCompositeEnv(
      std::make_shared<FaultInjectingFs>(std::move(state)));
}

class RocksDbEventStoreTest : public ::testing::Test {
 protected:
  // Opens the store in `path` (default: the test's folder) on `env`
  // (default: the real file system).
  std::unique_ptr<RocksDbEventStore> OpenStore(rocksdb::Env* env = nullptr,
                                               std::string path = "") {
    RocksDbEventStore::Options options;
    options.env = env;
    absl::StatusOr<std::unique_ptr<RocksDbEventStore>> store =
        RocksDbEventStore::Open(path.empty() ? dir_.path() : path, options);
    EXPECT_THAT(store, IsOk());
    return store.ok() ? *std::move(store) : nullptr;
  }

  // Every stored event's bytes, 1..tree_size.
  static std::vector<std::string> ReadAll(const RocksDbEventStore& store) {
    std::vector<std::string> out;
    uint64_t expected = 1;
    absl::Status s = store.ReadEvents(
        1, UINT64_MAX, [&](uint64_t seq, absl::string_view bytes) {
          EXPECT_EQ(seq, expected++);
          out.emplace_back(bytes);
          return true;
        });
    EXPECT_THAT(s, IsOk());
    return out;
  }

  // Appends submits of cases 1..n, one event per batch.
  static void SubmitCases(RocksDbEventStore& store, int n) {
    for (int i = 1; i <= n; ++i) {
      ASSERT_THAT(store.Append({Submit(i, i)}, 1), IsOk());
    }
  }

  // Opens the (closed) store folder with RocksDB itself, with every column
  // family, runs `edit` with the DB and the handle of each family by name
  // order (RocksDbEventStore::ColumnFamilyNames()), and closes it again.
  void EditRawDatabase(
      const std::function<
          void(rocksdb::DB*, const std::vector<rocksdb::ColumnFamilyHandle*>&)>&
          edit) {
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const std::string& name : RocksDbEventStore::ColumnFamilyNames()) {
      descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
    rocksdb::DB* raw = nullptr;
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(), dir_.path(),
                                          descriptors, &handles, &raw);
    ASSERT_TRUE(s.ok()) << s.ToString();
    std::unique_ptr<rocksdb::DB> db(raw);
    edit(db.get(), handles);
    for (rocksdb::ColumnFamilyHandle* h : handles) {
      s = db->DestroyColumnFamilyHandle(h);
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
    s = db->Close();
    EXPECT_TRUE(s.ok()) << s.ToString();
  }

  static rocksdb::ColumnFamilyHandle* Family(
      const std::vector<rocksdb::ColumnFamilyHandle*>& handles,
      absl::string_view name) {
    const std::vector<std::string>& names =
        RocksDbEventStore::ColumnFamilyNames();
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == name) return handles[i];
    }
    ADD_FAILURE() << "no column family " << name;
    return nullptr;
  }

  TempDir dir_;
};

// --- Append and read back ---------------------------------------------------

TEST_F(RocksDbEventStoreTest, EmptyStoreHasEmptyHead) {
  std::unique_ptr<RocksDbEventStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  LogState state = store->State();
  EXPECT_EQ(state.tree_size, 0u);
  EXPECT_EQ(state.root, core::EmptyRoot());
  EXPECT_EQ(state.case_count, 0u);
  EXPECT_FALSE(state.last_event_time.has_value());
  EXPECT_THAT(ReadAll(*store), IsEmpty());
}

TEST_F(RocksDbEventStoreTest, ReadEventsReturnsTheAppendedBytesInOrder) {
  std::unique_ptr<RocksDbEventStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  std::vector<PendingEvent> batch = {Submit(1, 1), Submit(2, 2), Submit(3, 3)};
  ASSERT_THAT(store->Append(batch, 3), IsOk());
  PendingEvent review = Review(4, batch[1].snapshot);
  ASSERT_THAT(store->Append({review}, 0), IsOk());

  EXPECT_THAT(ReadAll(*store), ElementsAre(Bytes(batch[0]), Bytes(batch[1]),
                                           Bytes(batch[2]), Bytes(review)));
}

TEST_F(RocksDbEventStoreTest, StateRootIsTheTreeHashOfTheStoredBytes) {
  std::unique_ptr<RocksDbEventStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  for (uint64_t i = 1; i <= 7; ++i) {
    ASSERT_THAT(store->Append({Submit(i, i)}, 1), IsOk());
    LogState state = store->State();
    EXPECT_EQ(state.tree_size, i);
    EXPECT_EQ(state.root, BruteForceRoot(ReadAll(*store)))
        << "after " << i << " events";
    ASSERT_TRUE(state.last_event_time.has_value());
    EXPECT_THAT(*state.last_event_time, EqualsProto(EventTime(i)));
  }
}

TEST_F(RocksDbEventStoreTest, OpenRebuildsAMissingMerkleTreeFromTheEvents) {
  {
    std::unique_ptr<RocksDbEventStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    for (uint64_t i = 1; i <= 11; ++i) ASSERT_THAT(store->Append({Submit(i, i)}, 1), IsOk());
  }
  // A log written before the "tree" family existed has no nodes.
  EditRawDatabase([](rocksdb::DB* db, const std::vector<rocksdb::ColumnFamilyHandle*>& h) {
    rocksdb::ColumnFamilyHandle* tree = Family(h, "tree");
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), tree));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), tree, it->key()).ok());
    }
  });
  std::unique_ptr<RocksDbEventStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  const std::vector<std::string> events = ReadAll(*store);
  for (uint64_t i = 0; i < events.size(); ++i) {
    absl::StatusOr<core::Hash> leaf = store->TreeNode(0, i);
    ASSERT_THAT(leaf, IsOk());
    EXPECT_EQ(*leaf, core::LeafHash(events[i]));
  }
  absl::StatusOr<core::Hash> root = core::RangeHash(
      0, events.size(), [&](int level, uint64_t index) { return store->TreeNode(level, index); });
  ASSERT_THAT(root, IsOk());
  EXPECT_EQ(*root, store->State().root);
}

TEST_F(RocksDbEventStoreTest, ReadOnlyOpenOfAnOlderLayoutSaysWhatToDo) {
  {
    // A database from before the "tree" family existed.
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const std::string& name : RocksDbEventStore::ColumnFamilyNames()) {
      if (name != "tree") descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
    rocksdb::DB* raw = nullptr;
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_.path(), descriptors, &handles, &raw).ok());
    for (rocksdb::ColumnFamilyHandle* h : handles) raw->DestroyColumnFamilyHandle(h);
    delete raw;
  }
  RocksDbEventStore::Options options;
  options.read_only = true;
  absl::StatusOr<std::unique_ptr<RocksDbEventStore>> store =
      RocksDbEventStore::Open(dir_.path(), options);
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("\"tree\""));
  // A read-write open adds it.
  EXPECT_THAT(RocksDbEventStore::Open(dir_.path()), IsOk());
}

TEST_F(RocksDbEventStoreTest, SavedCheckpointSurvivesReopen) {
  {
    std::unique_ptr<RocksDbEventStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    absl::StatusOr<std::optional<std::string>> none = store->LoadCheckpoint();
    ASSERT_THAT(none, IsOk());
    EXPECT_FALSE(none->has_value());
    ASSERT_THAT(store->SaveCheckpoint("signed note bytes"), IsOk());
  }
  std::unique_ptr<RocksDbEventStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  absl::StatusOr<std::optional<std::string>> saved = store->LoadCheckpoint();
  ASSERT_THAT(saved, IsOk());
  ASSERT_TRUE(saved->has_value());
  EXPECT_EQ(**saved, "signed note bytes");
}

TEST_F(RocksDbEventStoreTest, CaseCountGrowsByNewCases) {
  std::unique_ptr<RocksDbEventStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  std::vector<PendingEvent> batch = {Submit(1, 1), Submit(2, 2)};
  ASSERT_THAT(store->Append(batch, 2), IsOk());
  EXPECT_EQ(store->State().case_count, 2u);
  ASSERT_THAT(store->Append({Review(3, batch[0].snapshot)}, 0), IsOk());
  EXPECT_EQ(store->State().case_count, 2u);
  ASSERT_THAT(store->Append({Submit(4, 3)}, 1), IsOk());
  EXPECT_EQ(store->State().case_count, 3u);
}

TEST_F(RocksDbEventStoreTest, EmptyBatchChangesNothing) {
  std::unique_ptr<RocksDbEventStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_THAT(store->Append({Submit(1, 1)}, 1), IsOk());
  ASSERT_THAT(store->Append({}, 0), IsOk());
  EXPECT_EQ(store->State().tree_size, 1u);
  EXPECT_EQ(store->State().case_count, 1u);
}

TEST_F(RocksDbEventStoreTest, GetCaseReturnsTheLatestSnapshot) {
  std::unique_ptr<RocksDbEventStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  PendingEvent submit = Submit(1, 1);
  ASSERT_THAT(store->Append({submit}, 1), IsOk());
  absl::StatusOr<v1::Case> c = store->GetCase(CaseId(1));
  ASSERT_THAT(c, IsOk());
  EXPECT_THAT(*c, EqualsProto(submit.snapshot));

  PendingEvent review = Review(2, submit.snapshot);
  ASSERT_THAT(store->Append({review}, 0), IsOk());
  c = store->GetCase(CaseId(1));
  ASSERT_THAT(c, IsOk());
  EXPECT_THAT(*c, EqualsProto(review.snapshot));
  EXPECT_EQ(c->state(), v1::CASE_STATE_REVIEWED);
  EXPECT_EQ(c->version(), 2);
}

TEST_F(RocksDbEventStoreTest, GetCaseOfAnUnknownCaseIsNotFound) {
  std::unique_ptr<RocksDbEventStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_THAT(store->Append({Submit(1, 1)}, 1), IsOk());
  EXPECT_THAT(store->GetCase(CaseId(2)), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(RocksDbEventStoreTest, CaseEventSequencesListsACasesEventsByVersion) {
  std::unique_ptr<RocksDbEventStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  PendingEvent first = Submit(1, 1);
  PendingEvent second = Submit(2, 2);
  // Case 1 and case 10 share a prefix: neither's history may leak into the
  // other's.
  PendingEvent tenth = Submit(3, 10);
  ASSERT_THAT(store->Append({first, second, tenth}, 3), IsOk());
  ASSERT_THAT(store->Append({Review(4, first.snapshot)}, 0), IsOk());

  EXPECT_THAT(store->CaseEventSequences(CaseId(1)),
              IsOkAndHolds(ElementsAre(1u, 4u)));
  EXPECT_THAT(store->CaseEventSequences(CaseId(2)),
              IsOkAndHolds(ElementsAre(2u)));
  EXPECT_THAT(store->CaseEventSequences(CaseId(10)),
              IsOkAndHolds(ElementsAre(3u)));
  EXPECT_THAT(store->CaseEventSequences(CaseId(99)), IsOkAndHolds(IsEmpty()));
}

TEST_F(RocksDbEventStoreTest, GetRequestFindsTheIdempotencyRecord) {
  std::unique_ptr<RocksDbEventStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  PendingEvent submit = Submit(1, 1);
  ASSERT_THAT(store->Append({submit}, 1), IsOk());

  absl::StatusOr<std::optional<RequestRecord>> r =
      store->GetRequest(submit.principal_id, submit.event.request_id());
  ASSERT_THAT(r, IsOk());
  ASSERT_TRUE(r->has_value());
  EXPECT_THAT(**r, EqualsProto(submit.request));
}

TEST_F(RocksDbEventStoreTest, GetRequestOfAnUnknownRequestIsNullopt) {
  std::unique_ptr<RocksDbEventStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  PendingEvent submit = Submit(1, 1);
  ASSERT_THAT(store->Append({submit}, 1), IsOk());

  // Unknown request id; and a known request id of another principal.
  absl::StatusOr<std::optional<RequestRecord>> r =
      store->GetRequest(submit.principal_id, "req-unknown");
  ASSERT_THAT(r, IsOk());
  EXPECT_FALSE(r->has_value());
  r = store->GetRequest("exp-other", submit.event.request_id());
  ASSERT_THAT(r, IsOk());
  EXPECT_FALSE(r->has_value());
}

// --- Reopen -----------------------------------------------------------------

TEST_F(RocksDbEventStoreTest, StateCasesAndIdempotencySurviveReopen) {
  std::vector<PendingEvent> appended = {Submit(1, 1, "acme", "JP"),
                                        Submit(2, 2, "globex", "KR"),
                                        Submit(3, 3, "acme", "US")};
  LogState before;
  {
    std::unique_ptr<RocksDbEventStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_THAT(store->Append(appended, 3), IsOk());
    appended.push_back(Review(4, appended[0].snapshot));
    ASSERT_THAT(store->Append({appended.back()}, 0), IsOk());
    before = store->State();
  }

  std::unique_ptr<RocksDbEventStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  LogState after = store->State();
  EXPECT_EQ(after.tree_size, 4u);
  EXPECT_EQ(after.root, before.root);
  EXPECT_EQ(after.case_count, 3u);
  ASSERT_TRUE(after.last_event_time.has_value());
  EXPECT_THAT(*after.last_event_time, EqualsProto(EventTime(4)));

  std::vector<std::string> bytes;
  for (const PendingEvent& p : appended) bytes.push_back(Bytes(p));
  EXPECT_THAT(ReadAll(*store), ElementsAreArray(bytes));
  EXPECT_EQ(after.root, BruteForceRoot(bytes));

  EXPECT_THAT(store->GetCase(CaseId(1)),
              IsOkAndHolds(EqualsProto(appended[3].snapshot)));
  EXPECT_THAT(store->GetCase(CaseId(2)),
              IsOkAndHolds(EqualsProto(appended[1].snapshot)));
  EXPECT_THAT(store->CaseEventSequences(CaseId(1)),
              IsOkAndHolds(ElementsAre(1u, 4u)));
  EXPECT_THAT(store->ListCases(ByState(v1::CASE_STATE_REVIEWED), "", 10),
              IsOkAndHolds(ElementsAre(EqualsProto(appended[3].snapshot))));
  EXPECT_THAT(Ids(store->ListCases(ByOrganisation("acme"), "", 10).value()),
              ElementsAre(CaseId(1), CaseId(3)));

  // Idempotency across reopen: every request's record is still found.
  for (const PendingEvent& p : appended) {
    SCOPED_TRACE(p.event.request_id());
    absl::StatusOr<std::optional<RequestRecord>> r =
        store->GetRequest(p.principal_id, p.event.request_id());
    ASSERT_THAT(r, IsOk());
    ASSERT_TRUE(r->has_value());
    EXPECT_THAT(**r, EqualsProto(p.request));
  }

  // And the log grows on from where it was.
  PendingEvent next = Submit(5, 4);
  ASSERT_THAT(store->Append({next}, 1), IsOk());
  bytes.push_back(Bytes(next));
  EXPECT_EQ(store->State().root, BruteForceRoot(bytes));
  EXPECT_EQ(store->State().case_count, 4u);
}

// --- Sequence checks --------------------------------------------------------

TEST_F(RocksDbEventStoreTest, AppendWithASequenceGapIsRefusedAndWritesNothing) {
  std::unique_ptr<RocksDbEventStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  PendingEvent first = Submit(1, 1);
  ASSERT_THAT(store->Append({first}, 1), IsOk());
  const LogState before = store->State();

  absl::Status s = store->Append({Submit(3, 2)}, 1);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("sequence 3"));

  LogState after = store->State();
  EXPECT_EQ(after.tree_size, before.tree_size);
  EXPECT_EQ(after.root, before.root);
  EXPECT_EQ(after.case_count, before.case_count);
  EXPECT_THAT(store->GetCase(CaseId(2)), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store->GetRequest("exp-acme", "req-3"),
              IsOkAndHolds(::testing::Eq(std::nullopt)));
  EXPECT_THAT(ReadAll(*store), ElementsAre(Bytes(first)));
}

TEST_F(RocksDbEventStoreTest,
       AppendRepeatingASequenceIsRefusedAndWritesNothing) {
  std::unique_ptr<RocksDbEventStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  PendingEvent first = Submit(1, 1);
  ASSERT_THAT(store->Append({first}, 1), IsOk());
  const LogState before = store->State();

  EXPECT_FALSE(store->Append({Submit(1, 2)}, 1).ok());

  EXPECT_EQ(store->State().tree_size, before.tree_size);
  EXPECT_EQ(store->State().root, before.root);
  EXPECT_EQ(store->State().case_count, before.case_count);
  EXPECT_THAT(store->GetCase(CaseId(2)), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(ReadAll(*store), ElementsAre(Bytes(first)));
}

TEST_F(RocksDbEventStoreTest, BatchWithOneOutOfSequenceEventWritesNoneOfIt) {
  std::unique_ptr<RocksDbEventStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  // Event 1 is fine, event 3 skips 2: neither may be stored.
  EXPECT_FALSE(store->Append({Submit(1, 1), Submit(3, 2)}, 2).ok());
  EXPECT_EQ(store->State().tree_size, 0u);
  EXPECT_EQ(store->State().root, core::EmptyRoot());
  EXPECT_EQ(store->State().case_count, 0u);
  EXPECT_THAT(store->GetCase(CaseId(1)), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store->GetRequest("exp-acme", "req-1"),
              IsOkAndHolds(::testing::Eq(std::nullopt)));
  EXPECT_THAT(ReadAll(*store), IsEmpty());
}

TEST_F(RocksDbEventStoreTest, RefusedAppendLeavesNothingOnDiskAndTheLogUsable) {
  PendingEvent first = Submit(1, 1);
  PendingEvent second = Submit(2, 2);
  {
    std::unique_ptr<RocksDbEventStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_THAT(store->Append({first}, 1), IsOk());
    EXPECT_FALSE(store->Append({Submit(5, 9)}, 1).ok());
    // A refused sequence does not stop the store taking the right one.
    ASSERT_THAT(store->Append({second}, 1), IsOk());
  }
  std::unique_ptr<RocksDbEventStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->State().tree_size, 2u);
  EXPECT_EQ(store->State().case_count, 2u);
  EXPECT_THAT(ReadAll(*store), ElementsAre(Bytes(first), Bytes(second)));
  EXPECT_THAT(store->GetCase(CaseId(9)), StatusIs(absl::StatusCode::kNotFound));
}

// --- Head check on open -----------------------------------------------------

TEST_F(RocksDbEventStoreTest, OpenRefusesAHeadThatDoesNotParse) {
  {
    std::unique_ptr<RocksDbEventStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    SubmitCases(*store, 3);
  }
  EditRawDatabase([&](rocksdb::DB* db, const auto& handles) {
    // 0xff... is an unterminated varint tag: not a protobuf message.
    rocksdb::Status s =
        db->Put(rocksdb::WriteOptions(),
                Family(handles, rocksdb::kDefaultColumnFamilyName), "head",
                "\xff\xff\xff\xff garbage");
    ASSERT_TRUE(s.ok()) << s.ToString();
  });

  absl::StatusOr<std::unique_ptr<RocksDbEventStore>> store =
      RocksDbEventStore::Open(dir_.path());
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(store.status().message(),
              HasSubstr("head record does not parse"));
}

TEST_F(RocksDbEventStoreTest, OpenRefusesEventsWithoutAHead) {
  {
    std::unique_ptr<RocksDbEventStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    SubmitCases(*store, 2);
  }
  EditRawDatabase([&](rocksdb::DB* db, const auto& handles) {
    rocksdb::Status s =
        db->Delete(rocksdb::WriteOptions(),
                   Family(handles, rocksdb::kDefaultColumnFamilyName), "head");
    ASSERT_TRUE(s.ok()) << s.ToString();
  });

  absl::StatusOr<std::unique_ptr<RocksDbEventStore>> store =
      RocksDbEventStore::Open(dir_.path());
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(store.status().message(),
              HasSubstr("events are stored but the head is empty"));
}

TEST_F(RocksDbEventStoreTest, OpenRefusesAHeadCountingMoreEventsThanStored) {
  {
    std::unique_ptr<RocksDbEventStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    SubmitCases(*store, 3);
  }
  EditRawDatabase([&](rocksdb::DB* db, const auto& handles) {
    rocksdb::Status s =
        db->Delete(rocksdb::WriteOptions(), Family(handles, "events"),
                   RocksDbEventStore::EventKey(3));
    ASSERT_TRUE(s.ok()) << s.ToString();
  });

  absl::StatusOr<std::unique_ptr<RocksDbEventStore>> store =
      RocksDbEventStore::Open(dir_.path());
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(store.status().message(),
              HasSubstr("the head counts 3 events but the last stored is 2"));
}

TEST_F(RocksDbEventStoreTest, OpenRefusesAHeadWhoseOnlyEventIsMissing) {
  {
    std::unique_ptr<RocksDbEventStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    SubmitCases(*store, 1);
  }
  EditRawDatabase([&](rocksdb::DB* db, const auto& handles) {
    rocksdb::Status s =
        db->Delete(rocksdb::WriteOptions(), Family(handles, "events"),
                   RocksDbEventStore::EventKey(1));
    ASSERT_TRUE(s.ok()) << s.ToString();
  });

  absl::StatusOr<std::unique_ptr<RocksDbEventStore>> store =
      RocksDbEventStore::Open(dir_.path());
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(store.status().message(),
              HasSubstr("the head counts 1 events but none is stored"));
}

TEST_F(RocksDbEventStoreTest, OpenRefusesAnEventBeyondTheHead) {
  {
    std::unique_ptr<RocksDbEventStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    SubmitCases(*store, 3);
  }
  EditRawDatabase([&](rocksdb::DB* db, const auto& handles) {
    rocksdb::Status s =
        db->Put(rocksdb::WriteOptions(), Family(handles, "events"),
                RocksDbEventStore::EventKey(4), Bytes(Submit(4, 4)));
    ASSERT_TRUE(s.ok()) << s.ToString();
  });

  absl::StatusOr<std::unique_ptr<RocksDbEventStore>> store =
      RocksDbEventStore::Open(dir_.path());
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(store.status().message(),
              HasSubstr("the head counts 3 events but the last stored is 4"));
}

TEST_F(RocksDbEventStoreTest, OpenRefusesAModifiedLastEvent) {
  {
    std::unique_ptr<RocksDbEventStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    SubmitCases(*store, 3);
  }
  EditRawDatabase([&](rocksdb::DB* db, const auto& handles) {
    rocksdb::ColumnFamilyHandle* events = Family(handles, "events");
    const std::string key = RocksDbEventStore::EventKey(3);
    std::string bytes;
    rocksdb::Status s = db->Get(rocksdb::ReadOptions(), events, key, &bytes);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_FALSE(bytes.empty());
    bytes.back() ^= 0x01;
    s = db->Put(rocksdb::WriteOptions(), events, key, bytes);
    ASSERT_TRUE(s.ok()) << s.ToString();
  });

  absl::StatusOr<std::unique_ptr<RocksDbEventStore>> store =
      RocksDbEventStore::Open(dir_.path());
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(store.status().message(),
              HasSubstr("event 3 does not hash to the head's last leaf"));
}

TEST_F(RocksDbEventStoreTest,
       OpenRefusesAHeadWhoseRootDoesNotMatchItsFrontier) {
  {
    std::unique_ptr<RocksDbEventStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    SubmitCases(*store, 3);
  }
  EditRawDatabase([&](rocksdb::DB* db, const auto& handles) {
    rocksdb::ColumnFamilyHandle* meta =
        Family(handles, rocksdb::kDefaultColumnFamilyName);
    std::string value;
    rocksdb::Status s = db->Get(rocksdb::ReadOptions(), meta, "head", &value);
    ASSERT_TRUE(s.ok()) << s.ToString();
    storage::HeadRecord head;
    ASSERT_TRUE(head.ParseFromString(value));
    head.set_root_hash(
        std::string(core::AsBytes(core::Sha256("another root"))));
    s = db->Put(rocksdb::WriteOptions(), meta, "head",
                head.SerializeAsString());
    ASSERT_TRUE(s.ok()) << s.ToString();
  });

  absl::StatusOr<std::unique_ptr<RocksDbEventStore>> store =
      RocksDbEventStore::Open(dir_.path());
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(store.status().message(),
              HasSubstr("the head's frontier does not give its root hash"));
}

TEST_F(RocksDbEventStoreTest, OpenAcceptsADatabaseEditedWithoutDamage) {
  // The raw-edit helper itself leaves a sound database sound.
  {
    std::unique_ptr<RocksDbEventStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    SubmitCases(*store, 3);
  }
  EditRawDatabase([](rocksdb::DB*, const auto&) {});
  std::unique_ptr<RocksDbEventStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->State().tree_size, 3u);
}

// --- Durability and storage failures -----------------------------------------

TEST_F(RocksDbEventStoreTest, AppendSyncsTheWalBeforeReturning) {
  auto faults = std::make_shared<FaultState>();
  std::unique_ptr<rocksdb::Env> env = FaultInjectingEnv(faults);
  std::unique_ptr<RocksDbEventStore> store = OpenStore(env.get());
  ASSERT_NE(store, nullptr);
  for (uint64_t i = 1; i <= 5; ++i) {
    SCOPED_TRACE(absl::StrCat("append ", i));
    const int before = faults->wal_syncs.load();
    ASSERT_THAT(store->Append({Submit(i, i)}, 1), IsOk());
    EXPECT_GT(faults->wal_syncs.load(), before);
  }
}

TEST_F(RocksDbEventStoreTest, FailedWriteIsUnavailableAndStopsAppends) {
  auto faults = std::make_shared<FaultState>();
  std::unique_ptr<rocksdb::Env> env = FaultInjectingEnv(faults);
  std::unique_ptr<RocksDbEventStore> store = OpenStore(env.get());
  ASSERT_NE(store, nullptr);
  PendingEvent first = Submit(1, 1);
  ASSERT_THAT(store->Append({first}, 1), IsOk());
  const LogState acknowledged = store->State();

  faults->fail = true;
  absl::Status failed = store->Append({Submit(2, 2)}, 1);
  EXPECT_THAT(failed, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(std::string(failed.message()), HasSubstr("injected"));

  // The disk is healthy again, but what reached it is unknown until a
  // reopen: the store still refuses, on its own account (its message, not
  // RocksDB's), and its state is still the acknowledged one.
  faults->fail = false;
  absl::Status latched = store->Append({Submit(2, 2)}, 1);
  EXPECT_THAT(latched, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(std::string(latched.message()),
              HasSubstr("stopped taking writes after a storage failure"));
  EXPECT_THAT(store->Append({}, 0), StatusIs(absl::StatusCode::kUnavailable));

  const LogState after = store->State();
  EXPECT_EQ(after.tree_size, acknowledged.tree_size);
  EXPECT_EQ(after.root, acknowledged.root);
  EXPECT_EQ(after.case_count, acknowledged.case_count);
  EXPECT_THAT(ReadAll(*store), ElementsAre(Bytes(first)));
}

TEST_F(RocksDbEventStoreTest, ReopenAfterAFailedWriteIsConsistent) {
  // A failed append leaves the batch off the disk; a failed sync leaves it
  // in the OS's hands, so it may come back. Either way the reopened log must
  // hold the batch whole or not at all, and agree with its head.
  struct Mode {
    std::string name;
    std::atomic<bool> FaultState::*flag;
  };
  const std::vector<Mode> modes = {{"append fails", &FaultState::fail},
                                   {"sync fails", &FaultState::fail_syncs}};
  for (const Mode& mode : modes) {
    SCOPED_TRACE(mode.name);
    const std::string path = absl::StrCat(dir_.path(), "/", mode.name);
    std::vector<PendingEvent> acknowledged = {Submit(1, 1), Submit(2, 2)};
    acknowledged.push_back(Review(3, acknowledged[0].snapshot));
    const std::vector<PendingEvent> failed_batch = {Submit(4, 3), Submit(5, 4)};
    {
      auto faults = std::make_shared<FaultState>();
      std::unique_ptr<rocksdb::Env> env = FaultInjectingEnv(faults);
      std::unique_ptr<RocksDbEventStore> store = OpenStore(env.get(), path);
      ASSERT_NE(store, nullptr);
      ASSERT_THAT(store->Append({acknowledged[0], acknowledged[1]}, 2), IsOk());
      ASSERT_THAT(store->Append({acknowledged[2]}, 0), IsOk());
      (*faults).*mode.flag = true;
      ASSERT_THAT(store->Append(failed_batch, 2),
                  StatusIs(absl::StatusCode::kUnavailable));
      (*faults).*mode.flag = false;
      store.reset();  // before `env`, which it runs on
    }

    // Reopened on the real file system.
    std::unique_ptr<RocksDbEventStore> store = OpenStore(nullptr, path);
    ASSERT_NE(store, nullptr);
    const LogState state = store->State();
    EXPECT_THAT(state.tree_size, AnyOf(3u, 5u));
    const bool batch_landed = state.tree_size == 5u;

    std::vector<std::string> expected;
    for (const PendingEvent& p : acknowledged) expected.push_back(Bytes(p));
    if (batch_landed) {
      for (const PendingEvent& p : failed_batch) expected.push_back(Bytes(p));
    }
    const std::vector<std::string> stored = ReadAll(*store);
    EXPECT_THAT(stored, ElementsAreArray(expected));
    std::vector<core::Hash> leaves;
    for (const std::string& e : stored) leaves.push_back(core::LeafHash(e));
    EXPECT_EQ(state.root, core::RootFromLeafHashes(leaves));
    EXPECT_EQ(state.case_count, batch_landed ? 4u : 2u);

    // The batch's derived records are there exactly when its events are.
    for (const PendingEvent& p : failed_batch) {
      SCOPED_TRACE(p.event.case_id());
      if (batch_landed) {
        EXPECT_THAT(store->GetCase(p.event.case_id()),
                    IsOkAndHolds(EqualsProto(p.snapshot)));
        EXPECT_THAT(store->GetRequest(p.principal_id, p.event.request_id()),
                    IsOkAndHolds(::testing::Ne(std::nullopt)));
      } else {
        EXPECT_THAT(store->GetCase(p.event.case_id()),
                    StatusIs(absl::StatusCode::kNotFound));
        EXPECT_THAT(store->GetRequest(p.principal_id, p.event.request_id()),
                    IsOkAndHolds(::testing::Eq(std::nullopt)));
      }
    }
    EXPECT_THAT(store->GetCase(CaseId(1)),
                IsOkAndHolds(EqualsProto(acknowledged[2].snapshot)));

    // And the log takes writes again, from where it stands.
    const uint64_t next = state.tree_size + 1;
    ASSERT_THAT(store->Append({Submit(next, 10)}, 1), IsOk());
    EXPECT_EQ(store->State().tree_size, next);
  }
}

// --- Exclusive folder -------------------------------------------------------

TEST_F(RocksDbEventStoreTest, SecondOpenOfAnOpenFolderIsRefused) {
  std::unique_ptr<RocksDbEventStore> first = OpenStore();
  ASSERT_NE(first, nullptr);
  absl::StatusOr<std::unique_ptr<RocksDbEventStore>> second =
      RocksDbEventStore::Open(dir_.path());
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(second.status().message(), HasSubstr("in use"));

  // The first store is unharmed, and the folder opens once it is closed.
  ASSERT_THAT(first->Append({Submit(1, 1)}, 1), IsOk());
  first.reset();
  std::unique_ptr<RocksDbEventStore> again = OpenStore();
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->State().tree_size, 1u);
}

// --- ListCases --------------------------------------------------------------

class RocksDbEventStoreListTest : public RocksDbEventStoreTest {
 protected:
  void SetUp() override {
    store_ = OpenStore();
    ASSERT_NE(store_, nullptr);
    // Case n is filed by event n.
    ASSERT_THAT(store_->Append(
                    {Submit(1, 1, "acme", "JP"), Submit(2, 2, "globex", "JP"),
                     Submit(3, 3, "acme", "KR"), Submit(4, 4, "initech", "US"),
                     Submit(5, 5, "acme", "JP")},
                    5),
                IsOk());
  }

  std::vector<std::string> List(const CaseFilter& filter,
                                absl::string_view after_id = "",
                                int limit = 100) {
    absl::StatusOr<std::vector<v1::Case>> cases =
        store_->ListCases(filter, after_id, limit);
    EXPECT_THAT(cases, IsOk());
    if (!cases.ok()) return {};
    for (const v1::Case& c : *cases) {
      EXPECT_TRUE(filter.state == v1::CASE_STATE_UNSPECIFIED ||
                  c.state() == filter.state);
      EXPECT_TRUE(filter.organisation.empty() ||
                  c.organisation() == filter.organisation);
      EXPECT_TRUE(filter.destination_country.empty() ||
                  c.application().destination_country() ==
                      filter.destination_country);
    }
    return Ids(*cases);
  }

  std::unique_ptr<RocksDbEventStore> store_;
};

TEST_F(RocksDbEventStoreListTest, EmptyFilterListsEveryCaseInIdOrder) {
  EXPECT_THAT(List(CaseFilter()), ElementsAre(CaseId(1), CaseId(2), CaseId(3),
                                              CaseId(4), CaseId(5)));
}

TEST_F(RocksDbEventStoreListTest, FiltersByState) {
  EXPECT_THAT(
      List(ByState(v1::CASE_STATE_SUBMITTED)),
      ElementsAre(CaseId(1), CaseId(2), CaseId(3), CaseId(4), CaseId(5)));
  EXPECT_THAT(List(ByState(v1::CASE_STATE_REVIEWED)), IsEmpty());
  EXPECT_THAT(List(ByState(v1::CASE_STATE_APPROVED)), IsEmpty());
}

TEST_F(RocksDbEventStoreListTest, FiltersByOrganisation) {
  EXPECT_THAT(List(ByOrganisation("acme")),
              ElementsAre(CaseId(1), CaseId(3), CaseId(5)));
  EXPECT_THAT(List(ByOrganisation("globex")), ElementsAre(CaseId(2)));
  // An organisation whose name another's begins with matches only itself.
  EXPECT_THAT(List(ByOrganisation("acm")), IsEmpty());
  EXPECT_THAT(List(ByOrganisation("umbrella")), IsEmpty());
}

TEST_F(RocksDbEventStoreListTest, FiltersByDestinationCountry) {
  EXPECT_THAT(List(ByCountry("JP")),
              ElementsAre(CaseId(1), CaseId(2), CaseId(5)));
  EXPECT_THAT(List(ByCountry("US")), ElementsAre(CaseId(4)));
  EXPECT_THAT(List(ByCountry("J")), IsEmpty());
}

TEST_F(RocksDbEventStoreListTest, CombinedFiltersMatchEveryField) {
  EXPECT_THAT(List(Filter(v1::CASE_STATE_UNSPECIFIED, "acme", "JP")),
              ElementsAre(CaseId(1), CaseId(5)));
  EXPECT_THAT(List(Filter(v1::CASE_STATE_SUBMITTED, "acme", "KR")),
              ElementsAre(CaseId(3)));
  EXPECT_THAT(List(Filter(v1::CASE_STATE_UNSPECIFIED, "globex", "US")),
              IsEmpty());
}

TEST_F(RocksDbEventStoreListTest, PagingReturnsIdsStrictlyAfterAfterIdInOrder) {
  const std::vector<CaseFilter> filters = {
      CaseFilter(), ByState(v1::CASE_STATE_SUBMITTED), ByOrganisation("acme"),
      ByCountry("JP")};
  for (const CaseFilter& filter : filters) {
    SCOPED_TRACE(absl::StrCat("state ", static_cast<int>(filter.state),
                              " org '", filter.organisation, "' country '",
                              filter.destination_country, "'"));
    const std::vector<std::string> all = List(filter);
    ASSERT_FALSE(all.empty());
    EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));
    EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end());
    // Pages of every size concatenate to the whole listing.
    for (int limit : {1, 2, 3}) {
      SCOPED_TRACE(absl::StrCat("limit ", limit));
      std::vector<std::string> paged;
      std::string after;
      for (int pages = 0; pages < 10; ++pages) {
        std::vector<std::string> page = List(filter, after, limit);
        EXPECT_LE(static_cast<int>(page.size()), limit);
        if (!page.empty() && !after.empty()) {
          EXPECT_GT(page.front(), after);
        }
        if (page.empty()) break;
        paged.insert(paged.end(), page.begin(), page.end());
        after = page.back();
      }
      EXPECT_EQ(paged, all);
    }
  }
}

TEST_F(RocksDbEventStoreListTest, AfterIdNeedNotBeAStoredCase) {
  // "PRM-2026-000002x" sorts after case 2 and before case 3.
  EXPECT_THAT(List(CaseFilter(), CaseId(2) + "x"),
              ElementsAre(CaseId(3), CaseId(4), CaseId(5)));
  EXPECT_THAT(List(ByOrganisation("acme"), CaseId(2) + "x"),
              ElementsAre(CaseId(3), CaseId(5)));
  EXPECT_THAT(List(ByOrganisation("acme"), CaseId(5)), IsEmpty());
  EXPECT_THAT(List(ByOrganisation("acme"), "PRM-9999"), IsEmpty());
}

TEST_F(RocksDbEventStoreListTest, StateChangeMovesTheCaseBetweenStateListings) {
  absl::StatusOr<v1::Case> before = store_->GetCase(CaseId(3));
  ASSERT_THAT(before, IsOk());
  PendingEvent review = Review(6, *before);
  ASSERT_EQ(review.previous_state, v1::CASE_STATE_SUBMITTED);
  ASSERT_THAT(store_->Append({review}, 0), IsOk());

  EXPECT_THAT(List(ByState(v1::CASE_STATE_SUBMITTED)),
              ElementsAre(CaseId(1), CaseId(2), CaseId(4), CaseId(5)));
  EXPECT_THAT(List(ByState(v1::CASE_STATE_REVIEWED)), ElementsAre(CaseId(3)));
  // The organisation and country indexes still find it, in its new state.
  EXPECT_THAT(List(Filter(v1::CASE_STATE_REVIEWED, "acme", "")),
              ElementsAre(CaseId(3)));
  EXPECT_THAT(List(ByCountry("KR")), ElementsAre(CaseId(3)));
}

TEST_F(RocksDbEventStoreListTest, SubmitAndReviewInOneBatchIndexTheFinalState) {
  PendingEvent submit = Submit(6, 6, "acme", "JP");
  PendingEvent review = Review(7, submit.snapshot);
  ASSERT_THAT(store_->Append({submit, review}, 1), IsOk());
  EXPECT_THAT(
      List(ByState(v1::CASE_STATE_SUBMITTED)),
      ElementsAre(CaseId(1), CaseId(2), CaseId(3), CaseId(4), CaseId(5)));
  EXPECT_THAT(List(ByState(v1::CASE_STATE_REVIEWED)), ElementsAre(CaseId(6)));
}

// --- Concurrency ------------------------------------------------------------

TEST_F(RocksDbEventStoreTest, ConcurrentWritersLeaveNoGaps) {
  constexpr int kThreads = 4;
  constexpr int kAppendsPerThread = 25;
  constexpr uint64_t kTotal = kThreads * kAppendsPerThread;
  std::unique_ptr<RocksDbEventStore> store = OpenStore();
  ASSERT_NE(store, nullptr);

  // Sequences are assigned under one lock, as the server's commit thread
  // does; the store's own serialization is exercised underneath.
  std::mutex sequencer;
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      const std::string org = absl::StrCat("org", t);
      for (int i = 0; i < kAppendsPerThread; ++i) {
        std::lock_guard<std::mutex> lock(sequencer);
        const uint64_t next = store->State().tree_size + 1;
        EXPECT_THAT(store->Append({Submit(next, next, org)}, 1), IsOk());
      }
    });
  }
  // Reads run alongside the writers and never see a gap or a shrinking log.
  std::atomic<bool> done{false};
  std::thread reader([&] {
    uint64_t last_size = 0;
    while (!done.load()) {
      const uint64_t size = store->State().tree_size;
      EXPECT_GE(size, last_size);
      last_size = size;
      uint64_t count = 0;
      EXPECT_THAT(store->ReadEvents(1, size,
                                    [&](uint64_t, absl::string_view) {
                                      ++count;
                                      return true;
                                    }),
                  IsOk());
      EXPECT_EQ(count, size);
    }
  });
  for (std::thread& w : writers) w.join();
  done = true;
  reader.join();

  const std::vector<std::string> events = ReadAll(*store);
  ASSERT_EQ(events.size(), kTotal);
  for (uint64_t i = 0; i < kTotal; ++i) {
    v1::Event e;
    ASSERT_TRUE(e.ParseFromString(events[i]));
    EXPECT_EQ(e.sequence(), i + 1);
  }
  const LogState state = store->State();
  EXPECT_EQ(state.tree_size, kTotal);
  EXPECT_EQ(state.case_count, kTotal);
  EXPECT_EQ(state.root, BruteForceRoot(events));
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_THAT(
        store->ListCases(ByOrganisation(absl::StrCat("org", t)), "", 1000),
        IsOkAndHolds(::testing::SizeIs(kAppendsPerThread)));
  }
}

// --- ReadEvents ranges ------------------------------------------------------

TEST_F(RocksDbEventStoreTest, ReadEventsClampsTheRangeToTheLogSize) {
  std::unique_ptr<RocksDbEventStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  SubmitCases(*store, 5);
  auto read = [&](uint64_t from, uint64_t to) {
    std::vector<uint64_t> seen;
    EXPECT_THAT(
        store->ReadEvents(from, to,
                          [&](uint64_t seq, absl::string_view bytes) {
                            v1::Event e;
                            EXPECT_TRUE(e.ParseFromArray(
                                bytes.data(), static_cast<int>(bytes.size())));
                            EXPECT_EQ(e.sequence(), seq);
                            seen.push_back(seq);
                            return true;
                          }),
        IsOk());
    return seen;
  };
  EXPECT_THAT(read(2, 4), ElementsAre(2u, 3u, 4u));
  EXPECT_THAT(read(0, 2), ElementsAre(1u, 2u));
  EXPECT_THAT(read(4, 100), ElementsAre(4u, 5u));
  EXPECT_THAT(read(1, UINT64_MAX), ElementsAre(1u, 2u, 3u, 4u, 5u));
  EXPECT_THAT(read(3, 3), ElementsAre(3u));
  EXPECT_THAT(read(6, 10), IsEmpty());
  EXPECT_THAT(read(4, 2), IsEmpty());
}

TEST_F(RocksDbEventStoreTest, AfterStopBackupsEveryBackupIsRefusedAndNoneIsAdded) {
  std::unique_ptr<RocksDbEventStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  SubmitCases(*store, 3);
  TempDir backups;
  absl::StatusOr<BackupInfo> first = store->Backup(backups.path(), 0);
  ASSERT_THAT(first, IsOk());
  store->StopBackups();
  EXPECT_THAT(store->Backup(backups.path(), 0),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("stopped because permitd is shutting down")));
  store.reset();
  // The folder holds the first backup only, whole.
  TempDir restored;
  ASSERT_THAT(RocksDbEventStore::RestoreBackup(backups.path(), 0, restored.path() + "/db"),
              IsOk());
  std::unique_ptr<RocksDbEventStore> copy = OpenStore(nullptr, restored.path() + "/db");
  ASSERT_NE(copy, nullptr);
  EXPECT_EQ(copy->State().tree_size, 3u);
  EXPECT_THAT(RocksDbEventStore::RestoreBackup(backups.path(), first->backup_id + 1,
                                               restored.path() + "/db2"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(RocksDbEventStoreTest, ReadEventsOfAnEmptyLogCallsNothing) {
  std::unique_ptr<RocksDbEventStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  int calls = 0;
  EXPECT_THAT(store->ReadEvents(0, UINT64_MAX,
                                [&](uint64_t, absl::string_view) {
                                  ++calls;
                                  return true;
                                }),
              IsOk());
  EXPECT_EQ(calls, 0);
}

TEST_F(RocksDbEventStoreTest, ReadEventsStopsWhenTheCallbackReturnsFalse) {
  std::unique_ptr<RocksDbEventStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  SubmitCases(*store, 5);
  std::vector<uint64_t> seen;
  EXPECT_THAT(store->ReadEvents(2, 5,
                                [&](uint64_t seq, absl::string_view) {
                                  seen.push_back(seq);
                                  return seq < 3;
                                }),
              IsOk());
  EXPECT_THAT(seen, ElementsAre(2u, 3u));
}

TEST_F(RocksDbEventStoreTest, ReadEventsReportsAMissingEventAsDataLoss) {
  {
    std::unique_ptr<RocksDbEventStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    SubmitCases(*store, 4);
  }
  // Event 2 vanishes; the head (event 4) still checks out on open.
  EditRawDatabase([&](rocksdb::DB* db, const auto& handles) {
    rocksdb::Status s =
        db->Delete(rocksdb::WriteOptions(), Family(handles, "events"),
                   RocksDbEventStore::EventKey(2));
    ASSERT_TRUE(s.ok()) << s.ToString();
  });
  std::unique_ptr<RocksDbEventStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  std::vector<uint64_t> seen;
  absl::Status s =
      store->ReadEvents(1, 4, [&](uint64_t seq, absl::string_view) {
        seen.push_back(seq);
        return true;
      });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(s.message(), HasSubstr("event 2 is missing"));
  EXPECT_THAT(seen, ElementsAre(1u));
}

}  // namespace
}  // namespace permit::testing
