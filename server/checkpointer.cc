// Checkpoint signing as the log grows; see checkpointer.h.
#include "server/checkpointer.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace permit::server {

absl::StatusOr<std::unique_ptr<Checkpointer>> Checkpointer::Start(
    CaseManager* manager, std::unique_ptr<core::NoteSigner> signer,
    absl::Duration min_interval) {
  std::unique_ptr<Checkpointer> c(
      new Checkpointer(manager, std::move(signer), min_interval));
  // Never sign a history that diverges from one signed before (a restored
  // old backup, a recreated data folder with the same key, tampering).
  ASSIGN_OR_RETURN(std::optional<std::string> saved, manager->LoadCheckpoint());
  if (saved.has_value()) {
    v1::SignedCheckpoint last;
    if (!last.ParseFromString(*saved)) {
      return absl::DataLossError("the saved signed checkpoint does not parse");
    }
    const uint64_t size = manager->LogSize();
    if (last.tree_size() > size) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the log has ", size, " events but a checkpoint of ", last.tree_size(),
          " was already signed: the data folder is older than the log it was "
          "(restored from an old backup?). permitd will not sign a diverging "
          "history with the same key"));
    }
    if (last.tree_size() > 0) {
      ASSIGN_OR_RETURN(std::string root, manager->RootAt(last.tree_size()));
      if (root != last.root_hash()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the log's first ", last.tree_size(),
            " events differ from those of the last signed checkpoint: its "
            "history was rewritten. permitd will not sign it with the same key"));
      }
    }
  }
  ASSIGN_OR_RETURN(v1::SignedCheckpoint first, c->Sign());
  {
    absl::MutexLock lock(&c->mu_);
    c->latest_ = std::move(first);
    c->wanted_size_ = c->latest_.tree_size();
  }
  Checkpointer* raw = c.get();
  absl::StatusOr<int> id = manager->Subscribe([raw](uint64_t size) {
    absl::MutexLock lock(&raw->mu_);
    if (size > raw->wanted_size_) raw->wanted_size_ = size;
  });
  if (!id.ok()) return id.status();
  c->subscription_ = *id;
  c->thread_ = std::thread([raw] { raw->Loop(); });
  return c;
}

Checkpointer::Checkpointer(CaseManager* manager,
                           std::unique_ptr<core::NoteSigner> signer,
                           absl::Duration min_interval)
    : manager_(manager), signer_(std::move(signer)), min_interval_(min_interval) {}

Checkpointer::~Checkpointer() {
  if (subscription_ != 0) manager_->Unsubscribe(subscription_);
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

v1::SignedCheckpoint Checkpointer::Latest() const {
  absl::MutexLock lock(&mu_);
  return latest_;
}

absl::StatusOr<v1::SignedCheckpoint> Checkpointer::Sign() const {
  // Size and root as the writer computed them, read together.
  const v1::LogHead head = manager_->GetLogHead(v1::Actor());
  core::Checkpoint cp;
  cp.origin = signer_->name();
  cp.size = head.tree_size();
  ASSIGN_OR_RETURN(cp.root, core::HashFromBytes(head.root_hash()));
  ASSIGN_OR_RETURN(std::string note, signer_->Sign(core::CheckpointBody(cp)));
  v1::SignedCheckpoint out;
  out.set_note(std::move(note));
  out.set_tree_size(cp.size);
  out.set_root_hash(head.root_hash());
  out.set_verifier_key(signer_->verifier_key());
  // Kept before it is served, so a restart checks against it.
  RETURN_IF_ERROR(manager_->SaveCheckpoint(out.SerializeAsString()));
  return out;
}

void Checkpointer::Loop() {
  absl::Time last_signed = absl::Now();
  for (;;) {
    uint64_t size;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || wanted_size_ > latest_.tree_size();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      // Under load, sign at most once per interval.
      const absl::Time next = last_signed + min_interval_;
      auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (mu_.AwaitWithDeadline(absl::Condition(&stop), next)) return;
      size = wanted_size_;
    }
    absl::StatusOr<v1::SignedCheckpoint> cp = Sign();
    last_signed = absl::Now();
    if (!cp.ok()) {
      std::cerr << "permitd: cannot sign a checkpoint of size " << size << ": "
                << cp.status() << "\n";
      continue;
    }
    absl::MutexLock lock(&mu_);
    if (cp->tree_size() > latest_.tree_size()) latest_ = *std::move(cp);
  }
}

}  // namespace permit::server
