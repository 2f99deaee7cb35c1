// The steps of one mailbox move, as recorded in the directory's move record
// (Directory::MoveRecord::step) so that a restart can finish or undo it.
//
//   locked     source mailbox -> moving-out (logons/deliveries refused)
//   hierarchy  target mailbox (moving-in) and its folder tree being created
//   copying    items being copied from one read snapshot of the source
//   verified   target holds every item of the source minus the dropped ones
//   switched   homeMDB points at the target: THE COMMIT POINT
//   (record deleted) cleanup done: target active, source deleted/soft-deleted
//   importing  (an import's record, not a move's: see engine/mail_transfer.h)
//
// An online move (MoveOptions::online) records `syncing` instead of
// `locked` while the source stays active (initial copy, incremental passes),
// then `locked` for the final delta, then `verified` and `switched` as above.
//
// Recovery: a record before `switched` is rolled back (partial target removed,
// source back to active, homeMDB untouched); at `switched` it is finished.
#pragma once

#include "store/directory.h"  // MoveStep, MoveStepName, PastSwitch

namespace mbx::engine {

using mbx::MoveStep;
using mbx::MoveStepName;
using mbx::PastSwitch;

}  // namespace mbx::engine
