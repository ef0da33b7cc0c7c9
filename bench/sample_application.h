// The application both benchmarks send and time: the one in
// examples/magnets-to-japan.json (two goods lines, a consignee), so their
// figures are for the same message size (423 bytes as a SubmitCaseRequest).
#ifndef PERMIT_BENCH_SAMPLE_APPLICATION_H_
#define PERMIT_BENCH_SAMPLE_APPLICATION_H_

#include <cstdint>

#include "permit/v1/resources.pb.h"

namespace permit::bench {

inline permit::v1::Application MagnetsToJapan() {
  permit::v1::Application app;
  auto line = [&](const char* description, double kg, int64_t eur) {
    permit::v1::GoodsLine* g = app.add_goods();
    g->set_description(description);
    g->set_control_list_entry("1C003");
    g->set_hs_code("8505.11");
    g->mutable_quantity()->set_value(kg);
    g->mutable_quantity()->set_unit("kg");
    g->mutable_value()->set_currency_code("EUR");
    g->mutable_value()->set_units(eur);
  };
  line("NdFeB sintered permanent magnets, grade N52", 1200, 186000);
  line("Dysprosium-doped NdFeB magnet blocks", 300, 61500);
  permit::v1::Party* eu = app.mutable_end_user();
  eu->set_name("Kanto Motor Works K.K.");
  eu->set_address("2-1 Shibaura, Minato-ku, Tokyo 108-0023");
  eu->set_country("JP");
  permit::v1::Party* co = app.mutable_consignee();
  co->set_name("Yokohama Logistics Co., Ltd.");
  co->set_address("5-3 Daikoku-futo, Tsurumi-ku, Yokohama");
  co->set_country("JP");
  app.set_destination_country("JP");
  app.set_end_use_statement(
      "Traction motors for battery-electric city buses; no military or nuclear end use.");
  app.set_requested_validity_months(12);
  return app;
}

}  // namespace permit::bench

#endif  // PERMIT_BENCH_SAMPLE_APPLICATION_H_
