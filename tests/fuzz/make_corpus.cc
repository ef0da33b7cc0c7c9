// Writes the fuzz targets' seed corpora: real requests (the examples'
// applications), real logs (legal case histories, and one that breaks the
// four-eyes rule), a real signed and cosigned checkpoint note, real
// inclusion and consistency proofs, and a real principals file. The files
// are committed under tests/fuzz/corpus/<target>/; run this again when an
// input format changes:
//
//   build-fuzz/tests/fuzz/permit_fuzz_make_corpus . tests/fuzz/corpus
//
// (from the repository root; the first argument is where examples/ is).
// Every seed is deterministic, so re-running changes no file.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/checkpoint.h"
#include "core/log_verifier.h"
#include "core/merkle.h"
#include "core/rules.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/json_util.h"
#include "permit/v1/case_service.pb.h"
#include "server/auth.h"
#include "tests/fuzz/fuzz_inputs.h"

namespace {

namespace fs = std::filesystem;
namespace v1 = permit::v1;
using permit::core::Hash;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "make_corpus: %s\n", what.c_str());
  std::exit(1);
}

fs::path out_root;

void Write(const std::string& target, const std::string& name, const std::string& bytes) {
  const fs::path dir = out_root / target;
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out << bytes;
  if (!out) Die("cannot write " + (dir / name).string());
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Die("cannot read " + path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

v1::Application ApplicationFrom(const fs::path& json_file) {
  v1::Application app;
  if (!google::protobuf::util::JsonStringToMessage(ReadFile(json_file), &app).ok()) {
    Die("cannot parse " + json_file.string());
  }
  return app;
}

v1::Actor Actor(const std::string& id, v1::Role role, const std::string& org = "") {
  v1::Actor a;
  a.set_principal_id(id);
  a.set_role(role);
  a.set_organisation(org);
  return a;
}

// --- validation_fuzz: the kind byte, then the request's wire encoding. ---

void Validation(const fs::path& examples) {
  const std::string t = "validation_fuzz";
  auto put = [&](const std::string& name, int kind, const google::protobuf::Message& m) {
    Write(t, name, std::string(1, static_cast<char>(kind)) + m.SerializeAsString());
  };
  v1::SubmitCaseRequest submit;
  submit.set_request_id("8d0c6f0e-6e61-4d55-9a3c-2f7d1d0b9a11");
  *submit.mutable_application() = ApplicationFrom(examples / "magnets-to-japan.json");
  put("submit-magnets-to-japan", 0, submit);
  *submit.mutable_application() = ApplicationFrom(examples / "application-with-mistakes.json");
  put("submit-application-with-mistakes", 0, submit);
  // Found by this fuzzer: a quoted currency code cut inside a character
  // made the google.rpc.BadRequest unparseable.
  *submit.mutable_application() = ApplicationFrom(examples / "magnets-to-japan.json");
  submit.mutable_application()->mutable_goods(0)->mutable_value()->set_currency_code(
      "a\xC3\x84\xC3\x84\xC3\x84\xC3\x84");
  put("submit-currency-cut-in-a-character", 0, submit);

  v1::ReviewCaseRequest review;
  review.set_request_id("req-review-1");
  review.set_case_id("PRM-2026-000001");
  review.set_expected_version(1);
  review.set_recommendation(v1::RECOMMENDATION_APPROVE);
  review.set_findings("End user and end use verified; goods match 1C003");
  put("review", 1, review);
  review.set_case_id(std::string(63, 'P') + "\xC3\x84");  // the same, for case ids
  put("review-case-id-cut-in-a-character", 1, review);

  v1::ApproveCaseRequest approve;
  approve.set_request_id("req-approve-1");
  approve.set_case_id("PRM-2026-000001");
  approve.set_expected_version(2);
  approve.mutable_valid_until()->set_seconds(1827359999);  // 2027-11-28T23:59:59Z
  approve.set_conditions("No re-export without authorisation");
  put("approve", 2, approve);
  approve.mutable_valid_from()->set_seconds(1795824000);
  approve.mutable_valid_until()->set_seconds(1795824000 + 61 * 31 * 86400);
  put("approve-too-long", 2, approve);

  v1::RejectCaseRequest reject;
  reject.set_request_id("req-reject-1");
  reject.set_case_id("PRM-2026-000002");
  reject.set_expected_version(2);
  reject.set_reason("End user on a watch list");
  put("reject", 3, reject);
  v1::SuspendCaseRequest suspend;
  suspend.set_request_id("req-suspend-1");
  suspend.set_case_id("PRM-2026-000001");
  suspend.set_expected_version(3);
  suspend.set_reason("Consignee under investigation");
  put("suspend", 4, suspend);
  v1::ResumeCaseRequest resume;
  resume.set_request_id("req-resume-1");
  resume.set_case_id("PRM-2026-000001");
  resume.set_expected_version(4);
  resume.set_reason("Consignee cleared");
  put("resume", 5, resume);
  v1::RevokeCaseRequest revoke;
  revoke.set_request_id("req-revoke-1");
  revoke.set_case_id("PRM-2026-000001");
  revoke.set_expected_version(5);
  revoke.set_reason("Destination embargoed");
  put("revoke", 6, revoke);
  v1::WithdrawCaseRequest withdraw;
  withdraw.set_request_id("req-withdraw-1");
  withdraw.set_case_id("PRM-2026-000003");
  withdraw.set_expected_version(1);
  put("withdraw", 7, withdraw);
  v1::ListCasesRequest list;
  list.set_state(v1::CASE_STATE_APPROVED);
  list.set_organisation("acme");
  list.set_destination_country("JP");
  list.set_page_size(50);
  put("list", 8, list);
}

// --- replay_fuzz: logs built with the rules. ---

class Log {
 public:
  explicit Log(v1::Application app) : app_(std::move(app)) {}

  // Appends the event of `actor` doing `action` on `case_id`, with its
  // states from the rules unless the rules refuse it (then `to` is what a
  // corrupt writer might have recorded).
  void Add(const std::string& case_id, v1::Action action, const v1::Actor& actor,
           const std::string& org, v1::CaseState to = v1::CASE_STATE_UNSPECIFIED) {
    v1::Case& c = cases_[case_id];
    v1::Event e;
    e.set_sequence(events_.size() + 1);
    e.set_case_id(case_id);
    e.set_case_version(c.version() + 1);
    e.set_organisation(org);
    e.set_action(action);
    *e.mutable_actor() = actor;
    e.mutable_time()->set_seconds(1795824000 + static_cast<int64_t>(events_.size()) * 97);
    e.set_request_id(absl::StrCat("req-", events_.size() + 1));
    e.set_from_state(c.state());
    auto target = permit::core::Decide(action == v1::ACTION_SUBMIT ? nullptr : &c, action,
                                       actor, c.version());
    e.set_to_state(target.ok() ? *target : to);
    switch (action) {
      case v1::ACTION_SUBMIT:
        *e.mutable_submit()->mutable_application() = app_;
        break;
      case v1::ACTION_REVIEW:
        e.mutable_review()->set_recommendation(v1::RECOMMENDATION_APPROVE);
        e.mutable_review()->set_findings("End user and end use verified; goods match 1C003");
        break;
      case v1::ACTION_APPROVE:
        e.mutable_approve()->mutable_valid_from()->set_seconds(1795824000);
        e.mutable_approve()->mutable_valid_until()->set_seconds(1827359999);
        e.mutable_approve()->set_conditions("No re-export without authorisation");
        break;
      case v1::ACTION_WITHDRAW:
        e.mutable_reason();
        break;
      default:
        e.mutable_reason()->set_reason(absl::StrCat(permit::core::ActionName(action),
                                                    ": policy review"));
        break;
    }
    (void)permit::core::ApplyEvent(e, &c);
    events_.push_back(e.SerializeAsString());
  }

  // The input: `repeated bytes event = 1; uint32 from = 2;`.
  std::string Input(uint32_t from) const {
    std::string out;
    google::protobuf::io::StringOutputStream raw(&out);
    google::protobuf::io::CodedOutputStream s(&raw);
    for (const std::string& e : events_) {
      s.WriteTag((1 << 3) | 2);
      s.WriteVarint32(static_cast<uint32_t>(e.size()));
      s.WriteString(e);
    }
    s.WriteTag(2 << 3);
    s.WriteVarint32(from);
    s.Trim();
    return out;
  }

  // Verifies the log; true if it is legal.
  bool Verifies(Hash* root) const {
    permit::core::LogVerifier v;
    for (size_t i = 0; i < events_.size(); ++i) {
      if (!v.Add(i + 1, events_[i]).ok()) return false;
    }
    *root = v.root();
    return true;
  }

 private:
  v1::Application app_;
  std::map<std::string, v1::Case> cases_;
  std::vector<std::string> events_;
};

Hash Replay(const fs::path& examples) {
  const std::string t = "replay_fuzz";
  const v1::Application app = ApplicationFrom(examples / "magnets-to-japan.json");
  const v1::Actor acme = Actor("exp-acme", v1::ROLE_EXPORTER, "acme");
  const v1::Actor globex = Actor("exp-globex", v1::ROLE_EXPORTER, "globex");
  const v1::Actor rev1 = Actor("rev-1", v1::ROLE_REVIEWER);
  const v1::Actor rev2 = Actor("rev-2", v1::ROLE_REVIEWER);
  const std::string a = "PRM-2026-000001", b = "PRM-2026-000002", c = "PRM-2026-000003";

  // The README's walkthrough: approved, suspended, resumed, revoked.
  Log walkthrough(app);
  walkthrough.Add(a, v1::ACTION_SUBMIT, acme, "acme");
  walkthrough.Add(a, v1::ACTION_REVIEW, rev1, "acme");
  walkthrough.Add(a, v1::ACTION_APPROVE, rev2, "acme");
  walkthrough.Add(a, v1::ACTION_SUSPEND, rev2, "acme");
  walkthrough.Add(a, v1::ACTION_RESUME, rev1, "acme");
  walkthrough.Add(a, v1::ACTION_REVOKE, rev1, "acme");
  Hash root;
  if (!walkthrough.Verifies(&root)) Die("the walkthrough log does not verify");
  Write(t, "walkthrough", walkthrough.Input(3));

  // Three cases interleaved: rejected, withdrawn while suspended, withdrawn.
  Log three(app);
  three.Add(a, v1::ACTION_SUBMIT, acme, "acme");
  three.Add(b, v1::ACTION_SUBMIT, globex, "globex");
  three.Add(a, v1::ACTION_REVIEW, rev2, "acme");
  three.Add(c, v1::ACTION_SUBMIT, acme, "acme");
  three.Add(b, v1::ACTION_SUSPEND, rev1, "globex");
  three.Add(a, v1::ACTION_REJECT, rev1, "acme");
  three.Add(c, v1::ACTION_WITHDRAW, acme, "acme");
  three.Add(b, v1::ACTION_WITHDRAW, globex, "globex");
  Hash unused;
  if (!three.Verifies(&unused)) Die("the three-case log does not verify");
  Write(t, "three-cases", three.Input(4));

  // The four-eyes rule broken by the last event: must fail there.
  Log four_eyes(app);
  four_eyes.Add(a, v1::ACTION_SUBMIT, acme, "acme");
  four_eyes.Add(a, v1::ACTION_REVIEW, rev1, "acme");
  four_eyes.Add(a, v1::ACTION_APPROVE, rev1, "acme", v1::CASE_STATE_APPROVED);
  if (four_eyes.Verifies(&unused)) Die("the four-eyes log verifies");
  Write(t, "four-eyes-broken", four_eyes.Input(1));
  return root;
}

// --- checkpoint_fuzz: notes, bodies and keys. ---

void Checkpoints(const Hash& root) {
  const std::string t = "checkpoint_fuzz";
  auto log = permit::core::NoteSigner::Create(permit::fuzz::kLogKeyPem, permit::fuzz::kLogName);
  auto witness = permit::core::NoteSigner::Create(permit::fuzz::kWitnessKeyPem,
                                                  permit::fuzz::kWitnessName);
  if (!log.ok() || !witness.ok()) Die("cannot load the test keys");
  const std::string body =
      permit::core::CheckpointBody({permit::fuzz::kLogName, 6, root});
  auto note = (*log)->Sign(body);
  auto cosig = (*witness)->Sign(body);
  if (!note.ok() || !cosig.ok()) Die("cannot sign");
  Write(t, "checkpoint-body", body);
  Write(t, "checkpoint-body-with-extension", body + "timestamp 1795824000\n");
  Write(t, "signed-note", *note);
  Write(t, "cosigned-note", *note + cosig->substr(body.size() + 1));
  Write(t, "log-verifier-key", (*log)->verifier_key());
  Write(t, "empty-log-note",
        *(*log)->Sign(permit::core::CheckpointBody(
            {permit::fuzz::kLogName, 0, permit::core::EmptyRoot()})));
}

// --- merkle_proof_fuzz: real proofs over the fixed tree. ---

void Proofs() {
  const std::string t = "merkle_proof_fuzz";
  const std::vector<Hash> leaves = permit::fuzz::FixedLeaves();
  auto read = [&](int level, uint64_t index) -> absl::StatusOr<Hash> {
    const uint64_t begin = index << level;
    return permit::core::RootFromLeafHashes(
        absl::MakeConstSpan(leaves).subspan(begin, uint64_t{1} << level));
  };
  auto root = [&](uint64_t n) {
    return permit::core::RootFromLeafHashes(absl::MakeConstSpan(leaves).subspan(0, n));
  };
  using permit::fuzz::MerkleInput;
  for (auto [index, size] : std::vector<std::pair<uint64_t, uint64_t>>{
           {0, 1}, {3, 7}, {6, 7}, {5, 1000}, {999, 1000}, {512, 513}, {255, 256}}) {
    auto proof = permit::core::InclusionProof(index, size, read);
    if (!proof.ok()) Die("InclusionProof");
    Write(t, absl::StrCat("inclusion-", index, "-of-", size),
          MerkleInput(permit::fuzz::kInclusion, 0, index, size, *proof));
  }
  for (auto [old_size, new_size] : std::vector<std::pair<uint64_t, uint64_t>>{
           {3, 7}, {4, 8}, {1, 1000}, {512, 1000}, {6, 6}, {999, 1000}}) {
    auto proof = permit::core::ConsistencyProof(old_size, new_size, read);
    if (!proof.ok()) Die("ConsistencyProof");
    Write(t, absl::StrCat("consistency-", old_size, "-to-", new_size),
          MerkleInput(permit::fuzz::kConsistency, 0, old_size, new_size, *proof));
  }
  // Own roots: the real ones, given explicitly.
  auto proof = permit::core::ConsistencyProof(5, 11, read);
  std::vector<Hash> with_roots = {root(5), root(11)};
  with_roots.insert(with_roots.end(), proof->begin(), proof->end());
  Write(t, "consistency-5-to-11-own-roots",
        MerkleInput(permit::fuzz::kConsistency, permit::fuzz::kFlagOwnHashes, 5, 11, with_roots));
  Write(t, "consistency-from-empty", MerkleInput(permit::fuzz::kConsistency, 0, 0, 5, {}));
  Write(t, "range-4-to-9", MerkleInput(permit::fuzz::kRange, 0, 4, 9, {}));
  Write(t, "range-0-to-1000", MerkleInput(permit::fuzz::kRange, 0, 0, 1000, {}));
  // Sizes no real tree has: root, leaf, then a proof of the right length.
  std::vector<Hash> large(2 + 63, leaves[1]);
  Write(t, "inclusion-large",
        MerkleInput(permit::fuzz::kInclusion, permit::fuzz::kFlagLarge, uint64_t{1} << 62,
                    (uint64_t{1} << 63) + 5, large));
  Write(t, "consistency-large",
        MerkleInput(permit::fuzz::kConsistency, permit::fuzz::kFlagLarge, 3,
                    ~uint64_t{0}, large));
  Write(t, "frontier-large",
        MerkleInput(permit::fuzz::kRange, permit::fuzz::kFlagLarge, 0x8000000000000003ull, 0,
                    {leaves[0], leaves[1], leaves[2]}));
}

// --- principals_fuzz: a real file, a file with a mistake, a description. ---

void Principals() {
  const std::string t = "principals_fuzz";
  struct P {
    std::string id, role, org;
  };
  const std::vector<P> dev = {{"exp-acme", "exporter", "acme"},
                              {"exp-globex", "exporter", "globex"},
                              {"rev-1", "reviewer", ""},
                              {"rev-2", "reviewer", ""},
                              {"aud-1", "auditor", ""}};
  // As scripts/dev.sh writes it (server/dev_setup.cc), tokens "token-<id>".
  std::string json = "{\"principals\": [\n";
  for (size_t i = 0; i < dev.size(); ++i) {
    absl::StrAppend(&json, i ? ",\n" : "", "    {\"id\": \"", dev[i].id, "\", \"role\": \"",
                    dev[i].role, "\"",
                    dev[i].org.empty() ? "" : absl::StrCat(", \"org\": \"", dev[i].org, "\""),
                    ", \"token_sha256\": \"",
                    permit::server::TokenSha256Hex("token-" + dev[i].id), "\"}");
  }
  json += "\n]}\n";
  if (!permit::server::PrincipalRegistry::Parse(json).ok()) Die("the dev file does not parse");
  Write(t, "dev-principals", std::string(1, '\0') + json);
  Write(t, "dev-principals-and-token",
        std::string(1, '\0') + json + std::string(1, '\0') + "token-rev-1");
  std::string mistake = json;
  mistake.replace(mistake.find("reviewer"), 8, "approver");
  Write(t, "unknown-role", std::string(1, '\0') + mistake);
  // An odd first byte: principals described by FuzzedDataProvider's bytes.
  Write(t, "described", std::string("\x01") + "exp-acme\\acme\\token-exp-acme\\rev-1\\token-rev-1" +
                            std::string("\x00\x01\x02\x03\x01\x01\x02\x02", 8));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) Die("usage: permit_fuzz_make_corpus <repository root> <corpus folder>");
  out_root = argv[2];
  const fs::path examples = fs::path(argv[1]) / "examples";
  Validation(examples);
  const Hash root = Replay(examples);
  Checkpoints(root);
  Proofs();
  Principals();
  return 0;
}
