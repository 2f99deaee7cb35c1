// A move that fills the disk: `mbxmove move` runs on a pretend small file
// system (tests/diskquota/diskquota_preload.h: the organisation's folder may
// hold only so many bytes; writes past that fail with ENOSPC, as on a full
// disk), and the test checks, WITHOUT giving any space back, that every
// mailbox is active with its content where its homeMDB names it (back where
// it was, unless it finished its move whole before the disk filled), no move
// record left, verify clean, and that the move said why it failed. Then that a store running on its disk reserve refuses new moves,
// and takes them again once there is room for its reserve.
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace mbx {
namespace {

using json = nlohmann::json;
using testing::Mbxmove;
using testing::RunCommand;
using testing::TempDir;
namespace fs = std::filesystem;

constexpr uint64_t kReserveBytes = 4u << 20;  // OpenOptions::kDefaultDiskReserveBytes

// Blocks allocated under `dir`, in bytes (what the pretend file system counts).
uint64_t AllocatedUnder(const std::string& dir) {
  uint64_t sum = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    struct stat st {};
    if (::lstat(e.path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) sum += uint64_t(st.st_blocks) * 512;
  }
  return sum;
}

// The `VAR=value ...` prefix that runs a command on a file system of
// `bytes` holding only `org`.
std::string OnSmallDisk(const std::string& org, uint64_t bytes) {
  std::string asan = "verify_asan_link_order=0";
  if (const char* e = std::getenv("ASAN_OPTIONS"); e && *e) asan = std::string(e) + ":" + asan;
  return "ASAN_OPTIONS='" + asan + "' LD_PRELOAD=" + MBX_DISKQUOTA_LIB + " MBX_DISKQUOTA_DIR=" + org +
         " MBX_DISKQUOTA_BYTES=" + std::to_string(bytes) + " ";
}

// Each user's home store: the cn of each user entry, and the store's CN in its
// homeMDB, read from `directory export` (folded LDIF lines unfolded).
std::map<std::string, std::string> HomeStores(const std::string& org, const std::string& prefix,
                                              const std::string& ldif) {
  auto r = RunCommand(prefix + Mbxmove() + " directory export --org " + org + " --ldif " + ldif);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(ldif);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == ' ' && !lines.empty()) {
      lines.back() += line.substr(1);
    } else {
      lines.push_back(line);
    }
  }
  std::map<std::string, std::string> homes;
  std::string cn;
  for (const auto& l : lines) {
    if (l.empty()) cn.clear();
    if (l.rfind("cn: ", 0) == 0) cn = l.substr(4);
    if (l.rfind("homeMDB: CN=", 0) == 0) homes[cn] = l.substr(12, l.find(',') - 12);
  }
  return homes;
}

class DiskFullTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    org_ = tmp_ / "org";
    auto g = RunCommand(Mbxmove() + " gen --org " + org_ + " --store MS1 --preset tiny --seed 5");
    ASSERT_EQ(g.exit_code, 0) << g.err;
    auto c = RunCommand(Mbxmove() + " store create --org " + org_ + " --store MS2");
    ASSERT_EQ(c.exit_code, 0) << c.err;
    const json stat = Stat("");
    for (const auto& m : stat["mailboxes"]) original_[m["mailbox"].get<std::string>()] = m["checksum"];
    ASSERT_EQ(original_.size(), 12u);
    homes_ = HomeStores(org_, "", tmp_ / "before.ldif");
    ASSERT_EQ(homes_.size(), 12u);
    for (const auto& [user, store] : homes_) ASSERT_EQ(store, "MS1") << user;
    // Room for what is there now and 512 KiB more: the move (about 4 MiB of
    // items, written to the log and to the database; the largest mailbox,
    // moved first, is over 1 MiB) runs out during its first mailbox.
    disk_ = OnSmallDisk(org_, AllocatedUnder(org_) + (512u << 10));
  }

  json Stat(const std::string& prefix) {
    auto r = RunCommand(prefix + Mbxmove() + " stat --org " + org_ + " --json");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out, nullptr, false);
  }

  testing::CommandResult MoveAll(const std::string& prefix) {
    return RunCommand(prefix + Mbxmove() + " move --org " + org_ + " --from MS1 --to MS2 --batch-bytes 64K --concurrency " +
                      std::to_string(GetParam()));
  }

  // Every mailbox active with its content where its user's homeMDB names
  // it, no move record, verify clean: all run on the same full disk. At C=1
  // every mailbox is back in MS1 (the first, largest mailbox finds the disk
  // full). At C>1 a small mailbox copied beside it may have finished its
  // move, whole, before the disk filled: it is in MS2 and homeMDB says so;
  // at least one mailbox is not.
  void ExpectEachWholeWhereHomeMdbNames() {
    const json stat = Stat(disk_);
    ASSERT_TRUE(stat.contains("mailboxes")) << stat.dump();
    const auto homes = HomeStores(org_, disk_, tmp_ / "after.ldif");
    ASSERT_EQ(homes.size(), homes_.size());
    std::map<std::string, json> seen;
    int in_ms1 = 0;
    for (const auto& m : stat["mailboxes"]) {
      const std::string id = m["mailbox"].get<std::string>();
      const std::string store = m["store"].get<std::string>();
      EXPECT_EQ(m["state"], "active") << id;
      ASSERT_TRUE(homes.count(m["owner"].get<std::string>())) << id;
      EXPECT_EQ(store, homes.at(m["owner"].get<std::string>())) << id;
      if (GetParam() == 1) {
        EXPECT_EQ(store, "MS1") << id;
      }
      in_ms1 += store == "MS1" ? 1 : 0;
      seen[id] = m["checksum"];
    }
    EXPECT_GE(in_ms1, 1);
    if (in_ms1 < 12) std::cerr << (12 - in_ms1) << " mailbox(es) finished their move before the disk filled\n";
    EXPECT_EQ(seen, original_);
    auto show = RunCommand(disk_ + Mbxmove() + " org show --org " + org_ + " --json");
    ASSERT_EQ(show.exit_code, 0) << show.err;
    EXPECT_EQ(json::parse(show.out, nullptr, false)["moves"], 0) << show.out;
    auto verify = RunCommand(disk_ + Mbxmove() + " verify --org " + org_ + " --json");
    EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
    EXPECT_EQ(json::parse(verify.out, nullptr, false)["clean"], true) << verify.out;
  }

  TempDir tmp_;
  std::string org_, disk_;
  std::map<std::string, std::string> homes_;
  std::map<std::string, json> original_;
};

// The move's own message, or the operating system's when the directory was
// the one to find the disk full.
bool SaysOutOfSpace(const std::string& text) {
  return text.find("out of disk space") != std::string::npos ||
         text.find("No space left on device") != std::string::npos;
}

TEST_P(DiskFullTest, MoveThatFillsTheDiskRollsBackWithoutFreeingSpace) {
  auto r = MoveAll(disk_);
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(SaysOutOfSpace(r.out + r.err)) << r.out << r.err;
  // The move rolled back what it had started itself: no mailbox is left
  // locked or half-copied for `recover` to find.
  EXPECT_EQ(r.err.find("recovery:"), std::string::npos) << r.err;
  ExpectEachWholeWhereHomeMdbNames();
  // Again on the same full disk: refused up front or failing the same way,
  // and nothing changes.
  auto again = MoveAll(disk_);
  EXPECT_NE(again.exit_code, 0) << again.out << again.err;
  EXPECT_NE((again.out + again.err).find("out of disk space"), std::string::npos) << again.out << again.err;
  ExpectEachWholeWhereHomeMdbNames();
}

// The disk reserve: owner-only, held by every store, released on the full
// disk, and held again (and moves taken again) once there is room.
TEST_P(DiskFullTest, ReserveIsReleasedOnAFullDiskAndComesBackWithSpace) {
  for (const std::string store : {"MS1", "MS2"}) {
    struct stat st {};
    const std::string reserve = org_ + "/stores/" + store + "/RESERVE";
    ASSERT_EQ(::stat(reserve.c_str(), &st), 0) << reserve;
    EXPECT_EQ(st.st_mode & 07777, 0600u) << reserve;
    EXPECT_EQ(uint64_t(st.st_size), kReserveBytes);
    EXPECT_GE(uint64_t(st.st_blocks) * 512, kReserveBytes) << "the reserve's blocks are not allocated";
  }
  auto r = MoveAll(disk_);
  ASSERT_NE(r.exit_code, 0) << r.out << r.err;
  // At least one store gave its reserve back (the one whose write found the
  // disk full), and says so.
  int released = 0;
  for (const std::string store : {"MS1", "MS2"}) {
    released += fs::exists(org_ + "/stores/" + store + "/RESERVE") ? 0 : 1;
  }
  EXPECT_GE(released, 1);
  auto logs = RunCommand(disk_ + Mbxmove() + " logs --org " + org_ + " --store MS2 --json");
  ASSERT_EQ(logs.exit_code, 0) << logs.err;
  if (!fs::exists(org_ + "/stores/MS2/RESERVE")) {
    EXPECT_EQ(json::parse(logs.out, nullptr, false)["out_of_space"], true) << logs.out;
  }
  ExpectEachWholeWhereHomeMdbNames();

  // Space comes back (no quota): opening a store holds its reserve again.
  for (const std::string store : {"MS1", "MS2"}) {
    auto l = RunCommand(Mbxmove() + " logs --org " + org_ + " --store " + store + " --json");
    ASSERT_EQ(l.exit_code, 0) << l.err;
    const json j = json::parse(l.out, nullptr, false);
    EXPECT_EQ(j["disk_reserve_bytes"], kReserveBytes) << l.out;
    EXPECT_EQ(j["out_of_space"], false) << l.out;
    struct stat st {};
    const std::string reserve = org_ + "/stores/" + store + "/RESERVE";
    ASSERT_EQ(::stat(reserve.c_str(), &st), 0) << reserve;
    EXPECT_EQ(st.st_mode & 07777, 0600u) << reserve;
    EXPECT_GE(uint64_t(st.st_blocks) * 512, kReserveBytes);
  }
  auto moved = MoveAll("");
  EXPECT_EQ(moved.exit_code, 0) << moved.out << moved.err;
  const json stat = Stat("");
  for (const auto& m : stat["mailboxes"]) {
    EXPECT_EQ(m["store"], "MS2");
    EXPECT_EQ(m["checksum"], original_[m["mailbox"].get<std::string>()]);
  }
}

INSTANTIATE_TEST_SUITE_P(Concurrency, DiskFullTest, ::testing::Values(1, 4),
                         [](const ::testing::TestParamInfo<int>& p) { return "C" + std::to_string(p.param); });

}  // namespace
}  // namespace mbx
