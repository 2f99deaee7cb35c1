#include "rpc/write_pieces.h"

#include <string>

namespace mbx::rpc {

Status PieceJoiner::Add(WriteRequest* piece) {
  auto fail = [&](Status s) {
    failed_ = true;
    return s;
  };
  if (failed_) return Status::InvalidArgument("a piece came after a refused one");
  if (ended_) return fail(Status::InvalidArgument("a piece came after the last one"));
  ended_ = piece->last_piece();
  if (whole_.store().empty()) whole_.set_store(piece->store());
  if (piece->store() != whole_.store()) return fail(Status::InvalidArgument("the pieces of a write name two stores"));
  for (int i = 0; i < piece->mutations_size(); ++i) {
    Mutation* m = piece->mutable_mutations(i);
    bytes_ += m->key().size() + m->value().size();
    if (bytes_ > max_bytes_) {
      return fail(Status::InvalidArgument("a batch written in pieces holds more than " + std::to_string(max_bytes_) +
                                          " bytes"));
    }
    if (continues_ && i == 0) {
      Mutation* last = whole_.mutable_mutations(whole_.mutations_size() - 1);
      if (m->op() != last->op() || m->db() != last->db() || m->key() != last->key()) {
        return fail(Status::InvalidArgument("a value's next piece names another mutation"));
      }
      last->mutable_value()->append(m->value());
      last->set_value_continues(m->value_continues());
    } else {
      if (continues_) return fail(Status::InvalidArgument("a value goes on into another mutation"));
      *whole_.add_mutations() = std::move(*m);
    }
    continues_ = whole_.mutations(whole_.mutations_size() - 1).value_continues();
  }
  if (continues_ && piece->mutations_size() == 0) {
    return fail(Status::InvalidArgument("a piece without the value the one before left open"));
  }
  return Status::Ok();
}

Result<WriteRequest> PieceJoiner::Finish() {
  if (failed_) return Status::InvalidArgument("the pieces of the write did not join");
  if (!ended_ || continues_) return Status::Aborted("the write in pieces ended before its last piece: nothing was written");
  if (whole_.mutations_size() == 0) return Status::InvalidArgument("a write in pieces without a mutation");
  return std::move(whole_);
}

}  // namespace mbx::rpc
