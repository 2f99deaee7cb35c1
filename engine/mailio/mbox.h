// mbox files: splitting one into messages (streaming from a file, or over
// memory) and appending messages to one.
//
// The format: every message starts with a From_ line ("From sender date\n")
// and is followed by one empty line, the separator. Splitting rules:
//   - the input must begin with "From " (InvalidArgument "not an mbox file:
//     <path> does not start with a From_ line"); an empty input holds zero
//     messages;
//   - a new message starts at a line beginning "From " that follows an empty
//     line; a "From " line anywhere else belongs to the message;
//   - the one empty line just before a From_ line, and the one at the very
//     end of the input, is the separator and not part of the message ("\n"
//     or "\r\n": CRLF files are split the same way);
//   - lines end at "\n"; "\r\n" bytes are kept as they are;
//   - body lines are unescaped: mboxrd removes one '>' from every line
//     matching ^>+From , mboxo only from lines matching ^>From .
// Writing escapes the other way, so for mboxrd any message ending with "\n"
// (or empty) comes back byte-exact: AppendMboxMessage then SplitMbox is the
// identity. mboxo cannot tell a written ">From " from an escaped "From ".
//
// Thread safety: the free functions keep no state and are safe from any
// thread; an MboxReader or MboxSplitter is used by one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "store/status.h"

namespace mbx::mail {

enum class MboxFormat {
  kMboxrd,  // ^>*From  lines are escaped with one more '>' (reversible)
  kMboxo,   // only ^From  lines are escaped (lossy for ">From " lines)
};

struct MboxMessage {
  std::string from_line;  // the From_ line without "From " and its "\n" (or "\r\n")
  std::string bytes;      // the message, unescaped, without the separator
  uint64_t offset = 0;    // of its From_ line in the input, in bytes
};

// The line state machine behind MboxReader and SplitMbox: feed it the lines
// of an input in order, it hands back each message as soon as the next one
// starts (at most one per line), and the last one at Finish().
class MboxSplitter {
 public:
  // `source` names the input in error messages (a path, or "input").
  explicit MboxSplitter(MboxFormat format, std::string source = "input");

  // `line` is the next line with its "\n" (only the input's last line may
  // lack one); `offset` is where it starts in the input. Returns true when
  // the line completed a message, which is moved into *out. An error (not an
  // mbox) only for the first line.
  Result<bool> AddLine(std::string_view line, uint64_t offset, MboxMessage* out);

  // End of input: true when a message was still open, moved into *out.
  // The splitter is then back at its initial state.
  bool Finish(MboxMessage* out);

 private:
  void Start(std::string_view from_line, uint64_t offset);
  void AppendBodyLine(std::string_view line);

  MboxFormat format_;
  std::string source_;
  bool in_message_ = false;  // a From_ line has been seen
  // The previous line was empty: held back, it is the separator if a From_
  // line follows, else part of the message.
  bool held_blank_ = false;
  std::string_view held_;  // "\n" or "\r\n" (static storage)
  MboxMessage cur_;
};

// Splits mbox `data` in memory, calling `fn` with each message in order; the
// first error `fn` returns stops the split and is returned.
Status SplitMbox(std::string_view data, MboxFormat format,
                 const std::function<Status(MboxMessage&&)>& fn);

// Reads an mbox file message by message with a buffered read(2) loop: memory
// holds one message and one read buffer, never the whole file.
class MboxReader {
 public:
  // NotFound / IOError naming the path when the file cannot be opened. The
  // "not an mbox" check happens at the first Next().
  static Result<MboxReader> Open(const std::string& path, MboxFormat format);

  MboxReader(MboxReader&& other) noexcept;
  MboxReader& operator=(MboxReader&& other) noexcept;
  MboxReader(const MboxReader&) = delete;
  MboxReader& operator=(const MboxReader&) = delete;
  ~MboxReader();

  // The next message into *out: true, or false at the end of the file. After
  // an error (read failure, not an mbox file) the reader is finished.
  Result<bool> Next(MboxMessage* out);

  // Bytes read from the file so far (for progress).
  uint64_t bytes_read() const { return bytes_read_; }

 private:
  MboxReader(int fd, const std::string& path, MboxFormat format);
  void Close();
  Status Fail(Status st);  // finishes the reader and returns st

  int fd_ = -1;
  std::string path_;
  MboxSplitter splitter_;
  std::string buf_;           // read buffer
  size_t pos_ = 0;            // next unconsumed byte in buf_
  size_t end_ = 0;            // valid bytes in buf_
  uint64_t buf_offset_ = 0;   // file offset of buf_[0]
  std::string partial_;       // a line that spans reads
  uint64_t partial_offset_ = 0;
  uint64_t bytes_read_ = 0;
  bool eof_ = false;
  bool done_ = false;
};

// Appends one message in mbox form to *out: "From " + from_line + "\n", the
// escaped message, a "\n" if the message is not empty and does not end with
// one, then the separator "\n". Newlines in `from_line` become spaces.
void AppendMboxMessage(std::string* out, std::string_view from_line, std::string_view message,
                       MboxFormat format);

}  // namespace mbx::mail
