// Status and Result<T>: the one error type of meshd. Recoverable errors travel
// in return values (libbpf's -errno, libmnl's -1/errno and rocksdb::Status are
// converted at each wrapper's boundary); only unrecoverable ones throw.
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace flowmesh {

class [[nodiscard]] Status {
 public:
  enum class Code { kOk = 0, kInvalidArgument, kNotFound, kPermissionDenied, kUnavailable,
                    kIoError, kCorruption, kResourceExhausted, kInternal };

  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  // Maps an errno value to a code and appends strerror to `what`.
  static Status FromErrno(int err, std::string what);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

  // Returns a copy whose message is "context: message".
  Status WithContext(const std::string& context) const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {Status::Code::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {Status::Code::kNotFound, std::move(m)}; }
inline Status PermissionDenied(std::string m) { return {Status::Code::kPermissionDenied, std::move(m)}; }
inline Status Unavailable(std::string m) { return {Status::Code::kUnavailable, std::move(m)}; }
inline Status IoError(std::string m) { return {Status::Code::kIoError, std::move(m)}; }
inline Status Internal(std::string m) { return {Status::Code::kInternal, std::move(m)}; }

// A value or the Status saying why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}            // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}     // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace flowmesh

#define FM_CONCAT_INNER(a, b) a##b
#define FM_CONCAT(a, b) FM_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if `expr` is not ok.
#define FM_RETURN_IF_ERROR(expr)                 \
  do {                                           \
    ::flowmesh::Status fm_status_ = (expr);      \
    if (!fm_status_.ok()) return fm_status_;     \
  } while (0)

// `FM_ASSIGN_OR_RETURN(auto x, MakeX());` binds the value or returns the error.
#define FM_ASSIGN_OR_RETURN(lhs, expr) FM_ASSIGN_OR_RETURN_IMPL(FM_CONCAT(fm_result_, __LINE__), lhs, expr)
#define FM_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
