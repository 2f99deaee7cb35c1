// Google Benchmark microbenchmarks of the hot paths: the item codec by
// message class, zstd levels on generated bodies, the group-commit writer by
// batch size, transaction-log appends in each sync mode, an online pass's
// change set read in pages, and datagen.
//
//   build/release/bench/mbx_microbench --benchmark_out=micro.json --benchmark_out_format=json
#include <benchmark/benchmark.h>
#include <zstd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "datagen/mailbox_gen.h"
#include "store/item_codec.h"
#include "store/store.h"
#include "store/txlog_writer.h"

namespace mbx {
namespace {

namespace fs = std::filesystem;

// A scratch folder under $TMPDIR, removed at exit.
std::string Scratch(const std::string& name) {
  const char* base = std::getenv("TMPDIR");
  std::string dir = std::string(base && *base ? base : "/tmp") + "/mbx-microbench-" + std::to_string(::getpid());
  fs::create_directories(dir);
  static bool registered = false;
  static std::string root;
  if (!registered) {
    root = dir;
    registered = true;
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(root, ec);
    });
  }
  std::string p = dir + "/" + name;
  fs::remove_all(p);
  return p;
}

// Items of one generated mailbox of ~12 MB, by message class.
struct Pool : datagen::FolderSink {
  std::map<std::string, std::vector<Item>> by_class;
  Status OnFolder(const FolderInfo&) override { return Status::Ok(); }
  Status OnItem(uint32_t, uint64_t, Item&& item) override {
    auto& v = by_class[item.message_class];
    if (v.size() < 400) v.push_back(std::move(item));
    return Status::Ok();
  }
};

const Pool& ItemPool() {
  static Pool* pool = [] {
    auto* p = new Pool();
    datagen::GenOptions g;
    g.seed = 42;
    g.mailboxes = 1;
    g.total_bytes = 12u << 20;
    auto plan = datagen::PlanMailboxes(g);
    (void)datagen::GenerateMailbox(plan[0], p);
    return p;
  }();
  return *pool;
}

const std::vector<std::string> kClasses = {"IPM.Note", "IPM.Appointment", "IPM.Contact", "IPM.Task",
                                           "IPM.StickyNote", "IPM.Activity"};

void BM_EncodeItem(benchmark::State& state) {
  const auto& items = ItemPool().by_class.at(kClasses[size_t(state.range(0))]);
  state.SetLabel(kClasses[size_t(state.range(0))]);
  std::string out;
  size_t i = 0;
  uint64_t bytes = 0;
  for (auto _ : state) {
    const Item& it = items[i++ % items.size()];
    benchmark::DoNotOptimize(EncodeItem(it, CodecOptions{3}, &out));
    bytes += it.LogicalSize();
  }
  state.SetBytesProcessed(int64_t(bytes));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeItem)->DenseRange(0, 5);

std::vector<std::string> Encoded(const std::vector<Item>& items, int level) {
  std::vector<std::string> recs;
  for (const auto& it : items) {
    std::string r;
    (void)EncodeItem(it, CodecOptions{level}, &r);
    recs.push_back(std::move(r));
  }
  return recs;
}

// Runs `read` on encoded records of one message class, round robin.
template <typename ReadFn>
void ReadRecords(benchmark::State& state, ReadFn read) {
  const auto& items = ItemPool().by_class.at(kClasses[size_t(state.range(0))]);
  state.SetLabel(kClasses[size_t(state.range(0))]);
  auto recs = Encoded(items, 3);
  size_t i = 0;
  uint64_t bytes = 0;
  for (auto _ : state) {
    const size_t k = i++ % recs.size();
    auto r = read(recs[k]);
    benchmark::DoNotOptimize(r);
    bytes += items[k].LogicalSize();
  }
  state.SetBytesProcessed(int64_t(bytes));
  state.SetItemsProcessed(state.iterations());
}

void BM_DecodeItem(benchmark::State& state) {
  ReadRecords(state, [](const std::string& r) { return DecodeItem(r); });
}
BENCHMARK(BM_DecodeItem)->DenseRange(0, 5);

// What a move runs on every item: full verification without building the item.
void BM_VerifyRecord(benchmark::State& state) {
  ReadRecords(state, [](const std::string& r) { return VerifyRecordWithSize(r); });
}
BENCHMARK(BM_VerifyRecord)->DenseRange(0, 5);

// zstd on 1 MiB of generated mail messages (RFC 5322), one at a time as the store does.
void BM_ZstdBodies(benchmark::State& state) {
  const int level = int(state.range(0));
  std::vector<std::string> bodies;
  size_t total = 0;
  for (const auto& it : ItemPool().by_class.at("IPM.Note")) {
    if (total > (1u << 20)) break;
    bodies.push_back(it.mime);
    total += it.mime.size();
  }
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  std::string out;
  size_t compressed = 0;
  for (auto _ : state) {
    compressed = 0;
    for (const auto& b : bodies) {
      out.resize(ZSTD_compressBound(b.size()));
      compressed += ZSTD_compressCCtx(cctx, out.data(), out.size(), b.data(), b.size(), level);
    }
  }
  ZSTD_freeCCtx(cctx);
  state.SetBytesProcessed(int64_t(state.iterations() * total));
  state.counters["ratio"] = double(total) / double(compressed);
}
BENCHMARK(BM_ZstdBodies)->Arg(1)->Arg(3)->Arg(6)->Arg(9)->Arg(19)->Unit(benchmark::kMillisecond);

// The group-commit writer: 32 MiB of 20 KiB records per iteration, in
// batches of range(0) KiB, four batches in flight; sync none (the writer's
// own cost) and batch (what moves use by default).
void BM_GroupCommitWriter(benchmark::State& state) {
  const size_t batch_kib = size_t(state.range(0));
  const SyncMode sync = SyncMode(state.range(1));
  state.SetLabel(std::string("sync ") + std::string(SyncModeName(sync)));
  std::string rec(20 << 10, 'x');
  for (size_t i = 0; i < rec.size(); ++i) rec[i] = char((i * 2654435761u) >> 13);
  uint64_t bytes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const std::string dir = Scratch("gc");
    StoreOptions so;
    so.log.mode = LogMode::kCircular;
    so.log.sync = sync;
    (void)Store::Create(dir, "B", so);
    auto st = Store::Open(dir);
    state.ResumeTiming();
    std::vector<std::future<Status>> inflight;
    WriteBatch b;
    uint64_t id = 1;
    for (size_t written = 0; written < (32u << 20); written += rec.size()) {
      Guid g;
      g.bytes[0] = 1;
      b.PutItem(g, 1, id++, rec);
      if (b.ApproximateBytes() >= batch_kib << 10) {
        inflight.push_back((*st)->WriteAsync(std::move(b)));
        b.Clear();
        if (inflight.size() >= 4) {
          (void)inflight.front().get();
          inflight.erase(inflight.begin());
        }
      }
    }
    if (!b.empty()) inflight.push_back((*st)->WriteAsync(std::move(b)));
    for (auto& f : inflight) (void)f.get();
    bytes += 32u << 20;
    state.PauseTiming();
    auto stats = (*st)->stats();
    state.counters["batches_per_group"] = stats.writer.groups ? double(stats.writer.batches) / double(stats.writer.groups) : 0;
    st->reset();
    state.ResumeTiming();
  }
  state.SetBytesProcessed(int64_t(bytes));
}
BENCHMARK(BM_GroupCommitWriter)
    ->ArgsProduct({{64, 256, 1024, 4096}, {int(SyncMode::kNone), int(SyncMode::kBatch)}})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3)
    ->UseRealTime();

// Transaction-log appends: records of range(1) KiB in sync mode range(0).
void BM_LogAppend(benchmark::State& state) {
  const SyncMode sync = SyncMode(state.range(0));
  const size_t rec_bytes = size_t(state.range(1)) << 10;
  state.SetLabel(std::string("sync ") + std::string(SyncModeName(sync)));
  const std::string dir = Scratch("log");
  LogOptions lo;
  lo.sync = sync;
  lo.mode = LogMode::kCircular;
  auto w = TxLogWriter::Open(dir, lo, 0, Env::Default());
  std::string payload(rec_bytes, 'p');
  uint64_t bytes = 0;
  for (auto _ : state) {
    auto pos = (*w)->Append(payload);
    benchmark::DoNotOptimize(pos);
    bytes += payload.size();
    if ((*w)->file_count() > 8) (void)(*w)->RemoveBefore((*w)->end_lsn());
  }
  state.SetBytesProcessed(int64_t(bytes));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LogAppend)
    ->ArgsProduct({{int(SyncMode::kFull), int(SyncMode::kBatch), int(SyncMode::kNone)}, {4, 64, 1024}})
    ->UseRealTime();

// An online move's pass read in pages (Store::ReadChanges): range(0) items
// delivered since the sync point, read in pages of 800 records each (the
// default 16 MiB page at the generated mean item of ~20 KiB). Reports the
// pages and the time per item of the change set.
void BM_ReadChangesPaged(benchmark::State& state) {
  const uint64_t n = uint64_t(state.range(0));
  const std::string dir = Scratch("changes");
  StoreOptions so;
  so.log.mode = LogMode::kCircular;
  so.log.sync = SyncMode::kNone;
  (void)Store::Create(dir, "C", so);
  auto st = Store::Open(dir);
  if (!st.ok()) {
    state.SkipWithError(st.status().ToString().c_str());
    return;
  }
  Guid g;
  g.bytes[0] = 7;
  {
    WriteBatch b;
    MailboxInfo m;
    m.guid = g;
    m.owner = "bench";
    m.folder_count = 2;
    b.PutMailbox(m);
    b.PutFolder(g, FolderInfo{1, 0, FolderKind::kRoot, "Top of Information Store"});
    b.PutFolder(g, FolderInfo{2, 1, FolderKind::kInbox, "Inbox"});
    if (Status w = (*st)->Write(std::move(b)); !w.ok()) {
      state.SkipWithError(w.ToString().c_str());
      return;
    }
  }
  const uint64_t since = *(*st)->TrackChanges(g, 0);
  std::string rec;
  (void)EncodeItem(ItemPool().by_class.at("IPM.Note").front(), CodecOptions{}, &rec);
  ClientOp d;
  d.kind = ClientOp::Kind::kDeliver;
  d.folder_id = 2;
  d.record = rec;
  for (uint64_t i = 0; i < n; ++i) {
    if (auto r = (*st)->ApplyClientOp(g, d); !r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      return;
    }
  }
  uint64_t pages = 0, items = 0;
  for (auto _ : state) {
    ChangesPage page;
    page.max_record_bytes = 800 * rec.size();
    pages = items = 0;
    for (;;) {
      auto cs = (*st)->ReadChanges(g, since, page);
      if (!cs.ok()) {
        state.SkipWithError(cs.status().ToString().c_str());
        return;
      }
      ++pages;
      items += cs->items.size();
      if (!cs->more) break;
      page.after_item = cs->next_after_item;
    }
  }
  state.counters["pages"] = double(pages);
  state.counters["items"] = double(items);
  state.SetItemsProcessed(int64_t(items) * state.iterations());
}
BENCHMARK(BM_ReadChangesPaged)->Arg(4000)->Arg(16000)->Arg(64000)->Unit(benchmark::kMillisecond)->UseRealTime();

// Datagen: one 8 MB mailbox per iteration, into a sink that only counts.
void BM_DatagenMailbox(benchmark::State& state) {
  struct Count : datagen::FolderSink {
    uint64_t bytes = 0, items = 0;
    Status OnFolder(const FolderInfo&) override { return Status::Ok(); }
    Status OnItem(uint32_t, uint64_t, Item&& it) override {
      bytes += it.LogicalSize();
      ++items;
      return Status::Ok();
    }
  } sink;
  datagen::GenOptions g;
  g.seed = 7;
  g.mailboxes = 1;
  g.total_bytes = 8u << 20;
  auto plan = datagen::PlanMailboxes(g);
  for (auto _ : state) (void)datagen::GenerateMailbox(plan[0], &sink);
  state.SetBytesProcessed(int64_t(sink.bytes));
  state.SetItemsProcessed(int64_t(sink.items));
}
BENCHMARK(BM_DatagenMailbox)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace mbx

BENCHMARK_MAIN();
