#include "bench/remote_sweep.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "bench/child_process.h"
#include "bench/sweep.h"
#include "net/certs.h"
#include "net/link_proxy.h"

namespace mbx::bench {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

void Say(const RemoteSweepOptions& o, const std::string& line) {
  if (!o.quiet) std::fprintf(stderr, "bench: %s\n", line.c_str());
}

// A server and the link in front of it, for one run.
struct Served {
  std::unique_ptr<ServerChild> server;
  std::unique_ptr<net::LinkProxy> link;
};

Result<Served> Serve(const RemoteSweepOptions& o, const std::string& org, const std::string& name,
                     const std::string& certs, int rtt_ms, const std::string& scratch) {
  Served s;
  MBX_ASSIGN_OR_RETURN(s.server, ServerChild::Start({o.self_exe, "serve", "--org", org, "--server", name, "--listen",
                                                      "127.0.0.1:0", "--certs", certs},
                                                     scratch + "/serve-" + name + ".log", std::chrono::seconds(30)));
  if (s.server->port() == 0) return Status::Internal("serve printed no port: " + s.server->first_line());
  net::LinkOptions lo;
  lo.to = {"127.0.0.1", uint16_t(s.server->port())};
  lo.delay = std::chrono::microseconds(int64_t(rtt_ms) * 1000 / 2);
  lo.rate_bytes_per_s = o.rate_bytes_per_s;
  MBX_ASSIGN_OR_RETURN(s.link, net::LinkProxy::Start(lo));
  ChildResult cr;
  MBX_ASSIGN_OR_RETURN(cr, RunChild({o.self_exe, "server", "add", "--org", org, "--server", name, "--address",
                                     "127.0.0.1:" + std::to_string(s.link->port())},
                                    scratch));
  if (cr.exit_code != 0) return Status::Internal("server add: " + cr.err);
  return s;
}

// One move of every mailbox of a fresh copy of the dataset. rtt_ms < 0:
// both stores local (the reference).
Result<json> OneRun(const RemoteSweepOptions& o, const std::string& pristine, int rtt_ms, int c,
                    const std::string& scratch) {
  const std::string run = scratch + "/run";
  std::error_code ec;
  fs::remove_all(run, ec);
  fs::copy(pristine, run, fs::copy_options::recursive, ec);
  if (ec) return Status::IOError("copying the dataset for a run: " + ec.message());
  fs::remove(run + "/stores/SOURCE/LOCK", ec);
  ChildResult cr;
  MBX_ASSIGN_OR_RETURN(cr, RunChild({o.self_exe, "store", "create", "--org", run, "--store", "TARGET", "--server",
                                     "SERVER2", "--sync", o.sync},
                                    scratch));
  if (cr.exit_code != 0) return Status::Internal("creating the target store: " + cr.err);
  ::sync();
  Served s1, s2;
  if (rtt_ms >= 0) {
    MBX_ASSIGN_OR_RETURN(s1, Serve(o, run, "SERVER1", run + "/certs", rtt_ms, scratch));
    MBX_ASSIGN_OR_RETURN(s2, Serve(o, run, "SERVER2", run + "/certs", rtt_ms, scratch));
  }
  const std::vector<std::string> args = {o.self_exe, "move", "--org", run, "--from", "SOURCE", "--to", "TARGET",
                                         "--concurrency", std::to_string(c), "--json"};
  auto rep = RunJsonChild(args, scratch, &cr);
  // Servers stop before anything else happens (Served's destructors too).
  if (s1.server) s1.server->Stop();
  if (s2.server) s2.server->Stop();
  if (!rep.ok()) return rep.status();
  if (cr.exit_code != 0) return Status::Internal("the move failed (exit " + std::to_string(cr.exit_code) + "): " + cr.err.substr(0, 400));
  const json& t = (*rep)["totals"];
  const double items = t["items_copied"].get<double>();
  const uint64_t trips = rep->contains("rpc") ? (*rep)["rpc"]["round_trips"].get<uint64_t>() : 0;
  fs::remove_all(run, ec);
  return json{{"seconds", t["seconds"]},
              {"mib_per_s", t["mib_per_s"]},
              {"items_per_s", t["items_per_s"]},
              {"items", t["items_copied"]},
              {"bytes", t["bytes_copied"]},
              {"round_trips", trips},
              {"round_trips_per_item", items > 0 ? double(trips) / items : 0.0},
              {"cpu_s", cr.cpu_s},
              {"peak_rss_mib", cr.peak_rss_mib}};
}

json MedianRow(const std::vector<json>& runs) {
  json row = runs.front();
  for (const char* k : {"seconds", "mib_per_s", "items_per_s", "round_trips_per_item", "cpu_s"}) {
    std::vector<double> v;
    for (const auto& r : runs) v.push_back(r[k].get<double>());
    row[k] = Median(v);
  }
  return row;
}

void WriteCsv(const json& r, const std::string& path) {
  std::ofstream f(path);
  f << "rtt_ms,concurrency,mib_per_s,items_per_s,round_trips_per_item,x_local\n";
  for (const auto& row : r["rows"]) {
    f << row["rtt_ms"] << "," << row["concurrency"] << "," << row["mib_per_s"] << "," << row["items_per_s"] << ","
      << row["round_trips_per_item"] << "," << row["x_local"] << "\n";
  }
}

std::string Plot(const json& r, const std::string& out_dir) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) return "(gnuplot not installed: no plot)";
  std::map<std::string, std::vector<std::pair<int, double>>> curves;
  for (const auto& row : r["local"]) curves["local"].push_back({row["concurrency"], row["mib_per_s"]});
  for (const auto& row : r["rows"]) {
    curves["RTT " + std::to_string(row["rtt_ms"].get<int>()) + " ms"].push_back({row["concurrency"], row["mib_per_s"]});
  }
  std::string plot = "plot ";
  int i = 0;
  for (const auto& [name, pts] : curves) {
    const std::string dat = out_dir + "/curve" + std::to_string(i++) + ".dat";
    std::ofstream d(dat);
    for (const auto& [c, v] : pts) d << c << " " << v << "\n";
    plot += (plot.size() > 5 ? ", " : "") + std::string("'") + dat + "' using 1:2 with linespoints title '" + name + "'";
  }
  const std::string png = out_dir + "/throughput.png";
  const std::string script = out_dir + "/throughput.gp";
  std::ofstream g(script);
  g << "set terminal pngcairo size 900,560 noenhanced\nset output '" << png << "'\n"
    << "set title 'mbxmove: remote move throughput against concurrency, per round-trip time'\n"
    << "set xlabel 'mailboxes moved at once (concurrency)'\nset ylabel 'MiB/s'\nset logscale x 2\n"
    << "set key outside right\nset grid\n" << plot << "\n";
  g.close();
  if (std::system(("gnuplot '" + script + "' 2>/dev/null").c_str()) != 0) {
    // pngcairo may be missing: fall back to the plain png terminal.
    std::string s2 = script + ".png.gp";
    std::ifstream in(script);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    text.replace(text.find("pngcairo"), 8, "png");
    std::ofstream(s2) << text;
    if (std::system(("gnuplot '" + s2 + "' 2>/dev/null").c_str()) != 0) return "(gnuplot failed: no plot)";
  }
  return png;
}

}  // namespace

Result<json> RunRemoteSweep(const RemoteSweepOptions& o) {
  if (o.levels.empty() || o.rtt_ms.empty()) return Status::InvalidArgument("--concurrency and --rtt need values");
  for (int c : o.levels) {
    if (c < 1 || c > 256) return Status::InvalidArgument("concurrency levels must be 1 to 256");
  }
  for (int r : o.rtt_ms) {
    if (r < 0 || r > 10000) return Status::InvalidArgument("--rtt values must be 0 to 10000 ms");
  }
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
  if (cr.exit_code != 0) return Status::Internal("gen failed: " + cr.err);
  // In the organisation's certs/ folder, where movers and servers look by default.
  const std::string certs = pristine + "/certs";
  net::CertDirOptions co;
  co.out_dir = certs;
  co.org_name = "mbxmove bench";
  co.servers = {"SERVER1", "SERVER2"};
  MBX_RETURN_IF_ERROR(net::CreateCertDir(co).status());

  json local = json::array();
  std::map<int, double> local_mib;
  for (int c : o.levels) {
    std::vector<json> runs;
    for (int r = 0; r < o.repeat; ++r) {
      MBX_ASSIGN_OR_RETURN(json row, OneRun(o, pristine, -1, c, scratch));
      runs.push_back(row);
    }
    json row = MedianRow(runs);
    row["concurrency"] = c;
    local_mib[c] = row["mib_per_s"].get<double>();
    Say(o, "local C=" + std::to_string(c) + ": " + std::to_string(int(local_mib[c])) + " MiB/s");
    local.push_back(row);
  }
  json rows = json::array();
  for (int rtt : o.rtt_ms) {
    for (int c : o.levels) {
      std::vector<json> runs;
      for (int r = 0; r < o.repeat; ++r) {
        MBX_ASSIGN_OR_RETURN(json row, OneRun(o, pristine, rtt, c, scratch));
        runs.push_back(row);
      }
      json row = MedianRow(runs);
      row["rtt_ms"] = rtt;
      row["concurrency"] = c;
      row["x_local"] = local_mib[c] > 0 ? row["mib_per_s"].get<double>() / local_mib[c] : 0.0;
      Say(o, "RTT " + std::to_string(rtt) + " ms C=" + std::to_string(c) + ": " +
                 std::to_string(int(row["mib_per_s"].get<double>())) + " MiB/s, " +
                 std::to_string(row["round_trips_per_item"].get<double>()).substr(0, 6) + " round trips/item");
      rows.push_back(row);
    }
  }
  json res = {{"benchmark", "remote"},
              {"preset", o.preset},
              {"dataset", ds},
              {"sync", o.sync},
              {"rate_bytes_per_s", o.rate_bytes_per_s},
              {"repeat", o.repeat},
              {"local", local},
              {"rows", rows}};
  res["plot"] = Plot(res, o.out_dir);
  std::ofstream(o.out_dir + "/results.json") << res.dump(2) << "\n";
  WriteCsv(res, o.out_dir + "/results.csv");
  fs::remove_all(scratch, ec);
  fs::remove_all(pristine, ec);
  return res;
}

std::string FormatRemoteTable(const json& r) {
  std::string out;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%-8s %4s %9s %10s %12s %8s\n", "RTT", "C", "MiB/s", "items/s", "trips/item",
                "x local");
  out += buf;
  for (const auto& row : r["local"]) {
    std::snprintf(buf, sizeof buf, "%-8s %4d %9.1f %10.0f %12s %8s\n", "local", row["concurrency"].get<int>(),
                  row["mib_per_s"].get<double>(), row["items_per_s"].get<double>(), "-", "1.00");
    out += buf;
  }
  std::map<int, std::pair<int, double>> best;  // rtt -> (C, MiB/s)
  for (const auto& row : r["rows"]) {
    const int rtt = row["rtt_ms"], c = row["concurrency"];
    const double mib = row["mib_per_s"];
    std::snprintf(buf, sizeof buf, "%-8s %4d %9.1f %10.0f %12.4f %8.2f\n", (std::to_string(rtt) + " ms").c_str(), c,
                  mib, row["items_per_s"].get<double>(), row["round_trips_per_item"].get<double>(),
                  row["x_local"].get<double>());
    out += buf;
    if (mib > best[rtt].second) best[rtt] = {c, mib};
  }
  out += "\nbest concurrency per RTT:";
  for (const auto& [rtt, b] : best) {
    std::snprintf(buf, sizeof buf, "  %d ms: C=%d (%.1f MiB/s)", rtt, b.first, b.second);
    out += buf;
  }
  out += "\n";
  return out;
}

}  // namespace mbx::bench
