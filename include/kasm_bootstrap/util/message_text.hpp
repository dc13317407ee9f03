#pragma once
// Text from outside (a metadata service's answer, a configuration value, a file name)
// made safe to show inside a message: bounded, one line, printable ASCII.

#include <cstddef>
#include <string>
#include <string_view>

namespace kb::util {

// At most `limit` characters of `text`, control and non-ASCII bytes shown as '?', and
// "... (N bytes)" when it was longer. Metadata services sometimes answer with HTML or
// binary; a configuration value can be 200 KB.
std::string quote_for_message(std::string_view text, std::size_t limit = 60);

} // namespace kb::util
