// Tests core/checkpoint.h: the C2SP tlog-checkpoint body, and C2SP signed
// notes with Ed25519: signing, opening, the exact note layout, the key id
// and verifier key format (checked with OpenSSL directly, not through the
// code under test), tampered and malformed notes, bad verifier keys, and
// interoperability with the published golang.org/x/mod/sumdb/note vectors.
#include "core/checkpoint.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace permit::testing {
namespace {

using ::permit::core::Checkpoint;
using ::permit::core::CheckpointBody;
using ::permit::core::Hash;
using ::permit::core::HashFromBytes;
using ::permit::core::NewSigningKeyPem;
using ::permit::core::NoteSigner;
using ::permit::core::NoteVerifier;
using ::permit::core::ParseCheckpointBody;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr absl::string_view kEmDash = "\xE2\x80\x94";

// --- Independent helpers: OpenSSL used directly. ---------------------------

std::string IndependentSha256(absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr) != 1) {
    ADD_FAILURE() << "EVP_Digest failed";
    return "";
  }
  return std::string(reinterpret_cast<char*>(out), len);
}

// C2SP signed-note: key ID = SHA-256(key name || 0x0A || 0x01 || public key)[:4].
std::string IndependentKeyId(absl::string_view name, absl::string_view pub) {
  std::string material(name);
  material.push_back('\x0A');
  material.push_back('\x01');
  material.append(pub.data(), pub.size());
  return IndependentSha256(material).substr(0, 4);
}

// The raw 32-byte Ed25519 public key of a PEM private key.
std::string PublicKeyOf(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  unsigned char pub[32];
  size_t len = sizeof(pub);
  const bool ok = key != nullptr && EVP_PKEY_get_raw_public_key(key, pub, &len) == 1;
  EVP_PKEY_free(key);
  if (!ok || len != 32) {
    ADD_FAILURE() << "not an Ed25519 key";
    return "";
  }
  return std::string(reinterpret_cast<char*>(pub), 32);
}

bool Ed25519Verifies(const std::string& pub, absl::string_view msg,
                     absl::string_view sig) {
  EVP_PKEY* key = EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(pub.data()),
      pub.size());
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      key != nullptr && ctx != nullptr &&
      EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, key) == 1 &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()),
                       sig.size(), reinterpret_cast<const unsigned char*>(msg.data()),
                       msg.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  return ok;
}

// A PKCS#8 PEM for the Ed25519 private key with this 32-byte seed (RFC 8410:
// the DER prefix below, then the seed).
std::string PemFromSeed(absl::string_view seed) {
  const std::string der =
      absl::HexStringToBytes("302e020100300506032b657004220420") + std::string(seed);
  return absl::StrCat("-----BEGIN PRIVATE KEY-----\n", absl::Base64Escape(der),
                      "\n-----END PRIVATE KEY-----\n");
}

Hash TestRoot() {
  // The RFC 6962 root of the 8 certificate-transparency test leaves.
  return *HashFromBytes(absl::HexStringToBytes(
      "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"));
}

std::unique_ptr<NoteSigner> NewSigner(absl::string_view name,
                                      std::string* pem_out = nullptr) {
  absl::StatusOr<std::string> pem = NewSigningKeyPem();
  EXPECT_THAT(pem, IsOk());
  if (!pem.ok()) return nullptr;
  if (pem_out != nullptr) *pem_out = *pem;
  absl::StatusOr<std::unique_ptr<NoteSigner>> signer = NoteSigner::Create(*pem, name);
  EXPECT_THAT(signer, IsOk());
  return signer.ok() ? std::move(*signer) : nullptr;
}

std::unique_ptr<NoteVerifier> VerifierFor(absl::string_view key) {
  absl::StatusOr<std::unique_ptr<NoteVerifier>> v = NoteVerifier::Create(key);
  EXPECT_THAT(v, IsOk()) << key;
  return v.ok() ? std::move(*v) : nullptr;
}

// --- The checkpoint body. --------------------------------------------------

TEST(CheckpointBodyTest, HasTheC2spLayout) {
  const Checkpoint c{"permit.example/log", 1042, TestRoot()};
  // base64 of the root computed with Python's base64 module.
  EXPECT_EQ(CheckpointBody(c),
            "permit.example/log\n1042\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n");
}

TEST(CheckpointBodyTest, RoundTrips) {
  Hash other{};
  for (size_t i = 0; i < other.size(); ++i) other[i] = static_cast<uint8_t>(0xff - i);
  const std::vector<Checkpoint> cases = {
      {"permit.example/log", 1042, TestRoot()},
      {"permit.invalid/log", 0, Hash{}},
      {"x", 1, other},
      {"example.com/a/b-c_d", 18446744073709551615u, TestRoot()},
  };
  for (const Checkpoint& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.origin, " ", c.size));
    absl::StatusOr<Checkpoint> parsed = ParseCheckpointBody(CheckpointBody(c));
    ASSERT_THAT(parsed, IsOk());
    EXPECT_EQ(parsed->origin, c.origin);
    EXPECT_EQ(parsed->size, c.size);
    EXPECT_EQ(parsed->root, c.root);
  }
}

TEST(CheckpointBodyTest, ExtensionLinesAreIgnored) {
  const Checkpoint c{"permit.example/log", 7, TestRoot()};
  absl::StatusOr<Checkpoint> parsed =
      ParseCheckpointBody(CheckpointBody(c) + "Timestamp: 1700000000\nmore\n");
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->size, 7u);
  EXPECT_EQ(parsed->root, TestRoot());
}

TEST(CheckpointBodyTest, MalformedBodiesAreInvalidArgument) {
  const std::string root = absl::Base64Escape(
      std::string(reinterpret_cast<const char*>(TestRoot().data()), 32));
  const std::string root31 = absl::Base64Escape(std::string(31, '\x42'));
  const std::string root33 = absl::Base64Escape(std::string(33, '\x42'));
  struct Row {
    const char* what;
    std::string body;
  };
  const std::vector<Row> rows = {
      {"empty", ""},
      {"no trailing newline", "o\n5\n" + root},
      {"two lines", "o\n5\n"},
      {"one line", "o\n"},
      {"empty origin", "\n5\n" + root + "\n"},
      {"empty size", "o\n\n" + root + "\n"},
      {"letters in size", "o\nabc\n" + root + "\n"},
      {"hex size", "o\n0x5\n" + root + "\n"},
      {"negative size", "o\n-1\n" + root + "\n"},
      {"size with exponent", "o\n1e3\n" + root + "\n"},
      {"size with decimals", "o\n5.0\n" + root + "\n"},
      {"leading zero", "o\n05\n" + root + "\n"},
      {"two leading zeros", "o\n007\n" + root + "\n"},
      {"size beyond 2^64 - 1", "o\n18446744073709551616\n" + root + "\n"},
      {"not base64", "o\n5\n!!!not base64!!!\n"},
      {"URL-safe base64", "o\n5\n" + std::string(43, '_') + "=\n"},
      {"31-byte root", "o\n5\n" + root31 + "\n"},
      {"33-byte root", "o\n5\n" + root33 + "\n"},
      {"empty root", "o\n5\n\n"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.what);
    EXPECT_THAT(ParseCheckpointBody(row.body),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

// C2SP tlog-checkpoint: the size is ASCII decimal without leading zeros and
// the root is standard base64. Forms that a lenient decoder would accept are
// not canonical; a checkpoint has exactly one text.
TEST(CheckpointBodyTest, NonCanonicalNumbersAndBase64AreRefused) {
  const std::string root = absl::Base64Escape(
      std::string(reinterpret_cast<const char*>(TestRoot().data()), 32));
  std::string unpadded = root;
  while (!unpadded.empty() && unpadded.back() == '=') unpadded.pop_back();
  struct Row {
    const char* what;
    std::string body;
  };
  const std::vector<Row> rows = {
      {"plus sign", "o\n+5\n" + root + "\n"},
      {"leading space", "o\n 5\n" + root + "\n"},
      {"trailing space", "o\n5 \n" + root + "\n"},
      {"tab", "o\n5\t\n" + root + "\n"},
      {"unpadded base64", "o\n5\n" + unpadded + "\n"},
      {"space in base64", "o\n5\n " + root + "\n"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.what);
    EXPECT_THAT(ParseCheckpointBody(row.body),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
  // "0" is the one size that starts with a zero.
  EXPECT_THAT(ParseCheckpointBody("o\n0\n" + root + "\n"), IsOk());
}

// --- Signing and opening. --------------------------------------------------

TEST(NoteTest, SignedNoteOpensAndReturnsTheBody) {
  std::unique_ptr<NoteSigner> signer = NewSigner("permit.example/log");
  ASSERT_NE(signer, nullptr);
  EXPECT_EQ(signer->name(), "permit.example/log");
  const std::string body =
      CheckpointBody({"permit.example/log", 1042, TestRoot()});
  absl::StatusOr<std::string> note = signer->Sign(body);
  ASSERT_THAT(note, IsOk());

  std::unique_ptr<NoteVerifier> verifier = VerifierFor(signer->verifier_key());
  ASSERT_NE(verifier, nullptr);
  EXPECT_EQ(verifier->name(), "permit.example/log");
  absl::StatusOr<std::string> opened = verifier->Open(*note);
  ASSERT_THAT(opened, IsOk());
  EXPECT_EQ(*opened, body);
  absl::StatusOr<Checkpoint> c = ParseCheckpointBody(*opened);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->size, 1042u);
}

TEST(NoteTest, BodyWithABlankLineRoundTrips) {
  // The text is separated from the signatures by the last blank line.
  std::unique_ptr<NoteSigner> signer = NewSigner("quasimodo.example/salvatore");
  ASSERT_NE(signer, nullptr);
  const std::string body =
      "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\n"
      "ed \xC3\xA8 subito sera.\n";
  absl::StatusOr<std::string> note = signer->Sign(body);
  ASSERT_THAT(note, IsOk());
  std::unique_ptr<NoteVerifier> verifier = VerifierFor(signer->verifier_key());
  ASSERT_NE(verifier, nullptr);
  absl::StatusOr<std::string> opened = verifier->Open(*note);
  ASSERT_THAT(opened, IsOk());
  EXPECT_EQ(*opened, body);
}

TEST(NoteTest, SignRefusesATextWithoutFinalNewline) {
  std::unique_ptr<NoteSigner> signer = NewSigner("permit.example/log");
  ASSERT_NE(signer, nullptr);
  EXPECT_THAT(signer->Sign(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(signer->Sign("no newline"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(NoteTest, NoteLayoutIsBodyBlankLineAndOneSignatureLine) {
  std::string pem;
  std::unique_ptr<NoteSigner> signer = NewSigner("permit.example/log", &pem);
  ASSERT_NE(signer, nullptr);
  const std::string pub = PublicKeyOf(pem);
  const std::string body = CheckpointBody({"permit.example/log", 3, TestRoot()});
  absl::StatusOr<std::string> note = signer->Sign(body);
  ASSERT_THAT(note, IsOk());

  const std::string prefix = absl::StrCat(body, "\n", kEmDash, " permit.example/log ");
  ASSERT_THAT(*note, StartsWith(prefix));
  ASSERT_EQ(note->back(), '\n');
  const std::string b64 = note->substr(prefix.size(), note->size() - prefix.size() - 1);
  EXPECT_EQ(b64.find('\n'), std::string::npos);
  std::string blob;
  ASSERT_TRUE(absl::Base64Unescape(b64, &blob));
  ASSERT_EQ(blob.size(), 4u + 64u);
  EXPECT_EQ(absl::Base64Escape(blob), b64);  // standard, padded base64
  EXPECT_EQ(blob.substr(0, 4), IndependentKeyId("permit.example/log", pub));
  // The signature covers the body including its final newline, and nothing else.
  EXPECT_TRUE(Ed25519Verifies(pub, body, blob.substr(4)));
  EXPECT_FALSE(Ed25519Verifies(pub, body + "\n", blob.substr(4)));
}

TEST(NoteTest, VerifierKeyHasNameHexIdAndTypedPublicKey) {
  std::string pem;
  std::unique_ptr<NoteSigner> signer = NewSigner("permit.example/log", &pem);
  ASSERT_NE(signer, nullptr);
  const std::string pub = PublicKeyOf(pem);
  const std::string want =
      absl::StrCat("permit.example/log+",
                   absl::BytesToHexString(IndependentKeyId("permit.example/log", pub)),
                   "+", absl::Base64Escape(std::string("\x01", 1) + pub));
  EXPECT_EQ(signer->verifier_key(), want);
  // The hex is 8 lower-case digits.
  std::vector<std::string> parts =
      absl::StrSplit(signer->verifier_key(), absl::MaxSplits('+', 2));
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[1].size(), 8u);
  EXPECT_EQ(parts[1].find_first_not_of("0123456789abcdef"), std::string::npos);
}

// The base64 of a key often contains '+', the verifier key's separator: the
// name and id end at the first two '+', the rest is the key.
TEST(NoteTest, EveryGeneratedVerifierKeyParses) {
  int keys_with_plus = 0;
  for (int i = 0; i < 64; ++i) {
    std::unique_ptr<NoteSigner> signer = NewSigner("permit.example/log");
    ASSERT_NE(signer, nullptr);
    const std::string& key = signer->verifier_key();
    if (std::count(key.begin(), key.end(), '+') > 2) ++keys_with_plus;
    absl::StatusOr<std::unique_ptr<NoteVerifier>> v = NoteVerifier::Create(key);
    ASSERT_THAT(v, IsOk()) << key;
    absl::StatusOr<std::string> note = signer->Sign("text\n");
    ASSERT_THAT(note, IsOk());
    EXPECT_THAT((*v)->Open(*note), IsOk()) << key;
  }
  // About half of all keys have a '+' in their base64; 64 keys without one
  // would be a 1 in 2^40 event.
  EXPECT_GT(keys_with_plus, 0);
}

TEST(NoteTest, PublishedVerifierKeyWithPlusInBase64Parses) {
  // transparency-dev/formats note/note_cosigv1_test.go: an Ed25519 (type
  // 0x01) verifier key whose base64 contains '+'; its key id checked with
  // Python's hashlib.
  EXPECT_THAT(NoteVerifier::Create(
                  "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"),
              IsOk());
}

TEST(NoteTest, AnotherKeyIsPermissionDenied) {
  std::unique_ptr<NoteSigner> signer = NewSigner("permit.example/log");
  std::unique_ptr<NoteSigner> other_same_name = NewSigner("permit.example/log");
  std::unique_ptr<NoteSigner> other_name = NewSigner("other.example/log");
  ASSERT_NE(signer, nullptr);
  ASSERT_NE(other_same_name, nullptr);
  ASSERT_NE(other_name, nullptr);
  absl::StatusOr<std::string> note = signer->Sign("text\n");
  ASSERT_THAT(note, IsOk());
  for (const NoteSigner* other : {other_same_name.get(), other_name.get()}) {
    SCOPED_TRACE(other->verifier_key());
    std::unique_ptr<NoteVerifier> v = VerifierFor(other->verifier_key());
    ASSERT_NE(v, nullptr);
    EXPECT_THAT(v->Open(*note), StatusIs(absl::StatusCode::kPermissionDenied));
  }
}

TEST(NoteTest, ForgedKeyIdWithRightNameIsPermissionDenied) {
  // An attacker's key whose line carries our name and our key id: the
  // signature is checked with our key and fails.
  std::unique_ptr<NoteSigner> ours = NewSigner("permit.example/log");
  std::unique_ptr<NoteSigner> theirs = NewSigner("permit.example/log");
  ASSERT_NE(ours, nullptr);
  ASSERT_NE(theirs, nullptr);
  absl::StatusOr<std::string> forged = theirs->Sign("text\n");
  ASSERT_THAT(forged, IsOk());
  const size_t sig_at = forged->rfind(' ') + 1;
  std::string blob;
  ASSERT_TRUE(absl::Base64Unescape(
      absl::string_view(*forged).substr(sig_at, forged->size() - sig_at - 1), &blob));
  const std::string our_id = absl::HexStringToBytes(
      std::vector<std::string>(absl::StrSplit(ours->verifier_key(), '+'))[1]);
  blob.replace(0, 4, our_id);
  const std::string note =
      forged->substr(0, sig_at) + absl::Base64Escape(blob) + "\n";
  std::unique_ptr<NoteVerifier> v = VerifierFor(ours->verifier_key());
  ASSERT_NE(v, nullptr);
  EXPECT_THAT(v->Open(note), StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST(NoteTest, BodyAlteredByOneByteIsPermissionDenied) {
  std::unique_ptr<NoteSigner> signer = NewSigner("permit.example/log");
  ASSERT_NE(signer, nullptr);
  const std::string body = CheckpointBody({"permit.example/log", 1042, TestRoot()});
  absl::StatusOr<std::string> note = signer->Sign(body);
  ASSERT_THAT(note, IsOk());
  std::unique_ptr<NoteVerifier> v = VerifierFor(signer->verifier_key());
  ASSERT_NE(v, nullptr);
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] == '\n') continue;
    std::string altered = *note;
    altered[i] = altered[i] == 'A' ? 'B' : 'A';
    EXPECT_THAT(v->Open(altered), StatusIs(absl::StatusCode::kPermissionDenied))
        << "byte " << i;
  }
  // The signature itself altered.
  std::string altered = *note;
  const size_t sig_byte = altered.size() - 10;
  altered[sig_byte] = altered[sig_byte] == 'A' ? 'B' : 'A';
  EXPECT_THAT(v->Open(altered), StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST(NoteTest, MalformedNotesAreInvalidArgument) {
  std::unique_ptr<NoteSigner> signer = NewSigner("permit.example/log");
  ASSERT_NE(signer, nullptr);
  absl::StatusOr<std::string> note = signer->Sign("text\n");
  ASSERT_THAT(note, IsOk());
  std::unique_ptr<NoteVerifier> v = VerifierFor(signer->verifier_key());
  ASSERT_NE(v, nullptr);
  const std::string sig_line = note->substr(std::string("text\n\n").size());
  const std::string b64 = sig_line.substr(sig_line.rfind(' ') + 1);
  struct Row {
    const char* what;
    std::string note;
  };
  const std::vector<Row> rows = {
      {"empty", ""},
      {"no blank line", "text\n" + sig_line},
      {"no signature lines", "text\n\n"},
      {"no final newline", note->substr(0, note->size() - 1)},
      {"hyphen instead of em dash", "text\n\n- permit.example/log " + b64},
      {"em dash without space", absl::StrCat("text\n\n", kEmDash, "permit.example/log ", b64)},
      {"no em dash", "text\n\npermit.example/log " + b64},
      {"no signature after the name", absl::StrCat("text\n\n", kEmDash, " permit.example/log\n")},
      {"signature not base64",
       absl::StrCat("text\n\n", kEmDash, " permit.example/log !!notbase64!!\n")},
      {"signature shorter than a key id",
       absl::StrCat("text\n\n", kEmDash, " permit.example/log ",
                    absl::Base64Escape("abcd"), "\n")},
      {"a malformed line before ours", "text\n\ngarbage\n" + sig_line},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.what);
    EXPECT_THAT(v->Open(row.note), StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

TEST(NoteTest, TruncatedSignatureByThePinnedKeyIsPermissionDenied) {
  std::unique_ptr<NoteSigner> signer = NewSigner("permit.example/log");
  ASSERT_NE(signer, nullptr);
  absl::StatusOr<std::string> note = signer->Sign("text\n");
  ASSERT_THAT(note, IsOk());
  const size_t sig_at = note->rfind(' ') + 1;
  std::string blob;
  ASSERT_TRUE(absl::Base64Unescape(
      absl::string_view(*note).substr(sig_at, note->size() - sig_at - 1), &blob));
  blob.pop_back();
  const std::string truncated = note->substr(0, sig_at) + absl::Base64Escape(blob) + "\n";
  std::unique_ptr<NoteVerifier> v = VerifierFor(signer->verifier_key());
  ASSERT_NE(v, nullptr);
  EXPECT_THAT(v->Open(truncated), StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST(NoteTest, SignaturesByUnknownKeysAreSkipped) {
  std::unique_ptr<NoteSigner> signer = NewSigner("permit.example/log");
  std::unique_ptr<NoteSigner> witness = NewSigner("witness.example/w1");
  std::unique_ptr<NoteSigner> same_name = NewSigner("permit.example/log");
  ASSERT_NE(signer, nullptr);
  ASSERT_NE(witness, nullptr);
  ASSERT_NE(same_name, nullptr);
  const std::string body = "text\n";
  absl::StatusOr<std::string> ours = signer->Sign(body);
  absl::StatusOr<std::string> theirs = witness->Sign(body);
  absl::StatusOr<std::string> homonym = same_name->Sign(body);
  ASSERT_THAT(ours, IsOk());
  ASSERT_THAT(theirs, IsOk());
  ASSERT_THAT(homonym, IsOk());
  auto sig_line = [&](const std::string& note) { return note.substr(body.size() + 1); };
  std::unique_ptr<NoteVerifier> v = VerifierFor(signer->verifier_key());
  ASSERT_NE(v, nullptr);

  // Another key's line before ours, after ours, and a key of the same name
  // but another id (an unknown key per C2SP signed-note).
  for (const std::string& note :
       {absl::StrCat(body, "\n", sig_line(*theirs), sig_line(*ours)),
        absl::StrCat(body, "\n", sig_line(*ours), sig_line(*theirs)),
        absl::StrCat(body, "\n", sig_line(*homonym), sig_line(*ours))}) {
    absl::StatusOr<std::string> opened = v->Open(note);
    ASSERT_THAT(opened, IsOk()) << note;
    EXPECT_EQ(*opened, body);
  }
  // Lines by other keys only.
  EXPECT_THAT(v->Open(absl::StrCat(body, "\n", sig_line(*theirs), sig_line(*homonym))),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

// --- Bad keys. -------------------------------------------------------------

TEST(NoteTest, BadVerifierKeysAreInvalidArgument) {
  std::unique_ptr<NoteSigner> signer = NewSigner("permit.example/log");
  ASSERT_NE(signer, nullptr);
  const std::string good = signer->verifier_key();
  ASSERT_THAT(NoteVerifier::Create(good), IsOk());
  std::vector<std::string> parts = absl::StrSplit(good, absl::MaxSplits('+', 2));
  ASSERT_EQ(parts.size(), 3u);
  const std::string& id = parts[1];
  const std::string& b64 = parts[2];
  std::string typed;
  ASSERT_TRUE(absl::Base64Unescape(b64, &typed));
  ASSERT_EQ(typed.size(), 33u);

  std::string wrong_id = id;
  wrong_id[0] = wrong_id[0] == '0' ? '1' : '0';
  std::string wrong_type = typed;
  wrong_type[0] = '\x02';
  const std::string pub = typed.substr(1);
  struct Row {
    const char* what;
    std::string key;
  };
  const std::vector<Row> rows = {
      {"empty", ""},
      {"wrong key id", absl::StrCat(parts[0], "+", wrong_id, "+", b64)},
      {"key id of another name", absl::StrCat("other.example/log+", id, "+", b64)},
      {"7 hex digits", absl::StrCat(parts[0], "+", id.substr(1), "+", b64)},
      {"9 hex digits", absl::StrCat(parts[0], "+0", id, "+", b64)},
      {"non-hex key id", absl::StrCat(parts[0], "+zzzzzzzz+", b64)},
      {"key not base64", absl::StrCat(parts[0], "+", id, "+!!!!")},
      {"31-byte key",
       absl::StrCat(parts[0], "+", id, "+", absl::Base64Escape(typed.substr(0, 32)))},
      {"33-byte key",
       absl::StrCat(parts[0], "+", id, "+", absl::Base64Escape(typed + "x"))},
      {"key without type byte", absl::StrCat(parts[0], "+", id, "+", absl::Base64Escape(pub))},
      {"type byte 0x02", absl::StrCat(parts[0], "+", id, "+", absl::Base64Escape(wrong_type))},
      {"only two parts", absl::StrCat(parts[0], "+", id)},
      {"empty name", absl::StrCat("+", id, "+", b64)},
      {"name with a space", absl::StrCat("permit example+", id, "+", b64)},
      {"name with '+'", absl::StrCat("permit+example+", id, "+", b64)},
      {"name with a newline", absl::StrCat("permit\nexample+", id, "+", b64)},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.what);
    EXPECT_THAT(NoteVerifier::Create(row.key),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

TEST(NoteTest, SignerRefusesBadNamesAndKeys) {
  absl::StatusOr<std::string> pem = NewSigningKeyPem();
  ASSERT_THAT(pem, IsOk());
  for (const char* name : {"", "a b", "a+b", "a\nb", "a\tb"}) {
    SCOPED_TRACE(name);
    EXPECT_THAT(NoteSigner::Create(*pem, name),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
  EXPECT_THAT(NoteSigner::Create("not a pem", "permit.example/log"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(NoteSigner::Create("", "permit.example/log"),
              StatusIs(absl::StatusCode::kInvalidArgument));

  // An EC key is a valid PEM private key but not Ed25519.
  EVP_PKEY* ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  ASSERT_NE(ec, nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  ASSERT_EQ(PEM_write_bio_PrivateKey(bio, ec, nullptr, nullptr, 0, nullptr, nullptr), 1);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  const std::string ec_pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  EVP_PKEY_free(ec);
  EXPECT_THAT(NoteSigner::Create(ec_pem, "permit.example/log"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(NoteTest, NewSigningKeysAreDistinctEd25519Keys) {
  absl::StatusOr<std::string> a = NewSigningKeyPem();
  absl::StatusOr<std::string> b = NewSigningKeyPem();
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_THAT(*a, StartsWith("-----BEGIN PRIVATE KEY-----\n"));
  EXPECT_NE(PublicKeyOf(*a), PublicKeyOf(*b));
}

// --- Interoperability: golang.org/x/mod/sumdb/note. ------------------------
//
// The example of package note (golang/go src/cmd/go/internal/note/
// example_test.go, since moved to golang.org/x/mod/sumdb/note), a note by
// the key "PeterNeumann"; and "EnochRoot", the key that GenerateKey makes
// from an all-zero seed in ExampleSign_add_signatures, whose verifier key
// x/mod's note_test.go TestVerifierList hard-codes.

constexpr char kPeterSkeyB64[] = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
constexpr char kPeterVkey[] =
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
constexpr char kEnochVkey[] =
    "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
constexpr char kGoText[] =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n";
constexpr char kPeterSigLine[] =
    "\xE2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZ"
    "SNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
constexpr char kEnochSigLine[] =
    "\xE2\x80\x94 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5"
    "ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

TEST(NoteInteropTest, OpensGoSumdbNoteExample) {
  std::unique_ptr<NoteVerifier> v = VerifierFor(kPeterVkey);
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->name(), "PeterNeumann");
  absl::StatusOr<std::string> opened =
      v->Open(absl::StrCat(kGoText, "\n", kPeterSigLine));
  ASSERT_THAT(opened, IsOk());
  EXPECT_EQ(*opened, kGoText);
}

TEST(NoteInteropTest, GoKeyIdsMatchTheIndependentDerivation) {
  for (const char* vkey : {kPeterVkey, kEnochVkey}) {
    std::vector<std::string> parts = absl::StrSplit(vkey, absl::MaxSplits('+', 2));
    ASSERT_EQ(parts.size(), 3u);
    std::string typed;
    ASSERT_TRUE(absl::Base64Unescape(parts[2], &typed));
    ASSERT_EQ(typed.size(), 33u);
    EXPECT_EQ(absl::BytesToHexString(IndependentKeyId(parts[0], typed.substr(1))),
              parts[1])
        << vkey;
  }
}

TEST(NoteInteropTest, SignsExactlyAsGoDoes) {
  // Ed25519 is deterministic: the same key and text give Go's bytes.
  std::string typed_seed;
  ASSERT_TRUE(absl::Base64Unescape(kPeterSkeyB64, &typed_seed));
  ASSERT_EQ(typed_seed.size(), 33u);
  ASSERT_EQ(typed_seed[0], '\x01');
  absl::StatusOr<std::unique_ptr<NoteSigner>> peter =
      NoteSigner::Create(PemFromSeed(typed_seed.substr(1)), "PeterNeumann");
  ASSERT_THAT(peter, IsOk());
  EXPECT_EQ((*peter)->verifier_key(), kPeterVkey);
  absl::StatusOr<std::string> note = (*peter)->Sign(kGoText);
  ASSERT_THAT(note, IsOk());
  EXPECT_EQ(*note, absl::StrCat(kGoText, "\n", kPeterSigLine));

  absl::StatusOr<std::unique_ptr<NoteSigner>> enoch =
      NoteSigner::Create(PemFromSeed(std::string(32, '\0')), "EnochRoot");
  ASSERT_THAT(enoch, IsOk());
  EXPECT_EQ((*enoch)->verifier_key(), kEnochVkey);
  note = (*enoch)->Sign(kGoText);
  ASSERT_THAT(note, IsOk());
  EXPECT_EQ(*note, absl::StrCat(kGoText, "\n", kEnochSigLine));
}

TEST(NoteInteropTest, OpensGoDoublySignedNoteWithEitherKey) {
  // ExampleSign_add_signatures output: PeterNeumann's line, then EnochRoot's.
  const std::string note = absl::StrCat(kGoText, "\n", kPeterSigLine, kEnochSigLine);
  for (const char* vkey : {kPeterVkey, kEnochVkey}) {
    SCOPED_TRACE(vkey);
    std::unique_ptr<NoteVerifier> v = VerifierFor(vkey);
    ASSERT_NE(v, nullptr);
    absl::StatusOr<std::string> opened = v->Open(note);
    ASSERT_THAT(opened, IsOk());
    EXPECT_EQ(*opened, kGoText);
  }
  // And a checkpoint key is not fooled by it.
  std::unique_ptr<NoteSigner> ours = NewSigner("PeterNeumann");
  ASSERT_NE(ours, nullptr);
  std::unique_ptr<NoteVerifier> v = VerifierFor(ours->verifier_key());
  ASSERT_NE(v, nullptr);
  EXPECT_THAT(v->Open(note), StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST(NoteInteropTest, GoNoteWithAlteredTextIsPermissionDenied) {
  std::unique_ptr<NoteVerifier> v = VerifierFor(kPeterVkey);
  ASSERT_NE(v, nullptr);
  std::string text = kGoText;
  text[3] = 'Y';
  EXPECT_THAT(v->Open(absl::StrCat(text, "\n", kPeterSigLine)),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

}  // namespace
}  // namespace permit::testing
