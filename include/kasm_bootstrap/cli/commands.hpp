#pragma once
// One function per subcommand. app.cpp parses argv into CommonOptions; these turn the
// options into a configuration, a Machine and a plan (or a single step), and print.

#include "kasm_bootstrap/cli/output.hpp"
#include "kasm_bootstrap/config/validate.hpp"
#include "kasm_bootstrap/error.hpp"

#include <iosfwd>
#include <map>
#include <optional>
#include <string>

namespace kb::cli {

struct CommonOptions {
  std::optional<std::string> config_path;
  std::string root = "/";
  std::string output = "text";
  bool verbose = false;
  bool quiet = false;
  std::string color = "auto"; // --color: auto, always, never
  bool dry_run = false;
  bool force = false;
  bool wait_lock = false;   // run, prebake: wait for another run instead of exiting 15
  bool wait = false;        // status: until the run is over
  bool long_form = false;   // status: every step, times and the error
  std::string archive_path; // collect-logs: where the tarball goes (empty = the default)
  std::string swap_size_alias;
  std::string sources_alias;
  // Storage CLI11 binds to; `flags` holds only what was actually given.
  std::map<std::string, std::string> key_values;
  std::map<std::string, std::string> rejected_secret_flags;
  std::map<std::string, std::string> secret_files;
  std::map<std::string, std::string> flags;
  std::map<std::string, std::string> flag_origins;
};

ExitCode command_run(const CommonOptions& options, std::istream& in, Output& output);
// Bakes the release into an image: install.sh -D with placeholders, then the manifest.
ExitCode command_prebake(const CommonOptions& options, std::istream& in, Output& output);
ExitCode command_detect_address(const CommonOptions& options, std::istream& in, Output& output);
ExitCode command_swap(const CommonOptions& options, std::istream& in, Output& output);
ExitCode command_health(const CommonOptions& options, std::istream& in, Output& output);
// The metadata-service block in DOCKER-USER, and nothing else (kasm-bootstrap-metadata-firewall.service).
ExitCode command_protect_metadata(const CommonOptions& options, std::istream& in, Output& output);

// What the last run (or the one in progress) says, from status.json, as `cloud-init
// status` does: exit 0 done, 1 error, 2 degraded (done, a non-required step failed),
// 16 running, 17 not started.
int command_status(const CommonOptions& options, std::istream& in, Output& output);

// One tarball for a support case: status, state, our log, cloud-init's logs and the
// units' journal, every secret masked (cli/collect_logs.cpp).
ExitCode command_collect_logs(const CommonOptions& options, std::istream& in, Output& output);

// The configuration from its layers under options.root, validated for `purpose`; every
// problem printed (stderr, and one JSON document with -o json), then Error(kConfig).
config::LoadedConfig load_configuration(const CommonOptions& options, std::istream& in, config::Purpose purpose,
                                        Output& output, const std::string& command);

// Prints an error that ends the command: stderr (text) or one JSON document (json).
void report_fatal(Output& output, const std::string& command, ExitCode code, const std::string& message);

} // namespace kb::cli
