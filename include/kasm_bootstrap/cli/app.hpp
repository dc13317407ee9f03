#pragma once
// The command line (DESIGN.md §4): run, plan, detect-address, swap, health.

#include <iosfwd>

namespace kb::cli {

// Parses argv, runs the command, returns the process exit code (error.hpp).
int main(int argc, char** argv, std::istream& in, std::ostream& out);

} // namespace kb::cli
