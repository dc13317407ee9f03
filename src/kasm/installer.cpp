#include "kasm_bootstrap/kasm/installer.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/system/unique_fd.hpp"
#include "kasm_bootstrap/util/errno_text.hpp"
#include "kasm_bootstrap/util/log.hpp"
#include "kasm_bootstrap/util/secret.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <openssl/rand.h>

#include <deque>
#include <system_error>

namespace kb::kasm {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kInstallLogTailLines = 20;

// The APT_CONFIG file the installer's apt reads; removed when the run is over.
class AptConfigFile {
public:
  AptConfigFile(const fs::path& dir, std::chrono::seconds lock_timeout) {
    std::string tmpl = (dir / "apt-config.XXXXXX").string();
    sys::UniqueFd fd(::mkostemp(tmpl.data(), O_CLOEXEC));
    if (!fd) throw Error(ExitCode::kInstall, "cannot create a temporary apt configuration in " + dir.string());
    path_ = tmpl;
    ::fchmod(fd.get(), 0644);
    // Lock::Timeout makes apt wait for a lock instead of failing at once; the dpkg options
    // answer conffile prompts the way an unattended upgrade does.
    const std::string text = fmt::format("DPkg::Lock::Timeout \"{}\";\n"
                                         "Dpkg::Options {{ \"--force-confdef\"; \"--force-confold\"; }};\n",
                                         lock_timeout.count());
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      ::unlink(path_.c_str());
      throw Error(ExitCode::kInstall, "cannot write " + path_.string());
    }
  }
  ~AptConfigFile() { ::unlink(path_.c_str()); }
  AptConfigFile(const AptConfigFile&) = delete;
  AptConfigFile& operator=(const AptConfigFile&) = delete;
  const fs::path& path() const { return path_; }

private:
  fs::path path_;
};

std::string last_lines(const sys::ProcessResult& r) {
  std::string s;
  for (const auto& line : r.tail)
    s += "\n  | " + line;
  return s.empty() ? " (no output)" : s;
}

// A fresh token per install: the installer insists on one, and a known (or reused) value
// would be a credential shipped in every image. A Secret, so it is masked like the real
// one wherever install.sh prints it ("Setting Default Manager Token as ...").
Secret random_placeholder_token() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) throw Error(ExitCode::kInternal, "OpenSSL RAND_bytes failed");
  std::string token = "placeholder-";
  for (unsigned char b : bytes)
    token += fmt::format("{:02x}", b);
  return Secret(token);
}

// install.sh tees everything into ./kasm_install_<epoch>.log and removes it itself only
// on success and on the failures it handles (docs/kasm-installer.md §2, step 2). Whatever
// it left: its tail goes into our log (the sinks mask secrets), then the file goes.
void drain_install_logs(const ScriptRun& run) {
  const auto& fs = *run.fs;
  const auto dir = run.state_dir / kScriptWorkDir;
  for (const auto& name : fs.list_directory(dir)) {
    if (name.rfind("kasm_install_", 0) != 0 || !name.ends_with(".log")) continue;
    const auto path = dir / name;
    std::deque<std::string> tail;
    try {
      // The last 64 KiB hold the tail; the installer's log can be long.
      const auto st = fs.stat(path, sys::FollowSymlinks::kNo);
      if (st && S_ISREG(st->st_mode)) {
        // Bounded: a log larger than 64 MiB is not read (and is still removed).
        const auto text = fs.read_file(path, 64u << 20);
        std::string_view rest = text ? std::string_view(*text) : std::string_view();
        if (rest.size() > (64u << 10)) rest.remove_prefix(rest.size() - (64u << 10));
        while (!rest.empty()) {
          const auto end = rest.find('\n');
          const auto line = rest.substr(0, end);
          tail.emplace_back(line.size() > 2000 ? std::string(line.substr(0, 2000)) + "..." : std::string(line));
          if (tail.size() > kInstallLogTailLines) tail.pop_front();
          rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
        }
      }
    } catch (const std::exception& e) {
      log::warn("cannot read {}: {}", path.string(), e.what());
    }
    log::info("install.sh left {}; its last {} lines:", path.string(), tail.size());
    for (const auto& line : tail)
      log::info("  {}: {}", name, line);
    try {
      fs.remove(path);
    } catch (const std::exception& e) {
      log::warn("cannot remove {}: {}", path.string(), e.what());
    }
  }
}

// The private working directory (0700), made inside the root, never a symlink the scripts
// would follow; leftovers of an earlier run are drained first.
void prepare_work_dir(const ScriptRun& run) {
  const auto dir = run.state_dir / kScriptWorkDir;
  run.fs->create_directories(dir, 0700);
  const auto st = run.fs->stat(dir, sys::FollowSymlinks::kNo);
  if (!st || !S_ISDIR(st->st_mode))
    throw Error(ExitCode::kInstall, dir.string() + " is not a directory; the release's scripts need a private one");
  if ((st->st_mode & 07777) != 0700 && ::chmod(run.fs->host_path(dir).c_str(), 0700) != 0)
    throw Error(ExitCode::kInstall, "cannot make " + dir.string() + " private (0700): " + util::errno_text(errno));
  drain_install_logs(run);
}

sys::Command script_command(const ScriptRun& run, std::vector<std::string> argv, std::chrono::milliseconds left,
                            const char* label) {
  sys::Command cmd;
  cmd.argv = std::move(argv);
  cmd.env_overrides = {{"DOCKER_HOST", run.docker_host}};
  cmd.working_dir = run.fs->host_path(run.state_dir / kScriptWorkDir);
  cmd.timeout = left;
  cmd.kill_grace = run.kill_grace;
  cmd.tail_lines = 15;
  cmd.group_record = run.fs->host_path(run.state_dir / kInstallerGroupRecord);
  cmd.on_output_line = [label](std::string_view line) { log::info("{}: {}", label, line); }; // sinks mask
  return cmd;
}

} // namespace

bool is_apt_lock_failure(std::string_view line) {
  static const std::string_view kSigns[] = {
      "Could not get lock",
      "Unable to acquire the dpkg frontend lock",
      "Unable to lock the administration directory",
      "is another process using it?",
  };
  for (auto sign : kSigns)
    if (line.find(sign) != std::string_view::npos) return true;
  return false;
}

std::vector<std::string> installer_argv(const InstallerInvocation& in, const std::string& token) {
  // No -r: install.sh writes a provider only when given one, and configure-agent writes the
  // configured one. -H: we own swap (without it a host with no swap gets a prompt).
  std::vector<std::string> argv{"bash",
                                in.install_script.string(),
                                "-e",
                                "-S",
                                "agent",
                                "-p",
                                kPlaceholderAddress,
                                "-m",
                                kPlaceholderManager,
                                "-i",
                                kPlaceholderServerId,
                                "-M",
                                token,
                                "-H",
                                "-D",
                                "-N",
                                "-L",
                                std::to_string(in.proxy_port)};
  if (!in.service_images.empty()) argv.insert(argv.end(), {"-s", in.service_images.string()});
  argv.insert(argv.end(), in.extra_args.begin(), in.extra_args.end());
  return argv;
}

std::string describe_installer(const InstallerInvocation& in) {
  return sys::describe_command(installer_argv(in, "<random placeholder>"));
}

InstallerOutcome run_installer(sys::ProcessRunner& processes, const InstallerInvocation& in) {
  std::error_code ec;
  if (!fs::is_regular_file(in.install_script, ec))
    throw Error(ExitCode::kInstall, "installer not found: " + in.install_script.string());
  if (!in.service_images.empty() && !fs::is_regular_file(in.service_images, ec))
    throw Error(ExitCode::kInstall, "service_images " + in.service_images.string() + " does not exist");

  AptConfigFile apt_config(in.run.fs->host_path(in.run.state_dir), in.lock_timeout);
  const auto deadline = Clock::now() + in.run.timeout;
  InstallerOutcome outcome;
  constexpr int kMaxAttempts = 2; // one retry, and only for an apt lock failure

  for (;;) {
    if (in.before_attempt) in.before_attempt();
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0)
      throw Error(ExitCode::kInstall, fmt::format("install.sh: no time left of the {} s deadline for attempt {}",
                                                  in.run.timeout.count(), outcome.attempts + 1));
    ++outcome.attempts;
    prepare_work_dir(in.run);

    bool apt_lock_seen = false;
    const auto token = random_placeholder_token();
    auto cmd = script_command(in.run, installer_argv(in, token.reveal()), left, "install.sh");
    cmd.env_overrides["DEBIAN_FRONTEND"] = "noninteractive";
    cmd.env_overrides["APT_CONFIG"] = apt_config.path().string();
    const auto log_line = cmd.on_output_line;
    cmd.on_output_line = [&](std::string_view line) {
      if (is_apt_lock_failure(line)) apt_lock_seen = true;
      log_line(line);
    };
    log::info("install-agent: attempt {}: {}", outcome.attempts, describe_installer(in));
    outcome.result = processes.run(cmd, in.run.cancel);
    drain_install_logs(in.run);
    const auto& r = outcome.result;
    if (r.success()) return outcome;

    if (r.cancelled) throw Error(ExitCode::kInterrupted, "install.sh stopped: the run was interrupted");
    if (r.timed_out)
      throw Error(ExitCode::kInstall, fmt::format("install.sh did not finish within {} s and was stopped; last "
                                                  "output:{}",
                                                  in.run.timeout.count(), last_lines(r)));
    if (apt_lock_seen && outcome.attempts < kMaxAttempts) {
      log::warn("install.sh failed ({}) because apt's lock was busy; waiting for the lock and trying once more",
                r.describe_outcome());
      continue;
    }
    throw Error(ExitCode::kInstall,
                fmt::format("install.sh failed ({}){}; last output:{}", r.describe_outcome(),
                            outcome.attempts > 1 ? fmt::format(" on attempt {}", outcome.attempts) : "",
                            last_lines(r)));
  }
}

sys::ProcessResult run_release_start(sys::ProcessRunner& processes, const fs::path& start_script,
                                     const ScriptRun& run) {
  std::error_code ec;
  if (!fs::is_regular_file(start_script, ec))
    throw Error(ExitCode::kDocker, start_script.string() + " does not exist: the installed release has no bin/start");
  prepare_work_dir(run);
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(run.timeout);
  auto cmd = script_command(run, {"bash", start_script.string()}, timeout, "bin/start");
  log::info("start-services: {}", sys::describe_command(cmd.argv));
  auto result = processes.run(cmd, run.cancel);
  drain_install_logs(run);
  if (result.success()) return result;
  if (result.cancelled) throw Error(ExitCode::kInterrupted, "bin/start stopped: the run was interrupted");
  if (result.timed_out)
    throw Error(ExitCode::kDocker, fmt::format("bin/start did not finish within {} s and was stopped; last output:{}",
                                               run.timeout.count(), last_lines(result)));
  throw Error(ExitCode::kDocker,
              fmt::format("bin/start failed ({}); last output:{}", result.describe_outcome(), last_lines(result)));
}

} // namespace kb::kasm
