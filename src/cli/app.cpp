#include "kasm_bootstrap/cli/app.hpp"

#include "kasm_bootstrap/cli/commands.hpp"
#include "kasm_bootstrap/config/keys.hpp"
#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/system/root_fs.hpp"
#include "kasm_bootstrap/util/closest_match.hpp"
#include "kasm_bootstrap/util/log.hpp"
#include "kasm_bootstrap/util/message_text.hpp"
#include "kasm_bootstrap/util/redactor.hpp"
#include "kasm_bootstrap/version.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <iostream>
#include <optional>
#include <sstream>

namespace kb::cli {
namespace {

// Secrets on the command line are visible to every user in the process list.
constexpr const char* kSecretFlagHint =
    " is a secret and is not accepted as a flag value (every user could read it in the process list); "
    "use {file_flag} FILE, the {env} environment variable, or the config file";

// A secret file is at most 64 KiB (a PEM key with its chain is far less), a regular file
// or '-' for stdin: a FIFO or /dev/zero must not hang or exhaust memory.
constexpr std::size_t kMaxSecretFileBytes = std::size_t{64} * 1024;

std::string read_secret_file(const std::string& path, std::istream& in, const std::string& flag) {
  try {
    if (path == "-") return sys::read_bounded(in, kMaxSecretFileBytes, "stdin");
    if (auto text = sys::read_regular_file(path, kMaxSecretFileBytes)) return *text;
    throw Error(ExitCode::kConfig, flag + " " + util::quote_for_message(path, 200) + ": file does not exist");
  } catch (const sys::InputRefused& e) {
    throw Error(ExitCode::kConfig, flag + " " + util::quote_for_message(path, 200) + ": " + e.reason());
  }
}

struct SecretFlag {
  const char* key;
  const char* file_flag;
};
constexpr SecretFlag kSecretFlags[] = {{"manager_token", "--manager-token-file"}, {"nginx_key", "--nginx-key-file"}};

// "--swap-size SIZE  auto, off, 0, ... (default: auto)": the type is CLI11's type name,
// the default comes from the key table, so --help cannot drift from the code.
std::string option_help(const config::KeySpec& spec) {
  std::string help(spec.help);
  const auto value = spec.default_text();
  if (!value.empty())
    help += " (default: " + value + ")";
  else if (spec.type() != config::KeyType::kList)
    help += " (default: none)";
  return help;
}

void add_common_options(CLI::App& sub, CommonOptions& o) {
  sub.add_option("--config,-c", o.config_path,
                 "configuration: JSON file, '-' for stdin, or a directory with one file per key")
      ->type_name("FILE|DIR|-");
  sub.add_option("--root", o.root, "treat this directory as / (every path the tool touches is under it)")
      ->type_name("DIR")
      ->capture_default_str();
  sub.add_option("--output,-o", o.output, "text or json")
      ->type_name("FORMAT")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  sub.add_flag("--verbose,-v", o.verbose, "debug messages on stderr");
  sub.add_flag("--quiet,-q", o.quiet, "only warnings and errors on stderr");
  sub.add_option("--color", o.color, "colour on stderr: auto (a terminal, and NO_COLOR unset), always, never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->type_name("WHEN")
      ->capture_default_str();
  auto* group = sub.add_option_group("Configuration keys", "each also settable as KASM_BOOTSTRAP_<KEY> or in --config");
  for (const auto& spec : config::keys()) {
    const std::string key(spec.name);
    if (spec.secret()) {
      group->add_option(spec.flag(), o.rejected_secret_flags[key])
          ->description("(not accepted: secret; " + spec.env_var() + " or the config file)")
          ->type_name(std::string(spec.value_name()));
      continue;
    }
    auto* opt = group->add_option(spec.flag(), o.key_values[key], option_help(spec));
    if (spec.type() == config::KeyType::kBool) {
      // `--swap-required` alone means true; the value is optional.
      opt->expected(0, 1)->type_name("[BOOL]");
    } else {
      opt->type_name(std::string(spec.value_name()));
    }
  }
  for (const auto& s : kSecretFlags)
    group->add_option(s.file_flag, o.secret_files[s.key], "read " + std::string(s.key) + " from FILE ('-' = stdin)")
        ->type_name("FILE");
}

// Moves what the user gave on the command line into the flag layer of the loader.
void collect_flags(CLI::App& sub, CommonOptions& o, std::istream& in) {
  for (const auto& spec : config::keys()) {
    const std::string key(spec.name);
    if (spec.secret()) {
      if (sub.count(spec.flag()) > 0) {
        const SecretFlag* sf = nullptr;
        for (const auto& s : kSecretFlags)
          if (key == s.key) sf = &s;
        std::string msg = spec.flag() + kSecretFlagHint;
        msg.replace(msg.find("{file_flag}"), 11, sf ? sf->file_flag : "a file");
        msg.replace(msg.find("{env}"), 5, spec.env_var());
        // Register the value so even this error path cannot echo it.
        redactor().add(o.rejected_secret_flags[key]);
        throw Error(ExitCode::kUsage, msg);
      }
      continue;
    }
    if (sub.count(spec.flag()) > 0) {
      std::string value = o.key_values[key];
      if (spec.type() == config::KeyType::kBool && value.empty()) value = "true";
      o.flags[key] = value;
      o.flag_origins[key] = spec.flag();
    }
  }
  for (const auto& s : kSecretFlags) {
    const std::string path = o.secret_files[s.key];
    if (sub.count(s.file_flag) == 0) continue;
    o.flags[s.key] = read_secret_file(path, in, s.file_flag);
    redactor().add(o.flags[s.key]);
    o.flag_origins[s.key] = std::string(s.file_flag) + " " + path;
  }
}

} // namespace

void build_cli(CLI::App& app, CommonOptions& opts) {
  app.description("kasm-bootstrap: turn a fresh VM into a registered Kasm Workspaces Docker Agent");
  app.name("kasm-bootstrap");
  app.set_version_flag("--version,-V", std::string("kasm-bootstrap ") + kVersion);
  app.require_subcommand(1);
  app.footer("Exit codes: 0 ok, 1 internal, 2 usage, 3 config, 4 address, 5 swap, 6 release, 7 package-lock, "
             "8 install, 9 certificate, 10 health, 11 not-implemented, 12 interrupted, 13 state, 14 docker, 15 busy.");

  auto* run = app.add_subcommand("run", "do the whole job: address, swap, release, install, certificates, health");
  auto* plan = app.add_subcommand("plan", "show what run would do and change nothing (same as run --dry-run)");
  auto* detect = app.add_subcommand("detect-address", "print the agent address and the source that gave it");
  auto* swap = app.add_subcommand("swap", "make sure swap is on, and nothing else");
  auto* health = app.add_subcommand("health", "re-check an installed agent: exit 0 healthy, 10 otherwise");
  auto* protect = app.add_subcommand("protect-metadata",
                                     "drop container traffic to the metadata service (DOCKER-USER), and nothing else");
  auto* status = app.add_subcommand(
      "status", "what the last run says (status.json): exit 0 done, 1 error, 2 degraded, 16 running, 17 not started");
  auto* prebake = app.add_subcommand(
      "prebake", "image build: install the release with install.sh -D and placeholders, for the fast path at boot");
  auto* collect = app.add_subcommand(
      "collect-logs",
      "one tarball for a support case: status, state, logs, cloud-init's logs, the journal; secrets masked");
  for (auto* sub : {run, plan, detect, swap, health, protect, status, prebake, collect})
    add_common_options(*sub, opts);
  status->add_flag("--wait,-w", opts.wait,
                   "wait until the run is over (or has started and ended), as cloud-init status --wait");
  status->add_flag("--long,-l", opts.long_form, "also times, the failed step, the error and every step's outcome");
  protect->add_flag("--dry-run,-n", opts.dry_run, "show what is in place; change nothing");
  prebake->add_flag("--dry-run,-n", opts.dry_run, "print the plan; change nothing");
  prebake->add_flag("--force", opts.force, "re-apply every step, even those an earlier prebake completed");
  run->add_flag("--dry-run,-n", opts.dry_run, "print the plan; change nothing");
  for (auto* sub : {run, prebake})
    sub->add_flag("--wait-lock", opts.wait_lock,
                  "when another run or prebake is running here, wait for it instead of exiting 15 (busy)");
  run->add_flag("--force", opts.force, "re-apply every step, even those an earlier run completed");
  swap->add_flag("--dry-run,-n", opts.dry_run, "state the decision and the numbers behind it; change nothing");
  swap->add_option("--size", opts.swap_size_alias, "auto, off, 0 or a size (same as --swap-size)")->type_name("SIZE");
  collect
      ->add_option(
          "--archive,-a", opts.archive_path,
          "write the tarball here (default: kasm-bootstrap-logs-<host>-<UTC time>.tar.gz in the current directory)")
      ->type_name("FILE");
  detect->add_option("--sources", opts.sources_alias, "comma-separated chain (same as --address-sources)")
      ->type_name("LIST");
}

namespace {

std::vector<std::string> subcommand_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const auto* sub : app.get_subcommands({}))
    if (!sub->get_name().empty()) names.push_back(sub->get_name());
  return names;
}

// The first word that is not an option names the command: a typo gets a suggestion
// instead of CLI11's "A subcommand is required".
std::optional<std::string> unknown_command_message(const CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view word(argv[i]);
    if (word.empty() || word.front() == '-') continue;
    const auto names = subcommand_names(app);
    if (std::find(names.begin(), names.end(), word) != names.end()) return std::nullopt;
    std::string msg = "unknown command '" + util::quote_for_message(word, 60) + "'";
    if (auto hint = util::closest_match(word, names); !hint.empty()) msg += "; did you mean '" + hint + "'?";
    return msg + "\nRun 'kasm-bootstrap --help' for the commands.";
  }
  return std::nullopt;
}

// An option the chosen command does not have: "did you mean" its nearest long option.
std::optional<std::string> unknown_option_message(const CLI::App& app) {
  for (const auto* sub : app.get_subcommands()) {
    for (const auto& extra : sub->remaining()) {
      if (extra.rfind("--", 0) != 0) continue;
      const auto word = extra.substr(0, extra.find('='));
      std::vector<std::string> options;
      const auto add_names = [&](const CLI::App& from) {
        for (const auto* opt : from.get_options())
          for (const auto& name : opt->get_lnames())
            options.push_back("--" + name);
      };
      add_names(*sub);
      for (const auto* group : sub->get_subcommands({})) // option groups ("Configuration keys")
        if (group->get_name().empty()) add_names(*group);
      std::string msg = sub->get_name() + ": unknown option '" + util::quote_for_message(word, 60) + "'";
      if (auto hint = util::closest_match(word, options); !hint.empty()) msg += "; did you mean '" + hint + "'?";
      return msg + "\nRun 'kasm-bootstrap " + sub->get_name() + " --help' for its options.";
    }
  }
  return std::nullopt;
}

log::ColorMode color_mode(const std::string& name) {
  if (name == "always") return log::ColorMode::kAlways;
  if (name == "never") return log::ColorMode::kNever;
  return log::ColorMode::kAuto;
}

} // namespace

int main(int argc, char** argv, std::istream& in, std::ostream& out) {
  CLI::App app;
  CommonOptions opts;
  build_cli(app, opts);
  if (auto msg = unknown_command_message(app, argc, argv)) {
    std::cerr << "kasm-bootstrap: " << *msg << '\n';
    return static_cast<int>(ExitCode::kUsage);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ExtrasError& e) {
    if (auto msg = unknown_option_message(app)) {
      std::cerr << "kasm-bootstrap " << *msg << '\n';
      return static_cast<int>(ExitCode::kUsage);
    }
    app.exit(e, out, std::cerr);
    return static_cast<int>(ExitCode::kUsage);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e, out, std::cerr);
    return code == 0 ? 0 : static_cast<int>(ExitCode::kUsage);
  }

  CLI::App* chosen = app.get_subcommands().front();
  const std::string name = chosen->get_name();
  Output output(opts.output == "json" ? Format::kJson : Format::kText, out);
  log::init(opts.quiet     ? log::Verbosity::kQuiet
            : opts.verbose ? log::Verbosity::kVerbose
                           : log::Verbosity::kNormal,
            color_mode(opts.color));

  try {
    collect_flags(*chosen, opts, in);
    if (!opts.swap_size_alias.empty()) {
      opts.flags["swap_size"] = opts.swap_size_alias;
      opts.flag_origins["swap_size"] = "--size";
    }
    if (!opts.sources_alias.empty()) {
      opts.flags["address_sources"] = opts.sources_alias;
      opts.flag_origins["address_sources"] = "--sources";
    }
    if (name == "plan") opts.dry_run = true;
    if (name == "run" || name == "plan") return static_cast<int>(command_run(opts, in, output));
    if (name == "prebake") return static_cast<int>(command_prebake(opts, in, output));
    if (name == "detect-address") return static_cast<int>(command_detect_address(opts, in, output));
    if (name == "swap") return static_cast<int>(command_swap(opts, in, output));
    if (name == "status") return command_status(opts, in, output);
    if (name == "collect-logs") return static_cast<int>(command_collect_logs(opts, in, output));
    if (name == "protect-metadata") return static_cast<int>(command_protect_metadata(opts, in, output));
    return static_cast<int>(command_health(opts, in, output));
  } catch (const Error& e) {
    report_fatal(output, name, e.code(), e.what());
    return static_cast<int>(e.code());
  } catch (const sys::RootEscape& e) {
    // Outside any step, the paths a command touches first are its state directory's.
    report_fatal(output, name, ExitCode::kState, e.what());
    return static_cast<int>(ExitCode::kState);
  } catch (const std::exception& e) {
    report_fatal(output, name, ExitCode::kInternal, e.what());
    return static_cast<int>(ExitCode::kInternal);
  }
}

} // namespace kb::cli
