// fetch-release: the Kasm release tarball, downloaded once into the cache (verified by
// SHA-256 while it streams) and unpacked into a fresh directory with libarchive.

#include "kasm_bootstrap/kasm/download_progress.hpp"
#include "kasm_bootstrap/kasm/release_cache.hpp"
#include "kasm_bootstrap/kasm/release_download.hpp"
#include "kasm_bootstrap/kasm/release_extract.hpp"
#include "kasm_bootstrap/kasm/release_layout.hpp"
#include "kasm_bootstrap/steps/steps.hpp"
#include "kasm_bootstrap/util/log.hpp"

#include <fmt/format.h>

#include <sys/stat.h>

namespace kb::steps {
namespace {

namespace fs = std::filesystem;

std::string ca_bundle_for(const plan::StepContext& ctx) {
  if (!ctx.config.ca_bundle.empty()) return ctx.machine.fs.host_path(ctx.config.ca_bundle).string();
  for (const auto& candidate : net::ca_bundle_candidates())
    if (const auto st = ctx.machine.fs.stat(candidate); st && S_ISREG(st->st_mode))
      return ctx.machine.fs.host_path(candidate).string();
  return {};
}

plan::Outputs outputs_for(const kasm::ReleasePaths& p, const kasm::ReleaseLayout& layout) {
  return {{out::kReleaseArchive, p.archive.string()},
          {out::kReleaseDir, p.release_dir.string()},
          {out::kReleaseVersion, layout.version.text}};
}

class FetchRelease final : public plan::Step {
public:
  std::string_view id() const override { return id::kFetchRelease; }
  std::vector<std::string_view> depends_on() const override { return {id::kPreflight}; }
  ExitCode failure_code() const override { return ExitCode::kRelease; }

  plan::Description describe(const plan::StepContext& ctx) const override {
    const auto& c = ctx.config;
    const auto& fs = ctx.machine.fs;
    const auto p = kasm::release_paths(c);
    plan::Description d;
    d.summary = "download the Kasm release (verified by SHA-256) into the cache and unpack it";
    if (fs.exists(p.install_script)) {
      d.actions.push_back({"note", p.release_dir.string(), "already unpacked from a verified archive; nothing to do"});
      try {
        d.actions.push_back(
            {"check", p.install_script.string(), kasm::detect_release_layout(fs, p.release_dir).describe()});
      } catch (const std::exception& e) {
        d.actions.push_back({"check", p.install_script.string(), std::string("refused: ") + e.what()});
      }
      return d;
    }
    std::string cache_state;
    try {
      const auto digest = kasm::file_sha256(fs.host_path(p.archive));
      if (!digest)
        cache_state = "not cached";
      else if (c.release_sha256.empty() || *digest == kasm::normalize_digest(c.release_sha256))
        cache_state = "cache hit";
      else
        cache_state = "cached file has sha256 " + *digest + ", which does not match: would delete it";
    } catch (const std::exception& e) {
      cache_state = std::string("cache unreadable: ") + e.what();
    }
    if (cache_state == "cache hit") {
      d.actions.push_back({"check", p.archive.string(), "cache hit: sha256 matches, no download"});
    } else {
      std::string detail = cache_state + "; sha256 " + (c.release_sha256.empty() ? "(none)" : c.release_sha256);
      std::error_code ec;
      const auto partial = fs::file_size(fs.host_path(p.archive.string() + ".partial"), ec);
      if (!ec && partial > 0) detail += "; resumes " + kasm::human_bytes(static_cast<double>(partial)) + " on disk";
      const auto ca = ca_bundle_for(ctx);
      detail += "; CA bundle " + (ca.empty() ? std::string("(none found under the root: libcurl default)") : ca);
      d.actions.push_back({"fetch", c.release_url, detail});
      d.actions.push_back({"write", p.archive.string(),
                           "via " + p.archive.filename().string() + ".partial, renamed once the checksum matches"});
    }
    d.actions.push_back(
        {"write", p.extract_dir.string(), "unpack (gzip+tar; no absolute paths, '..' or writes through symlinks)"});
    d.actions.push_back({"check", p.install_script.string(),
                         std::string("KASM_VERSION names a Kasm release whose layout is known (") +
                             kasm::kSupportedKasmVersions + ")"});
    return d;
  }

  std::optional<plan::Outputs> check(const plan::StepContext& ctx) const override {
    const auto p = kasm::release_paths(ctx.config);
    // The tree is renamed into place only when complete, and only from a verified archive.
    if (!ctx.machine.fs.exists(p.install_script)) return std::nullopt;
    try {
      return outputs_for(p, kasm::detect_release_layout(ctx.machine.fs, p.release_dir));
    } catch (const std::exception&) {
      return std::nullopt; // apply says why
    }
  }

  plan::Outputs apply(const plan::StepContext& ctx) override {
    const auto& c = ctx.config;
    const auto& fs = ctx.machine.fs;
    const auto p = kasm::release_paths(c);
    fs.create_directories(c.cache_dir, 0755);

    kasm::DownloadRequest req;
    req.url = c.release_url;
    req.expected_sha256 = c.release_sha256;
    req.target = fs.host_path(p.archive);
    req.ca_bundle = ca_bundle_for(ctx);
    req.allow_insecure_http = c.allow_insecure_http;
    req.deadline = std::chrono::seconds(c.download_timeout_seconds);
    req.connections = static_cast<int>(c.download_connections);
    req.progress_bar = true;
    req.cancel = &ctx.cancelled;
    kasm::download_verified(ctx.machine.http, req);

    if (!fs.exists(p.install_script)) {
      const auto host_dir = fs.host_path(p.extract_dir);
      std::error_code ec;
      // Only a tree without install.sh can be here: it is not a Kasm release.
      if (fs::exists(host_dir, ec)) fs::remove_all(host_dir, ec);
      kasm::extract_tar_gz(req.target, host_dir);
      if (!fs.exists(p.install_script)) {
        fs::remove_all(host_dir, ec);
        throw Error(ExitCode::kRelease, c.release_url + " does not contain kasm_release/install.sh; is it a Kasm "
                                                        "release tarball?");
      }
    }
    const auto layout = kasm::detect_release_layout(fs, p.release_dir);
    log::info("{}: {}", id(), layout.describe());
    return outputs_for(p, layout);
  }
};

} // namespace

std::unique_ptr<plan::Step> make_fetch_release() { return std::make_unique<FetchRelease>(); }

} // namespace kb::steps
