// One provider codec's decoders (agents/llm/codec.h), AGENTD_FUZZ_CODEC naming which: the
// stream decoder fed in pieces, the whole-response parser, and the error-body reader, on
// any bytes. The contract: a result or a Status, never a crash or an exception (libFuzzer
// reports an escaping exception as a crash), and every string returned is valid UTF-8.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "agents/llm/codec.h"
#include "common/text.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using agentd::IsValidUtf8;
using agentd::llm::ChatRequest;
using agentd::llm::ChatResult;

void CheckResult(const absl::StatusOr<ChatResult>& r) {
  if (!r.ok()) {
    FUZZ_CHECK(IsValidUtf8(r.status().message()));
    return;
  }
  FUZZ_CHECK(IsValidUtf8(r->text));
  FUZZ_CHECK(IsValidUtf8(r->finish_reason));
  FUZZ_CHECK(r->usage.prompt_tokens >= 0 && r->usage.completion_tokens >= 0);
  for (const agentd::llm::ToolCall& c : r->tool_calls) {
    FUZZ_CHECK(IsValidUtf8(c.id) && IsValidUtf8(c.name) && IsValidUtf8(c.arguments));
  }
}

const ChatRequest& Request() {
  static const ChatRequest* req = [] {
    auto* r = new ChatRequest;
    r->model = "m";
    r->tools = {{"fs.read", "", nlohmann::json::object()},
                {"shell.run", "", nlohmann::json::object()}};
    return r;
  }();
  return *req;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::unique_ptr<agentd::llm::Codec> codec = agentd::llm::NewCodec(AGENTD_FUZZ_CODEC);
  if (size == 0) return 0;
  size_t piece = data[0] % 32 + 1;
  std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::unique_ptr<agentd::llm::StreamDecoder> d = codec->NewDecoder(Request());
  absl::Status fed = absl::OkStatus();
  for (size_t off = 0; off < body.size() && fed.ok(); off += piece) {
    fed = d->Feed(absl::string_view(body).substr(off, piece),
                  [](absl::string_view text) { FUZZ_CHECK(IsValidUtf8(text)); });
  }
  if (fed.ok()) {
    CheckResult(d->Finish());
  } else {
    FUZZ_CHECK(IsValidUtf8(fed.message()));
  }
  CheckResult(codec->Parse(body, Request()));
  FUZZ_CHECK(IsValidUtf8(codec->ErrorMessage(body)));
  return 0;
}
