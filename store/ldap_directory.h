// The directory in an LDAP server (OpenLDAP, through libldap): the same
// records as the embedded directory, as entries under a base DN, with the
// Exchange attributes under their Active Directory OIDs
// (tools/ldap/mbxmove.schema):
//
//   BASE                         the organisation (created on create)
//     ou=users    cn=<user>      homeMDB, msExchHomeServerName, mailNickname,
//                                msExchMailboxGuid, mail, displayName
//     ou=stores   cn=<store>     the store's Exchange DN, server, created
//     ou=servers  cn=<server>    its network address
//     ou=moves    cn=<guid>      the move record
//     ou=queue    cn=<guid>      a queued move request (mbxQueueEntry)
//     ou=leases   cn=<name>      a named lease (mbxLease)
//     ou=batches  cn=<name>      a migration batch (mbxBatch); its members
//                                are values of mbxBatchMember, one JSON
//                                object each with its index in the batch
//
// Guarded writes carry the Assertion control (RFC 4528), marked critical:
// move records are created with an add (fails if present: AlreadyExists)
// and advanced asserting (&(mbxMoveStep=<from>)(source)(target))
// (Conflict). back-mdb checks the assertion inside its write transaction.
//
// Queue entries, leases and batches are versioned (mbxVersion): added with
// an add at version 1 (AlreadyExists if present), replaced with one modify
// of every attribute at version+1 and deleted with a delete, each asserting
// (mbxVersion=<the version read>) -- Conflict, nothing changed, when another
// writer came first; NotFound when the entry is gone. A delete at version 0
// asserts nothing (a damaged entry). A base made by a version without the
// queue, leases or batches container gets each on its first add; until then
// lists are empty and reads NotFound.
//
// The switch. LDAP has no transaction over two entries, so SwitchHome is
// two writes: first ONE modify of the user's homeMDB and
// msExchHomeServerName asserting (homeMDB=<source store DN>) -- the commit
// point; Conflict, nothing changed, if another writer moved it -- then the
// move record's step to 'switched'. A crash between the two leaves the
// record at 'verified' while homeMDB names the target; GetMove and ListMoves
// read such a record as 'switched' (the reconcile rule), so every reader
// sees the move as switched exactly when the commit point happened.
//
// Differences from the embedded backend, all documented at the interface's
// level of promise: PutUsers writes user by user (idempotent; a failure
// part-way leaves the earlier users written); names compare as LDAP
// compares cn (case-insensitively: lease names "A" and "a" name one lease,
// which reads back with the name it was added with; batch names likewise);
// DN values (homeMDB, a store's DN) come back with attribute types in upper
// case and RFC 4514 backslash escapes, the form StoreDistinguishedName
// writes; Sync() does nothing, since back-mdb makes each write durable
// before it answers (unless the server runs with dbnosync).
//
// Connection failures: reads, and the unguarded writes (which replace a
// record with the same content), are retried once on a new connection; a
// guarded write (a move record's, every queue entry's, lease's and batch's)
// whose connection fails in flight is IOError naming the server ("may or
// may not have happened"): the engine resolves it by reading the record
// again (engine/mailbox_mover.cc, recovery).
//
// Thread safety: safe for concurrent use (one connection, requests
// serialised under a mutex).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "store/directory.h"
#include "store/status.h"

namespace mbx {

struct LdapConfig {
  std::string url;            // "ldap://127.0.0.1:38911" (no base DN)
  std::string base_dn;        // "ou=org1,dc=mbxmove,dc=test"
  std::string bind_dn;        // "cn=admin,dc=mbxmove,dc=test"
  std::string password_file;  // absolute path; an owner-only file holding the password

  // "ldap://HOST:PORT/BASE-DN" (the base DN URL-escaped or plain) ->
  // url + base_dn; InvalidArgument naming what is wrong.
  static Result<LdapConfig> FromUrl(std::string_view url_with_base);
  std::string UrlWithBase() const;  // the inverse, for messages and export
};

// Connects, binds and checks the schema is loaded; with create, makes the
// base entry (organizationalUnit, organization or domain, after its RDN's
// ou=, o= or dc=; its parent must exist) and its seven containers if missing.
// Errors name the problem: bad URL or base DN (InvalidArgument); server
// unreachable (IOError "cannot reach the directory server ldap://..."); bind
// refused (InvalidArgument "... wrong password?"); a password file readable
// by group or others (InvalidArgument naming it; it is not read); schema not
// loaded, or a copy older than this version's without the queue's or the
// batches' classes (InvalidArgument naming tools/ldap/mbxmove.schema); base
// DN missing without create (NotFound; nothing is created). A damaged entry
// read later is Corruption quoting its DN and attribute.
//
// Opening sets SIGPIPE to ignored if it is at its default, so a server that
// closes a connection mid-request cannot kill the process.
Result<std::unique_ptr<Directory>> OpenLdapDirectory(const LdapConfig& config, bool create);

}  // namespace mbx
