#include "bench/directory_sweep.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "bench/child_process.h"
#include "bench/sweep.h"
#include "net/slapd.h"
#include "mbx_git_commit.h"  // generated at build time: MBX_GIT_COMMIT

namespace mbx::bench {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

void Say(const DirectorySweepOptions& o, const std::string& line) {
  if (!o.quiet) std::fprintf(stderr, "bench: %s\n", line.c_str());
}

// A fresh copy of the generated organisation's stores in `run` (their LOCK
// files left behind, as a copy of a closed store would be).
Status CopyStores(const std::string& pristine, const std::string& run) {
  std::error_code ec;
  fs::create_directories(run + "/stores", ec);
  for (const auto& e : fs::directory_iterator(pristine + "/stores", ec)) {
    const std::string dest = run + "/stores/" + e.path().filename().string();
    fs::copy(e.path(), dest, fs::copy_options::recursive, ec);
    if (ec) return Status::IOError("copying " + e.path().string() + " for a run: " + ec.message());
    fs::remove(dest + "/LOCK", ec);
  }
  return Status::Ok();
}

Status Check(const ChildResult& cr, const std::string& what) {
  if (cr.exit_code == 0) return Status::Ok();
  return Status::Internal(what + " failed (exit " + std::to_string(cr.exit_code) + "): " + cr.err.substr(0, 400));
}

// One move of every mailbox; `ldap` null: the embedded directory.
Result<json> OneRun(const DirectorySweepOptions& o, const std::string& pristine, const std::string& ldif,
                    const Slapd* ldap, int run_no, int c, const std::string& scratch) {
  const std::string run = scratch + "/run";
  std::error_code ec;
  fs::remove_all(run, ec);
  ChildResult cr;
  if (ldap == nullptr) {
    fs::copy(pristine, run, fs::copy_options::recursive, ec);
    if (ec) return Status::IOError("copying the dataset for a run: " + ec.message());
    fs::remove(run + "/stores/SOURCE/LOCK", ec);
  } else {
    const std::string base = "ou=run" + std::to_string(run_no) + "," + Slapd::kSuffix;
    MBX_ASSIGN_OR_RETURN(cr, RunChild({o.self_exe, "org", "create", "--org", run, "--directory",
                                       ldap->url() + "/" + base, "--bind-dn", ldap->bind_dn(), "--password-file",
                                       ldap->password_file()},
                                      scratch));
    MBX_RETURN_IF_ERROR(Check(cr, "creating the LDAP organisation"));
    MBX_RETURN_IF_ERROR(CopyStores(pristine, run));
    MBX_ASSIGN_OR_RETURN(cr, RunChild({o.self_exe, "directory", "import", "--org", run, "--ldif", ldif}, scratch));
    MBX_RETURN_IF_ERROR(Check(cr, "importing the directory into LDAP"));
  }
  MBX_ASSIGN_OR_RETURN(cr, RunChild({o.self_exe, "store", "create", "--org", run, "--store", "TARGET", "--server",
                                     "SERVER2", "--sync", o.sync},
                                    scratch));
  MBX_RETURN_IF_ERROR(Check(cr, "creating the target store"));
  ::sync();
  auto rep = RunJsonChild({o.self_exe, "move", "--org", run, "--from", "SOURCE", "--to", "TARGET", "--concurrency",
                           std::to_string(c), "--json"},
                          scratch, &cr);
  if (!rep.ok()) return rep.status();
  MBX_RETURN_IF_ERROR(Check(cr, "the move"));
  const json& t = (*rep)["totals"];
  const json& d = (*rep)["directory"];
  fs::remove_all(run, ec);
  return json{{"seconds", t["seconds"]},
              {"mib_per_s", t["mib_per_s"]},
              {"items_per_s", t["items_per_s"]},
              {"mailboxes", t["mailboxes_completed"]},
              {"directory_s", (*rep)["time"]["directory_s"]},
              {"operations_per_mailbox", d["operations_per_mailbox"]},
              {"switch_p50_ms", d["switch_p50_ms"]},
              {"switch_p95_ms", d["switch_p95_ms"]},
              {"cpu_s", cr.cpu_s}};
}

json MedianOf(const std::vector<json>& runs) {
  json row = runs.front();
  for (const char* k : {"seconds", "mib_per_s", "items_per_s", "directory_s", "operations_per_mailbox",
                        "switch_p50_ms", "switch_p95_ms", "cpu_s"}) {
    std::vector<double> v;
    for (const auto& r : runs) v.push_back(r[k].get<double>());
    row[k] = Median(v);
  }
  std::vector<double> mib;
  for (const auto& r : runs) mib.push_back(r["mib_per_s"].get<double>());
  row["mib_per_s_min"] = *std::min_element(mib.begin(), mib.end());
  row["mib_per_s_max"] = *std::max_element(mib.begin(), mib.end());
  return row;
}

void WriteCsv(const json& r, const std::string& path) {
  std::ofstream f(path);
  f << "concurrency,lmdb_mib_per_s,ldap_mib_per_s,ratio,lmdb_ops_per_mailbox,ldap_ops_per_mailbox,"
       "lmdb_switch_p50_ms,lmdb_switch_p95_ms,ldap_switch_p50_ms,ldap_switch_p95_ms\n";
  for (const auto& row : r["rows"]) {
    const json& a = row["lmdb"];
    const json& b = row["ldap"];
    f << row["concurrency"] << "," << a["mib_per_s"] << "," << b["mib_per_s"] << "," << row["ratio"] << ","
      << a["operations_per_mailbox"] << "," << b["operations_per_mailbox"] << "," << a["switch_p50_ms"] << ","
      << a["switch_p95_ms"] << "," << b["switch_p50_ms"] << "," << b["switch_p95_ms"] << "\n";
  }
}

}  // namespace

Result<json> RunDirectorySweep(const DirectorySweepOptions& o) {
  if (o.levels.empty()) return Status::InvalidArgument("--concurrency needs values");
  for (int c : o.levels) {
    if (c < 1 || c > 256) return Status::InvalidArgument("concurrency levels must be 1 to 256");
  }
  if (o.repeat < 1) return Status::InvalidArgument("--repeat must be at least 1");
  MBX_RETURN_IF_ERROR(CheckReusable(o.out_dir));
  std::error_code ec;
  fs::remove_all(o.out_dir, ec);
  fs::create_directories(o.out_dir, ec);
  fs::permissions(o.out_dir, fs::perms::owner_all, ec);
  const std::string scratch = o.out_dir + "/scratch";
  fs::create_directories(scratch, ec);
  const std::string pristine = o.out_dir + "/data-" + o.preset;
  Say(o, "generating the '" + o.preset + "' preset into " + pristine);
  ChildResult cr;
  MBX_ASSIGN_OR_RETURN(json ds, RunJsonChild({o.self_exe, "gen", "--org", pristine, "--store", "SOURCE", "--server",
                                              "SERVER1", "--preset", o.preset, "--seed", std::to_string(o.seed),
                                              "--json"},
                                             scratch, &cr));
  MBX_RETURN_IF_ERROR(Check(cr, "gen"));
  ds.erase("corrupted");
  const std::string ldif = scratch + "/directory.ldif";
  MBX_ASSIGN_OR_RETURN(cr, RunChild({o.self_exe, "directory", "export", "--org", pristine, "--ldif", ldif}, scratch));
  MBX_RETURN_IF_ERROR(Check(cr, "exporting the directory"));
  Say(o, "starting a private slapd in " + scratch + "/slapd");
  // Stopped by its destructor on every way out of this function.
  MBX_ASSIGN_OR_RETURN(std::unique_ptr<Slapd> slapd, Slapd::Start(scratch + "/slapd"));

  json rows = json::array();
  int run_no = 0;
  for (int c : o.levels) {
    std::vector<json> lmdb, ldap;
    for (int r = 0; r < o.repeat; ++r) {
      // Alternated, so that a slow patch of the machine hits both alike.
      MBX_ASSIGN_OR_RETURN(json a, OneRun(o, pristine, ldif, nullptr, run_no++, c, scratch));
      MBX_ASSIGN_OR_RETURN(json b, OneRun(o, pristine, ldif, slapd.get(), run_no++, c, scratch));
      lmdb.push_back(a);
      ldap.push_back(b);
    }
    json row = {{"concurrency", c}, {"lmdb", MedianOf(lmdb)}, {"ldap", MedianOf(ldap)}};
    const double base = row["lmdb"]["mib_per_s"].get<double>();
    row["ratio"] = base > 0 ? row["ldap"]["mib_per_s"].get<double>() / base : 0.0;
    char buf[200];
    std::snprintf(buf, sizeof buf, "C=%d: LMDB %.1f MiB/s, LDAP %.1f MiB/s (x%.2f), LDAP %.1f ops/mailbox", c,
                  base, row["ldap"]["mib_per_s"].get<double>(), row["ratio"].get<double>(),
                  row["ldap"]["operations_per_mailbox"].get<double>());
    Say(o, buf);
    rows.push_back(row);
  }
  (void)slapd->Stop();
  json res = {{"benchmark", "directory"},
              {"preset", o.preset},
              {"dataset", ds},
              {"sync", o.sync},
              {"repeat", o.repeat},
              {"machine",
               {{"cpu_model", CpuModel()},
                {"cores", std::thread::hardware_concurrency()},
                {"git_commit", MBX_GIT_COMMIT}}},
              {"rows", rows}};
  std::ofstream(o.out_dir + "/results.json") << res.dump(2) << "\n";
  WriteCsv(res, o.out_dir + "/results.csv");
  slapd.reset();
  fs::remove_all(scratch, ec);
  fs::remove_all(pristine, ec);
  return res;
}

std::string FormatDirectoryTable(const json& r) {
  std::string out;
  char buf[320];
  std::snprintf(buf, sizeof buf, "%4s %10s %10s %7s | %9s %9s | %21s %21s\n", "C", "LMDB MiB/s", "LDAP MiB/s",
                "x LMDB", "ops/mbx", "ops/mbx", "LMDB switch p50/p95", "LDAP switch p50/p95");
  out += buf;
  std::snprintf(buf, sizeof buf, "%4s %10s %10s %7s | %9s %9s | %21s %21s\n", "", "", "", "", "LMDB", "LDAP",
                "ms", "ms");
  out += buf;
  for (const auto& row : r["rows"]) {
    const json& a = row["lmdb"];
    const json& b = row["ldap"];
    char sa[64], sb[64];
    std::snprintf(sa, sizeof sa, "%.2f / %.2f", a["switch_p50_ms"].get<double>(), a["switch_p95_ms"].get<double>());
    std::snprintf(sb, sizeof sb, "%.2f / %.2f", b["switch_p50_ms"].get<double>(), b["switch_p95_ms"].get<double>());
    std::snprintf(buf, sizeof buf, "%4d %10.1f %10.1f %7.2f | %9.1f %9.1f | %21s %21s\n", row["concurrency"].get<int>(),
                  a["mib_per_s"].get<double>(), b["mib_per_s"].get<double>(), row["ratio"].get<double>(),
                  a["operations_per_mailbox"].get<double>(), b["operations_per_mailbox"].get<double>(), sa, sb);
    out += buf;
  }
  return out;
}

}  // namespace mbx::bench
