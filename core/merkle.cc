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

void CompactTree::Append(const Hash& leaf_hash) {
  Hash h = leaf_hash;
  // Each trailing one bit of the old size is a perfect subtree of the same
  // height as the carry: merge them, as in binary addition.
  for (uint64_t s = size_; s & 1; s >>= 1) {
    h = NodeHash(frontier_.back(), h);
    frontier_.pop_back();
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
