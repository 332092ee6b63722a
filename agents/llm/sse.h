// SseParser: Server-Sent Events (the WHATWG event-stream format) as OpenAI and Anthropic
// stream them, fed in chunks that may be cut anywhere.
//
// Written here rather than taken from a library: Debian packages no C++ SSE parser, the
// format is a few lines of rules (fields, blank-line dispatch, CR/LF/CRLF line ends), and
// it has to work on libcurl's write callback chunks without copying the stream.
#ifndef AGENTD_AGENTS_LLM_SSE_H_
#define AGENTD_AGENTS_LLM_SSE_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace agentd::llm {

struct SseEvent {
  std::string event;  // the `event:` field; empty means "message"
  std::string data;   // `data:` lines joined with '\n'
};

class SseParser {
 public:
  // Called once per complete event; a non-OK status stops the parse and is returned.
  using EventCallback = std::function<absl::Status(const SseEvent&)>;

  // Feeds the next bytes; events are dispatched as they complete. A line longer than
  // `max_line` bytes is an error (a runaway stream), not an unbounded buffer.
  absl::Status Feed(absl::string_view bytes, const EventCallback& on_event);
  // Bytes seen that did not make a complete event yet (the stream ended mid-event when
  // this is non-empty at the end).
  bool pending() const { return !line_.empty() || !data_.empty() || has_data_; }

  static constexpr size_t kMaxLine = 8 << 20;

 private:
  absl::Status Line(absl::string_view line, const EventCallback& on_event);

  std::string line_;  // an unfinished line
  bool last_was_cr_ = false;
  std::string event_, data_;
  bool has_data_ = false;
};

}  // namespace agentd::llm

#endif  // AGENTD_AGENTS_LLM_SSE_H_
