// MailboxLocks (store/mailbox_locks.h): a mailbox is held by one holder at a
// time; holders of different mailboxes do not wait for each other; a set is
// taken whole or not at all, so two sets never deadlock. Waiting is observed
// through waiting() (no sleeps): a test waits, bounded, until the other
// thread is known to be inside Lock.
#include "store/mailbox_locks.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "tests/test_util.h"

namespace mbx {
namespace {

using testing::TestGuid;

// Waits (at most 30 s) until `n` Lock calls are waiting.
bool WaitForWaiters(const MailboxLocks& locks, size_t n) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (locks.waiting() != n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

TEST(MailboxLocksTest, OtherMailboxesAreNotBlocked) {
  MailboxLocks locks;
  auto a = locks.Lock(TestGuid(1));
  // Another thread takes B, and a set of B and C, while A is held.
  std::thread t([&] {
    { auto b = locks.Lock(TestGuid(2)); }
    auto bc = locks.Lock({TestGuid(2), TestGuid(3)});
    EXPECT_EQ(locks.held_count(), 3u);
  });
  t.join();
  EXPECT_EQ(locks.held_count(), 1u);
}

TEST(MailboxLocksTest, TheSameMailboxWaitsForItsHolder) {
  MailboxLocks locks;
  std::atomic<bool> got{false};
  auto a = std::make_unique<MailboxLocks::Held>(locks.Lock(TestGuid(1)));
  std::thread t([&] {
    auto again = locks.Lock(TestGuid(1));
    got = true;
  });
  EXPECT_TRUE(WaitForWaiters(locks, 1));  // not ASSERT: the thread must still be joined
  EXPECT_FALSE(got.load()) << "a second holder of the same mailbox got in";
  a.reset();  // released: the waiter gets it
  t.join();
  EXPECT_TRUE(got.load());
  EXPECT_EQ(locks.held_count(), 0u);
}

TEST(MailboxLocksTest, ASetIsTakenWholeOrNotAtAll) {
  MailboxLocks locks;
  auto a = std::make_unique<MailboxLocks::Held>(locks.Lock(TestGuid(1)));
  std::atomic<bool> got{false};
  // Wants A and B; A is held, so it must not sit on B meanwhile.
  std::thread t([&] {
    auto ab = locks.Lock({TestGuid(2), TestGuid(1)});
    got = true;
  });
  EXPECT_TRUE(WaitForWaiters(locks, 1));  // not ASSERT: the thread must still be joined
  EXPECT_EQ(locks.held_count(), 1u) << "the waiting set holds part of itself";
  {
    auto b = locks.Lock(TestGuid(2));  // free: would deadlock if the set held it
    EXPECT_FALSE(got.load());
  }
  a.reset();
  t.join();
  EXPECT_TRUE(got.load());
}

TEST(MailboxLocksTest, AMailboxListedTwiceIsHeldOnceAndReleased) {
  MailboxLocks locks;
  {
    auto twice = locks.Lock({TestGuid(4), TestGuid(4), TestGuid(5)});
    EXPECT_EQ(locks.held_count(), 2u);
  }
  EXPECT_EQ(locks.held_count(), 0u);
  auto again = locks.Lock(TestGuid(4));
  EXPECT_EQ(locks.held_count(), 1u);
}

// Many threads over overlapping sets: every holder of a mailbox is alone on
// it (a per-mailbox counter never exceeds one) and all of them finish.
TEST(MailboxLocksTest, OverlappingSetsFromManyThreadsExcludeAndFinish) {
  constexpr int kThreads = 8, kRounds = 2000, kMailboxes = 6;
  MailboxLocks locks;
  std::vector<std::atomic<int>> inside(kMailboxes);
  std::atomic<int> violations{0}, done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        const int a = (t + r) % kMailboxes, b = (t * 7 + r * 3) % kMailboxes;
        std::vector<int> mine{a};
        if (b != a) mine.push_back(b);
        auto held = locks.Lock({TestGuid(uint8_t(a + 1)), TestGuid(uint8_t(b + 1))});
        for (int m : mine) {
          if (inside[size_t(m)].fetch_add(1) != 0) ++violations;
        }
        for (int m : mine) inside[size_t(m)].fetch_sub(1);
      }
      ++done;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(done.load(), kThreads);
  EXPECT_EQ(locks.held_count(), 0u);
}

}  // namespace
}  // namespace mbx
