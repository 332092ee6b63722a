// Vite configuration for agentd's web UI.
//
// `npm run build` writes ui/dist, which agentd's HTTP listener serves at
// http://127.0.0.1:7878/. `npm run dev` serves the UI with hot reload and forwards the
// API (gRPC-web under /agentd.v1.*), /metrics and the login link (/?token=…) to a
// daemon on 127.0.0.1:7878, so the session cookie is set for the dev server's origin.
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// Node's process, typed here so the UI needs no @types/node.
declare const process: { env: Record<string, string | undefined> };

const daemon = process.env.AGENTD_HTTP ?? "http://127.0.0.1:7878";

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: {
      "^/agentd\\.v1\\.": { target: daemon },
      "/metrics": { target: daemon },
      "/healthz": { target: daemon },
      // The login link: the daemon sets the cookie and redirects to "/".
      "^/\\?token=": { target: daemon },
    },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
  },
});
