#include "store/status.h"

#include <cerrno>
#include <cstring>

namespace mbx {

std::string_view Status::CodeName(Code c) {
  switch (c) {
    case Code::kOk: return "ok";
    case Code::kNotFound: return "not found";
    case Code::kCorruption: return "corruption";
    case Code::kIOError: return "I/O error";
    case Code::kInvalidArgument: return "invalid argument";
    case Code::kAlreadyExists: return "already exists";
    case Code::kQuotaExceeded: return "quota exceeded";
    case Code::kBusy: return "busy";
    case Code::kAborted: return "aborted";
    case Code::kConflict: return "conflict";
    case Code::kInternal: return "internal error";
    case Code::kNoSpace: return "out of disk space";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string s(CodeName(code_));
  s += ": ";
  s += msg_;
  return s;
}

Status Status::WithContext(std::string_view ctx) const {
  if (ok()) return *this;
  std::string m(ctx);
  m += ": ";
  m += msg_;
  return Status(code_, std::move(m));
}

Status PosixError(std::string_view what, const std::string& path, int err, bool not_found_for_enoent) {
  std::string m(what);
  m += " ";
  m += path;
  m += ": ";
  m += std::strerror(err);
  if (not_found_for_enoent && err == ENOENT) return Status::NotFound(std::move(m));
  if (err == ENOSPC || err == EDQUOT) return Status::NoSpace(std::move(m));
  return Status::IOError(std::move(m));
}

}  // namespace mbx
