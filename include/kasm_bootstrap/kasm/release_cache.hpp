#pragma once
// Where a release lives in the cache: named after its checksum, so a changed
// release_sha256 never picks up the old file and an unchanged one never downloads twice.

#include "kasm_bootstrap/config/config.hpp"

#include <filesystem>

namespace kb::kasm {

struct ReleasePaths {
  std::filesystem::path archive;     // machine path of the verified tarball
  std::filesystem::path extract_dir; // machine path of the unpacked tree
  std::filesystem::path release_dir; // extract_dir/kasm_release, which holds install.sh
  std::filesystem::path install_script;
};

ReleasePaths release_paths(const config::Config& config);

} // namespace kb::kasm
