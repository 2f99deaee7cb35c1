#include "store/crash_point.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace mbx {

namespace {

struct Armed {
  std::mutex mu;
  std::string name;      // GUARDED_BY(mu)
  int target = 0;        // GUARDED_BY(mu)
  int hits = 0;          // GUARDED_BY(mu)
};

std::atomic<bool> g_armed{false};

Armed& State() {
  static Armed* a = [] {
    auto* s = new Armed();
    if (const char* env = std::getenv("MBX_CRASH_AT")) {
      std::string v(env);
      auto colon = v.rfind(':');
      s->name = v.substr(0, colon);
      s->target = colon == std::string::npos ? 1 : std::atoi(v.c_str() + colon + 1);
      if (s->target < 1) s->target = 1;
      g_armed.store(!s->name.empty());
    }
    return s;
  }();
  return *a;
}

const bool g_init = (State(), true);

}  // namespace

void CrashPoint(const char* name) {
  (void)g_init;
  if (!g_armed.load(std::memory_order_relaxed)) return;
  Armed& a = State();
  std::lock_guard<std::mutex> l(a.mu);
  if (a.name != name) return;
  if (++a.hits == a.target) _exit(kCrashExitCode);
}

void ArmCrashPoint(const char* name, int n) {
  Armed& a = State();
  std::lock_guard<std::mutex> l(a.mu);
  a.name = name ? name : "";
  a.target = n;
  a.hits = 0;
  g_armed.store(!a.name.empty());
}

}  // namespace mbx
