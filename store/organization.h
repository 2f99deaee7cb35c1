// Organization: an organisation folder, the unit every command works on.
//
//   ORG/directory/      the directory (users, homeMDB, stores, move records),
//                       embedded (LMDB), or
//   ORG/directory.json  where it is instead: an LDAP server (owner-only;
//                       {"backend":"ldap","url","base_dn","bind_dn","password_file"},
//                       store/ldap_directory.h)
//   ORG/stores/NAME/    one folder per mailbox store
//
// Stores are opened on first use and kept open until the Organization is
// destroyed. Thread safety: safe for concurrent use.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/directory.h"
#include "store/status.h"
#include "store/store.h"
#include "store/store_handle.h"

namespace mbx {

struct LdapConfig;  // store/ldap_directory.h

class Organization {
 public:
  // Opens an existing organisation; NotFound with a clear message if `dir` is
  // not one (nothing is created). A folder holding only directory.json is an
  // organisation whose directory is in LDAP (stores/ comes with the first
  // store); a damaged directory.json is Corruption naming it.
  static Result<std::unique_ptr<Organization>> Open(const std::string& dir,
                                                    const OpenOptions& store_options = {});
  // Opens, or creates when `dir` is missing or an empty folder. A non-empty
  // folder that is not an organisation is refused. With `ldap`, a new
  // organisation keeps its directory in that LDAP server (its base entry
  // and containers are created if missing) and ORG/directory.json points at
  // it; an existing organisation is opened as it is, whatever `ldap` says.
  static Result<std::unique_ptr<Organization>> OpenOrCreate(const std::string& dir,
                                                            const OpenOptions& store_options = {},
                                                            const LdapConfig* ldap = nullptr);

  const std::string& dir() const { return dir_; }
  Directory& directory() { return *directory_; }
  // Replaces the directory with wrap(current directory): a test seam for a
  // decorator that interposes another writer or a fault. Call before the
  // organisation is used by other threads.
  void WrapDirectory(const std::function<std::unique_ptr<Directory>(std::unique_ptr<Directory>)>& wrap) {
    directory_ = wrap(std::move(directory_));
  }
  std::string StorePath(const std::string& name) const { return dir_ + "/stores/" + name; }

  // Creates and registers a new store. Names: 1-64 of [A-Za-z0-9._-].
  Status CreateStore(const std::string& name, const std::string& server, const StoreOptions& options);
  // The open store (opened now if needed). NotFound if it is not registered.
  // For a store whose server has an address this still opens the folder
  // here, which the serving process refuses ("served by mbxmove serve").
  Result<Store*> GetStore(const std::string& name);

  // How this program reaches a store on a server with an address: the RPC
  // client (net/remote_store.h) is installed by the program that links it.
  using RemoteConnector = std::function<Result<std::unique_ptr<StoreHandle>>(const StoreRecord& store,
                                                                             const ServerRecord& server)>;
  void SetRemoteConnector(RemoteConnector connector);
  // The store wherever it lives: for a server with an address in the
  // directory, a client of that server (connected now if needed); otherwise
  // the store opened here (GetStore). Handles live as long as the
  // Organization. NotFound if the store is not registered.
  Result<StoreHandle*> GetHandle(const std::string& name);
  // Closes an open store (e.g. before a restore replaces its files).
  void CloseStore(const std::string& name);
  Status ListStores(std::vector<StoreRecord>* out) { return directory_->ListStores(out); }

  static Status ValidateStoreName(const std::string& name);
  // The same rule for any name that becomes a folder or a key (store and
  // user names): `what` names it in the error ("user name 'x' ...").
  static Status ValidateName(std::string_view what, const std::string& name);

 private:
  Organization() = default;
  // The directory's record of a store; NotFound says how to list them.
  Result<StoreRecord> Registered(const std::string& name);
  std::string dir_;
  OpenOptions store_options_;
  std::unique_ptr<Directory> directory_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Store>> stores_;  // GUARDED_BY(mu_)
  std::map<std::string, std::unique_ptr<StoreHandle>> remotes_;  // GUARDED_BY(mu_)
  RemoteConnector connector_;  // GUARDED_BY(mu_)
};

// "2026-11-24T15:42:29Z"
std::string NowIso8601();

}  // namespace mbx
