// Verification of the audit log by a client that trusts nothing but the
// pinned log key; see permit/audit.h.
#include "permit/audit.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/checkpoint.h"
#include "core/log_verifier.h"
#include "core/parallel_replayer.h"
#include "core/merkle.h"
#include "google/protobuf/io/zero_copy_stream_impl.h"
#include "google/protobuf/util/delimited_message_util.h"
#include "permit/v1/export.pb.h"

namespace permit {
namespace {

namespace fs = std::filesystem;
constexpr char kExportMagic[] = "permit-log-export/1\n";

#define PERMIT_RETURN_IF_ERROR(expr)               \
  do {                                             \
    ::absl::Status permit_s_ = (expr);             \
    if (!permit_s_.ok()) return permit_s_;         \
  } while (0)

std::vector<core::Hash> Hashes(const google::protobuf::RepeatedPtrField<std::string>& in,
                               absl::Status* error) {
  std::vector<core::Hash> out;
  for (const std::string& b : in) {
    absl::StatusOr<core::Hash> h = core::HashFromBytes(b);
    if (!h.ok()) {
      *error = absl::DataLossError("a proof hash is not 32 bytes");
      return {};
    }
    out.push_back(*h);
  }
  return out;
}

absl::StatusOr<core::Hash> Hash32(const std::string& b, absl::string_view what) {
  absl::StatusOr<core::Hash> h = core::HashFromBytes(b);
  if (!h.ok()) return absl::DataLossError(absl::StrCat(what, " is not 32 bytes"));
  return h;
}

std::string DefaultStateDir() {
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x != nullptr && *x) {
    return (fs::path(x) / "permit").string();
  }
  if (const char* h = std::getenv("HOME"); h != nullptr && *h) {
    return (fs::path(h) / ".config" / "permit").string();
  }
  return "";
}

// One folder per server address, with characters safe in a file name.
fs::path ServerDir(const std::string& state_dir, const std::string& address) {
  std::string name;
  for (char ch : address) {
    name.push_back(std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' ||
                           ch == '-'
                       ? ch
                       : '_');
  }
  return fs::path(state_dir) / "servers" / name;
}

std::string ReadSmallFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::Status WriteSmallFile(const fs::path& p, const std::string& content) {
  std::error_code ec;
  fs::create_directories(p.parent_path(), ec);
  const fs::path tmp = p.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << content;
    if (!out.flush()) {
      return absl::InternalError(absl::StrCat("cannot write ", tmp.string()));
    }
  }
  fs::rename(tmp, p, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot write ", p.string()));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CheckpointInfo> OpenCheckpoint(const std::string& note,
                                              const std::string& log_key) {
  absl::StatusOr<std::unique_ptr<core::NoteVerifier>> verifier =
      core::NoteVerifier::Create(log_key);
  if (!verifier.ok()) return verifier.status();
  absl::StatusOr<std::string> body = (*verifier)->Open(note);
  if (!body.ok()) return body.status();
  absl::StatusOr<core::Checkpoint> cp = core::ParseCheckpointBody(*body);
  if (!cp.ok()) return cp.status();
  if (cp->origin != (*verifier)->name()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "the checkpoint's origin \"", cp->origin, "\" is not the key's name \"",
        (*verifier)->name(), "\""));
  }
  CheckpointInfo info;
  info.origin = cp->origin;
  info.size = cp->size;
  info.root = std::string(core::AsBytes(cp->root));
  return info;
}

absl::Status VerifyInclusionProof(const v1::InclusionProof& proof) {
  absl::Status bad;
  std::vector<core::Hash> path = Hashes(proof.hashes(), &bad);
  PERMIT_RETURN_IF_ERROR(bad);
  absl::StatusOr<core::Hash> leaf = Hash32(proof.leaf_hash(), "the leaf hash");
  if (!leaf.ok()) return leaf.status();
  absl::StatusOr<core::Hash> root = Hash32(proof.root_hash(), "the root hash");
  if (!root.ok()) return root.status();
  if (proof.sequence() == 0) return absl::DataLossError("sequence 0 has no proof");
  return core::VerifyInclusion(proof.sequence() - 1, proof.tree_size(), *leaf, path,
                               *root);
}

absl::Status VerifyConsistencyProof(const v1::ConsistencyProof& proof) {
  absl::Status bad;
  std::vector<core::Hash> path = Hashes(proof.hashes(), &bad);
  PERMIT_RETURN_IF_ERROR(bad);
  absl::StatusOr<core::Hash> old_root = Hash32(proof.old_root_hash(), "the old root");
  if (!old_root.ok()) return old_root.status();
  absl::StatusOr<core::Hash> new_root = Hash32(proof.new_root_hash(), "the new root");
  if (!new_root.ok()) return new_root.status();
  return core::VerifyConsistency(proof.old_size(), proof.new_size(), *old_root,
                                 *new_root, path);
}

absl::StatusOr<VerifiedCheckpoint> FetchVerifiedCheckpoint(
    Client& client, const VerifyOptions& options) {
  absl::StatusOr<v1::SignedCheckpoint> signed_cp = client.GetCheckpoint();
  if (!signed_cp.ok()) return signed_cp.status();

  // The key: pinned, saved, or trusted now on first use.
  VerifiedCheckpoint out;
  const std::string state_dir =
      options.state_dir.empty() && options.remember ? DefaultStateDir() : options.state_dir;
  const bool keep = options.remember && !state_dir.empty();
  if (keep) out.state_dir = ServerDir(state_dir, client.address()).string();
  const fs::path dir(out.state_dir);
  std::string key = options.log_key;
  if (key.empty() && keep && fs::exists(dir / "log-key")) {
    key = std::string(absl::StripAsciiWhitespace(ReadSmallFile(dir / "log-key")));
  }
  if (key.empty()) {
    key = signed_cp->verifier_key();
    if (options.on_notice) {
      options.on_notice(absl::StrCat(
          "trusting the log key ", key, " on first use: nothing pinned for ",
          client.address(),
          keep ? absl::StrCat("; saved to ", (dir / "log-key").string(),
                              " and required from now on")
               : std::string("; pass --log-key to pin one")));
    }
  }
  const bool first_use = key != options.log_key && !(keep && fs::exists(dir / "log-key"));
  absl::StatusOr<CheckpointInfo> cp = OpenCheckpoint(signed_cp->note(), key);
  if (!cp.ok()) {
    return absl::Status(cp.status().code(),
                        absl::StrCat("the server's checkpoint fails: ",
                                     cp.status().message()));
  }
  // Trust on first use: remember the key only once it verified something.
  if (first_use && keep) {
    if (absl::Status s = WriteSmallFile(dir / "log-key", key + "\n"); !s.ok()) return s;
  }
  out.info = *std::move(cp);
  out.note = signed_cp->note();
  out.log_key = key;
  return out;
}

absl::StatusOr<VerifyReport> VerifyLog(Client& client, const VerifyOptions& options) {
  const absl::Time start = absl::Now();
  VerifyReport report;
  absl::StatusOr<VerifiedCheckpoint> verified = FetchVerifiedCheckpoint(client, options);
  if (!verified.ok()) return verified.status();
  const CheckpointInfo* cp = &verified->info;
  const std::string key = verified->log_key;
  const bool keep = !verified->state_dir.empty();
  const fs::path dir(verified->state_dir);
  report.tree_size = cp->size;
  report.root_hex = absl::BytesToHexString(cp->root);

  // Consistency with the checkpoint verified last time.
  if (keep && fs::exists(dir / "checkpoint")) {
    absl::StatusOr<CheckpointInfo> prev = OpenCheckpoint(ReadSmallFile(dir / "checkpoint"), key);
    if (!prev.ok()) {
      return absl::DataLossError(absl::StrCat(
          "the checkpoint saved last time no longer verifies with the key: ",
          prev.status().message()));
    }
    report.previous_size = prev->size;
    if (prev->size > cp->size) {
      return absl::DataLossError(absl::StrCat(
          "the log shrank: last time it had ", prev->size, " events, now ",
          cp->size));
    }
    if (prev->size > 0) {
      absl::StatusOr<v1::ConsistencyProof> proof =
          client.GetConsistencyProof(prev->size, cp->size);
      if (!proof.ok()) return proof.status();
      // Sizes and roots are what we asked for and saw signed, never what
      // the server says they are.
      v1::ConsistencyProof pinned = *proof;
      pinned.set_old_size(prev->size);
      pinned.set_new_size(cp->size);
      pinned.set_old_root_hash(prev->root);
      pinned.set_new_root_hash(cp->root);
      if (absl::Status s = VerifyConsistencyProof(pinned); !s.ok()) {
        return absl::DataLossError(absl::StrCat(
            "the log is not an extension of the one verified last time (size ",
            prev->size, "): its history was rewritten; ", s.message()));
      }
    }
  }

  // The server's case states, fetched on a third thread while the events
  // stream in: serialized, for a byte comparison once the replay is done.
  struct Listed {
    std::vector<std::pair<std::string, std::string>> snapshots;  // id, bytes
    std::vector<std::string> changed;  // changed after the checkpoint
    absl::Status status;
  } listed;
  std::thread lister([&client, &listed, size = cp->size] {
    v1::ListCasesRequest list;
    list.set_page_size(500);
    for (;;) {
      absl::StatusOr<v1::ListCasesResponse> page = client.ListCases(list);
      if (!page.ok()) {
        listed.status = page.status();
        return;
      }
      for (const v1::Case& c : page->cases()) {
        if (c.last_sequence() <= size) {
          listed.snapshots.emplace_back(c.id(), c.SerializeAsString());
        } else {
          listed.changed.push_back(c.id());
        }
      }
      if (page->next_page_token().empty()) return;
      list.set_page_token(page->next_page_token());
    }
  });
  struct JoinOnExit {
    std::thread& t;
    ~JoinOnExit() {
      if (t.joinable()) t.join();
    }
  } join_lister{lister};

  // Every event: this thread hashes them as they arrive while a second one
  // replays them through the rules.
  core::ParallelReplayer replayer(/*shards=*/2);
  core::CompactTree tree;
  absl::Status replay;
  absl::Time last_progress = absl::Now();
  uint64_t expected = 1;
  absl::Status order;
  if (cp->size > 0) {
    v1::ReadLogRequest r;
    r.set_from_sequence(1);
    r.set_to_sequence(cp->size);
    r.set_include_event_bytes(true);
    r.set_bytes_only(true);
    absl::Status read = client.ReadLog(r, [&](const v1::LogEntry& e) {
      const uint64_t seq = e.event().sequence();
      if (seq != expected) {
        order = absl::DataLossError(absl::StrCat(
            "event ", expected, ": the server sent event ", seq, " in its place"));
        return false;
      }
      ++expected;
      tree.Append(core::LeafHash(e.event_bytes()));
      // Keep hashing after a rule fails: if the root does not match either,
      // the events were altered, and that is the finding to report.
      replayer.Add(seq, e.event_bytes());
      if (options.on_progress && absl::Now() - last_progress > absl::Seconds(1)) {
        last_progress = absl::Now();
        options.on_progress(tree.size(), cp->size);
      }
      return true;
    });
    replay = replayer.Finish();
    PERMIT_RETURN_IF_ERROR(order);
    PERMIT_RETURN_IF_ERROR(read);
  }
  if (tree.size() != cp->size) {
    return absl::DataLossError(absl::StrCat("the server served ", tree.size(),
                                            " events of the ", cp->size,
                                            " the checkpoint counts"));
  }
  if (core::AsBytes(tree.Root()) != cp->root) {
    return absl::DataLossError(absl::StrCat(
        "the events served do not hash to the signed checkpoint's root: they "
        "are not the events that were signed",
        replay.ok() ? "" : absl::StrCat(" (the first that breaks a rule: ",
                                        replay.message(), ")")));
  }
  PERMIT_RETURN_IF_ERROR(replay);
  report.events = tree.size();
  report.cases = replayer.case_count();

  // Every case's served state equals the one re-derived from the log.
  lister.join();
  PERMIT_RETURN_IF_ERROR(listed.status);
  // Each case exactly once: a server listing one case twice must not make up
  // for one it leaves out.
  absl::flat_hash_set<std::string> seen;
  auto once = [&seen](const std::string& id) -> absl::Status {
    if (seen.insert(id).second) return absl::OkStatus();
    return absl::DataLossError(absl::StrCat("the server lists case ", id, " twice"));
  };
  for (const auto& [id, bytes] : listed.snapshots) {
    PERMIT_RETURN_IF_ERROR(once(id));
    PERMIT_RETURN_IF_ERROR(replayer.CheckSnapshotBytes(id, bytes));
  }
  for (const std::string& id : listed.changed) PERMIT_RETURN_IF_ERROR(once(id));
  uint64_t compared = listed.snapshots.size();
  // (An empty checkpoint has no cases; as_of_sequence 0 would mean "now".)
  for (const std::string& id : cp->size == 0 ? std::vector<std::string>() : listed.changed) {
    // Changed after the checkpoint: compare the case as it stood then.
    v1::GetCaseRequest then;
    then.set_case_id(id);
    then.set_as_of_sequence(cp->size);
    absl::StatusOr<v1::Case> old = client.GetCase(then);
    if (absl::IsNotFound(old.status())) continue;  // newer than the checkpoint
    if (!old.ok()) return old.status();
    PERMIT_RETURN_IF_ERROR(replayer.CheckSnapshot(*old));
    ++compared;
  }
  if (compared != replayer.case_count()) {
    return absl::DataLossError(absl::StrCat(
        "the log has ", replayer.case_count(), " cases but the server lists ",
        compared, " of them"));
  }
  report.snapshots_checked = compared;

  if (keep) PERMIT_RETURN_IF_ERROR(WriteSmallFile(dir / "checkpoint", verified->note));
  if (options.on_progress) options.on_progress(report.events, cp->size);
  report.elapsed = absl::Now() - start;
  return report;
}

absl::StatusOr<uint64_t> ExportLog(Client& client, uint64_t from, uint64_t to,
                                   std::ostream& out) {
  absl::StatusOr<v1::SignedCheckpoint> cp = client.GetCheckpoint();
  if (!cp.ok()) return cp.status();
  const uint64_t n = cp->tree_size();
  if (from == 0) from = 1;
  if (to == 0 || to > n) to = n;
  if (n == 0 || from > to) {
    return absl::InvalidArgumentError(absl::StrCat(
        "nothing to export: the checkpoint has ", n, " events and the range is ",
        from, "..", to));
  }
  v1::ExportRecord header;
  v1::ExportHeader* h = header.mutable_header();
  h->set_from_sequence(from);
  h->set_to_sequence(to);
  h->set_checkpoint_note(cp->note());
  h->set_verifier_key(cp->verifier_key());
  if (from > 1) {
    // The audit path of event `from` in the tree of `from` events is the
    // frontier of the events before it, smallest subtree first.
    absl::StatusOr<v1::InclusionProof> p = client.GetInclusionProof(from, from);
    if (!p.ok()) return p.status();
    for (int i = p->hashes_size() - 1; i >= 0; --i) h->add_left_frontier(p->hashes(i));
  }
  if (to < n) {
    absl::StatusOr<v1::ConsistencyProof> p = client.GetConsistencyProof(to, n);
    if (!p.ok()) return p.status();
    *h->mutable_consistency_proof() = p->hashes();
  }
  out << kExportMagic;
  google::protobuf::io::OstreamOutputStream stream(&out);
  if (!google::protobuf::util::SerializeDelimitedToZeroCopyStream(header, &stream)) {
    return absl::InternalError("cannot write the export");
  }
  uint64_t written = 0;
  v1::ReadLogRequest r;
  r.set_from_sequence(from);
  r.set_to_sequence(to);
  r.set_include_event_bytes(true);
  bool io_ok = true;
  PERMIT_RETURN_IF_ERROR(client.ReadLog(r, [&](const v1::LogEntry& e) {
    v1::ExportRecord rec;
    rec.set_event(e.event_bytes());
    io_ok = google::protobuf::util::SerializeDelimitedToZeroCopyStream(rec, &stream);
    ++written;
    return io_ok;
  }));
  if (!io_ok) return absl::InternalError("cannot write the export");
  return written;
}

absl::StatusOr<VerifyReport> VerifyExport(std::istream& in, const VerifyOptions& options) {
  const absl::Time start = absl::Now();
  if (options.log_key.empty()) {
    return absl::InvalidArgumentError(
        "verifying a file needs the log key pinned (--log-key or PERMIT_LOG_KEY): "
        "the file's own key proves nothing");
  }
  std::string magic(sizeof(kExportMagic) - 1, '\0');
  if (!in.read(magic.data(), static_cast<std::streamsize>(magic.size())) ||
      magic != kExportMagic) {
    return absl::InvalidArgumentError("not a permit log export (bad first line)");
  }
  google::protobuf::io::IstreamInputStream stream(&in);
  v1::ExportRecord rec;
  bool clean_eof = false;
  if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&rec, &stream,
                                                                &clean_eof) ||
      !rec.has_header()) {
    return absl::DataLossError("the export has no header");
  }
  const v1::ExportHeader h = rec.header();
  absl::StatusOr<CheckpointInfo> cp = OpenCheckpoint(h.checkpoint_note(), options.log_key);
  if (!cp.ok()) return cp.status();
  if (h.from_sequence() < 1 || h.from_sequence() > h.to_sequence() ||
      h.to_sequence() > cp->size) {
    return absl::DataLossError(absl::StrCat("the header's range ", h.from_sequence(),
                                            "..", h.to_sequence(),
                                            " does not fit the checkpoint of ",
                                            cp->size, " events"));
  }
  absl::Status bad;
  std::vector<core::Hash> frontier = Hashes(h.left_frontier(), &bad);
  PERMIT_RETURN_IF_ERROR(bad);
  absl::StatusOr<core::CompactTree> left =
      core::CompactTree::FromFrontier(h.from_sequence() - 1, std::move(frontier));
  if (!left.ok()) return absl::DataLossError(left.status().message());
  core::LogVerifier verifier(*std::move(left));
  uint64_t seq = h.from_sequence();
  absl::Time last_progress = absl::Now();
  for (;;) {
    clean_eof = false;
    if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&rec, &stream,
                                                                  &clean_eof)) {
      if (clean_eof) break;
      return absl::DataLossError(absl::StrCat("the export is damaged after event ",
                                              seq - 1));
    }
    if (!rec.has_event()) return absl::DataLossError("a second header in the export");
    PERMIT_RETURN_IF_ERROR(verifier.Add(seq++, rec.event()));
    if (options.on_progress && absl::Now() - last_progress > absl::Seconds(1)) {
      last_progress = absl::Now();
      options.on_progress(verifier.size(), h.to_sequence());
    }
  }
  if (verifier.size() != h.to_sequence()) {
    return absl::DataLossError(absl::StrCat("the export ends at event ", verifier.size(),
                                            ", its header says ", h.to_sequence()));
  }
  std::vector<core::Hash> proof = Hashes(h.consistency_proof(), &bad);
  PERMIT_RETURN_IF_ERROR(bad);
  absl::StatusOr<core::Hash> signed_root = core::HashFromBytes(cp->root);
  if (absl::Status s = core::VerifyConsistency(h.to_sequence(), cp->size,
                                               verifier.root(), *signed_root, proof);
      !s.ok()) {
    return absl::DataLossError(absl::StrCat(
        "the exported events do not lead to the signed checkpoint: ", s.message()));
  }
  VerifyReport report;
  report.events = h.to_sequence() - h.from_sequence() + 1;
  report.cases = verifier.case_count();
  report.tree_size = cp->size;
  report.root_hex = absl::BytesToHexString(cp->root);
  report.elapsed = absl::Now() - start;
  return report;
}

}  // namespace permit
