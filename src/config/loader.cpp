#include "kasm_bootstrap/config/loader.hpp"

#include "kasm_bootstrap/config/keys.hpp"
#include "kasm_bootstrap/system/root_fs.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <istream>
#include <regex>
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
  json doc;
  try {
    doc = json::parse(text);
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
  for (auto& [key, value] : doc.items()) {
    if (!find_key(key)) {
      unknown_key(problems, key, origin);
      continue;
    }
    out[key] = RawValue{value, origin, false};
  }
}

void merge_directory(const fs::path& dir, const std::string& origin, RawConfig& out, std::vector<Problem>& problems) {
  std::error_code ec;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.is_regular_file() && entry.path().filename().string().front() != '.') files.push_back(entry.path());
  if (ec) {
    problems.push_back({"", origin, "cannot list directory: " + ec.message()});
    return;
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    const std::string key = file.filename().string();
    const std::string file_origin = fmt::format("{}/{}", origin, key);
    if (!find_key(key)) {
      unknown_key(problems, key, file_origin);
      continue;
    }
    std::ifstream in(file, std::ios::binary);
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      problems.push_back({key, file_origin, "cannot read file"});
      continue;
    }
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
    why = "expected true or false, got " + (v.is_string() ? "'" + v.get<std::string>() + "'" : json_type_name(v));
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
      why = "expected a whole number, got '" + s + "'";
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
        RawValue parsed{json::parse(s, nullptr, false), raw.origin, false};
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

// Input rules of DESIGN.md §4 that apply to the text itself, whatever the key's meaning.
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

const std::regex& template_pattern() {
  static const std::regex pattern(R"(\{[A-Za-z_][A-Za-z0-9_]*\})");
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

  // 2. --config: what Kasm rendered into user-data.
  if (inputs.config_path) {
    const std::string& path = *inputs.config_path;
    if (path == "-") {
      std::string text;
      if (inputs.stdin_stream) {
        std::ostringstream buffer;
        buffer << inputs.stdin_stream->rdbuf();
        text = buffer.str();
      }
      merge_json_text(text, "--config - (stdin)", raw, result.problems);
    } else {
      std::error_code ec;
      const std::string origin = "--config " + path;
      if (fs::is_directory(path, ec)) {
        merge_directory(path, origin, raw, result.problems);
      } else if (!fs::exists(path, ec)) {
        result.problems.push_back({"", origin, "file does not exist"});
      } else if (fs::file_size(path, ec) > kMaxConfigBytes) {
        result.problems.push_back({"", origin, "file is larger than 1 MiB; is this really a configuration?"});
      } else {
        std::ifstream in(path, std::ios::binary);
        if (!in) {
          result.problems.push_back({"", origin, "cannot open file"});
        } else {
          std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
          merge_json_text(text, origin, raw, result.problems);
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
      unknown_key(result.problems, key, name);
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
