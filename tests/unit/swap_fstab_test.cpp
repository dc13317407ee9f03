// /etc/fstab editing as a pure function: one tagged line, never duplicated, every other
// byte kept.

#include "kasm_bootstrap/system/fstab.hpp"
#include "test_support.hpp"

using namespace kb::sys::fstab;

namespace {
const std::string kOurs = "/var/swap.1 none swap sw,nofail,x-kasm-bootstrap 0 0";
const std::string kUbuntu = "# /etc/fstab: static file system information.\n"
                            "LABEL=cloudimg-rootfs\t/\t ext4\tdiscard,errors=remount-ro\t0 1\n"
                            "LABEL=UEFI\t/boot/efi\tvfat\tumask=0077\t0 1\n";
} // namespace

TEST_CASE("our line is appended to an existing fstab, which is kept byte for byte", "[swap][fstab]") {
  const auto edit = ensure_swap_entry(kUbuntu, "/var/swap.1");
  CHECK(edit.kind == EditKind::kAdded);
  CHECK(edit.changed());
  CHECK(edit.content == kUbuntu + kOurs + "\n");
}

TEST_CASE("a file without a final newline gets one before our line", "[swap][fstab]") {
  const std::string text = "LABEL=root / ext4 defaults 0 1";
  CHECK(ensure_swap_entry(text, "/var/swap.1").content == text + "\n" + kOurs + "\n");
  CHECK(ensure_swap_entry("", "/var/swap.1").content == kOurs + "\n");
  CHECK(ensure_swap_entry("\n\n", "/var/swap.1").content == "\n\n" + kOurs + "\n");
}

TEST_CASE("a re-run never duplicates our line", "[swap][fstab]") {
  const auto once = ensure_swap_entry(kUbuntu, "/var/swap.1");
  const auto twice = ensure_swap_entry(once.content, "/var/swap.1");
  CHECK(twice.kind == EditKind::kUnchanged);
  CHECK_FALSE(twice.changed());
  CHECK(twice.content == once.content);
}

TEST_CASE("an untagged entry for the same file (the old bash script's) is left alone", "[swap][fstab]") {
  const std::string text = kUbuntu + "/var/swap.1 swap swap defaults 0 0\n";
  const auto edit = ensure_swap_entry(text, "/var/swap.1");
  CHECK(edit.kind == EditKind::kAlreadyListed);
  CHECK(edit.content == text);
  CHECK(lists_path(text, "/var/swap.1"));
}

TEST_CASE("comments and other swap entries do not count as ours", "[swap][fstab]") {
  const std::string text = "# /var/swap.1 none swap sw,x-kasm-bootstrap 0 0\n"
                           "   # indented comment /var/swap.1\n"
                           "/dev/sdb2 none swap sw 0 0\r\n"
                           "/var/swap.10 none swap sw 0 0\n";
  CHECK_FALSE(lists_path(text, "/var/swap.1"));
  const auto edit = ensure_swap_entry(text, "/var/swap.1");
  CHECK(edit.kind == EditKind::kAdded);
  CHECK(edit.content == text + kOurs + "\n");
}

TEST_CASE("a changed swap_file moves our tagged line instead of adding a second one", "[swap][fstab]") {
  const std::string text = kUbuntu + "/swapfile none swap sw,nofail,x-kasm-bootstrap 0 0\n# trailing comment\n";
  const auto edit = ensure_swap_entry(text, "/var/swap.1");
  CHECK(edit.kind == EditKind::kReplaced);
  CHECK(edit.content == kUbuntu + kOurs + "\n# trailing comment\n");
  // The same without a final newline after our old line.
  const std::string no_nl = kUbuntu + "/swapfile none swap sw,nofail,x-kasm-bootstrap 0 0";
  CHECK(ensure_swap_entry(no_nl, "/var/swap.1").content == kUbuntu + kOurs);
}

TEST_CASE("paths with spaces are written and matched with fstab escapes", "[swap][fstab]") {
  CHECK(escape_field("/var/my swap\\x") == "/var/my\\040swap\\134x");
  CHECK(unescape_field("/var/my\\040swap\\134x") == "/var/my swap\\x");
  CHECK(unescape_field("\\9") == "\\9");
  const auto edit = ensure_swap_entry("", "/var/my swap");
  CHECK(edit.content == "/var/my\\040swap none swap sw,nofail,x-kasm-bootstrap 0 0\n");
  CHECK(ensure_swap_entry(edit.content, "/var/my swap").kind == EditKind::kUnchanged);
}
