// The provider-neutral shape of a chat with an LLM: what agentd-agent sends (messages,
// tools) and what comes back (text, tool calls, usage). Each provider's codec maps these
// to and from its own wire format.
#ifndef AGENTD_AGENTS_LLM_TYPES_H_
#define AGENTD_AGENTS_LLM_TYPES_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace agentd::llm {

// A tool call the model asked for. `arguments` is JSON text as the model wrote it: it may
// not parse, and the caller must check it before use.
struct ToolCall {
  std::string id;         // the provider's id, echoed back with the result
  std::string name;       // agentd's tool name ("fs.read"), mapped back from the wire
  std::string arguments;  // JSON text

  bool operator==(const ToolCall&) const = default;
};

enum class Role { kSystem, kUser, kAssistant, kTool };

struct Message {
  Role role = Role::kUser;
  std::string content;
  std::vector<ToolCall> tool_calls;  // kAssistant: the calls it made
  std::string tool_call_id;          // kTool: the call this is the result of
  std::string tool_name;             // kTool: that call's tool
  bool tool_error = false;           // kTool: the result is an error the model should see
};

inline Message SystemMessage(std::string text) {
  Message m;
  m.role = Role::kSystem;
  m.content = std::move(text);
  return m;
}
inline Message UserMessage(std::string text) {
  Message m;
  m.content = std::move(text);
  return m;
}
inline Message AssistantMessage(std::string text, std::vector<ToolCall> calls = {}) {
  Message m;
  m.role = Role::kAssistant;
  m.content = std::move(text);
  m.tool_calls = std::move(calls);
  return m;
}
inline Message ToolResultMessage(std::string call_id, std::string tool, std::string content,
                                 bool error = false) {
  Message m;
  m.role = Role::kTool;
  m.tool_call_id = std::move(call_id);
  m.tool_name = std::move(tool);
  m.content = std::move(content);
  m.tool_error = error;
  return m;
}

struct ToolSpec {
  std::string name;  // agentd's name; dots become underscores on the wire (wire_name)
  std::string description;
  nlohmann::json parameters = nlohmann::json::object();  // JSON Schema of the arguments
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

struct ChatRequest {
  std::string model;
  std::vector<Message> messages;  // a leading kSystem message is the system prompt
  std::vector<ToolSpec> tools;
  std::optional<double> temperature;
  std::optional<int64_t> max_tokens;
  bool stream = true;
  // Sent as the W3C `traceparent` header when not empty: the call's span, for a provider
  // (or a gateway in front of it) that traces.
  std::string traceparent;
};

// How a call went, successful or not: for the daemon's metrics.
struct CallStats {
  int attempts = 0;        // HTTP attempts made (retries + 1)
  absl::Duration latency;  // from the first attempt's start to the end
  // To the first streamed text of the last attempt; infinite when none came (not
  // streamed, or tool calls only).
  absl::Duration first_token = absl::InfiniteDuration();
  // Why each retried attempt failed, in order (one per retry).
  std::vector<std::string> retry_reasons;
};

struct ChatResult {
  std::string text;
  // The model's reasoning, where the provider sends it apart from the answer (OpenAI-
  // compatible servers' reasoning_content or reasoning, Anthropic's thinking blocks,
  // Ollama's thinking). Shown to people; not sent back to the model.
  std::string reasoning;
  std::vector<ToolCall> tool_calls;
  std::string finish_reason;  // "stop", "tool_calls" or "length"
  Usage usage;
  double cost_usd = 0;  // from the model's price table
  int attempts = 1;     // HTTP attempts it took (retries + 1)
};

// Receives streamed text as it arrives. Called on the calling thread.
using TextCallback = std::function<void(absl::string_view text)>;
// Says that the text streamed so far for this call is void: the response was cut off
// and the call is being made again, whole; the text that follows starts the answer over.
using DiscardCallback = std::function<void()>;

// Provider tool names must match ^[a-zA-Z0-9_-]{1,64}$: "fs.read" travels as "fs_read".
std::string WireToolName(absl::string_view name);

}  // namespace agentd::llm

#endif  // AGENTD_AGENTS_LLM_TYPES_H_
