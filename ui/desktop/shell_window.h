// ShellWindow: agentd-desktop's window — the web UI in a WebKitGTK view under a header
// bar that says whether agentd runs, with Start and Stop — and the desktop
// notifications for what waits for a person.
//
// - Status: the window title and header follow DaemonLink ("agentd — running",
//   "agentd — not running", with pid, version and counts, or why it is not reachable).
// - Start: when no agentd answers at launch, it is started once (DaemonControl: systemd
//   when its user unit is installed, else a child); after that only the Start button
//   (or the app.start action) starts it. A start that does not come up within 30 s says
//   so and where its log is.
// - Login: whenever agentd starts answering, and whenever the UI shows its login page
//   (its session expired or was revoked), the shell redeems a one-time login link itself
//   (an HTTP request of its own, never a URL the view loads) and hands the session cookie
//   to the view's cookie store, which is ephemeral: the admin token is never read, the
//   code is in no URL the view loads, and the session goes with the shell.
// - The view shows agentd's own origin only (scheme, host and port compared): a link to
//   anywhere else opens in the user's browser when a person clicked it, and nowhere when
//   a page navigated by itself, so a link a model put in a task cannot turn the shell's
//   logged-in view elsewhere.
// - Notifications (GNotification, which speaks org.freedesktop.Notifications or the
//   desktop's own service): one per pending consent request and one per plan awaiting
//   approval, withdrawn once decided (and all of them when agentd stops or another takes
//   its place); activating one presents the window on that request's dialog or that plan
//   (actions app.open-consent / app.open-plan, also reachable over D-Bus as the
//   application's actions). Text a model chose is escaped for servers that read markup.
// - Closing the window quits: a child agentd is stopped first (it drains and exits; it
//   is killed if still there after kQuitGraceSeconds); one systemd started keeps running.
//
// Everything here runs on GTK's main thread; DaemonLink's callbacks are posted to it.
#ifndef AGENTD_UI_DESKTOP_SHELL_WINDOW_H_
#define AGENTD_UI_DESKTOP_SHELL_WINDOW_H_

#include <gtk/gtk.h>
#include <webkit2/webkit2.h>

#include <map>
#include <memory>
#include <string>

#include "ui/desktop/daemon_control.h"
#include "ui/desktop/daemon_link.h"

namespace agentd::desktop {

struct ShellOptions {
  std::string socket;      // agentd's unix socket
  bool autostart = true;   // start agentd at launch when none answers
  ControlOptions control;  // how to start and stop it
};

class ShellWindow {
 public:
  // Creates the window (not shown yet) and starts following agentd.
  ShellWindow(GtkApplication* app, ShellOptions options);
  ~ShellWindow();
  ShellWindow(const ShellWindow&) = delete;
  ShellWindow& operator=(const ShellWindow&) = delete;

  void Present();
  void StartDaemon();
  void StopDaemon();
  // Presents the window on consent request `id`'s dialog, or plan `id`.
  void OpenConsent(const std::string& id);
  void OpenPlan(const std::string& id);
  // Stops a child agentd (waiting for it to exit), then quits the application.
  void Quit();

 private:
  static constexpr guint kQuitGraceSeconds = 35;  // agentd's own stop_timeout is 10 s

  void OnStatus(const DaemonStatus& status);
  void OnConsent(const v1::ConsentRequest& c);
  void OnPlan(const v1::Plan& p);
  void LogIn(const std::string& login_url);
  void LoadUi();
  void ShowPage(const std::string& heading, const std::string& text);
  void Navigate(const std::string& script);
  void SetHeader(const std::string& title, const std::string& subtitle);
  void Say(const std::string& line);  // one line on stderr (the session's journal)
  void OnStartTimeout();
  // Asks the link for a new login link, at most every few seconds.
  void RequestLogin(const char* why);
  void Withdraw(const std::string& key);
  void WithdrawAll();
  std::string NotificationText(const std::string& text) const;
  void ProbeNotificationMarkup();
  bool IsOwnOrigin(const std::string& uri) const;

  static gboolean OnDelete(GtkWidget*, GdkEvent*, gpointer self);
  static gboolean OnDecidePolicy(WebKitWebView*, WebKitPolicyDecision*, WebKitPolicyDecisionType,
                                 gpointer self);
  static void OnTitle(GObject*, GParamSpec*, gpointer self);
  static void OnUri(GObject*, GParamSpec*, gpointer self);

  GtkApplication* app_;
  const ShellOptions options_;
  GtkWidget* window_ = nullptr;
  GtkWidget* header_ = nullptr;
  GtkWidget* start_button_ = nullptr;
  GtkWidget* stop_button_ = nullptr;
  WebKitWebView* view_ = nullptr;
  WebKitWebContext* web_context_ = nullptr;
  GCancellable* cancel_ = nullptr;
  std::shared_ptr<bool> alive_;  // false once the window goes: posted callbacks skip

  DaemonControl control_;
  std::unique_ptr<DaemonLink> link_;
  DaemonStatus status_;
  bool have_status_ = false;
  bool autostart_done_ = false;
  bool starting_ = false;
  guint start_timer_ = 0;
  bool quitting_ = false;
  // "http://127.0.0.1:7878", from the last login link.
  std::string base_url_;
  // The UI is (being) loaded in the view, not a status page; ready once its title says
  // its session works.
  bool ui_loading_ = false;
  bool ui_ready_ = false;
  // A login's callbacks act only if no later login began.
  uint64_t login_generation_ = 0;
  bool login_in_flight_ = false;
  gint64 last_login_request_ = 0;  // g_get_monotonic_time() of the last RequestLogin
  int login_attempts_ = 0;         // logins since the UI was last ready
  guint login_retry_timer_ = 0;
  std::string login_retry_reason_;
  std::string pending_script_;  // a navigation waiting for the UI to be ready
  uint64_t opened_ = 0;         // makes each "open consent" a new address
  // Whether notification bodies are read as markup (and so escaped): assumed until the
  // notification service says otherwise.
  bool body_markup_ = true;
  // Notifications shown and not withdrawn: id → when sent (g_get_monotonic_time()).
  std::map<std::string, gint64> notified_;
};

}  // namespace agentd::desktop

#endif  // AGENTD_UI_DESKTOP_SHELL_WINDOW_H_
