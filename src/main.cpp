#include "kasm_bootstrap/cli/app.hpp"

#include <iostream>

int main(int argc, char** argv) { return kb::cli::main(argc, argv, std::cin, std::cout); }
