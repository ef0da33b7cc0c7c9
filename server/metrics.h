// Metrics: permitd's Prometheus metrics, served in the text exposition
// format on http://LISTEN/metrics by prometheus-cpp's embedded HTTP server
// (permitd --metrics_listen). Three feeds fill them:
//
//   - every finished call (Metrics is a CallObserver):
//       permit_requests_total{method,code}              counter
//       permit_request_duration_seconds{method,code}    histogram, 0.5 ms .. 5 s
//       permit_refused_total{code}                      counter (DenialRecord::IsRefusal)
//   - every synced write of the CaseManager's writer (CommitHook(), for
//     CaseManager::Options::on_commit):
//       permit_commit_batch_size                        histogram, events per synced write
//       permit_commit_sync_duration_seconds             histogram, the synced write alone
//       permit_commit_failures_total                    counter
//   - the attached server, read at each scrape (Attach()):
//       permit_log_events                               gauge, events in the audit log
//       permit_cases{state}                             gauge, cases by current state
//       permit_queued_actions                           gauge, actions waiting for the writer
//       permit_log_streams_open                         gauge, open ReadLog/WatchLog streams
//       permit_log_streams_dropped_total                counter, streams dropped for not reading
//
// permit_cases is missing from a scrape until the start-up count is done
// (see Attach()): a wrong count would be worse than none.
//
// Thread-safety: thread-safe. OnCallDone runs on gRPC threads, the commit
// hook on the writer thread, scrapes on the HTTP server's threads.
#ifndef PERMIT_SERVER_METRICS_H_
#define PERMIT_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/call_record.h"
#include "server/case_manager.h"

namespace prometheus {
class Counter;
class Exposer;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace permit::server {

class PermitServer;

class Metrics final : public CallObserver {
 public:
  // Serves /metrics on `listen` (host:port; port 0 picks a free port, see
  // port()). An empty `listen` serves nothing (Scrape() still works).
  // INVALID_ARGUMENT for an IPv6 address (not supported); UNAVAILABLE if
  // the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<Metrics>> Start(const std::string& listen);

  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;
  // Detaches, then stops the HTTP server. The CaseManager whose
  // on_commit is CommitHook() must be gone first.
  ~Metrics() override;

  // The bound port of the HTTP server (0 if none).
  int port() const { return port_; }

  // CallObserver: counts the call by method and code, and refusals by code.
  void OnCallDone(const CallRecord& call) override;

  // For CaseManager::Options::on_commit (the hook keeps a pointer to this
  // object, which must outlive the manager). It takes no lock: a few
  // relaxed atomic adds per write and per event.
  std::function<void(const CaseManager::CommitStats&)> CommitHook();
  void OnCommit(const CaseManager::CommitStats& stats);

  // From now on scrapes read the gauges of `server`, whose CaseManager
  // must have been created with CommitHook() as its on_commit, and a
  // background thread counts the cases by state (see metrics.cc). Call
  // once, after PermitServer::Start. `server` must stay up until Detach().
  void Attach(PermitServer* server);
  // Stops reading the server (waits for a scrape in progress, stops the
  // count). Call before the server shuts down. Idempotent.
  void Detach();

  // True once the cases-by-state count is known (permit_cases is served).
  bool cases_counted() const { return cases_counted_.load(std::memory_order_acquire); }

  // The text /metrics serves.
  std::string Scrape() const;

 private:
  class ServerCollector;
  // A lock-free histogram for the writer thread's observations.
  class AtomicHistogram;
  struct RequestSeries {
    prometheus::Counter* requests;
    prometheus::Histogram* duration;
  };
  static constexpr int kNumCodes = 17;  // absl::StatusCode 0..16
  static constexpr int kNumStates = 8;  // v1::CaseState 0..7

  Metrics();
  RequestSeries* Series(const std::string& method, absl::StatusCode code);
  void CountCases(const CaseManager* manager);

  int port_ = 0;
  std::string host_;  // of the listening address
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<ServerCollector> collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;

  // Families owned by registry_.
  prometheus::Family<prometheus::Counter>* requests_ = nullptr;
  prometheus::Family<prometheus::Histogram>* durations_ = nullptr;
  // permit_refused_total by code, made at start for every refusal code.
  std::array<prometheus::Counter*, kNumCodes> refused_{};

  absl::Mutex series_mu_;
  absl::flat_hash_map<std::pair<std::string, int>, std::unique_ptr<RequestSeries>>
      series_ ABSL_GUARDED_BY(series_mu_);

  // Written by the commit hook.
  std::unique_ptr<AtomicHistogram> batch_size_;
  std::unique_ptr<AtomicHistogram> sync_seconds_;
  std::atomic<uint64_t> commit_failures_{0};
  // Cases by state: counted once up to the manager's initial log size
  // (base, by the counting thread), then moved by every committed event
  // (delta, by the commit hook). Served as base + delta once counted.
  std::array<std::atomic<int64_t>, kNumStates> cases_base_{};
  std::array<std::atomic<int64_t>, kNumStates> cases_delta_{};
  std::atomic<bool> cases_counted_{false};

  std::atomic<bool> stop_count_{false};
  std::thread count_thread_;
  // Attach/Detach happen on one thread (main's), and count_thread_ is only
  // touched there.
  bool attached_ = false;
};

}  // namespace permit::server

#endif  // PERMIT_SERVER_METRICS_H_
