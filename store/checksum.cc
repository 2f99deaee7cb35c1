#include "store/checksum.h"

#include <xxhash.h>

#include <algorithm>
#include <set>

#include "store/coding.h"
#include "store/item_codec.h"

namespace mbx {

uint64_t MixItemHash(uint64_t h) {
  // SplitMix64 finaliser: a bijection that spreads every input bit.
  h += 0x9e3779b97f4a7c15ull;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

Result<std::map<uint32_t, std::string>> FolderPaths(const std::vector<FolderInfo>& folders) {
  std::map<uint32_t, const FolderInfo*> by_id;
  for (const auto& f : folders) by_id[f.id] = &f;
  std::map<uint32_t, std::string> paths;
  for (const auto& f : folders) {
    std::vector<const FolderInfo*> chain;
    std::set<uint32_t> seen;
    const FolderInfo* cur = &f;
    while (cur->parent_id != 0) {
      if (!seen.insert(cur->id).second) return Status::Corruption("folder tree has a cycle");
      chain.push_back(cur);
      auto it = by_id.find(cur->parent_id);
      if (it == by_id.end()) {
        return Status::Corruption("folder " + std::to_string(cur->id) + " has a missing parent " +
                                  std::to_string(cur->parent_id));
      }
      cur = it->second;
    }
    std::string p;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      if (!p.empty()) p += '/';
      p += (*it)->name;
    }
    paths[f.id] = std::move(p);
  }
  return paths;
}

uint64_t CombineFolderDigests(const std::map<uint32_t, FolderDigest>& folders) {
  std::vector<const FolderDigest*> v;
  for (const auto& [id, d] : folders) v.push_back(&d);
  std::sort(v.begin(), v.end(), [](const FolderDigest* a, const FolderDigest* b) {
    return a->path < b->path || (a->path == b->path && a->kind < b->kind);
  });
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  std::string buf;
  for (const FolderDigest* d : v) {
    buf.clear();
    PutLengthPrefixed(&buf, d->path);
    buf.push_back(char(d->kind));
    PutFixed64(&buf, d->items);
    PutFixed64(&buf, d->item_hash_sum);
    XXH3_64bits_update(st, buf.data(), buf.size());
  }
  uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

Result<MailboxDigest> DigestMailbox(const StoreReader& reader, const Guid& mailbox,
                                    const CorruptRecordFn& on_corrupt) {
  std::vector<FolderInfo> folders;
  MBX_RETURN_IF_ERROR(reader.ListFolders(mailbox, &folders));
  MBX_ASSIGN_OR_RETURN(auto paths, FolderPaths(folders));
  MailboxDigest md;
  md.folders = folders.size();
  for (const FolderInfo& f : folders) {
    FolderDigest d;
    d.path = paths[f.id];
    d.kind = f.kind;
    MBX_RETURN_IF_ERROR(reader.ForEachItem(mailbox, f.id, [&](uint64_t id, std::string_view rec) {
      d.stored_bytes += rec.size();
      auto v = VerifyRecordWithSize(rec);  // one pass: checksum, structure, content
      if (!v.ok()) {
        ++d.corrupt_items;
        if (on_corrupt) on_corrupt(f.id, id, v.status());
        return Status::Ok();
      }
      ++d.items;
      d.item_hash_sum += MixItemHash(v->content_hash);
      d.logical_bytes += v->logical_bytes;
      return Status::Ok();
    }));
    md.items += d.items;
    md.corrupt_items += d.corrupt_items;
    md.stored_bytes += d.stored_bytes;
    md.logical_bytes += d.logical_bytes;
    md.by_folder[f.id] = std::move(d);
  }
  md.checksum = CombineFolderDigests(md.by_folder);
  return md;
}

}  // namespace mbx
