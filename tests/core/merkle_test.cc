// Tests core/merkle.h: RFC 6962 tree hashes against the certificate-
// transparency test vectors, CompactTree's incremental root against the
// recursive reference, rebuilding a CompactTree from its stored frontier,
// and hash parsing.
#include "core/merkle.h"

#include <bitset>
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
using ::permit::core::EmptyRoot;
using ::permit::core::Hash;
using ::permit::core::HashFromBytes;
using ::permit::core::LeafHash;
using ::permit::core::NodeHash;
using ::permit::core::RootFromLeafHashes;
using ::permit::core::Sha256;
using ::permit::core::ToHex;

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

}  // namespace
}  // namespace permit::testing
