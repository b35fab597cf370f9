//! Menus: every element, update and action round-trips; hostile bodies are refused with typed
//! errors; the client-side state applies updates strictly; and over real QUIC on loopback, users
//! press a button, move a slider, submit text, pick a dropdown entry and select list entries, and
//! the instance's reactions (menu updates, notifications) reach every user of the room, with a
//! user who joins late getting the same menu.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use molstream_net::api::{Level, ToPlugin, ToSession};
use molstream_net::client::{ClientConfig, ClientEvent, SessionClient};
use molstream_net::host::{HostConfig, Plugin, PluginHost, PluginResult, Session};
use molstream_net::menu::{
    Align, Button, Dropdown, Element, Icon, Image, ImageScale, ItemId, Label, List, LoadingBar, MAX_IMAGE_BYTES,
    MAX_MENU_DEPTH, MAX_MENU_NODES, MAX_MENUS, Menu, MenuAction, MenuApplyError, MenuChange, MenuEvent, MenuId,
    MenuUpdate, Menus, Node, Orientation, Padding, Sizing, Slider, TextInput,
};
use molstream_net::proto::wire::Writer;
use molstream_net::proto::{DecodeError, InstanceId, PluginMeta, StopReason, UserId};
use molstream_net::relay::{RelayConfig, RelayServer};
use molstream_net::tls::{RelayIdentity, TransportSettings, Trust};
use tokio::time::timeout;

const T: Duration = Duration::from_secs(20);
const KEY: &str = "menu-key";

fn png() -> Bytes {
    // The 8-byte PNG signature and an IHDR chunk start: the bytes are carried, not decoded.
    Bytes::from_static(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01")
}

fn every_element() -> Vec<Element> {
    vec![
        Label::new("plain").into(),
        Label::new("Title ✓").font_size(18.0).align(Align::Center).bold().into(),
        Label::new("").align(Align::Right).into(),
        Button::new("Go").into(),
        Button::toggle("Off", "On").selected(true).icon(Icon::Named("play".into())).into(),
        Button::new("Save").disabled(true).disabled_text("saving…").icon(Icon::Image(Image::png(png()))).into(),
        TextInput::new().text("ada").placeholder("name").max_len(32).into(),
        TextInput::new().password().numeric().into(),
        TextInput { disabled: true, ..TextInput::new() }.into(),
        Slider::new(-1.0, 1.0).value(0.25).step(0.05).into(),
        Slider::new(3.0, 3.0).into(),
        Dropdown::new(["red", "green", "blue"]).selected(2).into(),
        Dropdown::new(Vec::<String>::new()).into(),
        List::new(["a", "b", "c"]).selected([1]).into(),
        List::new(["a", "b", "c", "d"]).multi().selected([0, 3]).into(),
        List::new(["only"]).into(),
        Image::png(png()).into(),
        Image::jpeg(Bytes::from_static(b"\xff\xd8\xff\xe0")).scale(ImageScale::Stretch).into(),
        Image::png(png()).scale(ImageScale::Fill).into(),
        LoadingBar::new(0.4).text("loading").into(),
        LoadingBar::new(1.0).failed(true).into(),
    ]
}

fn big_menu() -> Menu {
    let mut m = Menu::new(MenuId(7), "Every element").size(480.0, 640.0).column(|mut c| {
        for (i, e) in every_element().into_iter().enumerate() {
            c = c.element(ItemId(100 + i as u32), e);
        }
        c.row(|r| r.label(ItemId(1), "left").sized(Sizing::Ratio(0.3)).label(ItemId(2), "right"))
            .padding(Padding::all(4.0))
    });
    m.root.children.push(
        Node::new(ItemId(50))
            .orientation(Orientation::Horizontal)
            .sizing(Sizing::Fixed(40.0))
            .padding(Padding { left: 1.0, right: 2.0, top: 3.0, bottom: 4.0 })
            .visible(false),
    );
    m
}

fn every_update() -> Vec<MenuUpdate> {
    let m = big_menu();
    let mut out = vec![
        MenuUpdate::Set(m.clone()),
        MenuUpdate::Set(Menu::new(MenuId(0), "").enabled(false)),
        MenuUpdate::Set(Menu::new(MenuId(u16::MAX), "max id")),
        m.props_update(),
        MenuUpdate::Props { menu: MenuId(7), title: "renamed".into(), width: 0.0, height: 1e6, enabled: false },
        MenuUpdate::Node { menu: MenuId(7), node: m.node(ItemId(50)).unwrap().clone() },
        MenuUpdate::Node { menu: MenuId(7), node: Node::new(ItemId(50)).visible(true) },
        MenuUpdate::Content { menu: MenuId(7), item: ItemId(100), content: None },
        MenuUpdate::RemoveNode { menu: MenuId(7), item: ItemId(50) },
        MenuUpdate::Remove { menu: MenuId(7) },
    ];
    for (i, e) in every_element().into_iter().enumerate() {
        out.push(MenuUpdate::Content { menu: MenuId(7), item: ItemId(100 + i as u32), content: Some(e) });
    }
    out
}

fn every_event() -> Vec<MenuEvent> {
    let (m, i) = (MenuId(7), ItemId(3));
    let e = |action| MenuEvent { menu: m, item: i, action };
    vec![
        MenuEvent::pressed(m, i, false),
        MenuEvent::pressed(m, i, true),
        e(MenuAction::Hover { entered: true }),
        e(MenuAction::Hover { entered: false }),
        MenuEvent::slider_changed(m, i, -0.5),
        MenuEvent::slider_released(m, i, 1e-3),
        e(MenuAction::TextChanged { text: "ad".into() }),
        MenuEvent::text_submitted(m, i, "ada ✓"),
        MenuEvent::dropdown_chosen(m, i, 4000),
        e(MenuAction::ListSelected { selected: vec![] }),
        e(MenuAction::ListSelected { selected: vec![0, 5, 4095] }),
        MenuEvent::open_close(m, true),
        MenuEvent::open_close(m, false),
    ]
}

#[test]
fn every_update_and_event_round_trips_and_every_truncation_fails() {
    for u in every_update() {
        let body = ToSession::Menu(u.clone()).encode();
        assert_eq!(ToSession::decode(&body).unwrap(), ToSession::Menu(u.clone()));
        assert_eq!(body, u.encode());
        for cut in 0..body.len() {
            assert!(ToSession::decode(&body.slice(..cut)).is_err(), "{u:?} cut at {cut}");
        }
        let mut long = body.to_vec();
        long.push(0);
        assert_eq!(ToSession::decode(&long.into()), Err(DecodeError::Trailing(1)));
    }
    for e in every_event() {
        let body = ToPlugin::Menu(e.clone()).encode();
        assert_eq!(ToPlugin::decode(&body).unwrap(), ToPlugin::Menu(e.clone()));
        for cut in 0..body.len() {
            assert!(ToPlugin::decode(&body.slice(..cut)).is_err(), "{e:?} cut at {cut}");
        }
    }
}

#[test]
fn encoding_is_compact() {
    // A slider move: tag, menu, item, action, f32.
    assert_eq!(ToPlugin::Menu(MenuEvent::slider_changed(MenuId(1), ItemId(3), 0.5)).encode().len(), 8);
    // A label's new text: tag, menu, item, flag, element tag, text, font size, align, bold.
    let u = MenuUpdate::Content { menu: MenuId(1), item: ItemId(3), content: Some(Label::new("hi").into()) };
    assert_eq!(u.encode().len(), 1 + 1 + 1 + 1 + 1 + 3 + 4 + 1 + 1);
    // The whole every-element menu stays small next to its images.
    assert!(MenuUpdate::Set(big_menu()).encode().len() < 1024);
}

/// `ToSession` menu body: tag 60 (Set), menu id 1, title "", sizes, enabled, then the tree `node`.
fn set_with_tree(tree: &[u8]) -> Bytes {
    let mut w = Writer::new();
    w.u8(60);
    w.varint(1);
    w.str("");
    w.buf.extend_from_slice(&100f32.to_le_bytes());
    w.buf.extend_from_slice(&100f32.to_le_bytes());
    w.bool(true);
    w.buf.extend_from_slice(tree);
    Bytes::from(w.buf)
}

/// A node header: id, vertical, expand, zero padding, visible, no content (children follow).
fn node_head(w: &mut Writer, id: u32) {
    w.u32(id);
    w.u8(0);
    w.u8(0);
    for _ in 0..4 {
        w.buf.extend_from_slice(&0f32.to_le_bytes());
    }
    w.bool(true);
    w.u8(0);
}

fn content_body(element: &[u8]) -> Bytes {
    let mut w = Writer::new();
    w.u8(63);
    w.varint(1);
    w.u32(1);
    w.u8(1);
    w.buf.extend_from_slice(element);
    Bytes::from(w.buf)
}

fn f(v: f32) -> [u8; 4] {
    v.to_le_bytes()
}

#[test]
fn hostile_bodies_are_refused_with_typed_errors() {
    let decode = |b: Bytes| ToSession::decode(&b);
    // Deeper than the limit: a chain of single children, refused at the limit, without
    // recursing further (the message is far deeper than that).
    let mut w = Writer::new();
    for i in 0..10_000u32 {
        node_head(&mut w, i);
        w.varint(1);
    }
    assert_eq!(
        decode(set_with_tree(&w.buf)),
        Err(DecodeError::TooLong { what: "menu depth", value: MAX_MENU_DEPTH as u64 + 1, max: MAX_MENU_DEPTH as u64 })
    );
    // More nodes than the limit, in a flat tree.
    let mut w = Writer::new();
    node_head(&mut w, 0);
    w.varint(MAX_MENU_NODES as u64);
    for i in 1..=MAX_MENU_NODES as u32 {
        node_head(&mut w, i);
        w.varint(0);
    }
    assert!(matches!(decode(set_with_tree(&w.buf)), Err(DecodeError::TooLong { what: "menu nodes", .. })));
    // A child count far above the bytes present is refused before anything is reserved.
    let mut w = Writer::new();
    node_head(&mut w, 0);
    w.varint(4000);
    assert!(matches!(decode(set_with_tree(&w.buf)), Err(DecodeError::TooLong { what: "children", .. })));
    // Two nodes with one id.
    let mut w = Writer::new();
    node_head(&mut w, 0);
    w.varint(2);
    for _ in 0..2 {
        node_head(&mut w, 9);
        w.varint(0);
    }
    assert!(matches!(decode(set_with_tree(&w.buf)), Err(DecodeError::Invalid { what: "menu", .. })));
    // Non-finite and negative numbers.
    let mut slider = vec![4];
    for v in [0.0, f32::NAN, 0.0, 0.0] {
        slider.extend_from_slice(&f(v));
    }
    assert!(matches!(decode(content_body(&slider)), Err(DecodeError::Invalid { what: "slider max", .. })));
    let mut slider = vec![4];
    for v in [2.0, 1.0, 1.5, 0.0] {
        slider.extend_from_slice(&f(v));
    }
    assert_eq!(decode(content_body(&slider)), Err(DecodeError::Invalid { what: "slider", why: "min above max" }));
    let mut slider = vec![4];
    for v in [0.0, 1.0, 1.5, 0.0] {
        slider.extend_from_slice(&f(v));
    }
    assert!(matches!(decode(content_body(&slider)), Err(DecodeError::Invalid { what: "slider", .. })));
    let mut label = vec![1, 0];
    label.extend_from_slice(&f(-1.0));
    label.extend_from_slice(&[0, 0]);
    assert!(matches!(decode(content_body(&label)), Err(DecodeError::Invalid { what: "font size", .. })));
    let mut bar = vec![8];
    bar.extend_from_slice(&f(1.5));
    bar.extend_from_slice(&[0, 0]);
    assert!(matches!(decode(content_body(&bar)), Err(DecodeError::Invalid { what: "progress", .. })));
    // Selections outside their items, unsorted, or several in a single-selection list.
    assert!(matches!(
        decode(content_body(&[5, 1, 1, b'a', 1, 1])),
        Err(DecodeError::Invalid { what: "dropdown selection", .. })
    ));
    for (sel, multi) in [(&[1u8, 2][..], 0u8), (&[0, 0], 1), (&[1, 0], 1), (&[5], 0)] {
        let mut list = vec![6, 2, 1, b'a', 1, b'b', sel.len() as u8];
        list.extend_from_slice(sel);
        list.push(multi);
        assert!(
            matches!(decode(content_body(&list)), Err(DecodeError::Invalid { what: "list selection", .. })),
            "{sel:?} multi {multi}"
        );
    }
    // An image announced above its limit.
    let mut w = Writer::new();
    w.u8(7);
    w.u8(0);
    w.u8(0);
    w.varint(MAX_IMAGE_BYTES as u64 + 1);
    w.buf.resize(w.buf.len() + MAX_IMAGE_BYTES + 1, 0);
    assert!(matches!(decode(content_body(&w.buf)), Err(DecodeError::TooLong { what: "image", .. })));
    // Unknown element, action, align and reserved update tags; a bad boolean; an empty icon name.
    assert_eq!(decode(content_body(&[9])), Err(DecodeError::UnknownTag { what: "menu element", tag: 9 }));
    let mut label = vec![1, 0];
    label.extend_from_slice(&f(0.0));
    label.extend_from_slice(&[3, 0]);
    assert_eq!(decode(content_body(&label)), Err(DecodeError::UnknownTag { what: "align", tag: 3 }));
    let mut label = vec![1, 0];
    label.extend_from_slice(&f(0.0));
    label.extend_from_slice(&[0, 2]);
    assert_eq!(decode(content_body(&label)), Err(DecodeError::BadBool("bold")));
    assert!(matches!(decode(content_body(&[2, 0, 0, 0, 0, 0, 0, 1, 1, b' '])), Err(DecodeError::Invalid { .. })));
    for tag in 66..=79u8 {
        assert_eq!(decode(Bytes::from(vec![tag, 1])), Err(DecodeError::UnknownTag { what: "menu update", tag }));
    }
    for tag in 61..=79u8 {
        assert_eq!(
            ToPlugin::decode(&Bytes::from(vec![tag, 1, 1, 1])),
            Err(DecodeError::UnknownTag { what: "menu event", tag })
        );
    }
    assert_eq!(
        ToPlugin::decode(&Bytes::from_static(&[60, 1, 1, 11])),
        Err(DecodeError::UnknownTag { what: "menu action", tag: 11 })
    );
    let mut nan = vec![60, 1, 1, 3];
    nan.extend_from_slice(&f(f32::INFINITY));
    assert!(matches!(ToPlugin::decode(&Bytes::from(nan)), Err(DecodeError::Invalid { .. })));
    // A menu id above u16.
    assert_eq!(decode(Bytes::from_static(&[65, 0x80, 0x80, 0x04])), Err(DecodeError::BadInteger("menu id")));
}

#[test]
fn menus_apply_updates_strictly() {
    let mut menus = Menus::new();
    let m = big_menu();
    assert_eq!(menus.apply(&MenuUpdate::Set(m.clone())), Ok(Some(MenuChange::Set)));
    assert_eq!(menus.apply(&MenuUpdate::Set(m.clone())), Ok(None), "the same menu changes nothing");
    // Content and node updates.
    let c = MenuUpdate::Content { menu: m.id, item: ItemId(1), content: Some(Label::new("new").into()) };
    assert_eq!(menus.apply(&c), Ok(Some(MenuChange::Content(ItemId(1)))));
    assert_eq!(menus.apply(&c), Ok(None));
    assert_eq!(menus.get(m.id).unwrap().label(ItemId(1)).unwrap().text, "new");
    let grown = Node::new(ItemId(50)).orientation(Orientation::Horizontal).visible(true);
    let grown = Node { children: vec![Node::element(ItemId(51), Button::new("x"))], ..grown };
    assert_eq!(
        menus.apply(&MenuUpdate::Node { menu: m.id, node: grown.clone() }),
        Ok(Some(MenuChange::Node(ItemId(50))))
    );
    assert_eq!(menus.get(m.id).unwrap().button(ItemId(51)).unwrap().text, "x");
    // A node update may keep its own ids but not take another node's.
    let clash = Node { children: vec![Node::new(ItemId(1))], ..grown.clone() };
    assert_eq!(
        menus.apply(&MenuUpdate::Node { menu: m.id, node: clash }),
        Err(MenuApplyError::DuplicateId { menu: m.id, item: ItemId(1) })
    );
    // Depth is checked where the node sits.
    let mut deep = Node::new(ItemId(1000));
    for i in 1..MAX_MENU_DEPTH as u32 {
        deep = Node { children: vec![deep], ..Node::new(ItemId(1000 + i)) };
    }
    let deep = Node { children: vec![deep], ..Node::new(ItemId(50)) };
    assert_eq!(menus.apply(&MenuUpdate::Node { menu: m.id, node: deep }), Err(MenuApplyError::TooLarge(m.id)));
    // Unknown menus and nodes, and the root.
    assert_eq!(
        menus.apply(&MenuUpdate::RemoveNode { menu: MenuId(1), item: ItemId(1) }),
        Err(MenuApplyError::UnknownMenu(MenuId(1)))
    );
    assert_eq!(
        menus.apply(&MenuUpdate::Content { menu: m.id, item: ItemId(4242), content: None }),
        Err(MenuApplyError::UnknownItem { menu: m.id, item: ItemId(4242) })
    );
    assert_eq!(
        menus.apply(&MenuUpdate::RemoveNode { menu: m.id, item: ItemId::ROOT }),
        Err(MenuApplyError::RemoveRoot(m.id))
    );
    assert_eq!(
        menus.apply(&MenuUpdate::RemoveNode { menu: m.id, item: ItemId(51) }),
        Ok(Some(MenuChange::NodeRemoved(ItemId(51))))
    );
    assert_eq!(menus.apply(&MenuUpdate::RemoveNode { menu: m.id, item: ItemId(51) }), Ok(None));
    assert_eq!(menus.apply(&m.clone().enabled(false).props_update()), Ok(Some(MenuChange::Props)));
    assert!(!menus.get(m.id).unwrap().enabled);
    // At most MAX_MENUS menus per instance; replacing one is always fine.
    for i in 0..MAX_MENUS as u16 {
        let r = menus.apply(&MenuUpdate::Set(Menu::new(MenuId(1000 + i), "n")));
        assert_eq!(r.is_ok(), i < MAX_MENUS as u16 - 1, "menu {i}");
    }
    assert_eq!(menus.apply(&MenuUpdate::Set(Menu::new(MenuId(1), "n"))), Err(MenuApplyError::TooManyMenus));
    assert_eq!(menus.apply(&MenuUpdate::Set(m.clone())), Ok(Some(MenuChange::Set)));
    assert_eq!(menus.apply(&MenuUpdate::Remove { menu: m.id }), Ok(Some(MenuChange::Removed)));
    assert_eq!(menus.apply(&MenuUpdate::Remove { menu: m.id }), Ok(None));
    assert_eq!(menus.len(), MAX_MENUS - 1);
}

// ------------------------------------------------------------------------------------------
// Loopback
// ------------------------------------------------------------------------------------------

const MENU: MenuId = MenuId(1);
const STATUS: ItemId = ItemId(1);
const GO: ItemId = ItemId(2);
const SPEED: ItemId = ItemId(3);
const NAME: ItemId = ItemId(4);
const COLOR: ItemId = ItemId(5);
const ITEMS: ItemId = ItemId(6);
const BAR: ItemId = ItemId(7);
const SWATCH: ItemId = ItemId(8);
const BURST: ItemId = ItemId(9);
const CLEAR: ItemId = ItemId(10);
const GRID: ItemId = ItemId(11);
const QUIT: ItemId = ItemId(12);
const COLORS: [&str; 3] = ["red", "green", "blue"];

fn panel() -> Menu {
    Menu::new(MENU, "Panel").size(300.0, 500.0).column(|c| {
        c.label(STATUS, "ready")
            .row(|r| {
                r.button(GO, Button::new("Go")).button(BURST, Button::new("Burst")).button(CLEAR, Button::new("Clear"))
            })
            .slider(SPEED, Slider::new(0.0, 10.0).value(1.0))
            .loading_bar(BAR, LoadingBar::new(0.1))
            .text_input(NAME, TextInput::new().placeholder("your name"))
            .dropdown(COLOR, Dropdown::new(COLORS))
            .column_id(SWATCH, |s| s)
            .list(ITEMS, List::new(["one", "two", "three"]).multi())
            .column_id(GRID, |mut g| {
                for i in 0..40 {
                    g = g.label(ItemId(100 + i), "0");
                }
                g
            })
            .button(QUIT, Button::new("Quit"))
    })
}

#[derive(Default)]
struct Panel {
    menu: Option<Menu>,
    presses: u32,
    bursts: u32,
}

impl Plugin for Panel {
    async fn on_run(&mut self, session: &Session, _from: UserId) -> PluginResult {
        let menu = panel();
        session.update_menu(&menu).await?;
        self.menu = Some(menu);
        Ok(())
    }

    async fn on_menu_event(&mut self, s: &Session, from: UserId, event: MenuEvent) -> PluginResult {
        let Some(menu) = self.menu.as_mut() else { return Err("event before the menu".into()) };
        assert_eq!(event.menu, MENU);
        match (event.item, event.action) {
            (GO, MenuAction::Pressed { .. }) => {
                self.presses += 1;
                menu.label_mut(STATUS).unwrap().text = format!("pressed {} times, last by {}", self.presses, from.0);
                s.update_content(menu, STATUS).await?;
            }
            (SPEED, MenuAction::SliderChanged { value }) => {
                menu.slider_mut(SPEED).unwrap().value = value;
                menu.loading_bar_mut(BAR).unwrap().progress = value / 10.0;
                s.update_content(menu, SPEED).await?;
                s.update_content(menu, BAR).await?;
            }
            (SPEED, MenuAction::SliderReleased { value }) => {
                s.notify(Level::Info, format!("speed set to {value}")).await?;
            }
            (NAME, MenuAction::TextSubmitted { text }) => {
                menu.text_input_mut(NAME).unwrap().text.clone_from(&text);
                s.update_content(menu, NAME).await?;
                s.notify(Level::Success, format!("hello {text}")).await?;
            }
            (COLOR, MenuAction::DropdownChosen { index }) => {
                let name = COLORS.get(index as usize).ok_or("no such color")?;
                menu.dropdown_mut(COLOR).unwrap().selected = Some(index);
                s.update_content(menu, COLOR).await?;
                let swatch = menu.node_mut(SWATCH).unwrap();
                swatch.children = vec![Node::element(ItemId(20), Label::new(format!("{name} chosen")).bold())];
                s.update_node(menu, SWATCH).await?;
            }
            (ITEMS, MenuAction::ListSelected { selected }) => {
                menu.list_mut(ITEMS).unwrap().selected = selected;
                s.update_content(menu, ITEMS).await?;
            }
            (BURST, MenuAction::Pressed { .. }) => {
                // More distinct partial updates than a menu keeps: the host sends it whole again.
                self.bursts += 1;
                for i in 0..40 {
                    let id = ItemId(100 + i);
                    menu.label_mut(id).unwrap().text = format!("{}", self.bursts * 100 + i);
                    s.update_content(menu, id).await?;
                }
                s.notify(Level::Info, "burst done").await?;
            }
            (CLEAR, MenuAction::Pressed { .. }) => {
                s.remove_node(MENU, GRID).await?;
                menu.root.children.retain(|n| n.id != GRID);
            }
            (QUIT, MenuAction::Pressed { .. }) => {
                s.remove_menu(MENU).await?;
            }
            (ItemId::ROOT, MenuAction::Closed) => {
                s.notify(Level::Info, format!("menu closed by {}", from.0)).await?;
            }
            (item, action) => return Err(format!("unexpected {action:?} on {item}").into()),
        }
        Ok(())
    }
}

async fn client(relay: &RelayServer, room: &str, user: &str) -> SessionClient {
    let cfg = ClientConfig::new(relay.local_addr(), Trust::Pinned(relay.fingerprint()), room, user);
    timeout(T, SessionClient::connect(cfg)).await.unwrap().unwrap()
}

/// The next menu change, skipping other events (notifications fail the test: none is due).
async fn change(c: &mut SessionClient) -> (InstanceId, MenuId, MenuChange) {
    loop {
        match timeout(T, c.next_event()).await.expect("menu change within the timeout") {
            Some(ClientEvent::Menu { instance, menu, change }) => return (instance, menu, change),
            Some(ClientEvent::Notification { text, .. }) => panic!("unexpected notification {text:?}"),
            Some(ClientEvent::InstanceStopped { reason, .. }) => panic!("instance stopped: {reason:?}"),
            Some(_) => {}
            None => panic!("client closed"),
        }
    }
}

/// The next notification, skipping other events.
async fn notification(c: &mut SessionClient) -> (Level, String) {
    loop {
        match timeout(T, c.next_event()).await.expect("notification within the timeout") {
            Some(ClientEvent::Notification { level, text, .. }) => return (level, text),
            Some(ClientEvent::InstanceStopped { reason, .. }) => panic!("instance stopped: {reason:?}"),
            Some(_) => {}
            None => panic!("client closed"),
        }
    }
}

/// Skips events up to the menu change `want` (a late joiner still has its replay queued: its
/// copy is updated as messages arrive, before their events are taken).
async fn skip_to(c: &mut SessionClient, want: (InstanceId, MenuId, MenuChange)) {
    while change(c).await != want {}
}

/// Waits until `c`'s copy of the instance's menus equals `want`.
async fn converge(c: &mut SessionClient, instance: InstanceId, want: &Menus) {
    while c.menus(instance) != *want {
        match timeout(T, c.next_event()).await.expect("converges within the timeout") {
            Some(_) => {}
            None => panic!("client closed"),
        }
    }
}

#[tokio::test]
async fn menu_actions_reach_the_instance_and_its_reactions_reach_every_user() {
    let (identity, _, _) = RelayIdentity::generate().unwrap();
    let cfg = RelayConfig { plugin_key: KEY.into(), ..RelayConfig::default() };
    let relay =
        RelayServer::start(cfg, &identity, "127.0.0.1:0".parse().unwrap(), &TransportSettings::default()).unwrap();
    let host_cfg = HostConfig::new(relay.local_addr(), Trust::Pinned(relay.fingerprint()), KEY);
    let mut host = PluginHost::new(host_cfg)
        .plugin(PluginMeta { name: "Panel".into(), ..PluginMeta::default() }, Panel::default)
        .spawn();
    timeout(T, host.registered()).await.unwrap().unwrap();

    let mut ada = client(&relay, "lab", "ada").await;
    let mut al = client(&relay, "lab", "al").await;
    let mut bob = client(&relay, "elsewhere", "bob").await;
    let plugin = ada.wait_for_plugin("Panel").await.unwrap();
    let inst = ada.activate(plugin).await.unwrap();
    let bob_inst = bob.activate(plugin).await.unwrap();
    ada.run(inst).await.unwrap();
    for c in [&mut ada, &mut al] {
        assert_eq!(change(c).await, (inst, MENU, MenuChange::Set));
        assert_eq!(c.menu(inst, MENU).unwrap(), panel());
    }
    let (ada_id, al_id) = (ada.view().you, al.view().you);

    // A press: the status label changes for both users.
    ada.menu_event(inst, MenuEvent::pressed(MENU, GO, false)).await.unwrap();
    for c in [&mut ada, &mut al] {
        assert_eq!(change(c).await, (inst, MENU, MenuChange::Content(STATUS)));
        let text = c.menu(inst, MENU).unwrap().label(STATUS).unwrap().text.clone();
        assert_eq!(text, format!("pressed 1 times, last by {}", ada_id.0));
    }

    // A slider move by the other user: slider and bar change for both; the release notifies.
    al.menu_event(inst, MenuEvent::slider_changed(MENU, SPEED, 7.5)).await.unwrap();
    al.menu_event(inst, MenuEvent::slider_released(MENU, SPEED, 7.5)).await.unwrap();
    for c in [&mut ada, &mut al] {
        assert_eq!(change(c).await, (inst, MENU, MenuChange::Content(SPEED)));
        assert_eq!(change(c).await, (inst, MENU, MenuChange::Content(BAR)));
        let m = c.menu(inst, MENU).unwrap();
        assert_eq!((m.slider(SPEED).unwrap().value, m.loading_bar(BAR).unwrap().progress), (7.5, 0.75));
        assert_eq!(notification(c).await, (Level::Info, "speed set to 7.5".into()));
    }

    // A text submission: the field and a notification for both.
    ada.menu_event(inst, MenuEvent::text_submitted(MENU, NAME, "Ada")).await.unwrap();
    for c in [&mut ada, &mut al] {
        assert_eq!(change(c).await, (inst, MENU, MenuChange::Content(NAME)));
        assert_eq!(notification(c).await, (Level::Success, "hello Ada".into()));
        assert_eq!(c.menu(inst, MENU).unwrap().text_input(NAME).unwrap().text, "Ada");
    }

    // A dropdown choice: the dropdown's content and a node (a new subtree) for both.
    al.menu_event(inst, MenuEvent::dropdown_chosen(MENU, COLOR, 2)).await.unwrap();
    for c in [&mut ada, &mut al] {
        assert_eq!(change(c).await, (inst, MENU, MenuChange::Content(COLOR)));
        assert_eq!(change(c).await, (inst, MENU, MenuChange::Node(SWATCH)));
        let m = c.menu(inst, MENU).unwrap();
        assert_eq!(m.dropdown(COLOR).unwrap().selected, Some(2));
        assert_eq!(m.label(ItemId(20)).unwrap().text, "blue chosen");
    }

    // A list selection, and the menu closed by one user.
    let select = MenuEvent { menu: MENU, item: ITEMS, action: MenuAction::ListSelected { selected: vec![0, 2] } };
    ada.menu_event(inst, select).await.unwrap();
    for c in [&mut ada, &mut al] {
        assert_eq!(change(c).await, (inst, MENU, MenuChange::Content(ITEMS)));
        assert_eq!(c.menu(inst, MENU).unwrap().list(ITEMS).unwrap().selected, vec![0, 2]);
    }
    al.menu_event(inst, MenuEvent::open_close(MENU, false)).await.unwrap();
    for c in [&mut ada, &mut al] {
        assert_eq!(notification(c).await, (Level::Info, format!("menu closed by {}", al_id.0)));
    }

    // Enough distinct updates to make the host send the menu whole again, then a late joiner:
    // it ends with exactly the menu the others have.
    ada.menu_event(inst, MenuEvent::pressed(MENU, BURST, false)).await.unwrap();
    for c in [&mut ada, &mut al] {
        assert_eq!(notification(c).await.1, "burst done");
        assert_eq!(c.menu(inst, MENU).unwrap().label(ItemId(139)).unwrap().text, "139");
    }
    let want = ada.menus(inst);
    assert_eq!(al.menus(inst), want);
    let mut cy = client(&relay, "lab", "cy").await;
    converge(&mut cy, inst, &want).await;

    // Removing a node, then the menu: a joiner after the node removal has it removed too.
    al.menu_event(inst, MenuEvent::pressed(MENU, CLEAR, false)).await.unwrap();
    for c in [&mut ada, &mut al, &mut cy] {
        skip_to(c, (inst, MENU, MenuChange::NodeRemoved(GRID))).await;
        assert!(c.menu(inst, MENU).unwrap().node(GRID).is_none());
    }
    let want = ada.menus(inst);
    let mut di = client(&relay, "lab", "di").await;
    converge(&mut di, inst, &want).await;
    cy.menu_event(inst, MenuEvent::pressed(MENU, QUIT, false)).await.unwrap();
    for c in [&mut ada, &mut al, &mut cy, &mut di] {
        skip_to(c, (inst, MENU, MenuChange::Removed)).await;
        assert!(c.menus(inst).is_empty());
    }

    // The other room's instance never showed a menu; its user sees none.
    assert!(bob.menus(bob_inst).is_empty());
    assert!(bob.menus(inst).is_empty());

    // A deactivated instance's menus are gone from every copy.
    ada.run(inst).await.unwrap();
    assert_eq!(change(&mut al).await, (inst, MENU, MenuChange::Set));
    ada.deactivate(inst).await.unwrap();
    loop {
        match timeout(T, al.next_event()).await.unwrap() {
            Some(ClientEvent::InstanceStopped { instance, reason }) if instance == inst => {
                assert_eq!(reason, StopReason::Deactivated { by: ada_id });
                break;
            }
            Some(_) => {}
            None => panic!("client closed"),
        }
    }
    assert!(al.menus(inst).is_empty());

    host.shutdown().await.unwrap();
    relay.shutdown().await;
}
