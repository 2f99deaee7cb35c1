// Status and Result<T>: expected failures as values.
//
// Every operation that can fail for a reason a user or a damaged file can
// cause returns a Status (or a Result<T> holding either a T or a non-OK
// Status). Nothing in store/, engine/ or datagen/ throws across a module
// boundary. The message says what failed and where, in words a user can act
// on ("corrupt item record: checksum mismatch (mailbox 1f.., item 42)").
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace mbx {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kNotFound,
    kCorruption,       // a record or file whose checksum or structure is wrong
    kIOError,          // the operating system refused (open, write, fsync...)
    kInvalidArgument,  // bad flag, bad name, path that is not what was expected
    kAlreadyExists,
    kQuotaExceeded,    // log space exhausted
    kBusy,             // mailbox locked: move in progress
    kAborted,          // gave up on purpose (bad-item limit, cancelled)
    kConflict,         // a guarded update found the record changed by another writer
    kInternal,         // a bug: an invariant did not hold
    kNoSpace,          // the file system is full (ENOSPC, EDQUOT); last: codes travel by number (rpc)
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status NotFound(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status Corruption(std::string msg) { return {Code::kCorruption, std::move(msg)}; }
  static Status IOError(std::string msg) { return {Code::kIOError, std::move(msg)}; }
  static Status InvalidArgument(std::string msg) { return {Code::kInvalidArgument, std::move(msg)}; }
  static Status AlreadyExists(std::string msg) { return {Code::kAlreadyExists, std::move(msg)}; }
  static Status QuotaExceeded(std::string msg) { return {Code::kQuotaExceeded, std::move(msg)}; }
  static Status Busy(std::string msg) { return {Code::kBusy, std::move(msg)}; }
  static Status Aborted(std::string msg) { return {Code::kAborted, std::move(msg)}; }
  static Status Conflict(std::string msg) { return {Code::kConflict, std::move(msg)}; }
  static Status Internal(std::string msg) { return {Code::kInternal, std::move(msg)}; }
  static Status NoSpace(std::string msg) { return {Code::kNoSpace, std::move(msg)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return msg_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsQuotaExceeded() const { return code_ == Code::kQuotaExceeded; }
  bool IsBusy() const { return code_ == Code::kBusy; }
  bool IsConflict() const { return code_ == Code::kConflict; }
  bool IsNoSpace() const { return code_ == Code::kNoSpace; }

  // "corruption: <message>" — for logs and the CLI.
  std::string ToString() const;
  static std::string_view CodeName(Code c);

  // Prefixes the message with context: "opening store X: <message>".
  Status WithContext(std::string_view ctx) const;

 private:
  Status(Code c, std::string m) : code_(c), msg_(std::move(m)) {}
  Code code_ = Code::kOk;
  std::string msg_;
};

// "<what> <path>: <strerror(err)>" as an IOError (NoSpace for ENOSPC and
// EDQUOT; NotFound for ENOENT only if not_found_for_enoent).
Status PosixError(std::string_view what, const std::string& path, int err, bool not_found_for_enoent = false);

// A T or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status s) : v_(std::move(s)) {      // NOLINT: implicit by design
    assert(!std::get<Status>(v_).ok() && "Result built from an OK status");
  }
  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

#define MBX_RETURN_IF_ERROR(expr)          \
  do {                                     \
    ::mbx::Status _mbx_st = (expr);        \
    if (!_mbx_st.ok()) return _mbx_st;     \
  } while (0)

#define MBX_CONCAT_INNER(a, b) a##b
#define MBX_CONCAT(a, b) MBX_CONCAT_INNER(a, b)
#define MBX_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
// MBX_ASSIGN_OR_RETURN(auto x, MakeX());
#define MBX_ASSIGN_OR_RETURN(lhs, expr) \
  MBX_ASSIGN_OR_RETURN_IMPL(MBX_CONCAT(_mbx_res_, __LINE__), lhs, expr)

}  // namespace mbx
