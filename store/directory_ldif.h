// An organisation's whole directory (stores, servers, users, move records)
// as LDIF, in the entries and attribute names of the LDAP backend
// (tools/ldap/mbxmove.schema, store/ldap_directory.h), so that an export can
// also be loaded with ldapadd into a server with that schema:
//
//   BASE                        organizationalUnit (ou=), organization (o=) or domain (dc=)
//     ou=servers  cn=<server>   mbxServer: mbxServerAddress
//     ou=stores   cn=<store>    mbxStore:  mbxStoreDN, mbxServerName, mbxCreated
//     ou=users    cn=<user>     mbxUser:   mailNickname, msExchMailboxGuid (16 bytes),
//                                          homeMDB, msExchHomeServerName, mail, displayName
//     ou=moves    cn=<guid>     mbxMove:   msExchMailboxGuid, mbxMoveUser, mbxMoveSource,
//                                          mbxMoveTarget, mbxMoveStep, mbxMoveStarted,
//                                          mbxMoveKeepSource
//
// An empty field is an absent attribute (LDAP has no empty strings), and an
// absent attribute reads back as empty, so every record round-trips.
//
// Export and import go through the Directory interface only, so both
// backends are the same to them.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/directory.h"
#include "store/status.h"

namespace mbx {

// Every record of a directory, each list sorted by its key.
struct DirectoryContents {
  std::vector<ServerRecord> servers;
  std::vector<StoreRecord> stores;
  std::vector<UserRecord> users;
  std::vector<MoveRecord> moves;
  size_t records() const { return servers.size() + stores.size() + users.size() + moves.size(); }
};

// Reads every record (List* calls; not one snapshot: export while nothing
// moves, or the file may hold a move half-way, which recovery then handles).
Result<DirectoryContents> ReadDirectoryContents(Directory& dir);

// The LDIF text: a first comment line naming the export and `source`, the
// base entry, its four containers, every record, and a last comment line
// with the number of entries (the reader checks it: a file cut short is
// refused). InvalidArgument if `base_dn` is not a DN mbxmove can write
// (its first RDN must be ou=, o= or dc=).
Result<std::string> DirectoryToLdif(const DirectoryContents& contents, const std::string& base_dn,
                                    std::string_view source);

// Parses LDIF (an export, or any file of such entries) back into records,
// checking everything before returning: an unknown entry, a missing or
// malformed attribute, a duplicate name or mailbox, a file cut short are
// InvalidArgument naming the line.
Result<DirectoryContents> DirectoryFromLdif(std::string_view ldif);

struct DirectoryImportSummary {
  size_t added = 0;      // records written
  size_t unchanged = 0;  // records the directory already held, identical
};

// Writes `contents` into `dir`. Refused (AlreadyExists, naming the first
// difference, nothing written) when `dir` holds any record that `contents`
// does not hold identically: importing into an empty directory, or again
// into one an earlier (perhaps interrupted) import of the same file filled,
// are the cases that work. Order: servers, stores, users (one PutUsers),
// move records, then Sync.
Result<DirectoryImportSummary> ImportDirectoryContents(Directory& dir, const DirectoryContents& contents);

// RFC 4514 escaping of one attribute value inside a DN ("a,b" -> "a\,b").
std::string EscapeDnValue(std::string_view value);

// Exchange's legacy DN of a server, as msExchHomeServerName holds it:
// "/o=mbxmove/ou=First Administrative Group/cn=Configuration/cn=Servers/cn=SERVER1";
// and back (the last "/cn=" component; nullopt for any other form).
std::string LegacyServerDn(const std::string& server);
std::optional<std::string> ServerFromLegacyDn(std::string_view legacy);

}  // namespace mbx
