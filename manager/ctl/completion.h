// Shell completion for agentctl. The scripts are thin: bash and zsh call
// `agentctl __complete WORDS… -- CURRENT` and offer what it prints, one word a line, so
// the command tree (CLI11's) is the only list of commands and flags there is, and ids come
// from the daemon itself.
#ifndef AGENTD_MANAGER_CTL_COMPLETION_H_
#define AGENTD_MANAGER_CTL_COMPLETION_H_

#include <string>
#include <vector>

#include "CLI/CLI.hpp"

namespace agentd::ctl {

// The hidden command the scripts call.
inline constexpr char kCompleteCommand[] = "__complete";

// The completion script for `shell` ("bash" or "zsh").
std::string CompletionScript(const std::string& shell);

// What may follow `before` (the words typed so far, argv[0] excluded) for a word that
// starts with `current`: a command's subcommands, its flags and its parents' (when
// `current` starts with "-"), a flag's allowed values, or the ids agentd holds where the
// next positional is an AGENT, TASK, GOAL, PLAN or CONSENT. The daemon is asked with a
// one-second deadline, at the socket or address given in `before` or the environment;
// when it does not answer, ids are simply not offered. Sorted, without duplicates.
std::vector<std::string> CompleteWords(CLI::App* root, const std::vector<std::string>& before,
                                       const std::string& current);

}  // namespace agentd::ctl

#endif  // AGENTD_MANAGER_CTL_COMPLETION_H_
