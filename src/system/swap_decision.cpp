#include "kasm_bootstrap/system/swap_decision.hpp"

#include "kasm_bootstrap/config/validate.hpp"
#include "kasm_bootstrap/system/swap_header.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace kb::sys::swap {
namespace fs = std::filesystem;
namespace {

// An explicit size may use at most this share of the free space; the rest stays for
// the release download and Docker images.
constexpr double kExplicitMaxShare = 0.9;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

// Host path -> machine path, for messages about the directory statvfs looked at.
std::string machine_path_of(const RootFs& rootfs, const fs::path& host) {
  if (rootfs.is_real_root()) return host.string();
  const auto rel = host.lexically_relative(rootfs.root());
  if (rel.empty() || rel == ".") return "/";
  return "/" + rel.string();
}

} // namespace

std::string_view action_name(Action action) {
  switch (action) {
  case Action::kDisabled: return "disabled";
  case Action::kAlreadyActive: return "already-active";
  case Action::kTooSmall: return "too-small";
  case Action::kCreate: return "create";
  case Action::kReuse: return "reuse";
  case Action::kRefuse: return "refuse";
  }
  return "unknown";
}

std::string Decision::summary() const {
  std::string numbers;
  if (ram_bytes) numbers = "RAM " + human_size(*ram_bytes);
  if (free_disk_bytes)
    numbers += (numbers.empty() ? "" : ", ") + fmt::format("free disk {}", human_size(*free_disk_bytes));
  const std::string lead = numbers.empty() ? "" : numbers + " → ";
  switch (action) {
  case Action::kDisabled: return fmt::format("swap_size is '{}': no swap", requested);
  case Action::kAlreadyActive: {
    std::string list;
    for (const auto& a : active)
      list += (list.empty() ? "" : ", ") + a.path + " " + human_size(a.size_bytes);
    return fmt::format("swap already active ({}): no new swap{}", list,
                       ours_active ? "; only the fstab line is checked" : "");
  }
  case Action::kTooSmall:
    return fmt::format("{}{} is below the {} minimum: no swap ({})", lead, human_size(size_bytes),
                       human_size(kMinAutoBytes), rule);
  case Action::kCreate: return fmt::format("{}{} swap at {} ({})", lead, human_size(size_bytes), swap_file, rule);
  case Action::kReuse:
    return fmt::format("{}existing swap file {} ({}, UUID {}) is enabled and kept", lead, swap_file,
                       human_size(size_bytes), existing_uuid.value_or("?"));
  case Action::kRefuse: return fmt::format("{}no swap: {}", lead, problem);
  }
  return {};
}

namespace {

Decision decide_unchecked(const RootFs& rootfs, std::string_view swap_size, std::string_view swap_file,
                          const DecideOptions& options) {
  Decision d;
  d.swap_file = std::string(swap_file);
  d.requested = std::string(swap_size);
  const auto requested = lower(swap_size);
  if (requested == "off" || requested == "none" || requested == "false") {
    d.action = Action::kDisabled;
    return d;
  }
  std::optional<std::uint64_t> explicit_size;
  if (requested != "auto") {
    explicit_size = config::parse_size(requested);
    if (!explicit_size) {
      d.problem = fmt::format("swap_size '{}' is not auto, off, 0, or a size like 512M or 8G", swap_size);
      return d;
    }
    if (*explicit_size == 0) {
      d.action = Action::kDisabled;
      return d;
    }
  }

  // Any active swap means the image or an operator already chose; never add a second area.
  if (auto text = rootfs.read_file("/proc/swaps")) {
    d.active = parse_proc_swaps(*text);
    for (const auto& a : d.active)
      if (a.path == d.swap_file || a.path == rootfs.host_path(d.swap_file).string()) d.ours_active = true;
  }
  if (!d.active.empty()) {
    d.action = Action::kAlreadyActive;
    return d;
  }

  if (auto text = rootfs.read_file("/proc/meminfo")) d.ram_bytes = parse_meminfo_total(*text);

  const fs::path host_file = rootfs.host_path(d.swap_file);
  const fs::path dir = nearest_existing_dir(host_file.parent_path());
  d.free_disk_dir = machine_path_of(rootfs, dir);
  try {
    d.free_disk_bytes = free_bytes_at(dir);
    d.filesystem = filesystem_at(dir);
  } catch (const std::exception& e) {
    d.problem = e.what();
    return d;
  }

  d.activate = rootfs.is_real_root() || options.activate_outside_real_root;
  if (!d.activate)
    d.activation_note = fmt::format(
        "swapon skipped: root is {}, not /; the fstab line enables it when that system boots", rootfs.root().string());

  std::error_code ec;
  if (fs::exists(fs::symlink_status(host_file, ec))) {
    if (auto header = read_swap_header(host_file)) {
      d.action = Action::kReuse;
      d.size_bytes = header->size_bytes(page_size());
      d.existing_uuid = to_string(header->uuid);
      d.rule = "existing swap file";
      return d;
    }
    d.problem = fmt::format("{} exists and is not a swap file; refusing to overwrite it (remove it, or set swap_file)",
                            d.swap_file);
    return d;
  }

  const std::uint64_t page = page_size();
  if (explicit_size) {
    d.size_bytes = *explicit_size - *explicit_size % page;
    d.rule = "swap_size " + d.requested;
    const auto limit = static_cast<std::uint64_t>(static_cast<double>(*d.free_disk_bytes) * kExplicitMaxShare);
    if (d.size_bytes < kMinPages * page) {
      d.problem = fmt::format("swap_size {} is smaller than the {} a swap area needs", d.requested,
                              human_size(kMinPages * page));
      return d;
    }
    if (d.size_bytes > limit) {
      d.problem = fmt::format("not enough disk: {} swap requested at {} but {} has only {} free (at most 90% of it "
                              "is used for swap)",
                              human_size(d.size_bytes), d.swap_file, d.free_disk_dir, human_size(*d.free_disk_bytes));
      return d;
    }
    d.action = Action::kCreate;
    return d;
  }

  if (!d.ram_bytes) {
    d.problem = "swap_size is auto but /proc/meminfo has no MemTotal, so the RAM size is unknown; set swap_size "
                "to a size such as 4G";
    return d;
  }
  const auto sizing = auto_size(*d.ram_bytes, *d.free_disk_bytes, page);
  d.size_bytes = sizing.bytes;
  d.rule = sizing.rule;
  d.action = d.size_bytes < kMinAutoBytes ? Action::kTooSmall : Action::kCreate;
  return d;
}

} // namespace

Decision decide(const RootFs& rootfs, std::string_view swap_size, std::string_view swap_file,
                const DecideOptions& options) {
  try {
    return decide_unchecked(rootfs, swap_size, swap_file, options);
  } catch (const std::exception& e) {
    // A bad swap_file or an unreadable /proc file: say so as the decision, so the dry
    // run can show it and apply() fails with it.
    Decision d;
    d.swap_file = std::string(swap_file);
    d.requested = std::string(swap_size);
    d.problem = e.what();
    return d;
  }
}

nlohmann::json to_json(const Decision& d) {
  nlohmann::json j{{"action", action_name(d.action)}, {"swap_file", d.swap_file},         {"requested", d.requested},
                   {"size_bytes", d.size_bytes},      {"size", human_size(d.size_bytes)}, {"summary", d.summary()},
                   {"activate", d.activate}};
  j["ram_bytes"] = d.ram_bytes ? nlohmann::json(*d.ram_bytes) : nlohmann::json(nullptr);
  j["free_disk_bytes"] = d.free_disk_bytes ? nlohmann::json(*d.free_disk_bytes) : nlohmann::json(nullptr);
  if (!d.free_disk_dir.empty()) j["free_disk_dir"] = d.free_disk_dir;
  if (!d.rule.empty()) j["rule"] = d.rule;
  if (d.filesystem) j["filesystem"] = {{"type", d.filesystem->name}, {"method", d.filesystem->method}};
  if (d.existing_uuid) j["existing_uuid"] = *d.existing_uuid;
  if (!d.activation_note.empty()) j["activation_note"] = d.activation_note;
  if (!d.problem.empty()) j["problem"] = d.problem;
  nlohmann::json active = nlohmann::json::array();
  for (const auto& a : d.active)
    active.push_back({{"path", a.path}, {"type", a.type}, {"size_bytes", a.size_bytes}});
  j["active"] = active;
  return j;
}

} // namespace kb::sys::swap
