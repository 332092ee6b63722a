// The login page, shown whenever the daemon answers UNAUTHENTICATED: this browser has no
// session, or its session expired, was revoked, or ended with a restart of the daemon.
import { useState, type FormEvent } from "react";

// The one-time code in a pasted login link (…/login?code=…), or the pasted text itself.
function codeOf(text: string): string {
  const t = text.trim();
  const m = /[?&]code=([^&#\s]+)/.exec(t);
  return m ? decodeURIComponent(m[1]) : t;
}

export function LoginPage() {
  const [link, setLink] = useState("");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const code = codeOf(link);
    if (!code) return;
    // agentd redeems the code once, sets the session cookie and redirects to "/".
    window.location.href = `/login?code=${encodeURIComponent(code)}`;
  };
  return (
    <div className="login" data-testid="login-page">
      <form className="login-card" onSubmit={submit}>
        <h1>
          <span className="brand-mark">a</span> agentd
        </h1>
        <p>This browser is not logged in to agentd.</p>
        <p>
          Run <code>agentctl ui</code> on the daemon's host (<code>dev/run</code> prints one too when it
          starts the daemon) and open the link it prints. It looks like{" "}
          <code>http://127.0.0.1:7878/login?code=…</code>, works once, within 10 minutes, and sets a
          session cookie for this browser.
        </p>
        <p className="muted">Or paste the link (or its code) here:</p>
        <div className="form-row">
          <input
            className="grow"
            type="password"
            autoComplete="off"
            placeholder="Login link or code"
            value={link}
            onChange={(e) => setLink(e.target.value)}
            data-testid="login-code"
            autoFocus
          />
          <button className="btn btn-primary" type="submit" data-testid="login-submit">
            Log in
          </button>
        </div>
      </form>
    </div>
  );
}
