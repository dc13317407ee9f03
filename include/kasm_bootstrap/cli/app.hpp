#pragma once
// The command line: every subcommand, its options and the configuration keys as flags.

#include <iosfwd>

namespace CLI {
class App;
}

namespace kb::cli {

struct CommonOptions;

// Parses argv, runs the command, returns the process exit code (error.hpp).
int main(int argc, char** argv, std::istream& in, std::ostream& out);

// Declares every subcommand and option on `app`, bound to `options`. main() parses with
// it; tools/kb_reference.cpp renders the man page and the bash completion from it, so the
// reference lists exactly what the binary accepts.
void build_cli(CLI::App& app, CommonOptions& options);

} // namespace kb::cli
