// permitd's Prometheus metrics; see metrics.h.
#include "server/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/rules.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "prometheus/client_metric.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "server/denials.h"
#include "server/server.h"

namespace permit::server {
namespace {

// Call latency: 0.5 ms (a read served from the block cache) to 5 s (well
// past any sane deadline); a synced write lands around 1-10 ms.
const std::vector<double>& RequestBuckets() {
  static const std::vector<double> b = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                        0.025,  0.05,  0.1,    0.25,  0.5,
                                        1,      2.5,   5};
  return b;
}

// One synced RocksDB write: 0.1 ms (page cache, no real fsync) to 1 s.
const std::vector<double>& SyncBuckets() {
  static const std::vector<double> b = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                        0.005,  0.01,    0.025,  0.05,  0.1,
                                        0.25,   0.5,     1};
  return b;
}

// Events per synced write: 1 .. the default max_batch (512).
const std::vector<double>& BatchBuckets() {
  static const std::vector<double> b = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
  return b;
}

prometheus::MetricFamily Family(const char* name, const char* help,
                                prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  return f;
}

prometheus::ClientMetric Value(prometheus::MetricType type, double v) {
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = v;
  } else {
    m.gauge.value = v;
  }
  return m;
}

// The case's state before and after one stored event (v1::Event fields 9
// and 10), read straight from the wire format: counting a million events
// then costs a scan, not a million message parses.
bool StatesOf(absl::string_view bytes, uint32_t* from, uint32_t* to) {
  using google::protobuf::internal::WireFormatLite;
  google::protobuf::io::CodedInputStream in(
      reinterpret_cast<const uint8_t*>(bytes.data()), static_cast<int>(bytes.size()));
  *from = 0;
  *to = 0;
  for (;;) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) return in.ConsumedEntireMessage();
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    if ((field == 9 || field == 10) &&
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_VARINT) {
      uint32_t v;
      if (!in.ReadVarint32(&v)) return false;
      (field == 9 ? *from : *to) = v;
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
}

}  // namespace

// Buckets as relaxed atomics: Observe is a binary search and two atomic
// adds, no lock. A scrape may see an observation's bucket and not yet its
// sum; the count is derived from the buckets, so they always agree.
class Metrics::AtomicHistogram {
 public:
  explicit AtomicHistogram(const std::vector<double>& bounds)
      : bounds_(bounds), counts_(new std::atomic<uint64_t>[bounds.size() + 1]()) {}

  void Observe(double v) {
    const size_t i = static_cast<size_t>(
        std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    double sum = sum_.load(std::memory_order_relaxed);
    while (!sum_.compare_exchange_weak(sum, sum + v, std::memory_order_relaxed)) {
    }
  }

  prometheus::ClientMetric Collect() const {
    prometheus::ClientMetric m;
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= bounds_.size(); ++i) {
      cumulative += counts_[i].load(std::memory_order_relaxed);
      prometheus::ClientMetric::Bucket b;
      b.cumulative_count = cumulative;
      b.upper_bound = i < bounds_.size() ? bounds_[i]
                                         : std::numeric_limits<double>::infinity();
      m.histogram.bucket.push_back(b);
    }
    m.histogram.sample_count = cumulative;
    m.histogram.sample_sum = sum_.load(std::memory_order_relaxed);
    return m;
  }

 private:
  const std::vector<double> bounds_;
  const std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // last: +Inf
  std::atomic<double> sum_{0};
};

// What the registry cannot hold: the writer's lock-free histograms, and
// the gauges read from the attached server at scrape time.
class Metrics::ServerCollector final : public prometheus::Collectable {
 public:
  explicit ServerCollector(const Metrics* metrics) : metrics_(metrics) {}

  void Set(PermitServer* server) {
    absl::MutexLock lock(&mu_);
    server_ = server;
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    using prometheus::MetricType;
    std::vector<prometheus::MetricFamily> out;
    auto histogram = [&](const char* name, const char* help,
                         const AtomicHistogram& h) {
      out.push_back(Family(name, help, MetricType::Histogram));
      out.back().metric.push_back(h.Collect());
    };
    auto single = [&](const char* name, const char* help, MetricType type,
                      double v) {
      out.push_back(Family(name, help, type));
      out.back().metric.push_back(Value(type, v));
    };
    histogram("permit_commit_batch_size",
              "Events appended per synced write of the audit log (group commit).",
              *metrics_->batch_size_);
    histogram("permit_commit_sync_duration_seconds",
              "Duration of each synced write of the audit log.",
              *metrics_->sync_seconds_);
    single("permit_commit_failures_total",
           "Synced writes of the audit log that failed (writes stay refused "
           "until permitd restarts).",
           MetricType::Counter,
           static_cast<double>(metrics_->commit_failures_.load(std::memory_order_relaxed)));

    absl::MutexLock lock(&mu_);
    if (server_ == nullptr) return out;
    CaseManager* manager = server_->manager();
    single("permit_log_events", "Events in the audit log.", MetricType::Gauge,
           static_cast<double>(manager->LogSize()));
    single("permit_queued_actions", "Actions waiting for the log writer.",
           MetricType::Gauge, static_cast<double>(manager->QueuedActions()));
    single("permit_log_streams_open", "Open ReadLog and WatchLog streams.",
           MetricType::Gauge, server_->stream_limiter().open());
    single("permit_log_streams_dropped_total",
           "Log streams dropped because their client stopped reading.",
           MetricType::Counter, static_cast<double>(server_->log_streams().dropped()));
    if (metrics_->cases_counted()) {
      out.push_back(Family("permit_cases", "Cases by current state.", MetricType::Gauge));
      for (int s = 1; s < kNumStates; ++s) {
        prometheus::ClientMetric m = Value(
            MetricType::Gauge,
            static_cast<double>(
                metrics_->cases_base_[s].load(std::memory_order_acquire) +
                metrics_->cases_delta_[s].load(std::memory_order_relaxed)));
        m.label.push_back(
            {"state", std::string(core::StateName(static_cast<v1::CaseState>(s)))});
        out.back().metric.push_back(std::move(m));
      }
    }
    return out;
  }

 private:
  const Metrics* const metrics_;
  // Held across a scrape, so that Detach waits for one in progress.
  mutable absl::Mutex mu_;
  PermitServer* server_ ABSL_GUARDED_BY(mu_) = nullptr;
};

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      collector_(std::make_shared<ServerCollector>(this)),
      batch_size_(std::make_unique<AtomicHistogram>(BatchBuckets())),
      sync_seconds_(std::make_unique<AtomicHistogram>(SyncBuckets())) {
  static_assert(v1::CaseState_ARRAYSIZE == kNumStates, "kNumStates");
  requests_ = &prometheus::BuildCounter()
                   .Name("permit_requests_total")
                   .Help("Finished gRPC calls by method and status code.")
                   .Register(*registry_);
  durations_ = &prometheus::BuildHistogram()
                    .Name("permit_request_duration_seconds")
                    .Help("Duration of gRPC calls, from arrival to reply, by "
                          "method and status code.")
                    .Register(*registry_);
  prometheus::Family<prometheus::Counter>& refused =
      prometheus::BuildCounter()
          .Name("permit_refused_total")
          .Help("Refused attempts (unauthenticated, permission denied, not "
                "found, wrong state, stale version, rate or stream limit), "
                "by status code: the calls ListDenials records.")
          .Register(*registry_);
  for (int c = 0; c < kNumCodes; ++c) {
    const auto code = static_cast<absl::StatusCode>(c);
    if (DenialRecord::IsRefusal(code)) {
      refused_[c] = &refused.Add({{"code", absl::StatusCodeToString(code)}});
    }
  }
}

absl::StatusOr<std::unique_ptr<Metrics>> Metrics::Start(const std::string& listen) {
  std::unique_ptr<Metrics> m(new Metrics());
  if (listen.empty()) return m;
  if (listen[0] == '[' || std::count(listen.begin(), listen.end(), ':') > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot serve metrics on ", listen,
        ": IPv6 is not supported (the civetweb library that prometheus-cpp "
        "serves with is built without it); give an IPv4 host:port, e.g. "
        "127.0.0.1:9464, or 0.0.0.0:9464 for every interface"));
  }
  try {
    m->exposer_ = std::make_unique<prometheus::Exposer>(listen, /*num_threads=*/2);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat(
        "cannot serve metrics on ", listen,
        " (address in use, not an address of this host, or not host:port?)"));
  }
  const std::vector<int> ports = m->exposer_->GetListeningPorts();
  m->port_ = ports.empty() ? 0 : ports[0];
  m->host_ = listen.substr(0, listen.rfind(':'));
  m->exposer_->RegisterCollectable(m->registry_);
  m->exposer_->RegisterCollectable(m->collector_);
  return m;
}

Metrics::~Metrics() {
  Detach();
  if (exposer_ == nullptr) return;
  // civetweb's listener polls with a 2 s timeout that stopping it does not
  // cut short, so shutting down would take up to 2 s. A connection wakes
  // the poll: knock until the server has stopped (~20 ms).
  std::atomic<bool> stopped{false};
  std::thread knock([this, &stopped] {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    if (inet_pton(AF_INET, host_.c_str(), &addr.sin_addr) != 1 ||
        addr.sin_addr.s_addr == htonl(INADDR_ANY)) {
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    while (!stopped.load()) {
      const int fd = socket(AF_INET, SOCK_STREAM, 0);
      if (fd >= 0) {
        (void)connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
        close(fd);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  exposer_.reset();  // no scrape runs past here
  stopped.store(true);
  knock.join();
}

Metrics::RequestSeries* Metrics::Series(const std::string& method,
                                        absl::StatusCode code) {
  const int c = static_cast<int>(code);
  const std::pair<std::string, int> key(method, c);
  {
    absl::ReaderMutexLock lock(&series_mu_);
    if (auto it = series_.find(key); it != series_.end()) return it->second.get();
  }
  absl::MutexLock lock(&series_mu_);
  std::unique_ptr<RequestSeries>& s = series_[key];
  if (s == nullptr) {
    const prometheus::Labels labels = {{"method", method},
                                       {"code", absl::StatusCodeToString(code)}};
    s = std::make_unique<RequestSeries>(RequestSeries{
        &requests_->Add(labels), &durations_->Add(labels, RequestBuckets())});
  }
  return s.get();
}

void Metrics::OnCallDone(const CallRecord& call) {
  absl::StatusCode code = call.status.code();
  if (static_cast<int>(code) < 0 || static_cast<int>(code) >= kNumCodes) {
    code = absl::StatusCode::kUnknown;
  }
  RequestSeries* s = Series(call.method, code);
  s->requests->Increment();
  s->duration->Observe(absl::ToDoubleSeconds(call.latency));
  if (prometheus::Counter* r = refused_[static_cast<int>(code)]; r != nullptr) {
    r->Increment();
  }
}

std::function<void(const CaseManager::CommitStats&)> Metrics::CommitHook() {
  return [this](const CaseManager::CommitStats& stats) { OnCommit(stats); };
}

void Metrics::OnCommit(const CaseManager::CommitStats& stats) {
  if (!stats.status.ok()) {
    commit_failures_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const size_t events = stats.events == nullptr ? 0 : stats.events->size();
  batch_size_->Observe(static_cast<double>(events));
  sync_seconds_->Observe(absl::ToDoubleSeconds(stats.sync_latency));
  if (stats.events == nullptr) return;
  for (const storage::PendingEvent& p : *stats.events) {
    const int from = p.event.from_state();
    const int to = p.event.to_state();
    if (from == to) continue;
    if (from > 0 && from < kNumStates) {
      cases_delta_[from].fetch_sub(1, std::memory_order_relaxed);
    }
    if (to > 0 && to < kNumStates) {
      cases_delta_[to].fetch_add(1, std::memory_order_relaxed);
    }
  }
}

void Metrics::Attach(PermitServer* server) {
  if (attached_) return;
  attached_ = true;
  collector_->Set(server);
  const CaseManager* manager = server->manager();
  stop_count_.store(false);
  count_thread_ = std::thread([this, manager] { CountCases(manager); });
}

void Metrics::Detach() {
  if (!attached_) return;
  attached_ = false;
  stop_count_.store(true);
  if (count_thread_.joinable()) count_thread_.join();
  collector_->Set(nullptr);
}

// Cases by state, right after a restart on an existing log, without
// delaying start-up (about 70 ms with 1,000,000 events; scanning the log
// takes far longer).
//
// Why events and not cases: the store has a state index, but the
// EventStore interface can only list cases, reading and parsing every
// snapshot, and a listing taken page by page while commits go on counts a
// case that moves between two pages twice or not at all. Events never
// change, and each one carries the case's state before and after it
// (from_state, to_state; 0 for a submit's "before"). Adding +1 for
// to_state and -1 for from_state over events 1..N gives exactly the
// counts at log size N, however long the scan takes.
//
// So: N is the manager's initial log size. The commit hook applies every
// later event's transition to cases_delta_ from the first commit on (the
// manager reports each event after N exactly once); this thread sums
// events 1..N into cases_base_, reading only the two varints of each
// event off RocksDB without filling its block cache. permit_cases
// (base + delta) is served once the sum is done. The hook and this thread
// touch separate atomics and share no lock.
void Metrics::CountCases(const CaseManager* manager) {
  const uint64_t n = manager->initial_log_size();
  std::array<int64_t, kNumStates> base{};
  bool bad = false;
  const absl::Status scanned =
      manager->ScanEvents(1, n, [&](uint64_t, absl::string_view bytes) {
        if (stop_count_.load(std::memory_order_relaxed)) return false;
        uint32_t from, to;
        if (!StatesOf(bytes, &from, &to) || to == 0 || to >= kNumStates ||
            from >= kNumStates) {
          bad = true;
          return false;
        }
        if (from != 0) --base[from];
        ++base[to];
        return true;
      });
  // Stopped, or a log that does not read back: no count rather than a
  // wrong one (permitd verify names the problem).
  if (!scanned.ok() || bad || stop_count_.load()) return;
  for (int s = 0; s < kNumStates; ++s) {
    cases_base_[s].store(base[s], std::memory_order_relaxed);
  }
  cases_counted_.store(true, std::memory_order_release);
}

std::string Metrics::Scrape() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  for (prometheus::MetricFamily& f : collector_->Collect()) {
    families.push_back(std::move(f));
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace permit::server
