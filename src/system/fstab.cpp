#include "kasm_bootstrap/system/fstab.hpp"

#include <optional>
#include <vector>

namespace kb::sys::fstab {
namespace {

struct Line {
  std::size_t begin = 0; // offset of the first character
  std::size_t end = 0;   // offset of the '\n' (or of the end of the text)
};

std::vector<Line> split_lines(std::string_view text) {
  std::vector<Line> lines;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t nl = text.find('\n', pos);
    const std::size_t end = nl == std::string_view::npos ? text.size() : nl;
    lines.push_back({pos, end});
    pos = end + 1;
  }
  return lines;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i]))
      ++i;
    const std::size_t start = i;
    while (i < line.size() && !is_space(line[i]))
      ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

// Fields of an entry line; nullopt for comments and blank lines.
std::optional<std::vector<std::string_view>> entry_fields(std::string_view line) {
  auto f = fields(line);
  if (f.empty() || f[0].front() == '#') return std::nullopt;
  return f;
}

bool has_tag(const std::vector<std::string_view>& f) {
  if (f.size() < 4) return false;
  std::string_view opts = f[3];
  while (!opts.empty()) {
    const std::size_t comma = opts.find(',');
    if (opts.substr(0, comma) == kTagOption) return true;
    if (comma == std::string_view::npos) break;
    opts.remove_prefix(comma + 1);
  }
  return false;
}

} // namespace

std::string escape_field(std::string_view raw) {
  std::string out;
  for (char c : raw) {
    switch (c) {
    case ' ': out += "\\040"; break;
    case '\t': out += "\\011"; break;
    case '\r': out += "\\015"; break; // a field separator to fields() below
    case '\n': out += "\\012"; break;
    case '\\': out += "\\134"; break;
    default: out.push_back(c);
    }
  }
  return out;
}

std::string unescape_field(std::string_view field) {
  std::string out;
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && field.size() - i >= 4) {
      const char a = field[i + 1], b = field[i + 2], c = field[i + 3];
      if (a >= '0' && a <= '3' && b >= '0' && b <= '7' && c >= '0' && c <= '7') {
        out.push_back(static_cast<char>((a - '0') * 64 + (b - '0') * 8 + (c - '0')));
        i += 3;
        continue;
      }
    }
    out.push_back(field[i]);
  }
  return out;
}

std::string swap_line(std::string_view swap_path) {
  return escape_field(swap_path) + " none swap sw,nofail," + std::string(kTagOption) + " 0 0";
}

bool lists_path(std::string_view text, std::string_view swap_path) {
  for (const auto& l : split_lines(text)) {
    const auto f = entry_fields(text.substr(l.begin, l.end - l.begin));
    if (f && unescape_field((*f)[0]) == swap_path) return true;
  }
  return false;
}

Edit ensure_swap_entry(std::string_view text, std::string_view swap_path) {
  Edit edit;
  std::optional<Line> our_other_line; // our tagged line, naming a different path
  for (const auto& l : split_lines(text)) {
    const auto f = entry_fields(text.substr(l.begin, l.end - l.begin));
    if (!f) continue;
    if (unescape_field((*f)[0]) == swap_path) {
      edit.content = std::string(text);
      edit.kind = has_tag(*f) ? EditKind::kUnchanged : EditKind::kAlreadyListed;
      return edit;
    }
    if (has_tag(*f) && !our_other_line) our_other_line = l;
  }
  if (our_other_line) {
    // One tagged line at most: a changed swap_file moves our entry rather than adding one.
    edit.content = std::string(text.substr(0, our_other_line->begin)) + swap_line(swap_path) +
                   std::string(text.substr(our_other_line->end));
    edit.kind = EditKind::kReplaced;
    return edit;
  }
  edit.content = std::string(text);
  if (!edit.content.empty() && edit.content.back() != '\n') edit.content.push_back('\n');
  edit.content += swap_line(swap_path) + "\n";
  edit.kind = EditKind::kAdded;
  return edit;
}

} // namespace kb::sys::fstab
