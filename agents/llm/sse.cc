#include "agents/llm/sse.h"

#include "absl/strings/str_cat.h"

namespace agentd::llm {

absl::Status SseParser::Feed(absl::string_view bytes, const EventCallback& on_event) {
  size_t start = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    char c = bytes[i];
    if (c != '\n' && c != '\r') continue;
    // "\r\n" is one line end: the '\n' right after a '\r' ends nothing.
    if (c == '\n' && last_was_cr_ && i == start && line_.empty()) {
      last_was_cr_ = false;
      start = i + 1;
      continue;
    }
    last_was_cr_ = c == '\r';
    absl::string_view piece = bytes.substr(start, i - start);
    absl::Status s;
    if (line_.empty()) {
      s = Line(piece, on_event);
    } else {
      line_.append(piece.data(), piece.size());
      std::string line = std::move(line_);
      line_.clear();
      s = Line(line, on_event);
    }
    if (!s.ok()) return s;
    start = i + 1;
  }
  if (start < bytes.size()) {
    last_was_cr_ = false;
    line_.append(bytes.data() + start, bytes.size() - start);
    if (line_.size() > kMaxLine) {
      return absl::ResourceExhaustedError(
          absl::StrCat("event stream line longer than ", kMaxLine, " bytes"));
    }
  }
  return absl::OkStatus();
}

absl::Status SseParser::Line(absl::string_view line, const EventCallback& on_event) {
  if (line.empty()) {  // dispatch
    absl::Status s = absl::OkStatus();
    if (has_data_) s = on_event(SseEvent{std::move(event_), std::move(data_)});
    event_.clear();
    data_.clear();
    has_data_ = false;
    return s;
  }
  if (line[0] == ':') return absl::OkStatus();  // a comment (keep-alive)
  size_t colon = line.find(':');
  absl::string_view field = line.substr(0, colon);
  absl::string_view value;
  if (colon != absl::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) data_.push_back('\n');
    data_.append(value.data(), value.size());
    has_data_ = true;
  } else if (field == "event") {
    event_.assign(value.data(), value.size());
  }
  // id and retry concern reconnecting EventSource clients; a chat stream is not resumed.
  return absl::OkStatus();
}

}  // namespace agentd::llm
