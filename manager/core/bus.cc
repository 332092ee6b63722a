#include "manager/core/bus.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/json_dump.h"
#include "common/logging.h"
#include "manager/core/proto_time.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace agentd {

absl::Status Bus::Recover() {
  absl::StatusOr<std::vector<MessageRow>> rows = store_->LoadMessages();
  if (!rows.ok()) return rows.status();
  for (const MessageRow& row : *rows) {
    v1::Envelope m;
    if (!m.ParseFromString(row.body)) continue;
    m.set_seq(row.seq);
    int64_t n = 0;
    if (absl::SimpleAtoi(absl::string_view(row.id).substr(row.id.rfind('-') + 1), &n)) {
      next_id_ = std::max(next_id_, n + 1);
    }
    if (!row.request_key.empty()) by_key_[{m.from(), row.request_key}] = row.seq;
    by_id_[m.id()] = row.seq;
    messages_[row.seq] = std::move(m);
  }
  return absl::OkStatus();
}

void Bus::Save(const v1::Envelope& msg) {
  v1::Envelope copy = msg;
  copy.clear_seq();
  if (absl::Status s = store_->UpdateMessage(msg.seq(), copy.SerializeAsString()); !s.ok()) {
    spdlog::error("message {}: recording its delivery: {}", msg.id(), s.message());
  }
}

absl::StatusOr<v1::Envelope> Bus::Send(const std::string& from, v1::Envelope msg,
                                       const std::string& request_key) {
  if (!request_key.empty()) {
    if (auto it = by_key_.find({from, request_key}); it != by_key_.end()) {
      return messages_.at(it->second);
    }
  }
  if (absl::StripAsciiWhitespace(msg.body()).empty()) {
    return absl::InvalidArgumentError("body is required: say something");
  }
  const std::string& to = msg.to();
  const Config& cfg = config_->config();
  if (absl::StartsWith(to, "role:")) {
    std::string role = to.substr(5);
    if (cfg.roles.count(role) == 0) {
      std::vector<std::string> roles;
      for (const auto& [name, r] : cfg.roles) roles.push_back(name);
      return absl::InvalidArgumentError(absl::StrCat(
          "to: role \"", role, "\" is not configured; roles are: ", absl::StrJoin(roles, ", ")));
    }
  } else if (to != "human" && !absl::StartsWith(to, "human:")) {
    if (!supervisor_->Get(to).ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "to: \"", to,
          "\" is not an agent (agentctl get agents lists them), \"role:<name>\" or \"human\""));
    }
  }
  if (!msg.task_id().empty()) {
    absl::StatusOr<v1::Task> t = tasks_->Get(msg.task_id());
    if (!t.ok()) return t.status();
    if (msg.goal_id().empty()) msg.set_goal_id(t->goal_id());
  }
  if (!msg.reply_to_id().empty() && by_id_.count(msg.reply_to_id()) == 0) {
    return absl::NotFoundError(
        absl::StrCat("reply_to_id: message \"", msg.reply_to_id(), "\" does not exist"));
  }
  if (msg.type() == v1::ENVELOPE_TYPE_UNSPECIFIED) msg.set_type(v1::ENVELOPE_TYPE_TEXT);
  msg.set_from(from);
  msg.set_id(absl::StrCat("m-", next_id_++));
  absl::Time now = loop_->clock()->Now();
  SetTime(now, msg.mutable_create_time());
  nlohmann::json payload = {{"id", msg.id()}, {"from", from}, {"to", to}};
  std::string sender_agent = absl::StartsWith(from, "human") ? "" : from;
  absl::StatusOr<int64_t> seq =
      store_->AddMessage(msg.id(), request_key, msg.SerializeAsString(), now, DumpJson(payload),
                         sender_agent, msg.task_id(), msg.goal_id());
  if (!seq.ok()) return seq.status();
  msg.set_seq(*seq);
  by_id_[msg.id()] = *seq;
  if (!request_key.empty()) by_key_[{from, request_key}] = *seq;
  v1::Envelope& stored = messages_[*seq] = msg;
  if (absl::StartsWith(to, "role:")) {
    std::string agent = tasks_->PickAgent(to.substr(5));
    if (!agent.empty()) DeliverTo(stored, agent);
  } else if (to != "human" && !absl::StartsWith(to, "human:")) {
    DeliverTo(stored, to);
  }
  return stored;
}

void Bus::DeliverTo(v1::Envelope& msg, const std::string& agent) {
  if (absl::StartsWith(msg.to(), "role:")) msg.set_delivered_to(agent);
  SetTime(loop_->clock()->Now(), msg.mutable_deliver_time());
  msg.set_delivery_attempts(msg.delivery_attempts() + 1);
  Save(msg);
  v1::ConnectResponse d;
  *d.mutable_envelope() = msg;
  int64_t delivery = outbox_->Deliver(agent, std::move(d));
  if (delivery > 0) pending_ack_[{agent, delivery}] = msg.seq();
}

void Bus::OnAttach(const std::string& agent) {
  absl::StatusOr<v1::Agent> a = supervisor_->Get(agent);
  if (!a.ok()) return;
  std::string to = absl::StrCat("role:", a->role());
  for (auto& [seq, msg] : messages_) {
    if (msg.to() == to && msg.delivered_to().empty()) DeliverTo(msg, agent);
  }
}

void Bus::OnAck(const std::string& agent, int64_t delivery_seq) {
  auto it = pending_ack_.begin();
  while (it != pending_ack_.end()) {
    if (it->first.first == agent && it->first.second <= delivery_seq) {
      if (auto m = messages_.find(it->second); m != messages_.end() && !m->second.has_ack_time()) {
        SetTime(loop_->clock()->Now(), m->second.mutable_ack_time());
        Save(m->second);
      }
      it = pending_ack_.erase(it);
    } else {
      ++it;
    }
  }
}

bool Bus::Matches(const v1::Envelope& m, const std::string& goal_id, const std::string& task_id,
                  const std::string& agent_id) {
  if (!goal_id.empty() && m.goal_id() != goal_id) return false;
  if (!task_id.empty() && m.task_id() != task_id) return false;
  if (agent_id.empty()) return true;
  bool human = agent_id == "human";
  bool from = human ? absl::StartsWith(m.from(), "human") : m.from() == agent_id;
  bool to = human ? absl::StartsWith(m.to(), "human")
                  : (m.to() == agent_id || m.delivered_to() == agent_id);
  return from || to;
}

v1::ListMessagesResponse Bus::List(const v1::ListMessagesRequest& req) const {
  int32_t size = req.page_size() <= 0 ? 100 : std::min(req.page_size(), 1000);
  int64_t after = 0;
  if (!req.page_token().empty()) (void)absl::SimpleAtoi(req.page_token(), &after);
  v1::ListMessagesResponse resp;
  for (auto it = messages_.upper_bound(after); it != messages_.end(); ++it) {
    const v1::Envelope& m = it->second;
    if (!Matches(m, req.goal_id(), req.task_id(), req.agent_id())) continue;
    if (resp.envelopes_size() == size) {
      resp.set_next_page_token(absl::StrCat(resp.envelopes(size - 1).seq()));
      break;
    }
    *resp.add_envelopes() = m;
  }
  return resp;
}

}  // namespace agentd
