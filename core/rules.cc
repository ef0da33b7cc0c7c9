// Implementation of the workflow rules; see rules.h for the table.
#include "core/rules.h"

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace permit::core {
namespace {

using v1::Action;
using v1::CaseState;
using v1::Role;

// Which role may attempt each action at all.
Role RoleFor(Action action) {
  switch (action) {
    case v1::ACTION_SUBMIT:
    case v1::ACTION_WITHDRAW:
      return v1::ROLE_EXPORTER;
    case v1::ACTION_REVIEW:
    case v1::ACTION_APPROVE:
    case v1::ACTION_REJECT:
    case v1::ACTION_SUSPEND:
    case v1::ACTION_RESUME:
    case v1::ACTION_REVOKE:
      return v1::ROLE_REVIEWER;
    default:
      return v1::ROLE_UNSPECIFIED;
  }
}

// The state `action` leads to from `c`, or FAILED_PRECONDITION.
absl::StatusOr<CaseState> Target(const v1::Case& c, Action action) {
  const CaseState s = c.state();
  auto refuse = [&](absl::string_view allowed) {
    return absl::FailedPreconditionError(absl::StrCat(
        "case ", c.id(), " is ", StateName(s), "; ", ActionName(action),
        " is allowed only when it is ", allowed));
  };
  switch (action) {
    case v1::ACTION_REVIEW:
      if (s == v1::CASE_STATE_SUBMITTED) return v1::CASE_STATE_REVIEWED;
      return refuse("submitted");
    case v1::ACTION_APPROVE:
      if (s == v1::CASE_STATE_REVIEWED) return v1::CASE_STATE_APPROVED;
      return refuse("reviewed");
    case v1::ACTION_REJECT:
      if (s == v1::CASE_STATE_REVIEWED) return v1::CASE_STATE_REJECTED;
      return refuse("reviewed");
    case v1::ACTION_SUSPEND:
      if (s == v1::CASE_STATE_SUBMITTED || s == v1::CASE_STATE_REVIEWED ||
          s == v1::CASE_STATE_APPROVED) {
        return v1::CASE_STATE_SUSPENDED;
      }
      return refuse("submitted, reviewed or approved");
    case v1::ACTION_RESUME:
      if (s == v1::CASE_STATE_SUSPENDED) return c.suspended_from();
      return refuse("suspended");
    case v1::ACTION_REVOKE:
      if (s == v1::CASE_STATE_APPROVED || s == v1::CASE_STATE_SUSPENDED) {
        return v1::CASE_STATE_REVOKED;
      }
      return refuse("approved or suspended");
    case v1::ACTION_WITHDRAW:
      if (s == v1::CASE_STATE_SUSPENDED &&
          c.suspended_from() == v1::CASE_STATE_APPROVED) {
        return absl::FailedPreconditionError(
            absl::StrCat("case ", c.id(),
                         " is a suspended licence; an approved licence "
                         "cannot be withdrawn, only revoked"));
      }
      if (s == v1::CASE_STATE_SUBMITTED || s == v1::CASE_STATE_REVIEWED ||
          s == v1::CASE_STATE_SUSPENDED) {
        return v1::CASE_STATE_WITHDRAWN;
      }
      return refuse("submitted, reviewed or suspended");
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown action ", static_cast<int>(action)));
  }
}

}  // namespace

bool CanRead(const v1::Actor& actor, const v1::Case& c) {
  switch (actor.role()) {
    case v1::ROLE_REVIEWER:
    case v1::ROLE_AUDITOR:
      return true;
    case v1::ROLE_EXPORTER:
      return !actor.organisation().empty() &&
             actor.organisation() == c.organisation();
    default:
      return false;
  }
}

bool IsFinal(CaseState state) {
  return state == v1::CASE_STATE_REJECTED || state == v1::CASE_STATE_REVOKED ||
         state == v1::CASE_STATE_WITHDRAWN;
}

absl::StatusOr<CaseState> Decide(const v1::Case* current, Action action,
                                 const v1::Actor& actor,
                                 int64_t expected_version) {
  const Role needed = RoleFor(action);
  if (needed == v1::ROLE_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown action ", static_cast<int>(action)));
  }
  if (action == v1::ACTION_SUBMIT) {
    if (current != nullptr) {
      return absl::FailedPreconditionError("a submit creates a new case");
    }
    if (actor.role() != v1::ROLE_EXPORTER) {
      return absl::PermissionDeniedError(
          absl::StrCat("only exporters may submit cases; ", actor.principal_id(),
                       " has the role ", RoleName(actor.role())));
    }
    if (actor.organisation().empty()) {
      return absl::PermissionDeniedError(absl::StrCat(
          "exporter ", actor.principal_id(), " has no organisation"));
    }
    return v1::CASE_STATE_SUBMITTED;
  }
  if (current == nullptr) {
    return absl::NotFoundError("no such case");
  }
  if (!CanRead(actor, *current)) {
    return absl::NotFoundError(absl::StrCat("case ", current->id(), " not found"));
  }
  if (actor.role() != needed) {
    return absl::PermissionDeniedError(absl::StrCat(
        ActionName(action), " is for ", RoleName(needed), "s; ",
        actor.principal_id(), " has the role ", RoleName(actor.role())));
  }
  if (expected_version != current->version()) {
    return absl::AbortedError(absl::StrCat(
        "case ", current->id(), " is at version ", current->version(),
        ", not the expected ", expected_version,
        "; fetch the case and decide again"));
  }
  ASSIGN_OR_RETURN(CaseState target, Target(*current, action));
  if ((action == v1::ACTION_APPROVE || action == v1::ACTION_REJECT) &&
      actor.principal_id() == current->reviewed_by()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "four-eyes rule: ", actor.principal_id(), " recorded the review of ",
        current->id(), " and may not also ", ActionName(action),
        " it; another reviewer must decide"));
  }
  return target;
}

namespace {

// ApplyEvent's body.
absl::Status Apply(const v1::Event& e, v1::Case* c) {
  auto mismatch = [&](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("event ", e.sequence(), " (case ",
                                            e.case_id(), "): ", what));
  };
  const bool is_submit = e.action() == v1::ACTION_SUBMIT;
  if (is_submit != (c->version() == 0)) {
    return mismatch(is_submit ? "submit of a case that already exists"
                              : "action on a case that was never submitted");
  }
  if (e.case_version() != c->version() + 1) {
    return mismatch(absl::StrCat("case version ", e.case_version(),
                                 " does not follow ", c->version()));
  }
  if (!is_submit && (e.case_id() != c->id() ||
                     e.organisation() != c->organisation())) {
    return mismatch("case id or organisation differs from the case's");
  }
  absl::StatusOr<CaseState> target =
      Decide(is_submit ? nullptr : c, e.action(), e.actor(), c->version());
  if (!target.ok()) {
    return mismatch(absl::StrCat("not a legal step: ", target.status().message()));
  }
  if (is_submit && e.organisation() != e.actor().organisation()) {
    return mismatch("submitted for another organisation than the exporter's");
  }
  if (e.from_state() != c->state() || e.to_state() != *target) {
    return mismatch(absl::StrCat("records ", StateName(e.from_state()), " -> ",
                                 StateName(e.to_state()), ", rules give ",
                                 StateName(c->state()), " -> ",
                                 StateName(*target)));
  }

  const CaseState before = c->state();
  switch (e.action()) {
    case v1::ACTION_SUBMIT:
      if (!e.has_submit()) return mismatch("submit without an application");
      c->set_id(e.case_id());
      c->set_organisation(e.organisation());
      *c->mutable_application() = e.submit().application();
      c->set_submitted_by(e.actor().principal_id());
      *c->mutable_create_time() = e.time();
      break;
    case v1::ACTION_REVIEW:
      if (!e.has_review()) return mismatch("review without its details");
      c->set_reviewed_by(e.actor().principal_id());
      c->set_recommendation(e.review().recommendation());
      c->set_findings(e.review().findings());
      break;
    case v1::ACTION_APPROVE:
      if (!e.has_approve()) return mismatch("approve without its details");
      c->set_decided_by(e.actor().principal_id());
      *c->mutable_valid_from() = e.approve().valid_from();
      *c->mutable_valid_until() = e.approve().valid_until();
      c->set_conditions(e.approve().conditions());
      break;
    default:
      if (!e.has_reason()) return mismatch("action without its reason");
      c->set_last_reason(e.reason().reason());
      if (e.action() == v1::ACTION_REJECT) {
        c->set_decided_by(e.actor().principal_id());
      }
      break;
  }
  if (e.action() == v1::ACTION_SUSPEND) {
    c->set_suspended_from(before);
  } else if (before == v1::CASE_STATE_SUSPENDED) {
    c->clear_suspended_from();
  }
  c->set_state(*target);
  c->set_version(e.case_version());
  *c->mutable_update_time() = e.time();
  c->set_last_sequence(e.sequence());
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyEvent(const v1::Event& e, v1::Case* c) {
  return Apply(e, c);
}

absl::string_view StateName(CaseState state) {
  switch (state) {
    case v1::CASE_STATE_SUBMITTED: return "submitted";
    case v1::CASE_STATE_REVIEWED: return "reviewed";
    case v1::CASE_STATE_APPROVED: return "approved";
    case v1::CASE_STATE_REJECTED: return "rejected";
    case v1::CASE_STATE_SUSPENDED: return "suspended";
    case v1::CASE_STATE_REVOKED: return "revoked";
    case v1::CASE_STATE_WITHDRAWN: return "withdrawn";
    default: return "unspecified";
  }
}

absl::string_view ActionName(Action action) {
  switch (action) {
    case v1::ACTION_SUBMIT: return "submit";
    case v1::ACTION_REVIEW: return "review";
    case v1::ACTION_APPROVE: return "approve";
    case v1::ACTION_REJECT: return "reject";
    case v1::ACTION_SUSPEND: return "suspend";
    case v1::ACTION_RESUME: return "resume";
    case v1::ACTION_REVOKE: return "revoke";
    case v1::ACTION_WITHDRAW: return "withdraw";
    default: return "unspecified";
  }
}

absl::string_view RoleName(Role role) {
  switch (role) {
    case v1::ROLE_EXPORTER: return "exporter";
    case v1::ROLE_REVIEWER: return "reviewer";
    case v1::ROLE_AUDITOR: return "auditor";
    default: return "unspecified";
  }
}

}  // namespace permit::core
