#include "kasm_bootstrap/kasm/release_extract.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/kasm/download_progress.hpp"
#include "kasm_bootstrap/system/disk_space.hpp"
#include "kasm_bootstrap/util/log.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace kb::kasm {
namespace {

namespace fs = std::filesystem;

struct ReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct WriteDeleter {
  void operator()(archive* a) const { archive_write_free(a); } // also closes
};
using ArchiveReader = std::unique_ptr<archive, ReadDeleter>;
using DiskWriter = std::unique_ptr<archive, WriteDeleter>;

// Removes the half-built tree unless the extraction got all the way to the rename.
class TempTree {
public:
  explicit TempTree(fs::path path) : path_(std::move(path)) {}
  TempTree(const TempTree&) = delete;
  TempTree& operator=(const TempTree&) = delete;
  ~TempTree() {
    if (!path_.empty()) {
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
  }
  const fs::path& path() const { return path_; }
  void release() { path_.clear(); }

private:
  fs::path path_;
};

std::vector<std::string> components(const std::string& path) {
  std::vector<std::string> parts;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    auto end = path.find('/', pos);
    if (end == std::string::npos) end = path.size();
    parts.push_back(path.substr(pos, end - pos));
    pos = end + 1;
  }
  return parts;
}

// The archive's own names must stay inside the tree. (libarchive's NODOTDOT and SYMLINKS
// checks run again on the rewritten paths; see extract_tar_gz for why its
// NOABSOLUTEPATHS check is done here instead.)
std::string name_problem(const std::string& name) {
  if (name.empty()) return "empty name";
  if (name.front() == '/') return "absolute path";
  for (const auto& c : components(name))
    if (c == "..") return "'..' in the path";
  return {};
}

// A relative symlink target must not climb above the top of the tree.
bool symlink_escapes(const std::string& entry_name, const std::string& link_target) {
  if (link_target.empty() || link_target.front() == '/') return true;
  auto parts = components(entry_name);
  parts.pop_back(); // the link itself
  long depth = 0;
  for (const auto& p : parts)
    if (!p.empty() && p != ".") ++depth;
  for (const auto& c : components(link_target)) {
    if (c.empty() || c == ".") continue;
    depth += c == ".." ? -1 : 1;
    if (depth < 0) return true;
  }
  return false;
}

} // namespace

std::uint64_t estimated_unpacked_size(const fs::path& archive_path) {
  std::error_code ec;
  const auto compressed = fs::file_size(archive_path, ec);
  if (ec || compressed < 18) return 0;
  std::ifstream in(archive_path, std::ios::binary);
  in.seekg(-4, std::ios::end);
  unsigned char b[4] = {0, 0, 0, 0};
  in.read(reinterpret_cast<char*>(b), 4);
  if (!in) return 0;
  std::uint64_t isize = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<std::uint64_t>(b[3]) << 24);
  // ISIZE is modulo 2^32; a tarball never unpacks smaller than it packs.
  while (isize < compressed)
    isize += std::uint64_t{1} << 32;
  return isize;
}

ExtractResult extract_tar_gz(const fs::path& archive_path, const fs::path& target) {
  auto fail = [&](const std::string& why) {
    throw Error(ExitCode::kRelease, "cannot extract " + archive_path.string() + ": " + why);
  };
  std::error_code ec;
  if (fs::exists(fs::symlink_status(target, ec))) fail("target " + target.string() + " already exists");
  fs::create_directories(target.parent_path(), ec);
  if (ec) fail("cannot create " + target.parent_path().string() + ": " + ec.message());

  // A symlink in the directory's own path would trip libarchive's symlink check on every
  // entry; the canonical path has none.
  const fs::path parent = fs::canonical(target.parent_path(), ec);
  if (ec) fail("cannot resolve " + target.parent_path().string() + ": " + ec.message());

  const auto need = estimated_unpacked_size(archive_path);
  const auto avail = sys::free_bytes(parent).value_or(UINT64_MAX); // unknown: let the write report it
  const std::uint64_t margin = 64u << 20;
  if (need > 0 && avail < need + margin)
    fail(fmt::format("not enough disk space in {}: about {} needed, {} free", parent.string(),
                     human_bytes(static_cast<double>(need + margin)), human_bytes(static_cast<double>(avail))));

  std::string tmpl = (parent / ("." + target.filename().string() + ".tmp.XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) fail("cannot create a directory in " + parent.string());
  TempTree tree{fs::path(tmpl)};
  const std::string prefix = tree.path().string() + "/";

  ArchiveReader reader(archive_read_new());
  DiskWriter writer(archive_write_disk_new());
  if (!reader || !writer) fail("libarchive could not allocate");
  // Only what a release is: the *_all readers drag libxml2 and ICU into a static link.
  archive_read_support_filter_gzip(reader.get());
  archive_read_support_format_tar(reader.get());
  // ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS would refuse our own absolute destination
  // prefix, and the alternative (chdir into the target) changes the working directory of
  // every thread while other steps run; absolute names are refused in name_problem().
  archive_write_disk_set_options(writer.get(), ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                                   ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM);
  if (archive_read_open_filename(reader.get(), archive_path.c_str(), 1 << 16) != ARCHIVE_OK)
    fail(archive_error_string(reader.get()));

  ExtractResult result;
  for (;;) {
    archive_entry* entry = nullptr;
    const int r = archive_read_next_header(reader.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) fail(archive_error_string(reader.get()));
    const char* raw = archive_entry_pathname(entry);
    const std::string name = raw ? raw : "";
    if (auto problem = name_problem(name); !problem.empty())
      fail(fmt::format("refusing entry '{}': {}", name, problem));

    const auto type = archive_entry_filetype(entry);
    if (type == AE_IFLNK) {
      const char* link = archive_entry_symlink(entry);
      if (symlink_escapes(name, link ? link : ""))
        fail("refusing entry '" + name + "': symlink to '" + (link ? link : "") + "' points outside the release");
    } else if (const char* hard = archive_entry_hardlink(entry)) {
      if (auto problem = name_problem(hard); !problem.empty())
        fail(fmt::format("refusing entry '{}': hard link to '{}': {}", name, hard, problem));
      archive_entry_set_hardlink(entry, (prefix + hard).c_str());
    } else if (type != AE_IFREG && type != AE_IFDIR) {
      fail("refusing entry '" + name + "': devices, fifos and sockets do not belong in a release");
    }
    // No setuid/setgid bits from a downloaded archive.
    archive_entry_set_perm(entry, archive_entry_perm(entry) & 07777 & ~static_cast<mode_t>(06000));
    archive_entry_set_pathname(entry, (prefix + name).c_str());

    if (archive_write_header(writer.get(), entry) < ARCHIVE_WARN)
      fail("entry '" + name + "': " + archive_error_string(writer.get()));
    if (archive_entry_size(entry) > 0) {
      const void* block = nullptr;
      size_t size = 0;
      la_int64_t offset = 0;
      for (;;) {
        const int rr = archive_read_data_block(reader.get(), &block, &size, &offset);
        if (rr == ARCHIVE_EOF) break;
        if (rr < ARCHIVE_WARN) fail("entry '" + name + "': " + archive_error_string(reader.get()));
        if (archive_write_data_block(writer.get(), block, size, offset) < ARCHIVE_WARN)
          fail("entry '" + name + "': " + archive_error_string(writer.get()));
        result.bytes += size;
      }
    }
    if (archive_write_finish_entry(writer.get()) < ARCHIVE_WARN)
      fail("entry '" + name + "': " + archive_error_string(writer.get()));
    ++result.entries;
  }
  if (archive_write_close(writer.get()) < ARCHIVE_WARN) fail(archive_error_string(writer.get()));
  if (result.entries == 0) fail("the archive is empty");

  ::chmod(tree.path().c_str(), 0755); // mkdtemp made it 0700
  fs::rename(tree.path(), target, ec);
  if (ec) fail("cannot move the extracted tree to " + target.string() + ": " + ec.message());
  tree.release();
  result.dir = target;
  log::info("release: extracted {} entries ({}) into {}", result.entries,
            human_bytes(static_cast<double>(result.bytes)), target.string());
  return result;
}

} // namespace kb::kasm
