// The client's checks of what a store server answers (rpc/reply_decode.h):
// records streamed whole or in pieces, ReadItem's pieces, a ReadChanges page.
// tests/fuzz/server_reply_fuzz.cc drives the same code with arbitrary
// messages; these pin the answers a broken server sends to their refusals.
#include <gtest/gtest.h>

#include "rpc/reply_decode.h"

namespace mbx::rpc {
namespace {

std::shared_ptr<ReadChunk> Msg(std::initializer_list<std::tuple<uint32_t, uint64_t, std::string, bool>> records) {
  auto m = std::make_shared<ReadChunk>();
  for (const auto& [folder, item, bytes, continues] : records) {
    Record* r = m->add_records();
    r->set_folder_id(folder);
    r->set_item_id(item);
    r->set_record(bytes);
    r->set_continues(continues);
  }
  return m;
}

TEST(StreamRecordsTest, RecordsWholeAndInPiecesComeOutInOrderAndOutliveTheirMessages) {
  StreamRecords s("reading mailbox M");
  ItemChunk c;
  ASSERT_TRUE(s.Take(Msg({{1, 1, "a", false}, {1, 2, "bb", false}}), &c).ok());
  ASSERT_EQ(c.items.size(), 2u);
  EXPECT_EQ(c.items[1].record, "bb") << "the chunk owns the message now";
  ASSERT_TRUE(s.Take(Msg({}), &c).ok());
  EXPECT_TRUE(c.items.empty());
  ASSERT_TRUE(s.Take(Msg({{1, 3, "x", true}}), &c).ok());
  EXPECT_TRUE(c.items.empty()) << "not before its last piece";
  EXPECT_FALSE(s.End().ok()) << "a stream may not end here";
  ASSERT_TRUE(s.Take(Msg({{1, 3, "y", true}}), &c).ok());
  ASSERT_TRUE(s.Take(Msg({{1, 3, "z", false}}), &c).ok());
  ASSERT_EQ(c.items.size(), 1u);
  EXPECT_EQ(c.items[0].item_id, 3u);
  EXPECT_EQ(c.items[0].record, "xyz");
  ASSERT_TRUE(s.Take(Msg({{2, 1, "c", false}}), &c).ok());
  EXPECT_TRUE(s.End().ok());
}

TEST(StreamRecordsTest, ABrokenStreamIsRefused) {
  struct Case {
    const char* what;
    std::vector<std::shared_ptr<ReadChunk>> msgs;
  };
  const std::vector<Case> cases = {
      {"an item twice", {Msg({{1, 2, "a", false}}), Msg({{1, 2, "a", false}})}},
      {"an item before the last", {Msg({{1, 5, "a", false}, {1, 4, "b", false}})}},
      {"a folder before the last", {Msg({{2, 1, "a", false}}), Msg({{1, 9, "b", false}})}},
      {"a first piece sharing its message", {Msg({{1, 1, "a", false}, {1, 2, "b", true}})}},
      {"a piece sharing its message", {Msg({{1, 1, "a", true}}), Msg({{1, 1, "b", false}, {1, 2, "c", false}})}},
      {"another item's piece", {Msg({{1, 1, "a", true}}), Msg({{1, 2, "b", false}})}},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.what);
    StreamRecords s("reading mailbox M");
    ItemChunk c;
    Status last = Status::Ok();
    for (const auto& m : k.msgs) {
      last = s.Take(m, &c);
      if (!last.ok()) break;
    }
    EXPECT_EQ(last.code(), Status::Code::kCorruption) << last.ToString();
    EXPECT_NE(last.message().find("reading mailbox M"), std::string::npos) << last.message();
    EXPECT_TRUE(c.items.empty()) << "nothing of a refused message is handed on";
  }
}

TEST(ItemPiecesTest, TheRecordIsItsPiecesJoinedOnceTheLastCame) {
  Record p;
  p.set_folder_id(3);
  p.set_item_id(9);
  ItemPieces ok(3, 9, "item 9");
  p.set_record("ab");
  p.set_continues(true);
  ASSERT_TRUE(ok.Add(p).ok());
  p.set_record("c");
  p.set_continues(false);
  ASSERT_TRUE(ok.Add(p).ok());
  EXPECT_FALSE(ok.Add(p).ok()) << "nothing after the last piece";
  auto whole = ok.Finish();
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(*whole, "abc");

  ItemPieces open(3, 9, "item 9");
  p.set_continues(true);
  ASSERT_TRUE(open.Add(p).ok());
  EXPECT_EQ(open.Finish().status().code(), Status::Code::kCorruption) << "ended before its last piece";
  p.set_item_id(10);
  EXPECT_EQ(open.Add(p).code(), Status::Code::kCorruption) << "another item's piece";
}

class ChangesPageTest : public ::testing::Test {
 public:  // (the cases below build pages through it)
  ChangesPageTest() {
    g_.bytes.fill(7);
    MailboxInfo m;
    m.guid = g_;
    m.tracked = true;
    m.change_number = 9;
    got_.mutable_header()->set_mailbox(std::string(g_.AsKey()));
    got_.mutable_header()->set_value(EncodeMailboxInfo(m));
  }
  void Item(uint64_t id, uint32_t now_in, std::string record, bool apart = false) {
    ItemChange* i = got_.add_items();
    i->set_item_id(id);
    i->set_old_folder(2);
    i->set_new_folder(now_in);
    i->set_record(std::move(record));
    i->set_record_apart(apart);
  }
  Result<ChangeSet> Decode(uint64_t after_item = 0) {
    ChangesPage page;
    page.after_item = after_item;
    return DecodeChangesPage(got_, g_, page, "the changes", [&](uint32_t folder, uint64_t item) -> Result<std::string> {
      ++apart_reads_;
      if (folder != 2) return Status::NotFound("item " + std::to_string(item) + " is no longer in folder 2");
      return std::string("apart-record");
    });
  }
  Guid g_;
  Changes got_;
  int apart_reads_ = 0;
};

TEST_F(ChangesPageTest, ItemsInOrderWithTheirRecordsAreTaken) {
  Item(3, 2, "r3");
  Item(5, 0, "");  // gone: a tombstone
  Item(8, 4, "r8");
  got_.set_more(true);
  got_.set_next_after_item(8);
  auto cs = Decode(2);
  ASSERT_TRUE(cs.ok()) << cs.status().ToString();
  ASSERT_EQ(cs->items.size(), 3u);
  EXPECT_EQ(cs->items[0].record, "r3");
  EXPECT_TRUE(cs->items[1].record.empty());
  EXPECT_TRUE(cs->more);
}

TEST_F(ChangesPageTest, ARecordApartIsReadAndItsErrorComesBackAsItIs) {
  Item(4, 2, "", true);
  auto cs = Decode();
  ASSERT_TRUE(cs.ok()) << cs.status().ToString();
  EXPECT_EQ(cs->items.at(0).record, "apart-record");
  EXPECT_EQ(apart_reads_, 1);
  got_.mutable_items(0)->set_new_folder(3);
  got_.mutable_items(0)->clear_record();
  EXPECT_TRUE(Decode().status().IsNotFound()) << "the caller reads the page again";
}

TEST_F(ChangesPageTest, ABrokenPageIsRefused) {
  struct Case {
    const char* what;
    std::function<void(ChangesPageTest*)> make;
    uint64_t after_item;
  };
  const std::vector<Case> cases = {
      {"items out of order", [](ChangesPageTest* t) { t->Item(5, 2, "a");
         t->Item(4, 2, "b"); }, 0},
      {"an item twice", [](ChangesPageTest* t) { t->Item(5, 2, "a");
         t->Item(5, 2, "a"); }, 0},
      {"an item not after the page's start", [](ChangesPageTest* t) { t->Item(3, 2, "a"); }, 3},
      {"an item there without its record", [](ChangesPageTest* t) { t->Item(3, 2, ""); }, 0},
      {"a gone item with a record", [](ChangesPageTest* t) { t->Item(3, 0, "a"); }, 0},
      {"a record apart beside another item", [](ChangesPageTest* t) { t->Item(3, 2, "a");
         t->Item(4, 2, "", true); }, 0},
      {"more after an item not the last",
       [](ChangesPageTest* t) {
         t->Item(3, 2, "a");
         t->Item(4, 2, "b");
         t->got_.set_more(true);
         t->got_.set_next_after_item(3);
       },
       0},
      {"an entry of an unknown kind", [](ChangesPageTest* t) { t->got_.add_entries()->set_kind(99); }, 0},
      {"another mailbox's header",
       [](ChangesPageTest* t) {
         Guid other;
         other.bytes.fill(8);
         MailboxInfo m;
         m.guid = other;
         t->got_.mutable_header()->set_mailbox(std::string(other.AsKey()));
         t->got_.mutable_header()->set_value(EncodeMailboxInfo(m));
       },
       0},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.what);
    got_.clear_items();
    got_.clear_entries();
    got_.set_more(false);
    MailboxInfo m;
    m.guid = g_;
    got_.mutable_header()->set_mailbox(std::string(g_.AsKey()));
    got_.mutable_header()->set_value(EncodeMailboxInfo(m));
    k.make(this);
    auto cs = Decode(k.after_item);
    EXPECT_EQ(cs.status().code(), Status::Code::kCorruption) << cs.status().ToString();
  }
  EXPECT_EQ(apart_reads_, 0) << "a broken page's record apart is never read";
}

}  // namespace
}  // namespace mbx::rpc
