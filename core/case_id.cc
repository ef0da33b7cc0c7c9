// Case id formatting; see case_id.h.
#include "core/case_id.h"

#include "absl/strings/str_format.h"

namespace permit::core {

std::string FormatCaseId(uint64_t number, absl::Time when) {
  const absl::CivilYear year =
      absl::ToCivilYear(when, absl::UTCTimeZone());
  return absl::StrFormat("PRM-%04d-%06d", year.year(), number);
}

}  // namespace permit::core
