// Tests core/validation.h: each request's field rules, that every violation
// names the bad field by its exact path and that all are reported at once,
// the INVALID_ARGUMENT status with its google.rpc.BadRequest payload, and
// the country, currency and case-id shape checks.
#include "core/validation.h"

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "permit/v1/case_service.pb.h"
#include "tests/test_util.h"

namespace permit::testing {
namespace {

using ::permit::core::FieldViolation;
using ::permit::core::InvalidArgument;
using ::permit::core::IsCaseId;
using ::permit::core::IsCountryCode;
using ::permit::core::IsCurrencyCode;
using ::permit::core::Validate;
using ::permit::core::ViolationsOf;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr char kCaseId[] = "PRM-2026-000042";

// Matches a FieldViolation on `path`.
auto OnField(const std::string& path) {
  return Field(&FieldViolation::field, path);
}

std::vector<std::string> Fields(const std::vector<FieldViolation>& v) {
  std::vector<std::string> out;
  for (const FieldViolation& fv : v) out.push_back(fv.field);
  return out;
}

v1::SubmitCaseRequest ValidSubmit() {
  v1::SubmitCaseRequest r;
  r.set_request_id("req-0001");
  *r.mutable_application() = ValidApplication();
  return r;
}

// ---------------------------------------------------------------------------
// SubmitCaseRequest.

TEST(ValidateSubmitTest, ValidRequestPasses) {
  EXPECT_THAT(Validate(ValidSubmit()), IsEmpty());
}

TEST(ValidateSubmitTest, ValidVariantsPass) {
  struct Row {
    std::string name;
    std::function<void(v1::SubmitCaseRequest&)> mutate;
  };
  const std::vector<Row> rows = {
      {"two goods lines",
       [](auto& r) {
         *r.mutable_application()->add_goods() = r.application().goods(0);
       }},
      {"100 goods lines",
       [](auto& r) {
         for (int i = 1; i < 100; ++i) {
           *r.mutable_application()->add_goods() = r.application().goods(0);
         }
       }},
      {"validity 1 month",
       [](auto& r) {
         r.mutable_application()->set_requested_validity_months(1);
       }},
      {"validity 60 months",
       [](auto& r) {
         r.mutable_application()->set_requested_validity_months(60);
       }},
      {"description of exactly 200 bytes",
       [](auto& r) {
         r.mutable_application()->mutable_goods(0)->set_description(
             std::string(200, 'd'));
       }},
      {"request_id of exactly 128 characters",
       [](auto& r) { r.set_request_id(std::string(128, 'r')); }},
      {"multi-line address",
       [](auto& r) {
         r.mutable_application()->mutable_end_user()->set_address(
             "2-1 Shibaura\r\nMinato-ku\tTokyo");
       }},
      {"hs code of ten digits",
       [](auto& r) {
         r.mutable_application()->mutable_goods(0)->set_hs_code("8505.11.0000");
       }},
      {"value in nanos only",
       [](auto& r) {
         auto* m = r.mutable_application()->mutable_goods(0)->mutable_value();
         m->set_units(0);
         m->set_nanos(500000000);
       }},
      {"valid consignee",
       [](auto& r) {
         v1::Party* p = r.mutable_application()->mutable_consignee();
         p->set_name("Tokyo Freight Forwarders");
         p->set_address("Port of Tokyo");
         p->set_country("JP");
       }},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    v1::SubmitCaseRequest r = ValidSubmit();
    row.mutate(r);
    EXPECT_THAT(Fields(Validate(r)), IsEmpty());
  }
}

TEST(ValidateSubmitTest, EachMistakeIsReportedOnItsExactFieldPath) {
  struct Row {
    std::string name;
    std::function<void(v1::SubmitCaseRequest&)> mutate;
    std::string field;
  };
  auto goods = [](v1::SubmitCaseRequest& r, int i) {
    return r.mutable_application()->mutable_goods(i);
  };
  auto second_line = [](v1::SubmitCaseRequest& r) {
    *r.mutable_application()->add_goods() = r.application().goods(0);
    return r.mutable_application()->mutable_goods(1);
  };
  const std::vector<Row> rows = {
      // request_id
      {"missing request_id", [](auto& r) { r.clear_request_id(); },
       "request_id"},
      {"request_id with a space", [](auto& r) { r.set_request_id("req 1"); },
       "request_id"},
      {"request_id too long",
       [](auto& r) { r.set_request_id(std::string(129, 'r')); }, "request_id"},
      {"request_id not ASCII", [](auto& r) { r.set_request_id("r\xc3\xa9q"); },
       "request_id"},
      // application
      {"missing application", [](auto& r) { r.clear_application(); },
       "application"},
      {"no goods", [](auto& r) { r.mutable_application()->clear_goods(); },
       "application.goods"},
      {"101 goods lines",
       [](auto& r) {
         for (int i = 1; i < 101; ++i) {
           *r.mutable_application()->add_goods() = r.application().goods(0);
         }
       },
       "application.goods"},
      // goods lines
      {"zero quantity on the second line",
       [&](auto& r) { second_line(r)->mutable_quantity()->set_value(0); },
       "application.goods[1].quantity.value"},
      {"negative quantity",
       [&](auto& r) { goods(r, 0)->mutable_quantity()->set_value(-1); },
       "application.goods[0].quantity.value"},
      {"NaN quantity",
       [&](auto& r) {
         goods(r, 0)->mutable_quantity()->set_value(
             std::numeric_limits<double>::quiet_NaN());
       },
       "application.goods[0].quantity.value"},
      {"infinite quantity",
       [&](auto& r) {
         goods(r, 0)->mutable_quantity()->set_value(
             std::numeric_limits<double>::infinity());
       },
       "application.goods[0].quantity.value"},
      {"missing quantity", [&](auto& r) { goods(r, 0)->clear_quantity(); },
       "application.goods[0].quantity"},
      {"missing quantity unit",
       [&](auto& r) { goods(r, 0)->mutable_quantity()->clear_unit(); },
       "application.goods[0].quantity.unit"},
      {"missing hs code", [&](auto& r) { goods(r, 0)->clear_hs_code(); },
       "application.goods[0].hs_code"},
      {"hs code with a letter",
       [&](auto& r) { goods(r, 0)->set_hs_code("85A5.11"); },
       "application.goods[0].hs_code"},
      {"hs code of five digits",
       [&](auto& r) { goods(r, 0)->set_hs_code("8505.1"); },
       "application.goods[0].hs_code"},
      {"hs code of eleven digits",
       [&](auto& r) { goods(r, 0)->set_hs_code("8505.11.00001"); },
       "application.goods[0].hs_code"},
      {"hs code on the second line",
       [&](auto& r) { second_line(r)->set_hs_code("x"); },
       "application.goods[1].hs_code"},
      {"unknown currency",
       [&](auto& r) { goods(r, 0)->mutable_value()->set_currency_code("XYZ"); },
       "application.goods[0].value.currency_code"},
      {"lower-case currency",
       [&](auto& r) { goods(r, 0)->mutable_value()->set_currency_code("eur"); },
       "application.goods[0].value.currency_code"},
      {"zero value",
       [&](auto& r) { goods(r, 0)->mutable_value()->set_units(0); },
       "application.goods[0].value"},
      {"negative value",
       [&](auto& r) { goods(r, 0)->mutable_value()->set_units(-5); },
       "application.goods[0].value"},
      {"nanos out of range",
       [&](auto& r) { goods(r, 0)->mutable_value()->set_nanos(1000000000); },
       "application.goods[0].value"},
      {"missing value", [&](auto& r) { goods(r, 0)->clear_value(); },
       "application.goods[0].value"},
      {"missing description",
       [&](auto& r) { goods(r, 0)->clear_description(); },
       "application.goods[0].description"},
      {"description too long",
       [&](auto& r) { goods(r, 0)->set_description(std::string(201, 'd')); },
       "application.goods[0].description"},
      {"control character in the single-line description",
       [&](auto& r) { goods(r, 0)->set_description("magnets\nN52"); },
       "application.goods[0].description"},
      {"DEL character in the description",
       [&](auto& r) { goods(r, 0)->set_description("magnets\x7f"); },
       "application.goods[0].description"},
      {"whitespace-only description",
       [&](auto& r) { goods(r, 0)->set_description("   "); },
       "application.goods[0].description"},
      {"control list entry with a space",
       [&](auto& r) { goods(r, 0)->set_control_list_entry("1C 003"); },
       "application.goods[0].control_list_entry"},
      {"control list entry too long",
       [&](auto& r) {
         goods(r, 0)->set_control_list_entry(std::string(33, 'A'));
       },
       "application.goods[0].control_list_entry"},
      // parties
      {"missing end user",
       [](auto& r) { r.mutable_application()->clear_end_user(); },
       "application.end_user"},
      {"unknown end-user country",
       [](auto& r) {
         r.mutable_application()->mutable_end_user()->set_country("XX");
       },
       "application.end_user.country"},
      {"lower-case end-user country",
       [](auto& r) {
         r.mutable_application()->mutable_end_user()->set_country("jp");
       },
       "application.end_user.country"},
      {"missing end-user country",
       [](auto& r) {
         r.mutable_application()->mutable_end_user()->clear_country();
       },
       "application.end_user.country"},
      {"tab in the single-line end-user name",
       [](auto& r) {
         r.mutable_application()->mutable_end_user()->set_name("Kanto\tMotor");
       },
       "application.end_user.name"},
      {"whitespace-only end-user name",
       [](auto& r) {
         r.mutable_application()->mutable_end_user()->set_name("    ");
       },
       "application.end_user.name"},
      {"end-user address too long",
       [](auto& r) {
         r.mutable_application()->mutable_end_user()->set_address(
             std::string(501, 'a'));
       },
       "application.end_user.address"},
      {"consignee without a name",
       [](auto& r) {
         v1::Party* p = r.mutable_application()->mutable_consignee();
         p->set_address("Port of Tokyo");
         p->set_country("JP");
       },
       "application.consignee.name"},
      // the rest of the application
      {"missing destination country",
       [](auto& r) { r.mutable_application()->clear_destination_country(); },
       "application.destination_country"},
      {"unknown destination country",
       [](auto& r) { r.mutable_application()->set_destination_country("ZZ"); },
       "application.destination_country"},
      {"missing end-use statement",
       [](auto& r) { r.mutable_application()->clear_end_use_statement(); },
       "application.end_use_statement"},
      {"end-use statement too long",
       [](auto& r) {
         r.mutable_application()->set_end_use_statement(std::string(4001, 's'));
       },
       "application.end_use_statement"},
      {"validity of zero months",
       [](auto& r) {
         r.mutable_application()->set_requested_validity_months(0);
       },
       "application.requested_validity_months"},
      {"validity of 61 months",
       [](auto& r) {
         r.mutable_application()->set_requested_validity_months(61);
       },
       "application.requested_validity_months"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    v1::SubmitCaseRequest r = ValidSubmit();
    row.mutate(r);
    const std::vector<FieldViolation> got = Validate(r);
    EXPECT_THAT(Fields(got), ElementsAre(row.field));
    for (const FieldViolation& fv : got) {
      EXPECT_FALSE(fv.description.empty()) << fv.field;
    }
  }
}

TEST(ValidateSubmitTest, SeveralMistakesAreAllReportedAtOnce) {
  v1::SubmitCaseRequest r = ValidSubmit();
  r.clear_request_id();
  v1::Application* app = r.mutable_application();
  *app->add_goods() = app->goods(0);
  app->mutable_goods(0)->set_hs_code("85");
  app->mutable_goods(1)->mutable_quantity()->set_value(0);
  app->mutable_goods(1)->mutable_value()->set_currency_code("EURO");
  app->mutable_end_user()->set_country("XX");
  app->set_destination_country("");
  app->set_requested_validity_months(0);

  EXPECT_THAT(Fields(Validate(r)),
              UnorderedElementsAre("request_id", "application.goods[0].hs_code",
                                   "application.goods[1].quantity.value",
                                   "application.goods[1].value.currency_code",
                                   "application.end_user.country",
                                   "application.destination_country",
                                   "application.requested_validity_months"));
}

// ---------------------------------------------------------------------------
// InvalidArgument and ViolationsOf.

TEST(InvalidArgumentTest, NoViolationsIsOk) {
  EXPECT_THAT(InvalidArgument({}), IsOk());
}

TEST(InvalidArgumentTest, MessageNamesEveryFieldAndPayloadRoundTrips) {
  const std::vector<FieldViolation> violations = {
      {"request_id", "required"},
      {"application.goods[1].quantity.value", "must be greater than zero"},
      {"application.end_user.country", "\"XX\" is not a country code"},
  };
  const absl::Status status = InvalidArgument(violations);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument));
  for (const FieldViolation& v : violations) {
    EXPECT_THAT(status.message(), HasSubstr(v.field));
    EXPECT_THAT(status.message(), HasSubstr(v.description));
  }
  EXPECT_THAT(
      ViolationsOf(status),
      ElementsAre(
          AllOf(Field(&FieldViolation::field, "request_id"),
                Field(&FieldViolation::description, "required")),
          AllOf(
              Field(&FieldViolation::field,
                    "application.goods[1].quantity.value"),
              Field(&FieldViolation::description, "must be greater than zero")),
          AllOf(Field(&FieldViolation::field, "application.end_user.country"),
                Field(&FieldViolation::description,
                      "\"XX\" is not a country code"))));
}

TEST(InvalidArgumentTest, ViolationsOfValidationRoundTrip) {
  v1::SubmitCaseRequest r = ValidSubmit();
  r.mutable_application()->mutable_goods(0)->set_hs_code("bad");
  r.mutable_application()->set_destination_country("XX");
  const std::vector<FieldViolation> violations = Validate(r);
  ASSERT_EQ(violations.size(), 2u);
  const absl::Status status = InvalidArgument(violations);
  EXPECT_THAT(status.message(), HasSubstr("application.goods[0].hs_code"));
  EXPECT_THAT(status.message(), HasSubstr("application.destination_country"));
  const std::vector<FieldViolation> back = ViolationsOf(status);
  ASSERT_EQ(back.size(), violations.size());
  for (size_t i = 0; i < back.size(); ++i) {
    EXPECT_EQ(back[i].field, violations[i].field);
    EXPECT_EQ(back[i].description, violations[i].description);
  }
}

TEST(InvalidArgumentTest, StatusWithoutPayloadHasNoViolations) {
  EXPECT_THAT(ViolationsOf(absl::OkStatus()), IsEmpty());
  EXPECT_THAT(ViolationsOf(absl::InvalidArgumentError("plain")), IsEmpty());
}

// ---------------------------------------------------------------------------
// Case action requests.

// Fills the fields every case action request shares with valid values.
template <typename R>
R WithValidCaseRef() {
  R r;
  r.set_request_id("req-0002");
  r.set_case_id(kCaseId);
  r.set_expected_version(3);
  return r;
}

v1::ReviewCaseRequest ValidReview() {
  auto r = WithValidCaseRef<v1::ReviewCaseRequest>();
  r.set_recommendation(v1::RECOMMENDATION_APPROVE);
  r.set_findings("End user verified.\nNo diversion risk found.");
  return r;
}

TEST(ValidateReviewTest, ValidReviewPasses) {
  EXPECT_THAT(Validate(ValidReview()), IsEmpty());
  v1::ReviewCaseRequest reject = ValidReview();
  reject.set_recommendation(v1::RECOMMENDATION_REJECT);
  EXPECT_THAT(Validate(reject), IsEmpty());
}

TEST(ValidateReviewTest, RecommendationAndFindingsAreRequired) {
  v1::ReviewCaseRequest no_recommendation = ValidReview();
  no_recommendation.clear_recommendation();
  EXPECT_THAT(Validate(no_recommendation),
              ElementsAre(OnField("recommendation")));

  v1::ReviewCaseRequest no_findings = ValidReview();
  no_findings.clear_findings();
  EXPECT_THAT(Validate(no_findings), ElementsAre(OnField("findings")));

  v1::ReviewCaseRequest blank_findings = ValidReview();
  blank_findings.set_findings(" \n\t ");
  EXPECT_THAT(Validate(blank_findings), ElementsAre(OnField("findings")));
}

TEST(ValidateCaseRefTest, CaseIdAndExpectedVersionAreChecked) {
  struct Row {
    std::string name;
    std::string case_id;
    int64_t expected_version;
    std::vector<std::string> fields;
  };
  const std::vector<Row> rows = {
      {"valid", kCaseId, 1, {}},
      {"missing case id", "", 3, {"case_id"}},
      {"malformed case id", "PRM-26-42", 3, {"case_id"}},
      {"lower-case case id", "prm-2026-000042", 3, {"case_id"}},
      {"zero expected version", kCaseId, 0, {"expected_version"}},
      {"negative expected version", kCaseId, -1, {"expected_version"}},
      {"both wrong", "case-42", 0, {"case_id", "expected_version"}},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    v1::ReviewCaseRequest r = ValidReview();
    r.set_case_id(row.case_id);
    r.set_expected_version(row.expected_version);
    EXPECT_THAT(Fields(Validate(r)),
                ::testing::UnorderedElementsAreArray(row.fields));
  }
}

TEST(ValidateCaseRefTest, RequestIdIsRequiredOnActions) {
  v1::ReviewCaseRequest r = ValidReview();
  r.clear_request_id();
  EXPECT_THAT(Validate(r), ElementsAre(OnField("request_id")));
}

// Approve: the validity period, judged against a fixed server time.
class ValidateApproveTest : public ::testing::Test {
 protected:
  static google::protobuf::Timestamp Ts(absl::Time t) {
    google::protobuf::Timestamp ts;
    ts.set_seconds(absl::ToUnixSeconds(t));
    return ts;
  }

  v1::ApproveCaseRequest Approve(absl::Time from, absl::Time until) const {
    auto r = WithValidCaseRef<v1::ApproveCaseRequest>();
    *r.mutable_valid_from() = Ts(from);
    *r.mutable_valid_until() = Ts(until);
    return r;
  }

  const absl::Time now_ = absl::FromCivil(
      absl::CivilSecond(2026, 3, 1, 12, 0, 0), absl::UTCTimeZone());
};

TEST_F(ValidateApproveTest, ValidPeriodPasses) {
  EXPECT_THAT(Validate(Approve(now_, now_ + absl::Hours(24 * 365)), now_),
              IsEmpty());
  // Without valid_from the period starts now.
  auto r = WithValidCaseRef<v1::ApproveCaseRequest>();
  *r.mutable_valid_until() = Ts(now_ + absl::Hours(24 * 30));
  r.set_conditions("No re-export without consent.");
  EXPECT_THAT(Validate(r, now_), IsEmpty());
  // Five years is within 60 months.
  EXPECT_THAT(Validate(Approve(now_, now_ + absl::Hours(24 * 365 * 5)), now_),
              IsEmpty());
}

TEST_F(ValidateApproveTest, ValidUntilIsRequired) {
  auto r = WithValidCaseRef<v1::ApproveCaseRequest>();
  *r.mutable_valid_from() = Ts(now_);
  EXPECT_THAT(Validate(r, now_), ElementsAre(OnField("valid_until")));
}

TEST_F(ValidateApproveTest, ValidUntilMustBeAfterValidFrom) {
  EXPECT_THAT(
      Validate(Approve(now_ + absl::Hours(48), now_ + absl::Hours(24)), now_),
      ElementsAre(OnField("valid_until")));
  EXPECT_THAT(
      Validate(Approve(now_ + absl::Hours(24), now_ + absl::Hours(24)), now_),
      ElementsAre(OnField("valid_until")));
}

TEST_F(ValidateApproveTest, ValidUntilMustBeInTheFuture) {
  EXPECT_THAT(
      Validate(Approve(now_ - absl::Hours(24 * 60), now_ - absl::Hours(24)),
               now_),
      ElementsAre(OnField("valid_until")));
  auto r = WithValidCaseRef<v1::ApproveCaseRequest>();
  *r.mutable_valid_until() = Ts(now_ - absl::Hours(1));
  EXPECT_THAT(Validate(r, now_), ElementsAre(OnField("valid_until")));
}

TEST_F(ValidateApproveTest, ValidityIsAtMostSixtyMonths) {
  EXPECT_THAT(Validate(Approve(now_, now_ + absl::Hours(24 * 31 * 61)), now_),
              ElementsAre(OnField("valid_until")));
  EXPECT_THAT(Validate(Approve(now_, now_ + absl::Hours(24 * 365 * 10)), now_),
              ElementsAre(OnField("valid_until")));
}

TEST_F(ValidateApproveTest, ConditionsAreOptionalButLimited) {
  v1::ApproveCaseRequest r = Approve(now_, now_ + absl::Hours(24 * 365));
  r.set_conditions(std::string(4001, 'c'));
  EXPECT_THAT(Validate(r, now_), ElementsAre(OnField("conditions")));
}

// Reject, suspend, resume, revoke and withdraw carry a reason.
template <typename R>
std::vector<std::string> ReasonFields(const std::string& reason) {
  auto r = WithValidCaseRef<R>();
  r.set_reason(reason);
  return Fields(Validate(r));
}

TEST(ValidateReasonTest, RejectSuspendResumeAndRevokeNeedAReason) {
  struct Row {
    std::string name;
    std::function<std::vector<std::string>(const std::string&)> fields;
  };
  const std::vector<Row> rows = {
      {"reject", ReasonFields<v1::RejectCaseRequest>},
      {"suspend", ReasonFields<v1::SuspendCaseRequest>},
      {"resume", ReasonFields<v1::ResumeCaseRequest>},
      {"revoke", ReasonFields<v1::RevokeCaseRequest>},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    EXPECT_THAT(row.fields("End user on a watch list.\nSee findings."),
                IsEmpty());
    EXPECT_THAT(row.fields(""), ElementsAre("reason"));
    EXPECT_THAT(row.fields("   "), ElementsAre("reason"));
    EXPECT_THAT(row.fields(std::string(4001, 'r')), ElementsAre("reason"));
    EXPECT_THAT(row.fields(std::string("bell\a")), ElementsAre("reason"));
  }
}

TEST(ValidateReasonTest, WithdrawNeedsNoReason) {
  EXPECT_THAT(ReasonFields<v1::WithdrawCaseRequest>(""), IsEmpty());
  EXPECT_THAT(ReasonFields<v1::WithdrawCaseRequest>("No longer needed."),
              IsEmpty());
  EXPECT_THAT(ReasonFields<v1::WithdrawCaseRequest>(std::string(4001, 'r')),
              ElementsAre("reason"));
}

// ---------------------------------------------------------------------------
// ListCasesRequest.

TEST(ValidateListTest, PageSizeIsBetweenZeroAndFiveHundred) {
  const std::vector<std::pair<int, bool>> rows = {
      {0, true}, {1, true}, {50, true}, {500, true}, {501, false}, {-1, false},
  };
  for (const auto& [page_size, valid] : rows) {
    SCOPED_TRACE(page_size);
    v1::ListCasesRequest r;
    r.set_page_size(page_size);
    if (valid) {
      EXPECT_THAT(Validate(r), IsEmpty());
    } else {
      EXPECT_THAT(Validate(r), ElementsAre(OnField("page_size")));
    }
  }
}

TEST(ValidateListTest, FiltersAreChecked) {
  v1::ListCasesRequest ok;
  ok.set_state(v1::CASE_STATE_APPROVED);
  ok.set_organisation("acme");
  ok.set_destination_country("JP");
  EXPECT_THAT(Validate(ok), IsEmpty());

  v1::ListCasesRequest bad_country;
  bad_country.set_destination_country("Japan");
  EXPECT_THAT(Validate(bad_country),
              ElementsAre(OnField("destination_country")));

  v1::ListCasesRequest bad_token;
  bad_token.set_page_token(std::string(257, 't'));
  EXPECT_THAT(Validate(bad_token), ElementsAre(OnField("page_token")));
}

// ---------------------------------------------------------------------------
// Shape checks.

TEST(IsCountryCodeTest, AcceptsOnlyAssignedUpperCaseAlpha2Codes) {
  const std::vector<std::pair<std::string, bool>> rows = {
      {"JP", true}, {"DE", true},   {"US", true},  {"ZW", true},
      {"AD", true}, {"XX", false},  {"jp", false}, {"Jp", false},
      {"J", false}, {"JPN", false}, {"", false},   {"J1", false},
  };
  for (const auto& [code, want] : rows) {
    SCOPED_TRACE(code);
    EXPECT_EQ(IsCountryCode(code), want);
  }
}

TEST(IsCurrencyCodeTest, AcceptsOnlyActiveUpperCaseCurrencyCodes) {
  const std::vector<std::pair<std::string, bool>> rows = {
      {"EUR", true},  {"JPY", true},  {"USD", true}, {"AED", true},
      {"ZWG", true},  {"eur", false}, {"EU", false}, {"EURO", false},
      {"XYZ", false}, {"XXX", false}, {"", false},   {"E1R", false},
  };
  for (const auto& [code, want] : rows) {
    SCOPED_TRACE(code);
    EXPECT_EQ(IsCurrencyCode(code), want);
  }
}

TEST(IsCaseIdTest, AcceptsPrmYearAndAtLeastSixDigits) {
  const std::vector<std::pair<std::string, bool>> rows = {
      {"PRM-2026-000042", true},  {"PRM-2026-000001", true},
      {"PRM-2030-1234567", true}, {"", false},
      {"PRM-2026-42", false},     {"PRM-2026-00042", false},
      {"prm-2026-000042", false}, {"PRM-26-000042", false},
      {"PRM_2026_000042", false}, {"XYZ-2026-000042", false},
      {"PRM-2026-00004A", false}, {"PRM-2026-000042 ", false},
      {"PRM-20A6-000042", false}, {"PRM-2026-0000000000000000", false},
  };
  for (const auto& [id, want] : rows) {
    SCOPED_TRACE(id);
    EXPECT_EQ(IsCaseId(id), want);
  }
}

}  // namespace
}  // namespace permit::testing
