#include "manager/ctl/chat_cmd.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agentd/v1/agents.grpc.pb.h"
#include "agentd/v1/messages.grpc.pb.h"
#include "agentd/v1/plans.grpc.pb.h"

// libedit's readline interface (BSD-licensed; GNU readline's API): line editing and
// history at a terminal. Input that is not a terminal is read line by line.
#include "editline/readline.h"

namespace agentd::ctl {
namespace {

constexpr char kChatHelp[] = R"(Type a message for the agent, or a command:
  @AGENT TEXT          a message to another agent (or role:NAME, or human)
  /agents              the agents and their state
  /spawn ROLE [TASK]   start an agent of ROLE; TASK, if given, is sent to it
  /stop AGENT          stop an agent
  /plans               the plans waiting for approval
  /approve PLAN        approve a plan
  /reject PLAN REASON  reject a plan, saying why
  /to @AGENT           talk to another agent from now on
  /help                this list
  /quit                leave (or Ctrl-D)
)";

struct ChatOpts {
  std::string agent = "ceo";
};

// The line libedit's callback interface handed over (null: end of input), and whether it
// did. Only the main thread touches libedit and these.
struct TypedLine {
  bool done = false;
  bool eof = false;
  std::string text;
};
TypedLine* g_typed = nullptr;

void OnTypedLine(char* raw) {
  // Taken off until the line is handled: nothing is prompted for meanwhile.
  rl_callback_handler_remove();
  g_typed->done = true;
  if (raw == nullptr) {
    g_typed->eof = true;
    return;
  }
  g_typed->text = raw;
  std::free(raw);
  if (!g_typed->text.empty()) add_history(g_typed->text.c_str());
}

class Chat {
 public:
  Chat(Connection c, std::string peer) : c_(std::move(c)), peer_(std::move(peer)) {}

  std::string Peer() {
    std::lock_guard<std::mutex> l(mu_);
    return peer_;
  }

  int Run() {
    // At a terminal, libedit edits the line (history, arrows) through its callback
    // interface, on this thread alone: messages from the watcher are queued and woken up
    // for here, printed above the prompt, and the prompt redrawn with what was typed.
    // Otherwise lines are read one by one (a script drives it) and messages printed as
    // they come.
    tty_ = isatty(STDIN_FILENO) != 0;
    if (tty_ && pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) tty_ = false;
    main_thread_ = std::this_thread::get_id();
    if (tty_) {
      Say(absl::StrCat("chat with @", Peer(),
                       ": replies show as they come; /help lists the commands, Ctrl-D leaves"));
    }
    std::thread watcher([this] { Watch(); });
    std::string line;
    while (tty_ ? ReadTyped(&line) : static_cast<bool>(std::getline(std::cin, line))) {
      absl::string_view text = absl::StripAsciiWhitespace(line);
      if (text.empty()) continue;
      if (text == "/quit" || text == "/exit") break;
      Handle(std::string(text));
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      done_ = true;
      if (watch_ctx_ != nullptr) watch_ctx_->TryCancel();
    }
    watcher.join();
    if (tty_) {
      PrintQueued();
      close(wake_[0]);
      close(wake_[1]);
    }
    return failures_ == 0 ? kOk : kFailed;
  }

 private:
  // One line (or block) on stdout, never inside another. At a terminal, what another
  // thread says is queued for the main thread, which alone touches libedit.
  void Say(const std::string& text) {
    if (tty_ && std::this_thread::get_id() != main_thread_) {
      {
        std::lock_guard<std::mutex> l(out_mu_);
        queued_.push_back(text);
      }
      (void)!write(wake_[1], "x", 1);  // a full pipe already says "wake up"
      return;
    }
    std::lock_guard<std::mutex> l(out_mu_);
    Print(text);
  }
  // On the main thread at a terminal (or any thread otherwise): above the prompt, when one
  // is shown, which is then drawn again with what was typed so far.
  void Print(const std::string& text) {
    // (Escape codes only to a terminal: stdout may be a file while stdin is not.)
    const bool above = tty_ && prompting_ && isatty(STDOUT_FILENO) != 0;
    if (above) std::fputs("\r\033[K", stdout);
    std::fputs(TerminalText(text, Lines::kMany).c_str(), stdout);
    std::fputs("\n", stdout);
    std::fflush(stdout);
    if (tty_ && prompting_) rl_forced_update_display();
  }
  void PrintQueued() {
    char buf[64];
    while (read(wake_[0], buf, sizeof(buf)) > 0) {
    }
    std::vector<std::string> lines;
    {
      std::lock_guard<std::mutex> l(out_mu_);
      lines.swap(queued_);
    }
    std::lock_guard<std::mutex> l(out_mu_);
    for (const std::string& text : lines) Print(text);
  }
  // The next line typed at the terminal; false at the end of input (Ctrl-D).
  bool ReadTyped(std::string* line) {
    TypedLine typed;
    g_typed = &typed;
    rl_callback_handler_install(absl::StrCat(Peer(), "> ").c_str(), OnTypedLine);
    prompting_ = true;
    while (!typed.done) {
      pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        rl_callback_handler_remove();
        typed.done = typed.eof = true;
        break;
      }
      if (fds[1].revents != 0) PrintQueued();
      if (fds[0].revents != 0) rl_callback_read_char();
    }
    prompting_ = false;
    g_typed = nullptr;
    PrintQueued();
    *line = std::move(typed.text);
    return !typed.eof;
  }
  void Failed(const std::string& what, const grpc::Status& s) {
    ++failures_;
    Say(absl::StrCat("agentctl: ", what, ": ",
                     absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code())), ": ",
                     s.error_message()));
  }

  // Messages as they are sent: to the person, and those of the agent talked to.
  void Watch() {
    v1::WatchMessagesRequest req;
    req.set_after_seq(-1);
    std::unique_ptr<grpc::ClientContext> ctx = c_.NewContext(/*deadline=*/false);
    {
      std::lock_guard<std::mutex> l(mu_);
      if (done_) return;
      watch_ctx_ = ctx.get();
    }
    auto reader = v1::MessageService::NewStub(c_.channel())->WatchMessages(ctx.get(), req);
    v1::WatchMessagesResponse resp;
    while (reader->Read(&resp)) {
      const v1::Envelope& m = resp.envelope();
      // What the people are told (by an agent, or by another person), and what the agent
      // talked to says to others; not what a person tells the agents (this one's lines).
      bool to_person = absl::StartsWith(m.to(), "human");
      if (!to_person && m.from() != Peer()) continue;
      std::string to = to_person ? "you" : (m.delivered_to().empty() ? m.to() : m.delivered_to());
      Say(absl::StrCat("[", m.from(), " → ", to, "] ", m.body(),
                       m.task_id().empty() ? "" : absl::StrCat("  (task ", m.task_id(), ")")));
    }
    grpc::Status s = reader->Finish();
    std::lock_guard<std::mutex> l(mu_);
    watch_ctx_ = nullptr;
    if (!done_ && !s.ok()) {
      std::fprintf(stderr, "agentctl: the message stream ended: %s\n",
                   TerminalText(s.error_message()).c_str());
    }
  }

  bool Send(const std::string& to, const std::string& body) {
    v1::SendMessageRequest req;
    req.set_to(std::string(absl::StripPrefix(to, "@")));
    req.set_body(body);
    v1::SendMessageResponse resp;
    grpc::Status s =
        v1::MessageService::NewStub(c_.channel())->SendMessage(c_.NewContext().get(), req, &resp);
    if (!s.ok()) {
      Failed("SendMessage", s);
      return false;
    }
    return true;
  }

  void Handle(const std::string& line) {
    if (line[0] == '@') {
      std::pair<std::string, std::string> to_text = absl::StrSplit(line, absl::MaxSplits(' ', 1));
      if (to_text.second.empty()) return Say("agentctl: @AGENT TEXT: the message is missing");
      Send(to_text.first, std::string(absl::StripAsciiWhitespace(to_text.second)));
      return;
    }
    if (line[0] != '/') {
      Send(Peer(), line);
      return;
    }
    // "/cmd ARG REST": the words by any run of spaces, the rest as written.
    std::vector<std::string> w;
    absl::string_view rest = line;
    while (!rest.empty() && w.size() < 2) {
      rest = absl::StripLeadingAsciiWhitespace(rest);
      size_t end = rest.find_first_of(" \t");
      w.emplace_back(rest.substr(0, end));
      rest = end == absl::string_view::npos ? absl::string_view() : rest.substr(end);
    }
    rest = absl::StripAsciiWhitespace(rest);
    if (!rest.empty()) w.emplace_back(rest);
    const std::string& cmd = w[0];
    auto agents = v1::AgentService::NewStub(c_.channel());
    auto plans = v1::PlanService::NewStub(c_.channel());
    if (cmd == "/help") return Say(kChatHelp);
    if (cmd == "/to" && w.size() == 2) {
      std::string peer(absl::StripPrefix(w[1], "@"));
      {
        std::lock_guard<std::mutex> l(mu_);
        peer_ = peer;
      }
      return Say(absl::StrCat("talking to @", peer));
    }
    if (cmd == "/agents" && w.size() == 1) {
      v1::ListAgentsRequest req;
      req.set_page_size(1000);
      v1::ListAgentsResponse resp;
      grpc::Status s = agents->ListAgents(c_.NewContext().get(), req, &resp);
      if (!s.ok()) return Failed("ListAgents", s);
      std::vector<std::vector<std::string>> rows = {{"ID", "ROLE", "STATE"}};
      for (const v1::Agent& a : resp.agents()) {
        rows.push_back({a.id(), a.role(),
                        absl::AsciiStrToLower(
                            absl::StripPrefix(v1::AgentState_Name(a.state()), "AGENT_STATE_"))});
      }
      std::string table = Table(rows);
      if (!table.empty() && table.back() == '\n') table.pop_back();
      return Say(table);
    }
    if (cmd == "/spawn" && w.size() >= 2) {
      v1::StartAgentRequest req;
      req.set_role(w[1]);
      v1::StartAgentResponse resp;
      grpc::Status s = agents->StartAgent(c_.NewContext().get(), req, &resp);
      if (!s.ok()) return Failed("StartAgent", s);
      Say(absl::StrCat("started ", resp.agent().id()));
      if (w.size() == 3 && Send(resp.agent().id(), w[2])) {
        Say(absl::StrCat("sent ", resp.agent().id(), " its task"));
      }
      return;
    }
    if (cmd == "/stop" && w.size() == 2) {
      v1::StopAgentRequest req;
      req.set_agent_id(std::string(absl::StripPrefix(w[1], "@")));
      v1::StopAgentResponse resp;
      grpc::Status s = agents->StopAgent(c_.NewContext().get(), req, &resp);
      if (!s.ok()) return Failed("StopAgent", s);
      return Say(absl::StrCat("stopping ", resp.agent().id()));
    }
    if (cmd == "/plans" && w.size() == 1) {
      v1::ListPlansRequest req;
      req.set_page_size(1000);
      v1::ListPlansResponse resp;
      grpc::Status s = plans->ListPlans(c_.NewContext().get(), req, &resp);
      if (!s.ok()) return Failed("ListPlans", s);
      std::vector<std::vector<std::string>> rows = {{"PLAN", "TASK", "STEPS", "PROPOSER"}};
      for (const v1::Plan& p : resp.plans()) {
        if (p.status() != v1::PLAN_STATUS_PROPOSED) continue;
        rows.push_back({p.id(), p.task_id(), absl::StrCat(p.steps_size()), p.proposer()});
      }
      if (rows.size() == 1) return Say("no plan waits for approval");
      std::string table = Table(rows);
      if (!table.empty() && table.back() == '\n') table.pop_back();
      return Say(table);
    }
    if (cmd == "/approve" && w.size() == 2) {
      v1::ApprovePlanRequest req;
      req.set_plan_id(w[1]);
      v1::ApprovePlanResponse resp;
      grpc::Status s = plans->ApprovePlan(c_.NewContext().get(), req, &resp);
      if (!s.ok()) return Failed("ApprovePlan", s);
      return Say(absl::StrCat("plan ", resp.plan().id(), " approved"));
    }
    if (cmd == "/reject" && w.size() == 3) {
      v1::RejectPlanRequest req;
      req.set_plan_id(w[1]);
      req.set_reason(w[2]);
      v1::RejectPlanResponse resp;
      grpc::Status s = plans->RejectPlan(c_.NewContext().get(), req, &resp);
      if (!s.ok()) return Failed("RejectPlan", s);
      return Say(absl::StrCat("plan ", resp.plan().id(), " rejected"));
    }
    Say(absl::StrCat("agentctl: \"", line, "\" is not a chat command (/help lists them)"));
  }

  Connection c_;
  std::string peer_;  // guarded by mu_ (the watcher reads it)
  std::mutex mu_;
  std::mutex out_mu_;  // one message on stdout at a time (not mu_: stdout may block)
  bool tty_ = false;   // set before the watcher starts
  std::thread::id main_thread_;
  int wake_[2] = {-1, -1};           // the watcher wakes the main thread (tty_)
  std::vector<std::string> queued_;  // guarded by out_mu_
  bool prompting_ = false;           // main thread: libedit shows the prompt
  bool done_ = false;
  grpc::ClientContext* watch_ctx_ = nullptr;
  std::atomic<int> failures_{0};
};

int ChatCmd(const Globals& g, const ChatOpts& o) {
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  Chat chat(*std::move(c), std::string(absl::StripPrefix(o.agent, "@")));
  return chat.Run();
}

}  // namespace

void AddChatCommands(const CommandTree& t) {
  CLI::App* cmd = AddCommand(
      t.root, "chat", "talk with the CEO or any agent; replies show as they come",
      std::string(kChatHelp) +
          "\nEvery message is on the bus (agentctl messages). Lines that are not a terminal\n"
          "are read one by one, so a script can drive it.\n\n"
          "Examples:\n  agentctl chat\n  agentctl chat @manager\n"
          "  printf '/agents\\n/plans\\n' | agentctl chat");
  auto o = OnRun(t, cmd, ChatCmd);
  cmd->add_option("AGENT", o->agent, "whom to talk to (default @ceo)")->type_name("AGENT");
}

}  // namespace agentd::ctl
