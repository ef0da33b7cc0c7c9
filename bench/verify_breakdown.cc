// permit-verify-breakdown: where the time of `permitd verify` goes, phase by
// phase, on a database folder opened read-only. Each phase repeats one part
// of server/verify.cc's work in isolation, so that the figures add up to
// (about) a verify run, and times a cheaper variant beside it where one is
// obvious:
//
//   open              RocksDbEventStore::Open, read-only (replays the WAL)
//   scan              ReadEvents over every event, doing nothing with them
//   parse             + v1::Event::ParseFromArray into a fresh message
//   parse (reused)    + the same into one message reused across events
//   hash              + LeafHash and CompactTree::Append
//   verifier          core::LogVerifier::Add on every event (the real thing)
//   list cases        ListCases in pages of 1000
//   check snapshots   LogVerifier::CheckSnapshot (MessageDifferencer)
//   compare bytes     serialize both cases and compare the bytes instead
//   teardown          destroying the verifier's case map
//
//   permit-verify-breakdown --data DIR
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "core/log_verifier.h"
#include "core/merkle.h"
#include "storage/rocksdb_event_store.h"

ABSL_FLAG(std::string, data, "", "Data folder whose DATA/db to open read-only.");

namespace permit::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

void Print(const char* phase, double secs, uint64_t n, const char* unit) {
  std::cout << absl::StrFormat("%-34s %7.2f s  %9.0f %s/s  %6.2f us/%s\n", phase,
                               secs, secs > 0 ? n / secs : 0.0, unit,
                               n > 0 ? secs * 1e6 / n : 0.0, unit);
}

int Fail(absl::string_view message) {
  std::cerr << "permit-verify-breakdown: " << message << "\n";
  return 1;
}

int Main() {
  const std::string data = absl::GetFlag(FLAGS_data);
  if (data.empty()) return Fail("--data DIR is required");
  const std::string db = (std::filesystem::path(data) / "db").string();

  auto t = Clock::now();
  storage::RocksDbEventStore::Options options;
  options.read_only = true;
  absl::StatusOr<std::unique_ptr<storage::RocksDbEventStore>> opened =
      storage::RocksDbEventStore::Open(db, options);
  if (!opened.ok()) return Fail(opened.status().ToString());
  std::unique_ptr<storage::RocksDbEventStore> store = *std::move(opened);
  const uint64_t size = store->State().tree_size;
  Print("open (read-only)", Since(t), size, "event");

  auto scan = [&](const char* phase,
                  const std::function<bool(uint64_t, absl::string_view)>& fn) {
    const auto start = Clock::now();
    absl::Status s = store->ReadEvents(1, size, fn);
    if (!s.ok()) {
      std::cerr << phase << ": " << s << "\n";
      return false;
    }
    Print(phase, Since(start), size, "event");
    return true;
  };
  uint64_t sink = 0;
  if (!scan("scan events (no work)", [&](uint64_t, absl::string_view b) {
        sink += b.size();
        return true;
      })) {
    return 1;
  }
  if (!scan("scan + parse (fresh Event)", [&](uint64_t, absl::string_view b) {
        v1::Event e;
        sink += e.ParseFromArray(b.data(), static_cast<int>(b.size()));
        return true;
      })) {
    return 1;
  }
  {
    v1::Event e;
    if (!scan("scan + parse (reused Event)", [&](uint64_t, absl::string_view b) {
          sink += e.ParseFromArray(b.data(), static_cast<int>(b.size()));
          return true;
        })) {
      return 1;
    }
  }
  {
    core::CompactTree tree;
    if (!scan("scan + LeafHash + tree", [&](uint64_t, absl::string_view b) {
          tree.Append(core::LeafHash(b));
          return true;
        })) {
      return 1;
    }
  }

  auto verifier = std::make_unique<core::LogVerifier>();
  absl::Status bad;
  if (!scan("LogVerifier::Add (full)", [&](uint64_t seq, absl::string_view b) {
        bad = verifier->Add(seq, b);
        return bad.ok();
      })) {
    return 1;
  }
  if (!bad.ok()) return Fail(bad.ToString());

  // The snapshots, as server/verify.cc pages through them.
  t = Clock::now();
  std::vector<v1::Case> stored;
  std::string after;
  for (;;) {
    absl::StatusOr<std::vector<v1::Case>> page =
        store->ListCases(storage::CaseFilter(), after, 1000);
    if (!page.ok()) return Fail(page.status().ToString());
    const size_t n = page->size();
    if (n > 0) after = page->back().id();
    for (v1::Case& c : *page) stored.push_back(std::move(c));
    if (n < 1000) break;
  }
  Print("ListCases (pages of 1000)", Since(t), stored.size(), "case");

  t = Clock::now();
  for (const v1::Case& c : stored) {
    if (absl::Status s = verifier->CheckSnapshot(c); !s.ok()) return Fail(s.ToString());
  }
  Print("CheckSnapshot (MessageDifferencer)", Since(t), stored.size(), "case");

  t = Clock::now();
  std::string a, b;
  uint64_t equal = 0;
  for (const v1::Case& c : stored) {
    const v1::Case* derived = verifier->FindCase(c.id());
    if (derived == nullptr) continue;
    a.clear();
    b.clear();
    derived->SerializeToString(&a);
    c.SerializeToString(&b);
    equal += a == b;
  }
  Print("serialize both + compare bytes", Since(t), stored.size(), "case");
  if (equal != stored.size()) {
    std::cout << "  (" << stored.size() - equal
              << " cases differ by bytes though equal by MessageDifferencer)\n";
  }

  t = Clock::now();
  stored.clear();
  stored.shrink_to_fit();
  Print("free the stored snapshots", Since(t), verifier->case_count(), "case");
  t = Clock::now();
  const size_t cases = verifier->case_count();
  verifier.reset();
  Print("free the verifier (case map)", Since(t), cases, "case");
  t = Clock::now();
  store.reset();
  Print("close the store", Since(t), size, "event");
  if (sink == 42) std::cout << "\n";  // keeps the scans from being optimized out
  return 0;
}

}  // namespace
}  // namespace permit::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "times each phase of `permitd verify` on a database folder (read-only):\n"
      "  permit-verify-breakdown --data DIR");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() > 1) {
    std::cerr << "permit-verify-breakdown: unexpected argument " << args[1] << "\n";
    return 1;
  }
  return permit::bench::Main();
}
