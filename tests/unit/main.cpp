// Catch2 entry point (v2 single header). With Catch2 v3 this file goes away and the
// tests link Catch2::Catch2WithMain; tests include "catch.hpp" only through test_support.hpp.
//
// Our own main for one reason: a test process in which some test case skipped (KB_SKIP,
// test_support.hpp) and none failed exits 77, which ctest reports as skipped.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

namespace kb::test {
int skipped_tests();                 // test_support.cpp
inline constexpr int kSkipExit = 77; // = kSkipExitCode in test_support.hpp
} // namespace kb::test

int main(int argc, char* argv[]) {
  const int failed = Catch::Session().run(argc, argv);
  if (failed == 0 && kb::test::skipped_tests() > 0) return kb::test::kSkipExit;
  return failed;
}
