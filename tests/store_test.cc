// Store: create/open, reads and snapshots, the group-commit writer under many
// threads, map growth, mailbox deletion, locking and bad stores.
#include <thread>
#include <vector>

#include "store/keys.h"
#include "store/store.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

using testing::TempDir;
using testing::TestGuid;
using testing::TestRecord;

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

}  // namespace
}  // namespace mbx
