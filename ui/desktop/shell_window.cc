#include "ui/desktop/shell_window.h"

#include <libsoup/soup.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/text.h"
#include "nlohmann/json.hpp"

namespace agentd::desktop {
namespace {

// How long a started agentd may take to answer before the shell says it did not come up
// (agentd itself is ready in well under a second; systemd may be slower to start it).
constexpr guint kStartTimeoutSeconds = 30;
constexpr size_t kNotificationBodyBytes = 400;
// At most one login request to agentd per this many seconds (a login page that keeps
// coming back, an agentd that refuses codes): no loop hammers it.
constexpr gint64 kLoginIntervalUs = 5 * G_USEC_PER_SEC;
constexpr char kLoginTitle[] = "agentd · log in";
constexpr char kTitlePrefix[] = "agentd · ";
// A notification is withdrawn no sooner than this after it was sent (see Withdraw).
constexpr gint64 kWithdrawAfterUs = G_USEC_PER_SEC;

// Runs `f` on GTK's main thread, always queued (never run on the calling thread, even
// when that thread could take the main context, as the link's can once the application
// has stopped running it). `alive` is cleared when the window goes, so a callback posted
// just before never touches it.
void PostToMain(const std::shared_ptr<bool>& alive, std::function<void()> f) {
  struct Posted {
    std::shared_ptr<bool> alive;
    std::function<void()> f;
  };
  g_idle_add_full(
      G_PRIORITY_DEFAULT,
      [](gpointer data) -> gboolean {
        auto* p = static_cast<Posted*>(data);
        if (*p->alive) p->f();  // read and cleared on this (the main) thread only
        return G_SOURCE_REMOVE;
      },
      new Posted{alive, std::move(f)}, [](gpointer data) { delete static_cast<Posted*>(data); });
}

// Text agentd sent (a summary built by the daemon, a plan's summary written by a model)
// as a log line or a notification shows it: valid UTF-8, control and bidi characters
// shown as escapes, cut short.
std::string Shown(const std::string& text) {
  return Utf8Prefix(EscapeForTerminal(ValidUtf8(text)), kNotificationBodyBytes, "…");
}

std::string Escaped(const std::string& text) {
  gchar* e = g_markup_escape_text(ValidUtf8(text).c_str(), -1);
  std::string out(e);
  g_free(e);
  return out;
}

// A page address as the log shows it: without its query, where a login link's one-time
// code would be (the fragment, the UI's route, stays).
std::string Loggable(const std::string& uri) {
  size_t hash = uri.find('#');
  size_t query = uri.find('?');
  if (query == std::string::npos || (hash != std::string::npos && query > hash)) return uri;
  return absl::StrCat(uri.substr(0, query), "?…",
                      hash == std::string::npos ? "" : uri.substr(hash));
}

// "http://127.0.0.1:7878" from "http://127.0.0.1:7878/login?code=…".
std::string BaseOf(const std::string& login_url) {
  size_t scheme = login_url.find("://");
  if (scheme == std::string::npos) return "";
  size_t path = login_url.find('/', scheme + 3);
  return path == std::string::npos ? login_url : login_url.substr(0, path);
}

// Scheme, host and port of `uri` as GLib parses it (ports made explicit).
struct Origin {
  std::string scheme, host;
  int port = -1;
  bool operator==(const Origin& o) const {
    return scheme == o.scheme && host == o.host && port == o.port;
  }
};
std::optional<Origin> OriginOf(const std::string& uri) {
  GUri* u = g_uri_parse(uri.c_str(), G_URI_FLAGS_NONE, nullptr);
  if (u == nullptr) return std::nullopt;
  Origin o;
  if (const char* scheme = g_uri_get_scheme(u); scheme != nullptr) {
    gchar* lower = g_ascii_strdown(scheme, -1);
    o.scheme = lower;
    g_free(lower);
  }
  o.host = g_uri_get_host(u) != nullptr ? g_uri_get_host(u) : "";
  o.port = g_uri_get_port(u);
  if (o.port < 0) o.port = o.scheme == "https" ? 443 : o.scheme == "http" ? 80 : -1;
  g_uri_unref(u);
  return o;
}

// The answers ProbeNotificationMarkup() waits for; `markup` is written only while
// `alive` holds.
struct MarkupProbe {
  std::shared_ptr<bool> alive;
  bool* markup;
  GCancellable* cancel;
};

void OnNotificationCapabilities(GObject* source, GAsyncResult* result, gpointer data) {
  std::unique_ptr<MarkupProbe> p(static_cast<MarkupProbe*>(data));
  GVariant* reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, nullptr);
  if (reply == nullptr) return;  // no server yet: stay escaped
  GVariantIter* caps = nullptr;
  g_variant_get(reply, "(as)", &caps);
  bool markup = false;
  const gchar* cap;
  while (g_variant_iter_next(caps, "&s", &cap)) markup |= g_strcmp0(cap, "body-markup") == 0;
  g_variant_iter_free(caps);
  g_variant_unref(reply);
  if (*p->alive) *p->markup = markup;
}

void OnGtkNotificationsOwner(GObject* source, GAsyncResult* result, gpointer data) {
  std::unique_ptr<MarkupProbe> p(static_cast<MarkupProbe*>(data));
  GVariant* reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, nullptr);
  if (reply == nullptr || !*p->alive) {
    if (reply != nullptr) g_variant_unref(reply);
    return;
  }
  gboolean owned = FALSE;
  g_variant_get(reply, "(b)", &owned);
  g_variant_unref(reply);
  if (owned) {
    *p->markup = false;  // the desktop's own service: bodies are text
    return;
  }
  GCancellable* cancel = p->cancel;
  g_dbus_connection_call(G_DBUS_CONNECTION(source), "org.freedesktop.Notifications",
                         "/org/freedesktop/Notifications", "org.freedesktop.Notifications",
                         "GetCapabilities", nullptr, G_VARIANT_TYPE("(as)"), G_DBUS_CALL_FLAGS_NONE,
                         2000, cancel, &OnNotificationCapabilities, p.release());
}

std::string Plural(int64_t n, const char* what) {
  return absl::StrCat(n, " ", what, n == 1 ? "" : "s");
}

}  // namespace

ShellWindow::ShellWindow(GtkApplication* app, ShellOptions options)
    : app_(app),
      options_(std::move(options)),
      cancel_(g_cancellable_new()),
      control_(options_.control) {
  window_ = gtk_application_window_new(app_);
  gtk_window_set_default_size(GTK_WINDOW(window_), 1200, 800);
  gtk_window_set_icon_name(GTK_WINDOW(window_), "agentd");
  g_signal_connect(window_, "delete-event", G_CALLBACK(&ShellWindow::OnDelete), this);

  header_ = gtk_header_bar_new();
  gtk_header_bar_set_show_close_button(GTK_HEADER_BAR(header_), TRUE);
  start_button_ = gtk_button_new_with_label("Start agentd");
  gtk_actionable_set_action_name(GTK_ACTIONABLE(start_button_), "app.start");
  stop_button_ = gtk_button_new_with_label("Stop agentd");
  gtk_actionable_set_action_name(GTK_ACTIONABLE(stop_button_), "app.stop");
  gtk_header_bar_pack_end(GTK_HEADER_BAR(header_), stop_button_);
  gtk_header_bar_pack_end(GTK_HEADER_BAR(header_), start_button_);
  gtk_window_set_titlebar(GTK_WINDOW(window_), header_);

  // An ephemeral store: the session cookie lives in memory and goes with the shell. The
  // view talks to agentd on loopback only, so no proxy either.
  WebKitWebsiteDataManager* data = webkit_website_data_manager_new_ephemeral();
  WebKitNetworkProxySettings* no_proxy = nullptr;
  webkit_website_data_manager_set_network_proxy_settings(data, WEBKIT_NETWORK_PROXY_MODE_NO_PROXY,
                                                         no_proxy);
  web_context_ = webkit_web_context_new_with_website_data_manager(data);
  g_object_unref(data);
  view_ = WEBKIT_WEB_VIEW(webkit_web_view_new_with_context(web_context_));
  WebKitSettings* settings = webkit_web_view_get_settings(view_);
  // A dashboard of text and small charts: software rendering is plenty, and it works on
  // every display, virtual ones included.
  webkit_settings_set_hardware_acceleration_policy(settings,
                                                   WEBKIT_HARDWARE_ACCELERATION_POLICY_NEVER);
  webkit_settings_set_enable_developer_extras(settings, FALSE);
  g_signal_connect(view_, "decide-policy", G_CALLBACK(&ShellWindow::OnDecidePolicy), this);
  g_signal_connect(view_, "notify::title", G_CALLBACK(&ShellWindow::OnTitle), this);
  g_signal_connect(view_, "notify::uri", G_CALLBACK(&ShellWindow::OnUri), this);
  gtk_container_add(GTK_CONTAINER(window_), GTK_WIDGET(view_));
  gtk_widget_show_all(window_);
  gtk_widget_hide(window_);

  control_.set_on_child_exit([this](const std::string& how) {
    Say(how);
    if (link_) link_->Poke();
  });
  SetHeader("agentd — looking for agentd", absl::StrCat("on ", options_.socket));
  ShowPage("Looking for agentd…", absl::StrCat("Connecting to ", options_.socket, "."));

  auto alive = std::make_shared<bool>(true);
  alive_ = alive;
  ProbeNotificationMarkup();
  DaemonLink::Callbacks cb;
  cb.on_status = [this, alive](const DaemonStatus& s) {
    PostToMain(alive, [this, s] { OnStatus(s); });
  };
  cb.on_consent = [this, alive](const v1::ConsentRequest& c) {
    PostToMain(alive, [this, c] { OnConsent(c); });
  };
  cb.on_plan = [this, alive](const v1::Plan& p) { PostToMain(alive, [this, p] { OnPlan(p); }); };
  link_ = std::make_unique<DaemonLink>(options_.socket, std::move(cb));
  link_->Start();
}

ShellWindow::~ShellWindow() {
  *alive_ = false;
  link_->Stop();
  if (start_timer_ != 0) g_source_remove(start_timer_);
  if (login_retry_timer_ != 0) g_source_remove(login_retry_timer_);
  g_cancellable_cancel(cancel_);
  g_object_unref(cancel_);
  // The window and view outlive this object inside GTK until the application goes: no
  // signal of theirs may reach it.
  g_signal_handlers_disconnect_by_data(view_, this);
  g_signal_handlers_disconnect_by_data(window_, this);
  g_object_unref(web_context_);
}

void ShellWindow::Say(const std::string& line) {
  std::fprintf(stderr, "agentd-desktop: %s\n", line.c_str());
  std::fflush(stderr);
}

void ShellWindow::Present() {
  if (!quitting_) gtk_window_present(GTK_WINDOW(window_));
}

void ShellWindow::SetHeader(const std::string& title, const std::string& subtitle) {
  gtk_window_set_title(GTK_WINDOW(window_), title.c_str());
  gtk_header_bar_set_title(GTK_HEADER_BAR(header_), title.c_str());
  gtk_header_bar_set_subtitle(GTK_HEADER_BAR(header_), subtitle.c_str());
}

void ShellWindow::ShowPage(const std::string& heading, const std::string& text) {
  std::string html = absl::StrCat(
      "<!doctype html><html><head><meta charset=\"utf-8\"><title>agentd</title><style>"
      "body{font-family:sans-serif;margin:15% auto;max-width:40em;color:#333}"
      "h1{font-weight:400}</style></head><body><h1>",
      Escaped(heading), "</h1><p>", Escaped(text), "</p></body></html>");
  ui_loading_ = false;
  ui_ready_ = false;
  webkit_web_view_load_html(view_, html.c_str(), nullptr);
}

void ShellWindow::ProbeNotificationMarkup() {
  // GLib hands notifications to org.gtk.Notifications when a desktop owns that name (its
  // bodies are plain text), else to org.freedesktop.Notifications, whose server may read
  // a subset of HTML in bodies when it lists "body-markup". Until the answer, bodies are
  // escaped: a model's "<a href=…>" must never become a link in a trusted prompt.
  GDBusConnection* bus = g_application_get_dbus_connection(G_APPLICATION(app_));
  if (bus == nullptr) return;
  g_dbus_connection_call(
      bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner",
      g_variant_new("(s)", "org.gtk.Notifications"), G_VARIANT_TYPE("(b)"), G_DBUS_CALL_FLAGS_NONE,
      2000, cancel_, &OnGtkNotificationsOwner, new MarkupProbe{alive_, &body_markup_, cancel_});
}

std::string ShellWindow::NotificationText(const std::string& text) const {
  return body_markup_ ? Escaped(text) : text;
}

void ShellWindow::Withdraw(const std::string& key) {
  auto it = notified_.find(key);
  if (it == notified_.end()) return;
  const gint64 age = g_get_monotonic_time() - it->second;
  notified_.erase(it);
  if (age >= kWithdrawAfterUs) {
    g_application_withdraw_notification(G_APPLICATION(app_), key.c_str());
    return;
  }
  // GLib can take a notification back only once the server has answered its Notify with
  // an id; withdrawn sooner, it would stay on screen. A request decided at once (a feed
  // replaying "asked" then "decided") is taken back a moment later, unless it is pending
  // again by then.
  struct Later {
    ShellWindow* self;
    std::shared_ptr<bool> alive;
    std::string key;
  };
  g_timeout_add_full(
      G_PRIORITY_DEFAULT, static_cast<guint>((kWithdrawAfterUs - age) / 1000) + 1,
      [](gpointer data) -> gboolean {
        auto* l = static_cast<Later*>(data);
        if (*l->alive && l->self->notified_.count(l->key) == 0) {
          g_application_withdraw_notification(G_APPLICATION(l->self->app_), l->key.c_str());
        }
        return G_SOURCE_REMOVE;
      },
      new Later{this, alive_, key}, [](gpointer data) { delete static_cast<Later*>(data); });
}

void ShellWindow::WithdrawAll() {
  std::vector<std::string> keys;
  for (const auto& [key, sent] : notified_) keys.push_back(key);
  for (const std::string& key : keys) Withdraw(key);
}

void ShellWindow::RequestLogin(const char* why) {
  if (login_in_flight_ || quitting_) return;
  // Spaced out, and more so while logins keep failing (a login page that comes back, an
  // agentd that refuses codes): 5 s, 10 s, … up to a minute. A request that comes too
  // soon is made when its time comes, not dropped.
  const gint64 interval =
      std::min<gint64>(kLoginIntervalUs << std::min(login_attempts_, 4), 60 * G_USEC_PER_SEC);
  const gint64 now = g_get_monotonic_time();
  if (last_login_request_ != 0 && now - last_login_request_ < interval) {
    if (login_retry_timer_ == 0) {
      login_retry_reason_ = why;
      login_retry_timer_ = g_timeout_add(
          static_cast<guint>((interval - (now - last_login_request_)) / 1000) + 1,
          [](gpointer data) -> gboolean {
            auto* self = static_cast<ShellWindow*>(data);
            self->login_retry_timer_ = 0;
            if (!self->ui_ready_ && self->status_.running) {
              self->RequestLogin(self->login_retry_reason_.c_str());
            }
            return G_SOURCE_REMOVE;
          },
          this);
    }
    return;
  }
  last_login_request_ = now;
  ++login_attempts_;
  Say(absl::StrCat("logging in again: ", why));
  link_->RequestLogin();
}

void ShellWindow::OnStatus(const DaemonStatus& s) {
  const bool was_running = have_status_ && status_.running;
  const bool new_pid = !was_running || s.pid != status_.pid;
  // What was pending belonged to that agentd: the new one lists its own again.
  if (was_running && (!s.running || s.pid != status_.pid)) WithdrawAll();
  have_status_ = true;
  status_ = s;
  gtk_widget_set_visible(start_button_, !s.running);
  gtk_widget_set_visible(stop_button_, s.running);
  if (!s.running) {
    SetHeader(s.untrusted ? "agentd — socket not trusted" : "agentd — not running", s.reason);
    if (was_running) {
      Say(absl::StrCat("agentd stopped answering: ", s.reason));
    } else if (!autostart_done_) {
      Say(absl::StrCat("agentd is not running: ", s.reason));
    }
    if (s.untrusted) {
      // Someone else's socket may stand where agentd's should: starting agentd would only
      // hide that. The person decides.
      autostart_done_ = true;
      if (starting_) OnStartTimeout();
      ShowPage("agentd's socket is not to be trusted", s.reason);
      return;
    }
    // A loaded UI stays (it shows its own connection state and picks up again when
    // agentd answers): a stall of a few seconds must not throw away what a person was
    // doing in it.
    if (!starting_ && !ui_loading_) {
      ShowPage("agentd is not running",
               absl::StrCat(s.reason, ". Start it with the button above."));
    }
    if (options_.autostart && !autostart_done_) {
      autostart_done_ = true;
      StartDaemon();
    }
    return;
  }
  autostart_done_ = true;
  if (starting_) {
    starting_ = false;
    if (start_timer_ != 0) g_source_remove(start_timer_);
    start_timer_ = 0;
  }
  SetHeader("agentd — running",
            absl::StrCat(s.state, " · pid ", s.pid, " · ", s.version, " · ",
                         Plural(s.agents, "agent"), " · ", Plural(s.active_goals, "active goal")));
  if (new_pid) {
    Say(absl::StrCat("agentd is running (pid ", s.pid, ", version ", s.version, ") on ",
                     options_.socket));
  }
  if (s.http.empty()) {
    if (ui_loading_ || !was_running) {
      ShowPage("agentd serves no web UI",
               "Its HTTP listener is off (server.http in its configuration, or --http \"\"). "
               "agentctl works over the socket.");
    }
    return;
  }
  if (!s.login_error.empty()) {
    Say(absl::StrCat("could not log in: ", s.login_error));
    ShowPage("Could not log in to agentd", s.login_error);
    RequestLogin("the last login failed");  // later, spaced out
    return;
  }
  if (!s.login_url.empty()) {
    LogIn(s.login_url);
  } else if (!ui_loading_ && !login_in_flight_) {
    // Running, but the view shows a status page (agentd stalled for a moment, or a
    // login failed): log in again.
    RequestLogin("the view shows no UI");
  }
}

void ShellWindow::LogIn(const std::string& login_url) {
  // The shell redeems the one-time link itself and keeps the cookie agentd sets; the view
  // never loads the link, so the code is in no history, and no token is anywhere.
  std::string base = BaseOf(login_url);
  SoupMessage* msg = base.empty() ? nullptr : soup_message_new("GET", login_url.c_str());
  if (msg == nullptr) {
    ShowPage("Could not log in to agentd", "agentd gave a login link the shell cannot read.");
    return;
  }
  base_url_ = base;
  const uint64_t generation = ++login_generation_;
  login_in_flight_ = true;
  SoupSession* session = soup_session_new_with_options("proxy-resolver", nullptr, nullptr);
  soup_message_add_flags(msg, SOUP_MESSAGE_NO_REDIRECT);
  struct Pending {
    ShellWindow* self;
    SoupMessage* msg;
    uint64_t generation;
  };
  soup_session_send_and_read_async(
      session, msg, G_PRIORITY_DEFAULT, cancel_,
      [](GObject* source, GAsyncResult* result, gpointer data) {
        std::unique_ptr<Pending> p(static_cast<Pending*>(data));
        GError* error = nullptr;
        GBytes* body = soup_session_send_and_read_finish(SOUP_SESSION(source), result, &error);
        if (body != nullptr) g_bytes_unref(body);
        bool cancelled = g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
        std::string failure;
        GSList* cookies = nullptr;
        if (error != nullptr) {
          failure = error->message;
          g_error_free(error);
        } else if (soup_message_get_status(p->msg) != SOUP_STATUS_SEE_OTHER) {
          failure = absl::StrCat("the login link answered HTTP ", soup_message_get_status(p->msg));
        } else {
          cookies = soup_cookies_from_response(p->msg);
          if (cookies == nullptr) failure = "the login link set no session cookie";
        }
        g_object_unref(p->msg);
        g_object_unref(source);
        ShellWindow* self = p->self;
        // Cancelled: the window is gone. Superseded: a later login (a new agentd) owns
        // the view now, and this one's answer, good or bad, is stale.
        if (cancelled || p->generation != self->login_generation_) {
          soup_cookies_free(cookies);
          return;
        }
        if (!failure.empty()) {
          self->login_in_flight_ = false;
          self->Say(absl::StrCat("could not log in: ", failure));
          self->ShowPage("Could not log in to agentd", failure);
          self->RequestLogin("the last login failed");  // later, spaced out
          return;
        }
        WebKitCookieManager* jar = webkit_website_data_manager_get_cookie_manager(
            webkit_web_context_get_website_data_manager(self->web_context_));
        // The view loads once the jar holds every cookie (one, agentd's session).
        auto left = std::make_shared<int>(static_cast<int>(g_slist_length(cookies)));
        struct Added {
          ShellWindow* self;
          std::shared_ptr<int> left;
          uint64_t generation;
        };
        for (GSList* c = cookies; c != nullptr; c = c->next) {
          webkit_cookie_manager_add_cookie(
              jar, static_cast<SoupCookie*>(c->data), self->cancel_,
              [](GObject* src, GAsyncResult* res, gpointer d) {
                std::unique_ptr<Added> a(static_cast<Added*>(d));
                GError* e = nullptr;
                webkit_cookie_manager_add_cookie_finish(WEBKIT_COOKIE_MANAGER(src), res, &e);
                bool gone = e != nullptr && g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED);
                if (e != nullptr) g_error_free(e);
                if (--*a->left > 0 || gone || a->generation != a->self->login_generation_) {
                  return;
                }
                a->self->login_in_flight_ = false;
                a->self->Say(absl::StrCat("logged in to ", a->self->base_url_));
                a->self->LoadUi();
              },
              new Added{self, left, p->generation});
        }
        soup_cookies_free(cookies);
      },
      new Pending{this, msg, generation});
}

void ShellWindow::LoadUi() {
  ui_loading_ = true;
  ui_ready_ = false;
  std::string uri = absl::StrCat(base_url_, "/#/overview");
  webkit_web_view_load_uri(view_, uri.c_str());
}

void ShellWindow::Navigate(const std::string& script) {
  Present();
  if (!ui_ready_) {
    pending_script_ = script;  // run once the UI is ready
    return;
  }
  webkit_web_view_evaluate_javascript(view_, script.c_str(), -1, nullptr, nullptr, nullptr, nullptr,
                                      nullptr);
}

void ShellWindow::OpenConsent(const std::string& id) {
  if (quitting_) return;
  // The consent dialog is shown over whichever view is open; ?consent= picks the
  // request, and a counter makes each opening a new address (the same request opened
  // twice is brought to the front twice). The id goes in as a JSON string, so it cannot
  // be read as script.
  Say(absl::StrCat("opening consent request ", Shown(id)));
  Navigate(
      absl::StrCat("(function(id,n){var v=(location.hash.split('?')[0]||'#/overview');"
                   "location.hash=v+'?consent='+encodeURIComponent(id)+'&n='+n;})(",
                   nlohmann::json(ValidUtf8(id)).dump(), ",", ++opened_, ");"));
}

void ShellWindow::OpenPlan(const std::string& id) {
  if (quitting_) return;
  Say(absl::StrCat("opening plan ", Shown(id)));
  Navigate(absl::StrCat("location.hash='#/plans/'+encodeURIComponent(",
                        nlohmann::json(ValidUtf8(id)).dump(), ");"));
}

void ShellWindow::OnConsent(const v1::ConsentRequest& c) {
  std::string key = absl::StrCat("consent-", c.id());
  if (c.status() != v1::CONSENT_STATUS_PENDING) return Withdraw(key);
  if (!notified_.emplace(key, g_get_monotonic_time()).second) return;
  GNotification* n = g_notification_new("agentd: an agent asks for permission");
  std::string body = absl::StrCat(Shown(c.summary()), "\n", Shown(c.agent_id()), " on task ",
                                  Shown(c.task_id()), " (goal ", Shown(c.goal_id()), ")");
  g_notification_set_body(n, NotificationText(body).c_str());
  g_notification_set_priority(n, G_NOTIFICATION_PRIORITY_HIGH);
  g_notification_set_default_action_and_target(n, "app.open-consent", "s", c.id().c_str());
  g_notification_add_button_with_target(n, "Review", "app.open-consent", "s", c.id().c_str());
  g_application_send_notification(G_APPLICATION(app_), key.c_str(), n);
  g_object_unref(n);
  Say(absl::StrCat("notified: consent request ", Shown(c.id()), ": ", Shown(c.summary())));
}

void ShellWindow::OnPlan(const v1::Plan& p) {
  std::string key = absl::StrCat("plan-", p.id());
  if (p.status() != v1::PLAN_STATUS_PROPOSED) return Withdraw(key);
  if (!notified_.emplace(key, g_get_monotonic_time()).second) return;
  GNotification* n = g_notification_new("agentd: a plan awaits approval");
  std::string body =
      absl::StrCat("Plan ", Shown(p.id()), " for goal ", Shown(p.goal_id()), ", ",
                   Plural(p.steps_size(), "step"),
                   p.summary().empty() ? "" : absl::StrCat(": ", Shown(p.summary())));
  g_notification_set_body(n, NotificationText(body).c_str());
  g_notification_set_default_action_and_target(n, "app.open-plan", "s", p.id().c_str());
  g_notification_add_button_with_target(n, "Review", "app.open-plan", "s", p.id().c_str());
  g_application_send_notification(G_APPLICATION(app_), key.c_str(), n);
  g_object_unref(n);
  Say(absl::StrCat("notified: plan ", Shown(p.id()), " awaits approval"));
}

void ShellWindow::StartDaemon() {
  if (quitting_ || starting_ || (have_status_ && status_.running)) return;
  starting_ = true;
  SetHeader("agentd — starting", absl::StrCat("on ", options_.socket));
  ShowPage("Starting agentd…", "");
  control_.Start([this](absl::StatusOr<std::string> r) {
    if (!starting_) return;  // it answered (or was declared failed) meanwhile
    if (!r.ok()) {
      starting_ = false;
      Say(std::string(r.status().message()));
      SetHeader("agentd — not running", std::string(r.status().message()));
      ShowPage("agentd did not start", std::string(r.status().message()));
      return;
    }
    Say(*r);
    if (start_timer_ != 0) g_source_remove(start_timer_);
    start_timer_ = g_timeout_add_seconds(
        kStartTimeoutSeconds,
        [](gpointer self) -> gboolean {
          static_cast<ShellWindow*>(self)->start_timer_ = 0;
          static_cast<ShellWindow*>(self)->OnStartTimeout();
          return G_SOURCE_REMOVE;
        },
        this);
    link_->Poke();
  });
}

void ShellWindow::OnStartTimeout() {
  if (!starting_) return;
  starting_ = false;
  if (start_timer_ != 0) g_source_remove(start_timer_);
  start_timer_ = 0;
  std::string why = absl::StrCat(
      "agentd did not answer on ", options_.socket, " within ", kStartTimeoutSeconds,
      " s. Its log: journalctl --user -u agentd, or this program's output for a child.");
  Say(why);
  SetHeader("agentd — not running", why);
  ShowPage("agentd did not come up", why);
}

void ShellWindow::StopDaemon() {
  if (!have_status_ || !status_.running) return;
  control_.Stop([this](absl::StatusOr<std::string> r) {
    Say(r.ok() ? *r : std::string(r.status().message()));
    if (!r.ok()) SetHeader("agentd — running", std::string(r.status().message()));
    link_->Poke();
  });
}

void ShellWindow::Quit() {
  if (quitting_) return;
  quitting_ = true;
  GApplication* app = G_APPLICATION(app_);
  if (!control_.has_child()) return g_application_quit(app);
  // A child agentd ends with the shell: it is asked to stop, and the shell leaves once it
  // has (it drains its agents first), killing it after kQuitGraceSeconds at the latest.
  Say("stopping the shell's agentd before leaving");
  gtk_widget_hide(window_);
  g_application_hold(app);
  control_.Release(
      [app] {
        g_application_release(app);
        g_application_quit(app);
      },
      absl::Seconds(kQuitGraceSeconds));
}

bool ShellWindow::IsOwnOrigin(const std::string& uri) const {
  if (base_url_.empty()) return false;
  std::optional<Origin> a = OriginOf(uri), b = OriginOf(base_url_);
  return a && b && *a == *b;
}

gboolean ShellWindow::OnDelete(GtkWidget*, GdkEvent*, gpointer self) {
  static_cast<ShellWindow*>(self)->Quit();
  return TRUE;  // Quit() decides when the window goes
}

gboolean ShellWindow::OnDecidePolicy(WebKitWebView*, WebKitPolicyDecision* decision,
                                     WebKitPolicyDecisionType type, gpointer data) {
  auto* self = static_cast<ShellWindow*>(data);
  if (type != WEBKIT_POLICY_DECISION_TYPE_NAVIGATION_ACTION &&
      type != WEBKIT_POLICY_DECISION_TYPE_NEW_WINDOW_ACTION) {
    return FALSE;
  }
  WebKitNavigationAction* action = webkit_navigation_policy_decision_get_navigation_action(
      WEBKIT_NAVIGATION_POLICY_DECISION(decision));
  const char* uri = webkit_uri_request_get_uri(webkit_navigation_action_get_request(action));
  std::string target = uri != nullptr ? uri : "";
  // The shell's own status pages (about:blank) and agentd's origin stay in the view; a
  // new window on agentd's origin opens in the view too.
  const bool own = target == "about:blank" || self->IsOwnOrigin(target);
  if (own) {
    if (type == WEBKIT_POLICY_DECISION_TYPE_NAVIGATION_ACTION) return FALSE;
    webkit_policy_decision_ignore(decision);
    webkit_web_view_load_uri(self->view_, target.c_str());
    return TRUE;
  }
  webkit_policy_decision_ignore(decision);
  // Anything else goes to the user's browser (never with the view's cookie), and only a
  // link a person clicked: a page cannot send the desktop to a site by itself.
  const bool clicked =
      webkit_navigation_action_get_navigation_type(action) == WEBKIT_NAVIGATION_TYPE_LINK_CLICKED &&
      webkit_navigation_action_is_user_gesture(action);
  if (clicked && (absl::StartsWith(target, "http://") || absl::StartsWith(target, "https://"))) {
    GError* error = nullptr;
    if (!g_app_info_launch_default_for_uri(target.c_str(), nullptr, &error)) {
      self->Say(absl::StrCat("could not open ", Shown(target), ": ", error->message));
      g_error_free(error);
    }
  } else {
    self->Say(absl::StrCat("refused to leave agentd's UI for ", Shown(Loggable(target))));
  }
  return TRUE;
}

void ShellWindow::OnTitle(GObject*, GParamSpec*, gpointer data) {
  auto* self = static_cast<ShellWindow*>(data);
  const char* t = webkit_web_view_get_title(self->view_);
  const char* u = webkit_web_view_get_uri(self->view_);
  std::string title = t != nullptr ? t : "";
  if (title.empty()) return;
  self->Say(absl::StrCat("page: ", Shown(title), " at ", Shown(Loggable(u != nullptr ? u : ""))));
  if (!self->ui_loading_) return;
  if (title == kLoginTitle) {
    // The UI's session is gone (expired, revoked, or agentd forgot it): log in again.
    self->ui_ready_ = false;
    self->RequestLogin("the UI's session ended");
    return;
  }
  // The UI names its view in the title once a call with its session has succeeded: a
  // navigation that waited for it can run now.
  if (absl::StartsWith(title, kTitlePrefix)) {
    self->ui_ready_ = true;
    self->login_attempts_ = 0;
    if (!self->pending_script_.empty()) {
      std::string script = std::move(self->pending_script_);
      self->pending_script_.clear();
      webkit_web_view_evaluate_javascript(self->view_, script.c_str(), -1, nullptr, nullptr,
                                          nullptr, nullptr, nullptr);
    }
  }
}

void ShellWindow::OnUri(GObject*, GParamSpec*, gpointer data) {
  auto* self = static_cast<ShellWindow*>(data);
  const char* u = webkit_web_view_get_uri(self->view_);
  const char* t = webkit_web_view_get_title(self->view_);
  if (u == nullptr || *u == '\0') return;
  self->Say(absl::StrCat("page: ", Shown(t != nullptr ? t : ""), " at ", Shown(Loggable(u))));
}

}  // namespace agentd::desktop
