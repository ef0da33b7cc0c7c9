// The record of refused calls; see denials.h.
#include "server/denials.h"

#include "absl/strings/str_cat.h"
#include "core/time_util.h"
#include "core/validation.h"

namespace permit::server {
namespace {

std::string CodeName(absl::StatusCode code) { return absl::StatusCodeToString(code); }

}  // namespace

bool DenialRecord::IsRefusal(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kResourceExhausted:
      return true;
    default:
      return false;
  }
}

void DenialRecord::OnCallDone(const CallRecord& call) {
  if (!IsRefusal(call.status.code())) return;
  v1::Denial d;
  *d.mutable_time() = core::ToProtoTime(call.start + call.latency);
  d.set_principal_id(call.actor.principal_id());
  d.set_role(call.actor.role());
  d.set_method(call.method);
  d.set_case_id(call.case_id);
  d.set_code(CodeName(call.status.code()));
  d.set_message(std::string(call.status.message()));
  d.set_peer(call.peer);
  absl::MutexLock lock(&mu_);
  d.set_id(++total_);
  ++by_code_[d.code()];
  kept_.push_back(std::move(d));
  if (kept_.size() > capacity_) kept_.pop_front();
}

absl::StatusOr<v1::ListDenialsResponse> DenialRecord::List(
    const v1::Actor& actor, const v1::ListDenialsRequest& r) const {
  if (actor.role() != v1::ROLE_AUDITOR) {
    return absl::PermissionDeniedError("the record of refused calls is for auditors");
  }
  std::vector<core::FieldViolation> bad;
  if (r.page_size() < 0 || r.page_size() > 1000) {
    bad.push_back({"page_size", "must be between 0 (default 100) and 1000"});
  }
  if (!r.code().empty()) {
    bool known = false;
    for (int c = 0; c <= 16; ++c) {
      const auto code = static_cast<absl::StatusCode>(c);
      known = known || (IsRefusal(code) && CodeName(code) == r.code());
    }
    if (!known) {
      bad.push_back({"code",
                     "not a refusal code: UNAUTHENTICATED, PERMISSION_DENIED, "
                     "NOT_FOUND, FAILED_PRECONDITION, ABORTED or RESOURCE_EXHAUSTED"});
    }
  }
  if (!bad.empty()) return core::InvalidArgument(bad);
  const size_t limit = r.page_size() == 0 ? 100 : r.page_size();
  v1::ListDenialsResponse out;
  absl::MutexLock lock(&mu_);
  for (auto it = kept_.rbegin(); it != kept_.rend() && out.denials_size() < static_cast<int>(limit); ++it) {
    const v1::Denial& d = *it;
    if (r.before_id() != 0 && d.id() >= r.before_id()) continue;
    if (!r.principal_id().empty() && d.principal_id() != r.principal_id()) continue;
    if (!r.case_id().empty() && d.case_id() != r.case_id()) continue;
    if (!r.code().empty() && d.code() != r.code()) continue;
    *out.add_denials() = d;
  }
  out.set_total(total_);
  out.set_evicted(total_ - kept_.size());
  for (const auto& [code, n] : by_code_) (*out.mutable_by_code())[code] = n;
  return out;
}

uint64_t DenialRecord::total() const {
  absl::MutexLock lock(&mu_);
  return total_;
}

}  // namespace permit::server
