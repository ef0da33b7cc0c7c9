// PermitdProcess: the real permitd binary as a child process on a loopback
// port, for end-to-end tests (crash, reload). PERMITD_PATH is set by CMake.
#ifndef PERMIT_TESTS_E2E_PERMITD_PROCESS_H_
#define PERMIT_TESTS_E2E_PERMITD_PROCESS_H_

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
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

  void Start() {
    const std::string log = data_ + "/permitd.log";
    pid_ = fork();
    if (pid_ == 0) {
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
  std::vector<std::string> env_;
  bool origin_from_env_ = false;
  pid_t pid_ = -1;
};

}  // namespace permit::testing

#endif  // PERMIT_TESTS_E2E_PERMITD_PROCESS_H_
