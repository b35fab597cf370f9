//! egui interaction tests of the plugin menu widget (`ui::plugin_menu::MenuView`), without a
//! window or a GPU: egui_kittest finds each element's widget by its accessible label, drives it
//! with synthetic pointer and keyboard events, and the tests assert the exact `MenuEvent`s the
//! view returns. "The plugin answers" is simulated by editing the menu between frames, as the
//! session client's copy would change.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use egui::accesskit::{Role, Toggled};
use egui::{Pos2, Rect, pos2, vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use molstream_net::menu::{
    Align, Button, Dropdown, Icon, Image, ImageScale, ItemId, Label, List, LoadingBar, Menu, MenuAction, MenuEvent,
    MenuId, Node, Padding, Sizing, Slider, TextInput,
};
use molstream_viewer::render::image::RgbaImage;
use molstream_viewer::ui::plugin_menu::{
    GUTTER, MAX_IMAGE_SIDE, MAX_MENU_SIDE, MenuImageError, MenuView, decode_image,
};

const M: MenuId = MenuId(4);

struct State {
    view: MenuView,
    menu: Menu,
    events: Vec<MenuEvent>,
    /// Where the menu's top left corner is drawn.
    origin: Pos2,
}

/// The menu in a harness with room for it.
fn harness(menu: Menu) -> Harness<'static, State> {
    let size = vec2(menu.width, menu.height) + vec2(40.0, 40.0);
    let mut h = Harness::builder().with_size(size).build_ui_state(
        |ui, s: &mut State| {
            s.origin = ui.cursor().min;
            let events = s.view.show(ui, &s.menu);
            s.events.extend(events);
        },
        State { view: MenuView::new(), menu, events: Vec::new(), origin: Pos2::ZERO },
    );
    h.run();
    h
}

/// The events since the last call.
fn take(h: &mut Harness<'_, State>) -> Vec<MenuEvent> {
    std::mem::take(&mut h.state_mut().events)
}

fn ev(item: u32, action: MenuAction) -> MenuEvent {
    MenuEvent { menu: M, item: ItemId(item), action }
}

fn hover(item: u32, entered: bool) -> MenuEvent {
    ev(item, MenuAction::Hover { entered })
}

fn pressed(item: u32, selected: bool) -> MenuEvent {
    ev(item, MenuAction::Pressed { selected })
}

/// Moves the pointer to `pos`, presses and releases there.
fn click_at(h: &mut Harness<'_, State>, pos: Pos2) {
    h.hover_at(pos);
    h.run();
    h.drag_at(pos);
    h.run();
    release_at(h, pos);
}

/// Releases the primary button at `pos`, keeping the pointer there.
fn release_at(h: &mut Harness<'_, State>, pos: Pos2) {
    h.event(egui::Event::PointerButton {
        pos,
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: egui::Modifiers::NONE,
    });
    h.run();
}

fn rect_of(h: &Harness<'_, State>, label: &str) -> Rect {
    h.get_by_label(label).rect()
}

fn buttons_menu() -> Menu {
    Menu::new(M, "buttons").size(400.0, 60.0).row(|r| {
        r.button(ItemId(1), Button::new("Go"))
            .button(ItemId(2), Button::toggle("Simulate", "Stop").icon(Icon::Named("play".into())))
            .button(ItemId(3), Button::new("Locked").disabled(true).disabled_text("(locked)"))
    })
}

#[test]
fn a_push_button_reports_hover_then_press() {
    let mut h = harness(buttons_menu());
    assert!(take(&mut h).is_empty(), "nothing happens by itself");
    let go = rect_of(&h, "Go");
    click_at(&mut h, go.center());
    assert_eq!(take(&mut h), vec![hover(1, true), pressed(1, false)]);
    // Moving to the toggle leaves the push button first.
    let toggle = rect_of(&h, "Simulate");
    h.hover_at(toggle.center());
    h.run();
    assert_eq!(take(&mut h), vec![hover(1, false), hover(2, true)]);
    h.remove_cursor();
    h.run();
    assert_eq!(take(&mut h), vec![hover(2, false)]);
}

#[test]
fn a_toggle_reports_its_new_state_and_shows_the_plugins() {
    let mut h = harness(buttons_menu());
    assert_eq!(h.get_by_role_and_label(Role::Button, "Simulate").accesskit_node().toggled(), Some(Toggled::False));
    h.get_by_label("Simulate").click();
    h.run();
    assert_eq!(take(&mut h), vec![hover(2, true), pressed(2, true)]);
    // The plugin decides: until it answers, the button shows its state.
    assert!(h.query_by_label("Stop").is_none());
    h.state_mut().menu.button_mut(ItemId(2)).unwrap().selected = true;
    h.run();
    let on = h.get_by_role_and_label(Role::Button, "Stop");
    assert_eq!(on.accesskit_node().toggled(), Some(Toggled::True));
    on.click();
    h.run();
    assert_eq!(take(&mut h), vec![pressed(2, false)]);
}

#[test]
fn a_disabled_button_shows_its_disabled_text_and_reports_only_hover() {
    let mut h = harness(buttons_menu());
    let locked = h.get_by_label("(locked)");
    assert!(locked.accesskit_node().is_disabled());
    assert!(h.query_by_label("Locked").is_none());
    locked.click();
    h.run();
    assert_eq!(take(&mut h), vec![hover(3, true)]);
}

#[test]
fn a_hidden_menu_is_greyed_out_and_silent() {
    let mut h = harness(buttons_menu().enabled(false));
    let go = h.get_by_label("Go");
    assert!(go.accesskit_node().is_disabled());
    go.click();
    h.run();
    h.get_by_label("Simulate").click();
    h.run();
    assert!(take(&mut h).is_empty());
}

#[test]
fn the_layout_follows_sizing_orientation_padding_and_visibility() {
    let menu = Menu::new(M, "layout").size(400.0, 200.0).column(|c| {
        c.padding(Padding { left: 10.0, right: 30.0, top: 20.0, bottom: 0.0 })
            .row(|r| {
                r.button(ItemId(1), Button::new("fixed"))
                    .sized(Sizing::Fixed(60.0))
                    .button(ItemId(2), Button::new("ratio"))
                    .sized(Sizing::Ratio(0.5))
                    .button(ItemId(3), Button::new("expand a"))
                    .node(Node::element(ItemId(4), Button::new("hidden")).visible(false))
                    .button(ItemId(5), Button::new("expand b"))
            })
            .sized(Sizing::Fixed(40.0))
            .label(ItemId(6), "rest")
    });
    let h = harness(menu);
    let o = h.state().origin.to_vec2();
    // Inner width 360: fixed 60, ratio 180, the two expanding buttons 60 each.
    let expect = |x0: f32, x1: f32| Rect::from_min_max(pos2(x0, 20.0), pos2(x1, 60.0)).shrink(GUTTER).translate(o);
    assert_eq!(rect_of(&h, "fixed"), expect(10.0, 70.0));
    assert_eq!(rect_of(&h, "ratio"), expect(70.0, 250.0));
    assert_eq!(rect_of(&h, "expand a"), expect(250.0, 310.0));
    assert_eq!(rect_of(&h, "expand b"), expect(310.0, 370.0));
    assert!(h.query_by_label("hidden").is_none());
    // The label takes the rest of the column, its text centred vertically in 60..200.
    let label = rect_of(&h, "rest");
    assert!((label.center().y - o.y - 130.0).abs() < 1.0, "{label:?}");
    assert_eq!(label.left() - o.x, 10.0 + GUTTER);
}

#[test]
fn labels_align_and_size_their_text() {
    let menu = Menu::new(M, "labels").size(300.0, 90.0).column(|c| {
        c.element(ItemId(1), Label::new("left"))
            .element(ItemId(2), Label::new("centre").align(Align::Center).bold())
            .element(ItemId(3), Label::new("big right").align(Align::Right).font_size(24.0))
    });
    let h = harness(menu);
    let o = h.state().origin.to_vec2();
    let at = |label: &str| rect_of(&h, label).translate(-o);
    let (l, c, r) = (at("left"), at("centre"), at("big right"));
    assert_eq!(l.left(), GUTTER);
    assert!((c.center().x - 150.0).abs() < 1.0, "{c:?}");
    assert!((r.right() - (300.0 - GUTTER)).abs() < 1.0, "{r:?}");
    assert!(r.height() > l.height() * 1.4, "24 pt text is taller: {r:?} vs {l:?}");
}

fn slider_menu() -> Menu {
    Menu::new(M, "slider")
        .size(300.0, 40.0)
        .column(|c| c.slider(ItemId(5), Slider::new(0.0, 100.0).value(50.0).step(5.0)))
}

#[test]
fn dragging_a_slider_reports_each_move_then_the_release() {
    let mut h = harness(slider_menu());
    let rail = rect_of(&h, "slider 5");
    assert_eq!(h.get_by_label("slider 5").accesskit_node().numeric_value(), Some(50.0));
    let y = rail.center().y;
    h.hover_at(pos2(rail.left() + 1.0, y));
    h.run();
    h.drag_at(pos2(rail.left() + 1.0, y));
    h.run();
    h.hover_at(pos2(rail.center().x, y));
    h.run();
    h.hover_at(pos2(rail.right() + 40.0, y));
    h.run();
    release_at(&mut h, pos2(rail.right() + 40.0, y));
    assert_eq!(
        take(&mut h),
        vec![
            hover(5, true),
            ev(5, MenuAction::SliderChanged { value: 0.0 }),
            ev(5, MenuAction::SliderChanged { value: 50.0 }),
            hover(5, false),
            ev(5, MenuAction::SliderChanged { value: 100.0 }),
            ev(5, MenuAction::SliderReleased { value: 100.0 }),
        ]
    );
    // The user's value stays while the plugin has not answered…
    assert_eq!(h.get_by_label("slider 5").accesskit_node().numeric_value(), Some(100.0));
    // …and the plugin's answer wins.
    h.state_mut().menu.slider_mut(ItemId(5)).unwrap().value = 35.0;
    h.run();
    assert_eq!(h.get_by_label("slider 5").accesskit_node().numeric_value(), Some(35.0));
    assert!(take(&mut h).is_empty());
}

#[test]
fn setting_a_slider_without_dragging_is_a_move_and_a_release() {
    let mut h = harness(slider_menu());
    h.get_by_label("slider 5").set_value_accesskit(72.0);
    h.run();
    // Snapped to the step.
    assert_eq!(
        take(&mut h),
        vec![ev(5, MenuAction::SliderChanged { value: 70.0 }), ev(5, MenuAction::SliderReleased { value: 70.0 })]
    );
}

fn text_menu() -> Menu {
    Menu::new(M, "text").size(300.0, 90.0).column(|c| {
        c.text_input(ItemId(7), TextInput::new().placeholder("your name").max_len(5))
            .text_input(ItemId(8), TextInput::new().placeholder("amount").numeric())
            .text_input(ItemId(9), TextInput::new().placeholder("secret").password())
    })
}

#[test]
fn typing_reports_changes_and_enter_submits() {
    let mut h = harness(text_menu());
    h.get_by_label("your name").focus();
    h.run();
    h.get_by_label("your name").type_text("Adé");
    h.run();
    assert_eq!(take(&mut h), vec![ev(7, MenuAction::TextChanged { text: "Adé".into() })]);
    // At most 5 characters.
    h.get_by_label("your name").type_text("laide");
    h.run();
    assert_eq!(take(&mut h), vec![ev(7, MenuAction::TextChanged { text: "Adéla".into() })]);
    h.key_press(egui::Key::Enter);
    h.run();
    assert_eq!(take(&mut h), vec![ev(7, MenuAction::TextSubmitted { text: "Adéla".into() })]);
    // The text stays after the field loses focus, until the plugin sends another.
    assert_eq!(h.get_by_label("your name").value().as_deref(), Some("Adéla"));
    h.state_mut().menu.text_input_mut(ItemId(7)).unwrap().text = "Bob".into();
    h.run();
    assert_eq!(h.get_by_label("your name").value().as_deref(), Some("Bob"));
    assert!(take(&mut h).is_empty());
}

#[test]
fn numeric_fields_keep_digits_sign_and_point_and_passwords_are_masked() {
    let mut h = harness(text_menu());
    h.get_by_label("amount").focus();
    h.run();
    h.get_by_label("amount").type_text("-12a.5e");
    h.run();
    assert_eq!(take(&mut h), vec![ev(8, MenuAction::TextChanged { text: "-12.5".into() })]);
    let secret = h.get_by_label("secret");
    assert_eq!(secret.accesskit_node().role(), Role::PasswordInput);
    secret.focus();
    h.run();
    h.get_by_label("secret").type_text("hunter2");
    h.key_press(egui::Key::Enter);
    h.run();
    assert_eq!(
        take(&mut h),
        vec![
            ev(9, MenuAction::TextChanged { text: "hunter2".into() }),
            ev(9, MenuAction::TextSubmitted { text: "hunter2".into() })
        ]
    );
}

#[test]
fn a_disabled_text_field_takes_no_input() {
    let mut menu = text_menu();
    menu.text_input_mut(ItemId(7)).unwrap().disabled = true;
    let mut h = harness(menu);
    assert!(h.get_by_label("your name").accesskit_node().is_disabled());
    h.get_by_label("your name").focus();
    h.run();
    h.get_by_label("your name").type_text("x");
    h.key_press(egui::Key::Enter);
    h.run();
    assert!(take(&mut h).is_empty());
}

const STYLES: [&str; 4] = ["ball and stick", "sticks", "spheres", "cartoon"];

#[test]
fn choosing_a_dropdown_entry_reports_its_index() {
    let menu = Menu::new(M, "dropdown")
        .size(300.0, 240.0)
        .column(|c| c.dropdown(ItemId(9), Dropdown::new(STYLES).selected(0)).sized(Sizing::Fixed(30.0)));
    let mut h = harness(menu);
    let combo = h.get_by_label("dropdown 9");
    assert_eq!(combo.accesskit_node().role(), Role::ComboBox);
    assert_eq!(combo.value().as_deref(), Some("ball and stick"));
    combo.click();
    h.run();
    assert_eq!(take(&mut h), vec![hover(9, true)]);
    // The popup lies outside the dropdown's node: reaching an entry leaves the dropdown.
    h.get_by_label("cartoon").click();
    h.run();
    assert_eq!(take(&mut h), vec![hover(9, false), ev(9, MenuAction::DropdownChosen { index: 3 })]);
    assert!(h.query_by_label("cartoon").is_none(), "the popup closed");
    // Choosing the entry already chosen reports nothing.
    h.get_by_label("dropdown 9").click();
    h.run();
    h.get_by_label("ball and stick").click();
    h.run();
    assert_eq!(take(&mut h), vec![hover(9, true), hover(9, false)]);
}

fn lists_menu() -> Menu {
    Menu::new(M, "lists").size(300.0, 200.0).row(|r| {
        r.list(ItemId(10), List::new(["A", "B", "C", "D"]).multi().selected([0]))
            .list(ItemId(11), List::new(["north", "south"]))
    })
}

fn list_selection(items: &[u32]) -> MenuAction {
    MenuAction::ListSelected { selected: items.to_vec() }
}

#[test]
fn a_multi_list_toggles_entries_in_and_out_of_the_selection() {
    let mut h = harness(lists_menu());
    assert_eq!(h.get_by_label("A").accesskit_node().toggled(), Some(Toggled::True));
    h.get_by_label("C").click();
    h.run();
    assert_eq!(take(&mut h), vec![hover(10, true), ev(10, list_selection(&[0, 2]))]);
    h.state_mut().menu.list_mut(ItemId(10)).unwrap().selected = vec![0, 2];
    h.run();
    assert_eq!(h.get_by_label("C").accesskit_node().toggled(), Some(Toggled::True));
    h.get_by_label("A").click();
    h.run();
    assert_eq!(take(&mut h), vec![ev(10, list_selection(&[2]))]);
}

#[test]
fn a_single_list_replaces_its_selection() {
    let mut h = harness(lists_menu());
    h.get_by_label("south").click();
    h.run();
    assert_eq!(take(&mut h), vec![hover(11, true), ev(11, list_selection(&[1]))]);
    h.state_mut().menu.list_mut(ItemId(11)).unwrap().selected = vec![1];
    h.run();
    h.get_by_label("south").click();
    h.run();
    assert!(take(&mut h).is_empty(), "the selected entry again changes nothing");
    h.get_by_label("north").click();
    h.run();
    assert_eq!(take(&mut h), vec![ev(11, list_selection(&[0]))]);
}

#[test]
fn a_loading_bar_shows_progress_text_and_failure() {
    let menu = Menu::new(M, "bars").size(300.0, 60.0).column(|c| {
        c.loading_bar(ItemId(12), LoadingBar::new(0.25).text("simulating"))
            .loading_bar(ItemId(13), LoadingBar::new(1.0).failed(true))
    });
    let mut h = harness(menu);
    let bar = h.get_by_label("simulating");
    assert_eq!(bar.accesskit_node().role(), Role::ProgressIndicator);
    assert_eq!(bar.accesskit_node().numeric_value(), Some(25.0));
    assert_eq!(h.get_by_label("loading bar 13").accesskit_node().numeric_value(), Some(100.0));
    bar.click();
    h.run();
    assert_eq!(take(&mut h), vec![hover(12, true)]);
}

fn halves_png() -> Vec<u8> {
    let mut pixels = Vec::new();
    for _y in 0..8 {
        for x in 0..16 {
            pixels.extend_from_slice(if x < 8 { &[230, 30, 20, 255] } else { &[20, 40, 220, 255] });
        }
    }
    RgbaImage { width: 16, height: 8, pixels }.encode_png().unwrap()
}

const HALVES_JPG: &[u8] = include_bytes!("menu_images/halves.jpg");
const HALVES_PROGRESSIVE_JPG: &[u8] = include_bytes!("menu_images/halves_progressive.jpg");
const GREY_JPG: &[u8] = include_bytes!("menu_images/grey.jpg");

fn near(a: [u8; 4], b: [u8; 4], tolerance: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tolerance)
}

#[test]
fn png_and_jpeg_decode_to_their_pixels() {
    let png = decode_image(&Image::png(halves_png())).unwrap();
    assert_eq!((png.width, png.height), (16, 8));
    assert_eq!(png.pixel(2, 4), Some([230, 30, 20, 255]));
    assert_eq!(png.pixel(13, 4), Some([20, 40, 220, 255]));
    for bytes in [HALVES_JPG, HALVES_PROGRESSIVE_JPG] {
        let jpg = decode_image(&Image::jpeg(bytes)).unwrap();
        assert_eq!((jpg.width, jpg.height), (32, 16));
        let (left, right) = (jpg.pixel(4, 8).unwrap(), jpg.pixel(27, 8).unwrap());
        assert!(near(left, [230, 30, 20, 255], 12), "{left:?}");
        assert!(near(right, [20, 40, 220, 255], 12), "{right:?}");
    }
    let grey = decode_image(&Image::jpeg(GREY_JPG)).unwrap();
    assert!(grey.pixels.chunks_exact(4).all(|p| near(p.try_into().unwrap(), [200, 200, 200, 255], 2)));
}

#[test]
fn malformed_or_oversized_images_are_errors_not_panics() {
    let png = halves_png();
    assert!(matches!(decode_image(&Image::png(png[..png.len() / 2].to_vec())), Err(MenuImageError::Png(_))));
    assert!(matches!(decode_image(&Image::jpeg(&HALVES_JPG[..100])), Err(MenuImageError::Jpeg(_))));
    assert!(matches!(decode_image(&Image::png(HALVES_JPG)), Err(MenuImageError::Png(_))));
    assert!(matches!(decode_image(&Image::jpeg(png.clone())), Err(MenuImageError::Jpeg(_))));
    assert!(decode_image(&Image::png(Vec::new())).is_err());
    // A header claiming 4097 × 1 pixels is refused before its pixels are allocated.
    let side = MAX_IMAGE_SIDE + 1;
    let wide = RgbaImage { width: side, height: 1, pixels: vec![0; side as usize * 4] }.encode_png().unwrap();
    assert_eq!(
        decode_image(&Image::png(wide)),
        Err(MenuImageError::TooLarge { width: side, height: 1, max: MAX_IMAGE_SIDE })
    );
    // Every single-byte corruption and truncation of valid images: an error or an image, never a
    // panic (a caught decoder panic would show as DecoderPanicked).
    let mut outcomes = [0usize; 2];
    for (format, bytes) in [(true, png), (false, HALVES_JPG.to_vec()), (false, HALVES_PROGRESSIVE_JPG.to_vec())] {
        for i in 0..bytes.len() {
            for variant in 0..3 {
                let mut b = bytes.clone();
                match variant {
                    0 => b[i] ^= 0xff,
                    1 => b[i] = b[i].wrapping_add(1),
                    _ => b.truncate(i),
                }
                let image = if format { Image::png(b) } else { Image::jpeg(b) };
                let result = decode_image(&image);
                assert!(!matches!(result, Err(MenuImageError::DecoderPanicked(_))), "byte {i} variant {variant}");
                outcomes[usize::from(result.is_ok())] += 1;
            }
        }
    }
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}

#[test]
fn an_oversized_jpeg_is_refused_from_its_header() {
    // Patch the frame header (SOF0: FF C0, length, precision, height, width) to 4000 pixels wide.
    let mut jpg = HALVES_JPG.to_vec();
    let sof = jpg.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
    jpg[sof + 7..sof + 9].copy_from_slice(&4000u16.to_be_bytes());
    assert_eq!(
        decode_image(&Image::jpeg(jpg)),
        Err(MenuImageError::TooLarge { width: 4000, height: 16, max: MAX_IMAGE_SIDE })
    );
}

#[test]
fn hostile_sizes_and_long_lists_are_drawn_bounded() {
    let entries: Vec<String> = (0..4096).map(|i| format!("entry {i}")).collect();
    let mut menu = Menu::new(M, "huge").size(1e30, 1e30).column(|c| {
        c.list(ItemId(4), List::new(entries.clone()).multi())
            .sized(Sizing::Fixed(300.0))
            .element(ItemId(1), Label::new("giant").font_size(1e30))
            .sized(Sizing::Fixed(250.0))
            .node(Node::element(ItemId(2), Button::new("padded away")).padding(Padding::all(1e30)))
            .slider(ItemId(3), Slider::new(-3e38, 3e38).step(1e-30))
            .dropdown(ItemId(5), Dropdown::new(entries))
    });
    menu.root.padding = Padding::all(0.0);
    let mut h = Harness::builder().with_size(vec2(600.0, 600.0)).build_ui_state(
        |ui, s: &mut State| {
            let events = s.view.show(ui, &s.menu);
            s.events.extend(events);
        },
        State { view: MenuView::new(), menu, events: Vec::new(), origin: Pos2::ZERO },
    );
    h.run();
    // 1e30 points clamp to 128: the label stays within a few hundred pixels.
    assert!(rect_of(&h, "giant").height() < 400.0);
    // Only the rows in view of the 4096-entry list exist.
    assert!(h.query_by_label("entry 0").is_some());
    assert!(h.query_by_label("entry 4095").is_none());
    // The 1e30-wide menu is drawn MAX_MENU_SIDE wide: click the entry's visible start.
    let entry = rect_of(&h, "entry 0");
    assert!(entry.width() > MAX_MENU_SIDE - 20.0 && entry.width() < MAX_MENU_SIDE, "{entry:?}");
    click_at(&mut h, pos2(entry.left() + 20.0, entry.center().y));
    let events: Vec<MenuEvent> =
        take(&mut h).into_iter().filter(|e| !matches!(e.action, MenuAction::Hover { .. })).collect();
    assert_eq!(events, vec![ev(4, MenuAction::ListSelected { selected: vec![0] })]);
}

#[test]
fn images_show_labelled_cached_by_content_and_broken_ones_say_so() {
    let png = halves_png();
    let menu = Menu::new(M, "images").size(300.0, 200.0).row(|r| {
        r.image(ItemId(20), Image::png(png.clone()).scale(ImageScale::Fit))
            .image(ItemId(21), Image::png(png.clone()).scale(ImageScale::Stretch))
            .image(ItemId(22), Image::jpeg(HALVES_JPG).scale(ImageScale::Fill))
            .image(ItemId(23), Image::jpeg(&b"not a jpeg"[..]))
            .button(ItemId(24), Button::new("with icon").icon(Icon::Image(Image::png(png.clone()))))
    });
    let mut h = harness(menu);
    for label in ["image 20", "image 21", "image 22"] {
        assert_eq!(h.get_by_label(label).accesskit_node().role(), Role::Image);
    }
    let broken = h.get_by_label_contains("image 23: invalid JPEG");
    assert_eq!(broken.accesskit_node().role(), Role::Image);
    assert!(h.query_by_label("with icon").is_some());
    // Three distinct contents: the PNG (two images and an icon), the JPEG, the broken bytes.
    assert_eq!(h.state().view.cached_images(), 3);
    // A new image replaces the old texture; removing the others frees theirs.
    let menu = Menu::new(M, "images").size(300.0, 200.0).column(|c| c.image(ItemId(20), Image::jpeg(GREY_JPG)));
    h.state_mut().menu = menu;
    h.run();
    assert_eq!(h.state().view.cached_images(), 1);
    h.state_mut().view.forget(M);
    assert_eq!(h.state().view.cached_images(), 0);
}

#[test]
fn open_and_close_are_reported_once_per_change() {
    let mut view = MenuView::new();
    assert_eq!(view.set_open(M, true), Some(MenuEvent::open_close(M, true)));
    assert_eq!(view.set_open(M, true), None);
    assert_eq!(view.set_open(M, false), Some(MenuEvent::open_close(M, false)));
    assert_eq!(view.set_open(M, false), None);
    assert_eq!(view.set_open(MenuId(5), false), None, "a menu never opened does not close");
}

struct WindowState {
    view: MenuView,
    menu: Menu,
    open: bool,
    events: Vec<MenuEvent>,
}

#[test]
fn a_menu_window_reports_open_its_events_and_close() {
    let state = WindowState { view: MenuView::new(), menu: buttons_menu(), open: true, events: Vec::new() };
    let mut h = Harness::builder().with_size(vec2(700.0, 400.0)).build_ui_state(
        |ui, s: &mut WindowState| {
            let events = s.view.window(ui.ctx(), egui::Id::unique("menu window"), &s.menu, &mut s.open);
            s.events.extend(events);
        },
        state,
    );
    h.run();
    assert_eq!(std::mem::take(&mut h.state_mut().events), vec![MenuEvent::open_close(M, true)]);
    assert!(h.query_by_label("buttons").is_some(), "titled with the menu's title");
    h.get_by_label("Go").click();
    h.run();
    assert_eq!(std::mem::take(&mut h.state_mut().events), vec![hover(1, true), pressed(1, false)]);
    h.get_by_label("Close window").click();
    h.run();
    let events = std::mem::take(&mut h.state_mut().events);
    assert_eq!(events.last(), Some(&MenuEvent::open_close(M, false)), "{events:?}");
    assert!(!h.state().open);
    assert!(h.query_by_label("Go").is_none());
    // Reopened by the app.
    h.state_mut().open = true;
    h.run();
    assert_eq!(std::mem::take(&mut h.state_mut().events), vec![MenuEvent::open_close(M, true)]);
}
