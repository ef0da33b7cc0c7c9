// The domain service: validation, rules and group commit; see case_manager.h.
#include "server/case_manager.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/case_id.h"
#include "core/merkle.h"
#include "core/rules.h"
#include "core/status_macros.h"
#include "core/time_util.h"
#include "core/validation.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace permit::server {
namespace {

// SHA-256 over the action and the request without its request id: two
// requests with the same id and the same fingerprint are the same request.
// Every action request has request_id as field 1, and deterministic
// serialization writes fields in number order, so the request without its
// id is its serialization with the leading field-1 record cut off: the
// same bytes as serializing a copy with the id cleared, without the copy.
template <typename R>
std::string Fingerprint(v1::Action action, const R& request) {
  static_assert(R::kRequestIdFieldNumber == 1);
  std::string bytes = absl::StrCat(static_cast<int>(action), ":");
  const size_t prefix = bytes.size();
  {
    google::protobuf::io::StringOutputStream raw(&bytes);
    google::protobuf::io::CodedOutputStream out(&raw);
    out.SetSerializationDeterministic(true);
    request.SerializeToCodedStream(&out);
  }
  if (!request.request_id().empty()) {
    // Tag 0x0A (field 1, length-delimited), varint length, the id.
    google::protobuf::io::CodedInputStream in(
        reinterpret_cast<const uint8_t*>(bytes.data() + prefix),
        static_cast<int>(bytes.size() - prefix));
    uint32_t length = 0;
    if (in.ReadTag() == 0x0A && in.ReadVarint32(&length) && in.Skip(length)) {
      bytes.erase(prefix, in.CurrentPosition());
    }
  }
  return std::string(core::AsBytes(core::Sha256(bytes)));
}

absl::Status Unavailable() {
  return absl::UnavailableError("permitd is shutting down; retry shortly");
}

}  // namespace

absl::StatusOr<std::unique_ptr<CaseManager>> CaseManager::Create(
    std::unique_ptr<storage::EventStore> store, Options options) {
  if (store == nullptr) return absl::InvalidArgumentError("no store");
  if (options.max_batch < 1) options.max_batch = 1;
  return std::unique_ptr<CaseManager>(
      new CaseManager(std::move(store), std::move(options)));
}

CaseManager::CaseManager(std::unique_ptr<storage::EventStore> store,
                         Options options)
    : store_(std::move(store)), options_(std::move(options)) {
  const uint64_t initial_size = store_->State().tree_size;
  initial_size_ = initial_size;
  {
    absl::MutexLock lock(&notify_mu_);
    committed_size_ = initial_size;
  }
  writer_ = std::thread([this] { WriterLoop(); });
  notifier_ = std::thread([this, initial_size] { NotifierLoop(initial_size); });
}

CaseManager::~CaseManager() {
  Shutdown();
  writer_.join();
  notifier_.join();
}

size_t CaseManager::QueuedActions() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

void CaseManager::Shutdown() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
}

void CaseManager::Enqueue(Command cmd, absl::Time deadline) {
  cmd.deadline = deadline;
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      queue_.push_back(std::move(cmd));
      return;
    }
  }
  cmd.done(Unavailable());
}

void CaseManager::WriterLoop() {
  for (;;) {
    std::vector<Command> batch;
    {
      absl::MutexLock lock(&mu_);
      auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || stopping_;
      };
      mu_.Await(absl::Condition(&has_work));
      if (queue_.empty()) break;  // stopping, nothing left
      while (!queue_.empty() &&
             static_cast<int>(batch.size()) < options_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    // An action whose caller has given up (its deadline passed while it
    // waited) is dropped before it is decided: nothing is written, and the
    // caller, who sees DEADLINE_EXCEEDED, may retry with the same request id.
    const absl::Time now = absl::Now();
    std::vector<Command> live;
    live.reserve(batch.size());
    for (Command& cmd : batch) {
      if (cmd.deadline < now) {
        cmd.done(absl::DeadlineExceededError(
            "the call's deadline passed before the action was committed; "
            "nothing was written (retry with the same request id)"));
      } else {
        live.push_back(std::move(cmd));
      }
    }
    if (!live.empty()) CommitBatch(live);
  }
  absl::MutexLock lock(&notify_mu_);
  writer_done_ = true;
}

void CaseManager::NotifierLoop(uint64_t reported) {
  for (;;) {
    uint64_t size;
    bool done;
    {
      absl::MutexLock lock(&notify_mu_);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(notify_mu_) {
        return committed_size_ != reported || writer_done_;
      };
      notify_mu_.Await(absl::Condition(&ready));
      size = committed_size_;
      done = writer_done_ && committed_size_ == reported;
    }
    absl::MutexLock lock(&subscribers_mu_);
    if (done) {
      for (auto& [id, fn] : subscribers_) fn(0);
      subscribers_.clear();
      subscribers_closed_ = true;
      return;
    }
    for (auto& [id, fn] : subscribers_) fn(size);
    reported = size;
  }
}

void CaseManager::CommitBatch(std::vector<Command>& batch) {
  const storage::LogState state = store_->State();
  // Event times never go backwards, even if the system clock does.
  absl::Time now = options_.clock();
  if (state.last_event_time.has_value()) {
    const absl::Time last = core::FromProtoTime(*state.last_event_time);
    if (now < last) now = last;
  }
  uint64_t next_seq = state.tree_size + 1;
  uint64_t new_cases = 0;

  // Cases and idempotency records changed by earlier commands of this batch.
  absl::flat_hash_map<std::string, size_t> cases;  // case id -> pending index
  absl::flat_hash_map<std::string, size_t> requests;  // key -> command index
  std::vector<storage::PendingEvent> pending;
  std::vector<absl::StatusOr<v1::Case>> results(batch.size(),
                                                absl::UnknownError("unset"));
  std::vector<int> duplicate_of(batch.size(), -1);
  std::vector<int> pending_of(batch.size(), -1);

  for (size_t i = 0; i < batch.size(); ++i) {
    Command& cmd = batch[i];
    const std::string request_key =
        absl::StrCat(cmd.actor.principal_id(), std::string(1, '\0'), cmd.request_id);

    // Idempotency: a request id seen before, in this batch or on disk.
    auto refuse_reuse = [&] {
      results[i] = core::InvalidArgument(
          {{"request_id",
            absl::StrCat("\"", cmd.request_id,
                         "\" was already used for a different request; "
                         "choose a new request id")}});
    };
    if (auto it = requests.find(request_key); it != requests.end()) {
      if (batch[it->second].fingerprint != cmd.fingerprint) {
        refuse_reuse();
      } else {
        duplicate_of[i] = static_cast<int>(it->second);
      }
      continue;
    }
    absl::StatusOr<std::optional<storage::RequestRecord>> seen =
        store_->GetRequest(cmd.actor.principal_id(), cmd.request_id);
    if (!seen.ok()) {
      results[i] = seen.status();
      continue;
    }
    if (seen->has_value()) {
      if ((*seen)->fingerprint() != cmd.fingerprint) {
        refuse_reuse();
      } else {
        results[i] = CaseAtVersion((*seen)->case_id(), (*seen)->case_version());
      }
      continue;
    }

    // The case as it stands, including this batch's earlier changes. It
    // becomes the case after the action in place (one copy, not two).
    v1::Case next;
    const bool is_submit = cmd.action == v1::ACTION_SUBMIT;
    if (!is_submit) {
      if (auto it = cases.find(cmd.case_id); it != cases.end()) {
        next = pending[it->second].snapshot;
      } else {
        absl::StatusOr<v1::Case> stored = store_->GetCase(cmd.case_id);
        if (!stored.ok()) {
          results[i] = stored.status();
          continue;
        }
        next = *std::move(stored);
      }
    }
    absl::StatusOr<v1::CaseState> target =
        core::Decide(is_submit ? nullptr : &next, cmd.action, cmd.actor,
                     cmd.expected_version);
    if (!target.ok()) {
      results[i] = target.status();
      continue;
    }

    storage::PendingEvent p;
    v1::Event& e = p.event;
    e = std::move(cmd.details);
    e.set_sequence(next_seq);
    e.set_case_id(is_submit
                      ? core::FormatCaseId(state.case_count + new_cases + 1, now)
                      : next.id());
    e.set_case_version(next.version() + 1);
    e.set_organisation(is_submit ? cmd.actor.organisation() : next.organisation());
    e.set_action(cmd.action);
    *e.mutable_actor() = cmd.actor;
    *e.mutable_time() = core::ToProtoTime(now);
    e.set_request_id(cmd.request_id);
    e.set_from_state(next.state());
    e.set_to_state(*target);
    if (cmd.default_valid_from) {
      *e.mutable_approve()->mutable_valid_from() = core::ToProtoTime(now);
    }
    p.previous_state = next.state();
    if (absl::Status s = core::ApplyEvent(e, &next); !s.ok()) {
      results[i] = absl::InternalError(
          absl::StrCat("the rules refused their own decision: ", s.message()));
      continue;
    }
    p.snapshot = std::move(next);
    p.principal_id = cmd.actor.principal_id();
    p.request.set_fingerprint(cmd.fingerprint);
    p.request.set_case_id(e.case_id());
    p.request.set_case_version(e.case_version());
    p.request.set_sequence(e.sequence());
    cases[e.case_id()] = pending.size();
    requests[request_key] = i;
    pending_of[i] = static_cast<int>(pending.size());
    pending.push_back(std::move(p));
    ++next_seq;
    if (is_submit) ++new_cases;
  }

  const absl::Time append_start = absl::Now();
  const absl::Status written = store_->Append(pending, new_cases);
  const absl::Duration sync_latency = absl::Now() - append_start;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (pending_of[i] >= 0) {
      if (written.ok()) {
        // The snapshot was written; the caller gets it without a copy.
        results[i] = std::move(pending[pending_of[i]].snapshot);
      } else {
        results[i] = written;
      }
    }
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    if (duplicate_of[i] >= 0) results[i] = results[duplicate_of[i]];
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    batch[i].done(std::move(results[i]));
  }
  if (written.ok() && !pending.empty()) {
    absl::MutexLock lock(&notify_mu_);
    committed_size_ = next_seq - 1;
  }
  if (!written.ok() && !storage_failed_) {
    storage_failed_ = true;
    if (options_.on_storage_failure) options_.on_storage_failure(written);
  }
  if (options_.on_commit && !pending.empty()) {
    CommitStats stats;
    stats.actions = batch.size();
    stats.events = &pending;
    stats.sync_latency = sync_latency;
    stats.status = written;
    stats.log_size = written.ok() ? next_seq - 1 : state.tree_size;
    options_.on_commit(stats);
  }
}

// --- Actions ---------------------------------------------------------------

namespace {

}  // namespace

template <typename Request>
CaseManager::Command CaseManager::NewCommand(const v1::Actor& actor,
                                             v1::Action action,
                                             const Request& r) {
  Command cmd;
  cmd.actor = actor;
  cmd.action = action;
  cmd.request_id = r.request_id();
  cmd.case_id = r.case_id();
  cmd.expected_version = r.expected_version();
  return cmd;
}

namespace {

bool Invalid(const std::vector<core::FieldViolation>& v,
             const CaseManager::Done& done) {
  if (v.empty()) return false;
  done(core::InvalidArgument(v));
  return true;
}

}  // namespace

void CaseManager::Submit(const v1::Actor& actor, const v1::SubmitCaseRequest& r,
                         Done done, absl::Time deadline) {
  if (Invalid(core::Validate(r), done)) return;
  Command cmd;
  cmd.actor = actor;
  cmd.action = v1::ACTION_SUBMIT;
  cmd.request_id = r.request_id();
  cmd.fingerprint = Fingerprint(cmd.action, r);
  *cmd.details.mutable_submit()->mutable_application() = r.application();
  cmd.done = std::move(done);
  Enqueue(std::move(cmd), deadline);
}

void CaseManager::Review(const v1::Actor& actor, const v1::ReviewCaseRequest& r,
                         Done done, absl::Time deadline) {
  if (Invalid(core::Validate(r), done)) return;
  Command cmd = NewCommand(actor, v1::ACTION_REVIEW, r);
  cmd.fingerprint = Fingerprint(cmd.action, r);
  cmd.details.mutable_review()->set_recommendation(r.recommendation());
  cmd.details.mutable_review()->set_findings(r.findings());
  cmd.done = std::move(done);
  Enqueue(std::move(cmd), deadline);
}

void CaseManager::Approve(const v1::Actor& actor,
                          const v1::ApproveCaseRequest& r, Done done, absl::Time deadline) {
  if (Invalid(core::Validate(r, options_.clock()), done)) {
    return;
  }
  Command cmd = NewCommand(actor, v1::ACTION_APPROVE, r);
  cmd.fingerprint = Fingerprint(cmd.action, r);
  v1::ApproveDetails* d = cmd.details.mutable_approve();
  if (r.has_valid_from()) {
    *d->mutable_valid_from() = r.valid_from();
  } else {
    cmd.default_valid_from = true;
  }
  *d->mutable_valid_until() = r.valid_until();
  d->set_conditions(r.conditions());
  cmd.done = std::move(done);
  Enqueue(std::move(cmd), deadline);
}

namespace {

template <typename R>
void FillReason(const R& r, v1::Event* details) {
  details->mutable_reason()->set_reason(r.reason());
}

}  // namespace

#define PERMIT_REASON_ACTION(Method, Request, ActionValue)               \
  void CaseManager::Method(const v1::Actor& actor, const v1::Request& r, \
                           Done done, absl::Time deadline) {             \
    if (Invalid(core::Validate(r), done)) return;                        \
    Command cmd = NewCommand(actor, ActionValue, r);                     \
    cmd.fingerprint = Fingerprint(cmd.action, r);                        \
    FillReason(r, &cmd.details);                                         \
    cmd.done = std::move(done);                                          \
    Enqueue(std::move(cmd), deadline);                                   \
  }

PERMIT_REASON_ACTION(Reject, RejectCaseRequest, v1::ACTION_REJECT)
PERMIT_REASON_ACTION(Suspend, SuspendCaseRequest, v1::ACTION_SUSPEND)
PERMIT_REASON_ACTION(Resume, ResumeCaseRequest, v1::ACTION_RESUME)
PERMIT_REASON_ACTION(Revoke, RevokeCaseRequest, v1::ACTION_REVOKE)
PERMIT_REASON_ACTION(Withdraw, WithdrawCaseRequest, v1::ACTION_WITHDRAW)
#undef PERMIT_REASON_ACTION

// --- Reads -----------------------------------------------------------------

absl::StatusOr<v1::Event> CaseManager::ReadEvent(uint64_t sequence) const {
  v1::Event e;
  bool found = false;
  bool parsed = false;
  RETURN_IF_ERROR(store_->ReadEvents(
      sequence, sequence, [&](uint64_t, absl::string_view bytes) {
        found = true;
        parsed = e.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
        return false;
      }));
  if (!found) {
    return absl::DataLossError(absl::StrCat("event ", sequence, " is missing"));
  }
  if (!parsed) {
    return absl::DataLossError(
        absl::StrCat("event ", sequence, " does not parse"));
  }
  return e;
}

absl::StatusOr<v1::Case> CaseManager::CaseAtVersion(absl::string_view case_id,
                                                    int64_t version) const {
  ASSIGN_OR_RETURN(std::vector<uint64_t> seqs,
                   store_->CaseEventSequences(case_id));
  if (version < 1 || static_cast<uint64_t>(version) > seqs.size()) {
    return absl::DataLossError(absl::StrCat("case ", case_id, " has no version ",
                                            version));
  }
  v1::Case c;
  for (int64_t v = 0; v < version; ++v) {
    ASSIGN_OR_RETURN(v1::Event e, ReadEvent(seqs[v]));
    RETURN_IF_ERROR(core::ApplyEvent(e, &c));
  }
  return c;
}

namespace {

bool InAsOf(const v1::Event& e, const AsOf& as_of) {
  return (as_of.sequence == 0 || e.sequence() <= as_of.sequence) &&
         (!as_of.time.has_value() || core::FromProtoTime(e.time()) <= *as_of.time);
}

}  // namespace

absl::StatusOr<v1::Case> CaseManager::GetCase(const v1::Actor& actor,
                                              absl::string_view case_id,
                                              const AsOf& as_of) const {
  if (!core::IsCaseId(case_id)) {
    return core::InvalidArgument(
        {{"case_id", "not a case id like PRM-2026-000042"}});
  }
  absl::StatusOr<v1::Case> c = store_->GetCase(case_id);
  if (!c.ok()) return c.status();
  if (!core::CanRead(actor, *c)) {
    return absl::NotFoundError(absl::StrCat("case ", case_id, " not found"));
  }
  if (as_of.now()) return c;
  ASSIGN_OR_RETURN(std::vector<uint64_t> seqs, store_->CaseEventSequences(case_id));
  v1::Case then;
  for (uint64_t seq : seqs) {
    ASSIGN_OR_RETURN(v1::Event e, ReadEvent(seq));
    if (!InAsOf(e, as_of)) break;
    RETURN_IF_ERROR(core::ApplyEvent(e, &then));
  }
  if (then.version() == 0) {
    return absl::NotFoundError(
        absl::StrCat("case ", case_id, " did not exist yet at that point"));
  }
  return then;
}

absl::StatusOr<v1::ListCasesResponse> CaseManager::ListCases(
    const v1::Actor& actor, const v1::ListCasesRequest& r) const {
  RETURN_IF_ERROR(core::InvalidArgument(core::Validate(r)));
  storage::CaseFilter filter;
  filter.state = r.state();
  filter.organisation = r.organisation();
  filter.destination_country = r.destination_country();
  if (actor.role() == v1::ROLE_EXPORTER) {
    if (!filter.organisation.empty() &&
        filter.organisation != actor.organisation()) {
      return absl::PermissionDeniedError(absl::StrCat(
          "exporters may list only their own organisation's cases (",
          actor.organisation(), ")"));
    }
    filter.organisation = actor.organisation();
  } else if (actor.role() != v1::ROLE_REVIEWER &&
             actor.role() != v1::ROLE_AUDITOR) {
    return absl::PermissionDeniedError("no role to list cases");
  }
  std::string after;
  if (!r.page_token().empty() &&
      (!absl::WebSafeBase64Unescape(r.page_token(), &after) ||
       !core::IsCaseId(after))) {
    return core::InvalidArgument(
        {{"page_token", "not a token from a previous ListCases response"}});
  }
  const int page_size =
      r.page_size() == 0 ? core::Limits::kDefaultPageSize : r.page_size();
  ASSIGN_OR_RETURN(std::vector<v1::Case> cases,
                   store_->ListCases(filter, after, page_size + 1));
  v1::ListCasesResponse out;
  for (int i = 0; i < static_cast<int>(cases.size()) && i < page_size; ++i) {
    *out.add_cases() = std::move(cases[i]);
  }
  if (static_cast<int>(cases.size()) > page_size) {
    out.set_next_page_token(
        absl::WebSafeBase64Escape(out.cases(page_size - 1).id()));
  }
  return out;
}

absl::StatusOr<std::vector<v1::Event>> CaseManager::GetCaseHistory(
    const v1::Actor& actor, absl::string_view case_id, const AsOf& as_of) const {
  RETURN_IF_ERROR(GetCase(actor, case_id).status());
  ASSIGN_OR_RETURN(std::vector<uint64_t> seqs,
                   store_->CaseEventSequences(case_id));
  std::vector<v1::Event> events;
  events.reserve(seqs.size());
  for (uint64_t seq : seqs) {
    ASSIGN_OR_RETURN(v1::Event e, ReadEvent(seq));
    if (!InAsOf(e, as_of)) break;
    events.push_back(std::move(e));
  }
  return events;
}

namespace {

absl::Status CanProve(const v1::Actor& actor) {
  if (actor.role() == v1::ROLE_AUDITOR || actor.role() == v1::ROLE_REVIEWER) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      "proofs are for auditors and reviewers: they cover every organisation's events");
}

std::string Bytes(const core::Hash& h) { return std::string(core::AsBytes(h)); }

}  // namespace

absl::StatusOr<std::string> CaseManager::RootAt(uint64_t size) const {
  if (size == 0 || size > LogSize()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the log has no tree of size ", size, " (it has ", LogSize(),
                     " events)"));
  }
  ASSIGN_OR_RETURN(core::Hash root,
                   core::RangeHash(0, size, [this](int level, uint64_t index) {
                     return store_->TreeNode(level, index);
                   }));
  return Bytes(root);
}

absl::StatusOr<v1::InclusionProof> CaseManager::GetInclusionProof(
    const v1::Actor& actor, uint64_t sequence, uint64_t tree_size) const {
  RETURN_IF_ERROR(CanProve(actor));
  const uint64_t size = LogSize();
  if (tree_size == 0) tree_size = size;
  std::vector<core::FieldViolation> v;
  if (tree_size > size) {
    v.push_back({"tree_size", absl::StrCat("the log has only ", size, " events")});
  }
  if (sequence == 0 || sequence > tree_size) {
    v.push_back({"sequence", absl::StrCat("must be between 1 and the tree size (",
                                          tree_size, ")")});
  }
  RETURN_IF_ERROR(core::InvalidArgument(v));
  auto read = [this](int level, uint64_t index) { return store_->TreeNode(level, index); };
  ASSIGN_OR_RETURN(std::vector<core::Hash> path,
                   core::InclusionProof(sequence - 1, tree_size, read));
  ASSIGN_OR_RETURN(core::Hash leaf, store_->TreeNode(0, sequence - 1));
  ASSIGN_OR_RETURN(std::string root, RootAt(tree_size));
  v1::InclusionProof out;
  out.set_sequence(sequence);
  out.set_tree_size(tree_size);
  out.set_leaf_hash(Bytes(leaf));
  for (const core::Hash& h : path) out.add_hashes(Bytes(h));
  out.set_root_hash(root);
  return out;
}

absl::StatusOr<v1::ConsistencyProof> CaseManager::GetConsistencyProof(
    const v1::Actor& actor, uint64_t old_size, uint64_t new_size) const {
  RETURN_IF_ERROR(CanProve(actor));
  const uint64_t size = LogSize();
  if (new_size == 0) new_size = size;
  std::vector<core::FieldViolation> v;
  if (new_size > size) {
    v.push_back({"new_size", absl::StrCat("the log has only ", size, " events")});
  }
  if (old_size == 0 || old_size > new_size) {
    v.push_back({"old_size", absl::StrCat("must be between 1 and new_size (",
                                          new_size, ")")});
  }
  RETURN_IF_ERROR(core::InvalidArgument(v));
  auto read = [this](int level, uint64_t index) { return store_->TreeNode(level, index); };
  ASSIGN_OR_RETURN(std::vector<core::Hash> path,
                   core::ConsistencyProof(old_size, new_size, read));
  v1::ConsistencyProof out;
  out.set_old_size(old_size);
  out.set_new_size(new_size);
  for (const core::Hash& h : path) out.add_hashes(Bytes(h));
  ASSIGN_OR_RETURN(std::string old_root, RootAt(old_size));
  ASSIGN_OR_RETURN(std::string new_root, RootAt(new_size));
  out.set_old_root_hash(old_root);
  out.set_new_root_hash(new_root);
  return out;
}

v1::LogHead CaseManager::GetLogHead(const v1::Actor& actor) const {
  const storage::LogState s = store_->State();
  v1::LogHead head;
  head.set_tree_size(s.tree_size);
  head.set_root_hash(std::string(core::AsBytes(s.root)));
  if (s.last_event_time.has_value()) {
    *head.mutable_last_event_time() = *s.last_event_time;
  }
  return head;
}

absl::Status CaseManager::CheckMayBackUp(const v1::Actor& actor) {
  if (actor.role() != v1::ROLE_ADMIN) {
    return absl::PermissionDeniedError("backups are for admin principals");
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::BackupResponse> CaseManager::Backup(const v1::Actor& actor,
                                                      const v1::BackupRequest& r,
                                                      const std::string& backup_dir) {
  RETURN_IF_ERROR(CheckMayBackUp(actor));
  const uint64_t size = LogSize();
  ASSIGN_OR_RETURN(storage::BackupInfo info, store_->Backup(backup_dir, r.keep_last()));
  v1::BackupResponse out;
  out.set_backup_id(info.backup_id);
  *out.mutable_time() = core::ToProtoTime(absl::FromUnixSeconds(info.unix_time));
  out.set_tree_size_at_least(size);
  out.set_size_bytes(info.size_bytes);
  out.set_backup_dir(backup_dir);
  for (uint32_t id : info.kept_ids) out.add_kept_backup_ids(id);
  return out;
}

uint64_t CaseManager::LogSize() const { return store_->State().tree_size; }

absl::Status CaseManager::CheckLogQuery(const v1::Actor& actor,
                                        const LogQuery& q) const {
  if (actor.role() != v1::ROLE_EXPORTER && actor.role() != v1::ROLE_REVIEWER &&
      actor.role() != v1::ROLE_AUDITOR) {
    return absl::PermissionDeniedError("no role to read the audit log");
  }
  if (q.to != UINT64_MAX && q.to < q.from) {
    return core::InvalidArgument(
        {{"to_sequence", "must not be below from_sequence"}});
  }
  if (!q.case_id.empty()) return GetCase(actor, q.case_id).status();
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> CaseManager::ReadLog(
    const v1::Actor& actor, const LogQuery& q, size_t max_events,
    size_t max_bytes, v1::ReadLogResponse* out) const {
  const uint64_t from = std::max<uint64_t>(q.from, 1);
  const uint64_t to = std::min<uint64_t>(q.to, LogSize());
  if (from > to) return from;
  size_t bytes_out = 0;
  uint64_t next = from;
  // Nothing to filter on: the bytes can go out without being parsed.
  const bool raw = q.bytes_only && q.include_event_bytes &&
                   actor.role() != v1::ROLE_EXPORTER && q.actor.empty() &&
                   q.action == v1::ACTION_UNSPECIFIED && !q.start_time.has_value() &&
                   !q.end_time.has_value();
  // Entries are added in place: a response reused across calls (as a
  // stream's is) keeps its cleared entries and their buffers, so steady
  // streaming allocates almost nothing.
  auto count = [&] { return static_cast<size_t>(out->entries_size()); };
  auto take = [&](uint64_t seq, absl::string_view bytes) -> absl::Status {
    next = seq + 1;
    v1::LogEntry* entry = out->add_entries();
    if (raw) {
      entry->mutable_event()->Clear();
      entry->mutable_event()->set_sequence(seq);
      entry->set_event_bytes(bytes.data(), bytes.size());
      bytes_out += bytes.size();
      return absl::OkStatus();
    }
    if (!entry->mutable_event()->ParseFromArray(bytes.data(),
                                                static_cast<int>(bytes.size()))) {
      out->mutable_entries()->RemoveLast();
      return absl::DataLossError(absl::StrCat("event ", seq, " does not parse"));
    }
    const v1::Event& e = entry->event();
    if ((actor.role() == v1::ROLE_EXPORTER && e.organisation() != actor.organisation()) ||
        (!q.actor.empty() && e.actor().principal_id() != q.actor) ||
        (q.action != v1::ACTION_UNSPECIFIED && e.action() != q.action) ||
        (q.start_time.has_value() && core::FromProtoTime(e.time()) < *q.start_time) ||
        (q.end_time.has_value() && core::FromProtoTime(e.time()) >= *q.end_time)) {
      out->mutable_entries()->RemoveLast();
      return absl::OkStatus();
    }
    if (q.include_event_bytes) {
      entry->set_event_bytes(bytes.data(), bytes.size());
    } else {
      entry->clear_event_bytes();
    }
    if (q.include_event_bytes && q.bytes_only) {
      entry->mutable_event()->Clear();
      entry->mutable_event()->set_sequence(seq);
    }
    bytes_out += bytes.size() * (q.include_event_bytes ? 2 : 1);
    return absl::OkStatus();
  };

  if (!q.case_id.empty()) {
    ASSIGN_OR_RETURN(std::vector<uint64_t> seqs,
                     store_->CaseEventSequences(q.case_id));
    for (uint64_t seq : seqs) {
      if (seq < from) continue;
      if (seq > to) break;
      // Stopped by a limit: continue from this event next time.
      if (count() >= max_events || bytes_out >= max_bytes) return seq;
      absl::Status st;
      RETURN_IF_ERROR(store_->ReadEvents(seq, seq, [&](uint64_t s, absl::string_view b) {
        st = take(s, b);
        return false;
      }));
      RETURN_IF_ERROR(st);
    }
    return to + 1;
  }

  absl::Status st;
  size_t scanned = 0;
  RETURN_IF_ERROR(store_->ReadEvents(from, to, [&](uint64_t s, absl::string_view b) {
    st = take(s, b);
    // An exporter's filter may skip many events: bound the work per call too.
    return st.ok() && count() < max_events && bytes_out < max_bytes &&
           ++scanned < max_events * 64;
  }));
  RETURN_IF_ERROR(st);
  return next;
}

absl::StatusOr<uint64_t> CaseManager::ReadLog(const v1::Actor& actor,
                                              const LogQuery& q, size_t max_events,
                                              size_t max_bytes,
                                              std::vector<v1::LogEntry>* out) const {
  v1::ReadLogResponse response;
  absl::StatusOr<uint64_t> next = ReadLog(actor, q, max_events, max_bytes, &response);
  for (v1::LogEntry& e : *response.mutable_entries()) out->push_back(std::move(e));
  return next;
}

absl::StatusOr<int> CaseManager::Subscribe(std::function<void(uint64_t)> fn) {
  absl::MutexLock lock(&subscribers_mu_);
  if (subscribers_closed_) return Unavailable();
  const int id = ++next_subscriber_;
  subscribers_.emplace_back(id, std::move(fn));
  return id;
}

void CaseManager::Unsubscribe(int id) {
  absl::MutexLock lock(&subscribers_mu_);
  for (auto it = subscribers_.begin(); it != subscribers_.end(); ++it) {
    if (it->first == id) {
      subscribers_.erase(it);
      return;
    }
  }
}

}  // namespace permit::server
