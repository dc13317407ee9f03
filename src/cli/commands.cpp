#include "kasm_bootstrap/cli/commands.hpp"

#include "kasm_bootstrap/config/keys.hpp"
#include "kasm_bootstrap/config/serialize.hpp"
#include "kasm_bootstrap/config/validate.hpp"
#include "kasm_bootstrap/kasm/health.hpp"
#include "kasm_bootstrap/kasm/installer.hpp"
#include "kasm_bootstrap/net/address_chain.hpp"
#include "kasm_bootstrap/net/metadata_firewall.hpp"
#include "kasm_bootstrap/plan/executor.hpp"
#include "kasm_bootstrap/plan/observers.hpp"
#include "kasm_bootstrap/report/console_observer.hpp"
#include "kasm_bootstrap/report/journal_observer.hpp"
#include "kasm_bootstrap/report/metrics.hpp"
#include "kasm_bootstrap/report/sd_notify_observer.hpp"
#include "kasm_bootstrap/steps/ensure_swap.hpp"
#include "kasm_bootstrap/steps/steps.hpp"
#include "kasm_bootstrap/system/process.hpp"
#include "kasm_bootstrap/system/run_lock.hpp"
#include "kasm_bootstrap/util/json_text.hpp"
#include "kasm_bootstrap/util/log.hpp"
#include "kasm_bootstrap/util/redactor.hpp"
#include "kasm_bootstrap/version.hpp"

#include <fmt/format.h>

#include <csignal>
#include <iostream>
#include <optional>

namespace kb::cli {
namespace {

// Set from the signal handler; read by the executor and by running children.
std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "signal handler needs a lock-free flag");

extern "C" void on_stop_signal(int) { g_interrupted.store(true); }

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
}

std::string action_line(const plan::Action& a) {
  std::string s = fmt::format("{:<6} {}", a.kind, a.target);
  if (!a.detail.empty()) s += "  (" + a.detail + ")";
  return s;
}

// What a dry run says about one step: would it run, or is it already done?
std::string dry_run_status(plan::Step& step, const plan::StepContext& ctx, const plan::StateStore& state) {
  if (state.completed(step.id())) return "done-earlier";
  try {
    if (step.check(ctx)) return "already-satisfied";
  } catch (const std::exception& e) {
    log::debug("{}: check failed during dry run: {}", step.id(), e.what());
  }
  return "would-run";
}

// `path` says which plan was chosen and why (fast or full path); null for prebake.
ExitCode print_plan(plan::Plan& plan, const config::LoadedConfig& loaded, Machine& machine, const CommonOptions& o,
                    Output& output, const std::string& state_dir, const nlohmann::json& path = nullptr) {
  std::atomic<bool> never{false};
  plan::StateStore state(machine.fs, state_dir, config::fingerprint(loaded.config));
  if (auto warning = state.load()) log::info("{}", *warning);
  plan::Facts facts;
  for (plan::Step* s : plan.order())
    if (auto done = state.completed(s->id())) facts.merge(*done);
  const plan::StepContext ctx{loaded.config, machine, facts, never};

  nlohmann::json steps = nlohmann::json::array();
  bool all_implemented = true;
  for (plan::Step* s : plan.order()) {
    const auto d = s->describe(ctx);
    all_implemented = all_implemented && d.implemented;
    nlohmann::json actions = nlohmann::json::array();
    for (const auto& a : d.actions)
      actions.push_back({{"kind", a.kind}, {"target", a.target}, {"detail", a.detail}});
    const auto dep_ids = s->depends_on();
    std::vector<std::string> deps(dep_ids.begin(), dep_ids.end());
    steps.push_back({{"id", s->id()},
                     {"depends_on", deps},
                     {"summary", d.summary},
                     {"implemented", d.implemented},
                     {"status", dry_run_status(*s, ctx, state)},
                     {"actions", actions}});
  }

  if (output.json()) {
    output.document({{"command", "plan"},
                     {"dry_run", true},
                     {"version", kVersion},
                     {"root", machine.fs.root().string()},
                     {"config", config::to_json(loaded.config)},
                     {"origins", loaded.origins},
                     {"complete", all_implemented},
                     {"path", path},
                     {"steps", steps}});
    return ExitCode::kOk;
  }
  output.line(fmt::format("kasm-bootstrap {} plan (dry run: nothing is changed)", kVersion));
  output.line("root: " + machine.fs.root().string());
  if (!path.is_null())
    output.line("path: " + path["chosen"].get<std::string>() + " (" + path["reason"].get<std::string>() + ")");
  output.line("configuration:");
  const auto cfg = config::to_json(loaded.config);
  for (const auto& spec : config::keys()) {
    const std::string key(spec.name);
    const auto& origin = loaded.origins.at(key);
    if (origin == "default" && !o.verbose) continue;
    output.line(fmt::format("  {:<24} = {}  [{}]", key, util::dump_json(cfg[key]), origin));
  }
  output.line("steps:");
  int n = 0;
  for (const auto& s : steps) {
    std::string deps;
    for (const auto& d : s["depends_on"])
      deps += (deps.empty() ? "" : ", ") + d.get<std::string>();
    output.line(fmt::format("{:>2}. {:<22} [{}]{}", ++n, s["id"].get<std::string>(), s["status"].get<std::string>(),
                            deps.empty() ? "" : "  after " + deps));
    output.line("      " + s["summary"].get<std::string>());
    for (const auto& a : s["actions"])
      output.line("        " + action_line({a["kind"], a["target"], a["detail"]}));
  }
  if (!all_implemented)
    output.line("note: steps marked NOT IMPLEMENTED are placeholders in this build; a real run stops at the first one");
  return ExitCode::kOk;
}

// After a successful run: what it used, for health's timer and the firewall unit, which
// run without --config after the user-data's config.d is gone (config/loader.hpp).
void save_effective_configuration(const sys::RootFs& fs, const config::Config& config) {
  try {
    fs.create_directories(std::filesystem::path(config::kEffectiveConfigPath).parent_path());
    fs.write_file_atomic(config::kEffectiveConfigPath, util::dump_json(config::to_effective_json(config), 2) + "\n",
                         0644);
  } catch (const std::exception& e) {
    log::warn("cannot save the effective configuration for health and status: {}", e.what());
  }
}

void print_report(const plan::RunReport& report, Output& output, const std::string& command = "run") {
  if (output.json()) {
    auto doc = plan::to_json(report);
    doc["command"] = command;
    output.document(doc);
    return;
  }
  for (const auto& s : report.steps)
    output.line(
        fmt::format("  {:<22} {:<10} {:>8.0f} ms  {}", s.id, plan::outcome_name(s.outcome), s.duration_ms, s.message));
  if (report.success())
    output.line(fmt::format("kasm-bootstrap: success in {:.1f} s", report.duration_ms / 1000));
  else
    output.line(fmt::format("kasm-bootstrap: FAILED at step {} ({}): {}", report.failed_step,
                            exit_code_name(report.exit_code), report.failure_message));
}

struct Runtime {
  sys::ProcessRunner processes;
  net::HttpClient http;
};

// Shared by detect-address, swap and health: one step, described or applied.
ExitCode run_single_step(plan::Step& step, const config::LoadedConfig& loaded, Machine& machine, bool dry_run,
                         const std::string& command, Output& output) {
  plan::Facts facts;
  std::atomic<bool> never{false};
  install_stop_handlers();
  const plan::StepContext ctx{loaded.config, machine, facts, dry_run ? never : g_interrupted};
  if (dry_run) {
    const auto d = step.describe(ctx);
    if (output.json()) {
      nlohmann::json actions = nlohmann::json::array();
      for (const auto& a : d.actions)
        actions.push_back({{"kind", a.kind}, {"target", a.target}, {"detail", a.detail}});
      output.document({{"command", command},
                       {"dry_run", true},
                       {"summary", d.summary},
                       {"implemented", d.implemented},
                       {"actions", actions}});
    } else {
      output.line(d.summary);
      for (const auto& a : d.actions)
        output.line("  " + action_line(a));
    }
    return ExitCode::kOk;
  }
  plan::Outputs outputs;
  bool already = false;
  if (auto existing = step.check(ctx)) {
    outputs = *existing;
    already = true;
  } else {
    outputs = step.apply(ctx);
  }
  if (output.json()) {
    output.document({{"command", command}, {"result", "success"}, {"already_in_place", already}, {"outputs", outputs}});
  } else {
    if (already) output.line(std::string(step.id()) + ": already in place");
    for (const auto& [k, v] : outputs)
      output.line(fmt::format("{}: {}", k, v));
  }
  return ExitCode::kOk;
}

} // namespace

config::LoadedConfig load_configuration(const CommonOptions& o, std::istream& in, config::Purpose purpose,
                                        Output& output, const std::string& command) {
  sys::RootFs root(o.root);
  config::LoadInputs inputs;
  inputs.root = &root;
  inputs.config_path = o.config_path;
  inputs.stdin_stream = &in;
  inputs.environment = config::bootstrap_environment();
  inputs.flags = o.flags;
  inputs.flag_origins = o.flag_origins;
  inputs.read_effective = purpose == config::Purpose::kHealth || purpose == config::Purpose::kStatus ||
                          purpose == config::Purpose::kProtectMetadata;
  auto loaded = config::load(inputs);
  config::validate(loaded, purpose);
  if (loaded.ok()) return loaded;

  if (output.json()) {
    nlohmann::json problems = nlohmann::json::array();
    for (const auto& p : loaded.problems)
      problems.push_back({{"key", p.key}, {"origin", p.origin}, {"message", p.message}});
    output.document({{"command", command},
                     {"result", "invalid-config"},
                     {"exit_code", static_cast<int>(ExitCode::kConfig)},
                     {"problems", problems}});
  }
  for (const auto& p : loaded.problems)
    std::cerr << scrub("config error: " + p.to_string()) << '\n';
  std::cerr << loaded.problems.size() << " problem(s) in the configuration; nothing was changed\n";
  throw Error(ExitCode::kConfig, "invalid configuration");
}

void report_fatal(Output& output, const std::string& command, ExitCode code, const std::string& message) {
  if (code == ExitCode::kConfig && message == "invalid configuration") return; // already itemised
  if (output.json())
    output.document({{"command", command},
                     {"result", "error"},
                     {"exit_code", static_cast<int>(code)},
                     {"exit_class", exit_code_name(code)},
                     {"error", message}});
  std::cerr << scrub("kasm-bootstrap " + command + ": error (" + std::string(exit_code_name(code)) + "): " + message)
            << '\n';
}

namespace {

// A real run writes its state under the root first: a --root that does not exist (a typo)
// must be refused before that, or the run would create it and carry on there.
void require_root_directory(const sys::RootFs& fs) {
  std::error_code ec;
  if (!std::filesystem::is_directory(fs.root(), ec))
    throw Error(ExitCode::kUsage, "the root directory " + fs.root().string() +
                                      " does not exist or is not a directory (--root); nothing was changed");
}

// Under the run lock, whatever an earlier run left behind is ours to clean up: it was
// SIGKILLed or the machine lost power. Its installer's process group may still be running
// (a re-run must not start a second installer beside it), and its status.json says
// "running" for a run that is gone.
void clean_up_after_earlier_run(const sys::RootFs& fs, const std::string& state_dir) {
  if (auto ended = sys::end_recorded_group(fs.host_path(state_dir) / kasm::kInstallerGroupRecord))
    log::warn("{}", *ended);
  if (auto stale = plan::mark_stale_status_interrupted(fs, state_dir)) log::warn("{}", *stale);
}

} // namespace

ExitCode command_run(const CommonOptions& o, std::istream& in, Output& output) {
  auto loaded = load_configuration(o, in, config::Purpose::kRun, output, o.dry_run ? "plan" : "run");
  Runtime runtime;
  Machine machine{sys::RootFs(o.root), runtime.processes, runtime.http};
  // A baked image (docs/kasm-installer.md §9) takes the fast path; a damaged or
  // mismatched bake falls back to the full install, and says why.
  auto choice = steps::choose_bootstrap_plan(machine.fs, loaded.config);
  auto& plan = choice.plan;
  const nlohmann::json path{{"chosen", choice.path}, {"reason", choice.reason}};
  if (o.dry_run) {
    if (choice.warn) log::warn("{}", choice.reason);
    return print_plan(plan, loaded, machine, o, output, loaded.config.state_dir, path);
  }

  require_root_directory(machine.fs);
  install_stop_handlers();
  const auto& config = loaded.config;
  const auto lock = sys::RunLock::acquire(machine.fs, config.state_dir, "run", o.wait_lock, g_interrupted);
  log::add_file(machine.fs.host_path(config.state_dir) / "kasm-bootstrap.log");
  log::info("kasm-bootstrap {} run, root {}", kVersion, machine.fs.root().string());
  clean_up_after_earlier_run(machine.fs, config.state_dir);
  if (choice.warn)
    log::warn("{}", choice.reason);
  else
    log::info("{} path: {}", choice.path, choice.reason);

  plan::StateStore state(machine.fs, config.state_dir, config::fingerprint(config));
  if (auto warning = state.load()) log::warn("{}", *warning);
  if (o.force) state.forget_all();

  plan::Executor executor(config, machine, state, g_interrupted);
  plan::LogObserver log_observer;
  plan::StatusFileObserver status_observer(machine.fs, config.state_dir);
  executor.add_observer(log_observer);
  executor.add_observer(status_observer);
  report::SdNotifyObserver notify_observer;
  report::JournalObserver journal_observer;
  report::ConsoleObserver console_observer(machine.fs, config.console, config.server_id, status_observer.path());
  std::optional<report::MetricsFileObserver> metrics_observer;
  executor.add_observer(notify_observer);
  executor.add_observer(journal_observer);
  executor.add_observer(console_observer);
  if (!config.metrics_file.empty()) executor.add_observer(metrics_observer.emplace(machine.fs, config.metrics_file));
  const auto report = executor.run(plan, plan::ExecutorOptions{o.force, 4});
  if (report.success()) save_effective_configuration(machine.fs, config);
  print_report(report, output);
  return report.exit_code;
}

ExitCode command_prebake(const CommonOptions& o, std::istream& in, Output& output) {
  auto loaded = load_configuration(o, in, config::Purpose::kPrebake, output, "prebake");
  Runtime runtime;
  Machine machine{sys::RootFs(o.root), runtime.processes, runtime.http};
  auto plan = steps::build_prebake_plan();
  const auto& config = loaded.config;
  // Its own state: the image build's clean step removes it, and a booting instance's
  // `run` must not mistake prebake's steps for its own.
  const auto state_dir = config.state_dir + "/prebake";
  if (o.dry_run) return print_plan(plan, loaded, machine, o, output, state_dir);

  require_root_directory(machine.fs);
  install_stop_handlers();
  // The same lock as run: a prebake and a run on one root must not install at once.
  const auto lock = sys::RunLock::acquire(machine.fs, config.state_dir, "prebake", o.wait_lock, g_interrupted);
  machine.fs.create_directories(state_dir, 0700);
  log::add_file(machine.fs.host_path(state_dir) / "kasm-bootstrap.log");
  log::info("kasm-bootstrap {} prebake, root {}", kVersion, machine.fs.root().string());
  clean_up_after_earlier_run(machine.fs, config.state_dir);
  plan::StateStore state(machine.fs, state_dir, config::fingerprint(config));
  if (auto warning = state.load()) log::warn("{}", *warning);
  if (o.force) state.forget_all();
  plan::Executor executor(config, machine, state, g_interrupted);
  plan::LogObserver log_observer;
  executor.add_observer(log_observer);
  const auto report = executor.run(plan, plan::ExecutorOptions{o.force, 4});
  print_report(report, output, "prebake");
  return report.exit_code;
}

ExitCode command_detect_address(const CommonOptions& o, std::istream& in, Output& output) {
  auto loaded = load_configuration(o, in, config::Purpose::kDetectAddress, output, "detect-address");
  Runtime runtime;
  Machine machine{sys::RootFs(o.root), runtime.processes, runtime.http};
  install_stop_handlers();
  // The chain itself rather than the step: the command also reports what every earlier
  // source said, which the step's outputs do not carry.
  const auto found = net::detect_agent_address(loaded.config, machine, &g_interrupted);
  if (output.json()) {
    nlohmann::json attempts = nlohmann::json::array();
    for (const auto& a : found.attempts)
      attempts.push_back({{"source", a.source},
                          {"result", a.succeeded ? "address" : "skipped"},
                          {"detail", a.detail},
                          {"duration_ms", a.took.count()}});
    output.document({{"command", "detect-address"},
                     {"result", "success"},
                     {"address", found.address},
                     {"source", found.source},
                     {"cloud", net::cloud_name(found.cloud.cloud)},
                     {"cloud_evidence", found.cloud.evidence},
                     {"attempts", attempts}});
  } else {
    output.line(std::string(steps::out::kAgentAddress) + ": " + found.address);
    output.line(std::string(steps::out::kAddressSource) + ": " + found.source);
  }
  return ExitCode::kOk;
}

ExitCode command_swap(const CommonOptions& o, std::istream& in, Output& output) {
  auto loaded = load_configuration(o, in, config::Purpose::kSwap, output, "swap");
  Runtime runtime;
  Machine machine{sys::RootFs(o.root), runtime.processes, runtime.http};
  const auto options = steps::ensure_swap_options_from_environment();
  auto step = steps::make_ensure_swap(options);
  // The decision and the numbers behind it come first in every mode: an operator asking
  // for swap wants to know why it is this size (or none), not only that it worked.
  const auto decision = steps::decide_swap(loaded.config, machine.fs, options);
  plan::Facts facts;
  std::atomic<bool> never{false};
  install_stop_handlers();
  const plan::StepContext ctx{loaded.config, machine, facts, o.dry_run ? never : g_interrupted};
  if (o.dry_run) {
    const auto d = step->describe(ctx);
    if (output.json()) {
      nlohmann::json actions = nlohmann::json::array();
      for (const auto& a : d.actions)
        actions.push_back({{"kind", a.kind}, {"target", a.target}, {"detail", a.detail}});
      output.document({{"command", "swap"},
                       {"dry_run", true},
                       {"summary", d.summary},
                       {"decision", sys::swap::to_json(decision)},
                       {"actions", actions}});
    } else {
      output.line(d.summary);
      for (const auto& a : d.actions)
        output.line("  " + action_line(a));
      output.line("dry run: nothing was changed");
    }
    return ExitCode::kOk;
  }
  if (!output.json()) output.line(decision.summary());
  plan::Outputs outputs;
  bool already = false;
  if (auto existing = step->check(ctx)) {
    outputs = *existing;
    already = true;
  } else {
    outputs = step->apply(ctx);
  }
  if (output.json()) {
    output.document({{"command", "swap"},
                     {"result", "success"},
                     {"already_in_place", already},
                     {"decision", sys::swap::to_json(decision)},
                     {"outputs", outputs}});
  } else {
    if (already) output.line("ensure-swap: already in place");
    for (const auto& [k, v] : outputs)
      output.line(fmt::format("{}: {}", k, v));
  }
  return ExitCode::kOk;
}

ExitCode command_health(const CommonOptions& o, std::istream& in, Output& output) {
  auto loaded = load_configuration(o, in, config::Purpose::kHealth, output, "health");
  Runtime runtime;
  Machine machine{sys::RootFs(o.root), runtime.processes, runtime.http};
  if (o.dry_run) {
    auto step = steps::make_verify_health();
    return run_single_step(*step, loaded, machine, true, "health", output);
  }
  // One pass, no waiting: `health` answers "is it healthy now?" (run's verify-health waits).
  const auto report = kasm::run_health_checks(loaded.config, machine);
  const auto code = report.healthy() ? ExitCode::kOk : ExitCode::kHealth;
  // The health timer keeps the node_exporter textfile current between runs.
  if (!loaded.config.metrics_file.empty()) {
    try {
      report::refresh_health_metrics(machine.fs, loaded.config.metrics_file, report);
    } catch (const std::exception& e) {
      log::warn("cannot write the metrics file {}: {}", loaded.config.metrics_file, e.what());
    }
  }
  if (output.json()) {
    auto doc = kasm::to_json(report);
    doc["command"] = "health";
    doc["result"] = report.healthy() ? "healthy" : "unhealthy";
    doc["exit_code"] = static_cast<int>(code);
    output.document(doc);
  } else {
    for (const auto& c : report.checks)
      output.line(fmt::format("  {:<12} {:<4} {:>8.1f} ms  {}", c.name, c.ok ? "ok" : "FAIL", c.latency_ms, c.detail));
    output.line(report.healthy() ? "kasm-bootstrap health: healthy"
                                 : "kasm-bootstrap health: UNHEALTHY (" + report.failures() + ")");
  }
  return code;
}

namespace {

nlohmann::json family_json(const net::FamilyFirewall& f) {
  return {{"chain_exists", f.chain_exists},
          {"blocked", f.blocked()},
          {"rules", f.our_rules},
          {"added", f.added},
          {"removed_duplicates", f.removed_duplicates},
          {"detail", f.detail}};
}

} // namespace

ExitCode command_protect_metadata(const CommonOptions& o, std::istream& in, Output& output) {
  auto loaded = load_configuration(o, in, config::Purpose::kProtectMetadata, output, "protect-metadata");
  if (!loaded.config.block_container_metadata) {
    if (output.json())
      output.document({{"command", "protect-metadata"}, {"result", "disabled"}, {"exit_code", 0}});
    else
      output.line("protect-metadata: block_container_metadata is false; nothing was changed");
    return ExitCode::kOk;
  }
  // --dry-run only reads: what is there, and so what a real run would insert.
  const auto status = o.dry_run ? net::metadata_block_status() : net::apply_metadata_block();
  const bool ok = status.protected_everywhere();
  if (output.json()) {
    output.document({{"command", "protect-metadata"},
                     {"dry_run", o.dry_run},
                     {"result", ok ? "protected" : "not-protected"},
                     {"exit_code", 0},
                     {"ip", family_json(status.ipv4)},
                     {"ip6", family_json(status.ipv6)}});
  } else {
    output.line("ip:  " + status.ipv4.detail);
    output.line("ip6: " + status.ipv6.detail);
    if (o.dry_run)
      output.line(ok ? "dry run: the block is in place"
                  : status.ipv4.chain_exists
                      ? "dry run: nothing was changed; a run would insert the rule"
                      : "dry run: nothing was changed; a run would fail: " + net::missing_docker_user_chain_message());
  }
  return ExitCode::kOk;
}

} // namespace kb::cli
