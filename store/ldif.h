// LDIF (RFC 2849) content records: the entries of a directory as text that
// ldapadd/slapadd read and `mbxmove directory export/import` writes and
// reads.
//
// Writing: "version: 1", then one entry per paragraph. A value that is not a
// SAFE-STRING (it starts with a space, ':' or '<', ends with a space, or holds
// NUL, CR, LF or a byte above 127) is written base64-encoded after "::".
// Lines longer than 76 characters are folded: the rest continues on the next
// line after one space.
//
// Reading: the same, and also CRLF line ends, comment lines ("#", folded or
// not), several blank lines between entries, attribute options
// ("userCertificate;binary"). Not supported, and refused naming the line:
// change records (changetype), URL values ("attr:< file://..."), a version
// other than 1. Every error is InvalidArgument "line N: what is wrong".
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/status.h"

namespace mbx {

struct LdifEntry {
  std::string dn;
  // Attribute descriptions and values, in file order; a value is raw bytes.
  std::vector<std::pair<std::string, std::string>> attrs;
  size_t line = 0;  // reader: the line of "dn:" (1-based), for messages

  void Add(std::string attr, std::string value) { attrs.emplace_back(std::move(attr), std::move(value)); }
  // Every value of `attr` (attribute names compare case-insensitively).
  std::vector<std::string> Values(std::string_view attr) const;
  // The single value of `attr`; InvalidArgument "line N: entry DN has no
  // ATTR" (or "has N values of ATTR") otherwise.
  Result<std::string> One(std::string_view attr) const;
  // True if the entry has `attr` with `value` (values compare exactly,
  // except objectClass values, which compare case-insensitively).
  bool Has(std::string_view attr, std::string_view value) const;
};

// True if `value` can be written plainly after "attr: " (RFC 2849 SAFE-STRING,
// and no trailing space).
bool LdifSafe(std::string_view value);

// Appends one entry (a paragraph ending with a blank line) to *out.
void AppendLdifEntry(const LdifEntry& e, std::string* out);
// "version: 1", `comment` lines (each prefixed "# ", folded like values;
// may be empty), then the entries.
std::string WriteLdif(const std::vector<LdifEntry>& entries, std::string_view comment = {});

// Parses a whole LDIF file of content records.
Result<std::vector<LdifEntry>> ParseLdif(std::string_view text);

std::string Base64Encode(std::string_view data);
// Standard alphabet with '=' padding; false for anything else.
bool Base64Decode(std::string_view text, std::string* out);

}  // namespace mbx
