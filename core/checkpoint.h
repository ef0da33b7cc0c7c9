// Signed checkpoints of the audit log: the C2SP tlog-checkpoint body
// (origin, tree size, root) carried in a C2SP signed note with an Ed25519
// signature. docs/checkpoints.md pins the spec revisions followed.
//
//   permit.example/log          <- origin (also the signing key's name)
//   1042                        <- tree size, decimal
//   3p6Ww1...=                  <- base64 of the 32-byte root hash
//                               <- blank line
//   — permit.example/log Ab12...= <- base64(4-byte key id || signature)
//
// The key id is the first 4 bytes of SHA-256(name || 0x0A || 0x01 ||
// public key); the verifier key is "<name>+<hex key id>+<base64(0x01 ||
// public key)>".
//
// Thread-safety: NoteSigner and NoteVerifier are immutable and thread-safe.
#ifndef PERMIT_CORE_CHECKPOINT_H_
#define PERMIT_CORE_CHECKPOINT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/merkle.h"

namespace permit::core {

struct Checkpoint {
  std::string origin;
  uint64_t size = 0;
  Hash root{};
};

// The checkpoint's note text: "origin\nsize\nbase64(root)\n".
std::string CheckpointBody(const Checkpoint& c);
// Parses a checkpoint body (extension lines after the root are ignored).
// INVALID_ARGUMENT naming the bad line.
absl::StatusOr<Checkpoint> ParseCheckpointBody(absl::string_view body);

// A new Ed25519 private key in PKCS#8 PEM.
absl::StatusOr<std::string> NewSigningKeyPem();

class NoteSigner {
 public:
  // `name` is the key name (permit uses the log origin). INVALID_ARGUMENT
  // if the PEM is not an Ed25519 private key or the name is not valid (it
  // must be non-empty, without spaces or '+').
  static absl::StatusOr<std::unique_ptr<NoteSigner>> Create(
      absl::string_view private_key_pem, absl::string_view name);
  ~NoteSigner();

  // The signed note: `body` (which must end in '\n'), a blank line and one
  // signature line.
  absl::StatusOr<std::string> Sign(absl::string_view body) const;
  // "<name>+<hex key id>+<base64(0x01 || public key)>".
  const std::string& verifier_key() const { return verifier_key_; }
  const std::string& name() const { return name_; }

 private:
  NoteSigner() = default;
  struct Key;
  std::unique_ptr<Key> key_;
  std::string name_;
  std::string key_id_;  // 4 bytes
  std::string verifier_key_;
};

class NoteVerifier {
 public:
  // Parses a verifier key. INVALID_ARGUMENT saying what is wrong with it.
  static absl::StatusOr<std::unique_ptr<NoteVerifier>> Create(
      absl::string_view verifier_key);
  ~NoteVerifier();

  // Returns the note's body if one of its signature lines is by this key
  // (same name and key id) and verifies. PERMISSION_DENIED if a line by
  // this key does not verify, or no line is by this key; INVALID_ARGUMENT if
  // the note is malformed.
  absl::StatusOr<std::string> Open(absl::string_view note) const;
  const std::string& name() const { return name_; }

 private:
  NoteVerifier() = default;
  struct Key;
  std::unique_ptr<Key> key_;
  std::string name_;
  std::string key_id_;
};

}  // namespace permit::core

#endif  // PERMIT_CORE_CHECKPOINT_H_
