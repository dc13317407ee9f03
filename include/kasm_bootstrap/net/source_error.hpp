#pragma once
// Why one address source gave no address. The chain (address_chain.hpp) catches it,
// logs it as the reason the source was skipped, and moves on to the next source.

#include <stdexcept>
#include <string>

namespace kb::net {

class SourceError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

} // namespace kb::net
