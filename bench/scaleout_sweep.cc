#include "bench/scaleout_sweep.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "bench/child_process.h"
#include "bench/sweep.h"
#include "engine/org_check.h"
#include "engine/queue_mover.h"
#include "net/certs.h"
#include "net/link_proxy.h"
#include "net/slapd.h"
#include "store/directory.h"
#include "store/ldap_directory.h"
#include "store/organization.h"
#include "mbx_git_commit.h"  // generated at build time: MBX_GIT_COMMIT

extern char** environ;

namespace mbx::bench {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kLabel = "scale-out";
// Bounds on the commands the benchmark runs: a hung child is killed and the
// benchmark fails instead of waiting for ever.
constexpr std::chrono::milliseconds kStepLimit = std::chrono::minutes(10);
constexpr std::chrono::milliseconds kGenLimit = std::chrono::hours(4);  // the large preset

void Say(const ScaleOutOptions& o, const std::string& line) {
  if (!o.quiet) std::fprintf(stderr, "bench: %s\n", line.c_str());
}

std::string Fmt(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

unsigned Cores() { return std::max(1u, std::thread::hardware_concurrency()); }

// User + system CPU seconds a running process has used so far (0 when it
// cannot be read).
double ProcessCpuSeconds(pid_t pid) {
  if (pid <= 0) return 0;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(f)), {});
  const size_t paren = text.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(text.substr(paren + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  // After "(comm) ": state is field 3 of the file; utime and stime are 14 and 15.
  for (int i = 3; i <= 15 && (fields >> field); ++i) {
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  return double(utime + stime) / double(sysconf(_SC_CLK_TCK));
}

// The whole machine's CPU time so far (every process, ours or not), from
// /proc/stat's first line, in clock ticks.
struct MachineCpu {
  double busy = 0, iowait = 0, total = 0;
};
MachineCpu ReadMachineCpu() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  double v[8] = {0};  // user nice system idle iowait irq softirq steal
  f >> cpu;
  for (double& x : v) f >> x;
  MachineCpu m;
  m.busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  m.iowait = v[4];
  m.total = m.busy + v[3] + v[4];
  return m;
}

double SelfCpuSeconds() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  return std::string((std::istreambuf_iterator<char>(f)), {});
}

// The end of a log, for an error message.
std::string Tail(const std::string& text, size_t n = 500) {
  return text.size() <= n ? text : "..." + text.substr(text.size() - n);
}

Status Check(const ChildResult& cr, const std::string& what) {
  if (cr.exit_code == 0) return Status::Ok();
  return Status::Internal(what + " failed (exit " + std::to_string(cr.exit_code) + "): " + cr.err.substr(0, 400));
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// A mover running in the background: stdout and stderr into files, reaped
// with its resource use, killed when this object goes (a failed run).
class MoverProcess {
 public:
  static Result<std::unique_ptr<MoverProcess>> Start(const std::string& name, const std::vector<std::string>& args,
                                                     const std::string& stem) {
    std::unique_ptr<MoverProcess> m(new MoverProcess());
    m->name_ = name;
    m->out_path_ = stem + ".out";
    m->err_path_ = stem + ".err";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, m->out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, m->err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const int rc = posix_spawn(&m->pid_, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      m->pid_ = -1;
      return Status::IOError("cannot start mover " + name + ": " + std::strerror(rc));
    }
    return m;
  }
  ~MoverProcess() { Kill(); }
  MoverProcess(const MoverProcess&) = delete;
  MoverProcess& operator=(const MoverProcess&) = delete;

  // True while it runs; reaps it once it has ended.
  bool Running() {
    if (pid_ < 0) return false;
    int st = 0;
    struct rusage ru {};
    const pid_t r = wait4(pid_, &st, WNOHANG, &ru);
    if (r == 0) return true;
    Reaped(r == pid_ ? st : -1, ru);
    return false;
  }
  // SIGSTOP / SIGCONT: frozen, it holds what it holds and finishes nothing.
  void Freeze(bool on) {
    if (pid_ >= 0) ::kill(pid_, on ? SIGSTOP : SIGCONT);
  }
  // SIGKILL now, and reap.
  void Kill() {
    if (pid_ < 0) return;
    ::kill(pid_, SIGKILL);
    int st = 0;
    struct rusage ru {};
    const pid_t r = wait4(pid_, &st, 0, &ru);
    Reaped(r == pid_ ? st : -1, ru);
  }
  const std::string& name() const { return name_; }
  int exit_code() const { return exit_code_; }
  double cpu_s() const { return cpu_s_; }
  Clock::time_point ended() const { return ended_; }
  std::string out() const { return Slurp(out_path_); }
  std::string err() const { return Slurp(err_path_); }

 private:
  MoverProcess() = default;
  void Reaped(int st, const struct rusage& ru) {
    ended_ = Clock::now();
    exit_code_ = st < 0 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    cpu_s_ = double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
             double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    pid_ = -1;
  }
  std::string name_, out_path_, err_path_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
  double cpu_s_ = 0;
  Clock::time_point ended_{};
};

// A server and the link in front of it, for one run.
struct Served {
  std::string name;
  std::unique_ptr<ServerChild> server;
  std::unique_ptr<net::LinkProxy> link;
};

Result<Served> Serve(const ScaleOutOptions& o, const std::string& org, const std::string& name,
                     const std::string& scratch) {
  Served s;
  s.name = name;
  MBX_ASSIGN_OR_RETURN(s.server, ServerChild::Start({o.self_exe, "serve", "--org", org, "--server", name, "--listen",
                                                      "127.0.0.1:0", "--certs", org + "/certs"},
                                                     scratch + "/serve-" + name + ".log", std::chrono::seconds(30)));
  if (s.server->port() == 0) return Status::Internal("serve printed no port: " + s.server->first_line());
  net::LinkOptions lo;
  lo.to = {"127.0.0.1", uint16_t(s.server->port())};
  lo.delay = std::chrono::microseconds(int64_t(o.rtt_ms) * 1000 / 2);
  lo.rate_bytes_per_s = o.rate_bytes_per_s;
  MBX_ASSIGN_OR_RETURN(s.link, net::LinkProxy::Start(lo));
  ChildResult cr;
  MBX_ASSIGN_OR_RETURN(cr, RunChild({o.self_exe, "server", "add", "--org", org, "--server", name, "--address",
                                     "127.0.0.1:" + std::to_string(s.link->port())},
                                    scratch, kStepLimit));
  MBX_RETURN_IF_ERROR(Check(cr, "server add " + name));
  return s;
}

// What every run starts from.
struct Dataset {
  std::string pristine;  // an organisation with the embedded directory: the data as generated
  std::string ldif;      // its directory
  std::string source_store, source_server;
  std::vector<std::string> target_stores, target_servers;  // TARGETk on SERVERk
  std::vector<std::string> mailboxes;                      // GUIDs, largest first
  uint64_t stored_bytes = 0, items = 0;
  json info;
};

// Copies of the pristine organisation's store folders into `run` (their
// LOCK files left behind, as a copy of a closed store would be).
Status CopyStores(const std::string& pristine, const std::string& run) {
  std::error_code ec;
  fs::create_directories(run + "/stores", ec);
  for (const auto& e : fs::directory_iterator(pristine + "/stores", ec)) {
    const std::string dest = run + "/stores/" + e.path().filename().string();
    fs::copy(e.path(), dest, fs::copy_options::recursive, ec);
    if (ec) return Status::IOError("copying " + e.path().string() + " for a run: " + ec.message());
    fs::remove(dest + "/LOCK", ec);
  }
  if (ec) return Status::IOError("listing " + pristine + "/stores: " + ec.message());
  return Status::Ok();
}

// Generates the dataset (or takes --org's), chooses the source store, names
// the targets, lists the mailboxes to move and exports the directory.
Result<Dataset> MakeDataset(const ScaleOutOptions& o, const std::string& scratch) {
  Dataset ds;
  ChildResult cr;
  if (o.org.empty()) {
    ds.pristine = o.out_dir + "/data-" + o.preset;
    Say(o, "generating the '" + o.preset + "' preset into " + ds.pristine);
    MBX_ASSIGN_OR_RETURN(ds.info, RunJsonChild({o.self_exe, "gen", "--org", ds.pristine, "--store", "SOURCE",
                                                "--server", "SERVER1", "--preset", o.preset, "--seed",
                                                std::to_string(o.seed), "--json"},
                                               scratch, &cr, kGenLimit));
    MBX_RETURN_IF_ERROR(Check(cr, "gen"));
    ds.info.erase("corrupted");
    ds.info["preset"] = o.preset;
  } else {
    // Read only: its directory exported (no recovery runs), its store
    // folders copied, into an organisation of our own.
    ds.pristine = o.out_dir + "/data-org";
    Say(o, "copying the organisation " + o.org + " into " + ds.pristine);
    const std::string given = scratch + "/given.ldif";
    MBX_ASSIGN_OR_RETURN(cr, RunChild({o.self_exe, "directory", "export", "--org", o.org, "--ldif", given}, scratch,
                                      kStepLimit));
    MBX_RETURN_IF_ERROR(Check(cr, "exporting the directory of " + o.org));
    MBX_ASSIGN_OR_RETURN(cr, RunChild({o.self_exe, "directory", "import", "--org", ds.pristine, "--ldif", given},
                                      scratch, kStepLimit));
    MBX_RETURN_IF_ERROR(Check(cr, "importing the directory of " + o.org));
    MBX_RETURN_IF_ERROR(CopyStores(o.org, ds.pristine));
    ds.info = {{"org", o.org}, {"preset", "(given organisation)"}};
  }

  {
    MBX_ASSIGN_OR_RETURN(std::unique_ptr<Organization> org, Organization::Open(ds.pristine));
    Directory& dir = org->directory();
    std::vector<StoreRecord> stores;
    std::vector<UserRecord> users;
    std::vector<ServerRecord> servers;
    MBX_RETURN_IF_ERROR(dir.ListStores(&stores));
    MBX_RETURN_IF_ERROR(dir.ListUsers(&users));
    MBX_RETURN_IF_ERROR(dir.ListServers(&servers));
    // Addresses of another setup would send our runs there: every server
    // starts local, and each run records its own servers' addresses.
    for (const auto& s : servers) {
      if (!s.address.empty()) MBX_RETURN_IF_ERROR(dir.PutServer({s.name, ""}));
    }
    std::map<std::string, size_t> homed;  // store -> users homed there
    for (const auto& st : stores) {
      for (const auto& u : users) homed[st.name] += u.home_mdb == st.dn;
    }
    const StoreRecord* source = nullptr;
    for (const auto& st : stores) {
      if (!o.source_store.empty() ? st.name == o.source_store
                                  : (source == nullptr || homed[st.name] > homed[source->name])) {
        source = &st;
      }
    }
    if (source == nullptr) {
      return Status::InvalidArgument(o.source_store.empty() ? o.org + " has no stores"
                                                            : "--from: " + o.org + " has no store '" +
                                                                  o.source_store + "'");
    }
    ds.source_store = source->name;
    ds.source_server = source->server;
    std::vector<MailboxInfo> infos;
    MBX_ASSIGN_OR_RETURN(Store * src, org->GetStore(ds.source_store));
    MBX_RETURN_IF_ERROR(src->ListMailboxes(&infos));
    std::map<Guid, const MailboxInfo*> by_guid;
    for (const auto& m : infos) by_guid[m.guid] = &m;
    struct Pick {
      std::string guid, user;
      uint64_t bytes;
    };
    std::vector<Pick> picks;
    for (const auto& u : users) {
      auto it = by_guid.find(u.mailbox);
      if (u.home_mdb != source->dn || it == by_guid.end() || it->second->state != MailboxState::kActive) continue;
      picks.push_back({u.mailbox.ToString(), u.name, it->second->stored_bytes});
      ds.stored_bytes += it->second->stored_bytes;
      ds.items += it->second->item_count;
    }
    if (picks.empty()) {
      return Status::InvalidArgument("store '" + ds.source_store + "' holds no active mailbox to move");
    }
    // Largest first, as the engine orders a batch, so that the round-robin
    // gives every target about the same bytes.
    std::sort(picks.begin(), picks.end(), [](const Pick& a, const Pick& b) {
      return a.bytes != b.bytes ? a.bytes > b.bytes : a.user < b.user;
    });
    for (const auto& p : picks) ds.mailboxes.push_back(p.guid);
    // Target names that the organisation does not use yet.
    std::set<std::string> used_servers, used_stores;
    for (const auto& st : stores) {
      used_servers.insert(st.server);
      used_stores.insert(st.name);
    }
    for (const auto& s : servers) used_servers.insert(s.name);
    for (int k = 2; int(ds.target_stores.size()) < o.servers - 1; ++k) {
      const std::string server = "SERVER" + std::to_string(k), store = "TARGET" + std::to_string(k);
      if (used_servers.count(server) || used_stores.count(store)) continue;
      ds.target_servers.push_back(server);
      ds.target_stores.push_back(store);
    }
  }  // the organisation closes here: its stores can be copied

  ds.ldif = scratch + "/directory.ldif";
  MBX_ASSIGN_OR_RETURN(cr, RunChild({o.self_exe, "directory", "export", "--org", ds.pristine, "--ldif", ds.ldif},
                                    scratch, kStepLimit));
  MBX_RETURN_IF_ERROR(Check(cr, "exporting the directory"));
  ds.info["source_store"] = ds.source_store;
  ds.info["source_server"] = ds.source_server;
  ds.info["target_stores"] = ds.target_stores;
  ds.info["mailboxes_moved"] = ds.mailboxes.size();
  ds.info["stored_bytes_moved"] = ds.stored_bytes;
  ds.info["items_moved"] = ds.items;
  return ds;
}

// A fresh organisation for one run, its requests queued: the directory a
// new base in the slapd, the store folders copied, the targets created.
struct RunOrg {
  std::string dir;
  LdapConfig ldap;
  double prepare_s = 0, queue_s = 0;
  int queue_commands = 0;
};

Result<RunOrg> PrepareRun(const ScaleOutOptions& o, const Dataset& ds, const Slapd& slapd, int run_no,
                          const std::string& scratch) {
  RunOrg r;
  r.dir = scratch + "/run";
  std::error_code ec;
  fs::remove_all(r.dir, ec);
  const auto t0 = Clock::now();
  const std::string base = "ou=scaleout" + std::to_string(run_no) + "," + Slapd::kSuffix;
  r.ldap = slapd.ConfigFor(base);
  ChildResult cr;
  MBX_ASSIGN_OR_RETURN(cr, RunChild({o.self_exe, "org", "create", "--org", r.dir, "--directory",
                                     slapd.url() + "/" + base, "--bind-dn", slapd.bind_dn(), "--password-file",
                                     slapd.password_file()},
                                    scratch, kStepLimit));
  MBX_RETURN_IF_ERROR(Check(cr, "creating the LDAP organisation"));
  MBX_RETURN_IF_ERROR(CopyStores(ds.pristine, r.dir));
  MBX_ASSIGN_OR_RETURN(cr, RunChild({o.self_exe, "directory", "import", "--org", r.dir, "--ldif", ds.ldif}, scratch,
                                    kStepLimit));
  MBX_RETURN_IF_ERROR(Check(cr, "importing the directory into LDAP"));
  for (size_t t = 0; t < ds.target_stores.size(); ++t) {
    MBX_ASSIGN_OR_RETURN(cr, RunChild({o.self_exe, "store", "create", "--org", r.dir, "--store", ds.target_stores[t],
                                       "--server", ds.target_servers[t], "--sync", o.sync},
                                      scratch, kStepLimit));
    MBX_RETURN_IF_ERROR(Check(cr, "creating the target store " + ds.target_stores[t]));
  }
  net::CertDirOptions co;
  co.out_dir = r.dir + "/certs";
  co.org_name = "mbxmove bench";
  co.servers = {ds.source_server};
  co.servers.insert(co.servers.end(), ds.target_servers.begin(), ds.target_servers.end());
  MBX_RETURN_IF_ERROR(net::CreateCertDir(co).status());
  r.prepare_s = Seconds(Clock::now() - t0);

  // Mailbox i goes to target i mod T. The movers take the oldest request
  // first (to the second; ties in GUID order), so the requests go in in
  // rounds of a few per target: the queue's order interleaves the targets
  // wherever its seconds fall, and the moves in flight spread over them.
  const auto q0 = Clock::now();
  const size_t targets = ds.target_stores.size();
  const int most_movers = *std::max_element(o.movers.begin(), o.movers.end());
  const size_t chunk = std::clamp<size_t>(size_t(most_movers * o.concurrency) / targets, 2, 32);
  std::vector<std::vector<std::string>> per_target(targets);
  for (size_t i = 0; i < ds.mailboxes.size(); ++i) per_target[i % targets].push_back(ds.mailboxes[i]);
  for (size_t round = 0; round * chunk < per_target[0].size(); ++round) {
    for (size_t t = 0; t < targets; ++t) {
      const auto& list = per_target[t];
      if (round * chunk >= list.size()) continue;
      std::vector<std::string> args = {o.self_exe, "move", "--org", r.dir, "--to", ds.target_stores[t],
                                       "--queue", "--label", kLabel, "--json"};
      size_t n = 0;
      for (size_t i = round * chunk; i < std::min(list.size(), (round + 1) * chunk); ++i, ++n) {
        args.push_back("--mailbox");
        args.push_back(list[i]);
      }
      MBX_ASSIGN_OR_RETURN(json q, RunJsonChild(args, scratch, &cr, kStepLimit));
      MBX_RETURN_IF_ERROR(Check(cr, "queueing moves to " + ds.target_stores[t]));
      if (q.value("queued", size_t(0)) != n) {
        return Status::Internal("queueing moves to " + ds.target_stores[t] + ": " + std::to_string(n) +
                                " requests given, " + q.value("queued", json(0)).dump() + " queued");
      }
      ++r.queue_commands;
    }
  }
  r.queue_s = Seconds(Clock::now() - q0);
  return r;
}

// A survey of the run's organisation, every store local.
Result<engine::OrgSurvey> Survey(const std::string& org_dir) {
  MBX_ASSIGN_OR_RETURN(std::unique_ptr<Organization> org, Organization::Open(org_dir));
  return engine::SurveyOrganization(*org);
}

// One run: the queue drained by `movers` movers; with `kill`, one of them is
// killed once a third of the requests are done. Returns the row's figures
// (and, with kill, the kill run's).
Result<json> OneRun(const ScaleOutOptions& o, const Dataset& ds, const Slapd& slapd, int run_no, int movers,
                    bool kill, const std::string& scratch) {
  MBX_ASSIGN_OR_RETURN(RunOrg run, PrepareRun(o, ds, slapd, run_no, scratch));
  const size_t requests = ds.mailboxes.size();
  Say(o, "run " + std::to_string(run_no) + ": " + std::to_string(requests) + " requests queued (" +
             std::to_string(run.queue_commands) + " 'move --queue' commands, " + Fmt("%.1f", run.queue_s) +
             " s; organisation copied in " + Fmt("%.1f", run.prepare_s) + " s); " + std::to_string(movers) +
             " mover(s)" + (kill ? ", one to be killed" : ""));
  engine::OrgSurvey before;
  if (kill) {
    MBX_ASSIGN_OR_RETURN(before, Survey(run.dir));
    if (!before.clean()) return Status::Internal("the organisation is not clean before the kill run");
  }
  ::sync();  // nothing of the copy left to write back during the run

  std::vector<Served> served;
  std::vector<std::string> server_names = {ds.source_server};
  server_names.insert(server_names.end(), ds.target_servers.begin(), ds.target_servers.end());
  for (const auto& name : server_names) {
    MBX_ASSIGN_OR_RETURN(Served s, Serve(o, run.dir, name, scratch));
    served.push_back(std::move(s));
  }
  // For the kill run: the queue as the movers see it, read here.
  std::unique_ptr<Directory> watch;
  if (kill) {
    MBX_ASSIGN_OR_RETURN(watch, OpenLdapDirectory(run.ldap, /*create=*/false));
  }

  const double deadline_s = 120 + 10 * o.lease_s + double(ds.stored_bytes) / 1048576.0;
  const double slapd_cpu0 = ProcessCpuSeconds(slapd.pid()), self_cpu0 = SelfCpuSeconds();
  const MachineCpu machine0 = ReadMachineCpu();
  std::vector<std::unique_ptr<MoverProcess>> procs;
  const auto t0 = Clock::now();
  for (int i = 1; i <= movers; ++i) {
    const std::string name = "m" + std::to_string(i);
    MBX_ASSIGN_OR_RETURN(
        auto p, MoverProcess::Start(name,
                                    {o.self_exe, "mover", "--org", run.dir, "--name", name, "--drain", "--json",
                                     "--concurrency", std::to_string(o.concurrency), "--lease",
                                     Fmt("%g", o.lease_s), "--poll", "0.05", "--max-per-source-mdb", "0",
                                     "--max-per-target-mdb", "0", "--max-per-source-server", "0",
                                     "--max-per-target-server", "0"},
                                    scratch + "/run" + std::to_string(run_no) + "-" + name));
    procs.push_back(std::move(p));
  }
  // Wait for every mover; kill one on the way in the kill run. The victim
  // is the mover holding the most requests at the first look that finds one
  // holding any: frozen there (SIGSTOP), so that it can finish nothing it
  // holds however fast the others drain the rest, and SIGKILLed once a third
  // of the requests are done (or all but what it holds, if that is fewer).
  const size_t kill_at = (requests + 2) / 3;
  std::string victim;
  MoverProcess* frozen = nullptr;
  size_t done_at_kill = 0, held = 0;
  auto next_look = t0;
  // The queue as it stands: requests done, and active ones per mover.
  auto look = [&](size_t* done, std::map<std::string, size_t>* holding) {
    std::vector<QueueEntry> entries;
    if (!watch->ListQueue(&entries, nullptr).ok()) return false;
    *done = 0;
    holding->clear();
    for (const auto& e : entries) {
      *done += e.state == QueueState::kDone;
      if (e.state == QueueState::kActive) ++(*holding)[engine::MoverNameOfToken(e.owner)];
    }
    return true;
  };
  for (;;) {
    bool any = false;
    for (auto& p : procs) {
      if (!p->Running()) {
        if (p->exit_code() != 0 && p->name() != victim) {
          return Status::Internal("mover " + p->name() + " exited " + std::to_string(p->exit_code()) + ": " +
                                  Tail(p->err()));
        }
      } else {
        any = true;
      }
    }
    if (!any) break;
    const auto now = Clock::now();
    if (Seconds(now - t0) > deadline_s) {
      if (frozen != nullptr) frozen->Kill();
      return Status::Internal("the movers did not drain the queue within " + Fmt("%.0f", deadline_s) +
                              " s (killed; logs in " + scratch + ")");
    }
    size_t done = 0;
    std::map<std::string, size_t> holding;
    if (kill && victim.empty() && now >= next_look && look(&done, &holding)) {
      next_look = now + std::chrono::milliseconds(10);
      MoverProcess* pick = nullptr;
      size_t most = 0;
      for (auto& p : procs) {
        if (p->Running() && holding[p->name()] > most) {
          most = holding[p->name()];
          pick = p.get();
        }
      }
      if (pick != nullptr) {
        pick->Freeze(true);
        // What it holds now that it is frozen (it may have finished some
        // between the look and the stop): none, and the next look picks again.
        if (look(&done, &holding) && holding[pick->name()] > 0) {
          victim = pick->name();
          frozen = pick;
          held = holding[pick->name()];
        } else {
          pick->Freeze(false);
        }
      }
    } else if (frozen != nullptr && now >= next_look && look(&done, &holding)) {
      next_look = now + std::chrono::milliseconds(10);
      if (done >= std::min(kill_at, requests - held)) {
        frozen->Kill();  // dies holding `held` requests: its lease must lapse before another takes them
        frozen = nullptr;
        done_at_kill = done;
        Say(o, "kill run: killed mover " + victim + " with " + std::to_string(done) + " of " +
                   std::to_string(requests) + " requests done; it held " + std::to_string(held));
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto t_end = t0;
  for (auto& p : procs) t_end = std::max(t_end, p->ended());
  const double secs = std::max(1e-6, Seconds(t_end - t0));
  const double slapd_cpu = ProcessCpuSeconds(slapd.pid()) - slapd_cpu0, links_cpu = SelfCpuSeconds() - self_cpu0;
  const MachineCpu machine1 = ReadMachineCpu();
  const double machine_ticks = std::max(1.0, machine1.total - machine0.total);
  watch.reset();
  if (kill && victim.empty()) {
    return Status::Internal("kill run: the batch of " + std::to_string(requests) +
                            " requests finished before a look at the queue found a mover holding one; use more data");
  }

  // Every request done?
  ChildResult cr;
  MBX_ASSIGN_OR_RETURN(json q, RunJsonChild({o.self_exe, "queue", "status", "--org", run.dir, "--json"}, scratch,
                                            &cr, kStepLimit));
  MBX_RETURN_IF_ERROR(Check(cr, "queue status"));
  const json& counts = q["counts"];
  if (q.value("total", size_t(0)) != requests || counts.value("done", size_t(0)) != requests) {
    return Status::Internal(std::to_string(movers) + " movers left the queue unfinished: " + std::to_string(requests) +
                            " requests, queue status counts " + counts.dump());
  }
  double servers_cpu = 0;
  for (auto& s : served) {
    servers_cpu += ProcessCpuSeconds(s.server->pid());
    s.server->Stop();
  }
  served.clear();

  // The movers' reports.
  uint64_t done = 0, bytes = 0, items = 0, ops = 0, writes = 0, conflicts = 0, taken_over = 0, finished_prev = 0,
           rolled_back_prev = 0;
  double movers_cpu = 0;
  json per_mover = json::array();
  for (auto& p : procs) {
    movers_cpu += p->cpu_s();
    if (p->name() == victim) {
      per_mover.push_back({{"mover", p->name()}, {"killed", true}, {"cpu_s", p->cpu_s()}});
      continue;
    }
    json r = json::parse(p->out(), nullptr, false);
    if (r.is_discarded()) return Status::Internal("mover " + p->name() + " printed no report: " + Tail(p->err()));
    if (r["failed"].get<uint64_t>() != 0 || r["lost"].get<uint64_t>() != 0) {
      return Status::Internal("mover " + p->name() + " failed or lost requests: " + Tail(p->out()));
    }
    done += r["done"].get<uint64_t>();
    bytes += r["bytes_moved"].get<uint64_t>();
    items += r["items_moved"].get<uint64_t>();
    ops += r["directory_operations"].get<uint64_t>();
    writes += r["directory_writes"].get<uint64_t>();
    conflicts += r["claim_conflicts"].get<uint64_t>();
    taken_over += r["taken_over"].get<uint64_t>();
    finished_prev += r["finished_for_previous_owner"].get<uint64_t>();
    rolled_back_prev += r["rolled_back_for_previous_owner"].get<uint64_t>();
    per_mover.push_back({{"mover", p->name()},
                         {"claimed", r["claimed"]},
                         {"done", r["done"]},
                         {"taken_over", r["taken_over"]},
                         {"claim_conflicts", r["claim_conflicts"]},
                         {"bytes_moved", r["bytes_moved"]},
                         {"directory_operations", r["directory_operations"]},
                         {"directory_writes", r["directory_writes"]},
                         {"seconds", r["seconds"]},
                         {"cpu_s", p->cpu_s()}});
  }
  if (!kill && done != requests) {
    return Status::Internal(std::to_string(requests) + " requests, but the movers report " + std::to_string(done) +
                            " done");
  }
  const double per = double(std::max<uint64_t>(done, 1));
  json row = {{"movers", movers},
              {"seconds", secs},
              {"mailboxes", done},
              {"bytes", bytes},
              {"items", items},
              {"mib_per_s", double(bytes) / 1048576.0 / secs},
              {"mailboxes_per_s", double(done) / secs},
              {"items_per_s", double(items) / secs},
              {"directory_operations", ops},
              {"directory_writes", writes},
              {"directory_operations_per_mailbox", double(ops) / per},
              {"directory_writes_per_mailbox", double(writes) / per},
              {"directory_writes_per_s", double(writes) / secs},
              {"claim_conflicts", conflicts},
              {"taken_over", taken_over},
              {"cpu_movers_s", movers_cpu},
              {"cpu_servers_s", servers_cpu},
              {"cpu_slapd_s", slapd_cpu},
              {"cpu_links_s", links_cpu},
              {"cpu_busy", (movers_cpu + servers_cpu + slapd_cpu + links_cpu) / (secs * Cores())},
              // Every process of the machine, ours or not: is anything else
              // taking the CPU, is the disk holding the run up?
              {"machine_busy", (machine1.busy - machine0.busy) / machine_ticks},
              {"machine_iowait", (machine1.iowait - machine0.iowait) / machine_ticks},
              {"prepare_s", run.prepare_s},
              {"queue_s", run.queue_s},
              {"queue_commands", run.queue_commands},
              {"per_mover", per_mover}};

  if (kill) {
    // The invariant, every store local again.
    for (const auto& name : server_names) {
      MBX_ASSIGN_OR_RETURN(cr, RunChild({o.self_exe, "server", "add", "--org", run.dir, "--server", name,
                                         "--address", ""},
                                        scratch, kStepLimit));
      MBX_RETURN_IF_ERROR(Check(cr, "clearing the address of " + name));
    }
    MBX_ASSIGN_OR_RETURN(engine::OrgSurvey after, Survey(run.dir));
    std::vector<std::string> violations = engine::MoveInvariantViolations(before, after);
    std::set<std::string> target_dns;
    for (const auto& st : after.stores) {
      if (std::find(ds.target_stores.begin(), ds.target_stores.end(), st.name) != ds.target_stores.end()) {
        target_dns.insert(st.dn);
      }
    }
    std::set<std::string> moved(ds.mailboxes.begin(), ds.mailboxes.end());
    for (const auto& u : after.users) {
      if (moved.count(u.mailbox.ToString()) && !target_dns.count(u.home_mdb)) {
        violations.push_back(u.name + " is not homed in a target store (homeMDB " + u.home_mdb + ")");
      }
    }
    {
      MBX_ASSIGN_OR_RETURN(std::unique_ptr<Organization> org, Organization::Open(run.dir));
      std::vector<MoveRecord> moves;
      MBX_RETURN_IF_ERROR(org->directory().ListMoves(&moves));
      for (const auto& m : moves) violations.push_back("move record left for " + m.user);
    }
    if (!violations.empty()) {
      std::string text;
      for (size_t i = 0; i < violations.size() && i < 5; ++i) text += (i ? "; " : "") + violations[i];
      return Status::Internal("kill run: the invariant does not hold (" + std::to_string(violations.size()) +
                              " violations): " + text);
    }
    if (taken_over < held) {
      return Status::Internal("kill run: the killed mover held " + std::to_string(held) +
                              " requests but the others took over only " + std::to_string(taken_over));
    }
    row["kill"] = {{"killed", victim},
                   {"killed_when_done", done_at_kill},
                   {"held_when_killed", held},
                   {"taken_over", taken_over},
                   {"finished_for_previous_owner", finished_prev},
                   {"rolled_back_for_previous_owner", rolled_back_prev},
                   {"mailboxes_checked", after.mailboxes.size()},
                   {"invariant_held", true}};
  }
  std::error_code ec;
  fs::remove_all(run.dir, ec);
  return row;
}

json MedianRow(const std::vector<json>& runs) {
  json row = runs.front();
  for (const char* k : {"seconds", "mib_per_s", "mailboxes_per_s", "items_per_s", "directory_operations_per_mailbox",
                        "directory_writes_per_mailbox", "directory_writes_per_s", "cpu_movers_s", "cpu_servers_s",
                        "cpu_slapd_s", "cpu_links_s", "cpu_busy", "machine_busy", "machine_iowait", "prepare_s",
                        "queue_s"}) {
    std::vector<double> v;
    for (const auto& r : runs) v.push_back(r[k].get<double>());
    row[k] = Median(v);
  }
  std::vector<double> conflicts, mib;
  for (const auto& r : runs) {
    conflicts.push_back(r["claim_conflicts"].get<double>());
    mib.push_back(r["mib_per_s"].get<double>());
  }
  row["claim_conflicts"] = Median(conflicts);
  row["mib_per_s_min"] = *std::min_element(mib.begin(), mib.end());
  row["mib_per_s_max"] = *std::max_element(mib.begin(), mib.end());
  if (runs.size() > 1) {
    json all = json::array();
    for (auto r : runs) {
      r.erase("per_mover");
      all.push_back(r);
    }
    row["runs"] = all;
  }
  return row;
}

// Lease renewals against the slapd, the way a mover renews: GetLease, then
// UpdateLease guarded by the version read. Each thread has its own
// connection and its own leases.
Result<json> MeasureCapacity(const ScaleOutOptions& o, const Slapd& slapd) {
  constexpr int kLeasesPerThread = 2;
  const LdapConfig cfg = slapd.ConfigFor(std::string("ou=capacity,") + Slapd::kSuffix);
  MBX_ASSIGN_OR_RETURN(std::unique_ptr<Directory> setup, OpenLdapDirectory(cfg, /*create=*/true));
  json levels = json::array();
  for (int threads : o.capacity_threads) {
    std::vector<std::unique_ptr<Directory>> conns;
    std::vector<std::vector<std::string>> names(threads);
    for (int t = 0; t < threads; ++t) {
      MBX_ASSIGN_OR_RETURN(auto d, OpenLdapDirectory(cfg, false));
      for (int j = 0; j < kLeasesPerThread; ++j) {
        Lease l;
        l.name = "cap-" + std::to_string(threads) + "-" + std::to_string(t) + "-" + std::to_string(j);
        l.owner = "capacity#" + std::to_string(t);
        l.until_ms = 0;
        l.holds = "directory capacity";
        MBX_RETURN_IF_ERROR(d->AddLease(&l));
        names[t].push_back(l.name);
      }
      conns.push_back(std::move(d));
    }
    const uint64_t cap_per_thread = std::max<uint64_t>(1, o.capacity_max_renewals / uint64_t(threads));
    std::vector<uint64_t> writes(threads, 0), conflicts(threads, 0);
    std::vector<std::vector<double>> lat_ms(threads);
    std::vector<Status> errors(threads);
    std::atomic<bool> go{false};
    std::vector<std::thread> pool;
    const auto duration =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.capacity_seconds));
    Clock::time_point start;
    std::vector<Clock::time_point> ends(threads);
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        while (!go.load()) std::this_thread::yield();
        const auto until = start + duration;
        Directory& d = *conns[t];
        lat_ms[t].reserve(size_t(std::min<uint64_t>(cap_per_thread, 100000)));
        for (size_t k = 0; writes[t] + conflicts[t] < cap_per_thread && Clock::now() < until; ++k) {
          const auto r0 = Clock::now();
          auto cur = d.GetLease(names[t][k % names[t].size()]);
          if (!cur.ok()) {
            errors[t] = cur.status();
            break;
          }
          Lease l = *cur;
          l.until_ms = int64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count()) +
                       int64_t(o.lease_s * 1000);
          Status s = d.UpdateLease(&l);
          if (s.IsConflict()) {
            ++conflicts[t];
            continue;
          }
          if (!s.ok()) {
            errors[t] = s;
            break;
          }
          ++writes[t];
          if (lat_ms[t].size() < 100000) lat_ms[t].push_back(Seconds(Clock::now() - r0) * 1000);
        }
        ends[t] = Clock::now();
      });
    }
    const double slapd_cpu0 = ProcessCpuSeconds(slapd.pid());
    start = Clock::now();
    go = true;
    for (auto& th : pool) th.join();
    const double slapd_cpu = ProcessCpuSeconds(slapd.pid()) - slapd_cpu0;
    for (const auto& e : errors) {
      if (!e.ok()) {
        return Status::Internal("directory capacity, " + std::to_string(threads) + " threads: " + e.message());
      }
    }
    const double secs = std::max(1e-6, Seconds(*std::max_element(ends.begin(), ends.end()) - start));
    uint64_t total = 0, total_conflicts = 0;
    std::vector<double> all;
    for (int t = 0; t < threads; ++t) {
      total += writes[t];
      total_conflicts += conflicts[t];
      all.insert(all.end(), lat_ms[t].begin(), lat_ms[t].end());
    }
    std::sort(all.begin(), all.end());
    auto pct = [&](double p) {
      return all.empty() ? 0.0 : all[std::min(all.size() - 1, size_t(p * double(all.size() - 1) + 0.5))];
    };
    json level = {{"threads", threads},
                  {"seconds", secs},
                  {"writes", total},
                  {"writes_per_s", double(total) / secs},
                  {"operations_per_s", 2.0 * double(total) / secs},
                  {"conflicts", total_conflicts},
                  {"renewal_p50_ms", pct(0.5)},
                  {"renewal_p99_ms", pct(0.99)},
                  {"slapd_cpu_busy", slapd_cpu / secs}};
    Say(o, "directory capacity, " + std::to_string(threads) + " thread(s): " +
               Fmt("%.0f", level["writes_per_s"].get<double>()) + " writes/s (renewal p50 " +
               Fmt("%.2f", level["renewal_p50_ms"].get<double>()) + " ms, slapd " +
               Fmt("%.0f", 100 * level["slapd_cpu_busy"].get<double>()) + "% of a core)");
    levels.push_back(level);
  }
  return json{{"what", "lease renewals (GetLease + UpdateLease compare-and-swap), each thread its own connection "
                        "and its own " + std::to_string(kLeasesPerThread) + " leases"},
              {"seconds_per_level", o.capacity_seconds},
              {"max_renewals_per_level", o.capacity_max_renewals},
              {"levels", levels}};
}

void WriteCsv(const json& r, const std::string& path) {
  std::ofstream f(path);
  f << "movers,seconds,mib_per_s,mailboxes_per_s,items_per_s,x_one_mover,dir_ops_per_mailbox,"
       "dir_writes_per_mailbox,dir_writes_per_s,claim_conflicts,cpu_busy,machine_busy,machine_iowait\n";
  for (const auto& row : r["rows"]) {
    f << row["movers"] << "," << row["seconds"] << "," << row["mib_per_s"] << "," << row["mailboxes_per_s"] << ","
      << row["items_per_s"] << "," << row["x_one_mover"] << "," << row["directory_operations_per_mailbox"] << ","
      << row["directory_writes_per_mailbox"] << "," << row["directory_writes_per_s"] << ","
      << row["claim_conflicts"] << "," << row["cpu_busy"] << "," << row["machine_busy"] << ","
      << row["machine_iowait"] << "\n";
  }
}

std::string Plot(const json& r, const std::string& out_dir) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) return "(gnuplot not installed: no plot)";
  const std::string dat = out_dir + "/throughput.dat";
  {
    std::ofstream d(dat);
    const double one = r["rows"].front()["mib_per_s"].get<double>() / r["rows"].front()["movers"].get<double>();
    for (const auto& row : r["rows"]) {
      d << row["movers"] << " " << row["mib_per_s"] << " " << one * row["movers"].get<double>() << "\n";
    }
  }
  const std::string png = out_dir + "/throughput.png";
  const std::string script = out_dir + "/throughput.gp";
  auto write_script = [&](const char* terminal) {
    std::ofstream g(script);
    g << "set terminal " << terminal << " size 900,560 noenhanced\nset output '" << png << "'\n"
      << "set title 'mbxmove: one queue, more movers (" << r["servers"] << " servers, RTT " << r["rtt_ms"]
      << " ms, " << r["concurrency"] << " moves per mover)'\n"
      << "set xlabel 'movers'\nset ylabel 'MiB/s'\nset xtics (" << [&] {
           std::string t;
           for (const auto& row : r["rows"]) t += (t.empty() ? "" : ", ") + row["movers"].dump();
           return t;
         }()
      << ")\nset yrange [0:*]\nset key top left\nset grid\n"
      << "plot '" << dat << "' using 1:2 with linespoints lw 2 title 'measured', '" << dat
      << "' using 1:3 with lines dashtype 2 title 'linear from the first row'\n";
  };
  write_script("pngcairo");
  if (std::system(("gnuplot '" + script + "' 2>/dev/null").c_str()) != 0) {
    write_script("png");  // pngcairo may be missing
    if (std::system(("gnuplot '" + script + "' 2>/dev/null").c_str()) != 0) return "(gnuplot failed: no plot)";
  }
  return png;
}

}  // namespace

Status ValidateScaleOutOptions(const ScaleOutOptions& o) {
  if (o.movers.empty()) return Status::InvalidArgument("--movers needs values, e.g. 1,2,4");
  std::set<int> seen;
  for (int m : o.movers) {
    if (m < 1 || m > 64) return Status::InvalidArgument("--movers takes numbers 1..64, e.g. 1,2,4");
    if (!seen.insert(m).second) return Status::InvalidArgument("--movers lists " + std::to_string(m) + " twice");
  }
  if (o.servers < 2 || o.servers > 16) {
    return Status::InvalidArgument("--servers must be 2..16: one source server and at least one target server");
  }
  if (o.rtt_ms < 0 || o.rtt_ms > 10000) return Status::InvalidArgument("--rtt must be one value, 0..10000 ms");
  if (o.concurrency < 1 || o.concurrency > 256) {
    return Status::InvalidArgument("--concurrency must be one value, 1..256 (moves per mover)");
  }
  if (o.repeat < 1) return Status::InvalidArgument("--repeat must be at least 1");
  if (!(o.lease_s >= 0.3 && o.lease_s <= 3600)) return Status::InvalidArgument("--lease must be 0.3..3600 seconds");
  if (o.capacity_threads.empty()) return Status::InvalidArgument("--capacity-threads needs values, e.g. 1,4,16");
  for (int t : o.capacity_threads) {
    if (t < 1 || t > 256) return Status::InvalidArgument("--capacity-threads takes numbers 1..256, e.g. 1,4,16");
  }
  if (!(o.capacity_seconds >= 0.1 && o.capacity_seconds <= 600)) {
    return Status::InvalidArgument("--capacity-seconds must be 0.1..600");
  }
  if (o.capacity_max_renewals < 1) return Status::InvalidArgument("the renewal bound must be at least 1");
  if (o.org.empty() && !o.source_store.empty()) return Status::InvalidArgument("--from goes with --org");
  return Status::Ok();
}

Result<json> RunScaleOut(const ScaleOutOptions& o) {
  MBX_RETURN_IF_ERROR(ValidateScaleOutOptions(o));
  if (!o.org.empty()) {
    std::error_code ec;
    if (!fs::exists(o.org + "/directory", ec) && !fs::exists(o.org + "/directory.json", ec)) {
      return Status::InvalidArgument("--org " + o.org + " is not an mbxmove organisation");
    }
  }
  MBX_RETURN_IF_ERROR(CheckReusable(o.out_dir));
  std::error_code ec;
  fs::remove_all(o.out_dir, ec);
  fs::create_directories(o.out_dir, ec);
  fs::permissions(o.out_dir, fs::perms::owner_all, ec);
  const std::string scratch = o.out_dir + "/scratch";
  fs::create_directories(scratch, ec);
  if (ec) return Status::IOError("creating " + scratch + ": " + ec.message());
  MBX_ASSIGN_OR_RETURN(Dataset ds, MakeDataset(o, scratch));
  Say(o, std::to_string(ds.mailboxes.size()) + " mailboxes (" + Fmt("%.1f", double(ds.stored_bytes) / 1048576.0) +
             " MiB stored) from " + ds.source_store + " on " + ds.source_server + " to " +
             std::to_string(ds.target_stores.size()) + " target stores");
  Say(o, "starting a private slapd in " + scratch + "/slapd");
  // Stopped by its destructor on every way out of this function.
  MBX_ASSIGN_OR_RETURN(std::unique_ptr<Slapd> slapd, Slapd::Start(scratch + "/slapd"));

  int run_no = 0;
  json rows = json::array();
  for (int m : o.movers) {
    std::vector<json> runs;
    for (int r = 0; r < o.repeat; ++r) {
      MBX_ASSIGN_OR_RETURN(json row, OneRun(o, ds, *slapd, run_no++, m, /*kill=*/false, scratch));
      runs.push_back(row);
    }
    json row = MedianRow(runs);
    Say(o, std::to_string(m) + " mover(s): " + Fmt("%.1f", row["mib_per_s"].get<double>()) + " MiB/s, " +
               Fmt("%.1f", row["mailboxes_per_s"].get<double>()) + " mailboxes/s in " +
               Fmt("%.1f", row["seconds"].get<double>()) + " s, " +
               Fmt("%.1f", row["directory_writes_per_mailbox"].get<double>()) + " directory writes/mailbox; CPU " +
               Fmt("%.0f", 100 * row["cpu_busy"].get<double>()) + "% ours, " +
               Fmt("%.0f", 100 * row["machine_busy"].get<double>()) + "% all, iowait " +
               Fmt("%.0f", 100 * row["machine_iowait"].get<double>()) + "%");
    rows.push_back(row);
  }
  // x one mover: against the 1-mover row (or the first row when 1 is not measured).
  json ref = rows.front();
  for (const auto& row : rows) {
    if (row["movers"] == 1) ref = row;
  }
  for (auto& row : rows) {
    const double base = ref["mib_per_s"].get<double>();
    row["x_one_mover"] = base > 0 ? row["mib_per_s"].get<double>() / base : 0.0;
  }

  json kill_run;
  const int most = *std::max_element(o.movers.begin(), o.movers.end());
  if (!o.kill_run) {
    kill_run = {{"skipped", "not asked for"}};
  } else if (most < 2) {
    kill_run = {{"skipped", "needs at least 2 movers (--movers)"}};
  } else {
    Say(o, "kill run: " + std::to_string(most) + " movers, one frozen holding requests, killed once a third are done");
    MBX_ASSIGN_OR_RETURN(json row, OneRun(o, ds, *slapd, run_no++, most, /*kill=*/true, scratch));
    kill_run = row["kill"];
    kill_run["movers"] = most;
    kill_run["requests"] = ds.mailboxes.size();
    kill_run["completed"] = true;
    kill_run["lease_s"] = o.lease_s;
    kill_run["seconds"] = row["seconds"];
    kill_run["mib_per_s"] = row["mib_per_s"];
    Say(o, "kill run: completed in " + Fmt("%.1f", row["seconds"].get<double>()) + " s, " +
               kill_run["taken_over"].dump() + " requests taken over, invariant held");
  }

  MBX_ASSIGN_OR_RETURN(json capacity, MeasureCapacity(o, *slapd));
  double peak_load = 0;
  int peak_movers = 0;
  for (const auto& row : rows) {
    if (row["directory_writes_per_s"].get<double>() > peak_load) {
      peak_load = row["directory_writes_per_s"].get<double>();
      peak_movers = row["movers"].get<int>();
    }
  }
  double best = 0;
  for (const auto& l : capacity["levels"]) best = std::max(best, l["writes_per_s"].get<double>());
  capacity["queue_load_writes_per_s"] = peak_load;
  capacity["queue_load_movers"] = peak_movers;
  capacity["best_writes_per_s"] = best;
  capacity["queue_load_share"] = best > 0 ? peak_load / best : 0.0;
  (void)slapd->Stop();

  json res = {{"benchmark", "scale-out"},
              {"preset", o.org.empty() ? o.preset : "(given organisation)"},
              {"dataset", ds.info},
              {"servers", o.servers},
              {"rtt_ms", o.rtt_ms},
              {"rate_bytes_per_s", o.rate_bytes_per_s},
              {"concurrency", o.concurrency},
              {"lease_s", o.lease_s},
              {"repeat", o.repeat},
              {"sync", o.sync},
              {"directory", "ldap (a private slapd)"},
              {"machine",
               {{"cpu_model", CpuModel()}, {"cores", Cores()}, {"git_commit", MBX_GIT_COMMIT}}},
              {"rows", rows},
              {"kill_run", kill_run},
              {"directory_capacity", capacity}};
  res["plot"] = Plot(res, o.out_dir);
  std::ofstream(o.out_dir + "/results.json") << res.dump(2) << "\n";
  WriteCsv(res, o.out_dir + "/results.csv");
  slapd.reset();
  fs::remove_all(scratch, ec);
  fs::remove_all(ds.pristine, ec);
  return res;
}

std::string FormatScaleOutTable(const json& r) {
  std::string out;
  char buf[320];
  std::snprintf(buf, sizeof buf, "%6s %8s %12s %12s %12s %15s %10s %14s\n", "movers", "MiB/s", "mailboxes/s",
                "x one mover", "dir ops/mbx", "dir writes/mbx", "conflicts", "CPU ours/all");
  out += buf;
  for (const auto& row : r["rows"]) {
    std::snprintf(buf, sizeof buf, "%6d %8.1f %12.2f %12.2f %12.1f %15.1f %10.0f %8.0f%%/%3.0f%%\n",
                  row["movers"].get<int>(), row["mib_per_s"].get<double>(), row["mailboxes_per_s"].get<double>(),
                  row["x_one_mover"].get<double>(), row["directory_operations_per_mailbox"].get<double>(),
                  row["directory_writes_per_mailbox"].get<double>(), row["claim_conflicts"].get<double>(),
                  100 * row["cpu_busy"].get<double>(), 100 * row["machine_busy"].get<double>());
    out += buf;
  }
  out += "(CPU: the benchmark's processes, then the whole machine's, over wall time x cores)\n";
  const json& k = r["kill_run"];
  if (k.contains("skipped")) {
    out += "\nkill run: skipped (" + k["skipped"].get<std::string>() + ")\n";
  } else {
    std::snprintf(buf, sizeof buf,
                  "\nkill run: completed, %llu requests taken over, invariant held (%d movers, %s killed with %llu "
                  "of %llu requests done, holding %llu; %.1f s, lease %g s)\n",
                  k["taken_over"].get<unsigned long long>(), k["movers"].get<int>(),
                  k["killed"].get<std::string>().c_str(), k["killed_when_done"].get<unsigned long long>(),
                  k["requests"].get<unsigned long long>(), k["held_when_killed"].get<unsigned long long>(),
                  k["seconds"].get<double>(), k["lease_s"].get<double>());
    out += buf;
  }
  const json& c = r["directory_capacity"];
  out += "directory capacity (private slapd, lease renewals: GetLease + UpdateLease compare-and-swap):\n";
  for (const auto& l : c["levels"]) {
    std::snprintf(buf, sizeof buf,
                  "  %3d thread%s %8.0f writes/s  (renewal p50 %.2f ms, p99 %.2f ms; slapd %.0f%% of a core)\n",
                  l["threads"].get<int>(), l["threads"].get<int>() == 1 ? ": " : "s:", l["writes_per_s"].get<double>(),
                  l["renewal_p50_ms"].get<double>(), l["renewal_p99_ms"].get<double>(),
                  100 * l["slapd_cpu_busy"].get<double>());
    out += buf;
  }
  std::snprintf(buf, sizeof buf,
                "  the queue's own load: %.0f directory writes/s at %d movers, %.0f%% of the best level\n",
                c["queue_load_writes_per_s"].get<double>(), c["queue_load_movers"].get<int>(),
                100 * c["queue_load_share"].get<double>());
  out += buf;
  return out;
}

}  // namespace mbx::bench
