#include "manager/core/consent.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/logging.h"
#include "common/sha256.h"
#include "common/text.h"
#include "manager/core/proto_time.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace agentd {
namespace {

// Bounds on what an agent may put in a request: enough for any argv or path a tool asks
// about, small enough that a request cannot flood a person's screen or the database.
constexpr size_t kMaxDetails = 16;
constexpr size_t kMaxDetailKey = 64;
constexpr size_t kMaxDetailValue = 4096;

// `s` as a person must read it: what a terminal would act on or hide, written visibly
// (\n, \x1b, \u202e), so what a person reads is what the request holds.
std::string Visible(absl::string_view s) { return EscapeForTerminal(s); }

// One word of a command line as a shell would need it written: bare when it is plain,
// in single quotes when it holds spaces or shell syntax, as $'…' with escapes when it
// holds characters that Visible() rewrites.
std::string ShellWord(absl::string_view w) {
  bool plain = !w.empty();
  for (char c : w) {
    plain = plain && (absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                      absl::string_view("_@%+=:,./-").find(c) != absl::string_view::npos);
  }
  if (plain) return std::string(w);
  std::string visible = Visible(w);
  if (visible == w) return absl::StrCat("'", absl::StrReplaceAll(w, {{"'", "'\\''"}}), "'");
  return absl::StrCat("$'", absl::StrReplaceAll(visible, {{"'", "\\'"}}), "'");
}

// An argv detail: a JSON array of strings is shown word by word; anything else is a
// command line as the tool wrote it, shown as it is with hidden characters escaped.
std::string CommandText(const std::string& argv) {
  nlohmann::json j = nlohmann::json::parse(argv, nullptr, false);
  if (j.is_array() && !j.empty()) {
    std::vector<std::string> words;
    for (const auto& w : j) {
      if (!w.is_string()) return Visible(argv);
      words.push_back(ShellWord(w.get<std::string>()));
    }
    return absl::StrJoin(words, " ");
  }
  return Visible(argv);
}

}  // namespace

std::string ConsentBook::Fingerprint(const std::string& tool, v1::ConsentKind kind,
                                     const std::map<std::string, std::string>& details) {
  std::string enc;
  auto put = [&](absl::string_view v) { absl::StrAppend(&enc, v.size(), ":", v, ";"); };
  put(tool);
  put(absl::StrCat(static_cast<int>(kind)));
  for (const auto& [k, v] : details) {
    put(k);
    put(v);
  }
  return DigestHex(Sha256(enc));
}

std::string ConsentBook::Summary(const std::string& tool, v1::ConsentKind kind,
                                 const std::map<std::string, std::string>& details) {
  auto get = [&](const char* k) {
    auto it = details.find(k);
    return it == details.end() ? std::string() : it->second;
  };
  std::set<std::string> shown;
  std::string out;
  switch (kind) {
    case v1::CONSENT_KIND_NETWORK:
      if (details.count("url") != 0) {
        out = absl::StrCat("connect to ", Visible(get("url")), " (MCP server ",
                           Visible(get("server")), ")");
        shown = {"url", "server"};
      } else {
        out = absl::StrCat("run `", CommandText(get("argv")), "` with network access");
        shown = {"argv"};
      }
      break;
    case v1::CONSENT_KIND_COMMAND_NOT_ALLOWED:
      out = absl::StrCat("run `", CommandText(get("argv")), "` (", ShellWord(get("program")),
                         " is not on the allowlist)");
      shown = {"argv", "program"};
      break;
    case v1::CONSENT_KIND_PATH_OUTSIDE_WORKSPACE:
      out = absl::StrCat(tool == "fs.read"    ? "read "
                         : tool == "fs.write" ? "write "
                                              : "use ",
                         ShellWord(get("path")), " (outside the workspace)");
      shown = {"path"};
      break;
    case v1::CONSENT_KIND_OPEN_EDITOR:
      out = absl::StrCat("open ", ShellWord(get("path")), " with `", CommandText(get("command")),
                         "` on agentd's host");
      shown = {"path", "command"};
      break;
    case v1::CONSENT_KIND_DESTRUCTIVE_TOOL:
      out = absl::StrCat("call ", Visible(get("tool")), " of MCP server ", Visible(get("server")),
                         " (the server marks it destructive) with arguments ",
                         Visible(get("arguments")));
      shown = {"tool", "server", "arguments"};
      break;
    default:
      out = absl::StrCat("use ", Visible(tool));
      break;
  }
  // Everything the decision binds to is shown: a detail no template names is listed.
  std::vector<std::string> rest;
  for (const auto& [k, v] : details) {
    if (shown.count(k) == 0) rest.push_back(absl::StrCat(k, ": ", Visible(v)));
  }
  if (!rest.empty()) absl::StrAppend(&out, " [", absl::StrJoin(rest, "; "), "]");
  return out;
}

absl::Status ConsentBook::Recover() {
  absl::StatusOr<std::vector<ConsentRow>> rows = store_->LoadConsents();
  if (!rows.ok()) return rows.status();
  for (const ConsentRow& row : *rows) {
    v1::ConsentRequest r;
    if (!r.ParseFromString(row.request)) {
      spdlog::warn("consent request {}: stored record unreadable; skipped", row.id);
      continue;
    }
    int64_t n = 0;
    if (absl::SimpleAtoi(absl::string_view(row.id).substr(row.id.rfind('-') + 1), &n)) {
      next_ = std::max(next_, n + 1);
    }
    if (!row.request_key.empty()) by_key_[{row.agent_id, row.request_key}] = row.id;
    if (r.status() == v1::CONSENT_STATUS_APPROVED && r.remember_for_goal() &&
        !r.goal_id().empty()) {
      std::map<std::string, std::string> details(r.details().begin(), r.details().end());
      remembered_[{r.goal_id(), Fingerprint(r.tool(), r.kind(), details)}] = row.id;
    }
    requests_[row.id] = r;
    if (r.status() == v1::CONSENT_STATUS_PENDING && r.has_deadline()) {
      Arm(row.id, FromProto(r.deadline()));
    }
  }
  return absl::OkStatus();
}

void ConsentBook::Save(const v1::ConsentRequest& r, const std::string& key, const char* event) {
  nlohmann::json payload = {{"id", r.id()},
                            {"tool", r.tool()},
                            {"status", v1::ConsentStatus_Name(r.status())},
                            {"decided_by", r.decided_by()},
                            {"reason", r.decision_reason()}};
  ConsentRow row{r.id(),      r.agent_id(), key, r.status(), r.SerializeAsString(),
                 r.task_id(), r.goal_id()};
  if (auto s = store_->SaveConsent(row, loop_->clock()->Now(), event, payload.dump()); !s.ok()) {
    spdlog::error("consent request {}: recording it: {}", r.id(), s.status().message());
  }
  if (transcripts_ != nullptr && !r.task_id().empty()) {
    v1::TranscriptEntry e;
    v1::TranscriptConsent* c = e.mutable_consent();
    c->set_consent_request_id(r.id());
    c->set_kind(r.kind());
    c->set_summary(r.summary());
    c->set_status(r.status());
    c->set_decided_by(r.decided_by());
    c->set_tool(r.tool());
    transcripts_->Record(r.task_id(), r.goal_id(), "", 0, std::move(e));
  }
}

void ConsentBook::Arm(const std::string& id, absl::Time deadline) {
  loop_->RunAt(deadline, [this, id] { Expire(id); });
}

void ConsentBook::Expire(const std::string& id) {
  auto it = requests_.find(id);
  if (it == requests_.end() || it->second.status() != v1::CONSENT_STATUS_PENDING) return;
  v1::ConsentRequest& r = it->second;
  r.set_status(v1::CONSENT_STATUS_EXPIRED);
  r.set_decision_reason("nobody decided before the deadline: treated as denied");
  SetTime(loop_->clock()->Now(), r.mutable_decide_time());
  Save(r, "", "consent.expired");
  if (audit_ != nullptr) {
    audit_->AppendBy("daemon", "consent.expire", r.summary(), "", r.task_id(),
                     {{"request", r.id()}, {"agent", r.agent_id()}, {"tool", r.tool()}});
  }
  spdlog::info("consent request {} ({} for {}) expired", id, r.tool(), r.agent_id());
}

absl::StatusOr<v1::RequestConsentResponse> ConsentBook::Request(
    const std::string& agent, const v1::RequestConsentRequest& req, const std::string& goal_id,
    int32_t attempt) {
  if (req.tool().empty() || req.kind() == v1::CONSENT_KIND_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        "a consent request needs the tool and the kind of permission it asks for");
  }
  if (req.details().empty()) {
    return absl::InvalidArgumentError(
        "a consent request needs its details (argv, path, host…): a person decides on them, "
        "and the decision covers exactly them");
  }
  if (req.details_size() > static_cast<int>(kMaxDetails)) {
    return absl::InvalidArgumentError(
        absl::StrCat("a consent request has at most ", kMaxDetails, " details"));
  }
  for (const auto& [k, v] : req.details()) {
    bool name_ok = !k.empty() && k.size() <= kMaxDetailKey;
    for (char c : k)
      name_ok = name_ok && (absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_');
    if (!name_ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "detail name \"", Visible(k.substr(0, kMaxDetailKey)),
          "\" is not a name: lowercase letters, digits and _, at most ", kMaxDetailKey, " bytes"));
    }
    if (v.size() > kMaxDetailValue) {
      return absl::InvalidArgumentError(
          absl::StrCat("detail \"", k, "\" is ", v.size(), " bytes; at most ", kMaxDetailValue));
    }
  }
  std::map<std::string, std::string> details(req.details().begin(), req.details().end());
  const std::string fingerprint = Fingerprint(req.tool(), req.kind(), details);
  const std::string key = absl::StrCat(req.task_id(), "@", attempt, "#", fingerprint);
  v1::RequestConsentResponse resp;
  if (auto k = by_key_.find({agent, key}); k != by_key_.end()) {
    const v1::ConsentRequest& first = requests_.at(k->second);
    // Pending: not asked twice. Approved: that very request was granted. A denial or an
    // expiry is not repeated silently: asking again is a new question for a person.
    if (first.status() == v1::CONSENT_STATUS_PENDING ||
        first.status() == v1::CONSENT_STATUS_APPROVED) {
      resp.set_consent_request_id(first.id());
      resp.set_status(first.status());
      return resp;
    }
  }
  absl::Time now = loop_->clock()->Now();
  absl::Duration timeout = req.has_timeout() ? absl::Seconds(req.timeout().seconds()) +
                                                   absl::Nanoseconds(req.timeout().nanos())
                                             : default_timeout_;
  v1::ConsentRequest r;
  r.set_id(absl::StrFormat("consent-%d", next_++));
  r.set_agent_id(agent);
  r.set_task_id(req.task_id());
  r.set_goal_id(goal_id);
  r.set_tool(req.tool());
  r.set_kind(req.kind());
  r.set_summary(Summary(req.tool(), req.kind(), details));
  for (const auto& [k, v] : details) (*r.mutable_details())[k] = v;
  SetTime(now, r.mutable_create_time());
  const v1::ConsentRequest* grant = nullptr;
  if (!goal_id.empty()) {
    if (auto g = remembered_.find({goal_id, fingerprint}); g != remembered_.end()) {
      grant = &requests_.at(g->second);
    }
  }
  if (grant != nullptr) {
    r.set_status(v1::CONSENT_STATUS_APPROVED);
    r.set_decided_by("remembered");
    r.set_decision_reason(absl::StrCat("covered by ", grant->id(), ", which ", grant->decided_by(),
                                       " approved for the rest of goal ", goal_id));
    SetTime(now, r.mutable_decide_time());
    Save(r, key, "consent.approved");
    if (audit_ != nullptr) {
      audit_->AppendBy(
          "remembered", "consent.approve", r.summary(), goal_id, r.task_id(),
          {{"request", r.id()}, {"agent", agent}, {"tool", r.tool()}, {"grant", grant->id()}});
    }
  } else {
    r.set_status(v1::CONSENT_STATUS_PENDING);
    if (timeout > absl::ZeroDuration()) SetTime(now + timeout, r.mutable_deadline());
    Save(r, key, "consent.requested");
    if (r.has_deadline()) Arm(r.id(), now + timeout);
  }
  by_key_[{agent, key}] = r.id();
  spdlog::info("consent request {} from {}: {}{}", r.id(), agent, r.summary(),
               grant != nullptr ? absl::StrCat(" (approved: ", r.decision_reason(), ")") : "");
  requests_[r.id()] = r;
  resp.set_consent_request_id(r.id());
  resp.set_status(r.status());
  return resp;
}

absl::StatusOr<v1::ConsentRequest> ConsentBook::Get(const std::string& agent,
                                                    const std::string& id) const {
  auto it = requests_.find(id);
  if (it == requests_.end()) {
    return absl::NotFoundError(absl::StrCat("consent request \"", id, "\" does not exist"));
  }
  if (it->second.agent_id() != agent) {
    return absl::PermissionDeniedError(
        absl::StrCat("consent request \"", id, "\" belongs to another agent"));
  }
  return it->second;
}

absl::StatusOr<v1::ConsentRequest> ConsentBook::Find(const std::string& id) const {
  auto it = requests_.find(id);
  if (it == requests_.end()) {
    return absl::NotFoundError(absl::StrCat("consent request \"", id,
                                            "\" does not exist (agentctl get consents --all "
                                            "lists them)"));
  }
  return it->second;
}

absl::StatusOr<v1::ConsentRequest> ConsentBook::Decide(const v1::DecideConsentRequestRequest& req,
                                                       const std::string& decided_by) {
  auto it = requests_.find(req.consent_request_id());
  if (it == requests_.end()) {
    return absl::NotFoundError(absl::StrCat("consent request \"", req.consent_request_id(),
                                            "\" does not exist (agentctl get consents lists "
                                            "them)"));
  }
  v1::ConsentRequest& r = it->second;
  if (r.status() != v1::CONSENT_STATUS_PENDING) {
    return absl::FailedPreconditionError(
        absl::StrCat("consent request \"", r.id(), "\" is already ",
                     v1::ConsentStatus_Name(r.status()).substr(15), "; it cannot be decided now"));
  }
  if (req.decision() != v1::CONSENT_DECISION_APPROVE &&
      req.decision() != v1::CONSENT_DECISION_DENY) {
    return absl::InvalidArgumentError("decision must be APPROVE or DENY");
  }
  r.set_status(req.decision() == v1::CONSENT_DECISION_APPROVE ? v1::CONSENT_STATUS_APPROVED
                                                              : v1::CONSENT_STATUS_DENIED);
  r.set_decided_by(decided_by);
  r.set_decision_reason(req.reason());
  // Remembering only means something for an approval within a goal.
  r.set_remember_for_goal(req.remember_for_goal() && r.status() == v1::CONSENT_STATUS_APPROVED &&
                          !r.goal_id().empty());
  SetTime(loop_->clock()->Now(), r.mutable_decide_time());
  if (r.remember_for_goal()) {
    std::map<std::string, std::string> details(r.details().begin(), r.details().end());
    remembered_[{r.goal_id(), Fingerprint(r.tool(), r.kind(), details)}] = r.id();
  }
  Save(r, "", r.status() == v1::CONSENT_STATUS_APPROVED ? "consent.approved" : "consent.denied");
  if (audit_ != nullptr) {
    audit_->AppendBy(decided_by,
                     r.status() == v1::CONSENT_STATUS_APPROVED ? "consent.approve" : "consent.deny",
                     r.summary(), "", r.task_id(),
                     {{"request", r.id()}, {"agent", r.agent_id()}, {"tool", r.tool()}});
  }
  v1::ConsentRequest decided = r;
  for (const auto& fn : decision_observers_) fn(decided);
  return decided;
}

std::vector<v1::ConsentRequest> ConsentBook::List(bool include_decided,
                                                  const std::string& agent) const {
  std::vector<v1::ConsentRequest> out;
  for (const auto& [id, r] : requests_) {
    if (!include_decided && r.status() != v1::CONSENT_STATUS_PENDING) continue;
    if (!agent.empty() && r.agent_id() != agent) continue;
    out.push_back(r);
  }
  return out;
}

}  // namespace agentd
