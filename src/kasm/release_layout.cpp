#include "kasm_bootstrap/kasm/release_layout.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/util/message_text.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <system_error>

namespace kb::kasm {
namespace {

namespace fs = std::filesystem;

constexpr const char* kConfigUpTo116 = "conf/app/agent.app.config.yaml";
constexpr const char* kConfigFrom117 = "conf/app/agent/agent.app.config.yaml";

bool read_version_number(std::string_view& s, int& out) {
  const auto* end = s.data() + s.size();
  const auto [ptr, ec] = std::from_chars(s.data(), end, out);
  if (ec != std::errc() || ptr == s.data() || ptr - s.data() > 4) return false;
  s.remove_prefix(static_cast<std::size_t>(ptr - s.data()));
  return true;
}

} // namespace

std::string ReleaseLayout::describe() const {
  return "Kasm " + version.text + " (agent configuration " + agent_config + ")";
}

std::optional<KasmVersion> parse_kasm_version(std::string_view text) {
  KasmVersion v;
  v.text = std::string(text);
  std::string_view s = text;
  if (!read_version_number(s, v.major) || s.empty() || s.front() != '.') return std::nullopt;
  s.remove_prefix(1);
  if (!read_version_number(s, v.minor) || s.empty() || s.front() != '.') return std::nullopt;
  s.remove_prefix(1);
  if (!read_version_number(s, v.patch)) return std::nullopt;
  if (!s.empty() && s.front() != '-' && s.front() != '+') return std::nullopt;
  for (const char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '+' || c == '.')) return std::nullopt;
  return v;
}

std::optional<ReleaseLayout> layout_for(const KasmVersion& v) {
  if (v.major != 1 || v.minor < 15 || v.minor > 18) return std::nullopt;
  return ReleaseLayout{v, v.minor <= 16 ? kConfigUpTo116 : kConfigFrom117};
}

std::optional<std::string> version_in_install_script(std::string_view text) {
  constexpr std::string_view kKey = "KASM_VERSION=";
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    auto line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.rfind(kKey, 0) != 0) continue; // only an assignment at the start of a line
    line.remove_prefix(kKey.size());
    if (!line.empty() && (line.front() == '"' || line.front() == '\'')) {
      const char q = line.front();
      const auto close = line.find(q, 1);
      if (close == std::string_view::npos) return std::nullopt;
      return std::string(line.substr(1, close - 1));
    }
    return std::string(line.substr(0, line.find_first_of(" \t#;")));
  }
  return std::nullopt;
}

ReleaseLayout detect_release_layout(const sys::RootFs& fs, const fs::path& release_dir) {
  const auto script = release_dir / "install.sh";
  std::optional<std::string> text;
  try {
    text = fs.read_file(script, std::size_t{4} << 20);
  } catch (const std::exception& e) {
    throw Error(ExitCode::kRelease, std::string("cannot read the release's install.sh: ") + e.what());
  }
  if (!text) throw Error(ExitCode::kRelease, script.string() + " does not exist: not a Kasm release");
  const auto found = version_in_install_script(*text);
  if (!found)
    throw Error(ExitCode::kRelease,
                "no KASM_VERSION=\"x.y.z\" line in " + script.string() + ": cannot tell which Kasm release this is");
  const auto version = parse_kasm_version(*found);
  if (!version)
    throw Error(ExitCode::kRelease, "KASM_VERSION in " + script.string() + " is '" + util::quote_for_message(*found) +
                                        "', not a version like 1.16.0");
  const auto layout = layout_for(*version);
  if (!layout)
    throw Error(ExitCode::kRelease, "the release is Kasm " + version->text + " (KASM_VERSION in " + script.string() +
                                        "); this kasm-bootstrap knows the layouts of Kasm " + kSupportedKasmVersions +
                                        " only, so it does not know where that version keeps its agent configuration");
  // The tree must agree with the version: the installer copies conf/app/ from the release
  // (docs/kasm-installer.md §2, step 12), so the template is where the installed file goes.
  const bool old_layout = fs.exists(release_dir / kConfigUpTo116);
  const bool new_layout = fs.exists(release_dir / kConfigFrom117);
  if (!old_layout && !new_layout)
    throw Error(ExitCode::kRelease, fmt::format("{} has neither {} (Kasm 1.15 and 1.16) nor {} (Kasm 1.17 and "
                                                "later): not a Kasm release layout this kasm-bootstrap knows",
                                                release_dir.string(), kConfigUpTo116, kConfigFrom117));
  if ((layout->agent_config == kConfigUpTo116 ? old_layout : new_layout) == false)
    throw Error(ExitCode::kRelease,
                fmt::format("{} says Kasm {}, which keeps its agent configuration in {}, but the release has {} "
                            "instead: a release whose tree and version disagree is not installed",
                            script.string(), version->text, layout->agent_config,
                            old_layout ? kConfigUpTo116 : kConfigFrom117));
  return *layout;
}

std::optional<std::string> installed_release_dir_name(const sys::RootFs& fs) {
  const auto target = fs.read_link(kCurrentLink);
  if (!target) return std::nullopt;
  auto name = target->lexically_normal().filename();
  if (name.empty()) name = target->lexically_normal().parent_path().filename();
  if (name.empty() || name == "." || name == "..") return std::nullopt;
  return name.string();
}

std::optional<InstalledRelease> installed_release(const sys::RootFs& fs) {
  const auto dir = installed_release_dir_name(fs);
  const auto version = dir ? parse_kasm_version(*dir) : std::nullopt;
  if (!version) return std::nullopt;
  const auto layout = layout_for(*version);
  if (!layout) return std::nullopt;
  return InstalledRelease{*layout};
}

std::optional<fs::path> installed_agent_config(const sys::RootFs& fs) {
  const auto installed = installed_release(fs);
  if (!installed) return std::nullopt;
  return installed->agent_config();
}

} // namespace kb::kasm
