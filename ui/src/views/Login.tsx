// The login page, shown whenever the daemon answers UNAUTHENTICATED: the session cookie
// is missing, or belongs to an admin token that has since changed.
import { useState, type FormEvent } from "react";

export function LoginPage() {
  const [token, setToken] = useState("");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const t = token.trim();
    if (!t) return;
    // agentd checks the token, sets the session cookie and redirects to "/".
    window.location.href = `/?token=${encodeURIComponent(t)}`;
  };
  return (
    <div className="login" data-testid="login-page">
      <form className="login-card" onSubmit={submit}>
        <h1>
          <span className="brand-mark">a</span> agentd
        </h1>
        <p>This browser is not logged in to agentd.</p>
        <p>
          Open the login link that <code>dev/run</code> prints when it starts the daemon, or that{" "}
          <code>agentctl ui</code> prints (and opens) on the daemon's host. It looks like{" "}
          <code>http://127.0.0.1:7878/?token=…</code> and sets a session cookie for this browser.
        </p>
        <p className="muted">
          Or paste the admin token, kept in <code>admin.token</code> in the daemon's state directory:
        </p>
        <div className="form-row">
          <input
            className="grow"
            type="password"
            autoComplete="off"
            placeholder="Admin token"
            value={token}
            onChange={(e) => setToken(e.target.value)}
            data-testid="login-token"
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
