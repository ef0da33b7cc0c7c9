// RETURN_IF_ERROR and ASSIGN_OR_RETURN for absl::Status / absl::StatusOr.
// Abseil 20220623 ships no status_macros.h, so permit defines them once here.
#ifndef PERMIT_CORE_STATUS_MACROS_H_
#define PERMIT_CORE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define PERMIT_CONCAT_INNER_(a, b) a##b
#define PERMIT_CONCAT_(a, b) PERMIT_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` yields a non-OK absl::Status.
#define RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    ::absl::Status permit_status_ = (expr);            \
    if (!permit_status_.ok()) return permit_status_;   \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, F())`: assigns the value of the StatusOr that F()
// returns, or returns its status from the enclosing function.
#define ASSIGN_OR_RETURN(lhs, expr) \
  PERMIT_ASSIGN_OR_RETURN_IMPL_(PERMIT_CONCAT_(permit_statusor_, __LINE__), lhs, expr)

#define PERMIT_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return statusor.status();            \
  lhs = std::move(statusor).value()

#endif  // PERMIT_CORE_STATUS_MACROS_H_
