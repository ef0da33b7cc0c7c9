// permitctl output formatting; see output.h.
#include "client/cli/output.h"

#include <openssl/evp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "permit/client.h"

namespace permit::cli {

std::string EnumWord(const std::string& name, const std::string& prefix) {
  std::string s = name.substr(0, prefix.size()) == prefix
                      ? name.substr(prefix.size())
                      : name;
  return absl::AsciiStrToLower(s);
}

std::string StateWord(v1::CaseState s) {
  return EnumWord(v1::CaseState_Name(s), "CASE_STATE_");
}
std::string ActionWord(v1::Action a) {
  return EnumWord(v1::Action_Name(a), "ACTION_");
}
std::string RoleWord(v1::Role r) { return EnumWord(v1::Role_Name(r), "ROLE_"); }

std::string TimeText(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(t.seconds()),
                          absl::UTCTimeZone());
}

std::string Json(const google::protobuf::Message& m, bool pretty) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = pretty;
  options.always_print_primitive_fields = true;
  auto status = google::protobuf::util::MessageToJsonString(m, &out, options);
  if (!status.ok()) {
    return "{\"error\": \"cannot print as JSON: " +
           status.message().as_string() + "\"}";
  }
  if (!pretty) return out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

namespace {

std::string MoneyText(const v1::Money& m) {
  return absl::StrFormat("%s %d.%02d", m.currency_code(), m.units(),
                         m.nanos() / 10000000);
}

std::string ActorText(const v1::Actor& a) {
  return absl::StrCat(a.principal_id(), " (", RoleWord(a.role()),
                      a.organisation().empty() ? "" : ", ", a.organisation(), ")");
}

void Row(std::ostream& out, absl::string_view key, absl::string_view value) {
  if (value.empty()) return;
  out << absl::StrFormat("%-16s %s\n", key, value);
}

std::string OneLine(std::string s) {
  for (char& ch : s) {
    if (ch == '\n' || ch == '\r' || ch == '\t') ch = ' ';
  }
  return s;
}

std::string EventDetail(const v1::Event& e) {
  switch (e.details_case()) {
    case v1::Event::kSubmit: {
      const v1::Application& a = e.submit().application();
      return absl::StrCat(a.goods_size(), " goods line",
                          a.goods_size() == 1 ? "" : "s", " to ",
                          a.end_user().name(), " (", a.destination_country(), ")");
    }
    case v1::Event::kReview:
      return absl::StrCat("recommends ",
                          EnumWord(v1::Recommendation_Name(e.review().recommendation()),
                                   "RECOMMENDATION_"),
                          ": ", OneLine(e.review().findings()));
    case v1::Event::kApprove:
      return absl::StrCat("valid ", TimeText(e.approve().valid_from()), " to ",
                          TimeText(e.approve().valid_until()),
                          e.approve().conditions().empty() ? "" : "; ",
                          OneLine(e.approve().conditions()));
    case v1::Event::kReason:
      return OneLine(e.reason().reason());
    default:
      return "";
  }
}

}  // namespace

void PrintCase(std::ostream& out, const v1::Case& c, Format f) {
  if (f == Format::kJson) {
    out << Json(c, true) << "\n";
    return;
  }
  Row(out, "case", c.id());
  Row(out, "state", absl::StrCat(StateWord(c.state()),
                                 c.state() == v1::CASE_STATE_SUSPENDED
                                     ? absl::StrCat(" (from ",
                                                    StateWord(c.suspended_from()), ")")
                                     : ""));
  Row(out, "version", absl::StrCat(c.version()));
  Row(out, "organisation", c.organisation());
  const v1::Application& a = c.application();
  Row(out, "destination", a.destination_country());
  Row(out, "end user", absl::StrCat(a.end_user().name(), " (", a.end_user().country(), ")"));
  if (a.has_consignee()) {
    Row(out, "consignee",
        absl::StrCat(a.consignee().name(), " (", a.consignee().country(), ")"));
  }
  for (int i = 0; i < a.goods_size(); ++i) {
    const v1::GoodsLine& g = a.goods(i);
    Row(out, i == 0 ? "goods" : "",
        absl::StrCat(g.quantity().value(), " ", g.quantity().unit(), " ",
                     g.description(), " [", g.control_list_entry(), ", HS ",
                     g.hs_code(), ", ", MoneyText(g.value()), "]"));
  }
  Row(out, "end use", OneLine(a.end_use_statement()));
  Row(out, "validity asked", absl::StrCat(a.requested_validity_months(), " months"));
  Row(out, "submitted", absl::StrCat(TimeText(c.create_time()), " by ", c.submitted_by()));
  if (!c.reviewed_by().empty()) {
    Row(out, "reviewed by",
        absl::StrCat(c.reviewed_by(), ": recommends ",
                     EnumWord(v1::Recommendation_Name(c.recommendation()),
                              "RECOMMENDATION_"),
                     "; ", OneLine(c.findings())));
  }
  Row(out, "decided by", c.decided_by());
  if (c.has_valid_until()) {
    Row(out, "valid", absl::StrCat(TimeText(c.valid_from()), " to ",
                                   TimeText(c.valid_until())));
  }
  Row(out, "conditions", OneLine(c.conditions()));
  Row(out, "last reason", OneLine(c.last_reason()));
  Row(out, "updated", absl::StrCat(TimeText(c.update_time()), " (log sequence ",
                                   c.last_sequence(), ")"));
}

void PrintCaseList(std::ostream& out, const v1::ListCasesResponse& r, Format f) {
  if (f == Format::kJson) {
    out << Json(r, true) << "\n";
    return;
  }
  out << absl::StrFormat("%-18s %-10s %4s %-12s %-4s %s\n", "CASE", "STATE", "VER",
                         "ORG", "DEST", "UPDATED");
  for (const v1::Case& c : r.cases()) {
    out << absl::StrFormat("%-18s %-10s %4d %-12s %-4s %s\n", c.id(),
                           StateWord(c.state()), c.version(), c.organisation(),
                           c.application().destination_country(),
                           TimeText(c.update_time()));
  }
  if (!r.next_page_token().empty()) {
    out << "more: --page-token " << r.next_page_token() << "\n";
  }
}

void PrintDenials(std::ostream& out, const v1::ListDenialsResponse& r, Format f) {
  if (f == Format::kJson) {
    out << Json(r, true) << "\n";
    return;
  }
  out << absl::StrFormat("%6s  %-20s  %-12s %-19s %-16s %-19s %s\n", "ID", "TIME",
                         "PRINCIPAL", "METHOD", "CASE", "CODE", "MESSAGE");
  for (const v1::Denial& d : r.denials()) {
    out << absl::StrFormat("%6d  %-20s  %-12s %-19s %-16s %-19s %s\n", d.id(),
                           TimeText(d.time()),
                           d.principal_id().empty() ? "-" : d.principal_id(),
                           d.method(), d.case_id().empty() ? "-" : d.case_id(),
                           d.code(), d.message());
  }
  std::string counts;
  for (const auto& [code, n] : r.by_code()) {
    absl::StrAppend(&counts, counts.empty() ? "" : ", ", code, " ", n);
  }
  out << "refused since start: " << r.total() << (counts.empty() ? "" : " (")
      << counts << (counts.empty() ? "" : ")") << "; no longer kept: " << r.evicted()
      << "\n";
  if (r.denials_size() > 0 && r.denials(r.denials_size() - 1).id() > 1) {
    out << "older: --before " << r.denials(r.denials_size() - 1).id() << "\n";
  }
}

void PrintEventHeader(std::ostream& out, Format f) {
  if (f == Format::kJson) return;
  out << absl::StrFormat("%6s  %-20s  %-16s %3s  %-9s %-30s %s\n", "SEQ", "TIME",
                         "CASE", "VER", "ACTION", "ACTOR", "STATE / DETAIL");
}

void PrintEvent(std::ostream& out, const v1::Event& e, Format f) {
  if (f == Format::kJson) {
    out << Json(e, false) << "\n";
    return;
  }
  std::string change =
      e.from_state() == v1::CASE_STATE_UNSPECIFIED
          ? StateWord(e.to_state())
          : absl::StrCat(StateWord(e.from_state()), " -> ", StateWord(e.to_state()));
  out << absl::StrFormat("%6d  %-20s  %-16s %3d  %-9s %-30s %s: %s\n", e.sequence(),
                         TimeText(e.time()), e.case_id(), e.case_version(),
                         ActionWord(e.action()), ActorText(e.actor()), change,
                         EventDetail(e));
}

void PrintHead(std::ostream& out, const v1::LogHead& h, Format f) {
  if (f == Format::kJson) {
    out << Json(h, true) << "\n";
    return;
  }
  Row(out, "events", absl::StrCat(h.tree_size()));
  Row(out, "root (sha256)", absl::BytesToHexString(h.root_hash()));
  Row(out, "last event", TimeText(h.last_event_time()));
}

void PrintInclusionProof(std::ostream& out, const v1::InclusionProof& p) {
  Row(out, "event", absl::StrCat(p.sequence()));
  Row(out, "tree size", absl::StrCat(p.tree_size()));
  Row(out, "leaf hash", absl::BytesToHexString(p.leaf_hash()));
  for (int i = 0; i < p.hashes_size(); ++i) {
    Row(out, i == 0 ? "audit path" : "", absl::BytesToHexString(p.hashes(i)));
  }
  Row(out, "root", absl::BytesToHexString(p.root_hash()));
}

void PrintConsistencyProof(std::ostream& out, const v1::ConsistencyProof& p) {
  Row(out, "old size", absl::StrCat(p.old_size()));
  Row(out, "old root", absl::BytesToHexString(p.old_root_hash()));
  Row(out, "new size", absl::StrCat(p.new_size()));
  Row(out, "new root", absl::BytesToHexString(p.new_root_hash()));
  for (int i = 0; i < p.hashes_size(); ++i) {
    Row(out, i == 0 ? "proof" : "", absl::BytesToHexString(p.hashes(i)));
  }
}

std::string LeafHashHex(const std::string& event_bytes) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  std::string data(1, '\0');
  data += event_bytes;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(out), len));
}

void PrintError(std::ostream& out, const absl::Status& status) {
  const std::vector<FieldViolation> violations = FieldViolations(status);
  if (violations.empty()) {
    out << "error: " << StatusCodeName(status.code()) << ": " << status.message()
        << "\n";
    return;
  }
  out << "error: " << StatusCodeName(status.code()) << ": " << violations.size()
      << (violations.size() == 1 ? " invalid field" : " invalid fields") << "\n";
  for (const FieldViolation& v : violations) {
    out << "  " << v.field << ": " << v.description << "\n";
  }
}

}  // namespace permit::cli
