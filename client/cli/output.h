// permitctl's output: each response as a human-readable table (`-o table`,
// the default) or as the proto3 JSON mapping (`-o json`), and errors as the
// gRPC code, the message and each field violation.
#ifndef PERMIT_CLIENT_CLI_OUTPUT_H_
#define PERMIT_CLIENT_CLI_OUTPUT_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "permit/v1/audit_service.pb.h"
#include "permit/v1/case_service.pb.h"

namespace permit::cli {

enum class Format { kTable, kJson };

// "approved" for CASE_STATE_APPROVED, "approve" for ACTION_APPROVE, ...
std::string EnumWord(const std::string& enum_value_name, const std::string& prefix);
std::string StateWord(v1::CaseState s);
std::string ActionWord(v1::Action a);
std::string RoleWord(v1::Role r);
// RFC 3339 in UTC, seconds precision; "-" when unset.
std::string TimeText(const google::protobuf::Timestamp& t);

// The proto3 JSON mapping of `m` on one line (or indented when `pretty`).
std::string Json(const google::protobuf::Message& m, bool pretty);

void PrintCase(std::ostream& out, const v1::Case& c, Format f);
void PrintCaseList(std::ostream& out, const v1::ListCasesResponse& r, Format f);
// Refused calls, newest first, then the counts by code.
void PrintDenials(std::ostream& out, const v1::ListDenialsResponse& r, Format f);
// One line per event in table format; one JSON object per line otherwise.
void PrintEventHeader(std::ostream& out, Format f);
void PrintEvent(std::ostream& out, const v1::Event& e, Format f);
void PrintHead(std::ostream& out, const v1::LogHead& h, Format f);
void PrintInclusionProof(std::ostream& out, const v1::InclusionProof& p);
void PrintConsistencyProof(std::ostream& out, const v1::ConsistencyProof& p);
// Hex SHA-256(0x00 || bytes): an event's leaf hash.
std::string LeafHashHex(const std::string& event_bytes);
// "error: NOT_FOUND: case ... not found" plus one line per bad field.
void PrintError(std::ostream& out, const absl::Status& status);

}  // namespace permit::cli

#endif  // PERMIT_CLIENT_CLI_OUTPUT_H_
