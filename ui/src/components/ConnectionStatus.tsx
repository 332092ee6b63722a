// The state of the UI's link to the daemon: the change feed that keeps every view
// current.
import { eventHub, useStore } from "../api";

const LABELS = {
  connecting: "connecting",
  live: "live",
  reconnecting: "reconnecting",
  stopped: "offline",
} as const;

export function ConnectionStatus() {
  const s = useStore(eventHub.status);
  const tone = s === "live" ? "green" : s === "stopped" ? "grey" : "amber";
  return (
    <div
      className="conn"
      data-testid="connection-status"
      data-status={s}
      title="Change feed (EventService.WatchEvents): views update as the daemon commits changes"
    >
      <span className={`dot dot-${tone}`} />
      {LABELS[s]}
    </div>
  );
}
