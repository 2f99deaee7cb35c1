// A mistyped command, caught before CLI11 parses the command line: CLI11
// itself answers an unknown command with "A subcommand is required", and
// prints the main help with exit 0 when --help follows it.
#pragma once

#include <CLI/CLI.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mbx::cli {

// Edits (insert, delete, substitute, swap two neighbours) that turn a into b:
// the optimal-string-alignment distance, so "sevre" is 1 from "serve".
size_t EditDistance(std::string_view a, std::string_view b);

// The names in `names` nearest to `typed`, when they are close: at most one
// edit in three letters of `typed`. Empty when none is close; several when
// they are equally near.
std::vector<std::string> NearestNames(std::string_view typed, const std::vector<std::string>& names);

// Walks argv's command words from `app` down (e.g. "store create") and, at
// the first word that names no command where a command is expected, returns
// the error to print, e.g. "unknown command 'sevre'\ndid you mean 'serve'?".
// nullopt when every command word is known (CLI11 then parses as usual).
std::optional<std::string> FindUnknownCommand(const CLI::App& app, int argc, const char* const* argv);

}  // namespace mbx::cli
