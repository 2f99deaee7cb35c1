#include "engine/mailio/mbox.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace mbx::mail {

namespace {

constexpr std::string_view kFrom = "From ";
constexpr size_t kReadBufferBytes = 256 * 1024;

bool IsFromLine(std::string_view line) { return line.substr(0, kFrom.size()) == kFrom; }

// Number of '>' at the start of `line` when they are followed by "From ",
// else 0 (also 0 for a plain "From " line).
size_t QuotedFromDepth(std::string_view line) {
  size_t n = 0;
  while (n < line.size() && line[n] == '>') ++n;
  return n > 0 && IsFromLine(line.substr(n)) ? n : 0;
}

Status Errno(std::string_view what, const std::string& path, int err) {
  return PosixError(what, path, err, /*not_found_for_enoent=*/true);
}

}  // namespace

MboxSplitter::MboxSplitter(MboxFormat format, std::string source)
    : format_(format), source_(std::move(source)) {}

void MboxSplitter::Start(std::string_view line, uint64_t offset) {
  line.remove_prefix(kFrom.size());
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  cur_.from_line.assign(line);
  cur_.bytes.clear();
  cur_.offset = offset;
  in_message_ = true;
  held_blank_ = false;
}

void MboxSplitter::AppendBodyLine(std::string_view line) {
  const size_t depth = QuotedFromDepth(line);
  if (depth == 1 || (depth > 1 && format_ == MboxFormat::kMboxrd)) line.remove_prefix(1);
  cur_.bytes.append(line);
}

Result<bool> MboxSplitter::AddLine(std::string_view line, uint64_t offset, MboxMessage* out) {
  if (!in_message_) {
    if (!IsFromLine(line)) {
      return Status::InvalidArgument("not an mbox file: " + source_ +
                                     " does not start with a From_ line");
    }
    Start(line, offset);
    return false;
  }
  if (held_blank_) {
    held_blank_ = false;
    if (IsFromLine(line)) {
      *out = std::move(cur_);
      Start(line, offset);
      return true;
    }
    cur_.bytes.append(held_);
  }
  if (line == "\n" || line == "\r\n") {
    held_blank_ = true;
    held_ = line == "\n" ? std::string_view("\n") : std::string_view("\r\n");
    return false;
  }
  AppendBodyLine(line);
  return false;
}

bool MboxSplitter::Finish(MboxMessage* out) {
  if (!in_message_) return false;
  *out = std::move(cur_);  // a held blank line is the final separator: dropped
  cur_ = MboxMessage{};
  in_message_ = false;
  held_blank_ = false;
  return true;
}

Status SplitMbox(std::string_view data, MboxFormat format,
                 const std::function<Status(MboxMessage&&)>& fn) {
  MboxSplitter splitter(format);
  MboxMessage msg;
  size_t pos = 0;
  while (pos < data.size()) {
    const size_t nl = data.find('\n', pos);
    const size_t end = nl == std::string_view::npos ? data.size() : nl + 1;
    MBX_ASSIGN_OR_RETURN(bool done, splitter.AddLine(data.substr(pos, end - pos), pos, &msg));
    if (done) MBX_RETURN_IF_ERROR(fn(std::move(msg)));
    pos = end;
  }
  if (splitter.Finish(&msg)) return fn(std::move(msg));
  return Status::Ok();
}

MboxReader::MboxReader(int fd, const std::string& path, MboxFormat format)
    : fd_(fd), path_(path), splitter_(format, path) {}

MboxReader::MboxReader(MboxReader&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      splitter_(std::move(other.splitter_)),
      buf_(std::move(other.buf_)),
      pos_(other.pos_),
      end_(other.end_),
      buf_offset_(other.buf_offset_),
      partial_(std::move(other.partial_)),
      partial_offset_(other.partial_offset_),
      bytes_read_(other.bytes_read_),
      eof_(other.eof_),
      done_(std::exchange(other.done_, true)) {}

MboxReader& MboxReader::operator=(MboxReader&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    splitter_ = std::move(other.splitter_);
    buf_ = std::move(other.buf_);
    pos_ = other.pos_;
    end_ = other.end_;
    buf_offset_ = other.buf_offset_;
    partial_ = std::move(other.partial_);
    partial_offset_ = other.partial_offset_;
    bytes_read_ = other.bytes_read_;
    eof_ = other.eof_;
    done_ = std::exchange(other.done_, true);
  }
  return *this;
}

MboxReader::~MboxReader() { Close(); }

Status MboxReader::Fail(Status st) {
  done_ = true;
  Close();
  return st;
}

void MboxReader::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Result<MboxReader> MboxReader::Open(const std::string& path, MboxFormat format) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open mbox file", path, errno);
  return MboxReader(fd, path, format);
}

Result<bool> MboxReader::Next(MboxMessage* out) {
  while (!done_) {
    if (pos_ == end_) {
      if (eof_) {
        if (!partial_.empty()) {  // the last line, without "\n"
          Result<bool> r = splitter_.AddLine(partial_, partial_offset_, out);
          partial_.clear();
          if (!r.ok()) return Fail(r.status());
          if (*r) return true;  // the next call returns the message it opened
          continue;
        }
        done_ = true;
        Close();
        return splitter_.Finish(out);
      }
      if (buf_.size() != kReadBufferBytes) buf_.resize(kReadBufferBytes);
      const ssize_t n = ::read(fd_, buf_.data(), buf_.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return Fail(Errno("cannot read mbox file", path_, errno));
      }
      buf_offset_ += end_;
      pos_ = 0;
      end_ = size_t(n);
      bytes_read_ += uint64_t(n);
      if (n == 0) eof_ = true;
      continue;
    }
    const char* start = buf_.data() + pos_;
    const void* nl = std::memchr(start, '\n', end_ - pos_);
    if (!nl) {  // the line continues in the next read
      if (partial_.empty()) partial_offset_ = buf_offset_ + pos_;
      partial_.append(start, end_ - pos_);
      pos_ = end_;
      continue;
    }
    const size_t len = size_t(static_cast<const char*>(nl) - start) + 1;
    Result<bool> r = false;
    if (partial_.empty()) {
      r = splitter_.AddLine(std::string_view(start, len), buf_offset_ + pos_, out);
    } else {
      partial_.append(start, len);
      r = splitter_.AddLine(partial_, partial_offset_, out);
      partial_.clear();
    }
    pos_ += len;
    if (!r.ok()) return Fail(r.status());
    if (*r) return true;
  }
  return false;
}

void AppendMboxMessage(std::string* out, std::string_view from_line, std::string_view message,
                       MboxFormat format) {
  out->append(kFrom);
  for (const char c : from_line) out->push_back(c == '\n' || c == '\r' ? ' ' : c);
  out->push_back('\n');
  size_t pos = 0;
  while (pos < message.size()) {
    const size_t nl = message.find('\n', pos);
    const size_t end = nl == std::string_view::npos ? message.size() : nl + 1;
    const std::string_view line = message.substr(pos, end - pos);
    const bool escape = format == MboxFormat::kMboxrd ? IsFromLine(line) || QuotedFromDepth(line) > 0
                                                      : IsFromLine(line);
    if (escape) out->push_back('>');
    out->append(line);
    pos = end;
  }
  if (!message.empty() && message.back() != '\n') out->push_back('\n');
  out->push_back('\n');
}

}  // namespace mbx::mail
