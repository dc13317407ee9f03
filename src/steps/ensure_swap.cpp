// ensure-swap: swap of the size cloud-init would choose, created the way its filesystem
// needs, enabled, and listed once in /etc/fstab. Any failure after the file exists
// removes it again, and fstab is only ever replaced whole (write_file_atomic), so a
// failed run leaves the machine as it found it.

#include "kasm_bootstrap/steps/ensure_swap.hpp"

#include "kasm_bootstrap/steps/steps.hpp"
#include "kasm_bootstrap/system/fstab.hpp"
#include "kasm_bootstrap/util/errno_text.hpp"
#include "kasm_bootstrap/util/log.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

namespace kb::steps {
namespace fs = std::filesystem;
namespace swp = sys::swap;
namespace {

constexpr const char* kFstabPath = "/etc/fstab";

std::string fstab_outcome(sys::fstab::EditKind kind) {
  switch (kind) {
  case sys::fstab::EditKind::kUnchanged: return "present";
  case sys::fstab::EditKind::kAlreadyListed: return "listed";
  case sys::fstab::EditKind::kAdded: return "added";
  case sys::fstab::EditKind::kReplaced: return "replaced";
  }
  return "unknown";
}

sys::fstab::Edit planned_fstab(const sys::RootFs& rootfs, const std::string& swap_file) {
  return sys::fstab::ensure_swap_entry(rootfs.read_file(kFstabPath).value_or(""), swap_file);
}

// Writes fstab only when the edit changes it, keeping its mode and owner.
std::string apply_fstab(const sys::RootFs& rootfs, const std::string& swap_file) {
  const auto edit = planned_fstab(rootfs, swap_file);
  if (edit.changed()) {
    mode_t mode = 0644;
    std::optional<sys::FileOwner> owner;
    if (const auto st = rootfs.stat(kFstabPath)) {
      mode = st->st_mode & 07777;
      owner = sys::FileOwner{st->st_uid, st->st_gid};
    } else {
      rootfs.create_directories("/etc");
    }
    rootfs.write_file_atomic(kFstabPath, edit.content, mode, owner);
  }
  return fstab_outcome(edit.kind);
}

std::string policy_suffix(const config::Config& config) {
  return config.swap_required ? "; swap_required is true, so this stops the run"
                              : "; swap is optional (swap_required is false): the run continues without swap";
}

[[noreturn]] void fail(const config::Config& config, const std::string& message) {
  throw Error(ExitCode::kSwap, message + policy_suffix(config));
}

std::string active_list(const swp::Decision& d) {
  std::string list;
  for (const auto& a : d.active)
    list += (list.empty() ? "" : ", ") + a.path;
  return list;
}

class EnsureSwapStep final : public plan::Step {
public:
  explicit EnsureSwapStep(EnsureSwapOptions options) : options_(options) {}

  std::string_view id() const override { return id::kEnsureSwap; }
  std::vector<std::string_view> depends_on() const override { return {id::kPreflight}; }
  ExitCode failure_code() const override { return ExitCode::kSwap; }
  bool required(const config::Config& config) const override { return config.swap_required; }

  plan::Description describe(const plan::StepContext& ctx) const override {
    const auto d = decide_swap(ctx.config, ctx.machine.fs, options_);
    plan::Description desc;
    desc.summary = d.summary();
    switch (d.action) {
    case swp::Action::kCreate:
      desc.actions.push_back({"check", "/proc/swaps", "no swap is active"});
      desc.actions.push_back(
          {"write", d.swap_file,
           fmt::format("{} ({} bytes), mode 0600, {} on {}, swap header v1 with a new UUID",
                       swp::human_size(d.size_bytes), d.size_bytes, d.filesystem ? d.filesystem->method : "?",
                       d.filesystem ? d.filesystem->name : "?")});
      desc.actions.push_back(swapon_action(d));
      desc.actions.push_back(fstab_action(ctx, d));
      break;
    case swp::Action::kReuse:
      desc.actions.push_back(swapon_action(d));
      desc.actions.push_back(fstab_action(ctx, d));
      break;
    case swp::Action::kAlreadyActive:
      desc.actions.push_back({"check", "/proc/swaps", "active: " + active_list(d)});
      if (d.ours_active) desc.actions.push_back(fstab_action(ctx, d));
      break;
    case swp::Action::kRefuse:
      desc.actions.push_back({"note", d.swap_file, "would fail: " + d.problem + policy_suffix(ctx.config)});
      break;
    case swp::Action::kTooSmall:
      desc.actions.push_back(
          {"note", d.swap_file, ctx.config.swap_required ? "would fail: swap_required is true" : "no swap is made"});
      break;
    case swp::Action::kDisabled: desc.actions.push_back({"note", d.swap_file, "no swap is made"}); break;
    }
    return desc;
  }

  std::optional<plan::Outputs> check(const plan::StepContext& ctx) const override {
    const auto d = decide_swap(ctx.config, ctx.machine.fs, options_);
    switch (d.action) {
    case swp::Action::kDisabled: return plan::Outputs{{swap_out::kStatus, "disabled"}};
    case swp::Action::kTooSmall:
      if (ctx.config.swap_required) return std::nullopt;
      return plan::Outputs{{swap_out::kStatus, "skipped"}, {swap_out::kNote, d.summary()}};
    case swp::Action::kAlreadyActive:
      if (!d.ours_active)
        return plan::Outputs{{swap_out::kStatus, "already-active"}, {swap_out::kNote, active_list(d)}};
      if (!fstab_lists(ctx, d)) return std::nullopt;
      return plan::Outputs{
          {swap_out::kStatus, "already-active"}, {swap_out::kFile, d.swap_file}, {swap_out::kFstab, "present"}};
    case swp::Action::kReuse:
      // Under a staging root swapon is skipped, so file + fstab line is all there is to do.
      if (d.activate || !fstab_lists(ctx, d)) return std::nullopt;
      return plan::Outputs{{swap_out::kStatus, "present"},
                           {swap_out::kFile, d.swap_file},
                           {swap_out::kSizeBytes, std::to_string(d.size_bytes)},
                           {swap_out::kUuid, d.existing_uuid.value_or("")},
                           {swap_out::kActivation, "skipped"},
                           {swap_out::kFstab, "present"}};
    case swp::Action::kCreate:
    case swp::Action::kRefuse: return std::nullopt;
    }
    return std::nullopt;
  }

  plan::Outputs apply(const plan::StepContext& ctx) override {
    const auto& config = ctx.config;
    const auto& rootfs = ctx.machine.fs;
    const auto d = decide_swap(config, rootfs, options_);
    log::info("ensure-swap: {}", d.summary());
    switch (d.action) {
    case swp::Action::kDisabled: return {{swap_out::kStatus, "disabled"}};
    case swp::Action::kTooSmall:
      if (config.swap_required) fail(config, d.summary());
      return {{swap_out::kStatus, "skipped"}, {swap_out::kNote, d.summary()}};
    case swp::Action::kAlreadyActive:
      if (!d.ours_active) return {{swap_out::kStatus, "already-active"}, {swap_out::kNote, active_list(d)}};
      return {{swap_out::kStatus, "already-active"},
              {swap_out::kFile, d.swap_file},
              {swap_out::kFstab, update_fstab(config, rootfs, d)}};
    case swp::Action::kRefuse: fail(config, d.problem);
    case swp::Action::kReuse: return reuse(config, rootfs, d);
    case swp::Action::kCreate: return create(ctx, d);
    }
    throw Error(ExitCode::kInternal, "ensure-swap: unknown decision");
  }

private:
  static plan::Action swapon_action(const swp::Decision& d) {
    return {"swapon", d.swap_file, d.activate ? "swapon(2)" : d.activation_note};
  }

  static bool fstab_lists(const plan::StepContext& ctx, const swp::Decision& d) {
    try {
      return !planned_fstab(ctx.machine.fs, d.swap_file).changed();
    } catch (const std::exception&) {
      return false;
    }
  }

  static plan::Action fstab_action(const plan::StepContext& ctx, const swp::Decision& d) {
    try {
      const auto edit = planned_fstab(ctx.machine.fs, d.swap_file);
      switch (edit.kind) {
      case sys::fstab::EditKind::kAdded:
        return {"write", kFstabPath, "append '" + sys::fstab::swap_line(d.swap_file) + "'"};
      case sys::fstab::EditKind::kReplaced:
        return {"write", kFstabPath,
                "replace the kasm-bootstrap line with '" + sys::fstab::swap_line(d.swap_file) + "'"};
      case sys::fstab::EditKind::kUnchanged:
        return {"check", kFstabPath, "already has the kasm-bootstrap line for " + d.swap_file};
      case sys::fstab::EditKind::kAlreadyListed:
        return {"check", kFstabPath, "already lists " + d.swap_file + " (line kept as it is)"};
      }
    } catch (const std::exception& e) {
      return {"note", kFstabPath, std::string("cannot be read: ") + e.what()};
    }
    return {"note", kFstabPath, ""};
  }

  // fstab is only ever replaced whole, so a failure here leaves it as it was.
  static std::string update_fstab(const config::Config& config, const sys::RootFs& rootfs, const swp::Decision& d) {
    try {
      return apply_fstab(rootfs, d.swap_file);
    } catch (const std::exception& e) {
      fail(config, fmt::format("cannot update /etc/fstab: {}; fstab is unchanged", e.what()));
    }
  }

  plan::Outputs reuse(const config::Config& config, const sys::RootFs& rootfs, const swp::Decision& d) {
    const auto host = rootfs.host_path(d.swap_file);
    std::string activation = "skipped";
    if (d.activate) {
      try {
        activation = swp::enable_swap(host, d.swap_file) == swp::EnableResult::kEnabled ? "enabled" : "already-enabled";
      } catch (const Error& e) {
        fail(config, std::string(e.what()) + " (the existing swap file was kept)");
      }
    }
    return {{swap_out::kStatus, "reused"},
            {swap_out::kFile, d.swap_file},
            {swap_out::kSizeBytes, std::to_string(d.size_bytes)},
            {swap_out::kUuid, d.existing_uuid.value_or("")},
            {swap_out::kActivation, activation},
            {swap_out::kFstab, update_fstab(config, rootfs, d)}};
  }

  plan::Outputs create(const plan::StepContext& ctx, const swp::Decision& d) {
    const auto& config = ctx.config;
    const auto& rootfs = ctx.machine.fs;
    const auto host = rootfs.host_path(d.swap_file);
    try {
      rootfs.create_directories(fs::path(d.swap_file).parent_path());
    } catch (const std::exception& e) {
      fail(config, fmt::format("cannot create the directory for {}: {}", d.swap_file, e.what()));
    }

    const auto start = std::chrono::steady_clock::now();
    swp::Created created;
    try {
      created = swp::create_swap_file({host, d.swap_file, d.size_bytes, "", &ctx.cancelled});
    } catch (const Error& e) {
      fail(config, e.what());
    }
    const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    log::info("ensure-swap: wrote {} ({}) on {} by {} in {:.0f} ms, UUID {}", d.swap_file,
              swp::human_size(created.size_bytes), created.filesystem, created.method, ms, created.uuid);

    std::string activation = "skipped";
    if (d.activate) {
      try {
        activation = swp::enable_swap(host, d.swap_file) == swp::EnableResult::kEnabled ? "enabled" : "already-enabled";
      } catch (const Error& e) {
        remove_file(rootfs, d.swap_file);
        fail(config, std::string(e.what()) + "; the swap file was removed and fstab left unchanged");
      }
    } else {
      log::info("ensure-swap: {}", d.activation_note);
    }

    std::string fstab_result;
    try {
      fstab_result = apply_fstab(rootfs, d.swap_file);
    } catch (const std::exception& e) {
      if (activation == "enabled" && !swp::disable_swap(host))
        log::warn("ensure-swap: swapoff {} failed while undoing: {}", d.swap_file, util::errno_text(errno));
      remove_file(rootfs, d.swap_file);
      fail(config, fmt::format("cannot update /etc/fstab: {}; fstab is unchanged, swap was turned off and the swap "
                               "file removed",
                               e.what()));
    }
    return {{swap_out::kStatus, "created"},
            {swap_out::kFile, d.swap_file},
            {swap_out::kSizeBytes, std::to_string(created.size_bytes)},
            {swap_out::kUuid, created.uuid},
            {swap_out::kActivation, activation},
            {swap_out::kFstab, fstab_result}};
  }

  static void remove_file(const sys::RootFs& rootfs, const std::string& path) {
    try {
      rootfs.remove(path);
    } catch (const std::exception& e) {
      log::warn("ensure-swap: could not remove {} while undoing: {}", path, e.what());
    }
  }

  EnsureSwapOptions options_;
};

} // namespace

EnsureSwapOptions ensure_swap_options_from_environment() {
  // Read while the plan is built, before any step thread exists.
  const char* value = std::getenv(kSwaponUnderRootEnv); // NOLINT(concurrency-mt-unsafe)
  return EnsureSwapOptions{value != nullptr && std::string_view(value) == "1"};
}

sys::swap::Decision decide_swap(const config::Config& config, const sys::RootFs& rootfs,
                                const EnsureSwapOptions& options) {
  return sys::swap::decide(rootfs, config.swap_size, config.swap_file,
                           sys::swap::DecideOptions{options.activate_outside_real_root});
}

std::unique_ptr<plan::Step> make_ensure_swap(const EnsureSwapOptions& options) {
  return std::make_unique<EnsureSwapStep>(options);
}

std::unique_ptr<plan::Step> make_ensure_swap() { return make_ensure_swap(ensure_swap_options_from_environment()); }

} // namespace kb::steps
