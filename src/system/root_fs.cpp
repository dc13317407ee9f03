#include "kasm_bootstrap/system/root_fs.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/system/unique_fd.hpp"
#include "kasm_bootstrap/util/errno_text.hpp"

#include "kasm_bootstrap/util/message_text.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <istream>
#include <memory>
#include <system_error>

namespace kb::sys {
namespace fs = std::filesystem;
namespace {

[[noreturn]] void throw_errno(const std::string& what, const fs::path& path) {
  throw std::system_error(errno, std::generic_category(), what + " " + path.string());
}

// openat2(2) has no glibc wrapper in Debian 12's glibc 2.36. RESOLVE_IN_ROOT treats
// dir_fd as "/" for the whole walk: absolute symlinks and ".." stay inside it
// (docs/platform.md, "The root boundary").
int open_in_root(int root_fd, const fs::path& relative, int flags, mode_t mode = 0) {
  struct open_how how {};
  how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) != 0 ? mode : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  const std::string rel = relative.empty() ? std::string(".") : relative.string();
  for (;;) {
    const long fd = ::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how);
    // EAGAIN: a concurrent rename anywhere on the system made the kernel give up once.
    if (fd < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    return static_cast<int>(fd);
  }
}

// The machine path's components below the root, validated.
std::vector<std::string> components_of(const fs::path& machine_path) {
  if (!machine_path.is_absolute())
    throw Error(ExitCode::kInternal, "machine path must be absolute: " + machine_path.string());
  std::vector<std::string> parts;
  for (const auto& part : machine_path.relative_path()) {
    if (part == "..") throw Error(ExitCode::kInternal, "machine path must not contain '..': " + machine_path.string());
    if (part.empty() || part == ".") continue;
    parts.push_back(part.string());
  }
  return parts;
}

fs::path join(const std::vector<std::string>& parts, std::size_t count) {
  fs::path p;
  for (std::size_t i = 0; i < count; ++i)
    p /= parts[i];
  return p;
}

fs::path join_machine(const fs::path& machine_path) {
  const auto parts = components_of(machine_path);
  return join(parts, parts.size());
}

// Where an open descriptor lives on the host, from the kernel (/proc/self/fd).
fs::path path_of_fd(int fd, const fs::path& display) {
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  std::string buf(4096, '\0');
  const ssize_t n = ::readlink(link.c_str(), buf.data(), buf.size());
  if (n <= 0 || static_cast<std::size_t>(n) >= buf.size())
    throw_errno("cannot tell where it resolved (is /proc mounted?):", display);
  buf.resize(static_cast<std::size_t>(n));
  return buf;
}

bool is_symlink_at(int dir_fd, const std::string& name) {
  struct stat st {};
  return ::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

// The target of the symlink `name` in dir_fd, as stored; nullopt when it is not one.
std::optional<std::string> symlink_target_at(int dir_fd, const std::string& name) {
  std::string target(4096, '\0');
  const ssize_t n = ::readlinkat(dir_fd, name.c_str(), target.data(), target.size());
  if (n <= 0 || static_cast<std::size_t>(n) >= target.size()) return std::nullopt;
  target.resize(static_cast<std::size_t>(n));
  return target;
}

std::string dangling_reason(int dir_fd, const std::string& name) {
  return "is a symbolic link to " + util::quote_for_message(symlink_target_at(dir_fd, name).value_or(""), 200) +
         ", which resolves to nothing inside the root; refused";
}

} // namespace

AtomicFile::AtomicFile(fs::path host_target, mode_t mode, Durability durability)
    : target_(std::move(host_target)), durability_(durability) {
  const fs::path dir = target_.has_parent_path() ? target_.parent_path() : fs::path(".");
  dir_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) throw_errno("cannot open the directory of", target_);
  name_ = target_.filename().string();
  create_temp(mode);
}

AtomicFile::AtomicFile(int dir_fd, std::string name, fs::path display, mode_t mode, Durability durability)
    : name_(std::move(name)), target_(std::move(display)), durability_(durability) {
  dir_fd_ = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dir_fd_ < 0) throw_errno("cannot duplicate the directory descriptor of", target_);
  create_temp(mode);
}

void AtomicFile::create_temp(mode_t mode) {
  // O_EXCL | O_NOFOLLOW: the temporary name is never anything that was there before.
  for (int attempt = 0; attempt < 100 && fd_ < 0; ++attempt) {
    unsigned char random[6];
    if (::getrandom(random, sizeof random, 0) != static_cast<ssize_t>(sizeof random)) {
      const int saved = errno;
      ::close(dir_fd_);
      errno = saved;
      throw_errno("cannot get random bytes for a temporary file beside", target_);
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string suffix;
    for (const unsigned char byte : random) {
      suffix += kHex[byte >> 4];
      suffix += kHex[byte & 15];
    }
    temp_name_ = "." + name_ + ".tmp." + suffix;
    fd_ = ::openat(dir_fd_, temp_name_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd_ < 0 && errno != EEXIST) break;
  }
  if (fd_ < 0) {
    const int saved = errno;
    ::close(dir_fd_);
    errno = saved;
    throw_errno("cannot create a temporary file beside", target_);
  }
  if (::fchmod(fd_, mode) != 0) {
    const int saved = errno;
    ::close(fd_);
    ::unlinkat(dir_fd_, temp_name_.c_str(), 0);
    ::close(dir_fd_);
    errno = saved;
    throw_errno("cannot set mode on the temporary file beside", target_);
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlinkat(dir_fd_, temp_name_.c_str(), 0);
  ::close(dir_fd_);
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
  // renameat replaces whatever is at the name, a symlink included, and never follows it.
  if (::renameat(dir_fd_, temp_name_.c_str(), dir_fd_, name_.c_str()) != 0)
    throw_errno("cannot rename into place", target_);
  committed_ = true;
  if (durable) ::fsync(dir_fd_);
}

RootFs::RootFs(const fs::path& root) : root_(fs::absolute(root).lexically_normal()) {
  // "/tmp/x/" and "/tmp/x" must compare equal for is_real_root() and joins.
  if (root_ != "/" && !root_.has_filename()) root_ = root_.parent_path();
}

UniqueFd RootFs::open_root() const {
  UniqueFd fd(::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  // A root that does not exist holds nothing: readers see "absent" (the descriptor is
  // empty and every *at call on it fails with EBADF), writers fail below.
  if (!fd && errno != ENOENT) throw_errno("cannot open the root directory", root_);
  return fd;
}

fs::path RootFs::host_path(const fs::path& machine_path) const {
  const auto parts = components_of(machine_path);
  // On "/" the kernel's own resolution is the machine's: nothing to confine.
  if (is_real_root()) return machine_path.lexically_normal();
  const UniqueFd root = open_root();
  if (!root) return root_ / join(parts, parts.size());
  // The longest prefix that exists, resolved by the kernel inside the root; the rest is
  // appended as given (it does not exist yet, so it holds no symlink).
  for (std::size_t count = parts.size();; --count) {
    UniqueFd fd(open_in_root(root.get(), join(parts, count), O_PATH));
    if (fd) {
      if (count < parts.size() && is_symlink_at(fd.get(), parts[count]))
        throw RootEscape((root_ / join(parts, count + 1)).string() + " " + dangling_reason(fd.get(), parts[count]));
      fs::path resolved = count == 0 ? root_ : path_of_fd(fd.get(), machine_path);
      for (std::size_t i = count; i < parts.size(); ++i)
        resolved /= parts[i];
      return resolved;
    }
    if (errno != ENOENT && errno != ENOTDIR) throw_errno("cannot resolve inside the root:", root_ / join(parts, count));
    if (count == 0) throw_errno("cannot open the root directory", root_);
  }
}

RootFs::Parent RootFs::open_parent(const fs::path& machine_path) const {
  auto parts = components_of(machine_path);
  if (parts.empty()) throw Error(ExitCode::kInternal, "machine path names the root itself: " + machine_path.string());
  Parent p;
  p.name = parts.back();
  parts.pop_back();
  const UniqueFd root = open_root();
  if (!root) return p;
  p.fd = UniqueFd(open_in_root(root.get(), join(parts, parts.size()), O_PATH | O_DIRECTORY));
  return p;
}

std::optional<fs::path> RootFs::read_link(const fs::path& machine_path) const {
  const Parent parent = open_parent(machine_path);
  if (!parent.fd) return std::nullopt;
  if (auto target = symlink_target_at(parent.fd.get(), parent.name)) return fs::path(std::move(*target));
  return std::nullopt;
}

bool RootFs::exists(const fs::path& machine_path) const {
  const UniqueFd root = open_root();
  if (!root) return false;
  return static_cast<bool>(UniqueFd(open_in_root(root.get(), join_machine(machine_path), O_PATH)));
}

std::optional<struct stat> RootFs::stat(const fs::path& machine_path, FollowSymlinks follow) const {
  struct stat st {};
  if (follow == FollowSymlinks::kNo) {
    const Parent parent = open_parent(machine_path);
    if (!parent.fd || ::fstatat(parent.fd.get(), parent.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      return std::nullopt;
    return st;
  }
  const UniqueFd root = open_root();
  if (!root) return std::nullopt;
  const UniqueFd fd(open_in_root(root.get(), join_machine(machine_path), O_PATH));
  if (!fd || ::fstat(fd.get(), &st) != 0) return std::nullopt;
  return st;
}

UniqueFd RootFs::open_file(const fs::path& machine_path, int flags, mode_t mode) const {
  const Parent parent = open_parent(machine_path);
  if (!parent.fd) return UniqueFd();
  return UniqueFd(::openat(parent.fd.get(), parent.name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode));
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

namespace {

// Reads an open descriptor as a regular file of at most max_bytes.
std::string read_open_file(const UniqueFd& fd, const std::string& name, std::size_t max_bytes) {
  const std::string too_large = "is larger than " + std::to_string(max_bytes) + " bytes";
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

// O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused after the open.
constexpr int kReadFlags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;

} // namespace

std::optional<std::string> read_regular_file(const fs::path& host_path, std::size_t max_bytes, FollowSymlinks follow) {
  const std::string name = host_path.string();
  UniqueFd fd(::open(host_path.c_str(), kReadFlags | (follow == FollowSymlinks::kNo ? O_NOFOLLOW : 0)));
  if (!fd) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    if (errno == ELOOP && follow == FollowSymlinks::kNo) throw InputRefused(name, "is a symbolic link; refused");
    throw InputRefused(name, "cannot open: " + util::errno_text(errno));
  }
  return read_open_file(fd, name, max_bytes);
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
  const UniqueFd root = open_root();
  if (!root) return std::nullopt;
  const std::string name = (root_ / join_machine(machine_path)).string();
  UniqueFd fd(open_in_root(root.get(), join_machine(machine_path), kReadFlags));
  if (!fd) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    throw InputRefused(name, "cannot open: " + util::errno_text(errno));
  }
  return read_open_file(fd, name, max_bytes);
}

void RootFs::write_file_atomic(const fs::path& machine_path, std::string_view content, mode_t mode,
                               std::optional<FileOwner> owner, Durability durability) const {
  const Parent parent = open_parent(machine_path);
  const fs::path display = root_ / join_machine(machine_path);
  if (!parent.fd) throw_errno("cannot open the directory of", display);
  AtomicFile file(parent.fd.get(), parent.name, display, mode, durability);
  file.write(content);
  if (owner) file.set_owner(*owner);
  file.commit();
}

void RootFs::create_directories(const fs::path& machine_path, mode_t mode) const {
  const auto parts = components_of(machine_path);
  const UniqueFd root = open_root();
  if (!root) throw_errno("cannot open the root directory", root_);
  // One level at a time, each resolved inside the root: mkdirat in the directory the
  // previous level resolved to, so a symlinked level leads inside the root or nowhere.
  UniqueFd parent(open_in_root(root.get(), fs::path(), O_PATH | O_DIRECTORY));
  if (!parent) throw_errno("cannot open the root directory", root_);
  for (std::size_t count = 1; count <= parts.size(); ++count) {
    const fs::path rel = join(parts, count);
    const fs::path display = root_ / rel;
    UniqueFd level(open_in_root(root.get(), rel, O_PATH | O_DIRECTORY));
    if (!level && errno == ENOENT) {
      if (is_symlink_at(parent.get(), parts[count - 1]))
        throw RootEscape(display.string() + " " + dangling_reason(parent.get(), parts[count - 1]));
      if (::mkdirat(parent.get(), parts[count - 1].c_str(), mode) != 0 && errno != EEXIST)
        throw_errno("cannot create directory", display);
      level = UniqueFd(open_in_root(root.get(), rel, O_PATH | O_DIRECTORY));
    }
    if (!level) {
      if (errno == ENOTDIR)
        throw std::system_error(errno, std::generic_category(), display.string() + " is not a directory");
      throw_errno("cannot open directory", display);
    }
    parent = std::move(level);
  }
}

void RootFs::remove(const fs::path& machine_path) const {
  const Parent parent = open_parent(machine_path);
  if (!parent.fd) return; // no directory, no file
  if (::unlinkat(parent.fd.get(), parent.name.c_str(), 0) != 0 && errno != ENOENT)
    throw_errno("cannot remove", root_ / join_machine(machine_path));
}

std::vector<std::string> RootFs::list_directory(const fs::path& machine_path) const {
  std::vector<std::string> names;
  const UniqueFd root = open_root();
  if (!root) return names;
  UniqueFd fd(open_in_root(root.get(), join_machine(machine_path), O_RDONLY | O_DIRECTORY));
  if (!fd) return names;
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::fdopendir(fd.get()), &::closedir);
  if (!dir) return names;
  fd.release(); // closedir closes it
  // readdir is safe on a stream no other thread uses (glibc: per-DIR lock).
  while (const dirent* entry = ::readdir(dir.get())) { // NOLINT(concurrency-mt-unsafe)
    const std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

} // namespace kb::sys
