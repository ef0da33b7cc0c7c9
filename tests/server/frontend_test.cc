// The front door of permitd, in-process on a free loopback port: TLS and
// mutual TLS with principals bound to client certificates, the
// per-principal rate limit and stream cap, dropping a log stream whose
// client stopped reading, and the record of refused calls (ListDenials).
#include <atomic>
#include <cstdio>
#include <fstream>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "permit/client.h"
#include "core/time_util.h"
#include "server/call_record.h"
#include "server/certs.h"
#include "server/server.h"
#include "storage/rocksdb_event_store.h"
#include "tests/server/forwarding_store.h"
#include "tests/server/test_client.h"
#include "tests/server/test_principals.h"
#include "tests/test_util.h"

namespace permit::server {
namespace {

using ::permit::testing::IsOk;
using ::permit::testing::StatusIs;
using ::permit::testing::TempDir;
using ::permit::testing::ValidApplication;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A CA, a server certificate for 127.0.0.1 and client certificates, made
// once for the whole file.
struct Pki {
  CertAndKey ca;
  CertAndKey server;
  CertAndKey rev1_client;   // CN=rev-1.example
  CertAndKey other_client;  // CN=intruder.example, same CA
  CertAndKey foreign_ca;
  CertAndKey foreign_client;  // CN=rev-1.example, another CA
};

const Pki& TestPki() {
  static const Pki* pki = [] {
    auto* p = new Pki;
    auto must = [](absl::StatusOr<CertAndKey> c) {
      EXPECT_THAT(c, IsOk());
      return c.ok() ? *std::move(c) : CertAndKey();
    };
    p->ca = must(NewCertificateAuthority("test CA", absl::Hours(1)));
    LeafSpec server;
    server.common_name = "localhost";
    server.dns_names = {"localhost"};
    server.ip_addresses = {"127.0.0.1"};
    p->server = must(IssueCertificate(p->ca, server));
    LeafSpec client;
    client.server = false;
    client.common_name = "rev-1.example";
    p->rev1_client = must(IssueCertificate(p->ca, client));
    p->foreign_ca = must(NewCertificateAuthority("foreign CA", absl::Hours(1)));
    p->foreign_client = must(IssueCertificate(p->foreign_ca, client));
    client.common_name = "intruder.example";
    p->other_client = must(IssueCertificate(p->ca, client));
    return p;
  }();
  return *pki;
}

// The test principals and the admin adm-1, rev-1 also bound to the certificate rev-1.example
// when `bind_rev1` is set.
PrincipalRegistry Principals(bool bind_rev1) {
  std::string json = "{\"principals\": [";
  const auto& list = testing::TestPrincipalList();
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& [id, role, org] = list[i];
    json += (i ? "," : "") + std::string("{\"id\":\"") + id + "\",\"role\":\"" +
            role + "\"" + (org.empty() ? "" : ",\"org\":\"" + org + "\"") +
            ",\"token_sha256\":\"" + TokenSha256Hex("token-" + id) + "\"" +
            (bind_rev1 && id == "rev-1" ? ",\"cert_subject\":\"rev-1.example\"" : "") +
            "}";
  }
  json += ",{\"id\":\"adm-1\",\"role\":\"admin\",\"token_sha256\":\"" +
          TokenSha256Hex("token-adm-1") + "\"}";
  absl::StatusOr<PrincipalRegistry> r = PrincipalRegistry::Parse(json + "]}");
  EXPECT_THAT(r, IsOk());
  return *std::move(r);
}

class FrontendTest : public ::testing::Test {
 protected:
  ServerOptions Options() const {
    ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.db_path = dir_.path() + "/db";
    o.principals = Principals(/*bind_rev1=*/false);
    o.shutdown_grace = absl::Seconds(1);
    return o;
  }

  void Start(ServerOptions options) {
    absl::StatusOr<std::unique_ptr<PermitServer>> s = PermitServer::Start(std::move(options));
    ASSERT_THAT(s, IsOk());
    server_ = *std::move(s);
  }

  // A client of the running server. `tls` options as given; plaintext when
  // `options.insecure`.
  std::unique_ptr<Client> Connect(const std::string& token, ClientOptions options) {
    return testing::ConnectToTestServer(server_->port(), token, options);
  }
  std::unique_ptr<Client> Plain(const std::string& who) {
    ClientOptions o;
    o.insecure = true;
    return Connect("token-" + who, o);
  }

  v1::SubmitCaseRequest NewSubmit() {
    v1::SubmitCaseRequest r;
    *r.mutable_application() = ValidApplication();
    return r;
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  TempDir dir_;
  std::unique_ptr<PermitServer> server_;
};

// --- TLS ---------------------------------------------------------------------

ServerOptions WithTls(ServerOptions o, bool client_ca) {
  o.tls_cert_pem = TestPki().server.cert_pem;
  o.tls_key_pem = TestPki().server.key_pem;
  if (client_ca) o.client_ca_pem = TestPki().ca.cert_pem;
  return o;
}

TEST_F(FrontendTest, TlsServesClientsThatTrustItsCaAndNoOneElse) {
  Start(WithTls(Options(), /*client_ca=*/false));
  EXPECT_TRUE(server_->tls());

  ClientOptions trusting;
  trusting.ca_pem = TestPki().ca.cert_pem;
  EXPECT_THAT(Connect("token-aud-1", trusting)->GetLogHead(), IsOk());

  // The system's roots do not include the test CA; a plaintext client does
  // not speak TLS; a client trusting another CA refuses the server.
  EXPECT_THAT(Connect("token-aud-1", ClientOptions())->GetLogHead(),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(Plain("aud-1")->GetLogHead(), StatusIs(absl::StatusCode::kUnavailable));
  ClientOptions foreign;
  foreign.ca_pem = TestPki().foreign_ca.cert_pem;
  EXPECT_THAT(Connect("token-aud-1", foreign)->GetLogHead(),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(FrontendTest, PrincipalBoundToACertificateNeedsBothTokenAndCertificate) {
  ServerOptions o = WithTls(Options(), /*client_ca=*/true);
  o.principals = Principals(/*bind_rev1=*/true);
  Start(std::move(o));
  auto with_cert = [&](const std::string& token, const CertAndKey* cert) {
    ClientOptions c;
    c.ca_pem = TestPki().ca.cert_pem;
    if (cert != nullptr) {
      c.cert_pem = cert->cert_pem;
      c.key_pem = cert->key_pem;
    }
    return Connect(token, c);
  };
  const Pki& pki = TestPki();
  // Token and the bound certificate: in.
  EXPECT_THAT(with_cert("token-rev-1", &pki.rev1_client)->GetLogHead(), IsOk());
  // The token alone, or with another (valid) certificate: out.
  EXPECT_THAT(with_cert("token-rev-1", nullptr)->GetLogHead(),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("must also present its client certificate")));
  EXPECT_THAT(with_cert("token-rev-1", &pki.other_client)->GetLogHead(),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("not the one bound to principal rev-1")));
  // The certificate alone does not name a principal.
  EXPECT_THAT(with_cert("", &pki.rev1_client)->GetLogHead(),
              StatusIs(absl::StatusCode::kUnauthenticated));
  // A certificate of the same name from another CA fails the handshake.
  EXPECT_THAT(with_cert("token-rev-1", &pki.foreign_client)->GetLogHead(),
              StatusIs(absl::StatusCode::kUnavailable));
  // Principals not bound to a certificate keep working with a token only.
  EXPECT_THAT(with_cert("token-aud-1", nullptr)->GetLogHead(), IsOk());
}

// Replaces `path` with `content` in one rename, as certbot or a Kubernetes
// Secret volume does.
void ReplaceFile(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".new";
  std::ofstream(tmp) << content;
  ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0);
}

TEST_F(FrontendTest, RenewedCertificateAndClientCaFilesAreServedWithoutARestart) {
  const Pki& pki = TestPki();
  const std::string cert = dir_.path() + "/tls.crt";
  const std::string key = dir_.path() + "/tls.key";
  const std::string ca = dir_.path() + "/client-ca.crt";
  ASSERT_NO_FATAL_FAILURE(ReplaceFile(cert, pki.server.cert_pem));
  ASSERT_NO_FATAL_FAILURE(ReplaceFile(key, pki.server.key_pem));
  ASSERT_NO_FATAL_FAILURE(ReplaceFile(ca, pki.ca.cert_pem));
  ServerOptions o = WithTls(Options(), /*client_ca=*/true);
  o.principals = Principals(/*bind_rev1=*/true);
  o.tls_cert_file = cert;
  o.tls_key_file = key;
  o.client_ca_file = ca;
  o.tls_refresh = absl::Seconds(1);
  o.tls_dir = dir_.path() + "/tls";
  // What the rereads found, in order.
  absl::Mutex mu;
  std::vector<absl::Status> heard;
  o.on_tls_reload = [&](const absl::Status& s) {
    absl::MutexLock lock(&mu);
    heard.push_back(s);
  };
  auto hear = [&](size_t n) {
    absl::MutexLock lock(&mu);
    auto enough = [&]() { return heard.size() >= n; };
    return mu.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
  };
  Start(std::move(o));

  // rev-1 with its token and its certificate, trusting `server_ca`.
  auto head = [&](const CertAndKey& server_ca, const CertAndKey& client) {
    ClientOptions c;
    c.ca_pem = server_ca.cert_pem;
    c.cert_pem = client.cert_pem;
    c.key_pem = client.key_pem;
    return Connect("token-rev-1", c)->GetLogHead().status();
  };
  // From the files as they were at start, with the binding checked.
  EXPECT_THAT(head(pki.ca, pki.rev1_client), IsOk());
  EXPECT_THAT(head(pki.ca, pki.other_client),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("not the one bound to principal rev-1")));
  EXPECT_THAT(head(pki.foreign_ca, pki.foreign_client),
              StatusIs(absl::StatusCode::kUnavailable));

  // The operator moves to another CA: a server certificate from it, and
  // client certificates from it. No restart.
  LeafSpec spec;
  spec.common_name = "localhost";
  spec.dns_names = {"localhost"};
  spec.ip_addresses = {"127.0.0.1"};
  absl::StatusOr<CertAndKey> renewed = IssueCertificate(pki.foreign_ca, spec);
  ASSERT_THAT(renewed, IsOk());
  // Halfway (the new certificate, the old key): not a pair, so it is
  // refused and the old one is served on.
  ASSERT_NO_FATAL_FAILURE(ReplaceFile(cert, renewed->cert_pem));
  ASSERT_TRUE(hear(1));
  {
    absl::MutexLock lock(&mu);
    EXPECT_THAT(heard[0], StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("not the private key of")));
  }
  absl::SleepFor(absl::Milliseconds(1200));  // past gRPC's reread of the copies
  EXPECT_THAT(head(pki.ca, pki.rev1_client), IsOk());
  ASSERT_NO_FATAL_FAILURE(ReplaceFile(key, renewed->key_pem));
  ASSERT_NO_FATAL_FAILURE(ReplaceFile(cert, renewed->cert_pem));
  ASSERT_NO_FATAL_FAILURE(ReplaceFile(ca, pki.foreign_ca.cert_pem));
  ASSERT_TRUE(hear(2));
  absl::Status now;
  for (int i = 0; i < 100; ++i) {
    now = head(pki.foreign_ca, pki.foreign_client);
    if (now.ok()) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_THAT(now, IsOk());
  // The old CA's server certificate and client certificates are gone.
  EXPECT_THAT(head(pki.ca, pki.rev1_client), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(head(pki.foreign_ca, pki.rev1_client),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(FrontendTest, CertificateBindingsWithoutClientCaAreRefused) {
  ServerOptions o = WithTls(Options(), /*client_ca=*/false);
  o.principals = Principals(/*bind_rev1=*/true);
  EXPECT_THAT(PermitServer::Start(std::move(o)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("--client_ca")));

  // Nor can a reload bring them in: the old principals stay.
  Start(WithTls(Options(), /*client_ca=*/false));
  EXPECT_THAT(server_->ReplacePrincipals(Principals(/*bind_rev1=*/true)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ClientOptions c;
  c.ca_pem = TestPki().ca.cert_pem;
  EXPECT_THAT(Connect("token-rev-1", c)->GetLogHead(), IsOk());
}

TEST_F(FrontendTest, HalfOrMismatchedTlsConfigurationIsRefused) {
  ServerOptions o = Options();
  o.tls_cert_pem = TestPki().server.cert_pem;
  EXPECT_THAT(PermitServer::Start(o), StatusIs(absl::StatusCode::kInvalidArgument));
  o.tls_key_pem = TestPki().rev1_client.key_pem;  // another certificate's key
  EXPECT_THAT(PermitServer::Start(o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("not the private key of the certificate")));
  ServerOptions plain_with_ca = Options();
  plain_with_ca.client_ca_pem = TestPki().ca.cert_pem;
  EXPECT_THAT(PermitServer::Start(plain_with_ca),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs TLS")));
}

TEST_F(FrontendTest, SdkRefusesContradictoryTransportOptions) {
  ClientOptions o;
  o.address = "127.0.0.1:1";
  o.cert_pem = TestPki().rev1_client.cert_pem;
  EXPECT_THAT(Client::Connect(o), StatusIs(absl::StatusCode::kInvalidArgument));
  o.key_pem = TestPki().rev1_client.key_pem;
  o.insecure = true;
  EXPECT_THAT(Client::Connect(o), StatusIs(absl::StatusCode::kInvalidArgument));
}

// --- Limits ------------------------------------------------------------------

TEST_F(FrontendTest, RateLimitRefusesTheCallsBeyondTheBurstPerPrincipal) {
  ServerOptions o = Options();
  o.rate_limit = 1;  // one more call per second after the burst
  o.rate_burst = 5;
  Start(std::move(o));
  auto acme = Plain("exp-acme");
  int ok = 0;
  absl::Status refused;
  for (int i = 0; i < 6; ++i) {
    absl::Status s = acme->ListCases(v1::ListCasesRequest()).status();
    if (s.ok()) {
      ++ok;
    } else {
      refused = s;
    }
  }
  // Five from the burst (a sixth only if a second passed meanwhile).
  EXPECT_GE(ok, 5);
  if (ok == 5) {
    EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted,
                                  HasSubstr("exp-acme is over its rate limit")));
  }
  for (int i = 0; i < 5; ++i) (void)acme->ListCases(v1::ListCasesRequest());
  EXPECT_THAT(acme->ListCases(v1::ListCasesRequest()),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("retry in")));
  // Another principal has its own bucket.
  EXPECT_THAT(Plain("exp-globex")->ListCases(v1::ListCasesRequest()), IsOk());
  // And the refusals are on record.
  v1::ListDenialsRequest q;
  q.set_code("RESOURCE_EXHAUSTED");
  absl::StatusOr<v1::ListDenialsResponse> d = Plain("aud-1")->ListDenials(q);
  ASSERT_THAT(d, IsOk());
  ASSERT_GE(d->denials_size(), 1);
  EXPECT_EQ(d->denials(0).principal_id(), "exp-acme");
  EXPECT_EQ(d->denials(0).method(), "ListCases");
}

TEST_F(FrontendTest, StreamCapPerPrincipalRefusesOneMoreAndFreesOnClose) {
  ServerOptions o = Options();
  o.max_streams_per_principal = 1;
  Start(std::move(o));
  ASSERT_THAT(Plain("exp-acme")->SubmitCase(NewSubmit()), IsOk());
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::AuditService::NewStub(channel);
  auto watch = [&](grpc::ClientContext* ctx) {
    ctx->AddMetadata("authorization", "Bearer token-aud-1");
    return stub->WatchLog(ctx, v1::WatchLogRequest());
  };
  grpc::ClientContext first_ctx;
  auto first = watch(&first_ctx);
  v1::ReadLogResponse batch;
  ASSERT_TRUE(first->Read(&batch));  // the stream is open and delivering

  grpc::ClientContext second_ctx;
  auto second = watch(&second_ctx);
  EXPECT_FALSE(second->Read(&batch));
  grpc::Status s = second->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("log streams open"));
  // Another principal is not affected.
  EXPECT_THAT(Plain("rev-1")->ReadLog(v1::ReadLogRequest(),
                                      [](const v1::LogEntry&) { return true; }),
              IsOk());

  first_ctx.TryCancel();
  while (first->Read(&batch)) {
  }
  first->Finish();
  // The slot is free again once the server has seen the stream end.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (server_->stream_limiter().open() != 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(server_->stream_limiter().open(), 0);
  EXPECT_THAT(Plain("aud-1")->ReadLog(v1::ReadLogRequest(),
                                      [](const v1::LogEntry&) { return true; }),
              IsOk());
}

TEST_F(FrontendTest, WatchStreamWhoseClientStopsReadingIsDropped) {
  ServerOptions o = Options();
  o.stream_write_timeout = absl::Milliseconds(300);
  o.rate_limit = 0;
  Start(std::move(o));
  // Enough log to fill the client's flow-control window and socket buffers
  // many times over: ~4,000 events with their bytes, ~1 MiB per message.
  {
    auto acme = Plain("exp-acme");
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 500; ++i) ASSERT_THAT(acme->SubmitCase(NewSubmit()), IsOk());
      });
    }
    for (auto& t : threads) t.join();
  }
  // A client with a small, fixed HTTP/2 window: once it stops reading, the
  // server's next write cannot complete.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 64 * 1024);
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(
      "127.0.0.1:" + std::to_string(server_->port()),
      grpc::InsecureChannelCredentials(), args);
  auto stub = v1::AuditService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer token-aud-1");
  v1::WatchLogRequest r;
  r.set_include_event_bytes(true);
  auto stream = stub->WatchLog(&ctx, r);
  v1::ReadLogResponse batch;
  ASSERT_TRUE(stream->Read(&batch));
  // ... and then the client reads no more.
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (server_->log_streams().dropped() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(server_->log_streams().dropped(), 1u);
  while (server_->stream_limiter().open() != 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(server_->stream_limiter().open(), 0);
  // The stream has ended for the client too.
  while (stream->Read(&batch)) {
  }
  EXPECT_FALSE(stream->Finish().ok());
  // Recorded as RESOURCE_EXHAUSTED with the reason.
  v1::ListDenialsRequest q;
  q.set_code("RESOURCE_EXHAUSTED");
  absl::StatusOr<v1::ListDenialsResponse> d = Plain("aud-1")->ListDenials(q);
  ASSERT_THAT(d, IsOk());
  ASSERT_EQ(d->denials_size(), 1);
  EXPECT_EQ(d->denials(0).method(), "WatchLog");
  EXPECT_THAT(d->denials(0).message(), HasSubstr("stopped reading"));
}

TEST_F(FrontendTest, RevokingATokenEndsTheLogStreamsOpenedWithIt) {
  Start(Options());
  ASSERT_THAT(Plain("exp-acme")->SubmitCase(NewSubmit()), IsOk());
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::AuditService::NewStub(channel);
  auto watch = [&](grpc::ClientContext* ctx, const std::string& scheme,
                   const std::string& who) {
    ctx->AddMetadata("authorization", scheme + " token-" + who);
    return stub->WatchLog(ctx, v1::WatchLogRequest());
  };
  grpc::ClientContext auditor_ctx, reviewer_ctx;
  auto auditor = watch(&auditor_ctx, "Bearer", "aud-1");
  // The scheme is case-insensitive, for the reload's check as for sign-in.
  auto reviewer = watch(&reviewer_ctx, "BEARER", "rev-1");
  v1::ReadLogResponse batch;
  ASSERT_TRUE(auditor->Read(&batch));
  ASSERT_TRUE(reviewer->Read(&batch));

  // The principals again, without aud-1.
  std::string json = "{\"principals\": [";
  for (const auto& [id, role, org] : testing::TestPrincipalList()) {
    if (id == "aud-1") continue;
    json += std::string(json.back() == '[' ? "" : ",") + "{\"id\":\"" + id +
            "\",\"role\":\"" + role + "\"" + (org.empty() ? "" : ",\"org\":\"" + org + "\"") +
            ",\"token_sha256\":\"" + TokenSha256Hex("token-" + id) + "\"}";
  }
  absl::StatusOr<PrincipalRegistry> without = PrincipalRegistry::Parse(json + "]}");
  ASSERT_THAT(without, IsOk());
  ASSERT_THAT(server_->ReplacePrincipals(*std::move(without)), IsOk());

  // The auditor's stream ends; the reviewer's goes on.
  while (auditor->Read(&batch)) {
  }
  EXPECT_FALSE(auditor->Finish().ok());
  ASSERT_THAT(Plain("exp-acme")->SubmitCase(NewSubmit()), IsOk());
  ASSERT_TRUE(reviewer->Read(&batch));
  EXPECT_EQ(batch.entries(0).event().sequence(), 2u);
  reviewer_ctx.TryCancel();
  while (reviewer->Read(&batch)) {
  }
  reviewer->Finish();

  // The server drops the stream by cancelling it, so the client may see it
  // end before the server has finished its side and recorded the refusal.
  v1::ListDenialsRequest q;
  q.set_code("UNAUTHENTICATED");
  v1::Actor auditor_actor;
  auditor_actor.set_role(v1::ROLE_AUDITOR);
  absl::StatusOr<v1::ListDenialsResponse> d;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  do {
    d = server_->denials().List(auditor_actor, q);
    ASSERT_THAT(d, IsOk());
    if (d->denials_size() > 0) break;
    absl::SleepFor(absl::Milliseconds(5));
  } while (absl::Now() < deadline);
  ASSERT_EQ(d->denials_size(), 1);
  EXPECT_EQ(d->denials(0).method(), "WatchLog");
  EXPECT_EQ(d->denials(0).principal_id(), "aud-1");
  EXPECT_THAT(d->denials(0).message(), HasSubstr("revoked"));
}

TEST_F(FrontendTest, HugeStringsFromAClientAreClippedInTheRecord) {
  Start(Options());
  const std::string huge(100000, 'X');
  EXPECT_THAT(Plain("exp-acme")->GetCase(huge), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Connect("forged", [] {
                ClientOptions o;
                o.insecure = true;
                return o;
              }())->GetCase(huge),
              StatusIs(absl::StatusCode::kUnauthenticated));
  v1::Actor auditor;
  auditor.set_role(v1::ROLE_AUDITOR);
  absl::StatusOr<v1::ListDenialsResponse> d =
      server_->denials().List(auditor, v1::ListDenialsRequest());
  ASSERT_THAT(d, IsOk());
  ASSERT_EQ(d->denials_size(), 1);
  EXPECT_EQ(d->denials(0).case_id(), std::string(64, 'X'));
}

// --- Backups -------------------------------------------------------------------

// What the test holds the store's backups with. The test owns it: the
// store goes when the server shuts down.
struct BackupHold {
  void Release() {
    if (!released.exchange(true)) release.Notify();
  }
  absl::Notification entered;  // a Backup has reached the store
  std::atomic<bool> stop_asked{false};
  std::atomic<bool> started{false};
  std::atomic<bool> released{false};
  absl::Notification release;
};

// Holds every Backup until `hold` is released; every other call goes
// straight to the RocksDB store. Shutdown's StopBackups releases it, and
// RocksDB then refuses the backup.
class HeldBackupStore final : public testing::ForwardingStore {
 public:
  HeldBackupStore(std::unique_ptr<storage::EventStore> inner, BackupHold* hold)
      : ForwardingStore(std::move(inner)), hold_(hold) {}

  absl::StatusOr<storage::BackupInfo> Backup(const std::string& backup_dir,
                                             uint32_t keep_last) override {
    if (!hold_->started.exchange(true)) hold_->entered.Notify();
    hold_->release.WaitForNotification();
    return ForwardingStore::Backup(backup_dir, keep_last);
  }
  void StopBackups() override {
    hold_->stop_asked = true;
    ForwardingStore::StopBackups();
    hold_->Release();
  }

  // What ServerOptions::open_store takes.
  static auto Opener(BackupHold* hold) {
    return [hold](const std::string& path)
               -> absl::StatusOr<std::unique_ptr<storage::EventStore>> {
      absl::StatusOr<std::unique_ptr<storage::RocksDbEventStore>> rocks =
          storage::RocksDbEventStore::Open(path);
      if (!rocks.ok()) return rocks.status();
      return std::make_unique<HeldBackupStore>(*std::move(rocks), hold);
    };
  }

 private:
  BackupHold* const hold_;
};

// Keeps the Backup calls the server finished.
class BackupCalls final : public CallObserver {
 public:
  void OnCallDone(const CallRecord& call) override {
    if (call.method != "Backup") return;
    absl::MutexLock lock(&mu_);
    statuses_.push_back(call.status);
  }
  std::vector<absl::Status> statuses() {
    absl::MutexLock lock(&mu_);
    return statuses_;
  }

 private:
  absl::Mutex mu_;
  std::vector<absl::Status> statuses_ ABSL_GUARDED_BY(mu_);
};

TEST_F(FrontendTest, ABackupInProgressHoldsUpNoOtherCallAndASecondIsRefused) {
  ServerOptions o = Options();
  o.backup_dir = dir_.path() + "/backups";
  BackupHold hold;
  o.open_store = HeldBackupStore::Opener(&hold);
  Start(std::move(o));

  absl::StatusOr<v1::BackupResponse> first;
  std::thread first_caller([&] { first = Plain("adm-1")->Backup(v1::BackupRequest()); });
  // On a failed assertion too: let the held backup go, and stop the
  // server while `hold`, which its store points to, is still here.
  auto release = absl::MakeCleanup([&] {
    hold.Release();
    if (first_caller.joinable()) first_caller.join();
    server_.reset();
  });
  ASSERT_TRUE(hold.entered.WaitForNotificationWithTimeout(absl::Seconds(10)));

  // The second backup is refused at once, not queued behind the first (a
  // deadline, so that a server that queues it fails this test, not hangs).
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                     grpc::InsecureChannelCredentials());
  auto admin = v1::AdminService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer token-adm-1");
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::BackupResponse second;
  grpc::Status s = admin->Backup(&ctx, v1::BackupRequest(), &second);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("already being taken"));

  // Cases are filed and read, several at once, while the backup runs.
  std::vector<std::thread> exporters;
  std::atomic<int> served{0};
  for (int i = 0; i < 8; ++i) {
    exporters.emplace_back([&] {
      auto acme = Plain("exp-acme");
      absl::StatusOr<v1::Case> c = acme->SubmitCase(NewSubmit());
      EXPECT_THAT(c, IsOk());
      if (c.ok() && acme->GetCase(c->id()).ok()) served.fetch_add(1);
    });
  }
  for (std::thread& t : exporters) t.join();
  EXPECT_EQ(served.load(), 8);
  EXPECT_FALSE(hold.released.load());

  hold.Release();
  first_caller.join();
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(first->kept_backup_ids_size(), 1);
  // The slot is free again once the first has finished.
  absl::StatusOr<v1::BackupResponse> third = Plain("adm-1")->Backup(v1::BackupRequest());
  ASSERT_THAT(third, IsOk());
  EXPECT_EQ(third->kept_backup_ids_size(), 2);
  EXPECT_GE(third->tree_size_at_least(), 8u);
}

TEST_F(FrontendTest, ShutdownStopsABackupStillRunningWhenTheGracePeriodEnds) {
  BackupCalls calls;
  ServerOptions o = Options();
  o.backup_dir = dir_.path() + "/backups";
  o.shutdown_grace = absl::Milliseconds(300);
  o.observers.push_back(&calls);
  BackupHold hold;
  o.open_store = HeldBackupStore::Opener(&hold);
  Start(std::move(o));
  ASSERT_THAT(Plain("exp-acme")->SubmitCase(NewSubmit()), IsOk());

  absl::StatusOr<v1::BackupResponse> result;
  std::thread caller([&] { result = Plain("adm-1")->Backup(v1::BackupRequest()); });
  absl::Notification shut_down;
  std::thread stopper;
  auto cleanup = absl::MakeCleanup([&] {
    hold.Release();
    if (stopper.joinable()) stopper.join();
    if (caller.joinable()) caller.join();
    server_.reset();
  });
  ASSERT_TRUE(hold.entered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  stopper = std::thread([&] {
    server_->Shutdown();
    shut_down.Notify();
  });
  // Within the grace period the backup is let run, and shutdown waits.
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(shut_down.HasBeenNotified());
  EXPECT_FALSE(hold.stop_asked.load());
  // Then it is stopped, without the test releasing it, and shutdown ends.
  ASSERT_TRUE(shut_down.WaitForNotificationWithTimeout(absl::Seconds(10)));
  stopper.join();
  EXPECT_TRUE(hold.stop_asked.load());
  caller.join();
  EXPECT_FALSE(result.ok());
  EXPECT_THAT(calls.statuses(),
              ElementsAre(StatusIs(absl::StatusCode::kUnavailable,
                                   HasSubstr("stopped because permitd is shutting down"))));
  server_.reset();
  // What it had copied is not a backup.
  EXPECT_THAT(storage::RocksDbEventStore::RestoreBackup(dir_.path() + "/backups", 0,
                                                        dir_.path() + "/restored"),
              StatusIs(absl::StatusCode::kNotFound));
}

// --- The record of refused calls ----------------------------------------------

TEST_F(FrontendTest, RefusedCallsAreRecordedForAuditorsAndAcceptedOnesAreNot) {
  Start(Options());
  auto acme = Plain("exp-acme");
  absl::StatusOr<v1::Case> c = acme->SubmitCase(NewSubmit());
  ASSERT_THAT(c, IsOk());
  const std::string id = c->id();
  v1::ReviewCaseRequest review;
  review.set_case_id(id);
  review.set_expected_version(1);
  review.set_recommendation(v1::RECOMMENDATION_APPROVE);
  review.set_findings("End user verified");
  // Wrong role, then accepted, then a stale version, then four-eyes.
  EXPECT_THAT(acme->ReviewCase(review), StatusIs(absl::StatusCode::kPermissionDenied));
  ASSERT_THAT(Plain("rev-1")->ReviewCase(review), IsOk());
  EXPECT_THAT(Plain("rev-2")->ReviewCase(review), StatusIs(absl::StatusCode::kAborted));
  v1::ApproveCaseRequest approve;
  approve.set_case_id(id);
  approve.set_expected_version(2);
  *approve.mutable_valid_until() = core::ToProtoTime(absl::Now() + absl::Hours(24 * 90));
  EXPECT_THAT(Plain("rev-1")->ApproveCase(approve),
              StatusIs(absl::StatusCode::kPermissionDenied));
  // Unauthenticated, and a read of another organisation's case.
  EXPECT_THAT(Connect("forged", [] {
                ClientOptions o;
                o.insecure = true;
                return o;
              }())->GetCase(id),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(Plain("exp-globex")->GetCase(id), StatusIs(absl::StatusCode::kNotFound));
  // Invalid input is a mistake, not a refusal: not recorded.
  v1::ReviewCaseRequest empty;
  EXPECT_THAT(Plain("rev-2")->ReviewCase(empty),
              StatusIs(absl::StatusCode::kInvalidArgument));

  // Only auditors read the record.
  EXPECT_THAT(acme->ListDenials(v1::ListDenialsRequest()),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(Plain("rev-1")->ListDenials(v1::ListDenialsRequest()),
              StatusIs(absl::StatusCode::kPermissionDenied));
  absl::StatusOr<v1::ListDenialsResponse> all =
      Plain("aud-1")->ListDenials(v1::ListDenialsRequest());
  ASSERT_THAT(all, IsOk());
  // Newest first: the two refused ListDenials, then the five above.
  ASSERT_EQ(all->denials_size(), 7);
  EXPECT_EQ(all->total(), 7u);
  EXPECT_EQ(all->evicted(), 0u);
  struct Want {
    std::string principal, method, code;
  };
  const std::vector<Want> want = {
      {"rev-1", "ListDenials", "PERMISSION_DENIED"},
      {"exp-acme", "ListDenials", "PERMISSION_DENIED"},
      {"exp-globex", "GetCase", "NOT_FOUND"},
      {"", "GetCase", "UNAUTHENTICATED"},
      {"rev-1", "ApproveCase", "PERMISSION_DENIED"},
      {"rev-2", "ReviewCase", "ABORTED"},
      {"exp-acme", "ReviewCase", "PERMISSION_DENIED"},
  };
  for (size_t i = 0; i < want.size(); ++i) {
    const v1::Denial& d = all->denials(static_cast<int>(i));
    EXPECT_EQ(d.principal_id(), want[i].principal) << i;
    EXPECT_EQ(d.method(), want[i].method) << i;
    EXPECT_EQ(d.code(), want[i].code) << i;
    EXPECT_THAT(d.peer(), HasSubstr("127.0.0.1")) << i;
    EXPECT_GT(d.time().seconds(), 0) << i;
  }
  EXPECT_EQ(all->denials(2).case_id(), id);
  EXPECT_EQ(all->by_code().at("PERMISSION_DENIED"), 4u);

  // Filters and paging.
  v1::ListDenialsRequest q;
  q.set_principal_id("rev-1");
  ASSERT_THAT(Plain("aud-1")->ListDenials(q), IsOk());
  EXPECT_EQ(Plain("aud-1")->ListDenials(q)->denials_size(), 2);
  q.Clear();
  q.set_case_id(id);
  q.set_page_size(2);
  absl::StatusOr<v1::ListDenialsResponse> page = Plain("aud-1")->ListDenials(q);
  ASSERT_THAT(page, IsOk());
  ASSERT_EQ(page->denials_size(), 2);
  q.set_before_id(page->denials(1).id());
  page = Plain("aud-1")->ListDenials(q);
  ASSERT_THAT(page, IsOk());
  ASSERT_EQ(page->denials_size(), 2);
  EXPECT_EQ(page->denials(0).method(), "ApproveCase");
  EXPECT_EQ(page->denials(1).code(), "ABORTED");
  q.set_code("NOT_A_CODE");
  EXPECT_THAT(Plain("aud-1")->ListDenials(q),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("code")));

  // Accepted writes are not in it, and the audit log holds only them.
  EXPECT_EQ(server_->manager()->LogSize(), 2u);
}

TEST(DenialRecordTest, KeepsTheNewestUpToItsCapacityAndCountsAll) {
  DenialRecord record(3);
  CallRecord call;
  call.method = "GetCase";
  call.start = absl::Now();
  for (int i = 0; i < 5; ++i) {
    call.case_id = "PRM-2026-00000" + std::to_string(i);
    call.status = absl::NotFoundError("no");
    record.OnCallDone(call);
  }
  call.status = absl::OkStatus();
  record.OnCallDone(call);
  call.status = absl::InvalidArgumentError("bad");
  record.OnCallDone(call);
  v1::Actor auditor;
  auditor.set_role(v1::ROLE_AUDITOR);
  absl::StatusOr<v1::ListDenialsResponse> r =
      record.List(auditor, v1::ListDenialsRequest());
  ASSERT_THAT(r, IsOk());
  ASSERT_EQ(r->denials_size(), 3);
  EXPECT_EQ(r->denials(0).case_id(), "PRM-2026-000004");
  EXPECT_EQ(r->denials(2).case_id(), "PRM-2026-000002");
  EXPECT_EQ(r->total(), 5u);
  EXPECT_EQ(r->evicted(), 2u);
}

}  // namespace
}  // namespace permit::server
