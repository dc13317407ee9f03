// The command line as an operator meets it: --help shows each key's type and default
// from the key table, typos get a suggestion, --color and NO_COLOR decide colour, and a
// configuration file that names a key twice is refused, naming the key.

#include "test_support.hpp"

#include "kasm_bootstrap/config/config.hpp"
#include "kasm_bootstrap/config/keys.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <string>

using kb::test::run_binary;
using kb::test::TempDir;

namespace {

bool has_text(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// The line of `--help` output that documents `flag`.
std::string help_line(const std::string& help, const std::string& flag) {
  const auto at = help.find("    " + flag + " ");
  if (at == std::string::npos) return {};
  // A long flag's description may wrap onto the next line: take both.
  auto end = help.find('\n', at);
  if (end != std::string::npos) end = help.find('\n', end + 1);
  return help.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

} // namespace

TEST_CASE("help: --help shows each key's type and its default from the key table", "[cli][help]") {
  const auto r = run_binary({"run", "--help"});
  REQUIRE(r.exit_code == 0);
  for (const auto& spec : kb::config::keys()) {
    const auto line = help_line(r.out, spec.flag());
    INFO(spec.flag() << " in:\n" << r.out);
    REQUIRE_FALSE(line.empty());
    if (spec.secret()) {
      CHECK(has_text(line, "not accepted: secret"));
      continue;
    }
    if (spec.type() == kb::config::KeyType::kBool) {
      CHECK(has_text(line, "[BOOL]"));
      CHECK_FALSE(has_text(line, "=true")); // the old, wrong "TEXT=true" for keys that default to false
    } else {
      CHECK(has_text(line, std::string(spec.value_name())));
    }
    const auto value = spec.default_text();
    if (!value.empty()) CHECK(has_text(line, "(default: " + value + ")"));
  }
  // Defaults read back from a default-constructed Config, not typed twice.
  CHECK(has_text(help_line(r.out, "--manager-port"), "(default: 443)"));
  CHECK(has_text(help_line(r.out, "--swap-required"), "(default: false)"));
}

TEST_CASE("key table: each key's kind fits its C++ type", "[cli][config]") {
  using kb::config::KeyType;
  using kb::config::ValueKind;
  for (const auto& spec : kb::config::keys()) {
    INFO(spec.name);
    switch (spec.type()) {
    case KeyType::kBool: CHECK(spec.kind == ValueKind::kBool); break;
    case KeyType::kInteger:
      CHECK(
          (spec.kind == ValueKind::kPort || spec.kind == ValueKind::kSeconds || spec.kind == ValueKind::kConnections));
      break;
    case KeyType::kList: CHECK(spec.kind == ValueKind::kList); break;
    case KeyType::kString:
    case KeyType::kSecret:
      CHECK(spec.kind != ValueKind::kBool);
      CHECK(spec.kind != ValueKind::kList);
      CHECK(spec.kind != ValueKind::kPort);
      CHECK(spec.kind != ValueKind::kSeconds);
      break;
    }
    if (spec.required_for != kb::config::kNotRequired) CHECK_FALSE(spec.noun.empty());
  }
}

TEST_CASE("a mistyped command or option gets a suggestion and exit 2", "[cli][usage]") {
  const auto command = run_binary({"staus"});
  CHECK(command.exit_code == 2);
  CHECK(has_text(command.err, "unknown command 'staus'; did you mean 'status'?"));

  const auto option = run_binary({"run", "--dry-runn"});
  CHECK(option.exit_code == 2);
  CHECK(has_text(option.err, "unknown option '--dry-runn'; did you mean '--dry-run'?"));

  // Key flags live in an option group; they are candidates too, and "=value" is not part
  // of the name.
  const auto key = run_binary({"plan", "--swap-sise=3G"});
  CHECK(key.exit_code == 2);
  CHECK(has_text(key.err, "unknown option '--swap-sise'; did you mean '--swap-size'?"));

  // Nothing near: no made-up suggestion.
  const auto far = run_binary({"zzzzzzzz"});
  CHECK(far.exit_code == 2);
  CHECK(has_text(far.err, "unknown command 'zzzzzzzz'"));
  CHECK_FALSE(has_text(far.err, "did you mean"));
}

TEST_CASE("colour: --color and NO_COLOR decide whether stderr carries ANSI colour", "[cli][color]") {
  TempDir root;
  // Address detection logs its progress at info level (coloured "I" when colour is on),
  // then fails quickly: no interface of that name exists.
  const std::vector<std::string> base{"detect-address", "--root", root.path().string(), "--sources",
                                      "interface:kb-no-such-if"};
  const auto with = [&](std::vector<std::string> extra, std::map<std::string, std::string> env) {
    auto args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return run_binary(args, env);
  };
  const std::string escape = "\x1b[";
  // stderr is a pipe here: auto means no colour.
  CHECK_FALSE(has_text(with({}, {}).err, escape));
  CHECK(has_text(with({"--color", "always"}, {}).err, escape));
  CHECK(has_text(with({"--color", "always"}, {{"NO_COLOR", "1"}}).err, escape)); // the flag wins
  CHECK_FALSE(has_text(with({"--color", "never"}, {}).err, escape));
  const auto bad = with({"--color", "sometimes"}, {});
  CHECK(bad.exit_code == 2);
}

TEST_CASE("a configuration file that names a key twice is refused, naming the key", "[cli][config]") {
  TempDir dir;
  const auto file = dir.path() / "dup.json";
  std::ofstream(file) << R"({"manager_address": "a.example", "swap_size": "off", "manager_address": "b.example"})";
  const auto r = run_binary({"plan", "--root", dir.path().string(), "--config", file.string()});
  CHECK(r.exit_code == 3);
  CHECK(has_text(r.err, "manager_address: appears more than once"));
  CHECK(has_text(r.err, file.string()));
  // The other, single keys are not reported as repeated.
  CHECK_FALSE(has_text(r.err, "swap_size: appears"));
}
