// The effective configuration as YAML, each setting beside where it came from:
// what `agentctl config view` prints (SystemService.GetConfig renders it in agentd).
//
// Every setting is printed, those no layer gave with their built-in value, so the output
// is the whole configuration in force and is itself a valid configuration file (after
// ${VAR} expansion, so `$` in a value is written `$$`). Comments name the origin of each
// value: "FILE:LINE:COL", a command-line flag ("--socket"), or "default" for a built-in
// value.
//
// Thread-safety: pure.
#ifndef AGENTD_COMMON_CONFIG_VIEW_H_
#define AGENTD_COMMON_CONFIG_VIEW_H_

#include <string>

#include "common/config.h"

namespace agentd {

// `c` as YAML with origin comments; `with_origins` false leaves the comments out.
std::string RenderConfigYaml(const Config& c, bool with_origins = true);

}  // namespace agentd

#endif  // AGENTD_COMMON_CONFIG_VIEW_H_
