// Swap files on real filesystems, as root: the header as util-linux and file(1) read it,
// a real swapon (undone by SwapGuard), and every failure (full disk, read-only fs,
// swapon refused) leaving nothing behind. Loop filesystems are images under a TempDir.

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/net/http_client.hpp"
#include "kasm_bootstrap/steps/ensure_swap.hpp"
#include "kasm_bootstrap/system/swap_file.hpp"
#include "kasm_bootstrap/system/swap_sizing.hpp"
#include "kasm_bootstrap/system/unique_fd.hpp"
#include "step_harness.hpp"
#include "swap_fixtures.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

using namespace kb;
using kb::test::TempDir;
namespace fs = std::filesystem;
namespace swp = kb::sys::swap;

namespace {

using swp::kMiB;

std::map<std::string, std::string> blkid(const fs::path& file) {
  const auto r = test::run_process({"blkid", "-p", "-o", "export", file.string()});
  std::map<std::string, std::string> out;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line))
    if (auto eq = line.find('='); eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  return out;
}

mode_t file_mode(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// Header read back by three independent readers: blkid, swaplabel and file(1).
void expect_swap_header(const fs::path& file, const swp::Created& created, const std::string& label) {
  auto id = blkid(file);
  CHECK(id["TYPE"] == "swap");
  CHECK(id["VERSION"] == "1");
  CHECK(id["UUID"] == created.uuid);
  if (!label.empty()) CHECK(id["LABEL"] == label);
  const auto sl = test::run_process({"swaplabel", file.string()});
  CHECK(sl.exit_code == 0);
  CHECK(sl.out.find(created.uuid) != std::string::npos);
  if (test::have_tool("file")) {
    const auto f = test::run_process({"file", "-b", file.string()});
    const auto pages = created.size_bytes / swp::page_size() - 1; // last_page
    CHECK(f.out.find("Linux swap file") != std::string::npos);
    CHECK(f.out.find("size " + std::to_string(pages) + " pages") != std::string::npos);
  }
  CHECK(fs::file_size(file) == created.size_bytes);
  CHECK(file_mode(file) == 0600);
}

using kb::test::StepHarness;

void write_root_basics(const TempDir& root, const std::string& fstab) {
  root.write("proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
  root.write("proc/meminfo", "MemTotal:        3986712 kB\nMemFree:         1000000 kB\n");
  root.write("etc/fstab", fstab);
}

const std::string kCloudImageFstab = "LABEL=cloudimg-rootfs\t/\t ext4\tdiscard,errors=remount-ro\t0 1";

} // namespace

TEST_CASE("a swap file's header reads back in blkid, swaplabel and file(1)", "[swap][root]") {
  if (!test::have_tool("blkid") || !test::have_tool("swaplabel")) {
    KB_SKIP("blkid/swaplabel not installed (util-linux)");
  }
  TempDir dir;
  const auto target = dir.path() / "swap.1";
  const auto created = swp::create_swap_file({target, "/swap.1", 64 * kMiB + 100, "kasm-test", nullptr});
  CHECK(created.size_bytes == 64 * kMiB);
  expect_swap_header(target, created, "kasm-test");
  CHECK(test::entries(dir.path()) == std::vector<std::string>{"swap.1"});
  const auto header = swp::read_swap_header(target);
  REQUIRE(header);
  CHECK(swp::to_string(header->uuid) == created.uuid);
}

TEST_CASE("the kernel accepts the file: real swapon, then swapoff and removal", "[swap][root]") {
  if (!test::running_as_root()) {
    KB_SKIP("not root: swapon needs root");
  }
  TempDir dir;
  const auto target = dir.path() / "swap.1";
  test::SwapGuard guard(target);
  const auto created = swp::create_swap_file({target, "/swap.1", 32 * kMiB, "", nullptr});
  swp::EnableResult result{};
  try {
    result = swp::enable_swap(target, "/swap.1");
  } catch (const Error& e) {
    KB_SKIP(std::string("this kernel/filesystem refuses swap files here: ") + e.what());
  }
  CHECK(result == swp::EnableResult::kEnabled);
  // The kernel counts every page but the header page.
  CHECK(test::active_swap_kib(target) ==
        static_cast<long long>((created.size_bytes / swp::page_size() - 1) * (swp::page_size() / 1024)));
  CHECK(swp::enable_swap(target, "/swap.1") == swp::EnableResult::kAlreadyEnabled);
  CHECK(swp::disable_swap(target));
  CHECK(test::active_swap_kib(target) == -1);
}

TEST_CASE("ext4 full: fallocate's ENOSPC leaves nothing behind", "[swap][root]") {
  if (!test::can_loop_mount("mkfs.ext4")) {
    KB_SKIP("no loop mounts or mkfs.ext4");
  }
  TempDir dir;
  auto mount = test::loop_filesystem(dir.path() / "ext4.img", 32, {"mkfs.ext4", "-q", "-F"}, dir.path() / "mnt");
  const auto before = test::entries(mount->path());
  try {
    swp::create_swap_file({mount->path() / "swap.1", "/var/swap.1", 64 * kMiB, "", nullptr});
    FAIL("a 64 MiB swap file fitted on a 32 MiB filesystem");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::kSwap);
    CHECK_THAT(e.what(), Catch::Contains("not enough disk space for a 64 MiB swap file at /var/swap.1") &&
                             Catch::Contains("partial file was removed"));
  }
  CHECK(test::entries(mount->path()) == before);
}

TEST_CASE("tmpfs full midway through writing zeros: nothing left behind", "[swap][root]") {
  if (!test::running_as_root()) {
    KB_SKIP("needs root");
  }
  TempDir dir;
  test::ScopedMount mount({"-t", "tmpfs", "-o", "size=8m", "tmpfs"}, dir.path() / "mnt");
  try {
    swp::create_swap_file({mount.path() / "swap.1", "/var/swap.1", 16 * kMiB, "", nullptr});
    FAIL("a 16 MiB swap file fitted in an 8 MiB tmpfs");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::kSwap);
    // Some zeros were written before the filesystem filled: this is the midway case.
    CHECK_THAT(e.what(), Catch::Contains("filled up after") && !Catch::Contains("after 0 B"));
  }
  CHECK(test::entries(mount.path()).empty());
}

TEST_CASE("a read-only filesystem is named as the reason", "[swap][root]") {
  if (!test::running_as_root()) {
    KB_SKIP("needs root");
  }
  TempDir dir;
  test::ScopedMount mount({"-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"}, dir.path() / "mnt");
  try {
    swp::create_swap_file({mount.path() / "swap.1", "/var/swap.1", 1 * kMiB, "", nullptr});
    FAIL("created a file on a read-only filesystem");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::kSwap);
    CHECK_THAT(e.what(), Catch::Contains("/var is read-only"));
  }
  CHECK(test::entries(mount.path()).empty());
}

TEST_CASE("XFS gets a written (not fallocated) file that the kernel accepts", "[swap][root]") {
  if (!test::can_loop_mount("mkfs.xfs")) {
    KB_SKIP("no loop mounts or mkfs.xfs (xfsprogs)");
  }
  TempDir dir;
  auto mount = test::loop_filesystem(dir.path() / "xfs.img", 320, {"mkfs.xfs", "-q", "-f"}, dir.path() / "mnt");
  const auto target = mount->path() / "swap.1";
  test::SwapGuard guard(target);
  CHECK(swp::filesystem_at(mount->path()).kind == swp::FsKind::kXfs);
  const auto created = swp::create_swap_file({target, "/swap.1", 24 * kMiB, "", nullptr});
  CHECK(created.filesystem == "xfs");
  CHECK(created.method == "write zeros");
  expect_swap_header(target, created, "");
  CHECK(swp::enable_swap(target, "/swap.1") == swp::EnableResult::kEnabled);
  CHECK(test::active_swap_kib(target) > 0);
}

TEST_CASE("btrfs gets a no-COW file that the kernel accepts", "[swap][root]") {
  if (!test::can_loop_mount("mkfs.btrfs")) {
    KB_SKIP("no loop mounts or mkfs.btrfs (btrfs-progs)");
  }
  TempDir dir;
  auto mount = test::loop_filesystem(dir.path() / "btrfs.img", 256, {"mkfs.btrfs", "-q", "-f"}, dir.path() / "mnt");
  const auto target = mount->path() / "swap.1";
  test::SwapGuard guard(target);
  const auto created = swp::create_swap_file({target, "/swap.1", 24 * kMiB, "", nullptr});
  CHECK(created.filesystem == "btrfs");
  expect_swap_header(target, created, "");
  {
    sys::UniqueFd fd(::open(target.c_str(), O_RDONLY | O_CLOEXEC));
    int flags = 0;
    REQUIRE(::ioctl(fd.get(), FS_IOC_GETFLAGS, &flags) == 0);
    CHECK((flags & FS_NOCOW_FL) != 0);
  }
  // A copy-on-write file would be refused with EINVAL here.
  CHECK(swp::enable_swap(target, "/swap.1") == swp::EnableResult::kEnabled);
  CHECK(test::active_swap_kib(target) > 0);
}

TEST_CASE("ensure-swap under a temp root: real swapon, one fstab line, idempotent re-run", "[swap][root][step]") {
  if (!test::running_as_root()) {
    KB_SKIP("needs root");
  }
  TempDir root;
  write_root_basics(root, kCloudImageFstab);
  const auto target = root.path() / "var/swap.1";
  test::SwapGuard guard(target);
  StepHarness h(root.path());
  h.config.swap_size = "48M";
  auto step = steps::make_ensure_swap(steps::EnsureSwapOptions{true});
  CHECK_FALSE(step->required(h.config));
  CHECK_FALSE(step->check(h.context()));

  const auto out = step->apply(h.context());
  CHECK(out.at("swap_status") == "created");
  CHECK(out.at("swap_activation") == "enabled");
  CHECK(out.at("swap_fstab") == "added");
  CHECK(out.at("swap_size_bytes") == std::to_string(48 * kMiB));
  CHECK(blkid(target)["UUID"] == out.at("swap_uuid"));
  CHECK(test::active_swap_kib(target) > 0);
  const std::string fstab_after = kCloudImageFstab + "\n/var/swap.1 none swap sw,nofail,x-kasm-bootstrap 0 0\n";
  CHECK(test::read_file(root.path() / "etc/fstab") == fstab_after);

  // Again: the file is reused (already on), fstab keeps its single line.
  const auto again = step->apply(h.context());
  CHECK(again.at("swap_status") == "reused");
  CHECK(again.at("swap_activation") == "already-enabled");
  CHECK(again.at("swap_uuid") == out.at("swap_uuid"));
  CHECK(again.at("swap_fstab") == "present");
  CHECK(test::read_file(root.path() / "etc/fstab") == fstab_after);

  // Once /proc/swaps (under the root) shows it, the step is satisfied without doing anything.
  root.write("proc/swaps", "Filename Type Size Used Priority\n/var/swap.1 file 49148 0 -2\n");
  const auto satisfied = step->check(h.context());
  REQUIRE(satisfied);
  CHECK(satisfied->at("swap_status") == "already-active");
}

TEST_CASE("ensure-swap: swapon refused (tmpfs) removes the file and leaves fstab as it was", "[swap][root][step]") {
  if (!test::running_as_root()) {
    KB_SKIP("needs root");
  }
  TempDir root;
  write_root_basics(root, kCloudImageFstab);
  test::ScopedMount var({"-t", "tmpfs", "-o", "size=64m", "tmpfs"}, root.path() / "var");
  test::SwapGuard guard(root.path() / "var/swap.1"); // in case this kernel does accept it
  StepHarness h(root.path());
  h.config.swap_size = "16M";
  auto step = steps::make_ensure_swap(steps::EnsureSwapOptions{true});
  try {
    step->apply(h.context());
    KB_SKIP("this kernel accepted a swap file on tmpfs; the refusal path is not exercised");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::kSwap);
    CHECK_THAT(e.what(), Catch::Contains("swapon /var/swap.1 failed") && Catch::Contains("swap file was removed") &&
                             Catch::Contains("the run continues without swap"));
  }
  CHECK(test::entries(var.path()).empty());
  CHECK(test::read_file(root.path() / "etc/fstab") == kCloudImageFstab);
}

TEST_CASE("ensure-swap: an explicit size larger than the disk fails before writing anything", "[swap][root][step]") {
  if (!test::running_as_root()) {
    KB_SKIP("needs root");
  }
  TempDir root;
  write_root_basics(root, kCloudImageFstab);
  test::ScopedMount var({"-t", "tmpfs", "-o", "size=32m", "tmpfs"}, root.path() / "var");
  StepHarness h(root.path());
  h.config.swap_size = "1G";
  h.config.swap_required = true;
  auto step = steps::make_ensure_swap(steps::EnsureSwapOptions{false});
  CHECK(step->required(h.config));
  try {
    step->apply(h.context());
    FAIL("1 GiB of swap on a 32 MiB filesystem");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::kSwap);
    CHECK_THAT(e.what(), Catch::Contains("not enough disk: 1 GiB swap requested at /var/swap.1 but /var has only 32 "
                                         "MiB free") &&
                             Catch::Contains("swap_required is true, so this stops the run"));
  }
  CHECK(test::entries(var.path()).empty());
  CHECK(test::read_file(root.path() / "etc/fstab") == kCloudImageFstab);
}
