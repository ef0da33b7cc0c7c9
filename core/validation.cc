// Implementation of request validation; see validation.h.
#include "core/validation.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "core/time_util.h"
#include "google/rpc/error_details.pb.h"

namespace permit::core {
namespace {

// Officially assigned ISO 3166-1 alpha-2 codes.
constexpr absl::string_view kCountries =
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI "
    "BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN "
    "CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK "
    "FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM "
    "HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN "
    "KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK "
    "ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP "
    "NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW "
    "SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF "
    "TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI "
    "VN VU WF WS YE YT ZA ZM ZW";

// Active ISO 4217 currency codes (funds, precious metals and test codes
// left out: goods are valued in money).
constexpr absl::string_view kCurrencies =
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND "
    "BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF "
    "DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD "
    "HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW "
    "KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR "
    "MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN "
    "PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN "
    "SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES "
    "VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG";

bool InList(absl::string_view list, absl::string_view code, size_t len) {
  if (code.size() != len) return false;
  for (char ch : code) {
    if (ch < 'A' || ch > 'Z') return false;
  }
  for (size_t i = 0; i + len <= list.size(); i += len + 1) {
    if (list.substr(i, len) == code) return true;
  }
  return false;
}

// At most the first `max` bytes of `s`, cut back to a character boundary:
// quoted in a violation, a client's text must stay valid UTF-8, or the
// google.rpc.BadRequest carrying it (proto3 strings) would not parse.
absl::string_view Quote(absl::string_view s, size_t max) {
  if (s.size() <= max) return s;
  while (max > 0 && (static_cast<unsigned char>(s[max]) & 0xC0) == 0x80) --max;
  return s.substr(0, max);
}

// Collects violations under a common path prefix.
class Checker {
 public:
  explicit Checker(std::vector<FieldViolation>* out) : out_(out) {}

  void Add(const std::string& field, std::string description) {
    out_->push_back({field, std::move(description)});
  }

  // A required or optional text field: length and characters. Single-line
  // fields refuse every control character; multi-line ones allow \n, \r, \t.
  void Text(const std::string& field, absl::string_view value, bool required,
            int max_len, bool multi_line = false) {
    if (value.empty()) {
      if (required) Add(field, "required");
      return;
    }
    if (static_cast<int>(value.size()) > max_len) {
      Add(field, absl::StrCat("longer than ", max_len, " bytes (",
                              value.size(), ")"));
      return;
    }
    for (unsigned char ch : value) {
      bool allowed_ws = multi_line && (ch == '\n' || ch == '\r' || ch == '\t');
      if ((ch < 0x20 || ch == 0x7f) && !allowed_ws) {
        Add(field, "contains a control character");
        return;
      }
    }
    if (absl::StripAsciiWhitespace(value).empty()) {
      Add(field, "is only whitespace");
    }
  }

  void Country(const std::string& field, absl::string_view value) {
    if (value.empty()) {
      Add(field, "required: an ISO 3166-1 alpha-2 code such as \"JP\"");
    } else if (!IsCountryCode(value)) {
      Add(field, absl::StrCat("\"", value,
                              "\" is not an ISO 3166-1 alpha-2 country code"));
    }
  }

  void Party(const std::string& path, const v1::Party& p) {
    Text(path + ".name", p.name(), true, Limits::kMaxNameLength);
    Text(path + ".address", p.address(), true, Limits::kMaxAddressLength,
         /*multi_line=*/true);
    Country(path + ".country", p.country());
  }

  void RequestId(absl::string_view id) {
    if (id.empty()) {
      Add("request_id", "required: a client-chosen idempotency key");
      return;
    }
    if (static_cast<int>(id.size()) > Limits::kMaxIdLength) {
      Add("request_id",
          absl::StrCat("longer than ", Limits::kMaxIdLength, " bytes"));
      return;
    }
    for (unsigned char ch : id) {
      if (ch <= 0x20 || ch >= 0x7f) {
        Add("request_id", "must be printable ASCII without spaces");
        return;
      }
    }
  }

  void CaseRef(absl::string_view case_id, int64_t expected_version) {
    if (case_id.empty()) {
      Add("case_id", "required");
    } else if (!IsCaseId(case_id)) {
      Add("case_id", absl::StrCat("\"", Quote(case_id, 64),
                                  "\" is not a case id like PRM-2026-000042"));
    }
    if (expected_version <= 0) {
      Add("expected_version",
          "required: the case version you last saw (1 or more)");
    }
  }

 private:
  std::vector<FieldViolation>* out_;
};

// `t` plus `months` calendar months (UTC); day overflow rolls forward, as
// absl's civil time normalises it.
absl::Time MonthsLater(absl::Time t, int months) {
  const absl::CivilSecond c = absl::ToCivilSecond(t, absl::UTCTimeZone());
  return absl::FromCivil(absl::CivilSecond(c.year(), c.month() + months, c.day(),
                                           c.hour(), c.minute(), c.second()),
                         absl::UTCTimeZone());
}

template <typename R>
std::vector<FieldViolation> ValidateReason(const R& r, bool required) {
  std::vector<FieldViolation> v;
  Checker c(&v);
  c.RequestId(r.request_id());
  c.CaseRef(r.case_id(), r.expected_version());
  c.Text("reason", r.reason(), required, Limits::kMaxTextLength, true);
  return v;
}

}  // namespace

bool IsCountryCode(absl::string_view s) { return InList(kCountries, s, 2); }
bool IsCurrencyCode(absl::string_view s) { return InList(kCurrencies, s, 3); }

bool IsCaseId(absl::string_view s) {
  // PRM-YYYY-NNNNNN (six or more digits).
  if (s.size() < 15 || s.size() > 24 || !absl::StartsWith(s, "PRM-") ||
      s[8] != '-') {
    return false;
  }
  for (size_t i = 4; i < s.size(); ++i) {
    if (i == 8) continue;
    if (!absl::ascii_isdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

absl::Status InvalidArgument(const std::vector<FieldViolation>& violations) {
  if (violations.empty()) return absl::OkStatus();
  google::rpc::BadRequest detail;
  std::vector<std::string> parts;
  for (const FieldViolation& v : violations) {
    auto* fv = detail.add_field_violations();
    fv->set_field(v.field);
    fv->set_description(v.description);
    parts.push_back(absl::StrCat(v.field, ": ", v.description));
  }
  absl::Status status = absl::InvalidArgumentError(absl::StrCat(
      violations.size() == 1 ? "1 invalid field: " : "",
      violations.size() == 1 ? ""
                             : absl::StrCat(violations.size(), " invalid fields: "),
      absl::StrJoin(parts, "; ")));
  status.SetPayload(kBadRequestTypeUrl, absl::Cord(detail.SerializeAsString()));
  return status;
}

std::vector<FieldViolation> ViolationsOf(const absl::Status& status) {
  std::vector<FieldViolation> out;
  auto payload = status.GetPayload(kBadRequestTypeUrl);
  google::rpc::BadRequest detail;
  if (!payload.has_value() || !detail.ParseFromString(std::string(*payload))) {
    return out;
  }
  for (const auto& fv : detail.field_violations()) {
    out.push_back({fv.field(), fv.description()});
  }
  return out;
}

std::vector<FieldViolation> ValidateApplication(const v1::Application& app,
                                                const std::string& path) {
  std::vector<FieldViolation> v;
  Checker c(&v);
  if (app.goods_size() == 0) {
    c.Add(path + ".goods", "at least one goods line is required");
  } else if (app.goods_size() > Limits::kMaxGoodsLines) {
    c.Add(path + ".goods", absl::StrCat("at most ", Limits::kMaxGoodsLines,
                                        " goods lines (got ", app.goods_size(),
                                        ")"));
  }
  for (int i = 0; i < app.goods_size() && i < Limits::kMaxGoodsLines; ++i) {
    const v1::GoodsLine& g = app.goods(i);
    const std::string p = absl::StrCat(path, ".goods[", i, "]");
    c.Text(p + ".description", g.description(), true, Limits::kMaxNameLength);
    c.Text(p + ".control_list_entry", g.control_list_entry(), true,
           Limits::kMaxCodeLength);
    for (char ch : g.control_list_entry()) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(ch)) && ch != '.' &&
          ch != '-' && ch != '/') {
        c.Add(p + ".control_list_entry",
              "only letters, digits, '.', '-' and '/' (e.g. \"1C003\")");
        break;
      }
    }
    int digits = 0;
    bool hs_ok = !g.hs_code().empty();
    for (char ch : g.hs_code()) {
      if (absl::ascii_isdigit(static_cast<unsigned char>(ch))) {
        ++digits;
      } else if (ch != '.') {
        hs_ok = false;
      }
    }
    if (g.hs_code().empty()) {
      c.Add(p + ".hs_code", "required: a Harmonized System code such as \"8505.11\"");
    } else if (!hs_ok || digits < 6 || digits > 10) {
      c.Add(p + ".hs_code", "6 to 10 digits, dots allowed (e.g. \"8505.11\")");
    }
    if (!g.has_quantity()) {
      c.Add(p + ".quantity", "required");
    } else {
      double q = g.quantity().value();
      if (!std::isfinite(q) || q <= 0) {
        c.Add(p + ".quantity.value", "must be greater than zero");
      }
      c.Text(p + ".quantity.unit", g.quantity().unit(), true,
             Limits::kMaxCodeLength);
    }
    if (!g.has_value()) {
      c.Add(p + ".value", "required");
    } else {
      const v1::Money& m = g.value();
      if (!IsCurrencyCode(m.currency_code())) {
        c.Add(p + ".value.currency_code",
              absl::StrCat("\"", Quote(m.currency_code(), 8),
                           "\" is not an ISO 4217 currency code such as \"EUR\""));
      }
      if (m.units() < 0 || m.nanos() < 0 || m.nanos() > 999999999) {
        c.Add(p + ".value", "must not be negative; nanos in 0..999999999");
      } else if (m.units() == 0 && m.nanos() == 0) {
        c.Add(p + ".value", "must be greater than zero");
      }
    }
  }
  if (!app.has_end_user()) {
    c.Add(path + ".end_user", "required");
  } else {
    c.Party(path + ".end_user", app.end_user());
  }
  if (app.has_consignee()) c.Party(path + ".consignee", app.consignee());
  c.Country(path + ".destination_country", app.destination_country());
  c.Text(path + ".end_use_statement", app.end_use_statement(), true,
         Limits::kMaxTextLength, true);
  if (app.requested_validity_months() < Limits::kMinValidityMonths ||
      app.requested_validity_months() > Limits::kMaxValidityMonths) {
    c.Add(path + ".requested_validity_months",
          absl::StrCat("between ", Limits::kMinValidityMonths, " and ",
                       Limits::kMaxValidityMonths, " months"));
  }
  return v;
}

std::vector<FieldViolation> Validate(const v1::SubmitCaseRequest& r) {
  std::vector<FieldViolation> v;
  Checker(&v).RequestId(r.request_id());
  if (!r.has_application()) {
    v.push_back({"application", "required"});
  } else {
    auto app = ValidateApplication(r.application(), "application");
    v.insert(v.end(), app.begin(), app.end());
  }
  return v;
}

std::vector<FieldViolation> Validate(const v1::ReviewCaseRequest& r) {
  std::vector<FieldViolation> v;
  Checker c(&v);
  c.RequestId(r.request_id());
  c.CaseRef(r.case_id(), r.expected_version());
  if (r.recommendation() != v1::RECOMMENDATION_APPROVE &&
      r.recommendation() != v1::RECOMMENDATION_REJECT) {
    c.Add("recommendation", "required: approve or reject");
  }
  c.Text("findings", r.findings(), true, Limits::kMaxTextLength, true);
  return v;
}

std::vector<FieldViolation> Validate(const v1::ApproveCaseRequest& r,
                                     absl::Time now) {
  std::vector<FieldViolation> v;
  Checker c(&v);
  c.RequestId(r.request_id());
  c.CaseRef(r.case_id(), r.expected_version());
  // google.protobuf.Timestamp's range: 0001-01-01 to 9999-12-31 UTC.
  auto in_range = [](const google::protobuf::Timestamp& t) {
    return t.seconds() >= -62135596800 && t.seconds() <= 253402300799 &&
           t.nanos() >= 0 && t.nanos() <= 999999999;
  };
  absl::Time from = r.has_valid_from() ? FromProtoTime(r.valid_from()) : now;
  if (r.has_valid_from() && !in_range(r.valid_from())) {
    c.Add("valid_from", "not a valid timestamp (years 1 to 9999)");
  }
  if (!r.has_valid_until()) {
    c.Add("valid_until", "required: the end of the licence's validity");
  } else if (!in_range(r.valid_until())) {
    c.Add("valid_until", "not a valid timestamp (years 1 to 9999)");
  } else {
    absl::Time until = FromProtoTime(r.valid_until());
    if (until <= from) {
      c.Add("valid_until", "must be after valid_from");
    } else if (until <= now) {
      c.Add("valid_until", "must be in the future");
    } else if (until > MonthsLater(from, Limits::kMaxValidityMonths)) {
      c.Add("valid_until", absl::StrCat("at most ", Limits::kMaxValidityMonths,
                                        " months after valid_from"));
    }
  }
  c.Text("conditions", r.conditions(), false, Limits::kMaxTextLength, true);
  return v;
}

std::vector<FieldViolation> Validate(const v1::RejectCaseRequest& r) {
  return ValidateReason(r, true);
}
std::vector<FieldViolation> Validate(const v1::SuspendCaseRequest& r) {
  return ValidateReason(r, true);
}
std::vector<FieldViolation> Validate(const v1::ResumeCaseRequest& r) {
  return ValidateReason(r, true);
}
std::vector<FieldViolation> Validate(const v1::RevokeCaseRequest& r) {
  return ValidateReason(r, true);
}
std::vector<FieldViolation> Validate(const v1::WithdrawCaseRequest& r) {
  return ValidateReason(r, false);
}

std::vector<FieldViolation> Validate(const v1::ListCasesRequest& r) {
  std::vector<FieldViolation> v;
  Checker c(&v);
  if (!v1::CaseState_IsValid(r.state())) c.Add("state", "unknown state");
  if (!r.organisation().empty()) {
    c.Text("organisation", r.organisation(), false, Limits::kMaxCodeLength);
  }
  if (!r.destination_country().empty()) {
    c.Country("destination_country", r.destination_country());
  }
  if (r.page_size() < 0 || r.page_size() > Limits::kMaxPageSize) {
    c.Add("page_size", absl::StrCat("between 0 (default ", Limits::kDefaultPageSize,
                                    ") and ", Limits::kMaxPageSize));
  }
  if (r.page_token().size() > 256) c.Add("page_token", "not a page token");
  return v;
}

}  // namespace permit::core
