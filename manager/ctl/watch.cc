#include "manager/ctl/watch.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agentd/v1/events.grpc.pb.h"
#include "agentd/v1/system.grpc.pb.h"

namespace agentd::ctl {

absl::StatusOr<int64_t> CurrentSeq(const Connection& c) {
  v1::GetInfoResponse info;
  grpc::Status s = v1::SystemService::NewStub(c.channel())
                       ->GetInfo(c.NewContext().get(), v1::GetInfoRequest(), &info);
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                        absl::StrCat("GetInfo: ", s.error_message()));
  }
  return info.counters().last_event_seq();
}

absl::Status FollowEvents(const ConnectionOptions& options, int64_t after_seq,
                          const v1::EventFilter& filter, absl::Time until,
                          const std::function<bool(const v1::Event&)>& on_event) {
  int64_t cursor = after_seq;
  absl::Status last = absl::OkStatus();
  for (;;) {
    absl::StatusOr<Connection> c = Connection::Connect(options);
    if (c.ok()) {
      v1::WatchEventsRequest req;
      req.set_after_seq(cursor);
      *req.mutable_filter() = filter;
      std::unique_ptr<grpc::ClientContext> ctx = c->NewContext(/*deadline=*/false);
      if (until != absl::InfiniteFuture()) ctx->set_deadline(absl::ToChronoTime(until));
      auto reader = v1::EventService::NewStub(c->channel())->WatchEvents(ctx.get(), req);
      v1::WatchEventsResponse resp;
      while (reader->Read(&resp)) {
        cursor = resp.event().seq();
        if (!on_event(resp.event())) {
          ctx->TryCancel();
          reader->Finish();
          return absl::OkStatus();
        }
      }
      grpc::Status s = reader->Finish();
      if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
        return absl::DeadlineExceededError("the wait ran out");
      }
      if (s.error_code() != grpc::StatusCode::UNAVAILABLE &&
          s.error_code() != grpc::StatusCode::CANCELLED && !s.ok()) {
        return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                            absl::StrCat("WatchEvents: ", s.error_message()));
      }
      last = absl::UnavailableError(
          absl::StrCat("agentd ended the event stream (", s.error_message(), ")"));
    } else {
      last = c.status();
    }
    // agentd went away (or is restarting): try again until the wait runs out.
    if (absl::Now() + absl::Milliseconds(500) >= until) return last;  // agentd stayed away
    absl::SleepFor(absl::Milliseconds(500));
  }
}

RowPrinter::RowPrinter(const std::vector<std::vector<std::string>>& rows) {
  for (const auto& row : rows) {
    widths_.resize(std::max(widths_.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) {
      widths_[i] = std::max(widths_[i], TerminalText(row[i]).size());
    }
  }
  for (const auto& row : rows) Print(row);
}

void RowPrinter::Print(const std::vector<std::string>& raw) {
  std::string line;
  widths_.resize(std::max(widths_.size(), raw.size()));
  for (size_t i = 0; i < raw.size(); ++i) {
    std::string cell = TerminalText(raw[i]);
    widths_[i] = std::max(widths_[i], cell.size());
    absl::StrAppend(&line, cell);
    if (i + 1 < raw.size()) line.append(widths_[i] - cell.size() + 3, ' ');
  }
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

int WatchRows(const Globals& g, int64_t after_seq, const v1::EventFilter& filter,
              const std::vector<std::vector<std::string>>& listed,
              const std::function<bool(const v1::Event&, std::vector<std::string>* row,
                                       const google::protobuf::Message** resource)>& row_of) {
  std::unique_ptr<RowPrinter> table;
  if (g.format == Format::kTable) table = std::make_unique<RowPrinter>(listed);
  std::fflush(stdout);
  absl::Status s =
      FollowEvents(g.conn, after_seq, filter, absl::InfiniteFuture(), [&](const v1::Event& e) {
        std::vector<std::string> row;
        const google::protobuf::Message* resource = nullptr;
        if (!row_of(e, &row, &resource)) return true;
        if (table != nullptr) {
          table->Print(row);
        } else if (g.format == Format::kJson) {
          std::printf("%s\n", ToJson(*resource, /*multiline=*/false).c_str());
        } else {
          std::printf("---\n%s", ToYaml(*resource).c_str());
        }
        std::fflush(stdout);
        return true;
      });
  return Fail(std::string(s.message()),
              s.code() == absl::StatusCode::kUnavailable ? kNoConnection : kFailed);
}

}  // namespace agentd::ctl
