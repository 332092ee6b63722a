// A coloured chip for a status: green done or healthy, blue working, amber waiting,
// red failed, grey canceled or inactive.
import type { ReactNode } from "react";
import type { DescEnum } from "@bufbuild/protobuf";
import { enumName, enumShort, toneOf } from "../format";

export function StatusChip(props: { schema: DescEnum; value: number; agent?: boolean; testId?: string }) {
  const short = enumShort(props.schema, props.value);
  return (
    <span
      className={`chip chip-${toneOf(short, props.agent)}`}
      title={enumName(props.schema, props.value)}
      data-testid={props.testId}
    >
      {short}
    </span>
  );
}

export function Chip(props: { tone: string; children: ReactNode; title?: string }) {
  return (
    <span className={`chip chip-${props.tone}`} title={props.title}>
      {props.children}
    </span>
  );
}
