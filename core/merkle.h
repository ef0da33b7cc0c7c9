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

// A Merkle tree of which only the frontier is kept.
class CompactTree {
 public:
  CompactTree() = default;

  // Rebuilds a tree from a stored size and frontier. INVALID_ARGUMENT if the
  // frontier does not have one hash per set bit of `size`.
  static absl::StatusOr<CompactTree> FromFrontier(uint64_t size,
                                                  std::vector<Hash> frontier);

  // Adds a leaf hash as the next entry. Amortised O(1), worst O(log n).
  void Append(const Hash& leaf_hash);
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
