// Campaign figures ("crash runs: 20, invariant held: 20"): printed on the
// test's stdout and, when the environment variable MBX_FIGURES_FILE names a
// file, appended to it, so that `tools/dev.sh test` can show every campaign's
// figures at the end of the run (ctest hides a passing test's output).
//
// Kept apart from test_util.h so that a test can report figures without
// pulling in the rest of the helpers.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace mbx::testing {

// Prints `line` (no trailing newline needed) and appends it to
// $MBX_FIGURES_FILE: one O_APPEND write per line, so lines of tests that
// ctest runs in parallel do not interleave. A figure that cannot be written
// is not a test failure.
inline void ReportFigure(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  const char* path = std::getenv("MBX_FIGURES_FILE");
  if (path == nullptr || *path == '\0') return;
  const int fd = ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  const std::string text = line + "\n";
  if (::write(fd, text.data(), text.size()) != ssize_t(text.size())) {
    std::fprintf(stderr, "could not append the figure to %s\n", path);
  }
  ::close(fd);
}

// The seed of a randomised campaign: `dflt` (so that the suite repeats the
// same runs every time) unless $MBX_CAMPAIGN_SEED names another, as
// `tools/dev.sh campaign` does for each of its batches.
inline unsigned long long CampaignSeed(unsigned long long dflt) {
  const char* e = std::getenv("MBX_CAMPAIGN_SEED");
  if (e == nullptr || *e == '\0') return dflt;
  return std::strtoull(e, nullptr, 10);
}

// Whether $MBX_CAMPAIGN_SEED is set: a campaign batch, which draws every
// point at random instead of the suite's fixed selection.
inline bool InCampaign() {
  const char* e = std::getenv("MBX_CAMPAIGN_SEED");
  return e != nullptr && *e != '\0';
}

}  // namespace mbx::testing
