// C2SP checkpoints and signed notes with OpenSSL's Ed25519; see
// checkpoint.h.
#include "core/checkpoint.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace permit::core {
namespace {

constexpr absl::string_view kSigPrefix = "\xE2\x80\x94 ";  // U+2014 and a space
constexpr uint8_t kEd25519 = 0x01;

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

bool ValidKeyName(absl::string_view name) {
  if (name.empty()) return false;
  for (unsigned char ch : name) {
    if (ch <= 0x20 || ch == '+' || ch == 0x7f) return false;
  }
  return true;
}

std::string KeyId(absl::string_view name, absl::string_view pub) {
  std::string material = absl::StrCat(name, "\n");
  material.push_back(static_cast<char>(kEd25519));
  material.append(pub.data(), pub.size());
  Hash h = Sha256(material);
  return std::string(AsBytes(h).substr(0, 4));
}

}  // namespace

struct NoteSigner::Key {
  Pkey pkey;
};
struct NoteVerifier::Key {
  Pkey pkey;
};
NoteSigner::~NoteSigner() = default;
NoteVerifier::~NoteVerifier() = default;

std::string CheckpointBody(const Checkpoint& c) {
  return absl::StrCat(c.origin, "\n", c.size, "\n", absl::Base64Escape(AsBytes(c.root)),
                      "\n");
}

absl::StatusOr<Checkpoint> ParseCheckpointBody(absl::string_view body) {
  if (body.empty() || body.back() != '\n') {
    return absl::InvalidArgumentError("checkpoint: the body must end in a newline");
  }
  std::vector<absl::string_view> lines =
      absl::StrSplit(body.substr(0, body.size() - 1), '\n');
  if (lines.size() < 3) {
    return absl::InvalidArgumentError(
        "checkpoint: expected origin, size and root lines");
  }
  Checkpoint c;
  c.origin = std::string(lines[0]);
  if (c.origin.empty()) return absl::InvalidArgumentError("checkpoint: empty origin");
  // SimpleAtoi alone would also take "+5", " 5" and "5 ": only digits,
  // without a leading zero, are the canonical form.
  if (lines[1].empty() || (lines[1].size() > 1 && lines[1][0] == '0') ||
      lines[1].find_first_not_of("0123456789") != absl::string_view::npos ||
      !absl::SimpleAtoi(lines[1], &c.size)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "checkpoint: line 2 must be the tree size in decimal, got \"", lines[1], "\""));
  }
  std::string root;
  // Base64Unescape also takes unpadded input: require the one standard,
  // padded encoding.
  if (!absl::Base64Unescape(lines[2], &root) || root.size() != 32 ||
      absl::Base64Escape(root) != lines[2]) {
    return absl::InvalidArgumentError(
        "checkpoint: line 3 must be the base64 of a 32-byte root hash");
  }
  c.root = *HashFromBytes(root);
  return c;
}

absl::StatusOr<std::string> NewSigningKeyPem() {
  Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (key == nullptr) return absl::InternalError("OpenSSL could not make an Ed25519 key");
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio, key.get(), nullptr, nullptr, 0, nullptr,
                               nullptr) != 1) {
    BIO_free(bio);
    return absl::InternalError("OpenSSL could not write the key");
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  return pem;
}

absl::StatusOr<std::unique_ptr<NoteSigner>> NoteSigner::Create(
    absl::string_view private_key_pem, absl::string_view name) {
  if (!ValidKeyName(name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "key name \"", name, "\" must be non-empty, without spaces or '+'"));
  }
  BIO* bio = BIO_new_mem_buf(private_key_pem.data(),
                             static_cast<int>(private_key_pem.size()));
  Pkey pkey(PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  if (pkey == nullptr || EVP_PKEY_get_id(pkey.get()) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError("the signing key is not an Ed25519 private key in PEM");
  }
  unsigned char pub[32];
  size_t pub_len = sizeof(pub);
  if (EVP_PKEY_get_raw_public_key(pkey.get(), pub, &pub_len) != 1 || pub_len != 32) {
    return absl::InternalError("OpenSSL could not derive the public key");
  }
  std::unique_ptr<NoteSigner> s(new NoteSigner());
  s->key_ = std::make_unique<Key>();
  s->key_->pkey = std::move(pkey);
  s->name_ = std::string(name);
  const absl::string_view pub_view(reinterpret_cast<const char*>(pub), 32);
  s->key_id_ = KeyId(name, pub_view);
  std::string typed_pub(1, static_cast<char>(kEd25519));
  typed_pub.append(pub_view.data(), pub_view.size());
  s->verifier_key_ = absl::StrCat(name, "+", absl::BytesToHexString(s->key_id_), "+",
                                  absl::Base64Escape(typed_pub));
  return s;
}

absl::StatusOr<std::string> NoteSigner::Sign(absl::string_view body) const {
  if (body.empty() || body.back() != '\n') {
    return absl::InvalidArgumentError("a note's text must end in a newline");
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char sig[64];
  size_t sig_len = sizeof(sig);
  const bool ok =
      ctx != nullptr &&
      EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key_->pkey.get()) == 1 &&
      EVP_DigestSign(ctx, sig, &sig_len,
                     reinterpret_cast<const unsigned char*>(body.data()),
                     body.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok || sig_len != 64) return absl::InternalError("OpenSSL could not sign");
  std::string blob = key_id_;
  blob.append(reinterpret_cast<const char*>(sig), sig_len);
  return absl::StrCat(body, "\n", kSigPrefix, name_, " ", absl::Base64Escape(blob), "\n");
}

absl::StatusOr<std::unique_ptr<NoteVerifier>> NoteVerifier::Create(
    absl::string_view verifier_key) {
  // The name and key id end at the first two '+'; the base64 key may itself
  // contain '+'.
  std::vector<absl::string_view> parts =
      absl::StrSplit(verifier_key, absl::MaxSplits('+', 2));
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "verifier key \"", verifier_key, "\": ", why,
        " (expected <name>+<hex key id>+<base64 key>)"));
  };
  if (parts.size() != 3) return bad("not three '+'-separated parts");
  if (!ValidKeyName(parts[0])) return bad("bad key name");
  if (parts[1].size() != 8 ||
      parts[1].find_first_not_of("0123456789abcdefABCDEF") != absl::string_view::npos) {
    return bad("the key id is not 8 hex digits");
  }
  std::string key_id = absl::HexStringToBytes(parts[1]);
  std::string typed;
  if (!absl::Base64Unescape(parts[2], &typed) || typed.size() != 33 ||
      static_cast<uint8_t>(typed[0]) != kEd25519) {
    return bad("the key is not base64 of 0x01 and a 32-byte Ed25519 key");
  }
  const absl::string_view pub = absl::string_view(typed).substr(1);
  if (KeyId(parts[0], pub) != key_id) return bad("the key id does not match the key");
  Pkey pkey(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(pub.data()),
      pub.size()));
  if (pkey == nullptr) return bad("OpenSSL refused the public key");
  std::unique_ptr<NoteVerifier> v(new NoteVerifier());
  v->key_ = std::make_unique<Key>();
  v->key_->pkey = std::move(pkey);
  v->name_ = std::string(parts[0]);
  v->key_id_ = std::move(key_id);
  return v;
}

absl::StatusOr<std::string> NoteVerifier::Open(absl::string_view note) const {
  const size_t split = note.rfind("\n\n");
  if (split == absl::string_view::npos) {
    return absl::InvalidArgumentError("note: no blank line before the signatures");
  }
  const absl::string_view body = note.substr(0, split + 1);
  absl::string_view sigs = note.substr(split + 2);
  if (sigs.empty() || sigs.back() != '\n') {
    return absl::InvalidArgumentError("note: the signature lines must end in a newline");
  }
  sigs.remove_suffix(1);
  for (absl::string_view line : absl::StrSplit(sigs, '\n')) {
    if (line.substr(0, kSigPrefix.size()) != kSigPrefix) {
      return absl::InvalidArgumentError("note: a signature line must start with \"— \"");
    }
    line.remove_prefix(kSigPrefix.size());
    const size_t space = line.rfind(' ');
    if (space == absl::string_view::npos) {
      return absl::InvalidArgumentError("note: a signature line has no signature");
    }
    const absl::string_view name = line.substr(0, space);
    std::string blob;
    if (!absl::Base64Unescape(line.substr(space + 1), &blob) || blob.size() < 5) {
      return absl::InvalidArgumentError("note: a signature is not valid base64");
    }
    if (name != name_ || blob.substr(0, 4) != key_id_) continue;  // another key
    if (blob.size() != 4 + 64) {
      return absl::PermissionDeniedError("note: the signature by the pinned key is malformed");
    }
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    const bool ok =
        ctx != nullptr &&
        EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, key_->pkey.get()) == 1 &&
        EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(blob.data() + 4), 64,
                         reinterpret_cast<const unsigned char*>(body.data()),
                         body.size()) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
      return absl::PermissionDeniedError(absl::StrCat(
          "note: the signature by ", name_, " does not verify: the note was altered "
          "or signed by another key"));
    }
    return std::string(body);
  }
  return absl::PermissionDeniedError(absl::StrCat(
      "note: not signed by the pinned key ", name_, "+",
      absl::BytesToHexString(key_id_)));
}

}  // namespace permit::core
