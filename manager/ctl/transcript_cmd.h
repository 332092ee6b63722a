// agentctl transcript: what an agent was told, said and did on a task
// (TaskService.GetTranscript / WatchTranscript), printed for people or as data.
#ifndef AGENTD_MANAGER_CTL_TRANSCRIPT_CMD_H_
#define AGENTD_MANAGER_CTL_TRANSCRIPT_CMD_H_

#include <string>

#include "agentd/v1/tasks.pb.h"
#include "manager/ctl/cli.h"

namespace agentd::ctl {

// Adds `transcript` to the tree.
void AddTranscriptCommands(const CommandTree& tree);

// One entry as people read it: a heading line, then its texts indented (every string
// through TerminalText). Ends with a newline.
std::string TranscriptEntryText(const v1::TranscriptEntry& e);

}  // namespace agentd::ctl

#endif  // AGENTD_MANAGER_CTL_TRANSCRIPT_CMD_H_
