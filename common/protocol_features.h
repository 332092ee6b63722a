// The names of what agentd takes beyond AgentHost's first version
// (RegisterResponse.features): agentd lists them, an agent uses a feature only when
// listed. The names are on the wire: never change one, add a new one.
#ifndef AGENTD_COMMON_PROTOCOL_FEATURES_H_
#define AGENTD_COMMON_PROTOCOL_FEATURES_H_

namespace agentd {

// TaskEventBatch on the Connect stream (ConnectRequest.task_events).
inline constexpr char kFeatureTaskEventBatch[] = "connect.task_events";
// ToolCallFinished.call_summary names the audit target: no ToolCallStarted is needed.
inline constexpr char kFeatureCallSummary[] = "tool_call_finished.call_summary";

// And what an agent takes beyond the first version (RegisterRequest.capabilities): agentd
// sends it only to an agent that listed it.
// TaskAssignment.reservations: the agent uses them for its first calls, or releases them.
inline constexpr char kCapabilityAssignmentReservations[] = "assignment.reservations";

}  // namespace agentd

#endif  // AGENTD_COMMON_PROTOCOL_FEATURES_H_
