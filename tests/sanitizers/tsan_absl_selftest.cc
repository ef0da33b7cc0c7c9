// Checks tsan_absl_annotations.cc before the ThreadSanitizer run relies on
// it (scripts/sanitize.sh builds this with -fsanitize=thread and runs each
// mode with the annotations preloaded, and "locked" once without):
//   locked, await, condvar, notify, polled, timed  must give no report
//       with the annotations: data handed between threads only through
//       absl::Mutex, Mutex::Await, CondVar, Notification (waited for, with
//       or without a timeout, or polled with the inline HasBeenNotified) is
//       ordered by them, and mutexes destroyed after timed waits (absl's
//       entry points calling one another) are not left locked;
//   locked without the annotations must give a report: the false positive
//       they exist for;
//   race, race-notify  must give a report with the annotations: a plain
//       variable written by two threads that each hold a *different*
//       mutex, and one read before the notification it should have waited
//       for, are races, and the annotations must not hide them.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace {

int shared_value = 0;  // plain, not atomic: TSan judges every access

void Locked() {
  absl::Mutex mu;
  auto work = [&] {
    for (int i = 0; i < 1000; ++i) {
      absl::MutexLock lock(&mu);
      ++shared_value;
    }
  };
  std::thread a(work), b(work);
  a.join();
  b.join();
}

void Await() {
  absl::Mutex mu;
  bool ready = false;
  std::thread consumer([&] {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&ready));
    ++shared_value;
  });
  {
    absl::MutexLock lock(&mu);
    shared_value = 41;
    ready = true;
  }
  consumer.join();
}

void CondVarWait() {
  absl::Mutex mu;
  absl::CondVar cv;
  bool ready = false;
  std::thread consumer([&] {
    absl::MutexLock lock(&mu);
    while (!ready) cv.Wait(&mu);
    ++shared_value;
  });
  {
    absl::MutexLock lock(&mu);
    shared_value = 41;
    ready = true;
  }
  cv.Signal();
  consumer.join();
}

void Notify(bool poll, bool wait) {
  absl::Notification done;
  std::thread producer([&] {
    shared_value = 42;
    done.Notify();
  });
  if (wait) {
    if (poll) {
      while (!done.HasBeenNotified()) std::this_thread::yield();
    } else {
      done.WaitForNotification();
    }
  }
  std::printf("%d\n", shared_value);
  producer.join();
}

// As tests/server/case_manager_test.cc's Gate: timed waits, then destroyed.
void Timed() {
  for (int i = 0; i < 3; ++i) {
    absl::Notification entered, release;
    std::thread t([&] {
      shared_value = i;
      entered.Notify();
      release.WaitForNotification();
    });
    if (!entered.WaitForNotificationWithTimeout(absl::Seconds(10))) std::abort();
    ++shared_value;
    release.Notify();
    t.join();
  }
}

void Race() {
  absl::Mutex a, b;
  std::thread t([&] {
    absl::MutexLock lock(&a);
    ++shared_value;
  });
  {
    absl::MutexLock lock(&b);
    ++shared_value;
  }
  t.join();
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  if (!std::strcmp(mode, "locked")) Locked();
  else if (!std::strcmp(mode, "await")) Await();
  else if (!std::strcmp(mode, "condvar")) CondVarWait();
  else if (!std::strcmp(mode, "notify")) Notify(false, true);
  else if (!std::strcmp(mode, "polled")) Notify(true, true);
  else if (!std::strcmp(mode, "timed")) Timed();
  else if (!std::strcmp(mode, "race")) Race();
  else if (!std::strcmp(mode, "race-notify")) Notify(false, false);
  else return 2;
  return 0;
}
