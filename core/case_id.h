// Case ids: readable references "PRM-<year>-<number>", such as
// "PRM-2026-000042". The number comes from one counter for the whole log
// (never per year, never reused); the year is the year of submission (UTC).
#ifndef PERMIT_CORE_CASE_ID_H_
#define PERMIT_CORE_CASE_ID_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace permit::core {

// Formats the id of the `number`-th case (1-based), filed at `when`.
std::string FormatCaseId(uint64_t number, absl::Time when);

}  // namespace permit::core

#endif  // PERMIT_CORE_CASE_ID_H_
