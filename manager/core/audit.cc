#include "manager/core/audit.h"

#include <openssl/evp.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "manager/core/proto_time.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace agentd {
namespace {

// One field of the hashed text: its length, then its bytes, so no two different entries
// hash the same text.
void Field(std::string* out, absl::string_view v) { absl::StrAppend(out, v.size(), ":", v, ";"); }

v1::AuditEntry FromRow(const AuditRow& r) {
  v1::AuditEntry e;
  e.set_seq(r.seq);
  SetTime(absl::FromUnixMicros(r.time_us), e.mutable_time());
  e.mutable_actor()->set_kind(static_cast<v1::ActorKind>(r.actor_kind));
  e.mutable_actor()->set_id(r.actor_id);
  e.set_action(r.action);
  e.set_target(r.target);
  e.set_goal_id(r.goal_id);
  e.set_task_id(r.task_id);
  nlohmann::json d =
      nlohmann::json::parse(r.details_json.begin(), r.details_json.end(), nullptr, false);
  if (d.is_object()) {
    for (auto& [k, v] : d.items()) {
      (*e.mutable_details())[k] = v.is_string() ? v.get<std::string>() : v.dump();
    }
  }
  e.set_prev_hash(r.prev_hash);
  e.set_hash(r.hash);
  return e;
}

}  // namespace

std::string AuditLog::Hash(const v1::AuditEntry& e) {
  std::string text;
  Field(&text, e.prev_hash());
  Field(&text, absl::StrCat(e.seq()));
  Field(&text, absl::StrCat(absl::ToUnixMicros(FromProto(e.time()))));
  Field(&text, absl::StrCat(static_cast<int>(e.actor().kind())));
  Field(&text, e.actor().id());
  Field(&text, e.action());
  Field(&text, e.target());
  Field(&text, e.goal_id());
  Field(&text, e.task_id());
  std::map<std::string, std::string> details(e.details().begin(), e.details().end());
  for (const auto& [k, v] : details) {
    Field(&text, k);
    Field(&text, v);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(text.data(), text.size(), digest, &n, EVP_sha256(), nullptr);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), n));
}

absl::Status AuditLog::Recover() {
  // The head is the last row; reading every row at start would grow with the log.
  absl::StatusOr<int64_t> last = store_->db()->QueryInt("SELECT COALESCE(MAX(seq), 0) FROM audit");
  if (!last.ok()) return last.status();
  last_seq_ = *last;
  if (last_seq_ > 0) {
    absl::StatusOr<std::vector<AuditRow>> rows =
        store_->QueryAudit(last_seq_ - 1, last_seq_, "", 1);
    if (!rows.ok()) return rows.status();
    if (!rows->empty()) last_hash_ = rows->front().hash;
  }
  return absl::OkStatus();
}

void AuditLog::Append(v1::ActorKind kind, const std::string& actor, const std::string& action,
                      const std::string& target, const std::string& goal_id,
                      const std::string& task_id,
                      const std::map<std::string, std::string>& details) {
  v1::AuditEntry e;
  e.set_seq(last_seq_ + 1);
  // Whole microseconds: what the store keeps is what was hashed.
  SetTime(absl::FromUnixMicros(absl::ToUnixMicros(loop_->clock()->Now())), e.mutable_time());
  e.mutable_actor()->set_kind(kind);
  e.mutable_actor()->set_id(actor);
  e.set_action(action);
  e.set_target(RedactSecrets(target));
  e.set_goal_id(goal_id);
  e.set_task_id(task_id);
  nlohmann::json d = nlohmann::json::object();
  for (const auto& [k, v] : details) {
    std::string masked = RedactSecrets(v);
    (*e.mutable_details())[k] = masked;
    d[k] = masked;
  }
  e.set_prev_hash(last_hash_);
  e.set_hash(Hash(e));
  AuditRow row{e.seq(),  absl::ToUnixMicros(FromProto(e.time())),
               kind,     actor,
               action,   e.target(),
               goal_id,  task_id,
               d.dump(), e.prev_hash(),
               e.hash()};
  if (absl::Status s = store_->AppendAudit(row); !s.ok()) {
    spdlog::error("audit: recording {} {} by {}: {}", action, target, actor, s.message());
    return;
  }
  last_seq_ = e.seq();
  last_hash_ = e.hash();
}

void AuditLog::AppendBy(const std::string& by, const std::string& action, const std::string& target,
                        const std::string& goal_id, const std::string& task_id,
                        const std::map<std::string, std::string>& details) {
  v1::ActorKind kind = v1::ACTOR_KIND_AGENT;
  std::string id = by;
  if (absl::StartsWith(by, "human")) {
    kind = v1::ACTOR_KIND_HUMAN;
  } else if (by == "daemon" || by == "policy" || by.empty()) {
    kind = v1::ACTOR_KIND_DAEMON;
    if (id.empty()) id = "daemon";
  }
  Append(kind, id, action, target, goal_id, task_id, details);
}

absl::StatusOr<v1::ListAuditEntriesResponse> AuditLog::List(
    const v1::ListAuditEntriesRequest& req) const {
  int64_t size = req.page_size() <= 0 ? 100 : std::min(req.page_size(), 1000);
  int64_t after = 0;
  if (!req.page_token().empty() && !absl::SimpleAtoi(req.page_token(), &after)) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_token \"", req.page_token(), "\" is not one this server issued"));
  }
  int64_t start_us = req.has_start_time() ? absl::ToUnixMicros(FromProto(req.start_time())) : 0;
  int64_t end_us = req.has_end_time() ? absl::ToUnixMicros(FromProto(req.end_time())) : INT64_MAX;
  v1::ListAuditEntriesResponse resp;
  // Filters other than the goal are applied here, reading on in chunks.
  for (;;) {
    absl::StatusOr<std::vector<AuditRow>> rows = store_->QueryAudit(after, 0, req.goal_id(), 500);
    if (!rows.ok()) return rows.status();
    for (const AuditRow& r : *rows) {
      after = r.seq;
      if (!req.actor_id().empty() && r.actor_id != req.actor_id()) continue;
      if (req.actor_kind() != v1::ACTOR_KIND_UNSPECIFIED && r.actor_kind != req.actor_kind()) {
        continue;
      }
      if (!req.action().empty()) {
        bool prefix = absl::EndsWith(req.action(), ".");
        if (prefix ? !absl::StartsWith(r.action, req.action()) : r.action != req.action()) continue;
      }
      if (r.time_us < start_us || r.time_us >= end_us) continue;
      *resp.add_entries() = FromRow(r);
      if (resp.entries_size() == size) {
        resp.set_next_page_token(absl::StrCat(r.seq));
        return resp;
      }
    }
    if (rows->size() < 500) return resp;
  }
}

absl::StatusOr<v1::VerifyAuditChainResponse> AuditLog::Verify(
    const v1::VerifyAuditChainRequest& req) const {
  v1::VerifyAuditChainResponse resp;
  int64_t from = std::max<int64_t>(1, req.from_seq());
  std::string prev;
  if (from > 1) {
    absl::StatusOr<std::vector<AuditRow>> before = store_->QueryAudit(from - 2, from - 1, "", 1);
    if (!before.ok()) return before.status();
    if (!before->empty()) prev = before->front().hash;
  }
  int64_t expect = from;
  int64_t after = from - 1;
  for (;;) {
    absl::StatusOr<std::vector<AuditRow>> rows = store_->QueryAudit(after, req.to_seq(), "", 1000);
    if (!rows.ok()) return rows.status();
    for (const AuditRow& r : *rows) {
      after = r.seq;
      resp.set_entries_checked(resp.entries_checked() + 1);
      std::string why;
      if (r.seq != expect) {
        why = absl::StrCat("entry ", expect, " is missing");
        resp.set_first_broken_seq(expect);
      } else if (r.prev_hash != prev) {
        why = absl::StrCat("prev_hash does not match entry ", r.seq - 1);
      } else if (Hash(FromRow(r)) != r.hash) {
        why = "hash mismatch: the entry was changed after it was written";
      }
      if (!why.empty()) {
        resp.set_ok(false);
        if (resp.first_broken_seq() == 0) resp.set_first_broken_seq(r.seq);
        resp.set_reason(why);
        resp.set_last_hash(prev);
        return resp;
      }
      prev = r.hash;
      ++expect;
    }
    if (rows->size() < 1000) break;
  }
  resp.set_ok(true);
  resp.set_last_hash(prev);
  return resp;
}

}  // namespace agentd
