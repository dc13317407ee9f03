#include "kasm_bootstrap/system/swap_file.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/system/disk_space.hpp"
#include "kasm_bootstrap/system/root_fs.hpp"
#include "kasm_bootstrap/system/swap_sizing.hpp"
#include "kasm_bootstrap/system/unique_fd.hpp"
#include "kasm_bootstrap/util/errno_text.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/swap.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <system_error>

namespace kb::sys::swap {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t kZeroChunk = 1u << 20;

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

// chattr +C: btrfs only honours NOCOW on a file that holds no data yet, and a
// copy-on-write file cannot be a swap file (swapon fails with EINVAL).
void set_nocow(int fd) {
  int flags = 0;
  if (::ioctl(fd, FS_IOC_GETFLAGS, &flags) != 0) throw_errno("cannot read file attributes");
  flags |= FS_NOCOW_FL;
  if (::ioctl(fd, FS_IOC_SETFLAGS, &flags) != 0) throw_errno("cannot set the no-COW attribute");
}

bool wants_fallocate(FsKind kind) { return kind == FsKind::kExt4 || kind == FsKind::kBtrfs; }

std::string creation_failure(const std::system_error& e, const CreateRequest& r, std::uint64_t size,
                             std::uint64_t written) {
  const int code = e.code().value();
  const std::string dir = fs::path(r.display_path).parent_path().string();
  if (code == ENOSPC || code == EDQUOT)
    return fmt::format("not enough disk space for a {} swap file at {} (the filesystem of {} filled up after {}); "
                       "the partial file was removed",
                       human_size(size), r.display_path, dir, human_size(written));
  if (code == EROFS)
    return fmt::format("cannot create swap file {}: the filesystem holding {} is read-only", r.display_path, dir);
  if (code == EACCES || code == EPERM)
    return fmt::format("cannot create swap file {}: permission denied ({}); kasm-bootstrap must run as root",
                       r.display_path, e.what());
  return fmt::format("cannot create swap file {}: {}; the partial file was removed", r.display_path, e.what());
}

} // namespace

FsInfo filesystem_at(const fs::path& host_dir) {
  struct statfs st {};
  if (::statfs(host_dir.c_str(), &st) != 0) throw_errno("cannot examine the filesystem of " + host_dir.string());
  FsInfo info;
  switch (static_cast<unsigned long>(st.f_type)) {
  case EXT4_SUPER_MAGIC: // ext2 and ext3 share it; fallocate falls back to zeros there
    info = {FsKind::kExt4, "ext4", "fallocate"};
    break;
  case XFS_SUPER_MAGIC: info = {FsKind::kXfs, "xfs", "write zeros"}; break;
  case BTRFS_SUPER_MAGIC: info = {FsKind::kBtrfs, "btrfs", "no-COW attribute, then fallocate"}; break;
  case TMPFS_MAGIC: info = {FsKind::kTmpfs, "tmpfs", "write zeros"}; break;
  default: info = {FsKind::kOther, fmt::format("fs 0x{:x}", static_cast<unsigned long>(st.f_type)), "write zeros"};
  }
  return info;
}

std::uint64_t free_bytes_at(const fs::path& host_dir) {
  const auto bytes = free_bytes(host_dir);
  if (!bytes) throw_errno("cannot read free space of " + host_dir.string());
  return *bytes;
}

fs::path nearest_existing_dir(const fs::path& host_dir) {
  fs::path p = host_dir;
  std::error_code ec;
  while (!p.empty() && !fs::is_directory(p, ec) && p != p.parent_path())
    p = p.parent_path();
  return p.empty() ? fs::path("/") : p;
}

Created create_swap_file(const CreateRequest& r) {
  const std::size_t page = page_size();
  Created out;
  out.size_bytes = r.size_bytes - r.size_bytes % page;
  const auto uuid = random_uuid();
  out.uuid = to_string(uuid);
  std::string header;
  try {
    header = build_header(out.size_bytes, page, uuid, r.label);
  } catch (const std::invalid_argument& e) {
    throw Error(ExitCode::kSwap, fmt::format("cannot make swap file {}: {}", r.display_path, e.what()));
  }

  std::uint64_t written = 0;
  try {
    const auto fsinfo = filesystem_at(r.host_path.parent_path());
    out.filesystem = fsinfo.name;
    out.method = fsinfo.method;
    AtomicFile file(r.host_path, 0600);
    if (fsinfo.kind == FsKind::kBtrfs) set_nocow(file.fd());
    bool allocated = false;
    if (wants_fallocate(fsinfo.kind)) {
      if (::fallocate(file.fd(), 0, 0, static_cast<off_t>(out.size_bytes)) == 0) {
        allocated = true;
        written = out.size_bytes;
      } else if (errno != EOPNOTSUPP) {
        throw_errno("fallocate " + r.display_path);
      } else {
        out.method = "write zeros (fallocate not supported)";
      }
    }
    file.write(header);
    if (!allocated) {
      written = header.size();
      // Written, not sparse: swapon rejects files with holes, and XFS/unknown
      // filesystems may not accept unwritten (fallocated) extents for swap.
      const std::string zeros(kZeroChunk, '\0');
      while (written < out.size_bytes) {
        if (r.cancel && r.cancel->load())
          throw Error(
              ExitCode::kSwap,
              fmt::format("interrupted while writing swap file {}; the partial file was removed", r.display_path));
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kZeroChunk, out.size_bytes - written));
        file.write(std::string_view(zeros.data(), n));
        written += n;
      }
    }
    file.commit();
  } catch (const std::system_error& e) {
    throw Error(ExitCode::kSwap, creation_failure(e, r, out.size_bytes, written));
  }
  return out;
}

std::optional<HeaderInfo> read_swap_header(const fs::path& host_path) {
  UniqueFd fd(::open(host_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return std::nullopt;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  const std::size_t page = page_size();
  std::string buf(page, '\0');
  std::size_t got = 0;
  while (got < page) {
    const ssize_t n = ::pread(fd.get(), buf.data() + got, page - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    got += static_cast<std::size_t>(n);
  }
  auto info = parse_header(buf, page);
  if (!info || info->size_bytes(page) > static_cast<std::uint64_t>(st.st_size)) return std::nullopt;
  return info;
}

EnableResult enable_swap(const fs::path& host_path, const std::string& display_path) {
  if (::swapon(host_path.c_str(), 0) == 0) return EnableResult::kEnabled;
  const int err = errno;
  if (err == EBUSY) return EnableResult::kAlreadyEnabled; // only ever called on a file with our header
  std::string why;
  switch (err) {
  case EINVAL:
    why = "the kernel refused it as swap (EINVAL): its filesystem cannot hold swap files (tmpfs, overlay, NFS), "
          "or the file has holes or a bad header";
    break;
  case EPERM:
    why = "not permitted (EPERM): swapon needs CAP_SYS_ADMIN, which containers usually lack, or the kernel's "
          "limit on swap areas is reached";
    break;
  default: why = util::errno_text(err);
  }
  throw Error(ExitCode::kSwap, fmt::format("swapon {} failed: {}", display_path, why));
}

bool disable_swap(const fs::path& host_path) { return ::swapoff(host_path.c_str()) == 0; }

} // namespace kb::sys::swap
