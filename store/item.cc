#include "store/item.h"

namespace mbx {

// The logical size of an item is what a client would see before compression:
//
//   message_class + subject + sender          (bytes of each string)
//   + every recipient                         (bytes of each address)
//   + body                                    (uncompressed bytes)
//   + for every attachment: name + content_type + data (uncompressed bytes)
//   + 8 bytes for each of created, modified, received and flags (= 32 bytes)
//
// Length prefixes, counts and other framing are not counted. InspectRecord()
// computes the same figure from a stored record without decompressing it.
uint64_t Item::LogicalSize() const {
  constexpr uint64_t kFixedFieldBytes = 4 * 8;  // three timestamps + flags
  uint64_t n = kFixedFieldBytes;
  n += message_class.size();
  n += subject.size();
  n += sender.size();
  for (const std::string& r : recipients) n += r.size();
  n += body.size();
  for (const Attachment& a : attachments) {
    n += a.name.size();
    n += a.content_type.size();
    n += a.data.size();
  }
  return n;
}

}  // namespace mbx
