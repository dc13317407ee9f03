#pragma once
// The two rules for JSON that comes from outside or goes out with outside text in it:
// nesting is bounded before anything is parsed, and output never throws on bytes that
// are not UTF-8.

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace kb::util {

// Deeper than any document this tool reads (config, state, status, bake manifest, the
// Docker Engine's and metadata services' answers) and far below what would exhaust the
// stack when nlohmann copies or destroys a parsed value.
inline constexpr int kMaxJsonDepth = 64;

// The byte offset where arrays and objects in `text` first nest deeper than
// `max_depth`, or nullopt. Brackets inside strings are not counted. Runs before the
// parser, so a 60 000-deep document is refused without being built.
std::optional<std::size_t> json_too_deep(std::string_view text, int max_depth = kMaxJsonDepth);

// doc.dump(indent) with bytes that are not UTF-8 replaced by U+FFFD instead of a throw:
// a value read from an installer's output or a file name may hold any byte.
std::string dump_json(const nlohmann::json& doc, int indent = -1);

} // namespace kb::util
