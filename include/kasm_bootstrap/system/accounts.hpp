#pragma once
// User and group ids read from /etc/passwd and /etc/group under the root dir. A static
// glibc binary must not call getpwnam/getgrnam (they load NSS modules at run time), and
// under a test root the host's accounts are the wrong ones anyway.

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/system/root_fs.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace kb::sys {

struct Account {
  uid_t uid = 0;
  gid_t primary_gid = 0;
};

// nullopt when the file has no such entry (or does not exist). Malformed lines are skipped.
std::optional<Account> find_user(const RootFs& fs, std::string_view name);
std::optional<gid_t> find_group(const RootFs& fs, std::string_view name);

// Owner for files that belong to `user`: its uid, and the gid of the group of the same
// name when there is one, else the user's primary group. Throws kb::Error(`code`) naming
// the file when the user does not exist.
FileOwner resolve_owner(const RootFs& fs, std::string_view user, ExitCode code_for_errors);

} // namespace kb::sys
