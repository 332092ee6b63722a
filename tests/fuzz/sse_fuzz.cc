// The SSE parser (agents/llm/sse.h) on any stream cut anywhere: the same events whatever
// the cut, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "agents/llm/sse.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

// Events (or the error) of `stream` fed in pieces of `piece` bytes.
std::pair<std::vector<std::pair<std::string, std::string>>, bool> Parse(const std::string& stream,
                                                                        size_t piece) {
  agentd::llm::SseParser p;
  std::vector<std::pair<std::string, std::string>> events;
  for (size_t off = 0; off < stream.size(); off += piece) {
    absl::Status s =
        p.Feed(absl::string_view(stream).substr(off, piece), [&](const agentd::llm::SseEvent& e) {
          events.emplace_back(e.event, e.data);
          return absl::OkStatus();
        });
    if (!s.ok()) return {events, false};
  }
  return {events, true};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t piece = data[0] % 16 + 1;
  std::string stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto whole = Parse(stream, stream.size() + 1);
  auto cut = Parse(stream, piece);
  FUZZ_CHECK(whole == cut);
  return 0;
}
