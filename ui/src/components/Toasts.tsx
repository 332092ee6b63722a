// Toasts in the bottom right corner: failed actions with the daemon's message, and
// short confirmations.
import { dismissToast, toastStore, useStore } from "../api";

export function Toasts() {
  const toasts = useStore(toastStore);
  return (
    <div className="toasts" aria-live="polite">
      {toasts.map((t) => (
        <div
          key={t.id}
          className={`toast toast-${t.kind}`}
          data-testid={t.kind === "error" ? "toast-error" : "toast-info"}
          role={t.kind === "error" ? "alert" : "status"}
        >
          <div className="toast-text">{t.text}</div>
          {t.detail && <div className="toast-detail">{t.detail}</div>}
          <button className="toast-close" onClick={() => dismissToast(t.id)} aria-label="Dismiss">
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
