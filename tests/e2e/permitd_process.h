// PermitdProcess: the real permitd binary as a child process on a loopback
// port, for end-to-end tests (crash, reload). PERMITD_PATH is set by CMake.
#ifndef PERMIT_TESTS_E2E_PERMITD_PROCESS_H_
#define PERMIT_TESTS_E2E_PERMITD_PROCESS_H_

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

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

  void Start() {
    const std::string log = data_ + "/permitd.log";
    pid_ = fork();
    if (pid_ == 0) {
      FILE* f = freopen(log.c_str(), "a", stderr);
      (void)f;
      const std::string listen = "--listen=127.0.0.1:" + std::to_string(port_);
      const std::string data = "--data=" + data_;
      const std::string principals = "--principals=" + principals_;
      const std::string key = "--signing_key=" + signing_key_;
      execl(PERMITD_PATH, PERMITD_PATH, listen.c_str(), data.c_str(),
            principals.c_str(), key.c_str(), "--log_origin=crash-test.invalid/log",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    ASSERT_GT(pid_, 0);
  }

  // Sends `sig` without waiting for the process.
  void Signal(int sig) { kill(pid_, sig); }

  // Sends `sig` and reaps the process; returns its wait status.
  int Kill(int sig) {
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  std::string data_;
  std::string principals_;
  std::string signing_key_;
  int port_;
  pid_t pid_ = -1;
};

}  // namespace permit::testing

#endif  // PERMIT_TESTS_E2E_PERMITD_PROCESS_H_
