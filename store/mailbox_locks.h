// MailboxLocks: exclusive locks on mailboxes, by GUID.
//
// A store's read-modify-write of a mailbox header (a state transition, a
// conditional delete, a client operation) must not interleave with another
// on the same mailbox; on different mailboxes it may, and then their batches
// meet in the writer's queue and commit together. One store-wide mutex held
// through each commit made every such step wait for the one before, on any
// mailbox: at C=8 a move's source lock waited ~10 ms behind the others and
// behind the clean-up round's delete.
//
// Lock takes every mailbox of the set at once or waits (no partial holds,
// so two sets can never deadlock). Thread-safe.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <set>
#include <vector>

#include "store/records.h"

namespace mbx {

class MailboxLocks {
 public:
  class Held {
   public:
    Held() = default;
    Held(MailboxLocks* owner, std::vector<Guid> mailboxes) : owner_(owner), mailboxes_(std::move(mailboxes)) {}
    Held(Held&& o) noexcept : owner_(o.owner_), mailboxes_(std::move(o.mailboxes_)) { o.owner_ = nullptr; }
    Held& operator=(Held&&) = delete;
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;
    ~Held() {
      if (owner_) owner_->Unlock(mailboxes_);
    }

   private:
    MailboxLocks* owner_ = nullptr;
    std::vector<Guid> mailboxes_;
  };

  // Waits until no other holder has any of `mailboxes`, then holds them all
  // until the returned guard goes. A GUID listed twice is held once.
  [[nodiscard]] Held Lock(std::vector<Guid> mailboxes) {
    std::sort(mailboxes.begin(), mailboxes.end());
    mailboxes.erase(std::unique(mailboxes.begin(), mailboxes.end()), mailboxes.end());
    std::unique_lock<std::mutex> l(mu_);
    ++waiting_;
    cv_.wait(l, [&] {
      return std::none_of(mailboxes.begin(), mailboxes.end(), [&](const Guid& g) { return held_.count(g) > 0; });
    });
    --waiting_;
    held_.insert(mailboxes.begin(), mailboxes.end());
    return Held(this, std::move(mailboxes));
  }
  [[nodiscard]] Held Lock(const Guid& mailbox) { return Lock(std::vector<Guid>{mailbox}); }

  // Mailboxes held now, and Lock calls waiting (or about to check): for tests.
  size_t held_count() const {
    std::lock_guard<std::mutex> l(mu_);
    return held_.size();
  }
  size_t waiting() const {
    std::lock_guard<std::mutex> l(mu_);
    return waiting_;
  }

 private:
  void Unlock(const std::vector<Guid>& mailboxes) {
    {
      std::lock_guard<std::mutex> l(mu_);
      for (const Guid& g : mailboxes) held_.erase(g);
    }
    cv_.notify_all();
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::set<Guid> held_;  // GUARDED_BY(mu_)
  size_t waiting_ = 0;   // GUARDED_BY(mu_)
};

}  // namespace mbx
