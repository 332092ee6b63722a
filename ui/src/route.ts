// Hash routing: "#/goals/<id>?x=y" → { view: "goals", args: ["<id>"], query }.
import { useEffect, useState } from "react";

export const VIEWS = ["overview", "agents", "logs", "goals", "plans", "chat", "usage", "audit", "transcript", "bootstrap"] as const;
export type ViewName = (typeof VIEWS)[number];

export interface Route {
  view: ViewName;
  args: string[];
  query: URLSearchParams;
}

export function parseRoute(hash: string): Route {
  const h = hash.replace(/^#\/?/, "");
  const [path = "", qs = ""] = h.split("?", 2);
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const first = parts[0] ?? "overview";
  const view = (VIEWS as readonly string[]).includes(first) ? (first as ViewName) : "overview";
  return { view, args: parts.slice(1), query: new URLSearchParams(qs) };
}

export function useRoute(): Route {
  const [hash, setHash] = useState(window.location.hash);
  useEffect(() => {
    const onChange = () => setHash(window.location.hash);
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return parseRoute(hash);
}

/** The href for a view, e.g. href("goals", id) → "#/goals/<id>". */
export function href(view: ViewName, ...args: string[]): string {
  return `#/${[view, ...args.map(encodeURIComponent)].join("/")}`;
}

export function navigate(to: string): void {
  if (window.location.hash !== to) window.location.hash = to;
}
