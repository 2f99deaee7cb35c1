// mbxmove bench: the concurrency sweep.
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>

#include "bench/soak.h"
#include "bench/sweep.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "bench/directory_sweep.h"
#include "bench/remote_sweep.h"
#include "bench/scaleout_sweep.h"
#include "net/link_proxy.h"

namespace mbx::cli {

namespace {

struct BenchArgs {
  std::string preset = "small", presets, org, from, concurrency = "1,2,4,8,16", sync = "batch",
              log_mode = "backup-flush", out = "out/bench";
  int repeat = 3, recompress = -1;
  double soak_minutes = 0;
  uint64_t seed = 1;
  bool json = false;
  bool remote = false;
  std::string directory = "lmdb";
  std::string rtt = "0,1,10,50", rate = "0";
  bool scale_out = false;
  std::string movers = "1,2,4", capacity_threads = "1,4,16";
  int servers = 3;
  double lease = 5, capacity_seconds = 3;
  bool repeat_given = false, out_given = false, rtt_given = false, concurrency_given = false;
  bool online = false;
  double load = 200;
  std::string load_mix = "deliver:60,flag:25,move:10,delete:5";
};

Result<std::vector<std::string>> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) return Status::InvalidArgument("empty element in list '" + s + "'");
    out.push_back(item);
  }
  if (out.empty()) return Status::InvalidArgument("empty list");
  return out;
}

int RunSoakCommand(const BenchArgs& a) {
  bench::SoakOptions so;
  so.minutes = a.soak_minutes;
  so.preset = a.preset == "small" && a.presets.empty() ? "tiny" : a.preset;
  so.out_dir = a.out == "out/bench" ? "out/soak" : a.out;
  so.seed = a.seed;
  so.quiet = a.json;
  auto r = bench::RunSoak(so);
  if (!r.ok()) return Fail(r.status());
  if (a.json) {
    PrintJson(*r);
  } else {
    const json& j = *r;
    std::printf("soak: %.1f min, %llu rounds, %llu mailbox moves (%llu failed), %s moved, %llu read retries, "
                "%llu deliveries (%llu refused), %llu mailboxes checked: %s\n",
                j["minutes"].get<double>(), j["rounds"].get<unsigned long long>(),
                j["mailbox_moves"].get<unsigned long long>(), j["failed_moves"].get<unsigned long long>(),
                FormatBytes(j["bytes_moved"].get<double>()).c_str(), j["read_retries"].get<unsigned long long>(),
                j["deliveries"].get<unsigned long long>(), j["deliveries_refused"].get<unsigned long long>(),
                j["mailboxes_checked"].get<unsigned long long>(), j["passed"].get<bool>() ? "PASSED" : "FAILED");
    for (const auto& p : j["problems"]) std::printf("  problem: %s\n", p.get<std::string>().c_str());
  }
  return (*r)["passed"].get<bool>() ? kExitOk : kExitPartial;
}

Result<std::string> SelfExe() {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return Status::IOError("cannot find the mbxmove executable (/proc/self/exe)");
  exe[n] = '\0';
  return std::string(exe);
}

Result<std::vector<int>> ParseInts(const std::string& list, const char* flag, int lo, int hi) {
  MBX_ASSIGN_OR_RETURN(std::vector<std::string> items, SplitList(list));
  std::vector<int> out;
  for (const auto& l : items) {
    char* end = nullptr;
    long v = std::strtol(l.c_str(), &end, 10);
    if (*end != '\0' || v < lo || v > hi) {
      return Status::InvalidArgument(std::string(flag) + " takes numbers " + std::to_string(lo) + ".." +
                                     std::to_string(hi) + ", e.g. " + (lo == 0 ? "0,1,10,50" : "1,2,4,8"));
    }
    out.push_back(int(v));
  }
  return out;
}

int RunRemoteCommand(const BenchArgs& a) {
  bench::RemoteSweepOptions o;
  auto levels = ParseInts(a.concurrency, "--concurrency", 1, 256);
  if (!levels.ok()) return Fail(levels.status().message(), kExitUsage);
  o.levels = *levels;
  auto rtt = ParseInts(a.rtt, "--rtt", 0, 10000);
  if (!rtt.ok()) return Fail(rtt.status().message(), kExitUsage);
  o.rtt_ms = *rtt;
  auto rate = net::ParseRate(a.rate);
  if (!rate.ok()) return Fail(rate.status().message(), kExitUsage);
  o.rate_bytes_per_s = *rate;
  if (auto s = ParseSyncMode(a.sync); !s.ok()) return Fail(s.status().message(), kExitUsage);
  if (!a.org.empty() || !a.presets.empty()) return Fail("--remote takes --preset, not --org or --presets", kExitUsage);
  o.preset = a.preset;
  o.repeat = a.repeat_given ? a.repeat : 1;
  o.sync = a.sync;
  o.seed = a.seed;
  o.out_dir = a.out_given ? a.out : "out/bench-remote";
  o.quiet = a.json;
  auto exe = SelfExe();
  if (!exe.ok()) return Fail(exe.status());
  o.self_exe = *exe;
  auto r = bench::RunRemoteSweep(o);
  if (!r.ok()) return Fail(r.status());
  if (a.json) {
    PrintJson(*r);
  } else {
    std::printf("%s", bench::FormatRemoteTable(*r).c_str());
    std::printf("\nresults: %s/results.json, %s/results.csv; plot: %s\n", o.out_dir.c_str(), o.out_dir.c_str(),
                (*r)["plot"].get<std::string>().c_str());
  }
  return kExitOk;
}

int RunDirectoryCommand(const BenchArgs& a) {
  bench::DirectorySweepOptions o;
  auto levels = ParseInts(a.concurrency, "--concurrency", 1, 256);
  if (!levels.ok()) return Fail(levels.status().message(), kExitUsage);
  o.levels = *levels;
  if (auto s = ParseSyncMode(a.sync); !s.ok()) return Fail(s.status().message(), kExitUsage);
  if (!a.org.empty() || !a.presets.empty() || a.remote) {
    return Fail("--directory ldap takes --preset, not --org, --presets or --remote", kExitUsage);
  }
  o.preset = a.preset;
  o.repeat = a.repeat;
  o.sync = a.sync;
  o.seed = a.seed;
  o.out_dir = a.out_given ? a.out : "out/bench-ldap";
  o.quiet = a.json;
  auto exe = SelfExe();
  if (!exe.ok()) return Fail(exe.status());
  o.self_exe = *exe;
  auto r = bench::RunDirectorySweep(o);
  if (!r.ok()) return Fail(r.status());
  if (a.json) {
    PrintJson(*r);
  } else {
    std::printf("%s", bench::FormatDirectoryTable(*r).c_str());
    std::printf("\nresults: %s/results.json, %s/results.csv\n", o.out_dir.c_str(), o.out_dir.c_str());
  }
  return kExitOk;
}

// One number from a flag that takes a list elsewhere (--rtt, --concurrency).
Result<int> ParseOne(const std::string& text, const char* flag, int lo, int hi) {
  auto v = ParseInts(text, flag, lo, hi);
  if (!v.ok()) return v.status();
  if (v->size() != 1) {
    return Status::InvalidArgument(std::string(flag) + " takes one value with --scale-out, " + std::to_string(lo) +
                                   ".." + std::to_string(hi));
  }
  return v->front();
}

int RunScaleOutCommand(const BenchArgs& a) {
  if (a.remote || a.directory != "lmdb" || a.soak_minutes > 0 || !a.presets.empty()) {
    return Fail("--scale-out takes --preset or --org, not --remote, --directory, --soak or --presets", kExitUsage);
  }
  bench::ScaleOutOptions o;
  auto movers = ParseInts(a.movers, "--movers", 1, 64);
  if (!movers.ok()) return Fail(movers.status().message(), kExitUsage);
  o.movers = *movers;
  o.servers = a.servers;
  if (a.rtt_given) {
    auto rtt = ParseOne(a.rtt, "--rtt", 0, 10000);
    if (!rtt.ok()) return Fail(rtt.status().message(), kExitUsage);
    o.rtt_ms = *rtt;
  }
  if (a.concurrency_given) {
    auto c = ParseOne(a.concurrency, "--concurrency", 1, 256);
    if (!c.ok()) return Fail(c.status().message(), kExitUsage);
    o.concurrency = *c;
  }
  auto rate = net::ParseRate(a.rate);
  if (!rate.ok()) return Fail(rate.status().message(), kExitUsage);
  o.rate_bytes_per_s = *rate;
  if (auto s = ParseSyncMode(a.sync); !s.ok()) return Fail(s.status().message(), kExitUsage);
  auto threads = ParseInts(a.capacity_threads, "--capacity-threads", 1, 256);
  if (!threads.ok()) return Fail(threads.status().message(), kExitUsage);
  o.capacity_threads = *threads;
  o.capacity_seconds = a.capacity_seconds;
  o.lease_s = a.lease;
  o.preset = a.preset;
  o.org = a.org;
  o.source_store = a.from;
  o.repeat = a.repeat_given ? a.repeat : 1;
  o.sync = a.sync;
  o.seed = a.seed;
  o.out_dir = a.out_given ? a.out : "out/bench-scaleout";
  o.quiet = a.json;
  // Bad flags are refused before anything is generated or started.
  if (Status s = bench::ValidateScaleOutOptions(o); !s.ok()) return Fail(s.message(), kExitUsage);
  auto exe = SelfExe();
  if (!exe.ok()) return Fail(exe.status());
  o.self_exe = *exe;
  auto r = bench::RunScaleOut(o);
  if (!r.ok()) return Fail(r.status());
  if (a.json) {
    PrintJson(*r);
  } else {
    std::printf("%s", bench::FormatScaleOutTable(*r).c_str());
    std::printf("\nresults: %s/results.json, %s/results.csv; plot: %s\n", o.out_dir.c_str(), o.out_dir.c_str(),
                (*r)["plot"].get<std::string>().c_str());
  }
  return kExitOk;
}

int RunBench(const BenchArgs& a) {
  if ((a.online || a.load != 200) && (a.remote || a.soak_minutes > 0 || a.scale_out || a.directory != "lmdb")) {
    return Fail("--online and --load go with the concurrency sweep, not --remote, --directory, --soak or --scale-out",
                kExitUsage);
  }
  if (!a.online && a.load != 200) return Fail("--load needs --online", kExitUsage);
  if (auto m = engine::LoadMix::Parse(a.load_mix); !m.ok()) return Fail(m.status().message(), kExitUsage);
  if (a.scale_out) return RunScaleOutCommand(a);
  if (a.soak_minutes > 0) return RunSoakCommand(a);
  if (a.directory == "ldap") return RunDirectoryCommand(a);
  if (a.directory != "lmdb") return Fail("--directory must be lmdb or ldap", kExitUsage);
  if (a.remote) return RunRemoteCommand(a);
  bench::SweepOptions o;
  o.online = a.online;
  o.load = a.load;
  o.load_mix = a.load_mix;
  auto levels = ParseInts(a.concurrency, "--concurrency", 1, 256);
  if (!levels.ok()) return Fail(levels.status().message(), kExitUsage);
  o.levels = *levels;
  if (!a.presets.empty()) {
    auto p = SplitList(a.presets);
    if (!p.ok()) return Fail(p.status());
    o.presets = *p;
  } else {
    o.presets = {a.preset};
  }
  if (auto s = ParseSyncMode(a.sync); !s.ok()) return Fail(s.status());
  if (auto m = ParseLogMode(a.log_mode); !m.ok()) return Fail(m.status());
  o.org = a.org;
  o.source_store = a.from;
  o.repeat = a.repeat;
  o.sync = a.sync;
  o.log_mode = a.log_mode;
  o.recompress = a.recompress;
  o.seed = a.seed;
  o.out_dir = a.out;
  o.quiet = a.json;
  auto exe = SelfExe();
  if (!exe.ok()) return Fail(exe.status());
  o.self_exe = *exe;
  auto r = bench::RunSweep(o);
  if (!r.ok()) return Fail(r.status());
  if (a.json) {
    PrintJson(*r);
  } else {
    std::printf("%s", bench::FormatTable(*r).c_str());
    std::printf("\nresults: %s/results.json, %s/results.csv; plot: %s\n", a.out.c_str(), a.out.c_str(),
                (*r)["plot"].get<std::string>().c_str());
  }
  return kExitOk;
}

}  // namespace

void AddBenchCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* c = app.add_subcommand(
      "bench",
      "Measure move throughput at each concurrency level. Generates the dataset once (or uses --org, which is "
      "never changed), times two baselines in the same run (a raw logical copy of the source's records with "
      "MDB_APPEND, and mdb_copy), then for each level and repeat moves every mailbox into a fresh target store in "
      "a child process. Prints a table (medians, min-max, ratio to the raw copy) and writes results.json, "
      "results.csv and throughput.png into --out.");
  c->add_option("--preset", a->preset, "Dataset preset: tiny, small, medium, large")->capture_default_str();
  c->add_option("--presets", a->presets, "Several presets, e.g. tiny,small,medium: also reports how cost scales");
  c->add_option("--org", a->org, "Benchmark this organisation instead of a generated one (it is copied, not changed)");
  c->add_option("--from", a->from,
                 "With --org: the store to move from (default: the one with most mailboxes; --scale-out: most users)");
  CLI::Option* concurrency =
      c->add_option("--concurrency", a->concurrency,
                    "Comma-separated concurrency levels (--scale-out: one value, the moves per mover, default 4)")
          ->capture_default_str();
  CLI::Option* repeat =
      c->add_option("--repeat", a->repeat, "Runs per level (medians are reported; --remote, --scale-out: default 1)")
          ->check(CLI::Range(1, 100))
          ->capture_default_str();
  c->add_option("--sync", a->sync, "Target durability: full, batch or none (none: benchmark only)")->capture_default_str();
  c->add_option("--log-mode", a->log_mode, "Target logging: backup-flush or circular")->capture_default_str();
  c->add_option("--recompress", a->recompress, "Recompress every item at this zstd level (CPU-bound moves)")
      ->check(CLI::Range(0, 19));
  c->add_option("--seed", a->seed, "Dataset seed")->capture_default_str();
  c->add_flag("--online", a->online,
              "After each run, the same move online (move --online) under client load: online throughput, its "
              "ratio to the offline run, and the lock windows (p50/p95/max) per level");
  c->add_option("--load", a->load, "With --online: client operations/s on the moving mailboxes")
      ->check(CLI::Range(0.0, 100000.0))->capture_default_str();
  c->add_option("--load-mix", a->load_mix, "With --online: weights of deliver, flag, move, delete, folder")
      ->capture_default_str();
  CLI::Option* out =
      c->add_option("--out", a->out, "Output folder (--remote: default out/bench-remote; --scale-out: out/bench-scaleout)")
          ->capture_default_str();
  c->add_flag("--remote", a->remote,
              "Moves across an emulated network: a 'mbxmove serve' for the source store and one for the target, "
              "each behind a link proxy with half the RTT each way; sweeps --rtt x --concurrency and times the "
              "local move of the same data in the same run as the reference");
  c->add_option("--directory", a->directory,
                "ldap: compare directories instead: every level runs the same move twice, with the embedded "
                "directory and with the directory in a private slapd (started and stopped by the benchmark), and "
                "prints both MiB/s, their ratio, directory operations per moved mailbox and homeMDB switch "
                "p50/p95 (default output out/bench-ldap)")
      ->capture_default_str();
  CLI::Option* rtt =
      c->add_option("--rtt", a->rtt,
                    "With --remote: round-trip times in ms, comma-separated (--scale-out: one value, default 20)")
          ->capture_default_str();
  c->add_option("--rate", a->rate,
                "With --remote or --scale-out: each link's rate per direction, e.g. 1Gbit, 100MB (0 = unlimited)")
      ->capture_default_str();
  c->add_flag("--scale-out", a->scale_out,
              "One shared move queue drained by more and more movers: a private slapd holds the directory, "
              "SERVER1 the source store and each other server an empty target store, every server a 'mbxmove "
              "serve' behind a link proxy (half the RTT each way); the mailboxes are queued round-robin over the "
              "targets and drained by each --movers count of 'mbxmove mover' processes (limits off). Then a run "
              "with one mover killed mid-batch (the others take its requests over; the move invariant is "
              "checked) and the slapd's capacity for lease renewals (default output out/bench-scaleout)");
  c->add_option("--movers", a->movers, "With --scale-out: mover counts, comma-separated")->capture_default_str();
  c->add_option("--servers", a->servers, "With --scale-out: servers, one source and the rest targets (2..16)")
      ->capture_default_str();
  c->add_option("--lease", a->lease, "With --scale-out: the movers' lease in seconds (how long a killed mover's "
                                     "requests wait)")
      ->capture_default_str();
  c->add_option("--capacity-threads", a->capacity_threads,
                "With --scale-out: threads renewing leases in the directory capacity measurement")
      ->capture_default_str();
  c->add_option("--capacity-seconds", a->capacity_seconds,
                "With --scale-out: seconds per capacity level (also bounded at 200000 renewals)")
      ->capture_default_str();
  c->add_option("--soak", a->soak_minutes,
                 "Instead of the sweep: move mailboxes back and forth between two stores for MINUTES, with "
                 "transient read faults and deliveries to the mailboxes not being moved, then check every "
                 "mailbox's content and homeMDB (default preset tiny, output out/soak)")
      ->check(CLI::Range(0.0, 10000.0));
  c->add_flag("--json", a->json, "Print the results JSON (no table, no progress)");
  c->callback([a, exit_code, repeat, out, rtt, concurrency] {
    a->repeat_given = repeat->count() > 0;
    a->out_given = out->count() > 0;
    a->rtt_given = rtt->count() > 0;
    a->concurrency_given = concurrency->count() > 0;
    *exit_code = RunBench(*a);
  });
}

}  // namespace mbx::cli
