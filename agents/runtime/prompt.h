// Prompt templates: a role's prompt file with {{name}} placeholders filled in.
//
// Placeholders are `{{name}}` with optional spaces inside the braces; names are
// letters, digits and underscores. A name not in `vars` is left exactly as written and
// listed in `*unknown`, so a typo in a prompt file shows up in the agent's log instead
// of silently becoming empty text. There is no escaping and no logic: prompts are
// prose, not programs. Pure function; thread-safe.
#ifndef AGENTD_AGENTS_RUNTIME_PROMPT_H_
#define AGENTD_AGENTS_RUNTIME_PROMPT_H_

#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace agentd::agent {

std::string RenderTemplate(absl::string_view text, const std::map<std::string, std::string>& vars,
                           std::vector<std::string>* unknown = nullptr);

}  // namespace agentd::agent

#endif  // AGENTD_AGENTS_RUNTIME_PROMPT_H_
