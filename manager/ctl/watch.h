// Following agentd's change feed (EventService.WatchEvents) from agentctl: `get … -w`,
// `get events -w` and `goal --wait` print changes as agentd commits them, instead of
// asking again and again.
#ifndef AGENTD_MANAGER_CTL_WATCH_H_
#define AGENTD_MANAGER_CTL_WATCH_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agentd/v1/events.pb.h"
#include "manager/ctl/cli.h"

namespace agentd::ctl {

// The seq of the newest event now (GetInfo): a list taken after it and a watch that
// starts after it together miss nothing (a change in between is shown twice at most).
absl::StatusOr<int64_t> CurrentSeq(const Connection& c);

// Calls `on_event` for every event after `after_seq` that `filter` selects, in seq order,
// until it returns false (then OK) or `until` passes (DEADLINE_EXCEEDED). When agentd
// goes away (a restart, an upgrade) the watch reconnects with `options` and resumes after
// the last event it saw, trying every half second, so nothing is missed or repeated; it
// gives up at `until` with UNAVAILABLE (it could not reach agentd). Other errors end it
// at once.
absl::Status FollowEvents(const ConnectionOptions& options, int64_t after_seq,
                          const v1::EventFilter& filter, absl::Time until,
                          const std::function<bool(const v1::Event&)>& on_event);

// Rows printed one by one under a header, kubectl -w style: each row padded to the
// widths seen so far, so the columns stay aligned while the table grows.
class RowPrinter {
 public:
  // Prints `rows` (the header first), aligned to their widest cells.
  explicit RowPrinter(const std::vector<std::vector<std::string>>& rows);
  // One more row, each cell escaped for the terminal (TerminalText).
  void Print(const std::vector<std::string>& row);

 private:
  std::vector<size_t> widths_;
};

// `get KIND -w`: prints the listed rows (header first; with -o json|yaml the caller has
// printed the list as one document), then follows the events `filter` selects after
// `after_seq` and prints each changed resource `row_of` gives: a row, or one JSON document
// a line (YAML: a "---"-separated stream). `row_of` returns false for an event the list
// does not show (another role, say). Runs until interrupted, resuming across agentd
// restarts; an error ends it (exit 1, or 3 when agentd is gone).
int WatchRows(const Globals& g, int64_t after_seq, const v1::EventFilter& filter,
              const std::vector<std::vector<std::string>>& listed,
              const std::function<bool(const v1::Event&, std::vector<std::string>* row,
                                       const google::protobuf::Message** resource)>& row_of);

}  // namespace agentd::ctl

#endif  // AGENTD_MANAGER_CTL_WATCH_H_
