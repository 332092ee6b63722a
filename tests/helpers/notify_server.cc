// notify_server: a desktop notification service for the desktop shell's tests. It owns
// org.freedesktop.Notifications on the session bus (DBUS_SESSION_BUS_ADDRESS), says it
// reads markup in bodies (capability "body-markup"), and appends one JSON line per call
// to LOG:
//   {"event":"ready"}                                        once it owns the name
//   {"event":"Notify","id":N,"app_name":…,"summary":…,"body":…,"actions":[…]}
//   {"event":"CloseNotification","id":N}
// A person's click is the test's call of agentd.test.Clicker.Click(u id, s action) on the
// same object (gdbus call … --method agentd.test.Clicker.Click 1 default): the
// ActionInvoked signal, and {"event":"ActionInvoked","id":N,"action":…}.
//
//   notify_server LOG
#include <gio/gio.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "nlohmann/json.hpp"

namespace {

constexpr char kIntrospection[] = R"(<node>
  <interface name="org.freedesktop.Notifications">
    <method name="Notify">
      <arg type="s" name="app_name" direction="in"/>
      <arg type="u" name="replaces_id" direction="in"/>
      <arg type="s" name="app_icon" direction="in"/>
      <arg type="s" name="summary" direction="in"/>
      <arg type="s" name="body" direction="in"/>
      <arg type="as" name="actions" direction="in"/>
      <arg type="a{sv}" name="hints" direction="in"/>
      <arg type="i" name="expire_timeout" direction="in"/>
      <arg type="u" name="id" direction="out"/>
    </method>
    <method name="CloseNotification"><arg type="u" name="id" direction="in"/></method>
    <method name="GetCapabilities"><arg type="as" name="caps" direction="out"/></method>
    <method name="GetServerInformation">
      <arg type="s" name="name" direction="out"/><arg type="s" name="vendor" direction="out"/>
      <arg type="s" name="version" direction="out"/><arg type="s" name="spec" direction="out"/>
    </method>
    <signal name="NotificationClosed"><arg type="u"/><arg type="u"/></signal>
    <signal name="ActionInvoked"><arg type="u"/><arg type="s"/></signal>
  </interface>
  <interface name="agentd.test.Clicker">
    <method name="Click"><arg type="u" name="id" direction="in"/>
      <arg type="s" name="action" direction="in"/></method>
  </interface>
</node>)";

struct Server {
  std::string log;
  guint32 next_id = 1;
  GDBusConnection* bus = nullptr;
};

void Append(const Server& s, const nlohmann::json& line) {
  std::ofstream out(s.log, std::ios::app);
  out << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

void Emit(Server* s, const char* signal, GVariant* params) {
  g_dbus_connection_emit_signal(s->bus, nullptr, "/org/freedesktop/Notifications",
                                "org.freedesktop.Notifications", signal, params, nullptr);
}

void OnCall(GDBusConnection*, const gchar*, const gchar*, const gchar*, const gchar* method,
            GVariant* params, GDBusMethodInvocation* invocation, gpointer data) {
  auto* s = static_cast<Server*>(data);
  std::string m = method;
  if (m == "Notify") {
    const gchar *app, *icon, *summary, *body;
    guint32 replaces;
    GVariantIter* actions;
    GVariant* hints;
    gint32 expire;
    g_variant_get(params, "(&su&s&s&sas@a{sv}i)", &app, &replaces, &icon, &summary, &body, &actions,
                  &hints, &expire);
    nlohmann::json list = nlohmann::json::array();
    const gchar* a;
    while (g_variant_iter_next(actions, "&s", &a)) list.push_back(a);
    g_variant_iter_free(actions);
    g_variant_unref(hints);
    guint32 id = replaces != 0 ? replaces : s->next_id++;
    Append(*s, {{"event", "Notify"},
                {"id", id},
                {"app_name", app},
                {"summary", summary},
                {"body", body},
                {"actions", list}});
    g_dbus_method_invocation_return_value(invocation, g_variant_new("(u)", id));
  } else if (m == "Click") {
    guint32 id;
    const gchar* action;
    g_variant_get(params, "(u&s)", &id, &action);
    Append(*s, {{"event", "ActionInvoked"}, {"id", id}, {"action", action}});
    Emit(s, "ActionInvoked", g_variant_new("(us)", id, action));
    g_dbus_method_invocation_return_value(invocation, nullptr);
  } else if (m == "CloseNotification") {
    guint32 id;
    g_variant_get(params, "(u)", &id);
    Append(*s, {{"event", "CloseNotification"}, {"id", id}});
    g_dbus_method_invocation_return_value(invocation, nullptr);
    Emit(s, "NotificationClosed", g_variant_new("(uu)", id, 3u));
  } else if (m == "GetCapabilities") {
    // body-markup: bodies are read as markup, as many desktops' servers do; the shell
    // must escape what a model wrote.
    const gchar* caps[] = {"actions", "body", "body-markup", nullptr};
    g_dbus_method_invocation_return_value(invocation, g_variant_new("(^as)", caps));
  } else {
    g_dbus_method_invocation_return_value(
        invocation, g_variant_new("(ssss)", "notify_server", "agentd tests", "1", "1.2"));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: notify_server LOG\n");
    return 2;
  }
  Server server;
  server.log = argv[1];
  GError* error = nullptr;
  server.bus = g_bus_get_sync(G_BUS_TYPE_SESSION, nullptr, &error);
  if (server.bus == nullptr) {
    std::fprintf(stderr, "notify_server: no session bus: %s\n", error->message);
    return 1;
  }
  GDBusNodeInfo* node = g_dbus_node_info_new_for_xml(kIntrospection, nullptr);
  static const GDBusInterfaceVTable vtable = {OnCall, nullptr, nullptr, {nullptr}};
  for (int i = 0; i < 2; ++i) {
    if (g_dbus_connection_register_object(server.bus, "/org/freedesktop/Notifications",
                                          node->interfaces[i], &vtable, &server, nullptr,
                                          &error) == 0) {
      std::fprintf(stderr, "notify_server: %s\n", error->message);
      return 1;
    }
  }
  g_bus_own_name_on_connection(
      server.bus, "org.freedesktop.Notifications", G_BUS_NAME_OWNER_FLAGS_NONE,
      [](GDBusConnection*, const gchar*, gpointer data) {
        Append(*static_cast<Server*>(data), {{"event", "ready"}});
      },
      [](GDBusConnection*, const gchar* name, gpointer) {
        std::fprintf(stderr, "notify_server: could not own %s\n", name);
        std::exit(1);
      },
      &server, nullptr);
  GMainLoop* loop = g_main_loop_new(nullptr, FALSE);
  g_main_loop_run(loop);
  return 0;
}
