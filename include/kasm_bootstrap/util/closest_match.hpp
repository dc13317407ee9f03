#pragma once
// "Did you mean": the candidate nearest to a mistyped word, for configuration keys,
// subcommands and flags alike.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace kb::util {

// Levenshtein distance (insertions, deletions, substitutions).
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate nearest to `word`, or "" when none is within `max_distance` edits
// (further than that is not a typo). Ties keep the earlier candidate.
std::string closest_match(std::string_view word, std::span<const std::string> candidates, std::size_t max_distance = 3);

} // namespace kb::util
