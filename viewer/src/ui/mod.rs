//! The window's egui panels: the session (connection and plugin list, [`plugins`], when the
//! window is in a room), files (open by path, drag and drop), the global style, display
//! settings, the workspace tree ([`tree`]), the stats panel with plots ([`stats`]),
//! screenshots and notifications ([`toasts`]), and the plugin menus ([`plugin_menu`]: drawn
//! from a plugin's menu tree, returning the user's menu events; one window per open menu).
//!
//! [`Panels::show`] only reads the scene and returns [`UiAction`]s; the app applies them
//! (GPU writes, file loads, screenshots), so the panels can be driven in tests without a
//! window or a GPU (`tests/ui.rs` uses egui_kittest).

use std::path::PathBuf;
use std::time::Instant;

use molstream_engine::{ColorScheme, Representation, Style};

use crate::live::Report;
use crate::render::RenderSettings;
use crate::workspace::{SceneData, TreeAction};

pub mod plugin_menu;
pub mod plugins;
pub mod stats;
pub mod toasts;
pub mod tree;

use plugins::Connection;
pub use plugins::SessionUi;
pub use stats::Stats;
pub use toasts::{Level, Toasts};

/// What the user asked for in the panels.
#[derive(Clone, Debug, PartialEq)]
pub enum UiAction {
    /// A workspace tree change.
    Tree(TreeAction),
    /// A new global style (every atom).
    Restyle(Style),
    /// Open a structure file.
    Open(PathBuf),
    /// Save a screenshot.
    Screenshot,
    /// Frame the structures.
    FitView,
    /// Something asked of the room (plugins, integrations, selection, menus).
    Session(crate::session::Command),
}

/// The scene part of a [`Report::Scene`], for the caller of [`Panels::on_report`].
#[derive(Clone, Debug, PartialEq)]
pub struct SceneReport {
    /// The changes, in order.
    pub updates: Vec<crate::session::SceneUpdate>,
    /// Frames the room's scene applied since the client joined.
    pub frames_applied: u64,
    /// Time spent finding the changes, ms.
    pub diff_ms: f64,
}

/// The colour schemes offered, with their names.
pub const SCHEMES: [(ColorScheme, &str); 4] = [
    (ColorScheme::Element, "element"),
    (ColorScheme::Chain, "chain"),
    (ColorScheme::ResidueType, "residue"),
    (ColorScheme::BFactor, "B-factor"),
];

/// State of the panels between frames.
#[derive(Debug)]
pub struct Panels {
    /// The style last applied to every atom.
    pub style: Style,
    /// The file path typed in the open field.
    pub open_path: String,
    /// Frame, upload and decode statistics.
    pub stats: Stats,
    /// Notifications.
    pub toasts: Toasts,
    /// What the last click picked ("file chain residue atom").
    pub picked: Option<String>,
    /// Whether a file is being loaded.
    pub loading: Option<String>,
    /// The area left for the 3D view by the last [`Panels::show`], in points.
    pub central: egui::Rect,
    /// The session panel, when the window is in a room.
    pub session: Option<SessionUi>,
}

impl Panels {
    /// Panels at `now`.
    #[must_use]
    pub fn new(now: Instant) -> Self {
        Self {
            style: Style::default(),
            open_path: String::new(),
            stats: Stats::new(now),
            toasts: Toasts::default(),
            picked: None,
            loading: None,
            central: egui::Rect::NOTHING,
            session: None,
        }
    }

    /// Draws the left panel (session and plugins, files, style, display, workspace tree), the
    /// right panel (stats) and the toasts; returns the user's actions and records the area left
    /// for the 3D view ([`Panels::central`]). `settings` are edited in place (they take effect on the next frame
    /// without any upload).
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        scene: &SceneData,
        settings: &mut RenderSettings,
        now: Instant,
    ) -> Vec<UiAction> {
        let mut actions = Vec::new();
        egui::Panel::left("molstream-side").resizable(true).default_size(300.0).show(ui, |ui| {
            egui::ScrollArea::vertical().id_salt("side-scroll").show(ui, |ui| {
                ui.heading("molstream");
                if let Some(session) = &mut self.session {
                    egui::CollapsingHeader::new("Plugins").default_open(true).show(ui, |ui| {
                        actions.extend(session.show(ui).into_iter().map(UiAction::Session));
                    });
                    ui.separator();
                }
                self.files(ui, &mut actions);
                ui.separator();
                self.style_controls(ui, &mut actions);
                ui.collapsing("Display", |ui| display_settings(ui, settings));
                ui.separator();
                ui.strong("Workspace");
                actions.extend(tree::workspace_tree(ui, scene).into_iter().map(UiAction::Tree));
                ui.separator();
                ui.label(format!("picked: {}", self.picked.as_deref().unwrap_or("—")));
                ui.small("drag: rotate · right/shift drag: move · wheel: zoom · click: select · F: fit · R: reset · F12: screenshot");
            });
        });
        egui::Panel::right("molstream-stats").resizable(true).default_size(240.0).show(ui, |ui| {
            ui.strong("Stats");
            self.stats.show(ui, now);
        });
        self.central = ui.available_rect_before_wrap();
        if let Some(session) = &mut self.session {
            actions.extend(session.menu_windows(ui.ctx(), self.central).into_iter().map(UiAction::Session));
        }
        if self.toasts.show(ui.ctx(), now) {
            ui.ctx().request_repaint_after(std::time::Duration::from_millis(250));
        }
        actions
    }

    /// Takes a session report into account: the session panel (connection, room, menus,
    /// statuses) and toasts (notifications, answers, failures). A scene report is returned for
    /// the caller to apply to the scene and the GPU ([`crate::session::apply`], then
    /// [`crate::live::LiveSession::consumed`]).
    pub fn on_report(&mut self, report: Report, now: Instant) -> Option<SceneReport> {
        let ui = self.session.as_mut()?;
        match report {
            Report::Connected { relay, embedded, view } => {
                ui.connection = Connection::Connected { relay: relay.to_string(), embedded };
                ui.joined = Some(ui.connection.clone());
                ui.view = view;
            }
            Report::View(view) => ui.view = view,
            Report::Event(e) => {
                if let Some((level, text)) = ui.on_event(&e) {
                    self.toasts.push(level, text, now);
                }
            }
            Report::Menus { instance, menus } => ui.set_menus(instance, menus),
            Report::Activated { plugin, instance } => {
                ui.view.instances.insert(instance, plugin);
            }
            Report::Integration { name, result, .. } => {
                let label = plugins::integration_label(&name);
                let (level, text) = match result {
                    Ok(text) if text.is_empty() => (Level::Success, format!("{label}: done")),
                    Ok(text) => (Level::Success, format!("{label}: {text}")),
                    Err(e) => (Level::Error, format!("{label} failed: {e}")),
                };
                self.toasts.push(level, text, now);
            }
            Report::Failed(e) => self.toasts.push(Level::Error, e, now),
            Report::Fatal(e) => {
                ui.connection = Connection::Failed(e.clone());
                self.toasts.push(Level::Error, e, now);
            }
            Report::Scene { updates, frames_applied, diff_ms } => {
                return Some(SceneReport { updates, frames_applied, diff_ms });
            }
        }
        None
    }

    fn files(&mut self, ui: &mut egui::Ui, actions: &mut Vec<UiAction>) {
        ui.horizontal(|ui| {
            let field = ui.add(
                egui::TextEdit::singleline(&mut self.open_path).hint_text("PDB or mmCIF path").desired_width(170.0),
            );
            let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if (ui.button("Open").clicked() || enter) && !self.open_path.trim().is_empty() {
                actions.push(UiAction::Open(PathBuf::from(self.open_path.trim())));
            }
        });
        ui.small("or drop files on the window");
        if let Some(name) = &self.loading {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!("loading {name}"));
            });
        }
        ui.horizontal(|ui| {
            if ui.button("Screenshot (F12)").clicked() {
                actions.push(UiAction::Screenshot);
            }
            if ui.button("Fit view (F)").clicked() {
                actions.push(UiAction::FitView);
            }
        });
    }

    fn style_controls(&mut self, ui: &mut egui::Ui, actions: &mut Vec<UiAction>) {
        let mut style = self.style;
        egui::ComboBox::from_label("representation").selected_text(style.representation.name()).show_ui(ui, |ui| {
            for r in Representation::ALL {
                ui.selectable_value(&mut style.representation, r, r.name());
            }
        });
        let current = SCHEMES.iter().find(|s| s.0 == style.color).map_or("?", |s| s.1);
        egui::ComboBox::from_label("colour").selected_text(current).show_ui(ui, |ui| {
            for (s, name) in SCHEMES {
                ui.selectable_value(&mut style.color, s, name);
            }
        });
        if style != self.style {
            self.style = style;
            actions.push(UiAction::Restyle(style));
        }
    }
}

/// Lighting and level-of-detail controls.
fn display_settings(ui: &mut egui::Ui, s: &mut RenderSettings) {
    let mut ao = s.ambient_occlusion > 0.0;
    if ui.checkbox(&mut ao, "ambient occlusion").changed() {
        s.ambient_occlusion = if ao { RenderSettings::default().ambient_occlusion.max(0.1) } else { 0.0 };
    }
    if ao {
        ui.add(egui::Slider::new(&mut s.ambient_occlusion, 0.05..=1.0).text("AO strength"));
        ui.add(egui::Slider::new(&mut s.ao_radius, 1.0..=12.0).text("AO radius, Å"));
    }
    ui.add(egui::Slider::new(&mut s.fog, 0.0..=1.0).text("fog"));
    ui.add(egui::Slider::new(&mut s.outline, 0.0..=1.0).text("outlines"));
    ui.checkbox(&mut s.lod, "culling and level of detail");
}
