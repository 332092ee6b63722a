// Test helper: one agent working one task — agentd's agent loop with the OpenAI codec
// against URL, tools fs.* and shell.run (sh allowed) in WORKSPACE, its session in DB —
// then exits: 0 when the task completed, 1 when it failed, 2 on a usage or setup error.
// Run it again on the same DB and it resumes the task.
//   loop_runner URL WORKSPACE DB TASK INSTRUCTIONS
#include <cstdio>

#include "agents/runtime/agent_loop.h"

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: loop_runner URL WORKSPACE DB TASK INSTRUCTIONS\n");
    return 2;
  }
  namespace llm = agentd::llm;
  llm::ProviderOptions o;
  o.name = "fake";
  o.kind = "openai";
  o.base_url = std::string(argv[1]) + "/v1";
  auto client = llm::LlmClient::Create(o);
  auto ws = agentd::tools::Workspace::Open(argv[2]);
  auto sessions = agentd::session::SessionStore::Open(argv[3]);
  if (!client.ok() || !ws.ok() || !sessions.ok()) {
    std::fprintf(stderr, "loop_runner: setup failed\n");
    return 2;
  }
  agentd::tools::ShellOptions shell;
  shell.allow = {"sh"};
  agentd::tools::ToolBox box =
      agentd::tools::ToolBox::ForRole({"fs.read", "fs.write", "fs.edit", "shell.run"});
  agentd::agent::AgentLoop loop(client->get(), "test-model", &box,
                                {ws->get(), &shell, nullptr, "", "", nullptr, ""}, sessions->get(),
                                nullptr, agentd::agent::LoopLimits{});
  auto out = loop.Run(argv[4], "You are a coder.", argv[5]);
  if (!out.ok()) {
    std::fprintf(stderr, "loop_runner: %s\n", std::string(out.status().message()).c_str());
    return 2;
  }
  std::printf(
      "%s: %s\n",
      out->status == agentd::agent::TaskOutcome::Status::kCompleted ? "completed" : "failed",
      out->summary.c_str());
  return out->status == agentd::agent::TaskOutcome::Status::kCompleted ? 0 : 1;
}
