#pragma once
// What the swap step will do on this machine, and the numbers behind it. Read-only, so
// the dry run, `kasm-bootstrap swap --dry-run`, check() and apply() all reach the same
// decision from the same facts: /proc/swaps and /proc/meminfo under the root dir, and
// statvfs of the swap file's directory.

#include "kasm_bootstrap/system/root_fs.hpp"
#include "kasm_bootstrap/system/swap_file.hpp"
#include "kasm_bootstrap/system/swap_sizing.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kb::sys::swap {

enum class Action {
  kDisabled,      // swap_size is off or 0
  kAlreadyActive, // some swap is on already
  kTooSmall,      // auto size came out below kMinAutoBytes (disk nearly full)
  kCreate,        // make the file, enable it, add the fstab line
  kReuse,         // a swap file with a valid header is there already: enable it, fstab line
  kRefuse,        // apply would fail: `problem` says why
};
std::string_view action_name(Action action);

struct Decision {
  Action action = Action::kRefuse;
  std::string swap_file; // machine path
  std::string requested; // the swap_size setting
  std::optional<std::uint64_t> ram_bytes;
  std::optional<std::uint64_t> free_disk_bytes;
  std::string free_disk_dir; // machine path of the directory statvfs looked at
  std::uint64_t size_bytes = 0;
  std::string rule;
  std::vector<ActiveSwap> active;
  bool ours_active = false; // /proc/swaps lists swap_file itself
  std::optional<FsInfo> filesystem;
  std::optional<std::string> existing_uuid; // kReuse
  bool activate = false;                    // swapon will be called
  std::string activation_note;              // why not, when activate is false
  std::string problem;                      // kRefuse

  // "RAM 3.8 GiB, free disk 42 GiB → 3.8 GiB swap at /var/swap.1"
  std::string summary() const;
};

struct DecideOptions {
  // swapon a file under a root other than "/": tests and benchmarks only.
  bool activate_outside_real_root = false;
};

Decision decide(const RootFs& fs, std::string_view swap_size, std::string_view swap_file,
                const DecideOptions& options = {});

nlohmann::json to_json(const Decision& decision);

} // namespace kb::sys::swap
