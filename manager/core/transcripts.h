// Transcripts: the record of the work on each task, entry by entry (v1.TranscriptEntry) —
// the prompt, the model's turns, the tool calls with their arguments, results and diffs,
// the notes added to the conversation, consent requests and outcomes. Agents report most
// of it with their task events; agentd adds what it decides itself (outcomes, consents).
//
// Entries live in agentd.db (Store::AppendTranscript), within transcripts.goal_bytes per
// goal (the oldest go first, and each task counts what it lost) and entry_bytes per entry
// (the longest texts are cut, and marked). Nothing is kept in memory beyond the entries
// of the loop's current turn (and, for the tasks a reader has caught up with, the last
// seq stored, to answer a follower that has everything without a query): Record()
// queues, and the queue is written in one transaction on the loop's next turn, so the
// entries a burst of events brings cost one commit. Followers of the change feed are
// woken by that commit (EventFeed).
//
// A store error loses the queued entries (said in agentd's log); the store refuses writes
// from then on, as it does for everything else.
//
// Thread-safety: core loop thread only.
#ifndef AGENTD_MANAGER_CORE_TRANSCRIPTS_H_
#define AGENTD_MANAGER_CORE_TRANSCRIPTS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agentd/v1/tasks.pb.h"
#include "manager/core/config_state.h"
#include "manager/core/event_loop.h"
#include "manager/store/store.h"

namespace agentd {

class Transcripts {
 public:
  // What one Read returns at most, in bytes (beyond its first entry): a page or a batch
  // fits a gRPC message with room to spare.
  static constexpr int64_t kReadBytes = int64_t{3} << 19;  // 1.5 MiB

  // None of the pointers is owned; the limits are read from `config` at each write.
  Transcripts(EventLoop* loop, Store* store, const ConfigState* config);

  // Records `entry` for attempt `attempt` of `task` (of goal `goal`), reported by `agent`
  // (empty: agentd). Its seq, ids and time are set here; its texts are made valid UTF-8
  // and cut to fit entry_bytes. Written on the loop's next turn (or by Flush).
  void Record(const std::string& task, const std::string& goal, const std::string& agent,
              int attempt, v1::TranscriptEntry entry);

  // Writes what Record() queued, now.
  void Flush();

  // Entries of `task` after `after_seq`, oldest first, at most `limit` and about
  // kReadBytes (at least one; queued ones included: they are written first). Errors: the
  // store's.
  absl::StatusOr<std::vector<v1::TranscriptEntry>> Read(const std::string& task, int64_t after_seq,
                                                        int limit);
  // What retention removed of a task's transcript.
  absl::StatusOr<TranscriptDropped> Dropped(const std::string& task);

  // Model output of `task` as it streams (not stored): a piece of text, or `discarded`
  // (what streamed so far is void). Kept until the call's model_turn entry is recorded,
  // at most kLiveBytes a task; watchers of the task are woken.
  void Stream(const std::string& task, const std::string& agent, int attempt,
              absl::string_view text, bool discarded);
  // The live text of `task` a watcher has not seen, as at most one entry (or a "discarded"
  // one first when the text it saw was void): it passes back `*generation` and `*offset`
  // each time (both 0 at first). A new model call starts a new generation.
  std::vector<v1::TranscriptEntry> LiveSince(const std::string& task, uint64_t* generation,
                                             size_t* offset) const;
  // `wake` runs (on the loop) when a live piece of `task` arrives, until Unwatch.
  int Watch(const std::string& task, std::function<void()> wake);
  void Unwatch(int id);

  // Live text kept per task, at most.
  static constexpr size_t kLiveBytes = 256 << 10;

 private:
  // The text of the call under way, in one string (pieces are not kept one by one: a
  // provider's one-byte chunks would cost an entry each); a watcher has read up to an
  // offset in it. "discarded" starts a new generation with no text.
  struct Live {
    uint64_t generation = 0;
    uint64_t voided = 0;  // the generation whose text this one's discard made void, or 0
    std::string agent;
    int attempt = 0;
    std::string text;
  };
  // A stored model turn (or the attempt's end) supersedes what streamed before it.
  void EndLive(const std::string& task);
  std::map<std::string, Live> live_;
  uint64_t next_generation_ = 1;
  std::map<int, std::pair<std::string, std::function<void()>>> watchers_;
  int next_watcher_ = 1;

  EventLoop* loop_;
  Store* store_;
  const ConfigState* config_;
  std::vector<TranscriptRow> queue_;
  bool flush_posted_ = false;
  // For each task a reader has caught up with (a read found nothing newer), the last seq
  // stored, moved on by each Flush: a Read with nothing new is answered without a query
  // (followers ask once per token chunk). Only read tasks are kept, not every task
  // written, so the map does not grow with the work done. Bounded: when full it starts
  // over, and reads of the tasks it forgot go to the store.
  static constexpr size_t kMaxLastSeqs = 4096;
  std::unordered_map<std::string, int64_t> last_seq_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_TRANSCRIPTS_H_
