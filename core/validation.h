// Validation of what clients send: every field of an application and of each
// action request, with the limits documented in the README ("Limits"). Each
// check names the bad field by its path in the request
// ("application.goods[1].quantity.value") so that all mistakes are reported
// at once, as google.rpc.BadRequest field violations.
//
// Thread-safe: pure functions.
#ifndef PERMIT_CORE_VALIDATION_H_
#define PERMIT_CORE_VALIDATION_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "permit/v1/case_service.pb.h"

namespace permit::core {

// Limits on requests. The README's "Limits" table lists the same numbers.
struct Limits {
  static constexpr int kMaxGoodsLines = 100;
  static constexpr int kMaxIdLength = 128;           // request ids, case ids
  static constexpr int kMaxCodeLength = 32;          // control-list entry, unit
  static constexpr int kMaxNameLength = 200;         // names, descriptions
  static constexpr int kMaxAddressLength = 500;
  static constexpr int kMaxTextLength = 4000;        // statements, findings, reasons
  static constexpr int kMinValidityMonths = 1;
  static constexpr int kMaxValidityMonths = 60;
  static constexpr int kMaxRequestBytes = 1 << 20;   // gRPC max receive size
  static constexpr int kDefaultPageSize = 50;
  static constexpr int kMaxPageSize = 500;
};

struct FieldViolation {
  std::string field;        // path, e.g. "application.goods[0].hs_code"
  std::string description;  // why it is refused
};

// The type URL under which InvalidArgument() attaches a serialized
// google.rpc.BadRequest as an absl::Status payload.
inline constexpr char kBadRequestTypeUrl[] =
    "type.googleapis.com/google.rpc.BadRequest";

// INVALID_ARGUMENT listing every violation in its message, with a
// google.rpc.BadRequest payload under kBadRequestTypeUrl. OK if none.
absl::Status InvalidArgument(const std::vector<FieldViolation>& violations);

// Extracts the field violations carried by a status (empty if none).
std::vector<FieldViolation> ViolationsOf(const absl::Status& status);

// Each returns the violations of one request; an empty vector means valid.
std::vector<FieldViolation> ValidateApplication(const v1::Application& app,
                                                const std::string& path);
std::vector<FieldViolation> Validate(const v1::SubmitCaseRequest& r);
std::vector<FieldViolation> Validate(const v1::ReviewCaseRequest& r);
// `now` is the server's time: validity must end in the future.
std::vector<FieldViolation> Validate(const v1::ApproveCaseRequest& r,
                                     absl::Time now);
std::vector<FieldViolation> Validate(const v1::RejectCaseRequest& r);
std::vector<FieldViolation> Validate(const v1::SuspendCaseRequest& r);
std::vector<FieldViolation> Validate(const v1::ResumeCaseRequest& r);
std::vector<FieldViolation> Validate(const v1::RevokeCaseRequest& r);
std::vector<FieldViolation> Validate(const v1::WithdrawCaseRequest& r);
std::vector<FieldViolation> Validate(const v1::ListCasesRequest& r);

// Shape checks shared with the CLI and the storage layer.
bool IsCountryCode(absl::string_view s);   // "JP": two upper-case letters
bool IsCurrencyCode(absl::string_view s);  // "EUR": three upper-case letters
bool IsCaseId(absl::string_view s);        // "PRM-2026-000042"

}  // namespace permit::core

#endif  // PERMIT_CORE_VALIDATION_H_
