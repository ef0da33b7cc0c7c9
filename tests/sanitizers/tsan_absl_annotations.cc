// ThreadSanitizer annotations for Debian's uninstrumented absl::Mutex, for
// the ThreadSanitizer run of scripts/sanitize.sh only (LD_PRELOADed into the
// test processes; never linked into permitd, permitctl or any other build).
//
// Why: Debian builds libabsl_synchronization.so without -fsanitize=thread,
// so the __tsan_mutex_* calls that absl's mutex.cc makes in a TSan build of
// absl are compiled out. TSan then sees no happens-before edge through any
// absl::Mutex (ours, and gRPC's, which uses absl::Mutex and absl::CondVar)
// and reports thousands of "races" between accesses that both hold the same
// mutex (investigated on tests/server/case_manager_test.cc: 4498 reports,
// the first one CaseManager::Enqueue's queue_.push_back under mu_ against
// WriterLoop's queue_.empty() under mu_). The annotations cannot be turned
// on from absl's headers: only the inline constructor's
// ABSL_TSAN_MUTEX_CREATE is in a header; lock, unlock, await and condition
// variables are in the shared library.
//
// What: each absl entry point below is interposed (this library comes first
// in the symbol lookup order, so the calls of our code, of gRPC and of absl
// itself reach it). It calls the real absl function, found with
// dlsym(RTLD_NEXT), unchanged (same arguments, same result, same locking),
// and around it makes the same TSan annotations absl's own TSan build makes:
// pre-lock/post-lock around locking, pre-unlock/post-unlock around
// unlocking (TSan ignores memory accesses between a pre and its post, as in
// absl's build), an unlock then a lock around every wait (Await*, CondVar
// Wait*; a Condition evaluated inside absl is not checked), destroy in
// ~Mutex (so a new mutex at a reused address starts without the old one's
// history), and a release/acquire on Notification's flag, which the inline
// HasBeenNotified() reads. Nothing is annotated that absl does not do: an
// edge TSan sees here is an edge the real mutex provides, so no race can be
// hidden; an annotation left out could only cause a false report.
//
// Build (scripts/sanitize.sh does), and run with it preloaded:
//   g++ -shared -fPIC -o build-tsan/libpermit_tsan_absl.so
//       tests/sanitizers/tsan_absl_annotations.cc -ldl
//   LD_PRELOAD=$PWD/build-tsan/libpermit_tsan_absl.so <test>
// The __tsan_* functions are weak: in a process without TSan (bash, ctest)
// they are null and the real function is called alone.
#include <dlfcn.h>

#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

extern "C" {
void __tsan_acquire(void* addr) __attribute__((weak));
void __tsan_release(void* addr) __attribute__((weak));
void __tsan_mutex_destroy(void* addr, unsigned flags) __attribute__((weak));
void __tsan_mutex_pre_lock(void* addr, unsigned flags) __attribute__((weak));
void __tsan_mutex_post_lock(void* addr, unsigned flags, int recursion) __attribute__((weak));
int __tsan_mutex_pre_unlock(void* addr, unsigned flags) __attribute__((weak));
void __tsan_mutex_post_unlock(void* addr, unsigned flags) __attribute__((weak));
}

namespace {

// The flags of <sanitizer/tsan_interface.h>.
constexpr unsigned kReadLock = 1 << 3;
constexpr unsigned kTryLock = 1 << 4;
constexpr unsigned kTryLockFailed = 1 << 5;
constexpr unsigned kNotStatic = 1 << 8;

bool Tsan() { return __tsan_mutex_pre_lock != nullptr; }

void PreLock(const void* m, unsigned flags) {
  if (Tsan()) __tsan_mutex_pre_lock(const_cast<void*>(m), flags);
}
void PostLock(const void* m, unsigned flags) {
  if (Tsan()) __tsan_mutex_post_lock(const_cast<void*>(m), flags, 0);
}
void PreUnlock(const void* m, unsigned flags) {
  if (Tsan()) __tsan_mutex_pre_unlock(const_cast<void*>(m), flags);
}
void PostUnlock(const void* m, unsigned flags) {
  if (Tsan()) __tsan_mutex_post_unlock(const_cast<void*>(m), flags);
}

// absl's entry points call one another (LockWhenWithTimeout calls
// LockWhenWithDeadline, Notification::Notify calls Mutex::Lock, ...), and
// those inner calls reach the wrappers below too. Only the outermost call on
// a thread is annotated; an inner one (always inside absl, lock and unlock
// within the same outer call) goes straight to absl, or TSan would see a
// second lock of a mutex already held.
__attribute__((tls_model("initial-exec"))) thread_local int depth = 0;
class Outermost {
 public:
  Outermost() : outer_(depth++ == 0) {}
  ~Outermost() { --depth; }
  explicit operator bool() const { return outer_; }

 private:
  bool outer_;
};

// The real function of mangled name `name`, looked up once.
template <typename Fn>
Fn Real(std::atomic<Fn>& cache, const char* name) {
  Fn fn = cache.load(std::memory_order_acquire);
  if (fn == nullptr) {
    fn = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
    if (fn == nullptr) {
      std::fprintf(stderr,
                   "tsan_absl_annotations: %s not found in absl; the shim does not "
                   "match this absl's ABI\n",
                   name);
      std::abort();
    }
    cache.store(fn, std::memory_order_release);
  }
  return fn;
}

// Declares `real`, the real absl function of mangled name `name` and type
// __VA_ARGS__ (a function pointer type taking `this` first), and `outer`,
// true if this is the thread's outermost call into absl.
#define REAL(name, ...)                         \
  using RealFn = __VA_ARGS__;                   \
  static std::atomic<RealFn> cache{nullptr};    \
  const RealFn real = Real<RealFn>(cache, name); \
  const Outermost outer

using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Notification;
using absl::Time;

// Where Notification keeps its flag (after its mutex, as notification.h
// declares them), for the release/acquire the inline HasBeenNotified() needs.
struct NotificationLayout {
  Mutex mutex;
  std::atomic<bool> notified_yet;
};
static_assert(sizeof(NotificationLayout) == sizeof(Notification),
              "absl::Notification's layout changed");
void* FlagOf(const Notification* n) {
  return const_cast<char*>(reinterpret_cast<const char*>(n) +
                           offsetof(NotificationLayout, notified_yet));
}

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

Mutex::~Mutex() {
  REAL("_ZN4absl7debian35MutexD1Ev", void (*)(Mutex*));
  if (outer && Tsan()) __tsan_mutex_destroy(this, kNotStatic);
  real(this);
}

void Mutex::Lock() {
  REAL("_ZN4absl7debian35Mutex4LockEv", void (*)(Mutex*));
  if (!outer) return real(this);
  PreLock(this, 0);
  real(this);
  PostLock(this, 0);
}

void Mutex::ReaderLock() {
  REAL("_ZN4absl7debian35Mutex10ReaderLockEv", void (*)(Mutex*));
  if (!outer) return real(this);
  PreLock(this, kReadLock);
  real(this);
  PostLock(this, kReadLock);
}

bool Mutex::TryLock() {
  REAL("_ZN4absl7debian35Mutex7TryLockEv", bool (*)(Mutex*));
  if (!outer) return real(this);
  PreLock(this, kTryLock);
  const bool locked = real(this);
  PostLock(this, kTryLock | (locked ? 0 : kTryLockFailed));
  return locked;
}

bool Mutex::ReaderTryLock() {
  REAL("_ZN4absl7debian35Mutex13ReaderTryLockEv", bool (*)(Mutex*));
  if (!outer) return real(this);
  PreLock(this, kReadLock | kTryLock);
  const bool locked = real(this);
  PostLock(this, kReadLock | kTryLock | (locked ? 0 : kTryLockFailed));
  return locked;
}

void Mutex::Unlock() {
  REAL("_ZN4absl7debian35Mutex6UnlockEv", void (*)(Mutex*));
  if (!outer) return real(this);
  PreUnlock(this, 0);
  real(this);
  PostUnlock(this, 0);
}

void Mutex::ReaderUnlock() {
  REAL("_ZN4absl7debian35Mutex12ReaderUnlockEv", void (*)(Mutex*));
  if (!outer) return real(this);
  PreUnlock(this, kReadLock);
  real(this);
  PostUnlock(this, kReadLock);
}

void Mutex::LockWhen(const Condition& cond) {
  REAL("_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE", void (*)(Mutex*, const Condition&));
  if (!outer) return real(this, cond);
  PreLock(this, 0);
  real(this, cond);
  PostLock(this, 0);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  REAL("_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE", void (*)(Mutex*, const Condition&));
  if (!outer) return real(this, cond);
  PreLock(this, kReadLock);
  real(this, cond);
  PostLock(this, kReadLock);
}

// The ...WithTimeout/WithDeadline variants return holding the lock whether
// or not the condition became true.
bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  REAL("_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE", bool (*)(Mutex*, const Condition&, Duration));
  if (!outer) return real(this, cond, timeout);
  PreLock(this, 0);
  const bool r = real(this, cond, timeout);
  PostLock(this, 0);
  return r;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  REAL("_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE", bool (*)(Mutex*, const Condition&, Time));
  if (!outer) return real(this, cond, deadline);
  PreLock(this, 0);
  const bool r = real(this, cond, deadline);
  PostLock(this, 0);
  return r;
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  REAL("_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE", bool (*)(Mutex*, const Condition&, Duration));
  if (!outer) return real(this, cond, timeout);
  PreLock(this, kReadLock);
  const bool r = real(this, cond, timeout);
  PostLock(this, kReadLock);
  return r;
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  REAL("_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE", bool (*)(Mutex*, const Condition&, Time));
  if (!outer) return real(this, cond, deadline);
  PreLock(this, kReadLock);
  const bool r = real(this, cond, deadline);
  PostLock(this, kReadLock);
  return r;
}

// Await releases the mutex while it waits and holds it again on return. The
// caller holds it exclusively (Await on a reader lock is not used here).
void Mutex::Await(const Condition& cond) {
  REAL("_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE", void (*)(Mutex*, const Condition&));
  if (!outer) return real(this, cond);
  PreUnlock(this, 0);
  real(this, cond);
  PostUnlock(this, 0);
  PreLock(this, 0);
  PostLock(this, 0);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  REAL("_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE", bool (*)(Mutex*, const Condition&, Duration));
  if (!outer) return real(this, cond, timeout);
  PreUnlock(this, 0);
  const bool r = real(this, cond, timeout);
  PostUnlock(this, 0);
  PreLock(this, 0);
  PostLock(this, 0);
  return r;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  REAL("_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE", bool (*)(Mutex*, const Condition&, Time));
  if (!outer) return real(this, cond, deadline);
  PreUnlock(this, 0);
  const bool r = real(this, cond, deadline);
  PostUnlock(this, 0);
  PreLock(this, 0);
  PostLock(this, 0);
  return r;
}

// CondVar waits release `mu` and hold it again on return, as absl's own
// annotations in CondVar::WaitCommon say (exclusive holders only here).
void CondVar::Wait(Mutex* mu) {
  REAL("_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE", void (*)(CondVar*, Mutex*));
  if (!outer) return real(this, mu);
  PreUnlock(mu, 0);
  real(this, mu);
  PostUnlock(mu, 0);
  PreLock(mu, 0);
  PostLock(mu, 0);
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  REAL("_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE", bool (*)(CondVar*, Mutex*, Duration));
  if (!outer) return real(this, mu, timeout);
  PreUnlock(mu, 0);
  const bool r = real(this, mu, timeout);
  PostUnlock(mu, 0);
  PreLock(mu, 0);
  PostLock(mu, 0);
  return r;
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  REAL("_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE", bool (*)(CondVar*, Mutex*, Time));
  if (!outer) return real(this, mu, deadline);
  PreUnlock(mu, 0);
  const bool r = real(this, mu, deadline);
  PostUnlock(mu, 0);
  PreLock(mu, 0);
  PostLock(mu, 0);
  return r;
}

// Notify stores the flag with release order; a waiter that sees it set
// (inside absl, or through the inline HasBeenNotified) acquires.
void Notification::Notify() {
  REAL("_ZN4absl7debian312Notification6NotifyEv", void (*)(Notification*));
  if (!outer) return real(this);
  if (Tsan()) __tsan_release(FlagOf(this));
  real(this);
}

void Notification::WaitForNotification() const {
  REAL("_ZNK4absl7debian312Notification19WaitForNotificationEv", void (*)(const Notification*));
  if (!outer) return real(this);
  real(this);
  if (Tsan()) __tsan_acquire(FlagOf(this));
}

bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  REAL("_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE", bool (*)(const Notification*, Duration));
  if (!outer) return real(this, timeout);
  const bool notified = real(this, timeout);
  if (notified && Tsan()) __tsan_acquire(FlagOf(this));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  REAL("_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE", bool (*)(const Notification*, Time));
  if (!outer) return real(this, deadline);
  const bool notified = real(this, deadline);
  if (notified && Tsan()) __tsan_acquire(FlagOf(this));
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl
