// `kasm-bootstrap collect-logs [--archive FILE]`: one .tar.gz an operator can attach to a
// support case: status, state, our log, the saved effective configuration, the bake
// manifest, cloud-init's logs and the units' journal. Every member passes through the
// redactor, with every secret this tool can know registered first: the configuration's
// (when it loads) and the manager token read back from the installed agent's
// configuration, so a token echoed into cloud-init-output.log is masked even when no
// configuration is given. The user-data itself is never collected (it holds the token).
//
// Members are read through RootFs (inside --root, a final symlink refused, a FIFO or
// device refused without blocking) and bounded to their last kMaxMemberBytes. The archive
// is a ustar stream through zlib (both already in the static binary), written to a
// temporary file beside the destination, fsynced, and linked into place only if nothing
// is there: an existing file is never replaced, and a failure leaves nothing behind.

#include "kasm_bootstrap/cli/commands.hpp"
#include "kasm_bootstrap/config/loader.hpp"
#include "kasm_bootstrap/kasm/release_layout.hpp"
#include "kasm_bootstrap/plan/observers.hpp"
#include "kasm_bootstrap/system/process.hpp"
#include "kasm_bootstrap/system/root_fs.hpp"
#include "kasm_bootstrap/system/unique_fd.hpp"
#include "kasm_bootstrap/util/errno_text.hpp"
#include "kasm_bootstrap/util/message_text.hpp"
#include "kasm_bootstrap/util/redactor.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <zlib.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace kb::cli {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxMemberBytes = std::size_t{8} << 20;

struct Member {
  std::string name;    // inside the archive, under the top directory
  std::string source;  // what it was made from, for the manifest
  std::string text;    // scrubbed
  std::string skipped; // why it is not in the archive; empty = included
  bool truncated = false;
};

// The last kMaxMemberBytes of a regular file under the root; a reason when it is not one.
Member read_member(const sys::RootFs& fs, const std::string& machine_path, std::string name) {
  Member m{std::move(name), machine_path, {}, {}, false};
  sys::UniqueFd fd;
  try {
    fd = fs.open_file(machine_path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
  } catch (const std::exception& e) {
    m.skipped = e.what();
    return m;
  }
  if (!fd) {
    m.skipped = errno == ENOENT ? "not present" : errno == ELOOP ? "is a symbolic link" : util::errno_text(errno);
    return m;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    m.skipped = util::errno_text(errno);
    return m;
  }
  if (!S_ISREG(st.st_mode)) {
    m.skipped = std::string("is ") + sys::file_type_name(st.st_mode) + ", not a regular file";
    return m;
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  const std::uint64_t from = size > kMaxMemberBytes ? size - kMaxMemberBytes : 0;
  m.truncated = from > 0;
  std::string data(static_cast<std::size_t>(size - from), '\0');
  std::size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::pread(fd.get(), data.data() + got, data.size() - got, static_cast<off_t>(from + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  data.resize(got);
  m.text = scrub(data);
  return m;
}

// The installed agent's manager token (Kasm writes it as manager.token), registered with
// the redactor before anything is read.
void register_agent_token(const sys::RootFs& fs) {
  try {
    const auto path = kasm::installed_agent_config(fs);
    if (!path) return;
    const auto text = fs.read_file(*path, 1u << 20);
    if (!text) return;
    const auto doc = YAML::Load(*text);
    if (doc["manager"] && doc["manager"]["token"]) {
      const auto token = doc["manager"]["token"].as<std::string>();
      if (token.size() >= 8) redactor().add(token);
    }
  } catch (const std::exception&) {
    // Unreadable or not YAML: the file itself is not collected, so nothing leaks from it.
  }
}

Member journal_member(const sys::RootFs& fs) {
  Member m{"journal.txt", "journalctl -u kasm-bootstrap*.service", {}, {}, false};
  if (!fs.is_real_root()) {
    m.skipped = "skipped: --root is not /";
    return m;
  }
  sys::Command cmd;
  cmd.argv = {"journalctl", "--no-pager",
              "-o",         "short-iso",
              "-u",         "kasm-bootstrap.service",
              "-u",         "kasm-bootstrap-health.service",
              "-u",         "kasm-bootstrap-metadata-firewall.service"};
  cmd.timeout = std::chrono::seconds(30);
  std::string text;
  cmd.on_output_line = [&](std::string_view line) {
    if (text.size() < kMaxMemberBytes)
      text.append(line).append("\n");
    else
      m.truncated = true;
  };
  try {
    sys::ProcessRunner runner;
    const auto result = runner.run(cmd);
    if (!result.success()) {
      m.skipped = "journalctl: " + result.describe_outcome();
      return m;
    }
  } catch (const std::exception& e) {
    m.skipped = std::string("journalctl could not run: ") + e.what();
    return m;
  }
  m.text = scrub(text);
  return m;
}

// `value` in octal, zero-padded to width - 1 digits and NUL-terminated, as ustar's
// numeric fields are.
void put_octal(char* field, std::size_t width, unsigned long long value) {
  field[width - 1] = '\0';
  for (std::size_t i = width - 1; i-- > 0;) {
    field[i] = static_cast<char>('0' + (value & 7U));
    value >>= 3;
  }
}

// ustar (POSIX.1-1988) header of a regular file `prefix`/`name`: the prefix field (155
// bytes) holds the top directory, so a long host name never cuts a member's name.
std::array<char, 512> tar_header(const std::string& prefix, const std::string& name, std::size_t size,
                                 std::time_t mtime) {
  std::array<char, 512> h{};
  std::memcpy(h.data(), name.data(), std::min<std::size_t>(name.size(), 100));
  put_octal(h.data() + 100, 8, 0600U);
  put_octal(h.data() + 108, 8, 0U);
  put_octal(h.data() + 116, 8, 0U);
  put_octal(h.data() + 124, 12, size);
  put_octal(h.data() + 136, 12, static_cast<unsigned long long>(std::max<std::time_t>(mtime, 0)));
  std::memset(h.data() + 148, ' ', 8);
  h[156] = '0';
  std::memcpy(h.data() + 257, "ustar", 6);
  std::memcpy(h.data() + 263, "00", 2);
  std::memcpy(h.data() + 345, prefix.data(), std::min<std::size_t>(prefix.size(), 155));
  unsigned sum = 0;
  for (char c : h)
    sum += static_cast<unsigned char>(c);
  put_octal(h.data() + 148, 7, sum);
  h[155] = ' ';
  return h;
}

// Writes the members as <top>/<name> into a gzip'd tar at `fd`; throws on failure.
void write_archive(int fd, const std::string& top, const std::vector<Member>& members, std::time_t now) {
  const int gz_fd = ::dup(fd);
  if (gz_fd < 0) throw Error(ExitCode::kState, "cannot write the archive: " + util::errno_text(errno));
  gzFile gz = gzdopen(gz_fd, "wb9");
  if (!gz) {
    ::close(gz_fd);
    throw Error(ExitCode::kState, "cannot write the archive: zlib could not start");
  }
  bool ok = true;
  const auto put = [&](const void* data, std::size_t size) {
    if (ok && size > 0 && gzwrite(gz, data, static_cast<unsigned>(size)) != static_cast<int>(size)) ok = false;
  };
  const std::array<char, 512> zeros{};
  for (const auto& m : members) {
    if (!m.skipped.empty()) continue;
    const auto header = tar_header(top, m.name, m.text.size(), now);
    put(header.data(), header.size());
    put(m.text.data(), m.text.size());
    put(zeros.data(), (512 - m.text.size() % 512) % 512);
  }
  put(zeros.data(), zeros.size());
  put(zeros.data(), zeros.size());
  if (gzclose(gz) != Z_OK || !ok) throw Error(ExitCode::kState, "cannot write the archive: compression failed");
}

std::string default_archive_name(std::time_t now) {
  utsname u{};
  std::string host = ::uname(&u) == 0 ? std::string(u.nodename).substr(0, 100) : "host";
  for (auto& c : host)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') c = '_';
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char stamp[32] = "00000000T000000Z";
  if (std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm) == 0) stamp[0] = '0';
  return "kasm-bootstrap-logs-" + host + "-" + stamp;
}

} // namespace

ExitCode command_collect_logs(const CommonOptions& options, std::istream& in, Output& output) {
  const sys::RootFs fs(options.root);
  std::string state_dir = config::Config{}.state_dir;
  std::string config_note = "loaded";
  try {
    // Loading registers the configuration's secrets with the redactor.
    state_dir = load_configuration(options, in, config::Purpose::kStatus, output, "collect-logs").config.state_dir;
  } catch (const Error& e) {
    config_note = std::string("not loaded (") + e.what() + "); default state_dir used";
  }
  register_agent_token(fs);

  const auto now = std::time(nullptr);
  const std::string top = default_archive_name(now);
  const fs::path archive = options.archive_path.empty() ? fs::path(top + ".tar.gz") : fs::path(options.archive_path);

  std::vector<Member> members;
  members.push_back(read_member(fs, state_dir + "/" + plan::StatusFileObserver::kStatusFile, "status.json"));
  members.push_back(read_member(fs, state_dir + "/state.json", "state.json"));
  members.push_back(read_member(fs, state_dir + "/kasm-bootstrap.log", "kasm-bootstrap.log"));
  members.push_back(read_member(fs, state_dir + "/installed-release.json", "installed-release.json"));
  members.push_back(read_member(fs, config::kEffectiveConfigPath, "effective.json"));
  members.push_back(read_member(fs, "/etc/kasm-bootstrap/bake.json", "bake.json"));
  members.push_back(read_member(fs, "/var/log/cloud-init.log", "cloud-init.log"));
  members.push_back(read_member(fs, "/var/log/cloud-init-output.log", "cloud-init-output.log"));
  members.push_back(journal_member(fs));

  std::string manifest = fmt::format("kasm-bootstrap collect-logs, {} UTC, root {}\nconfiguration: {}\n"
                                     "never collected: the instance user-data (it holds the manager token)\n"
                                     "secrets masked as ****\n\n",
                                     top.substr(top.size() - 16), options.root, config_note);
  for (const auto& m : members)
    manifest += fmt::format("{:<24} {}  ({})\n", m.name,
                            m.skipped.empty() ? (m.truncated ? "included, last 8 MiB" : "included") : m.skipped,
                            util::quote_for_message(m.source, 200));
  members.insert(members.begin(), Member{"MANIFEST.txt", "this list", scrub(manifest), {}, false});

  // The destination: never replaced, never written through a symlink.
  struct stat st {};
  if (::lstat(archive.c_str(), &st) == 0)
    throw Error(ExitCode::kState,
                "--archive " + util::quote_for_message(archive.string(), 200) + " already exists; name a new file");
  const fs::path dir = archive.has_parent_path() ? archive.parent_path() : fs::path(".");
  const fs::path temp = dir / ("." + archive.filename().string() + ".tmp");
  sys::UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd)
    throw Error(ExitCode::kState,
                "cannot write in " + util::quote_for_message(dir.string(), 200) + ": " + util::errno_text(errno));
  try {
    write_archive(fd.get(), top, members, now);
    if (::fsync(fd.get()) != 0) throw Error(ExitCode::kState, "cannot fsync the archive: " + util::errno_text(errno));
    // link() fails when the name exists: a file that appeared meanwhile is not replaced.
    if (::link(temp.c_str(), archive.c_str()) != 0)
      throw Error(ExitCode::kState,
                  "cannot create " + util::quote_for_message(archive.string(), 200) + ": " + util::errno_text(errno));
  } catch (...) {
    ::unlink(temp.c_str());
    throw;
  }
  ::unlink(temp.c_str());

  if (output.json()) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& m : members)
      list.push_back({{"name", m.name},
                      {"included", m.skipped.empty()},
                      {"truncated", m.truncated},
                      {"reason", m.skipped},
                      {"source", m.source}});
    output.document({{"command", "collect-logs"}, {"archive", archive.string()}, {"members", list}});
  } else {
    for (const auto& m : members)
      output.line(fmt::format("  {:<24} {}", m.name, m.skipped.empty() ? "included" : m.skipped));
    output.line("wrote " + archive.string() + " (secrets masked)");
  }
  return ExitCode::kOk;
}

} // namespace kb::cli
