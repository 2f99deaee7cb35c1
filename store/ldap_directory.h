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
//
// Guarded writes carry the Assertion control (RFC 4528), marked critical:
// the switch modifies homeMDB and msExchHomeServerName asserting
// (homeMDB=<source DN>); move records are created with an add (fails if
// present) and advanced asserting their current step. back-mdb checks the
// assertion inside its write transaction.
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
// base entry and its four containers if missing. Errors name the problem:
// bad URL, server unreachable, bind refused (wrong password), schema not
// loaded (which file to load), base DN missing (without create).
Result<std::unique_ptr<Directory>> OpenLdapDirectory(const LdapConfig& config, bool create);

}  // namespace mbx
