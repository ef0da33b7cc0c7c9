// Fuzzes decoding stored events and replaying the workflow rules over them
// (core/log_verifier.h, core/rules.h ApplyEvent/Decide,
// core/parallel_replayer.h). The input is the wire encoding of
//   message { repeated bytes event = 1; uint32 from = 2; }
// : the stored bytes of events 1, 2, ... of a log, as an auditor would read
// them. Beyond "no crash", it checks LogVerifier against a plain reference
// replay (parse each event whole, check its sequence number and that its
// case id is encoded once, ApplyEvent onto the case), which the verifier's
// fast paths (applications kept as raw bytes, snapshots compared as bytes)
// must agree with:
//   - the verifier fails at exactly the event where the reference does,
//     with DATA_LOSS naming that event, and stays failed;
//   - its tree size, root and every Merkle node it reports as completed
//     are those of RFC 6962 over the leaf hashes fed so far;
//   - for a log that verifies: the same cases, each equal to the
//     reference's; the reference's snapshot passes CheckSnapshotBytes and a
//     snapshot with its application altered does not;
//   - ParallelReplayer over two shards reaches the same verdict;
//   - a log that verifies also verifies from event `from` on, given only
//     the compact tree of the events before it, with the same root.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/log_verifier.h"
#include "core/merkle.h"
#include "core/parallel_replayer.h"
#include "core/rules.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/wire_format_lite.h"
#include "permit/v1/resources.pb.h"
#include "tests/fuzz/fuzz_inputs.h"

namespace {

using permit::core::Hash;
using permit::core::LogVerifier;
namespace v1 = permit::v1;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "replay_fuzz: %s\n", what.c_str());
  std::abort();
}

struct Input {
  std::vector<std::string> events;
  uint32_t from = 0;
};

// Reads the input message; stops at the first malformed field.
Input Decode(const uint8_t* data, size_t size) {
  using google::protobuf::internal::WireFormatLite;
  Input in;
  google::protobuf::io::CodedInputStream s(data, static_cast<int>(size));
  for (uint32_t tag = s.ReadTag(); tag != 0; tag = s.ReadTag()) {
    if (tag == WireFormatLite::MakeTag(1, WireFormatLite::WIRETYPE_LENGTH_DELIMITED)) {
      std::string bytes;
      if (!WireFormatLite::ReadBytes(&s, &bytes)) break;
      in.events.push_back(std::move(bytes));
    } else if (tag == WireFormatLite::MakeTag(2, WireFormatLite::WIRETYPE_VARINT)) {
      if (!s.ReadVarint32(&in.from)) break;
    } else if (!WireFormatLite::SkipField(&s, tag)) {
      break;
    }
  }
  return in;
}

// The reference: events parsed whole and folded with ApplyEvent.
struct Reference {
  size_t failed_at = 0;  // index of the first bad event; events.size() if none
  std::map<std::string, v1::Case> cases;
};

Reference Replay(const std::vector<std::string>& events) {
  Reference ref;
  for (ref.failed_at = 0; ref.failed_at < events.size(); ++ref.failed_at) {
    const std::string& bytes = events[ref.failed_at];
    v1::Event e;
    if (!e.ParseFromString(bytes) || e.sequence() != ref.failed_at + 1 ||
        permit::core::CaseIdOfEvent(bytes) != e.case_id()) {
      break;
    }
    if (!permit::core::ApplyEvent(e, &ref.cases[e.case_id()]).ok()) break;
  }
  return ref;
}

Hash RangeRoot(const std::vector<Hash>& leaves, uint64_t begin, uint64_t end) {
  return permit::core::RootFromLeafHashes(
      absl::MakeConstSpan(leaves).subspan(begin, end - begin));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  permit::fuzz::QuietProtobufLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Input in = Decode(data, size);
  const std::vector<std::string>& events = in.events;
  const Reference ref = Replay(events);

  LogVerifier verifier;
  std::vector<Hash> leaves;
  absl::Status failure;
  for (size_t i = 0; i < events.size(); ++i) {
    const uint64_t seq = i + 1;
    std::vector<permit::core::TreeNode> completed;
    const absl::Status s = verifier.Add(seq, events[i], &completed);
    if (!failure.ok()) {
      if (s != failure) Fail(absl::StrCat("event ", seq, ": a failed verifier answered ", s.ToString()));
      continue;
    }
    leaves.push_back(permit::core::LeafHash(events[i]));
    if (completed.empty() || completed[0].level != 0 || completed[0].index != i ||
        completed[0].hash != leaves.back()) {
      Fail(absl::StrCat("event ", seq, ": the first completed node is not its leaf"));
    }
    for (const permit::core::TreeNode& n : completed) {
      const uint64_t begin = n.index << n.level, end = (n.index + 1) << n.level;
      if (end > leaves.size() || n.hash != RangeRoot(leaves, begin, end)) {
        Fail(absl::StrCat("event ", seq, ": wrong completed node level ", n.level,
                          " index ", n.index));
      }
    }
    if (!s.ok()) {
      if (i != ref.failed_at) {
        Fail(absl::StrCat("the verifier fails at event ", seq, " (", s.ToString(),
                          "), the reference at event ", ref.failed_at + 1));
      }
      if (s.code() != absl::StatusCode::kDataLoss ||
          !(absl::StartsWith(s.message(), absl::StrCat("event ", seq, ":")) ||
            absl::StartsWith(s.message(), absl::StrCat("event ", seq, " ")))) {
        Fail(absl::StrCat("event ", seq, ": not DATA_LOSS naming the event: ", s.ToString()));
      }
      failure = s;
    } else if (i == ref.failed_at) {
      Fail(absl::StrCat("the verifier accepts event ", seq, ", the reference does not"));
    }
  }
  if (verifier.size() != leaves.size() ||
      verifier.root() != permit::core::RootFromLeafHashes(leaves)) {
    Fail("the verifier's tree differs from RFC 6962 over the leaves fed");
  }

  // Two shards on threads of their own must reach the same verdict.
  {
    permit::core::ParallelReplayer parallel(2);
    for (size_t i = 0; i < events.size(); ++i) {
      if (!parallel.Add(i + 1, events[i])) break;
    }
    const absl::Status s = parallel.Finish();
    if (s.ok() != failure.ok()) {
      Fail(absl::StrCat("ParallelReplayer says ", s.ToString(), ", LogVerifier ",
                        failure.ToString()));
    }
    if (failure.ok()) {
      if (parallel.case_count() != ref.cases.size()) Fail("ParallelReplayer: case count");
      for (const auto& [id, c] : ref.cases) {
        if (absl::Status cs = parallel.CheckSnapshotBytes(id, c.SerializeAsString()); !cs.ok()) {
          Fail("ParallelReplayer refuses the reference snapshot: " + cs.ToString());
        }
      }
    }
  }
  if (!failure.ok()) return 0;

  // The log verifies: the same cases as the reference.
  if (verifier.case_count() != ref.cases.size()) Fail("case count differs");
  for (const auto& [id, c] : ref.cases) {
    // Before FindCase, which parses a raw application in: the fast path.
    if (absl::Status s = verifier.CheckSnapshotBytes(id, c.SerializeAsString()); !s.ok()) {
      Fail("the reference snapshot does not pass: " + s.ToString());
    }
    const v1::Case* found = verifier.FindCase(id);
    if (found == nullptr) Fail("case " + id + " missing");
    if (!google::protobuf::util::MessageDifferencer::Equals(*found, c)) {
      Fail("case " + id + " differs:\n" + found->DebugString() + "\nreference:\n" +
           c.DebugString());
    }
    v1::Case altered = c;
    altered.mutable_application()->mutable_end_use_statement()->append("x");
    if (verifier.CheckSnapshotBytes(id, altered.SerializeAsString()).ok()) {
      Fail("a snapshot with an altered application passes for case " + id);
    }
  }

  // From a midpoint, with only the compact tree of the events before it.
  const size_t from = in.from % (events.size() + 1);
  permit::core::CompactTree tree;
  for (size_t i = 0; i < from; ++i) tree.Append(leaves[i]);
  LogVerifier partial(tree);
  for (size_t i = from; i < events.size(); ++i) {
    if (absl::Status s = partial.Add(i + 1, events[i]); !s.ok()) {
      Fail(absl::StrCat("verifying from event ", from + 1, " fails: ", s.ToString()));
    }
  }
  if (partial.root() != verifier.root()) Fail("verifying from a midpoint gives another root");
  return 0;
}
