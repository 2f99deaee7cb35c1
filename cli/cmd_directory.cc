// mbxmove directory export | directory import: an organisation's whole
// directory as LDIF (store/directory_ldif.h), whichever backend holds it.
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/store_setup.h"
#include "net/slapd.h"
#include "store/directory_ldif.h"
#include "store/file_io.h"
#include "store/organization.h"

namespace mbx::cli {

namespace {

json Counts(const DirectoryContents& c) {
  return {{"servers", c.servers.size()}, {"stores", c.stores.size()}, {"users", c.users.size()},
          {"moves", c.moves.size()}};
}

std::string CountsText(const DirectoryContents& c) {
  return std::to_string(c.servers.size()) + " servers, " + std::to_string(c.stores.size()) + " stores, " +
         std::to_string(c.users.size()) + " users, " + std::to_string(c.moves.size()) + " move records";
}

// The base DN an export names when none is given: an LDAP directory's own;
// for an embedded one, ou=<the organisation folder's name> under the dev
// slapd's suffix, so that the file loads there with ldapadd.
std::string DefaultBase(Directory& d, const std::string& org_dir) {
  if (auto c = LdapConfig::FromUrl(d.Describe()); c.ok() && d.Describe().rfind("ldap", 0) == 0) return c->base_dn;
  std::error_code ec;
  std::string name = std::filesystem::absolute(org_dir, ec).lexically_normal().filename().string();
  if (name.empty()) name = std::filesystem::absolute(org_dir, ec).lexically_normal().parent_path().filename().string();
  if (name.empty()) name = "org";
  return "ou=" + EscapeDnValue(name) + "," + Slapd::kSuffix;
}

struct ExportArgs {
  std::string org, ldif, base_dn;
  bool json = false;
};

int RunExport(const ExportArgs& a) {
  // Opened as it is: no recovery, nothing changed.
  auto org = Organization::Open(a.org);
  if (!org.ok()) return Fail(org.status());
  Directory& d = (*org)->directory();
  auto contents = ReadDirectoryContents(d);
  if (!contents.ok()) return Fail(contents.status().WithContext("reading the directory " + d.Describe()));
  const std::string base = a.base_dn.empty() ? DefaultBase(d, a.org) : a.base_dn;
  auto text = DirectoryToLdif(*contents, base, a.org + " (" + d.Describe() + ")");
  if (!text.ok()) return Fail(text.status());
  // Owner-only (0600) and atomic: a reader sees the old file or the whole new one.
  if (Status s = Env::Default()->WriteFileAtomic(a.ldif, *text); !s.ok()) {
    return Fail(s.WithContext("writing " + a.ldif));
  }
  if (a.json) {
    json j = Counts(*contents);
    j.update({{"org", a.org}, {"directory", d.Describe()}, {"ldif", a.ldif}, {"base_dn", base},
              {"bytes", text->size()}});
    PrintJson(j);
  } else {
    std::printf("exported %s from %s to %s (base %s)\n", CountsText(*contents).c_str(), d.Describe().c_str(),
                a.ldif.c_str(), base.c_str());
  }
  return kExitOk;
}

struct ImportArgs {
  std::string org, ldif;
  DirectoryArgs directory;
  bool json = false;
};

int RunImport(const ImportArgs& a) {
  auto ldap = a.directory.Config();
  if (!ldap.ok()) return Fail(ldap.status());
  // The whole file is read and checked before the organisation is touched.
  std::string text;
  if (Status s = Env::Default()->ReadFile(a.ldif, &text); !s.ok()) return Fail(s.WithContext("reading " + a.ldif));
  auto contents = DirectoryFromLdif(text);
  if (!contents.ok()) return Fail(a.ldif + ": " + contents.status().message(), kExitFatal);
  auto org = OpenOrCreateOrg(a.org, {}, *ldap ? &**ldap : nullptr);
  if (!org.ok()) return Fail(org.status());
  Directory& d = (*org)->directory();
  auto sum = ImportDirectoryContents(d, *contents);
  if (!sum.ok()) return Fail(sum.status());
  // The directory names stores; their folders travel separately.
  std::vector<std::string> missing;
  for (const auto& s : contents->stores) {
    struct stat st {};
    if (::stat((*org)->StorePath(s.name).c_str(), &st) != 0) missing.push_back(s.name);
  }
  for (const auto& name : missing) {
    std::fprintf(stderr,
                 "mbxmove: note: store %s is registered but %s does not exist: copy the store folders too "
                 "(the directory holds where mailboxes are, not the mailboxes)\n",
                 name.c_str(), (*org)->StorePath(name).c_str());
  }
  if (a.json) {
    json j = Counts(*contents);
    j.update({{"org", a.org}, {"directory", d.Describe()}, {"ldif", a.ldif}, {"added", sum->added},
              {"unchanged", sum->unchanged}, {"stores_without_folder", missing}});
    PrintJson(j);
  } else {
    std::printf("imported %s into %s (%zu records added, %zu already there)\n", CountsText(*contents).c_str(),
                d.Describe().c_str(), sum->added, sum->unchanged);
  }
  return kExitOk;
}

}  // namespace

void AddDirectoryCommands(CLI::App& app, int* exit_code) {
  CLI::App* dir = app.add_subcommand(
      "directory",
      "Export an organisation's whole directory (servers, stores, users with their homeMDB, move records) to an "
      "LDIF file and import it back, whichever backend holds it: an organisation moves from its embedded "
      "directory to LDAP and back with nothing lost. The entries use the attribute names of "
      "tools/ldap/mbxmove.schema, so the file also loads with ldapadd");
  dir->require_subcommand(1);

  auto e = std::make_shared<ExportArgs>();
  CLI::App* exp = dir->add_subcommand(
      "export",
      "Write the directory to an LDIF file (RFC 2849; owner-only, replaced atomically): the base entry, "
      "ou=servers, ou=stores, ou=users and ou=moves, one entry per record, binary values such as "
      "msExchMailboxGuid in base64, long lines folded. Nothing is changed (interrupted moves are exported as "
      "they are, not recovered)");
  exp->add_option("--org", e->org, "Organisation folder")->required();
  exp->add_option("--ldif", e->ldif, "Output file")->required();
  exp->add_option("--base-dn", e->base_dn,
                  "Base DN of the entries (default: the LDAP directory's own; for an embedded directory "
                  "ou=<folder name>,dc=mbxmove,dc=test)");
  exp->add_flag("--json", e->json, "Print JSON");
  exp->callback([e, exit_code] { *exit_code = RunExport(*e); });

  auto i = std::make_shared<ImportArgs>();
  CLI::App* imp = dir->add_subcommand(
      "import",
      "Read an LDIF file (an export, or entries in the same schema) into an organisation's directory. The whole "
      "file is checked first: damage (a bad line, a record missing an attribute, a file cut short) is refused "
      "naming the line, with nothing changed. The directory must be empty or hold only records the file holds "
      "identically (so an interrupted import can be run again); anything else is refused, nothing written (there "
      "is no --replace). The organisation is created when its folder is missing or empty, with its directory "
      "where --directory says. The store folders (ORG/stores) are copied separately");
  imp->add_option("--org", i->org, "Organisation folder (created if missing or empty)")->required();
  imp->add_option("--ldif", i->ldif, "Input file")->required();
  AddDirectoryOptions(imp, &i->directory);
  imp->add_flag("--json", i->json, "Print JSON");
  imp->callback([i, exit_code] { *exit_code = RunImport(*i); });
}

}  // namespace mbx::cli
