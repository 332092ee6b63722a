// AgentLoop: how an agent works a task — ask the model, run the tools it calls, feed the
// results back, until it completes or fails the task or a limit is reached.
//
// Every message is in the SessionStore before the next step, and every call with a side
// effect has its intent journaled before it runs and its result after. Run() on a task
// that has a conversation already resumes it: calls with a journaled result are not run
// again; a call cut off between intent and result is re-checked where the tool can tell
// (an fs.edit already applied, an fs.write of the same content) and otherwise reported
// to the model as uncertain, never blindly repeated.
//
// complete_task and fail_task end the task; complete_task while delegated tasks are open
// (LoopEvents::open_children) makes it wait for them instead (kWaiting: agentd hands it
// back with their results, at once when they have all ended meanwhile). A turn that calls
// no tool does not end it either: while delegated tasks are open the task waits for them;
// otherwise the model is nudged to complete or fail it or go on (LoopLimits::max_nudges
// times in a row, then the task fails with kNoResult), unless the role ends tasks on text
// (LoopLimits::ends_on_text). Budget: before each model call a Budget (the daemon's
// ledger) may refuse, and the task stops cleanly saying so.
//
// Thread-safety: one Run() at a time; Cancel through the token from any thread (the loop
// stops within a second: the model call and a running program are cut short).
#ifndef AGENTD_AGENTS_RUNTIME_AGENT_LOOP_H_
#define AGENTD_AGENTS_RUNTIME_AGENT_LOOP_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agents/llm/client.h"
#include "agents/session/session.h"
#include "agents/tools/tool.h"

namespace agentd::agent {

// How the model samples, when the role's model config says (unset: the provider's default).
struct Sampling {
  std::optional<double> temperature;
  std::optional<int64_t> max_tokens;  // per call, for the completion
};

struct LoopLimits {
  int max_turns = 50;
  int64_t max_tokens = 500000;  // prompt + completion, over the task
  absl::Duration max_wall = absl::Minutes(30);
  // A turn without a tool call is sent back to the model as a nudge (call complete_task
  // or fail_task, or go on); after max_nudges of them in a row the task fails (kNoResult).
  // With ends_on_text such a turn completes the task with its text instead.
  int max_nudges = 2;
  bool ends_on_text = false;
};

// The daemon's ledger, as the loop sees it. Reserve() before a call (an error stops the
// task: RESOURCE_EXHAUSTED with the reason), Report() after it.
class Budget {
 public:
  virtual ~Budget() = default;
  virtual absl::Status Reserve(const std::string& task, int64_t estimated_tokens) = 0;
  // A call that returned: its usage settles the reservation Reserve() took.
  virtual void Report(const std::string& task, const llm::Usage& usage, double cost_usd,
                      const llm::CallStats& stats) = 0;
  // A call that failed after its retries (or was canceled): no usage, and the reservation
  // is released; the daemon counts it by outcome.
  virtual void ReportFailure(const std::string& task, const absl::Status& error,
                             const llm::CallStats& stats) = 0;
};

struct TaskOutcome {
  // kWaiting: the turn ended with delegated tasks still open; the task goes on when
  // they end (Run again with their results as `resume_note`).
  enum class Status { kCompleted, kFailed, kCanceled, kWaiting };
  // Why a task failed: the model gave up (fail_task), a budget refused the next call,
  // the provider kept failing, or a limit (turns, tokens, time) was reached.
  // kNoResult: it kept answering in plain text past its nudges.
  enum class Failure { kNone, kAgent, kBudget, kProvider, kLimit, kNoResult };
  Status status = Status::kFailed;
  Failure failure = Failure::kNone;
  std::string summary;  // the result the agent reports (or why it failed)
  llm::Usage usage;     // this Run()'s model usage
  double cost_usd = 0;
  int turns = 0;
};

// Text the loop adds to the conversation that is not the model's (LoopEvents::note).
enum class NoteKind {
  kNudge,              // after a turn that called no tool
  kResumed,            // the task handed back: its delegated tasks' results
  kMessage,            // a message from another agent or a person
  kCompletionRefused,  // agentd did not take the completion (a goal's check failed)
};

// What the loop tells the outside as it works (streamed to the daemon as events).
struct LoopEvents {
  // A new conversation began with this system prompt and first user message.
  std::function<void(const std::string& system_prompt, const std::string& instructions)> prompt;
  // Text added to the conversation that is not the model's, as the model is given it.
  std::function<void(NoteKind kind, const std::string& text)> note;
  // A model call ended: its result (with the tool calls under the ids the loop gave them)
  // or its error after the retries, and how it went.
  std::function<void(const absl::StatusOr<llm::ChatResult>& result, const llm::CallStats& stats)>
      turn;
  std::function<void(absl::string_view text)> text;  // model output, as it streams
  // The text streamed since the model call began is void: the call is being retried whole.
  std::function<void()> text_discarded;
  std::function<void(const llm::ToolCall& call)> tool_started;  // about to run it
  // About to ask for the next call's budget and make it: the last moment to say what the
  // task did so far before waiting (for the budget, for the model).
  std::function<void()> calling;
  std::function<void(const llm::ToolCall& call, const tools::ToolResult& r)> tool;
  // Tracing, when set: the trace context of a tool call's span, asked for right after
  // tool_started (the tool passes it on: tools::ToolContext::traceparent), and of the
  // model call about to be made (sent to the provider when not empty); then each model
  // call as it ended, with when it began.
  std::function<std::string(const llm::ToolCall& call)> tool_trace;
  std::function<std::string()> model_trace;
  std::function<void(const llm::ChatRequest& req, absl::Time start,
                     const absl::StatusOr<llm::ChatResult>& result, const llm::CallStats& stats)>
      model_call;
  // How many tasks this Run delegated that have not ended: while any are open, the
  // task cannot complete, and a turn without tool calls waits for them.
  std::function<int()> open_children;
  // Messages that arrived for the agent, added to the conversation (as user messages)
  // before the next model call: each as (inbox id, text), appended and dropped from the
  // session's inbox in one transaction (SessionStore::AppendFromInbox).
  std::function<std::vector<std::pair<std::string, std::string>>()> inbox;
};

class AgentLoop {
 public:
  // None of the pointers is owned. `budget` may be null (no limit but `limits`).
  AgentLoop(llm::LlmClient* client, std::string model, const tools::ToolBox* tools,
            tools::ToolContext tool_context, session::SessionStore* sessions, Budget* budget,
            LoopLimits limits, LoopEvents events = {});

  // Works task `task_id`: `system_prompt` and `instructions` start a new conversation (and
  // are ignored when resuming one). Errors: the session store failed (the task can be
  // resumed later); everything else is a TaskOutcome.
  // `resume_note`, when not empty and not in the conversation yet, is added as a user
  // message before going on (the results of delegated tasks). `completion_refused`, when
  // not empty, answers the last turn's unanswered complete_task call as an error (agentd
  // did not accept the completion: a goal's check failed), and the task goes on.
  void set_sampling(Sampling sampling) { sampling_ = sampling; }

  absl::StatusOr<TaskOutcome> Run(const std::string& task_id, const std::string& system_prompt,
                                  const std::string& instructions,
                                  const llm::CancelToken* cancel = nullptr,
                                  const std::string& resume_note = "",
                                  const std::string& completion_refused = "");

 private:
  // Runs one call with its journal; `resumed` for a call found cut off at restart.
  tools::ToolResult RunTool(const std::string& task, const llm::ToolCall& call, bool resumed);
  std::vector<llm::ToolSpec> Specs() const;

  llm::LlmClient* client_;
  std::string model_;
  const tools::ToolBox* tools_;
  tools::ToolContext ctx_;
  session::SessionStore* sessions_;
  Budget* budget_;
  LoopLimits limits_;
  LoopEvents events_;
  Sampling sampling_;
};

}  // namespace agentd::agent

#endif  // AGENTD_AGENTS_RUNTIME_AGENT_LOOP_H_
