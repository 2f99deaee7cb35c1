// Power-loss simulation for a child process: an LD_PRELOAD library
// (libmbx_powerloss.so, built from powerloss_preload.cc) that makes a
// process's files look, at a chosen moment, as a machine crash could leave
// them.
//
// A kill -9 leaves the page cache to the kernel, so every write a process
// made survives it. A power loss keeps only what was synced. The library
// interposes the calls that write files (pwrite, pwrite64, pwritev, writev,
// write, ftruncate) and the calls that make them durable (fdatasync, fsync,
// msync, syncfs, sync) for the whole process it is preloaded into: liblmdb's
// writes of data.mdb (stores and the directory) and the transaction log's
// writes through the Env (store/file_io.h) alike. For every regular file
// under the armed folder (but LMDB's lock.mdb and the store's LOCK, whose
// content a restart rebuilds) it keeps an undo record of each write since
// that file's last fsync/fdatasync (the offset, the bytes that were there,
// read with pread before the write is forwarded, and the old size). A sync
// of the file clears its records; msync clears those of the mapped file;
// sync/syncfs clear all. A write through a descriptor opened with O_DSYNC or
// O_SYNC (LMDB's meta page writes) is durable when it returns: it is never
// undone, and no older write is undone under it. Calls on tracked files are serialized by one mutex
// held across the real call, so no write can land after the power is "off".
//
// At the chosen moment it "loses power": it undoes a subset of the unsynced
// writes, newest first, with the real pwrite/ftruncate (through a duplicate
// of the file's descriptor taken at its first unsynced write, so a file that
// was renamed since is still reached), and SIGKILLs the process at once.
// Nothing else writes those files, so what is left on disk is a state a
// machine crash at that moment could leave.
//
// Environment (read at the first intercepted call):
//   MBX_POWERLOSS_DIR   the armed folder; unset = the library does nothing
//   MBX_POWERLOSS_AT    KIND:N -- lose power at the N-th event of KIND
//                       (1-based): `sync` counts syncs of tracked files,
//                       `write` their writes (and ftruncates), `event` both.
//                       Unset or N = 0: only count.
//   MBX_POWERLOSS_WHEN  `before` (default: the N-th call is not made) or
//                       `after` (it is made, then the power goes)
//   MBX_POWERLOSS_MODE  which unsynced writes are lost:
//                       all    every one (the strictest reading of POSIX)
//                       none   none (the same as a kill -9)
//                       random each with probability 1/2 (MBX_POWERLOSS_SEED);
//                              a later write that is kept is never undone
//                              by undoing an earlier one under it
//                       torn   the older ones are kept; the newest is kept
//                              only up to a 512-byte boundary chosen with
//                              the seed (a torn sector-aligned write)
//   MBX_POWERLOSS_SEED  seed of `random` and `torn` (default 1)
//   MBX_POWERLOSS_COUNT_FILE  when set, the counts are written there at
//                       process exit and at the power loss, one line:
//                       "syncs S writes W lost L unsynced_bytes B"
//
// Limits (what a real crash can do that this does not):
//   - File-system metadata is not rolled back: a file created, renamed or
//     unlinked since the last fsync of its folder stays so. (A file created
//     and written but never synced keeps its name with its writes undone,
//     i.e. it is left short or empty.)
//   - Writes through a shared writable memory map are not seen (LMDB writes
//     data.mdb through pwrite/writev unless MDB_WRITEMAP, which mbxmove does
//     not use); an open(O_TRUNC) of an existing file is not undone.
//   - Writes are undone whole (or torn at one 512-byte boundary in `torn`),
//     not sector by sector in arbitrary order.
//   - The undo records are in memory: the process must not fork a writer.
// Under AddressSanitizer the sanitizer's runtime checks that it comes first
// in the library list; the library is built without sanitizers, and the
// child needs ASAN_OPTIONS=verify_asan_link_order=0 (WithPowerLoss() in
// tests/powerloss/powerloss.h adds it).
#pragma once
