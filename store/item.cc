#include "store/item.h"

namespace mbx {

// The logical size of an item is what a client would see before compression:
//
//   message_class + subject + sender + message_id + source_name
//   + every recipient                         (bytes of each address)
//   + mime                                    (the message's bytes)
//   + 8 bytes for each of created, modified, received, flags and keywords
//
// Length prefixes, counts and other framing are not counted. InspectRecord()
// computes the same figure from a stored record without decompressing it.
uint64_t Item::LogicalSize() const {
  constexpr uint64_t kFixedFieldBytes = 5 * 8;  // three timestamps, flags, keywords
  uint64_t n = kFixedFieldBytes;
  n += message_class.size();
  n += subject.size();
  n += sender.size();
  n += message_id.size();
  n += source_name.size();
  for (const std::string& r : recipients) n += r.size();
  n += mime.size();
  return n;
}

}  // namespace mbx
