//! Menus: windows of UI elements that a plugin instance shows to the users of its room, and
//! the events users send back.
//!
//! A [`Menu`] has a title, a size, an `enabled` (shown) flag and a tree of layout [`Node`]s;
//! each node has an orientation, a sizing, a padding, children, and optionally one content
//! [`Element`]: a [`Label`], [`Button`], [`TextInput`], [`Slider`], [`Dropdown`], [`List`],
//! [`Image`] or [`LoadingBar`]. Nodes are addressed by an [`ItemId`] unique within their menu;
//! the content of a node is addressed by the node's id.
//!
//! The instance sends [`MenuUpdate`]s (`ToSession` tags 60–65): a whole menu, its properties
//! only, one node (with its subtree), one node's content, the removal of a node, the removal of
//! a menu. Users send [`MenuEvent`]s (`ToPlugin` tag 60): presses, hovers, slider moves and
//! releases, text edits and submissions, dropdown choices, list selections, menu open/close.
//! Every update reaches every user of the room and is retained by the relay for users who join
//! later (see `host::Session::update_menu`).
//!
//! ```
//! use molstream_net::menu::{Button, ItemId, Menu, MenuId, Sizing, Slider};
//!
//! const GO: ItemId = ItemId(1);
//! const SPEED: ItemId = ItemId(2);
//! const SPEED_LABEL: ItemId = ItemId(3);
//!
//! let menu = Menu::new(MenuId(1), "Simulation").size(320.0, 200.0).column(|c| {
//!     c.label(ItemId(10), "Run a short simulation")
//!         .row(|r| r.slider(SPEED, Slider::new(0.0, 10.0).value(1.0)).label(SPEED_LABEL, "1.0").sized(Sizing::Ratio(0.2)))
//!         .button(GO, Button::new("Go"))
//! });
//! assert_eq!(menu.slider(SPEED).map(|s| s.value), Some(1.0));
//! assert!(menu.node(SPEED_LABEL).is_some());
//! ```
//!
//! Decoding is bounded like every other message: at most [`MAX_MENU_NODES`] nodes nested at
//! most [`MAX_MENU_DEPTH`] deep, [`MAX_MENU_ITEMS`] entries per dropdown or list,
//! [`MAX_IMAGE_BYTES`] per image, every float finite, every id unique, every selection within
//! its items. A session client keeps at most [`MAX_MENUS`] menus per instance.

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;

use crate::proto::wire::{DecodeError, Reader, Writer};
use crate::proto::{MAX_NAME, MAX_TEXT};

/// Most layout nodes in one menu.
pub const MAX_MENU_NODES: usize = 4096;
/// Deepest nesting of layout nodes (the root is depth 1).
pub const MAX_MENU_DEPTH: usize = 32;
/// Most entries of a dropdown or a list.
pub const MAX_MENU_ITEMS: usize = 4096;
/// Largest encoded image (PNG or JPEG), in bytes.
pub const MAX_IMAGE_BYTES: usize = 768 << 10;
/// Most menus a session client keeps per instance.
pub const MAX_MENUS: usize = 64;
/// Largest dropdown or list entry, in bytes.
pub const MAX_ENTRY: usize = 1024;
/// First id the builders assign to the layout nodes they create without an explicit id
/// (rows and columns). Choose your own ids below it.
pub const AUTO_ID_BASE: u32 = 1 << 31;

/// A menu of an instance, chosen by the plugin (unique per instance).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct MenuId(pub u16);

/// A layout node of a menu (and its content), chosen by the plugin (unique per menu).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct ItemId(pub u32);

impl ItemId {
    /// The id [`Menu::new`] gives the root node. Menu open/close events carry it.
    pub const ROOT: Self = Self(0);
}

impl std::fmt::Display for MenuId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MenuId#{}", self.0)
    }
}

impl std::fmt::Display for ItemId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ItemId#{}", self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------------

/// A menu: title, size, whether it is shown, and its layout tree.
///
/// Floats are always finite (decoding refuses NaN and infinities, builders clamp), which is why
/// the menu types implement `Eq`.
#[derive(Debug, Clone, PartialEq)]
pub struct Menu {
    /// The menu's id within its instance.
    pub id: MenuId,
    /// Window title.
    pub title: String,
    /// Width in logical pixels.
    pub width: f32,
    /// Height in logical pixels.
    pub height: f32,
    /// Shown (`true`) or hidden.
    pub enabled: bool,
    /// The root layout node.
    pub root: Node,
}

impl Eq for Menu {}

/// Direction in which a node lays out its children.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Orientation {
    /// Top to bottom (a column).
    #[default]
    Vertical,
    /// Left to right (a row).
    Horizontal,
}

/// How much of its parent's space a node takes along the parent's orientation.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Sizing {
    /// Shares the space left with its expanding siblings.
    #[default]
    Expand,
    /// A fixed size in logical pixels (≥ 0).
    Fixed(f32),
    /// A fraction of the parent (0 to 1).
    Ratio(f32),
}

impl Eq for Sizing {}

/// Inner padding of a node, in logical pixels.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Padding {
    /// Left.
    pub left: f32,
    /// Right.
    pub right: f32,
    /// Top.
    pub top: f32,
    /// Bottom.
    pub bottom: f32,
}

impl Eq for Padding {}

impl Padding {
    /// The same padding on every side.
    #[must_use]
    pub fn all(v: f32) -> Self {
        let v = non_negative(v);
        Self { left: v, right: v, top: v, bottom: v }
    }
}

/// A layout node: how it lays out its children, its size in its parent, and optionally one
/// element shown in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Unique within the menu.
    pub id: ItemId,
    /// How the children are laid out.
    pub orientation: Orientation,
    /// Size within the parent.
    pub sizing: Sizing,
    /// Inner padding.
    pub padding: Padding,
    /// Shown (`true`) or hidden with its subtree.
    pub visible: bool,
    /// The element shown in this node, drawn behind its children.
    pub content: Option<Element>,
    /// Child nodes, in layout order.
    pub children: Vec<Node>,
}

impl Eq for Node {}

impl Node {
    /// An empty vertical node.
    #[must_use]
    pub fn new(id: ItemId) -> Self {
        Self {
            id,
            orientation: Orientation::Vertical,
            sizing: Sizing::Expand,
            padding: Padding::default(),
            visible: true,
            content: None,
            children: Vec::new(),
        }
    }

    /// A node showing `element`.
    #[must_use]
    pub fn element(id: ItemId, element: impl Into<Element>) -> Self {
        Self { content: Some(element.into()), ..Self::new(id) }
    }

    /// With this sizing (values are clamped to their valid range).
    #[must_use]
    pub fn sizing(mut self, sizing: Sizing) -> Self {
        self.sizing = clamp_sizing(sizing);
        self
    }

    /// With this padding.
    #[must_use]
    pub fn padding(mut self, padding: Padding) -> Self {
        self.padding = clamp_padding(padding);
        self
    }

    /// With this orientation.
    #[must_use]
    pub fn orientation(mut self, orientation: Orientation) -> Self {
        self.orientation = orientation;
        self
    }

    /// Shown or hidden.
    #[must_use]
    pub fn visible(mut self, visible: bool) -> Self {
        self.visible = visible;
        self
    }

    /// The node `id` in this subtree (this node included).
    #[must_use]
    pub fn find(&self, id: ItemId) -> Option<&Self> {
        if self.id == id {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(id))
    }

    /// The node `id` in this subtree, mutably.
    pub fn find_mut(&mut self, id: ItemId) -> Option<&mut Self> {
        if self.id == id {
            return Some(self);
        }
        self.children.iter_mut().find_map(|c| c.find_mut(id))
    }

    /// Nodes in this subtree (this node included).
    #[must_use]
    pub fn count(&self) -> usize {
        1 + self.children.iter().map(Self::count).sum::<usize>()
    }

    /// Depth of this subtree (1 for a leaf).
    #[must_use]
    pub fn depth(&self) -> usize {
        1 + self.children.iter().map(Self::depth).max().unwrap_or(0)
    }

    fn collect_ids(&self, out: &mut Vec<ItemId>) {
        out.push(self.id);
        for c in &self.children {
            c.collect_ids(out);
        }
    }

    /// Every id of this subtree, depth first.
    #[must_use]
    pub fn ids(&self) -> Vec<ItemId> {
        let mut out = Vec::new();
        self.collect_ids(&mut out);
        out
    }
}

/// What a node shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Element {
    /// Text.
    Label(Label),
    /// A button, optionally a toggle.
    Button(Button),
    /// A one-line text field.
    TextInput(TextInput),
    /// A slider over a range.
    Slider(Slider),
    /// A choice among entries.
    Dropdown(Dropdown),
    /// A list of entries with a selection.
    List(List),
    /// An encoded image.
    Image(Image),
    /// A progress bar.
    LoadingBar(LoadingBar),
}

impl Eq for Element {}

/// Horizontal alignment of a label's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Align {
    /// Left.
    #[default]
    Left,
    /// Centered.
    Center,
    /// Right.
    Right,
}

/// Text.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Label {
    /// The text (at most 4096 bytes).
    pub text: String,
    /// Font size in points; 0 for the viewer's default.
    pub font_size: f32,
    /// Alignment.
    pub align: Align,
    /// Bold.
    pub bold: bool,
}

impl Eq for Label {}

impl Label {
    /// A label with the default font.
    #[must_use]
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into(), ..Self::default() }
    }

    /// With this font size (points, ≥ 0).
    #[must_use]
    pub fn font_size(mut self, size: f32) -> Self {
        self.font_size = non_negative(size);
        self
    }

    /// With this alignment.
    #[must_use]
    pub fn align(mut self, align: Align) -> Self {
        self.align = align;
        self
    }

    /// Bold.
    #[must_use]
    pub fn bold(mut self) -> Self {
        self.bold = true;
        self
    }
}

/// A button's icon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Icon {
    /// One of the viewer's built-in icons, by name (e.g. `play`, `stop`, `close`).
    Named(String),
    /// An image.
    Image(Image),
}

/// A button. A toggle button flips `selected` when pressed and shows `selected_text`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Button {
    /// Text when idle (not selected, not disabled).
    pub text: String,
    /// Text when selected; `text` if absent.
    pub selected_text: Option<String>,
    /// Text when disabled; `text` if absent.
    pub disabled_text: Option<String>,
    /// A toggle button.
    pub toggle: bool,
    /// Selected (toggles: on).
    pub selected: bool,
    /// Not pressable.
    pub disabled: bool,
    /// Icon shown before the text.
    pub icon: Option<Icon>,
}

impl Button {
    /// A push button.
    #[must_use]
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into(), ..Self::default() }
    }

    /// A toggle button showing `off` or `on`.
    #[must_use]
    pub fn toggle(off: impl Into<String>, on: impl Into<String>) -> Self {
        Self { text: off.into(), selected_text: Some(on.into()), toggle: true, ..Self::default() }
    }

    /// Selected (on).
    #[must_use]
    pub fn selected(mut self, selected: bool) -> Self {
        self.selected = selected;
        self
    }

    /// Disabled, showing `text` (or the idle text if `None`).
    #[must_use]
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }

    /// Text shown while disabled.
    #[must_use]
    pub fn disabled_text(mut self, text: impl Into<String>) -> Self {
        self.disabled_text = Some(text.into());
        self
    }

    /// With an icon.
    #[must_use]
    pub fn icon(mut self, icon: Icon) -> Self {
        self.icon = Some(icon);
        self
    }

    /// The text shown in the button's current state.
    #[must_use]
    pub fn current_text(&self) -> &str {
        let alt = if self.disabled {
            self.disabled_text.as_deref()
        } else if self.selected {
            self.selected_text.as_deref()
        } else {
            None
        };
        alt.unwrap_or(&self.text)
    }
}

/// A one-line text field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TextInput {
    /// Current text.
    pub text: String,
    /// Shown while empty.
    pub placeholder: String,
    /// Longest text in characters; 0 for no limit (beyond the 4096-byte field limit).
    pub max_len: u32,
    /// Masked input.
    pub password: bool,
    /// Digits, sign and decimal point only.
    pub numeric: bool,
    /// Not editable.
    pub disabled: bool,
}

impl TextInput {
    /// An empty field.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// With this text.
    #[must_use]
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = text.into();
        self
    }

    /// With this placeholder.
    #[must_use]
    pub fn placeholder(mut self, text: impl Into<String>) -> Self {
        self.placeholder = text.into();
        self
    }

    /// At most `n` characters.
    #[must_use]
    pub fn max_len(mut self, n: u32) -> Self {
        self.max_len = n;
        self
    }

    /// Masked.
    #[must_use]
    pub fn password(mut self) -> Self {
        self.password = true;
        self
    }

    /// Numbers only.
    #[must_use]
    pub fn numeric(mut self) -> Self {
        self.numeric = true;
        self
    }
}

/// A slider: `min ≤ value ≤ max`, moved in steps of `step` (0: continuous).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slider {
    /// Lower end.
    pub min: f32,
    /// Upper end.
    pub max: f32,
    /// Current value.
    pub value: f32,
    /// Step; 0 for continuous.
    pub step: f32,
}

impl Eq for Slider {}

impl Slider {
    /// A continuous slider over `[min, max]` (swapped if reversed; non-finite ends become 0)
    /// at `min`.
    #[must_use]
    pub fn new(min: f32, max: f32) -> Self {
        let (a, b) = (finite(min), finite(max));
        let (min, max) = if a <= b { (a, b) } else { (b, a) };
        Self { min, max, value: min, step: 0.0 }
    }

    /// At `value`, clamped to the range.
    #[must_use]
    pub fn value(mut self, value: f32) -> Self {
        self.value = finite(value).clamp(self.min, self.max);
        self
    }

    /// Moved in steps of `step` (≥ 0).
    #[must_use]
    pub fn step(mut self, step: f32) -> Self {
        self.step = non_negative(step);
        self
    }
}

/// A choice among entries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dropdown {
    /// Entries (at most [`MAX_MENU_ITEMS`], each at most [`MAX_ENTRY`] bytes).
    pub items: Vec<String>,
    /// The chosen entry.
    pub selected: Option<u32>,
}

impl Dropdown {
    /// A dropdown of `items` with nothing chosen.
    #[must_use]
    pub fn new<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Self {
        Self { items: items.into_iter().map(Into::into).collect(), selected: None }
    }

    /// With entry `index` chosen (ignored if out of range).
    #[must_use]
    pub fn selected(mut self, index: u32) -> Self {
        if (index as usize) < self.items.len() {
            self.selected = Some(index);
        }
        self
    }
}

/// A list of entries with a selection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct List {
    /// Entries (at most [`MAX_MENU_ITEMS`], each at most [`MAX_ENTRY`] bytes).
    pub items: Vec<String>,
    /// Selected entries, ascending, without repeats; at most one unless `multi`.
    pub selected: Vec<u32>,
    /// Several entries may be selected.
    pub multi: bool,
}

impl List {
    /// A single-selection list of `items` with nothing selected.
    #[must_use]
    pub fn new<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Self {
        Self { items: items.into_iter().map(Into::into).collect(), selected: Vec::new(), multi: false }
    }

    /// Several entries may be selected.
    #[must_use]
    pub fn multi(mut self) -> Self {
        self.multi = true;
        self
    }

    /// With these entries selected (out-of-range ones dropped; only the first unless multi).
    #[must_use]
    pub fn selected(mut self, indices: impl IntoIterator<Item = u32>) -> Self {
        let mut s: Vec<u32> = indices.into_iter().filter(|&i| (i as usize) < self.items.len()).collect();
        s.sort_unstable();
        s.dedup();
        if !self.multi {
            s.truncate(1);
        }
        self.selected = s;
        self
    }
}

/// How an image is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageFormat {
    /// PNG.
    #[default]
    Png,
    /// JPEG.
    Jpeg,
}

/// How an image fills its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageScale {
    /// Whole image, aspect kept.
    #[default]
    Fit,
    /// Node filled, aspect kept, cropped.
    Fill,
    /// Node filled, aspect not kept.
    Stretch,
}

/// An encoded image. The bytes are carried as they are; the viewer decodes them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Image {
    /// Encoding.
    pub format: ImageFormat,
    /// Scaling.
    pub scale: ImageScale,
    /// Encoded bytes (at most [`MAX_IMAGE_BYTES`]).
    pub data: Bytes,
}

impl Image {
    /// A PNG image.
    #[must_use]
    pub fn png(data: impl Into<Bytes>) -> Self {
        Self { format: ImageFormat::Png, scale: ImageScale::Fit, data: data.into() }
    }

    /// A JPEG image.
    #[must_use]
    pub fn jpeg(data: impl Into<Bytes>) -> Self {
        Self { format: ImageFormat::Jpeg, scale: ImageScale::Fit, data: data.into() }
    }

    /// With this scaling.
    #[must_use]
    pub fn scale(mut self, scale: ImageScale) -> Self {
        self.scale = scale;
        self
    }
}

/// A progress bar.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoadingBar {
    /// Progress from 0 to 1.
    pub progress: f32,
    /// Text shown with it.
    pub text: String,
    /// Shown as failed.
    pub failed: bool,
}

impl Eq for LoadingBar {}

impl LoadingBar {
    /// A bar at `progress` (clamped to 0–1).
    #[must_use]
    pub fn new(progress: f32) -> Self {
        Self { progress: finite(progress).clamp(0.0, 1.0), ..Self::default() }
    }

    /// With this text.
    #[must_use]
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = text.into();
        self
    }

    /// Shown as failed.
    #[must_use]
    pub fn failed(mut self, failed: bool) -> Self {
        self.failed = failed;
        self
    }
}

impl Element {
    /// The element's kind, in lower case (`label`, `button`, `text input`, `slider`,
    /// `dropdown`, `list`, `image`, `loading bar`).
    #[must_use]
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Label(_) => "label",
            Self::Button(_) => "button",
            Self::TextInput(_) => "text input",
            Self::Slider(_) => "slider",
            Self::Dropdown(_) => "dropdown",
            Self::List(_) => "list",
            Self::Image(_) => "image",
            Self::LoadingBar(_) => "loading bar",
        }
    }
}

macro_rules! element_from {
    ($($t:ident),*) => {$(
        impl From<$t> for Element {
            fn from(v: $t) -> Self {
                Self::$t(v)
            }
        }
    )*};
}
element_from!(Label, Button, TextInput, Slider, Dropdown, List, Image, LoadingBar);

fn finite(v: f32) -> f32 {
    if v.is_finite() { v } else { 0.0 }
}

fn non_negative(v: f32) -> f32 {
    finite(v).max(0.0)
}

fn clamp_sizing(s: Sizing) -> Sizing {
    match s {
        Sizing::Expand => Sizing::Expand,
        Sizing::Fixed(v) => Sizing::Fixed(non_negative(v)),
        Sizing::Ratio(v) => Sizing::Ratio(finite(v).clamp(0.0, 1.0)),
    }
}

fn clamp_padding(p: Padding) -> Padding {
    Padding {
        left: non_negative(p.left),
        right: non_negative(p.right),
        top: non_negative(p.top),
        bottom: non_negative(p.bottom),
    }
}

// ---------------------------------------------------------------------------------------------
// Builder
// ---------------------------------------------------------------------------------------------

/// Builds the children of a layout node: each element call adds a child node showing that
/// element under the id you give; `row` and `column` add nested layout nodes (with ids from
/// [`AUTO_ID_BASE`] up, or yours with `row_id` / `column_id`). Returned by value so calls chain.
#[derive(Debug)]
pub struct Layout {
    node: Node,
    next_auto: u32,
}

impl Layout {
    fn nested(mut self, node: Node, f: impl FnOnce(Self) -> Self) -> Self {
        let child = f(Self { node, next_auto: self.next_auto });
        self.next_auto = child.next_auto;
        self.node.children.push(child.node);
        self
    }

    fn auto_id(&mut self) -> ItemId {
        let id = ItemId(self.next_auto);
        self.next_auto = self.next_auto.wrapping_add(1).max(AUTO_ID_BASE);
        id
    }

    /// Adds a horizontal child node built by `f`.
    #[must_use]
    pub fn row(mut self, f: impl FnOnce(Self) -> Self) -> Self {
        let id = self.auto_id();
        self.row_id(id, f)
    }

    /// Adds a vertical child node built by `f`.
    #[must_use]
    pub fn column(mut self, f: impl FnOnce(Self) -> Self) -> Self {
        let id = self.auto_id();
        self.column_id(id, f)
    }

    /// Adds a horizontal child node with your id.
    #[must_use]
    pub fn row_id(self, id: ItemId, f: impl FnOnce(Self) -> Self) -> Self {
        self.nested(Node::new(id).orientation(Orientation::Horizontal), f)
    }

    /// Adds a vertical child node with your id.
    #[must_use]
    pub fn column_id(self, id: ItemId, f: impl FnOnce(Self) -> Self) -> Self {
        self.nested(Node::new(id), f)
    }

    /// Adds a prebuilt node.
    #[must_use]
    pub fn node(mut self, node: Node) -> Self {
        self.node.children.push(node);
        self
    }

    /// Adds a child node showing `element`.
    #[must_use]
    pub fn element(self, id: ItemId, element: impl Into<Element>) -> Self {
        self.node(Node::element(id, element))
    }

    /// Adds a label with the default font.
    #[must_use]
    pub fn label(self, id: ItemId, text: impl Into<String>) -> Self {
        self.element(id, Label::new(text))
    }

    /// Adds a button.
    #[must_use]
    pub fn button(self, id: ItemId, button: Button) -> Self {
        self.element(id, button)
    }

    /// Adds a text field.
    #[must_use]
    pub fn text_input(self, id: ItemId, input: TextInput) -> Self {
        self.element(id, input)
    }

    /// Adds a slider.
    #[must_use]
    pub fn slider(self, id: ItemId, slider: Slider) -> Self {
        self.element(id, slider)
    }

    /// Adds a dropdown.
    #[must_use]
    pub fn dropdown(self, id: ItemId, dropdown: Dropdown) -> Self {
        self.element(id, dropdown)
    }

    /// Adds a list.
    #[must_use]
    pub fn list(self, id: ItemId, list: List) -> Self {
        self.element(id, list)
    }

    /// Adds an image.
    #[must_use]
    pub fn image(self, id: ItemId, image: Image) -> Self {
        self.element(id, image)
    }

    /// Adds a progress bar.
    #[must_use]
    pub fn loading_bar(self, id: ItemId, bar: LoadingBar) -> Self {
        self.element(id, bar)
    }

    /// Sets the sizing of the last child added (no effect without children).
    #[must_use]
    pub fn sized(mut self, sizing: Sizing) -> Self {
        if let Some(last) = self.node.children.last_mut() {
            last.sizing = clamp_sizing(sizing);
        }
        self
    }

    /// Sets this node's padding.
    #[must_use]
    pub fn padding(mut self, padding: Padding) -> Self {
        self.node.padding = clamp_padding(padding);
        self
    }

    /// Sets this node's sizing in its parent.
    #[must_use]
    pub fn sizing(mut self, sizing: Sizing) -> Self {
        self.node.sizing = clamp_sizing(sizing);
        self
    }
}

macro_rules! element_getters {
    ($($get:ident, $get_mut:ident, $t:ident;)*) => {$(
        #[doc = concat!("The [`", stringify!($t), "`] shown in node `id`, if it shows one.")]
        #[must_use]
        pub fn $get(&self, id: ItemId) -> Option<&$t> {
            match self.content(id) {
                Some(Element::$t(e)) => Some(e),
                _ => None,
            }
        }

        #[doc = concat!("The [`", stringify!($t), "`] shown in node `id`, mutably.")]
        pub fn $get_mut(&mut self, id: ItemId) -> Option<&mut $t> {
            match self.content_mut(id) {
                Some(Element::$t(e)) => Some(e),
                _ => None,
            }
        }
    )*};
}

impl Menu {
    /// An enabled 400 × 300 menu with an empty vertical root node ([`ItemId::ROOT`]).
    #[must_use]
    pub fn new(id: MenuId, title: impl Into<String>) -> Self {
        Self { id, title: title.into(), width: 400.0, height: 300.0, enabled: true, root: Node::new(ItemId::ROOT) }
    }

    /// With this size in logical pixels (≥ 0).
    #[must_use]
    pub fn size(mut self, width: f32, height: f32) -> Self {
        self.width = non_negative(width);
        self.height = non_negative(height);
        self
    }

    /// Shown or hidden.
    #[must_use]
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    fn build_root(mut self, orientation: Orientation, f: impl FnOnce(Layout) -> Layout) -> Self {
        let mut root = std::mem::replace(&mut self.root, Node::new(ItemId::ROOT));
        root.orientation = orientation;
        let next_auto = self.root_next_auto(&root);
        self.root = f(Layout { node: root, next_auto }).node;
        self
    }

    fn root_next_auto(&self, root: &Node) -> u32 {
        root.ids().into_iter().map(|i| i.0).filter(|&i| i >= AUTO_ID_BASE).max().map_or(AUTO_ID_BASE, |m| m + 1)
    }

    /// Lays the root out as a column and adds the children `f` builds.
    #[must_use]
    pub fn column(self, f: impl FnOnce(Layout) -> Layout) -> Self {
        self.build_root(Orientation::Vertical, f)
    }

    /// Lays the root out as a row and adds the children `f` builds.
    #[must_use]
    pub fn row(self, f: impl FnOnce(Layout) -> Layout) -> Self {
        self.build_root(Orientation::Horizontal, f)
    }

    /// The node `id`.
    #[must_use]
    pub fn node(&self, id: ItemId) -> Option<&Node> {
        self.root.find(id)
    }

    /// The node `id`, mutably.
    pub fn node_mut(&mut self, id: ItemId) -> Option<&mut Node> {
        self.root.find_mut(id)
    }

    /// The element shown in node `id`.
    #[must_use]
    pub fn content(&self, id: ItemId) -> Option<&Element> {
        self.node(id).and_then(|n| n.content.as_ref())
    }

    /// The element shown in node `id`, mutably.
    pub fn content_mut(&mut self, id: ItemId) -> Option<&mut Element> {
        self.node_mut(id).and_then(|n| n.content.as_mut())
    }

    element_getters! {
        label, label_mut, Label;
        button, button_mut, Button;
        text_input, text_input_mut, TextInput;
        slider, slider_mut, Slider;
        dropdown, dropdown_mut, Dropdown;
        list, list_mut, List;
        image, image_mut, Image;
        loading_bar, loading_bar_mut, LoadingBar;
    }

    /// The update that sends this whole menu.
    #[must_use]
    pub fn to_update(&self) -> MenuUpdate {
        MenuUpdate::Set(self.clone())
    }

    /// The update that sends this menu's title, size and enabled flag.
    #[must_use]
    pub fn props_update(&self) -> MenuUpdate {
        MenuUpdate::Props {
            menu: self.id,
            title: self.title.clone(),
            width: self.width,
            height: self.height,
            enabled: self.enabled,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

/// Instance → session: a change to a menu (`ToSession` tags 60–65).
#[derive(Debug, Clone, PartialEq)]
pub enum MenuUpdate {
    /// Tag 60. Creates or replaces a whole menu.
    Set(Menu),
    /// Tag 61. Title, size and enabled flag of a menu.
    Props {
        /// The menu.
        menu: MenuId,
        /// Title.
        title: String,
        /// Width.
        width: f32,
        /// Height.
        height: f32,
        /// Shown.
        enabled: bool,
    },
    /// Tag 62. Replaces the node with `node.id` (and its subtree).
    Node {
        /// The menu.
        menu: MenuId,
        /// The new node.
        node: Node,
    },
    /// Tag 63. Replaces the element shown in node `item` (`None`: shows nothing).
    Content {
        /// The menu.
        menu: MenuId,
        /// The node.
        item: ItemId,
        /// The new element.
        content: Option<Element>,
    },
    /// Tag 64. Removes node `item` (and its subtree) from its parent. The root cannot be removed.
    RemoveNode {
        /// The menu.
        menu: MenuId,
        /// The node.
        item: ItemId,
    },
    /// Tag 65. Removes a menu.
    Remove {
        /// The menu.
        menu: MenuId,
    },
}

impl Eq for MenuUpdate {}

impl MenuUpdate {
    /// The menu this update is about.
    #[must_use]
    pub fn menu(&self) -> MenuId {
        match self {
            Self::Set(m) => m.id,
            Self::Props { menu, .. }
            | Self::Node { menu, .. }
            | Self::Content { menu, .. }
            | Self::RemoveNode { menu, .. }
            | Self::Remove { menu } => *menu,
        }
    }
}

/// What a user did in a menu.
#[derive(Debug, Clone, PartialEq)]
pub enum MenuAction {
    /// Pressed a button; `selected` is the button's state after the press (a toggle flips it).
    Pressed {
        /// Selected after the press.
        selected: bool,
    },
    /// The pointer entered (`true`) or left (`false`) an element.
    Hover {
        /// Entered or left.
        entered: bool,
    },
    /// Moved a slider (sent while dragging).
    SliderChanged {
        /// The new value.
        value: f32,
    },
    /// Released a slider.
    SliderReleased {
        /// The final value.
        value: f32,
    },
    /// Edited a text field.
    TextChanged {
        /// The text now.
        text: String,
    },
    /// Submitted a text field (Enter).
    TextSubmitted {
        /// The text.
        text: String,
    },
    /// Chose a dropdown entry.
    DropdownChosen {
        /// Index of the entry.
        index: u32,
    },
    /// Changed a list's selection.
    ListSelected {
        /// Selected indices now, ascending.
        selected: Vec<u32>,
    },
    /// Opened the menu (item: the root).
    Opened,
    /// Closed the menu (item: the root).
    Closed,
}

impl Eq for MenuAction {}

/// Session → instance: a user's action in a menu (`ToPlugin` tag 60).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuEvent {
    /// The menu.
    pub menu: MenuId,
    /// The node whose element was used ([`ItemId::ROOT`] for open/close).
    pub item: ItemId,
    /// What happened.
    pub action: MenuAction,
}

impl MenuEvent {
    /// A press of the button in `item` leaving it `selected`.
    #[must_use]
    pub fn pressed(menu: MenuId, item: ItemId, selected: bool) -> Self {
        Self { menu, item, action: MenuAction::Pressed { selected } }
    }

    /// A slider move.
    #[must_use]
    pub fn slider_changed(menu: MenuId, item: ItemId, value: f32) -> Self {
        Self { menu, item, action: MenuAction::SliderChanged { value: finite(value) } }
    }

    /// A slider release.
    #[must_use]
    pub fn slider_released(menu: MenuId, item: ItemId, value: f32) -> Self {
        Self { menu, item, action: MenuAction::SliderReleased { value: finite(value) } }
    }

    /// A text submission.
    #[must_use]
    pub fn text_submitted(menu: MenuId, item: ItemId, text: impl Into<String>) -> Self {
        Self { menu, item, action: MenuAction::TextSubmitted { text: text.into() } }
    }

    /// A dropdown choice.
    #[must_use]
    pub fn dropdown_chosen(menu: MenuId, item: ItemId, index: u32) -> Self {
        Self { menu, item, action: MenuAction::DropdownChosen { index } }
    }

    /// The menu was opened or closed.
    #[must_use]
    pub fn open_close(menu: MenuId, opened: bool) -> Self {
        Self { menu, item: ItemId::ROOT, action: if opened { MenuAction::Opened } else { MenuAction::Closed } }
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/// First `ToSession` tag of menu updates.
pub const UPDATE_TAG_FIRST: u8 = 60;
/// Last `ToSession` / `ToPlugin` tag reserved for menus.
pub const MENU_TAG_LAST: u8 = 79;
/// The `ToPlugin` tag of [`MenuEvent`].
pub const EVENT_TAG: u8 = 60;

fn put_f32(w: &mut Writer, v: f32) {
    w.buf.extend_from_slice(&v.to_le_bytes());
}

fn get_f32(r: &mut Reader<'_>, what: &'static str) -> Result<f32, DecodeError> {
    let b = [r.u8(what)?, r.u8(what)?, r.u8(what)?, r.u8(what)?];
    let v = f32::from_le_bytes(b);
    if v.is_finite() { Ok(v) } else { Err(DecodeError::Invalid { what, why: "not a finite number" }) }
}

fn get_non_negative(r: &mut Reader<'_>, what: &'static str) -> Result<f32, DecodeError> {
    let v = get_f32(r, what)?;
    if v < 0.0 { Err(DecodeError::Invalid { what, why: "negative" }) } else { Ok(v) }
}

fn put_opt_str(w: &mut Writer, v: Option<&str>) {
    match v {
        None => w.u8(0),
        Some(s) => {
            w.u8(1);
            w.str(s);
        }
    }
}

fn get_opt_str(r: &mut Reader<'_>, what: &'static str, max: usize) -> Result<Option<String>, DecodeError> {
    match r.u8(what)? {
        0 => Ok(None),
        1 => Ok(Some(r.str(what, max)?)),
        _ => Err(DecodeError::Invalid { what, why: "option flag other than 0 or 1" }),
    }
}

fn put_image(w: &mut Writer, i: &Image) {
    w.u8(match i.format {
        ImageFormat::Png => 0,
        ImageFormat::Jpeg => 1,
    });
    w.u8(match i.scale {
        ImageScale::Fit => 0,
        ImageScale::Fill => 1,
        ImageScale::Stretch => 2,
    });
    w.bytes(&i.data);
}

fn get_image(r: &mut Reader<'_>) -> Result<Image, DecodeError> {
    let format = match r.u8("image format")? {
        0 => ImageFormat::Png,
        1 => ImageFormat::Jpeg,
        tag => return Err(DecodeError::UnknownTag { what: "image format", tag }),
    };
    let scale = match r.u8("image scale")? {
        0 => ImageScale::Fit,
        1 => ImageScale::Fill,
        2 => ImageScale::Stretch,
        tag => return Err(DecodeError::UnknownTag { what: "image scale", tag }),
    };
    Ok(Image { format, scale, data: r.bytes("image", MAX_IMAGE_BYTES)? })
}

fn put_indices(w: &mut Writer, v: &[u32]) {
    w.list(v, |w, i| w.u32(*i));
}

/// Encodes an element: a tag byte (1–8), then its fields.
fn put_element(w: &mut Writer, e: &Element) {
    match e {
        Element::Label(l) => {
            w.u8(1);
            w.str(&l.text);
            put_f32(w, l.font_size);
            w.u8(match l.align {
                Align::Left => 0,
                Align::Center => 1,
                Align::Right => 2,
            });
            w.bool(l.bold);
        }
        Element::Button(b) => {
            w.u8(2);
            w.str(&b.text);
            put_opt_str(w, b.selected_text.as_deref());
            put_opt_str(w, b.disabled_text.as_deref());
            w.bool(b.toggle);
            w.bool(b.selected);
            w.bool(b.disabled);
            match &b.icon {
                None => w.u8(0),
                Some(Icon::Named(n)) => {
                    w.u8(1);
                    w.str(n);
                }
                Some(Icon::Image(i)) => {
                    w.u8(2);
                    put_image(w, i);
                }
            }
        }
        Element::TextInput(t) => {
            w.u8(3);
            w.str(&t.text);
            w.str(&t.placeholder);
            w.u32(t.max_len);
            w.bool(t.password);
            w.bool(t.numeric);
            w.bool(t.disabled);
        }
        Element::Slider(s) => {
            w.u8(4);
            put_f32(w, s.min);
            put_f32(w, s.max);
            put_f32(w, s.value);
            put_f32(w, s.step);
        }
        Element::Dropdown(d) => {
            w.u8(5);
            w.list(&d.items, |w, s| w.str(s));
            match d.selected {
                None => w.u8(0),
                Some(i) => {
                    w.u8(1);
                    w.u32(i);
                }
            }
        }
        Element::List(l) => {
            w.u8(6);
            w.list(&l.items, |w, s| w.str(s));
            put_indices(w, &l.selected);
            w.bool(l.multi);
        }
        Element::Image(i) => {
            w.u8(7);
            put_image(w, i);
        }
        Element::LoadingBar(b) => {
            w.u8(8);
            put_f32(w, b.progress);
            w.str(&b.text);
            w.bool(b.failed);
        }
    }
}

fn get_element(r: &mut Reader<'_>) -> Result<Element, DecodeError> {
    Ok(match r.u8("element tag")? {
        1 => Element::Label(Label {
            text: r.str("label text", MAX_TEXT)?,
            font_size: get_non_negative(r, "font size")?,
            align: match r.u8("align")? {
                0 => Align::Left,
                1 => Align::Center,
                2 => Align::Right,
                tag => return Err(DecodeError::UnknownTag { what: "align", tag }),
            },
            bold: r.bool("bold")?,
        }),
        2 => Element::Button(Button {
            text: r.str("button text", MAX_TEXT)?,
            selected_text: get_opt_str(r, "selected text", MAX_TEXT)?,
            disabled_text: get_opt_str(r, "disabled text", MAX_TEXT)?,
            toggle: r.bool("toggle")?,
            selected: r.bool("selected")?,
            disabled: r.bool("disabled")?,
            icon: match r.u8("icon")? {
                0 => None,
                1 => Some(Icon::Named(r.name("icon name", MAX_NAME)?)),
                2 => Some(Icon::Image(get_image(r)?)),
                tag => return Err(DecodeError::UnknownTag { what: "icon", tag }),
            },
        }),
        3 => Element::TextInput(TextInput {
            text: r.str("input text", MAX_TEXT)?,
            placeholder: r.str("placeholder", MAX_TEXT)?,
            max_len: r.u32("max length")?,
            password: r.bool("password")?,
            numeric: r.bool("numeric")?,
            disabled: r.bool("disabled")?,
        }),
        4 => {
            let s = Slider {
                min: get_f32(r, "slider min")?,
                max: get_f32(r, "slider max")?,
                value: get_f32(r, "slider value")?,
                step: get_non_negative(r, "slider step")?,
            };
            if s.min > s.max {
                return Err(DecodeError::Invalid { what: "slider", why: "min above max" });
            }
            if s.value < s.min || s.value > s.max {
                return Err(DecodeError::Invalid { what: "slider", why: "value outside min..max" });
            }
            Element::Slider(s)
        }
        5 => {
            let items = r.list("dropdown items", MAX_MENU_ITEMS, |r| r.str("dropdown item", MAX_ENTRY))?;
            let selected = match r.u8("dropdown selection")? {
                0 => None,
                1 => Some(r.u32("dropdown selection")?),
                _ => return Err(DecodeError::Invalid { what: "dropdown selection", why: "flag other than 0 or 1" }),
            };
            if selected.is_some_and(|i| i as usize >= items.len()) {
                return Err(DecodeError::Invalid { what: "dropdown selection", why: "beyond the items" });
            }
            Element::Dropdown(Dropdown { items, selected })
        }
        6 => {
            let items = r.list("list items", MAX_MENU_ITEMS, |r| r.str("list item", MAX_ENTRY))?;
            let selected = r.list("list selection", MAX_MENU_ITEMS, |r| r.u32("list selection"))?;
            let multi = r.bool("multi")?;
            check_selection(&selected, items.len(), multi)?;
            Element::List(List { items, selected, multi })
        }
        7 => Element::Image(get_image(r)?),
        8 => {
            let progress = get_f32(r, "progress")?;
            if !(0.0..=1.0).contains(&progress) {
                return Err(DecodeError::Invalid { what: "progress", why: "outside 0..1" });
            }
            Element::LoadingBar(LoadingBar { progress, text: r.str("bar text", MAX_TEXT)?, failed: r.bool("failed")? })
        }
        tag => return Err(DecodeError::UnknownTag { what: "menu element", tag }),
    })
}

fn check_selection(selected: &[u32], len: usize, multi: bool) -> Result<(), DecodeError> {
    if !multi && selected.len() > 1 {
        return Err(DecodeError::Invalid { what: "list selection", why: "several entries in a single-selection list" });
    }
    if selected.iter().any(|&i| i as usize >= len) {
        return Err(DecodeError::Invalid { what: "list selection", why: "beyond the items" });
    }
    if selected.windows(2).any(|w| w[0] >= w[1]) {
        return Err(DecodeError::Invalid { what: "list selection", why: "not ascending without repeats" });
    }
    Ok(())
}

fn put_node(w: &mut Writer, n: &Node) {
    w.u32(n.id.0);
    w.u8(match n.orientation {
        Orientation::Vertical => 0,
        Orientation::Horizontal => 1,
    });
    match n.sizing {
        Sizing::Expand => w.u8(0),
        Sizing::Fixed(v) => {
            w.u8(1);
            put_f32(w, v);
        }
        Sizing::Ratio(v) => {
            w.u8(2);
            put_f32(w, v);
        }
    }
    for v in [n.padding.left, n.padding.right, n.padding.top, n.padding.bottom] {
        put_f32(w, v);
    }
    w.bool(n.visible);
    match &n.content {
        None => w.u8(0),
        Some(e) => {
            w.u8(1);
            put_element(w, e);
        }
    }
    w.list(&n.children, put_node);
}

/// Decoding state of one node tree: nodes so far (bounded by [`MAX_MENU_NODES`]).
struct TreeBudget {
    nodes: usize,
}

fn get_node(r: &mut Reader<'_>, depth: usize, budget: &mut TreeBudget) -> Result<Node, DecodeError> {
    if depth > MAX_MENU_DEPTH {
        return Err(DecodeError::TooLong { what: "menu depth", value: depth as u64, max: MAX_MENU_DEPTH as u64 });
    }
    budget.nodes += 1;
    if budget.nodes > MAX_MENU_NODES {
        return Err(DecodeError::TooLong {
            what: "menu nodes",
            value: budget.nodes as u64,
            max: MAX_MENU_NODES as u64,
        });
    }
    let id = ItemId(r.u32("node id")?);
    let orientation = match r.u8("orientation")? {
        0 => Orientation::Vertical,
        1 => Orientation::Horizontal,
        tag => return Err(DecodeError::UnknownTag { what: "orientation", tag }),
    };
    let sizing = match r.u8("sizing")? {
        0 => Sizing::Expand,
        1 => Sizing::Fixed(get_non_negative(r, "fixed size")?),
        2 => {
            let v = get_f32(r, "size ratio")?;
            if !(0.0..=1.0).contains(&v) {
                return Err(DecodeError::Invalid { what: "size ratio", why: "outside 0..1" });
            }
            Sizing::Ratio(v)
        }
        tag => return Err(DecodeError::UnknownTag { what: "sizing", tag }),
    };
    let padding = Padding {
        left: get_non_negative(r, "padding")?,
        right: get_non_negative(r, "padding")?,
        top: get_non_negative(r, "padding")?,
        bottom: get_non_negative(r, "padding")?,
    };
    let visible = r.bool("visible")?;
    let content = match r.u8("content")? {
        0 => None,
        1 => Some(get_element(r)?),
        _ => return Err(DecodeError::Invalid { what: "content", why: "flag other than 0 or 1" }),
    };
    // Each child takes at least 12 bytes; the list reader checks the count against the bytes
    // left, and the shared budget bounds the whole tree.
    let children = r.list("children", MAX_MENU_NODES, |r| get_node(r, depth + 1, budget))?;
    Ok(Node { id, orientation, sizing, padding, visible, content, children })
}

/// Decodes a node tree and checks that its ids are unique.
fn get_tree(r: &mut Reader<'_>) -> Result<Node, DecodeError> {
    let node = get_node(r, 1, &mut TreeBudget { nodes: 0 })?;
    let ids = node.ids();
    let mut seen = HashSet::with_capacity(ids.len());
    if ids.iter().any(|id| !seen.insert(*id)) {
        return Err(DecodeError::Invalid { what: "menu", why: "two nodes with the same id" });
    }
    Ok(node)
}

fn get_menu_id(r: &mut Reader<'_>) -> Result<MenuId, DecodeError> {
    Ok(MenuId(r.u16("menu id")?))
}

impl MenuUpdate {
    /// Appends the update (its tag, 60–65, then its fields) to `w`.
    pub fn encode_into(&self, w: &mut Writer) {
        match self {
            Self::Set(m) => {
                w.u8(60);
                w.varint(u64::from(m.id.0));
                w.str(&m.title);
                put_f32(w, m.width);
                put_f32(w, m.height);
                w.bool(m.enabled);
                put_node(w, &m.root);
            }
            Self::Props { menu, title, width, height, enabled } => {
                w.u8(61);
                w.varint(u64::from(menu.0));
                w.str(title);
                put_f32(w, *width);
                put_f32(w, *height);
                w.bool(*enabled);
            }
            Self::Node { menu, node } => {
                w.u8(62);
                w.varint(u64::from(menu.0));
                put_node(w, node);
            }
            Self::Content { menu, item, content } => {
                w.u8(63);
                w.varint(u64::from(menu.0));
                w.u32(item.0);
                match content {
                    None => w.u8(0),
                    Some(e) => {
                        w.u8(1);
                        put_element(w, e);
                    }
                }
            }
            Self::RemoveNode { menu, item } => {
                w.u8(64);
                w.varint(u64::from(menu.0));
                w.u32(item.0);
            }
            Self::Remove { menu } => {
                w.u8(65);
                w.varint(u64::from(menu.0));
            }
        }
    }

    /// Decodes the fields of the update whose tag (60–79) was just read.
    ///
    /// # Errors
    /// Unknown tags (66–79 are reserved), truncation, limits, invalid values.
    pub fn decode_fields(tag: u8, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match tag {
            60 => Self::Set(Menu {
                id: get_menu_id(r)?,
                title: r.str("menu title", MAX_TEXT)?,
                width: get_non_negative(r, "menu width")?,
                height: get_non_negative(r, "menu height")?,
                enabled: r.bool("menu enabled")?,
                root: get_tree(r)?,
            }),
            61 => Self::Props {
                menu: get_menu_id(r)?,
                title: r.str("menu title", MAX_TEXT)?,
                width: get_non_negative(r, "menu width")?,
                height: get_non_negative(r, "menu height")?,
                enabled: r.bool("menu enabled")?,
            },
            62 => Self::Node { menu: get_menu_id(r)?, node: get_tree(r)? },
            63 => Self::Content {
                menu: get_menu_id(r)?,
                item: ItemId(r.u32("node id")?),
                content: match r.u8("content")? {
                    0 => None,
                    1 => Some(get_element(r)?),
                    _ => return Err(DecodeError::Invalid { what: "content", why: "flag other than 0 or 1" }),
                },
            },
            64 => Self::RemoveNode { menu: get_menu_id(r)?, item: ItemId(r.u32("node id")?) },
            65 => Self::Remove { menu: get_menu_id(r)? },
            tag => return Err(DecodeError::UnknownTag { what: "menu update", tag }),
        })
    }

    /// The update alone, as a `ToSession` body.
    #[must_use]
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        self.encode_into(&mut w);
        Bytes::from(w.buf)
    }
}

impl MenuEvent {
    /// Appends the event (tag 60, then its fields) to `w`.
    pub fn encode_into(&self, w: &mut Writer) {
        w.u8(EVENT_TAG);
        w.varint(u64::from(self.menu.0));
        w.u32(self.item.0);
        match &self.action {
            MenuAction::Pressed { selected } => {
                w.u8(1);
                w.bool(*selected);
            }
            MenuAction::Hover { entered } => {
                w.u8(2);
                w.bool(*entered);
            }
            MenuAction::SliderChanged { value } => {
                w.u8(3);
                put_f32(w, *value);
            }
            MenuAction::SliderReleased { value } => {
                w.u8(4);
                put_f32(w, *value);
            }
            MenuAction::TextChanged { text } => {
                w.u8(5);
                w.str(text);
            }
            MenuAction::TextSubmitted { text } => {
                w.u8(6);
                w.str(text);
            }
            MenuAction::DropdownChosen { index } => {
                w.u8(7);
                w.u32(*index);
            }
            MenuAction::ListSelected { selected } => {
                w.u8(8);
                put_indices(w, selected);
            }
            MenuAction::Opened => w.u8(9),
            MenuAction::Closed => w.u8(10),
        }
    }

    /// Decodes the fields of the event whose tag (60) was just read.
    ///
    /// # Errors
    /// Unknown tags (61–79 are reserved), truncation, limits, invalid values.
    pub fn decode_fields(tag: u8, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if tag != EVENT_TAG {
            return Err(DecodeError::UnknownTag { what: "menu event", tag });
        }
        let menu = get_menu_id(r)?;
        let item = ItemId(r.u32("node id")?);
        let action = match r.u8("menu action")? {
            1 => MenuAction::Pressed { selected: r.bool("selected")? },
            2 => MenuAction::Hover { entered: r.bool("entered")? },
            3 => MenuAction::SliderChanged { value: get_f32(r, "slider value")? },
            4 => MenuAction::SliderReleased { value: get_f32(r, "slider value")? },
            5 => MenuAction::TextChanged { text: r.str("text", MAX_TEXT)? },
            6 => MenuAction::TextSubmitted { text: r.str("text", MAX_TEXT)? },
            7 => MenuAction::DropdownChosen { index: r.u32("dropdown index")? },
            8 => {
                let selected = r.list("list selection", MAX_MENU_ITEMS, |r| r.u32("list selection"))?;
                check_selection(&selected, MAX_MENU_ITEMS, true)?;
                MenuAction::ListSelected { selected }
            }
            9 => MenuAction::Opened,
            10 => MenuAction::Closed,
            tag => return Err(DecodeError::UnknownTag { what: "menu action", tag }),
        };
        Ok(Self { menu, item, action })
    }
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

/// Why an update could not be applied to the menus of an instance. The menus are unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MenuApplyError {
    /// No menu with this id.
    #[error("no {0}")]
    UnknownMenu(MenuId),
    /// No node with this id in the menu.
    #[error("no {item} in {menu}")]
    UnknownItem {
        /// The menu.
        menu: MenuId,
        /// The node.
        item: ItemId,
    },
    /// The new node uses an id that another node of the menu has.
    #[error("{item} would appear twice in {menu}")]
    DuplicateId {
        /// The menu.
        menu: MenuId,
        /// The id.
        item: ItemId,
    },
    /// The menu would exceed [`MAX_MENU_NODES`] nodes or [`MAX_MENU_DEPTH`] levels.
    #[error("{0} would exceed the node or depth limit")]
    TooLarge(MenuId),
    /// The instance already has [`MAX_MENUS`] menus.
    #[error("more than {MAX_MENUS} menus")]
    TooManyMenus,
    /// The root node cannot be removed (remove the menu instead).
    #[error("the root node of {0} cannot be removed")]
    RemoveRoot(MenuId),
}

/// What an applied update changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MenuChange {
    /// The whole menu was created or replaced.
    Set,
    /// Title, size or enabled flag.
    Props,
    /// A node and its subtree.
    Node(ItemId),
    /// The element of a node.
    Content(ItemId),
    /// A node was removed.
    NodeRemoved(ItemId),
    /// The menu was removed.
    Removed,
}

/// The menus of one instance, as the updates made them. Both the host (to keep the room's
/// state) and each session client (to show it) hold one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Menus {
    menus: BTreeMap<MenuId, Menu>,
}

/// Where a node sits: its depth (root = 1) and the path of child indices from the root.
fn path_to(root: &Node, id: ItemId) -> Option<Vec<usize>> {
    if root.id == id {
        return Some(Vec::new());
    }
    for (i, c) in root.children.iter().enumerate() {
        if let Some(mut p) = path_to(c, id) {
            p.insert(0, i);
            return Some(p);
        }
    }
    None
}

fn node_at<'a>(root: &'a mut Node, path: &[usize]) -> Option<&'a mut Node> {
    let mut n = root;
    for &i in path {
        n = n.children.get_mut(i)?;
    }
    Some(n)
}

impl Menus {
    /// No menus.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The menu `id`.
    #[must_use]
    pub fn get(&self, id: MenuId) -> Option<&Menu> {
        self.menus.get(&id)
    }

    /// Every menu, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Menu> {
        self.menus.values()
    }

    /// Number of menus.
    #[must_use]
    pub fn len(&self) -> usize {
        self.menus.len()
    }

    /// No menus.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.menus.is_empty()
    }

    /// Applies an update. `Ok(None)` when it changed nothing (e.g. the same content again, or
    /// removing a menu that is gone).
    ///
    /// # Errors
    /// [`MenuApplyError`]; the menus are then unchanged.
    pub fn apply(&mut self, update: &MenuUpdate) -> Result<Option<MenuChange>, MenuApplyError> {
        match update {
            MenuUpdate::Set(m) => {
                if self.menus.get(&m.id) == Some(m) {
                    return Ok(None);
                }
                if !self.menus.contains_key(&m.id) && self.menus.len() >= MAX_MENUS {
                    return Err(MenuApplyError::TooManyMenus);
                }
                if m.root.count() > MAX_MENU_NODES || m.root.depth() > MAX_MENU_DEPTH {
                    return Err(MenuApplyError::TooLarge(m.id));
                }
                let ids = m.root.ids();
                let mut seen = HashSet::with_capacity(ids.len());
                if let Some(dup) = ids.iter().find(|id| !seen.insert(**id)) {
                    return Err(MenuApplyError::DuplicateId { menu: m.id, item: *dup });
                }
                self.menus.insert(m.id, m.clone());
                Ok(Some(MenuChange::Set))
            }
            MenuUpdate::Props { menu, title, width, height, enabled } => {
                let m = self.menus.get_mut(menu).ok_or(MenuApplyError::UnknownMenu(*menu))?;
                if m.title == *title && m.width == *width && m.height == *height && m.enabled == *enabled {
                    return Ok(None);
                }
                m.title.clone_from(title);
                m.width = *width;
                m.height = *height;
                m.enabled = *enabled;
                Ok(Some(MenuChange::Props))
            }
            MenuUpdate::Node { menu, node } => {
                let m = self.menus.get_mut(menu).ok_or(MenuApplyError::UnknownMenu(*menu))?;
                let path =
                    path_to(&m.root, node.id).ok_or(MenuApplyError::UnknownItem { menu: *menu, item: node.id })?;
                let Some(old) = node_at(&mut m.root, &path) else {
                    return Err(MenuApplyError::UnknownItem { menu: *menu, item: node.id });
                };
                if old == node {
                    return Ok(None);
                }
                let old_ids: HashSet<ItemId> = old.ids().into_iter().collect();
                let old_count = old_ids.len();
                let all: HashSet<ItemId> = m.root.ids().into_iter().collect();
                let new_ids = node.ids();
                let mut seen = HashSet::with_capacity(new_ids.len());
                for id in &new_ids {
                    if !seen.insert(*id) || (all.contains(id) && !old_ids.contains(id)) {
                        return Err(MenuApplyError::DuplicateId { menu: *menu, item: *id });
                    }
                }
                let count = m.root.count() - old_count + new_ids.len();
                if count > MAX_MENU_NODES || path.len() + node.depth() > MAX_MENU_DEPTH {
                    return Err(MenuApplyError::TooLarge(*menu));
                }
                if let Some(slot) = node_at(&mut m.root, &path) {
                    *slot = node.clone();
                }
                Ok(Some(MenuChange::Node(node.id)))
            }
            MenuUpdate::Content { menu, item, content } => {
                let m = self.menus.get_mut(menu).ok_or(MenuApplyError::UnknownMenu(*menu))?;
                let n = m.root.find_mut(*item).ok_or(MenuApplyError::UnknownItem { menu: *menu, item: *item })?;
                if n.content == *content {
                    return Ok(None);
                }
                n.content.clone_from(content);
                Ok(Some(MenuChange::Content(*item)))
            }
            MenuUpdate::RemoveNode { menu, item } => {
                let m = self.menus.get_mut(menu).ok_or(MenuApplyError::UnknownMenu(*menu))?;
                if m.root.id == *item {
                    return Err(MenuApplyError::RemoveRoot(*menu));
                }
                let Some(mut path) = path_to(&m.root, *item) else { return Ok(None) };
                let Some(last) = path.pop() else { return Err(MenuApplyError::RemoveRoot(*menu)) };
                if let Some(parent) = node_at(&mut m.root, &path) {
                    parent.children.remove(last);
                }
                Ok(Some(MenuChange::NodeRemoved(*item)))
            }
            MenuUpdate::Remove { menu } => Ok(self.menus.remove(menu).map(|_| MenuChange::Removed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_assigns_auto_ids_above_the_base_and_keeps_yours() {
        let m = Menu::new(MenuId(3), "t").column(|c| {
            c.label(ItemId(1), "a").row(|r| r.button(ItemId(2), Button::new("b")).column(|c| c.label(ItemId(5), "x")))
        });
        let ids = m.root.ids();
        assert_eq!(
            ids,
            vec![ItemId(0), ItemId(1), ItemId(AUTO_ID_BASE), ItemId(2), ItemId(AUTO_ID_BASE + 1), ItemId(5)]
        );
        assert_eq!(m.node(ItemId(AUTO_ID_BASE)).unwrap().orientation, Orientation::Horizontal);
        assert_eq!(m.button(ItemId(2)).unwrap().text, "b");
        assert!(m.slider(ItemId(2)).is_none());
        // Building again continues the auto ids.
        let m = m.column(|c| c.row(|r| r));
        assert!(m.node(ItemId(AUTO_ID_BASE + 2)).is_some());
    }

    #[test]
    fn builders_clamp_to_valid_values() {
        let s = Slider::new(5.0, -5.0).value(100.0).step(-1.0);
        assert_eq!((s.min, s.max, s.value, s.step), (-5.0, 5.0, 5.0, 0.0));
        assert_eq!(Slider::new(f32::NAN, 1.0).value(f32::INFINITY).value, 0.0);
        assert_eq!(LoadingBar::new(3.0).progress, 1.0);
        assert_eq!(Dropdown::new(["a"]).selected(4).selected, None);
        assert_eq!(List::new(["a", "b", "c"]).selected([2, 0, 9]).selected, vec![0]);
        assert_eq!(List::new(["a", "b", "c"]).multi().selected([2, 0, 2, 9]).selected, vec![0, 2]);
        assert_eq!(Node::new(ItemId(1)).sizing(Sizing::Ratio(7.0)).sizing, Sizing::Ratio(1.0));
        let b = Button::toggle("off", "on").selected(true);
        assert_eq!(b.current_text(), "on");
        assert_eq!(b.disabled(true).disabled_text("n/a").current_text(), "n/a");
    }
}
