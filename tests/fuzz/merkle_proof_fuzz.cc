// Fuzzes RFC 6962 / RFC 9162 proof verification and the tree helpers
// (core/merkle.h: VerifyInclusion, VerifyConsistency, InclusionProof,
// ConsistencyProof, RangeHash, CompactTree) with fuzz-chosen proofs, leaf
// indexes and tree sizes; the input layout is in fuzz_inputs.h. Trees are
// prefixes of one fixed tree of kMaxLeaves leaves, so a real proof can be
// mutated into a near-miss. Beyond "no crash" (any 64-bit sizes and
// indexes included):
//   - soundness: a proof that verifies for the real root (inclusion) or
//     the real pair of roots (consistency) is the one InclusionProof or
//     ConsistencyProof builds, for the real leaf (anything else would be a
//     SHA-256 collision), and its length is the tree's proof length for
//     that index or pair of sizes; with roots of the fuzzer's own choosing
//     a consistency proof may verify for the roots it leads to;
//   - completeness: the proof built for an index or pair of sizes verifies;
//   - binding: it verifies only for the root (or roots) of the tree it was
//     built from, not for neighbouring tree sizes' roots;
//   - building a proof reads only nodes inside the tree it is for;
//   - RangeHash over a range RFC 6962's recursion visits is that range's
//     tree hash; a CompactTree rebuilt from a frontier grows to the same
//     roots as the tree it came from.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "core/merkle.h"
#include "tests/fuzz/fuzz_inputs.h"

namespace {

using permit::core::Hash;
using permit::fuzz::kMaxLeaves;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "merkle_proof_fuzz: %s\n", what.c_str());
  std::abort();
}

// The fixed tree: its leaves, the root of each prefix, and its perfect nodes.
struct Tree {
  std::vector<Hash> leaves;
  std::vector<Hash> roots;                // roots[n]: the first n leaves
  std::vector<std::vector<Hash>> nodes;   // nodes[level][index]
};

const Tree& TheTree() {
  static const Tree* tree = [] {
    auto* t = new Tree;
    t->leaves = permit::fuzz::FixedLeaves();
    permit::core::CompactTree compact;
    t->roots.push_back(compact.Root());
    for (const Hash& leaf : t->leaves) {
      compact.Append(leaf);
      t->roots.push_back(compact.Root());
    }
    for (uint64_t n : {uint64_t{0}, uint64_t{1}, uint64_t{7}, uint64_t{512}, kMaxLeaves}) {
      if (t->roots[n] != permit::core::RootFromLeafHashes(
                             absl::MakeConstSpan(t->leaves).subspan(0, n))) {
        Fail(absl::StrCat("CompactTree's root of ", n, " leaves is not RFC 6962's"));
      }
    }
    t->nodes.push_back(t->leaves);
    while (t->nodes.back().size() >= 2) {
      const std::vector<Hash>& below = t->nodes.back();
      std::vector<Hash> level;
      for (size_t i = 0; i + 1 < below.size(); i += 2) {
        level.push_back(permit::core::NodeHash(below[i], below[i + 1]));
      }
      t->nodes.push_back(std::move(level));
    }
    return t;
  }();
  return *tree;
}

// Reads perfect nodes of the fixed tree, failing if one is asked for that
// lies outside the first `size` leaves.
permit::core::NodeReader ReaderFor(uint64_t size) {
  return [size](int level, uint64_t index) -> absl::StatusOr<Hash> {
    const Tree& t = TheTree();
    if (level < 0 || level >= 63 || static_cast<size_t>(level) >= t.nodes.size() ||
        index >= t.nodes[level].size() || ((index + 1) << level) > size) {
      Fail(absl::StrCat("read node level ", level, " index ", index, " outside a tree of ",
                        size, " leaves"));
    }
    return t.nodes[level][index];
  };
}

uint64_t Le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// RFC 9162's proof lengths, from the recursions' shape.
uint64_t SplitPoint(uint64_t n) {
  uint64_t k = 1;
  while (k << 1 < n) k <<= 1;
  return k;
}
size_t InclusionLength(uint64_t index, uint64_t size) {
  size_t len = 0;
  while (size > 1) {
    const uint64_t k = SplitPoint(size);
    if (index < k) {
      size = k;
    } else {
      index -= k;
      size -= k;
    }
    ++len;
  }
  return len;
}
size_t ConsistencyLength(uint64_t m, uint64_t n, bool complete) {
  if (m == n) return complete ? 0 : 1;
  const uint64_t k = SplitPoint(n);
  return 1 + (m <= k ? ConsistencyLength(m, k, complete) : ConsistencyLength(m - k, n - k, false));
}

// Neighbouring tree sizes, in range, whose roots a proof must not verify for.
std::vector<uint64_t> Others(uint64_t n) {
  std::vector<uint64_t> out;
  for (uint64_t m : {n - 1, n + 1, n / 2, n * 2}) {
    if (m >= 1 && m <= kMaxLeaves && m != n) out.push_back(m);
  }
  return out;
}

void Inclusion(uint8_t flags, uint64_t index, uint64_t size, std::vector<Hash> hashes) {
  const Tree& t = TheTree();
  if (flags & permit::fuzz::kFlagLarge) {
    // Only "no crash" and the length: no real tree this large.
    if (hashes.size() < 2) return;
    const Hash root = hashes[0], leaf = hashes[1];
    auto proof = absl::MakeConstSpan(hashes).subspan(2);
    if (permit::core::VerifyInclusion(index, size, leaf, proof, root).ok() &&
        proof.size() != InclusionLength(index, size)) {
      Fail("an inclusion proof of the wrong length verifies");
    }
    return;
  }
  Hash leaf = index < t.leaves.size() ? t.leaves[index] : Hash{};
  if ((flags & permit::fuzz::kFlagOwnHashes) && !hashes.empty()) {
    leaf = hashes.front();
    hashes.erase(hashes.begin());
  }
  const Hash& root = t.roots[size];
  const bool ok = permit::core::VerifyInclusion(index, size, leaf, hashes, root).ok();
  auto real = permit::core::InclusionProof(index, size, ReaderFor(size));
  if (index >= size) {
    if (ok || real.ok()) Fail(absl::StrCat("a proof for leaf ", index, " of ", size, " leaves"));
    return;
  }
  if (!real.ok()) Fail("InclusionProof fails: " + real.status().ToString());
  if (real->size() != InclusionLength(index, size)) Fail("InclusionProof's length");
  if (ok && (leaf != t.leaves[index] || hashes != *real)) {
    Fail(absl::StrCat("a proof other than the real one verifies leaf ", index, " of ", size));
  }
  if (!permit::core::VerifyInclusion(index, size, t.leaves[index], *real, root).ok()) {
    Fail(absl::StrCat("the real proof of leaf ", index, " of ", size, " does not verify"));
  }
  for (uint64_t other : Others(size)) {
    if (permit::core::VerifyInclusion(index, size, t.leaves[index], *real, t.roots[other]).ok() ||
        (index < other &&
         permit::core::VerifyInclusion(index, other, t.leaves[index], *real, t.roots[other]).ok() &&
         *real != *permit::core::InclusionProof(index, other, ReaderFor(other)))) {
      Fail(absl::StrCat("the proof of leaf ", index, " of ", size, " verifies for the root of ",
                        other));
    }
  }
}

void Consistency(uint8_t flags, uint64_t old_size, uint64_t new_size, std::vector<Hash> hashes) {
  const Tree& t = TheTree();
  if (flags & permit::fuzz::kFlagLarge) {
    if (hashes.size() < 2) return;
    auto proof = absl::MakeConstSpan(hashes).subspan(2);
    const bool ok =
        permit::core::VerifyConsistency(old_size, new_size, hashes[0], hashes[1], proof).ok();
    if (ok && old_size > new_size) Fail("a consistency proof from a larger tree verifies");
    if (ok && old_size > 0 && old_size < new_size &&
        proof.size() != ConsistencyLength(old_size, new_size, true)) {
      Fail("a consistency proof of the wrong length verifies");
    }
    return;
  }
  Hash old_root = t.roots[old_size], new_root = t.roots[new_size];
  if ((flags & permit::fuzz::kFlagOwnHashes) && hashes.size() >= 2) {
    old_root = hashes[0];
    new_root = hashes[1];
    hashes.erase(hashes.begin(), hashes.begin() + 2);
  }
  const bool ok =
      permit::core::VerifyConsistency(old_size, new_size, old_root, new_root, hashes).ok();
  auto real = permit::core::ConsistencyProof(old_size, new_size, ReaderFor(new_size));
  if (old_size > new_size) {
    if (ok || real.ok()) Fail("a consistency proof from a larger tree");
    return;
  }
  if (old_size == 0) {
    if (ok != hashes.empty()) Fail("from an empty tree: only the empty proof, always");
    if (real.ok()) Fail("ConsistencyProof from an empty tree");
    return;
  }
  if (!real.ok()) Fail("ConsistencyProof fails: " + real.status().ToString());
  if (old_size == new_size) {
    if (ok != (hashes.empty() && old_root == new_root)) Fail("equal sizes");
    if (!real->empty()) Fail("ConsistencyProof between equal sizes is not empty");
    return;
  }
  if (real->size() != ConsistencyLength(old_size, new_size, true)) {
    Fail("ConsistencyProof's length");
  }
  if (ok && hashes.size() != real->size()) {
    Fail(absl::StrCat("a consistency proof of the wrong length verifies ", old_size, " -> ",
                      new_size));
  }
  // With roots of its own choosing, any proof verifies for the roots it
  // leads to (libFuzzer sees the comparison and copies them in): that only
  // says some tree of new_size leaves extends some tree of old_size. For
  // our trees' roots only the real proof verifies.
  if (ok && old_root == t.roots[old_size] && new_root == t.roots[new_size] &&
      hashes != *real) {
    Fail(absl::StrCat("a proof other than the real one verifies ", old_size, " -> ", new_size));
  }
  if (!permit::core::VerifyConsistency(old_size, new_size, t.roots[old_size],
                                       t.roots[new_size], *real).ok()) {
    Fail(absl::StrCat("the real proof ", old_size, " -> ", new_size, " does not verify"));
  }
  for (uint64_t other : Others(new_size)) {
    if (permit::core::VerifyConsistency(old_size, new_size, t.roots[old_size],
                                        t.roots[other], *real).ok()) {
      Fail(absl::StrCat("the proof ", old_size, " -> ", new_size,
                        " verifies for the new root of ", other));
    }
  }
  for (uint64_t other : Others(old_size)) {
    if (permit::core::VerifyConsistency(old_size, new_size, t.roots[other],
                                        t.roots[new_size], *real).ok()) {
      Fail(absl::StrCat("the proof ", old_size, " -> ", new_size,
                        " verifies for the old root of ", other));
    }
  }
}

void Range(uint8_t flags, uint64_t a, uint64_t b, const std::vector<Hash>& hashes) {
  const Tree& t = TheTree();
  if (flags & permit::fuzz::kFlagLarge) {
    // A stored frontier of any size: FromFrontier must refuse a wrong count.
    auto tree = permit::core::CompactTree::FromFrontier(a, hashes);
    if (tree.ok()) {
      (void)tree->Root();
      if (a < UINT64_MAX) tree->Append(Hash{});
    }
    return;
  }
  const uint64_t begin = std::min(a, b), end = std::max(a, b);
  if (begin < end) {
    // RFC 6962's recursion visits [begin, end) when begin is a multiple of
    // the largest power of two below end - begin.
    if (begin % SplitPoint(end - begin) == 0 || end - begin == 1) {
      auto h = permit::core::RangeHash(begin, end, ReaderFor(end));
      const Hash want = permit::core::RootFromLeafHashes(
          absl::MakeConstSpan(t.leaves).subspan(begin, end - begin));
      if (!h.ok() || *h != want) Fail(absl::StrCat("RangeHash(", begin, ", ", end, ")"));
    }
  }
  // A compact tree of `begin` leaves, rebuilt from its frontier, grows to
  // the fixed tree's roots.
  permit::core::CompactTree grown;
  for (uint64_t i = 0; i < begin; ++i) grown.Append(t.leaves[i]);
  auto rebuilt = permit::core::CompactTree::FromFrontier(begin, grown.frontier());
  if (!rebuilt.ok()) Fail("FromFrontier refuses a real frontier");
  for (uint64_t i = begin; i < end; ++i) {
    std::vector<permit::core::TreeNode> completed;
    rebuilt->Append(t.leaves[i], &completed);
    for (const permit::core::TreeNode& n : completed) {
      if (n.level >= static_cast<int>(t.nodes.size()) ||
          n.index >= t.nodes[n.level].size() || t.nodes[n.level][n.index] != n.hash) {
        Fail(absl::StrCat("Append reports a wrong node level ", n.level, " index ", n.index));
      }
    }
  }
  if (rebuilt->size() != end || rebuilt->Root() != t.roots[end]) {
    Fail(absl::StrCat("a tree rebuilt at ", begin, " and grown to ", end, " has another root"));
  }
  std::vector<Hash> frontier = grown.frontier();
  frontier.push_back(Hash{});
  if (permit::core::CompactTree::FromFrontier(begin, frontier).ok()) {
    Fail("FromFrontier takes a frontier with one hash too many");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 18) return 0;
  const uint8_t mode = data[0], flags = data[1];
  uint64_t a = Le64(data + 2), b = Le64(data + 10);
  if (!(flags & permit::fuzz::kFlagLarge)) {
    a %= kMaxLeaves + 1;
    b %= kMaxLeaves + 1;
  }
  std::vector<Hash> hashes;
  for (size_t at = 18; at + 32 <= size; at += 32) {
    Hash h;
    std::copy(data + at, data + at + 32, h.begin());
    hashes.push_back(h);
  }
  switch (mode % 3) {
    case permit::fuzz::kInclusion: Inclusion(flags, a, b, std::move(hashes)); break;
    case permit::fuzz::kConsistency: Consistency(flags, a, b, std::move(hashes)); break;
    case permit::fuzz::kRange: Range(flags, a, b, hashes); break;
  }
  return 0;
}
