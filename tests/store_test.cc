// Store: create/open, reads and snapshots, the group-commit writer under many
// threads, map growth, mailbox deletion, locking and bad stores.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <atomic>
#include <climits>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include "store/keys.h"
#include "store/lmdb_env.h"
#include "store/store.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

using testing::TempDir;
using testing::TestGuid;
using testing::TestRecord;

// The kernel drops only clean pages from its cache. Pages written since the
// last data checkpoint are dirty (with deferred data syncs, the default) until
// the next one; a move's source mailbox was written long before it moves. The
// page-cache tests write and delete in one go, so they sync every commit.
OpenOptions EveryCommitSynced() {
  OpenOptions oo;
  oo.data_sync_bytes = 0;
  return oo;
}

std::unique_ptr<Store> CreateAndOpen(const std::string& dir, OpenOptions oo = {}, StoreOptions so = {}) {
  Status s = Store::Create(dir, "S1", so);
  EXPECT_TRUE(s.ok()) << s.ToString();
  auto st = Store::Open(dir, oo);
  EXPECT_TRUE(st.ok()) << st.status().ToString();
  return st.ok() ? std::move(st).value() : nullptr;
}

// Every (key, value) of the items database, in order.
std::vector<std::pair<std::string, std::string>> DumpItems(Store* s, const std::vector<Guid>& mbxs) {
  std::vector<std::pair<std::string, std::string>> out;
  auto r = s->BeginRead();
  EXPECT_TRUE(r.ok());
  for (const Guid& g : mbxs) {
    std::vector<FolderInfo> folders;
    EXPECT_TRUE(r->ListFolders(g, &folders).ok());
    for (const auto& f : folders) {
      EXPECT_TRUE(r->ForEachItem(g, f.id, [&](uint64_t id, std::string_view rec) {
                      out.emplace_back(keys::Item(g, f.id, id), std::string(rec));
                      return Status::Ok();
                    }).ok());
    }
  }
  return out;
}

WriteBatch MailboxBatch(const Guid& g, uint32_t folders, uint64_t items_per_folder, uint64_t first_item) {
  WriteBatch b;
  MailboxInfo m;
  m.guid = g;
  m.owner = "u";
  b.PutMailbox(m);
  for (uint32_t f = 1; f <= folders; ++f) {
    b.PutFolder(g, FolderInfo{f, f == 1 ? 0u : 1u, f == 1 ? FolderKind::kRoot : FolderKind::kUser,
                              "F" + std::to_string(f)});
    for (uint64_t i = 0; i < items_per_folder; ++i) {
      uint64_t id = first_item + i;
      b.PutItem(g, f, id, TestRecord(id * 100 + f));
    }
  }
  return b;
}

TEST(StoreTest, CreateWriteReadReopen) {
  TempDir t;
  const std::string dir = t / "s";
  {
    auto s = CreateAndOpen(dir);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->name(), "S1");
    ASSERT_OK(s->Write(MailboxBatch(TestGuid(1), 3, 5, 1)));
    auto r = s->BeginRead();
    ASSERT_TRUE(r.ok());
    auto m = r->GetMailbox(TestGuid(1));
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->owner, "u");
    std::vector<FolderInfo> folders;
    ASSERT_OK(r->ListFolders(TestGuid(1), &folders));
    ASSERT_EQ(folders.size(), 3u);
    EXPECT_EQ(folders[2].name, "F3");
    auto item = r->GetItem(TestGuid(1), 2, 3);
    ASSERT_TRUE(item.ok());
    EXPECT_EQ(std::string(*item), TestRecord(302));
    EXPECT_TRUE(r->GetItem(TestGuid(1), 2, 99).status().IsNotFound());
    EXPECT_TRUE(r->GetMailbox(TestGuid(2)).status().IsNotFound());
  }
  auto s = Store::Open(dir);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(DumpItems(s->get(), {TestGuid(1)}).size(), 15u);
}

TEST(StoreTest, ReaderIsASnapshot) {
  TempDir t;
  auto s = CreateAndOpen(t / "s");
  ASSERT_OK(s->Write(MailboxBatch(TestGuid(1), 1, 2, 1)));
  {
    auto r = s->BeginRead();
    ASSERT_TRUE(r.ok());
    // Another thread writes while this snapshot is open: it must not see it.
    std::thread w([&] { EXPECT_OK(s->Write(MailboxBatch(TestGuid(1), 1, 2, 10))); });
    w.join();
    int n = 0;
    ASSERT_OK(r->ForEachItem(TestGuid(1), 1, [&](uint64_t, std::string_view) {
      ++n;
      return Status::Ok();
    }));
    EXPECT_EQ(n, 2);
  }
  EXPECT_EQ(DumpItems(s.get(), {TestGuid(1)}).size(), 4u);
}

TEST(StoreTest, ManyThreadsLoseNothingAndMatchSingleThreaded) {
  constexpr int kThreads = 8, kBatches = 40;
  std::vector<Guid> guids;
  for (int t = 0; t < kThreads; ++t) guids.push_back(TestGuid(uint8_t(t + 1)));
  TempDir t1, t2;
  auto parallel = CreateAndOpen(t1 / "s");
  auto serial = CreateAndOpen(t2 / "s");
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBatches; ++b) {
        EXPECT_OK(parallel->Write(MailboxBatch(guids[size_t(t)], 2, 3, uint64_t(b) * 3 + 1)));
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    for (int b = 0; b < kBatches; ++b) {
      ASSERT_OK(serial->Write(MailboxBatch(guids[size_t(t)], 2, 3, uint64_t(b) * 3 + 1)));
    }
  }
  auto a = DumpItems(parallel.get(), guids);
  auto b = DumpItems(serial.get(), guids);
  EXPECT_EQ(a.size(), size_t(kThreads * kBatches * 2 * 3));
  EXPECT_EQ(a, b);
  StoreStats st = parallel->stats();
  EXPECT_EQ(st.writer.batches, uint64_t(kThreads * kBatches));
  EXPECT_LE(st.writer.groups, st.writer.batches);
  EXPECT_EQ(st.writer.failed_batches, 0u);
}

TEST(StoreTest, AsyncWritesAllComplete) {
  TempDir t;
  auto s = CreateAndOpen(t / "s");
  std::vector<std::future<Status>> fs;
  for (int b = 0; b < 50; ++b) fs.push_back(s->WriteAsync(MailboxBatch(TestGuid(1), 1, 2, uint64_t(b) * 2 + 1)));
  for (auto& f : fs) EXPECT_OK(f.get());
  EXPECT_EQ(DumpItems(s.get(), {TestGuid(1)}).size(), 100u);
}

// BatchWriter runs each batch's `done` once, after the batch was written
// (its items readable), oldest first; after a failure, a batch it refuses
// gets its `done` at once, and the failed one's still runs.
TEST(StoreTest, BatchWriterRunsEachDoneOnceTheBatchIsWritten) {
  TempDir t;
  StoreOptions so;
  so.log.quota_bytes = 256 << 10;
  auto s = CreateAndOpen(t / "s", {}, so);
  ASSERT_TRUE(s);
  std::vector<int> done;
  {
    BatchWriter w(s.get(), 1 << 20, /*depth=*/2);
    for (int b = 0; b < 6; ++b) {
      const uint64_t id = uint64_t(b) + 1;
      ASSERT_OK(w.Submit(MailboxBatch(TestGuid(1), 1, 1, id), [&, b, id] {
        // Written: the item is in the store now.
        auto r = s->BeginRead();
        ASSERT_TRUE(r.ok());
        EXPECT_TRUE(r->GetItem(TestGuid(1), 1, id).ok()) << id;
        done.push_back(b);
      }));
      EXPECT_LE(w.in_flight(), 2u);
    }
    ASSERT_OK(w.Drain());
    EXPECT_EQ(done, (std::vector<int>{0, 1, 2, 3, 4, 5}));
    EXPECT_EQ(w.in_flight(), 0u);

    // Past the log quota: the write fails, and so does every later Submit.
    WriteBatch big;
    big.PutItem(TestGuid(1), 1, 100, testing::RandomRecord(100, 512 << 10));
    int big_done = 0, refused_done = 0;
    (void)w.Submit(std::move(big), [&] { ++big_done; });
    EXPECT_FALSE(w.Drain().ok());
    EXPECT_EQ(big_done, 1);
    EXPECT_FALSE(w.Submit(MailboxBatch(TestGuid(1), 1, 1, 200), [&] { ++refused_done; }).ok());
    EXPECT_EQ(refused_done, 1);
    EXPECT_EQ(big_done, 1);
  }
  EXPECT_EQ(done.size(), 6u);
}

// Several mailboxes' state changes in one call: each checked on its own
// (one not in `from`, one missing: their own statuses), those that pass
// written in one commit.
TEST(StoreTest, TransitionsAndDeletesOfSeveralMailboxesAreCheckedEachAndWrittenInOneCommit) {
  TempDir t;
  auto s = CreateAndOpen(t / "s");
  ASSERT_TRUE(s);
  for (uint64_t m = 1; m <= 4; ++m) ASSERT_OK(s->Write(MailboxBatch(TestGuid(m), 2, 3, 1)));
  for (uint64_t m : {2, 3, 4}) ASSERT_OK(s->TransitionMailbox(TestGuid(m), {MailboxState::kActive}, MailboxState::kMovingOut));
  const std::vector<Guid> four = {TestGuid(1), TestGuid(2), TestGuid(3), TestGuid(9)};

  uint64_t groups = s->stats().writer.groups;
  std::vector<Status> got = s->TransitionMailboxes(four, {MailboxState::kMovingOut}, MailboxState::kSoftDeleted);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_TRUE(got[0].IsBusy()) << got[0].ToString();  // active, not moving-out
  EXPECT_OK(got[1]);
  EXPECT_OK(got[2]);
  EXPECT_TRUE(got[3].IsNotFound()) << got[3].ToString();
  EXPECT_EQ(s->stats().writer.groups, groups + 1);
  EXPECT_EQ(s->GetMailbox(TestGuid(1))->state, MailboxState::kActive);
  EXPECT_EQ(s->GetMailbox(TestGuid(2))->state, MailboxState::kSoftDeleted);
  EXPECT_EQ(s->GetMailbox(TestGuid(3))->state, MailboxState::kSoftDeleted);
  EXPECT_EQ(s->GetMailbox(TestGuid(4))->state, MailboxState::kMovingOut);

  groups = s->stats().writer.groups;
  got = s->DeleteMailboxesIn({TestGuid(2), TestGuid(4), TestGuid(1)}, {MailboxState::kSoftDeleted, MailboxState::kMovingOut});
  ASSERT_EQ(got.size(), 3u);
  EXPECT_OK(got[0]);
  EXPECT_OK(got[1]);
  EXPECT_TRUE(got[2].IsBusy()) << got[2].ToString();
  EXPECT_EQ(s->stats().writer.groups, groups + 1);
  EXPECT_TRUE(s->GetMailbox(TestGuid(2)).status().IsNotFound());
  EXPECT_TRUE(s->GetMailbox(TestGuid(4)).status().IsNotFound());
  EXPECT_EQ(DumpItems(s.get(), {TestGuid(2), TestGuid(4)}).size(), 0u);
  EXPECT_EQ(DumpItems(s.get(), {TestGuid(1), TestGuid(3)}).size(), 12u);

  // Nothing passes: nothing is written.
  groups = s->stats().writer.groups;
  got = s->DeleteMailboxesIn({TestGuid(2), TestGuid(1)}, {MailboxState::kMovingIn});
  EXPECT_TRUE(got[0].IsNotFound());
  EXPECT_TRUE(got[1].IsBusy());
  EXPECT_EQ(s->stats().writer.groups, groups);
}

// Header steps (deliveries, state transitions) lock one mailbox, not the
// store: threads delivering to one mailbox while others cycle the states of
// their own lose no delivery (each took its own item id and change number),
// and a delivery to a mailbox between its two transitions is refused.
TEST(StoreTest, HeaderStepsOnManyMailboxesAtOnceLoseNoUpdate) {
  constexpr int kDeliverers = 4, kDeliveries = 25, kCyclers = 5, kCycles = 20;
  TempDir t;
  auto s = CreateAndOpen(t / "s");
  ASSERT_TRUE(s);
  for (uint64_t m = 1; m <= 1 + kCyclers; ++m) ASSERT_OK(s->Write(MailboxBatch(TestGuid(uint8_t(m)), 2, 0, 1)));
  auto deliver = [&](uint8_t m, uint64_t n) {
    ClientOp d;
    d.kind = ClientOp::Kind::kDeliver;
    d.folder_id = 2;
    d.record = TestRecord(n);
    return s->ApplyClientOp(TestGuid(m), d);
  };
  std::vector<std::thread> threads;
  std::atomic<int> refused{0};
  for (int d = 0; d < kDeliverers; ++d) {
    threads.emplace_back([&, d] {
      for (int i = 0; i < kDeliveries; ++i) EXPECT_OK(deliver(1, uint64_t(d * 1000 + i)).status());
    });
  }
  for (int c = 0; c < kCyclers; ++c) {
    threads.emplace_back([&, c] {
      const uint8_t m = uint8_t(2 + c);
      for (int i = 0; i < kCycles; ++i) {
        EXPECT_OK(s->TransitionMailbox(TestGuid(m), {MailboxState::kActive}, MailboxState::kMovingOut));
        if (deliver(m, uint64_t(50000 + i)).status().IsBusy()) ++refused;
        EXPECT_OK(s->TransitionMailbox(TestGuid(m), {MailboxState::kMovingOut}, MailboxState::kActive));
        EXPECT_OK(deliver(m, uint64_t(60000 + i)).status());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(refused.load(), kCyclers * kCycles);
  auto shared = s->GetMailbox(TestGuid(1));
  ASSERT_TRUE(shared.ok());
  EXPECT_EQ(shared->change_number, uint64_t(kDeliverers * kDeliveries));
  EXPECT_EQ(DumpItems(s.get(), {TestGuid(1)}).size(), size_t(kDeliverers * kDeliveries));
  for (int c = 0; c < kCyclers; ++c) {
    const Guid g = TestGuid(uint8_t(2 + c));
    auto m = s->GetMailbox(g);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->state, MailboxState::kActive);
    EXPECT_EQ(m->change_number, uint64_t(kCycles));
    EXPECT_EQ(DumpItems(s.get(), {g}).size(), size_t(kCycles));
  }
  EXPECT_EQ(s->stats().writer.failed_batches, 0u);
}

// LMDB does not write pages that a transaction allocated and freed again
// before it committed: a batch that deletes several mailboxes copies pages
// (to new page numbers at the end of the file) that it then empties, and
// leaves data.mdb shorter than the last page number its meta page names.
// That store opens (the pages past the file's end are all free), and its
// content is whole. (Made with every commit synced: with deferred data syncs
// the pinned data checkpoint keeps the freed pages from reuse, and the batch
// lays its pages out otherwise; the open's check is the same.)
TEST(StoreTest, AStoreWhoseFileEndsBeforeItsFreedPagesOpens) {
  TempDir t;
  const std::string dir = t / "s";
  uint64_t last_page_bytes = 0;
  {
    auto s = CreateAndOpen(dir, EveryCommitSynced());
    ASSERT_TRUE(s);
    ASSERT_OK(s->Write(MailboxBatch(TestGuid(1), 2, 5, 1)));
    for (uint64_t m = 2; m <= 9; ++m) ASSERT_OK(s->Write(MailboxBatch(TestGuid(m), 3, 60, 1)));
    WriteBatch b;
    for (uint64_t m = 2; m <= 9; ++m) b.DeleteMailbox(TestGuid(m));
    ASSERT_OK(s->Write(std::move(b)));
  }
  {
    LmdbEnv env;
    ASSERT_OK(env.Open(dir, MDB_RDONLY, 8, 1ull << 30));
    MDB_envinfo info;
    MDB_stat st;
    ASSERT_EQ(mdb_env_info(env.get(), &info), 0);
    ASSERT_EQ(mdb_env_stat(env.get(), &st), 0);
    last_page_bytes = (info.me_last_pgno + 1) * st.ms_psize;
    const uint64_t file = std::filesystem::file_size(dir + "/data.mdb");
    ASSERT_LT(file, last_page_bytes) << "LMDB wrote every page: the case this test is about did not arise";
    auto need = BytesOfPagesInUse(env.get(), file);
    ASSERT_TRUE(need.ok()) << need.status().ToString();
    EXPECT_LE(*need, file);
    // The last page in use (every page after it free), and a file cut
    // below it: refused.
    auto used = BytesOfPagesInUse(env.get(), 0);
    ASSERT_TRUE(used.ok());
    EXPECT_LE(*used, file);
    EXPECT_GT(*used, 4 * st.ms_psize);
    auto cut = BytesOfPagesInUse(env.get(), *used - st.ms_psize);
    ASSERT_TRUE(cut.ok());
    EXPECT_EQ(*cut, *used);
  }
  auto s = Store::Open(dir);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(DumpItems(s->get(), {TestGuid(1)}).size(), 10u);
  EXPECT_TRUE((*s)->GetMailbox(TestGuid(2)).status().IsNotFound());
  ASSERT_OK((*s)->Write(MailboxBatch(TestGuid(20), 1, 50, 1)));  // and takes writes
}

TEST(StoreTest, MapGrowsPastItsInitialSize) {
  TempDir t;
  OpenOptions oo;
  oo.initial_map_bytes = 1u << 20;  // 1 MiB map, 12+ MB of data
  auto s = CreateAndOpen(t / "s", oo);
  ASSERT_TRUE(s);
  // A reader in another thread comes and goes while the map grows.
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop.load()) {
      auto r = s->BeginRead();
      EXPECT_TRUE(r.ok());
      (void)r->GetMailbox(TestGuid(1));
    }
  });
  for (int b = 0; b < 30; ++b) {
    WriteBatch wb;
    for (int i = 0; i < 20; ++i) {
      uint64_t id = uint64_t(b) * 20 + uint64_t(i) + 1;
      wb.PutItem(TestGuid(1), 1, id, testing::RandomRecord(id, 20000));
    }
    ASSERT_OK(s->Write(std::move(wb)));
  }
  stop = true;
  reader.join();
  EXPECT_GT(s->stats().map_resizes, 0u);
  auto r = s->BeginRead();
  ASSERT_TRUE(r.ok());
  int n = 0;
  ASSERT_OK(r->ForEachItem(TestGuid(1), 1, [&](uint64_t id, std::string_view rec) {
    EXPECT_EQ(std::string(rec), testing::RandomRecord(id, 20000));
    ++n;
    return Status::Ok();
  }));
  EXPECT_EQ(n, 600);
}

TEST(StoreTest, ReopenWithSmallMapStillOpensABigStore) {
  TempDir t;
  {
    auto s = CreateAndOpen(t / "s");
    WriteBatch wb;
    for (uint64_t i = 1; i <= 300; ++i) wb.PutItem(TestGuid(1), 1, i, testing::RandomRecord(i, 20000));
    ASSERT_OK(s->Write(std::move(wb)));
  }
  OpenOptions oo;
  oo.initial_map_bytes = 1u << 20;
  auto s = Store::Open(t / "s", oo);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto r = (*s)->BeginRead();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->GetItem(TestGuid(1), 1, 300).ok());
}

TEST(StoreTest, DeleteMailboxRemovesOnlyThatMailbox) {
  TempDir t;
  auto s = CreateAndOpen(t / "s");
  ASSERT_OK(s->Write(MailboxBatch(TestGuid(1), 3, 4, 1)));
  ASSERT_OK(s->Write(MailboxBatch(TestGuid(2), 3, 4, 1)));
  WriteBatch del;
  del.DeleteMailbox(TestGuid(1));
  ASSERT_OK(s->Write(std::move(del)));
  auto r = s->BeginRead();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->GetMailbox(TestGuid(1)).status().IsNotFound());
  std::vector<FolderInfo> f;
  ASSERT_OK(r->ListFolders(TestGuid(1), &f));
  EXPECT_TRUE(f.empty());
  EXPECT_EQ(DumpItems(s.get(), {TestGuid(1)}).size(), 0u);
  EXPECT_EQ(DumpItems(s.get(), {TestGuid(2)}).size(), 12u);
  std::vector<MailboxInfo> m;
  ASSERT_OK(r->ListMailboxes(&m));
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].guid, TestGuid(2));
}

TEST(StoreTest, SecondOpenInAnotherProcessIsRefused) {
  TempDir t;
  auto s = CreateAndOpen(t / "s");
  pid_t pid = fork();
  if (pid == 0) {
    auto again = Store::Open(t / "s");
    _exit(!again.ok() && again.status().IsBusy() ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(StoreTest, OpeningWhatIsNotAStoreFailsClearly) {
  TempDir t;
  auto missing = Store::Open(t / "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().IsNotFound());
  EXPECT_NE(missing.status().message().find("no store"), std::string::npos);

  testing::fs::create_directories(t / "empty");
  EXPECT_TRUE(Store::Open(t / "empty").status().IsNotFound());

  // Garbage where data.mdb should be.
  testing::fs::create_directories(t / "junk");
  {
    FILE* f = std::fopen((t / "junk/data.mdb").c_str(), "wb");
    for (int i = 0; i < 20000; ++i) std::fputc((i * 7919) & 0xff, f);
    std::fclose(f);
  }
  auto junk = Store::Open(t / "junk");
  EXPECT_FALSE(junk.ok());
  // Creating over a non-empty folder is refused.
  EXPECT_FALSE(Store::Create(t / "junk", "x", {}).ok());
}

TEST(StoreTest, NewerFormatVersionIsRefused) {
  TempDir t;
  {
    auto s = CreateAndOpen(t / "s");
    WriteBatch b;
    b.Put(Db::kMeta, std::string(meta::kFormat), "99");
    ASSERT_OK(s->Write(std::move(b)));
  }
  auto s = Store::Open(t / "s");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("newer"), std::string::npos) << s.status().ToString();
}

// The resident kB of the mapping that starts at `base`, from /proc/self/smaps.
long ResidentKb(const void* base) {
  FILE* f = std::fopen("/proc/self/smaps", "r");
  if (!f) return -1;
  char line[512];
  bool in = false;
  long kb = -1;
  while (std::fgets(line, sizeof line, f)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && std::strchr(line, '-') != nullptr &&
        std::strchr(line, ':') != nullptr && line[0] != ' ') {
      in = lo == reinterpret_cast<uintptr_t>(base);
      continue;
    }
    if (in && std::sscanf(line, "Rss: %ld kB", &kb) == 1) break;
  }
  std::fclose(f);
  return kb;
}

// The resident kB of every mapping of the file `path` (its real path), from
// /proc/self/smaps.
long ResidentKbOfFile(const std::string& path) {
  char real[PATH_MAX];
  if (!::realpath(path.c_str(), real)) return -1;
  FILE* f = std::fopen("/proc/self/smaps", "r");
  if (!f) return -1;
  char line[PATH_MAX + 256];
  bool in = false;
  long total = 0, kb = 0;
  while (std::fgets(line, sizeof line, f)) {
    unsigned long lo = 0, hi = 0;
    int path_at = 0;
    if (line[0] != ' ' && std::sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &path_at) >= 2 && path_at > 0) {
      std::string p(line + path_at);
      while (!p.empty() && (p.back() == '\n' || p.back() == ' ')) p.pop_back();
      in = p == real;
      continue;
    }
    if (in && std::sscanf(line, "Rss: %ld kB", &kb) == 1) total += kb;
  }
  std::fclose(f);
  return total;
}

// Verifying a mailbox (Checksums) reads every record of it through the map
// and lets the pages go again in runs: reading 24 MiB of records leaves at
// most a run's worth (4 MiB) and the tree's pages resident, and a second
// pass reads the same sums.
TEST(StoreTest, ChecksumsLetTheRecordsPagesGoOnceRead) {
  TempDir t;
  auto s = CreateAndOpen(t / "s");
  ASSERT_TRUE(s);
  WriteBatch b;
  MailboxInfo m;
  m.guid = TestGuid(1);
  m.owner = "u";
  b.PutMailbox(m);
  b.PutFolder(m.guid, FolderInfo{1, 0, FolderKind::kRoot, "F1"});
  for (uint64_t id = 1; id <= 96; ++id) b.PutItem(m.guid, 1, id, testing::RandomRecord(id, 256u << 10));
  ASSERT_OK(s->Write(std::move(b)));
  const std::string data = t / "s/data.mdb";
  auto first = s->Checksums(m.guid);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->sums.at(1).items, 96u);
  const long kb = ResidentKbOfFile(data);
  ASSERT_GE(kb, 0);
  EXPECT_LE(kb, 6 * 1024) << "the records' pages stayed resident after verification";
  auto second = s->Checksums(m.guid);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->sums.at(1).hash_sum, first->sums.at(1).hash_sum);
}

// Mailbox TestGuid(m), owner "u<m>", one folder holding `items` random
// records of `bytes` each, in one write.
void PutMailboxOfRecords(Store* s, int m, uint64_t items, size_t bytes) {
  WriteBatch b;
  MailboxInfo info;
  info.guid = TestGuid(m);
  info.owner = "u" + std::to_string(m);
  b.PutMailbox(info);
  b.PutFolder(info.guid, FolderInfo{1, 0, FolderKind::kRoot, "F1"});
  for (uint64_t id = 1; id <= items; ++id) b.PutItem(info.guid, 1, id, testing::RandomRecord(id * 10 + uint64_t(m), bytes));
  ASSERT_OK(s->Write(std::move(b)));
}

// Deleting a mailbox gives its records' pages back to the page cache's free
// memory once the delete commits (a moved mailbox's source pages are dead:
// the target's writes reuse their memory): after deleting 16 MiB of records,
// at least 15 MiB fewer pages of data.mdb are cached, the stats count them,
// and the mailbox kept reads the same, before and after a reopen.
TEST(StoreTest, DeletingAMailboxDropsItsRecordsPagesFromThePageCache) {
  TempDir t;
  const std::string data = t / "s/data.mdb";
  const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  uint64_t kept_sum = 0;
  {
    auto s = CreateAndOpen(t / "s", EveryCommitSynced());
    ASSERT_TRUE(s);
    ASSERT_NO_FATAL_FAILURE(PutMailboxOfRecords(s.get(), 1, 64, 256u << 10));  // 16 MiB
    ASSERT_NO_FATAL_FAILURE(PutMailboxOfRecords(s.get(), 2, 16, 256u << 10));
    auto kept = s->Checksums(TestGuid(2));
    ASSERT_TRUE(kept.ok()) << kept.status().ToString();
    kept_sum = kept->sums.at(1).hash_sum;
    // Read mailbox 1 whole so that its pages are surely cached.
    ASSERT_TRUE(s->Checksums(TestGuid(1)).ok());
    const size_t before = testing::CachedPages(data);
    ASSERT_GE(before, (20u << 20) / page) << "the records were not in the page cache to begin with";
    ASSERT_OK(s->DeleteMailboxIn(TestGuid(1), {MailboxState::kActive}));
    const size_t after = testing::CachedPages(data);
    EXPECT_GE(before - std::min(before, after), (15u << 20) / page)
        << "the deleted records' pages stayed cached: " << before << " pages before, " << after << " after";
    EXPECT_GE(s->stats().dead_bytes_dropped, 16u << 20);
    auto again = s->Checksums(TestGuid(2));
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(again->sums.at(1).items, 16u);
    EXPECT_EQ(again->sums.at(1).hash_sum, kept_sum);
    EXPECT_TRUE(s->GetMailbox(TestGuid(1)).status().IsNotFound());
  }
  auto s = Store::Open(t / "s");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto reopened = (*s)->Checksums(TestGuid(2));
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_EQ(reopened->sums.at(1).hash_sum, kept_sum);
}

// Records small enough to sit in LMDB's leaf pages free those pages too when
// deleted (the delete copies each leaf page before changing it and frees the
// original): deleting a mailbox of 8 MiB of 300-byte records drops at least
// 6 MiB of data.mdb's cached pages, and the other mailbox reads the same.
TEST(StoreTest, DeletingSmallRecordsDropsTheirLeafPagesFromThePageCache) {
  TempDir t;
  const std::string data = t / "s/data.mdb";
  const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  auto s = CreateAndOpen(t / "s", EveryCommitSynced());
  ASSERT_TRUE(s);
  ASSERT_NO_FATAL_FAILURE(PutMailboxOfRecords(s.get(), 1, 28000, 300));  // about 8 MiB
  ASSERT_NO_FATAL_FAILURE(PutMailboxOfRecords(s.get(), 2, 2000, 300));
  auto kept = s->Checksums(TestGuid(2));
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  ASSERT_TRUE(s->Checksums(TestGuid(1)).ok());
  const size_t before = testing::CachedPages(data);
  ASSERT_GE(before, (8u << 20) / page) << "the records were not in the page cache to begin with";
  ASSERT_OK(s->DeleteMailboxIn(TestGuid(1), {MailboxState::kActive}));
  const size_t after = testing::CachedPages(data);
  EXPECT_GE(before - std::min(before, after), (6u << 20) / page)
      << "the deleted records' leaf pages stayed cached: " << before << " pages before, " << after << " after";
  auto again = s->Checksums(TestGuid(2));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->sums.at(1).items, 2000u);
  EXPECT_EQ(again->sums.at(1).hash_sum, kept->sums.at(1).hash_sum);
}

// MappedPageReleaser gathers records' pages into runs: one madvise per run of
// nearby records, a new run for a record far away, none for records smaller
// than half a page; the pages leave the resident set and read back the same.
TEST(MappedPageReleaserTest, ReleasesRunsOfRecordsAndTheyReadBackTheSame) {
  TempDir t;
  const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  const size_t bytes = 32u << 20;
  const std::string path = t / "map";
  {
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    std::string block(1u << 20, 0);
    for (size_t i = 0; i < bytes / block.size(); ++i) {
      for (size_t j = 0; j < block.size(); ++j) block[j] = char((i * 131 + j) % 251);
      ASSERT_EQ(::write(fd, block.data(), block.size()), ssize_t(block.size()));
    }
    ::close(fd);
  }
  int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  void* m = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  ASSERT_NE(m, MAP_FAILED);
  const char* base = static_cast<const char*>(m);
  auto touch = [&] {
    unsigned sum = 0;
    for (size_t i = 0; i < bytes; i += page) sum += unsigned(base[i]);
    return sum;
  };
  const unsigned before = touch();
  ASSERT_GE(ResidentKb(m), long(bytes / 1024) - 64);
  {
    MappedPageReleaser r;
    // Records of 10 KiB every 12 KiB over the first 3 MiB: one run.
    for (size_t off = 0; off + 10240 <= (3u << 20); off += 12288) r.Add({base + off, 10240});
    EXPECT_EQ(r.madvise_calls(), 0u) << "a run below 4 MiB waits";
    // A small record (inside a leaf page) gives up no page and leaves the run open.
    r.Add({base + (3u << 20) + 100, 200});
    EXPECT_EQ(r.madvise_calls(), 0u);
    // A record 20 MiB away: the first run goes, a second one starts.
    r.Add({base + (24u << 20), 64 * 1024});
    EXPECT_EQ(r.madvise_calls(), 1u);
    // Growing the second run past 4 MiB releases it at once.
    for (size_t off = 64 * 1024; off < (5u << 20); off += 64 * 1024) r.Add({base + (24u << 20) + off, 64 * 1024});
    EXPECT_EQ(r.madvise_calls(), 2u);
    // The last MiB began a third run; Flush releases it, and a second Flush
    // has nothing left.
    r.Flush();
    EXPECT_EQ(r.madvise_calls(), 3u);
    r.Flush();
    EXPECT_EQ(r.madvise_calls(), 3u);
  }
  // About 3 + 5 MiB left the resident set; the rest stayed.
  const long kb = ResidentKb(m);
  EXPECT_LE(kb, long(bytes / 1024) - 7 * 1024) << kb;
  EXPECT_GE(kb, long(bytes / 1024) - 9 * 1024) << kb;
  // And every byte reads back as it was.
  EXPECT_EQ(touch(), before);
  for (size_t off = 0; off < bytes; off += 4099) {
    ASSERT_EQ(base[off], char(((off >> 20) * 131 + (off & ((1u << 20) - 1))) % 251)) << off;
  }
  ::munmap(m, bytes);
}

}  // namespace
}  // namespace mbx
