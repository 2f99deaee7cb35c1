// A batch written in pieces (StoreService.WriteInPieces): the server puts
// the pieces back together here before it writes the batch whole, as Write
// writes one request. Network input: every way the pieces can fail to join
// is an error, never a partial batch.
#pragma once

#include <cstdint>

#include "rpc/store_service.pb.h"
#include "store/status.h"

namespace mbx::rpc {

class PieceJoiner {
 public:
  // `max_bytes`: the keys and values the whole batch may hold.
  explicit PieceJoiner(uint64_t max_bytes) : max_bytes_(max_bytes) {}

  // Takes the next piece (its mutations are moved out).
  Status Add(WriteRequest* piece);
  // The whole request, once the last piece came and no value is left open;
  // Aborted (nothing is to be written) if the pieces broke off before.
  Result<WriteRequest> Finish();

 private:
  uint64_t max_bytes_;
  uint64_t bytes_ = 0;
  WriteRequest whole_;
  bool continues_ = false;  // the last mutation's value goes on in the next piece
  bool ended_ = false;      // the last piece came
  bool failed_ = false;     // an Add failed: nothing joins any more
};

}  // namespace mbx::rpc
