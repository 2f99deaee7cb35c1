// mbxmove org create | org show
#include <sys/stat.h>

#include <cstdio>
#include <memory>
#include <string>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/store_setup.h"
#include "store/organization.h"

namespace mbx::cli {

namespace {

struct CreateArgs {
  std::string org;
  DirectoryArgs directory;
  bool json = false;
};

bool IsOrganisation(const std::string& dir) {
  struct stat st {};
  return ::stat((dir + "/directory/data.mdb").c_str(), &st) == 0 || ::stat((dir + "/directory.json").c_str(), &st) == 0;
}

int RunCreate(const CreateArgs& a) {
  auto ldap = a.directory.Config();
  if (!ldap.ok()) return Fail(ldap.status());
  if (IsOrganisation(a.org)) {
    return Fail(Status::AlreadyExists(a.org + " is already an organisation (see 'mbxmove org show --org " + a.org + "')"));
  }
  auto org = OpenOrCreateOrg(a.org, {}, *ldap ? &**ldap : nullptr);
  if (!org.ok()) return Fail(org.status());
  const std::string where = (*org)->directory().Describe();
  const std::string backend = *ldap ? "ldap" : "lmdb";
  if (a.json) {
    json j = {{"org", a.org}, {"directory", where}, {"backend", backend}};
    if (*ldap) j["bind_dn"] = (*ldap)->bind_dn;
    PrintJson(j);
  } else {
    std::printf("created organisation %s, directory %s (%s)\n", a.org.c_str(), where.c_str(),
                *ldap ? "LDAP" : "embedded LMDB");
  }
  return kExitOk;
}

struct ShowArgs {
  std::string org;
  bool json = false;
};

int RunShow(const ShowArgs& a) {
  auto org = Organization::Open(a.org);
  if (!org.ok()) return Fail(org.status());
  Directory& d = (*org)->directory();
  std::vector<StoreRecord> stores;
  std::vector<UserRecord> users;
  std::vector<ServerRecord> servers;
  std::vector<MoveRecord> moves;
  for (Status s : {d.ListStores(&stores), d.ListUsers(&users), d.ListServers(&servers), d.ListMoves(&moves)}) {
    if (!s.ok()) return Fail(s);
  }
  const std::string where = d.Describe();
  const std::string backend = where.rfind("ldap", 0) == 0 ? "ldap" : "lmdb";
  if (a.json) {
    PrintJson({{"org", a.org}, {"directory", where}, {"backend", backend}, {"stores", stores.size()},
               {"servers", servers.size()}, {"users", users.size()}, {"moves", moves.size()}});
  } else {
    std::printf("organisation %s\n  directory %s (%s)\n  %zu stores, %zu servers with a record, %zu users, "
                "%zu move records\n",
                a.org.c_str(), where.c_str(), backend == "ldap" ? "LDAP" : "embedded LMDB", stores.size(),
                servers.size(), users.size(), moves.size());
  }
  return kExitOk;
}

}  // namespace

void AddOrgCommands(CLI::App& app, int* exit_code) {
  CLI::App* org = app.add_subcommand("org", "Create an organisation, with its directory embedded or in LDAP; show one");
  org->require_subcommand(1);

  auto c = std::make_shared<CreateArgs>();
  CLI::App* create = org->add_subcommand(
      "create",
      "Create an empty organisation. Its directory (users, homeMDB, stores, servers, move records) is embedded "
      "(ORG/directory, LMDB) or, with --directory, kept in an LDAP server under BASE-DN (created if missing), "
      "with ORG/directory.json saying where. Every other command then finds the directory on its own. gen, "
      "import and 'directory import' take the same three options when they create the organisation");
  create->add_option("--org", c->org, "Organisation folder (must be missing or empty)")->required();
  AddDirectoryOptions(create, &c->directory);
  create->add_flag("--json", c->json, "Print JSON");
  create->callback([c, exit_code] { *exit_code = RunCreate(*c); });

  auto s = std::make_shared<ShowArgs>();
  CLI::App* show = org->add_subcommand("show", "Where an organisation's directory is, and how many records it holds");
  show->add_option("--org", s->org, "Organisation folder")->required();
  show->add_flag("--json", s->json, "Print JSON");
  show->callback([s, exit_code] { *exit_code = RunShow(*s); });
}

}  // namespace mbx::cli
