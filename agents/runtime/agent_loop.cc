#include "agents/runtime/agent_loop.h"

#include <fcntl.h>
#include <unistd.h>

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/text.h"
#include "nlohmann/json.hpp"

namespace agentd::agent {
namespace {

using nlohmann::json;

constexpr char kComplete[] = "complete_task";
// How a nudge after a plain-text turn begins (and how the loop counts them).
constexpr char kNudge[] = "[agentd]";
constexpr char kFail[] = "fail_task";

std::vector<llm::ToolSpec> TaskTools() {
  json summary = {{"type", "object"},
                  {"properties", {{"summary", {{"type", "string"}}}}},
                  {"required", {"summary"}}};
  json reason = {{"type", "object"},
                 {"properties", {{"reason", {{"type", "string"}}}}},
                 {"required", {"reason"}}};
  return {{kComplete, "Finish the task: a short summary of the result for whoever asked.", summary},
          {kFail, "Give up on the task, saying why (what was tried, what blocks it).", reason}};
}

// Whether an fs.edit or fs.write cut off at a restart already took effect.
std::optional<bool> AlreadyApplied(const tools::ToolContext& ctx, const llm::ToolCall& call) {
  if (call.name != "fs.write" && call.name != "fs.edit") return std::nullopt;
  json args = json::parse(call.arguments, nullptr, false);
  if (!args.is_object() || !args.contains("path") || !args["path"].is_string()) return std::nullopt;
  // The bounded, non-blocking reader: a FIFO put there since must not hang the resume.
  absl::StatusOr<tools::FileData> file =
      ctx.workspace->ReadFile(args["path"].get<std::string>(), 16 << 20);
  if (!file.ok()) return call.name == "fs.write" ? std::optional<bool>(false) : std::nullopt;
  const std::string& data = file->bytes;
  if (call.name == "fs.write" && args.contains("content") && args["content"].is_string()) {
    return data == args["content"].get<std::string>();
  }
  if (call.name == "fs.edit" && args.contains("old_text") && args.contains("new_text") &&
      args["old_text"].is_string() && args["new_text"].is_string()) {
    std::string old_text = args["old_text"], new_text = args["new_text"];
    bool has_new = !new_text.empty() && data.find(new_text) != std::string::npos;
    bool has_old = data.find(old_text) != std::string::npos;
    if (has_new && !has_old) return true;
    if (has_old && !has_new) return false;
  }
  return std::nullopt;
}

}  // namespace

AgentLoop::AgentLoop(llm::LlmClient* client, std::string model, const tools::ToolBox* tools,
                     tools::ToolContext tool_context, session::SessionStore* sessions,
                     Budget* budget, LoopLimits limits, LoopEvents events)
    : client_(client),
      model_(std::move(model)),
      tools_(tools),
      ctx_(tool_context),
      sessions_(sessions),
      budget_(budget),
      limits_(limits),
      events_(std::move(events)) {}

std::vector<llm::ToolSpec> AgentLoop::Specs() const {
  std::vector<llm::ToolSpec> specs;
  for (const tools::Tool* t : tools_->tools()) {
    specs.push_back({t->name(), t->description(), t->schema()});
  }
  for (llm::ToolSpec& s : TaskTools()) specs.push_back(std::move(s));
  return specs;
}

tools::ToolResult AgentLoop::RunTool(const std::string& task, const llm::ToolCall& call,
                                     bool resumed) {
  const tools::Tool* tool = tools_->Find(call.name);
  bool journaled = tool != nullptr && tool->side_effect();
  if (resumed && journaled && !tool->idempotent()) {
    std::optional<bool> applied = AlreadyApplied(ctx_, call);
    if (applied == true) {
      tools::ToolResult r{absl::StrCat(call.name, ": already applied before the agent restarted")};
      (void)sessions_->RecordResult(task, call.id, r.content, false);
      return r;
    }
    if (!applied.has_value()) {
      tools::ToolResult r{
          absl::StrCat(call.name,
                       ": the agent restarted while this call ran; it may or may not "
                       "have taken effect. Check the workspace before running it "
                       "again."),
          true};
      (void)sessions_->RecordResult(task, call.id, r.content, true);
      return r;
    }
    // Not applied: safe to run now.
  }
  if (journaled) {
    if (absl::Status s = sessions_->RecordIntent(task, call); !s.ok()) {
      return {absl::StrCat(call.name, ": not run: the journal cannot be written: ", s.message()),
              true};
    }
  }
  if (events_.tool_started) events_.tool_started(call);
  tools::ToolContext ctx = ctx_;
  if (events_.tool_trace) ctx.traceparent = events_.tool_trace(call);
  if (ctx.task_id.empty()) ctx.task_id = task;  // the caller may name the task otherwise
  ctx.call_id = call.id;
  tools::ToolResult r = tools_->Call(call.name, call.arguments, ctx);
  if (journaled) (void)sessions_->RecordResult(task, call.id, r.content, r.error);
  if (events_.tool) events_.tool(call, r);
  return r;
}

absl::StatusOr<TaskOutcome> AgentLoop::Run(const std::string& task_id,
                                           const std::string& system_prompt,
                                           const std::string& instructions,
                                           const llm::CancelToken* cancel,
                                           const std::string& resume_note,
                                           const std::string& completion_refused) {
  absl::StatusOr<std::vector<llm::Message>> conv = sessions_->Conversation(task_id);
  if (!conv.ok()) return conv.status();
  const bool fresh = conv->empty();
  if (fresh) {
    // Both in one transaction: a conversation is never found begun without its task.
    std::vector<llm::Message> start = {llm::SystemMessage(system_prompt),
                                       llm::UserMessage(instructions)};
    if (absl::Status s = sessions_->AppendAll(task_id, start); !s.ok()) return s;
    for (llm::Message& m : start) conv->push_back(std::move(m));
    if (events_.prompt) events_.prompt(system_prompt, instructions);
  }
  auto noted = [&](NoteKind kind, const std::string& text) {
    if (events_.note) events_.note(kind, text);
  };
  if (!completion_refused.empty()) {
    // agentd did not take the last complete_task (a goal's check failed): the model hears
    // why as that call's answer, before anything else is added, and goes on. Once
    // answered it is not answered again (a restart finds the answer in the session).
    // The same refusal, delivered again (a reconnect), is not applied twice: it would
    // answer a later completion with an earlier round's failures.
    bool applied = false;
    for (const llm::Message& m : *conv) {
      applied = applied || ((m.role == llm::Role::kTool || m.role == llm::Role::kUser) &&
                            m.content == completion_refused);
    }
    int last = static_cast<int>(conv->size()) - 1;
    while (last >= 0 && (*conv)[last].role == llm::Role::kTool) --last;
    if (!applied && last >= 0 && (*conv)[last].role == llm::Role::kAssistant) {
      std::set<std::string> answered;
      for (size_t i = static_cast<size_t>(last) + 1; i < conv->size(); ++i) {
        answered.insert((*conv)[i].tool_call_id);
      }
      for (const llm::ToolCall& call : std::vector<llm::ToolCall>((*conv)[last].tool_calls)) {
        if (call.name != kComplete || answered.count(call.id) != 0) continue;
        llm::Message m = llm::ToolResultMessage(call.id, call.name, completion_refused, true);
        if (absl::Status s = sessions_->Append(task_id, m); !s.ok()) return s;
        conv->push_back(std::move(m));
        applied = true;
        noted(NoteKind::kCompletionRefused, completion_refused);
      }
    }
    if (!applied) {
      // No complete_task call to answer (a role that ends on text): it is told all the same.
      llm::Message m = llm::UserMessage(completion_refused);
      if (absl::Status s = sessions_->Append(task_id, m); !s.ok()) return s;
      conv->push_back(std::move(m));
      noted(NoteKind::kCompletionRefused, completion_refused);
    }
  }
  if (!fresh && !resume_note.empty()) {
    bool present = false;
    for (const llm::Message& m : *conv) {
      present = present || (m.role == llm::Role::kUser && m.content == resume_note);
    }
    if (!present) {
      llm::Message m = llm::UserMessage(resume_note);
      if (absl::Status s = sessions_->Append(task_id, m); !s.ok()) return s;
      conv->push_back(std::move(m));
      noted(NoteKind::kResumed, resume_note);
    }
  }
  // Messages that came while the task waited are read before its last turn is judged:
  // a turn that ended waiting is not an answer once something new has arrived.
  if (events_.inbox) {
    for (auto& [id, text] : events_.inbox()) {
      llm::Message m = llm::UserMessage(std::move(text));
      if (absl::Status s = sessions_->AppendFromInbox(task_id, m, id); !s.ok()) return s;
      noted(NoteKind::kMessage, m.content);
      conv->push_back(std::move(m));
    }
  }
  auto open_children = [&] { return events_.open_children ? events_.open_children() : 0; };
  TaskOutcome out;
  auto finish = [&](TaskOutcome::Status st, std::string summary,
                    TaskOutcome::Failure failure = TaskOutcome::Failure::kNone) {
    out.status = st;
    out.failure = st == TaskOutcome::Status::kFailed && failure == TaskOutcome::Failure::kNone
                      ? TaskOutcome::Failure::kAgent
                      : failure;
    out.summary = std::move(summary);
    return out;
  };
  auto append = [&](llm::Message m) -> absl::Status {
    if (absl::Status s = sessions_->Append(task_id, m); !s.ok()) return s;
    conv->push_back(std::move(m));
    return absl::OkStatus();
  };
  // A restart may have cut the last turn's calls short: answer each one before going on.
  bool resuming = true;
  absl::Time start = absl::Now();
  for (;;) {
    // The last assistant turn, and which of its calls have a result after it: a restart
    // may have come between two results.
    int last_turn = static_cast<int>(conv->size()) - 1;
    while (last_turn >= 0 && (*conv)[last_turn].role == llm::Role::kTool) --last_turn;
    if (last_turn >= 0 && (*conv)[last_turn].role == llm::Role::kAssistant) {
      const llm::Message last = (*conv)[last_turn];
      std::set<std::string> answered;
      for (size_t i = static_cast<size_t>(last_turn) + 1; i < conv->size(); ++i) {
        answered.insert((*conv)[i].tool_call_id);
      }
      // The turn's other calls run first, in order: a turn that writes a file and completes
      // the task in one go has its write done before the task ends.
      for (const llm::ToolCall& call : last.tool_calls) {
        if (answered.count(call.id) != 0 || call.name == kComplete || call.name == kFail) continue;
        if (cancel != nullptr && cancel->cancelled()) {
          return finish(TaskOutcome::Status::kCanceled, "canceled");
        }
        absl::StatusOr<std::optional<session::JournalEntry>> j = sessions_->Find(task_id, call.id);
        if (!j.ok()) return j.status();
        tools::ToolResult r;
        if (j->has_value() && (*j)->state == session::CallState::kDone) {
          // Done before a restart: not run again. Made valid here too, for a result that an
          // older agent journaled raw (the crash loop this once caused on resume).
          r = {ValidUtf8((*j)->result), (*j)->error};
        } else {
          r = RunTool(task_id, call, resuming && j->has_value());
        }
        if (absl::Status s = append(llm::ToolResultMessage(call.id, call.name, r.content, r.error));
            !s.ok()) {
          return s;
        }
        answered.insert(call.id);
      }
      // complete_task while delegated work is open (as far as this agent knows) is not an
      // end, and neither a refusal the model must argue with: the task waits. agentd, not
      // this count, decides whether anything is still open (a child may have ended while
      // this turn ran): it hands the task straight back when nothing is, with the
      // children's results, and the model completes it then.
      bool wait_for_children = false;
      for (const llm::ToolCall& call : last.tool_calls) {
        if (call.name == kComplete && open_children() > 0) wait_for_children = true;
      }
      for (const llm::ToolCall& call : last.tool_calls) {
        if (answered.count(call.id) != 0) continue;
        if (call.name == kComplete && open_children() > 0) {
          // Completing with delegated work still open would orphan it.
          std::string why = absl::StrCat(
              kComplete, ": ", open_children(),
              " delegated task(s) have not ended yet. This task is handed back to you with "
              "their results when they end: complete it then.");
          if (absl::Status s = append(llm::ToolResultMessage(call.id, call.name, why, true));
              !s.ok()) {
            return s;
          }
          answered.insert(call.id);
          continue;
        }
        if (call.name == kComplete || call.name == kFail) {
          // The model may send anything as the summary: only a string is taken.
          json args = json::parse(call.arguments, nullptr, false);
          const char* key = call.name == kComplete ? "summary" : "reason";
          std::string text = args.is_object() && args.contains(key) && args[key].is_string()
                                 ? args[key].get<std::string>()
                                 : "";
          return finish(call.name == kComplete ? TaskOutcome::Status::kCompleted
                                               : TaskOutcome::Status::kFailed,
                        text.empty() ? last.content : text);
        }
      }
      if ((last.tool_calls.empty() || wait_for_children) && open_children() > 0) {
        return finish(TaskOutcome::Status::kWaiting,
                      absl::StrCat(open_children(), " delegated task(s)"));
      }
      if (last.tool_calls.empty() && limits_.ends_on_text) {
        // The role takes an answer without a tool call as the result.
        return finish(TaskOutcome::Status::kCompleted, last.content);
      }
      if (last.tool_calls.empty()) {
        // Not an end: models, small ones especially, announce what they will do and stop.
        // Nudged to complete, fail or go on; a nudge already answered by a plain turn
        // counts (they are in the session, so a restart does not reset the count).
        int nudges = 0;
        for (int i = last_turn - 1; i >= 0; --i) {
          const llm::Message& m = (*conv)[i];
          if (m.role == llm::Role::kAssistant && !m.tool_calls.empty()) break;
          if (m.role == llm::Role::kUser && absl::StartsWith(m.content, kNudge)) ++nudges;
        }
        if (nudges >= limits_.max_nudges) {
          return finish(TaskOutcome::Status::kFailed,
                        absl::StrCat("no result: the model answered in plain text ", nudges + 1,
                                     " time(s) in a row without calling ", kComplete, " or ", kFail,
                                     "; its last answer: ", Utf8Prefix(last.content, 500)),
                        TaskOutcome::Failure::kNoResult);
        }
        std::string nudge =
            absl::StrCat(kNudge,
                         " Your turn ended without a tool call, so the task is still open. If it "
                         "is done, call ",
                         kComplete,
                         " with a summary of what was done; if it cannot be "
                         "done, call ",
                         kFail, " with the reason; otherwise go on with the work.");
        if (absl::Status s = append(llm::UserMessage(nudge)); !s.ok()) return s;
        noted(NoteKind::kNudge, nudge);
        continue;
      }
    }
    resuming = false;
    if (cancel != nullptr && cancel->cancelled())
      return finish(TaskOutcome::Status::kCanceled, "canceled");
    if (out.turns >= limits_.max_turns) {
      return finish(TaskOutcome::Status::kFailed,
                    absl::StrCat("stopped after ", out.turns, " model turns (the limit)"),
                    TaskOutcome::Failure::kLimit);
    }
    if (out.usage.prompt_tokens + out.usage.completion_tokens >= limits_.max_tokens) {
      return finish(
          TaskOutcome::Status::kFailed,
          absl::StrCat("stopped after ", out.usage.prompt_tokens + out.usage.completion_tokens,
                       " tokens (the limit is ", limits_.max_tokens, ")"),
          TaskOutcome::Failure::kLimit);
    }
    if (absl::Now() - start >= limits_.max_wall) {
      return finish(TaskOutcome::Status::kFailed,
                    absl::StrCat("stopped after ", absl::FormatDuration(limits_.max_wall),
                                 " (the time limit)"),
                    TaskOutcome::Failure::kLimit);
    }
    if (events_.inbox) {
      for (auto& [id, text] : events_.inbox()) {
        llm::Message m = llm::UserMessage(std::move(text));
        if (absl::Status s = sessions_->AppendFromInbox(task_id, m, id); !s.ok()) return s;
        noted(NoteKind::kMessage, m.content);
        conv->push_back(std::move(m));
      }
    }
    llm::ChatRequest req;
    req.model = model_;
    req.temperature = sampling_.temperature;
    req.max_tokens = sampling_.max_tokens;
    req.messages = *conv;
    req.tools = Specs();
    size_t chars = 0;
    for (const llm::Message& m : req.messages) chars += m.content.size() + m.tool_calls.size() * 64;
    if (events_.calling) events_.calling();
    if (budget_ != nullptr) {
      if (absl::Status s = budget_->Reserve(task_id, static_cast<int64_t>(chars / 4) + 1024);
          !s.ok()) {
        return finish(TaskOutcome::Status::kFailed,
                      absl::StrCat("no budget for another model call: ", s.message()),
                      TaskOutcome::Failure::kBudget);
      }
    }
    llm::CallStats stats;
    if (events_.model_trace) req.traceparent = events_.model_trace();
    const absl::Time call_start = absl::Now();
    absl::StatusOr<llm::ChatResult> r =
        client_->Chat(req, events_.text, cancel, events_.text_discarded, &stats);
    if (events_.model_call) events_.model_call(req, call_start, r, stats);
    ++out.turns;
    if (!r.ok()) {
      if (events_.turn) events_.turn(r, stats);
      if (budget_ != nullptr) budget_->ReportFailure(task_id, r.status(), stats);
      if (r.status().code() == absl::StatusCode::kCancelled) {
        return finish(TaskOutcome::Status::kCanceled, "canceled");
      }
      return finish(TaskOutcome::Status::kFailed, std::string(r.status().message()),
                    TaskOutcome::Failure::kProvider);
    }
    out.usage.prompt_tokens += r->usage.prompt_tokens;
    out.usage.completion_tokens += r->usage.completion_tokens;
    out.cost_usd += r->cost_usd;
    if (budget_ != nullptr) budget_->Report(task_id, r->usage, r->cost_usd, stats);
    // Tool calls carry ids of the agent's own, never the provider's: providers repeat
    // theirs (Ollama's codec numbers them call_1… afresh in every response; local
    // OpenAI-compatible servers reuse call_1), and the ids key the journal and the
    // requests to agentd (messages, delegations), where a repeated id would pass for the
    // earlier call. The task and the message's place in its conversation make them
    // unique in the session, and the same on a replay.
    std::string task_part = task_id;
    for (char& c : task_part) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') c = '_';
    }
    std::vector<llm::ToolCall> calls = r->tool_calls;
    for (size_t i = 0; i < calls.size(); ++i) {
      calls[i].id = absl::StrCat("call_", task_part, "_", conv->size(), "_", i + 1);
    }
    if (events_.turn) {
      r->tool_calls = calls;
      events_.turn(r, stats);
    }
    if (absl::Status s = append(llm::AssistantMessage(r->text, calls)); !s.ok()) return s;
  }
}

}  // namespace agentd::agent
