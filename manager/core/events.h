// EventFeed: the change feed — every committed event, readable by cursor, with a wake-up
// for followers when new ones commit.
//
// Events are read from agentd.db (the events table), so a follower resumes after any
// seq it saw, across daemon restarts. Task, plan, message and consent events carry the
// resource as it was right after the change.
//
// Thread-safety: core loop thread only.
#ifndef AGENTD_MANAGER_CORE_EVENTS_H_
#define AGENTD_MANAGER_CORE_EVENTS_H_

#include <functional>
#include <map>
#include <vector>

#include "absl/status/statusor.h"
#include "agentd/v1/events.pb.h"
#include "manager/store/store.h"

namespace agentd {

class EventFeed {
 public:
  // `store` is not owned; the feed installs itself as the store's event hook.
  explicit EventFeed(Store* store);

  // Events after `after_seq` that match `filter`, oldest first, at most `limit`;
  // `*scanned_to` is the seq to continue after (past events the filter skipped).
  absl::StatusOr<std::vector<v1::Event>> Read(int64_t after_seq, const v1::EventFilter& filter,
                                              int limit, int64_t* scanned_to) const;
  int64_t last_seq() const { return store_->LastEventSeq(); }

  // `wake` runs (on the core loop) after every commit until Unsubscribe.
  int Subscribe(std::function<void()> wake);
  void Unsubscribe(int id);

 private:
  Store* store_;
  std::map<int, std::function<void()>> subscribers_;
  int next_ = 1;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_EVENTS_H_
