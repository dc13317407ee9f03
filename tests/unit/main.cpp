// Catch2 entry point (v2 single header). With Catch2 v3 this file goes away and the
// tests link Catch2::Catch2WithMain; tests include "catch.hpp" only through test_support.hpp.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
