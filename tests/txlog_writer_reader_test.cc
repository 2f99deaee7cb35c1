// TxLogWriter and TxLogReader (store/txlog_writer.h, store/txlog_reader.h)
// alone, without a store: records written are read back with their LSNs
// across file boundaries, from any record boundary; a torn tail ends the log
// cleanly and a reopened writer cuts it; damage before the tail and a missing
// generation are corruption; the quota refuses an append before writing
// anything; Rewind, RemoveBefore, reopening at an earlier LSN, the checkpoint
// file; a failed write is taken back out of the log; a failed sync is fatal
// until reopened; a log that lost its tail behind the checkpoint is a gap.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "store/file_io.h"
#include "store/txlog_format.h"
#include "store/txlog_reader.h"
#include "store/txlog_writer.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

constexpr uint64_t kFileBytes = 4096;  // the smallest log file

LogOptions Options(uint64_t quota_bytes = 0) {
  LogOptions o;
  o.file_bytes = kFileBytes;
  o.quota_bytes = quota_bytes;
  o.sync = SyncMode::kNone;
  return o;
}

// Payload n: `bytes` bytes that name n, so a misplaced record shows.
std::string Payload(int n, size_t bytes) {
  std::string p = "record " + std::to_string(n) + ":";
  while (p.size() < bytes) p.push_back(char('a' + (p.size() * 7 + size_t(n)) % 26));
  p.resize(bytes);
  return p;
}

std::unique_ptr<TxLogWriter> OpenWriter(const std::string& dir, uint64_t end_lsn = 0,
                                        const LogOptions& o = Options(), Env* env = Env::Default()) {
  auto w = TxLogWriter::Open(dir, o, end_lsn, env);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  return w.ok() ? std::move(w).value() : nullptr;
}

struct ReadBack {
  std::vector<LogRecord> records;
  Status status;  // the error Next returned, if any
  uint64_t valid_end_lsn = 0;
  bool torn_tail = false;
};

ReadBack ReadAll(const std::string& dir, uint64_t from_lsn = 0, uint64_t file_bytes = kFileBytes) {
  ReadBack out;
  TxLogReader r(dir, file_bytes, from_lsn);
  for (;;) {
    LogRecord rec;
    auto more = r.Next(&rec);
    if (!more.ok()) {
      out.status = more.status();
      return out;
    }
    if (!*more) break;
    out.records.push_back(std::move(rec));
  }
  out.valid_end_lsn = r.valid_end_lsn();
  out.torn_tail = r.torn_tail();
  return out;
}

// Appends payloads of these sizes (numbered from `first`); returns positions.
std::vector<LogPosition> AppendAll(TxLogWriter& w, const std::vector<size_t>& sizes, int first = 0) {
  std::vector<LogPosition> out;
  for (size_t i = 0; i < sizes.size(); ++i) {
    auto pos = w.Append(Payload(first + int(i), sizes[i]));
    EXPECT_TRUE(pos.ok()) << pos.status().ToString();
    if (pos.ok()) out.push_back(*pos);
  }
  return out;
}

// Fills a new log with `records` records of 500 bytes; returns the number
// of files it spans.
uint64_t FillLog(const std::string& dir, int records) {
  auto w = OpenWriter(dir);
  for (int i = 0; i < records; ++i) EXPECT_TRUE(w->Append(Payload(i, 500)).ok());
  return w->newest_generation();
}

// Reading `dir` from the start fails with Corruption naming `file`.
void ExpectCorruptionNaming(const std::string& dir, const std::string& file) {
  const ReadBack rb = ReadAll(dir);
  EXPECT_TRUE(rb.status.IsCorruption()) << rb.status.ToString();
  EXPECT_NE(rb.status.message().find(file), std::string::npos) << rb.status.ToString();
}

// Sizes that put records across file boundaries, one larger than a file.
const std::vector<size_t> kSizes = {100, 3000, 1500, 9000, 1, 4072, 700, 2500};

TEST(TxLogWriterReaderTest, RecordsReadBackWithTheirPositionsAcrossFiles) {
  TempDir t;
  const std::string dir = t / "logs";
  auto w = OpenWriter(dir);
  ASSERT_TRUE(w);
  const auto pos = AppendAll(*w, kSizes);
  ASSERT_EQ(pos.size(), kSizes.size());
  uint64_t lsn = 0;
  for (size_t i = 0; i < pos.size(); ++i) {
    EXPECT_EQ(pos[i].start_lsn, lsn);
    EXPECT_EQ(pos[i].end_lsn, lsn + kSizes[i] + txlog::kRecordOverheadBytes);
    lsn = pos[i].end_lsn;
  }
  EXPECT_EQ(w->end_lsn(), lsn);
  EXPECT_EQ(w->disk_bytes(), lsn);
  EXPECT_EQ(w->oldest_generation(), 1u);
  EXPECT_EQ(w->newest_generation(), txlog::GenerationOf(lsn - 1, kFileBytes));
  EXPECT_TRUE(fs::exists(dir + "/" + txlog::FileName(w->newest_generation())));

  const ReadBack rb = ReadAll(dir);
  ASSERT_TRUE(rb.status.ok()) << rb.status.ToString();
  ASSERT_EQ(rb.records.size(), kSizes.size());
  for (size_t i = 0; i < kSizes.size(); ++i) {
    EXPECT_EQ(rb.records[i].payload, Payload(int(i), kSizes[i])) << i;
    EXPECT_EQ(rb.records[i].start_lsn, pos[i].start_lsn);
    EXPECT_EQ(rb.records[i].end_lsn, pos[i].end_lsn);
  }
  EXPECT_EQ(rb.valid_end_lsn, lsn);
  EXPECT_FALSE(rb.torn_tail);
}

// The same records appended as gather lists (pieces of every size, empty
// ones among them, pieces that straddle files, a record larger than a file)
// read back exactly as when appended whole, at the same positions.
TEST(TxLogWriterReaderTest, ARecordAppendedInPiecesReadsBackAsAppendedWhole) {
  TempDir t;
  auto whole = OpenWriter(t / "whole");
  auto pieces = OpenWriter(t / "pieces");
  ASSERT_TRUE(whole && pieces);
  for (size_t i = 0; i < kSizes.size(); ++i) {
    const std::string p = Payload(int(i), kSizes[i]);
    std::vector<std::string_view> cut;
    const std::string_view v(p);
    for (size_t at = 0, step = 1 + i * 37; at < v.size(); at += step, step = step * 3 % 2000 + 1) {
      cut.push_back(v.substr(at, step));
      if (i % 2 == 0) cut.push_back({});  // an empty piece writes nothing
    }
    auto a = whole->Append(p);
    auto b = pieces->Append(cut);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->start_lsn, b->start_lsn);
    EXPECT_EQ(a->end_lsn, b->end_lsn);
  }
  const ReadBack rw = ReadAll(t / "whole"), rp = ReadAll(t / "pieces");
  ASSERT_TRUE(rp.status.ok()) << rp.status.ToString();
  ASSERT_EQ(rp.records.size(), kSizes.size());
  for (size_t i = 0; i < kSizes.size(); ++i) EXPECT_EQ(rp.records[i].payload, rw.records[i].payload) << i;
  for (uint64_t g = 1; g <= whole->newest_generation(); ++g) {
    std::string a, b;
    ASSERT_TRUE(Env::Default()->ReadFile(t / ("whole/" + txlog::FileName(g)), &a).ok());
    ASSERT_TRUE(Env::Default()->ReadFile(t / ("pieces/" + txlog::FileName(g)), &b).ok());
    EXPECT_EQ(a, b) << "generation " << g;
  }
}

// More pieces than one pwritev takes (IOV_MAX) go out in order.
TEST(TxLogWriterReaderTest, AppendVWritesMorePiecesThanOneSystemCallTakes) {
  TempDir t;
  auto f = Env::Default()->NewWritableFile(t / "f");
  ASSERT_TRUE(f.ok());
  std::string want;
  std::vector<std::string> own;
  for (int i = 0; i < 3000; ++i) own.push_back(std::to_string(i) + (i % 5 == 0 ? std::string(700, 'x') : ","));
  std::vector<std::string_view> v;
  for (const std::string& o : own) {
    v.push_back(o);
    want += o;
  }
  ASSERT_TRUE((*f)->AppendV(v).ok());
  EXPECT_EQ((*f)->Size(), want.size());
  ASSERT_TRUE((*f)->AppendV(std::vector<std::string_view>{"tail"}).ok());
  f->reset();
  std::string got;
  ASSERT_TRUE(Env::Default()->ReadFile(t / "f", &got).ok());
  EXPECT_EQ(got, want + "tail");
}

TEST(TxLogWriterReaderTest, ReadingStartsAtAnyRecordBoundary) {
  TempDir t;
  const std::string dir = t / "logs";
  auto w = OpenWriter(dir);
  const auto pos = AppendAll(*w, kSizes);
  for (size_t from = 0; from <= pos.size(); ++from) {
    SCOPED_TRACE(from);
    const uint64_t lsn = from < pos.size() ? pos[from].start_lsn : w->end_lsn();
    const ReadBack rb = ReadAll(dir, lsn);
    ASSERT_TRUE(rb.status.ok()) << rb.status.ToString();
    ASSERT_EQ(rb.records.size(), pos.size() - from);
    for (size_t i = from; i < pos.size(); ++i) {
      EXPECT_EQ(rb.records[i - from].payload, Payload(int(i), kSizes[i]));
    }
    EXPECT_EQ(rb.valid_end_lsn, w->end_lsn());
  }
}

TEST(TxLogWriterReaderTest, AnEmptyLogHasNoRecords) {
  TempDir t;
  auto w = OpenWriter(t / "logs");
  const ReadBack rb = ReadAll(t / "logs");
  EXPECT_TRUE(rb.status.ok()) << rb.status.ToString();
  EXPECT_TRUE(rb.records.empty());
  EXPECT_EQ(rb.valid_end_lsn, 0u);
  EXPECT_FALSE(rb.torn_tail);
}

TEST(TxLogWriterReaderTest, ATornTailEndsTheLogAndAReopenedWriterCutsIt) {
  TempDir t;
  const std::string dir = t / "logs";
  std::vector<LogPosition> pos;
  {
    auto w = OpenWriter(dir);
    pos = AppendAll(*w, {300, 500, 800});
  }
  const LogPosition last = pos.back();
  const std::string file = dir + "/" + txlog::FileName(1);
  ASSERT_EQ(fs::file_size(file), last.end_lsn);
  for (uint64_t cut = last.start_lsn + 1; cut < last.end_lsn; cut += 37) {
    SCOPED_TRACE(cut);
    fs::resize_file(file, cut);
    const ReadBack rb = ReadAll(dir);
    ASSERT_TRUE(rb.status.ok()) << rb.status.ToString();
    EXPECT_EQ(rb.records.size(), 2u);
    EXPECT_TRUE(rb.torn_tail);
    EXPECT_EQ(rb.valid_end_lsn, last.start_lsn);
  }
  // Reopened at the valid end, the writer cuts the torn bytes and goes on.
  auto w = OpenWriter(dir, last.start_lsn);
  ASSERT_TRUE(w);
  EXPECT_EQ(fs::file_size(file), last.start_lsn);
  ASSERT_TRUE(w->Append(Payload(9, 200)).ok());
  const ReadBack rb = ReadAll(dir);
  ASSERT_TRUE(rb.status.ok()) << rb.status.ToString();
  ASSERT_EQ(rb.records.size(), 3u);
  EXPECT_EQ(rb.records[2].payload, Payload(9, 200));
  EXPECT_FALSE(rb.torn_tail);
}

TEST(TxLogWriterReaderTest, DamageBeforeTheTailIsCorruptionNamingTheFile) {
  TempDir t;
  const std::string dir = t / "logs";
  ASSERT_GE(FillLog(dir, 40), 4u);
  {
    FILE* f = std::fopen((dir + "/" + txlog::FileName(1)).c_str(), "r+b");
    ASSERT_TRUE(f);
    std::fseek(f, 600, SEEK_SET);  // inside the second record
    for (int i = 0; i < 16; ++i) std::fputc(0x5A, f);
    std::fclose(f);
  }
  ExpectCorruptionNaming(dir, txlog::FileName(1));
}

TEST(TxLogWriterReaderTest, AMissingGenerationIsCorruption) {
  TempDir t;
  const std::string dir = t / "logs";
  ASSERT_GE(FillLog(dir, 30), 3u);
  fs::remove(dir + "/" + txlog::FileName(2));
  ExpectCorruptionNaming(dir, txlog::FileName(2));
}

TEST(TxLogWriterReaderTest, QuotaRefusesAnAppendBeforeWritingAndTheReserveLetsDeletesPass) {
  TempDir t;
  const std::string dir = t / "logs";
  auto w = OpenWriter(dir, 0, Options(/*quota_bytes=*/3000));
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->Append(Payload(0, 1000)).ok());
  ASSERT_TRUE(w->Append(Payload(1, 1000)).ok());
  const uint64_t end = w->end_lsn();
  auto refused = w->Append(Payload(2, 1000));
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(refused.status().IsQuotaExceeded()) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("log space exhausted"), std::string::npos);
  EXPECT_EQ(w->end_lsn(), end);
  EXPECT_EQ(w->disk_bytes(), end);
  // A space-freeing record may use the reserve.
  ASSERT_TRUE(w->Append(Payload(3, 1000), /*use_reserve=*/true).ok());
  const ReadBack rb = ReadAll(dir);
  ASSERT_EQ(rb.records.size(), 3u);
  EXPECT_EQ(rb.records[2].payload, Payload(3, 1000));
}

TEST(TxLogWriterReaderTest, RewindTakesRecordsBackOutOfTheLog) {
  TempDir t;
  const std::string dir = t / "logs";
  auto w = OpenWriter(dir);
  const auto pos = AppendAll(*w, kSizes);
  const uint64_t gens_before = w->newest_generation();
  ASSERT_TRUE(w->Rewind(pos[2].start_lsn).ok());
  EXPECT_EQ(w->end_lsn(), pos[2].start_lsn);
  EXPECT_LT(w->newest_generation(), gens_before);
  EXPECT_FALSE(fs::exists(dir + "/" + txlog::FileName(gens_before)));
  ASSERT_TRUE(w->Append(Payload(50, 5000)).ok());
  const ReadBack rb = ReadAll(dir);
  ASSERT_TRUE(rb.status.ok()) << rb.status.ToString();
  ASSERT_EQ(rb.records.size(), 3u);
  EXPECT_EQ(rb.records[0].payload, Payload(0, kSizes[0]));
  EXPECT_EQ(rb.records[1].payload, Payload(1, kSizes[1]));
  EXPECT_EQ(rb.records[2].payload, Payload(50, 5000));
  EXPECT_FALSE(w->Rewind(w->end_lsn() + 1).ok()) << "rewound past the end";
}

// A flusher asks for the log to be synced up to what it needs (the store's
// acknowledged groups): a sync since then covered it, so it does not sync
// again for what was appended after; a record appended at an LSN that a
// rewind gave back is not taken for synced.
TEST(TxLogWriterReaderTest, SyncToSyncsOnlyWhatNoSyncCoveredYet) {
  TempDir t;
  const std::string dir = t / "logs";
  LogOptions o = Options();
  o.sync = SyncMode::kBatch;
  o.sync_interval = std::chrono::hours(1);  // no timer syncs in this test
  auto w = OpenWriter(dir, 0, o);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->synced_lsn(), 0u);
  auto a = w->Append(Payload(0, 300));
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(w->SyncTo(a->end_lsn).ok());
  EXPECT_EQ(w->syncs(), 1u);
  EXPECT_EQ(w->synced_lsn(), a->end_lsn);
  auto b = w->Append(Payload(1, 300));
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(w->SyncTo(a->end_lsn).ok());  // covered by the sync before b
  EXPECT_EQ(w->syncs(), 1u);
  ASSERT_TRUE(w->SyncTo(b->end_lsn).ok());
  EXPECT_EQ(w->syncs(), 2u);
  EXPECT_EQ(w->synced_lsn(), b->end_lsn);
  // Back to a's start, and another record where a and b were: not synced.
  ASSERT_TRUE(w->Rewind(a->start_lsn).ok());
  EXPECT_EQ(w->synced_lsn(), a->start_lsn);
  auto c = w->Append(Payload(2, 700));
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(w->SyncTo(a->end_lsn).ok());
  EXPECT_EQ(w->syncs(), 3u);
  EXPECT_EQ(w->synced_lsn(), c->end_lsn);
  // What a reopened writer finds on disk counts as synced, as before.
  w.reset();
  w = OpenWriter(dir, c->end_lsn, o);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->synced_lsn(), c->end_lsn);
  ASSERT_TRUE(w->SyncTo(c->end_lsn).ok());
  EXPECT_EQ(w->syncs(), 0u);
}

TEST(TxLogWriterReaderTest, ReopeningAtAnEarlierLsnDropsWhatFollows) {
  TempDir t;
  const std::string dir = t / "logs";
  std::vector<LogPosition> pos;
  uint64_t newest = 0;
  {
    auto w = OpenWriter(dir);
    pos = AppendAll(*w, kSizes);
    newest = w->newest_generation();
  }
  auto w = OpenWriter(dir, pos[3].start_lsn);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->end_lsn(), pos[3].start_lsn);
  EXPECT_EQ(w->newest_generation(), txlog::GenerationOf(pos[3].start_lsn, kFileBytes));
  EXPECT_FALSE(fs::exists(dir + "/" + txlog::FileName(newest)));
  const ReadBack rb = ReadAll(dir);
  ASSERT_TRUE(rb.status.ok()) << rb.status.ToString();
  EXPECT_EQ(rb.records.size(), 3u);
  EXPECT_EQ(rb.valid_end_lsn, pos[3].start_lsn);
}

TEST(TxLogWriterReaderTest, RemoveBeforeDeletesOnlyWholeFilesBehindTheLsn) {
  TempDir t;
  const std::string dir = t / "logs";
  auto w = OpenWriter(dir);
  const auto pos = AppendAll(*w, kSizes);
  const uint64_t newest = w->newest_generation();
  ASSERT_GE(newest, 4u);
  // An LSN inside generation 3: generations 1 and 2 lie wholly before it.
  auto removed = w->RemoveBefore(2 * kFileBytes + 10);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(*removed, 2);
  EXPECT_EQ(w->oldest_generation(), 3u);
  EXPECT_FALSE(fs::exists(dir + "/" + txlog::FileName(2)));
  EXPECT_TRUE(fs::exists(dir + "/" + txlog::FileName(3)));
  // The records from a boundary in the files left still read.
  const size_t from = 4;
  ASSERT_GE(txlog::GenerationOf(pos[from].start_lsn, kFileBytes), 3u);
  const ReadBack rb = ReadAll(dir, pos[from].start_lsn);
  ASSERT_TRUE(rb.status.ok()) << rb.status.ToString();
  ASSERT_EQ(rb.records.size(), kSizes.size() - from);
  EXPECT_EQ(rb.records[0].payload, Payload(int(from), kSizes[from]));
  // Never the file being appended to, whatever the LSN.
  removed = w->RemoveBefore(w->end_lsn() + 10 * kFileBytes);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, int(newest - 3));
  EXPECT_EQ(w->oldest_generation(), newest);
  EXPECT_TRUE(fs::exists(dir + "/" + txlog::FileName(newest)));
  ASSERT_TRUE(w->Append(Payload(99, 100)).ok());
}

TEST(TxLogWriterReaderTest, CheckpointFileHoldsTheLsn) {
  TempDir t;
  const std::string dir = t / "logs";
  auto w = OpenWriter(dir);
  const auto pos = AppendAll(*w, {100, 200});
  ASSERT_TRUE(w->WriteCheckpointFile(pos[1].end_lsn).ok());
  std::string data;
  ASSERT_TRUE(Env::Default()->ReadFile(dir + "/" + txlog::kCheckpointFile, &data).ok());
  auto lsn = txlog::DecodeCheckpoint(data);
  ASSERT_TRUE(lsn.ok()) << lsn.status().ToString();
  EXPECT_EQ(*lsn, pos[1].end_lsn);
  data[data.size() / 2] ^= 0x01;
  EXPECT_FALSE(txlog::DecodeCheckpoint(data).ok()) << "a damaged checkpoint decoded";
}

// A full log file, once synced, leaves the page cache (it is read again only
// by a backup or a recovery, and its memory serves the next writes): with
// sync batch and full, every file before the current one has no cached page
// and reads back whole; with sync none nothing is synced, so nothing can go.
TEST(TxLogWriterReaderTest, FullSyncedLogFilesLeaveThePageCache) {
  for (SyncMode mode : {SyncMode::kBatch, SyncMode::kFull, SyncMode::kNone}) {
    SCOPED_TRACE(std::string(SyncModeName(mode)));
    TempDir t;
    const std::string dir = t / "logs";
    LogOptions o = Options();
    o.file_bytes = 64u << 10;
    o.sync = mode;
    auto w = OpenWriter(dir, 0, o);
    ASSERT_TRUE(w);
    for (int n = 0; n < 40; ++n) ASSERT_TRUE(w->Append(Payload(n, 10000)).ok());  // about 6 files
    const uint64_t newest = w->newest_generation();
    ASSERT_GE(newest, 5u);
    auto cached_before = [&](uint64_t end) {
      size_t n = 0;
      for (uint64_t g = w->oldest_generation(); g < end; ++g) n += testing::CachedPages(dir + "/" + txlog::FileName(g));
      return n;
    };
    if (mode == SyncMode::kBatch) {
      // The file rotated out last is synced (and dropped) by the next sync;
      // every one before it was by the rotation after it.
      EXPECT_EQ(cached_before(newest - 1), 0u) << "full, synced log files stayed in the page cache";
      ASSERT_TRUE(w->Sync().ok());
    }
    const size_t cached_before_newest = cached_before(newest);
    if (mode == SyncMode::kNone) {
      EXPECT_GT(cached_before_newest, 0u) << "unsynced pages cannot leave the cache";
    } else {
      EXPECT_EQ(cached_before_newest, 0u) << "full, synced log files stayed in the page cache";
    }
    EXPECT_GT(testing::CachedPages(dir + "/" + txlog::FileName(newest)), 0u) << "the file being written was dropped";
    w.reset();
    ReadBack rb = ReadAll(dir, 0, o.file_bytes);
    ASSERT_TRUE(rb.status.ok()) << rb.status.ToString();
    ASSERT_EQ(rb.records.size(), 40u);
    for (int n = 0; n < 40; ++n) EXPECT_EQ(rb.records[size_t(n)].payload, Payload(n, 10000)) << n;
  }
}

// Fails every Append to a log file while armed, and every Sync of one while
// fail_sync; everything else is POSIX.
class FailingAppendEnv final : public Env {
 public:
  bool armed = false;
  bool fail_sync = false;

  std::vector<std::string> events;  // "open NAME", "sync NAME", in order

  Result<std::unique_ptr<WritableFile>> OpenAppendable(const std::string& path) override {
    MBX_ASSIGN_OR_RETURN(auto f, Env::Default()->OpenAppendable(path));
    const std::string name = fs::path(path).filename().string();
    events.push_back("open " + name);
    return std::unique_ptr<WritableFile>(new File(std::move(f), &armed, &fail_sync, name, &events));
  }
  Status ReadFile(const std::string& path, std::string* out) override { return Env::Default()->ReadFile(path, out); }
  Status WriteFileAtomic(const std::string& path, std::string_view data, bool sync) override {
    return Env::Default()->WriteFileAtomic(path, data, sync);
  }
  Status RemoveFile(const std::string& path) override { return Env::Default()->RemoveFile(path); }
  Status SyncDir(const std::string& dir) override { return Env::Default()->SyncDir(dir); }
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    return Env::Default()->NewWritableFile(path);
  }
  Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) override {
    return Env::Default()->NewSequentialFile(path);
  }
  Status RenameFile(const std::string& from, const std::string& to) override {
    return Env::Default()->RenameFile(from, to);
  }
  Status CreateDir(const std::string& dir) override { return Env::Default()->CreateDir(dir); }
  Result<uint64_t> GetFileSize(const std::string& path) override { return Env::Default()->GetFileSize(path); }
  Status GetChildren(const std::string& dir, std::vector<std::string>* names) override {
    return Env::Default()->GetChildren(dir, names);
  }
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    return Env::Default()->LockFile(path);
  }

 private:
  class File final : public WritableFile {
   public:
    File(std::unique_ptr<WritableFile> f, const bool* armed, const bool* fail_sync, std::string name,
         std::vector<std::string>* events)
        : f_(std::move(f)), armed_(armed), fail_sync_(fail_sync), name_(std::move(name)), events_(events) {}
    Status Append(std::string_view data) override {
      if (*armed_) {
        // Half of it reaches the file, as in a write cut short by a full disk.
        (void)f_->Append(data.substr(0, data.size() / 2));
        return Status::IOError("injected: no space left on device");
      }
      return f_->Append(data);
    }
    Status Sync() override {
      events_->push_back("sync " + name_);
      if (*fail_sync_) return Status::IOError("injected: fdatasync: Input/output error");
      return f_->Sync();
    }
    Status Truncate(uint64_t size) override { return f_->Truncate(size); }
    uint64_t Size() const override { return f_->Size(); }

   private:
    std::unique_ptr<WritableFile> f_;
    const bool* armed_;
    const bool* fail_sync_;
    std::string name_;
    std::vector<std::string>* events_;
  };
};

// A failed fdatasync is fatal to the writer: the kernel may have dropped the
// pages it covered (and cleared the error, so a retry would "succeed"), so
// every later append and sync fails until the log is reopened, which reads
// what is on disk.
TEST(TxLogWriterReaderTest, AFailedSyncIsFatalToTheWriterUntilReopened) {
  TempDir t;
  const std::string dir = t / "logs";
  FailingAppendEnv env;
  LogOptions o = Options();
  o.sync = SyncMode::kFull;
  auto w = OpenWriter(dir, 0, o, &env);
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->Append(Payload(0, 1000)).ok());
  env.fail_sync = true;
  auto failed = w->Append(Payload(1, 1000));
  ASSERT_FALSE(failed.ok());
  env.fail_sync = false;  // the disk "works" again: the writer must not believe it
  auto after = w->Append(Payload(2, 1000));
  ASSERT_FALSE(after.ok());
  EXPECT_NE(after.status().message().find("reopen"), std::string::npos) << after.status().ToString();
  const Status sync = w->Sync();
  EXPECT_FALSE(sync.ok());
  EXPECT_NE(sync.message().find("reopen"), std::string::npos) << sync.ToString();
  const ReadBack rb = ReadAll(dir);
  ASSERT_TRUE(rb.status.ok()) << rb.status.ToString();
  w.reset();
  w = OpenWriter(dir, rb.valid_end_lsn, o, &env);
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->Append(Payload(3, 1000)).ok());
  const ReadBack again = ReadAll(dir);
  ASSERT_TRUE(again.status.ok()) << again.status.ToString();
  ASSERT_EQ(again.records.size(), 2u);
  EXPECT_EQ(again.records[0].payload, Payload(0, 1000));
  EXPECT_EQ(again.records[1].payload, Payload(3, 1000));
}

// A machine crash can keep the database's synced commit but not the log's
// unsynced tail (sync batch): the newest file ends before the checkpoint.
// That is no loss for the store (the database has those records), so it is
// not an error; but the records are gone from the log, and with the gap
// noted in E00.gap no roll-forward from before it may silently stop there.
TEST(TxLogWriterReaderTest, ALogThatLostItsTailBehindTheCheckpointIsAGapNoRollForwardCrosses) {
  TempDir t;
  const std::string dir = t / "logs";
  std::vector<LogPosition> pos;
  {
    auto w = OpenWriter(dir);
    pos = AppendAll(*w, {300, 500, 800, 400});
  }
  const std::string file = dir + "/" + txlog::FileName(1);
  const uint64_t checkpoint = pos[3].end_lsn;  // the database applied all four
  const uint64_t cut = pos[1].end_lsn + 10;    // the log kept two and a bit
  fs::resize_file(file, cut);
  {
    TxLogReader r(dir, kFileBytes, checkpoint);
    LogRecord rec;
    auto more = r.Next(&rec);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    EXPECT_FALSE(*more);
    EXPECT_TRUE(r.lost_behind_checkpoint());
    EXPECT_EQ(r.lost_from_lsn(), cut);
    EXPECT_EQ(r.valid_end_lsn(), checkpoint);
  }
  // Without the note, a roll-forward from the start stops at the cut as at a
  // torn tail; with it, that is refused.
  ReadBack rb = ReadAll(dir);
  ASSERT_TRUE(rb.status.ok());
  EXPECT_EQ(rb.records.size(), 2u);
  std::FILE* g = std::fopen((dir + "/" + txlog::kGapFile).c_str(), "w");
  ASSERT_TRUE(g);
  std::fprintf(g, "%llu %llu\n", (unsigned long long)pos[1].end_lsn, (unsigned long long)checkpoint);
  std::fclose(g);
  rb = ReadAll(dir);
  EXPECT_TRUE(rb.status.IsCorruption()) << rb.status.ToString();
  EXPECT_NE(rb.status.message().find("restore a full backup"), std::string::npos) << rb.status.ToString();
  // The writer goes on at the checkpoint; reading from there is clean.
  auto w = OpenWriter(dir, checkpoint);
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->Append(Payload(7, 200)).ok());
  rb = ReadAll(dir, checkpoint);
  ASSERT_TRUE(rb.status.ok()) << rb.status.ToString();
  ASSERT_EQ(rb.records.size(), 1u);
  EXPECT_EQ(rb.records[0].payload, Payload(7, 200));
}

// The writer syncs a full file's tail after opening the next file (its
// writeback started at the rotation), and before any sync of a later file
// and before opening the one after: so when a machine stops, the file the
// checkpoint lies in can have lost its tail while one file follows it, and
// that file then holds nothing that was synced. The log ends there, behind
// the checkpoint (a gap, as above). With two files after it, that cannot
// come of a stop: it is damage.
TEST(TxLogWriterReaderTest, ACheckpointsFileThatLostItsTailBeforeTheNextFileEndsTheLogThere) {
  for (int later_files : {1, 2}) {
    SCOPED_TRACE(std::to_string(later_files) + " later file(s)");
    TempDir t;
    const std::string dir = t / "logs";
    std::vector<LogPosition> pos;
    {
      auto w = OpenWriter(dir);
      pos = AppendAll(*w, {3000, 3000});  // into file 2
      if (later_files == 2) pos.push_back(*w->Append(Payload(9, 4096)));  // and file 3
      ASSERT_EQ(w->newest_generation(), uint64_t(1 + later_files));
    }
    const uint64_t checkpoint = pos[0].end_lsn;  // in file 1
    fs::resize_file(dir + "/" + txlog::FileName(1), 1000);
    TxLogReader r(dir, kFileBytes, checkpoint);
    LogRecord rec;
    auto more = r.Next(&rec);
    if (later_files == 1) {
      ASSERT_TRUE(more.ok()) << more.status().ToString();
      EXPECT_FALSE(*more);
      EXPECT_TRUE(r.lost_behind_checkpoint());
      EXPECT_EQ(r.lost_from_lsn(), 1000u);
      EXPECT_EQ(r.valid_end_lsn(), checkpoint);
      // The writer goes on at the checkpoint: the file after it goes.
      auto w = OpenWriter(dir, checkpoint);
      ASSERT_TRUE(w);
      EXPECT_EQ(w->newest_generation(), 1u);
    } else {
      ASSERT_FALSE(more.ok());
      EXPECT_TRUE(more.status().IsCorruption()) << more.status().ToString();
      EXPECT_NE(more.status().message().find(txlog::FileName(1)), std::string::npos) << more.status().ToString();
    }
  }
}

// The same stop seen from further back (the checkpoint a file or more
// before the rotated one, as when the database lags the log by a group or
// two): reading through the short file, the log ends within it, a torn
// tail, and a reopened writer goes on from there. A short file with two or
// more after it is damage.
TEST(TxLogWriterReaderTest, AShortFileWithOneFileAfterItIsATornTailWithTwoItIsDamage) {
  for (int later_files : {1, 2}) {
    SCOPED_TRACE(std::to_string(later_files) + " later file(s)");
    TempDir t;
    const std::string dir = t / "logs";
    std::vector<LogPosition> pos;
    {
      auto w = OpenWriter(dir);
      while (w->newest_generation() < uint64_t(2 + later_files)) {
        pos.push_back(*w->Append(Payload(int(pos.size()), 1500)));
      }
    }
    const uint64_t cut = kFileBytes + 2100;  // file 2 keeps 2100 bytes, mid-record
    fs::resize_file(dir + "/" + txlog::FileName(2), 2100);
    const ReadBack rb = ReadAll(dir);
    if (later_files == 2) {
      EXPECT_TRUE(rb.status.IsCorruption()) << rb.status.ToString();
      EXPECT_NE(rb.status.message().find(txlog::FileName(2)), std::string::npos) << rb.status.ToString();
      continue;
    }
    ASSERT_TRUE(rb.status.ok()) << rb.status.ToString();
    EXPECT_TRUE(rb.torn_tail);
    size_t whole = 0;
    while (whole < pos.size() && pos[whole].end_lsn <= cut) ++whole;
    ASSERT_GT(whole, 2u);
    ASSERT_EQ(rb.records.size(), whole);
    for (size_t i = 0; i < whole; ++i) EXPECT_EQ(rb.records[i].payload, Payload(int(i), 1500)) << i;
    EXPECT_EQ(rb.valid_end_lsn, pos[whole - 1].end_lsn);
    auto w = OpenWriter(dir, rb.valid_end_lsn);
    ASSERT_TRUE(w);
    EXPECT_EQ(w->newest_generation(), 2u);
    ASSERT_TRUE(w->Append(Payload(99, 1500)).ok());
    const ReadBack again = ReadAll(dir);
    ASSERT_TRUE(again.status.ok()) << again.status.ToString();
    ASSERT_EQ(again.records.size(), whole + 1);
    EXPECT_EQ(again.records.back().payload, Payload(99, 1500));
  }
}

// The order of syncs that makes the state above the only one a stop can
// leave: a full file's sync waits until the next sync or rotation, and comes
// before them.
TEST(TxLogWriterReaderTest, ARotatedFileIsSyncedBeforeAnyLaterFileIsSyncedOrOpened) {
  TempDir t;
  const std::string dir = t / "logs";
  FailingAppendEnv env;
  LogOptions o = Options();
  o.sync = SyncMode::kBatch;
  o.sync_interval = std::chrono::hours(1);  // no sync but the ones asked for
  auto w = OpenWriter(dir, 0, o, &env);
  ASSERT_TRUE(w);
  env.events.clear();
  ASSERT_TRUE(w->Append(Payload(0, 3000)).ok());
  ASSERT_TRUE(w->Append(Payload(1, 3000)).ok());  // runs into file 2
  EXPECT_EQ(env.events, (std::vector<std::string>{"open " + txlog::FileName(2)}));
  ASSERT_TRUE(w->Sync().ok());
  EXPECT_EQ(env.events, (std::vector<std::string>{"open " + txlog::FileName(2), "sync " + txlog::FileName(1),
                                                  "sync " + txlog::FileName(2)}));
  env.events.clear();
  ASSERT_TRUE(w->Append(Payload(2, 3000)).ok());  // runs into file 3
  EXPECT_EQ(env.events, (std::vector<std::string>{"open " + txlog::FileName(3)}));
  ASSERT_TRUE(w->Append(Payload(3, 4000)).ok());  // runs into file 4: file 2 synced first
  EXPECT_EQ(env.events, (std::vector<std::string>{"open " + txlog::FileName(3), "sync " + txlog::FileName(2),
                                                  "open " + txlog::FileName(4)}));
  env.events.clear();
  w.reset();  // the close syncs the file rotated out, then the newest
  EXPECT_EQ(env.events, (std::vector<std::string>{"sync " + txlog::FileName(3), "sync " + txlog::FileName(4)}));
  const ReadBack rb = ReadAll(dir, 0, kFileBytes);
  ASSERT_TRUE(rb.status.ok()) << rb.status.ToString();
  EXPECT_EQ(rb.records.size(), 4u);
}

TEST(TxLogWriterReaderTest, AFailedAppendIsTakenBackOutOfTheLog) {
  TempDir t;
  const std::string dir = t / "logs";
  FailingAppendEnv env;
  auto w = OpenWriter(dir, 0, Options(), &env);
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->Append(Payload(0, 1000)).ok());
  const uint64_t end = w->end_lsn();
  env.armed = true;
  auto failed = w->Append(Payload(1, 6000));  // would span two files
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), Status::Code::kIOError) << failed.status().ToString();
  EXPECT_EQ(w->end_lsn(), end);
  EXPECT_EQ(fs::file_size(dir + "/" + txlog::FileName(1)), end);
  env.armed = false;
  ASSERT_TRUE(w->Append(Payload(2, 1000)).ok());
  const ReadBack rb = ReadAll(dir);
  ASSERT_TRUE(rb.status.ok()) << rb.status.ToString();
  ASSERT_EQ(rb.records.size(), 2u);
  EXPECT_EQ(rb.records[0].payload, Payload(0, 1000));
  EXPECT_EQ(rb.records[1].payload, Payload(2, 1000));
  EXPECT_FALSE(rb.torn_tail);
}

}  // namespace
}  // namespace mbx
