#include "manager/ctl/transcript_cmd.h"

#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agentd/v1/tasks.grpc.pb.h"
#include "common/text.h"

namespace agentd::ctl {
namespace {

struct TranscriptOpts {
  std::string task;
  int64_t after_seq = 0;
  bool follow = false;
};

std::string EnumWords(absl::string_view name, absl::string_view prefix) {
  std::string s = absl::AsciiStrToLower(absl::StripPrefix(name, prefix));
  for (char& c : s) {
    if (c == '_') c = ' ';
  }
  return s;
}

std::string ShortSeconds(const google::protobuf::Duration& d) {
  double s = static_cast<double>(d.seconds()) + d.nanos() / 1e9;
  return s < 1 ? absl::StrFormat("%.0fms", s * 1000) : absl::StrFormat("%.1fs", s);
}

// `text` under its heading, indented; nothing when it is empty.
std::string Indent(absl::string_view label, absl::string_view text) {
  if (text.empty()) return "";
  std::string body(text);
  while (!body.empty() && body.back() == '\n') body.pop_back();
  if (label.empty()) return absl::StrCat("    ", Indented(body, "    "), "\n");
  return absl::StrCat("  ", label, ":\n    ", Indented(body, "    "), "\n");
}

}  // namespace

std::string TranscriptEntryText(const v1::TranscriptEntry& e) {
  if (e.live()) {
    // A piece of the model's text as it streams: printed as it comes, no heading.
    if (e.model_turn().error() == "discarded")
      return "\n(the text above is void: the call is made again)\n";
    return TerminalText(e.model_turn().text(), Lines::kMany);
  }
  std::string when = absl::FormatTime(
      "%H:%M:%S", absl::FromUnixSeconds(e.time().seconds()) + absl::Nanoseconds(e.time().nanos()),
      absl::LocalTimeZone());
  std::string head = absl::StrCat("[", when, " #", e.seq(), "] ");
  std::string out;
  switch (e.entry_case()) {
    case v1::TranscriptEntry::kPrompt: {
      const v1::TranscriptPrompt& p = e.prompt();
      out =
          absl::StrCat(head, "PROMPT  attempt ", e.attempt(), ", ", TerminalText(e.agent_id()),
                       ", model ", TerminalText(p.provider()), "/", TerminalText(p.model()), "\n");
      std::string tools;
      for (const std::string& t : p.tools()) absl::StrAppend(&tools, tools.empty() ? "" : ", ", t);
      absl::StrAppend(&out, "  tools: ", TerminalText(tools), "\n");
      absl::StrAppend(&out, Indent("system", p.system_prompt()), Indent("input", p.instructions()));
      break;
    }
    case v1::TranscriptEntry::kModelTurn: {
      const v1::TranscriptModelTurn& t = e.model_turn();
      out = absl::StrCat(head, "MODEL   ");
      if (!t.error().empty()) {
        absl::StrAppend(&out, "failed after ", t.attempts(), " attempt(s), ",
                        ShortSeconds(t.latency()), "\n", Indent("error", t.error()));
      } else {
        absl::StrAppend(&out, t.prompt_tokens(), "+", t.completion_tokens(), " tokens, ",
                        absl::StrFormat("$%.4f", t.cost_usd()), ", ", ShortSeconds(t.latency()));
        if (t.attempts() > 1) absl::StrAppend(&out, ", ", t.attempts(), " attempts");
        absl::StrAppend(&out, "\n");
      }
      for (const std::string& why : t.retry_reasons()) {
        absl::StrAppend(&out, "  retried: ", TerminalText(why), "\n");
      }
      absl::StrAppend(&out, Indent("reasoning", t.reasoning()), Indent("", t.text()));
      for (const v1::TranscriptToolRequest& c : t.tool_calls()) {
        absl::StrAppend(&out, "  → ", TerminalText(c.tool()), " ",
                        TerminalText(Utf8Prefix(c.arguments_json(), 200, "...")), "\n");
      }
      break;
    }
    case v1::TranscriptEntry::kToolCall: {
      const v1::TranscriptToolCall& c = e.tool_call();
      if (c.phase() == v1::TOOL_CALL_PHASE_STARTED) {
        out = absl::StrCat(head, "TOOL    ", TerminalText(c.tool()), " (",
                           TerminalText(c.tool_call_id()), ") started",
                           c.summary().empty() ? "" : ": ", TerminalText(c.summary()), "\n",
                           Indent("arguments", c.arguments_json()));
      } else {
        out = absl::StrCat(head, "TOOL    ", TerminalText(c.tool()), " (",
                           TerminalText(c.tool_call_id()), ") ", c.ok() ? "ok" : "FAILED", ", ",
                           ShortSeconds(c.duration()), "\n", Indent("diff", c.diff()),
                           Indent("result", c.result()));
      }
      break;
    }
    case v1::TranscriptEntry::kNote:
      out = absl::StrCat(
          head, "NOTE    ",
          EnumWords(v1::TranscriptNoteKind_Name(e.note().kind()), "TRANSCRIPT_NOTE_KIND_"), "\n",
          Indent("", e.note().text()));
      break;
    case v1::TranscriptEntry::kConsent: {
      const v1::TranscriptConsent& c = e.consent();
      out = absl::StrCat(head, "CONSENT ", TerminalText(c.consent_request_id()), " ",
                         EnumWords(v1::ConsentStatus_Name(c.status()), "CONSENT_STATUS_"),
                         c.decided_by().empty() ? "" : " by ", TerminalText(c.decided_by()), "\n",
                         Indent("", c.summary()));
      break;
    }
    case v1::TranscriptEntry::kOutcome: {
      const v1::TranscriptOutcome& o = e.outcome();
      out = absl::StrCat(head, "OUTCOME attempt ", e.attempt(), " ",
                         EnumWords(v1::TaskStatus_Name(o.status()), "TASK_STATUS_"));
      if (o.failure_code() != v1::TASK_FAILURE_CODE_UNSPECIFIED) {
        absl::StrAppend(&out, " (",
                        EnumWords(v1::TaskFailureCode_Name(o.failure_code()), "TASK_FAILURE_CODE_"),
                        ")");
      }
      absl::StrAppend(&out, "\n", Indent("", o.summary()));
      break;
    }
    case v1::TranscriptEntry::ENTRY_NOT_SET:
      out = absl::StrCat(head, "(an entry of a kind this agentctl does not know)\n");
      break;
  }
  if (e.omitted_bytes() > 0) {
    absl::StrAppend(&out, "  (", e.omitted_bytes(), " bytes of this entry were cut by agentd)\n");
  }
  return out;
}

namespace {

void PrintEntry(const Globals& g, const v1::TranscriptEntry& e) {
  if (g.format == Format::kJson) {
    std::printf("%s\n", ToJson(e, /*multiline=*/false).c_str());
  } else if (g.format == Format::kYaml) {
    std::printf("---\n%s", ToYaml(e).c_str());
  } else {
    std::printf("%s", TranscriptEntryText(e).c_str());
  }
  std::fflush(stdout);
}

int Follow(const Globals& g, const TranscriptOpts& o) {
  int64_t cursor = o.after_seq;
  bool streaming = false;  // live text printed without its line's end yet
  for (;;) {
    absl::StatusOr<Connection> c = Connection::Connect(g.conn);
    if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
    v1::WatchTranscriptRequest req;
    req.set_task_id(o.task);
    req.set_after_seq(cursor);
    std::unique_ptr<grpc::ClientContext> ctx = c->NewContext(/*deadline=*/false);
    auto reader = v1::TaskService::NewStub(c->channel())->WatchTranscript(ctx.get(), req);
    v1::WatchTranscriptResponse resp;
    while (reader->Read(&resp)) {
      const bool live = resp.entry().live();
      if (!live) cursor = resp.entry().seq();  // live text has no seq
      if (g.format == Format::kTable && streaming && !live) std::printf("\n");
      streaming = live;
      PrintEntry(g, resp.entry());
    }
    grpc::Status s = reader->Finish();
    if (s.ok()) return kOk;  // the task ended and everything was sent
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE) return RpcFailed("WatchTranscript", s);
    // agentd went away (a restart): resume after the last entry printed.
    std::fprintf(stderr, "agentctl: agentd went away (%s); reconnecting\n",
                 TerminalText(s.error_message()).c_str());
    absl::SleepFor(absl::Milliseconds(500));
  }
}

int Transcript(const Globals& g, const TranscriptOpts& o) {
  if (o.follow) return Follow(g, o);
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::TaskService::NewStub(c->channel());
  v1::GetTranscriptRequest req;
  req.set_task_id(o.task);
  req.set_after_seq(o.after_seq);
  req.set_page_size(1000);
  v1::GetTranscriptResponse all;
  for (;;) {
    v1::GetTranscriptResponse page;
    grpc::Status s = stub->GetTranscript(c->NewContext().get(), req, &page);
    if (!s.ok()) return RpcFailed("GetTranscript", s);
    for (auto& e : *page.mutable_entries()) *all.add_entries() = std::move(e);
    all.set_dropped_entries(page.dropped_entries());
    all.set_dropped_bytes(page.dropped_bytes());
    if (page.next_page_token().empty()) break;
    req.set_page_token(page.next_page_token());
  }
  std::string text;
  if (all.dropped_entries() > 0) {
    text = absl::StrCat("(", all.dropped_entries(), " earlier entries, ", all.dropped_bytes(),
                        " bytes, were removed by retention: transcripts.goal_bytes)\n");
  }
  for (const v1::TranscriptEntry& e : all.entries()) absl::StrAppend(&text, TranscriptEntryText(e));
  if (g.format == Format::kTable) {
    // Already made safe for the terminal, entry by entry.
    std::printf("%s", all.entries().empty() ? "No transcript entries.\n" : text.c_str());
    return kOk;
  }
  Print(g, all, "");
  return kOk;
}

}  // namespace

void AddTranscriptCommands(const CommandTree& t) {
  CLI::App* cmd = AddCommand(
      t.root, "transcript", "What an agent was told, said and did on a task",
      "Prints a task's transcript in order, attempt by attempt: the system prompt and the\n"
      "task's input, each model turn (text, reasoning, tokens, cost, latency, retries),\n"
      "each tool call with its arguments and result and the diff of the files it\n"
      "changed, nudges, messages, consent requests and the outcome. -f follows it live\n"
      "until the task ends, the model's text printed as it streams. -o json prints the\n"
      "entries as data (with -f, one a line; streamed pieces have \"live\": true).\n\n"
      "Examples:\n  agentctl transcript t-12\n  agentctl transcript g-3 -f\n"
      "  agentctl transcript t-12 -o json | jq '.entries[].toolCall | select(.diff != \"\")'");
  auto o = OnRun(t, cmd, Transcript);
  cmd->add_option("task", o->task, "the task or goal")->required()->type_name("TASK");
  cmd->add_option("--after-seq", o->after_seq, "only entries after this seq")
      ->check(kCount)
      ->type_name("N");
  cmd->add_flag("-f,--follow", o->follow, "then each new entry, until the task ends");
}

}  // namespace agentd::ctl
