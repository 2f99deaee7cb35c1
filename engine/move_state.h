// The steps of one mailbox move, as recorded in the directory's move record
// (Directory::MoveRecord::step) so that a restart can finish or undo it.
//
//   locked     source mailbox -> moving-out (logons/deliveries refused)
//   hierarchy  target mailbox (moving-in) and its folder tree being created
//   copying    items being copied from one read snapshot of the source
//   verified   target holds every item of the source minus the dropped ones
//   switched   homeMDB points at the target: THE COMMIT POINT
//   (record deleted) cleanup done: target active, source deleted/soft-deleted
//
// Recovery: a record before `switched` is rolled back (partial target removed,
// source back to active, homeMDB untouched); at `switched` it is finished.
#pragma once

#include <string_view>

namespace mbx::engine {

enum class MoveStep { kLocked, kHierarchy, kCopying, kVerified, kSwitched };

inline std::string_view MoveStepName(MoveStep s) {
  switch (s) {
    case MoveStep::kLocked: return "locked";
    case MoveStep::kHierarchy: return "hierarchy";
    case MoveStep::kCopying: return "copying";
    case MoveStep::kVerified: return "verified";
    case MoveStep::kSwitched: return "switched";
  }
  return "unknown";
}

// True for records at or past the commit point.
inline bool PastSwitch(std::string_view step) { return step == "switched"; }

}  // namespace mbx::engine
