// The one place where permit's absl::Status becomes a grpc::Status: the
// code maps one to one, and payloads attached to the status (such as
// google.rpc.BadRequest field violations) travel as google.rpc.Status
// details in the `grpc-status-details-bin` trailer.
#ifndef PERMIT_SERVER_GRPC_STATUS_H_
#define PERMIT_SERVER_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace permit::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace permit::server

#endif  // PERMIT_SERVER_GRPC_STATUS_H_
