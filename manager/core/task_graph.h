// TaskGraph: the tasks agentd knows and how they hang together — by id, in creation
// order, each task's children, and which are unfinished — with no I/O and no policy.
// TaskBoard changes tasks through it and stores them; the status machine itself is
// task_status.h. Unfinished() is what the scheduler scans: it does not grow with the
// history of finished work.
//
// Finished work lives in the store, not in memory. Every unfinished task is kept whole
// ("resident"); of the finished ones, only the most recently finished or read back are, up to
// a bound, and the rest are "shelved": kept as their id, goal, parent, assignee and
// status alone (what listing, children and dependencies need), and read back whole
// through the Loader when asked for. So the daemon's memory grows by a few hundred bytes
// per finished task, not by the task's whole record, and its start-up need not parse them.
//
// Thread-safety: none; the core loop's alone.
#ifndef AGENTD_MANAGER_CORE_TASK_GRAPH_H_
#define AGENTD_MANAGER_CORE_TASK_GRAPH_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"
#include "agentd/v1/tasks.pb.h"

namespace agentd {

class TaskGraph {
 public:
  // Reads a shelved task's whole record back (from the store); nullopt when it cannot,
  // after saying why in the log.
  using Loader = std::function<std::optional<v1::Task>(const std::string& id)>;
  // What is kept of every task, shelved or not.
  struct Brief {
    absl::string_view goal_id;
    absl::string_view parent_id;
    absl::string_view assignee;
    v1::TaskStatus status;
  };

  // Finished tasks beyond `resident_finished` are shelved by Shelve(); with no loader,
  // none ever is (tests of the graph alone). `over_bound` is called, from whatever
  // changed or read the graph, each time a finished task joins those in memory beyond the
  // bound: the owner then runs Shelve() in a step of its own.
  explicit TaskGraph(Loader load = nullptr, size_t resident_finished = 1000,
                     std::function<void()> over_bound = nullptr)
      : load_(std::move(load)),
        resident_finished_(resident_finished),
        over_bound_(std::move(over_bound)) {}
  // The index refers to the graph by address.
  TaskGraph(const TaskGraph&) = delete;
  TaskGraph& operator=(const TaskGraph&) = delete;

  // Keeps a new task, whole; a task with an id already kept replaces it in place.
  void Add(v1::Task t);
  // Keeps a finished task as its brief alone (recovery: its record stays in the store).
  // A task with an id already kept is left as it is. Returns false, keeping nothing,
  // when the task cannot be shelved (its goal or parent is not known yet, or it is not
  // finished): Add() it whole instead.
  bool AddShelved(const std::string& id, const std::string& goal_id, const std::string& parent_id,
                  const std::string& assignee, v1::TaskStatus status);
  // The task, whole (read back when shelved), or null: unknown, or its record could not
  // be read. Pointers and references stay valid until the next Shelve().
  v1::Task* Find(const std::string& id);
  const v1::Task* Find(const std::string& id) const;
  // The task, which must be there; throws std::out_of_range when it is not, or its
  // record cannot be read (the core loop abandons the step).
  v1::Task& at(const std::string& id);
  const v1::Task& at(const std::string& id) const;
  // A copy of the task, whole, without keeping it resident when it was shelved: for
  // readers (Get, List) that should not push recent work out of memory.
  std::optional<v1::Task> Read(const std::string& id) const;
  // Calls `fn` with the task, whole: in memory, or a copy read from the store that is not
  // kept. Returns false (without calling it) when the task is unknown or unreadable.
  bool Visit(const std::string& id, const std::function<void(const v1::Task&)>& fn) const;
  // What is kept of every task, without reading a shelved one back; nullopt if unknown.
  // The views are valid until the graph next changes.
  std::optional<Brief> BriefOf(const std::string& id) const;
  // The same for the task at `place` (0 ≤ place < size()), with no lookup by id: for
  // scans over every place.
  std::optional<Brief> BriefAt(size_t place) const;
  // The id of the task at `place` (0 ≤ place < size(): places number the tasks in
  // creation order, oldest first). Valid until the graph next changes.
  absl::string_view IdAt(size_t place) const;
  // Ids in creation order, oldest first (a copy: for tests and small graphs).
  std::vector<std::string> Order() const;

  // Ids of the tasks created under `id`, oldest first (a copy: the caller may change tasks).
  std::vector<std::string> ChildrenOf(const std::string& id) const;
  // Whether a child of `id` has not ended.
  bool HasOpenChildren(const std::string& id) const;
  // Whether every task `t` depends on is there and completed.
  bool DepsCompleted(const v1::Task& t) const;

  // How many tasks the graph holds, and how many of them whole.
  size_t size() const { return id_start_.size(); }
  size_t resident() const { return resident_.size(); }
  // How many goals (tasks without a parent) have not ended.
  size_t OpenGoals() const;
  // Ids of the unfinished tasks, oldest first (a copy: the caller may change them).
  std::vector<std::string> Unfinished() const;
  // Call after `t`'s status changed: it joins or leaves the unfinished.
  void Updated(const v1::Task& t);

  // Whether more finished tasks are resident than the bound allows.
  bool NeedsShelving() const;
  // Shelves the finished tasks that were finished or read longest ago until the bound
  // holds; returns how many. Invalidates pointers and references to them: call it in a
  // loop step of its own, never while a task is held. A finished task must have been
  // stored as it is in memory (TaskBoard saves each change before its step ends).
  size_t Shelve();

 private:
  static constexpr uint32_t kNone = UINT32_MAX;
  // What is kept of a shelved task, 16 bytes: its goal and parent as places,
  // its assignee as an index into names_, and its status (UNSPECIFIED while resident).
  struct Shelved {
    uint32_t goal = kNone;
    uint32_t parent = kNone;
    uint32_t assignee = 0;
    v1::TaskStatus status = v1::TASK_STATUS_UNSPECIFIED;
  };
  // Reads `id` back from the shelf into memory; null if it is not shelved or unreadable.
  v1::Task* Unshelve(const std::string& id) const;
  // Gives `id` a place (once) and adds it to the unfinished or not; returns its place.
  uint32_t Index(const std::string& id, const std::string& parent_id, bool final);
  // The brief of a task made from its ids; false when its goal or parent is not known
  // (then it stays whole). A goal is its own goal: `self`, when given, is the goal's
  // place-to-be for a goal not indexed yet.
  bool MakeBrief(const std::string& goal_id, const std::string& parent_id,
                 const std::string& assignee, v1::TaskStatus status, Shelved* out,
                 std::optional<std::pair<const std::string*, uint32_t>> self = std::nullopt);
  // The place of task `id`, or kNone.
  uint32_t PlaceOf(absl::string_view id) const;
  uint32_t Name(const std::string& name);

  Loader load_;
  size_t resident_finished_;
  std::function<void()> over_bound_;
  // Every task is resident (in resident_) or shelved (briefs_[place].status set), never
  // both. Reading a shelved task back changes only where it is kept, so const readers
  // may do it (hence mutable).
  mutable std::map<std::string, v1::Task, std::less<>> resident_;
  mutable std::vector<Shelved> briefs_;  // by place
  std::vector<std::string> names_{""};   // assignees of shelved tasks, interned
  absl::flat_hash_map<std::string, uint32_t> name_index_{{"", 0}};
  // Resident finished tasks, in the order they became so (finished, or read back), each
  // with a stamp; an entry whose stamp is not its task's in touched_ is out of date (the
  // task was read again, reopened or shelved since) and is skipped.
  void Touch(const std::string& id) const;
  mutable std::deque<std::pair<std::string, uint64_t>> recent_finished_;
  mutable std::map<std::string, uint64_t> touched_;  // resident finished → latest stamp
  mutable uint64_t stamp_ = 0;

  // Memory per task is what bounds a daemon's growth with its history (the top of this
  // file), so every task, shelved or not, costs a few fixed-size slots by place and its
  // id's bytes, about 40 bytes in all; maps keyed by id hold only the bounded sets
  // (resident, unfinished). The arrays below are indexed by place.
  //
  // Ids, stored once: every id's bytes back to back, and where each starts (it ends
  // where the next begins). A std::string per id would take 32 bytes for a `t-123456`.
  std::string id_bytes_;
  std::vector<uint32_t> id_start_;
  // Children as lists threaded through the places: a task's newest child, and each
  // child's next older sibling (kNone ends a list). Children met before their parent
  // (recovery in an order that allows it) wait in orphans_ by the parent's id.
  std::vector<uint32_t> newest_child_;
  std::vector<uint32_t> older_sibling_;
  std::map<std::string, std::vector<uint32_t>> orphans_;
  // id → place: a set of places, hashed and compared by the id at that place, so the
  // index holds no second copy of the ids.
  struct PlaceHash {
    using is_transparent = void;
    const TaskGraph* graph;
    size_t operator()(uint32_t place) const { return (*this)(graph->IdAt(place)); }
    size_t operator()(absl::string_view id) const { return absl::Hash<absl::string_view>()(id); }
  };
  struct PlaceEq {
    using is_transparent = void;
    const TaskGraph* graph;
    absl::string_view Id(uint32_t place) const { return graph->IdAt(place); }
    absl::string_view Id(absl::string_view id) const { return id; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return Id(a) == Id(b);
    }
  };
  absl::flat_hash_set<uint32_t, PlaceHash, PlaceEq> index_{0, PlaceHash{this}, PlaceEq{this}};
  std::map<uint32_t, std::string> live_;  // unfinished, by place
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_TASK_GRAPH_H_
