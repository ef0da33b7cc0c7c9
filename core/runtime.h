// Process-wide settings for permit's release binaries (permitd and
// permit-bench's processes), made once at the top of main().
//
// Debian builds Abseil without NDEBUG, so by default every absl::Mutex,
// and with it every lock inside gRPC (which uses absl::Mutex), records the
// lock order in a global graph for deadlock detection. That triples the
// cost of a lock and serialises all threads on the graph's spinlock. Our
// own release builds (NDEBUG) turn it off, as a release Abseil would; unit
// tests never call this and keep the detection.
#ifndef PERMIT_CORE_RUNTIME_H_
#define PERMIT_CORE_RUNTIME_H_

#include "absl/synchronization/mutex.h"

namespace permit::core {

inline void UseReleaseRuntime() {
#ifdef NDEBUG
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
}

}  // namespace permit::core

#endif  // PERMIT_CORE_RUNTIME_H_
