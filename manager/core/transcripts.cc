#include "manager/core/transcripts.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

#include "common/proto_text.h"
#include "common/text.h"
#include "manager/core/proto_time.h"
#include "spdlog/spdlog.h"

namespace agentd {

Transcripts::Transcripts(EventLoop* loop, Store* store, const ConfigState* config)
    : loop_(loop), store_(store), config_(config) {}

void Transcripts::Record(const std::string& task, const std::string& goal, const std::string& agent,
                         int attempt, v1::TranscriptEntry entry) {
  const absl::Time now = loop_->clock()->Now();
  // The row keeps seq and time; the ids stay in the entry (a reader gets it whole).
  entry.clear_seq();
  entry.clear_time();
  entry.set_task_id(task);
  entry.set_attempt(attempt);
  entry.set_agent_id(agent);
  // An agent's entry is outside input: what this agentd does not know of it goes, its
  // texts are made valid and bounded here, whatever the agent did already, and one that
  // still does not fit (thousands of short texts) is kept as a note that says so.
  entry.DiscardUnknownFields();
  if (entry.entry_case() == v1::TranscriptEntry::ENTRY_NOT_SET) return;
  const int64_t claimed = std::clamp<int64_t>(entry.omitted_bytes(), 0, int64_t{1} << 40);
  MakeStringsUtf8(&entry);
  const int64_t bound = config_->config().transcripts.entry_bytes;
  const int64_t cut = FitStrings(&entry, static_cast<size_t>(bound));
  entry.set_omitted_bytes(claimed + cut);
  if (static_cast<int64_t>(entry.ByteSizeLong()) > bound + 1024) {
    const int64_t size = static_cast<int64_t>(entry.ByteSizeLong());
    entry.mutable_note()->set_kind(v1::TRANSCRIPT_NOTE_KIND_PROGRESS);
    entry.mutable_note()->set_text(absl::StrCat(
        "(an entry of ", size, " bytes was too large to keep, even cut: transcripts.entry_bytes)"));
    entry.set_omitted_bytes(claimed + cut + size);
  }
  if (entry.has_model_turn() || entry.has_outcome()) EndLive(task);
  entry.clear_live();
  TranscriptRow row;
  row.pinned = agent.empty();
  row.time_us = absl::ToUnixMicros(now);
  row.task_id = task;
  row.goal_id = goal.empty() ? task : goal;
  row.entry = entry.SerializeAsString();
  queue_.push_back(std::move(row));
  if (!flush_posted_) {
    flush_posted_ = true;
    loop_->Post([this] { Flush(); });
  }
}

void Transcripts::Flush() {
  flush_posted_ = false;
  if (queue_.empty()) return;
  std::vector<TranscriptRow> rows = std::exchange(queue_, {});
  if (absl::Status s = store_->AppendTranscript(&rows, config_->config().transcripts.goal_bytes);
      !s.ok()) {
    spdlog::error("{} transcript entries lost: {}", rows.size(), s.message());
    return;
  }
  // Only the tasks a reader has caught up with are known here (Read adds them).
  for (const TranscriptRow& r : rows) {
    if (auto it = last_seq_.find(r.task_id); it != last_seq_.end()) {
      it->second = std::max(it->second, r.seq);
    }
  }
}

absl::StatusOr<std::vector<v1::TranscriptEntry>> Transcripts::Read(const std::string& task,
                                                                   int64_t after_seq, int limit) {
  Flush();
  // A follower that has everything asks once per token chunk and per commit: answered
  // from memory, without a query, once a read found nothing newer (last_seq_).
  if (auto it = last_seq_.find(task); it != last_seq_.end() && after_seq >= it->second) {
    return std::vector<v1::TranscriptEntry>();
  }
  absl::StatusOr<std::vector<TranscriptRow>> rows =
      store_->QueryTranscript(task, after_seq, limit, kReadBytes);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) {
    // Caught up: nothing after after_seq is stored, and whatever comes next is written by
    // Flush, which moves this on. Bounded: when full it starts over.
    if (last_seq_.size() >= kMaxLastSeqs) last_seq_.clear();
    last_seq_[task] = after_seq;
  }
  std::vector<v1::TranscriptEntry> out;
  out.reserve(rows->size());
  for (const TranscriptRow& r : *rows) {
    v1::TranscriptEntry e;
    if (!e.ParseFromString(r.entry)) {
      // Written by this code, so never expected; said rather than skipped in silence.
      e.Clear();
      e.set_task_id(r.task_id);
      e.mutable_note()->set_text("(this entry could not be read back from agentd.db)");
    }
    e.set_seq(r.seq);
    SetTime(absl::FromUnixMicros(r.time_us), e.mutable_time());
    out.push_back(std::move(e));
  }
  return out;
}

absl::StatusOr<TranscriptDropped> Transcripts::Dropped(const std::string& task) {
  Flush();
  return store_->TranscriptDroppedOf(task);
}

void Transcripts::Stream(const std::string& task, const std::string& agent, int attempt,
                         absl::string_view text, bool discarded) {
  auto it = live_.find(task);
  if (it == live_.end() || discarded) {
    if (it == live_.end() && discarded) return;  // nothing streamed to void
    Live fresh;
    fresh.generation = next_generation_++;
    if (it != live_.end()) fresh.voided = it->second.generation;
    it = live_.insert_or_assign(task, std::move(fresh)).first;
  }
  Live& l = it->second;
  l.agent = agent;
  l.attempt = attempt;
  if (!discarded) {
    if (text.empty() || l.text.size() + text.size() > kLiveBytes) return;  // bounded
    absl::StrAppend(&l.text, text);
  }
  for (const auto& [id, w] : watchers_) {
    if (w.first == task) w.second();
  }
}

std::vector<v1::TranscriptEntry> Transcripts::LiveSince(const std::string& task,
                                                        uint64_t* generation,
                                                        size_t* offset) const {
  std::vector<v1::TranscriptEntry> out;
  auto it = live_.find(task);
  if (it == live_.end()) return out;
  const Live& l = it->second;
  auto entry = [&] {
    v1::TranscriptEntry e;
    e.set_live(true);
    e.set_task_id(task);
    e.set_agent_id(l.agent);
    e.set_attempt(l.attempt);
    SetTime(loop_->clock()->Now(), e.mutable_time());
    return e;
  };
  if (l.generation != *generation) {
    // The text this watcher saw was made void by a discard (a call that ended instead is
    // superseded by its stored turn, which the watcher reads).
    if (*generation != 0 && *generation == l.voided && *offset > 0) {
      v1::TranscriptEntry e = entry();
      e.mutable_model_turn()->set_error("discarded");
      out.push_back(std::move(e));
    }
    *generation = l.generation;
    *offset = 0;
  }
  if (*offset < l.text.size()) {
    v1::TranscriptEntry e = entry();
    // On a character boundary: the text is whole pieces of valid UTF-8.
    e.mutable_model_turn()->set_text(ValidUtf8(absl::string_view(l.text).substr(*offset)));
    *offset = l.text.size();
    out.push_back(std::move(e));
  }
  return out;
}

int Transcripts::Watch(const std::string& task, std::function<void()> wake) {
  int id = next_watcher_++;
  watchers_[id] = {task, std::move(wake)};
  return id;
}

void Transcripts::Unwatch(int id) { watchers_.erase(id); }

void Transcripts::EndLive(const std::string& task) { live_.erase(task); }

}  // namespace agentd
