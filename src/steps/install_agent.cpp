// install-agent: run the release's install.sh as a Docker Agent with placeholder
// registration values and -D -N (installed, not started, no connection test). The
// registration itself is configure-agent's, so the token is on no command line; bin/start
// is start-services'. A baked image did exactly this at build time (bake-release).

#include "kasm_bootstrap/kasm/installer.hpp"
#include "kasm_bootstrap/kasm/release_cache.hpp"
#include "kasm_bootstrap/kasm/release_download.hpp"
#include "kasm_bootstrap/kasm/release_layout.hpp"
#include "kasm_bootstrap/steps/steps.hpp"
#include "kasm_bootstrap/system/package_locks.hpp"
#include "kasm_bootstrap/util/json_text.hpp"
#include "kasm_bootstrap/util/log.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace kb::steps {
namespace {

namespace fs = std::filesystem;

// What install-agent installed, in the state directory: the version alone does not name a
// release (a rebuilt tarball, or a bake that is not trusted, has the same version), its
// sha256 does.
constexpr const char* kInstalledRecord = "installed-release.json";

std::filesystem::path installed_record(const plan::StepContext& ctx) {
  return std::filesystem::path(ctx.config.state_dir) / kInstalledRecord;
}

// The installed release, when it is the fetched one and complete: /opt/kasm/current links
// to /opt/kasm/<version>, which holds the agent configuration and bin/start, and this
// step installed it from the configured tarball.
std::optional<std::string> installed_matching_release(const plan::StepContext& ctx) {
  const auto& fs = ctx.machine.fs;
  const auto wanted = ctx.facts.get(out::kReleaseVersion);
  const auto installed = kasm::installed_release(fs);
  if (!wanted || !installed || installed->layout.version.text != *wanted) return std::nullopt;
  if (!fs.exists(installed->agent_config()) || !fs.exists(installed->start_script())) return std::nullopt;
  try {
    const auto text = fs.read_file(installed_record(ctx), 64u << 10);
    if (!text || util::json_too_deep(*text)) return std::nullopt;
    const auto record = nlohmann::json::parse(*text);
    if (!record.is_object() ||
        record.value("release_sha256", "") != kasm::normalize_digest(ctx.config.release_sha256) ||
        record.value("version", "") != *wanted)
      return std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt; // unreadable: install again
  }
  return installed->layout.version.text;
}

class InstallAgent final : public plan::Step {
public:
  std::string_view id() const override { return id::kInstallAgent; }
  std::vector<std::string_view> depends_on() const override {
    return {id::kEnsureSwap, id::kFetchRelease, id::kWaitPackageLocks, id::kCheckManager};
  }
  ExitCode failure_code() const override { return ExitCode::kInstall; }

  plan::Description describe(const plan::StepContext& ctx) const override {
    const auto& c = ctx.config;
    plan::Description d;
    d.summary = "install the Kasm agent with the release's install.sh -D -N and placeholder registration values "
                "(configure-agent registers it; the token is on no command line)";
    if (const auto version = installed_matching_release(ctx)) {
      d.actions.push_back({"note", kasm::kCurrentLink, "Kasm " + *version + " is already installed"});
      return d;
    }
    const auto in = placeholder_install(ctx);
    d.actions.push_back({"run", kasm::describe_installer(in),
                         fmt::format("in {}/{} (0700; its kasm_install_*.log removed afterwards); stdin /dev/null; "
                                     "DEBIAN_FRONTEND=noninteractive; APT_CONFIG={}/apt-config.* "
                                     "(DPkg::Lock::Timeout {} s, removed afterwards); deadline {} s kills the process "
                                     "group; one retry after an apt lock failure",
                                     c.state_dir, kasm::kScriptWorkDir, c.state_dir, c.lock_timeout_seconds,
                                     c.install_timeout_seconds)});
    d.actions.push_back({"check", kasm::kCurrentLink, "links the release's version, with its agent configuration"});
    d.actions.push_back({"write", (std::filesystem::path(c.state_dir) / kInstalledRecord).string(),
                         "the installed release's sha256 and version"});
    return d;
  }

  std::optional<plan::Outputs> check(const plan::StepContext& ctx) const override {
    if (const auto version = installed_matching_release(ctx)) return plan::Outputs{{"installed_version", *version}};
    return std::nullopt;
  }

  plan::Outputs apply(const plan::StepContext& ctx) override {
    const auto outcome = run_placeholder_install(ctx);
    const auto installed = kasm::installed_release(ctx.machine.fs);
    const auto wanted = ctx.facts.get(out::kReleaseVersion).value_or("?");
    if (!installed)
      throw Error(ExitCode::kInstall, std::string("install.sh exited 0 but did not link ") + kasm::kCurrentLink +
                                          " to a Kasm release this kasm-bootstrap knows");
    if (installed->layout.version.text != wanted)
      throw Error(ExitCode::kInstall, fmt::format("install.sh installed Kasm {}, but the release is Kasm {}",
                                                  installed->layout.version.text, wanted));
    if (!ctx.machine.fs.exists(installed->agent_config()))
      throw Error(ExitCode::kInstall, "install.sh exited 0 but did not write " + installed->agent_config().string());
    const nlohmann::json record{{"release_sha256", kasm::normalize_digest(ctx.config.release_sha256)},
                                {"version", installed->layout.version.text}};
    ctx.machine.fs.write_file_atomic(installed_record(ctx), record.dump() + "\n", 0644);
    return {{"installed_version", installed->layout.version.text},
            {"installer_attempts", std::to_string(outcome.attempts)}};
  }
};

} // namespace

kasm::ScriptRun script_run(const plan::StepContext& ctx, std::int64_t timeout_seconds) {
  const auto& fs = ctx.machine.fs;
  kasm::ScriptRun run;
  run.fs = &fs;
  run.state_dir = ctx.config.state_dir;
  // A state dir that leads out of the root is refused here (RootEscape), so the dry run
  // says so too, not only the run.
  (void)fs.host_path(run.state_dir);
  run.docker_host = "unix://" + fs.host_path(ctx.config.docker_socket).string();
  run.timeout = std::chrono::seconds(timeout_seconds);
  run.cancel = &ctx.cancelled;
  return run;
}

kasm::InstallerInvocation placeholder_install(const plan::StepContext& ctx) {
  const auto& c = ctx.config;
  const auto& fs = ctx.machine.fs;
  const auto release_dir = ctx.facts.get(out::kReleaseDir).value_or(kasm::release_paths(c).release_dir.string());
  kasm::InstallerInvocation in;
  in.install_script = fs.host_path(fs::path(release_dir) / "install.sh");
  in.proxy_port = static_cast<int>(c.proxy_port);
  if (!c.service_images.empty()) in.service_images = fs.host_path(c.service_images);
  in.extra_args = c.install_args;
  in.run = script_run(ctx, c.install_timeout_seconds);
  in.lock_timeout = std::chrono::seconds(c.lock_timeout_seconds);
  return in;
}

kasm::InstallerOutcome run_placeholder_install(const plan::StepContext& ctx) {
  const auto& c = ctx.config;
  ctx.machine.fs.create_directories(c.state_dir, 0700);
  auto in = placeholder_install(ctx);
  // Another apt can start between wait-package-locks and now (unattended-upgrades).
  in.before_attempt = [&] {
    sys::LockWaitOptions options;
    options.timeout = std::chrono::seconds(c.lock_timeout_seconds);
    options.cancel = &ctx.cancelled;
    options.on_holder = [](const sys::LockHolder& h) { log::info("waiting for {}", h.describe()); };
    sys::wait_for_package_locks(ctx.machine.fs, options);
  };
  return kasm::run_installer(ctx.machine.processes, in);
}

std::unique_ptr<plan::Step> make_install_agent() { return std::make_unique<InstallAgent>(); }

} // namespace kb::steps
