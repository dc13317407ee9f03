#include "kasm_bootstrap/kasm/release_cache.hpp"

#include "kasm_bootstrap/kasm/release_download.hpp"
#include "kasm_bootstrap/util/sha256.hpp"

namespace kb::kasm {

ReleasePaths release_paths(const config::Config& config) {
  // Without a checksum (other commands than run) the URL stands in for it.
  const std::string digest =
      config.release_sha256.empty() ? util::sha256_hex(config.release_url) : normalize_digest(config.release_sha256);
  const std::string key = "kasm-release-" + digest.substr(0, 16);
  const std::filesystem::path cache(config.cache_dir);
  ReleasePaths p;
  p.archive = cache / (key + ".tar.gz");
  p.extract_dir = cache / key;
  p.release_dir = p.extract_dir / "kasm_release";
  p.install_script = p.release_dir / "install.sh";
  return p;
}

} // namespace kb::kasm
