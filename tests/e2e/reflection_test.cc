// Server reflection, as a stock tool (grpcurl) uses it: against a real
// permitd, list the services, fetch the API's descriptors by symbol, and
// call an RPC knowing only what reflection returned (a dynamic message,
// sent through a generic stub; no permit stubs are used).
#include <fstream>

#include "absl/synchronization/notification.h"

#include "core/checkpoint.h"
#include "core/merkle.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "gtest/gtest.h"
#include "tests/e2e/permitd_process.h"
#include "tests/test_util.h"

namespace permit {
namespace {

using ::grpc::reflection::v1alpha::ServerReflection;
using ::grpc::reflection::v1alpha::ServerReflectionRequest;
using ::grpc::reflection::v1alpha::ServerReflectionResponse;
using ::permit::testing::IsOk;
using ::permit::testing::TempDir;
using ::testing::IsSupersetOf;

TEST(ReflectionTest, StockToolsCanListDescribeAndCallTheApi) {
  TempDir dir;
  const std::string principals = dir.path() + "/principals.json";
  const std::string key = dir.path() + "/log-key.pem";
  absl::StatusOr<std::string> pem = core::NewSigningKeyPem();
  ASSERT_THAT(pem, IsOk());
  std::ofstream(key) << *pem;
  std::ofstream(principals) << "{\"principals\": [{\"id\": \"aud-1\", \"role\": "
                               "\"auditor\", \"token_sha256\": \""
                            << core::ToHex(core::Sha256("t-aud")) << "\"}]}";
  const int port = testing::FreePort();
  testing::PermitdProcess server(dir.path() + "/data", principals, key, port);
  server.Start();
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                     grpc::InsecureChannelCredentials());
  ASSERT_TRUE(channel->WaitForConnected(absl::ToChronoTime(absl::Now() + absl::Seconds(30))));

  auto reflection = ServerReflection::NewStub(channel);
  grpc::ClientContext ctx;
  auto stream = reflection->ServerReflectionInfo(&ctx);
  auto ask = [&](ServerReflectionRequest r) {
    ServerReflectionResponse response;
    EXPECT_TRUE(stream->Write(r));
    EXPECT_TRUE(stream->Read(&response));
    return response;
  };

  // list
  ServerReflectionRequest list;
  list.set_list_services("");
  ServerReflectionResponse services = ask(list);
  std::vector<std::string> names;
  for (const auto& s : services.list_services_response().service()) names.push_back(s.name());
  EXPECT_THAT(names, IsSupersetOf({"permit.v1.CaseService", "permit.v1.AuditService",
                                   "permit.v1.AdminService", "grpc.health.v1.Health"}));

  // describe: the file defining AuditService, with its imports.
  google::protobuf::DescriptorPool pool;
  ServerReflectionRequest by_symbol;
  by_symbol.set_file_containing_symbol("permit.v1.AuditService");
  ServerReflectionResponse files = ask(by_symbol);
  ASSERT_GT(files.file_descriptor_response().file_descriptor_proto_size(), 0);
  std::vector<google::protobuf::FileDescriptorProto> protos;
  for (const std::string& bytes : files.file_descriptor_response().file_descriptor_proto()) {
    protos.emplace_back();
    ASSERT_TRUE(protos.back().ParseFromString(bytes));
  }
  // Dependencies first: add until nothing more can be added.
  for (size_t added = 0, round = 0; added < protos.size() && round < protos.size(); ++round) {
    for (const auto& p : protos) {
      if (pool.FindFileByName(p.name()) == nullptr && pool.BuildFile(p) != nullptr) ++added;
    }
  }
  const google::protobuf::ServiceDescriptor* audit =
      pool.FindServiceByName("permit.v1.AuditService");
  ASSERT_NE(audit, nullptr);
  const google::protobuf::MethodDescriptor* head = audit->FindMethodByName("GetLogHead");
  ASSERT_NE(head, nullptr);
  stream->WritesDone();
  ServerReflectionResponse ignored;
  while (stream->Read(&ignored)) {
  }
  EXPECT_TRUE(stream->Finish().ok());

  // call: GetLogHead with a request built from the descriptor alone.
  google::protobuf::DynamicMessageFactory factory(&pool);
  std::unique_ptr<google::protobuf::Message> request(
      factory.GetPrototype(head->input_type())->New());
  std::string request_bytes;
  ASSERT_TRUE(request->SerializeToString(&request_bytes));
  grpc::GenericStub generic(channel);
  grpc::ClientContext call_ctx;
  call_ctx.AddMetadata("authorization", "Bearer t-aud");
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer send(&slice, 1), receive;
  absl::Notification done;
  grpc::Status status;
  generic.UnaryCall(&call_ctx, "/permit.v1.AuditService/GetLogHead", grpc::StubOptions(),
                    &send, &receive, [&](grpc::Status s) {
                      status = std::move(s);
                      done.Notify();
                    });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(receive.Dump(&slices).ok());
  std::string reply_bytes;
  for (const grpc::Slice& s : slices) reply_bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  std::unique_ptr<google::protobuf::Message> reply(
      factory.GetPrototype(head->output_type())->New());
  ASSERT_TRUE(reply->ParseFromString(reply_bytes));
  // An empty log: root = SHA-256 of nothing.
  const google::protobuf::FieldDescriptor* root = head->output_type()->FindFieldByName("root_hash");
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(reply->GetReflection()->GetString(*reply, root),
            std::string(core::AsBytes(core::Sha256(""))));
  server.Stop(std::chrono::seconds(10));
}

}  // namespace
}  // namespace permit
