// mbxmove gen: generate a dataset of mailboxes into a store.
#include <cstdio>
#include <string>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/store_setup.h"
#include "datagen/populate.h"
#include "store/organization.h"

namespace mbx::cli {

namespace {

struct GenArgs {
  std::string org;
  std::string store;
  std::string preset = "small";
  uint32_t mailboxes = 0;
  std::string size;
  uint64_t seed = 1;
  double corrupt_rate = 0;
  int threads = 0;
  NewStoreArgs new_store;
  bool json = false;
};

int RunGen(const GenArgs& a) {
  auto preset = datagen::FindPreset(a.preset);
  if (!preset.ok()) return Fail(preset.status());
  datagen::PopulateOptions po;
  po.gen.seed = a.seed;
  po.gen.mailboxes = a.mailboxes ? a.mailboxes : preset->mailboxes;
  po.gen.total_bytes = preset->total_bytes;
  if (!a.size.empty()) {
    auto b = ParseBytes(a.size);
    if (!b.ok()) return Fail(b.status());
    po.gen.total_bytes = *b;
  } else if (a.mailboxes) {
    // Keep the preset's bytes per mailbox when only the count changes.
    po.gen.total_bytes = preset->total_bytes / std::max<uint32_t>(1, preset->mailboxes) * a.mailboxes;
  }
  po.corrupt_rate = a.corrupt_rate;
  po.threads = a.threads;
  if (a.corrupt_rate < 0 || a.corrupt_rate > 1) return Fail("--corrupt-rate must be between 0 and 1", kExitUsage);
  if (Status s = CheckNewStore(a.store, a.new_store); !s.ok()) return Fail(s);

  auto org = OpenOrCreateWithStore(a.org, a.store, a.new_store, a.json);
  if (!org.ok()) return Fail(org.status());
  datagen::PopulateProgress progress;
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t total = po.gen.total_bytes;
  const uint64_t boxes = po.gen.mailboxes;
  Progress line(a.json, [&] {
    double done = double(progress.logical_bytes.load());
    double secs = SecondsSince(t0);
    char buf[200];
    std::snprintf(buf, sizeof buf, "gen: %llu/%llu mailboxes, %s of ~%s, %.1f MiB/s",
                  (unsigned long long)progress.mailboxes_done.load(), (unsigned long long)boxes,
                  FormatBytes(done).c_str(), FormatBytes(double(total)).c_str(),
                  secs > 0 ? done / secs / 1048576.0 : 0.0);
    return std::string(buf);
  });
  auto r = datagen::Populate(**org, a.store, po, &progress);
  line.Stop();
  if (!r.ok()) return Fail(r.status());
  const double mibs = r->seconds > 0 ? double(r->logical_bytes) / r->seconds / 1048576.0 : 0;
  if (a.json) {
    json corrupted = json::array();
    for (const auto& c : r->corrupted) {
      corrupted.push_back({{"mailbox", c.mailbox.ToString()}, {"user", c.user},
                           {"folder", c.folder_path}, {"folder_id", c.folder_id}, {"item_id", c.item_id}});
    }
    PrintJson({{"org", a.org}, {"store", a.store}, {"preset", a.preset}, {"seed", a.seed},
               {"mailboxes", r->mailboxes}, {"folders", r->folders}, {"items", r->items},
               {"bytes", r->logical_bytes}, {"stored_bytes", r->stored_bytes},
               {"corrupted_items", r->corrupted.size()}, {"corrupted", corrupted},
               {"seconds", r->seconds}, {"mib_per_s", mibs}});
  } else {
    std::printf("generated %llu mailboxes, %llu folders, %llu items into store %s of %s\n",
                (unsigned long long)r->mailboxes, (unsigned long long)r->folders,
                (unsigned long long)r->items, a.store.c_str(), a.org.c_str());
    std::printf("  %s logical, %s stored (compression %.2fx), %llu corrupted items\n",
                FormatBytes(double(r->logical_bytes)).c_str(), FormatBytes(double(r->stored_bytes)).c_str(),
                r->stored_bytes ? double(r->logical_bytes) / double(r->stored_bytes) : 0.0,
                (unsigned long long)r->corrupted.size());
    std::printf("  %.2f s, %.1f MiB/s (logical)\n", r->seconds, mibs);
  }
  return kExitOk;
}

}  // namespace

void AddGenCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<GenArgs>();
  std::string presets;
  for (const auto& p : datagen::Presets()) presets += "\n  " + p.name + ": " + p.description;
  CLI::App* c = app.add_subcommand(
      "gen",
      "Generate deterministic synthetic mailboxes into a store (created if missing), and register "
      "their users in the directory with homeMDB pointing at that store.\n"
      "Same --seed, same data, bit for bit, whatever the thread count.\n"
      "A store created by gen uses circular logging by default, so generating a large dataset does "
      "not fill the disk with transaction logs (--log-mode backup-flush to keep them).\n"
      "Presets:" + presets);
  c->add_option("--org", a->org, "Organisation folder (created if missing or empty)")->required();
  c->add_option("--store", a->store, "Store to fill (created if not registered)")->required();
  c->add_option("--preset", a->preset, "Dataset preset: tiny, small, medium, large")->capture_default_str();
  c->add_option("--mailboxes", a->mailboxes, "Number of mailboxes (default: the preset's)");
  c->add_option("--size", a->size, "Total logical bytes, e.g. 500MB, 2GiB (default: the preset's)");
  c->add_option("--seed", a->seed, "Random seed")->capture_default_str();
  c->add_option("--corrupt-rate", a->corrupt_rate,
                "Fraction of items written as damaged records (listed exactly with --json)")
      ->capture_default_str();
  c->add_option("--threads", a->threads, "Generator threads (0 = all cores)")->capture_default_str();
  AddNewStoreOptions(c, &a->new_store);
  c->add_flag("--json", a->json, "Print a JSON summary (mailboxes, items, bytes, corrupted_items, ...)");
  c->callback([a, exit_code] { *exit_code = RunGen(*a); });
}

}  // namespace mbx::cli
