// The transcript tables' SQL (Store's contract is in store.h).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "manager/store/store.h"

namespace agentd {

absl::Status Store::AppendTranscript(std::vector<TranscriptRow>* rows, int64_t goal_bytes) {
  if (rows->empty()) return absl::OkStatus();
  absl::StatusOr<sqlite::Transaction> tx = sqlite::Transaction::Begin(db_.get());
  if (!tx.ok()) return tx.status();
  absl::StatusOr<sqlite::Statement> insert = db_->Prepare(
      "INSERT INTO transcript(task_id, goal_id, time_us, bytes, pinned, entry) VALUES (?1, ?2, ?3, "
      "?4, ?5, ?6) RETURNING seq");
  if (!insert.ok()) return insert.status();
  // A goal's size, kept as a row of its own: summing its entries on every append would
  // cost more the longer the goal ran.
  absl::StatusOr<sqlite::Statement> grow = db_->Prepare(
      "INSERT INTO transcript_goals(goal_id, bytes) VALUES (?1, ?2) ON CONFLICT(goal_id) DO "
      "UPDATE SET bytes = bytes + excluded.bytes RETURNING bytes");
  if (!grow.ok()) return grow.status();
  std::vector<std::pair<std::string, int64_t>> over;  // goals past goal_bytes, and their size
  for (TranscriptRow& r : *rows) {
    const int64_t bytes = static_cast<int64_t>(r.entry.size());
    insert->Reset();
    insert->Bind(1, r.task_id).Bind(2, r.goal_id).Bind(3, r.time_us).Bind(4, bytes);
    insert->Bind(5, int64_t{r.pinned ? 1 : 0}).BindBlob(6, r.entry);
    absl::StatusOr<bool> row = insert->Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::InternalError("inserting a transcript entry returned no seq");
    r.seq = insert->ColumnInt(0);
    if (absl::Status s = insert->Run(); !s.ok()) return s;
    grow->Reset();
    grow->Bind(1, r.goal_id).Bind(2, bytes);
    absl::StatusOr<bool> g = grow->Step();
    if (!g.ok()) return g.status();
    int64_t size = *g ? grow->ColumnInt(0) : 0;
    if (absl::Status s = grow->Run(); !s.ok()) return s;
    if (size > goal_bytes) {
      std::erase_if(over, [&](const auto& o) { return o.first == r.goal_id; });
      over.emplace_back(r.goal_id, size);
    }
  }
  // Retention: the oldest entries of a goal past its bound go, a batch at a time (a goal
  // just over its bound loses about one entry per append), and each task keeps count of
  // what it lost (a reader is told of the gap, never shown a transcript that silently
  // starts late). agentd's own entries are pinned: an agent's flood cannot push out the
  // outcomes and consents agentd recorded. Their size still counts.
  for (auto& [goal, size] : over) {
    absl::StatusOr<sqlite::Statement> oldest = db_->Prepare(
        "SELECT seq, task_id, bytes FROM transcript WHERE goal_id = ?1 AND pinned = 0 ORDER BY "
        "seq LIMIT 32");
    absl::StatusOr<sqlite::Statement> remove =
        db_->Prepare("DELETE FROM transcript WHERE seq = ?1");
    absl::StatusOr<sqlite::Statement> count = db_->Prepare(
        "INSERT INTO transcript_dropped(task_id, entries, bytes) VALUES (?1, 1, ?2) "
        "ON CONFLICT(task_id) DO UPDATE SET entries = entries + 1, bytes = bytes + excluded.bytes");
    if (!oldest.ok()) return oldest.status();
    if (!remove.ok()) return remove.status();
    if (!count.ok()) return count.status();
    while (size > goal_bytes) {
      struct Old {
        int64_t seq;
        std::string task;
        int64_t bytes;
      };
      std::vector<Old> batch;
      oldest->Reset();
      oldest->Bind(1, goal);
      for (;;) {
        absl::StatusOr<bool> row = oldest->Step();
        if (!row.ok()) return row.status();
        if (!*row) break;
        batch.push_back({oldest->ColumnInt(0), oldest->ColumnText(1), oldest->ColumnInt(2)});
      }
      if (batch.empty()) break;
      for (const Old& o : batch) {
        if (size <= goal_bytes) break;
        remove->Reset();
        if (absl::Status s = remove->Bind(1, o.seq).Run(); !s.ok()) return s;
        count->Reset();
        if (absl::Status s = count->Bind(1, o.task).Bind(2, o.bytes).Run(); !s.ok()) return s;
        size -= o.bytes;
      }
    }
    absl::StatusOr<sqlite::Statement> set =
        db_->Prepare("UPDATE transcript_goals SET bytes = ?2 WHERE goal_id = ?1");
    if (!set.ok()) return set.status();
    if (absl::Status s = set->Bind(1, goal).Bind(2, size).Run(); !s.ok()) return s;
  }
  if (absl::Status s = tx->Commit(); !s.ok()) return s;
  if (event_hook_) event_hook_(last_event_seq_);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TranscriptRow>> Store::QueryTranscript(absl::string_view task_id,
                                                                  int64_t after_seq, int64_t limit,
                                                                  int64_t max_bytes) {
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(
      "SELECT seq, time_us, task_id, goal_id, entry FROM transcript WHERE task_id = ?1 AND "
      "seq > ?2 ORDER BY seq LIMIT ?3");
  if (!st.ok()) return st.status();
  st->Bind(1, task_id).Bind(2, after_seq).Bind(3, limit);
  std::vector<TranscriptRow> out;
  int64_t bytes = 0;
  while (bytes < max_bytes) {
    absl::StatusOr<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    TranscriptRow r;
    r.seq = st->ColumnInt(0);
    r.time_us = st->ColumnInt(1);
    r.task_id = st->ColumnText(2);
    r.goal_id = st->ColumnText(3);
    r.entry = st->ColumnText(4);
    bytes += static_cast<int64_t>(r.entry.size());
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<TranscriptDropped> Store::TranscriptDroppedOf(absl::string_view task_id) {
  absl::StatusOr<sqlite::Statement> st =
      db_->Prepare("SELECT entries, bytes FROM transcript_dropped WHERE task_id = ?1");
  if (!st.ok()) return st.status();
  st->Bind(1, task_id);
  absl::StatusOr<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) return TranscriptDropped{};
  return TranscriptDropped{st->ColumnInt(0), st->ColumnInt(1)};
}

}  // namespace agentd
