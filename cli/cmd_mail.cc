// mbxmove import / export: real mail in (Maildir++, mbox) and out (Maildir++).
#include <cstdio>
#include <string>
#include <vector>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/store_setup.h"
#include "engine/mail_transfer.h"

namespace mbx::cli {

namespace {

struct ImportArgs {
  std::string org, store, maildir, maildir_root, mbox, user, mbox_format = "mboxrd", domain = "example.com";
  int threads = 0;
  NewStoreArgs new_store;
  bool json = false, quiet_warnings = false;
};

struct ExportArgs {
  std::string org, maildir;
  std::vector<std::string> mailboxes;
  bool all = false, json = false, fsync = false;
  int threads = 0;
};

std::string Rates(uint64_t messages, uint64_t bytes, double secs) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%.2f s, %.0f messages/s, %.1f MiB/s", secs,
                secs > 0 ? double(messages) / secs : 0.0, secs > 0 ? double(bytes) / secs / 1048576.0 : 0.0);
  return buf;
}

// The totals both commands print: messages, bytes, seconds and the rates.
json Totals(uint64_t messages, uint64_t bytes, double secs) {
  return {{"messages", messages},
          {"bytes", bytes},
          {"seconds", secs},
          {"messages_per_second", secs > 0 ? double(messages) / secs : 0.0},
          {"mib_per_second", secs > 0 ? double(bytes) / secs / 1048576.0 : 0.0}};
}

// The fields every imported or exported mailbox reports.
template <class Box>
json BoxJson(const Box& b) {
  return {{"user", b.user},
          {"ok", b.status.ok()},
          {"error", b.status.ok() ? "" : b.status.ToString()},
          {"folders", b.folders},
          {"messages", b.messages},
          {"bytes", b.bytes}};
}

Progress::Render TransferLine(const char* what, const engine::TransferProgress& p, size_t boxes,
                              std::chrono::steady_clock::time_point t0) {
  return [what, &p, boxes, t0] {
    const double secs = SecondsSince(t0);
    const double bytes = double(p.bytes.load());
    char buf[200];
    std::snprintf(buf, sizeof buf, "%s: %llu/%zu mailboxes, %llu messages, %s, %.1f MiB/s", what,
                  (unsigned long long)p.mailboxes_done.load(), boxes, (unsigned long long)p.messages.load(),
                  FormatBytes(bytes).c_str(), secs > 0 ? bytes / secs / 1048576.0 : 0.0);
    return std::string(buf);
  };
}

int RunImport(const ImportArgs& a) {
  const int sources_given = !a.maildir.empty() + !a.maildir_root.empty() + !a.mbox.empty();
  if (sources_given != 1) return Fail("give exactly one of --maildir, --maildir-root and --mbox", kExitUsage);
  if (!a.maildir_root.empty() && !a.user.empty()) {
    return Fail("--user does not go with --maildir-root (users are named after its subfolders)", kExitUsage);
  }
  if (a.threads < 0) return Fail("--threads must be 0 (all cores) or more", kExitUsage);
  if (Status s = CheckNewStore(a.store, a.new_store); !s.ok()) return Fail(s);
  engine::ImportOptions o;
  o.store = a.store;
  o.smtp_domain = a.domain;
  o.threads = a.threads;
  if (a.mbox_format == "mboxrd") {
    o.mbox_format = mail::MboxFormat::kMboxrd;
  } else if (a.mbox_format == "mboxo") {
    o.mbox_format = mail::MboxFormat::kMboxo;
  } else {
    return Fail("--mbox-format must be mboxrd or mboxo", kExitUsage);
  }
  std::vector<engine::ImportSource> sources;
  if (!a.maildir_root.empty()) {
    std::vector<std::string> skipped;
    auto s = engine::SourcesFromMaildirRoot(a.maildir_root, &skipped);
    if (!s.ok()) return Fail(s.status());
    for (const auto& w : skipped) std::fprintf(stderr, "mbxmove: warning: %s\n", w.c_str());
    sources = std::move(*s);
  } else {
    if (a.user.empty()) return Fail("--user is required with --maildir or --mbox", kExitUsage);
    engine::ImportSource s;
    s.user = a.user;
    s.maildir = a.maildir;
    s.mbox = a.mbox;
    sources.push_back(std::move(s));
  }
  auto org = OpenOrCreateWithStore(a.org, a.store, a.new_store, a.json);
  if (!org.ok()) return Fail(org.status());
  engine::TransferProgress progress;
  const auto t0 = std::chrono::steady_clock::now();
  Progress line(a.json, TransferLine("import", progress, sources.size(), t0));
  auto r = engine::ImportMail(**org, sources, o, &progress);
  line.Stop();
  if (!r.ok()) return Fail(r.status());

  if (a.json) {
    json boxes = json::array();
    for (const auto& b : r->mailboxes) {
      json box = BoxJson(b);
      box.update({{"source", b.source},
                  {"mailbox", b.guid.ToString()},
                  {"stored_bytes", b.stored_bytes},
                  {"raw_messages", b.raw_messages},
                  {"skipped", b.skipped},
                  {"warnings", b.warnings}});
      boxes.push_back(std::move(box));
    }
    json out = Totals(r->messages, r->bytes, r->seconds);
    out.update({{"store", a.store},
                {"mailboxes", boxes},
                {"raw_messages", r->raw_messages},
                {"skipped", r->skipped},
                {"failed_mailboxes", r->failed_mailboxes}});
    PrintJson(out);
  } else {
    for (const auto& b : r->mailboxes) {
      for (const auto& w : b.warnings) std::fprintf(stderr, "mbxmove: warning: %s\n", w.c_str());
      if (!b.status.ok()) {
        std::fprintf(stderr, "mbxmove: error: %s (nothing of this mailbox was kept)\n", b.status.ToString().c_str());
      } else {
        std::printf("imported %s: %llu folders, %llu messages, %s (%s stored)%s\n", b.user.c_str(),
                    (unsigned long long)b.folders, (unsigned long long)b.messages,
                    FormatBytes(double(b.bytes)).c_str(), FormatBytes(double(b.stored_bytes)).c_str(),
                    b.raw_messages ? (", " + std::to_string(b.raw_messages) + " as raw items").c_str() : "");
      }
    }
    std::printf("import: %zu mailboxes into store %s, %llu messages, %s: %s\n",
                r->mailboxes.size() - r->failed_mailboxes, a.store.c_str(), (unsigned long long)r->messages,
                FormatBytes(double(r->bytes)).c_str(), Rates(r->messages, r->bytes, r->seconds).c_str());
    if (r->raw_messages || r->skipped || r->failed_mailboxes) {
      std::printf("  %llu messages imported as raw items (no properties), %llu not imported, %llu mailboxes failed\n",
                  (unsigned long long)r->raw_messages, (unsigned long long)r->skipped,
                  (unsigned long long)r->failed_mailboxes);
    }
  }
  return (r->failed_mailboxes || r->skipped) ? kExitPartial : kExitOk;
}

int RunExport(const ExportArgs& a) {
  if (a.all == !a.mailboxes.empty()) return Fail("give --all or --mailbox ID (one or more)", kExitUsage);
  if (a.threads < 0) return Fail("--threads must be 0 (all cores) or more", kExitUsage);
  auto org = OpenOrgRecovering(a.org, {}, a.json);
  if (!org.ok()) return Fail(org.status());
  std::vector<std::string> ids = a.mailboxes;
  if (a.all) {
    std::vector<UserRecord> users;
    if (Status s = (*org)->directory().ListUsers(&users); !s.ok()) return Fail(s);
    for (const auto& u : users) ids.push_back(u.name);
    if (ids.empty()) return Fail("the organisation has no users to export");
  }
  engine::ExportOptions o;
  o.threads = a.threads;
  o.per_user_dirs = a.all || ids.size() > 1;
  o.fsync = a.fsync;
  engine::TransferProgress progress;
  const auto t0 = std::chrono::steady_clock::now();
  Progress line(a.json, TransferLine("export", progress, ids.size(), t0));
  auto r = engine::ExportMaildir(**org, ids, a.maildir, o, &progress);
  line.Stop();
  if (!r.ok()) return Fail(r.status());
  if (a.json) {
    json boxes = json::array();
    for (const auto& b : r->mailboxes) {
      json box = BoxJson(b);
      box.update({{"dir", b.dir}, {"problems", b.problems}});
      boxes.push_back(std::move(box));
    }
    json out = Totals(r->messages, r->bytes, r->seconds);
    out.update({{"maildir", a.maildir},
                {"mailboxes", boxes},
                {"problems", r->problems},
                {"failed_mailboxes", r->failed_mailboxes}});
    PrintJson(out);
  } else {
    for (const auto& b : r->mailboxes) {
      for (const auto& p : b.problems) std::fprintf(stderr, "mbxmove: %s: not exported: %s\n", b.user.c_str(), p.c_str());
      if (!b.status.ok()) std::fprintf(stderr, "mbxmove: error: export of %s: %s\n", b.user.c_str(), b.status.ToString().c_str());
    }
    std::printf("export: %zu mailboxes to %s, %llu messages, %s: %s\n", r->mailboxes.size() - r->failed_mailboxes,
                a.maildir.c_str(), (unsigned long long)r->messages, FormatBytes(double(r->bytes)).c_str(),
                Rates(r->messages, r->bytes, r->seconds).c_str());
    if (r->problems || r->failed_mailboxes) {
      std::printf("  %llu items not exported (corrupt), %llu mailboxes failed\n", (unsigned long long)r->problems,
                  (unsigned long long)r->failed_mailboxes);
    }
  }
  return (r->failed_mailboxes || r->problems) ? kExitPartial : kExitOk;
}

}  // namespace

void AddMailCommands(CLI::App& app, int* exit_code) {
  auto i = std::make_shared<ImportArgs>();
  CLI::App* imp = app.add_subcommand(
      "import",
      "Import real mail into new mailboxes of a store: a Maildir++ tree (--maildir, folders '.Parent.Child', flags "
      "from file names, new/ = unread and recent), a tree of users (--maildir-root: one subfolder, or its Maildir/, "
      "per user, imported in parallel) or an mbox file (--mbox, into the Inbox; flags from Status/X-Status). Every "
      "message keeps its bytes; subject, sender, recipients, date and Message-ID are read with GMime. A message "
      "GMime cannot parse is imported as a raw item with a warning. Each user is created in the directory with "
      "homeMDB pointing at the store. As with gen, the organisation is created when its folder is missing or empty, "
      "and the store when it is not registered (--log-mode, --zstd-level, --server). Exit 0, or 3 when a mailbox "
      "failed or a message could not be imported");
  imp->add_option("--org", i->org, "Organisation folder (created if missing or empty)")->required();
  imp->add_option("--store", i->store, "Store to import into (created if not registered)")->required();
  imp->add_option("--maildir", i->maildir, "A Maildir++ folder (holding cur/ and new/)");
  imp->add_option("--maildir-root", i->maildir_root, "A folder of users: each subfolder is one user's Maildir");
  imp->add_option("--mbox", i->mbox, "An mbox file");
  imp->add_option("--user", i->user, "User to create for --maildir or --mbox (letters, digits, . _ -)");
  imp->add_option("--mbox-format", i->mbox_format,
                  "mboxrd (default: '>From ' lines unescaped one level, lossless) or mboxo");
  imp->add_option("--smtp-domain", i->domain, "Domain of the users' SMTP addresses (user@DOMAIN)");
  imp->add_option("--threads", i->threads, "Mailboxes imported at once (0 = all cores)");
  AddNewStoreOptions(imp, &i->new_store);
  imp->add_flag("--json", i->json, "Print JSON");
  imp->callback([i, exit_code] { *exit_code = RunImport(*i); });

  auto e = std::make_shared<ExportArgs>();
  CLI::App* exp = app.add_subcommand(
      "export",
      "Export mailboxes as Maildir++ with each message's original bytes and flags: the Inbox is the root, other "
      "folders '.Parent.Child' (empty ones too), Inbox subfolders '.INBOX.Child'. One --mailbox goes into --maildir "
      "itself; several, or --all, into --maildir/USER. Imported messages keep their original file names. The "
      "folder must not exist or be empty. Exit 0, or 3 when an item could not be exported");
  exp->add_option("--org", e->org, "Organisation folder")->required();
  exp->add_option("--mailbox", e->mailboxes, "User name, SMTP address or mailbox GUID (repeatable)");
  exp->add_flag("--all", e->all, "Every user of the directory");
  exp->add_option("--maildir", e->maildir, "Output folder")->required();
  exp->add_option("--threads", e->threads, "Mailboxes exported at once (0 = all cores)");
  exp->add_flag("--fsync", e->fsync,
                "fsync every message file and folder before finishing (durable against a machine crash; "
                "slower). Without it the export is as durable as any file copy");
  exp->add_flag("--json", e->json, "Print JSON");
  exp->callback([e, exit_code] { *exit_code = RunExport(*e); });
}

}  // namespace mbx::cli
