#!/usr/bin/env bash
# The test suite under the sanitizers, in build folders of their own:
#
#   1. ./build-asan: everything built with g++ -fsanitize=address,undefined
#      and every test run with ctest (unit, integration, crash, end to end:
#      the permitd and permitctl the e2e tests start are sanitized too).
#      Any ASan, LeakSanitizer or UBSan report fails the run.
#   2. ./build-tsan: the concurrency tests under ThreadSanitizer: group
#      commit (CaseManagerTest), the checkpointer (CheckpointerTest), gRPC
#      calls and WatchLog streaming (IntegrationTest), principals parsing
#      (PrincipalRegistryTest), reloading on SIGHUP in a real permitd
#      (ReloadTest), backups on their own thread beside other calls and
#      shutdown (FrontendTest.*Backup*), and TLS files reread on a timer
#      (TlsFilesTest, FrontendTest.Renewed*). Any TSan report fails the run.
#
#   scripts/sanitize.sh          # both
#   scripts/sanitize.sh asan     # or only one
#   scripts/sanitize.sh tsan
#
# Reports go to build-<san>/sanitizer-logs/ (one file per process that
# reported, so a report in a permitd or permitctl a test started is not
# lost) and are printed at the end.
#
# Why only those tests under TSan, and what it can and cannot judge:
# Debian's libraries are built without -fsanitize=thread. absl::Mutex lives
# in libabsl_synchronization.so, so TSan saw no lock at all and reported
# every access to mutex-guarded state as a race (4498 reports on
# CaseManagerTest alone, all false: both sides held the same absl::Mutex).
# absl's TSan annotations cannot be enabled from its headers (only the
# constructor's is inline). tests/sanitizers/tsan_absl_annotations.cc,
# preloaded into the test processes only, wraps absl's Mutex, CondVar and
# Notification entry points, calls the real ones unchanged and adds the
# annotations absl's own TSan build has; tsan_absl_selftest.cc checks first
# that, with it, locked accesses are not reported and real races still are.
# What TSan still cannot see is the ordering inside gRPC, protobuf and
# RocksDB (atomics, lock-free queues, reference counts); the report kinds
# that come from it are suppressed, each with its reason, in
# tests/sanitizers/tsan.supp, by third-party frames. permit's own code is
# judged wherever it synchronizes through absl, std::thread, std::mutex or
# std::atomic, gRPC handlers and reactors included. Not judged: a reactor's
# OnDone (its destruction), which gRPC orders after the other reactions in
# uninstrumented code. And, as always with TSan, only races left unordered
# in the run observed are found. The other tests add nothing TSan can judge
# beyond these (FrontendTest, mostly gRPC's TLS and flow control, also did
# not finish within 10 minutes under TSan: its
# WatchStreamWhoseClientStopsReadingIsDropped first files 4,000 cases).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

RUNS=(asan tsan)
if (($#)); then RUNS=("$@"); fi

# Fresh report folder; fails (printing them) if any process reported.
check_logs() {
  local dir=$1 name=$2
  if compgen -G "$dir/*" >/dev/null; then
    echo "sanitize: $name reports:" >&2
    for f in "$dir"/*; do
      echo "--- $f" >&2
      cat "$f" >&2
    done
    return 1
  fi
}

configure() {  # <build dir> <sanitizer flags>
  cmake -S . -B "$1" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPERMIT_TCMALLOC=OFF \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
    -DCMAKE_CXX_FLAGS="$2 -fno-omit-frame-pointer" \
    -DCMAKE_EXE_LINKER_FLAGS="$2" -DCMAKE_SHARED_LINKER_FLAGS="$2" >/dev/null
}

run_asan() {
  local flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
  configure build-asan "$flags"
  cmake --build build-asan -j2
  local logs=$root/build-asan/sanitizer-logs
  rm -rf "$logs" && mkdir -p "$logs"
  # detect_leaks: LeakSanitizer at every sanitized process's normal exit;
  # tests/sanitizers/lsan.supp lists third-party leaks only.
  # detect_stack_use_after_return: catches callbacks (gRPC reactors,
  # std::function) that outlive the stack frame they point into.
  local rc=0
  ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:log_path=$logs/asan" \
  LSAN_OPTIONS="suppressions=$root/tests/sanitizers/lsan.supp:print_suppressions=0" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$root/tests/sanitizers/ubsan.supp:log_path=$logs/ubsan" \
    ctest --test-dir build-asan --output-on-failure -j2 --timeout 900 || rc=$?
  check_logs "$logs" "ASan/UBSan/LSan" || rc=1
  return $rc
}

run_tsan() {
  local flags="-fsanitize=thread"
  configure build-tsan "$flags"
  cmake --build build-tsan -j2 --target permit_server_test permit_reload_test permitd
  # The absl annotations (not sanitized themselves, so that processes
  # without TSan, such as ctest, can load them) and their self-test.
  g++ -std=c++17 -O1 -g -shared -fPIC -fno-exceptions \
    -o build-tsan/libpermit_tsan_absl.so tests/sanitizers/tsan_absl_annotations.cc -ldl
  # shellcheck disable=SC2046  # pkg-config prints several flags
  g++ -std=c++17 -O1 -g -fsanitize=thread -o build-tsan/tsan_absl_selftest \
    tests/sanitizers/tsan_absl_selftest.cc $(pkg-config --libs absl_synchronization absl_time)
  local shim=$root/build-tsan/libpermit_tsan_absl.so
  selftest() {  # <expected: clean|race> <preload> <mode>
    local out rc=0
    out=$(TSAN_OPTIONS="exitcode=66" LD_PRELOAD=$2 build-tsan/tsan_absl_selftest "$3" 2>&1) || rc=$?
    if [[ $1 == clean && $rc -ne 0 ]] || [[ $1 == race && $rc -ne 66 ]]; then
      echo "sanitize: tsan self-test '$3' (preload '${2:-none}') should be $1:" >&2
      echo "$out" >&2
      return 1
    fi
  }
  for mode in locked await condvar notify polled timed; do selftest clean "$shim" $mode; done
  selftest race "$shim" race
  selftest race "$shim" race-notify
  selftest race "" locked  # the false positive the annotations are for
  echo "sanitize: tsan self-test passed" >&2

  local logs=$root/build-tsan/sanitizer-logs
  rm -rf "$logs" && mkdir -p "$logs"
  local rc=0
  LD_PRELOAD=$shim \
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/sanitizers/tsan.supp:log_path=$logs/tsan" \
    ctest --test-dir build-tsan --output-on-failure -j2 --timeout 900 \
      -R '^((CaseManagerTest|CheckpointerTest|IntegrationTest|PrincipalRegistryTest|ReloadTest)\.|TlsFilesTest\.|FrontendTest\..*(Backup|Renewed))' \
    || rc=$?
  check_logs "$logs" "TSan" || rc=1
  return $rc
}

status=0
for r in "${RUNS[@]}"; do
  echo "sanitize: $r" >&2
  case $r in
    asan) run_asan || status=1 ;;
    tsan) run_tsan || status=1 ;;
    *) echo "sanitize: unknown run '$r' (asan or tsan)" >&2; exit 2 ;;
  esac
done
if ((status)); then echo "sanitize: FAILED" >&2; else echo "sanitize: passed" >&2; fi
exit $status
