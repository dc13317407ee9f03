#include "kasm_bootstrap/system/accounts.hpp"

#include "kasm_bootstrap/error.hpp"

#include <charconv>
#include <sstream>
#include <vector>

namespace kb::sys {
namespace {

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  for (;;) {
    const auto colon = line.find(':', start);
    fields.push_back(line.substr(start, colon == std::string_view::npos ? std::string_view::npos : colon - start));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  return fields;
}

std::optional<unsigned> parse_id(std::string_view text) {
  unsigned value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

// Calls visit(fields) for each well-formed line of `path` until it returns true.
template <typename Visit> void for_each_entry(const RootFs& fs, const char* path, std::size_t min_fields, Visit visit) {
  const auto content = fs.read_file(path);
  if (!content) return;
  std::istringstream in(*content);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line.front() == '#' || line.front() == '+' || line.front() == '-') continue;
    const auto fields = split_fields(line);
    if (fields.size() < min_fields) continue;
    if (visit(fields)) return;
  }
}

} // namespace

std::optional<Account> find_user(const RootFs& fs, std::string_view name) {
  std::optional<Account> found;
  for_each_entry(fs, "/etc/passwd", 7, [&](const std::vector<std::string_view>& f) {
    if (f[0] != name) return false;
    const auto uid = parse_id(f[2]);
    const auto gid = parse_id(f[3]);
    if (!uid || !gid) return false;
    found = Account{static_cast<uid_t>(*uid), static_cast<gid_t>(*gid)};
    return true;
  });
  return found;
}

std::optional<gid_t> find_group(const RootFs& fs, std::string_view name) {
  std::optional<gid_t> found;
  for_each_entry(fs, "/etc/group", 3, [&](const std::vector<std::string_view>& f) {
    if (f[0] != name) return false;
    const auto gid = parse_id(f[2]);
    if (!gid) return false;
    found = static_cast<gid_t>(*gid);
    return true;
  });
  return found;
}

FileOwner resolve_owner(const RootFs& fs, std::string_view user, ExitCode code_for_errors) {
  const auto account = find_user(fs, user);
  if (!account)
    throw Error(code_for_errors, "user '" + std::string(user) + "' is not in " + fs.host_path("/etc/passwd").string() +
                                     " (Kasm's installer creates it: did it run?)");
  const auto group = find_group(fs, user);
  return FileOwner{account->uid, group.value_or(account->primary_gid)};
}

} // namespace kb::sys
