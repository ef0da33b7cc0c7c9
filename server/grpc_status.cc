// absl::Status -> grpc::Status; see grpc_status.h.
#include "server/grpc_status.h"

#include "google/rpc/status.pb.h"

namespace permit::server {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const auto code = static_cast<grpc::StatusCode>(status.code());
  const std::string message(status.message());
  google::rpc::Status detail;
  status.ForEachPayload([&](absl::string_view type_url, const absl::Cord& payload) {
    google::protobuf::Any* any = detail.add_details();
    any->set_type_url(std::string(type_url));
    any->set_value(std::string(payload));
  });
  if (detail.details_size() == 0) return grpc::Status(code, message);
  detail.set_code(static_cast<int32_t>(status.code()));
  detail.set_message(message);
  return grpc::Status(code, message, detail.SerializeAsString());
}

}  // namespace permit::server
