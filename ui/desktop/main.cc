// agentd-desktop: agentd's web UI in a desktop window, with the daemon's state in its
// header, Start and Stop, and a desktop notification for each consent request and each
// plan awaiting approval (ui/desktop/shell_window.h says what it does and why).
#include <glib-unix.h>
#include <gtk/gtk.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "common/paths.h"
#include "ui/desktop/shell_window.h"

namespace {

constexpr char kAppId[] = "agentd.Desktop";

constexpr char kUsage[] = R"(Usage: agentd-desktop [OPTIONS]

agentd's web UI in a desktop window. It finds the user's agentd by its unix socket and
starts it when none runs: with `systemctl --user start agentd.service` when that unit is
installed (agentd then outlives the window), else as the window's child (stopped when
the window closes). It logs the UI in by itself: no token goes into a URL or a command
line. Consent requests and plans awaiting approval raise desktop notifications; clicking
one opens it.

Options:
  --socket PATH   agentd's unix socket (default: $AGENTD_SOCKET, else
                  $XDG_RUNTIME_DIR/agentd/agentd.sock)
  --config FILE   configuration for an agentd started as the window's child
  --agentd PATH   the agentd binary for a child (default: the one installed beside this
                  program, else agentd on PATH)
  --no-start      do not start agentd at launch when none runs
  --help          print this and exit
  --version       print the version and exit

Actions (also over D-Bus, as the application agentd.Desktop's): app.start, app.stop,
app.quit, app.open-consent ID, app.open-plan ID.
)";

struct App {
  GApplication* gapp = nullptr;
  agentd::desktop::ShellOptions options;
  std::unique_ptr<agentd::desktop::ShellWindow> shell;
};

void AddAction(GtkApplication* gtk_app, const char* name, const GVariantType* param,
               void (*run)(App*, GVariant*), App* app) {
  GSimpleAction* action = g_simple_action_new(name, param);
  struct Bound {
    App* app;
    void (*run)(App*, GVariant*);
  };
  g_signal_connect_data(
      action, "activate", G_CALLBACK(+[](GSimpleAction*, GVariant* p, gpointer data) {
        auto* b = static_cast<Bound*>(data);
        if (b->app->shell) b->run(b->app, p);
      }),
      new Bound{app, run}, [](gpointer data, GClosure*) { delete static_cast<Bound*>(data); },
      GConnectFlags(0));
  g_action_map_add_action(G_ACTION_MAP(gtk_app), G_ACTION(action));
  g_object_unref(action);
}

int UsageError(const std::string& what) {
  std::fprintf(stderr, "agentd-desktop: %s\n(agentd-desktop --help lists the options)\n",
               what.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  App app;
  app.options.socket = agentd::DefaultSocketPath();
  if (const char* env = std::getenv("AGENTD_SOCKET"); env != nullptr && *env != '\0') {
    app.options.socket = env;
  }
  std::string config;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    if (size_t eq = arg.find('='); eq != std::string::npos && arg.rfind("--", 0) == 0) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
      has_value = true;
    }
    auto take = [&](std::string* out) -> bool {
      if (has_value) {
        *out = value;
      } else if (i + 1 < argc) {
        *out = argv[++i];
      } else {
        return false;
      }
      return !out->empty();
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--version") {
      std::printf("agentd-desktop %s\n", AGENTD_VERSION);
      return 0;
    } else if (arg == "--no-start") {
      app.options.autostart = false;
    } else if (arg == "--socket") {
      if (!take(&app.options.socket)) return UsageError("--socket needs a path");
    } else if (arg == "--config") {
      if (!take(&config)) return UsageError("--config needs a file name");
    } else if (arg == "--agentd") {
      if (!take(&app.options.control.agentd)) return UsageError("--agentd needs a path");
    } else {
      return UsageError("unknown option \"" + arg + "\"");
    }
  }
  // A child agentd listens where the shell looks, whatever its configuration says.
  if (!config.empty()) {
    app.options.control.agentd_args.push_back("--config");
    app.options.control.agentd_args.push_back(config);
  }
  app.options.control.agentd_args.push_back("--socket");
  app.options.control.agentd_args.push_back(app.options.socket);
  app.options.control.socket = app.options.socket;
  // systemd's user unit runs the user's own agentd (the default socket, its own
  // configuration): only a shell looking for that one may start it there.
  app.options.control.use_systemd = config.empty() && app.options.control.agentd.empty() &&
                                    app.options.socket == agentd::DefaultSocketPath();

  GtkApplication* gtk_app = gtk_application_new(kAppId, G_APPLICATION_DEFAULT_FLAGS);
  app.gapp = G_APPLICATION(gtk_app);
  g_set_application_name("agentd");
  AddAction(
      gtk_app, "start", nullptr, [](App* a, GVariant*) { a->shell->StartDaemon(); }, &app);
  AddAction(
      gtk_app, "stop", nullptr, [](App* a, GVariant*) { a->shell->StopDaemon(); }, &app);
  AddAction(
      gtk_app, "quit", nullptr, [](App* a, GVariant*) { a->shell->Quit(); }, &app);
  AddAction(
      gtk_app, "open-consent", G_VARIANT_TYPE_STRING,
      [](App* a, GVariant* p) { a->shell->OpenConsent(g_variant_get_string(p, nullptr)); }, &app);
  AddAction(
      gtk_app, "open-plan", G_VARIANT_TYPE_STRING,
      [](App* a, GVariant* p) { a->shell->OpenPlan(g_variant_get_string(p, nullptr)); }, &app);
  const char* quit_accels[] = {"<Control>q", nullptr};
  gtk_application_set_accels_for_action(gtk_app, "app.quit", quit_accels);

  g_signal_connect(gtk_app, "activate", G_CALLBACK(+[](GtkApplication* gapp, gpointer data) {
                     auto* a = static_cast<App*>(data);
                     if (!a->shell) {
                       a->shell = std::make_unique<agentd::desktop::ShellWindow>(gapp, a->options);
                     }
                     a->shell->Present();
                   }),
                   &app);
  // SIGTERM and SIGINT close the window as its close button does.
  auto on_signal = +[](gpointer data) -> gboolean {
    auto* a = static_cast<App*>(data);
    if (a->shell) {
      a->shell->Quit();
    } else {
      g_application_quit(a->gapp);
    }
    return G_SOURCE_CONTINUE;
  };
  g_unix_signal_add(SIGTERM, on_signal, &app);
  g_unix_signal_add(SIGINT, on_signal, &app);

  char* run_argv[] = {argv[0], nullptr};
  int status = g_application_run(G_APPLICATION(gtk_app), 1, run_argv);
  app.shell.reset();
  g_object_unref(gtk_app);
  return status;
}
