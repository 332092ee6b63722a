// WorkspaceOpener: "Open in VS Code" — runs the configured editor (`ui.editor`, e.g.
// `code`) on a goal's workspace, on the daemon's host, once a person consents.
//
// Open() raises a consent request (kind OPEN_EDITOR, from agent "agentd") naming the
// command and the path; nothing runs yet. When a person approves it (OnDecided, wired to
// the ConsentBook's decisions), the editor is started detached — its own session, stdio
// on /dev/null — and the start is audited. The command is rebuilt from the request's
// details and the current config, so an approval after a daemon restart still works.
//
// Thread-safety: core loop thread only.
#ifndef AGENTD_MANAGER_CORE_WORKSPACE_OPENER_H_
#define AGENTD_MANAGER_CORE_WORKSPACE_OPENER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agentd/v1/tasks.pb.h"
#include "manager/core/audit.h"
#include "manager/core/config_state.h"
#include "manager/core/consent.h"
#include "manager/core/tasks.h"

namespace agentd {

class WorkspaceOpener {
 public:
  // None is owned; `audit` may be null.
  WorkspaceOpener(ConsentBook* consents, TaskBoard* tasks, ConfigState* config, AuditLog* audit)
      : consents_(consents), tasks_(tasks), config_(config), audit_(audit) {}

  // Errors: NOT_FOUND (no such task); FAILED_PRECONDITION (no workspace yet, ui.editor
  // empty, or the editor not on agentd's PATH).
  absl::StatusOr<v1::OpenWorkspaceResponse> Open(const std::string& task_id, const std::string& by);
  // A consent request was decided; runs the editor when it is an approved OPEN_EDITOR
  // request of this opener's.
  void OnDecided(const v1::ConsentRequest& request);

  // The agent id the consent requests are raised under: not a valid agent id (':'), so
  // no agent can raise one that passes for the daemon's.
  static constexpr char kAgent[] = "agentd:ui";

 private:
  ConsentBook* consents_;
  TaskBoard* tasks_;
  ConfigState* config_;
  AuditLog* audit_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_WORKSPACE_OPENER_H_
