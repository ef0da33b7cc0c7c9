// permit-proof-bench: how long inclusion and consistency proofs take to build
// from a database folder, the way the server builds them (core::InclusionProof
// and core::ConsistencyProof over RocksDbEventStore::TreeNode), at the log's
// full size.
//
//   permit-proof-bench --data DIR [--proofs 10000] [--verify_every 10]
//
// Opens DIR/db read-only (so also while a permitd serves it). Times
// --proofs inclusion proofs of random leaves and --proofs consistency proofs
// from random old sizes to the full size, prints p50, p99, mean and max, and
// checks every --verify_every-th proof with core::VerifyInclusion /
// VerifyConsistency against the stored head (outside the timed part).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/merkle.h"
#include "storage/rocksdb_event_store.h"

ABSL_FLAG(std::string, data, "", "Data folder whose DATA/db to open read-only.");
ABSL_FLAG(int, proofs, 10000, "Proofs of each kind to time.");
ABSL_FLAG(int, verify_every, 10, "Verify every N-th proof (0: none).");
ABSL_FLAG(uint64_t, seed, 1, "Seed for the random leaves and sizes.");

namespace permit::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Figures {
  double p50_us = 0, p99_us = 0, mean_us = 0, max_us = 0;
};

Figures Summarize(std::vector<double> us) {
  Figures f;
  if (us.empty()) return f;
  std::sort(us.begin(), us.end());
  auto at = [&](double q) {
    return us[std::min(us.size() - 1, static_cast<size_t>(q * us.size()))];
  };
  f.p50_us = at(0.50);
  f.p99_us = at(0.99);
  f.max_us = us.back();
  double sum = 0;
  for (double v : us) sum += v;
  f.mean_us = sum / us.size();
  return f;
}

int Fail(absl::string_view message) {
  std::cerr << "permit-proof-bench: " << message << "\n";
  return 1;
}

int Main() {
  const std::string data = absl::GetFlag(FLAGS_data);
  const int n = absl::GetFlag(FLAGS_proofs);
  const int verify_every = absl::GetFlag(FLAGS_verify_every);
  if (data.empty()) return Fail("--data DIR is required");
  const std::string db = (std::filesystem::path(data) / "db").string();

  storage::RocksDbEventStore::Options options;
  options.read_only = true;
  const auto open_start = Clock::now();
  absl::StatusOr<std::unique_ptr<storage::RocksDbEventStore>> opened =
      storage::RocksDbEventStore::Open(db, options);
  if (!opened.ok()) return Fail(opened.status().ToString());
  const double open_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - open_start).count();
  const storage::RocksDbEventStore& store = **opened;
  const uint64_t size = store.State().tree_size;
  const core::Hash root = store.State().root;
  if (size < 2) return Fail("the log needs at least 2 events");

  uint64_t node_reads = 0;
  const core::NodeReader read = [&](int level, uint64_t index) {
    ++node_reads;
    return store.TreeNode(level, index);
  };
  auto leaf_hash = [&](uint64_t sequence) -> absl::StatusOr<core::Hash> {
    absl::StatusOr<core::Hash> out = absl::NotFoundError("no such event");
    absl::Status s = store.ReadEvents(sequence, sequence,
                                      [&](uint64_t, absl::string_view bytes) {
                                        out = core::LeafHash(bytes);
                                        return false;
                                      });
    if (!s.ok()) return s;
    return out;
  };

  std::mt19937_64 rng(absl::GetFlag(FLAGS_seed));
  std::cout << absl::StrFormat("log: %d events, root %s (opened read-only in %.0f ms)\n",
                               size, core::ToHex(root), open_ms);

  // Inclusion proofs of random leaves in the full tree.
  {
    std::vector<double> us;
    us.reserve(n);
    uint64_t hashes = 0, verified = 0;
    node_reads = 0;
    for (int i = 0; i < n; ++i) {
      const uint64_t index = rng() % size;
      const auto t = Clock::now();
      absl::StatusOr<std::vector<core::Hash>> proof =
          core::InclusionProof(index, size, read);
      us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count());
      if (!proof.ok()) {
        return Fail(absl::StrCat("inclusion proof of leaf ", index, ": ",
                                 proof.status().ToString()));
      }
      hashes += proof->size();
      if (verify_every > 0 && i % verify_every == 0) {
        absl::StatusOr<core::Hash> leaf = leaf_hash(index + 1);
        if (!leaf.ok()) return Fail(leaf.status().ToString());
        if (absl::Status s = core::VerifyInclusion(index, size, *leaf, *proof, root);
            !s.ok()) {
          return Fail(absl::StrCat("inclusion proof of leaf ", index,
                                   " does not verify: ", s.ToString()));
        }
        ++verified;
      }
    }
    const uint64_t reads = node_reads;
    const Figures f = Summarize(us);
    std::cout << absl::StrFormat(
        "inclusion proofs (%d, random leaves, tree size %d): p50 %.1f us, p99 "
        "%.1f us, mean %.1f us, max %.1f us; %.1f hashes and %.1f node reads "
        "per proof; %d verified OK\n",
        n, size, f.p50_us, f.p99_us, f.mean_us, f.max_us,
        static_cast<double>(hashes) / n, static_cast<double>(reads) / n, verified);
  }

  // Consistency proofs from random old sizes to the full size.
  {
    std::vector<double> us;
    us.reserve(n);
    uint64_t hashes = 0, verified = 0;
    node_reads = 0;
    for (int i = 0; i < n; ++i) {
      const uint64_t old_size = 1 + rng() % (size - 1);
      const auto t = Clock::now();
      absl::StatusOr<std::vector<core::Hash>> proof =
          core::ConsistencyProof(old_size, size, read);
      us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count());
      if (!proof.ok()) {
        return Fail(absl::StrCat("consistency proof from ", old_size, ": ",
                                 proof.status().ToString()));
      }
      hashes += proof->size();
      if (verify_every > 0 && i % verify_every == 0) {
        const uint64_t before = node_reads;
        absl::StatusOr<core::Hash> old_root = core::RangeHash(0, old_size, read);
        node_reads = before;  // not part of the proof
        if (!old_root.ok()) return Fail(old_root.status().ToString());
        if (absl::Status s =
                core::VerifyConsistency(old_size, size, *old_root, root, *proof);
            !s.ok()) {
          return Fail(absl::StrCat("consistency proof from ", old_size,
                                   " does not verify: ", s.ToString()));
        }
        ++verified;
      }
    }
    const uint64_t reads = node_reads;
    const Figures f = Summarize(us);
    std::cout << absl::StrFormat(
        "consistency proofs (%d, random old size to %d): p50 %.1f us, p99 "
        "%.1f us, mean %.1f us, max %.1f us; %.1f hashes and %.1f node reads "
        "per proof; %d verified OK\n",
        n, size, f.p50_us, f.p99_us, f.mean_us, f.max_us,
        static_cast<double>(hashes) / n, static_cast<double>(reads) / n, verified);
  }
  return 0;
}

}  // namespace
}  // namespace permit::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "times inclusion- and consistency-proof generation on a database folder "
      "(opened read-only):\n  permit-proof-bench --data DIR [--proofs 10000]");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() > 1) {
    std::cerr << "permit-proof-bench: unexpected argument " << args[1] << "\n";
    return 1;
  }
  return permit::bench::Main();
}
