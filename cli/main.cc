// mbxmove: move mailboxes between LMDB-backed mailbox stores, and measure it.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/unknown_command.h"

int main(int argc, char** argv) {
  using namespace mbx::cli;
  CLI::App app{
      "mbxmove: a mailbox-move engine and benchmark.\n"
      "Generates mailboxes into LMDB-backed stores, moves them between stores the way\n"
      "Exchange's Move Mailbox wizard does, and measures it.\n"
      "An organisation is a folder: ORG/directory (users and their homeMDB; or, made with\n"
      "--directory ldap://..., ORG/directory.json naming an LDAP server that holds them) and\n"
      "ORG/stores/NAME (one folder per mailbox store).",
      "mbxmove"};
  app.set_version_flag("--version", "mbxmove 0.1.0");
  app.require_subcommand(1);
  app.fallthrough(false);
  int exit_code = kExitOk;
  AddGenCommand(app, &exit_code);
  AddStoreCommands(app, &exit_code);
  AddStatCommand(app, &exit_code);
  AddVerifyCommand(app, &exit_code);
  AddLogCommands(app, &exit_code);
  AddMoveCommands(app, &exit_code);
  AddMailCommands(app, &exit_code);
  AddBenchCommand(app, &exit_code);
  AddServeCommands(app, &exit_code);
  AddNetCommands(app, &exit_code);
  AddOrgCommands(app, &exit_code);
  AddDirectoryCommands(app, &exit_code);
  AddQueueCommands(app, &exit_code);
  AddBatchCommands(app, &exit_code);
  AddLoadCommand(app, &exit_code);
  AddDevCommands(app, &exit_code);
  if (auto unknown = FindUnknownCommand(app, argc, argv)) {
    std::fprintf(stderr, "mbxmove: error: %s\nRun 'mbxmove --help' for the list of commands.\n", unknown->c_str());
    return kExitUsage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "mbxmove: error: %s\nRun 'mbxmove --help' or 'mbxmove <command> --help'.\n",
                 e.what());
    return kExitUsage;
  }
  return exit_code;
}
