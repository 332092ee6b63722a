#include "manager/ctl/completion.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "agentd/v1/agents.grpc.pb.h"
#include "agentd/v1/consent.grpc.pb.h"
#include "agentd/v1/plans.grpc.pb.h"
#include "agentd/v1/tasks.grpc.pb.h"
#include "common/token.h"
#include "manager/ctl/connection.h"

namespace agentd::ctl {
namespace {

constexpr char kBash[] = R"(# bash completion for agentctl: agentctl completion bash
_agentctl() {
  local cur words cword
  if declare -F _get_comp_words_by_ref >/dev/null; then
    # bash-completion: words not split at = and : (--output=json, role:coder).
    _get_comp_words_by_ref -n =: cur words cword
  else
    cur=${COMP_WORDS[COMP_CWORD]}
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
  fi
  local IFS=$'\n'
  COMPREPLY=($(agentctl __complete "${words[@]:1:cword-1}" -- "$cur" 2>/dev/null))
  # Nothing to offer (a file name, free text): let bash complete file names.
  [[ ${#COMPREPLY[@]} -eq 0 ]] && compopt -o default 2>/dev/null
  return 0
}
complete -F _agentctl agentctl
)";

constexpr char kZsh[] = R"(#compdef agentctl
# zsh completion for agentctl: agentctl completion zsh > "${fpath[1]}/_agentctl"
_agentctl() {
  local -a words_out
  words_out=("${(@f)$(agentctl __complete "${(@)words[2,CURRENT-1]}" -- "${words[CURRENT]}" 2>/dev/null)}")
  words_out=(${words_out:#})
  if (( ${#words_out} )); then
    compadd -a words_out
  else
    _files
  fi
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _agentctl "$@"
else
  compdef _agentctl agentctl
fi
)";

// Parents first: a subcommand's flags, then each parent's (global flags fall through).
const CLI::Option* FindOption(const CLI::App* cmd, const std::string& name) {
  for (const CLI::App* c = cmd; c != nullptr; c = c->get_parent()) {
    if (const CLI::Option* o = c->get_option_no_throw(name); o != nullptr) return o;
  }
  return nullptr;
}

bool TakesValue(const CLI::Option* o) { return o->get_type_size_max() > 0; }

// "TEXT:{auto,manual}" → {"auto", "manual"}: the values an IsMember check allows.
std::vector<std::string> AllowedValues(const CLI::Option* o) {
  std::string type = o->get_type_name();
  size_t open = type.find('{'), close = type.rfind('}');
  if (open == std::string::npos || close == std::string::npos || close < open) return {};
  return absl::StrSplit(type.substr(open + 1, close - open - 1), ',', absl::SkipEmpty());
}

// The ids agentd holds of a kind ("AGENT", "TASK", …); empty when it cannot be asked.
std::vector<std::string> DaemonIds(const std::string& kind, ConnectionOptions conn) {
  static const std::set<std::string> kKinds = {"AGENT", "TASK", "GOAL", "PLAN", "CONSENT", "ROLE"};
  if (kKinds.count(kind) == 0) return {};
  conn.timeout = absl::Seconds(1);
  absl::StatusOr<Connection> c = Connection::Connect(conn);
  if (!c.ok()) return {};
  std::vector<std::string> ids;
  if (kind == "AGENT" || kind == "ROLE") {
    v1::ListAgentsRequest req;
    req.set_page_size(1000);
    v1::ListAgentsResponse resp;
    if (v1::AgentService::NewStub(c->channel())
            ->ListAgents(c->NewContext().get(), req, &resp)
            .ok()) {
      for (const v1::Agent& a : resp.agents()) ids.push_back(kind == "AGENT" ? a.id() : a.role());
    }
  } else if (kind == "TASK" || kind == "GOAL") {
    v1::ListTasksRequest req;
    req.set_page_size(1000);
    req.set_goals_only(kind == "GOAL");
    v1::ListTasksResponse resp;
    if (v1::TaskService::NewStub(c->channel())->ListTasks(c->NewContext().get(), req, &resp).ok()) {
      for (const v1::Task& t : resp.tasks()) ids.push_back(t.id());
    }
  } else if (kind == "PLAN") {
    v1::ListPlansRequest req;
    req.set_page_size(1000);
    v1::ListPlansResponse resp;
    if (v1::PlanService::NewStub(c->channel())->ListPlans(c->NewContext().get(), req, &resp).ok()) {
      for (const v1::Plan& p : resp.plans()) ids.push_back(p.id());
    }
  } else {
    v1::ListConsentRequestsRequest req;
    req.set_page_size(1000);
    v1::ListConsentRequestsResponse resp;
    if (v1::ConsentService::NewStub(c->channel())
            ->ListConsentRequests(c->NewContext().get(), req, &resp)
            .ok()) {
      for (const v1::ConsentRequest& r : resp.consent_requests()) ids.push_back(r.id());
    }
  }
  return ids;
}

// What an option's value may be: its allowed values, or the daemon's ids of its kind.
std::vector<std::string> ValuesOf(const CLI::Option* o, const ConnectionOptions& conn) {
  std::vector<std::string> values = AllowedValues(o);
  if (!values.empty()) return values;
  std::string kind = o->get_type_name();
  return DaemonIds(kind.substr(0, kind.find(':')), conn);
}

}  // namespace

std::string CompletionScript(const std::string& shell) { return shell == "zsh" ? kZsh : kBash; }

std::vector<std::string> CompleteWords(CLI::App* root, const std::vector<std::string>& before,
                                       const std::string& current) {
  ConnectionOptions conn;
  if (const char* v = std::getenv("AGENTD_SOCKET")) conn.socket = v;
  if (const char* v = std::getenv("AGENTD_ADDR")) conn.addr = v;
  if (const char* v = std::getenv("AGENTD_TOKEN")) conn.token = v;
  CLI::App* cmd = root;
  size_t positionals = 0;
  const CLI::Option* pending = nullptr;  // a flag whose value comes next
  bool only_positionals = false;         // after "--"
  for (const std::string& word : before) {
    if (pending != nullptr) {
      // The connection flags on the line say which daemon to ask.
      if (pending->check_name("--socket")) conn.socket = word;
      if (pending->check_name("--addr")) conn.addr = word;
      if (pending->check_name("--token")) conn.token = word;
      if (pending->check_name("--token-file")) {
        if (absl::StatusOr<std::string> t = ReadTokenFile(word); t.ok()) conn.token = *t;
      }
      pending = nullptr;
      continue;
    }
    if (!only_positionals && word == "--") {
      only_positionals = true;
      continue;
    }
    if (!only_positionals && word.size() > 1 && word[0] == '-') {
      bool long_flag = absl::StartsWith(word, "--");
      std::string name = long_flag ? word.substr(0, word.find('=')) : word.substr(0, 2);
      bool inline_value = long_flag ? word.find('=') != std::string::npos : word.size() > 2;
      const CLI::Option* o = FindOption(cmd, name);
      if (o != nullptr && TakesValue(o) && !inline_value) pending = o;
      continue;
    }
    auto sub = cmd->get_subcommands([&](CLI::App* s) { return s->check_name(word); });
    if (!only_positionals && positionals == 0 && !sub.empty()) {
      cmd = sub.front();
      continue;
    }
    ++positionals;
  }
  std::vector<std::string> out;
  std::string prefix;  // "--output=" while a value is typed after its flag's "="
  std::string typed = current;
  if (size_t eq = current.find('='); pending == nullptr && !only_positionals &&
                                     absl::StartsWith(current, "--") && eq != std::string::npos) {
    if (const CLI::Option* o = FindOption(cmd, current.substr(0, eq)); o && TakesValue(o)) {
      pending = o;
      prefix = current.substr(0, eq + 1);
      typed = current.substr(eq + 1);
    }
  }
  if (pending != nullptr) {
    out = ValuesOf(pending, conn);
  } else if (!only_positionals && absl::StartsWith(current, "-")) {
    for (const CLI::App* c = cmd; c != nullptr; c = c->get_parent()) {
      for (const CLI::Option* o : c->get_options()) {
        if (o->get_positional()) continue;
        for (const std::string& l : o->get_lnames()) out.push_back("--" + l);
        for (const std::string& s : o->get_snames()) out.push_back("-" + s);
      }
    }
  } else {
    if (positionals == 0 && !only_positionals) {
      for (const CLI::App* s :
           cmd->get_subcommands([](CLI::App* s) { return !s->get_group().empty(); })) {
        out.push_back(s->get_name());
      }
    }
    auto slots = cmd->get_options([](const CLI::Option* o) { return o->get_positional(); });
    if (positionals < slots.size()) {
      for (std::string& value : ValuesOf(slots[positionals], conn)) {
        // send's @AGENT: "@co" completes to "@coder-1".
        out.push_back(absl::StartsWith(current, "@") ? "@" + value : value);
      }
    }
  }
  std::set<std::string> matching;
  for (const std::string& w : out) {
    if (absl::StartsWith(w, typed)) matching.insert(prefix + w);
  }
  return std::vector<std::string>(matching.begin(), matching.end());
}

}  // namespace agentd::ctl
