// A small full file system for a child process: an LD_PRELOAD library
// (libmbx_diskquota.so, built from diskquota_preload.cc) that makes the
// files under one folder behave as if they were alone on a file system of a
// given size.
//
// Mounting a small image needs privileges CI does not have; this needs none.
// The library interposes the calls that allocate file blocks -- write,
// pwrite, pwrite64, writev, pwritev (liblmdb's page writes, the transaction
// log's appends through the Env, every atomic file write) and fallocate,
// posix_fallocate (the disk reserve) -- and the calls that report free
// space (statvfs, fstatvfs). For a regular file under the armed folder, a
// write that would extend the file (a fallocate that would allocate) first
// adds up the blocks allocated under the folder now (st_blocks of every
// regular file, recursively); if that plus the new blocks (4 KiB each) would
// pass the limit, the call fails with ENOSPC and writes nothing, as a full
// file system's would. Writes inside a file's allocated size always go
// through (as on ext4, overwriting allocated blocks needs no new ones), and
// ftruncate never fails (extending a file only makes a hole). Removing a
// file gives its blocks back at once. statvfs and fstatvfs under the folder
// report the limit minus that sum as free. Calls on tracked files are
// serialised by one mutex held across the real call, so two writers cannot
// both take the last free block.
//
// Environment (read at the first intercepted call):
//   MBX_DISKQUOTA_DIR    the armed folder; unset = the library does nothing
//   MBX_DISKQUOTA_BYTES  the size of the pretend file system, in bytes
//
// Limits: file-system metadata (folders, inodes) takes no space; a file
// removed while still open gives its blocks back at once; a write into a
// hole of a sparse file is not counted. Under AddressSanitizer the child
// needs ASAN_OPTIONS=verify_asan_link_order=0 (the library is not
// instrumented), as for the power-loss library.
#pragma once
