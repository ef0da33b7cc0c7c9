// RFC 6962 / RFC 9162 Merkle tree hashing for the audit log: leaf and node
// hashes, and CompactTree, which keeps only the O(log n) "frontier" (the
// roots of the perfect subtrees that make up a tree of n leaves) and yields
// the tree hash after each append without revisiting earlier leaves.
//
// Thread-safety: the free functions are thread-safe; a CompactTree is not
// (its owner serializes access).
#ifndef PERMIT_CORE_MERKLE_H_
#define PERMIT_CORE_MERKLE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace permit::core {

using Hash = std::array<uint8_t, 32>;

// SHA-256 of `data`.
Hash Sha256(absl::string_view data);
// SHA-256(0x00 || leaf): the hash of one log entry.
Hash LeafHash(absl::string_view leaf);
// SHA-256(0x01 || left || right): an interior node.
Hash NodeHash(const Hash& left, const Hash& right);
// The tree hash of an empty tree: SHA-256 of the empty string.
Hash EmptyRoot();

// The root over `leaf_hashes` computed straight from RFC 6962's recursive
// definition. O(n); the reference that tests and verifiers check against.
Hash RootFromLeafHashes(absl::Span<const Hash> leaf_hashes);

std::string ToHex(const Hash& h);
absl::string_view AsBytes(const Hash& h);
// Parses 32 raw bytes; INVALID_ARGUMENT otherwise.
absl::StatusOr<Hash> HashFromBytes(absl::string_view bytes);

// A node of the tree that covers a perfect (power-of-two) run of leaves:
// level 0 is a leaf, level k covers leaves [index << k, (index + 1) << k).
struct TreeNode {
  int level = 0;
  uint64_t index = 0;
  Hash hash{};
};

// Reads the hash of a stored perfect-subtree node. NOT_FOUND (or DATA_LOSS)
// if the node was never stored.
using NodeReader = std::function<absl::StatusOr<Hash>(int level, uint64_t index)>;

// The tree hash of leaves [begin, end), assembled from O(log n) perfect
// nodes. `begin` must be a multiple of the largest power of two below
// end - begin (true of every subtree RFC 6962's recursion visits).
absl::StatusOr<Hash> RangeHash(uint64_t begin, uint64_t end, const NodeReader& read);

// RFC 9162 section 2.1.3.1: the audit path of leaf `index` (0-based) in the
// tree of the first `size` leaves.
absl::StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size,
                                                 const NodeReader& read);
// RFC 9162 section 2.1.4.1: the proof that the tree of `old_size` leaves is
// a prefix of the tree of `new_size` leaves (0 < old_size <= new_size).
absl::StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t old_size,
                                                   uint64_t new_size,
                                                   const NodeReader& read);

// RFC 9162 section 2.1.3.2. OK if `proof` shows `leaf_hash` at `index` in
// the tree of `size` leaves with root `root`; otherwise INVALID_ARGUMENT
// saying why.
absl::Status VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf_hash,
                             absl::Span<const Hash> proof, const Hash& root);
// RFC 9162 section 2.1.4.2. OK if `proof` shows that `old_root` (of
// `old_size` leaves) is a prefix of `new_root` (of `new_size` leaves). An
// empty old tree is consistent with every tree.
absl::Status VerifyConsistency(uint64_t old_size, uint64_t new_size,
                               const Hash& old_root, const Hash& new_root,
                               absl::Span<const Hash> proof);

// A Merkle tree of which only the frontier is kept.
class CompactTree {
 public:
  CompactTree() = default;

  // Rebuilds a tree from a stored size and frontier. INVALID_ARGUMENT if the
  // frontier does not have one hash per set bit of `size`.
  static absl::StatusOr<CompactTree> FromFrontier(uint64_t size,
                                                  std::vector<Hash> frontier);

  // Adds a leaf hash as the next entry. Amortised O(1), worst O(log n).
  // If `completed` is set, the perfect nodes this append completes (the
  // leaf itself, then each merged parent) are added to it, for storage.
  void Append(const Hash& leaf_hash, std::vector<TreeNode>* completed = nullptr);
  // The tree hash of all leaves so far. O(log n).
  Hash Root() const;
  uint64_t size() const { return size_; }
  // Roots of the perfect subtrees, largest (leftmost) first.
  const std::vector<Hash>& frontier() const { return frontier_; }

 private:
  uint64_t size_ = 0;
  std::vector<Hash> frontier_;
};

}  // namespace permit::core

#endif  // PERMIT_CORE_MERKLE_H_
