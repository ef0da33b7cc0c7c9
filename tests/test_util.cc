// Shared test helpers; see test_util.h.
#include "tests/test_util.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace permit::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
      "/permit-test-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) abort();
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

v1::Application ValidApplication() {
  v1::Application app;
  v1::GoodsLine* g = app.add_goods();
  g->set_description("NdFeB sintered permanent magnets, grade N52");
  g->set_control_list_entry("1C003");
  g->set_hs_code("8505.11");
  g->mutable_quantity()->set_value(1200);
  g->mutable_quantity()->set_unit("kg");
  g->mutable_value()->set_currency_code("EUR");
  g->mutable_value()->set_units(186000);
  v1::Party* eu = app.mutable_end_user();
  eu->set_name("Kanto Motor Works K.K.");
  eu->set_address("2-1 Shibaura, Minato-ku, Tokyo");
  eu->set_country("JP");
  app.set_destination_country("JP");
  app.set_end_use_statement("Traction motors for electric buses.");
  app.set_requested_validity_months(12);
  return app;
}

v1::Actor Exporter(const std::string& id, const std::string& org) {
  v1::Actor a;
  a.set_principal_id(id);
  a.set_role(v1::ROLE_EXPORTER);
  a.set_organisation(org);
  return a;
}

v1::Actor Reviewer(const std::string& id) {
  v1::Actor a;
  a.set_principal_id(id);
  a.set_role(v1::ROLE_REVIEWER);
  return a;
}

v1::Actor Auditor(const std::string& id) {
  v1::Actor a;
  a.set_principal_id(id);
  a.set_role(v1::ROLE_AUDITOR);
  return a;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    abort();
  }
  close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace permit::testing
