// Checking stores against a client load's journal (engine/client_load.h,
// LoadOptions::journal): what a mailbox holds as a client sees it, and the
// content every acknowledged operation implies.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>

#include "engine/client_load.h"
#include "store/item_codec.h"
#include "store/organization.h"
#include "store/store_handle.h"

namespace mbx::testing::journal {

// A mailbox as a client sees it: items (folder, flags, keywords) and folders.
struct Content {
  std::map<uint64_t, std::tuple<uint32_t, uint32_t, uint32_t>> items;
  std::map<uint32_t, std::pair<uint32_t, std::string>> folders;  // id -> parent, name
  bool operator==(const Content&) const = default;
};

inline Content ReadContent(StoreHandle* h, const Guid& g) {
  Content c;
  auto stream = h->ReadMailbox(g);
  if (!stream.ok()) {
    ADD_FAILURE() << stream.status().ToString();
    return c;
  }
  for (const auto& f : (*stream)->folders()) c.folders[f.id] = {f.parent_id, f.name};
  ItemChunk chunk;
  for (;;) {
    Status s = (*stream)->Next(1u << 20, &chunk);
    if (!s.ok()) {
      ADD_FAILURE() << s.ToString();
      break;
    }
    if (chunk.items.empty()) break;
    for (const auto& r : chunk.items) {
      auto item = DecodeItem(r.record);
      if (!item.ok()) {
        ADD_FAILURE() << "item " << r.item_id << ": " << item.status().ToString();
        continue;
      }
      c.items[r.item_id] = {r.folder_id, item->flags, item->keywords};
    }
  }
  return c;
}

// A client operation as the journal holds it (engine/client_load.h).
struct JournalOp {
  std::string kind;
  uint32_t folder = 0, to = 0, flags = 0, keywords = 0;
  uint64_t item = 0;
  std::string name;
};

inline void ApplyOp(const JournalOp& op, uint64_t new_id, Content* c) {
  if (op.kind == "deliver") {
    c->items[new_id] = {op.folder, kFlagRecent, 0};
  } else if (op.kind == "flag") {
    auto& it = c->items.at(op.item);
    std::get<1>(it) = op.flags;
    std::get<2>(it) = op.keywords;
  } else if (op.kind == "move") {
    std::get<0>(c->items.at(op.item)) = op.to;
  } else if (op.kind == "delete") {
    c->items.erase(op.item);
  } else if (op.kind == "folder-create") {
    c->folders[uint32_t(new_id)] = {op.folder, op.name};
  } else if (op.kind == "folder-rename") {
    c->folders.at(op.folder).second = op.name;
  } else if (op.kind == "folder-delete") {
    c->folders.erase(op.folder);
  }
}

// Replays a load journal over the mailboxes' content before the load. Per
// mailbox: the content with every acknowledged operation, and the one
// operation sent but not acknowledged (if any).
struct Expected {
  Content acked;
  std::optional<JournalOp> pending;
};
inline std::map<std::string, Expected> ReplayJournal(const std::string& path, const std::map<std::string, Content>& before) {
  std::map<std::string, Expected> out;
  for (const auto& [g, c] : before) out[g].acked = c;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string tag, guid;
    ls >> tag >> guid;
    Expected& e = out[guid];
    if (tag == "P") {
      JournalOp op;
      ls >> op.kind >> op.folder >> op.item >> op.to >> op.flags >> op.keywords >> op.name;
      e.pending = op;  // a retry sends it again: the same operation
    } else if (tag == "A") {
      uint64_t id = 0;
      ls >> id;
      if (!e.pending) {
        ADD_FAILURE() << "journal: an acknowledgement without its operation: " << line;
        continue;
      }
      ApplyOp(*e.pending, id, &e.acked);
      e.pending.reset();
    }
  }
  return out;
}

// The content must be the acknowledged one, or that plus the pending op.
inline void ExpectContent(const std::string& guid, const Content& got, const Expected& e) {
  SCOPED_TRACE("mailbox " + guid);
  if (got == e.acked) return;
  if (e.pending) {
    Content with = e.acked;
    uint64_t new_id = 0;
    uint32_t new_folder = 0;
    if (e.pending->kind == "deliver") {
      for (const auto& [id, v] : got.items) {
        if (!with.items.count(id)) new_id = id;
      }
    } else if (e.pending->kind == "folder-create") {
      for (const auto& [id, v] : got.folders) {
        if (!with.folders.count(id)) new_folder = id;
      }
      new_id = new_folder;
    }
    bool applicable = true;
    if ((e.pending->kind == "flag" || e.pending->kind == "move" || e.pending->kind == "delete") &&
        !with.items.count(e.pending->item)) {
      applicable = false;
    }
    if (applicable && (e.pending->kind != "deliver" || new_id != 0)) {
      ApplyOp(*e.pending, new_id, &with);
      if (got == with) return;
    }
  }
  // Say what differs.
  size_t missing = 0, extra = 0, changed = 0;
  for (const auto& [id, v] : e.acked.items) {
    auto it = got.items.find(id);
    if (it == got.items.end()) ++missing;
    else if (it->second != v) ++changed;
  }
  for (const auto& [id, v] : got.items) extra += e.acked.items.count(id) ? 0 : 1;
  ADD_FAILURE() << "content differs from the acknowledged operations: " << missing << " item(s) missing, " << extra
                << " extra, " << changed << " with another folder or flags; folders " << got.folders.size()
                << " vs " << e.acked.folders.size() << (e.pending ? " (one op pending: " + e.pending->kind + ")" : "");
}

inline std::map<std::string, Content> ReadAll(Organization& org) {
  std::map<std::string, Content> out;
  std::vector<UserRecord> users;
  EXPECT_TRUE(org.directory().ListUsers(&users).ok());
  std::vector<StoreRecord> stores;
  EXPECT_TRUE(org.ListStores(&stores).ok());
  for (const auto& u : users) {
    for (const auto& s : stores) {
      if (s.dn != u.home_mdb) continue;
      auto h = org.GetHandle(s.name);
      EXPECT_TRUE(h.ok());
      if (h.ok()) out[u.mailbox.ToString()] = ReadContent(*h, u.mailbox);
    }
  }
  return out;
}

// Every mailbox of one store, by GUID.
inline std::map<std::string, Content> ContentOf(Organization& org, const std::string& store) {
  std::map<std::string, Content> out;
  auto h = org.GetHandle(store);
  EXPECT_TRUE(h.ok());
  std::vector<MailboxInfo> boxes;
  EXPECT_TRUE((*h)->ListMailboxes(&boxes).ok());
  for (const auto& m : boxes) out[m.guid.ToString()] = ReadContent(*h, m.guid);
  return out;
}

// Load on every mailbox of `org`, with every kind of operation, journalled.
inline engine::LoadOptions LoadOnEveryMailbox(Organization& org, double rate, uint64_t seed,
                                              const std::string& journal_path) {
  engine::LoadOptions lo;
  std::vector<UserRecord> users;
  EXPECT_TRUE(org.directory().ListUsers(&users).ok());
  for (const auto& u : users) lo.mailboxes.push_back(u.mailbox);
  lo.rate = rate;
  lo.duration_s = 60;  // stopped by the test well before
  lo.seed = seed;
  lo.mix = *engine::LoadMix::Parse("deliver:40,flag:25,move:15,delete:10,folder:10");
  lo.journal = journal_path;
  return lo;
}

}  // namespace mbx::testing::journal
