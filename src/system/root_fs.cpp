#include "kasm_bootstrap/system/root_fs.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/system/unique_fd.hpp"
#include "kasm_bootstrap/util/errno_text.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <istream>
#include <system_error>

namespace kb::sys {
namespace fs = std::filesystem;
namespace {

[[noreturn]] void throw_errno(const std::string& what, const fs::path& path) {
  throw std::system_error(errno, std::generic_category(), what + " " + path.string());
}

void fsync_directory(const fs::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd) ::fsync(fd.get());
}

} // namespace

AtomicFile::AtomicFile(fs::path host_target, mode_t mode, Durability durability)
    : target_(std::move(host_target)), durability_(durability) {
  std::string pattern = (target_.parent_path() / ("." + target_.filename().string() + ".tmp.XXXXXX")).string();
  fd_ = ::mkostemp(pattern.data(), O_CLOEXEC);
  if (fd_ < 0) throw_errno("cannot create a temporary file beside", target_);
  temp_ = pattern;
  if (::fchmod(fd_, mode) != 0) {
    const int saved = errno;
    ::close(fd_);
    ::unlink(temp_.c_str());
    errno = saved;
    throw_errno("cannot set mode on", temp_);
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
}

void AtomicFile::write(std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot write", target_);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void AtomicFile::set_owner(FileOwner owner) {
  if (::fchown(fd_, owner.uid, owner.gid) != 0) throw_errno("cannot change owner of", target_);
}

void AtomicFile::commit() {
  const bool durable = durability_ == Durability::kDurable;
  if (durable && ::fsync(fd_) != 0) throw_errno("cannot fsync", target_);
  if (::close(fd_) != 0) {
    fd_ = -1;
    throw_errno("cannot close", target_);
  }
  fd_ = -1;
  if (::rename(temp_.c_str(), target_.c_str()) != 0) throw_errno("cannot rename into place", target_);
  committed_ = true;
  if (durable) fsync_directory(target_.parent_path());
}

RootFs::RootFs(const fs::path& root) : root_(fs::absolute(root).lexically_normal()) {
  // "/tmp/x/" and "/tmp/x" must compare equal for is_real_root() and joins.
  if (root_ != "/" && !root_.has_filename()) root_ = root_.parent_path();
}

fs::path RootFs::host_path(const fs::path& machine_path) const {
  if (!machine_path.is_absolute())
    throw Error(ExitCode::kInternal, "machine path must be absolute: " + machine_path.string());
  for (const auto& part : machine_path)
    if (part == "..") throw Error(ExitCode::kInternal, "machine path must not contain '..': " + machine_path.string());
  if (is_real_root()) return machine_path.lexically_normal();
  return (root_ / machine_path.relative_path()).lexically_normal();
}

std::optional<fs::path> RootFs::read_link(const fs::path& machine_path) const {
  std::error_code ec;
  auto target = fs::read_symlink(host_path(machine_path), ec);
  if (ec) return std::nullopt;
  return target;
}

bool RootFs::exists(const fs::path& machine_path) const {
  std::error_code ec;
  return fs::exists(host_path(machine_path), ec);
}

const char* file_type_name(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

std::optional<std::string> read_regular_file(const fs::path& host_path, std::size_t max_bytes, FollowSymlinks follow) {
  const std::string name = host_path.string();
  const std::string too_large = "is larger than " + std::to_string(max_bytes) + " bytes";
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below anyway.
  const int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | (follow == FollowSymlinks::kNo ? O_NOFOLLOW : 0);
  UniqueFd fd(::open(host_path.c_str(), flags));
  if (!fd) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    if (errno == ELOOP && follow == FollowSymlinks::kNo) throw InputRefused(name, "is a symbolic link; refused");
    throw InputRefused(name, "cannot open: " + util::errno_text(errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw InputRefused(name, "cannot stat: " + util::errno_text(errno));
  if (!S_ISREG(st.st_mode))
    throw InputRefused(name, std::string("is ") + file_type_name(st.st_mode) + ", not a regular file");
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes) throw InputRefused(name, too_large);
  std::string out;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw InputRefused(name, "cannot read: " + util::errno_text(errno));
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    // /proc and /sys files report size 0: the cap holds for what is read, too.
    if (out.size() > max_bytes) throw InputRefused(name, too_large);
  }
  return out;
}

std::string read_bounded(std::istream& in, std::size_t max_bytes, const std::string& what) {
  std::string out;
  char buf[8192];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    out.append(buf, static_cast<std::size_t>(in.gcount()));
    if (out.size() > max_bytes) throw InputRefused(what, "is larger than " + std::to_string(max_bytes) + " bytes");
  }
  return out;
}

std::optional<std::string> RootFs::read_file(const fs::path& machine_path, std::size_t max_bytes) const {
  return read_regular_file(host_path(machine_path), max_bytes);
}

void RootFs::write_file_atomic(const fs::path& machine_path, std::string_view content, mode_t mode,
                               std::optional<FileOwner> owner, Durability durability) const {
  const auto path = host_path(machine_path);
  AtomicFile file(path, mode, durability);
  file.write(content);
  if (owner) file.set_owner(*owner);
  file.commit();
}

void RootFs::create_directories(const fs::path& machine_path, mode_t mode) const {
  const auto path = host_path(machine_path);
  std::error_code ec;
  if (fs::is_directory(path, ec)) return;
  // Create one level at a time so each new directory gets `mode`, not the umask default.
  fs::path built;
  for (const auto& part : path) {
    built /= part;
    if (fs::is_directory(built, ec)) continue;
    if (::mkdir(built.c_str(), mode) != 0 && errno != EEXIST) throw_errno("cannot create directory", built);
  }
}

void RootFs::remove(const fs::path& machine_path) const {
  const auto path = host_path(machine_path);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw_errno("cannot remove", path);
}

std::vector<std::string> RootFs::list_directory(const fs::path& machine_path) const {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(host_path(machine_path), ec))
    names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

} // namespace kb::sys
