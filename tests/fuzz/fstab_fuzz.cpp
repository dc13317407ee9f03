// Adding our tagged swap line to whatever /etc/fstab already holds.
// Input: the first line is the swap file path (a non-absolute one is replaced by
// /var/swap.1, since validation accepts only absolute paths), the rest is the fstab text.
// The contract (system/fstab.hpp): every other line kept byte for byte, exactly one entry
// for our path after an edit, and a second run changes nothing.

#include "fuzz_support.hpp"

#include "kasm_bootstrap/system/fstab.hpp"

#include <string>
#include <vector>

namespace {

namespace fstab = kb::sys::fstab;

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

// Active lines whose first field names `path`, counted as fstab(5) readers see them.
std::size_t entries_naming(std::string_view text, std::string_view path) {
  std::size_t n = 0;
  for (const auto line : split_lines(text))
    if (fstab::lists_path(line, path)) ++n;
  return n;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const std::string_view input = kb::fuzz::as_text(data, size);

  // Escaping is a bijection onto fields without separators.
  const std::string escaped = fstab::escape_field(input);
  FUZZ_CHECK(fstab::unescape_field(escaped) == input, "unescape(escape(x)) != x");
  FUZZ_CHECK(escaped.find_first_of(" \t\r\n") == std::string::npos, escaped);

  const auto nl = input.find('\n');
  std::string path(input.substr(0, nl));
  const std::string_view text = nl == std::string_view::npos ? std::string_view() : input.substr(nl + 1);
  if (path.empty() || path.front() != '/') path = "/var/swap.1";

  const bool listed_before = fstab::lists_path(text, path);
  const auto edit = fstab::ensure_swap_entry(text, path);
  const std::string line = fstab::swap_line(path);

  switch (edit.kind) {
  case fstab::EditKind::kUnchanged:
  case fstab::EditKind::kAlreadyListed:
    FUZZ_CHECK(listed_before, "unchanged, but the path was not listed");
    FUZZ_CHECK(edit.content == text, "unchanged, but the content differs");
    break;
  case fstab::EditKind::kAdded: {
    FUZZ_CHECK(!listed_before, "added a second entry");
    std::string expected(text);
    if (!expected.empty() && expected.back() != '\n') expected += '\n';
    expected += line + "\n";
    FUZZ_CHECK(edit.content == expected, edit.content);
    break;
  }
  case fstab::EditKind::kReplaced: {
    FUZZ_CHECK(!listed_before, "replaced although the path was listed");
    const auto before = split_lines(text);
    const auto after = split_lines(edit.content);
    FUZZ_CHECK(before.size() == after.size(), "replace changed the number of lines");
    std::size_t differing = 0;
    for (std::size_t i = 0; i < before.size(); ++i) {
      if (before[i] == after[i]) continue;
      ++differing;
      FUZZ_CHECK(after[i] == line, std::string(after[i]));
    }
    FUZZ_CHECK(differing == 1, "replace changed more than one line");
    break;
  }
  }

  FUZZ_CHECK(fstab::lists_path(edit.content, path), "our path is not listed after the edit: " + line);
  if (edit.changed()) FUZZ_CHECK(entries_naming(edit.content, path) == 1, "not exactly one entry: " + line);

  // A re-run after a reboot finds its own line and changes nothing.
  const auto again = fstab::ensure_swap_entry(edit.content, path);
  FUZZ_CHECK(again.content == edit.content, "second run changed the file");
  if (edit.changed()) FUZZ_CHECK(again.kind == fstab::EditKind::kUnchanged, "second run did not recognise our line");
  return 0;
}
