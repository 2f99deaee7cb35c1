// Transaction log: crash between log append and commit, torn tails,
// backup-flush with backup and roll-forward restore, circular logging,
// log quota, and log byte accounting.
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "store/backup.h"
#include "store/compact.h"
#include "store/crash_point.h"
#include "store/store.h"
#include "store/txlog_format.h"
#include "store/txlog_reader.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::TestGuid;
using testing::TestRecord;

WriteBatch ItemBatch(uint64_t id, size_t body = 200) {
  WriteBatch b;
  b.PutItem(TestGuid(1), 1, id, TestRecord(id, body));
  return b;
}

std::vector<uint64_t> ItemIds(Store* s) {
  std::vector<uint64_t> ids;
  auto r = s->BeginRead();
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r->ForEachItem(TestGuid(1), 1, [&](uint64_t id, std::string_view rec) {
                  EXPECT_TRUE(VerifyRecord(rec).ok()) << "item " << id;
                  ids.push_back(id);
                  return Status::Ok();
                }).ok());
  return ids;
}

std::vector<uint64_t> Range(uint64_t a, uint64_t b) {
  std::vector<uint64_t> v;
  for (uint64_t i = a; i <= b; ++i) v.push_back(i);
  return v;
}

StoreOptions SmallLogs(LogMode mode = LogMode::kBackupFlush, uint64_t quota = 0) {
  StoreOptions o;
  o.log.file_bytes = 4096;
  o.log.mode = mode;
  o.log.quota_bytes = quota;
  o.log.sync = SyncMode::kFull;
  return o;
}

OpenOptions DataSyncEvery(uint64_t bytes) {
  OpenOptions o;
  o.data_sync_bytes = bytes;
  return o;
}

// Runs `body` in a child process; returns its exit code.
template <typename Fn>
int InChild(Fn body) {
  pid_t pid = fork();
  if (pid == 0) {
    body();
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A child writes items 1..n acknowledged, then crashes at `point` while
// committing item n+1. Returns the child's exit code.
int CrashWhileWriting(const std::string& dir, int n, const char* point) {
  return InChild([&] {
    auto s = Store::Open(dir);
    if (!s.ok()) _exit(2);
    for (int i = 1; i <= n; ++i) {
      if (!(*s)->Write(ItemBatch(uint64_t(i))).ok()) _exit(3);
    }
    ArmCrashPoint(point, 1);
    (void)(*s)->Write(ItemBatch(uint64_t(n) + 1));
    _exit(4);  // not reached: the crash point exits with kCrashExitCode
  });
}

TEST(TxLogTest, CrashBetweenLogAppendAndCommitLosesNothing) {
  for (const char* point : {"log-appended", "lmdb-committed"}) {
    SCOPED_TRACE(point);
    TempDir t;
    ASSERT_OK(Store::Create(t / "s", "S", SmallLogs()));
    ASSERT_EQ(CrashWhileWriting(t / "s", 25, point), kCrashExitCode);
    auto s = Store::Open(t / "s");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    // Every acknowledged write is there; the one in flight was in the log,
    // so it is replayed whole.
    EXPECT_EQ(ItemIds(s->get()), Range(1, 26));
    if (std::string(point) == "log-appended") {
      EXPECT_GE((*s)->stats().replayed_records, 1u);
    }
    // And the store goes on working.
    ASSERT_OK((*s)->Write(ItemBatch(27)));
    EXPECT_EQ(ItemIds(s->get()), Range(1, 27));
  }
}

TEST(TxLogTest, TornTailAtEveryOffsetIsCutOffCleanly) {
  TempDir t;
  const std::string base = t / "base";
  ASSERT_OK(Store::Create(base, "S", SmallLogs()));
  // Item 11 reaches the log only (crash before the LMDB commit).
  ASSERT_EQ(CrashWhileWriting(base, 10, "log-appended"), kCrashExitCode);
  // Find the last record.
  TxLogReader reader(base + "/logs", 4096, 0);
  LogRecord rec, last;
  for (;;) {
    auto more = reader.Next(&rec);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    last = rec;
  }
  ASSERT_GT(last.end_lsn, last.start_lsn);
  const uint64_t gen = txlog::GenerationOf(last.end_lsn - 1, 4096);
  const std::string log_name = txlog::FileName(gen);
  const uint64_t file_start = (gen - 1) * 4096;
  int checked = 0;
  for (uint64_t cut = std::max(last.start_lsn, file_start); cut < last.end_lsn; ++cut) {
    const std::string dir = t / ("cut" + std::to_string(cut));
    fs::copy(base, dir, fs::copy_options::recursive);
    fs::resize_file(dir + "/logs/" + log_name, cut - file_start);
    {
      auto s = Store::Open(dir);
      ASSERT_TRUE(s.ok()) << "cut at " << cut << ": " << s.status().ToString();
      EXPECT_EQ(ItemIds(s->get()), Range(1, 10)) << "cut at " << cut;
      ASSERT_OK((*s)->Write(ItemBatch(50)));  // appends after the cut
    }
    {
      auto s = Store::Open(dir);  // and reopens cleanly after that
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      auto ids = ItemIds(s->get());
      EXPECT_EQ(ids.back(), 50u);
    }
    fs::remove_all(dir);  // closed first: an open log may be creating its next file
    ++checked;
  }
  EXPECT_GT(checked, 100);
  // Uncut, the record is replayed.
  auto s = Store::Open(base);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(ItemIds(s->get()), Range(1, 11));
}

TEST(TxLogTest, GarbageInTheMiddleOfTheLogIsCorruptionNotSilentLoss) {
  TempDir t;
  ASSERT_OK(Store::Create(t / "s", "S", SmallLogs()));
  ASSERT_EQ(CrashWhileWriting(t / "s", 60, "log-appended"), kCrashExitCode);
  // A store whose database is empty but whose log holds all of that, so
  // that opening it must replay every generation from the first...
  TempDir t2;
  ASSERT_OK(Store::Create(t2 / "s", "S", SmallLogs()));
  fs::remove_all(t2 / "s/logs");
  fs::copy(t / "s/logs", t2 / "s/logs", fs::copy_options::recursive);
  // ...with garbage over a record of generation 2, which is not the last.
  {
    FILE* f = std::fopen((t2 / "s/logs/" + txlog::FileName(2)).c_str(), "r+b");
    ASSERT_TRUE(f);
    std::fseek(f, 100, SEEK_SET);
    for (int i = 0; i < 64; ++i) std::fputc(0xAB, f);
    std::fclose(f);
  }
  auto s = Store::Open(t2 / "s");
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.status().IsCorruption()) << s.status().ToString();
  EXPECT_NE(s.status().message().find("E0000000002.log"), std::string::npos) << s.status().ToString();
}

// The log writer syncs a full log file's tail only after it has opened the
// next one (TxLogWriter::rotated_): a machine that stops first can leave a
// file shorter than a whole one before the file recovery starts in. The
// database holds its records, so the store opens whole, and it notes the lost
// range in E00.gap, once, so that no roll-forward from an older backup
// crosses it.
TEST(TxLogTest, ALogFileThatLostItsTailBeforeTheCheckpointsFileIsNotedAsAGapOnce) {
  TempDir t;
  const std::string dir = t / "s";
  ASSERT_OK(Store::Create(dir, "S", SmallLogs()));
  uint64_t checkpoint = 0;
  {
    auto s = Store::Open(dir);
    ASSERT_TRUE(s.ok());
    for (uint64_t i = 1; i <= 80; ++i) ASSERT_OK((*s)->Write(ItemBatch(i)));
    checkpoint = (*s)->GetLogInfo().checkpoint_lsn;
  }
  const uint64_t g = txlog::GenerationOf(checkpoint, 4096);
  ASSERT_GE(g, 3u);
  const std::string gaps = dir + "/logs/" + txlog::kGapFile;
  {
    // Whole, the same log opens without a note.
    auto s = Store::Open(dir);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
  }
  EXPECT_FALSE(fs::exists(gaps));
  const std::string short_file = dir + "/logs/" + txlog::FileName(g - 1);
  ASSERT_EQ(fs::file_size(short_file), 4096u);
  fs::resize_file(short_file, 1000);
  const std::string line = std::to_string((g - 2) * 4096 + 1000) + " " + std::to_string((g - 1) * 4096) + "\n";
  for (int open = 0; open < 2; ++open) {
    SCOPED_TRACE(open == 0 ? "first open" : "second open");
    auto s = Store::Open(dir);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(ItemIds(s->get()), Range(1, 80));
    std::string text;
    ASSERT_OK(Env::Default()->ReadFile(gaps, &text));
    EXPECT_EQ(text, line);  // noted, and only once
  }
}

TEST(TxLogTest, BackupFlushBackupThenRestoreRollsForwardToTheLastCommit) {
  TempDir t;
  const std::string dir = t / "s";
  ASSERT_OK(Store::Create(dir, "S", SmallLogs()));
  uint64_t files_before_backup = 0, backup_lsn = 0;
  {
    auto s = Store::Open(dir);
    ASSERT_TRUE(s.ok());
    for (uint64_t i = 1; i <= 40; ++i) ASSERT_OK((*s)->Write(ItemBatch(i)));
    LogInfo before = (*s)->GetLogInfo();
    files_before_backup = before.file_count;
    ASSERT_GT(files_before_backup, 2u);
    auto b = (*s)->Backup(t / "backup", false);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    backup_lsn = b->lsn;
    EXPECT_GT(b->log_files_truncated, 0);
    LogInfo after = (*s)->GetLogInfo();
    // The logs before the backup are gone.
    EXPECT_LT(after.file_count, files_before_backup);
    EXPECT_GE(after.oldest_generation, txlog::GenerationOf(backup_lsn, 4096) - 1);
    for (uint64_t i = 41; i <= 70; ++i) ASSERT_OK((*s)->Write(ItemBatch(i)));
  }
  // The database file is destroyed.
  fs::remove(dir + "/data.mdb");
  fs::remove(dir + "/lock.mdb");
  EXPECT_FALSE(Store::Open(dir).ok());
  auto r = RestoreStore(dir, "S", {t / "backup"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->rolled_forward);
  EXPECT_GT(r->replayed_records, 0u);
  auto s = Store::Open(dir);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(ItemIds(s->get()), Range(1, 70));
}

TEST(TxLogTest, IncrementalBackupCarriesTheLogsBetweenBackups) {
  TempDir t;
  const std::string dir = t / "s";
  ASSERT_OK(Store::Create(dir, "S", SmallLogs()));
  {
    auto s = Store::Open(dir);
    ASSERT_TRUE(s.ok());
    for (uint64_t i = 1; i <= 10; ++i) ASSERT_OK((*s)->Write(ItemBatch(i)));
    ASSERT_TRUE((*s)->Backup(t / "full", false).ok());
    for (uint64_t i = 11; i <= 40; ++i) ASSERT_OK((*s)->Write(ItemBatch(i)));
    auto inc = (*s)->Backup(t / "inc1", true);
    ASSERT_TRUE(inc.ok()) << inc.status().ToString();
    EXPECT_GT(inc->log_files_copied, 0);
    for (uint64_t i = 41; i <= 50; ++i) ASSERT_OK((*s)->Write(ItemBatch(i)));
  }
  fs::remove(dir + "/data.mdb");
  // Without the incremental, the logs it truncated are missing: refused.
  auto bad = RestoreStore(dir, "S", {t / "full"});
  ASSERT_FALSE(bad.ok());
  auto r = RestoreStore(dir, "S", {t / "full", t / "inc1"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto s = Store::Open(dir);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(ItemIds(s->get()), Range(1, 50));
}

TEST(TxLogTest, CircularLoggingStaysSmallAndRestoresOnlyToTheBackup) {
  TempDir t;
  const std::string dir = t / "s";
  ASSERT_OK(Store::Create(dir, "S", SmallLogs(LogMode::kCircular)));
  {
    // The log is kept from the data checkpoint: one per log file's bytes.
    auto s = Store::Open(dir, DataSyncEvery(4096));
    ASSERT_TRUE(s.ok());
    uint64_t id = 1;
    size_t max_files = 0;
    while ((*s)->GetLogInfo().end_lsn < 50 * 4096) {
      ASSERT_OK((*s)->Write(ItemBatch(id++)));
      max_files = std::max<size_t>(max_files, (*s)->GetLogInfo().file_count);
    }
    EXPECT_LE(max_files, 3u);
    ASSERT_TRUE((*s)->Backup(t / "backup", false).ok());
    for (uint64_t i = 0; i < 20; ++i) ASSERT_OK((*s)->Write(ItemBatch(1000 + i)));
  }
  auto r = RestoreStore(dir, "S", {t / "backup"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->rolled_forward);
  EXPECT_NE(r->message.find("cannot be recovered"), std::string::npos) << r->message;
  auto s = Store::Open(dir);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto ids = ItemIds(s->get());
  ASSERT_FALSE(ids.empty());
  EXPECT_LT(ids.back(), 1000u);  // nothing written after the backup
  ASSERT_OK((*s)->Write(ItemBatch(5000)));
  EXPECT_EQ(ItemIds(s->get()).back(), 5000u);
}

TEST(TxLogTest, QuotaRefusesWritesCleanlyUntilABackupFreesSpace) {
  TempDir t;
  const std::string dir = t / "s";
  ASSERT_OK(Store::Create(dir, "S", SmallLogs(LogMode::kBackupFlush, 16 * 4096)));
  auto s = Store::Open(dir);
  ASSERT_TRUE(s.ok());
  uint64_t id = 1;
  Status last;
  for (; id < 10000; ++id) {
    last = (*s)->Write(ItemBatch(id));
    if (!last.ok()) break;
  }
  ASSERT_TRUE(last.IsQuotaExceeded()) << last.ToString();
  EXPECT_NE(last.message().find("log space exhausted"), std::string::npos);
  EXPECT_LE((*s)->GetLogInfo().disk_bytes, 16u * 4096);
  // Nothing of the failed write is there; everything before it is.
  EXPECT_EQ(ItemIds(s->get()), Range(1, id - 1));
  EXPECT_TRUE((*s)->Write(ItemBatch(id)).IsQuotaExceeded());
  // A backup truncates the logs; writes go through again.
  auto b = (*s)->Backup(t / "backup", false);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_OK((*s)->Write(ItemBatch(id)));
  EXPECT_EQ(ItemIds(s->get()), Range(1, id));
  s->reset();
  // The failed writes were never logged: a reopen replays nothing extra.
  auto again = Store::Open(dir);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(ItemIds(again->get()), Range(1, id));
}

TEST(TxLogTest, LogBytesMatchWhatWasWritten) {
  TempDir t;
  ASSERT_OK(Store::Create(t / "s", "S", SmallLogs()));
  auto s = Store::Open(t / "s");
  ASSERT_TRUE(s.ok());
  const uint64_t start = (*s)->GetLogInfo().end_lsn;
  uint64_t expected = 0, data = 0;
  for (uint64_t i = 1; i <= 30; ++i) {
    WriteBatch b;
    b.PutItem(TestGuid(1), 1, i, testing::RandomRecord(i, 3000 + i * 10));
    std::string payload;
    txlog::EncodePayload({&b}, &payload);
    expected += payload.size() + txlog::kRecordOverheadBytes;
    data += b.mutations()[0].key.size() + b.mutations()[0].value.size();
    ASSERT_OK((*s)->Write(std::move(b)));
  }
  LogInfo i = (*s)->GetLogInfo();
  EXPECT_EQ(i.end_lsn - start, expected);
  EXPECT_EQ(i.checkpoint_lsn, i.end_lsn);
  // Log bytes per data byte: keys and values plus a small per-record overhead.
  EXPECT_GT(double(i.end_lsn - start) / double(data), 1.0);
  EXPECT_LT(double(i.end_lsn - start) / double(data), 1.02);
}

// The gather form of a payload is the contiguous form and decodes to the
// batches' mutations: owned and borrowed values, small ones (copied into the
// frame) and large ones (pieces of their own), deletes and prefix deletes
// between them; its record checksum is the contiguous record's.
TEST(TxLogTest, APayloadInPiecesIsThePayloadWhole) {
  std::vector<std::string> values;
  for (size_t n : {0, 1, 511, 512, 513, 4000, 70000}) values.push_back(testing::RandomRecord(n + 1, n));
  WriteBatch a, b;
  for (size_t i = 0; i < values.size(); ++i) {
    a.PutItem(TestGuid(1), 1, i + 1, values[i]);
    b.PutItemBorrowed(TestGuid(2), 3, i + 1, values[i]);
    if (i == 2) b.DeleteItem(TestGuid(2), 3, 99);
  }
  b.DeleteMailbox(TestGuid(3));
  for (const std::vector<const WriteBatch*>& batches :
       {std::vector<const WriteBatch*>{&a}, {&b}, {&a, &b}, {&b, &a}}) {
    std::string whole, frame;
    std::vector<std::string_view> pieces;
    txlog::EncodePayload(batches, &whole);
    txlog::EncodePayloadPieces(batches, &frame, &pieces);
    std::string joined;
    size_t outside = 0;  // pieces written from the batches' values, not the frame
    for (std::string_view p : pieces) {
      joined.append(p);
      if (p.data() < frame.data() || p.data() >= frame.data() + frame.size()) ++outside;
    }
    EXPECT_EQ(joined, whole);
    // ... and it decodes to the batches' mutations, in order.
    std::vector<const Mutation*> want;
    for (const WriteBatch* wb : batches) {
      for (const Mutation& m : wb->mutations()) want.push_back(&m);
    }
    size_t k = 0;
    ASSERT_OK(txlog::ForEachMutation(joined, [&](Mutation::Op op, Db db, std::string_view key, std::string_view v) {
      EXPECT_LT(k, want.size());
      if (k >= want.size()) return Status::Ok();
      EXPECT_EQ(op, want[k]->op);
      EXPECT_EQ(db, want[k]->db);
      EXPECT_EQ(key, want[k]->key);
      EXPECT_EQ(v, want[k]->bytes());
      ++k;
      return Status::Ok();
    }));
    EXPECT_EQ(k, want.size());
    // Values of kGatherMinValueBytes and more are written from where they are.
    size_t large = 0;
    for (const std::string& v : values) large += v.size() >= txlog::kGatherMinValueBytes ? 1 : 0;
    EXPECT_EQ(outside, large * batches.size());
    EXPECT_LT(frame.size(), 2000u * batches.size());
    std::string record, header, trailer;
    txlog::FrameRecord(7, whole, &record);
    txlog::FrameHeader(7, pieces, &header, &trailer);
    EXPECT_EQ(header + joined + trailer, record);
  }
}

// A store written with batches that borrow their values ends as one written
// with batches that own them: the same log, byte for byte, and the same
// items after a reopen and after a restore that rolls the log forward.
TEST(TxLogTest, BorrowedValuesAreLoggedAndStoredAsOwnedOnes) {
  TempDir t;
  for (const char* name : {"owned", "borrowed"}) ASSERT_OK(Store::Create(t / name, "S", SmallLogs()));
  std::vector<std::string> records;
  for (uint64_t i = 1; i <= 40; ++i) records.push_back(testing::RandomRecord(i, 100 + 300 * (i % 9)));
  for (const bool borrow : {false, true}) {
    const std::string name = borrow ? "borrowed" : "owned";
    auto s = Store::Open(t / name);
    ASSERT_TRUE(s.ok());
    ASSERT_OK((*s)->Backup(t / ("backup-" + name), false).status());
    for (uint64_t i = 1; i <= 40; i += 4) {
      WriteBatch b;
      for (uint64_t j = i; j < i + 4; ++j) {
        if (borrow) {
          b.PutItemBorrowed(TestGuid(1), 1, j, records[j - 1]);
        } else {
          b.PutItem(TestGuid(1), 1, j, records[j - 1]);
        }
      }
      ASSERT_OK((*s)->Write(std::move(b)));
    }
    EXPECT_EQ(ItemIds(s->get()), Range(1, 40));
  }
  int compared = 0;
  for (const auto& e : fs::directory_iterator(t / "owned/logs")) {
    const std::string f = e.path().filename().string();
    if (txlog::ParseFileName(f) == 0) continue;
    std::string a, b;
    ASSERT_OK(Env::Default()->ReadFile(e.path().string(), &a));
    ASSERT_OK(Env::Default()->ReadFile(t / ("borrowed/logs/" + f), &b));
    EXPECT_EQ(a, b) << f;
    ++compared;
  }
  EXPECT_GT(compared, 5);
  {
    auto s = Store::Open(t / "borrowed");
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(ItemIds(s->get()), Range(1, 40));
  }
  // The database lost: the backup from before the writes, rolled forward
  // through the log the borrowed writes made.
  fs::remove(t / "borrowed/data.mdb");
  fs::remove(t / "borrowed/lock.mdb");
  auto r = RestoreStore(t / "borrowed", "S", {t / "backup-borrowed"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->rolled_forward);
  auto s = Store::Open(t / "borrowed");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(ItemIds(s->get()), Range(1, 40));
}

TEST(TxLogTest, ChangingModeToCircularDropsOldLogs) {
  TempDir t;
  ASSERT_OK(Store::Create(t / "s", "S", SmallLogs()));
  {
    auto s = Store::Open(t / "s");
    ASSERT_TRUE(s.ok());
    for (uint64_t i = 1; i <= 60; ++i) ASSERT_OK((*s)->Write(ItemBatch(i)));
    EXPECT_GT((*s)->GetLogInfo().file_count, 3u);
    ASSERT_OK((*s)->SetLogMode(LogMode::kCircular));
    ASSERT_OK((*s)->Write(ItemBatch(61)));
    EXPECT_LE((*s)->GetLogInfo().file_count, 3u);
  }
  auto s = Store::Open(t / "s");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->GetLogInfo().mode, LogMode::kCircular);  // persisted
  EXPECT_EQ(ItemIds(s->get()), Range(1, 61));
}


// Deferred data syncs (store.h, "Data syncs"): between data checkpoints
// data.mdb is not synced, and a machine crash may leave its meta pages naming
// pages that never reached the disk. These tests crash a child (the page
// cache keeps its writes) and then zero data.mdb's two meta pages, harsher
// than any crash: only the saved meta pages of the data checkpoint, and its
// pages untouched since, can bring the store back; the log replays the rest.

void ZeroMetaPages(const std::string& dir) {
  FILE* f = std::fopen((dir + "/data.mdb").c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  const std::string zeros(2 * 4096, '\0');
  ASSERT_EQ(std::fwrite(zeros.data(), 1, zeros.size(), f), zeros.size());
  ASSERT_EQ(std::fclose(f), 0);
}

std::string FileBytes(const std::string& path) {
  std::string out;
  EXPECT_OK(Env::Default()->ReadFile(path, &out));
  return out;
}

// Writes items, deletes them and writes more (LMDB frees pages and would
// reuse them), then exits without closing. The store ends holding items
// 201..400.
int ChurnThenCrash(const std::string& dir, const OpenOptions& oo) {
  return InChild([&] {
    auto s = Store::Open(dir, oo);
    if (!s.ok()) _exit(2);
    auto del = [&](uint64_t from, uint64_t to) {
      for (uint64_t i = from; i <= to; i += 10) {
        WriteBatch b;
        for (uint64_t j = i; j < i + 10 && j <= to; ++j) b.DeleteItem(TestGuid(1), 1, j);
        if (!(*s)->Write(std::move(b)).ok()) _exit(3);
      }
    };
    for (uint64_t i = 101; i <= 300; ++i) {
      if (!(*s)->Write(ItemBatch(i, 2000)).ok()) _exit(3);
    }
    del(1, 200);
    for (uint64_t i = 301; i <= 400; ++i) {
      if (!(*s)->Write(ItemBatch(i, 2000)).ok()) _exit(3);
    }
    if (!fs::exists(dir + "/data.ckpt")) _exit(5);
    _exit(0);
  });
}

TEST(DataCheckpointTest, ACrashThatLostTheMetaPagesComesBackAtTheDataCheckpoint) {
  // Only the open's data checkpoint (every later commit could reuse the
  // pages the deletes free), and one every 16 KiB.
  for (uint64_t every : {uint64_t(1) << 30, uint64_t(16) << 10}) {
    SCOPED_TRACE("data sync every " + std::to_string(every) + " bytes");
    TempDir t;
    const std::string dir = t / "s";
    ASSERT_OK(Store::Create(dir, "S", SmallLogs()));
    {
      auto s = Store::Open(dir);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      for (uint64_t i = 1; i <= 100; ++i) ASSERT_OK((*s)->Write(ItemBatch(i, 2000)));
    }
    EXPECT_FALSE(fs::exists(dir + "/data.ckpt")) << "a clean close removes it";
    ASSERT_EQ(ChurnThenCrash(dir, DataSyncEvery(every)), 0);
    ASSERT_TRUE(fs::exists(dir + "/data.ckpt"));
    ZeroMetaPages(dir);
    {
      // Without the saved meta pages the file is not a store any more.
      const std::string bare = t / "bare";
      fs::copy(dir, bare, fs::copy_options::recursive);
      fs::remove(bare + "/data.ckpt");
      EXPECT_FALSE(Store::Open(bare).ok());
    }
    auto s = Store::Open(dir);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(ItemIds(s->get()), Range(201, 400));
    EXPECT_GT((*s)->stats().replayed_records, 0u);
    ASSERT_OK((*s)->Write(ItemBatch(401)));
    EXPECT_EQ(ItemIds(s->get()).back(), 401u);
  }
}

TEST(DataCheckpointTest, ACrashAtEachStepOfADataCheckpointComesBackWhole) {
  for (const char* point : {"data-checkpoint", "data-checkpoint-synced", "data-checkpoint-saved"}) {
    SCOPED_TRACE(point);
    TempDir t;
    const std::string dir = t / "s";
    ASSERT_OK(Store::Create(dir, "S", SmallLogs()));
    // The open takes the first data checkpoint (before the point is armed);
    // the crash comes at the third after it, with items written since the
    // second.
    int acked = 0;
    const int code = InChild([&] {
      auto s = Store::Open(dir, DataSyncEvery(8 << 10));
      if (!s.ok()) _exit(2);
      ArmCrashPoint(point, 3);
      for (uint64_t i = 1; i <= 1000; ++i) {
        if (!(*s)->Write(ItemBatch(i, 1000)).ok()) _exit(3);
      }
      _exit(4);
    });
    ASSERT_EQ(code, kCrashExitCode);
    ASSERT_TRUE(fs::exists(dir + "/data.ckpt"));
    ZeroMetaPages(dir);
    auto s = Store::Open(dir);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    // Every write the child made is in the log (the crash came after the
    // commit of the group that called for the checkpoint).
    const auto ids = ItemIds(s->get());
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids, Range(1, ids.back()));
    acked = int(ids.back());
    EXPECT_GT(acked, 8);
    EXPECT_LT(acked, 1000);
  }
}

TEST(DataCheckpointTest, SyncingEveryCommitUsesAndThenDropsALeftOverCheckpoint) {
  TempDir t;
  const std::string dir = t / "s";
  ASSERT_OK(Store::Create(dir, "S", SmallLogs()));
  {
    auto s = Store::Open(dir, DataSyncEvery(0));
    ASSERT_TRUE(s.ok());
    for (uint64_t i = 1; i <= 100; ++i) ASSERT_OK((*s)->Write(ItemBatch(i, 2000)));
    EXPECT_FALSE(fs::exists(dir + "/data.ckpt"));
    EXPECT_GE((*s)->stats().data_syncs, 100u);
    EXPECT_EQ((*s)->stats().data_checkpoints, 0u);
  }
  ASSERT_EQ(ChurnThenCrash(dir, DataSyncEvery(1u << 30)), 0);
  ZeroMetaPages(dir);
  auto s = Store::Open(dir, DataSyncEvery(0));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(ItemIds(s->get()), Range(201, 400));
  EXPECT_FALSE(fs::exists(dir + "/data.ckpt")) << "nothing pins its snapshot any more";
}

TEST(DataCheckpointTest, DeferredSyncsAreCountedAndACleanCloseEndsThem) {
  TempDir t;
  const std::string dir = t / "s";
  ASSERT_OK(Store::Create(dir, "S", SmallLogs()));
  auto s = Store::Open(dir, DataSyncEvery(8 << 10));
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(fs::exists(dir + "/data.ckpt"));
  EXPECT_EQ(fs::status(dir + "/data.ckpt").permissions() & (fs::perms::group_all | fs::perms::others_all),
            fs::perms::none);
  for (uint64_t i = 1; i <= 200; ++i) ASSERT_OK((*s)->Write(ItemBatch(i, 2000)));
  const StoreStats st = (*s)->stats();
  // One per 8 KiB of log (and the open's), a sync each, no commit's own.
  const uint64_t expected = 1 + (*s)->GetLogInfo().end_lsn / (8 << 10);
  EXPECT_GE(expected, 5u);
  EXPECT_GE(st.data_checkpoints + 1, expected);
  EXPECT_LE(st.data_checkpoints, expected + 1);
  EXPECT_EQ(st.data_syncs, st.data_checkpoints);
  EXPECT_EQ(st.data_checkpoint_failures, 0u);
  s->reset();
  EXPECT_FALSE(fs::exists(dir + "/data.ckpt"));
  auto again = Store::Open(dir, DataSyncEvery(0));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(ItemIds(again->get()), Range(1, 200));
  EXPECT_EQ((*again)->stats().replayed_records, 0u);
}

TEST(DataCheckpointTest, ACheckpointForAnotherOrADamagedFileIsRefusedAndChangesNothing) {
  TempDir t;
  const std::string dir = t / "s";
  ASSERT_OK(Store::Create(dir, "S", SmallLogs()));
  ASSERT_EQ(ChurnThenCrash(dir, DataSyncEvery(16 << 10)), 0);
  // A copy of the folder (a new data.mdb file, the same pages) recovers.
  {
    const std::string copy = t / "copy";
    fs::copy(dir, copy, fs::copy_options::recursive);
    auto s = Store::Open(copy);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(ItemIds(s->get()), Range(201, 400));
  }
  // data.mdb replaced by another store's: the saved pages are not its.
  {
    const std::string other = t / "other", copy = t / "replaced";
    ASSERT_OK(Store::Create(other, "S", SmallLogs()));
    {
      auto s = Store::Open(other);
      ASSERT_TRUE(s.ok());
      for (uint64_t i = 1; i <= 30; ++i) ASSERT_OK((*s)->Write(ItemBatch(i)));
    }
    fs::copy(dir, copy, fs::copy_options::recursive);
    fs::copy_file(other + "/data.mdb", copy + "/data.mdb", fs::copy_options::overwrite_existing);
    const std::string before = FileBytes(copy + "/data.mdb");
    auto s = Store::Open(copy);
    ASSERT_FALSE(s.ok());
    EXPECT_TRUE(s.status().IsCorruption()) << s.status().ToString();
    EXPECT_NE(s.status().message().find("data.ckpt"), std::string::npos) << s.status().ToString();
    EXPECT_NE(s.status().message().find("was replaced"), std::string::npos) << s.status().ToString();
    EXPECT_EQ(FileBytes(copy + "/data.mdb"), before);
    // Compacting it is refused too, before it reads a page.
    auto c = CompactStore(copy);
    ASSERT_FALSE(c.ok());
    EXPECT_NE(c.status().message().find("not closed cleanly"), std::string::npos) << c.status().ToString();
  }
  // A damaged data.ckpt.
  {
    const std::string copy = t / "damaged";
    fs::copy(dir, copy, fs::copy_options::recursive);
    std::string ck = FileBytes(copy + "/data.ckpt");
    ck[ck.size() / 2] ^= 0x40;
    ASSERT_OK(Env::Default()->WriteFileAtomic(copy + "/data.ckpt", ck, false));
    const std::string before = FileBytes(copy + "/data.mdb");
    auto s = Store::Open(copy);
    ASSERT_FALSE(s.ok());
    EXPECT_TRUE(s.status().IsCorruption()) << s.status().ToString();
    EXPECT_NE(s.status().message().find("damaged"), std::string::npos) << s.status().ToString();
    EXPECT_EQ(FileBytes(copy + "/data.mdb"), before);
  }
  // The original, untouched, comes back whole.
  auto s = Store::Open(dir);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(ItemIds(s->get()), Range(201, 400));
}

}  // namespace
}  // namespace mbx
