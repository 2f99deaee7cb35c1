#include "rpc/rpc_status.h"

namespace mbx::rpc {

namespace {

grpc::StatusCode NearestCode(Status::Code c) {
  using C = Status::Code;
  switch (c) {
    case C::kOk: return grpc::StatusCode::OK;
    case C::kNotFound: return grpc::StatusCode::NOT_FOUND;
    case C::kCorruption: return grpc::StatusCode::DATA_LOSS;
    case C::kIOError: return grpc::StatusCode::INTERNAL;
    case C::kInvalidArgument: return grpc::StatusCode::INVALID_ARGUMENT;
    case C::kAlreadyExists: return grpc::StatusCode::ALREADY_EXISTS;
    case C::kQuotaExceeded: return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case C::kBusy: return grpc::StatusCode::FAILED_PRECONDITION;
    case C::kAborted: return grpc::StatusCode::ABORTED;
    case C::kConflict: return grpc::StatusCode::ABORTED;
    case C::kInternal: return grpc::StatusCode::INTERNAL;
    case C::kNoSpace: return grpc::StatusCode::RESOURCE_EXHAUSTED;
  }
  return grpc::StatusCode::UNKNOWN;
}

Status Make(Status::Code c, std::string msg) {
  using C = Status::Code;
  switch (c) {
    case C::kNotFound: return Status::NotFound(std::move(msg));
    case C::kCorruption: return Status::Corruption(std::move(msg));
    case C::kInvalidArgument: return Status::InvalidArgument(std::move(msg));
    case C::kAlreadyExists: return Status::AlreadyExists(std::move(msg));
    case C::kQuotaExceeded: return Status::QuotaExceeded(std::move(msg));
    case C::kBusy: return Status::Busy(std::move(msg));
    case C::kAborted: return Status::Aborted(std::move(msg));
    case C::kConflict: return Status::Conflict(std::move(msg));
    case C::kInternal: return Status::Internal(std::move(msg));
    case C::kNoSpace: return Status::NoSpace(std::move(msg));
    default: return Status::IOError(std::move(msg));
  }
}

}  // namespace

grpc::Status ToGrpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(NearestCode(s.code()), s.message(), std::string(1, char(int(s.code()))));
}

Status FromGrpc(const grpc::Status& s, const std::string& peer) {
  if (s.ok()) return Status::Ok();
  const std::string& d = s.error_details();
  if (d.size() == 1 && d[0] > 0 && d[0] <= char(int(Status::Code::kNoSpace))) {
    return Make(static_cast<Status::Code>(d[0]), s.error_message());
  }
  switch (s.error_code()) {
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Status::IOError(peer + " did not answer in time (deadline exceeded)");
    case grpc::StatusCode::UNAVAILABLE:
      return Status::IOError(peer + " is unreachable: " + s.error_message());
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return Status::InvalidArgument(peer + " refused the request: " + s.error_message());
    case grpc::StatusCode::CANCELLED:
      return Status::Aborted("request to " + peer + " cancelled: " + s.error_message());
    default:
      return Status::IOError(peer + ": " + s.error_message() + " (grpc code " +
                             std::to_string(int(s.error_code())) + ")");
  }
}

}  // namespace mbx::rpc
