#include "manager/core/task_graph.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "manager/core/task_status.h"

namespace agentd {

absl::string_view TaskGraph::IdAt(size_t place) const {
  size_t begin = id_start_[place];
  size_t end = place + 1 < id_start_.size() ? id_start_[place + 1] : id_bytes_.size();
  return absl::string_view(id_bytes_).substr(begin, end - begin);
}

std::vector<std::string> TaskGraph::Order() const {
  std::vector<std::string> out;
  out.reserve(size());
  for (size_t place = 0; place < size(); ++place) out.emplace_back(IdAt(place));
  return out;
}

uint32_t TaskGraph::PlaceOf(absl::string_view id) const {
  auto it = index_.find(id);
  return it == index_.end() ? kNone : *it;
}

uint32_t TaskGraph::Index(const std::string& id, const std::string& parent_id, bool final) {
  uint32_t place = PlaceOf(id);
  if (place == kNone) {
    // Places and offsets are 32 bits: four billion tasks, or 4 GiB of ids, are far
    // beyond any store agentd could read back at start.
    if (id_start_.size() >= kNone || id_bytes_.size() + id.size() >= kNone) {
      throw std::length_error("the task graph is full");
    }
    place = static_cast<uint32_t>(id_start_.size());
    // First the id: the index hashes the id at its place.
    id_start_.push_back(static_cast<uint32_t>(id_bytes_.size()));
    id_bytes_.append(id);
    index_.insert(place);
    briefs_.emplace_back();
    newest_child_.push_back(kNone);
    older_sibling_.push_back(kNone);
    if (!parent_id.empty()) {
      uint32_t parent = PlaceOf(parent_id);
      if (parent != kNone) {
        older_sibling_[place] = newest_child_[parent];
        newest_child_[parent] = place;
      } else {
        orphans_[parent_id].push_back(place);
      }
    }
    // Those that waited are older than any child to come.
    if (auto waiting = orphans_.find(id); waiting != orphans_.end()) {
      for (uint32_t child : waiting->second) {
        older_sibling_[child] = newest_child_[place];
        newest_child_[place] = child;
      }
      orphans_.erase(waiting);
    }
  }
  if (final) {
    live_.erase(place);
  } else {
    live_[place] = id;
  }
  return place;
}

uint32_t TaskGraph::Name(const std::string& name) {
  auto [it, added] = name_index_.try_emplace(name, static_cast<uint32_t>(names_.size()));
  if (added) names_.push_back(name);
  return it->second;
}

bool TaskGraph::MakeBrief(const std::string& goal_id, const std::string& parent_id,
                          const std::string& assignee, v1::TaskStatus status, Shelved* out,
                          std::optional<std::pair<const std::string*, uint32_t>> self) {
  if (!Final(status)) return false;
  out->goal = self.has_value() && *self->first == goal_id ? self->second : PlaceOf(goal_id);
  if (out->goal == kNone) return false;
  out->parent = kNone;
  if (!parent_id.empty()) {
    out->parent = PlaceOf(parent_id);
    if (out->parent == kNone) return false;
  }
  out->assignee = Name(assignee);
  out->status = status;
  return true;
}

void TaskGraph::Touch(const std::string& id) const {
  touched_[id] = ++stamp_;
  recent_finished_.emplace_back(id, stamp_);
  if (over_bound_ && NeedsShelving()) over_bound_();
}

void TaskGraph::Add(v1::Task t) {
  std::string id = t.id();
  bool final = Final(t.status());
  uint32_t place = Index(id, t.parent_id(), final);
  briefs_[place] = Shelved();
  resident_.insert_or_assign(id, std::move(t));
  if (final) {
    Touch(id);
  } else {
    touched_.erase(id);
  }
}

bool TaskGraph::AddShelved(const std::string& id, const std::string& goal_id,
                           const std::string& parent_id, const std::string& assignee,
                           v1::TaskStatus status) {
  if (PlaceOf(id) != kNone) return true;
  // A goal is its own goal: its place is the next one.
  Shelved brief;
  if (!MakeBrief(goal_id, parent_id, assignee, status, &brief,
                 std::make_pair(&id, static_cast<uint32_t>(id_start_.size())))) {
    return false;
  }
  uint32_t place = Index(id, parent_id, /*final=*/true);
  briefs_[place] = brief;
  return true;
}

v1::Task* TaskGraph::Unshelve(const std::string& id) const {
  uint32_t place = PlaceOf(id);
  if (place == kNone || briefs_[place].status == v1::TASK_STATUS_UNSPECIFIED || !load_) {
    return nullptr;
  }
  std::optional<v1::Task> t = load_(id);
  if (!t.has_value() || t->id() != id) return nullptr;
  briefs_[place] = Shelved();
  v1::Task& kept = resident_[id] = *std::move(t);
  Touch(id);
  return &kept;
}

v1::Task* TaskGraph::Find(const std::string& id) {
  auto it = resident_.find(id);
  return it != resident_.end() ? &it->second : Unshelve(id);
}

const v1::Task* TaskGraph::Find(const std::string& id) const {
  auto it = resident_.find(id);
  return it != resident_.end() ? &it->second : Unshelve(id);
}

v1::Task& TaskGraph::at(const std::string& id) {
  v1::Task* t = Find(id);
  if (t == nullptr) throw std::out_of_range("task " + id + " is not known or cannot be read");
  return *t;
}

const v1::Task& TaskGraph::at(const std::string& id) const {
  const v1::Task* t = Find(id);
  if (t == nullptr) throw std::out_of_range("task " + id + " is not known or cannot be read");
  return *t;
}

std::optional<v1::Task> TaskGraph::Read(const std::string& id) const {
  if (auto it = resident_.find(id); it != resident_.end()) return it->second;
  uint32_t place = PlaceOf(id);
  if (place == kNone || briefs_[place].status == v1::TASK_STATUS_UNSPECIFIED || !load_) {
    return std::nullopt;
  }
  std::optional<v1::Task> t = load_(id);
  if (!t.has_value() || t->id() != id) return std::nullopt;
  return t;
}

bool TaskGraph::Visit(const std::string& id, const std::function<void(const v1::Task&)>& fn) const {
  if (auto it = resident_.find(id); it != resident_.end()) {
    fn(it->second);
    return true;
  }
  std::optional<v1::Task> t = Read(id);
  if (!t.has_value()) return false;
  fn(*t);
  return true;
}

std::optional<TaskGraph::Brief> TaskGraph::BriefOf(const std::string& id) const {
  uint32_t place = PlaceOf(id);
  return place == kNone ? std::nullopt : BriefAt(place);
}

std::optional<TaskGraph::Brief> TaskGraph::BriefAt(size_t place) const {
  // Every task is shelved (its brief set) or resident, never both.
  const Shelved& s = briefs_[place];
  if (s.status != v1::TASK_STATUS_UNSPECIFIED) {
    return Brief{IdAt(s.goal), s.parent == kNone ? absl::string_view() : IdAt(s.parent),
                 names_[s.assignee], s.status};
  }
  auto it = resident_.find(IdAt(place));
  if (it == resident_.end()) return std::nullopt;
  const v1::Task& t = it->second;
  return Brief{t.goal_id(), t.parent_id(), t.assignee(), t.status()};
}

std::vector<std::string> TaskGraph::ChildrenOf(const std::string& id) const {
  std::vector<std::string> out;
  uint32_t place = PlaceOf(id);
  if (place == kNone) return out;
  for (uint32_t child = newest_child_[place]; child != kNone; child = older_sibling_[child]) {
    out.emplace_back(IdAt(child));
  }
  std::reverse(out.begin(), out.end());  // oldest first
  return out;
}

bool TaskGraph::HasOpenChildren(const std::string& id) const {
  uint32_t place = PlaceOf(id);
  if (place == kNone) return false;
  for (uint32_t child = newest_child_[place]; child != kNone; child = older_sibling_[child]) {
    std::optional<Brief> b = BriefAt(child);
    if (b.has_value() && !Final(b->status)) return true;
  }
  return false;
}

bool TaskGraph::DepsCompleted(const v1::Task& t) const {
  for (const std::string& dep : t.deps()) {
    std::optional<Brief> d = BriefOf(dep);
    if (!d.has_value() || d->status != v1::TASK_STATUS_COMPLETED) return false;
  }
  return true;
}

size_t TaskGraph::OpenGoals() const {
  size_t n = 0;
  for (const auto& [place, id] : live_) n += resident_.at(id).parent_id().empty() ? 1 : 0;
  return n;
}

std::vector<std::string> TaskGraph::Unfinished() const {
  std::vector<std::string> out;
  out.reserve(live_.size());
  for (const auto& [place, id] : live_) out.push_back(id);
  return out;
}

void TaskGraph::Updated(const v1::Task& t) {
  uint32_t place = PlaceOf(t.id());
  if (place == kNone) return;
  if (Final(t.status())) {
    if (live_.erase(place) != 0) Touch(t.id());
  } else {
    live_[place] = t.id();
    touched_.erase(t.id());
  }
}

bool TaskGraph::NeedsShelving() const {
  return load_ && resident_.size() - live_.size() > resident_finished_;
}

size_t TaskGraph::Shelve() {
  if (!load_) return 0;
  size_t shelved = 0;
  while (resident_.size() - live_.size() > resident_finished_ && !recent_finished_.empty()) {
    auto [id, stamp] = std::move(recent_finished_.front());
    recent_finished_.pop_front();
    auto touched = touched_.find(id);
    if (touched == touched_.end() || touched->second != stamp) continue;  // out of date
    touched_.erase(touched);
    auto it = resident_.find(id);
    if (it == resident_.end()) continue;
    const v1::Task& t = it->second;
    Shelved brief;
    if (!MakeBrief(t.goal_id(), t.parent_id(), t.assignee(), t.status(), &brief)) continue;
    briefs_[PlaceOf(id)] = brief;
    resident_.erase(it);
    ++shelved;
  }
  // Out-of-date entries go as they come up; keep the queue from outgrowing what it names.
  if (recent_finished_.size() > 2 * touched_.size() + 64) {
    std::deque<std::pair<std::string, uint64_t>> kept;
    for (auto& entry : recent_finished_) {
      auto touched = touched_.find(entry.first);
      if (touched != touched_.end() && touched->second == entry.second) {
        kept.push_back(std::move(entry));
      }
    }
    recent_finished_ = std::move(kept);
  }
  return shelved;
}

}  // namespace agentd
