#include "cli/unknown_command.h"

#include <algorithm>

namespace mbx::cli {

size_t EditDistance(std::string_view a, std::string_view b) {
  // d[i][j]: distance between the first i letters of a and the first j of b.
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

std::vector<std::string> NearestNames(std::string_view typed, const std::vector<std::string>& names) {
  std::vector<std::string> best;
  size_t best_d = 0;
  for (const auto& n : names) {
    const size_t dist = EditDistance(typed, n);
    if (dist == 0 || dist * 3 > typed.size()) continue;
    if (best.empty() || dist < best_d) {
      best = {n};
      best_d = dist;
    } else if (dist == best_d) {
      best.push_back(n);
    }
  }
  return best;
}

namespace {

// The named subcommands of `app` (CLI11 keeps option groups as unnamed ones).
std::vector<const CLI::App*> Commands(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App* s) { return !s->get_name().empty(); });
}

// True when one of app's own options takes a value: the word after it is
// then that value, not a command, and the walk stops to let CLI11 decide.
bool HasValueOptions(const CLI::App& app) {
  return !app.get_options([](const CLI::Option* o) { return o->get_expected_max() > 0; }).empty();
}

}  // namespace

std::optional<std::string> FindUnknownCommand(const CLI::App& app, int argc, const char* const* argv) {
  const CLI::App* cur = &app;
  std::string prefix;  // the command words known so far, each followed by a space
  for (int i = 1; i < argc; ++i) {
    const std::string_view word = argv[i];
    if (word == "--") break;
    if (word.starts_with('-')) continue;  // a flag of a command group
    const auto commands = Commands(*cur);
    if (commands.empty()) break;
    const CLI::App* next = nullptr;
    for (const CLI::App* c : commands) {
      if (c->check_name(std::string(word))) next = c;
    }
    if (!next) {
      std::vector<std::string> names;
      for (const CLI::App* c : commands) names.push_back(c->get_name());
      std::string msg = "unknown command '" + prefix + std::string(word) + "'";
      const auto near = NearestNames(word, names);
      for (size_t k = 0; k < near.size(); ++k) {
        msg += (k == 0 ? "\ndid you mean '" : k + 1 == near.size() ? " or '" : ", '") + prefix + near[k] + "'";
        if (k + 1 == near.size()) msg += "?";
      }
      return msg;
    }
    prefix += next->get_name() + " ";
    cur = next;
    if (HasValueOptions(*cur)) break;
  }
  return std::nullopt;
}

}  // namespace mbx::cli
