#pragma once
// Editing /etc/fstab as text in, text out. Our entry carries the mount option
// "x-kasm-bootstrap" (x- options are ignored by swapon and mount, and kept by systemd),
// so a re-run recognises its own line without a separate marker comment. Every other
// line is kept byte for byte.

#include <string>
#include <string_view>

namespace kb::sys::fstab {

inline constexpr std::string_view kTagOption = "x-kasm-bootstrap";

// fstab(5) octal escapes for the characters that would split a field.
std::string escape_field(std::string_view raw);
std::string unescape_field(std::string_view field);

// "/var/swap.1 none swap sw,nofail,x-kasm-bootstrap 0 0" (no newline).
std::string swap_line(std::string_view swap_path);

enum class EditKind {
  kUnchanged,     // our line for this path is already there
  kAlreadyListed, // another (untagged) line already names this path: not duplicated
  kAdded,         // our line appended
  kReplaced,      // our tagged line named another path; rewritten in place
};

struct Edit {
  std::string content;
  EditKind kind = EditKind::kUnchanged;
  bool changed() const { return kind == EditKind::kAdded || kind == EditKind::kReplaced; }
};

// Makes sure exactly one active entry names `swap_path` as swap. Comments and blank
// lines never count as entries. A missing final newline is added before our line only.
Edit ensure_swap_entry(std::string_view fstab, std::string_view swap_path);

// True when an active (non-comment) line's first field is `swap_path`.
bool lists_path(std::string_view fstab, std::string_view swap_path);

} // namespace kb::sys::fstab
