// What a store server answers, checked and decoded on the client's side
// (rpc/remote_store.cc): a ReadMailbox stream's records (a record too large
// for a message comes in pieces), ReadItem's pieces, and a ReadChanges page.
// Network input: whatever a server sends, these return a decoded answer or
// an error (Corruption for a stream or page no server of ours sends), never
// crash, and never hand on a record that broke off. Kept apart from the gRPC
// calls so that tests/fuzz/server_reply_fuzz.cc drives them with arbitrary
// messages.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rpc/store_service.pb.h"
#include "store/records.h"
#include "store/status.h"
#include "store/store_handle.h"

namespace mbx::rpc {

// The largest record a client puts back together from pieces (the most a
// batch written in pieces may hold on the server's side).
inline constexpr size_t kMaxPiecedRecordBytes = size_t(1) << 30;

// Corruption when the bytes are not a header (DecodeMailboxInfo's own).
Result<MailboxInfo> DecodeHeader(const MailboxHeader& h);
Status DecodeFolders(const google::protobuf::RepeatedPtrField<Folder>& in, std::vector<FolderInfo>* out);

// The records of a ReadMailbox stream, message by message. A record in
// pieces comes one piece per message, each alone in it, every piece but the
// last marked `continues`; it is handed on whole, in a chunk of its own.
class StreamRecords {
 public:
  // `what`: how errors name the stream ("reading mailbox ... from ...").
  explicit StreamRecords(std::string what) : what_(std::move(what)) {}

  // Puts the records of `msg` into *out (replacing what it held): views
  // into `msg`, or the one record whole once its last piece came, which
  // out->owner keeps alive. Records come folder by folder, each item once,
  // in id order. After an error the stream is not to be read further.
  Status Take(std::shared_ptr<ReadChunk> msg, ItemChunk* out);
  // The stream ended: an error if it ended inside a record.
  Status End() const;

 private:
  std::string what_;
  // (folder, item) of the last record begun: while in_piece_, the record
  // whose pieces come.
  std::optional<std::pair<uint32_t, uint64_t>> last_;
  std::string piece_;  // a record in pieces, so far
  bool in_piece_ = false;
};

// ReadItem's answer: one record, in pieces of that item only, the last
// without `continues`.
class ItemPieces {
 public:
  ItemPieces(uint32_t folder, uint64_t item, std::string what)
      : folder_(folder), item_(item), what_(std::move(what)) {}
  Status Add(const Record& piece);
  // The whole record, once its last piece came.
  Result<std::string> Finish();

 private:
  uint32_t folder_;
  uint64_t item_;
  std::string what_;
  std::string out_;
  bool last_ = false;
};

// A ReadChanges page (`got`, whose records are moved out) for `page` of
// `mailbox`'s changes, checked and decoded. A record the page sent apart is
// read with read_apart(folder, item); its error comes back as it is (the
// caller reads the page again on NotFound).
using ReadApartFn = std::function<Result<std::string>(uint32_t folder, uint64_t item)>;
Result<ChangeSet> DecodeChangesPage(Changes& got, const Guid& mailbox, const ChangesPage& page,
                                    const std::string& what, const ReadApartFn& read_apart);

}  // namespace mbx::rpc
