// `kasm-bootstrap collect-logs [--archive FILE]`: one .tar.gz an operator can attach to a
// support case: status, state, our log, the saved effective configuration, the bake
// manifest, the installed-release record, cloud-init's logs and the units' journal, with
// a MANIFEST.txt that says what is in it and why anything is not. Every member passes
// through the redactor, with every secret this tool can know registered first: the
// configuration's (loading registers them) and the manager token read back from the
// installed agent's configuration, so a token echoed into cloud-init-output.log is masked
// even when no configuration is given. The user-data itself is never collected (it holds
// the token).
//
// Members are read through RootFs (inside --root; a final symlink is not followed, a FIFO
// or device is refused without blocking) and bounded to their last kCollectMaxBytes, cut
// at a line start so no secret is split by the cut (half a token would not be masked).
// The archive (libarchive: gzip filter, restricted pax format) is a file on the HOST, not
// under --root: written to a temporary file beside the destination, fsynced, and linked
// into place only if nothing is there, so an existing file is never replaced, a symlink
// never written through, and a failure leaves nothing behind.

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
#include "kasm_bootstrap/version.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <deque>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace kb::cli {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kCollectMaxBytes = std::size_t{8} << 20;
constexpr const char* kCollectMaxText = "8 MiB";
constexpr auto kJournalDeadline = std::chrono::seconds(30);
// journalctl -n: the newest entries only, found from the end of the journal, so a year of
// health-timer runs is not streamed just to keep its last 8 MiB.
constexpr const char* kJournalLines = "100000";
constexpr const char* kCollectUnits[] = {"kasm-bootstrap.service", "kasm-bootstrap-health.service",
                                         "kasm-bootstrap-metadata-firewall.service"};

struct CollectedMember {
  std::string name;    // inside the archive, under the top directory
  std::string source;  // what it was made from, for the manifest
  std::string text;    // scrubbed
  std::string skipped; // why it is not in the archive; empty = included
  bool truncated = false;
  std::time_t mtime = 0; // the source's, when it has a sane one; else the collection time
};

// Drops a partial first line: what is left after cutting a file's head off starts at a
// line boundary, so a secret the cut ran through is gone whole, not half-shown.
void drop_partial_first_line(std::string& text) {
  const auto nl = text.find('\n');
  text.erase(0, nl == std::string::npos ? text.size() : nl + 1);
}

// The last kCollectMaxBytes of a regular file under the root, scrubbed; a reason when it
// is not one. RootFs::read_file refuses a file over its bound, and a log is read for its
// end, so this reads the tail itself, with the same refusals (O_NONBLOCK: a FIFO is
// refused after the open, never waited on).
CollectedMember read_collected_file(const sys::RootFs& root, const std::string& machine_path, std::string name,
                                    std::time_t now) {
  CollectedMember m{std::move(name), machine_path, {}, {}, false, now};
  sys::UniqueFd fd;
  int open_errno = 0;
  try {
    fd = root.open_file(machine_path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
    open_errno = errno;
  } catch (const std::exception& e) { // RootEscape: a directory on the way leaves the root
    m.skipped = e.what();
    return m;
  }
  if (!fd) {
    if (open_errno == ENOENT || open_errno == ENOTDIR)
      m.skipped = "not present";
    else if (open_errno == ELOOP)
      m.skipped = "is a symbolic link (not followed)";
    else
      m.skipped = "cannot open: " + util::errno_text(open_errno);
    return m;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    m.skipped = "cannot stat: " + util::errno_text(errno);
    return m;
  }
  if (!S_ISREG(st.st_mode)) {
    m.skipped = std::string("is ") + sys::file_type_name(st.st_mode) + ", not a regular file";
    return m;
  }
  if (st.st_mtime > 0) m.mtime = st.st_mtime;
  const auto size = static_cast<std::uint64_t>(st.st_size);
  const std::uint64_t from = size > kCollectMaxBytes ? size - kCollectMaxBytes : 0;
  std::string data(static_cast<std::size_t>(size - from), '\0');
  std::size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::pread(fd.get(), data.data() + got, data.size() - got, static_cast<off_t>(from + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      m.skipped = "cannot read: " + util::errno_text(errno);
      return m;
    }
    if (n == 0) break; // truncated while we read: what is there
    got += static_cast<std::size_t>(n);
  }
  data.resize(got);
  if (from > 0) {
    m.truncated = true;
    drop_partial_first_line(data);
  }
  m.text = scrub(data);
  return m;
}

// The installed agent's manager token (configure-agent writes it as manager.token, in the
// file release_layout names for the installed Kasm version), registered with the redactor
// before anything is read. Found without any configuration: the token may be in
// cloud-init's output even when the configuration is gone or broken.
void register_installed_agent_token(const sys::RootFs& root) {
  try {
    const auto path = kasm::installed_agent_config(root);
    if (!path) return;
    const auto text = root.read_file(*path, std::size_t{1} << 20);
    if (!text) return;
    const auto doc = YAML::Load(*text);
    if (doc["manager"] && doc["manager"]["token"] && doc["manager"]["token"].IsScalar())
      redactor().add(doc["manager"]["token"].as<std::string>());
  } catch (const std::exception&) {
    // Unreadable or not YAML (the message may quote it: dropped): the file itself is never
    // collected, so nothing leaks from it.
  }
}

// The units' journal: only on the machine itself (journalctl reads the host's journal,
// whatever --root says), through the one process runner, with a deadline; its last
// kCollectMaxBytes of whole lines. The runner hands over each line already masked (its
// LineScrubber also catches a secret split over lines).
CollectedMember collect_journal(const sys::RootFs& root, std::time_t now) {
  sys::Command cmd;
  cmd.argv = {"journalctl", "--no-pager", "-o", "short-iso", "-n", kJournalLines};
  for (const char* unit : kCollectUnits) {
    cmd.argv.emplace_back("-u");
    cmd.argv.emplace_back(unit);
  }
  CollectedMember m{"journal.txt", sys::describe_command(cmd.argv), {}, {}, false, now};
  if (!root.is_real_root()) {
    m.skipped = "--root is not /";
    return m;
  }
  cmd.timeout = kJournalDeadline;
  cmd.tail_lines = 3;
  std::deque<std::string> lines;
  std::size_t bytes = 0;
  cmd.on_output_line = [&](std::string_view line) {
    lines.emplace_back(line);
    bytes += lines.back().size() + 1;
    while (bytes > kCollectMaxBytes && !lines.empty()) {
      bytes -= lines.front().size() + 1;
      lines.pop_front();
      m.truncated = true;
    }
  };
  try {
    sys::ProcessRunner runner;
    const auto result = runner.run(cmd);
    if (!result.success()) {
      m.skipped = "journalctl failed: " + result.describe_outcome();
      if (!result.tail.empty()) m.skipped += ": " + util::quote_for_message(result.tail.back(), 200);
      return m;
    }
  } catch (const std::exception& e) {
    m.skipped = std::string("journalctl could not run: ") + e.what();
    return m;
  }
  for (const auto& line : lines)
    m.text.append(line).append("\n");
  return m;
}

// "included", "included (last 8 MiB)", "skipped: not present".
std::string member_summary(const CollectedMember& m) {
  if (!m.skipped.empty()) return "skipped: " + m.skipped;
  return m.truncated ? fmt::format("included (last {}, cut at a line start)", kCollectMaxText) : "included";
}

// kasm-bootstrap-logs-<host>-<UTC yyyymmddThhmmssZ>: the default file name (+ .tar.gz)
// and the one top directory of every member.
std::string collection_name(std::time_t now) {
  utsname u{};
  std::string host = ::uname(&u) == 0 ? std::string(u.nodename).substr(0, 64) : "host";
  if (host.empty()) host = "host";
  for (auto& c : host)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') c = '_';
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char stamp[32] = "19700101T000000Z";
  if (std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm) == 0) stamp[0] = '\0';
  return "kasm-bootstrap-logs-" + host + "-" + stamp;
}

struct ArchiveWriterFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct ArchiveEntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

// The destination on the host: its directory held open, the archive written to a
// temporary name there and linked to the final name only when complete. Destroyed before
// publish(), it removes the temporary file.
class ArchiveDestination {
public:
  explicit ArchiveDestination(fs::path path) : path_(std::move(path)) {
    const std::string shown = util::quote_for_message(path_.string(), 200);
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0)
      throw Error(ExitCode::kState, "--archive " + shown + " already exists (" +
                                        (S_ISREG(st.st_mode) ? "a file" : sys::file_type_name(st.st_mode)) +
                                        "); collect-logs never replaces one: name a new file");
    if (errno != ENOENT)
      throw Error(ExitCode::kState, "cannot use --archive " + shown + ": " + util::errno_text(errno));
    const fs::path dir = path_.parent_path().empty() ? fs::path(".") : path_.parent_path();
    dir_.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir_)
      throw Error(ExitCode::kState, "cannot write --archive " + shown + ": its directory " +
                                        util::quote_for_message(dir.string(), 200) + ": " + util::errno_text(errno));
    name_ = path_.filename().string();
    if (name_.empty() || name_ == "." || name_ == "..")
      throw Error(ExitCode::kState, "--archive " + shown + " names a directory; name a new file in it");
    for (unsigned attempt = 0; attempt < 100 && !fd_; ++attempt) {
      temp_ = fmt::format(".{}.{}-{}.tmp", name_, ::getpid(), attempt);
      fd_.reset(::openat(dir_.get(), temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!fd_ && errno != EEXIST) break;
    }
    if (!fd_) {
      const int err = errno;
      temp_.clear();
      throw Error(ExitCode::kState,
                  "cannot write in " + util::quote_for_message(dir.string(), 200) + ": " + util::errno_text(err));
    }
  }
  ArchiveDestination(const ArchiveDestination&) = delete;
  ArchiveDestination& operator=(const ArchiveDestination&) = delete;
  ~ArchiveDestination() {
    if (!temp_.empty()) ::unlinkat(dir_.get(), temp_.c_str(), 0);
  }

  int fd() const { return fd_.get(); }

  // fsync, then link(): it fails when the name exists, so a file that appeared meanwhile
  // is not replaced either; then the temporary name goes and the directory is synced.
  void publish() {
    const std::string shown = util::quote_for_message(path_.string(), 200);
    if (::fsync(fd_.get()) != 0)
      throw Error(ExitCode::kState, "cannot write " + shown + ": fsync: " + util::errno_text(errno));
    if (::linkat(dir_.get(), temp_.c_str(), dir_.get(), name_.c_str(), 0) != 0)
      throw Error(ExitCode::kState, "cannot create " + shown + ": " + util::errno_text(errno));
    ::unlinkat(dir_.get(), temp_.c_str(), 0);
    temp_.clear();
    ::fsync(dir_.get()); // the name is there; a lost directory sync only risks it after a crash
  }

private:
  fs::path path_;
  std::string name_;
  std::string temp_; // empty once published (or never created)
  sys::UniqueFd dir_;
  sys::UniqueFd fd_;
};

// Writes the included members as <top>/<name>, each a regular file 0600 owned by root,
// into a gzip'd restricted-pax tar at `fd`; throws on failure.
void write_collected_archive(int fd, const std::string& top, const std::vector<CollectedMember>& members,
                             const std::string& shown) {
  std::unique_ptr<archive, ArchiveWriterFree> a(archive_write_new());
  if (!a) throw Error(ExitCode::kState, "cannot write " + shown + ": libarchive could not allocate");
  const auto fail = [&](const char* what) {
    const char* why = archive_error_string(a.get());
    throw Error(ExitCode::kState, fmt::format("cannot write {}: {}: {}", shown, what, why ? why : "failed"));
  };
  // Explicit filter and format only: the by-name and *_all setters drag every format (and
  // libxml2, lzma, ...) into the static link.
  if (archive_write_add_filter_gzip(a.get()) != ARCHIVE_OK) fail("gzip");
  if (archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK) fail("tar format");
  if (archive_write_set_bytes_in_last_block(a.get(), 1) != ARCHIVE_OK) fail("block size");
  if (archive_write_open_fd(a.get(), fd) != ARCHIVE_OK) fail("open");
  for (const auto& m : members) {
    if (!m.skipped.empty()) continue;
    std::unique_ptr<archive_entry, ArchiveEntryFree> entry(archive_entry_new());
    if (!entry) fail("entry");
    const std::string path = top + "/" + m.name;
    archive_entry_set_pathname(entry.get(), path.c_str());
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), 0600);
    archive_entry_set_uid(entry.get(), 0);
    archive_entry_set_gid(entry.get(), 0);
    archive_entry_set_uname(entry.get(), "root");
    archive_entry_set_gname(entry.get(), "root");
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(m.text.size()));
    archive_entry_set_mtime(entry.get(), m.mtime, 0);
    if (archive_write_header(a.get(), entry.get()) != ARCHIVE_OK) fail(m.name.c_str());
    if (!m.text.empty() &&
        archive_write_data(a.get(), m.text.data(), m.text.size()) != static_cast<la_ssize_t>(m.text.size()))
      fail(m.name.c_str());
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) fail("close");
}

std::string collection_manifest(const std::vector<CollectedMember>& members, const std::string& top,
                                const CommonOptions& options, const std::string& config_note,
                                const std::string& state_dir) {
  std::string text = fmt::format("{}\n"
                                 "kasm-bootstrap {} collect-logs, root {}\n"
                                 "configuration: {}\n"
                                 "state_dir: {}\n"
                                 "never collected: the instance user-data (it holds the manager token)\n"
                                 "secrets masked as ****: the configuration's and the installed agent's token\n"
                                 "each member: at most its last {}\n\n",
                                 top, kVersion, options.root, config_note, state_dir, kCollectMaxText);
  for (const auto& m : members)
    text += fmt::format("{}: {}  [from {}]\n", m.name,
                        m.skipped.empty() ? member_summary(m) : "skipped (" + m.skipped + ")",
                        util::quote_for_message(m.source, 300));
  return text;
}

} // namespace

ExitCode command_collect_logs(const CommonOptions& options, std::istream& in, Output& output) {
  const auto now = std::time(nullptr);
  const std::string top = collection_name(now);
  fs::path archive_path = options.archive_path.empty() ? fs::path(top + ".tar.gz") : fs::path(options.archive_path);
  std::error_code ec;
  if (const auto absolute = fs::absolute(archive_path, ec); !ec) archive_path = absolute;
  const std::string shown = util::quote_for_message(archive_path.string(), 200);
  // Before anything is read: an unusable destination is said at once.
  ArchiveDestination destination(archive_path);

  // state_dir as `status` finds it: the configuration's layers with the saved effective
  // configuration, the default when they do not load. Loading registers its secrets.
  // Its problems go to stderr only, so -o json still prints one document.
  const sys::RootFs root(options.root);
  std::string state_dir = config::Config{}.state_dir;
  std::string config_note = "loaded";
  try {
    std::ostringstream discarded;
    Output quiet(Format::kText, discarded);
    state_dir = load_configuration(options, in, config::Purpose::kStatus, quiet, "collect-logs").config.state_dir;
  } catch (const std::exception& e) {
    config_note = std::string("not loaded (") + e.what() + "); the default state_dir is used";
  }
  register_installed_agent_token(root);

  std::vector<CollectedMember> members;
  const auto collect = [&](const std::string& machine_path, const char* name) {
    members.push_back(read_collected_file(root, machine_path, name, now));
  };
  collect(state_dir + "/" + plan::StatusFileObserver::kStatusFile, "status.json");
  collect(state_dir + "/state.json", "state.json");
  collect(state_dir + "/kasm-bootstrap.log", "kasm-bootstrap.log");
  collect(state_dir + "/installed-release.json", "installed-release.json");
  collect(config::kEffectiveConfigPath, "effective.json");
  collect("/etc/kasm-bootstrap/bake.json", "bake.json");
  collect("/var/log/cloud-init.log", "cloud-init.log");
  collect("/var/log/cloud-init-output.log", "cloud-init-output.log");
  members.push_back(collect_journal(root, now));
  members.insert(members.begin(),
                 CollectedMember{"MANIFEST.txt",
                                 "this list",
                                 scrub(collection_manifest(members, top, options, config_note, state_dir)),
                                 {},
                                 false,
                                 now});

  write_collected_archive(destination.fd(), top, members, shown);
  destination.publish();

  if (output.json()) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& m : members) {
      nlohmann::json item{{"name", m.name},
                          {"source", m.source},
                          {"included", m.skipped.empty()},
                          {"truncated", m.truncated},
                          {"bytes", m.text.size()}};
      if (!m.skipped.empty()) item["reason"] = m.skipped;
      list.push_back(item);
    }
    output.document({{"command", "collect-logs"},
                     {"result", "written"},
                     {"archive", archive_path.string()},
                     {"top_directory", top},
                     {"configuration", config_note},
                     {"members", list}});
  } else {
    output.line("wrote " + archive_path.string() + " (secrets masked; no user-data)");
    for (const auto& m : members)
      output.line(fmt::format("  {:<24} {}", m.name, member_summary(m)));
  }
  return ExitCode::kOk;
}

} // namespace kb::cli
