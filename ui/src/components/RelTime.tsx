// A time shown relative to now ("3 s ago"), absolute on hover.
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { useNow } from "../api";
import { fmtAbsolute, fmtAgo, tsMs } from "../format";

export function RelTime(props: { ts?: Timestamp; ms?: number; testId?: string }) {
  const now = useNow();
  const ms = props.ms ?? tsMs(props.ts);
  if (ms === undefined) return <span className="muted" data-testid={props.testId}>—</span>;
  return (
    <time dateTime={new Date(ms).toISOString()} title={fmtAbsolute(ms)} data-testid={props.testId}>
      {fmtAgo(ms, now)}
    </time>
  );
}
