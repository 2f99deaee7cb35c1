// libFuzzer target: the transaction-log reader and the redo-payload parser.
//
// The input becomes a log folder: a well-framed record whose payload is the
// first part of the input (so the payload parser sees arbitrary bytes behind
// a valid checksum), followed by the rest of the input raw (a torn or garbage
// tail), cut into 4 KiB generations. The folder is held in memory behind the
// Env seam (the reader reads only through it), so an execution makes no
// system calls. Properties: no crash, no out-of-bounds access, reading stops
// at the end or reports corruption.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "store/file_io.h"

#include "store/txlog_format.h"
#include "store/txlog_reader.h"

namespace {

// The folder of one input, in memory: what TxLogReader reads (ReadFile,
// GetChildren). Everything else is refused: the reader must not need it.
class MemEnv : public mbx::Env {
 public:
  std::map<std::string, std::string> files;  // name -> content, one folder

  mbx::Result<std::unique_ptr<mbx::WritableFile>> OpenAppendable(const std::string&) override { return No(); }
  mbx::Result<std::unique_ptr<mbx::WritableFile>> NewWritableFile(const std::string&) override { return No(); }
  mbx::Result<std::unique_ptr<mbx::SequentialFile>> NewSequentialFile(const std::string&) override { return No(); }
  mbx::Status ReadFile(const std::string& path, std::string* out) override {
    auto it = files.find(Base(path));
    if (it == files.end()) return mbx::Status::NotFound(path);
    *out = it->second;
    return mbx::Status::Ok();
  }
  mbx::Status WriteFileAtomic(const std::string&, std::string_view, bool) override { return No(); }
  mbx::Status RemoveFile(const std::string&) override { return No(); }
  mbx::Status SyncDir(const std::string&) override { return No(); }
  mbx::Status RenameFile(const std::string&, const std::string&) override { return No(); }
  mbx::Status CreateDir(const std::string&) override { return No(); }
  mbx::Result<uint64_t> GetFileSize(const std::string& path) override {
    auto it = files.find(Base(path));
    if (it == files.end()) return mbx::Status::NotFound(path);
    return uint64_t(it->second.size());
  }
  mbx::Status GetChildren(const std::string&, std::vector<std::string>* names) override {
    names->clear();
    for (const auto& [name, content] : files) names->push_back(name);  // sorted, as the map is
    return mbx::Status::Ok();
  }
  mbx::Result<std::unique_ptr<mbx::FileLock>> LockFile(const std::string&) override { return No(); }

 private:
  static std::string Base(const std::string& path) { return path.substr(path.rfind('/') + 1); }
  static mbx::Status No() { return mbx::Status::Internal("not in the fuzzer's in-memory folder"); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static MemEnv* env = new MemEnv();
  env->files.clear();
  const std::string in(reinterpret_cast<const char*>(data), size);
  const size_t cut = in.empty() ? 0 : size_t(uint8_t(in[0])) % (in.size() + 1);
  std::string stream;
  mbx::txlog::FrameRecord(0, in.substr(0, cut), &stream);
  stream += in.substr(cut);
  constexpr size_t kFile = 4096;
  for (size_t off = 0, gen = 1; off < stream.size(); off += kFile, ++gen) {
    env->files[mbx::txlog::FileName(gen)] = stream.substr(off, std::min(kFile, stream.size() - off));
  }
  mbx::TxLogReader reader("/fuzz/logs", kFile, 0, env);
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
