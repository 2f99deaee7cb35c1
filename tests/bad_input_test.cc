// Damaged stores and directories, through the program: every one gives a
// clear one-line error and a non-zero exit, never a signal, and leaves the
// damaged files as they were.
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "tests/report_figure.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

using testing::Mbxmove;
using testing::RunCommand;
using testing::TempDir;
namespace fs = std::filesystem;

std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> m;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file() || e.path().filename() == "LOCK" || e.path().filename() == "lock.mdb") continue;
    std::ifstream f(e.path(), std::ios::binary);
    m[e.path().string()] = std::string(std::istreambuf_iterator<char>(f), {});
  }
  return m;
}

void Overwrite(const std::string& path, size_t offset, size_t n, uint32_t seed) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.good()) << path;
  f.seekp(std::streamoff(offset));
  std::mt19937 rng(seed);
  for (size_t i = 0; i < n; ++i) f.put(char(rng()));
}

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    good_ = tmp_ / "good";
    ASSERT_EQ(RunCommand(Mbxmove() + " gen --org " + good_ + " --store MS1 --preset tiny").exit_code, 0);
  }
  std::string Copy(const std::string& name) {
    const std::string d = tmp_ / name;
    fs::copy(good_, d, fs::copy_options::recursive);
    return d;
  }
  // Runs commands against a damaged organisation: clear error, no signal,
  // nothing changed.
  void ExpectCleanFailure(const std::string& org, const std::string& what) {
    SCOPED_TRACE(what);
    const auto before = Snapshot(org);
    for (const std::string& cmd : {"stat --org " + org, "logs --org " + org + " --store MS1",
                                  "move --org " + org + " --from MS1 --to MS1"}) {
      auto r = RunCommand(Mbxmove() + " " + cmd);
      EXPECT_NE(r.exit_code, 0) << cmd;
      EXPECT_LT(r.exit_code, 128) << cmd << " died by a signal";
      EXPECT_NE(r.err.find("mbxmove: error: "), std::string::npos) << cmd << ": " << r.err;
    }
    // verify reports a damaged store as a problem (exit 3) unless the
    // directory itself cannot be read (exit 1).
    auto v = RunCommand(Mbxmove() + " verify --org " + org);
    EXPECT_TRUE(v.exit_code == 3 || v.exit_code == 1) << v.exit_code << ": " << v.out << v.err;
    EXPECT_TRUE(v.out.find("store-unreadable") != std::string::npos ||
                v.err.find("mbxmove: error: ") != std::string::npos)
        << v.out << v.err;
    EXPECT_TRUE(Snapshot(org) == before) << "a failed command changed the damaged files";
    ++cases_;
  }
  TempDir tmp_;
  std::string good_;
  static int cases_;
};
int BadInputTest::cases_ = 0;

TEST_F(BadInputTest, DamagedStoresAndDirectories) {
  const std::string data = "/stores/MS1/data.mdb";
  {
    const std::string o = Copy("truncated");
    fs::resize_file(o + data, fs::file_size(o + data) / 2);
    ExpectCleanFailure(o, "data.mdb truncated to half");
  }
  {
    const std::string o = Copy("tiny");
    fs::resize_file(o + data, 100);
    ExpectCleanFailure(o, "data.mdb truncated to 100 bytes");
  }
  {
    const std::string o = Copy("header");
    Overwrite(o + data, 0, 8192, 1);
    ExpectCleanFailure(o, "random bytes over the meta pages");
  }
  {
    const std::string o = Copy("random");
    const auto n = fs::file_size(o + data);
    fs::remove(o + data);
    { std::ofstream f(o + data, std::ios::binary); }
    Overwrite(o + data, 0, size_t(n), 2);
    ExpectCleanFailure(o, "data.mdb replaced by random bytes");
  }
  {
    const std::string o = Copy("nodata");
    fs::remove(o + data);
    ExpectCleanFailure(o, "data.mdb missing");
  }
  {
    const std::string o = Copy("dir");
    Overwrite(o + "/directory/data.mdb", 0, 8192, 3);
    ExpectCleanFailure(o, "directory damaged");
  }
  {
    const std::string o = Copy("notafolder");
    fs::remove_all(o + "/stores/MS1");
    { std::ofstream f(o + "/stores/MS1"); f << "not a store"; }
    ExpectCleanFailure(o, "store folder replaced by a file");
  }
  testing::ReportFigure("bad inputs tried: " + std::to_string(cases_) + ", each a clear error with nothing changed");
}

}  // namespace
}  // namespace mbx
