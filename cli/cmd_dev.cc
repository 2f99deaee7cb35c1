// mbxmove dev slapd start DIR | dev slapd stop DIR: a private OpenLDAP
// server for trying LDAP-backed organisations by hand (net/slapd.h), left
// running after the command returns.
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "net/slapd.h"
#include "store/file_io.h"

namespace mbx::cli {

namespace {

struct SlapdArgs {
  std::string dir;
  bool json = false;
};

// The slapd whose slapd.json is in `dir`, if that process is a running slapd.
std::optional<json> Running(const std::string& dir) {
  std::string text;
  if (!Env::Default()->ReadFile(dir + "/slapd.json", &text).ok()) return std::nullopt;
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("pid") || !j["pid"].is_number_integer()) return std::nullopt;
  std::ifstream comm("/proc/" + std::to_string(j["pid"].get<int>()) + "/comm");
  std::string name;
  if (!std::getline(comm, name) || name != "slapd") return std::nullopt;
  return j;
}

int Print(const std::string& dir, const json& info, bool already, bool as_json) {
  const std::string url = info.value("url", "");
  const std::string suffix = info.value("suffix", "");
  const std::string example = url + "/ou=org1," + suffix;
  if (as_json) {
    json j = info;
    j["dir"] = dir;
    j["already_running"] = already;
    j["directory_example"] = example;
    PrintJson(j);
    return kExitOk;
  }
  std::printf("slapd %s in %s (pid %d)\n", already ? "already running" : "running", dir.c_str(),
              info.value("pid", -1));
  std::printf("  url            %s\n", url.c_str());
  std::printf("  suffix         %s (an organisation's base DN goes under it)\n", suffix.c_str());
  std::printf("  bind DN        %s\n", info.value("bind_dn", "").c_str());
  std::printf("  password file  %s\n", info.value("password_file", "").c_str());
  std::printf("an organisation there:\n  mbxmove org create --org ORG --directory %s \\\n"
              "      --bind-dn %s --password-file %s\n",
              example.c_str(), info.value("bind_dn", "").c_str(), info.value("password_file", "").c_str());
  std::printf("stop it with: mbxmove dev slapd stop %s\n", dir.c_str());
  return kExitOk;
}

int RunStart(const SlapdArgs& a) {
  if (auto j = Running(a.dir)) return Print(a.dir, *j, /*already=*/true, a.json);
  Slapd::Options o;
  o.detached = true;
  auto s = Slapd::Start(a.dir, o);
  if (!s.ok()) return Fail(s.status());
  json info = {{"url", (*s)->url()}, {"suffix", Slapd::kSuffix}, {"bind_dn", (*s)->bind_dn()},
               {"password_file", (*s)->password_file()}, {"pid", int((*s)->pid())}};
  (*s)->Release();  // it outlives this program
  return Print(a.dir, info, /*already=*/false, a.json);
}

int RunStop(const SlapdArgs& a) {
  if (Status s = Slapd::StopIn(a.dir); !s.ok()) return Fail(s);
  if (a.json) {
    PrintJson({{"dir", a.dir}, {"stopped", true}});
  } else {
    std::printf("stopped slapd in %s (its data stays in %s/db)\n", a.dir.c_str(), a.dir.c_str());
  }
  return kExitOk;
}

}  // namespace

void AddDevCommands(CLI::App& app, int* exit_code) {
  CLI::App* dev = app.add_subcommand("dev", "Developer tools: a private OpenLDAP server to try LDAP directories with");
  dev->require_subcommand(1);
  CLI::App* slapd = dev->add_subcommand(
      "slapd",
      "A private slapd (Debian's /usr/sbin/slapd, never the system service): back-mdb, the mbxmove schema, an "
      "admin password generated into an owner-only file, 127.0.0.1 on a port the OS chose; everything in DIR");
  slapd->require_subcommand(1);

  auto s = std::make_shared<SlapdArgs>();
  CLI::App* start = slapd->add_subcommand(
      "start",
      "Start slapd in DIR (created owner-only if missing; an existing DIR keeps its data and password) and leave "
      "it running in the background. Prints its URL, suffix, bind DN and password file, and the --directory "
      "options of an organisation there. Nothing happens if it already runs");
  start->add_option("dir", s->dir, "Folder of the server")->required();
  start->add_flag("--json", s->json, "Print JSON");
  start->callback([s, exit_code] { *exit_code = RunStart(*s); });

  auto t = std::make_shared<SlapdArgs>();
  CLI::App* stop = slapd->add_subcommand("stop", "Stop the slapd running in DIR (its data stays)");
  stop->add_option("dir", t->dir, "Folder of the server")->required();
  stop->add_flag("--json", t->json, "Print JSON");
  stop->callback([t, exit_code] { *exit_code = RunStop(*t); });
}

}  // namespace mbx::cli
