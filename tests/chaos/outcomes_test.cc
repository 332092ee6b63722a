// The outcomes fault matrix: one small goal (the CEO delegates; the Coder writes a.txt,
// then b.txt, then completes; the CEO completes), played by dev/fakellm with one fault
// per cell — a provider fault, a model's misbehaviour or a kill — and checked against
// invariants read from what agentd recorded:
//   - the goal completed, and the workspace holds both files as written;
//   - each side effect happened exactly once (one successful fs.write audit entry per
//     file);
//   - nothing was delegated twice (two tasks in all) and no plan was made;
//   - no attempt started a conversation over (each model's requests only ever grow).
// The cells print as a table at the end (the outcome and the calls each model made).
#include <signal.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/json_dump.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/goal_fixture.h"

namespace agentd::testing {
namespace {

// The goal's rules after the cell's own, which fakellm tries first (a rule with `times`
// stops matching once used up). ${ID} is each tool call's id: empty lets fakellm make
// fresh ones; "call_1" repeats one id across every response, as some servers do.
constexpr char kRules[] = R"(
  - name: ceo-final
    match: {model: ceo-m, contains: "have ended"}
    reply: {tool_calls: [{${ID}name: complete_task, arguments: {summary: "a.txt and b.txt are written"}}]}
  - name: ceo-delegate
    match: {model: ceo-m, last_role: user}
    reply:
      tool_calls: [{${ID}name: delegate, arguments: {role: coder, title: "Write the files",
                                                     instructions: "Write a.txt, then b.txt"}}]
  - name: ceo-wait
    match: {model: ceo-m, last_role: tool}
    reply: {text: "Waiting for the coder."}
  - name: coder-write-a
    match: {model: coder-m, last_role: user}
    reply: {tool_calls: [{${ID}name: fs_write, arguments: {path: a.txt, content: "a\n"}}]}
  - name: coder-write-b
    match: {model: coder-m, last_role: tool}
    times: 1
    reply: {tool_calls: [{${ID}name: fs_write, arguments: {path: b.txt, content: "b\n"}}]}
  - name: coder-done
    match: {model: coder-m, last_role: tool}
    reply: {tool_calls: [{${ID}name: complete_task, arguments: {summary: "wrote a.txt and b.txt"}}]}
)";

struct Cell {
  std::string name;
  std::string rules;             // fakellm rules tried before the goal's
  std::string ids;               // "" or "call_1"
  std::string exit_after_event;  // agentd dies right after committing this kind, once
  bool kill_coder = false;       // kill -9 of the Coder while its slow call is pending
  // The fake provider's timeouts: a stall is cut after the idle timeout (short here).
  std::string timeouts = "{idle: 2s}";
  // The CEO may propose plans (the invalid-plan cells).
  bool ceo_plans = false;
};

// The CEO's first answer: a plan that cannot be accepted (`steps`), before the goal's
// rules take over (the refusal answers the call; a plain "waiting" after it is nudged, and
// the CEO delegates as in every other cell).
std::string BadPlan(const std::string& steps) {
  return absl::StrCat(
      "  - name: bad-plan\n    match: {model: ceo-m, last_role: user}\n    times: 1\n"
      "    reply: {tool_calls: [{name: propose_plan, arguments: {steps: ",
      steps, "}}]}\n");
}

std::vector<Cell> Cells() {
  const std::string write_b =
      R"(reply: {tool_calls: [{name: fs_write, arguments: {path: b.txt, content: "b\n"}}]})";
  return {
      {"none", "", "", "", false},
      {"coder_503_storm",
       "  - {name: storm, match: {model: coder-m}, times: 3, fault: {kind: status, status: 503}}\n",
       "", "", false},
      {"ceo_429_retry_after",
       "  - {name: limited, match: {model: ceo-m}, times: 2,\n"
       "     fault: {kind: status, status: 429, retry_after: 1}}\n",
       "", "", false},
      {"stream_cut_at_first_chunk",
       "  - name: cut\n    match: {model: coder-m, last_role: tool}\n    times: 1\n"
       "    fault: {kind: drop, after_chunks: 1}\n    " +
           write_b + "\n",
       "", "", false},
      {"stream_cut_mid_text",
       "  - name: cut\n    match: {model: ceo-m, last_role: tool}\n    times: 1\n"
       "    fault: {kind: drop, after_chunks: 2}\n"
       "    reply: {text: \"Waiting for the coder, who is writing the files now.\"}\n",
       "", "", false},
      {"stream_cut_mid_tool_call",
       "  - name: cut\n    match: {model: coder-m, last_role: tool}\n    times: 1\n"
       "    fault: {kind: truncate}\n    " +
           write_b + "\n",
       "", "", false},
      {"malformed_json",
       "  - name: garbled\n    match: {model: coder-m, last_role: user}\n    times: 1\n"
       "    fault: {kind: malformed, after_chunks: 1}\n"
       "    reply: {tool_calls: [{name: fs_write, arguments: {path: a.txt, content: \"a\\n\"}}]}\n",
       "", "", false},
      {"plain_text_answer",
       "  - {name: chatty, match: {model: coder-m, last_role: user}, times: 1,\n"
       "     reply: {text: \"Sure. I will write the files.\"}}\n",
       "", "", false},
      {"unknown_tool",
       "  - {name: invents, match: {model: coder-m, last_role: tool}, times: 1,\n"
       "     reply: {tool_calls: [{name: fs_explode, arguments: {path: b.txt}}]}}\n",
       "", "", false},
      {"missing_arguments",
       "  - {name: sloppy, match: {model: coder-m, last_role: tool}, times: 1,\n"
       "     reply: {tool_calls: [{name: fs_write, arguments: {path: b.txt}}]}}\n",
       "", "", false},
      {"repeated_tool_call_ids", "", "call_1", "", false},
      {"agentd_killed_after_delegation", "", "", "task.created", false},
      {"agentd_killed_after_a_write", "", "", "task.tool_call#2", false},
      {"coder_killed_mid_task",
       "  - {name: slow, match: {model: coder-m, last_role: tool}, times: 1,\n"
       "     reply: {text: \"\", delay_ms: 60000}}\n",
       "", "", true},
      {"stream_stalls_mid_tool_call",
       "  - name: stall\n    match: {model: coder-m, last_role: tool}\n    times: 1\n"
       "    fault: {kind: stall, after_chunks: 1}\n    " +
           write_b + "\n",
       "", "", false},
      {"no_response_before_the_first_byte_timeout",
       "  - {name: silent, match: {model: coder-m, last_role: user}, times: 1,\n"
       "     reply: {text: \"\", delay_ms: 60000}}\n",
       "", "", false, "{first_byte: 2s}"},
      {"plan_with_an_unknown_role", BadPlan("[{id: one, role: poet, instructions: \"Write\"}]"), "",
       "", false, "{idle: 2s}", true},
      {"plan_with_a_cycle",
       BadPlan("[{id: one, role: coder, instructions: \"Write a\", deps: [two]},\n"
               "                                  {id: two, role: coder, instructions: \"Write "
               "b\", deps: [one]}]"),
       "", "", false, "{idle: 2s}", true},
      {"empty_plan", BadPlan("[]"), "", "", false, "{idle: 2s}", true},
  };
}

// One line per cell, printed after the last.
std::map<std::string, std::string>& Table() {
  static std::map<std::string, std::string> table;
  return table;
}

class OutcomesTest : public GoalTest, public ::testing::WithParamInterface<Cell> {
 protected:
  static void TearDownTestSuite() {
    std::string out = "\noutcomes matrix (cell: outcome; model calls)\n";
    for (const auto& [cell, line] : Table()) absl::StrAppend(&out, "  ", cell, ": ", line, "\n");
    std::fputs(out.c_str(), stderr);
  }
};

TEST_P(OutcomesTest, TheGoalCompletesWithEachSideEffectOnceAndNoConversationStartedOver) {
  const Cell& cell = GetParam();
  std::string rules = absl::StrCat(
      "rules:\n", cell.rules,
      absl::StrReplaceAll(kRules, {{"${ID}", cell.ids.empty() ? "" : "id: " + cell.ids + ", "}}));
  // A provider that keeps failing is waited out quickly here.
  extra_policy_ = "  provider_retry: {max: 5, backoff: 1s, max_backoff: 2s}";
  provider_timeouts_ = cell.timeouts;
  if (!cell.exit_after_event.empty()) {
    daemon_env_ = {"AGENTD_FAULT_EXIT_AFTER_EVENT=" + cell.exit_after_event};
  }
  ASSERT_NO_FATAL_FAILURE(
      Start(rules, "",
            cell.ceo_plans ? "[delegate, propose_plan, complete_task, fail_task]" : kCeoTools));
  RunResult submit = Ctl({"goal", "Write a.txt and b.txt"});
  if (!cell.exit_after_event.empty()) {
    ASSERT_NO_FATAL_FAILURE(RestartAfterInjectedExit());
  } else {
    ASSERT_EQ(submit.exit_code, 0) << submit.out << submit.err;
  }
  if (cell.kill_coder) {
    // Once the Coder's slow call is out, kill -9 it: agentd restarts it, and its session
    // goes on after the write it made.
    ASSERT_TRUE(WaitFor(
        [&] {
          int coder_calls = CountRequests(FakeRequests(), "coder-m");
          return coder_calls >= 2;
        },
        absl::Seconds(30)))
        << DumpJson(FakeRequests());
    nlohmann::json agents = CtlJson({"get", "agents"});
    int64_t pid = 0;
    for (const auto& a : agents["agents"]) {
      // int64 is a string in protobuf's JSON.
      if (a.value("role", "") == "coder" && a.contains("pid")) pid = std::stoll(Text(a["pid"]));
    }
    ASSERT_GT(pid, 0) << DumpJson(agents);
    ASSERT_EQ(kill(static_cast<pid_t>(pid), SIGKILL), 0);
  }
  ASSERT_TRUE(TaskReaches("g-1", "TASK_STATUS_COMPLETED", absl::Seconds(90)))
      << daemon_.log() << DumpJson(FakeRequests());

  std::string ws = Workspace("g-1");
  ASSERT_FALSE(ws.empty());
  EXPECT_EQ(ReadFileOrEmpty(ws + "/a.txt"), "a\n");
  EXPECT_EQ(ReadFileOrEmpty(ws + "/b.txt"), "b\n");
  // Each side effect once: one successful write per file in the audit log.
  nlohmann::json audit = CtlJson({"audit", "--goal", "g-1"});
  std::map<std::string, int> writes;
  for (const auto& e : audit["entries"]) {
    if (e.value("action", "") != "fs.write") continue;
    std::string details = DumpJson(e.value("details", nlohmann::json::object()));
    if (details.find("\"ok\":\"true\"") != std::string::npos) ++writes[e.value("target", "")];
  }
  EXPECT_EQ(writes.size(), 2u) << DumpJson(audit);
  for (const auto& [target, n] : writes) EXPECT_EQ(n, 1) << target << "\n" << DumpJson(audit);
  // Nothing delegated twice, no plan (an invalid one is refused, not stored).
  nlohmann::json tasks = CtlJson({"get", "tasks", "--goal", "g-1"});
  EXPECT_EQ(ArraySize(tasks, "tasks"), 2u) << DumpJson(tasks);
  nlohmann::json plans = CtlJson({"get", "plans"});
  EXPECT_EQ(ArraySize(plans, "plans"), 0u) << DumpJson(plans);
  // No conversation started over: each model's requests carry at least as many messages
  // as the one before (a retried call repeats its conversation; it never shrinks).
  nlohmann::json requests = FakeRequests();
  std::map<std::string, size_t> last;
  std::map<std::string, int> calls;
  for (const auto& q : requests) {
    if (!q.contains("body") || !q["body"].is_object() || !q["body"].contains("messages")) continue;
    std::string model = q.value("model", "");
    size_t n = q["body"]["messages"].size();
    EXPECT_GE(n, last[model]) << model << " started a conversation over:\n"
                              << DumpJson(q["body"]["messages"]);
    last[model] = n;
    ++calls[model];
  }
  std::string line =
      absl::StrCat("completed; ceo ", calls["ceo-m"], " calls, coder ", calls["coder-m"], " calls");
  if (HasFailure()) line = "FAILED (" + line + ")";
  Table()[cell.name] = line;
}

INSTANTIATE_TEST_SUITE_P(Matrix, OutcomesTest, ::testing::ValuesIn(Cells()),
                         [](const ::testing::TestParamInfo<Cell>& cell_info) {
                           return cell_info.param.name;
                         });

}  // namespace
}  // namespace agentd::testing
