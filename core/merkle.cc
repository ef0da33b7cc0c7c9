// RFC 6962 hashing with OpenSSL's SHA-256; see merkle.h.
#include "core/merkle.h"

#include <openssl/evp.h>

#include <bitset>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace permit::core {
namespace {

// One fetched SHA-256 implementation and a context per thread: fetching the
// algorithm on every call costs more than hashing a small event.
class Hasher {
 public:
  Hasher() : md_(EVP_MD_fetch(nullptr, "SHA256", nullptr)), ctx_(EVP_MD_CTX_new()) {}
  ~Hasher() {
    EVP_MD_CTX_free(ctx_);
    EVP_MD_free(md_);
  }
  Hash Digest(uint8_t prefix, bool use_prefix, absl::string_view a,
              absl::string_view b) {
    Hash out;
    unsigned int len = 0;
    if (md_ == nullptr || ctx_ == nullptr ||
        EVP_DigestInit_ex(ctx_, md_, nullptr) != 1 ||
        (use_prefix && EVP_DigestUpdate(ctx_, &prefix, 1) != 1) ||
        EVP_DigestUpdate(ctx_, a.data(), a.size()) != 1 ||
        EVP_DigestUpdate(ctx_, b.data(), b.size()) != 1 ||
        EVP_DigestFinal_ex(ctx_, out.data(), &len) != 1 || len != out.size()) {
      // Only a broken OpenSSL installation gets here; a wrong hash would
      // corrupt the log, so stop rather than continue.
      abort();
    }
    return out;
  }

 private:
  EVP_MD* md_;
  EVP_MD_CTX* ctx_;
};

Hasher& ThreadHasher() {
  thread_local Hasher hasher;
  return hasher;
}

// Largest power of two strictly less than n (n >= 2).
uint64_t SplitPoint(uint64_t n) {
  uint64_t k = 1;
  while (k << 1 < n) k <<= 1;
  return k;
}

}  // namespace

Hash Sha256(absl::string_view data) {
  return ThreadHasher().Digest(0, false, data, {});
}

Hash LeafHash(absl::string_view leaf) {
  return ThreadHasher().Digest(0x00, true, leaf, {});
}

Hash NodeHash(const Hash& left, const Hash& right) {
  return ThreadHasher().Digest(0x01, true, AsBytes(left), AsBytes(right));
}

Hash EmptyRoot() { return Sha256({}); }

Hash RootFromLeafHashes(absl::Span<const Hash> leaves) {
  if (leaves.empty()) return EmptyRoot();
  if (leaves.size() == 1) return leaves[0];
  uint64_t k = SplitPoint(leaves.size());
  return NodeHash(RootFromLeafHashes(leaves.subspan(0, k)),
                  RootFromLeafHashes(leaves.subspan(k)));
}

std::string ToHex(const Hash& h) { return absl::BytesToHexString(AsBytes(h)); }

absl::string_view AsBytes(const Hash& h) {
  return absl::string_view(reinterpret_cast<const char*>(h.data()), h.size());
}

absl::StatusOr<Hash> HashFromBytes(absl::string_view bytes) {
  Hash h;
  if (bytes.size() != h.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a hash is 32 bytes, got ", bytes.size()));
  }
  std::memcpy(h.data(), bytes.data(), h.size());
  return h;
}

absl::StatusOr<CompactTree> CompactTree::FromFrontier(uint64_t size,
                                                      std::vector<Hash> frontier) {
  if (std::bitset<64>(size).count() != frontier.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a tree of ", size, " leaves has ", std::bitset<64>(size).count(),
        " frontier hashes, not ", frontier.size()));
  }
  CompactTree t;
  t.size_ = size;
  t.frontier_ = std::move(frontier);
  return t;
}

void CompactTree::Append(const Hash& leaf_hash, std::vector<TreeNode>* completed) {
  Hash h = leaf_hash;
  int level = 0;
  if (completed != nullptr) completed->push_back({0, size_, h});
  // Each trailing one bit of the old size is a perfect subtree of the same
  // height as the carry: merge them, as in binary addition.
  for (uint64_t s = size_; s & 1; s >>= 1) {
    h = NodeHash(frontier_.back(), h);
    frontier_.pop_back();
    ++level;
    if (completed != nullptr) completed->push_back({level, size_ >> level, h});
  }
  frontier_.push_back(h);
  ++size_;
}

Hash CompactTree::Root() const {
  if (frontier_.empty()) return EmptyRoot();
  Hash h = frontier_.back();
  for (size_t i = frontier_.size() - 1; i-- > 0;) {
    h = NodeHash(frontier_[i], h);
  }
  return h;
}

}  // namespace permit::core

namespace permit::core {
namespace {

int Log2Floor(uint64_t v) { return 63 - __builtin_clzll(v); }

absl::Status ProofPath(uint64_t index, uint64_t lo, uint64_t hi,
                       const NodeReader& read, std::vector<Hash>* out) {
  if (hi - lo == 1) return absl::OkStatus();
  const uint64_t k = SplitPoint(hi - lo);
  absl::StatusOr<Hash> sibling;
  if (index < lo + k) {
    if (absl::Status s = ProofPath(index, lo, lo + k, read, out); !s.ok()) return s;
    sibling = RangeHash(lo + k, hi, read);
  } else {
    if (absl::Status s = ProofPath(index, lo + k, hi, read, out); !s.ok()) return s;
    sibling = RangeHash(lo, lo + k, read);
  }
  if (!sibling.ok()) return sibling.status();
  out->push_back(*sibling);
  return absl::OkStatus();
}

// RFC 6962 SUBPROOF(m, D[lo:hi], b).
absl::Status SubProof(uint64_t m, uint64_t lo, uint64_t hi, bool complete,
                      const NodeReader& read, std::vector<Hash>* out) {
  const uint64_t n = hi - lo;
  if (m == n) {
    if (complete) return absl::OkStatus();
    absl::StatusOr<Hash> h = RangeHash(lo, hi, read);
    if (!h.ok()) return h.status();
    out->push_back(*h);
    return absl::OkStatus();
  }
  const uint64_t k = SplitPoint(n);
  absl::StatusOr<Hash> sibling;
  if (m <= k) {
    if (absl::Status s = SubProof(m, lo, lo + k, complete, read, out); !s.ok()) return s;
    sibling = RangeHash(lo + k, hi, read);
  } else {
    if (absl::Status s = SubProof(m - k, lo + k, hi, false, read, out); !s.ok()) return s;
    sibling = RangeHash(lo, lo + k, read);
  }
  if (!sibling.ok()) return sibling.status();
  out->push_back(*sibling);
  return absl::OkStatus();
}

absl::Status ProofError(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("proof does not verify: ", what));
}

}  // namespace

absl::StatusOr<Hash> RangeHash(uint64_t begin, uint64_t end, const NodeReader& read) {
  if (begin >= end) return absl::InvalidArgumentError("empty range");
  std::vector<Hash> parts;
  for (uint64_t a = begin; a < end;) {
    int level = Log2Floor(end - a);
    if (a != 0) level = std::min(level, __builtin_ctzll(a));
    absl::StatusOr<Hash> h = read(level, a >> level);
    if (!h.ok()) return h.status();
    parts.push_back(*h);
    a += uint64_t{1} << level;
  }
  Hash h = parts.back();
  for (size_t i = parts.size() - 1; i-- > 0;) h = NodeHash(parts[i], h);
  return h;
}

absl::StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size,
                                                 const NodeReader& read) {
  if (index >= size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "leaf ", index, " is not in a tree of ", size, " leaves"));
  }
  std::vector<Hash> out;
  if (absl::Status s = ProofPath(index, 0, size, read, &out); !s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t old_size,
                                                   uint64_t new_size,
                                                   const NodeReader& read) {
  if (old_size == 0 || old_size > new_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "no consistency proof from size ", old_size, " to ", new_size,
        "; need 0 < old <= new"));
  }
  std::vector<Hash> out;
  if (old_size == new_size) return out;
  if (absl::Status s = SubProof(old_size, 0, new_size, true, read, &out); !s.ok()) {
    return s;
  }
  return out;
}

absl::Status VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf_hash,
                             absl::Span<const Hash> proof, const Hash& root) {
  if (index >= size) return ProofError("the leaf index is beyond the tree size");
  uint64_t fn = index;
  uint64_t sn = size - 1;
  Hash r = leaf_hash;
  for (const Hash& p : proof) {
    if (sn == 0) return ProofError("the proof is too long");
    if ((fn & 1) || fn == sn) {
      r = NodeHash(p, r);
      if (!(fn & 1)) {
        while (!(fn & 1) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return ProofError("the proof is too short");
  if (r != root) return ProofError("the computed root differs from the expected root");
  return absl::OkStatus();
}

absl::Status VerifyConsistency(uint64_t old_size, uint64_t new_size,
                               const Hash& old_root, const Hash& new_root,
                               absl::Span<const Hash> proof) {
  if (old_size > new_size) return ProofError("the old tree is larger than the new");
  if (old_size == 0) {
    if (!proof.empty()) return ProofError("a proof from an empty tree must be empty");
    return absl::OkStatus();
  }
  if (old_size == new_size) {
    if (!proof.empty()) return ProofError("a proof between equal sizes must be empty");
    if (old_root != new_root) return ProofError("equal sizes with different roots");
    return absl::OkStatus();
  }
  if (proof.empty()) return ProofError("the proof is empty");
  std::vector<Hash> path(proof.begin(), proof.end());
  if ((old_size & (old_size - 1)) == 0) path.insert(path.begin(), old_root);
  uint64_t fn = old_size - 1;
  uint64_t sn = new_size - 1;
  while (fn & 1) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = path[0];
  Hash sr = path[0];
  for (size_t i = 1; i < path.size(); ++i) {
    const Hash& c = path[i];
    if (sn == 0) return ProofError("the proof is too long");
    if ((fn & 1) || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      if (!(fn & 1)) {
        while (!(fn & 1) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return ProofError("the proof is too short");
  if (fr != old_root) return ProofError("it does not lead to the old root");
  if (sr != new_root) return ProofError("it does not lead to the new root");
  return absl::OkStatus();
}

}  // namespace permit::core
