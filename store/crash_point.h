// Named crash points for crash tests.
//
// MBX_CRASH_AT="<name>:<n>" in the environment makes the process _exit(86)
// the n-th time (1-based) execution reaches CrashPoint("<name>"); no
// destructor, flush or sync runs, as after kill -9. Without the variable a
// crash point costs one relaxed atomic load.
//
// Points in the store: "log-appended" (a group's record is in the log, its
// LMDB transaction not yet committed), "lmdb-committed" (committed, not yet
// acknowledged). The engine adds one per move step.
#pragma once

namespace mbx {

inline constexpr int kCrashExitCode = 86;

void CrashPoint(const char* name);

// For tests in one process: arms/disarms a point without the environment.
void ArmCrashPoint(const char* name, int n);

}  // namespace mbx
