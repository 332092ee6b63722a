#include "manager/core/task_graph.h"

#include <utility>

#include "manager/core/task_status.h"

namespace agentd {

void TaskGraph::Add(v1::Task t) {
  std::string id = t.id();
  auto known = index_.find(id);
  size_t place = known == index_.end() ? order_.size() : known->second;
  if (known == index_.end()) {
    index_[id] = place;
    order_.push_back(id);
    if (!t.parent_id().empty()) children_[t.parent_id()].push_back(id);
  }
  if (Final(t.status())) {
    live_.erase(place);
  } else {
    live_[place] = id;
  }
  tasks_[id] = std::move(t);
}

v1::Task* TaskGraph::Find(const std::string& id) {
  auto it = tasks_.find(id);
  return it == tasks_.end() ? nullptr : &it->second;
}

const v1::Task* TaskGraph::Find(const std::string& id) const {
  auto it = tasks_.find(id);
  return it == tasks_.end() ? nullptr : &it->second;
}

const std::vector<std::string>& TaskGraph::ChildrenOf(const std::string& id) const {
  static const std::vector<std::string> kNone;
  auto it = children_.find(id);
  return it == children_.end() ? kNone : it->second;
}

bool TaskGraph::HasOpenChildren(const std::string& id) const {
  for (const std::string& child : ChildrenOf(id)) {
    if (!Final(tasks_.at(child).status())) return true;
  }
  return false;
}

bool TaskGraph::DepsCompleted(const v1::Task& t) const {
  for (const std::string& dep : t.deps()) {
    const v1::Task* d = Find(dep);
    if (d == nullptr || d->status() != v1::TASK_STATUS_COMPLETED) return false;
  }
  return true;
}

std::vector<std::string> TaskGraph::Unfinished() const {
  std::vector<std::string> out;
  out.reserve(live_.size());
  for (const auto& [place, id] : live_) out.push_back(id);
  return out;
}

void TaskGraph::Updated(const v1::Task& t) {
  auto idx = index_.find(t.id());
  if (idx == index_.end()) return;
  if (Final(t.status())) {
    live_.erase(idx->second);
  } else {
    live_[idx->second] = t.id();
  }
}

}  // namespace agentd
