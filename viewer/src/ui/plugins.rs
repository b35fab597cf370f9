//! The session panel: the connection, and the plugin list (the "stacks menu"): every plugin
//! the room may use, grouped by category, with its description and its instance's status
//! (running, crashed with the reason, stopped and why), and the actions on it: Activate, Run,
//! Advanced settings, Deactivate, and its integrations (a plugin declaring
//! `minimization.start` gets a "Minimize" button, `structure.load` a path field and "Load").
//!
//! The instances' menus are drawn in windows, one per menu, by [`super::plugin_menu::MenuView`]
//! (one view per instance, [`SessionUi::menu_windows`]): a menu's window opens when the menu
//! appears or the plugin shows it again, the user may close it (and reopen it from the plugin's
//! row), and every action in it becomes a [`Command::Menu`] for the instance.
//!
//! Like the other panels it only reads its state and returns [`Command`]s; the window sends
//! them to the room (`crate::live`). Room events update it through [`SessionUi::on_event`],
//! which also returns the notification to show as a toast.

use std::collections::BTreeMap;

use molstream_net::api::Level as NetLevel;
use molstream_net::client::{ClientEvent, RoomView};
use molstream_net::menu::{MenuId, Menus};
use molstream_net::proto::{InstanceId, PluginId, PluginInfo, StopReason};

use super::Level;
use super::plugin_menu::MenuView;
use crate::session::Command;

/// The connection as the panel shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Connection {
    /// Joining (the relay's address or "embedded relay").
    Connecting(String),
    /// In the room.
    Connected {
        /// The relay's address.
        relay: String,
        /// Whether it is the embedded relay.
        embedded: bool,
    },
    /// Lost; the client is reconnecting.
    Lost(String),
    /// Could not start or ended for good.
    Failed(String),
}

/// What a plugin is doing in the room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PluginStatus {
    /// Not started in this room.
    Idle,
    /// An instance runs.
    Running(InstanceId),
    /// Its last instance stopped.
    Stopped(StopReason),
}

impl PluginStatus {
    /// One line: `running`, `crashed: <reason>`, `stopped (deactivated)`, …
    #[must_use]
    pub fn text(&self) -> String {
        match self {
            Self::Idle => "not active".into(),
            Self::Running(_) => "running".into(),
            Self::Stopped(StopReason::Crashed { message }) => format!("crashed: {message}"),
            Self::Stopped(StopReason::Deactivated { .. }) => "stopped (deactivated)".into(),
            Self::Stopped(StopReason::PresenterLeft) => "stopped (the presenter left)".into(),
            Self::Stopped(StopReason::RoomEmpty) => "stopped (the room emptied)".into(),
            Self::Stopped(StopReason::PluginStopped) => "stopped (the plugin disconnected)".into(),
            Self::Stopped(StopReason::Ended) => "ended".into(),
        }
    }
}

/// The label of an integration's button: `Minimize` for `minimization.start`, …; the hook's
/// name for others.
#[must_use]
pub fn integration_label(name: &str) -> String {
    match name {
        "minimization.start" => "Minimize".into(),
        "minimization.stop" => "Stop minimizing".into(),
        "structure.load" => "Load file".into(),
        other => other.to_owned(),
    }
}

/// Whether an integration takes a typed argument (a field is shown next to its button).
#[must_use]
pub fn integration_takes_text(name: &str) -> bool {
    !matches!(name, "minimization.start" | "minimization.stop")
}

/// State of the session panel between frames.
#[derive(Debug)]
pub struct SessionUi {
    /// The connection.
    pub connection: Connection,
    /// The room as last reported.
    pub view: RoomView,
    /// Why each plugin's last instance stopped.
    pub stopped: BTreeMap<PluginId, StopReason>,
    /// The menus of each instance of the room.
    pub menus: BTreeMap<InstanceId, Menus>,
    /// Text typed in integration fields, by instance and hook.
    pub args: BTreeMap<(InstanceId, String), String>,
    /// Whether each menu's window is open (and whether the plugin showed it when last seen).
    pub open: BTreeMap<(InstanceId, MenuId), MenuWindow>,
    /// The connection as first joined (restored when the client joins again).
    pub joined: Option<Connection>,
    views: BTreeMap<InstanceId, MenuView>,
}

/// A menu's window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MenuWindow {
    /// Shown (the user may close it).
    pub open: bool,
    /// The menu's `enabled` flag when last seen: a menu the plugin shows again opens again.
    pub enabled: bool,
}

impl SessionUi {
    /// A panel joining `target` (shown while connecting).
    #[must_use]
    pub fn new(target: impl Into<String>) -> Self {
        Self {
            connection: Connection::Connecting(target.into()),
            view: RoomView::default(),
            stopped: BTreeMap::new(),
            menus: BTreeMap::new(),
            args: BTreeMap::new(),
            open: BTreeMap::new(),
            joined: None,
            views: BTreeMap::new(),
        }
    }

    /// An instance's menus as they are now: new menus and menus the plugin shows again open
    /// their windows; removed menus are forgotten.
    pub fn set_menus(&mut self, instance: InstanceId, menus: Menus) {
        let ids: Vec<MenuId> = menus.iter().map(|m| m.id).collect();
        for m in menus.iter() {
            let w = self.open.entry((instance, m.id)).or_default();
            if m.enabled && !w.enabled {
                w.open = true;
            }
            w.enabled = m.enabled;
        }
        let gone: Vec<(InstanceId, MenuId)> =
            self.open.keys().filter(|(i, m)| *i == instance && !ids.contains(m)).copied().collect();
        for key in gone {
            self.open.remove(&key);
            if let Some(v) = self.views.get_mut(&instance) {
                v.forget(key.1);
            }
        }
        if menus.is_empty() {
            self.menus.remove(&instance);
            self.views.remove(&instance);
        } else {
            self.menus.insert(instance, menus);
        }
    }

    /// Draws one window per open menu of every instance, first placed in `area` (the 3D view,
    /// not over the panels), cascading; returns the users' actions in them as [`Command::Menu`]
    /// (opening and closing a window included, see [`MenuView::set_open`]). A menu the plugin
    /// hides is not drawn.
    pub fn menu_windows(&mut self, ctx: &egui::Context, area: egui::Rect) -> Vec<Command> {
        let mut out = Vec::new();
        let mut k = 0.0;
        for (instance, menus) in &self.menus {
            let view = self.views.entry(*instance).or_default();
            for menu in menus.iter().filter(|m| m.enabled) {
                let w = self.open.entry((*instance, menu.id)).or_default();
                let mut events: Vec<_> = view.set_open(menu.id, w.open).into_iter().collect();
                if w.open {
                    let at = area.left_top() + egui::vec2(16.0, 16.0) + egui::vec2(24.0, 24.0) * k;
                    let id = egui::Id::unique(("molstream-plugin-menu", instance.0, menu.id.0));
                    let shown = egui::Window::new(menu.title.as_str())
                        .id(id)
                        .default_pos(at)
                        .open(&mut w.open)
                        .resizable(false)
                        .show(ctx, |ui| view.show(ui, menu));
                    events.extend(shown.and_then(|r| r.inner).unwrap_or_default());
                    events.extend(view.set_open(menu.id, w.open));
                    k += 1.0;
                }
                out.extend(events.into_iter().map(|event| Command::Menu { instance: *instance, event }));
            }
        }
        out
    }

    /// The running instance of a plugin in the room.
    #[must_use]
    pub fn instance_of(&self, plugin: PluginId) -> Option<InstanceId> {
        self.view.instances.iter().find(|(_, p)| **p == plugin).map(|(i, _)| *i)
    }

    /// The plugin an instance runs.
    #[must_use]
    pub fn plugin_of(&self, instance: InstanceId) -> Option<&PluginInfo> {
        let id = self.view.instances.get(&instance)?;
        self.view.plugins.iter().find(|p| p.id == *id)
    }

    /// A plugin's status.
    #[must_use]
    pub fn status(&self, plugin: PluginId) -> PluginStatus {
        match (self.instance_of(plugin), self.stopped.get(&plugin)) {
            (Some(i), _) => PluginStatus::Running(i),
            (None, Some(r)) => PluginStatus::Stopped(r.clone()),
            (None, None) => PluginStatus::Idle,
        }
    }

    /// Takes a room event into account (before the room view that follows it); returns the
    /// toast to raise, if any.
    pub fn on_event(&mut self, event: &ClientEvent) -> Option<(Level, String)> {
        match event {
            ClientEvent::Notification { instance, level, text } => {
                let from = self.plugin_of(*instance).map_or_else(|| instance.to_string(), |p| p.meta.name.clone());
                let level = match level {
                    NetLevel::Info => Level::Info,
                    NetLevel::Success => Level::Success,
                    NetLevel::Warning => Level::Warning,
                    NetLevel::Error => Level::Error,
                };
                Some((level, format!("{from}: {text}")))
            }
            ClientEvent::InstanceStarted(info) => {
                self.stopped.remove(&info.plugin);
                self.view.instances.insert(info.id, info.plugin);
                None
            }
            ClientEvent::InstanceStopped { instance, reason } => {
                let name = self.plugin_of(*instance).map(|p| p.meta.name.clone());
                let plugin = self.view.instances.remove(instance);
                self.set_menus(*instance, Menus::default());
                if let Some(p) = plugin {
                    self.stopped.insert(p, reason.clone());
                }
                let name = name.unwrap_or_else(|| instance.to_string());
                match reason {
                    StopReason::Crashed { message } => Some((Level::Error, format!("{name} crashed: {message}"))),
                    StopReason::PluginStopped => {
                        Some((Level::Warning, format!("{name} stopped: the plugin disconnected")))
                    }
                    _ => None,
                }
            }
            ClientEvent::Plugins(plugins) => {
                self.view.plugins.clone_from(plugins);
                None
            }
            ClientEvent::Disconnected(reason) => {
                self.connection = Connection::Lost(reason.clone());
                Some((Level::Warning, format!("disconnected from the relay: {reason}")))
            }
            ClientEvent::Rejoined(view) => {
                if let Connection::Lost(_) = self.connection {
                    self.connection = self
                        .joined
                        .clone()
                        .unwrap_or(Connection::Connected { relay: "the relay".into(), embedded: false });
                }
                self.view = view.clone();
                self.menus.clear();
                self.views.clear();
                self.open.clear();
                Some((Level::Info, "joined the room again".into()))
            }
            _ => None,
        }
    }

    /// Draws the connection and the plugin list; returns the commands asked for.
    pub fn show(&mut self, ui: &mut egui::Ui) -> Vec<Command> {
        let mut out = Vec::new();
        match &self.connection {
            Connection::Connecting(t) => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(format!("joining {t}"));
                });
            }
            Connection::Connected { relay, embedded } => {
                let who = self.view.users.iter().find(|u| u.id == self.view.you).map_or("?", |u| u.name.as_str());
                let relay = if *embedded { format!("embedded relay {relay}") } else { format!("relay {relay}") };
                ui.label(format!("room {} as {who} · {relay}", self.view.room));
                ui.small(format!("{} user(s) in the room", self.view.users.len()));
            }
            Connection::Lost(r) => {
                ui.colored_label(egui::Color32::from_rgb(170, 120, 20), format!("reconnecting: {r}"));
            }
            Connection::Failed(r) => {
                ui.colored_label(egui::Color32::from_rgb(180, 40, 40), format!("no session: {r}"));
            }
        }
        let mut plugins = self.view.plugins.clone();
        plugins.sort_by(|a, b| (&a.meta.category, &a.meta.name).cmp(&(&b.meta.category, &b.meta.name)));
        if plugins.is_empty() && matches!(self.connection, Connection::Connected { .. }) {
            ui.small("no plugin is connected to the relay");
        }
        let mut category: Option<&str> = None;
        for p in &plugins {
            let c = if p.meta.category.is_empty() { "Other" } else { p.meta.category.as_str() };
            if category != Some(c) {
                ui.add_space(4.0);
                ui.weak(c);
                category = Some(c);
            }
            self.plugin_row(ui, p, &mut out);
        }
        out
    }

    fn plugin_row(&mut self, ui: &mut egui::Ui, p: &PluginInfo, out: &mut Vec<Command>) {
        let status = self.status(p.id);
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal(|ui| {
                ui.strong(&p.meta.name);
                let color = match &status {
                    PluginStatus::Running(_) => egui::Color32::from_rgb(30, 130, 60),
                    PluginStatus::Stopped(StopReason::Crashed { .. }) => egui::Color32::from_rgb(180, 40, 40),
                    _ => ui.visuals().weak_text_color(),
                };
                ui.colored_label(color, status.text());
            });
            if !p.meta.description.is_empty() {
                ui.small(&p.meta.description);
            }
            ui.horizontal(|ui| match status {
                PluginStatus::Running(i) => {
                    if ui.button("Run").clicked() {
                        out.push(Command::Run(i));
                    }
                    if p.meta.has_advanced_settings && ui.button("Advanced settings").clicked() {
                        out.push(Command::AdvancedSettings(i));
                    }
                    if ui.button("Deactivate").clicked() {
                        out.push(Command::Deactivate(i));
                    }
                }
                _ => {
                    if ui.button("Activate").clicked() {
                        out.push(Command::Activate(p.id));
                    }
                }
            });
            if let PluginStatus::Running(i) = status {
                for name in &p.meta.integrations {
                    self.integration(ui, i, name, out);
                }
                self.menu_buttons(ui, i);
            }
        });
    }

    /// A button per menu of the instance whose window is closed, to open it again.
    fn menu_buttons(&mut self, ui: &mut egui::Ui, instance: InstanceId) {
        let Some(menus) = self.menus.get(&instance) else { return };
        let closed: Vec<(MenuId, String)> = menus
            .iter()
            .filter(|m| m.enabled && !self.open.get(&(instance, m.id)).is_some_and(|w| w.open))
            .map(|m| (m.id, m.title.clone()))
            .collect();
        if closed.is_empty() {
            return;
        }
        ui.horizontal_wrapped(|ui| {
            ui.small("menus:");
            for (id, title) in closed {
                let title = if title.is_empty() { format!("menu {}", id.0) } else { title };
                if ui.button(title).on_hover_text("open the plugin's menu").clicked() {
                    self.open.entry((instance, id)).or_default().open = true;
                }
            }
        });
    }

    fn integration(&mut self, ui: &mut egui::Ui, instance: InstanceId, name: &str, out: &mut Vec<Command>) {
        ui.horizontal(|ui| {
            let mut args = Vec::new();
            if integration_takes_text(name) {
                let text = self.args.entry((instance, name.to_owned())).or_default();
                ui.add(egui::TextEdit::singleline(text).hint_text(name).desired_width(140.0));
                args = text.trim().as_bytes().to_vec();
            }
            if ui.button(integration_label(name)).on_hover_text(format!("integration {name}")).clicked() {
                out.push(Command::Integration { instance, name: name.to_owned(), args });
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use molstream_net::proto::{InstanceInfo, PluginMeta, User, UserId};

    use super::*;

    fn panel() -> SessionUi {
        let mut s = SessionUi::new("embedded relay");
        s.connection = Connection::Connected { relay: "127.0.0.1:1".into(), embedded: true };
        let meta = |name: &str, integrations: &[&str]| PluginMeta {
            name: name.into(),
            integrations: integrations.iter().map(|s| (*s).to_owned()).collect(),
            ..PluginMeta::default()
        };
        s.view = RoomView {
            room: "local".into(),
            you: UserId(1),
            presenter: UserId(1),
            users: vec![User { id: UserId(1), name: "ada".into() }],
            plugins: vec![
                PluginInfo { id: PluginId(1), host: "h".into(), meta: meta("Minimizer", &["minimization.start"]) },
                PluginInfo { id: PluginId(2), host: "h".into(), meta: meta("Loader", &[]) },
            ],
            instances: BTreeMap::new(),
        };
        s
    }

    #[test]
    fn statuses_follow_starts_stops_and_crashes() {
        let mut s = panel();
        assert_eq!(s.status(PluginId(1)), PluginStatus::Idle);
        s.on_event(&ClientEvent::InstanceStarted(InstanceInfo { id: InstanceId(7), plugin: PluginId(1) }));
        assert_eq!(s.status(PluginId(1)), PluginStatus::Running(InstanceId(7)));
        let toast = s.on_event(&ClientEvent::Notification {
            instance: InstanceId(7),
            level: NetLevel::Success,
            text: "done".into(),
        });
        assert_eq!(toast, Some((Level::Success, "Minimizer: done".into())));
        let crash = StopReason::Crashed { message: "index out of bounds".into() };
        let toast = s.on_event(&ClientEvent::InstanceStopped { instance: InstanceId(7), reason: crash });
        assert_eq!(toast, Some((Level::Error, "Minimizer crashed: index out of bounds".into())));
        assert_eq!(s.status(PluginId(1)).text(), "crashed: index out of bounds");
        s.on_event(&ClientEvent::InstanceStarted(InstanceInfo { id: InstanceId(8), plugin: PluginId(1) }));
        assert_eq!(s.status(PluginId(1)), PluginStatus::Running(InstanceId(8)));
        assert_eq!(integration_label("minimization.start"), "Minimize");
        assert_eq!(integration_label("x.y"), "x.y");
    }
}
