//! A plugin menu end to end, through the real network stack: an embedded QUIC relay, a plugin
//! host running a counter plugin defined here, and a session client. The menu the client
//! received is drawn by `MenuView` in an egui_kittest harness; a click on its button (a
//! synthetic pointer event, found by the button's label) becomes a `MenuEvent` that the client
//! sends to the plugin; the plugin's answer (a new label text, a toast) comes back over the relay,
//! and the re-drawn menu shows it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::time::Duration;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use molstream_net::api::Level;
use molstream_net::client::{ClientConfig, ClientEvent, SessionClient};
use molstream_net::host::{HostConfig, Plugin, PluginHost, PluginResult, Session};
use molstream_net::menu::{Button, ItemId, Menu, MenuAction, MenuEvent, MenuId, Menus, TextInput};
use molstream_net::proto::{InstanceId, PluginMeta, UserId};
use molstream_net::relay::{RelayConfig, RelayServer};
use molstream_net::tls::{RelayIdentity, TransportSettings, Trust};
use molstream_viewer::ui::plugin_menu::MenuView;
use tokio::time::timeout;

const T: Duration = Duration::from_secs(20);
const MAIN: MenuId = MenuId(1);
const COUNT_LABEL: ItemId = ItemId(1);
const BUMP: ItemId = ItemId(2);
const NAME: ItemId = ItemId(3);

/// Counts presses of its button in a label, greets whoever submits a name.
#[derive(Default)]
struct Counter {
    menu: Option<Menu>,
    presses: u32,
}

fn counter_menu() -> Menu {
    Menu::new(MAIN, "Counter").size(320.0, 120.0).column(|c| {
        c.label(COUNT_LABEL, "no presses yet")
            .button(BUMP, Button::new("Press me"))
            .text_input(NAME, TextInput::new().placeholder("your name"))
    })
}

impl Plugin for Counter {
    async fn on_run(&mut self, session: &Session, _from: UserId) -> PluginResult {
        let menu = counter_menu();
        session.update_menu(&menu).await?;
        self.menu = Some(menu);
        Ok(())
    }

    async fn on_menu_event(&mut self, s: &Session, _from: UserId, event: MenuEvent) -> PluginResult {
        let menu = self.menu.as_mut().ok_or("no menu")?;
        match (event.item, event.action) {
            (BUMP, MenuAction::Pressed { .. }) => {
                self.presses += 1;
                menu.label_mut(COUNT_LABEL).ok_or("no label")?.text = format!("pressed {} times", self.presses);
                s.update_content(menu, COUNT_LABEL).await?;
                s.notify(Level::Info, format!("press number {}", self.presses)).await?;
            }
            (NAME, MenuAction::TextSubmitted { text }) => {
                menu.label_mut(COUNT_LABEL).ok_or("no label")?.text = format!("hello, {text}");
                s.update_content(menu, COUNT_LABEL).await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Takes client events until `done` holds for the client's menus; returns the notifications
/// seen on the way.
async fn until(c: &mut SessionClient, inst: InstanceId, done: impl Fn(&Menus) -> bool) -> Vec<String> {
    let mut notes = Vec::new();
    while !done(&c.menus(inst)) {
        match timeout(T, c.next_event()).await.expect("the plugin answers within the timeout") {
            Some(ClientEvent::Notification { text, .. }) => notes.push(text),
            Some(ClientEvent::InstanceStopped { reason, .. }) => panic!("instance stopped: {reason:?}"),
            Some(_) => {}
            None => panic!("client closed"),
        }
    }
    notes
}

/// The next notification, skipping other events.
async fn notification(c: &mut SessionClient) -> String {
    loop {
        match timeout(T, c.next_event()).await.expect("a notification within the timeout") {
            Some(ClientEvent::Notification { text, .. }) => return text,
            Some(ClientEvent::InstanceStopped { reason, .. }) => panic!("instance stopped: {reason:?}"),
            Some(_) => {}
            None => panic!("client closed"),
        }
    }
}

struct State {
    view: MenuView,
    menu: Menu,
    events: Vec<MenuEvent>,
}

/// Sends what the view reported to the plugin, as the app does.
async fn forward(c: &SessionClient, inst: InstanceId, h: &mut Harness<'_, State>) -> Vec<MenuEvent> {
    let events = std::mem::take(&mut h.state_mut().events);
    for e in &events {
        c.menu_event(inst, e.clone()).await.unwrap();
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pressing_a_plugin_menu_button_shows_the_plugins_answer() {
    let (identity, _, _) = RelayIdentity::generate().unwrap();
    let cfg = RelayConfig { plugin_key: "k".into(), ..RelayConfig::default() };
    let relay =
        RelayServer::start(cfg, &identity, "127.0.0.1:0".parse().unwrap(), &TransportSettings::default()).unwrap();
    let trust = Trust::Pinned(relay.fingerprint());
    let mut host = PluginHost::new(HostConfig::new(relay.local_addr(), trust, "k"))
        .plugin(PluginMeta { name: "Counter".into(), ..PluginMeta::default() }, Counter::default)
        .spawn();
    timeout(T, host.registered()).await.unwrap().unwrap();
    let mut c = timeout(T, SessionClient::connect(ClientConfig::new(relay.local_addr(), trust, "menus", "ada")))
        .await
        .unwrap()
        .unwrap();
    let plugin = c.wait_for_plugin("Counter").await.unwrap();
    let inst = c.activate(plugin).await.unwrap();
    c.run(inst).await.unwrap();
    until(&mut c, inst, |m| m.get(MAIN).is_some()).await;

    let menu = c.menu(inst, MAIN).unwrap();
    assert_eq!(menu, counter_menu(), "the client holds the menu the plugin sent");
    let mut h = Harness::builder().with_size(egui::vec2(menu.width, menu.height)).build_ui_state(
        |ui, s: &mut State| {
            let events = s.view.show(ui, &s.menu);
            s.events.extend(events);
        },
        State { view: MenuView::new(), menu, events: Vec::new() },
    );
    h.run();
    assert!(h.query_by_label("no presses yet").is_some());

    // Press twice; each press reaches the plugin, whose label and toast come back.
    for n in 1..=2u32 {
        h.get_by_label("Press me").click();
        h.run();
        let sent = forward(&c, inst, &mut h).await;
        assert!(sent.contains(&MenuEvent::pressed(MAIN, BUMP, false)), "{sent:?}");
        let want = format!("pressed {n} times");
        let notes = until(&mut c, inst, |m| m.get(MAIN).unwrap().label(COUNT_LABEL).unwrap().text == want).await;
        h.state_mut().menu = c.menu(inst, MAIN).unwrap();
        h.run();
        assert!(h.query_by_label(&want).is_some(), "the new label is shown");
        assert!(h.query_by_label(&format!("pressed {} times", n - 1)).is_none());
        // The toast comes with the label update, or after it.
        let notes = if notes.is_empty() { vec![notification(&mut c).await] } else { notes };
        assert_eq!(notes, vec![format!("press number {n}")]);
    }

    // Typing a name and pressing Enter greets it in the label.
    h.get_by_label("your name").focus();
    h.run();
    h.get_by_label("your name").type_text("Ada");
    h.key_press(egui::Key::Enter);
    h.run();
    let sent = forward(&c, inst, &mut h).await;
    assert!(sent.contains(&MenuEvent::text_submitted(MAIN, NAME, "Ada")), "{sent:?}");
    until(&mut c, inst, |m| m.get(MAIN).unwrap().label(COUNT_LABEL).unwrap().text == "hello, Ada").await;
    h.state_mut().menu = c.menu(inst, MAIN).unwrap();
    h.run();
    assert!(h.query_by_label("hello, Ada").is_some());

    c.close();
    host.shutdown().await.unwrap();
    relay.shutdown().await;
}
