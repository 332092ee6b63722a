// The UI's frame: a sidebar of views, the current view (chosen by the URL's hash), the
// consent modal over everything, and toasts. The long-lived streams (change feed,
// consent requests) run while the session is authenticated; an UNAUTHENTICATED answer
// anywhere shows the login page instead.
import { lazy, Suspense, useEffect, useState } from "react";
import { api, authStore, consentWatcher, errorText, eventHub, noteError, useStore } from "./api";
import { ConnectionStatus } from "./components/ConnectionStatus";
import { ConsentModal } from "./components/ConsentModal";
import { Toasts } from "./components/Toasts";
import type { GetInfoResponse } from "./gen/agentd/v1/system_pb";
import { useRoute, type ViewName } from "./route";
import { AgentsView } from "./views/Agents";
import { AuditView } from "./views/Audit";
import { BootstrapView } from "./views/Bootstrap";
import { ChatView } from "./views/Chat";
import { GoalsView } from "./views/Goals";
import { LoginPage } from "./views/Login";
import { LogsView } from "./views/Logs";
import { OverviewView } from "./views/Overview";
import { PlansView } from "./views/Plans";
import { TranscriptView } from "./views/Transcript";

// The usage view carries the chart library; it loads when first opened.
const UsageView = lazy(() => import("./views/Usage").then((m) => ({ default: m.UsageView })));

const NAV: { name: ViewName; label: string; icon: string }[] = [
  { name: "overview", label: "Overview", icon: "◎" },
  { name: "agents", label: "Agents", icon: "⚙" },
  { name: "logs", label: "Logs", icon: "≡" },
  { name: "goals", label: "Goals", icon: "◆" },
  { name: "plans", label: "Plans", icon: "⋔" },
  { name: "bootstrap", label: "Bootstrap", icon: "✦" },
  { name: "chat", label: "Chat", icon: "✉" },
  { name: "usage", label: "Usage", icon: "$" },
  { name: "audit", label: "Audit", icon: "§" },
];

export function App() {
  const auth = useStore(authStore);
  const route = useRoute();
  const [info, setInfo] = useState<GetInfoResponse>();
  const [bootError, setBootError] = useState<string>();
  const pendingConsents = useStore(consentWatcher.pending).size;

  // The first call tells whether the session cookie is good.
  useEffect(() => {
    if (auth === "unauthenticated") return;
    let live = true;
    const load = () =>
      api.system.getInfo({}).then(
        (r) => {
          if (!live) return;
          setInfo(r);
          setBootError(undefined);
        },
        (e: unknown) => {
          if (!live) return;
          noteError(e);
          setBootError(errorText(e));
        },
      );
    void load();
    const t = window.setInterval(load, 30000);
    return () => {
      live = false;
      window.clearInterval(t);
    };
  }, [auth]);

  useEffect(() => {
    if (auth !== "ok") return;
    eventHub.start();
    consentWatcher.start();
    return () => {
      eventHub.stop();
      consentWatcher.stop();
    };
  }, [auth]);

  // The window's title names the view once the session is known to be good ("agentd ·
  // Goals"), so tabs and the desktop shell's window tell where they are.
  const viewLabel =
    route.view === "transcript" ? "Transcript" : (NAV.find((n) => n.name === route.view)?.label ?? "Overview");
  useEffect(() => {
    document.title = auth === "ok" ? `agentd · ${viewLabel}` : auth === "unauthenticated" ? "agentd · log in" : "agentd";
  }, [auth, viewLabel]);

  if (auth === "unauthenticated") return <LoginPage />;
  if (auth === "unknown") {
    return (
      <div className="boot">
        {bootError ? (
          <div className="boot-error">
            <strong>Cannot reach agentd.</strong> {bootError}
            <div className="muted">Retrying every 30 s; is the daemon running?</div>
          </div>
        ) : (
          <span className="muted">Connecting to agentd…</span>
        )}
      </div>
    );
  }

  return (
    <div className="app">
      <nav className="sidebar">
        <div className="brand">
          <span className="brand-mark">a</span> agentd
        </div>
        <ul>
          {NAV.map((n) => (
            <li key={n.name}>
              <a
                href={`#/${n.name}`}
                className={route.view === n.name || (route.view === "transcript" && n.name === "goals") ? "active" : undefined}
                data-testid={`nav-${n.name}`}
              >
                <span className="nav-icon" aria-hidden>
                  {n.icon}
                </span>
                {n.label}
              </a>
            </li>
          ))}
        </ul>
        <div className="sidebar-foot">
          <ConnectionStatus />
          {pendingConsents > 0 && <div className="pending-note">{pendingConsents} consent pending</div>}
          {info?.version && (
            <div className="muted small" title={`revision ${info.version.gitRevision}, ${info.version.buildType}`}>
              agentd {info.version.version} · pid {String(info.pid)}
            </div>
          )}
          {bootError && <div className="text-red small">{bootError}</div>}
        </div>
      </nav>
      <main className="main">
        <CurrentView view={route.view} args={route.args} query={route.query} />
      </main>
      <ConsentModal />
      <Toasts />
    </div>
  );
}

function CurrentView(props: { view: ViewName; args: string[]; query: URLSearchParams }) {
  switch (props.view) {
    case "overview":
      return <OverviewView />;
    case "agents":
      return <AgentsView />;
    case "logs":
      return <LogsView query={props.query} />;
    case "goals":
      return <GoalsView selected={props.args[0]} />;
    case "plans":
      return <PlansView selected={props.args[0]} />;
    case "chat":
      return <ChatView />;
    case "usage":
      return (
        <Suspense fallback={<div className="muted">Loading…</div>}>
          <UsageView />
        </Suspense>
      );
    case "audit":
      return <AuditView />;
    case "transcript":
      return <TranscriptView taskId={props.args[0]} />;
    case "bootstrap":
      return <BootstrapView goalId={props.args[0]} />;
  }
}
