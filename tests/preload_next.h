// The LD_PRELOAD libraries of the tests (powerloss/, diskquota/,
// lmdb_fault_interpose.cc) forward to the next definition of the function
// they wrap: glibc's, or a sanitizer runtime's interceptor, which forwards to
// glibc's.
#pragma once

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace mbx::testing {

// The next definition of `name` after the calling library's, as `Fn`;
// aborts, naming `tool`, when there is none.
template <typename Fn>
Fn NextSymbol(const char* tool, const char* name) {
  void* p = ::dlsym(RTLD_NEXT, name);
  if (p == nullptr) {
    std::fprintf(stderr, "%s: dlsym(RTLD_NEXT, %s) failed\n", tool, name);
    std::abort();
  }
  Fn f;
  static_assert(sizeof f == sizeof p);
  std::memcpy(&f, &p, sizeof p);
  return f;
}

}  // namespace mbx::testing
