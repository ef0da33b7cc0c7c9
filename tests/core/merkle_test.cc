// Tests core/merkle.h: RFC 6962 tree hashes against the certificate-
// transparency test vectors, CompactTree's incremental root against the
// recursive reference, rebuilding a CompactTree from its stored frontier,
// hash parsing, and RFC 9162 inclusion and consistency proofs: published
// vectors, every proof of every tree up to 64 leaves, and tampered proofs.
#include "core/merkle.h"

#include <bitset>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace permit::testing {
namespace {

using ::permit::core::AsBytes;
using ::permit::core::CompactTree;
using ::permit::core::ConsistencyProof;
using ::permit::core::EmptyRoot;
using ::permit::core::Hash;
using ::permit::core::HashFromBytes;
using ::permit::core::InclusionProof;
using ::permit::core::LeafHash;
using ::permit::core::NodeHash;
using ::permit::core::NodeReader;
using ::permit::core::RangeHash;
using ::permit::core::RootFromLeafHashes;
using ::permit::core::Sha256;
using ::permit::core::ToHex;
using ::permit::core::TreeNode;
using ::permit::core::VerifyConsistency;
using ::permit::core::VerifyInclusion;
using ::testing::HasSubstr;

constexpr char kEmptySha256[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// The leaves of the RFC 6962 test vectors (certificate-transparency,
// merkle_tree_test.cc).
std::vector<std::string> VectorLeaves() {
  return {
      std::string(""),
      std::string("\x00", 1),
      std::string("\x10", 1),
      std::string("\x20\x21", 2),
      std::string("\x30\x31", 2),
      std::string("\x40\x41\x42\x43", 4),
      std::string("\x50\x51\x52\x53\x54\x55\x56\x57", 8),
      std::string("\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d"
                  "\x6e\x6f",
                  16),
  };
}

// Expected tree hashes for the first 1..8 of VectorLeaves().
const char* const kVectorRoots[] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

// Distinct leaf hashes for the incremental tests.
std::vector<Hash> NumberedLeafHashes(int n) {
  std::vector<Hash> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i)
    out.push_back(LeafHash(absl::StrCat("event-", i)));
  return out;
}

TEST(MerkleTest, Sha256MatchesKnownDigests) {
  EXPECT_EQ(ToHex(Sha256("")), kEmptySha256);
  EXPECT_EQ(ToHex(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(MerkleTest, EmptyTreeRootIsSha256OfEmptyString) {
  EXPECT_EQ(ToHex(EmptyRoot()), kEmptySha256);
  EXPECT_EQ(ToHex(RootFromLeafHashes({})), kEmptySha256);
  EXPECT_EQ(ToHex(CompactTree().Root()), kEmptySha256);
  EXPECT_EQ(CompactTree().size(), 0u);
}

TEST(MerkleTest, LeafAndNodeHashesUseDomainSeparationPrefixes) {
  const std::string leaf = "some event bytes";
  EXPECT_EQ(LeafHash(leaf), Sha256(std::string("\x00", 1) + leaf));
  const Hash a = LeafHash("a");
  const Hash b = LeafHash("b");
  EXPECT_EQ(NodeHash(a, b), Sha256(absl::StrCat(std::string("\x01", 1),
                                                AsBytes(a), AsBytes(b))));
  EXPECT_NE(NodeHash(a, b), NodeHash(b, a));
}

TEST(MerkleTest, RootsMatchRfc6962TestVectors) {
  const std::vector<std::string> leaves = VectorLeaves();
  std::vector<Hash> hashes;
  CompactTree tree;
  for (size_t n = 1; n <= leaves.size(); ++n) {
    SCOPED_TRACE(absl::StrCat("tree size ", n));
    hashes.push_back(LeafHash(leaves[n - 1]));
    tree.Append(hashes.back());
    EXPECT_EQ(ToHex(RootFromLeafHashes(hashes)), kVectorRoots[n - 1]);
    EXPECT_EQ(ToHex(tree.Root()), kVectorRoots[n - 1]);
    EXPECT_EQ(tree.size(), n);
  }
}

TEST(CompactTreeTest, RootEqualsReferenceRootForEverySizeUpTo300) {
  const std::vector<Hash> leaves = NumberedLeafHashes(300);
  CompactTree tree;
  EXPECT_EQ(tree.Root(), RootFromLeafHashes({}));
  for (size_t n = 1; n <= leaves.size(); ++n) {
    SCOPED_TRACE(absl::StrCat("tree size ", n));
    tree.Append(leaves[n - 1]);
    ASSERT_EQ(tree.size(), n);
    EXPECT_EQ(tree.frontier().size(), std::bitset<64>(n).count());
    EXPECT_EQ(tree.Root(),
              RootFromLeafHashes(absl::MakeConstSpan(leaves.data(), n)));
  }
}

TEST(CompactTreeTest, FrontierHoldsThePerfectSubtreeRootsLargestFirst) {
  const std::vector<Hash> leaves = NumberedLeafHashes(6);
  CompactTree tree;
  for (const Hash& h : leaves) tree.Append(h);
  // 6 = 4 + 2: the roots over leaves [0, 4) and [4, 6).
  ASSERT_EQ(tree.frontier().size(), 2u);
  EXPECT_EQ(tree.frontier()[0],
            RootFromLeafHashes(absl::MakeConstSpan(leaves.data(), 4)));
  EXPECT_EQ(tree.frontier()[1],
            RootFromLeafHashes(absl::MakeConstSpan(leaves.data() + 4, 2)));
}

TEST(CompactTreeTest, FromFrontierRoundTripsAndKeepsAppending) {
  constexpr int kTotal = 300;
  const std::vector<Hash> leaves = NumberedLeafHashes(kTotal);
  for (uint64_t size : {0, 1, 2, 3, 5, 7, 8, 31, 64, 100, 255, 256, 257}) {
    SCOPED_TRACE(absl::StrCat("rebuilt at size ", size));
    CompactTree original;
    for (uint64_t i = 0; i < size; ++i) original.Append(leaves[i]);

    absl::StatusOr<CompactTree> rebuilt =
        CompactTree::FromFrontier(original.size(), original.frontier());
    ASSERT_THAT(rebuilt, IsOk());
    EXPECT_EQ(rebuilt->size(), size);
    EXPECT_EQ(rebuilt->frontier(), original.frontier());
    EXPECT_EQ(rebuilt->Root(), original.Root());

    for (uint64_t n = size + 1; n <= kTotal; ++n) {
      original.Append(leaves[n - 1]);
      rebuilt->Append(leaves[n - 1]);
      ASSERT_EQ(rebuilt->Root(), original.Root()) << "after size " << n;
      ASSERT_EQ(rebuilt->Root(),
                RootFromLeafHashes(absl::MakeConstSpan(leaves.data(), n)))
          << "after size " << n;
    }
  }
}

TEST(CompactTreeTest, FromFrontierRejectsAFrontierOfTheWrongLength) {
  const std::vector<Hash> three = NumberedLeafHashes(3);
  struct Row {
    uint64_t size;
    size_t hashes;
  };
  // A frontier needs one hash per set bit of the size.
  const std::vector<Row> rows = {
      {0, 1}, {1, 0}, {1, 2}, {5, 1}, {5, 3}, {7, 2}, {8, 0}, {8, 2},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(
        absl::StrCat("size ", row.size, " with ", row.hashes, " hashes"));
    std::vector<Hash> frontier(three.begin(), three.begin() + row.hashes);
    EXPECT_THAT(CompactTree::FromFrontier(row.size, frontier),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

TEST(HashFromBytesTest, AcceptsExactly32Bytes) {
  const Hash h = LeafHash("x");
  absl::StatusOr<Hash> parsed = HashFromBytes(AsBytes(h));
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(*parsed, h);
  EXPECT_EQ(AsBytes(*parsed), AsBytes(h));
}

TEST(HashFromBytesTest, RejectsOtherLengths) {
  for (size_t len : {0, 1, 31, 33, 64}) {
    SCOPED_TRACE(len);
    EXPECT_THAT(HashFromBytes(std::string(len, '\x5a')),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

TEST(ToHexTest, RendersLowerCaseHex) {
  absl::StatusOr<Hash> h = HashFromBytes(absl::HexStringToBytes(
      "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF"));
  ASSERT_THAT(h, IsOk());
  EXPECT_EQ(ToHex(*h),
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
}

// ---------------------------------------------------------------------------
// Proofs.

// Hex of the published hashes of the 8-leaf tree over VectorLeaves(). None
// of the expected values below is computed by our code.
//
// Perfect-subtree node hashes, by level and index: transparency-dev/merkle,
// testonly/constants.go, NodeHashes() (the same tree as google/certificate-
// transparency cpp/merkletree/merkle_tree_test.cc).
constexpr char kA[] = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d";  // leaf 0
constexpr char kB[] = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7";  // leaf 1
constexpr char kC[] = "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7";  // leaf 2
constexpr char kD[] = "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7";  // leaf 3
constexpr char kE[] = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b";  // leaf 4
constexpr char kF[] = "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658";  // leaf 5
constexpr char kJ[] = "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f";  // leaf 6
constexpr char kLeaf7[] = "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1";
constexpr char kG[] = "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125";  // [0,2)
constexpr char kH[] = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e";  // [2,4)
constexpr char kI[] = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a";  // [4,6)
constexpr char kL1N3[] = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0";  // [6,8)
constexpr char kK[] = "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7";  // [0,4)
constexpr char kL2N1[] = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4";  // [4,8)
constexpr char kL3N0[] = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328";  // [0,8)
// l, the hash over leaves [4, 7) in the 7-leaf tree (not a perfect subtree,
// so not in NodeHashes()): SHA-256(0x01 || i || j), computed with Python's
// hashlib from the published i and j, and published in the same form in
// several third-party RFC 6962 vector tables. The test below also checks
// that SHA-256(0x01 || k || l) is the published 7-leaf root.
constexpr char kL[] = "837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e";

Hash H(absl::string_view hex) {
  absl::StatusOr<Hash> h = HashFromBytes(absl::HexStringToBytes(hex));
  EXPECT_THAT(h, IsOk()) << hex;
  return h.ok() ? *h : Hash{};
}

std::vector<std::string> HexOf(const std::vector<Hash>& hashes) {
  std::vector<std::string> out;
  for (const Hash& h : hashes) out.push_back(ToHex(h));
  return out;
}

// Perfect-subtree nodes as CompactTree::Append reports them, the way the
// server stores them; Reader() serves them as a NodeReader.
class NodeStore {
 public:
  void Append(const Hash& leaf_hash) {
    std::vector<TreeNode> completed;
    tree_.Append(leaf_hash, &completed);
    for (const TreeNode& n : completed) nodes_[{n.level, n.index}] = n.hash;
  }
  NodeReader Reader() const {
    return [this](int level, uint64_t index) -> absl::StatusOr<Hash> {
      auto it = nodes_.find({level, index});
      if (it == nodes_.end()) {
        return absl::NotFoundError(absl::StrCat("no node ", level, "/", index));
      }
      return it->second;
    };
  }
  const std::map<std::pair<int, uint64_t>, Hash>& nodes() const { return nodes_; }
  const CompactTree& tree() const { return tree_; }

 private:
  CompactTree tree_;
  std::map<std::pair<int, uint64_t>, Hash> nodes_;
};

NodeStore VectorStore(size_t n) {
  NodeStore store;
  const std::vector<std::string> leaves = VectorLeaves();
  for (size_t i = 0; i < n; ++i) store.Append(LeafHash(leaves[i]));
  return store;
}

TEST(ProofTest, StoredNodesMatchThePublishedNodeHashes) {
  const NodeStore store = VectorStore(8);
  const std::map<std::pair<int, uint64_t>, const char*> want = {
      {{0, 0}, kA},    {{0, 1}, kB},    {{0, 2}, kC},     {{0, 3}, kD},
      {{0, 4}, kE},    {{0, 5}, kF},    {{0, 6}, kJ},     {{0, 7}, kLeaf7},
      {{1, 0}, kG},    {{1, 1}, kH},    {{1, 2}, kI},     {{1, 3}, kL1N3},
      {{2, 0}, kK},    {{2, 1}, kL2N1}, {{3, 0}, kL3N0},
  };
  ASSERT_EQ(store.nodes().size(), want.size());
  for (const auto& [key, hex] : want) {
    SCOPED_TRACE(absl::StrCat("level ", key.first, " index ", key.second));
    auto it = store.nodes().find(key);
    ASSERT_NE(it, store.nodes().end());
    EXPECT_EQ(ToHex(it->second), hex);
  }
}

TEST(ProofTest, SevenLeafRootIsNodeOfKAndL) {
  // Checks kL against the published root with nothing but SHA-256.
  EXPECT_EQ(ToHex(Sha256(absl::StrCat(std::string("\x01", 1),
                                      absl::HexStringToBytes(kK),
                                      absl::HexStringToBytes(kL)))),
            kVectorRoots[6]);
  EXPECT_EQ(ToHex(Sha256(absl::StrCat(std::string("\x01", 1),
                                      absl::HexStringToBytes(kI),
                                      absl::HexStringToBytes(kJ)))),
            kL);
}

struct InclusionVector {
  uint64_t index;
  uint64_t size;
  std::vector<const char*> proof;
};

// RFC 9162 section 2.1.5 (RFC 6962 section 2.1.3) names the proofs in the
// 7-leaf tree: d0 [b, h, l], d3 [c, g, l], d4 [f, j, k], d6 [i, k]; the hashes
// are the published ones above. The 8- 3- and 5-leaf rows are verbatim from
// google/certificate-transparency cpp/merkletree/merkle_tree_test.cc
// kSHA256Paths and transparency-dev/merkle proof/verify_test.go
// inclusionProofs (which number leaves from 1).
const std::vector<InclusionVector>& InclusionVectors() {
  static const auto* v = new std::vector<InclusionVector>{
      {0, 7, {kB, kH, kL}},
      {3, 7, {kC, kG, kL}},
      {4, 7, {kF, kJ, kK}},
      {6, 7, {kI, kK}},
      {0, 1, {}},
      {0, 8, {kB, kH, kL2N1}},
      {5, 8, {kE, kL1N3, kK}},
      {2, 3, {kG}},
      {1, 5, {kA, kH, kE}},
  };
  return *v;
}

struct ConsistencyVector {
  uint64_t old_size;
  uint64_t new_size;
  std::vector<const char*> proof;
};

// 3->7 [c, d, g, l], 4->7 [l] and 6->7 [i, j, k] are RFC 9162 section 2.1.5's
// (RFC 6962 section 2.1.3's) example proofs with the published hashes; 6->7,
// 1->8, 6->8 and 2->5 are verbatim from transparency-dev/merkle
// proof/verify_test.go consistencyProofs (the last three also
// google/certificate-transparency merkle_tree_test.cc kSHA256Proofs).
const std::vector<ConsistencyVector>& ConsistencyVectors() {
  static const auto* v = new std::vector<ConsistencyVector>{
      {3, 7, {kC, kD, kG, kL}},
      {4, 7, {kL}},
      {6, 7, {kI, kJ, kK}},
      {1, 8, {kB, kH, kL2N1}},
      {6, 8, {kI, kL1N3, kK}},
      {2, 5, {kH, kE}},
      {1, 1, {}},
  };
  return *v;
}

TEST(ProofTest, InclusionProofsMatchPublishedVectors) {
  const NodeStore store = VectorStore(8);
  const std::vector<std::string> leaves = VectorLeaves();
  for (const InclusionVector& v : InclusionVectors()) {
    SCOPED_TRACE(absl::StrCat("leaf ", v.index, " in tree of ", v.size));
    std::vector<std::string> want(v.proof.begin(), v.proof.end());
    absl::StatusOr<std::vector<Hash>> proof =
        InclusionProof(v.index, v.size, store.Reader());
    ASSERT_THAT(proof, IsOk());
    EXPECT_EQ(HexOf(*proof), want);

    // The published proof verifies against the published root.
    const Hash root = H(kVectorRoots[v.size - 1]);
    std::vector<Hash> published;
    for (const char* hex : v.proof) published.push_back(H(hex));
    EXPECT_THAT(VerifyInclusion(v.index, v.size, LeafHash(leaves[v.index]),
                                published, root),
                IsOk());
  }
}

TEST(ProofTest, ConsistencyProofsMatchPublishedVectors) {
  const NodeStore store = VectorStore(8);
  for (const ConsistencyVector& v : ConsistencyVectors()) {
    SCOPED_TRACE(absl::StrCat(v.old_size, " -> ", v.new_size));
    std::vector<std::string> want(v.proof.begin(), v.proof.end());
    absl::StatusOr<std::vector<Hash>> proof =
        ConsistencyProof(v.old_size, v.new_size, store.Reader());
    ASSERT_THAT(proof, IsOk());
    EXPECT_EQ(HexOf(*proof), want);

    std::vector<Hash> published;
    for (const char* hex : v.proof) published.push_back(H(hex));
    EXPECT_THAT(VerifyConsistency(v.old_size, v.new_size,
                                  H(kVectorRoots[v.old_size - 1]),
                                  H(kVectorRoots[v.new_size - 1]), published),
                IsOk());
  }
}

// Every way of tampering with a valid inclusion proof that must be refused
// (after transparency-dev/merkle proof/verify_test.go corruptInclusionProof).
void ExpectInclusionTamperingRefused(uint64_t index, uint64_t size,
                                     const Hash& leaf,
                                     const std::vector<Hash>& proof,
                                     const Hash& root) {
  auto refused = [&](uint64_t i, uint64_t n, const Hash& l,
                     const std::vector<Hash>& p, const Hash& r,
                     absl::string_view what) {
    EXPECT_THAT(VerifyInclusion(i, n, l, p, r),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << what << " (leaf " << index << " of " << size << ")";
  };
  // Wrong index. (index - 1 wraps to 2^64 - 1 for leaf 0: also refused.)
  refused(index - 1, size, leaf, proof, root, "index - 1");
  refused(index + 1, size, leaf, proof, root, "index + 1");
  refused(index ^ 2, size, leaf, proof, root, "index ^ 2");
  refused(size, size, leaf, proof, root, "index == size");
  // Wrong size: both change the length of every audit path.
  refused(index, size * 2, leaf, proof, root, "size * 2");
  refused(index, size / 2, leaf, proof, root, "size / 2");
  refused(index, 0, leaf, proof, root, "size 0");
  // Wrong leaf or root.
  refused(index, size, LeafHash("WrongLeaf"), proof, root, "wrong leaf");
  refused(index, size, leaf, proof, EmptyRoot(), "empty root");
  Hash other_root = root;
  other_root[31] ^= 1;
  refused(index, size, leaf, proof, other_root, "root with a flipped bit");
  // A flipped bit in each proof hash.
  for (size_t i = 0; i < proof.size(); ++i) {
    for (int bit : {0, 3, 7}) {
      std::vector<Hash> p = proof;
      p[i][bit * 4] ^= static_cast<uint8_t>(1 << bit);
      refused(index, size, leaf, p, root,
              absl::StrCat("proof[", i, "] bit ", bit, " flipped"));
    }
  }
  // Truncated, extended, or with a hash inserted.
  if (!proof.empty()) {
    refused(index, size, leaf,
            std::vector<Hash>(proof.begin(), proof.end() - 1), root,
            "last hash removed");
    refused(index, size, leaf, std::vector<Hash>(proof.begin() + 1, proof.end()),
            root, "first hash removed");
  }
  std::vector<Hash> longer = proof;
  longer.push_back(root);
  refused(index, size, leaf, longer, root, "root appended");
  longer.back() = Hash{};
  refused(index, size, leaf, longer, root, "zero hash appended");
  std::vector<Hash> prefixed = proof;
  prefixed.insert(prefixed.begin(), leaf);
  refused(index, size, leaf, prefixed, root, "leaf prepended");
  if (proof.size() > 1) {
    std::vector<Hash> p = proof;
    std::swap(p[0], p[1]);
    refused(index, size, leaf, p, root, "first two hashes swapped");
  }
}

// The same for consistency proofs (after corruptConsistencyProof).
void ExpectConsistencyTamperingRefused(uint64_t m, uint64_t n,
                                       const Hash& old_root,
                                       const Hash& new_root,
                                       const std::vector<Hash>& proof) {
  auto refused = [&](uint64_t a, uint64_t b, const Hash& ra, const Hash& rb,
                     const std::vector<Hash>& p, absl::string_view what) {
    EXPECT_THAT(VerifyConsistency(a, b, ra, rb, p),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << what << " (" << m << " -> " << n << ")";
  };
  Hash wrong = old_root;
  wrong[0] ^= 0x10;
  // Wrong old roots are refused even for equal sizes.
  refused(m, n, wrong, new_root, proof, "wrong old root");
  Hash wrong_new = new_root;
  wrong_new[0] ^= 0x10;
  refused(m, n, old_root, wrong_new, proof, "wrong new root");
  refused(n + 1, n, old_root, new_root, proof, "old size beyond new size");
  if (m == n) {
    refused(m, n, old_root, new_root, {old_root}, "non-empty proof, equal sizes");
    return;
  }
  refused(m, n, new_root, old_root, proof, "swapped roots");
  refused(m - 1, n, old_root, new_root, proof, "old size - 1");
  refused(m + 1, n, old_root, new_root, proof, "old size + 1");
  refused(m ^ 2, n, old_root, new_root, proof, "old size ^ 2");
  refused(m, n * 2, old_root, new_root, proof, "new size * 2");
  refused(m, n / 2, old_root, new_root, proof, "new size / 2");
  refused(m, n, old_root, new_root, {}, "empty proof");
  for (size_t i = 0; i < proof.size(); ++i) {
    for (int bit : {0, 4, 7}) {
      std::vector<Hash> p = proof;
      p[i][bit * 4] ^= static_cast<uint8_t>(1 << bit);
      refused(m, n, old_root, new_root, p,
              absl::StrCat("proof[", i, "] bit ", bit, " flipped"));
    }
  }
  refused(m, n, old_root, new_root,
          std::vector<Hash>(proof.begin(), proof.end() - 1), "truncated");
  for (const Hash& extra : {Hash{}, old_root, new_root, proof.back()}) {
    std::vector<Hash> p = proof;
    p.push_back(extra);
    refused(m, n, old_root, new_root, p, "a hash appended");
    p = proof;
    p.insert(p.begin(), extra);
    refused(m, n, old_root, new_root, p, "a hash prepended");
  }
}

TEST(ProofTest, PublishedVectorsRefuseEveryTampering) {
  const std::vector<std::string> leaves = VectorLeaves();
  for (const InclusionVector& v : InclusionVectors()) {
    SCOPED_TRACE(absl::StrCat("leaf ", v.index, " in tree of ", v.size));
    std::vector<Hash> proof;
    for (const char* hex : v.proof) proof.push_back(H(hex));
    ExpectInclusionTamperingRefused(v.index, v.size, LeafHash(leaves[v.index]),
                                    proof, H(kVectorRoots[v.size - 1]));
  }
  for (const ConsistencyVector& v : ConsistencyVectors()) {
    SCOPED_TRACE(absl::StrCat(v.old_size, " -> ", v.new_size));
    std::vector<Hash> proof;
    for (const char* hex : v.proof) proof.push_back(H(hex));
    ExpectConsistencyTamperingRefused(v.old_size, v.new_size,
                                      H(kVectorRoots[v.old_size - 1]),
                                      H(kVectorRoots[v.new_size - 1]), proof);
  }
}

// Every inclusion proof of every tree of up to 64 leaves, served from only
// the nodes stored by the time the tree had that size, verifies against the
// recursive reference root, and no tampered variant does.
TEST(ProofTest, EveryInclusionProofUpTo64LeavesVerifies) {
  constexpr uint64_t kMax = 64;
  const std::vector<Hash> leaves = NumberedLeafHashes(kMax);
  NodeStore store;
  for (uint64_t n = 1; n <= kMax; ++n) {
    store.Append(leaves[n - 1]);
    const Hash root = RootFromLeafHashes(absl::MakeConstSpan(leaves.data(), n));
    ASSERT_EQ(store.tree().Root(), root);
    for (uint64_t m = 0; m < n; ++m) {
      SCOPED_TRACE(absl::StrCat("leaf ", m, " in tree of ", n));
      absl::StatusOr<std::vector<Hash>> proof =
          InclusionProof(m, n, store.Reader());
      ASSERT_THAT(proof, IsOk());
      ASSERT_THAT(VerifyInclusion(m, n, leaves[m], *proof, root), IsOk());
      ExpectInclusionTamperingRefused(m, n, leaves[m], *proof, root);
      // The proof is for this leaf only.
      for (uint64_t other = 0; other < n; ++other) {
        if (other == m) continue;
        ASSERT_THAT(VerifyInclusion(m, n, leaves[other], *proof, root),
                    StatusIs(absl::StatusCode::kInvalidArgument))
            << "leaf " << other;
      }
    }
  }
}

TEST(ProofTest, EveryConsistencyProofUpTo64LeavesVerifies) {
  constexpr uint64_t kMax = 64;
  const std::vector<Hash> leaves = NumberedLeafHashes(kMax);
  std::vector<Hash> roots;  // roots[s] is the root of the first s leaves
  for (uint64_t s = 0; s <= kMax; ++s) {
    roots.push_back(RootFromLeafHashes(absl::MakeConstSpan(leaves.data(), s)));
  }
  NodeStore store;
  for (uint64_t n = 1; n <= kMax; ++n) {
    store.Append(leaves[n - 1]);
    for (uint64_t m = 1; m <= n; ++m) {
      SCOPED_TRACE(absl::StrCat(m, " -> ", n));
      absl::StatusOr<std::vector<Hash>> proof =
          ConsistencyProof(m, n, store.Reader());
      ASSERT_THAT(proof, IsOk());
      EXPECT_EQ(proof->empty(), m == n);
      ASSERT_THAT(VerifyConsistency(m, n, roots[m], roots[n], *proof), IsOk());
      ExpectConsistencyTamperingRefused(m, n, roots[m], roots[n], *proof);
      // A tree of another history of the same size is not consistent.
      if (m < n) {
        std::vector<Hash> forged(leaves.begin(), leaves.begin() + m);
        forged[m - 1] = LeafHash("forged");
        ASSERT_THAT(VerifyConsistency(m, n, RootFromLeafHashes(forged),
                                      roots[n], *proof),
                    StatusIs(absl::StatusCode::kInvalidArgument));
      }
    }
  }
}

TEST(ProofTest, EmptyOldTreeIsConsistentWithEveryTree) {
  const std::vector<Hash> leaves = NumberedLeafHashes(5);
  const Hash root = RootFromLeafHashes(leaves);
  EXPECT_THAT(VerifyConsistency(0, 5, EmptyRoot(), root, {}), IsOk());
  EXPECT_THAT(VerifyConsistency(0, 0, EmptyRoot(), EmptyRoot(), {}), IsOk());
  EXPECT_THAT(VerifyConsistency(0, 5, EmptyRoot(), root, {root}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ProofTest, ProofRequestsOutsideTheTreeAreRefused) {
  NodeStore store = VectorStore(8);
  EXPECT_THAT(InclusionProof(0, 0, store.Reader()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(InclusionProof(7, 7, store.Reader()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ConsistencyProof(0, 5, store.Reader()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ConsistencyProof(6, 5, store.Reader()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(RangeHash(3, 3, store.Reader()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ProofTest, ReaderErrorsArePassedThrough) {
  const NodeReader not_found = [](int level, uint64_t index) -> absl::StatusOr<Hash> {
    return absl::NotFoundError(absl::StrCat("node ", level, "/", index, " missing"));
  };
  EXPECT_THAT(InclusionProof(0, 2, not_found),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(InclusionProof(6, 7, not_found),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(ConsistencyProof(3, 7, not_found),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(ConsistencyProof(4, 7, not_found),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(RangeHash(0, 5, not_found), StatusIs(absl::StatusCode::kNotFound));
  // Proofs that need no node need no reader.
  EXPECT_THAT(InclusionProof(0, 1, not_found), IsOk());
  EXPECT_THAT(ConsistencyProof(5, 5, not_found), IsOk());

  // One node missing from an otherwise full store: every proof that needs it
  // fails with the reader's status; none silently succeeds with a wrong hash.
  const NodeStore store = VectorStore(8);
  const NodeReader full = store.Reader();
  const NodeReader without_i = [&](int level, uint64_t index) -> absl::StatusOr<Hash> {
    if (level == 1 && index == 2) return absl::DataLossError("node 1/2 lost");
    return full(level, index);
  };
  EXPECT_THAT(InclusionProof(0, 7, without_i), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(InclusionProof(6, 7, without_i), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(ConsistencyProof(6, 7, without_i), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(InclusionProof(0, 4, without_i), IsOk());  // needs only [0, 4)
}

// RangeHash of every range [begin, end) with begin a multiple of the largest
// power of two below end - begin, within 64 leaves.
TEST(ProofTest, RangeHashEqualsReferenceRootOfTheSlice) {
  constexpr uint64_t kMax = 64;
  const std::vector<Hash> leaves = NumberedLeafHashes(kMax);
  NodeStore store;
  for (const Hash& h : leaves) store.Append(h);
  int checked = 0;
  for (uint64_t begin = 0; begin < kMax; ++begin) {
    for (uint64_t end = begin + 1; end <= kMax; ++end) {
      const uint64_t n = end - begin;
      uint64_t k = 1;
      while (k * 2 < n) k *= 2;
      if (n > 1 && begin % k != 0) continue;
      SCOPED_TRACE(absl::StrCat("[", begin, ", ", end, ")"));
      absl::StatusOr<Hash> h = RangeHash(begin, end, store.Reader());
      ASSERT_THAT(h, IsOk());
      EXPECT_EQ(*h, RootFromLeafHashes(
                        absl::MakeConstSpan(leaves.data() + begin, n)));
      ++checked;
    }
  }
  EXPECT_GT(checked, 300);
}

TEST(ProofTest, CompletedNodesNameTheLeavesTheyCover) {
  constexpr uint64_t kMax = 64;
  const std::vector<Hash> leaves = NumberedLeafHashes(kMax);
  CompactTree tree;
  for (uint64_t i = 0; i < kMax; ++i) {
    std::vector<TreeNode> completed;
    tree.Append(leaves[i], &completed);
    SCOPED_TRACE(absl::StrCat("append of leaf ", i));
    // The leaf, then one parent per trailing one bit of i.
    ASSERT_EQ(completed.size(), 1 + static_cast<size_t>(__builtin_ctzll(~i)));
    for (const TreeNode& node : completed) {
      const uint64_t first = node.index << node.level;
      const uint64_t count = uint64_t{1} << node.level;
      EXPECT_EQ(first + count, i + 1);
      EXPECT_EQ(node.hash, RootFromLeafHashes(
                               absl::MakeConstSpan(leaves.data() + first, count)));
    }
  }
}

}  // namespace
}  // namespace permit::testing
