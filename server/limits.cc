// Rate and stream limits; see limits.h.
#include "server/limits.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace permit::server {

absl::Status RateLimiter::Acquire(const std::string& principal, absl::Time now) {
  if (rate_ <= 0) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  auto [it, fresh] = buckets_.try_emplace(principal, Bucket{burst_, now});
  Bucket& b = it->second;
  if (!fresh && now > b.last) {
    b.tokens = std::min(burst_, b.tokens + absl::ToDoubleSeconds(now - b.last) * rate_);
    b.last = now;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return absl::OkStatus();
  }
  const double wait_ms = std::ceil((1 - b.tokens) / rate_ * 1000);
  return absl::ResourceExhaustedError(absl::StrFormat(
      "principal %s is over its rate limit of %g calls/s (burst %g); retry in "
      "%.0f ms",
      principal, rate_, burst_, wait_ms));
}

absl::Status StreamLimiter::Open(const std::string& principal) {
  absl::MutexLock lock(&mu_);
  int& n = open_[principal];
  if (max_ > 0 && n >= max_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "principal ", principal, " already has ", n,
        " log streams open (the limit); close one or wait for it to end"));
  }
  ++n;
  ++total_;
  return absl::OkStatus();
}

void StreamLimiter::Close(const std::string& principal) {
  absl::MutexLock lock(&mu_);
  auto it = open_.find(principal);
  if (it == open_.end()) return;
  --total_;
  if (--it->second == 0) open_.erase(it);
}

int StreamLimiter::open() const {
  absl::MutexLock lock(&mu_);
  return total_;
}

}  // namespace permit::server
