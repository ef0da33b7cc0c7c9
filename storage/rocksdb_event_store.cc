// RocksDB implementation of the audit-log store; see rocksdb_event_store.h
// and docs/storage.md for the layout.
#include "storage/rocksdb_event_store.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/options.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/backup_engine.h"
#include "rocksdb/write_batch.h"

namespace permit::storage {
namespace {

constexpr char kHeadKey[] = "head";

absl::string_view View(const rocksdb::Slice& s) {
  return absl::string_view(s.data(), s.size());
}

void PutBigEndian64(uint64_t v, std::string* out) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

uint64_t GetBigEndian64(absl::string_view s) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(s[i]);
  return v;
}

std::string CaseEventKey(absl::string_view case_id, int64_t version) {
  std::string key(case_id);
  key.push_back('\0');
  PutBigEndian64(static_cast<uint64_t>(version), &key);
  return key;
}

// Index keys: "<kind> NUL <value> NUL <case id>", kind s(tate), o(rg),
// c(ountry).
std::string IndexPrefix(char kind, absl::string_view value) {
  std::string key(1, kind);
  key.push_back('\0');
  key.append(value.data(), value.size());
  key.push_back('\0');
  return key;
}

std::string StateValue(v1::CaseState s) {
  return absl::StrCat(static_cast<int>(s) / 10, static_cast<int>(s) % 10);
}

// Tree node keys: one byte of level, then the 8-byte big-endian index.
std::string NodeKey(int level, uint64_t index) {
  std::string key(1, static_cast<char>(level));
  PutBigEndian64(index, &key);
  return key;
}

std::string RequestKey(absl::string_view principal, absl::string_view request_id) {
  return absl::StrCat(principal, std::string(1, '\0'), request_id);
}

// Maps a RocksDB failure to the code that tells the caller what to do.
// OK stays OK, so call sites can return it directly.
absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat(what, ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsIOError() || s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) {
    return absl::UnavailableError(msg);
  }
  return absl::InternalError(msg);
}

}  // namespace

const std::vector<std::string>& RocksDbEventStore::ColumnFamilyNames() {
  static const auto* names = new std::vector<std::string>{
      rocksdb::kDefaultColumnFamilyName, "events", "cases", "case_events",
      "case_index", "requests", "tree"};
  return *names;
}

std::string RocksDbEventStore::EventKey(uint64_t sequence) {
  std::string key;
  PutBigEndian64(sequence, &key);
  return key;
}

absl::StatusOr<std::unique_ptr<RocksDbEventStore>> RocksDbEventStore::Open(
    const std::string& path, const Options& store_options) {
  rocksdb::DBOptions options;
  if (store_options.env != nullptr) options.env = store_options.env;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.paranoid_checks = true;
  options.keep_log_file_num = 10;
  // The "head" and "tree" families change with every commit while the
  // others fill up; without a cap, a WAL file lives until the smallest
  // memtable flushes, so gigabytes of WAL pile up and every open replays
  // them. Flushing at 64 MiB of WAL keeps start-up and read-only opens fast.
  options.max_total_wal_size = 64 << 20;
  // Events are write-once and read mostly in order: a plain block-based
  // table with default compression fits. The families read by key get
  // Bloom filters: every new request id is looked up in "requests" and
  // misses, which without a filter costs a block search in every table
  // file. (Filters live in the table files; files written before they
  // were configured simply have none.)
  rocksdb::BlockBasedTableOptions filtered;
  filtered.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  rocksdb::ColumnFamilyOptions point_lookups;
  point_lookups.table_factory.reset(rocksdb::NewBlockBasedTableFactory(filtered));
  // Most keys arrive in order within a prefix: event numbers, tree nodes
  // per level, new case ids ("PRM-2026-"). A memtable insert hint per
  // prefix then places a key next to the previous one instead of searching
  // the skiplist from the top (the memtable inserts were the writer's
  // largest cost). One writer: no concurrent memtable writes, which would
  // ignore the hints.
  options.allow_concurrent_memtable_write = false;
  auto hint = [](size_t prefix) {
    return std::shared_ptr<const rocksdb::SliceTransform>(
        rocksdb::NewFixedPrefixTransform(prefix));
  };
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : ColumnFamilyNames()) {
    const bool by_key = name == "requests" || name == "cases" || name == "tree";
    rocksdb::ColumnFamilyOptions cf = by_key ? point_lookups : rocksdb::ColumnFamilyOptions();
    if (name == "events") cf.memtable_insert_with_hint_prefix_extractor = hint(4);
    if (name == "tree") cf.memtable_insert_with_hint_prefix_extractor = hint(1);
    if (name == "cases" || name == "case_events") {
      cf.memtable_insert_with_hint_prefix_extractor = hint(9);  // "PRM-YYYY-"
    }
    descriptors.emplace_back(name, cf);
  }
  if (store_options.read_only) {
    // A read-only open needs every family to exist already.
    std::vector<std::string> existing;
    rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(options, path, &existing);
    if (!ls.ok()) return FromRocks(ls, absl::StrCat("opening the audit log in ", path));
    for (const std::string& name : ColumnFamilyNames()) {
      if (std::find(existing.begin(), existing.end(), name) == existing.end()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the audit log in ", path, " has no \"", name,
            "\" column family yet (it was written by an older permitd): start "
            "permitd on it once to add it, then open it read-only"));
      }
    }
  }
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status s =
      store_options.read_only
          ? rocksdb::DB::OpenForReadOnly(options, path, descriptors, &handles, &db)
          : rocksdb::DB::Open(options, path, descriptors, &handles, &db);
  if (!s.ok()) {
    if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the data folder ", path,
          " is in use by another process (another permitd?): ", s.ToString()));
    }
    return FromRocks(s, absl::StrCat("opening the audit log in ", path));
  }
  std::unique_ptr<RocksDbEventStore> store(
      new RocksDbEventStore(path, db, std::move(handles)));
  store->read_only_ = store_options.read_only;
  RETURN_IF_ERROR(store->LoadAndCheckHead());
  return store;
}

RocksDbEventStore::RocksDbEventStore(
    std::string path, rocksdb::DB* db,
    std::vector<rocksdb::ColumnFamilyHandle*> handles)
    : path_(std::move(path)), db_(db), handles_(std::move(handles)) {}

RocksDbEventStore::~RocksDbEventStore() {
  if (!read_only_) {
    // Persist the memtables so the next open has no WAL to replay. Best
    // effort: the WAL already holds every acknowledged write.
    rocksdb::FlushOptions fo;
    fo.wait = true;
    db_->Flush(fo, handles_).PermitUncheckedError();
  }
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    db_->DestroyColumnFamilyHandle(h);
  }
  db_->Close();
  delete db_;
}

absl::Status RocksDbEventStore::LoadAndCheckHead() {
  absl::MutexLock lock(&write_mu_);
  auto corrupt = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat(
        "the audit log in ", path_, " is damaged: ", why,
        ". permitd will not start on it; restore from a backup or "
        "investigate with ldb"));
  };
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), handles_[kMeta], kHeadKey, &value);
  if (s.IsNotFound()) {
    head_.Clear();
  } else if (!s.ok()) {
    return FromRocks(s, "reading the log head");
  } else if (!head_.ParseFromString(value)) {
    return corrupt("the log head record does not parse");
  }

  // The last stored event must be exactly the head's.
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handles_[kEvents]));
  it->SeekToLast();
  if (!it->status().ok()) return FromRocks(it->status(), "reading the last event");
  if (head_.tree_size() == 0) {
    if (it->Valid()) return corrupt("events are stored but the head is empty");
  } else {
    if (!it->Valid()) {
      return corrupt(absl::StrCat("the head counts ", head_.tree_size(),
                                  " events but none is stored"));
    }
    if (it->key().size() != 8) return corrupt("an event key is not 8 bytes");
    uint64_t last = GetBigEndian64(View(it->key()));
    if (last != head_.tree_size()) {
      return corrupt(absl::StrCat("the head counts ", head_.tree_size(),
                                  " events but the last stored is ", last));
    }
    core::Hash leaf = core::LeafHash(View(it->value()));
    if (core::AsBytes(leaf) != head_.last_leaf_hash()) {
      return corrupt(absl::StrCat("event ", last,
                                  " does not hash to the head's last leaf"));
    }
  }
  std::vector<core::Hash> frontier;
  for (const std::string& f : head_.frontier()) {
    absl::StatusOr<core::Hash> h = core::HashFromBytes(f);
    if (!h.ok()) return corrupt("a frontier hash is not 32 bytes");
    frontier.push_back(*h);
  }
  absl::StatusOr<core::CompactTree> tree =
      core::CompactTree::FromFrontier(head_.tree_size(), std::move(frontier));
  if (!tree.ok()) return corrupt(tree.status().message());
  if (head_.tree_size() > 0 &&
      core::AsBytes(tree->Root()) != head_.root_hash()) {
    return corrupt("the head's frontier does not give its root hash");
  }
  tree_ = *std::move(tree);
  if (!read_only_) RETURN_IF_ERROR(BackfillTree());

  absl::MutexLock state_lock(&state_mu_);
  state_.tree_size = head_.tree_size();
  state_.root = tree_.Root();
  state_.case_count = head_.case_count();
  if (head_.has_last_event_time()) state_.last_event_time = head_.last_event_time();
  return absl::OkStatus();
}

absl::Status RocksDbEventStore::BackfillTree() {
  const uint64_t size = head_.tree_size();
  if (size == 0) return absl::OkStatus();
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[kTree],
                               NodeKey(0, size - 1), &value);
  if (s.ok()) return absl::OkStatus();
  if (!s.IsNotFound()) return FromRocks(s, "reading the Merkle tree");
  core::CompactTree tree;
  std::vector<core::TreeNode> nodes;
  rocksdb::WriteBatch wb;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handles_[kEvents]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    nodes.clear();
    tree.Append(core::LeafHash(View(it->value())), &nodes);
    for (const core::TreeNode& n : nodes) {
      wb.Put(handles_[kTree], NodeKey(n.level, n.index),
             rocksdb::Slice(reinterpret_cast<const char*>(n.hash.data()), n.hash.size()));
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading events");
  if (tree.size() != size || core::AsBytes(tree.Root()) != head_.root_hash()) {
    return absl::DataLossError(absl::StrCat(
        "the audit log in ", path_,
        " is damaged: its events do not hash to the head's root"));
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status s2 = db_->Write(wo, &wb);
  return FromRocks(s2, "writing the Merkle tree");
}

absl::Status RocksDbEventStore::Append(const std::vector<PendingEvent>& batch,
                                       uint64_t new_cases) {
  absl::MutexLock lock(&write_mu_);
  if (read_only_) {
    return absl::FailedPreconditionError("the audit log is open read-only");
  }
  if (failed_) {
    return absl::UnavailableError(
        "the audit log stopped taking writes after a storage failure; "
        "fix the cause and restart permitd");
  }
  if (batch.empty()) return absl::OkStatus();

  core::CompactTree tree = tree_;
  HeadRecord head = head_;
  rocksdb::WriteBatch wb;
  std::string bytes;
  std::string value;
  std::vector<core::TreeNode> nodes;
  for (const PendingEvent& p : batch) {
    const v1::Event& e = p.event;
    if (e.sequence() != tree.size() + 1) {
      return absl::InternalError(absl::StrCat("event sequence ", e.sequence(),
                                              " does not follow ", tree.size()));
    }
    bytes.clear();
    if (!e.SerializeToString(&bytes)) {
      return absl::InternalError("an event does not serialize");
    }
    core::Hash leaf = core::LeafHash(bytes);
    nodes.clear();
    tree.Append(leaf, &nodes);
    for (const core::TreeNode& n : nodes) {
      wb.Put(handles_[kTree], NodeKey(n.level, n.index),
             rocksdb::Slice(reinterpret_cast<const char*>(n.hash.data()), n.hash.size()));
    }
    head.set_last_leaf_hash(std::string(core::AsBytes(leaf)));
    *head.mutable_last_event_time() = e.time();

    wb.Put(handles_[kEvents], EventKey(e.sequence()), bytes);
    value.clear();
    if (!p.snapshot.SerializeToString(&value)) {
      return absl::InternalError("a case snapshot does not serialize");
    }
    wb.Put(handles_[kCases], e.case_id(), value);
    std::string seq;
    PutBigEndian64(e.sequence(), &seq);
    wb.Put(handles_[kCaseEvents], CaseEventKey(e.case_id(), e.case_version()), seq);
    if (p.previous_state != p.snapshot.state()) {
      if (p.previous_state != v1::CASE_STATE_UNSPECIFIED) {
        wb.Delete(handles_[kCaseIndex],
                  IndexPrefix('s', StateValue(p.previous_state)) + e.case_id());
      }
      wb.Put(handles_[kCaseIndex],
             IndexPrefix('s', StateValue(p.snapshot.state())) + e.case_id(), "");
    }
    if (e.action() == v1::ACTION_SUBMIT) {
      wb.Put(handles_[kCaseIndex],
             IndexPrefix('o', p.snapshot.organisation()) + e.case_id(), "");
      wb.Put(handles_[kCaseIndex],
             IndexPrefix('c', p.snapshot.application().destination_country()) +
                 e.case_id(),
             "");
    }
    value.clear();
    if (!p.request.SerializeToString(&value)) {
      return absl::InternalError("an idempotency record does not serialize");
    }
    wb.Put(handles_[kRequests], RequestKey(p.principal_id, e.request_id()), value);
  }
  head.set_tree_size(tree.size());
  core::Hash root = tree.Root();
  head.set_root_hash(std::string(core::AsBytes(root)));
  head.clear_frontier();
  for (const core::Hash& h : tree.frontier()) {
    head.add_frontier(std::string(core::AsBytes(h)));
  }
  head.set_case_count(head.case_count() + new_cases);
  wb.Put(handles_[kMeta], kHeadKey, head.SerializeAsString());

  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status s = db_->Write(wo, &wb);
  if (!s.ok()) {
    // The batch may or may not be on disk; until a reopen re-reads the head,
    // the in-memory state cannot be trusted to match the disk.
    failed_ = true;
    absl::Status st = FromRocks(s, "writing to the audit log");
    return absl::UnavailableError(absl::StrCat(
        st.message(), "; permitd stopped taking writes, restart it once the "
                      "cause is fixed"));
  }
  tree_ = std::move(tree);
  head_ = std::move(head);

  absl::MutexLock state_lock(&state_mu_);
  state_.tree_size = head_.tree_size();
  state_.root = root;
  state_.case_count = head_.case_count();
  state_.last_event_time = head_.last_event_time();
  return absl::OkStatus();
}

LogState RocksDbEventStore::State() const {
  absl::MutexLock lock(&state_mu_);
  return state_;
}

absl::StatusOr<v1::Case> RocksDbEventStore::GetCase(
    absl::string_view case_id) const {
  rocksdb::PinnableSlice value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[kCases],
                               rocksdb::Slice(case_id.data(), case_id.size()),
                               &value);
  if (s.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat("case ", case_id, " not found"));
  }
  if (!s.ok()) return FromRocks(s, absl::StrCat("reading case ", case_id));
  v1::Case c;
  if (!c.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(
        absl::StrCat("the stored snapshot of case ", case_id, " does not parse"));
  }
  return c;
}

absl::StatusOr<std::vector<v1::Case>> RocksDbEventStore::ListCases(
    const CaseFilter& filter, absl::string_view after_id, int limit) const {
  std::vector<v1::Case> out;
  auto matches = [&](const v1::Case& c) {
    return (filter.state == v1::CASE_STATE_UNSPECIFIED ||
            c.state() == filter.state) &&
           (filter.organisation.empty() ||
            c.organisation() == filter.organisation) &&
           (filter.destination_country.empty() ||
            c.application().destination_country() == filter.destination_country);
  };
  // Walk the most selective index the filter names, or every case.
  std::string prefix;
  if (filter.state != v1::CASE_STATE_UNSPECIFIED) {
    prefix = IndexPrefix('s', StateValue(filter.state));
  } else if (!filter.organisation.empty()) {
    prefix = IndexPrefix('o', filter.organisation);
  } else if (!filter.destination_country.empty()) {
    prefix = IndexPrefix('c', filter.destination_country);
  }
  const bool by_index = !prefix.empty();
  rocksdb::ReadOptions ro;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(ro, handles_[by_index ? kCaseIndex : kCases]));
  std::string start = prefix + std::string(after_id);
  if (!after_id.empty()) start.push_back('\0');  // strictly after
  for (it->Seek(start); it->Valid() && static_cast<int>(out.size()) < limit;
       it->Next()) {
    absl::string_view key = View(it->key());
    if (by_index && key.substr(0, prefix.size()) != prefix) break;
    v1::Case c;
    if (by_index) {
      absl::StatusOr<v1::Case> indexed = GetCase(key.substr(prefix.size()));
      if (absl::IsNotFound(indexed.status())) {
        return absl::DataLossError(absl::StrCat(
            "the case index names ", key.substr(prefix.size()),
            ", which has no stored snapshot"));
      }
      ASSIGN_OR_RETURN(c, std::move(indexed));
    } else if (!c.ParseFromArray(it->value().data(),
                                 static_cast<int>(it->value().size()))) {
      return absl::DataLossError(
          absl::StrCat("the stored snapshot of case ", key, " does not parse"));
    }
    if (matches(c)) out.push_back(std::move(c));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "listing cases");
  return out;
}

absl::StatusOr<std::vector<uint64_t>> RocksDbEventStore::CaseEventSequences(
    absl::string_view case_id) const {
  std::vector<uint64_t> out;
  std::string prefix(case_id);
  prefix.push_back('\0');
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handles_[kCaseEvents]));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    if (it->value().size() != 8) {
      return absl::DataLossError(
          absl::StrCat("a case_events entry of ", case_id, " is damaged"));
    }
    out.push_back(GetBigEndian64(View(it->value())));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading case history");
  return out;
}

absl::Status RocksDbEventStore::ReadEvents(
    uint64_t from, uint64_t to,
    const std::function<bool(uint64_t, absl::string_view)>& fn) const {
  const uint64_t size = State().tree_size;
  if (from == 0) from = 1;
  if (to > size) to = size;
  if (from > to) return absl::OkStatus();
  const std::string upper = EventKey(to + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  ro.readahead_size = 1 << 20;
  // A long scan (a replay, a verification) would only evict what the
  // server's point reads need from the block cache.
  ro.fill_cache = to - from < 4096;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, handles_[kEvents]));
  uint64_t expected = from;
  for (it->Seek(EventKey(from)); it->Valid(); it->Next()) {
    if (it->key().size() != 8 ||
        GetBigEndian64(View(it->key())) != expected) {
      return absl::DataLossError(absl::StrCat(
          "event ", expected, " is missing from the audit log"));
    }
    if (!fn(expected++, View(it->value()))) return absl::OkStatus();
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading events");
  if (expected != to + 1) {
    return absl::DataLossError(
        absl::StrCat("event ", expected, " is missing from the audit log"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<RequestRecord>> RocksDbEventStore::GetRequest(
    absl::string_view principal_id, absl::string_view request_id) const {
  rocksdb::PinnableSlice value;
  std::string key = RequestKey(principal_id, request_id);
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), handles_[kRequests], key, &value);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) return FromRocks(s, "reading an idempotency record");
  RequestRecord r;
  if (!r.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError("an idempotency record does not parse");
  }
  return r;
}

}  // namespace permit::storage

namespace permit::storage {

absl::StatusOr<core::Hash> RocksDbEventStore::TreeNode(int level,
                                                       uint64_t index) const {
  rocksdb::PinnableSlice value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[kTree],
                               NodeKey(level, index), &value);
  if (s.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat("Merkle tree node (level ", level,
                                            ", index ", index, ") is not complete"));
  }
  if (!s.ok()) return FromRocks(s, "reading the Merkle tree");
  absl::StatusOr<core::Hash> h = core::HashFromBytes(View(value));
  if (!h.ok()) {
    return absl::DataLossError(absl::StrCat("Merkle tree node (level ", level,
                                            ", index ", index, ") is damaged"));
  }
  return h;
}

std::unique_ptr<RocksDbEventStore::TreeLevelScanner> RocksDbEventStore::ScanTreeLevel(
    int level) const {
  auto scanner = std::make_unique<TreeLevelScanner>();
  rocksdb::ReadOptions ro;
  ro.readahead_size = 1 << 20;
  ro.fill_cache = false;
  scanner->it_.reset(db_->NewIterator(ro, handles_[kTree]));
  scanner->level_ = level;
  return scanner;
}

absl::StatusOr<std::optional<core::TreeNode>>
RocksDbEventStore::TreeLevelScanner::Next() {
  if (!started_) {
    it_->Seek(NodeKey(level_, 0));
    started_ = true;
  } else if (it_->Valid()) {
    it_->Next();
  }
  if (!it_->status().ok()) return FromRocks(it_->status(), "reading the Merkle tree");
  if (!it_->Valid()) return std::nullopt;
  const absl::string_view key = View(it_->key());
  if (key.size() != 9 || static_cast<uint8_t>(key[0]) != level_) return std::nullopt;
  core::TreeNode node;
  node.level = level_;
  node.index = GetBigEndian64(key.substr(1));
  absl::StatusOr<core::Hash> h = core::HashFromBytes(View(it_->value()));
  if (!h.ok()) {
    return absl::DataLossError(absl::StrCat("Merkle tree node (level ", level_,
                                            ", index ", node.index, ") is damaged"));
  }
  node.hash = *h;
  return node;
}

absl::Status RocksDbEventStore::ScanCaseSnapshots(
    const std::function<bool(absl::string_view, absl::string_view)>& fn) const {
  rocksdb::ReadOptions ro;
  ro.readahead_size = 1 << 20;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, handles_[kCases]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (!fn(View(it->key()), View(it->value()))) break;
  }
  return FromRocks(it->status(), "reading case snapshots");
}

absl::Status RocksDbEventStore::SaveCheckpoint(absl::string_view bytes) {
  if (read_only_) return absl::FailedPreconditionError("the audit log is open read-only");
  // Not synced on its own: up to a few times a second it would compete with
  // the commits' fsyncs. The next synced commit (or the flush on close)
  // makes it durable, and after a crash an older saved checkpoint is still
  // a prefix of the log, which is all the start-up check needs.
  rocksdb::WriteOptions wo;
  rocksdb::Status s = db_->Put(wo, handles_[kMeta], "checkpoint",
                               rocksdb::Slice(bytes.data(), bytes.size()));
  return FromRocks(s, "saving the signed checkpoint");
}

absl::StatusOr<std::optional<std::string>> RocksDbEventStore::LoadCheckpoint() const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[kMeta], "checkpoint", &value);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) return FromRocks(s, "reading the signed checkpoint");
  return value;
}

absl::StatusOr<BackupInfo> RocksDbEventStore::Backup(const std::string& backup_dir,
                                                     uint32_t keep_last) {
  if (read_only_) {
    return absl::FailedPreconditionError("a read-only store takes no backups");
  }
  absl::MutexLock backup_lock(&backup_mu_);
  rocksdb::BackupEngineOptions options(backup_dir);
  options.sync = true;
  rocksdb::BackupEngine* raw = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::BackupEngine::Open(options, db_->GetEnv(), &raw),
                            absl::StrCat("opening the backup folder ", backup_dir)));
  std::unique_ptr<rocksdb::BackupEngine> engine(raw);
  const absl::Status stopped = absl::UnavailableError(
      "the backup was stopped because permitd is shutting down; take it "
      "again once permitd is back");
  {
    absl::MutexLock lock(&stop_mu_);
    if (backups_stopped_) return stopped;
    running_backup_ = engine.get();
  }
  rocksdb::CreateBackupOptions create;
  create.flush_before_backup = false;  // the WAL goes along: no flush stall
  rocksdb::BackupID id = 0;
  const rocksdb::Status created = engine->CreateNewBackup(create, db_, &id);
  {
    absl::MutexLock lock(&stop_mu_);
    running_backup_ = nullptr;
  }
  if (created.IsIncomplete()) return stopped;
  RETURN_IF_ERROR(FromRocks(created, absl::StrCat("backing up into ", backup_dir)));
  if (keep_last > 0) {
    RETURN_IF_ERROR(FromRocks(engine->PurgeOldBackups(keep_last),
                              absl::StrCat("removing old backups in ", backup_dir)));
  }
  std::vector<rocksdb::BackupInfo> infos;
  engine->GetBackupInfo(&infos);
  BackupInfo out;
  out.backup_id = id;
  for (const rocksdb::BackupInfo& info : infos) {
    out.kept_ids.push_back(info.backup_id);
    if (info.backup_id == id) {
      out.unix_time = info.timestamp;
      out.size_bytes = info.size;
    }
  }
  return out;
}

void RocksDbEventStore::StopBackups() {
  absl::MutexLock lock(&stop_mu_);
  backups_stopped_ = true;
  if (running_backup_ != nullptr) running_backup_->StopBackup();
}

absl::Status RocksDbEventStore::RestoreBackup(const std::string& backup_dir,
                                              uint32_t backup_id,
                                              const std::string& db_path) {
  rocksdb::Env* env = rocksdb::Env::Default();
  if (env->FileExists(db_path).ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(db_path, " exists; restore into a folder with no database"));
  }
  if (!env->FileExists(backup_dir).ok()) {
    return absl::NotFoundError(absl::StrCat("no backup folder ", backup_dir));
  }
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  RETURN_IF_ERROR(FromRocks(
      rocksdb::BackupEngineReadOnly::Open(rocksdb::BackupEngineOptions(backup_dir), env,
                                          &raw),
      absl::StrCat("opening the backup folder ", backup_dir)));
  std::unique_ptr<rocksdb::BackupEngineReadOnly> engine(raw);
  std::vector<rocksdb::BackupInfo> infos;
  engine->GetBackupInfo(&infos);
  if (infos.empty()) {
    return absl::NotFoundError(absl::StrCat("no backups in ", backup_dir));
  }
  if (backup_id == 0) backup_id = infos.back().backup_id;
  rocksdb::Status s = engine->VerifyBackup(backup_id, /*verify_with_checksum=*/true);
  if (s.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat("no backup ", backup_id, " in ", backup_dir));
  }
  if (!s.ok()) {
    return absl::DataLossError(absl::StrCat("backup ", backup_id, " in ", backup_dir,
                                            " is damaged: ", s.ToString()));
  }
  return FromRocks(engine->RestoreDBFromBackup(backup_id, db_path, db_path),
                   absl::StrCat("restoring backup ", backup_id, " into ", db_path));
}

HeadRecord RocksDbEventStore::Head() const {
  absl::MutexLock lock(&write_mu_);
  return head_;
}

}  // namespace permit::storage
