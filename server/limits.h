// Per-principal limits of the gRPC front door, with no gRPC in them:
// a token-bucket rate limit on calls, and a cap on the log streams
// (ReadLog, WatchLog) one principal may hold open at once. Both answer
// RESOURCE_EXHAUSTED with a message that says when to retry.
//
// Thread-safety: both classes are thread-safe.
#ifndef PERMIT_SERVER_LIMITS_H_
#define PERMIT_SERVER_LIMITS_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace permit::server {

// Each principal may make `rate` calls per second on average, and up to
// `burst` at once after a quiet spell. A rate of 0 turns the limit off.
class RateLimiter {
 public:
  RateLimiter(double rate, double burst) : rate_(rate), burst_(burst) {}

  // Takes one token of `principal` at `now`, or RESOURCE_EXHAUSTED.
  absl::Status Acquire(const std::string& principal, absl::Time now);

 private:
  struct Bucket {
    double tokens;
    absl::Time last;
  };
  const double rate_;
  const double burst_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

// At most `max` open log streams per principal (0: no limit).
class StreamLimiter {
 public:
  explicit StreamLimiter(int max) : max_(max) {}

  // Counts one more open stream of `principal`, or RESOURCE_EXHAUSTED.
  absl::Status Open(const std::string& principal);
  // Counts one stream of `principal` as closed.
  void Close(const std::string& principal);
  // Streams open now, all principals together.
  int open() const;

 private:
  const int max_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, int> open_ ABSL_GUARDED_BY(mu_);
  int total_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace permit::server

#endif  // PERMIT_SERVER_LIMITS_H_
