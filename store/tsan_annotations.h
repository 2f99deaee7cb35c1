// Happens-before edges for ThreadSanitizer across oneTBB.
//
// libtbb is not built with -fsanitize=thread, so TSan cannot see the
// synchronisation TBB does when it hands a task to a worker, passes a token
// between pipeline stages, or joins a parallel_for: it would report races
// between a task and the code before or after it. Code that runs TBB tasks
// marks those edges on a TaskEdges object: Release() where TBB would publish
// (before spawning, at the end of each task) and Acquire() where it would
// observe (at the start of each task, after the join).
//
// Declare the TaskEdges object `static` at the call site: a task must reach it
// without first reading a lambda capture (that read would itself race).
//
// This orders every task after every earlier task end on the same object, so
// it can hide a race between two tasks of one parallel stage; those tasks
// share only atomics by design. Outside TSan builds every call is empty.
#pragma once

#if defined(__SANITIZE_THREAD__)  // gcc
#define MBX_TSAN 1
#elif defined(__has_feature)     // clang
#if __has_feature(thread_sanitizer)
#define MBX_TSAN 1
#endif
#endif

#if defined(MBX_TSAN)
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace mbx {

class TaskEdges {
 public:
#if defined(MBX_TSAN)
  void Release() { __tsan_release(&tag_); }
  void Acquire() { __tsan_acquire(&tag_); }
#else
  void Release() {}
  void Acquire() {}
#endif

 private:
  [[maybe_unused]] char tag_ = 0;
};

// Acquire on construction, release on destruction: wrap a task body.
class TaskEdgeScope {
 public:
  explicit TaskEdgeScope(TaskEdges& e) : e_(e) { e_.Acquire(); }
  ~TaskEdgeScope() { e_.Release(); }
  TaskEdgeScope(const TaskEdgeScope&) = delete;
  TaskEdgeScope& operator=(const TaskEdgeScope&) = delete;

 private:
  TaskEdges& e_;
};

}  // namespace mbx
