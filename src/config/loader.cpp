#include "kasm_bootstrap/config/loader.hpp"

#include "kasm_bootstrap/config/keys.hpp"
#include "kasm_bootstrap/system/root_fs.hpp"
#include "kasm_bootstrap/util/json_text.hpp"
#include "kasm_bootstrap/util/message_text.hpp"

#include <sys/stat.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <istream>
#include <regex>
#include <set>
#include <sstream>

extern char** environ; // NOLINT: POSIX

namespace kb::config {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr std::size_t kMaxConfigBytes = 1u << 20;
constexpr std::string_view kEnvPrefix = "KASM_BOOTSTRAP_";

struct RawValue {
  json value;
  std::string origin;
  bool from_text = false; // environment, flag or directory file: a string to coerce
};
using RawConfig = std::map<std::string, RawValue>;

std::string trim(std::string_view s) {
  const auto* ws = " \t\r\n";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return std::string(s.substr(b, s.find_last_not_of(ws) - b + 1));
}

std::string json_type_name(const json& v) {
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "true/false";
  if (v.is_number_integer() || v.is_number_unsigned()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_array()) return "a list";
  if (v.is_object()) return "an object";
  return "null";
}

// "line 3, column 7" from a byte offset into `text`.
std::string line_column(const std::string& text, std::size_t byte) {
  std::size_t line = 1, col = 1;
  for (std::size_t i = 0; i < std::min(byte, text.size()); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(col > 1 ? col - 1 : 1);
}

void unknown_key(std::vector<Problem>& problems, const std::string& key, const std::string& origin) {
  std::string msg = "unknown key";
  if (auto hint = suggest_key(key); !hint.empty()) msg += "; did you mean '" + hint + "'?";
  problems.push_back({key, origin, msg});
}

// Parses a JSON document that must be an object of known keys into `out`.
void merge_json_text(const std::string& text, const std::string& origin, RawConfig& out,
                     std::vector<Problem>& problems) {
  if (const auto deep = util::json_too_deep(text)) {
    problems.push_back({"", origin,
                        "malformed JSON at " + line_column(text, *deep) + ": nested deeper than " +
                            std::to_string(util::kMaxJsonDepth) + " levels; a configuration is one flat object"});
    return;
  }
  json doc;
  // RFC 8259 leaves duplicate names undefined and nlohmann keeps the last one silently:
  // `"manager_address": "a", ..., "manager_address": "b"` would register with "b" and no
  // word said. Each object's names are tracked while parsing; a repeat is a problem.
  std::vector<std::set<std::string>> names_in_object;
  std::vector<std::string> repeated;
  const json::parser_callback_t track_names = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      names_in_object.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!names_in_object.empty()) names_in_object.pop_back();
    } else if (event == json::parse_event_t::key && !names_in_object.empty()) {
      auto name = parsed.get<std::string>();
      if (!names_in_object.back().insert(name).second &&
          std::find(repeated.begin(), repeated.end(), name) == repeated.end())
        repeated.push_back(std::move(name));
    }
    return true;
  };
  try {
    doc = json::parse(text, track_names);
  } catch (const json::parse_error& e) {
    std::string reason = e.what();
    // nlohmann's message starts "[json.exception.parse_error.101] parse error at line..":
    // keep only the explanation after the last ": ".
    if (auto pos = reason.find("syntax error"); pos != std::string::npos) reason = reason.substr(pos);
    // It then appends "; last read: '<the bytes it choked on>'", which can be a secret (an
    // unterminated token string runs to the end of the file): dropped; line and column
    // say where to look.
    if (auto pos = reason.find("; last read:"); pos != std::string::npos) reason.resize(pos);
    problems.push_back({"", origin, "malformed JSON at " + line_column(text, e.byte) + ": " + reason});
    return;
  } catch (const json::out_of_range&) {
    // 406: a number literal too large for a double (1e999). nlohmann raises it as
    // out_of_range, not parse_error; the number itself is not repeated.
    problems.push_back({"", origin, "malformed JSON: a number is too large to represent"});
    return;
  } catch (const json::exception&) {
    problems.push_back({"", origin, "malformed JSON: the JSON parser refused it"});
    return;
  }
  if (!doc.is_object()) {
    problems.push_back({"", origin, "expected a JSON object of keys, got " + json_type_name(doc)});
    return;
  }
  for (const auto& name : repeated)
    problems.push_back({name, origin,
                        "appears more than once in this object; keep one (JSON parsers differ on "
                        "which one wins, and this one would silently take the last)"});
  for (auto& [key, value] : doc.items()) {
    // A repeated key has its problem already; which of its values is meant is unknown,
    // so neither is taken (one problem per key, not a second about the value).
    if (std::find(repeated.begin(), repeated.end(), key) != repeated.end()) continue;
    if (!find_key(key)) {
      unknown_key(problems, key, origin);
      continue;
    }
    out[key] = RawValue{value, origin, false};
  }
}

// Where a configuration directory's entry really leads: the entry itself, or a symlink's
// target when that stays inside the directory. A symlink out of it (to /etc/shadow, say)
// is refused without being opened, so nothing of the target can reach a message.
std::optional<fs::path> entry_inside(const fs::path& dir, const fs::directory_entry& entry, std::string& why) {
  std::error_code ec;
  if (!entry.is_symlink(ec)) return entry.path();
  const auto real_dir = fs::canonical(dir, ec);
  const auto target = fs::weakly_canonical(entry.path(), ec);
  if (ec) {
    why = "is a symbolic link that cannot be resolved";
    return std::nullopt;
  }
  const auto rel = target.lexically_relative(real_dir);
  if (rel.empty() || *rel.begin() == ".." || rel == ".") {
    why = "is a symbolic link to a file outside the directory; refused";
    return std::nullopt;
  }
  return target;
}

void merge_directory(const fs::path& dir, const std::string& origin, RawConfig& out, std::vector<Problem>& problems) {
  std::error_code ec;
  std::vector<fs::directory_entry> entries;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().filename().string().front() != '.') entries.push_back(entry);
  if (ec) {
    problems.push_back({"", origin, "cannot list directory: " + ec.message()});
    return;
  }
  std::sort(entries.begin(), entries.end());
  std::size_t total = 0;
  for (const auto& entry : entries) {
    const std::string key = entry.path().filename().string();
    const std::string file_origin = fmt::format("{}/{}", origin, util::quote_for_message(key));
    if (!find_key(key)) {
      unknown_key(problems, util::quote_for_message(key), file_origin);
      continue;
    }
    std::string why;
    const auto path = entry_inside(dir, entry, why);
    if (!path) {
      problems.push_back({key, file_origin, why});
      continue;
    }
    std::string content;
    try {
      // The entry is resolved already: a symlink swapped in now is refused, not followed.
      content =
          sys::read_regular_file(*path, kMaxConfigBytes - std::min(total, kMaxConfigBytes), sys::FollowSymlinks::kNo)
              .value_or("");
    } catch (const sys::InputRefused& e) {
      problems.push_back(
          {key, file_origin, e.reason() + (total > 0 ? " (1 MiB for the whole configuration directory)" : "")});
      continue;
    }
    total += content.size();
    // Heredocs end with one newline that is not part of the value.
    if (!content.empty() && content.back() == '\n') content.pop_back();
    if (!content.empty() && content.back() == '\r') content.pop_back();
    out[key] = RawValue{content, file_origin, true};
  }
}

std::optional<bool> parse_bool(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  s = trim(s);
  if (s == "true" || s == "yes" || s == "1" || s == "on") return true;
  if (s == "false" || s == "no" || s == "0" || s == "off") return false;
  return std::nullopt;
}

// Converts a raw value to the key's JSON type, or explains why it cannot.
std::optional<json> coerce(const KeySpec& spec, const RawValue& raw, std::string& why) {
  const json& v = raw.value;
  switch (spec.type()) {
  case KeyType::kString:
  case KeyType::kSecret:
    if (v.is_string()) return v;
    if (v.is_number_integer() || v.is_number_unsigned()) return json(v.dump());
    if (v.is_null()) return json("");
    why = "expected a string, got " + json_type_name(v);
    return std::nullopt;
  case KeyType::kBool:
    if (v.is_boolean()) return v;
    if (v.is_string())
      if (auto b = parse_bool(v.get<std::string>())) return json(*b);
    why = "expected true or false, got " +
          (v.is_string() ? "'" + util::quote_for_message(v.get<std::string>()) + "'" : json_type_name(v));
    return std::nullopt;
  case KeyType::kInteger:
    if (v.is_number_integer() || v.is_number_unsigned()) return v;
    if (v.is_string()) {
      const std::string s = trim(v.get<std::string>());
      std::int64_t n = 0;
      std::size_t used = 0;
      try {
        n = std::stoll(s, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (!s.empty() && used == s.size()) return json(n);
      why = "expected a whole number, got '" + util::quote_for_message(s) + "'";
      return std::nullopt;
    }
    why = "expected a whole number, got " + json_type_name(v);
    return std::nullopt;
  case KeyType::kList:
    if (v.is_array()) {
      for (const auto& item : v)
        if (!item.is_string()) {
          why = "expected a list of strings, found " + json_type_name(item);
          return std::nullopt;
        }
      return v;
    }
    if (v.is_string()) {
      const std::string s = trim(v.get<std::string>());
      if (!s.empty() && s.front() == '[') {
        RawValue parsed{util::json_too_deep(s) ? json(json::value_t::discarded) : json::parse(s, nullptr, false),
                        raw.origin, false};
        if (parsed.value.is_discarded()) {
          why = "looks like a JSON list but does not parse";
          return std::nullopt;
        }
        return coerce(spec, parsed, why);
      }
      json list = json::array();
      std::string item;
      std::istringstream in(s);
      // Comma- or newline-separated: "aws-imds,route" or one item per line in a file.
      while (std::getline(in, item, raw.from_text && s.find('\n') != std::string::npos ? '\n' : ','))
        if (auto t = trim(item); !t.empty()) list.push_back(t);
      return list;
    }
    why = "expected a list of strings, got " + json_type_name(v);
    return std::nullopt;
  }
  return std::nullopt;
}

bool is_multiline_pem_key(std::string_view key) { return key == "nginx_cert" || key == "nginx_key"; }

// Input rules (docs/providers.md "What the rendered values look like") that apply to the text
// itself, whatever the key's meaning.
std::string normalise_text(std::string_view key, std::string value) {
  if (is_multiline_pem_key(key)) {
    // Kasm may render PEM with literal "\n" (it was written for `echo -e`).
    std::string out;
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (value[i] == '\\' && i + 1 < value.size() && value[i + 1] == 'n') {
        out += '\n';
        ++i;
      } else if (value[i] != '\r') {
        out += value[i];
      }
    }
    out = trim(out);
    return out.empty() ? out : out + "\n";
  }
  value = trim(value);
  if (key == "external_fqdn" && value == "None") return {};
  return value;
}

// Environment variables, flags and files of a config directory are raw bytes; JSON text
// is already checked by the parser. Everything downstream (JSON output, the state file,
// the agent's YAML config) needs UTF-8, so reject other bytes here, naming the key.
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0Fu;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (s.size() - i < len) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    static constexpr std::uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

// Limits on the text of every value, whatever the key means: a value ends up on the
// installer's command line, in YAML and in messages, where a NUL truncates it silently and
// a 200 KB string fails much later as "Argument list too long".
constexpr std::size_t kMaxValueBytes = 4096;
constexpr std::size_t kMaxPemBytes = std::size_t{64} * 1024; // a certificate chain
constexpr std::size_t kMaxListItems = 32;

std::optional<std::string> text_problem(std::string_view key, const std::string& text, bool secret) {
  const bool pem = is_multiline_pem_key(key);
  const std::size_t cap = pem ? kMaxPemBytes : kMaxValueBytes;
  if (text.size() > cap)
    return "is " + std::to_string(text.size()) + " bytes long; at most " + std::to_string(cap) + " are accepted";
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (pem && (c == '\n' || c == '\r' || c == '\t')) continue;
    if (c < 0x20 || c == 0x7F)
      return fmt::format("contains a control character (0x{:02X} at byte {}){}; refused", c, i + 1,
                         secret ? "" : " in '" + util::quote_for_message(text) + "'");
  }
  return std::nullopt;
}

std::optional<std::string> text_limits_problem(const KeySpec& spec, const json& value) {
  if (value.is_string()) return text_problem(spec.name, value.get<std::string>(), spec.secret());
  if (!value.is_array()) return std::nullopt;
  if (value.size() > kMaxListItems)
    return "has " + std::to_string(value.size()) + " items; at most " + std::to_string(kMaxListItems);
  for (const auto& item : value)
    if (auto why = text_problem(spec.name, item.get<std::string>(), spec.secret())) return "an item " + *why;
  return std::nullopt;
}

// The variables Kasm's startup scripts render, every version and provider (docs/providers.md
// "What the rendered values look like"). Only these mean "never rendered": other braces are
// legal in a value (an operator's manager token may hold "{x}").
const std::regex& template_pattern() {
  static const std::regex pattern(R"(\{(server_id|manager_token|upstream_auth_address|provider_name|)"
                                  R"(server_hostname|server_external_fqdn|nginx_cert_in|nginx_key_in|ssh_key)\})");
  return pattern;
}

} // namespace

std::string Problem::to_string() const {
  std::string s;
  if (!key.empty()) s += key + ": ";
  s += message;
  if (!origin.empty()) s += " (from " + origin + ")";
  return s;
}

std::map<std::string, std::string> bootstrap_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    if (entry.rfind(kEnvPrefix, 0) != 0) continue;
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

LoadedConfig load(const LoadInputs& inputs) {
  LoadedConfig result;
  RawConfig raw;

  // 1. Image defaults, written by the image build.
  if (inputs.root) {
    try {
      if (auto text = inputs.root->read_file(kImageDefaultsPath, kMaxConfigBytes))
        merge_json_text(*text, kImageDefaultsPath, raw, result.problems);
    } catch (const std::exception& e) {
      result.problems.push_back({"", kImageDefaultsPath, e.what()});
    }
  }

  // 1b. What the last successful run used, for the commands that come after it.
  if (inputs.root && inputs.read_effective) {
    try {
      if (auto text = inputs.root->read_file(kEffectiveConfigPath, kMaxConfigBytes))
        merge_json_text(*text, kEffectiveConfigPath, raw, result.problems);
    } catch (const std::exception& e) {
      result.problems.push_back({"", kEffectiveConfigPath, e.what()});
    }
  }

  // 2. --config: what Kasm rendered into user-data.
  if (inputs.config_path) {
    const std::string& path = *inputs.config_path;
    if (path == "-") {
      try {
        const std::string text =
            inputs.stdin_stream ? sys::read_bounded(*inputs.stdin_stream, kMaxConfigBytes, "stdin") : "";
        merge_json_text(text, "--config - (stdin)", raw, result.problems);
      } catch (const sys::InputRefused& e) {
        result.problems.push_back({"", "--config - (stdin)", e.reason()});
      }
    } else {
      std::error_code ec;
      const std::string origin = "--config " + util::quote_for_message(path, 200);
      if (fs::is_directory(path, ec)) {
        merge_directory(path, origin, raw, result.problems);
      } else {
        try {
          if (const auto text = sys::read_regular_file(path, kMaxConfigBytes))
            merge_json_text(*text, origin, raw, result.problems);
          else
            result.problems.push_back({"", origin, "file does not exist"});
        } catch (const sys::InputRefused& e) {
          result.problems.push_back({"", origin, e.reason()});
        }
      }
    }
  }

  // 3. Environment.
  for (const auto& [name, value] : inputs.environment) {
    if (name.rfind(kEnvPrefix, 0) != 0) continue;
    std::string key = name.substr(kEnvPrefix.size());
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
    if (!find_key(key)) {
      unknown_key(result.problems, util::quote_for_message(key), util::quote_for_message(name));
      continue;
    }
    raw[key] = RawValue{value, name, true};
  }

  // 4. Flags.
  for (const auto& [key, value] : inputs.flags) {
    auto origin_it = inputs.flag_origins.find(key);
    const std::string origin = origin_it != inputs.flag_origins.end() ? origin_it->second : "--" + key;
    if (!find_key(key)) {
      unknown_key(result.problems, key, origin);
      continue;
    }
    raw[key] = RawValue{value, origin, true};
  }

  // Typed assignment, with the input rules that concern the text itself.
  for (const auto& spec : keys()) {
    auto it = raw.find(std::string(spec.name));
    if (it == raw.end()) {
      result.origins[std::string(spec.name)] = "default";
      continue;
    }
    const RawValue& rv = it->second;
    result.origins[std::string(spec.name)] = rv.origin;
    std::string why;
    auto value = coerce(spec, rv, why);
    if (!value) {
      result.problems.push_back({std::string(spec.name), rv.origin, why});
      continue;
    }
    bool utf8 = true;
    if (value->is_string()) utf8 = valid_utf8(value->get<std::string>());
    if (value->is_array())
      for (const auto& item : *value)
        utf8 = utf8 && valid_utf8(item.get<std::string>());
    if (!utf8) {
      result.problems.push_back(
          {std::string(spec.name), rv.origin, "is not valid UTF-8 text (check the file's encoding)"});
      continue;
    }
    if (const auto why_not = text_limits_problem(spec, *value)) {
      result.problems.push_back({std::string(spec.name), rv.origin, *why_not});
      continue;
    }
    // An unrendered "{server_id}" means Kasm never rendered the startup script.
    auto check_template = [&](const std::string& text) {
      std::smatch m;
      if (!std::regex_search(text, m, template_pattern())) return true;
      result.problems.push_back({std::string(spec.name), rv.origin,
                                 "value still contains the template variable " + m.str() +
                                     ": the startup script was not rendered by Kasm (paste it into the VM "
                                     "Provider's Startup Script field instead of running it by hand)"});
      return false;
    };
    bool rendered = true;
    if (value->is_string()) rendered = check_template(value->get<std::string>());
    if (value->is_array())
      for (const auto& item : *value)
        rendered = check_template(item.get<std::string>()) && rendered;
    if (!rendered) continue;

    Config& c = result.config;
    std::visit(
        [&](auto member) {
          using T = std::remove_reference_t<decltype(c.*member)>;
          if constexpr (std::is_same_v<T, Secret>)
            c.*member = Secret(normalise_text(spec.name, value->template get<std::string>()));
          else if constexpr (std::is_same_v<T, std::string>)
            c.*member = normalise_text(spec.name, value->template get<std::string>());
          else if constexpr (std::is_same_v<T, bool>)
            c.*member = value->template get<bool>();
          else if constexpr (std::is_same_v<T, std::int64_t>)
            c.*member = value->template get<std::int64_t>();
          else
            c.*member = value->template get<std::vector<std::string>>();
        },
        spec.field);
  }
  return result;
}

} // namespace kb::config
