#include "kasm_bootstrap/kasm/installer.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/system/unique_fd.hpp"
#include "kasm_bootstrap/util/log.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <system_error>

namespace kb::kasm {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

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

std::vector<std::string> installer_argv(const InstallerInvocation& in) {
  std::vector<std::string> argv{"bash", in.install_script.string(), "-e", "-S",        "agent", "-p", in.agent_address,
                                "-m",   in.manager_address,         "-i", in.server_id};
  if (!in.provider.empty()) argv.insert(argv.end(), {"-r", in.provider});
  argv.insert(argv.end(), {"-M", in.manager_token ? in.manager_token->reveal() : std::string()});
  argv.push_back("-H"); // we own swap; without it a host with no swap gets a prompt
  argv.insert(argv.end(), in.extra_args.begin(), in.extra_args.end());
  return argv;
}

InstallerOutcome run_installer(sys::ProcessRunner& processes, const InstallerInvocation& in) {
  std::error_code ec;
  if (!fs::is_regular_file(in.install_script, ec))
    throw Error(ExitCode::kInstall, "installer not found: " + in.install_script.string());
  if (!in.manager_token || in.manager_token->empty())
    throw Error(ExitCode::kInstall, "no manager token to register the agent with");

  AptConfigFile apt_config(in.temp_dir, in.lock_timeout);
  const auto deadline = Clock::now() + in.timeout;
  InstallerOutcome outcome;
  constexpr int kMaxAttempts = 2; // one retry, and only for an apt lock failure

  for (;;) {
    if (in.before_attempt) in.before_attempt();
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0)
      throw Error(ExitCode::kInstall, fmt::format("install.sh: no time left of the {} s deadline for attempt {}",
                                                  in.timeout.count(), outcome.attempts + 1));
    ++outcome.attempts;

    bool apt_lock_seen = false;
    sys::Command cmd;
    cmd.argv = installer_argv(in);
    cmd.env_overrides = {{"DEBIAN_FRONTEND", "noninteractive"}, {"APT_CONFIG", apt_config.path().string()}};
    cmd.working_dir = in.install_script.parent_path().parent_path();
    cmd.timeout = left;
    cmd.kill_grace = in.kill_grace;
    cmd.tail_lines = 15;
    cmd.group_record = in.temp_dir / kInstallerGroupRecord;
    cmd.on_output_line = [&](std::string_view line) {
      if (is_apt_lock_failure(line)) apt_lock_seen = true;
      log::info("install.sh: {}", line); // the sinks mask the token
    };
    log::info("install-agent: attempt {}: {}", outcome.attempts, sys::describe_command(cmd.argv));
    outcome.result = processes.run(cmd, in.cancel);
    const auto& r = outcome.result;
    if (r.success()) return outcome;

    if (r.cancelled) throw Error(ExitCode::kInterrupted, "install.sh stopped: the run was interrupted");
    if (r.timed_out)
      throw Error(ExitCode::kInstall, fmt::format("install.sh did not finish within {} s and was stopped; last "
                                                  "output:{}",
                                                  in.timeout.count(), last_lines(r)));
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

} // namespace kb::kasm
