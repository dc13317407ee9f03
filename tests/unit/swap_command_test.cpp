// `kasm-bootstrap swap` as an operator runs it: the real binary against a temp root whose
// /var is a tmpfs of known size, so the numbers in the decision are exact. Under a temp
// root the binary never calls swapon (the fstab line enables it on that system's boot).

#include "swap_fixtures.hpp"

#include <nlohmann/json.hpp>

#include <sys/stat.h>

using kb::test::TempDir;
namespace fs = std::filesystem;

namespace {

const std::string kCommandFstab = "# static file system information\nLABEL=cloudimg-rootfs / ext4 defaults 0 1\n";
const std::string kOurLine = "/var/swap.1 none swap sw,nofail,x-kasm-bootstrap 0 0\n";

// A root as an instance sees it: no swap on, 3.8 GiB of RAM, /var on a 64 GiB filesystem.
struct Instance {
  TempDir root;
  std::unique_ptr<kb::test::ScopedMount> var;
  explicit Instance(const std::string& var_size = "64g", const std::string& meminfo_kb = "3986712") {
    root.write("proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
    root.write("proc/meminfo", "MemTotal:       " + meminfo_kb + " kB\nMemFree:        100000 kB\n");
    root.write("etc/fstab", kCommandFstab);
    // tmpfs reserves nothing up front, so "64g" costs no memory and reports exactly 64 GiB free.
    var = std::make_unique<kb::test::ScopedMount>(
        std::vector<std::string>{"-t", "tmpfs", "-o", "size=" + var_size, "tmpfs"}, root.path() / "var");
  }
  kb::test::RunResult swap(std::vector<std::string> extra) const {
    std::vector<std::string> args{"swap", "--root", root.path().string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return kb::test::run_binary(args, {{"KB_TEST_SWAPON_UNDER_ROOT", "0"}});
  }
  std::string fstab() const { return kb::test::read_file(root.path() / "etc/fstab"); }
};

} // namespace

TEST_CASE("swap --dry-run states the decision and the numbers, and changes nothing", "[swap][cli]") {
  if (!kb::test::running_as_root()) {
    KB_SKIP("not root (tmpfs mount needed)");
  }
  Instance vm;
  const auto r = vm.swap({"--dry-run"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("RAM 3.8 GiB, free disk 64 GiB → 3.8 GiB swap at /var/swap.1 (RAM < 4 GiB"));
  CHECK_THAT(r.out, Catch::Contains("append '/var/swap.1 none swap sw,nofail,x-kasm-bootstrap 0 0'"));
  CHECK_THAT(r.out, Catch::Contains("swapon skipped: root is " + vm.root.path().string()));
  CHECK(kb::test::entries(vm.var->path()).empty());
  CHECK(vm.fstab() == kCommandFstab);

  const auto j = vm.swap({"--dry-run", "--output", "json"});
  REQUIRE(j.exit_code == 0);
  const auto doc = nlohmann::json::parse(j.out);
  const auto& d = doc.at("decision");
  CHECK(doc.at("dry_run") == true);
  CHECK(d.at("action") == "create");
  CHECK(d.at("ram_bytes") == 3986712ull * 1024);
  CHECK(d.at("free_disk_bytes") == 64ull << 30);
  CHECK(d.at("size_bytes") == 3986712ull * 1024); // already a whole number of 4 KiB pages
  CHECK(d.at("filesystem").at("type") == "tmpfs");
  CHECK(d.at("activate") == false);
  CHECK(kb::test::entries(vm.var->path()).empty());
}

TEST_CASE("swap --size picks the size; the disk cap shows in the decision", "[swap][cli]") {
  if (!kb::test::running_as_root()) {
    KB_SKIP("needs root");
  }
  Instance big_ram("8g", "67108864"); // 64 GiB RAM -> 8 GiB by the table, but a quarter of 8 GiB is 2 GiB
  auto r = big_ram.swap({"--dry-run"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("RAM 64 GiB, free disk 8 GiB → 2 GiB swap at /var/swap.1") &&
                        Catch::Contains("capped at 25% of free disk"));
  r = big_ram.swap({"--dry-run", "--size", "512M"});
  CHECK_THAT(r.out, Catch::StartsWith("RAM 64 GiB, free disk 8 GiB → 512 MiB swap at /var/swap.1 (swap_size 512M)"));
  r = big_ram.swap({"--dry-run", "--size", "off"});
  CHECK_THAT(r.out, Catch::StartsWith("swap_size is 'off': no swap"));
}

TEST_CASE("swap creates the file and one fstab line; a second run changes nothing", "[swap][cli]") {
  if (!kb::test::running_as_root()) {
    KB_SKIP("needs root");
  }
  Instance vm("256m");
  const auto r = vm.swap({"--size", "40M"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("swap_status: created") && Catch::Contains("swap_activation: skipped") &&
                        Catch::Contains("swap_fstab: added"));
  const auto file = vm.var->path() / "swap.1";
  CHECK(kb::test::entries(vm.var->path()) == std::vector<std::string>{"swap.1"});
  CHECK(fs::file_size(file) == 40ull << 20);
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(kb::test::run_process({"blkid", "-p", "-s", "TYPE", "-o", "value", file.string()}).out == "swap\n");
  CHECK(vm.fstab() == kCommandFstab + kOurLine);

  const auto again = vm.swap({"--size", "40M", "--output", "json"});
  REQUIRE(again.exit_code == 0);
  const auto doc = nlohmann::json::parse(again.out);
  CHECK(doc.at("already_in_place") == true);
  CHECK(doc.at("outputs").at("swap_status") == "present");
  CHECK(doc.at("decision").at("action") == "reuse");
  CHECK(vm.fstab() == kCommandFstab + kOurLine);
}

TEST_CASE("swap does nothing when any swap is already on", "[swap][cli]") {
  if (!kb::test::running_as_root()) {
    KB_SKIP("needs root");
  }
  Instance vm;
  vm.root.write("proc/swaps", "Filename Type Size Used Priority\n/swapfile file 2097148 0 -2\n");
  const auto r = vm.swap({"--output", "json"});
  REQUIRE(r.exit_code == 0);
  const auto doc = nlohmann::json::parse(r.out);
  CHECK(doc.at("decision").at("action") == "already-active");
  CHECK(doc.at("outputs").at("swap_status") == "already-active");
  CHECK(kb::test::entries(vm.var->path()).empty());
  CHECK(vm.fstab() == kCommandFstab);
}

TEST_CASE("swap that cannot fit fails with exit 5, a clear reason, and nothing left", "[swap][cli]") {
  if (!kb::test::running_as_root()) {
    KB_SKIP("needs root");
  }
  Instance vm("64m");
  const auto r = vm.swap({"--size", "8G"});
  CHECK(r.exit_code == 5);
  CHECK_THAT(r.err, Catch::Contains("not enough disk: 8 GiB swap requested at /var/swap.1 but /var has only 64 MiB "
                                    "free"));
  CHECK(kb::test::entries(vm.var->path()).empty());
  CHECK(vm.fstab() == kCommandFstab);

  const auto j = vm.swap({"--size", "8G", "--output", "json"});
  CHECK(j.exit_code == 5);
  CHECK(nlohmann::json::parse(j.out).at("exit_class") == "swap");
}

TEST_CASE("swap refuses to overwrite a file that is not swap", "[swap][cli]") {
  if (!kb::test::running_as_root()) {
    KB_SKIP("needs root");
  }
  Instance vm;
  vm.root.write("var/swap.1", "precious data\n");
  const auto r = vm.swap({});
  CHECK(r.exit_code == 5);
  CHECK_THAT(r.err, Catch::Contains("/var/swap.1 exists and is not a swap file; refusing to overwrite it"));
  CHECK(kb::test::read_file(vm.var->path() / "swap.1") == "precious data\n");
  CHECK(vm.fstab() == kCommandFstab);
}
