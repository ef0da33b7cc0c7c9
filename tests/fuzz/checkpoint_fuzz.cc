// Fuzzes checkpoint and signed-note parsing and verification
// (core/checkpoint.h). Each input is tried as a checkpoint body, as a signed
// note opened with the log's pinned key, and as a verifier key; a body that
// ends in a newline is also signed and then altered. Beyond "no crash":
//   - a body that parses starts with CheckpointBody() of what it parsed to
//     (origin, canonical decimal size, canonical base64 root; extension
//     lines may follow);
//   - a note that opens returns a body that is the note's text before its
//     blank line, and carries, on a signature line by the log's key, exactly
//     the signature the log's key makes over that body: nothing else opens;
//   - a note the log signed opens to its body, under the log's key and,
//     once a witness cosigns it, under the witness's key; it does not open
//     under a key that did not sign it; and whatever it opens to after any
//     one byte is altered is a body the log signed (as above);
//   - a verifier key that parses names the key before its first '+'.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "core/checkpoint.h"
#include "tests/fuzz/fuzz_inputs.h"

namespace {

using permit::core::NoteSigner;
using permit::core::NoteVerifier;

[[noreturn]] void Fail(const std::string& what, absl::string_view input) {
  std::fprintf(stderr, "checkpoint_fuzz: %s\ninput: %s\n", what.c_str(),
               absl::CHexEscape(input).c_str());
  std::abort();
}

struct Keys {
  std::unique_ptr<NoteSigner> log, witness;
  std::unique_ptr<NoteVerifier> log_verifier, witness_verifier;
};

const Keys& TheKeys() {
  static const Keys* keys = [] {
    auto* k = new Keys;
    auto log = NoteSigner::Create(permit::fuzz::kLogKeyPem, permit::fuzz::kLogName);
    auto witness = NoteSigner::Create(permit::fuzz::kWitnessKeyPem, permit::fuzz::kWitnessName);
    if (!log.ok() || !witness.ok()) Fail("cannot load the test keys", "");
    k->log = *std::move(log);
    k->witness = *std::move(witness);
    auto lv = NoteVerifier::Create(k->log->verifier_key());
    auto wv = NoteVerifier::Create(k->witness->verifier_key());
    if (!lv.ok() || !wv.ok()) Fail("the test keys' verifier keys do not parse", "");
    k->log_verifier = *std::move(lv);
    k->witness_verifier = *std::move(wv);
    return k;
  }();
  return *keys;
}

// The decoded signatures of the lines of `note` after its last blank line
// that are by `name`.
std::vector<std::string> SignaturesBy(absl::string_view note, absl::string_view name) {
  std::vector<std::string> out;
  const size_t split = note.rfind("\n\n");
  if (split == absl::string_view::npos) return out;
  for (absl::string_view line : absl::StrSplit(note.substr(split + 2), '\n')) {
    constexpr absl::string_view kPrefix = "\xE2\x80\x94 ";
    if (!absl::ConsumePrefix(&line, kPrefix)) continue;
    const size_t space = line.rfind(' ');
    if (space == absl::string_view::npos || line.substr(0, space) != name) continue;
    std::string blob;
    if (absl::Base64Unescape(line.substr(space + 1), &blob)) out.push_back(blob);
  }
  return out;
}

std::string SignatureOf(absl::string_view signed_note) {
  // Sign() adds one line: "— <name> <base64>\n".
  absl::string_view line = signed_note.substr(signed_note.rfind("\n\n") + 2);
  line.remove_suffix(1);
  std::string blob;
  absl::Base64Unescape(line.substr(line.rfind(' ') + 1), &blob);
  return blob;
}

void CheckBody(absl::string_view input) {
  auto c = permit::core::ParseCheckpointBody(input);
  if (!c.ok()) return;
  if (!absl::StartsWith(input, permit::core::CheckpointBody(*c))) {
    Fail("a parsed body does not start with its canonical form", input);
  }
}

void CheckOpen(absl::string_view input) {
  const Keys& k = TheKeys();
  auto body = k.log_verifier->Open(input);
  if (!body.ok()) return;
  if (!absl::StartsWith(input, *body) || input.substr(body->size(), 1) != "\n" ||
      input.rfind("\n\n") != body->size() - 1) {
    Fail("the opened body is not the text before the note's blank line", input);
  }
  auto resigned = k.log->Sign(*body);
  if (!resigned.ok()) Fail("the log key cannot sign a body that opened", input);
  const std::string expected = SignatureOf(*resigned);
  bool found = false;
  for (const std::string& sig : SignaturesBy(input, permit::fuzz::kLogName)) {
    found = found || sig == expected;
  }
  if (!found) Fail("a note opens without the log key's signature over its body", input);
}

void CheckKey(absl::string_view input) {
  auto v = NoteVerifier::Create(input);
  if (!v.ok()) return;
  if (input.substr(0, input.find('+')) != v->get()->name()) {
    Fail("a verifier key's name is not its text before the first '+'", input);
  }
}

void CheckSigned(absl::string_view body) {
  if (body.empty() || body.back() != '\n') return;
  const Keys& k = TheKeys();
  auto note = k.log->Sign(body);
  if (!note.ok()) Fail("the log key cannot sign: " + note.status().ToString(), body);
  auto opened = k.log_verifier->Open(*note);
  if (!opened.ok() || *opened != body) {
    Fail("a note the log signed does not open to its body: " + opened.status().ToString(),
         body);
  }
  if (k.witness_verifier->Open(*note).status().code() != absl::StatusCode::kPermissionDenied) {
    Fail("a note opens under a key that did not sign it", body);
  }
  auto witnessed = k.witness->Sign(body);
  if (!witnessed.ok()) Fail("the witness key cannot sign", body);
  const std::string cosigned = *note + witnessed->substr(body.size() + 1);
  for (const NoteVerifier* v : {k.log_verifier.get(), k.witness_verifier.get()}) {
    auto b = v->Open(cosigned);
    if (!b.ok() || *b != body) {
      Fail("a cosigned note does not open to its body under " + v->name(), body);
    }
  }
  // One byte altered, at a place and to a value the body picks.
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : body) h = (h ^ ch) * 1099511628211ull;
  std::string altered = *note;
  const size_t at = h % altered.size();
  altered[at] = static_cast<char>(altered[at] ^ (1 + (h >> 32) % 255));
  // It may still open: to `body` if the byte was in a signature line, or
  // to another body if `body` itself holds a signed note that the altered
  // separator uncovers; either way only to a body the log signed.
  if (k.log_verifier->Open(altered).ok()) CheckOpen(altered);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  CheckBody(input);
  CheckOpen(input);
  CheckKey(input);
  CheckSigned(input);
  return 0;
}
