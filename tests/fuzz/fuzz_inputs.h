// What the fuzz targets' inputs mean, shared by the targets and by
// make_corpus.cc, which writes their seed corpora: the fixed keys the
// checkpoint target signs and verifies with, the fixed leaves the Merkle
// target builds its trees from, and the layout of that target's input;
// and one helper the targets share.
//
// The keys are test keys, published here on purpose: fuzzing needs the same
// key on every run so that a crash found once reproduces.
#ifndef PERMIT_TESTS_FUZZ_FUZZ_INPUTS_H_
#define PERMIT_TESTS_FUZZ_FUZZ_INPUTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/merkle.h"
#include "google/protobuf/stubs/logging.h"

namespace permit::fuzz {

// Protobuf logs every string field with bad UTF-8 it refuses to parse; the
// targets that parse call this once, so the fuzzer's output stays readable
// and its speed is not spent on stderr.
inline void QuietProtobufLogs() { google::protobuf::SetLogHandler(nullptr); }

// checkpoint_fuzz: the log's key (origin) and a witness's key that cosigns.
inline constexpr char kLogName[] = "permit.invalid/log";
inline constexpr char kLogKeyPem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIA5SIBAoKUGu72aHlIHGSM/Wfye+g61J/GVL5axli2Ut\n"
    "-----END PRIVATE KEY-----\n";
inline constexpr char kWitnessName[] = "witness.invalid/w1";
inline constexpr char kWitnessKeyPem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIEMlPXaL6rN6QRzzA4bCDYGWVAKRUSghcQxo54BxP1+t\n"
    "-----END PRIVATE KEY-----\n";

// merkle_proof_fuzz: trees are prefixes of one tree of kMaxLeaves leaves,
// leaf i being LeafHash("leaf <i>").
inline constexpr uint64_t kMaxLeaves = 1000;
inline std::vector<core::Hash> FixedLeaves() {
  std::vector<core::Hash> leaves;
  for (uint64_t i = 0; i < kMaxLeaves; ++i) {
    leaves.push_back(core::LeafHash(absl::StrCat("leaf ", i)));
  }
  return leaves;
}

// merkle_proof_fuzz's input:
//   byte 0       mode: 0 inclusion, 1 consistency, 2 range hash and compact tree
//   byte 1       flags: kFlagLarge takes a and b as they are (any 64-bit
//                value); otherwise they are reduced modulo kMaxLeaves + 1 and
//                name a tree of the fixed leaves. kFlagOwnHashes takes the
//                leaf (inclusion) or both roots (consistency) from the
//                hashes that follow instead of the fixed tree's.
//   bytes 2-9    a, little-endian: leaf index, or old tree size
//   bytes 10-17  b, little-endian: tree size, or new tree size
//   then         32-byte hashes: the proof (after any own leaf or roots)
enum MerkleMode : uint8_t { kInclusion = 0, kConsistency = 1, kRange = 2 };
inline constexpr uint8_t kFlagLarge = 1;
inline constexpr uint8_t kFlagOwnHashes = 2;

inline std::string MerkleInput(MerkleMode mode, uint8_t flags, uint64_t a, uint64_t b,
                               const std::vector<core::Hash>& hashes) {
  std::string out;
  out.push_back(static_cast<char>(mode));
  out.push_back(static_cast<char>(flags));
  for (uint64_t v : {a, b}) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  for (const core::Hash& h : hashes) out.append(h.begin(), h.end());
  return out;
}

}  // namespace permit::fuzz

#endif  // PERMIT_TESTS_FUZZ_FUZZ_INPUTS_H_
