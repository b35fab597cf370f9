//! A plugin showing every menu element and every kind of update: labels, push, toggle and
//! disabled buttons with icons, a slider, a text field, a dropdown, a multi-selection list, an
//! image, a loading bar driven by a background task, rows added and removed at run time, a
//! renamed title, and a second menu opened and closed on demand.
//!
//! ```sh
//! cargo run -p molstream-net --bin molstream-relay
//! cargo run -p molstream-plugins --bin menu-demo
//! ```

use std::time::Duration;

use molstream_net::api::Level;
use molstream_net::host::{Plugin, PluginHost, PluginResult, Session};
use molstream_net::menu::{
    Align, Button, Dropdown, Icon, Image, ImageScale, ItemId, Label, List, LoadingBar, Menu, MenuAction, MenuEvent,
    MenuId, MenuUpdate, Node, Padding, Sizing, Slider, TextInput,
};
use molstream_net::proto::{PluginMeta, UserId};
use tokio::task::JoinHandle;

/// The main menu.
pub const MAIN: MenuId = MenuId(1);
/// The about box.
pub const ABOUT: MenuId = MenuId(2);

/// Status label.
pub const STATUS: ItemId = ItemId(1);
/// Push button counting presses.
pub const COUNT: ItemId = ItemId(2);
/// Toggle button running the loading bar.
pub const SIMULATE: ItemId = ItemId(3);
/// A disabled button.
pub const LOCKED: ItemId = ItemId(4);
/// Slider.
pub const TEMPERATURE: ItemId = ItemId(5);
/// The slider's value.
pub const TEMPERATURE_LABEL: ItemId = ItemId(6);
/// Text field.
pub const NAME: ItemId = ItemId(7);
/// Character count of the text field.
pub const NAME_LABEL: ItemId = ItemId(8);
/// Dropdown.
pub const STYLE: ItemId = ItemId(9);
/// Multi-selection list.
pub const CHAINS: ItemId = ItemId(10);
/// Image.
pub const PICTURE: ItemId = ItemId(11);
/// Loading bar.
pub const PROGRESS: ItemId = ItemId(12);
/// Column that rows are added to.
pub const ROWS: ItemId = ItemId(13);
/// Adds a row.
pub const ADD_ROW: ItemId = ItemId(14);
/// Removes the last row.
pub const REMOVE_ROW: ItemId = ItemId(15);
/// Renames the menu.
pub const RENAME: ItemId = ItemId(16);
/// Opens the about box.
pub const OPEN_ABOUT: ItemId = ItemId(17);
/// Closes the about box.
pub const CLOSE_ABOUT: ItemId = ItemId(30);
/// Rows added at run time get ids from here up.
pub const FIRST_ROW: u32 = 1000;

/// Dropdown entries.
pub const STYLES: [&str; 4] = ["ball and stick", "sticks", "spheres", "cartoon"];
/// List entries.
pub const CHAIN_NAMES: [&str; 4] = ["A", "B", "C", "D"];

/// The main menu as first shown.
#[must_use]
pub fn main_menu() -> Menu {
    Menu::new(MAIN, "Menu demo").size(420.0, 640.0).column(|c| {
        c.padding(Padding::all(8.0))
            .element(
                STATUS,
                Label::new("Every element of a molstream menu").bold().align(Align::Center).font_size(16.0),
            )
            .sized(Sizing::Fixed(32.0))
            .row(|r| {
                r.button(COUNT, Button::new("Count: 0").icon(Icon::Named("plus".into())))
                    .button(SIMULATE, Button::toggle("Simulate", "Stop").icon(Icon::Named("play".into())))
                    .button(LOCKED, Button::new("Locked").disabled(true).disabled_text("(locked)"))
            })
            .row(|r| {
                r.slider(TEMPERATURE, Slider::new(0.0, 500.0).value(300.0).step(5.0))
                    .label(TEMPERATURE_LABEL, "300 K")
                    .sized(Sizing::Ratio(0.25))
            })
            .row(|r| {
                r.text_input(NAME, TextInput::new().placeholder("your name").max_len(40))
                    .label(NAME_LABEL, "0 characters")
                    .sized(Sizing::Ratio(0.35))
            })
            .dropdown(STYLE, Dropdown::new(STYLES).selected(0))
            .list(CHAINS, List::new(CHAIN_NAMES).multi().selected([0]))
            .sized(Sizing::Fixed(96.0))
            .row(|r| {
                r.image(PICTURE, Image::png(gradient_png(48, 48)).scale(ImageScale::Fit))
                    .sized(Sizing::Fixed(56.0))
                    .loading_bar(PROGRESS, LoadingBar::new(0.0).text("idle"))
            })
            .column_id(ROWS, |rows| rows)
            .row(|r| {
                r.button(ADD_ROW, Button::new("Add row"))
                    .button(REMOVE_ROW, Button::new("Remove row"))
                    .button(RENAME, Button::new("Rename"))
                    .button(OPEN_ABOUT, Button::new("About…"))
            })
    })
}

/// The about box, naming who opened it.
#[must_use]
pub fn about_menu(user: UserId) -> Menu {
    Menu::new(ABOUT, "About").size(260.0, 140.0).column(|c| {
        c.padding(Padding::all(6.0))
            .label(ItemId(20), "molstream menu demo")
            .element(ItemId(21), Label::new(format!("opened by user {}", user.0)).font_size(10.0))
            .button(CLOSE_ABOUT, Button::new("Close").icon(Icon::Named("close".into())))
    })
}

/// What the demo declares (it has advanced settings: they open the about box).
#[must_use]
pub fn meta() -> PluginMeta {
    PluginMeta {
        name: "Menu demo".into(),
        description: "Every menu element and every kind of menu update.".into(),
        category: "Demo".into(),
        tags: vec!["menus".into()],
        has_advanced_settings: true,
        ..PluginMeta::default()
    }
}

/// Adds the demo to `host`.
#[must_use]
pub fn register(host: PluginHost) -> PluginHost {
    host.plugin(meta(), Demo::default)
}

/// One instance of the demo.
#[derive(Debug, Default)]
pub struct Demo {
    menu: Option<Menu>,
    count: u32,
    rows: u32,
    renames: u32,
    simulation: Option<JoinHandle<()>>,
}

impl Demo {
    fn menu(&mut self) -> Result<&mut Menu, &'static str> {
        self.menu.as_mut().ok_or("the menu is not shown")
    }

    /// Steps the loading bar from 0 to 1 in the background: menus may be updated from any task.
    fn start_simulation(&mut self, session: &Session) {
        let s = session.clone();
        self.simulation = Some(tokio::spawn(async move {
            for step in 0..=20u8 {
                let p = f32::from(step) / 20.0;
                let bar = LoadingBar::new(p).text(format!("simulating {:.0}%", p * 100.0));
                let update = MenuUpdate::Content { menu: MAIN, item: PROGRESS, content: Some(bar.into()) };
                if s.send_menu_update(update).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }));
    }
}

impl Plugin for Demo {
    async fn on_run(&mut self, session: &Session, _from: UserId) -> PluginResult {
        let menu = main_menu();
        session.update_menu(&menu).await?;
        self.menu = Some(menu);
        Ok(())
    }

    async fn on_advanced_settings(&mut self, session: &Session, from: UserId) -> PluginResult {
        session.update_menu(&about_menu(from)).await?;
        Ok(())
    }

    async fn on_menu_event(&mut self, s: &Session, from: UserId, event: MenuEvent) -> PluginResult {
        if event.menu == ABOUT {
            if event.item == CLOSE_ABOUT || event.action == MenuAction::Closed {
                s.remove_menu(ABOUT).await?;
            }
            return Ok(());
        }
        match (event.item, event.action) {
            (COUNT, MenuAction::Pressed { .. }) => {
                self.count += 1;
                let text = format!("Count: {}", self.count);
                let menu = self.menu()?;
                menu.button_mut(COUNT).ok_or("no count button")?.text = text;
                s.update_content(menu, COUNT).await?;
            }
            (SIMULATE, MenuAction::Pressed { selected }) => {
                let menu = self.menu()?;
                menu.button_mut(SIMULATE).ok_or("no toggle")?.selected = selected;
                s.update_content(menu, SIMULATE).await?;
                if let Some(task) = self.simulation.take() {
                    task.abort();
                }
                if selected {
                    self.start_simulation(s);
                } else {
                    let bar = LoadingBar::new(0.0).text("stopped");
                    s.send_menu_update(MenuUpdate::Content { menu: MAIN, item: PROGRESS, content: Some(bar.into()) })
                        .await?;
                }
            }
            (item, MenuAction::Hover { entered: true }) => {
                let menu = self.menu()?;
                let what = menu.content(item).map_or("node", |e| e.kind_name());
                menu.label_mut(STATUS).ok_or("no status")?.text = format!("user {} is over a {what}", from.0);
                s.update_content(menu, STATUS).await?;
            }
            (TEMPERATURE, MenuAction::SliderChanged { value }) => {
                let menu = self.menu()?;
                menu.slider_mut(TEMPERATURE).ok_or("no slider")?.value = value;
                menu.label_mut(TEMPERATURE_LABEL).ok_or("no label")?.text = format!("{value:.0} K");
                s.update_content(menu, TEMPERATURE).await?;
                s.update_content(menu, TEMPERATURE_LABEL).await?;
            }
            (TEMPERATURE, MenuAction::SliderReleased { value }) => {
                s.notify(Level::Info, format!("temperature set to {value:.0} K")).await?;
            }
            (NAME, MenuAction::TextChanged { text }) => {
                let menu = self.menu()?;
                menu.label_mut(NAME_LABEL).ok_or("no label")?.text = format!("{} characters", text.chars().count());
                s.update_content(menu, NAME_LABEL).await?;
            }
            (NAME, MenuAction::TextSubmitted { text }) => {
                let menu = self.menu()?;
                menu.text_input_mut(NAME).ok_or("no field")?.text.clone_from(&text);
                s.update_content(menu, NAME).await?;
                s.notify(Level::Success, format!("hello, {text}")).await?;
            }
            (STYLE, MenuAction::DropdownChosen { index }) => {
                let style = STYLES.get(index as usize).ok_or("no such style")?;
                let menu = self.menu()?;
                menu.dropdown_mut(STYLE).ok_or("no dropdown")?.selected = Some(index);
                s.update_content(menu, STYLE).await?;
                s.notify(Level::Info, format!("style: {style}")).await?;
            }
            (CHAINS, MenuAction::ListSelected { selected }) => {
                let names: Vec<&str> = selected.iter().filter_map(|&i| CHAIN_NAMES.get(i as usize).copied()).collect();
                let menu = self.menu()?;
                menu.list_mut(CHAINS).ok_or("no list")?.selected = selected;
                s.update_content(menu, CHAINS).await?;
                s.notify(Level::Info, format!("chains: {}", names.join(", "))).await?;
            }
            (ADD_ROW, MenuAction::Pressed { .. }) => {
                self.rows += 1;
                let id = ItemId(FIRST_ROW + self.rows);
                let text = format!("row {}", self.rows);
                let menu = self.menu()?;
                menu.node_mut(ROWS).ok_or("no rows")?.children.push(Node::element(id, Label::new(text)));
                s.update_node(menu, ROWS).await?;
            }
            (REMOVE_ROW, MenuAction::Pressed { .. }) if self.rows > 0 => {
                let id = ItemId(FIRST_ROW + self.rows);
                self.rows -= 1;
                let menu = self.menu()?;
                menu.node_mut(ROWS).ok_or("no rows")?.children.retain(|n| n.id != id);
                s.remove_node(MAIN, id).await?;
            }
            (RENAME, MenuAction::Pressed { .. }) => {
                self.renames += 1;
                let title = format!("Menu demo ({})", self.renames);
                let menu = self.menu()?;
                menu.title = title;
                s.update_menu_props(menu).await?;
            }
            (OPEN_ABOUT, MenuAction::Pressed { .. }) => s.update_menu(&about_menu(from)).await?,
            (ItemId::ROOT, MenuAction::Opened) => {
                s.notify(Level::Info, format!("user {} opened the menu", from.0)).await?;
            }
            (ItemId::ROOT, MenuAction::Closed) => {
                s.notify(Level::Info, format!("user {} closed the menu", from.0)).await?;
            }
            _ => {}
        }
        Ok(())
    }

    async fn on_stop(&mut self, _session: &Session) -> PluginResult {
        if let Some(task) = self.simulation.take() {
            task.abort();
        }
        Ok(())
    }
}

/// A `w`×`h` RGB gradient as a PNG (stored deflate blocks: the point is the bytes' path, not
/// their size).
fn gradient_png(w: u32, h: u32) -> Vec<u8> {
    let mut raw = Vec::new();
    for y in 0..h {
        raw.push(0); // filter: none
        for x in 0..w {
            raw.extend_from_slice(&[(x * 255 / w) as u8, (y * 255 / h) as u8, 160]);
        }
    }
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    for (kind, data) in [(b"IHDR", ihdr.as_slice()), (b"IDAT", z.as_slice()), (b"IEND", &[][..])] {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = png.len();
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        let crc = crc32(&png[start..]);
        png.extend_from_slice(&crc.to_be_bytes());
    }
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
