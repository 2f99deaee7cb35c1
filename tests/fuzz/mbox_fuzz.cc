// libFuzzer target: the mbox splitter and writer, and GMime property
// extraction on the first messages and the whole input.
//
// The input is split as mboxrd and as mboxo; GMime reads the first four
// messages and the whole input. Properties: no crash, no
// out-of-bounds access; an input starting with "From " always splits; every
// message's offset points at a "From " line of the input, in increasing
// order; and every message that ends with "\n" (or is empty) survives
// AppendMboxMessage (mboxrd) then SplitMbox byte-exact, alone and together
// with the others. A violated property abort()s so libFuzzer keeps the input.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "engine/mailio/mbox.h"
#include "engine/mailio/mime_props.h"

namespace {

using mbx::Status;
using mbx::mail::MboxFormat;
using mbx::mail::MboxMessage;

void Check(bool cond) {
  if (!cond) std::abort();
}

std::vector<MboxMessage> SplitAll(std::string_view data, MboxFormat format, Status* st) {
  std::vector<MboxMessage> out;
  *st = mbx::mail::SplitMbox(data, format, [&](MboxMessage&& m) {
    out.push_back(std::move(m));
    return Status::Ok();
  });
  return out;
}

constexpr size_t kPropsPerInput = 4;

bool RoundTrips(const MboxMessage& m) { return m.bytes.empty() || m.bytes.back() == '\n'; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const bool is_mbox = in.substr(0, 5) == "From ";
  for (const MboxFormat format : {MboxFormat::kMboxrd, MboxFormat::kMboxo}) {
    Status st;
    const std::vector<MboxMessage> msgs = SplitAll(in, format, &st);
    Check(st.ok() == (is_mbox || in.empty()));
    if (!st.ok()) continue;

    uint64_t prev = 0;
    for (size_t i = 0; i < msgs.size(); ++i) {
      const MboxMessage& m = msgs[i];
      Check(m.offset < in.size() && in.substr(m.offset, 5) == "From ");
      Check(i == 0 ? m.offset == 0 : m.offset > prev);
      Check(m.bytes.size() <= in.size());
      prev = m.offset;
    }

    std::string all;
    std::vector<const MboxMessage*> kept;
    for (const MboxMessage& m : msgs) {
      if (!RoundTrips(m)) continue;
      std::string one;
      mbx::mail::AppendMboxMessage(&one, m.from_line, m.bytes, MboxFormat::kMboxrd);
      const std::vector<MboxMessage> back = SplitAll(one, MboxFormat::kMboxrd, &st);
      Check(st.ok() && back.size() == 1 && back[0].bytes == m.bytes);
      if (m.from_line.find('\r') == std::string::npos) Check(back[0].from_line == m.from_line);
      all += one;
      kept.push_back(&m);
    }
    const std::vector<MboxMessage> again = SplitAll(all, MboxFormat::kMboxrd, &st);
    Check(st.ok() && again.size() == kept.size());
    for (size_t i = 0; i < kept.size(); ++i) Check(again[i].bytes == kept[i]->bytes);

    if (format == MboxFormat::kMboxrd) {
      // GMime on the first few messages: each is independent bytes the
      // fuzzer can put first, and an input of a hundred tiny messages would
      // otherwise cost a hundred parses (most of the run's time).
      for (size_t i = 0; i < std::min<size_t>(msgs.size(), kPropsPerInput); ++i) {
        auto props = mbx::mail::ExtractProps(msgs[i].bytes);
        Check(props.ok() || props.status().IsCorruption());
      }
    }
  }
  // Not every input is an mbox: the properties of the raw input too.
  auto props = mbx::mail::ExtractProps(in);
  Check(props.ok() || props.status().IsCorruption());
  return 0;
}
