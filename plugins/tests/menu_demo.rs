//! The menu demo plugin, driven end to end over loopback QUIC: its menu shows every element
//! kind, and every control answers (counts, toggle with a background loading bar, slider, text,
//! dropdown, list, hover, rows added and removed, renaming, a second menu opened and closed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use molstream_net::api::Level;
use molstream_net::client::{ClientConfig, ClientEvent, SessionClient};
use molstream_net::host::{HostConfig, PluginHost};
use molstream_net::menu::{Element, ItemId, MenuAction, MenuEvent};
use molstream_net::proto::InstanceId;
use molstream_net::relay::{RelayConfig, RelayServer};
use molstream_net::tls::{RelayIdentity, TransportSettings, Trust};
use molstream_plugins::menu_demo::*;
use tokio::time::timeout;

const T: Duration = Duration::from_secs(20);

async fn notification(c: &mut SessionClient) -> (Level, String) {
    loop {
        match timeout(T, c.next_event()).await.expect("notification within the timeout") {
            Some(ClientEvent::Notification { level, text, .. }) => return (level, text),
            Some(ClientEvent::InstanceStopped { reason, .. }) => panic!("stopped: {reason:?}"),
            Some(_) => {}
            None => panic!("client closed"),
        }
    }
}

/// Takes events until `done` holds for the client's copy of the menus.
async fn until(c: &mut SessionClient, inst: InstanceId, done: impl Fn(&molstream_net::menu::Menus) -> bool) {
    while !done(&c.menus(inst)) {
        match timeout(T, c.next_event()).await.expect("menu change within the timeout") {
            Some(ClientEvent::InstanceStopped { reason, .. }) => panic!("stopped: {reason:?}"),
            Some(_) => {}
            None => panic!("client closed"),
        }
    }
}

fn ev(item: ItemId, action: MenuAction) -> MenuEvent {
    MenuEvent { menu: MAIN, item, action }
}

#[tokio::test]
async fn the_menu_demo_shows_every_element_and_answers_every_control() {
    let (identity, _, _) = RelayIdentity::generate().unwrap();
    let cfg = RelayConfig { plugin_key: "k".into(), ..RelayConfig::default() };
    let relay =
        RelayServer::start(cfg, &identity, "127.0.0.1:0".parse().unwrap(), &TransportSettings::default()).unwrap();
    let trust = Trust::Pinned(relay.fingerprint());
    let mut host = register(PluginHost::new(HostConfig::new(relay.local_addr(), trust, "k"))).spawn();
    timeout(T, host.registered()).await.unwrap().unwrap();
    let mut c = timeout(T, SessionClient::connect(ClientConfig::new(relay.local_addr(), trust, "demo", "ada")))
        .await
        .unwrap()
        .unwrap();
    let plugin = c.wait_for_plugin("Menu demo").await.unwrap();
    let inst = c.activate(plugin).await.unwrap();
    c.run(inst).await.unwrap();
    until(&mut c, inst, |m| m.get(MAIN).is_some()).await;
    let menu = c.menu(inst, MAIN).unwrap();
    assert_eq!(menu, main_menu());
    let mut kinds = BTreeSet::new();
    let mut stack = vec![&menu.root];
    while let Some(n) = stack.pop() {
        kinds.extend(n.content.as_ref().map(Element::kind_name));
        stack.extend(n.children.iter());
    }
    assert_eq!(kinds.len(), 8, "every element kind: {kinds:?}");
    let image = menu.image(PICTURE).unwrap();
    assert!(image.data.starts_with(b"\x89PNG\r\n\x1a\n") && image.data.ends_with(&[0xae, 0x42, 0x60, 0x82]));

    c.menu_event(inst, ev(COUNT, MenuAction::Pressed { selected: false })).await.unwrap();
    c.menu_event(inst, ev(COUNT, MenuAction::Pressed { selected: false })).await.unwrap();
    until(&mut c, inst, |m| m.get(MAIN).unwrap().button(COUNT).unwrap().text == "Count: 2").await;

    // The toggle starts a background task that drives the loading bar to the end.
    c.menu_event(inst, ev(SIMULATE, MenuAction::Pressed { selected: true })).await.unwrap();
    until(&mut c, inst, |m| {
        let m = m.get(MAIN).unwrap();
        m.button(SIMULATE).unwrap().current_text() == "Stop" && m.loading_bar(PROGRESS).unwrap().progress == 1.0
    })
    .await;
    assert_eq!(c.menu(inst, MAIN).unwrap().loading_bar(PROGRESS).unwrap().text, "simulating 100%");
    c.menu_event(inst, ev(SIMULATE, MenuAction::Pressed { selected: false })).await.unwrap();
    until(&mut c, inst, |m| m.get(MAIN).unwrap().loading_bar(PROGRESS).unwrap().text == "stopped").await;

    c.menu_event(inst, ev(LOCKED, MenuAction::Hover { entered: true })).await.unwrap();
    until(&mut c, inst, |m| m.get(MAIN).unwrap().label(STATUS).unwrap().text.ends_with("over a button")).await;

    c.menu_event(inst, MenuEvent::slider_changed(MAIN, TEMPERATURE, 355.0)).await.unwrap();
    until(&mut c, inst, |m| m.get(MAIN).unwrap().label(TEMPERATURE_LABEL).unwrap().text == "355 K").await;
    assert_eq!(c.menu(inst, MAIN).unwrap().slider(TEMPERATURE).unwrap().value, 355.0);
    c.menu_event(inst, MenuEvent::slider_released(MAIN, TEMPERATURE, 355.0)).await.unwrap();
    assert_eq!(notification(&mut c).await.1, "temperature set to 355 K");

    c.menu_event(inst, ev(NAME, MenuAction::TextChanged { text: "Adé".into() })).await.unwrap();
    until(&mut c, inst, |m| m.get(MAIN).unwrap().label(NAME_LABEL).unwrap().text == "3 characters").await;
    c.menu_event(inst, MenuEvent::text_submitted(MAIN, NAME, "Adé")).await.unwrap();
    assert_eq!(notification(&mut c).await, (Level::Success, "hello, Adé".into()));
    assert_eq!(c.menu(inst, MAIN).unwrap().text_input(NAME).unwrap().text, "Adé");

    c.menu_event(inst, MenuEvent::dropdown_chosen(MAIN, STYLE, 3)).await.unwrap();
    assert_eq!(notification(&mut c).await.1, "style: cartoon");
    assert_eq!(c.menu(inst, MAIN).unwrap().dropdown(STYLE).unwrap().selected, Some(3));
    c.menu_event(inst, ev(CHAINS, MenuAction::ListSelected { selected: vec![1, 3] })).await.unwrap();
    assert_eq!(notification(&mut c).await.1, "chains: B, D");
    assert_eq!(c.menu(inst, MAIN).unwrap().list(CHAINS).unwrap().selected, vec![1, 3]);

    for _ in 0..3 {
        c.menu_event(inst, ev(ADD_ROW, MenuAction::Pressed { selected: false })).await.unwrap();
    }
    c.menu_event(inst, ev(REMOVE_ROW, MenuAction::Pressed { selected: false })).await.unwrap();
    until(&mut c, inst, |m| {
        let rows = m.get(MAIN).unwrap().node(ROWS).unwrap();
        rows.children.iter().map(|n| n.id).collect::<Vec<_>>() == [ItemId(FIRST_ROW + 1), ItemId(FIRST_ROW + 2)]
    })
    .await;
    assert_eq!(c.menu(inst, MAIN).unwrap().label(ItemId(FIRST_ROW + 2)).unwrap().text, "row 2");

    c.menu_event(inst, ev(RENAME, MenuAction::Pressed { selected: false })).await.unwrap();
    until(&mut c, inst, |m| m.get(MAIN).unwrap().title == "Menu demo (1)").await;

    // A second menu, from a button and from the advanced settings, closed both ways.
    c.menu_event(inst, ev(OPEN_ABOUT, MenuAction::Pressed { selected: false })).await.unwrap();
    until(&mut c, inst, |m| m.get(ABOUT).is_some()).await;
    c.menu_event(inst, MenuEvent { menu: ABOUT, item: CLOSE_ABOUT, action: MenuAction::Pressed { selected: false } })
        .await
        .unwrap();
    until(&mut c, inst, |m| m.get(ABOUT).is_none()).await;
    c.advanced_settings(inst).await.unwrap();
    until(&mut c, inst, |m| m.get(ABOUT).is_some()).await;
    c.menu_event(inst, MenuEvent::open_close(ABOUT, false)).await.unwrap();
    until(&mut c, inst, |m| m.get(ABOUT).is_none()).await;

    c.menu_event(inst, MenuEvent::open_close(MAIN, false)).await.unwrap();
    assert_eq!(notification(&mut c).await.1, format!("user {} closed the menu", c.view().you.0));
    c.menu_event(inst, MenuEvent::open_close(MAIN, true)).await.unwrap();
    assert_eq!(notification(&mut c).await.1, format!("user {} opened the menu", c.view().you.0));

    c.close();
    host.shutdown().await.unwrap();
    relay.shutdown().await;
}
