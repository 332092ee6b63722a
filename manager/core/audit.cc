#include "manager/core/audit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/json_dump.h"
#include "common/logging.h"
#include "common/paths.h"
#include "common/sha256.h"
#include "common/token.h"
#include "manager/core/proto_time.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace agentd {
namespace {

constexpr char kKeyMagic[] = "agentd-audit-key 1";
constexpr char kHeadMagic[] = "agentd-audit-head 1";
constexpr size_t kKeyBytes = 32;

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
      (*e.mutable_details())[k] = v.is_string() ? v.get<std::string>() : DumpJson(v);
    }
  }
  e.set_prev_hash(r.prev_hash);
  e.set_hash(r.hash);
  return e;
}

std::string Hex(const unsigned char* bytes, unsigned int n) {
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(bytes), n));
}

std::string HmacHex(absl::string_view key, absl::string_view text) {
  return DigestHex(HmacSha256(key, text));
}

bool IsHex(absl::string_view s, size_t size) {
  if (s.size() != size) return false;
  for (char c : s) {
    if (!absl::ascii_isxdigit(c) || absl::ascii_isupper(c)) return false;
  }
  return true;
}

absl::Status ErrnoError(const std::string& path, absl::string_view what, int err) {
  std::string msg = absl::StrCat(path, ": ", what, ": ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(msg);
  if (err == EACCES || err == EPERM || err == EROFS) return absl::PermissionDeniedError(msg);
  return absl::InternalError(msg);
}

// Replaces `path` with `contents` so that a crash leaves the old file or the new one,
// never a torn one: a 0600 temporary file, fsynced, renamed over `path`, and the
// directory fsynced so that the rename itself survives a power cut.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents) {
  std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ErrnoError(tmp, "cannot create", errno);
  bool ok = fchmod(fd, 0600) == 0;
  for (size_t done = 0; ok && done < contents.size();) {
    ssize_t n = write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  ok = ok && fsync(fd) == 0;
  int err = errno;
  if (close(fd) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    unlink(tmp.c_str());
    return ErrnoError(tmp, "cannot write", err);
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    unlink(tmp.c_str());
    return ErrnoError(path, "cannot replace", err);
  }
  std::string dir = DirName(path);
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return ErrnoError(dir, "cannot open to sync", errno);
  ok = fsync(dfd) == 0;
  err = errno;
  close(dfd);
  if (!ok) return ErrnoError(dir, "cannot sync", err);
  return absl::OkStatus();
}

// The contents of one of the audit files: NotFound when it does not exist. It must be a
// regular file of this user's, and with `secret` not accessible by group or others.
absl::StatusOr<std::string> ReadOwnFile(const std::string& path, bool secret) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": does not exist"));
    return ErrnoError(path, "cannot open", errno);
  }
  struct stat st;
  std::string problem;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    problem = "is not a regular file";
  } else if (st.st_uid != geteuid()) {
    problem =
        absl::StrCat("belongs to uid ", st.st_uid, ", not to this user (uid ", geteuid(), ")");
  } else if (secret && (st.st_mode & 077) != 0) {
    problem = absl::StrFormat("is accessible by group or others (mode %04o); run: chmod 600 %s",
                              st.st_mode & 0777, path);
  }
  if (!problem.empty()) {
    close(fd);
    return absl::PermissionDeniedError(absl::StrCat(path, ": ", problem));
  }
  std::string data;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return ErrnoError(path, "cannot read", err);
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > 4096) break;  // none of agentd's is anywhere near this
  }
  close(fd);
  return data;
}

// Splits "<magic> k1=v1 k2=v2" into its values; empty when the line is not of that form
// or lacks one of `keys`.
std::map<std::string, std::string> ParseLine(absl::string_view text, absl::string_view magic,
                                             const std::vector<std::string>& keys) {
  absl::string_view line = absl::StripTrailingAsciiWhitespace(text);
  if (!absl::ConsumePrefix(&line, magic) || !absl::ConsumePrefix(&line, " ")) return {};
  std::map<std::string, std::string> out;
  for (absl::string_view part : absl::StrSplit(line, ' ')) {
    std::pair<std::string, std::string> kv = absl::StrSplit(part, absl::MaxSplits('=', 1));
    if (!absl::StrContains(part, '=') || !out.insert(kv).second) return {};
  }
  for (const std::string& k : keys) {
    if (!out.count(k)) return {};
  }
  return out;
}

}  // namespace

AuditFiles AuditLog::FilesIn(const std::string& state_dir) {
  return {state_dir + "/audit.key", state_dir + "/audit.head"};
}

std::string AuditLog::Hash(const AuditRow& row, absl::string_view key) {
  v1::AuditEntry e = FromRow(row);
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
  if (!key.empty()) return HmacHex(key, text);
  return DigestHex(Sha256(text));
}

std::string AuditLog::Mac(absl::string_view text) const { return HmacHex(key_, text); }

absl::string_view AuditLog::KeyFor(int64_t seq) const {
  return seq >= keyed_from_ ? absl::string_view(key_) : absl::string_view();
}

absl::StatusOr<AuditLog::Head> AuditLog::ReadHead() const {
  absl::StatusOr<std::string> text = ReadOwnFile(files_.head, /*secret=*/false);
  if (!text.ok()) return text.status();
  std::map<std::string, std::string> f = ParseLine(*text, kHeadMagic, {"seq", "hash", "mac"});
  Head head;
  if (f.empty() || !absl::SimpleAtoi(f["seq"], &head.seq) || head.seq < 0 || !IsHex(f["mac"], 64) ||
      (head.seq > 0) != !f["hash"].empty()) {
    return absl::DataLossError(absl::StrCat(files_.head, " is not a head agentd wrote"));
  }
  head.hash = f["hash"];
  std::string signed_part = absl::StrCat(kHeadMagic, " seq=", head.seq, " hash=", head.hash);
  if (Mac(signed_part) != f["mac"]) {
    return absl::DataLossError(absl::StrCat(files_.head, "'s mac does not match audit.key"));
  }
  return head;
}

absl::Status AuditLog::WriteHead() const {
  std::string signed_part = absl::StrCat(kHeadMagic, " seq=", last_seq_, " hash=", last_hash_);
  return WriteFileAtomically(files_.head,
                             absl::StrCat(signed_part, " mac=", Mac(signed_part), "\n"));
}

absl::StatusOr<AuditLog::HeadCheck> AuditLog::CheckHead(const absl::StatusOr<Head>& head,
                                                        int64_t newest_seq,
                                                        const std::string& newest_hash) const {
  HeadCheck check;
  check.seq = newest_seq + 1;
  if (absl::IsNotFound(head.status())) {
    check.kind = HeadCheck::kMismatch;
    check.problem = absl::StrCat(files_.head, " is missing");
    return check;
  }
  if (!head.ok()) {
    check.kind = HeadCheck::kMismatch;
    check.problem = std::string(head.status().message());
    return check;
  }
  if (head->seq > newest_seq) {
    check.kind = HeadCheck::kAhead;
    return check;
  }
  std::string hash_at_head = newest_hash;
  if (head->seq == 0) {
    hash_at_head.clear();
  } else if (head->seq < newest_seq) {
    absl::StatusOr<std::vector<AuditRow>> at = store_->QueryAudit(head->seq - 1, head->seq, "", 1);
    if (!at.ok()) return at.status();
    hash_at_head = at->empty() ? "" : at->front().hash;
  }
  if (hash_at_head != head->hash) {
    check.kind = HeadCheck::kMismatch;
    check.seq = head->seq;
    check.problem = absl::StrCat(files_.head, " records entry ", head->seq,
                                 " with another hash than agentd.db holds for it");
  } else if (newest_seq == head->seq + 1) {
    check.kind = HeadCheck::kOneBehind;
  } else if (newest_seq > head->seq + 1) {
    check.kind = HeadCheck::kMismatch;
    check.seq = head->seq + 2;  // head->seq + 1 alone is what a crash leaves
    check.problem = absl::StrCat(
        files_.head, " is ", newest_seq - head->seq, " entries behind agentd.db (it records entry ",
        head->seq, ", agentd.db ends at entry ", newest_seq,
        "): its writes failed (agentd's log says why) or an older copy was put back");
  }
  return check;
}

absl::Status AuditLog::Recover() {
  // The newest row only: reading every row at start would grow with the log.
  absl::StatusOr<std::optional<AuditRow>> newest = store_->LastAudit();
  if (!newest.ok()) return newest.status();
  int64_t newest_seq = newest->has_value() ? (*newest)->seq : 0;
  std::string newest_hash = newest->has_value() ? (*newest)->hash : "";
  last_seq_ = newest_seq;
  last_hash_ = newest_hash;

  absl::StatusOr<std::string> key_text = ReadOwnFile(files_.key, /*secret=*/true);
  if (absl::IsNotFound(key_text.status())) {
    // The first start with a key: entries already written stay unkeyed.
    unsigned char raw[kKeyBytes];
    if (!FillRandom(raw, sizeof(raw))) {
      return absl::InternalError("audit: no random bytes for audit.key");
    }
    key_ = std::string(reinterpret_cast<const char*>(raw), sizeof(raw));
    keyed_from_ = newest_seq + 1;
    if (absl::Status s =
            WriteFileAtomically(files_.key, absl::StrCat(kKeyMagic, " keyed_from=", keyed_from_,
                                                         " key=", Hex(raw, sizeof(raw)), "\n"));
        !s.ok()) {
      return s;
    }
    spdlog::info("audit: made {}; entries from {} on are keyed", files_.key, keyed_from_);
  } else if (!key_text.ok()) {
    return key_text.status();
  } else {
    std::map<std::string, std::string> f = ParseLine(*key_text, kKeyMagic, {"keyed_from", "key"});
    if (f.empty() || !absl::SimpleAtoi(f["keyed_from"], &keyed_from_) || keyed_from_ < 1 ||
        !IsHex(f["key"], 2 * kKeyBytes)) {
      return absl::FailedPreconditionError(absl::StrCat(
          files_.key,
          " is not a key agentd wrote; restore it from a backup of the state directory"));
    }
    key_ = absl::HexStringToBytes(f["key"]);
  }

  absl::StatusOr<Head> head = ReadHead();
  if (absl::IsNotFound(head.status()) && newest_seq < keyed_from_) {
    return WriteHead();  // the first start with a key (or a crash before its head)
  }
  if (!head.ok() && !absl::IsNotFound(head.status()) && !absl::IsDataLoss(head.status())) {
    return head.status();
  }
  absl::StatusOr<HeadCheck> check = CheckHead(head, newest_seq, newest_hash);
  if (!check.ok()) return check.status();
  switch (check->kind) {
    case HeadCheck::kCurrent:
      return absl::OkStatus();
    case HeadCheck::kOneBehind:
      // A crash between the entry's commit and the head's write.
      return WriteHead();
    case HeadCheck::kAhead:
      // Entries after newest_seq were deleted. Go on after the head, so that the gap
      // stays in the chain and Verify names it after any number of restarts.
      spdlog::error(
          "audit: agentd.db ends at entry {} but {} records entry {}: the newest "
          "entries were deleted; agentctl audit --verify reports them",
          newest_seq, files_.head, head->seq);
      last_seq_ = head->seq;
      last_hash_ = head->hash;
      return absl::OkStatus();
    case HeadCheck::kMismatch:
      break;
  }
  spdlog::error("audit: {}; recording it in the audit log", check->problem);
  return AppendEntry(v1::ACTOR_KIND_DAEMON, "daemon", kHeadMismatchAction, files_.head, "", "",
                     {{"problem", check->problem}, {"newest_seq", absl::StrCat(newest_seq)}});
}

absl::StatusOr<AuditRecord> AuditLog::Prepare(const AuditIntent& intent) const {
  if (key_.empty()) return absl::FailedPreconditionError("the audit log was not recovered");
  nlohmann::json d = nlohmann::json::object();
  for (const auto& [k, v] : intent.details) d[k] = RedactSecrets(v);
  AuditRecord record;
  AuditRow& row = record.row;
  row.seq = last_seq_ + 1;
  // Whole microseconds: what the store keeps is what was hashed.
  row.time_us = absl::ToUnixMicros(loop_->clock()->Now());
  row.actor_kind = intent.kind;
  row.actor_id = intent.actor;
  row.action = intent.action;
  row.target = RedactSecrets(intent.target);
  row.goal_id = intent.goal_id;
  row.task_id = intent.task_id;
  row.details_json = DumpJson(d);
  row.prev_hash = last_hash_;
  row.hash = Hash(row, KeyFor(row.seq));
  record.entry_proto = FromRow(row).SerializeAsString();
  return record;
}

void AuditLog::Committed(const AuditRecord& record) {
  last_seq_ = record.row.seq;
  last_hash_ = record.row.hash;
  // Only now: the head never names an entry the database could still lose.
  if (absl::Status s = WriteHead(); !s.ok()) {
    spdlog::error("audit: entry {} is recorded, but {} (the next entry tries again)",
                  record.row.seq, s.message());
  }
}

absl::Status AuditLog::AppendEntry(v1::ActorKind kind, const std::string& actor,
                                   const std::string& action, const std::string& target,
                                   const std::string& goal_id, const std::string& task_id,
                                   const std::map<std::string, std::string>& details) {
  absl::StatusOr<AuditRecord> record =
      Prepare(AuditIntent{kind, actor, action, target, goal_id, task_id, details});
  if (!record.ok()) return record.status();
  if (absl::Status s = store_->AppendAudit(record->row, record->entry_proto); !s.ok()) return s;
  Committed(*record);
  return absl::OkStatus();
}

void AuditLog::Append(v1::ActorKind kind, const std::string& actor, const std::string& action,
                      const std::string& target, const std::string& goal_id,
                      const std::string& task_id,
                      const std::map<std::string, std::string>& details) {
  if (absl::Status s = AppendEntry(kind, actor, action, target, goal_id, task_id, details);
      !s.ok()) {
    spdlog::error("audit: recording {} {} by {}: {}", action, RedactSecrets(target), actor,
                  s.message());
  }
}

AuditIntent AuditLog::By(const std::string& by, const std::string& action,
                         const std::string& target, const std::string& goal_id,
                         const std::string& task_id,
                         const std::map<std::string, std::string>& details) {
  AuditIntent intent{v1::ACTOR_KIND_AGENT, by, action, target, goal_id, task_id, details};
  if (absl::StartsWith(by, "human")) {
    intent.kind = v1::ACTOR_KIND_HUMAN;
  } else if (by == "daemon" || by == "policy" || by.empty()) {
    intent.kind = v1::ACTOR_KIND_DAEMON;
    if (intent.actor.empty()) intent.actor = "daemon";
  }
  return intent;
}

void AuditLog::AppendBy(const std::string& by, const std::string& action, const std::string& target,
                        const std::string& goal_id, const std::string& task_id,
                        const std::map<std::string, std::string>& details) {
  AuditIntent i = By(by, action, target, goal_id, task_id, details);
  Append(i.kind, i.actor, i.action, i.target, i.goal_id, i.task_id, i.details);
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
  if (key_.empty()) return absl::FailedPreconditionError("the audit log was not recovered");
  v1::VerifyAuditChainResponse resp;
  auto broken = [&resp](int64_t seq, std::string why) {
    resp.set_ok(false);
    resp.set_first_broken_seq(seq);
    resp.set_reason(std::move(why));
    return resp;
  };
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
      resp.set_last_hash(prev);
      if (r.seq != expect) {
        return broken(expect, r.seq == expect + 1 ? absl::StrCat("entry ", expect, " is missing")
                                                  : absl::StrCat("entries ", expect, " to ",
                                                                 r.seq - 1, " are missing"));
      }
      if (r.prev_hash != prev) {
        return broken(r.seq, absl::StrCat("prev_hash does not match entry ", r.seq - 1));
      }
      if (Hash(r, KeyFor(r.seq)) != r.hash) {
        return broken(r.seq,
                      "hash mismatch: the entry was changed after it was written, or written "
                      "without audit.key");
      }
      if (r.action == kHeadMismatchAction && r.actor_kind == v1::ACTOR_KIND_DAEMON) {
        nlohmann::json d =
            nlohmann::json::parse(r.details_json.begin(), r.details_json.end(), nullptr, false);
        std::string problem = d.is_object() && d.contains("problem") && d["problem"].is_string()
                                  ? d["problem"].get<std::string>()
                                  : "audit.head did not match agentd.db";
        return broken(r.seq, absl::StrCat("agentd found at start: ", problem,
                                          "; entries before this one may have been deleted "
                                          "from the end of the log or replaced"));
      }
      prev = r.hash;
      ++expect;
    }
    if (rows->size() < 1000) break;
  }
  resp.set_last_hash(prev);
  if (req.to_seq() == 0) {
    // Through the end: the chain holds, but deleting the newest entries keeps it whole.
    absl::StatusOr<std::optional<AuditRow>> newest = store_->LastAudit();
    if (!newest.ok()) return newest.status();
    int64_t newest_seq = newest->has_value() ? (*newest)->seq : 0;
    absl::StatusOr<Head> head = ReadHead();
    if (!head.ok() && !absl::IsNotFound(head.status()) && !absl::IsDataLoss(head.status())) {
      return head.status();
    }
    absl::StatusOr<HeadCheck> check =
        CheckHead(head, newest_seq, newest->has_value() ? (*newest)->hash : "");
    if (!check.ok()) return check.status();
    if (check->kind == HeadCheck::kAhead) {
      std::string ends =
          newest_seq == 0 ? "holds no entry" : absl::StrCat("ends at entry ", newest_seq);
      return broken(
          newest_seq + 1,
          absl::StrCat(head->seq == newest_seq + 1
                           ? absl::StrCat("entry ", head->seq, " is")
                           : absl::StrCat("entries ", newest_seq + 1, " to ", head->seq, " are"),
                       " missing from the end of the log: ", files_.head, " records entry ",
                       head->seq, " but agentd.db ", ends));
    }
    if (check->kind == HeadCheck::kMismatch) {
      return broken(check->seq, absl::StrCat(check->problem,
                                             ": whether the newest entries "
                                             "were deleted cannot be checked"));
    }
    // kOneBehind: a crash between an entry's commit and the head's write, or a failed head
    // write that the next append repairs.
  }
  resp.set_ok(true);
  return resp;
}

}  // namespace agentd
