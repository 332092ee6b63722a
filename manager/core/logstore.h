// LogStore: what agents write to stdout and stderr, kept as numbered records per agent.
//
// Capture() hands out the write ends of two pipes for an agent's stdout and stderr; a
// drain thread reads the other ends (epoll, non-blocking, as fast as they fill) and
// appends one record per line — (seq, time, stream, line) — to the agent's log. Records
// live in size-rotated segment files, STATE_DIR/logs/<agent>/<first seq>.seg, of which
// the newest `keep_segments` are kept, and the newest `ring_bytes` of them also in memory.
// Lines longer than `max_line_bytes` are split into several records (each but the last
// marked `truncated`), never cut short; bytes are stored as written, binary included.
//
// Read() serves records after a cursor from memory when it still holds them, else from
// disk; what retention deleted comes back as a gap with its size, never skipped. A reader
// that is slow or stalled costs nothing here: the store never waits for readers, and a
// reader holds at most one batch in memory. The drain thread never waits for the disk
// beyond its own write(): when the disk is slower than an agent writes, the pipe fills
// and the agent waits, as with any pipe; nothing is dropped. Records that cannot be
// written (a full disk) stay readable from memory while it holds them and are reported
// as a WRITE_ERROR gap on disk.
//
// Segment format (little-endian): a 24-byte file header ("AGDLOG1\n", first seq,
// record bytes written before this segment), then records, each a 24-byte header
// (payload length u32, stream u8, flags u8, magic u16 0xA6D0, seq u64, time µs i64)
// followed by the line. A torn record at the end (a crash mid-write) is cut off when the
// log is next opened.
//
// Thread-safety: every method is thread-safe. Notify callbacks run on the thread that
// appended the record (the drain thread, or the caller of AppendSystem/Drain), with no
// lock held; they must not block.
#ifndef AGENTD_MANAGER_CORE_LOGSTORE_H_
#define AGENTD_MANAGER_CORE_LOGSTORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "agentd/v1/logs.pb.h"

namespace agentd {

// The log agentd keeps of its own records (common/logging.h SetLogTap): read like an
// agent's, under this id, which no agent may take.
inline constexpr char kDaemonLogId[] = "agentd";

struct LogStoreOptions {
  std::string dir;  // one folder per agent below it, created 0700 on first write
  int64_t segment_bytes = int64_t{64} << 20;
  int64_t keep_segments = 8;
  int64_t ring_bytes = int64_t{4} << 20;  // per agent
  int64_t max_line_bytes = 16 << 10;
};

// The write ends of an agent's stdout and stderr pipes. Closed on destruction: pass them
// to the child, then let this go, so that the drain thread sees EOF when the child exits.
class OutputPipes {
 public:
  OutputPipes(int out, int err) : out_(out), err_(err) {}
  ~OutputPipes();
  OutputPipes(OutputPipes&& o) noexcept : out_(o.out_), err_(o.err_) { o.out_ = o.err_ = -1; }
  OutputPipes& operator=(OutputPipes&&) = delete;
  int out() const { return out_; }
  int err() const { return err_; }

 private:
  int out_, err_;
};

class LogStore {
 public:
  // Creates `options.dir` (0700) and starts the drain thread.
  static absl::StatusOr<std::unique_ptr<LogStore>> Open(LogStoreOptions options);
  // Drains what the pipes still hold, writes it, and stops the drain thread.
  ~LogStore();

  // Pipes whose output becomes `agent`'s stdout and stderr records. The log continues
  // where it stopped (seq keeps counting across restarts of the agent and the daemon).
  // Errors: the agent's log cannot be opened or created (reason and path in the message).
  absl::StatusOr<OutputPipes> Capture(const std::string& agent);

  // Appends a supervisor note about `agent` (stream SYSTEM): "started, pid 123".
  void AppendSystem(const std::string& agent, absl::string_view text) {
    Append(agent, v1::LOG_STREAM_SYSTEM, text);
  }
  // Appends one record of `text` (a line, without its newline) to `agent`'s log.
  void Append(const std::string& agent, v1::LogStream stream, absl::string_view text);

  // Reads what `agent`'s pipes hold right now (e.g. once its process exited, so that its
  // last words are in the log before the exit is reported). Does not wait for EOF.
  void Drain(const std::string& agent);

  // The last `n` stdout/stderr lines of `agent` with seq > `after_seq` still in memory,
  // oldest first.
  std::vector<std::string> LastLines(const std::string& agent, int n, int64_t after_seq);

  // Fills `out` with records of `agent` after seq `after_seq`, in order, up to about
  // `max_bytes` of line data (at least one record when one exists): or with a gap alone
  // when the next records were deleted by retention. Records of streams not in
  // `stream_mask` (bit 1 << LogStream) are skipped. Returns the cursor to pass next time
  // (the last seq covered, filtered records and gaps included); equal to `after_seq` when
  // nothing is newer. Errors: the segment files cannot be read.
  //
  // `scratch`, when given, holds the bytes read between calls, so that a reader catching
  // up reads into memory it already has: a buffer made for each call (~272 KiB, above
  // malloc's mmap threshold) was mapped, zeroed page by page and unmapped every time, a
  // fifth of agentd's CPU while a follower read 1 GB (log_bench).
  class ReadBuffer {
   public:
    // At least `n` bytes, not zeroed; valid until the next Get or Release.
    char* Get(size_t n);
    // The bytes of the ring's blocks copied out (cleared, capacity kept).
    std::string& ring() { return ring_; }
    // Gives the memory back (a reader that has caught up and waits holds none).
    void Release();

   private:
    std::unique_ptr<char[]> disk_;
    size_t disk_size_ = 0;
    std::string ring_;
  };
  absl::StatusOr<int64_t> Read(const std::string& agent, int64_t after_seq, size_t max_bytes,
                               uint32_t stream_mask, v1::StreamLogsResponse* out,
                               ReadBuffer* scratch = nullptr);

  // The seq of `agent`'s newest record; 0 when it has none.
  int64_t LastSeq(const std::string& agent);

  // Calls `fn` once, when `agent` has a record with seq > `after_seq`. Returns 0 — and does
  // not call `fn` — when one exists already (read again); otherwise an id for Cancel().
  uint64_t NotifyAfter(const std::string& agent, int64_t after_seq, std::function<void()> fn);
  // Forgets a callback that has not run. After it returns, the callback will not start;
  // one already started may still be running.
  void CancelNotify(const std::string& agent, uint64_t id);

  // The agent's segments, oldest first.
  std::vector<v1::LogSegment> Segments(const std::string& agent);
  // Forgets `agent`'s log and deletes its folder: a deleted agent's, whose process has
  // ended. Readers that still hold it get nothing more. Thread-safe.
  void Remove(const std::string& agent);

  // Record bytes (headers included) written since start, and bytes lost to write errors.
  int64_t bytes_written() const { return bytes_written_.load(std::memory_order_relaxed); }
  int64_t dropped_bytes() const { return dropped_bytes_.load(std::memory_order_relaxed); }

 private:
  struct AgentLog;
  struct Pipe;
  friend class LogWriter;

  explicit LogStore(LogStoreOptions options);
  // The agent's log, opened (and recovered from disk) on first use.
  absl::StatusOr<std::shared_ptr<AgentLog>> Get(const std::string& agent);
  // The agent's log as its segments on disk leave it (a torn tail cut off).
  std::shared_ptr<AgentLog> Recover(const std::string& agent);
  void Run();
  // Reads one pipe until EAGAIN, EOF or `budget` bytes; returns false at EOF.
  bool ReadPipe(AgentLog& log, Pipe& pipe, size_t budget, std::vector<std::function<void()>>* wake);

  LogStoreOptions options_;
  std::atomic<int64_t> bytes_written_{0};
  std::atomic<int64_t> dropped_bytes_{0};
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<AgentLog>> agents_ ABSL_GUARDED_BY(mu_);
  // Pipes being drained, by read fd; only the drain thread removes them.
  std::map<int, std::unique_ptr<Pipe>> pipes_ ABSL_GUARDED_BY(mu_);
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_LOGSTORE_H_
