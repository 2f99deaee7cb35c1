#include "bench/sweep.h"

#include <fcntl.h>
#include <lmdb.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <tbb/version.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <set>
#include <thread>

#include "bench/baselines.h"
#include "bench/child_process.h"
#include "engine/move_report.h"
#include "store/file_io.h"
#include "mbx_git_commit.h"  // generated at build time: MBX_GIT_COMMIT

extern char** environ;

namespace mbx::bench {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string ReadFirstMatch(const std::string& path, const std::string& key) {
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key, 0) == 0) {
      auto c = line.find(':');
      if (c != std::string::npos) {
        std::string v = line.substr(c + 1);
        v.erase(0, v.find_first_not_of(" \t"));
        return v;
      }
    }
  }
  return "";
}

std::string FsType(const std::string& dir) {
  struct statfs s {};
  if (statfs(dir.c_str(), &s) != 0) return "unknown";
  switch (static_cast<unsigned long>(s.f_type)) {
    case 0xEF53: return "ext4";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x01021994: return "tmpfs";
    case 0x794c7630: return "overlayfs";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "0x%lx", static_cast<unsigned long>(s.f_type));
      return buf;
    }
  }
}

json MachineInfo(const SweepOptions& o) {
  struct utsname u {};
  uname(&u);
  int lmaj, lmin, lpatch;
  mdb_version(&lmaj, &lmin, &lpatch);
  return {{"cpu_model", ReadFirstMatch("/proc/cpuinfo", "model name")},
          {"cores", std::thread::hardware_concurrency()},
          {"memory", ReadFirstMatch("/proc/meminfo", "MemTotal")},
          {"kernel", std::string(u.sysname) + " " + u.release},
          {"filesystem", FsType(o.out_dir)},
          {"build_type", MBX_BUILD_TYPE},
          {"compiler", std::string("g++ ") + __VERSION__},
          {"git_commit", MBX_GIT_COMMIT},
          {"libraries",
           {{"lmdb", std::to_string(lmaj) + "." + std::to_string(lmin) + "." + std::to_string(lpatch)},
            {"zstd", ZSTD_versionString()},
            {"onetbb", TBB_runtime_version()}}}};
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, size_t(p * double(v.size() - 1) + 0.5));
  return v[i];
}

void Progress(const SweepOptions& o, const std::string& line) {
  if (!o.quiet) std::fprintf(stderr, "bench: %s\n", line.c_str());
}

// The store of `org` holding the most mailboxes.
// The store of a given organisation the sweep moves from (--source-store,
// else the one with most mailboxes), and its figures for the table.
Result<json> SourceStoreFigures(const SweepOptions& o, const std::string& org, const std::string& scratch) {
  ChildResult cr;
  MBX_ASSIGN_OR_RETURN(json s, RunJsonChild({o.self_exe, "stat", "--org", org, "--json"}, scratch, &cr));
  json best;
  for (const auto& st : s["stores"]) {
    if (!o.source_store.empty() ? st["name"] == o.source_store
                                : (best.is_null() || st["mailboxes"].get<int>() > best["mailboxes"].get<int>())) {
      best = st;
    }
  }
  if (best.is_null()) return Status::NotFound("no store " + o.source_store + " in " + org);
  if (best["mailboxes"].get<int>() <= 0) {
    return Status::InvalidArgument(org + " holds no mailboxes to move in " + best["name"].get<std::string>());
  }
  return best;
}

}  // namespace

std::string CpuModel() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      return colon == std::string::npos ? line : line.substr(colon + 2);
    }
  }
  return "unknown";
}

Status CheckReusable(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return Status::Ok();
  if (!fs::is_directory(dir, ec)) return Status::InvalidArgument(dir + " exists and is not a folder");
  if (fs::exists(dir + "/directory/data.mdb", ec)) return Status::Ok();  // an organisation we generated
  static const std::set<std::string> ours = {"scratch", "org", "results.json", "results.csv", "throughput.png",
                                             "throughput.dat", "throughput.gp", "gnuplot.err"};
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    // curveN.dat and throughput.gp.png.gp: the remote benchmark's plot.
    const bool curve = name.rfind("curve", 0) == 0 && name.size() > 9 && name.ends_with(".dat");
    if (ours.count(name) || curve || name == "throughput.gp.png.gp" || name.rfind("data-", 0) == 0) continue;
    return Status::InvalidArgument(dir + " holds files mbxmove bench did not write (" + name +
                                   "); give an empty or new --out folder");
  }
  return Status::Ok();
}

namespace {

Result<json> SweepOne(const SweepOptions& o, const std::string& preset, const std::string& scratch) {
  json ds;
  std::string pristine, source = o.source_store;
  if (!o.org.empty()) {
    pristine = o.org;
    MBX_ASSIGN_OR_RETURN(json st, SourceStoreFigures(o, pristine, scratch));
    source = st["name"].get<std::string>();
    ds = {{"org", pristine},       {"preset", "(given organisation)"}, {"store", source},
          {"mailboxes", st["mailboxes"]}, {"items", st["items"]},       {"bytes", st["logical_bytes"]}};
  } else {
    pristine = o.out_dir + "/data-" + preset;
    source = "SOURCE";
    MBX_RETURN_IF_ERROR(CheckReusable(pristine));
    std::error_code ec;
    fs::remove_all(pristine, ec);
    Progress(o, "generating the '" + preset + "' preset into " + pristine);
    ChildResult cr;
    MBX_ASSIGN_OR_RETURN(ds, RunJsonChild({o.self_exe, "gen", "--org", pristine, "--store", source, "--preset",
                                           preset, "--seed", std::to_string(o.seed), "--json"},
                                          scratch, &cr));
    ds["preset"] = preset;
    ds.erase("corrupted");
  }
  const std::string src_dir = pristine + "/stores/" + source;
  // Every measurement starts with nothing of an earlier step left to write
  // back: dirty pages of the generation or of the previous run would
  // otherwise be flushed during the next one.
  ::sync();
  // The physical copy, repeated like the runs. The raw logical copy is
  // timed before each run instead (below): the moves are compared with it.
  std::vector<double> raw_mib, phys_mib;
  uint64_t raw_bytes = 0, raw_items = 0;
  for (int r = 0; r < o.repeat; ++r) {
    MBX_ASSIGN_OR_RETURN(BaselineResult phys, PhysicalCopy(src_dir, scratch + "/phys"));
    ::sync();
    phys_mib.push_back(double(phys.bytes) / 1048576.0 / phys.seconds);
  }
  std::error_code ec;
  fs::remove_all(scratch + "/phys", ec);
  Progress(o, "baselines: physical copy " + std::to_string(int(Median(phys_mib))) +
                  " MiB/s; a raw logical copy is timed before each run");
  json baselines = {{"physical_copy", {{"mib_per_s", Median(phys_mib)},
                                       {"min", *std::min_element(phys_mib.begin(), phys_mib.end())},
                                       {"max", *std::max_element(phys_mib.begin(), phys_mib.end())}}}};

  json levels = json::array();
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  for (int c : o.levels) {
    std::vector<json> runs;
    for (int r = 0; r < o.repeat; ++r) {
      const std::string run = scratch + "/run";
      fs::remove_all(run, ec);
      fs::copy(pristine, run, fs::copy_options::recursive, ec);
      if (ec) return Status::IOError("copying the dataset for a run: " + ec.message());
      fs::remove(run + "/stores/" + source + "/LOCK", ec);
      ::sync();
      // The raw copy again, just before this run: on a machine whose page
      // cache and disk change speed from minute to minute (a raw copy of
      // 'medium' measured 88 and 929 MiB/s an hour apart), a move compares
      // with the copy timed beside it, not with one taken minutes before.
      // It runs twice, after the run's dataset is copied, and the second is
      // timed: the timed copy then writes into memory the first just freed,
      // as the move then writes into the memory the timed copy just freed.
      // (On this project's virtual machine, memory left free for more than
      // a few seconds goes back to the host and costs ~110 MB/s to touch
      // again, against GB/s for memory freed a moment before; a physical
      // machine has only the second kind. Timed once before the dataset's
      // copy, which then took the memory it freed, the raw copy always had
      // the fast kind and the move the slow kind; timed once after it, the
      // other way round. perf/README.md, writepath-dead-pages.)
      BaselineResult beside;
      for (int pass = 0; pass < 2; ++pass) {
        MBX_ASSIGN_OR_RETURN(beside, RawLogicalCopy(src_dir, scratch + "/raw"));
        fs::remove_all(scratch + "/raw", ec);
      }
      ::sync();
      const double beside_mib = beside.seconds > 0 ? double(beside.bytes) / 1048576.0 / beside.seconds : 0.0;
      raw_mib.push_back(beside_mib);
      raw_bytes = beside.bytes;
      raw_items = beside.items;
      ChildResult cr;
      MBX_ASSIGN_OR_RETURN(cr, RunChild({o.self_exe, "store", "create", "--org", run, "--store", "TARGET", "--sync",
                                         o.sync, "--log-mode", o.log_mode},
                                        scratch));
      if (cr.exit_code != 0) return Status::Internal("creating the target store: " + cr.err);
      std::vector<std::string> args = {o.self_exe, "move", "--org", run, "--from", source, "--to", "TARGET",
                                       "--concurrency", std::to_string(c), "--json"};
      if (o.recompress >= 0) {
        args.push_back("--recompress");
        args.push_back(std::to_string(o.recompress));
      }
      MBX_ASSIGN_OR_RETURN(json rep, RunJsonChild(args, scratch, &cr));
      if (cr.exit_code != 0 && cr.exit_code != 3) return Status::Internal("move run failed: " + cr.err);
      const json& t = rep["totals"];
      auto target = rep.contains("target") ? engine::TargetFigures::FromJson(rep["target"])
                                           : Result<engine::TargetFigures>(Status::Corruption(
                                                 "the move report has no target figures"));
      if (!target.ok()) return target.status().WithContext("reading the move's report");
      // The source's share (its lock and delete commits), when the report has it.
      engine::TargetFigures src_fig;
      if (rep.contains("source")) {
        auto s = engine::TargetFigures::FromJson(rep["source"]);
        if (!s.ok()) return s.status().WithContext("reading the move's report");
        src_fig = *s;
      }
      // Per completed mailbox and per GiB moved: what the write path costs.
      const double moved_mbx = std::max(1.0, t["mailboxes_completed"].get<double>());
      const double moved_gib = std::max(1.0, t["bytes_copied"].get<double>()) / 1073741824.0;
      const double dir_ops = rep.contains("directory") ? rep["directory"]["operations_per_mailbox"].get<double>() : 0.0;
      std::vector<double> durations;
      for (const auto& m : rep["mailboxes"]) durations.push_back(m["seconds"].get<double>());
      const double secs = t["seconds"].get<double>();
      json row = {{"seconds", secs},
                  {"mib_per_s", t["mib_per_s"]},
                  {"logical_mib_per_s", secs > 0 ? t["logical_bytes"].get<double>() / 1048576.0 / secs : 0.0},
                  {"items_per_s", t["items_per_s"]},
                  {"mailboxes_per_s", secs > 0 ? t["mailboxes_completed"].get<double>() / secs : 0.0},
                  {"mailbox_p50_s", Percentile(durations, 0.5)},
                  {"mailbox_p95_s", Percentile(durations, 0.95)},
                  {"mailbox_max_s", Percentile(durations, 1.0)},
                  {"cpu_util", cr.wall_s > 0 ? cr.cpu_s / cr.wall_s / double(cores) : 0.0},
                  {"cpu_s", cr.cpu_s},
                  {"peak_rss_mib", rep.contains("process") ? rep["process"]["peak_rss_mib"].get<double>() : cr.peak_rss_mib},
                  {"items_dropped", t["items_dropped"]},
                  {"mailboxes_failed", t["mailboxes_failed"]},
                  {"bytes_copied", t["bytes_copied"]},
                  {"log_bytes_per_moved_byte", target->log_bytes_per_moved_byte},
                  {"batches_per_group", target->batches_per_group},
                  {"commits_per_s", secs > 0 ? double(target->groups) / secs : 0.0},
                  {"store_commits_per_mailbox", double(target->groups + src_fig.groups) / moved_mbx},
                  {"directory_ops_per_mailbox", dir_ops},
                  {"log_syncs_per_gib", double(target->log_syncs + src_fig.log_syncs) / moved_gib},
                  {"data_syncs_per_gib", double(target->data_syncs + src_fig.data_syncs) / moved_gib},
                  {"memory_copies_per_byte", t.value("memory_copies_per_byte", 0.0)},
                  {"raw_copy_mib_per_s", beside_mib},
                  {"target", target->ToJson()},
                  {"time", rep["time"]}};
      Progress(o, preset + " C=" + std::to_string(c) + " run " + std::to_string(r + 1) + "/" +
                      std::to_string(o.repeat) + ": " + std::to_string(int(row["mib_per_s"].get<double>())) +
                      " MiB/s, " + std::to_string(int(row["items_per_s"].get<double>())) + " items/s");
      fs::remove_all(run, ec);
      if (o.online) {
        // The same move online, under client load, on a fresh copy.
        fs::copy(pristine, run, fs::copy_options::recursive, ec);
        if (ec) return Status::IOError("copying the dataset for a run: " + ec.message());
        fs::remove(run + "/stores/" + source + "/LOCK", ec);
        ::sync();
        MBX_ASSIGN_OR_RETURN(cr, RunChild({o.self_exe, "store", "create", "--org", run, "--store", "TARGET", "--sync",
                                           o.sync, "--log-mode", o.log_mode},
                                          scratch));
        if (cr.exit_code != 0) return Status::Internal("creating the target store: " + cr.err);
        std::vector<std::string> oargs = args;
        for (const std::string& x : {std::string("--online"), std::string("--load"), std::to_string(o.load),
                                     std::string("--load-mix"), o.load_mix}) {
          oargs.push_back(x);
        }
        MBX_ASSIGN_OR_RETURN(json orep, RunJsonChild(oargs, scratch, &cr));
        if (cr.exit_code != 0 && cr.exit_code != 3) return Status::Internal("online move run failed: " + cr.err);
        const json& ot = orep["totals"];
        std::vector<double> locks;
        double largest_bytes = -1, largest_lock = 0;  // the lock window of the largest mailbox
        for (const auto& m : orep["mailboxes"]) {
          if (!m.contains("online") || m["outcome"] == "failed") continue;
          locks.push_back(m["online"]["lock_ms"].get<double>());
          if (m["bytes_copied"].get<double>() > largest_bytes) {
            largest_bytes = m["bytes_copied"].get<double>();
            largest_lock = m["online"]["lock_ms"].get<double>();
          }
        }
        row["online"] = {{"mib_per_s", ot["mib_per_s"]},
                         {"items_per_s", ot["items_per_s"]},
                         {"mailboxes_failed", ot["mailboxes_failed"]},
                         {"lock_ms", locks},
                         {"largest_mailbox_lock_ms", largest_lock},
                         {"load", orep.contains("load") ? orep["load"]["total"] : json()}};
        Progress(o, preset + " C=" + std::to_string(c) + " run " + std::to_string(r + 1) + " online: " +
                        std::to_string(int(ot["mib_per_s"].get<double>())) + " MiB/s, lock window p95 " +
                        std::to_string(int(Percentile(locks, 0.95))) + " ms");
        fs::remove_all(run, ec);
      }
      runs.push_back(std::move(row));
    }
    std::vector<double> mib, items, raw_beside;
    for (const auto& r : runs) {
      mib.push_back(r["mib_per_s"].get<double>());
      items.push_back(r["items_per_s"].get<double>());
      raw_beside.push_back(r["raw_copy_mib_per_s"].get<double>());
    }
    // The run with the median throughput stands for the level.
    std::vector<size_t> idx(runs.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return mib[a] < mib[b]; });
    json level = runs[idx[idx.size() / 2]];
    level["concurrency"] = c;
    level["mib_per_s"] = Median(mib);
    level["mib_per_s_min"] = *std::min_element(mib.begin(), mib.end());
    level["mib_per_s_max"] = *std::max_element(mib.begin(), mib.end());
    level["items_per_s"] = Median(items);
    level["items_per_s_min"] = *std::min_element(items.begin(), items.end());
    level["items_per_s_max"] = *std::max_element(items.begin(), items.end());
    // Against the raw copies timed beside this level's runs (median).
    const double level_raw = Median(raw_beside);
    level["raw_copy_mib_per_s"] = level_raw;
    level["ratio_to_raw_copy"] = level_raw > 0 ? Median(mib) / level_raw : 0.0;
    // A logged move writes every byte twice (log, then database): where the
    // raw copy is disk-bound, half of it is the most a move can reach.
    level["ratio_to_ceiling"] = level["ratio_to_raw_copy"].get<double>() / 0.5;
    double peak = 0;
    for (const auto& r : runs) peak = std::max(peak, r["peak_rss_mib"].get<double>());
    level["peak_rss_mib"] = peak;
    level["repeats"] = runs.size();
    if (o.online) {
      std::vector<double> omib, locks;
      double largest_lock = 0;
      uint64_t done = 0, refused = 0, retried = 0, failed = 0, mbx_failed = 0;
      for (const auto& r : runs) {
        const json& on = r["online"];
        omib.push_back(on["mib_per_s"].get<double>());
        for (double l : on["lock_ms"]) locks.push_back(l);
        largest_lock = std::max(largest_lock, on["largest_mailbox_lock_ms"].get<double>());
        mbx_failed += on["mailboxes_failed"].get<uint64_t>();
        if (on["load"].is_object()) {
          done += on["load"].value("done", uint64_t(0));
          refused += on["load"].value("refused", uint64_t(0));
          retried += on["load"].value("retried", uint64_t(0));
          failed += on["load"].value("failed", uint64_t(0));
        }
      }
      level["online"] = {{"mib_per_s", Median(omib)},
                         {"mib_per_s_min", *std::min_element(omib.begin(), omib.end())},
                         {"mib_per_s_max", *std::max_element(omib.begin(), omib.end())},
                         {"ratio_to_offline", Median(mib) > 0 ? Median(omib) / Median(mib) : 0.0},
                         {"lock_p50_ms", Percentile(locks, 0.5)},
                         {"lock_p95_ms", Percentile(locks, 0.95)},
                         {"lock_max_ms", Percentile(locks, 1.0)},
                         {"largest_mailbox_lock_ms", largest_lock},
                         {"mailboxes_failed", mbx_failed},
                         {"load_ops_per_s", o.load},
                         {"load_done", done},
                         {"load_refused", refused},
                         {"load_retried", retried},
                         {"load_failed", failed}};
    }
    levels.push_back(std::move(level));
  }
  // Every raw copy of the run, for the dataset's line and the plot.
  if (raw_mib.empty()) raw_mib.push_back(0.0);
  const double raw_median = Median(raw_mib);
  baselines["raw_logical_copy"] = {
      {"mib_per_s", raw_median},
      {"min", *std::min_element(raw_mib.begin(), raw_mib.end())},
      {"max", *std::max_element(raw_mib.begin(), raw_mib.end())},
      {"bytes", raw_bytes},
      {"items", raw_items},
      {"items_per_s", raw_median * 1048576.0 / double(std::max<uint64_t>(raw_bytes, 1)) * double(raw_items)}};
  return json{{"dataset", ds}, {"source_store", source}, {"baselines", baselines}, {"levels", levels}};
}

void WriteCsv(const json& results, const std::string& path) {
  std::ofstream f(path);
  f << "preset,concurrency,mib_per_s,mib_per_s_min,mib_per_s_max,logical_mib_per_s,items_per_s,mailboxes_per_s,"
       "mailbox_p50_s,mailbox_p95_s,mailbox_max_s,cpu_util,peak_rss_mib,log_bytes_per_moved_byte,items_dropped,"
       "batches_per_group,commits_per_s,ratio_to_raw_copy,raw_copy_mib_per_s,physical_copy_mib_per_s,"
       "store_commits_per_mailbox,directory_ops_per_mailbox,log_syncs_per_gib,data_syncs_per_gib,ratio_to_ceiling,"
       "memory_copies_per_byte\n";
  for (const auto& ds : results["datasets"]) {
    for (const auto& l : ds["levels"]) {
      f << ds["dataset"]["preset"].get<std::string>() << "," << l["concurrency"] << "," << l["mib_per_s"] << ","
        << l["mib_per_s_min"] << "," << l["mib_per_s_max"] << "," << l["logical_mib_per_s"] << ","
        << l["items_per_s"] << "," << l["mailboxes_per_s"] << "," << l["mailbox_p50_s"] << ","
        << l["mailbox_p95_s"] << "," << l["mailbox_max_s"] << "," << l["cpu_util"] << "," << l["peak_rss_mib"]
        << "," << l["log_bytes_per_moved_byte"] << "," << l["items_dropped"] << "," << l["batches_per_group"]
        << "," << l["commits_per_s"] << "," << l["ratio_to_raw_copy"] << ","
        << l["raw_copy_mib_per_s"] << ","
        << ds["baselines"]["physical_copy"]["mib_per_s"]
        << "," << l["store_commits_per_mailbox"] << "," << l["directory_ops_per_mailbox"] << ","
        << l["log_syncs_per_gib"] << "," << l["data_syncs_per_gib"] << "," << l["ratio_to_ceiling"] << ","
        << l.value("memory_copies_per_byte", 0.0) << "\n";
    }
  }
}

// Draws throughput.png with gnuplot; returns false (and says why) without it.
bool Plot(const json& results, const std::string& out_dir, std::string* why) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    *why = "gnuplot is not installed (apt-get install gnuplot-nox); no plot drawn";
    return false;
  }
  const json& ds = results["datasets"][0];
  const std::string data = out_dir + "/throughput.dat";
  {
    std::ofstream f(data);
    f << "# concurrency mib_s mib_min mib_max items_s items_min items_max\n";
    for (const auto& l : ds["levels"]) {
      f << l["concurrency"] << " " << l["mib_per_s"] << " " << l["mib_per_s_min"] << " " << l["mib_per_s_max"] << " "
        << l["items_per_s"] << " " << l["items_per_s_min"] << " " << l["items_per_s_max"] << "\n";
    }
  }
  const double raw = ds["baselines"]["raw_logical_copy"]["mib_per_s"].get<double>();
  const double phys = ds["baselines"]["physical_copy"]["mib_per_s"].get<double>();
  // The physical copy is usually far above everything else; the axis is
  // scaled to the moves and the raw copy, and the key gives its figure.
  double ymax = raw;
  for (const auto& l : ds["levels"]) ymax = std::max(ymax, l["mib_per_s_max"].get<double>());
  ymax *= 1.25;
  const std::string script = out_dir + "/throughput.gp";
  {
    std::ofstream g(script);
    g << "set terminal pngcairo size 1000,600 noenhanced font 'sans,11'\n"
      << "set output '" << out_dir << "/throughput.png'\n"
      << "set title 'mbxmove: move throughput against concurrency (" << ds["dataset"]["preset"].get<std::string>()
      << ", sync " << results["settings"]["sync"].get<std::string>() << ", " << results["settings"]["log_mode"].get<std::string>()
      << " logging)'\n"
      << "set xlabel 'mailboxes moved at once (concurrency)'\n"
      << "set ylabel 'MiB/s (stored bytes)'\nset y2label 'items/s'\n"
      << "set logscale x 2\nset grid\nset key outside bottom center horizontal\n"
      << "set yrange [0:" << ymax << "]\nset y2range [0:*]\nset ytics nomirror\nset y2tics\n"
      << "raw=" << raw << "\nphys=" << phys << "\n"
      << "plot '" << data << "' using 1:2:3:4 with yerrorlines lw 2 pt 7 title 'move MiB/s (median, min-max)', "
      << "'' using 1:5 axes x1y2 with linespoints lw 2 pt 5 dt 2 title 'move items/s', "
      << "raw with lines lw 2 lc rgb '#aa0000' title sprintf('raw logical copy %.0f MiB/s', raw), "
      << "phys with lines lw 2 lc rgb '#888888' dt 3 title sprintf('physical copy (mdb_copy) %.0f MiB/s%s', phys, phys > " << ymax << " ? ' (off scale)' : '')\n";
  }
  const std::string cmd = "gnuplot '" + script + "' 2>'" + out_dir + "/gnuplot.err'";
  if (std::system(cmd.c_str()) != 0) {
    *why = "gnuplot failed (see " + out_dir + "/gnuplot.err)";
    return false;
  }
  return true;
}

}  // namespace

Result<json> RunSweep(const SweepOptions& o) {
  if (o.levels.empty()) return Status::InvalidArgument("no concurrency levels given");
  for (int c : o.levels) {
    if (c < 1 || c > 256) return Status::InvalidArgument("concurrency levels must be 1..256");
  }
  if (o.repeat < 1 || o.repeat > 100) return Status::InvalidArgument("--repeat must be 1..100");
  MBX_RETURN_IF_ERROR(CheckReusable(o.out_dir));
  std::error_code ec;
  // Owner-only (0700): results, logs and scratch stores inside are private.
  MBX_RETURN_IF_ERROR(CreateDirs(Env::Default(), o.out_dir).WithContext("creating " + o.out_dir));
  const std::string scratch = o.out_dir + "/scratch";
  fs::remove_all(scratch, ec);
  fs::create_directories(scratch, ec);
  json results;
  results["tool"] = "mbxmove bench";
  results["machine"] = MachineInfo(o);
  results["settings"] = {{"online", o.online}, {"load", o.online ? o.load : 0.0}, {"load_mix", o.online ? o.load_mix : ""},
                         {"levels", o.levels}, {"repeat", o.repeat}, {"sync", o.sync}, {"log_mode", o.log_mode},
                         {"recompress", o.recompress}, {"seed", o.seed},
                         {"note", "medians over repeats; every run moves every mailbox into a fresh target store in "
                                  "its own process; baselines measured in the same run"}};
  results["datasets"] = json::array();
  const std::vector<std::string> presets = o.org.empty() ? o.presets : std::vector<std::string>{"given"};
  for (const auto& p : presets) {
    MBX_ASSIGN_OR_RETURN(json one, SweepOne(o, p, scratch));
    results["datasets"].push_back(std::move(one));
  }
  if (results["datasets"].size() > 1) {
    json scale = json::array();
    for (const auto& ds : results["datasets"]) {
      double best_items = 0, rss = 0;
      for (const auto& l : ds["levels"]) {
        best_items = std::max(best_items, l["items_per_s"].get<double>());
        rss = std::max(rss, l["peak_rss_mib"].get<double>());
      }
      scale.push_back({{"preset", ds["dataset"]["preset"]}, {"bytes", ds["dataset"].value("bytes", uint64_t(0))},
                       {"items", ds["dataset"].value("items", uint64_t(0))}, {"best_items_per_s", best_items},
                       {"peak_rss_mib", rss}});
    }
    results["scale"] = scale;
  }
  fs::remove_all(scratch, ec);
  {
    std::ofstream f(o.out_dir + "/results.json");
    f << results.dump(2) << "\n";
  }
  WriteCsv(results, o.out_dir + "/results.csv");
  std::string why;
  results["plot"] = Plot(results, o.out_dir, &why) ? o.out_dir + "/throughput.png" : why;
  {
    std::ofstream f(o.out_dir + "/results.json");
    f << results.dump(2) << "\n";
  }
  return results;
}

std::string FormatTable(const json& r) {
  std::string s;
  char buf[512];
  const json& m = r["machine"];
  std::snprintf(buf, sizeof buf, "machine: %s, %d cores, %s, %s, %s build; sync %s, %s logging\n",
                m["cpu_model"].get<std::string>().c_str(), m["cores"].get<int>(), m["filesystem"].get<std::string>().c_str(),
                m["kernel"].get<std::string>().c_str(), m["build_type"].get<std::string>().c_str(),
                r["settings"]["sync"].get<std::string>().c_str(), r["settings"]["log_mode"].get<std::string>().c_str());
  s += buf;
  for (const auto& ds : r["datasets"]) {
    const json& d = ds["dataset"];
    std::snprintf(buf, sizeof buf, "\ndataset %s: %s mailboxes, %s items, %.1f MiB logical; raw logical copy %.0f MiB/s, physical copy %.0f MiB/s\n",
                  d["preset"].get<std::string>().c_str(), d.contains("mailboxes") ? d["mailboxes"].dump().c_str() : "?",
                  d.contains("items") ? d["items"].dump().c_str() : "?",
                  d.contains("bytes") ? d["bytes"].get<double>() / 1048576.0 : 0.0,
                  ds["baselines"]["raw_logical_copy"]["mib_per_s"].get<double>(),
                  ds["baselines"]["physical_copy"]["mib_per_s"].get<double>());
    s += buf;
    s += "    C    MiB/s (min-max)    items/s  mbx/s  p50 s  p95 s  max s  CPU%  RSS MiB  log B/B  batch/grp  raw MiB/s  x raw"
         "  commits/mbx  dir ops/mbx  log syncs/GiB  data syncs/GiB  x ceiling  copies/B\n";
    for (const auto& l : ds["levels"]) {
      std::snprintf(buf, sizeof buf,
                    "%5d %7.1f (%5.0f-%5.0f) %9.0f %6.1f %6.3f %6.3f %6.3f %5.0f %8.0f %8.2f %10.1f %10.0f %6.2f %12.1f %12.1f "
                    "%14.0f %15.0f %10.2f %9.2f\n",
                    l["concurrency"].get<int>(), l["mib_per_s"].get<double>(), l["mib_per_s_min"].get<double>(),
                    l["mib_per_s_max"].get<double>(), l["items_per_s"].get<double>(), l["mailboxes_per_s"].get<double>(),
                    l["mailbox_p50_s"].get<double>(), l["mailbox_p95_s"].get<double>(), l["mailbox_max_s"].get<double>(),
                    100 * l["cpu_util"].get<double>(), l["peak_rss_mib"].get<double>(),
                    l["log_bytes_per_moved_byte"].get<double>(), l["batches_per_group"].get<double>(),
                    l.value("raw_copy_mib_per_s", 0.0), l["ratio_to_raw_copy"].get<double>(),
                    l.value("store_commits_per_mailbox", 0.0),
                    l.value("directory_ops_per_mailbox", 0.0), l.value("log_syncs_per_gib", 0.0),
                    l.value("data_syncs_per_gib", 0.0), l.value("ratio_to_ceiling", 0.0),
                    l.value("memory_copies_per_byte", 0.0));
      s += buf;
    }
    bool online = false;
    for (const auto& l : ds["levels"]) online = online || l.contains("online");
    if (online) {
      s += "  online (move --online under client load):\n"
           "    C    MiB/s (min-max)  x offline  lock p50 ms  lock p95 ms  lock max ms  largest mbx ms  load ops/s  done  refused  failed\n";
      for (const auto& l : ds["levels"]) {
        if (!l.contains("online")) continue;
        const json& on = l["online"];
        std::snprintf(buf, sizeof buf, "%5d %7.1f (%5.0f-%5.0f) %10.2f %12.1f %12.1f %12.1f %15.1f %11.0f %5llu %8llu %7llu\n",
                      l["concurrency"].get<int>(), on["mib_per_s"].get<double>(), on["mib_per_s_min"].get<double>(),
                      on["mib_per_s_max"].get<double>(), on["ratio_to_offline"].get<double>(),
                      on["lock_p50_ms"].get<double>(), on["lock_p95_ms"].get<double>(), on["lock_max_ms"].get<double>(),
                      on["largest_mailbox_lock_ms"].get<double>(), on["load_ops_per_s"].get<double>(), (unsigned long long)on["load_done"].get<uint64_t>(),
                      (unsigned long long)on["load_refused"].get<uint64_t>(),
                      (unsigned long long)on["load_failed"].get<uint64_t>());
        s += buf;
      }
    }
    s += "  (raw MiB/s: the raw logical copy timed just before each of the level's runs (median), which x raw\n"
         "   divides by; the dataset's line gives the median of every raw copy of the sweep;\n"
         "   commits/mbx: the stores' commit groups per moved mailbox, target and source; syncs per GiB moved;\n"
         "   x ceiling: x raw / 0.5, the ceiling where the raw copy is disk-bound, since a logged move writes\n"
         "   every byte twice, to the log and to the database;\n"
         "   copies/B: bytes copied in memory per byte moved: LMDB's copy of each record into its pages,\n"
         "   keys, headers and the log's framing; the log is written from the source's pages)\n";
  }
  if (r.contains("scale")) {
    s += "\nscale:\n";
    for (const auto& x : r["scale"]) {
      std::snprintf(buf, sizeof buf, "  %-8s %8.1f MiB  best %8.0f items/s  peak RSS %6.0f MiB\n",
                    x["preset"].get<std::string>().c_str(), x["bytes"].get<double>() / 1048576.0,
                    x["best_items_per_s"].get<double>(), x["peak_rss_mib"].get<double>());
      s += buf;
    }
  }
  return s;
}

}  // namespace mbx::bench
