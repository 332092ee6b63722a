// TaskGraph: the tasks agentd knows and how they hang together — by id, in creation
// order, each task's children, and which are unfinished — with no I/O and no policy.
// TaskBoard changes tasks through it and stores them; the status machine itself is
// task_status.h. Unfinished() is what the scheduler scans: it does not grow with the
// history of finished work.
//
// Thread-safety: none; the core loop's alone.
#ifndef AGENTD_MANAGER_CORE_TASK_GRAPH_H_
#define AGENTD_MANAGER_CORE_TASK_GRAPH_H_

#include <map>
#include <string>
#include <vector>

#include "agentd/v1/tasks.pb.h"

namespace agentd {

class TaskGraph {
 public:
  // Keeps a new task; a task with an id already kept replaces it in place.
  void Add(v1::Task t);
  // The task, or null. Pointers stay valid until the graph is destroyed.
  v1::Task* Find(const std::string& id);
  const v1::Task* Find(const std::string& id) const;
  // The task, which must be there.
  v1::Task& at(const std::string& id) { return tasks_.at(id); }
  const v1::Task& at(const std::string& id) const { return tasks_.at(id); }
  // Every task, by id.
  std::map<std::string, v1::Task>& all() { return tasks_; }
  // Ids in creation order, oldest first.
  const std::vector<std::string>& order() const { return order_; }

  // Ids of the tasks created under `id`, oldest first.
  const std::vector<std::string>& ChildrenOf(const std::string& id) const;
  // Whether a child of `id` has not ended.
  bool HasOpenChildren(const std::string& id) const;
  // Whether every task `t` depends on is there and completed.
  bool DepsCompleted(const v1::Task& t) const;

  // Ids of the unfinished tasks, oldest first (a copy: the caller may change them).
  std::vector<std::string> Unfinished() const;
  // Call after `t`'s status changed: it joins or leaves the unfinished.
  void Updated(const v1::Task& t);

 private:
  std::map<std::string, v1::Task> tasks_;
  std::vector<std::string> order_;                            // ids in creation order
  std::map<std::string, size_t> index_;                       // id → place in order_
  std::map<size_t, std::string> live_;                        // unfinished, by place
  std::map<std::string, std::vector<std::string>> children_;  // parent → children
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_TASK_GRAPH_H_
