//! Plugin menus drawn with egui: [`MenuView`] lays out the node tree of a
//! [`molstream_net::menu::Menu`] and shows every element kind, and returns what the user did as
//! [`MenuEvent`]s for the app to send to the plugin (`SessionClient::menu_event`).
//!
//! # Layout
//! The menu takes `width × height` logical pixels (at most [`MAX_MENU_SIDE`] each). Each node lays
//! its visible children out along its orientation inside its rect less its padding: a
//! [`Sizing::Fixed`] child takes that many pixels, a [`Sizing::Ratio`] child that fraction of the
//! node's inner length, and the [`Sizing::Expand`] children share what is left equally (nothing
//! when the others already overflow, which is clipped). Across the orientation a child takes the
//! node's whole inner extent. Hidden nodes take no space and draw nothing. A node's element fills
//! the node's inner rect, less a [`GUTTER`] so that neighbouring widgets do not touch, and is drawn
//! behind its children. Everything is clipped to its node.
//!
//! # Who owns the values
//! The plugin is authoritative: the view never changes the menu it is given. Toggles, dropdowns
//! and lists show the plugin's state, and their events carry the state the user asked for (a
//! toggle's flipped `selected`, the new selection). Text fields and sliders keep the user's
//! value while they are in use (focused, dragged), and afterwards until the plugin sends a
//! different value for that element; a plugin that ignores the edit leaves the user's value shown.
//!
//! # Accessibility
//! Every element's widget carries an accessible label, [`accessible_label`]: the text for labels
//! and buttons, the placeholder for text fields, the text for loading bars, otherwise the kind and
//! the node id (`slider 5`). Dropdown and list entries are labelled with their text.
//!
//! # Text
//! Label font sizes are kept within [`FONT_SIZES`]; bold labels use egui's strong text colour (the
//! default fonts have no bold face).
//!
//! # Icons
//! Named button icons ([`NAMED_ICONS`]) are drawn as vector shapes; image icons like images.
//!
//! # Images
//! PNG (the `png` crate) and baseline or progressive JPEG (`zune-jpeg`) are decoded once per
//! distinct content and kept as textures while an element shows them. Bytes that do not decode,
//! or decode to more than [`MAX_IMAGE_SIDE`] pixels on a side, are shown as a placeholder naming
//! the problem ([`MenuImageError`]); decoding never panics the viewer.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::Cursor;

use bytes::Bytes;
use egui::accesskit::Role;
use egui::{Align, Color32, Layout, Rect, RichText, Sense, TextWrapMode, UiBuilder, Vec2, WidgetInfo, pos2, vec2};
use molstream_net::menu::{
    Align as TextAlign, Button, Dropdown, Element, Icon, Image, ImageFormat, ImageScale, ItemId, Label, List,
    LoadingBar, MAX_MENU_DEPTH, MAX_MENU_NODES, Menu, MenuAction, MenuEvent, MenuId, Node, Orientation, Sizing, Slider,
    TextInput,
};
use molstream_net::proto::MAX_TEXT;

use crate::render::image::RgbaImage;

/// Space kept free around each element inside its node, in logical pixels, so that neighbouring
/// widgets do not touch. It does not change the layout.
pub const GUTTER: f32 = 2.0;

/// Largest decoded menu image, in pixels on a side (at most 16 MiB of RGBA).
pub const MAX_IMAGE_SIDE: u32 = 2048;

/// Largest menu drawn, in logical pixels on a side; larger menus are drawn this large.
pub const MAX_MENU_SIDE: f32 = 8192.0;

/// Font sizes of labels are drawn between these, in points (0 keeps the default size).
pub const FONT_SIZES: std::ops::RangeInclusive<f32> = 4.0..=128.0;

/// Why a menu image is not shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MenuImageError {
    /// The PNG decoder refused the bytes.
    #[error("invalid PNG: {0}")]
    Png(String),
    /// The JPEG decoder refused the bytes.
    #[error("invalid JPEG: {0}")]
    Jpeg(String),
    /// The image is larger than the viewer shows.
    #[error("image of {width}×{height} pixels exceeds {max} on a side")]
    TooLarge {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Largest side accepted.
        max: u32,
    },
    /// The image has no pixels.
    #[error("empty image")]
    Empty,
    /// A colour layout the viewer does not convert.
    #[error("unsupported colour layout: {0}")]
    Unsupported(String),
    /// The decoder panicked on these bytes (caught; the bytes are malformed).
    #[error("the {0} decoder failed on malformed data")]
    DecoderPanicked(&'static str),
}

/// Decodes a menu image to 8-bit RGBA, at most [`MAX_IMAGE_SIDE`] pixels on a side. The size is
/// checked from the header before any pixel buffer is allocated.
///
/// # Errors
/// [`MenuImageError`] for bytes that are not a decodable image of the declared format, images
/// too large, or colour layouts not converted. A panic inside a decoder is caught and reported
/// as [`MenuImageError::DecoderPanicked`].
pub fn decode_image(image: &Image) -> Result<RgbaImage, MenuImageError> {
    decode_bytes(image.format, &image.data, MAX_IMAGE_SIDE)
}

fn decode_bytes(format: ImageFormat, data: &[u8], max_side: u32) -> Result<RgbaImage, MenuImageError> {
    let (name, result) = match format {
        ImageFormat::Png => ("PNG", std::panic::catch_unwind(|| decode_png(data, max_side))),
        ImageFormat::Jpeg => ("JPEG", std::panic::catch_unwind(|| decode_jpeg(data, max_side))),
    };
    result.unwrap_or(Err(MenuImageError::DecoderPanicked(name)))
}

fn check_size(width: u32, height: u32, max: u32) -> Result<(), MenuImageError> {
    if width == 0 || height == 0 {
        Err(MenuImageError::Empty)
    } else if width > max || height > max {
        Err(MenuImageError::TooLarge { width, height, max })
    } else {
        Ok(())
    }
}

/// Expands 1 (grey), 2 (grey, alpha), 3 (RGB) or 4 (RGBA) channels to RGBA.
fn to_rgba(channels: usize, buf: Vec<u8>) -> Result<Vec<u8>, MenuImageError> {
    Ok(match channels {
        4 => buf,
        3 => buf.chunks_exact(3).flat_map(|c| [c[0], c[1], c[2], 255]).collect(),
        2 => buf.chunks_exact(2).flat_map(|c| [c[0], c[0], c[0], c[1]]).collect(),
        1 => buf.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        n => return Err(MenuImageError::Unsupported(format!("{n} channels"))),
    })
}

fn decode_png(data: &[u8], max_side: u32) -> Result<RgbaImage, MenuImageError> {
    let err = |e: png::DecodingError| MenuImageError::Png(e.to_string());
    // The limit covers the decoder's own buffers; the output buffer is checked below.
    let limits = png::Limits { bytes: 4 * (max_side as usize) * (max_side as usize) };
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(data), limits);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(err)?;
    let (width, height) = (reader.info().width, reader.info().height);
    check_size(width, height, max_side)?;
    let size = reader.output_buffer_size().ok_or(MenuImageError::TooLarge { width, height, max: max_side })?;
    let mut buf = vec![0; size];
    let info = reader.next_frame(&mut buf).map_err(err)?;
    buf.truncate(info.buffer_size());
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => return Err(MenuImageError::Unsupported(format!("PNG {other:?}"))),
    };
    let pixels = to_rgba(channels, buf)?;
    if pixels.len() != 4 * info.width as usize * info.height as usize {
        return Err(MenuImageError::Png("pixel data shorter than the image".into()));
    }
    Ok(RgbaImage { width: info.width, height: info.height, pixels })
}

fn decode_jpeg(data: &[u8], max_side: u32) -> Result<RgbaImage, MenuImageError> {
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    let err = |e: zune_jpeg::errors::DecodeErrors| MenuImageError::Jpeg(e.to_string());
    // The decoder's own size limit is lifted to the format's so that the header is read and the
    // size checked here, as for PNG, before any pixel buffer exists.
    let format_max = usize::from(u16::MAX);
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGBA)
        .set_max_width(format_max)
        .set_max_height(format_max);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(Cursor::new(data), options);
    decoder.decode_headers().map_err(err)?;
    let info = decoder.info().ok_or_else(|| MenuImageError::Jpeg("no header".into()))?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    check_size(width, height, max_side)?;
    let channels = decoder.output_colorspace().map_or(0, |c| c.num_components());
    let buf = decoder.decode().map_err(err)?;
    if buf.len() != channels * width as usize * height as usize {
        return Err(MenuImageError::Jpeg("pixel data does not match the image size".into()));
    }
    Ok(RgbaImage { width, height, pixels: to_rgba(channels, buf)? })
}

/// The accessible label of the widget that shows `node`'s element (`None` without one): the text
/// of labels and buttons (in the button's current state), the placeholder of text fields, the
/// text of loading bars, otherwise (or when that text is empty) the element's kind and the node
/// id, e.g. `slider 5`.
#[must_use]
pub fn accessible_label(node: &Node) -> Option<String> {
    let element = node.content.as_ref()?;
    let text = match element {
        Element::Label(l) => l.text.as_str(),
        Element::Button(b) => b.current_text(),
        Element::TextInput(t) => t.placeholder.as_str(),
        Element::LoadingBar(b) => b.text.as_str(),
        Element::Slider(_) | Element::Dropdown(_) | Element::List(_) | Element::Image(_) => "",
    };
    Some(if text.is_empty() { format!("{} {}", element.kind_name(), node.id.0) } else { text.to_owned() })
}

/// The built-in icons a button may name ([`Icon::Named`]), drawn as vector shapes (the default
/// fonts have no symbol glyphs). Other names are drawn as a dot.
pub const NAMED_ICONS: [&str; 18] = [
    "play", "pause", "stop", "close", "plus", "minus", "check", "up", "down", "left", "right", "refresh", "search",
    "info", "warning", "star", "settings", "home",
];

/// The shapes of the named icon `name` in `rect`, in `color` (a dot for names not in
/// [`NAMED_ICONS`]).
#[must_use]
pub fn icon_shapes(name: &str, rect: Rect, color: Color32) -> Vec<egui::Shape> {
    use egui::Shape;
    let side = rect.width().min(rect.height());
    let r = Rect::from_center_size(rect.center(), Vec2::splat(side * 0.8));
    // A point of the icon's square from fractions of its side.
    let p = |x: f32, y: f32| pos2(r.left() + x * r.width(), r.top() + y * r.height());
    let stroke = egui::Stroke::new((side / 9.0).max(1.0), color);
    let fill = |points: Vec<egui::Pos2>| Shape::convex_polygon(points, color, egui::Stroke::NONE);
    let line = |points: Vec<egui::Pos2>| Shape::line(points, stroke);
    let c = r.center();
    let radius = r.width() / 2.0;
    match name {
        "play" => vec![fill(vec![p(0.15, 0.0), p(0.95, 0.5), p(0.15, 1.0)])],
        "pause" => vec![
            Shape::rect_filled(Rect::from_min_max(p(0.15, 0.0), p(0.4, 1.0)), 0.0, color),
            Shape::rect_filled(Rect::from_min_max(p(0.6, 0.0), p(0.85, 1.0)), 0.0, color),
        ],
        "stop" => vec![Shape::rect_filled(Rect::from_min_max(p(0.1, 0.1), p(0.9, 0.9)), 1.0, color)],
        "close" => vec![line(vec![p(0.1, 0.1), p(0.9, 0.9)]), line(vec![p(0.9, 0.1), p(0.1, 0.9)])],
        "plus" => vec![line(vec![p(0.5, 0.05), p(0.5, 0.95)]), line(vec![p(0.05, 0.5), p(0.95, 0.5)])],
        "minus" => vec![line(vec![p(0.05, 0.5), p(0.95, 0.5)])],
        "check" => vec![line(vec![p(0.05, 0.55), p(0.38, 0.85), p(0.95, 0.15)])],
        "up" => vec![fill(vec![p(0.5, 0.15), p(0.95, 0.8), p(0.05, 0.8)])],
        "down" => vec![fill(vec![p(0.05, 0.2), p(0.95, 0.2), p(0.5, 0.85)])],
        "left" => vec![fill(vec![p(0.15, 0.5), p(0.8, 0.05), p(0.8, 0.95)])],
        "right" => vec![fill(vec![p(0.2, 0.05), p(0.85, 0.5), p(0.2, 0.95)])],
        "refresh" => {
            // Three quarters of a circle and an arrow head at its end.
            let arc = (0..=18)
                .map(|i| {
                    let a = -std::f32::consts::FRAC_PI_2 + i as f32 / 18.0 * 1.5 * std::f32::consts::PI;
                    c + radius * 0.8 * vec2(a.cos(), a.sin())
                })
                .collect();
            vec![line(arc), fill(vec![p(0.5, -0.05), p(0.8, 0.1), p(0.5, 0.3)])]
        }
        "search" => {
            vec![Shape::circle_stroke(p(0.42, 0.42), radius * 0.6, stroke), line(vec![p(0.64, 0.64), p(0.95, 0.95)])]
        }
        "info" => vec![
            Shape::circle_stroke(c, radius, stroke),
            Shape::circle_filled(p(0.5, 0.28), stroke.width * 0.8, color),
            line(vec![p(0.5, 0.45), p(0.5, 0.78)]),
        ],
        "warning" => vec![
            Shape::closed_line(vec![p(0.5, 0.02), p(0.98, 0.95), p(0.02, 0.95)], stroke),
            line(vec![p(0.5, 0.35), p(0.5, 0.65)]),
            Shape::circle_filled(p(0.5, 0.8), stroke.width * 0.7, color),
        ],
        "star" => {
            let points = (0..10)
                .map(|i| {
                    let a = -std::f32::consts::FRAC_PI_2 + i as f32 * std::f32::consts::PI / 5.0;
                    let k = if i % 2 == 0 { radius } else { radius * 0.45 };
                    c + k * vec2(a.cos(), a.sin())
                })
                .collect();
            vec![Shape::closed_line(points, stroke)]
        }
        "settings" => {
            let mut shapes = vec![Shape::circle_stroke(c, radius * 0.5, stroke)];
            for i in 0..8 {
                let a = i as f32 * std::f32::consts::FRAC_PI_4;
                let d = vec2(a.cos(), a.sin());
                shapes.push(line(vec![c + d * radius * 0.6, c + d * radius]));
            }
            shapes
        }
        "home" => vec![Shape::closed_line(
            vec![p(0.5, 0.05), p(0.95, 0.45), p(0.8, 0.45), p(0.8, 0.95), p(0.2, 0.95), p(0.2, 0.45), p(0.05, 0.45)],
            stroke,
        )],
        _ => vec![Shape::circle_filled(c, radius * 0.35, color)],
    }
}

/// Where the visible children of a node go: `(index in node.children, rect)` in layout order,
/// inside `inner` (the node's rect less its padding). See the module docs for the rules.
#[must_use]
pub fn layout_children(node: &Node, inner: Rect) -> Vec<(usize, Rect)> {
    let horizontal = node.orientation == Orientation::Horizontal;
    let length = if horizontal { inner.width() } else { inner.height() };
    let visible: Vec<(usize, &Node)> = node.children.iter().enumerate().filter(|(_, c)| c.visible).collect();
    let mut taken = 0.0;
    let mut expanding = 0usize;
    for (_, c) in &visible {
        match c.sizing {
            Sizing::Fixed(v) => taken += v,
            Sizing::Ratio(r) => taken += r * length,
            Sizing::Expand => expanding += 1,
        }
    }
    let share = if expanding == 0 { 0.0 } else { (length - taken).max(0.0) / expanding as f32 };
    let mut at = if horizontal { inner.left() } else { inner.top() };
    visible
        .into_iter()
        .map(|(i, c)| {
            let size = match c.sizing {
                Sizing::Fixed(v) => v,
                Sizing::Ratio(r) => r * length,
                Sizing::Expand => share,
            };
            let rect = if horizontal {
                Rect::from_min_size(pos2(at, inner.top()), vec2(size, inner.height()))
            } else {
                Rect::from_min_size(pos2(inner.left(), at), vec2(inner.width(), size))
            };
            at += size;
            (i, rect)
        })
        .collect()
}

/// `rect` less `node`'s padding (empty, not inverted, when the padding exceeds it).
fn padded(node: &Node, rect: Rect) -> Rect {
    let p = node.padding;
    let min = pos2(rect.left() + p.left, rect.top() + p.top);
    let max = pos2((rect.right() - p.right).max(min.x), (rect.bottom() - p.bottom).max(min.y));
    Rect::from_min_max(min, max)
}

/// Where an image of `size` pixels is drawn in `rect` and which part of it (UV, 0–1): the whole
/// image fitted with its aspect kept and centred, the rect filled with the aspect kept and the
/// image cropped around its centre, or the rect filled and the image stretched.
#[must_use]
pub fn image_placement(scale: ImageScale, size: Vec2, rect: Rect) -> (Rect, Rect) {
    let full = Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0));
    if size.x <= 0.0 || size.y <= 0.0 || rect.width() <= 0.0 || rect.height() <= 0.0 {
        return (Rect::from_min_size(rect.min, Vec2::ZERO), full);
    }
    let (sx, sy) = (rect.width() / size.x, rect.height() / size.y);
    match scale {
        ImageScale::Stretch => (rect, full),
        ImageScale::Fit => (Rect::from_center_size(rect.center(), size * sx.min(sy)), full),
        ImageScale::Fill => {
            // The part of the image, in UV, that has the rect's aspect.
            let shown = rect.size() / (size * sx.max(sy));
            (rect, Rect::from_center_size(pos2(0.5, 0.5), shown))
        }
    }
}

/// A text field being edited, or edited and not yet answered by the plugin.
#[derive(Debug, Clone)]
struct TextState {
    /// The plugin's text when the edit began.
    base: String,
    /// The user's text.
    text: String,
}

/// A slider being dragged, or moved and not yet answered by the plugin.
#[derive(Debug, Clone, Copy)]
struct SliderState {
    /// The plugin's value when the move began.
    base: f32,
    /// The user's value.
    value: f32,
    /// The pointer still holds it.
    dragging: bool,
}

/// Which image of a node: its content or its button's icon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ImageSlot {
    Content(ItemId),
    Icon(ItemId),
}

/// The image bytes an element showed last and the key of their texture. Holding the bytes keeps
/// their allocation alive, so the same pointer and length mean the same content.
#[derive(Debug, Clone)]
struct ShownImage {
    data: Bytes,
    key: u64,
}

/// A decoded image as a texture, or why it is not shown.
type Texture = Result<egui::TextureHandle, MenuImageError>;

/// What the view remembers of one menu between frames.
#[derive(Debug, Default)]
struct MenuState {
    /// Whether the app reported the menu's window open ([`MenuView::set_open`]).
    open: bool,
    texts: HashMap<ItemId, TextState>,
    sliders: HashMap<ItemId, SliderState>,
    /// Elements under the pointer in the last pass.
    hovered: BTreeSet<ItemId>,
    images: HashMap<ImageSlot, ShownImage>,
}

/// What one [`MenuView::show`] gathers while it draws.
struct Pass {
    menu: MenuId,
    /// The menu takes input (enabled).
    live: bool,
    events: Vec<MenuEvent>,
    hovered: BTreeSet<ItemId>,
    /// Nodes with an element drawn this pass.
    shown: HashSet<ItemId>,
    /// Image slots drawn this pass.
    images: HashSet<ImageSlot>,
}

impl Pass {
    fn push(&mut self, item: ItemId, action: MenuAction) {
        if self.live {
            self.events.push(MenuEvent { menu: self.menu, item, action });
        }
    }
}

/// Shows plugin menus and turns the user's actions into [`MenuEvent`]s.
///
/// One view serves every menu of one plugin instance (menu ids are unique per instance): it keeps,
/// per menu, the text being edited, the slider value being dragged, the elements under the pointer
/// and the open/closed state of the menu's window, and caches image textures by content.
/// Use one view per instance, so that two instances' menus with the same id do not share state.
#[derive(Default)]
pub struct MenuView {
    menus: HashMap<MenuId, MenuState>,
    textures: HashMap<u64, Texture>,
}

impl std::fmt::Debug for MenuView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MenuView").field("menus", &self.menus.len()).field("textures", &self.textures.len()).finish()
    }
}

impl MenuView {
    /// A view with no state.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Draws `menu` at the cursor of `ui`, `menu.width × menu.height` logical pixels (at most
    /// [`MAX_MENU_SIDE`] each), and returns
    /// what the user did this frame, in order: pointer enter/leave ([`MenuAction::Hover`]) first,
    /// then the elements' events in tree order. A menu whose `enabled` flag is off is drawn greyed
    /// out and reports nothing.
    ///
    /// Widget ids derive from `ui`'s id, the menu id and the node ids, so the same menu shown in
    /// two places of one frame must be shown under different `ui` ids.
    pub fn show(&mut self, ui: &mut egui::Ui, menu: &Menu) -> Vec<MenuEvent> {
        let size = vec2(menu.width.min(MAX_MENU_SIDE), menu.height.min(MAX_MENU_SIDE));
        let (rect, _) = ui.allocate_exact_size(size, Sense::hover());
        let mut root = ui.new_child(
            UiBuilder::new().id_salt(("molstream-menu", menu.id.0)).max_rect(rect).layout(Layout::top_down(Align::Min)),
        );
        root.set_clip_rect(ui.clip_rect().intersect(rect));
        if !menu.enabled {
            root.disable();
        }
        let mut pass = Pass {
            menu: menu.id,
            live: menu.enabled,
            events: Vec::new(),
            hovered: BTreeSet::new(),
            shown: HashSet::new(),
            images: HashSet::new(),
        };
        let mut placed = Vec::new();
        place(&menu.root, rect, root.clip_rect(), 1, &mut placed);
        // Hover changes first: the pointer reached an element before it pressed it.
        if pass.live {
            for p in placed.iter().filter(|p| p.node.content.is_some()) {
                if root.rect_contains_pointer(p.clip.intersect(p.rect)) {
                    pass.hovered.insert(p.node.id);
                }
            }
        }
        let state = self.menus.entry(menu.id).or_default();
        let before = std::mem::replace(&mut state.hovered, pass.hovered.clone());
        let now = pass.hovered.clone();
        for item in before.difference(&now) {
            pass.push(*item, MenuAction::Hover { entered: false });
        }
        for item in now.difference(&before) {
            pass.push(*item, MenuAction::Hover { entered: true });
        }
        for p in &placed {
            self.element(&mut root, &mut pass, p);
        }
        self.forget_unshown(menu.id, &pass);
        pass.events
    }

    /// Records whether the app shows the window of `menu` and returns the event the plugin should
    /// get: [`MenuAction::Opened`] when it was not open before, [`MenuAction::Closed`] when it was,
    /// nothing when unchanged. Call it every frame with the window's state (or on each change).
    pub fn set_open(&mut self, menu: MenuId, open: bool) -> Option<MenuEvent> {
        let state = self.menus.entry(menu).or_default();
        if state.open == open {
            return None;
        }
        state.open = open;
        Some(MenuEvent::open_close(menu, open))
    }

    /// Shows `menu` in an egui window titled with the menu's title and sized to the menu, with a
    /// close button that clears `open`. Returns the menu's events ([`MenuView::show`]) preceded by
    /// [`MenuAction::Opened`] the first frame the window shows and followed by
    /// [`MenuAction::Closed`] when the user closes it (see [`MenuView::set_open`]). A menu whose
    /// `enabled` flag is off is not shown and reports nothing. `id` must be unique per instance and
    /// menu.
    pub fn window(&mut self, ctx: &egui::Context, id: egui::Id, menu: &Menu, open: &mut bool) -> Vec<MenuEvent> {
        let mut events = Vec::new();
        if !menu.enabled {
            return events;
        }
        events.extend(self.set_open(menu.id, *open));
        if !*open {
            return events;
        }
        let shown = egui::Window::new(menu.title.as_str())
            .id(id)
            .open(open)
            .resizable(false)
            .show(ctx, |ui| self.show(ui, menu));
        if let Some(inner) = shown.and_then(|r| r.inner) {
            events.extend(inner);
        }
        events.extend(self.set_open(menu.id, *open));
        events
    }

    /// Forgets everything about `menu` (call it when the plugin removes the menu): its edits,
    /// hover and open state, and the textures only it used.
    pub fn forget(&mut self, menu: MenuId) {
        self.menus.remove(&menu);
        self.drop_unused_textures();
    }

    /// Number of image textures held (decoded images and decoding failures, one per distinct
    /// content shown).
    #[must_use]
    pub fn cached_images(&self) -> usize {
        self.textures.len()
    }

    fn forget_unshown(&mut self, menu: MenuId, pass: &Pass) {
        if let Some(state) = self.menus.get_mut(&menu) {
            state.texts.retain(|id, _| pass.shown.contains(id));
            state.sliders.retain(|id, _| pass.shown.contains(id));
            state.images.retain(|slot, _| pass.images.contains(slot));
        }
        self.drop_unused_textures();
    }

    fn drop_unused_textures(&mut self) {
        let used: HashSet<u64> = self.menus.values().flat_map(|m| m.images.values().map(|i| i.key)).collect();
        self.textures.retain(|key, _| used.contains(key));
    }

    /// The texture of `image` shown in `slot` of `menu`, decoding it if its content is new.
    fn texture(&mut self, ctx: &egui::Context, menu: MenuId, slot: ImageSlot, image: &Image) -> Texture {
        let state = self.menus.entry(menu).or_default();
        let known = state
            .images
            .get(&slot)
            .filter(|s| s.data.as_ptr() == image.data.as_ptr() && s.data.len() == image.data.len())
            .map(|s| s.key);
        let key = known.unwrap_or_else(|| {
            let mut h = std::hash::DefaultHasher::new();
            (image.format as u8).hash(&mut h);
            image.data.hash(&mut h);
            h.finish()
        });
        state.images.insert(slot, ShownImage { data: image.data.clone(), key });
        self.textures
            .entry(key)
            .or_insert_with(|| {
                let max = MAX_IMAGE_SIDE.min(u32::try_from(ctx.input(|i| i.max_texture_side)).unwrap_or(u32::MAX));
                let rgba = decode_bytes(image.format, &image.data, max)?;
                let color =
                    egui::ColorImage::from_rgba_unmultiplied([rgba.width as usize, rgba.height as usize], &rgba.pixels);
                Ok(ctx.load_texture(format!("menu-image-{key:016x}"), color, egui::TextureOptions::LINEAR))
            })
            .clone()
    }

    fn element(&mut self, root: &mut egui::Ui, pass: &mut Pass, p: &Placed<'_>) {
        let Some(element) = &p.node.content else { return };
        let item = p.node.id;
        pass.shown.insert(item);
        let rect = p.rect.shrink(GUTTER);
        let mut ui = root.new_child(
            UiBuilder::new().id_salt(("item", item.0)).max_rect(rect).layout(Layout::left_to_right(Align::Center)),
        );
        ui.set_clip_rect(p.clip.intersect(p.rect));
        let label = accessible_label(p.node).unwrap_or_default();
        match element {
            Element::Label(l) => show_label(&mut ui, l, rect),
            Element::Button(b) => self.button(&mut ui, pass, item, b, rect, &label),
            Element::TextInput(t) => self.text_input(&mut ui, pass, item, t, rect, &label),
            Element::Slider(s) => self.slider(&mut ui, pass, item, *s, rect, &label),
            Element::Dropdown(d) => dropdown(&mut ui, pass, item, d, rect, &label),
            Element::List(l) => list(&mut ui, pass, item, l, rect, &label),
            Element::Image(img) => self.image(&mut ui, pass, item, img, rect, &label),
            Element::LoadingBar(b) => loading_bar(&mut ui, b, rect, &label),
        }
    }

    fn button(&mut self, ui: &mut egui::Ui, pass: &mut Pass, item: ItemId, b: &Button, rect: Rect, label: &str) {
        let text = b.current_text();
        let icon_side = ui.text_style_height(&egui::TextStyle::Button);
        let mut atoms = egui::Atoms::default();
        match &b.icon {
            None => {}
            Some(Icon::Named(name)) => {
                let name = name.clone();
                atoms.push_right(egui::Atom::paint(Vec2::splat(icon_side), move |ui, args| {
                    ui.painter().extend(icon_shapes(&name, args.rect, args.fallback_text_color));
                }));
            }
            Some(Icon::Image(image)) => {
                match self.texture(ui.ctx(), pass.menu, ImageSlot::Icon(item), image) {
                    Ok(tex) => {
                        atoms.push_right(egui::Image::from_texture(&tex).fit_to_exact_size(Vec2::splat(icon_side)));
                    }
                    Err(_) => atoms.push_right(egui::Atom::paint(Vec2::splat(icon_side), |ui, args| {
                        broken_image(ui.painter(), args.rect);
                    })),
                }
                pass.images.insert(ImageSlot::Icon(item));
            }
        }
        if !text.is_empty() {
            atoms.push_right(text);
        }
        let mut button = egui::Button::new(atoms).min_size(rect.size()).truncate();
        if b.toggle {
            button = button.selected(b.selected);
        }
        let response = ui.add_enabled(!b.disabled, button);
        set_label(ui, response.id, label);
        if response.clicked() {
            pass.push(item, MenuAction::Pressed { selected: if b.toggle { !b.selected } else { b.selected } });
        }
    }

    fn text_input(&mut self, ui: &mut egui::Ui, pass: &mut Pass, item: ItemId, t: &TextInput, rect: Rect, label: &str) {
        let id = ui.make_persistent_id("text");
        let focused = ui.memory(|m| m.has_focus(id));
        let state = self.menus.entry(pass.menu).or_default();
        let kept = state.texts.get(&item).filter(|s| focused || s.base == t.text).cloned();
        let shown = kept.as_ref().map_or(t.text.as_str(), |s| s.text.as_str()).to_owned();
        let mut text = shown.clone();
        let mut edit = egui::TextEdit::singleline(&mut text)
            .id(id)
            .hint_text(t.placeholder.as_str())
            .password(t.password)
            .desired_width(rect.width());
        if t.max_len > 0 {
            edit = edit.char_limit(t.max_len as usize);
        }
        let response = ui.add_enabled(!t.disabled, edit);
        set_label(ui, response.id, label);
        if response.changed() {
            if t.numeric {
                text.retain(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.'));
            }
            truncate_to(&mut text, MAX_TEXT);
            if text != shown {
                pass.push(item, MenuAction::TextChanged { text: text.clone() });
            }
        }
        let base = kept.map_or_else(|| t.text.clone(), |s| s.base);
        if text != t.text || response.has_focus() {
            state.texts.insert(item, TextState { base, text: text.clone() });
        } else {
            state.texts.remove(&item);
        }
        if response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
            pass.push(item, MenuAction::TextSubmitted { text });
        }
    }

    fn slider(&mut self, ui: &mut egui::Ui, pass: &mut Pass, item: ItemId, s: Slider, rect: Rect, label: &str) {
        let state = self.menus.entry(pass.menu).or_default();
        let kept = state.sliders.get(&item).copied().filter(|k| k.dragging || k.base == s.value);
        let shown = kept.map_or(s.value, |k| k.value);
        let mut value = shown;
        ui.spacing_mut().slider_width = rect.width();
        let mut slider = egui::Slider::new(&mut value, s.min..=s.max).show_value(false);
        if s.step > 0.0 {
            slider = slider.step_by(f64::from(s.step));
        }
        let response = ui.add(slider);
        set_label(ui, response.id, label);
        let changed = value != shown;
        if changed {
            pass.push(item, MenuAction::SliderChanged { value });
        }
        let active = response.dragged() || response.is_pointer_button_down_on();
        let base = kept.map_or(s.value, |k| k.base);
        let was_dragging = kept.is_some_and(|k| k.dragging);
        if active {
            state.sliders.insert(item, SliderState { base, value, dragging: true });
        } else if was_dragging || changed {
            pass.push(item, MenuAction::SliderReleased { value });
            state.sliders.insert(item, SliderState { base, value, dragging: false });
        } else if kept.is_none() {
            state.sliders.remove(&item);
        }
    }

    fn image(&mut self, ui: &mut egui::Ui, pass: &mut Pass, item: ItemId, img: &Image, rect: Rect, label: &str) {
        let texture = self.texture(ui.ctx(), pass.menu, ImageSlot::Content(item), img);
        pass.images.insert(ImageSlot::Content(item));
        let response = ui.allocate_rect(rect, Sense::hover());
        match texture {
            Ok(tex) => {
                let (dest, uv) = image_placement(img.scale, tex.size_vec2(), rect);
                let tint = if ui.is_enabled() { Color32::WHITE } else { Color32::from_gray(128) };
                ui.painter().image(tex.id(), dest, uv, tint);
                response.widget_info(|| WidgetInfo::labeled(Role::Image, ui.is_enabled(), label));
            }
            Err(e) => {
                let painter = ui.painter();
                painter.rect_stroke(rect, 2.0, ui.visuals().widgets.noninteractive.bg_stroke, egui::StrokeKind::Inside);
                let what = match (&e, img.format) {
                    (MenuImageError::TooLarge { .. }, _) => "image too large",
                    (MenuImageError::Empty, _) => "empty image",
                    (MenuImageError::Unsupported(_), _) => "unsupported image",
                    (_, ImageFormat::Png) => "invalid PNG image",
                    (_, ImageFormat::Jpeg) => "invalid JPEG image",
                };
                painter.text(
                    rect.center(),
                    egui::Align2::CENTER_CENTER,
                    what,
                    egui::FontId::proportional(11.0),
                    ui.visuals().warn_fg_color,
                );
                let message = format!("{label}: {e}");
                response
                    .on_hover_text(message.clone())
                    .widget_info(|| WidgetInfo::labeled(Role::Image, ui.is_enabled(), &message));
            }
        }
    }
}

/// A node placed by the layout: its rect and the clip of its ancestors.
struct Placed<'a> {
    node: &'a Node,
    rect: Rect,
    clip: Rect,
}

/// Places `node` (visible) in `rect` and its subtree after it, depth first, at most
/// [`MAX_MENU_NODES`] nodes [`MAX_MENU_DEPTH`] deep (what a menu off the wire holds at most).
fn place<'a>(node: &'a Node, rect: Rect, clip: Rect, depth: usize, out: &mut Vec<Placed<'a>>) {
    if !node.visible || depth > MAX_MENU_DEPTH || out.len() >= MAX_MENU_NODES {
        return;
    }
    let clip = clip.intersect(rect);
    let inner = padded(node, rect);
    out.push(Placed { node, rect: inner, clip });
    for (i, r) in layout_children(node, inner) {
        if let Some(child) = node.children.get(i) {
            place(child, r, clip, depth + 1, out);
        }
    }
}

/// Sets the accessible label of widget `id` (after the widget reported its own info).
fn set_label(ui: &egui::Ui, id: egui::Id, label: &str) {
    if label.is_empty() {
        return;
    }
    ui.ctx().accesskit_node_builder(id, |node| node.set_label(label));
}

/// Cuts `text` to at most `max` bytes at a character boundary.
fn truncate_to(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// A crossed box: an image that could not be shown.
fn broken_image(painter: &egui::Painter, rect: Rect) {
    let stroke = egui::Stroke::new(1.0, Color32::from_rgb(200, 80, 60));
    painter.rect_stroke(rect, 1.0, stroke, egui::StrokeKind::Inside);
    painter.line_segment([rect.left_top(), rect.right_bottom()], stroke);
    painter.line_segment([rect.right_top(), rect.left_bottom()], stroke);
}

fn show_label(ui: &mut egui::Ui, l: &Label, rect: Rect) {
    let mut text = RichText::new(l.text.as_str());
    if l.font_size > 0.0 {
        text = text.size(l.font_size.clamp(*FONT_SIZES.start(), *FONT_SIZES.end()));
    }
    if l.bold {
        text = text.strong();
    }
    let align = match l.align {
        TextAlign::Left => Align::Min,
        TextAlign::Center => Align::Center,
        TextAlign::Right => Align::Max,
    };
    ui.with_layout(Layout::top_down(align), |ui| {
        let galley = egui::WidgetText::from(text).into_galley(
            ui,
            Some(TextWrapMode::Wrap),
            rect.width(),
            egui::FontSelection::Default,
        );
        ui.add_space(((rect.height() - galley.size().y) / 2.0).max(0.0));
        ui.add(egui::Label::new(galley));
    });
}

fn dropdown(ui: &mut egui::Ui, pass: &mut Pass, item: ItemId, d: &Dropdown, rect: Rect, label: &str) {
    let current = d.selected.and_then(|i| d.items.get(i as usize)).map_or("—", String::as_str);
    let mut chosen = None;
    let response = egui::ComboBox::from_id_salt("dropdown")
        .selected_text(current)
        .width(rect.width())
        .truncate()
        .show_ui(ui, |ui| {
            for (i, entry) in d.items.iter().enumerate() {
                let index = u32::try_from(i).unwrap_or(u32::MAX);
                if ui.selectable_label(d.selected == Some(index), entry.as_str()).clicked() {
                    chosen = Some(index);
                }
            }
        })
        .response;
    set_label(ui, response.id, label);
    if let Some(index) = chosen
        && d.selected != Some(index)
    {
        pass.push(item, MenuAction::DropdownChosen { index });
    }
}

fn list(ui: &mut egui::Ui, pass: &mut Pass, item: ItemId, l: &List, rect: Rect, label: &str) {
    let mut clicked = None;
    ui.scope_builder(
        UiBuilder::new().max_rect(rect).layout(Layout::top_down_justified(Align::Min)).accessibility_label(label),
        |ui| {
            egui::Frame::group(ui.style()).inner_margin(2).show(ui, |ui| {
                ui.set_min_size(ui.available_size());
                // Only the rows in view are laid out (lists hold up to 4096 entries).
                let row = ui.text_style_height(&egui::TextStyle::Button) + 2.0 * ui.spacing().button_padding.y;
                let row = row.max(ui.spacing().interact_size.y);
                egui::ScrollArea::vertical().id_salt("list").auto_shrink(false).show_rows(
                    ui,
                    row,
                    l.items.len(),
                    |ui, rows| {
                        for i in rows {
                            let (Some(entry), Ok(index)) = (l.items.get(i), u32::try_from(i)) else { continue };
                            if ui.selectable_label(l.selected.contains(&index), entry.as_str()).clicked() {
                                clicked = Some(index);
                            }
                        }
                    },
                );
            });
        },
    );
    let Some(index) = clicked else { return };
    let selected = if l.multi {
        let mut s: Vec<u32> = l.selected.iter().copied().filter(|&i| i != index).collect();
        if !l.selected.contains(&index) {
            s.push(index);
            s.sort_unstable();
        }
        s
    } else {
        vec![index]
    };
    if selected != l.selected {
        pass.push(item, MenuAction::ListSelected { selected });
    }
}

fn loading_bar(ui: &mut egui::Ui, b: &LoadingBar, rect: Rect, label: &str) {
    let mut bar = egui::ProgressBar::new(b.progress).desired_width(rect.width());
    if !b.text.is_empty() {
        bar = bar.text(b.text.as_str());
    }
    if b.failed {
        bar = bar.fill(ui.visuals().error_fg_color);
    }
    let response = ui.add(bar);
    set_label(ui, response.id, label);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use molstream_net::menu::Padding;

    fn r(x0: f32, y0: f32, x1: f32, y1: f32) -> Rect {
        Rect::from_min_max(pos2(x0, y0), pos2(x1, y1))
    }

    fn child(id: u32, sizing: Sizing) -> Node {
        Node::new(ItemId(id)).sizing(sizing)
    }

    #[test]
    fn fixed_ratio_and_expand_share_a_row() {
        let mut row = Node::new(ItemId(1)).orientation(Orientation::Horizontal);
        row.children = vec![
            child(2, Sizing::Fixed(100.0)),
            child(3, Sizing::Ratio(0.25)),
            child(4, Sizing::Expand),
            child(5, Sizing::Expand).visible(false),
            child(6, Sizing::Expand),
        ];
        let placed = layout_children(&row, r(10.0, 20.0, 410.0, 70.0));
        let got: Vec<(usize, Rect)> = placed;
        assert_eq!(
            got,
            vec![
                (0, r(10.0, 20.0, 110.0, 70.0)),
                (1, r(110.0, 20.0, 210.0, 70.0)),
                (2, r(210.0, 20.0, 310.0, 70.0)),
                (4, r(310.0, 20.0, 410.0, 70.0)),
            ]
        );
    }

    #[test]
    fn a_column_stacks_and_overflowing_children_leave_expand_nothing() {
        let mut col = Node::new(ItemId(1));
        col.children = vec![child(2, Sizing::Fixed(80.0)), child(3, Sizing::Ratio(0.5)), child(4, Sizing::Expand)];
        let placed = layout_children(&col, r(0.0, 0.0, 50.0, 100.0));
        assert_eq!(
            placed,
            vec![(0, r(0.0, 0.0, 50.0, 80.0)), (1, r(0.0, 80.0, 50.0, 130.0)), (2, r(0.0, 130.0, 50.0, 130.0))]
        );
    }

    #[test]
    fn padding_shrinks_and_never_inverts() {
        let n = Node::new(ItemId(1)).padding(Padding { left: 5.0, right: 10.0, top: 1.0, bottom: 2.0 });
        assert_eq!(padded(&n, r(0.0, 0.0, 100.0, 50.0)), r(5.0, 1.0, 90.0, 48.0));
        let n = Node::new(ItemId(1)).padding(Padding::all(40.0));
        let p = padded(&n, r(0.0, 0.0, 50.0, 50.0));
        assert_eq!((p.width(), p.height()), (0.0, 0.0));
    }

    #[test]
    fn images_fit_fill_and_stretch() {
        let rect = r(0.0, 0.0, 200.0, 100.0);
        let full = r(0.0, 0.0, 1.0, 1.0);
        // A square image fitted in a 2:1 rect: 100×100, centred.
        assert_eq!(image_placement(ImageScale::Fit, vec2(50.0, 50.0), rect), (r(50.0, 0.0, 150.0, 100.0), full));
        // Filled: the whole rect, the middle half of the image's height.
        assert_eq!(image_placement(ImageScale::Fill, vec2(50.0, 50.0), rect), (rect, r(0.0, 0.25, 1.0, 0.75)));
        assert_eq!(image_placement(ImageScale::Stretch, vec2(50.0, 50.0), rect), (rect, full));
        // Degenerate sizes draw nothing rather than dividing by zero.
        assert_eq!(image_placement(ImageScale::Fit, vec2(0.0, 5.0), rect).0.area(), 0.0);
    }

    #[test]
    fn labels_name_every_element() {
        let n = |e: Element| Node::element(ItemId(7), e);
        assert_eq!(accessible_label(&n(Label::new("hi").into())).unwrap(), "hi");
        assert_eq!(accessible_label(&n(Button::toggle("off", "on").selected(true).into())).unwrap(), "on");
        assert_eq!(accessible_label(&n(TextInput::new().placeholder("name").into())).unwrap(), "name");
        assert_eq!(accessible_label(&n(TextInput::new().into())).unwrap(), "text input 7");
        assert_eq!(accessible_label(&n(Slider::new(0.0, 1.0).into())).unwrap(), "slider 7");
        assert_eq!(accessible_label(&n(LoadingBar::new(0.5).text("half").into())).unwrap(), "half");
        assert_eq!(accessible_label(&n(Image::png(vec![1, 2]).into())).unwrap(), "image 7");
        assert_eq!(accessible_label(&Node::new(ItemId(7))), None);
    }

    #[test]
    fn every_named_icon_draws_inside_its_rect_and_unknown_names_draw_a_dot() {
        let rect = r(10.0, 20.0, 30.0, 40.0);
        let mut seen = Vec::new();
        for name in NAMED_ICONS {
            let shapes = icon_shapes(name, rect, Color32::WHITE);
            assert!(!shapes.is_empty(), "{name}");
            let bounds = shapes.iter().map(egui::Shape::visual_bounding_rect).fold(Rect::NOTHING, |a, b| a.union(b));
            assert!(rect.expand(2.0).contains_rect(bounds), "{name}: {bounds:?}");
            let debug = format!("{shapes:?}");
            assert!(!seen.contains(&debug), "{name} looks like another icon");
            seen.push(debug);
        }
        let dot = icon_shapes("no such icon", rect, Color32::WHITE);
        assert!(matches!(dot.as_slice(), [egui::Shape::Circle(c)] if c.center == rect.center()));
    }

    #[test]
    fn text_is_cut_at_a_character_boundary() {
        let mut s = "aé".repeat(3000);
        truncate_to(&mut s, MAX_TEXT);
        assert!(s.len() <= MAX_TEXT && s.len() >= MAX_TEXT - 1);
        assert!(s.is_char_boundary(s.len()));
    }
}
