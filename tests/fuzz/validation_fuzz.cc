// Fuzzes request validation (core/validation.h). The first byte picks one of
// the nine validated request types; the rest is parsed as that request's
// protobuf wire encoding, exactly as gRPC hands permitd a request, and
// validated. Beyond "no crash", for every request that parses:
//   - each violation names a field that exists, by its path in the request
//     ("application.goods[1].quantity.value"): every segment is a field of
//     the message it is in, an index appears only on a repeated field and
//     is below the number of elements sent; and says why (non-empty);
//   - validation is deterministic and depends only on the message: a copy
//     re-parsed from its serialization gets the same violations;
//   - InvalidArgument(violations) is OK exactly when there are none, and the
//     google.rpc.BadRequest it attaches gives the same violations back
//     through ViolationsOf (what clients read).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "core/validation.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "permit/v1/case_service.pb.h"
#include "tests/fuzz/fuzz_inputs.h"

namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using permit::core::FieldViolation;

// The server's clock for ApproveCaseRequest: fixed, so runs reproduce.
const absl::Time kNow = absl::FromUnixSeconds(1795824000);  // 2026-11-28

[[noreturn]] void Fail(const std::string& what, const Message& request) {
  std::fprintf(stderr, "validation_fuzz: %s\nrequest (%s):\n%s\n", what.c_str(),
               request.GetDescriptor()->full_name().c_str(),
               request.DebugString().c_str());
  std::abort();
}

// True if `path` names a field present in `m`: "a.b[2].c".
bool PathResolves(const Message& root, const std::string& path) {
  const Message* m = &root;
  std::vector<std::string> segments = absl::StrSplit(path, '.');
  for (size_t i = 0; i < segments.size(); ++i) {
    std::string name = segments[i];
    int index = -1;
    if (const size_t open = name.find('['); open != std::string::npos) {
      if (name.back() != ']' ||
          !absl::SimpleAtoi(name.substr(open + 1, name.size() - open - 2), &index) ||
          index < 0) {
        return false;
      }
      name.resize(open);
    }
    const FieldDescriptor* f = m->GetDescriptor()->FindFieldByName(name);
    if (f == nullptr) return false;
    const bool last = i + 1 == segments.size();
    if (index >= 0) {
      if (!f->is_repeated() || index >= m->GetReflection()->FieldSize(*m, f)) return false;
      if (last) return true;
      if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) return false;
      m = &m->GetReflection()->GetRepeatedMessage(*m, f, index);
      continue;
    }
    if (last) return true;
    if (f->is_repeated() || f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) return false;
    m = &m->GetReflection()->GetMessage(*m, f);
  }
  return false;
}

bool Same(const std::vector<FieldViolation>& a, const std::vector<FieldViolation>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].field != b[i].field || a[i].description != b[i].description) return false;
  }
  return true;
}

template <typename Request, typename ValidateFn>
void Check(const uint8_t* data, size_t size, ValidateFn validate) {
  Request r;
  if (!r.ParseFromArray(data, static_cast<int>(size))) return;
  const std::vector<FieldViolation> v = validate(r);
  for (const FieldViolation& fv : v) {
    if (!PathResolves(r, fv.field)) Fail("violation of no such field: " + fv.field, r);
    if (fv.description.empty()) Fail("violation without a reason: " + fv.field, r);
  }
  Request copy;
  if (!copy.ParseFromString(r.SerializeAsString())) Fail("re-parse failed", r);
  if (!Same(validate(copy), v)) Fail("a re-parsed copy validates differently", r);

  const absl::Status status = permit::core::InvalidArgument(v);
  if (status.ok() != v.empty()) Fail("InvalidArgument is OK with violations or not without", r);
  if (!status.ok() && status.code() != absl::StatusCode::kInvalidArgument) {
    Fail("InvalidArgument returned another code", r);
  }
  if (!Same(permit::core::ViolationsOf(status), v)) {
    Fail("the BadRequest payload does not give the violations back: " +
             std::string(status.message()),
         r);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  permit::fuzz::QuietProtobufLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t kind = data[0];
  ++data;
  --size;
  namespace v1 = permit::v1;
  auto plain = [](const auto& r) { return permit::core::Validate(r); };
  switch (kind % 9) {
    case 0: Check<v1::SubmitCaseRequest>(data, size, plain); break;
    case 1: Check<v1::ReviewCaseRequest>(data, size, plain); break;
    case 2:
      Check<v1::ApproveCaseRequest>(data, size, [](const v1::ApproveCaseRequest& r) {
        return permit::core::Validate(r, kNow);
      });
      break;
    case 3: Check<v1::RejectCaseRequest>(data, size, plain); break;
    case 4: Check<v1::SuspendCaseRequest>(data, size, plain); break;
    case 5: Check<v1::ResumeCaseRequest>(data, size, plain); break;
    case 6: Check<v1::RevokeCaseRequest>(data, size, plain); break;
    case 7: Check<v1::WithdrawCaseRequest>(data, size, plain); break;
    case 8: Check<v1::ListCasesRequest>(data, size, plain); break;
  }
  return 0;
}
