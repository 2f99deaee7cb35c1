// libFuzzer target: the transaction-log reader and the redo-payload parser.
//
// The input becomes a log folder: a well-framed record whose payload is the
// first part of the input (so the payload parser sees arbitrary bytes behind
// a valid checksum), followed by the rest of the input raw (a torn or garbage
// tail), cut into 4 KiB generations. Properties: no crash, no out-of-bounds
// access, reading stops at the end or reports corruption.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "store/txlog_format.h"
#include "store/txlog_reader.h"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    std::string d = "/tmp/mbx-txlog-fuzz-" + std::to_string(::getpid());
    fs::create_directories(d);
    return d;
  }();
  for (const auto& e : fs::directory_iterator(dir)) fs::remove(e.path());
  const std::string in(reinterpret_cast<const char*>(data), size);
  const size_t cut = in.empty() ? 0 : size_t(uint8_t(in[0])) % (in.size() + 1);
  std::string stream;
  mbx::txlog::FrameRecord(0, in.substr(0, cut), &stream);
  stream += in.substr(cut);
  constexpr size_t kFile = 4096;
  for (size_t off = 0, gen = 1; off < stream.size(); off += kFile, ++gen) {
    FILE* f = std::fopen((dir + "/" + mbx::txlog::FileName(gen)).c_str(), "wb");
    if (!f) return 0;
    std::fwrite(stream.data() + off, 1, std::min(kFile, stream.size() - off), f);
    std::fclose(f);
  }
  mbx::TxLogReader reader(dir, kFile, 0);
  mbx::LogRecord rec;
  for (int i = 0; i < 1000; ++i) {
    auto more = reader.Next(&rec);
    if (!more.ok() || !*more) break;
    (void)mbx::txlog::ForEachMutation(rec.payload, [](mbx::Mutation::Op, mbx::Db, std::string_view k,
                                                      std::string_view v) {
      return k.size() + v.size() > (1u << 30) ? mbx::Status::Corruption("huge") : mbx::Status::Ok();
    });
  }
  return 0;
}
