// gRPC-web framing (manager/web/grpc_web.h) on any body, binary and -text: frames or an
// error, never a crash; and the encoders round-trip whatever they are given.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "manager/web/grpc_web.h"
#include "tests/fuzz/fuzz_check.h"

namespace gw = agentd::grpc_web;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string body(reinterpret_cast<const char*>(data), size);
  for (bool text : {false, true}) {
    absl::StatusOr<std::vector<std::string>> frames = gw::DecodeRequest(body, text);
    if (frames.ok()) {
      size_t total = 0;
      for (const std::string& f : *frames) total += f.size();
      FUZZ_CHECK(text || total + 5 * frames->size() <= body.size());
    }
  }
  (void)gw::ParseTimeout(body);
  // Round trips: a frame made of these bytes decodes to them, in both modes.
  std::string frame = gw::Frame(gw::kDataFrame, body);
  absl::StatusOr<std::vector<std::string>> back = gw::DecodeRequest(frame, false);
  FUZZ_CHECK(back.ok() && back->size() == 1 && (*back)[0] == body);
  back = gw::DecodeRequest(absl::Base64Escape(frame), true);
  FUZZ_CHECK(back.ok() && back->size() == 1 && (*back)[0] == body);
  FUZZ_CHECK(gw::PercentDecode(gw::PercentEncode(body)) == body);
  (void)gw::PercentDecode(body);
  // A trailer is HTTP/1 header text: printable ASCII and CRLF only, whatever the message.
  std::string trailer = gw::TrailerFrame(static_cast<int>(size % 17), body);
  FUZZ_CHECK(trailer.size() >= 5 && static_cast<uint8_t>(trailer[0]) == gw::kTrailerFrame);
  for (size_t i = 5; i < trailer.size(); ++i) {
    char c = trailer[i];
    FUZZ_CHECK(c == '\r' || c == '\n' || (c >= 0x20 && c < 0x7f));
  }
  return 0;
}
