//! The plugin list ("stacks menu") and the plugins' menu windows against a real room:
//! egui_kittest drives the window's panels (`Panels::show` and `Panels::on_report`, as the app
//! does) over a live session with the embedded relay and the bundled plugins, or with a relay
//! serving the menu demo (`molstream_plugins::menu_demo`). Buttons pressed in the panel and in the
//! menus reach the room's plugins, and their effects come back: a structure in the scene, an
//! instance's status, an integration's answer and notifications as toasts, minimized positions
//! in the scene, a menu's new state.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use molstream_viewer::live::{LiveOptions, LiveSession, Report, Target};
use molstream_viewer::render::RenderSettings;
use molstream_viewer::ui::{Panels, SessionUi, UiAction};
use molstream_viewer::workspace::SceneData;

struct State {
    panels: Panels,
    scene: SceneData,
    settings: RenderSettings,
    live: LiveSession,
    reports: Arc<Mutex<Vec<Report>>>,
    /// Every toast raised, for the test to look through.
    toasts: Vec<String>,
}

fn harness() -> Harness<'static, State> {
    harness_on(Target::Embedded)
}

fn harness_on(target: Target) -> Harness<'static, State> {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = reports.clone();
    let options = LiveOptions { target, room: "ui".into(), user: "ada".into(), activate: Vec::new(), run: Vec::new() };
    let live = LiveSession::start(options, move |r| sink.lock().unwrap().push(r)).unwrap();
    let mut panels = Panels::new(Instant::now());
    panels.session = Some(SessionUi::new("the embedded relay"));
    let state = State {
        panels,
        scene: SceneData::new(Vec::new()),
        settings: RenderSettings::default(),
        live,
        reports,
        toasts: Vec::new(),
    };
    let h = Harness::builder().with_size(egui::vec2(1280.0, 1400.0)).build_ui_state(
        |ui, s: &mut State| {
            let now = Instant::now();
            let reports: Vec<Report> = std::mem::take(&mut *s.reports.lock().unwrap());
            for r in reports {
                if let Some(scene) = s.panels.on_report(r, now) {
                    molstream_viewer::session::apply(&mut s.scene, scene.updates);
                    s.live.consumed();
                }
            }
            for t in s.panels.toasts.current(now) {
                if !s.toasts.contains(&t.text) {
                    s.toasts.push(t.text.clone());
                }
            }
            for a in s.panels.show(ui, &s.scene, &mut s.settings, now) {
                if let UiAction::Session(c) = a {
                    s.live.send(c);
                }
            }
        },
        state,
    );
    // Plugins' texts may hold characters the bundled font lacks ("→"): tofu, as in the window.
    h.ctx.set_missing_glyph_policy(egui::MissingGlyphPolicy::Tofu);
    h
}

/// Runs frames until `done` holds (the room answers over loopback QUIC; the deadline is only a
/// guard against a hang).
fn until(h: &mut Harness<'static, State>, what: &str, mut done: impl FnMut(&Harness<'static, State>) -> bool) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(120) {
        h.run_steps(4); // a spinner (pending request) repaints forever: never `run()` to a settled state
        if done(h) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what}: not within 120 s; toasts {:?}", h.state().toasts);
}

/// Clicks the first button labelled `label` below the plugin named `plugin` (its name's label
/// in the panel; a menu window may carry the same words).
fn press(h: &mut Harness<'static, State>, plugin: &str, label: &str) {
    let top = h
        .get_all_by_label(plugin)
        .filter(|n| n.accesskit_node().role() == egui::accesskit::Role::Label)
        .map(|n| n.rect().top())
        .fold(f32::INFINITY, f32::min);
    let button = h
        .get_all_by_label(label)
        .filter(|b| b.rect().top() > top)
        .min_by(|a, b| a.rect().top().total_cmp(&b.rect().top()))
        .unwrap_or_else(|| panic!("no {label:?} under {plugin:?}"));
    button.click();
    h.run_steps(4);
}

fn toasted(h: &Harness<'static, State>, text: &str) -> bool {
    h.state().toasts.iter().any(|t| t.contains(text))
}

#[test]
fn plugins_are_activated_run_and_minimized_from_the_panel() {
    let mut h = harness();
    until(&mut h, "the bundled plugins listed", |h| {
        ["Structure loader", "Shapes demo", "Minimizer", "Trajectory streamer"]
            .iter()
            .all(|p| h.query_by_label(p).is_some())
    });
    assert!(h.query_by_label_contains("room ui as ada").is_some());
    assert_eq!(h.get_all_by_label("Activate").count(), 5); // loader, trajectory, shapes, minimizer, menu demo

    // Activate, then run, the structure loader: 1hvr arrives in the scene.
    press(&mut h, "Structure loader", "Activate");
    until(&mut h, "the loader running", |h| h.query_by_label("Run").is_some());
    press(&mut h, "Structure loader", "Run");
    until(&mut h, "1hvr in the scene", |h| h.state().scene.atoms.len() == 1890);
    until(&mut h, "the loader's notification", |h| toasted(h, "Structure loader: loaded 1hvr"));
    let before: Vec<[f32; 3]> = h.state().scene.atoms.iter().map(|a| a.position).collect();

    // The minimizer declares `minimization.start`: once active, its "Minimize" button calls it.
    press(&mut h, "Minimizer", "Activate");
    until(&mut h, "the Minimize button", |h| h.query_by_label("Minimize").is_some());
    press(&mut h, "Minimizer", "Minimize");
    until(&mut h, "the integration's answer", |h| toasted(h, "Minimize: minimizing"));
    until(&mut h, "the minimizer's notification", |h| toasted(h, "Minimizer: minimized 1hvr"));
    until(&mut h, "the minimized positions in the scene", |h| {
        h.state().scene.atoms.iter().zip(&before).filter(|(a, b)| a.position != **b).count() > 100
    });

    // Deactivated from the panel: its status says so.
    press(&mut h, "Minimizer", "Deactivate");
    until(&mut h, "the minimizer stopped", |h| h.query_by_label("stopped (deactivated)").is_some());
    assert!(h.query_by_label("Minimize").is_none(), "integrations only while running");
}

/// The panel alone, over a room as reported: statuses, advanced settings and an integration
/// that takes a typed argument.
#[test]
fn the_panel_shows_statuses_and_returns_the_commands_pressed() {
    use molstream_net::client::{ClientEvent, RoomView};
    use molstream_net::proto::{InstanceId, InstanceInfo, PluginId, PluginInfo, PluginMeta, StopReason, User, UserId};
    use molstream_viewer::session::Command;

    let plugin = |id, name: &str, advanced, integrations: &[&str]| PluginInfo {
        id: PluginId(id),
        host: "lab".into(),
        meta: PluginMeta {
            name: name.into(),
            description: format!("the {name}"),
            category: "Tools".into(),
            has_advanced_settings: advanced,
            integrations: integrations.iter().map(|s| (*s).to_owned()).collect(),
            ..PluginMeta::default()
        },
    };
    let mut ui = SessionUi::new("relay");
    ui.connection =
        molstream_viewer::ui::plugins::Connection::Connected { relay: "10.0.0.1:4433".into(), embedded: false };
    ui.view = RoomView {
        room: "lab".into(),
        you: UserId(2),
        presenter: UserId(2),
        users: vec![User { id: UserId(2), name: "ada".into() }],
        plugins: vec![plugin(1, "Loader", true, &["structure.load"]), plugin(2, "Crasher", false, &[])],
        ..RoomView::default()
    };
    ui.on_event(&ClientEvent::InstanceStarted(InstanceInfo { id: InstanceId(5), plugin: PluginId(1) }));
    ui.on_event(&ClientEvent::InstanceStarted(InstanceInfo { id: InstanceId(6), plugin: PluginId(2) }));
    let crash = StopReason::Crashed { message: "attempt to divide by zero".into() };
    ui.on_event(&ClientEvent::InstanceStopped { instance: InstanceId(6), reason: crash });

    let mut h = Harness::builder().with_size(egui::vec2(400.0, 600.0)).build_ui_state(
        |ui, s: &mut (SessionUi, Vec<Command>)| {
            let c = s.0.show(ui);
            s.1.extend(c);
        },
        (ui, Vec::new()),
    );
    h.run_steps(4);
    assert!(h.query_by_label("crashed: attempt to divide by zero").is_some());
    assert!(h.query_by_label("running").is_some());
    h.get_by_label("Advanced settings").click();
    h.run_steps(4);
    let field = h.get_by_role(egui::accesskit::Role::TextInput);
    field.focus();
    field.type_text("/data/4e43.pdb");
    h.run_steps(4);
    h.get_by_label("Load file").click();
    h.run_steps(4);
    h.get_by_label("Activate").click();
    h.run_steps(4);
    let load = Command::Integration {
        instance: InstanceId(5),
        name: "structure.load".into(),
        args: b"/data/4e43.pdb".to_vec(),
    };
    assert_eq!(h.state().1, vec![Command::AdvancedSettings(InstanceId(5)), load, Command::Activate(PluginId(2))]);
}

/// A plugin's menus in windows: opened when the plugin shows them (the plugin hears it), their
/// buttons reaching the plugin and its updates redrawn, closed by the user (the plugin hears
/// it) and opened again from the plugin's row; a second menu from advanced settings, removed by
/// the plugin when its Close button is pressed.
#[test]
fn plugin_menus_open_in_windows_and_their_buttons_reach_the_plugin() {
    use molstream_net::proto::PluginMeta;
    use molstream_plugins::menu_demo;
    use molstream_viewer::testing::TestRelay;

    let rt = tokio::runtime::Runtime::new().unwrap();
    let meta = PluginMeta { name: "Menu demo".into(), has_advanced_settings: true, ..PluginMeta::default() };
    let relay = rt.block_on(TestRelay::start(|h| h.plugin(meta, menu_demo::Demo::default))).unwrap();
    let (addr, trust) = (relay.relay().addr(), relay.relay().trust());
    let mut h = harness_on(Target::Relay { addr, trust });
    until(&mut h, "the demo listed", |h| h.query_all_by_label("Menu demo").next().is_some());
    press(&mut h, "Menu demo", "Activate");
    until(&mut h, "the demo running", |h| h.query_by_label("Run").is_some());
    press(&mut h, "Menu demo", "Run");
    until(&mut h, "the menu's window", |h| h.query_by_label("Count: 0").is_some());
    until(&mut h, "the plugin told of the opening", |h| toasted(h, "opened the menu"));

    h.get_by_label("Count: 0").click();
    until(&mut h, "the plugin's answer drawn", |h| h.query_by_label("Count: 1").is_some());
    h.get_by_label("Count: 1").click();
    until(&mut h, "a second press", |h| h.query_by_label("Count: 2").is_some());

    // Closed by the user: the plugin hears it, the row offers the menu again.
    h.get_by_label("Close window").click();
    until(&mut h, "the plugin told of the closing", |h| toasted(h, "closed the menu"));
    assert!(h.query_by_label("Count: 2").is_none(), "the window is closed");
    press(&mut h, "Menu demo", "Menu demo"); // the row's button named after the menu's title
    until(&mut h, "the window again", |h| h.query_by_label("Count: 2").is_some());

    // Advanced settings: the demo's About box, removed by the demo when Close is pressed.
    press(&mut h, "Menu demo", "Advanced settings");
    until(&mut h, "the About box", |h| h.query_by_label("molstream menu demo").is_some());
    h.get_by_label("Close").click();
    until(&mut h, "the About box removed", |h| h.query_by_label("molstream menu demo").is_none());
    assert!(h.query_by_label("Count: 2").is_some(), "the main menu stays");
    drop(h);
    rt.block_on(relay.shutdown());
}
