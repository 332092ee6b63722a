// TaskRunner: what an agentd-agent does with the deliveries on its Connect stream.
//
// Task assignments queue up and are worked one at a time on the runner's thread: the
// role's prompt template is rendered (templates/roles/<role>.md, sent by the daemon in
// the agent's definition), the role's model is called through the LlmClient with the
// role's tools, budget is reserved before each call and usage reported after it, and
// the outcome goes back as a TaskEvent (completed, failed, or waiting for delegated
// tasks). Streamed model text and finished tool calls go out as events as they happen.
//
// The conversation and tool journal live in the session store, keyed by task and
// attempt: an assignment sent again after the agent restarted (same attempt) resumes
// where the killed process stopped; a new attempt starts over. An assignment repeated
// for a task already finished in this process sends the outcome again.
//
// A cancel for the current task stops it within a second (the model call and a running
// program are cut short); a cancel for a queued task drops it.
//
// Thread-safety: OnDelivery from the Connect thread; Run on a thread of its own; Stop
// from any thread.
#ifndef AGENTD_AGENTS_RUNTIME_TASK_RUNNER_H_
#define AGENTD_AGENTS_RUNTIME_TASK_RUNNER_H_

#include <deque>
#include <map>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "agents/llm/http.h"
#include "agents/mcp/mcp_tools.h"
#include "agents/runtime/daemon_tools.h"
#include "agents/runtime/host_session.h"
#include "agents/session/session.h"

namespace agentd::agent {

struct TaskRunnerOptions {
  std::string agent_id;
  std::string session_path;  // sessions/<agent_id>/<agent_id>.db
  std::string record_path;   // when set, provider exchanges are recorded to this cassette
  // Why the tool sandbox does not work on this host, as the probe at the agent's start
  // found it (tools::ProbeSandbox); empty when it works. With policy.shell.sandbox
  // "required" a task whose role runs programs (shell.run, tests.run, git.*) then fails at
  // once, saying so; with "auto" programs run unconfined and every result says so.
  std::string sandbox_problem;
  // Provider keys by the name of the daemon's variable they came from (a model's
  // api_key_env; an MCP server's env and headers): agentd reads the key from its
  // environment and passes it on a descriptor (AGENTD_KEYS_FD), never in the agent's
  // environment.
  std::map<std::string, std::string> provider_keys;
};

class TaskRunner {
 public:
  // `host` is not owned and must outlive the runner. The inbox is kept in the session at
  // options.session_path (when set), and what an earlier run kept there is taken back.
  TaskRunner(HostSession* host, TaskRunnerOptions options);

  // Takes a delivery in (never blocks on work).
  void OnDelivery(const v1::ConnectResponse& delivery);
  // Works queued tasks until Stop().
  void Run();
  // Stops the current task (as canceled) and makes Run() return.
  void Stop();

 private:
  void Work(const v1::TaskAssignment& a);
  // Sends `event` of the run of `a`: now, or, with `now` false, with the next message
  // written (HostSession::QueueTaskEvent), for an event that another follows at once.
  void Send(const v1::TaskAssignment& a, v1::TaskEvent event, bool now = true);

  HostSession* host_;
  TaskRunnerOptions options_;
  std::unique_ptr<session::SessionStore> sessions_;  // Run's thread only
  std::unique_ptr<mcp::McpHub> mcp_;                 // Run's thread only
  Delegations delegations_;
  Mailbox mailbox_;
  absl::Mutex mu_;
  std::deque<v1::TaskAssignment> queue_ ABSL_GUARDED_BY(mu_);
  // The trace context each task's last assignment came with (tasks agentd traces only).
  std::map<std::string, std::string> traceparents_ ABSL_GUARDED_BY(mu_);
  std::string current_ ABSL_GUARDED_BY(mu_);  // "task@attempt#handbacks" being worked
  std::shared_ptr<llm::CancelToken> cancel_ ABSL_GUARDED_BY(mu_);
  // Outcomes of attempts finished in this process, by "task@attempt#handbacks", sent
  // again if the same is assigned again.
  std::map<std::string, v1::TaskEvent> finished_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace agentd::agent

#endif  // AGENTD_AGENTS_RUNTIME_TASK_RUNNER_H_
