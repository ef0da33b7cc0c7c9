// permit-micro-bench: Google Benchmark micro-benchmarks of the CPU work a
// commit does per action, outside the RocksDB write and gRPC:
//   rules     core::Decide and core::ApplyEvent (with the snapshot copy the
//             writer makes before applying), and request validation;
//   encoding  serialising and parsing a v1::Event and a v1::Case snapshot,
//             and the request fingerprint (deterministic serialisation +
//             SHA-256, as server/case_manager.cc computes it);
//   hashing   core::Sha256, core::LeafHash, core::NodeHash;
//   Merkle    core::CompactTree::Append, with and without Root(), at
//             small and large tree sizes.
//
//   build/permit-micro-bench [--benchmark_filter=Event] [--benchmark_repetitions=3]
//
// Every input is built like the server builds it, with the application of
// examples/magnets-to-japan.json (two goods lines).
#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "bench/sample_application.h"
#include "core/merkle.h"
#include "core/rules.h"
#include "core/time_util.h"
#include "core/validation.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "permit/v1/case_service.pb.h"
#include "permit/v1/resources.pb.h"

namespace permit::bench {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1795000000);


v1::Actor Actor(const char* id, v1::Role role, const char* org = "") {
  v1::Actor a;
  a.set_principal_id(id);
  a.set_role(role);
  a.set_organisation(org);
  return a;
}

// An event as CaseManager::CommitBatch fills it.
v1::Event Event(uint64_t seq, const std::string& case_id, int64_t version,
                v1::Action action, const v1::Actor& actor, v1::CaseState from,
                v1::CaseState to) {
  v1::Event e;
  e.set_sequence(seq);
  e.set_case_id(case_id);
  e.set_case_version(version);
  e.set_organisation("acme");
  e.set_action(action);
  *e.mutable_actor() = actor;
  *e.mutable_time() = core::ToProtoTime(kNow);
  e.set_request_id("3f9c1a7e0b5d4c2a9e8f7a6b5c4d3e2f");
  e.set_from_state(from);
  e.set_to_state(to);
  return e;
}

v1::Event SubmitEvent() {
  v1::Event e = Event(1, "PRM-2026-000001", 1, v1::ACTION_SUBMIT,
                      Actor("exp-acme", v1::ROLE_EXPORTER, "acme"),
                      v1::CASE_STATE_UNSPECIFIED, v1::CASE_STATE_SUBMITTED);
  *e.mutable_submit()->mutable_application() = MagnetsToJapan();
  return e;
}

v1::Event ReviewEvent() {
  v1::Event e = Event(2, "PRM-2026-000001", 2, v1::ACTION_REVIEW,
                      Actor("rev-1", v1::ROLE_REVIEWER), v1::CASE_STATE_SUBMITTED,
                      v1::CASE_STATE_REVIEWED);
  e.mutable_review()->set_recommendation(v1::RECOMMENDATION_APPROVE);
  e.mutable_review()->set_findings("End user and end use verified; goods match 1C003");
  return e;
}

v1::Event ApproveEvent() {
  v1::Event e = Event(3, "PRM-2026-000001", 3, v1::ACTION_APPROVE,
                      Actor("rev-2", v1::ROLE_REVIEWER), v1::CASE_STATE_REVIEWED,
                      v1::CASE_STATE_APPROVED);
  *e.mutable_approve()->mutable_valid_from() = core::ToProtoTime(kNow);
  *e.mutable_approve()->mutable_valid_until() =
      core::ToProtoTime(kNow + absl::Hours(24 * 365));
  e.mutable_approve()->set_conditions("No re-export without authorisation");
  return e;
}

v1::Case Submitted() {
  v1::Case c;
  if (!core::ApplyEvent(SubmitEvent(), &c).ok()) std::abort();
  return c;
}

v1::Case Reviewed() {
  v1::Case c = Submitted();
  if (!core::ApplyEvent(ReviewEvent(), &c).ok()) std::abort();
  return c;
}

// --- rules ------------------------------------------------------------------

void BM_DecideSubmit(benchmark::State& state) {
  const v1::Actor exporter = Actor("exp-acme", v1::ROLE_EXPORTER, "acme");
  for (auto _ : state) {
    benchmark::DoNotOptimize(core::Decide(nullptr, v1::ACTION_SUBMIT, exporter, 0));
  }
}
BENCHMARK(BM_DecideSubmit);

void BM_DecideApprove(benchmark::State& state) {
  const v1::Case c = Reviewed();
  const v1::Actor rev2 = Actor("rev-2", v1::ROLE_REVIEWER);
  for (auto _ : state) {
    benchmark::DoNotOptimize(core::Decide(&c, v1::ACTION_APPROVE, rev2, c.version()));
  }
}
BENCHMARK(BM_DecideApprove);

// A refusal builds its message: the cost of a stale expected_version.
void BM_DecideRefusedStale(benchmark::State& state) {
  const v1::Case c = Reviewed();
  const v1::Actor rev2 = Actor("rev-2", v1::ROLE_REVIEWER);
  for (auto _ : state) {
    benchmark::DoNotOptimize(core::Decide(&c, v1::ACTION_APPROVE, rev2, 1));
  }
}
BENCHMARK(BM_DecideRefusedStale);

// Submit onto an empty case: copies the application into the snapshot.
void BM_ApplyEventSubmit(benchmark::State& state) {
  const v1::Event e = SubmitEvent();
  for (auto _ : state) {
    v1::Case c;
    benchmark::DoNotOptimize(core::ApplyEvent(e, &c));
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_ApplyEventSubmit);

// The writer's step for an action on a case: copy the snapshot, apply.
void BM_CopyAndApplyEventApprove(benchmark::State& state) {
  const v1::Case current = Reviewed();
  const v1::Event e = ApproveEvent();
  for (auto _ : state) {
    v1::Case next = current;
    benchmark::DoNotOptimize(core::ApplyEvent(e, &next));
    benchmark::DoNotOptimize(next);
  }
}
BENCHMARK(BM_CopyAndApplyEventApprove);

// The snapshot copy alone (part of the line above).
void BM_CaseCopy(benchmark::State& state) {
  const v1::Case current = Reviewed();
  for (auto _ : state) {
    v1::Case next = current;
    benchmark::DoNotOptimize(next);
  }
}
BENCHMARK(BM_CaseCopy);

void BM_ValidateSubmit(benchmark::State& state) {
  v1::SubmitCaseRequest r;
  r.set_request_id("3f9c1a7e0b5d4c2a9e8f7a6b5c4d3e2f");
  *r.mutable_application() = MagnetsToJapan();
  for (auto _ : state) {
    benchmark::DoNotOptimize(core::Validate(r));
  }
}
BENCHMARK(BM_ValidateSubmit);

// --- encoding ---------------------------------------------------------------

void SerializeBench(benchmark::State& state, const google::protobuf::Message& m) {
  std::string out;
  for (auto _ : state) {
    out.clear();
    m.SerializeToString(&out);
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * out.size()));
  state.counters["bytes"] = static_cast<double>(out.size());
}

template <typename M>
void ParseBench(benchmark::State& state, const M& m) {
  const std::string bytes = m.SerializeAsString();
  M parsed;
  for (auto _ : state) {
    benchmark::DoNotOptimize(parsed.ParseFromString(bytes));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes.size()));
  state.counters["bytes"] = static_cast<double>(bytes.size());
}

void BM_EventSerializeSubmit(benchmark::State& state) { SerializeBench(state, SubmitEvent()); }
BENCHMARK(BM_EventSerializeSubmit);
void BM_EventSerializeApprove(benchmark::State& state) { SerializeBench(state, ApproveEvent()); }
BENCHMARK(BM_EventSerializeApprove);
void BM_EventParseSubmit(benchmark::State& state) { ParseBench(state, SubmitEvent()); }
BENCHMARK(BM_EventParseSubmit);
void BM_EventParseApprove(benchmark::State& state) { ParseBench(state, ApproveEvent()); }
BENCHMARK(BM_EventParseApprove);

void BM_CaseSerialize(benchmark::State& state) {
  v1::Case c = Reviewed();
  if (!core::ApplyEvent(ApproveEvent(), &c).ok()) std::abort();
  SerializeBench(state, c);
}
BENCHMARK(BM_CaseSerialize);

void BM_CaseParse(benchmark::State& state) {
  v1::Case c = Reviewed();
  if (!core::ApplyEvent(ApproveEvent(), &c).ok()) std::abort();
  ParseBench(state, c);
}
BENCHMARK(BM_CaseParse);

// The idempotency fingerprint of a submit, as server/case_manager.cc
// computes it: the request copied without its id, serialised
// deterministically after "<action>:", hashed.
void BM_SubmitFingerprint(benchmark::State& state) {
  v1::SubmitCaseRequest r;
  r.set_request_id("3f9c1a7e0b5d4c2a9e8f7a6b5c4d3e2f");
  *r.mutable_application() = MagnetsToJapan();
  for (auto _ : state) {
    v1::SubmitCaseRequest copy = r;
    copy.clear_request_id();
    std::string bytes = "1:";
    {
      google::protobuf::io::StringOutputStream raw(&bytes);
      google::protobuf::io::CodedOutputStream out(&raw);
      out.SetSerializationDeterministic(true);
      copy.SerializeToCodedStream(&out);
    }
    benchmark::DoNotOptimize(core::Sha256(bytes));
  }
}
BENCHMARK(BM_SubmitFingerprint);

// --- hashing ----------------------------------------------------------------

void BM_Sha256(benchmark::State& state) {
  const std::string data(static_cast<size_t>(state.range(0)), 'e');
  for (auto _ : state) benchmark::DoNotOptimize(core::Sha256(data));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * data.size()));
}
BENCHMARK(BM_Sha256)->Arg(32)->Arg(400)->Arg(4096);

// A leaf hash over a submit event's stored bytes.
void BM_LeafHashSubmitEvent(benchmark::State& state) {
  const std::string bytes = SubmitEvent().SerializeAsString();
  for (auto _ : state) benchmark::DoNotOptimize(core::LeafHash(bytes));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes.size()));
  state.counters["bytes"] = static_cast<double>(bytes.size());
}
BENCHMARK(BM_LeafHashSubmitEvent);

void BM_NodeHash(benchmark::State& state) {
  const core::Hash a = core::Sha256("a");
  const core::Hash b = core::Sha256("b");
  for (auto _ : state) benchmark::DoNotOptimize(core::NodeHash(a, b));
}
BENCHMARK(BM_NodeHash);

// --- Merkle -----------------------------------------------------------------

// A tree of `size` leaves (built from a frontier, without hashing them all).
core::CompactTree TreeOfSize(uint64_t size) {
  std::vector<core::Hash> frontier;
  for (uint64_t bit = uint64_t{1} << 63; bit != 0; bit >>= 1) {
    if (size & bit) frontier.push_back(core::Sha256(std::to_string(bit)));
  }
  absl::StatusOr<core::CompactTree> tree = core::CompactTree::FromFrontier(size, frontier);
  if (!tree.ok()) std::abort();
  return *std::move(tree);
}

// Append alone (amortised: about one NodeHash per append).
void BM_CompactTreeAppend(benchmark::State& state) {
  core::CompactTree tree = TreeOfSize(static_cast<uint64_t>(state.range(0)));
  const core::Hash leaf = core::LeafHash("event");
  for (auto _ : state) tree.Append(leaf);
}
BENCHMARK(BM_CompactTreeAppend)->Arg(0)->Arg(1000000);

// Append with the completed nodes collected for storage, as the store does.
void BM_CompactTreeAppendCompleted(benchmark::State& state) {
  core::CompactTree tree = TreeOfSize(static_cast<uint64_t>(state.range(0)));
  const core::Hash leaf = core::LeafHash("event");
  std::vector<core::TreeNode> completed;
  for (auto _ : state) {
    completed.clear();
    tree.Append(leaf, &completed);
    benchmark::DoNotOptimize(completed);
  }
}
BENCHMARK(BM_CompactTreeAppendCompleted)->Arg(0)->Arg(1000000);

// Append and the new root after every leaf (the worst case: a batch of one).
void BM_CompactTreeAppendRoot(benchmark::State& state) {
  core::CompactTree tree = TreeOfSize(static_cast<uint64_t>(state.range(0)));
  const core::Hash leaf = core::LeafHash("event");
  for (auto _ : state) {
    tree.Append(leaf);
    benchmark::DoNotOptimize(tree.Root());
  }
}
BENCHMARK(BM_CompactTreeAppendRoot)->Arg(0)->Arg(1000000);

}  // namespace
}  // namespace permit::bench

BENCHMARK_MAIN();
