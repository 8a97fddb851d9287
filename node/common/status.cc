// Status construction and formatting.
#include "node/common/status.h"

#include <cstring>

namespace flowmesh {

Status Status::FromErrno(int err, std::string what) {
  Code code = Code::kIoError;
  switch (err) {
    case EPERM:
    case EACCES:
      code = Code::kPermissionDenied;
      break;
    case ENOENT:
    case ESRCH:
      code = Code::kNotFound;
      break;
    case EINVAL:
      code = Code::kInvalidArgument;
      break;
    case ENOMEM:
    case ENOSPC:
    case E2BIG:
    case EMFILE:
    case ENFILE:
      code = Code::kResourceExhausted;
      break;
    case EAGAIN:
    case ECONNREFUSED:
    case ETIMEDOUT:
      code = Code::kUnavailable;
      break;
    default:
      break;
  }
  return {code, std::move(what) + ": " + std::strerror(err)};
}

std::string Status::ToString() const { return ok() ? std::string("ok") : message_; }

Status Status::WithContext(const std::string& context) const {
  if (ok()) return *this;
  return {code_, context + ": " + message_};
}

}  // namespace flowmesh
