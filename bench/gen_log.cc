// permit-gen-log: writes a large, realistic audit log for benchmarks,
// straight through storage::RocksDbEventStore::Append (no gRPC, no
// CaseManager), in batches as the server's group commit does.
//
//   permit-gen-log --data DIR --events 1000000 [--batch 1000] [--seed 1]
//
// Cases run through realistic lifecycles: submit by an exporter, review by
// one reviewer, approve or reject by another (four-eyes), and now and then a
// suspension and resumption, a withdrawal or a revocation. Every event is
// built as the server builds it and folded into its case with
// core::ApplyEvent, so `permitd verify` (which replays the same rules)
// accepts the log. It also writes DIR/principals.json (tokens printed on
// stdout) and DIR/log-key.pem, so that
//
//   permitd --data DIR --principals DIR/principals.json
//           --signing_key DIR/log-key.pem --log_origin bench.invalid/log
//           --listen 127.0.0.1:PORT
//
// serves the folder. DIR/db must not hold events yet.
//
// The database is reported as the writer leaves it (recent writes may be in
// RocksDB's write-ahead log only, overwritten case snapshots not yet
// compacted away). --compact then flushes and compacts every column family
// and reports the size again; `--events 0 --compact` does only that, on an
// existing folder.
#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/bench_files.h"
#include "core/case_id.h"
#include "core/checkpoint.h"
#include "core/merkle.h"
#include "core/rules.h"
#include "core/time_util.h"
#include "core/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "storage/rocksdb_event_store.h"

ABSL_FLAG(std::string, data, "",
          "Folder to create: the log goes to DATA/db, principals to "
          "DATA/principals.json, the checkpoint signing key to DATA/log-key.pem.");
ABSL_FLAG(uint64_t, events, 1000000, "Number of events to write.");
ABSL_FLAG(int, batch, 1000, "Events per Append (one synced WriteBatch).");
ABSL_FLAG(uint64_t, seed, 1, "Seed of the lifecycle generator.");
ABSL_FLAG(bool, compact, false,
          "After writing, flush and compact every column family and report "
          "the size again. With --events 0, only compact an existing DATA/db.");
ABSL_FLAG(int, open_cases, 5000,
          "Cases kept in flight at once (interleaves their events).");

namespace permit::bench {
namespace {

namespace fs = std::filesystem;

struct Principal {
  std::string id;
  std::string role;  // as in principals.json
  std::string org;
  std::string token;
};

uint64_t DirBytes(const fs::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& entry : fs::recursive_directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec)) total += entry.file_size(ec);
  }
  return total;
}

v1::Actor ActorOf(const Principal& p) {
  v1::Actor a;
  a.set_principal_id(p.id);
  a.set_role(p.role == "exporter"   ? v1::ROLE_EXPORTER
             : p.role == "reviewer" ? v1::ROLE_REVIEWER
                                    : v1::ROLE_AUDITOR);
  a.set_organisation(p.org);
  return a;
}

// Makes applications like tests/test_util.cc ValidApplication(), varied in
// destination, end user, goods and amounts.
class ApplicationMaker {
 public:
  v1::Application Make(std::mt19937_64& rng) {
    struct Destination {
      const char* country;
      const char* end_user;
      const char* address;
    };
    static const Destination kDestinations[] = {
        {"JP", "Kanto Motor Works K.K.", "2-1 Shibaura, Minato-ku, Tokyo"},
        {"KR", "Hanbit Mobility Co., Ltd.", "77 Teheran-ro, Gangnam-gu, Seoul"},
        {"US", "Great Lakes Drives Inc.", "400 Renaissance Center, Detroit, MI"},
        {"IN", "Deccan Traction Pvt. Ltd.", "Plot 12, Hinjewadi Phase 2, Pune"},
        {"BR", "Motores Paulista S.A.", "Av. Paulista 1578, Sao Paulo"},
        {"CH", "Aare Antriebe AG", "Industriestrasse 9, 5000 Aarau"},
        {"NO", "Fjord Marine Propulsion AS", "Strandgata 3, 5013 Bergen"},
        {"ZA", "Highveld Mining Equipment (Pty) Ltd", "14 Main Reef Rd, Johannesburg"},
    };
    struct Goods {
      const char* description;
      const char* control_list_entry;
      const char* hs_code;
      const char* unit;
    };
    static const Goods kGoods[] = {
        {"NdFeB sintered permanent magnets, grade N52", "1C003", "8505.11", "kg"},
        {"Maraging steel tubes, outer diameter 120 mm", "1C116", "7304.59", "kg"},
        {"Five-axis CNC milling machine", "2B001", "8459.61", "pcs"},
        {"Infrared focal plane arrays, 640x512", "6A002", "8541.49", "pcs"},
        {"Frequency changers for gas centrifuges", "3A225", "8504.40", "pcs"},
        {"Carbon fibre prepreg, tensile strength 4.5 GPa", "1C010", "6815.13", "kg"},
    };
    static const char* kUses[] = {
        "Traction motors for electric buses.",
        "Civil aircraft landing gear components for series production.",
        "Machining of turbine blades for a hydroelectric plant.",
        "Thermal imaging cameras for firefighting services.",
        "Variable-speed drives for industrial compressors.",
        "Wind turbine blades for an offshore wind farm.",
    };
    const Destination& d =
        kDestinations[rng() % (sizeof(kDestinations) / sizeof(kDestinations[0]))];
    v1::Application app;
    const int lines = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < lines; ++i) {
      const Goods& g = kGoods[rng() % (sizeof(kGoods) / sizeof(kGoods[0]))];
      v1::GoodsLine* line = app.add_goods();
      line->set_description(g.description);
      line->set_control_list_entry(g.control_list_entry);
      line->set_hs_code(g.hs_code);
      line->mutable_quantity()->set_value(static_cast<double>(1 + rng() % 5000));
      line->mutable_quantity()->set_unit(g.unit);
      line->mutable_value()->set_currency_code("EUR");
      line->mutable_value()->set_units(static_cast<int64_t>(1000 + rng() % 2000000));
    }
    v1::Party* eu = app.mutable_end_user();
    eu->set_name(d.end_user);
    eu->set_address(d.address);
    eu->set_country(d.country);
    app.set_destination_country(d.country);
    app.set_end_use_statement(kUses[rng() % (sizeof(kUses) / sizeof(kUses[0]))]);
    app.set_requested_validity_months(6 + static_cast<int>(rng() % 31));
    return app;
  }
};

class Generator {
 public:
  Generator(storage::RocksDbEventStore* store, std::vector<Principal> principals,
            uint64_t seed, int open_cases)
      : store_(store), rng_(seed), open_cases_(open_cases) {
    for (const Principal& p : principals) {
      if (p.role == "exporter") exporters_.push_back(ActorOf(p));
      if (p.role == "reviewer") reviewers_.push_back(ActorOf(p));
    }
  }

  // Appends `n` events in batches of `batch`, starting at `start` and moving
  // one second on per batch (every event of a batch carries the batch's time,
  // as in the server's group commit).
  absl::Status Run(uint64_t n, int batch, absl::Time start) {
    const absl::Time t0 = absl::Now();
    absl::Time now = start;
    uint64_t written = 0;
    uint64_t last_report = 0;
    while (written < n) {
      const uint64_t in_batch =
          std::min<uint64_t>(static_cast<uint64_t>(batch), n - written);
      std::vector<storage::PendingEvent> pending;
      pending.reserve(in_batch);
      uint64_t new_cases = 0;
      for (uint64_t i = 0; i < in_batch; ++i) {
        ASSIGN_OR_RETURN(storage::PendingEvent p,
                         NextEvent(written + i + 1, now, &new_cases));
        pending.push_back(std::move(p));
      }
      RETURN_IF_ERROR(store_->Append(pending, new_cases));
      written += in_batch;
      now += absl::Seconds(1);
      if (written - last_report >= 50000 || written == n) {
        last_report = written;
        const double secs = absl::ToDoubleSeconds(absl::Now() - t0);
        std::cerr << absl::StrFormat(
            "\rpermit-gen-log: %d / %d events, %d cases, %.1f s (%.0f events/s)",
            written, n, case_count_, secs, secs > 0 ? written / secs : 0.0)
                  << std::flush;
      }
    }
    std::cerr << "\n";
    return absl::OkStatus();
  }

  uint64_t case_count() const { return case_count_; }
  const std::vector<uint64_t>& action_counts() const { return action_counts_; }

 private:
  // The next event: a new case while fewer than open_cases_ are in flight
  // (and sometimes anyway), otherwise the next step of an open case.
  absl::StatusOr<storage::PendingEvent> NextEvent(uint64_t sequence, absl::Time now,
                                                  uint64_t* new_cases) {
    const bool submit = open_.size() < static_cast<size_t>(open_cases_) ||
                        Chance(0.05) || open_.empty();
    v1::Case current;
    size_t slot = open_.size();
    v1::Event e;
    v1::Actor actor;
    v1::Action action;
    if (submit) {
      action = v1::ACTION_SUBMIT;
      actor = exporters_[rng_() % exporters_.size()];
      ++*new_cases;
      ++case_count_;
      e.set_case_id(core::FormatCaseId(case_count_, now));
      e.set_organisation(actor.organisation());
      *e.mutable_submit()->mutable_application() = apps_.Make(rng_);
    } else {
      slot = rng_() % open_.size();
      current = open_[slot];
      action = NextAction(current);
      actor = ActorFor(current, action);
      e.set_case_id(current.id());
      e.set_organisation(current.organisation());
      FillDetails(current, action, now, &e);
    }
    ASSIGN_OR_RETURN(v1::CaseState target,
                     core::Decide(submit ? nullptr : &current, action, actor,
                                  current.version()));
    e.set_sequence(sequence);
    e.set_case_version(current.version() + 1);
    e.set_action(action);
    *e.mutable_actor() = actor;
    *e.mutable_time() = core::ToProtoTime(now);
    e.set_request_id(RequestId());
    e.set_from_state(current.state());
    e.set_to_state(target);

    v1::Case next = current;
    if (absl::Status s = core::ApplyEvent(e, &next); !s.ok()) {
      return absl::InternalError(
          absl::StrCat("generated an illegal event: ", s.message()));
    }
    if (action_counts_.size() <= static_cast<size_t>(action)) {
      action_counts_.resize(static_cast<size_t>(action) + 1);
    }
    ++action_counts_[static_cast<size_t>(action)];

    storage::PendingEvent p;
    p.previous_state = current.state();
    p.principal_id = actor.principal_id();
    // The server's fingerprint hashes the request without its id; any 32
    // bytes that differ per request give the same record size.
    p.request.set_fingerprint(std::string(core::AsBytes(core::Sha256(
        absl::StrCat(static_cast<int>(action), ":", e.request_id())))));
    p.request.set_case_id(e.case_id());
    p.request.set_case_version(e.case_version());
    p.request.set_sequence(e.sequence());
    p.snapshot = next;
    p.event = std::move(e);

    // Keep the case open while it has more to go through.
    const bool stays_open = !core::IsFinal(next.state()) &&
                            !(next.state() == v1::CASE_STATE_APPROVED && !Chance(0.12));
    if (slot == open_.size()) {
      if (stays_open) open_.push_back(std::move(next));
    } else if (stays_open) {
      open_[slot] = std::move(next);
    } else {
      open_[slot] = std::move(open_.back());
      open_.pop_back();
    }
    return p;
  }

  v1::Action NextAction(const v1::Case& c) {
    const double r = Uniform();
    switch (c.state()) {
      case v1::CASE_STATE_SUBMITTED:
        if (r < 0.90) return v1::ACTION_REVIEW;
        if (r < 0.94) return v1::ACTION_SUSPEND;
        return v1::ACTION_WITHDRAW;
      case v1::CASE_STATE_REVIEWED:
        if (r < 0.75) return v1::ACTION_APPROVE;
        if (r < 0.90) return v1::ACTION_REJECT;
        if (r < 0.95) return v1::ACTION_SUSPEND;
        return v1::ACTION_WITHDRAW;
      case v1::CASE_STATE_APPROVED:  // kept open for a later incident
        return r < 0.7 ? v1::ACTION_SUSPEND : v1::ACTION_REVOKE;
      case v1::CASE_STATE_SUSPENDED:
        if (r < 0.75) return v1::ACTION_RESUME;
        if (c.suspended_from() == v1::CASE_STATE_APPROVED) return v1::ACTION_REVOKE;
        return v1::ACTION_WITHDRAW;
      default:
        return v1::ACTION_UNSPECIFIED;  // final cases are never kept open
    }
  }

  // Reviews mostly by rev-1 and decisions by rev-2 (the other way round now
  // and then); withdrawals by the submitting exporter.
  v1::Actor ActorFor(const v1::Case& c, v1::Action action) {
    if (action == v1::ACTION_WITHDRAW) {
      for (const v1::Actor& a : exporters_) {
        if (a.principal_id() == c.submitted_by()) return a;
      }
    }
    if (action == v1::ACTION_APPROVE || action == v1::ACTION_REJECT) {
      for (const v1::Actor& a : reviewers_) {
        if (a.principal_id() != c.reviewed_by()) return a;
      }
    }
    if (action == v1::ACTION_REVIEW) {
      return reviewers_[Chance(0.8) ? 0 : 1 + rng_() % (reviewers_.size() - 1)];
    }
    return reviewers_[rng_() % reviewers_.size()];
  }

  void FillDetails(const v1::Case& c, v1::Action action, absl::Time now,
                   v1::Event* e) {
    switch (action) {
      case v1::ACTION_REVIEW: {
        const bool ok = Chance(0.8);
        e->mutable_review()->set_recommendation(
            ok ? v1::RECOMMENDATION_APPROVE : v1::RECOMMENDATION_REJECT);
        e->mutable_review()->set_findings(
            ok ? "End user verified against the consolidated list; end use "
                 "consistent with the goods and quantities."
               : "End-user statement incomplete; diversion risk for the "
                 "listed goods not excluded.");
        break;
      }
      case v1::ACTION_APPROVE: {
        v1::ApproveDetails* d = e->mutable_approve();
        *d->mutable_valid_from() = core::ToProtoTime(now);
        *d->mutable_valid_until() = core::ToProtoTime(
            now + absl::Hours(24 * 30 * c.application().requested_validity_months()));
        d->set_conditions(Chance(0.5) ? "No re-export without prior authorisation."
                                      : "");
        break;
      }
      case v1::ACTION_REJECT:
        e->mutable_reason()->set_reason(
            "Unacceptable risk of diversion to a military end use.");
        break;
      case v1::ACTION_SUSPEND:
        e->mutable_reason()->set_reason(
            "End user under investigation; case on hold pending information.");
        break;
      case v1::ACTION_RESUME:
        e->mutable_reason()->set_reason("Information received; investigation closed.");
        break;
      case v1::ACTION_REVOKE:
        e->mutable_reason()->set_reason("End user added to the sanctions list.");
        break;
      case v1::ACTION_WITHDRAW:
        e->mutable_reason()->set_reason("Order cancelled by the customer.");
        break;
      default:
        break;
    }
  }

  // 32 hex digits, like a UUID without dashes.
  std::string RequestId() {
    return absl::StrFormat("%016x%016x", rng_(), rng_());
  }
  double Uniform() { return std::uniform_real_distribution<double>(0, 1)(rng_); }
  bool Chance(double p) { return Uniform() < p; }

  storage::RocksDbEventStore* const store_;
  std::mt19937_64 rng_;
  const int open_cases_;
  ApplicationMaker apps_;
  std::vector<v1::Actor> exporters_;
  std::vector<v1::Actor> reviewers_;
  std::vector<v1::Case> open_;  // cases with more events to come
  uint64_t case_count_ = 0;
  std::vector<uint64_t> action_counts_;
};

int Fail(absl::string_view message) {
  std::cerr << "permit-gen-log: " << message << "\n";
  return 1;
}

// Flushes the memtables and compacts every column family of the (closed)
// database in `db`, with the options the store opens it with.
absl::Status Compact(const std::string& db) {
  rocksdb::DBOptions options;
  options.paranoid_checks = true;
  options.keep_log_file_num = 10;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : storage::RocksDbEventStore::ColumnFamilyNames()) {
    descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  rocksdb::DB* raw = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status s = rocksdb::DB::Open(options, db, descriptors, &handles, &raw);
  if (!s.ok()) return absl::InternalError(s.ToString());
  std::unique_ptr<rocksdb::DB> owned(raw);
  rocksdb::CompactRangeOptions cro;
  cro.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (rocksdb::ColumnFamilyHandle* h : handles) {
    if (s.ok()) s = raw->Flush(rocksdb::FlushOptions(), h);
    if (s.ok()) s = raw->CompactRange(cro, h, nullptr, nullptr);
  }
  for (rocksdb::ColumnFamilyHandle* h : handles) raw->DestroyColumnFamilyHandle(h);
  rocksdb::Status closed = raw->Close();
  if (s.ok()) s = closed;
  if (!s.ok()) return absl::InternalError(absl::StrCat("compacting ", db, ": ", s.ToString()));
  return absl::OkStatus();
}

int CompactAndReport(const std::string& db, uint64_t events) {
  const absl::Time t0 = absl::Now();
  if (absl::Status s = Compact(db); !s.ok()) return Fail(s.message());
  const uint64_t bytes = DirBytes(db);
  std::cout << absl::StrFormat(
      "compacted in %.1f s: db bytes %d (%.1f MB)", absl::ToDoubleSeconds(absl::Now() - t0),
      bytes, bytes / 1e6);
  if (events > 0) {
    std::cout << absl::StrFormat(", bytes/event %.1f", static_cast<double>(bytes) / events);
  }
  std::cout << "\n";
  return 0;
}

int Main() {
  const std::string data = absl::GetFlag(FLAGS_data);
  const uint64_t events = absl::GetFlag(FLAGS_events);
  const int batch = absl::GetFlag(FLAGS_batch);
  if (data.empty()) return Fail("--data DIR is required");
  if (batch < 1) return Fail("--batch must be at least 1");
  const fs::path dir(data);
  if (events == 0) {
    if (!absl::GetFlag(FLAGS_compact)) return Fail("--events 0 without --compact does nothing");
    const std::string db = (dir / "db").string();
    uint64_t size = 0;
    {
      storage::RocksDbEventStore::Options ro;
      ro.read_only = true;
      absl::StatusOr<std::unique_ptr<storage::RocksDbEventStore>> store =
          storage::RocksDbEventStore::Open(db, ro);
      if (!store.ok()) return Fail(store.status().ToString());
      size = (*store)->State().tree_size;
    }
    const uint64_t before = DirBytes(db);
    std::cout << absl::StrFormat("db bytes before %d (%.1f MB)\n", before, before / 1e6);
    return CompactAndReport(db, size);
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Fail(absl::StrCat("cannot create ", data, ": ", ec.message()));

  // Principals with fresh tokens, and the checkpoint signing key.
  std::vector<Principal> principals = {
      {"exp-acme", "exporter", "acme", ""},   {"exp-globex", "exporter", "globex", ""},
      {"exp-initech", "exporter", "initech", ""},
      {"rev-1", "reviewer", "", ""},          {"rev-2", "reviewer", "", ""},
      {"aud-1", "auditor", "", ""}};
  std::vector<std::string> entries;
  for (Principal& p : principals) {
    absl::StatusOr<std::string> token = RandomHex(32);
    if (!token.ok()) return Fail(token.status().message());
    p.token = *token;
    entries.push_back(absl::StrCat(
        "    {\"id\": \"", p.id, "\", \"role\": \"", p.role, "\"",
        p.org.empty() ? "" : absl::StrCat(", \"org\": \"", p.org, "\""),
        ", \"token_sha256\": \"", core::ToHex(core::Sha256(p.token)), "\"}"));
  }
  if (absl::Status s = WritePrivateFile(
          dir / "principals.json",
          absl::StrCat("{\"principals\": [\n", absl::StrJoin(entries, ",\n"), "\n]}\n"));
      !s.ok()) {
    return Fail(s.message());
  }
  absl::StatusOr<std::string> pem = core::NewSigningKeyPem();
  if (!pem.ok()) return Fail(pem.status().message());
  if (absl::Status s = WritePrivateFile(dir / "log-key.pem", *pem); !s.ok()) {
    return Fail(s.message());
  }

  const std::string db = (dir / "db").string();
  absl::StatusOr<std::unique_ptr<storage::RocksDbEventStore>> store =
      storage::RocksDbEventStore::Open(db);
  if (!store.ok()) return Fail(store.status().ToString());
  if ((*store)->State().tree_size != 0) {
    return Fail(absl::StrCat(db, " already holds ", (*store)->State().tree_size,
                             " events; give a new folder"));
  }

  // One second per batch, ending about now (so that a server started on the
  // folder carries on with later times).
  const uint64_t batches = (events + batch - 1) / batch;
  const absl::Time start =
      absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()) -
                            static_cast<int64_t>(batches));
  Generator gen(store->get(), principals, absl::GetFlag(FLAGS_seed),
                absl::GetFlag(FLAGS_open_cases));
  const absl::Time t0 = absl::Now();
  if (absl::Status s = gen.Run(events, batch, start); !s.ok()) {
    return Fail(s.ToString());
  }
  const double secs = absl::ToDoubleSeconds(absl::Now() - t0);
  const storage::LogState state = (*store)->State();
  store->reset();  // closes the database; every Append was synced

  const uint64_t bytes = DirBytes(db);
  std::cout << absl::StrFormat(
      "events %d\ncases %d\nseconds %.2f\nevents/s %.0f\nroot %s\n"
      "db bytes %d (%.1f MB)\nbytes/event %.1f (as the writer leaves it: recent "
      "writes may be in the write-ahead log only, and overwritten case "
      "snapshots stay until compaction; see --compact)\n",
      state.tree_size, state.case_count, secs, secs > 0 ? state.tree_size / secs : 0.0,
      core::ToHex(state.root), bytes, bytes / 1e6,
      state.tree_size > 0 ? static_cast<double>(bytes) / state.tree_size : 0.0);
  std::cout << "actions";
  for (size_t a = 1; a < gen.action_counts().size(); ++a) {
    std::cout << " " << core::ActionName(static_cast<v1::Action>(a)) << "="
              << gen.action_counts()[a];
  }
  std::cout << "\n# tokens (principals in " << (dir / "principals.json").string()
            << ")\n";
  for (const Principal& p : principals) {
    std::cout << p.id << " " << p.role << (p.org.empty() ? "" : " " + p.org) << " "
              << p.token << "\n";
  }
  std::cout << "# serve it with:\npermitd --data " << data << " --principals "
            << (dir / "principals.json").string() << " --signing_key "
            << (dir / "log-key.pem").string()
            << " --log_origin bench.invalid/log --listen 127.0.0.1:PORT\n";
  if (absl::GetFlag(FLAGS_compact)) return CompactAndReport(db, state.tree_size);
  return 0;
}

}  // namespace
}  // namespace permit::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "writes a realistic audit log of N events straight through the storage "
      "layer, for benchmarks:\n  permit-gen-log --data DIR --events N [--batch 1000]");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() > 1) {
    std::cerr << "permit-gen-log: unexpected argument " << args[1] << "\n";
    return 1;
  }
  return permit::bench::Main();
}
