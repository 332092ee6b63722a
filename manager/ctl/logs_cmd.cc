#include "manager/ctl/logs_cmd.h"

#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "agentd/v1/agents.grpc.pb.h"
#include "agentd/v1/logs.grpc.pb.h"
#include "common/text.h"
#include "common/values.h"
#include "nlohmann/json.hpp"
#include "re2/re2.h"

namespace agentd::ctl {
namespace {

struct LogsOpts {
  std::vector<std::string> agents;
  std::string role, since, until, grep;
  bool follow = false, timestamps = false, previous = false;
  int64_t tail = -1, after_seq = -1;
  std::vector<std::string> streams;
};

std::string StreamName(v1::LogStream s) {
  return s == v1::LOG_STREAM_STDOUT ? "stdout" : s == v1::LOG_STREAM_STDERR ? "stderr" : "agentd";
}

// Whether a line already starts with a timestamp ("2026-12-05T17:24:00…" or
// "2026-12-05 17:24:00…"), as agentd-agent's and most programs' log lines do.
bool HasOwnTimestamp(absl::string_view line) {
  if (line.size() < 19) return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18}) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(line[i]))) return false;
  }
  return line[4] == '-' && line[7] == '-' && (line[10] == 'T' || line[10] == ' ') &&
         line[13] == ':' && line[16] == ':';
}

// One agent's records, printed (or kept, to be merged with other agents') as they come.
struct Reader {
  std::string agent;
  std::vector<v1::LogRecord> kept;  // when not following: all of them, for the merge
  grpc::Status status;
};

// Prints records for people or scripts. Shared by the readers of several agents, each on
// its own thread when following: everything under one lock.
class Printer {
 public:
  Printer(const Globals& g, const LogsOpts& o, bool prefix) : g_(g), o_(o), prefix_(prefix) {
    if (!o.grep.empty()) {
      RE2::Options options;
      options.set_log_errors(false);
      grep_ = std::make_unique<RE2>(o.grep, options);
    }
  }

  // Prints `records` of `agent`. A line agentd split over several records (longer than
  // its line limit) is joined, per stream: another stream's record in between is its own
  // line.
  void Print(const std::string& agent, const std::vector<v1::LogRecord>& records) {
    std::lock_guard<std::mutex> l(mu_);
    std::string out;
    for (const v1::LogRecord& r : records) {
      if (g_.format != Format::kTable) {
        if (Matches(r.line())) absl::StrAppend(&out, Document(agent, r));
        continue;
      }
      Partial& p = partial_[{agent, r.stream()}];
      if (!p.open) {
        p.shown.clear();
        if (prefix_) absl::StrAppend(&p.shown, "[", TerminalText(agent), "] ");
        if (o_.timestamps && !HasOwnTimestamp(r.line())) {
          absl::StrAppend(&p.shown, absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ ",
                                                     absl::FromUnixSeconds(r.time().seconds()) +
                                                         absl::Nanoseconds(r.time().nanos()),
                                                     absl::UTCTimeZone()));
        }
        if (r.stream() == v1::LOG_STREAM_SYSTEM) p.shown += "[agentd] ";
      }
      p.raw += r.line();
      p.shown += TerminalText(r.line(), Lines::kMany);
      p.open = r.truncated();
      if (!p.open) Emit(p, &out);
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    if (o_.follow) std::fflush(stdout);
  }

  // Prints what is pending of `agent`'s lines: the stream ended inside a long line.
  void Flush(const std::string& agent) {
    std::lock_guard<std::mutex> l(mu_);
    std::string out;
    for (auto& [key, p] : partial_) {
      if (key.first == agent && p.open) Emit(p, &out);
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
  }

  void Gap(const std::string& agent, const v1::LogGap& gap) {
    std::lock_guard<std::mutex> l(mu_);
    std::fflush(stdout);
    std::fprintf(
        stderr, "agentctl: %s: records %lld-%lld are missing (%s%s)\n", TerminalText(agent).c_str(),
        static_cast<long long>(gap.from_seq()), static_cast<long long>(gap.to_seq()),
        gap.reason() == v1::LOG_GAP_REASON_RETENTION     ? "deleted by retention"
        : gap.reason() == v1::LOG_GAP_REASON_WRITE_ERROR ? "agentd could not write them"
                                                         : "not recorded",
        gap.bytes_lost() > 0 ? absl::StrCat(", ", gap.bytes_lost(), " bytes").c_str() : "");
  }

 private:
  struct Partial {
    bool open = false;  // the last record went on in the next one
    std::string raw, shown;
  };

  void Emit(Partial& p, std::string* out) {
    if (Matches(p.raw)) absl::StrAppend(out, p.shown, "\n");
    p.open = false;
    p.raw.clear();
    p.shown.clear();
  }

  // RE2: linear in the line, whatever the pattern (a hostile line cannot make it
  // backtrack or recurse).
  bool Matches(const std::string& line) const {
    return grep_ == nullptr || RE2::PartialMatch(line, *grep_);
  }

  // One record as a JSON line (or a YAML document): the line as text, seq a number.
  std::string Document(const std::string& agent, const v1::LogRecord& r) const {
    nlohmann::json j = {
        {"agent", agent},
        {"seq", r.seq()},
        {"time", absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ",
                                  absl::FromUnixSeconds(r.time().seconds()) +
                                      absl::Nanoseconds(r.time().nanos()),
                                  absl::UTCTimeZone())},
        {"stream", StreamName(r.stream())},
        {"line", LineAsText(r.line())},
        {"continued", r.truncated()},
    };
    // (Every string in it is valid UTF-8 — the line through LineAsText — but a dump must
    // never throw out of a reader.)
    if (g_.format == Format::kJson) {
      return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    }
    return "---\n" + JsonToYaml(j);
  }

  const Globals& g_;
  const LogsOpts& o_;
  bool prefix_;
  std::unique_ptr<RE2> grep_;
  std::mutex mu_;
  std::map<std::pair<std::string, int>, Partial> partial_;
};

// The seq range (after, up to) of the agent's run before its last start: agentd writes a
// "launching" note before each start of its process, before the process can write.
// Reads the agentd stream of its log.
absl::StatusOr<std::pair<int64_t, int64_t>> PreviousRun(const Connection& c,
                                                        const std::string& agent) {
  v1::StreamLogsRequest req;
  req.set_agent_id(agent);
  req.add_streams(v1::LOG_STREAM_SYSTEM);
  std::unique_ptr<grpc::ClientContext> ctx = c.NewContext(/*deadline=*/false);
  auto reader = v1::LogService::NewStub(c.channel())->StreamLogs(ctx.get(), req);
  std::vector<int64_t> starts;  // the seq of each "launching" note
  v1::StreamLogsResponse resp;
  while (reader->Read(&resp)) {
    for (const v1::LogRecord& r : resp.records()) {
      if (r.line() == "launching") starts.push_back(r.seq());
    }
  }
  grpc::Status s = reader->Finish();
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                        absl::StrCat("StreamLogs: ", s.error_message()));
  }
  if (starts.size() < 2) {
    return absl::NotFoundError(absl::StrCat("agent ", agent,
                                            " has no previous run in its retained log (it started ",
                                            starts.size(), " time(s))"));
  }
  return std::make_pair(starts[starts.size() - 2], starts.back() - 1);
}

// The seq of the agent's last record now (0 when it has none), from its segments' index.
absl::StatusOr<int64_t> LastSeq(const Connection& c, const std::string& agent) {
  auto stub = v1::LogService::NewStub(c.channel());
  v1::ListLogSegmentsRequest req;
  req.set_agent_id(agent);
  req.set_page_size(1000);
  int64_t last = 0;
  for (;;) {
    v1::ListLogSegmentsResponse page;
    grpc::Status s = stub->ListLogSegments(c.NewContext().get(), req, &page);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                          absl::StrCat("ListLogSegments: ", s.error_message()));
    }
    for (const v1::LogSegment& seg : page.segments()) last = std::max(last, seg.last_seq());
    if (page.next_page_token().empty()) return last;
    req.set_page_token(page.next_page_token());
  }
}

int Logs(const Globals& g, const LogsOpts& o) {
  if (o.agents.empty() && o.role.empty()) return Usage("logs: name an AGENT or --role ROLE");
  absl::Time now = absl::Now();
  v1::StreamLogsRequest base;
  base.set_follow(o.follow);
  if (o.tail >= 0) base.set_tail(static_cast<int32_t>(std::min<int64_t>(o.tail, INT32_MAX)));
  if (o.after_seq >= 0) base.set_after_seq(o.after_seq);
  for (const std::string& s : o.streams) {
    base.add_streams(s == "stdout"   ? v1::LOG_STREAM_STDOUT
                     : s == "stderr" ? v1::LOG_STREAM_STDERR
                                     : v1::LOG_STREAM_SYSTEM);
  }
  for (auto [text, field] :
       {std::pair{&o.since, base.mutable_since()}, std::pair{&o.until, base.mutable_until()}}) {
    if (text->empty()) continue;
    absl::StatusOr<absl::Time> t = ParseLogTime(*text, now);
    if (!t.ok()) return Usage(std::string(t.status().message()));
    field->set_seconds(absl::ToUnixSeconds(*t));
    field->set_nanos(
        static_cast<int32_t>((absl::ToUnixNanos(*t) % 1000000000 + 1000000000) % 1000000000));
  }
  if (o.since.empty()) base.clear_since();
  if (o.until.empty()) base.clear_until();
  if (o.previous && o.follow) return Usage("logs: --previous is a finished run: no -f");
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  std::vector<std::string> agents = o.agents;
  for (std::string& a : agents) a = std::string(absl::StripPrefix(a, "@"));
  if (!o.role.empty()) {
    v1::ListAgentsRequest req;
    req.set_role(o.role);
    req.set_page_size(1000);
    v1::ListAgentsResponse resp;
    grpc::Status s =
        v1::AgentService::NewStub(c->channel())->ListAgents(c->NewContext().get(), req, &resp);
    if (!s.ok()) return RpcFailed("ListAgents", s);
    for (const v1::Agent& a : resp.agents()) agents.push_back(a.id());
    if (agents.empty()) return Fail(absl::StrCat("no agent of role \"", o.role, "\""));
  }
  bool several = agents.size() > 1 || !o.role.empty();
  Printer printer(g, o, several);
  std::vector<Reader> readers(agents.size());
  // One stream per agent, read on threads of their own when following (lines print as
  // they come, from whichever agent); otherwise read whole and merged by time.
  auto read = [&](size_t i) {
    Reader& rd = readers[i];
    rd.agent = agents[i];
    v1::StreamLogsRequest req = base;
    req.set_agent_id(rd.agent);
    if (o.tail == 0 && o.after_seq < 0 && !o.previous) {
      // -n 0: nothing of what is there, only what comes (StreamLogs' tail 0 means all).
      absl::StatusOr<int64_t> last = LastSeq(*c, rd.agent);
      if (!last.ok()) {
        rd.status = grpc::Status(static_cast<grpc::StatusCode>(last.status().code()),
                                 std::string(last.status().message()));
        return;
      }
      req.set_after_seq(*last);
    }
    int64_t previous_end = -1;
    if (o.previous) {
      absl::StatusOr<std::pair<int64_t, int64_t>> run = PreviousRun(*c, rd.agent);
      if (!run.ok()) {
        rd.status = grpc::Status(static_cast<grpc::StatusCode>(run.status().code()),
                                 std::string(run.status().message()));
        return;
      }
      req.set_after_seq(std::max(req.after_seq(), run->first));
      req.set_tail(0);
      previous_end = run->second;
    }
    std::unique_ptr<grpc::ClientContext> ctx = c->NewContext(/*deadline=*/false);
    auto reader = v1::LogService::NewStub(c->channel())->StreamLogs(ctx.get(), req);
    v1::StreamLogsResponse resp;
    bool done = false;
    while (!done && reader->Read(&resp)) {
      if (resp.has_gap()) printer.Gap(rd.agent, resp.gap());
      std::vector<v1::LogRecord> batch;
      for (v1::LogRecord& r : *resp.mutable_records()) {
        if (previous_end >= 0 && r.seq() > previous_end) {
          done = true;
          break;
        }
        batch.push_back(std::move(r));
      }
      if (o.follow || !several) {
        printer.Print(rd.agent, batch);
      } else {
        for (v1::LogRecord& r : batch) rd.kept.push_back(std::move(r));
      }
    }
    if (done) ctx->TryCancel();
    if (o.follow || !several) printer.Flush(rd.agent);
    grpc::Status s = reader->Finish();
    rd.status = done ? grpc::Status::OK : s;
  };
  if (o.follow && several) {
    std::vector<std::thread> threads;
    for (size_t i = 0; i < agents.size(); ++i) threads.emplace_back(read, i);
    for (std::thread& t : threads) t.join();
  } else {
    for (size_t i = 0; i < agents.size(); ++i) read(i);
  }
  if (!o.follow && several) {
    // journalctl's order: by time across agents, each agent's own order kept.
    std::vector<std::pair<const Reader*, const v1::LogRecord*>> all;
    for (const Reader& rd : readers) {
      for (const v1::LogRecord& r : rd.kept) all.emplace_back(&rd, &r);
    }
    std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
      const auto& ta = a.second->time();
      const auto& tb = b.second->time();
      return std::make_pair(ta.seconds(), ta.nanos()) < std::make_pair(tb.seconds(), tb.nanos());
    });
    for (const auto& [rd, r] : all) printer.Print(rd->agent, {*r});
    for (const Reader& rd : readers) printer.Flush(rd.agent);
  }
  std::fflush(stdout);
  int rc = kOk;
  for (const Reader& rd : readers) {
    if (!rd.status.ok()) rc = RpcFailed(absl::StrCat("StreamLogs ", rd.agent).c_str(), rd.status);
  }
  return rc;
}

}  // namespace

absl::StatusOr<absl::Time> ParseLogTime(const std::string& text, absl::Time now) {
  if (absl::StatusOr<absl::Duration> d = ParseDuration(text); d.ok()) return now - *d;
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &err)) return t;
  for (const char* layout : {"%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"}) {
    if (absl::ParseTime(layout, text, absl::LocalTimeZone(), &t, &err)) return t;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("\"", text,
                   "\" is not a time: give a duration before now (10m, 2h), an RFC 3339 time "
                   "(2026-12-05T17:00:00Z) or a local one (\"2026-12-05 17:00\")"));
}

std::string LineAsText(absl::string_view bytes) {
  std::string out;
  size_t i = 0;
  while (i < bytes.size()) {
    size_t n = 0;
    for (size_t len = 1; len <= 4 && i + len <= bytes.size(); ++len) {
      if (IsValidUtf8(bytes.substr(i, len))) {
        n = len;
        break;
      }
    }
    if (n == 0) {
      absl::StrAppend(&out, absl::StrFormat("\\x%02x", static_cast<unsigned char>(bytes[i])));
      ++i;
    } else {
      out.append(bytes.data() + i, n);
      i += n;
    }
  }
  return out;
}

void AddLogCommands(const CommandTree& t) {
  CLI::App* cmd = AddCommand(
      t.root, "logs", "agents' output, as it was written; -f follows",
      "Every line an agent wrote is a record with a seq; agentd's own notes about the agent\n"
      "(started, exited, restarted) are the agentd stream. Several agents, or --role, print\n"
      "each line with its agent's name, by time. -o json prints one record a line (the\n"
      "line as text, bytes that are not UTF-8 as \\xHH; seq a number), so a reader resumes\n"
      "with --after-seq N. Records retention deleted are reported as a gap on stderr.\n"
      "`agentctl logs agentd` is the daemon's own log (what it also writes to stderr or\n"
      "the journal), with the same options.\n\n"
      "Examples:\n"
      "  agentctl logs coder-1 -f\n"
      "  agentctl logs coder-1 -n 100 --timestamps --stream stderr\n"
      "  agentctl logs --role coder --since 10m --grep 'Traceback|error'\n"
      "  agentctl logs ceo manager --since \"2026-12-05 17:00\" --until 2026-12-05T18:00:00Z\n"
      "  agentctl logs coder-1 --previous    # the run before the last restart\n"
      "  agentctl logs agentd -f --grep 'warn|error'");
  auto o = OnRun(t, cmd, Logs);
  cmd->add_option("AGENT", o->agents, "the agents' ids")->type_name("AGENT");
  cmd->add_option("--role", o->role, "every agent of this role")->type_name("ROLE");
  cmd->add_flag("-f,--follow", o->follow, "keep printing new records");
  cmd->add_option("-n,--tail", o->tail, "start with the last N records (of each agent)")
      ->check(kCount)
      ->type_name("N");
  cmd->add_option("--since", o->since, "only records from then on (10m, 2h, a time)")
      ->type_name("TIME");
  cmd->add_option("--until", o->until, "only records until then (a duration ago, or a time)")
      ->type_name("TIME");
  cmd->add_option("--after-seq", o->after_seq, "start after record N")
      ->check(kCount)
      ->type_name("N");
  cmd->add_option("--stream", o->streams, "only these streams (repeat, or a,b)")
      ->delimiter(',')
      ->allow_extra_args(false)
      ->check(CLI::IsMember({"stdout", "stderr", "agentd"}));
  cmd->add_option("--grep", o->grep, "only lines matching this regular expression (RE2 syntax)")
      ->type_name("RE")
      ->check([](const std::string& re) {
        RE2::Options options;
        options.set_log_errors(false);
        RE2 compiled(re, options);
        return compiled.ok()
                   ? std::string()
                   : absl::StrCat("\"", re, "\" is not a regular expression: ", compiled.error());
      });
  cmd->add_flag("--previous", o->previous, "the run before the agent's last start");
  cmd->add_flag("--timestamps", o->timestamps,
                "the time agentd read each line, unless the line starts with its own");
}

}  // namespace agentd::ctl
