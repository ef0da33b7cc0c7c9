// PermitdProcess: the real permitd binary as a child process on a loopback
// port, for end-to-end tests (crash, reload, storage faults). PERMITD_PATH is
// set by CMake. Not thread-safe: drive it from the test's main thread.
#ifndef PERMIT_TESTS_E2E_PERMITD_PROCESS_H_
#define PERMIT_TESTS_E2E_PERMITD_PROCESS_H_

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace permit::testing {

class PermitdProcess {
 public:
  PermitdProcess(std::string data, std::string principals, std::string signing_key,
                 int port)
      : data_(std::move(data)),
        principals_(std::move(principals)),
        signing_key_(std::move(signing_key)),
        port_(port) {}
  ~PermitdProcess() {
    if (pid_ > 0) Kill(SIGKILL);
  }

  // Extra environment for the next Start, "NAME=value" each; with
  // `origin_from_env` the --log_origin flag is left out.
  void SetEnvironment(std::vector<std::string> env, bool origin_from_env) {
    env_ = std::move(env);
    origin_from_env_ = origin_from_env;
  }

  // With `ignore`, the next Start execs permitd with SIGXFSZ ignored (an
  // ignored signal stays ignored across exec), so a write past
  // RLIMIT_FSIZE fails with EFBIG instead of killing the process.
  void IgnoreFileSizeSignal(bool ignore) { ignore_sigxfsz_ = ignore; }

  // permitd's stderr goes to DATA/permitd.log (DATA is made if missing, so
  // the first start of a fresh folder is logged too).
  void Start() {
    const std::string log = data_ + "/permitd.log";
    mkdir(data_.c_str(), 0700);
    status_ = 0;
    pid_ = fork();
    if (pid_ == 0) {
      if (ignore_sigxfsz_) signal(SIGXFSZ, SIG_IGN);
      for (std::string& e : env_) putenv(e.data());
      FILE* f = freopen(log.c_str(), "a", stderr);
      (void)f;
      const std::string listen = "--listen=127.0.0.1:" + std::to_string(port_);
      const std::string data = "--data=" + data_;
      const std::string principals = "--principals=" + principals_;
      const std::string key = "--signing_key=" + signing_key_;
      execl(PERMITD_PATH, PERMITD_PATH, listen.c_str(), data.c_str(),
            principals.c_str(), key.c_str(),
            origin_from_env_ ? static_cast<char*>(nullptr)
                             : "--log_origin=crash-test.invalid/log",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    ASSERT_GT(pid_, 0);
  }

  // Sends `sig` without waiting for the process.
  void Signal(int sig) { kill(pid_, sig); }

  // Sends `sig` and reaps the process; returns its wait status. If the
  // process had already exited (see Running), returns that status.
  int Kill(int sig) {
    if (pid_ <= 0) return status_;
    kill(pid_, sig);
    waitpid(pid_, &status_, 0);
    pid_ = -1;
    return status_;
  }

  // SIGTERM, then SIGKILL if permitd has not exited after `grace`; reaps it
  // and returns its wait status (WIFSIGNALED with SIGKILL: it hung).
  int Stop(std::chrono::milliseconds grace) {
    if (pid_ <= 0) return status_;
    kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!Running()) return status_;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return Kill(SIGKILL);
  }

  // False once the process has exited; it is then reaped and Kill and Stop
  // return its wait status.
  bool Running() {
    if (pid_ <= 0) return false;
    if (waitpid(pid_, &status_, WNOHANG) == 0) return true;
    pid_ = -1;
    return false;
  }

  // Sets RLIMIT_FSIZE (soft and hard) of the running permitd: from now on no
  // write may take a file past `bytes`. Returns 0 or an errno value.
  int LimitFileSize(rlim_t bytes) {
    const rlimit limit{bytes, bytes};
    return prlimit(pid_, RLIMIT_FSIZE, &limit, nullptr) == 0 ? 0 : errno;
  }

 private:
  std::string data_;
  std::string principals_;
  std::string signing_key_;
  int port_;
  std::vector<std::string> env_;
  bool origin_from_env_ = false;
  bool ignore_sigxfsz_ = false;
  pid_t pid_ = -1;
  int status_ = 0;  // wait status of the last process reaped
};

}  // namespace permit::testing

#endif  // PERMIT_TESTS_E2E_PERMITD_PROCESS_H_
