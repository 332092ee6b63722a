// Chat: the message bus between people and agents. Send a message to the CEO role, to
// any agent, or to any agent of a role; read the thread as it grows (each message.*
// event carries the message, so the thread updates without a refetch). Answering an
// agent's question (a QUERY to "human") unblocks the task waiting for it.
import { useEffect, useLayoutEffect, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { act, api, kinds, listAll, noteError, useEvents, useLiveQuery } from "../api";
import { RelTime } from "../components/RelTime";
import { enumShort, tsMs } from "../format";
import { EnvelopeType, EnvelopeTypeSchema, type Envelope } from "../gen/agentd/v1/messages_pb";
import { href } from "../route";

/** Messages read at most, oldest dropped first. */
const MAX_MESSAGES = 5000;

function isHuman(party: string): boolean {
  return party === "human" || party.startsWith("human:");
}

export function ChatView() {
  const agents = useLiveQuery(
    () => listAll((t) => api.agents.listAgents({ pageSize: 1000, pageToken: t }), (r) => r.agents),
    [],
    { match: kinds("agent.") },
  );
  const info = useLiveQuery(() => api.system.getInfo({}), [], { match: kinds("config.") });
  const [messages, setMessages] = useState<Map<string, Envelope>>(new Map());
  const [loadError, setLoadError] = useState<string>();
  const [to, setTo] = useState("role:ceo");
  const [body, setBody] = useState("");
  const [replyTo, setReplyTo] = useState<Envelope>();
  const [onlyThis, setOnlyThis] = useState(false);
  const [busy, setBusy] = useState(false);
  const thread = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const loads = useRef(0);

  const load = () => {
    const id = ++loads.current;
    listAll((t) => api.messages.listMessages({ pageSize: 1000, pageToken: t }), (r) => r.envelopes, 50000).then(
      (all) => {
        if (id !== loads.current) return;
        setMessages(new Map(all.slice(-MAX_MESSAGES).map((m) => [m.id, m] as const)));
        setLoadError(undefined);
      },
      (e: unknown) => {
        const ce = noteError(e);
        if (id === loads.current) setLoadError(ce.rawMessage);
      },
    );
  };
  useEffect(load, []);
  // Every message.* event carries the message as it now is (sent, delivered, acked).
  useEvents((e) => {
    if (e === null) {
      load();
      return;
    }
    if (e.payload.case === "envelope" && e.kind.startsWith("message.")) {
      const m = e.payload.value;
      setMessages((prev) => {
        const next = new Map(prev);
        next.set(m.id, m);
        if (next.size > MAX_MESSAGES) next.delete(next.keys().next().value!);
        return next;
      });
    }
  });

  const agentList = agents.data ?? [];
  const roleOf = new Map(agentList.map((a) => [a.id, a.role] as const));
  const configured = info.data?.roles.map((r) => r.name) ?? [];
  const roles = [...new Set([...configured, ...agentList.map((a) => a.role)])].filter((r) => r !== "ceo").sort();
  const options = ["role:ceo", ...agentList.map((a) => a.id).sort(), ...roles.map((r) => `role:${r}`)];
  if (!options.includes(to)) options.push(to);

  // Whether a party is the selected recipient: the agent itself, or any agent of the
  // selected role.
  const isRecipient = (party: string) =>
    party === to || (to.startsWith("role:") && roleOf.get(party) === to.slice(5));
  const sorted = [...messages.values()].sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
  const shown = onlyThis
    ? sorted.filter(
        (m) =>
          (isHuman(m.from) && (m.to === to || isRecipient(m.deliveredTo))) || (isRecipient(m.from) && isHuman(m.to)),
      )
    : sorted;

  useLayoutEffect(() => {
    const el = thread.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  });

  const sending = useRef(false); // Enter pressed twice before the answer sends once
  const send = async (e?: FormEvent) => {
    e?.preventDefault();
    const text = body.trim();
    if (!text || sending.current) return;
    sending.current = true;
    setBusy(true);
    const r = await act("send message", () =>
      api.messages.sendMessage({
        to,
        body: text,
        type: EnvelopeType.TEXT,
        replyToId: replyTo?.id ?? "",
        taskId: replyTo?.taskId ?? "",
        goalId: replyTo?.goalId ?? "",
      }),
    );
    setBusy(false);
    sending.current = false;
    if (r?.envelope) {
      const m = r.envelope;
      setMessages((prev) => new Map(prev).set(m.id, m));
      setBody("");
      setReplyTo(undefined);
      stick.current = true;
    }
  };

  const onKey = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void send();
    }
  };

  const reply = (m: Envelope) => {
    setReplyTo(m);
    setTo(m.from);
  };

  return (
    <div className="view view-chat" data-testid="view-chat">
      <header className="view-head">
        <h1>Chat</h1>
        <label className="check">
          <input type="checkbox" checked={onlyThis} onChange={(e) => setOnlyThis(e.target.checked)} data-testid="chat-only-recipient" />
          only the conversation with {to}
        </label>
      </header>
      {loadError && <div className="banner banner-error">{loadError}</div>}
      <div
        className="thread card"
        ref={thread}
        onScroll={(e) => {
          const el = e.currentTarget;
          stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
        }}
        data-testid="chat-thread"
      >
        {shown.length === 0 && <div className="empty">No messages yet.</div>}
        {shown.map((m) => {
          const mine = isHuman(m.from);
          const typeName = enumShort(EnvelopeTypeSchema, m.type);
          return (
            <div
              key={m.id}
              className={`msg ${mine ? "msg-mine" : ""} ${m.type === EnvelopeType.QUERY ? "msg-query" : ""}`}
              data-testid="chat-message"
              data-from={m.from}
              data-to={m.to}
              data-id={m.id}
            >
              <div className="msg-head">
                <strong>{m.from}</strong> → {m.to}
                {m.deliveredTo && m.deliveredTo !== m.to && <span className="muted"> ({m.deliveredTo})</span>}
                {m.type !== EnvelopeType.TEXT && <span className="chip chip-grey">{typeName.toLowerCase()}</span>}
                {m.goalId && (
                  <a className="small" href={href("goals", m.goalId)}>
                    goal
                  </a>
                )}
                <span className="grow" />
                <span className="muted small" title={m.ackTime ? "acknowledged" : m.deliverTime ? "delivered" : "stored"}>
                  {m.ackTime ? "✓✓" : m.deliverTime ? "✓" : "·"} <RelTime ms={tsMs(m.createTime)} />
                </span>
              </div>
              <div className="msg-body">{m.body}</div>
              {!mine && isHuman(m.to) && (
                <button className="btn btn-small btn-link" onClick={() => reply(m)} data-testid="chat-reply">
                  Reply
                </button>
              )}
            </div>
          );
        })}
      </div>
      <form className="composer" onSubmit={(e) => void send(e)}>
        <select value={to} onChange={(e) => setTo(e.target.value)} data-testid="chat-to">
          {options.map((o) => (
            <option key={o} value={o}>
              {o}
            </option>
          ))}
        </select>
        <div className="composer-input">
          {replyTo && (
            <div className="small muted">
              Replying to {replyTo.from}: “{replyTo.body.slice(0, 80)}”{" "}
              <button type="button" className="btn-link" onClick={() => setReplyTo(undefined)}>
                cancel
              </button>
            </div>
          )}
          <textarea
            rows={2}
            placeholder={`Message ${to} (Enter sends, Shift+Enter adds a line)`}
            value={body}
            onChange={(e) => setBody(e.target.value)}
            onKeyDown={onKey}
            data-testid="chat-input"
          />
        </div>
        <button className="btn btn-primary" type="submit" disabled={busy} data-testid="chat-send">
          Send
        </button>
      </form>
    </div>
  );
}
