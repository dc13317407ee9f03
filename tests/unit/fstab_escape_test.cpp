// A swap path with a carriage return: fstab parsing splits fields on it, so our own line
// must escape it, or a re-run would not recognise the line and add another one.
// Found by tests/fuzz/fstab_fuzz (corpus regression-cr-in-path).

#include "test_support.hpp"

#include "kasm_bootstrap/system/fstab.hpp"

namespace fstab = kb::sys::fstab;

TEST_CASE("a swap path with a carriage return is escaped and recognised on the next run", "[swap][fstab]") {
  const std::string path = "/var/swap\r.1";
  const std::string existing = "LABEL=root / ext4 defaults 0 1\r\n";
  CHECK(fstab::swap_line(path) == "/var/swap\\015.1 none swap sw,nofail,x-kasm-bootstrap 0 0");
  CHECK(fstab::unescape_field(fstab::escape_field(path)) == path);

  const auto first = fstab::ensure_swap_entry(existing, path);
  REQUIRE(first.kind == fstab::EditKind::kAdded);
  CHECK(fstab::lists_path(first.content, path));
  const auto second = fstab::ensure_swap_entry(first.content, path);
  CHECK(second.kind == fstab::EditKind::kUnchanged);
  CHECK(second.content == first.content);
}
