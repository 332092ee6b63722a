// ProjectTemplates: the project templates under <templates_dir>/projects — each a folder
// of files and a template.yaml (`description`, `post_check`) — described for the API
// (TaskService.ListTemplates). The bootstrapper (agents/runtime/bootstrap.h) renders them.
//
// Reads the disk on every call (a few small files; templates change with the package).
// Bounded: at most 500 files a template are listed, and only the first 256 KiB of each is
// searched for the {{variables}} it fills in. A template.yaml that cannot be read lists its
// template with a description saying why, never an error. Thread-safe (no state).
#ifndef AGENTD_MANAGER_CORE_PROJECT_TEMPLATES_H_
#define AGENTD_MANAGER_CORE_PROJECT_TEMPLATES_H_

#include <string>
#include <vector>

#include "agentd/v1/tasks.pb.h"

namespace agentd {

// The templates under `templates_dir`/projects, sorted by name (at most 200); none when it
// is missing. What it reads is bounded (see the .cc): it may run on a gRPC thread.
std::vector<v1::ProjectTemplate> ListProjectTemplates(const std::string& templates_dir);

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_PROJECT_TEMPLATES_H_
