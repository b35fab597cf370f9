//! The JSON forms of the instance API's values: complexes (shallow and deep), shapes, stream
//! kinds, targets and data, menus and menu events, notification levels and colour schemes.
//! `bridge/README.md` documents every form; this module is its reference.
//!
//! Input is read with serde into structs that refuse unknown members, then checked (finite
//! numbers, lengths that agree, indices in range) before anything reaches the session, so a
//! malformed value is an [`INVALID_PARAMS`](crate::rpc::INVALID_PARAMS) error with a message
//! naming what is wrong.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use glam::{Quat, Vec2, Vec3};
use molstream_engine::bonds::assign_bonds;
use molstream_engine::builder::{AtomRecord, TopologyBuilder};
use molstream_engine::io::{self, LoadOptions};
use molstream_engine::shape::{Anchor, AnchorTarget, Mesh, Shape, ShapeId, ShapeKind, Texture};
use molstream_engine::{AtomId, BondKind, ColorScheme, Complex, ComplexId, Element, Representation};
use molstream_net::api::{ComplexInfo, Level};
use molstream_net::host::{Interrupt, PresenterInfo, StreamKind, StreamTarget};
use molstream_net::menu::{
    Align, Button, Dropdown, Element as MenuElement, Icon, Image, ImageFormat, ImageScale, ItemId, Label, List,
    LoadingBar, Menu, MenuAction, MenuEvent, MenuId, Node, Orientation, Padding, Sizing, Slider, TextInput,
};
use molstream_net::proto::UserId;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::rpc::RpcError;

type R<T> = Result<T, RpcError>;

/// Reads named parameters into `T` (absent parameters read as `{}`).
///
/// # Errors
/// [`INVALID_PARAMS`](crate::rpc::INVALID_PARAMS) for positional parameters or parameters
/// that do not fit `T` (serde's message says which member).
pub fn params<T: DeserializeOwned>(p: Option<Value>) -> R<T> {
    let v = match p {
        None => Value::Object(Map::new()),
        Some(Value::Array(_)) => {
            return Err(RpcError::invalid_params("this bridge takes named parameters (an object), not an array"));
        }
        Some(v) => v,
    };
    serde_json::from_value(v).map_err(|e| RpcError::invalid_params(format!("invalid params: {e}")))
}

fn finite(what: &str, v: f32) -> R<f32> {
    if v.is_finite() { Ok(v) } else { Err(RpcError::invalid_params(format!("{what} must be a finite number"))) }
}

/// A finite 3-vector.
///
/// # Errors
/// Non-finite components.
pub fn vec3(what: &str, v: [f32; 3]) -> R<Vec3> {
    for c in v {
        finite(what, c)?;
    }
    Ok(Vec3::from_array(v))
}

/// A rotation `[x, y, z, w]`, normalised; its squared length must be within 0.5..2 (as the
/// wire protocol requires of `ComplexInfo`).
///
/// # Errors
/// Non-finite components or a length far from 1.
pub fn quat(what: &str, v: [f32; 4]) -> R<Quat> {
    for c in v {
        finite(what, c)?;
    }
    let q = Quat::from_array(v);
    let n = q.length_squared();
    if !(0.5..=2.0).contains(&n) {
        return Err(RpcError::invalid_params(format!("{what} must be a unit quaternion [x, y, z, w]")));
    }
    Ok(q.normalize())
}

/// An `f32` as the shortest JSON number that reads back as the same `f32` (`12.345`, not the
/// `f64` expansion `12.345000267028809`): JSON stays about half as large.
#[must_use]
pub fn num(x: f32) -> Value {
    if !x.is_finite() {
        return Value::Null;
    }
    x.to_string().parse::<f64>().map_or(Value::Null, Value::from)
}

fn nums(xs: &[f32]) -> Value {
    Value::Array(xs.iter().map(|x| num(*x)).collect())
}

/// A vector as `[x, y, z]` ([`num`] each).
#[must_use]
pub fn v3(v: Vec3) -> Value {
    Value::Array(vec![num(v.x), num(v.y), num(v.z)])
}

/// Vectors as `[[x, y, z], …]`.
#[must_use]
pub fn vecs(vs: &[Vec3]) -> Value {
    Value::Array(vs.iter().map(|v| v3(*v)).collect())
}

fn q4(q: Quat) -> Value {
    nums(&q.to_array())
}

/// A colour: an RGBA8 integer (red in the lowest byte, as the engine packs it) or a string
/// `"#rrggbb"` / `"#rrggbbaa"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ColorIn {
    /// Packed RGBA8.
    Packed(u32),
    /// CSS-style hex.
    Hex(String),
}

impl ColorIn {
    /// The packed colour.
    ///
    /// # Errors
    /// A string that is not `#rrggbb` or `#rrggbbaa`.
    pub fn packed(&self) -> R<u32> {
        match self {
            Self::Packed(c) => Ok(*c),
            Self::Hex(s) => parse_hex_color(s),
        }
    }
}

fn parse_hex_color(s: &str) -> R<u32> {
    let bad = || RpcError::invalid_params(format!("colour {s:?} is neither #rrggbb nor #rrggbbaa"));
    let hex = s.strip_prefix('#').ok_or_else(bad)?;
    if !(hex.len() == 6 || hex.len() == 8) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
    let a = if hex.len() == 8 { byte(6)? } else { 255 };
    Ok(u32::from_le_bytes([byte(0)?, byte(2)?, byte(4)?, a]))
}

/// `"#rrggbbaa"` of a packed colour.
#[must_use]
pub fn hex_color(c: u32) -> String {
    let [r, g, b, a] = c.to_le_bytes();
    format!("#{r:02x}{g:02x}{b:02x}{a:02x}")
}

// ------------------------------------------------------------------ small enums

/// A notification level: `info`, `success`, `warning`, `error`.
///
/// # Errors
/// Any other name.
pub fn level(s: &str) -> R<Level> {
    Ok(match s {
        "info" => Level::Info,
        "success" => Level::Success,
        "warning" => Level::Warning,
        "error" => Level::Error,
        _ => return Err(RpcError::invalid_params(format!("level {s:?}: one of info, success, warning, error"))),
    })
}

/// A colour scheme: `element`, `chain`, `residue_type`, `b_factor`.
///
/// # Errors
/// Any other name.
pub fn color_scheme(s: &str) -> R<ColorScheme> {
    Ok(match s {
        "element" => ColorScheme::Element,
        "chain" => ColorScheme::Chain,
        "residue_type" => ColorScheme::ResidueType,
        "b_factor" => ColorScheme::BFactor,
        _ => {
            return Err(RpcError::invalid_params(format!(
                "scheme {s:?}: one of element, chain, residue_type, b_factor"
            )));
        }
    })
}

const STREAM_KINDS: [(&str, StreamKind); 9] = [
    ("atom_position", StreamKind::AtomPosition),
    ("atom_color", StreamKind::AtomColor),
    ("atom_scale", StreamKind::AtomScale),
    ("atom_label", StreamKind::AtomLabel),
    ("complex_position", StreamKind::ComplexPosition),
    ("complex_rotation", StreamKind::ComplexRotation),
    ("shape_position", StreamKind::ShapePosition),
    ("shape_color", StreamKind::ShapeColor),
    ("sphere_radius", StreamKind::SphereRadius),
];

/// A writing stream's kind by name (`atom_position`, `atom_color`, …).
///
/// # Errors
/// An unknown name.
pub fn stream_kind(s: &str) -> R<StreamKind> {
    STREAM_KINDS.iter().find(|(n, _)| *n == s).map(|(_, k)| *k).ok_or_else(|| {
        let names: Vec<&str> = STREAM_KINDS.iter().map(|(n, _)| *n).collect();
        RpcError::invalid_params(format!("stream kind {s:?}: one of {}", names.join(", ")))
    })
}

/// The name of a writing stream's kind.
#[must_use]
pub fn stream_kind_name(k: StreamKind) -> &'static str {
    STREAM_KINDS.iter().find(|(_, x)| *x == k).map_or("?", |(n, _)| *n)
}

/// A writing stream's target: `{"complex", "atoms"}`, `{"complexes"}` or `{"shapes"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetIn {
    complex: Option<u32>,
    atoms: Option<Vec<u32>>,
    complexes: Option<Vec<u32>>,
    shapes: Option<Vec<u32>>,
}

impl TargetIn {
    /// The SDK's target.
    ///
    /// # Errors
    /// Not exactly one of the three forms.
    pub fn target(self) -> R<StreamTarget> {
        match (self.complex, self.atoms, self.complexes, self.shapes) {
            (Some(c), Some(a), None, None) => {
                Ok(StreamTarget::Atoms { complex: ComplexId(c), atoms: a.into_iter().map(AtomId).collect() })
            }
            (None, None, Some(c), None) => Ok(StreamTarget::Complexes(c.into_iter().map(ComplexId).collect())),
            (None, None, None, Some(s)) => Ok(StreamTarget::Shapes(s.into_iter().map(ShapeId).collect())),
            _ => Err(RpcError::invalid_params(
                "target must be {\"complex\", \"atoms\"}, {\"complexes\"} or {\"shapes\"}",
            )),
        }
    }
}

/// Why a stream was interrupted, as JSON.
#[must_use]
pub fn interrupt(i: &Interrupt) -> Value {
    match i {
        Interrupt::Destroyed => json!({ "reason": "destroyed" }),
        Interrupt::ComplexRemoved(c) => json!({ "reason": "complex_removed", "complex": c.0 }),
        Interrupt::Superseded(c) => json!({ "reason": "superseded", "complex": c.0 }),
        Interrupt::ShapeDestroyed(s) => json!({ "reason": "shape_destroyed", "shape": s.0 }),
        Interrupt::PresenterChanged(u) => json!({ "reason": "presenter_changed", "presenter": u.0 }),
    }
}

/// Presenter info as JSON.
#[must_use]
pub fn presenter(p: &PresenterInfo) -> Value {
    json!({ "user": p.user.0, "name": p.name, "client": p.client })
}

// ------------------------------------------------------------------ complexes, shallow

/// A complex's shallow view as JSON.
#[must_use]
pub fn complex_info(c: &ComplexInfo) -> Value {
    json!({
        "id": c.id.0, "name": c.name, "atoms": c.atoms, "residues": c.residues, "chains": c.chains,
        "bonds": c.bonds, "models": c.models, "current_model": c.current_model,
        "position": v3(c.position), "rotation": q4(c.rotation), "visible": c.visible, "locked": c.locked,
    })
}

/// A shallow change: `id` and any of the placement members. The counts that
/// [`complex_info`] writes are taken and ignored, so a listed complex can be sent back changed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShallowIn {
    /// The complex.
    pub id: u32,
    name: Option<String>,
    position: Option<[f32; 3]>,
    rotation: Option<[f32; 4]>,
    visible: Option<bool>,
    locked: Option<bool>,
    current_model: Option<u32>,
    #[serde(rename = "atoms")]
    _atoms: Option<u32>,
    #[serde(rename = "residues")]
    _residues: Option<u32>,
    #[serde(rename = "chains")]
    _chains: Option<u32>,
    #[serde(rename = "bonds")]
    _bonds: Option<u32>,
    #[serde(rename = "models")]
    _models: Option<u32>,
}

impl ShallowIn {
    /// Checks the values that do not depend on the complex (finite position, unit rotation).
    ///
    /// # Errors
    /// As [`ShallowIn::apply`].
    pub fn validate(&self) -> R<()> {
        if let Some(p) = self.position {
            vec3("position", p)?;
        }
        if let Some(r) = self.rotation {
            quat("rotation", r)?;
        }
        Ok(())
    }

    /// Applies the change to `info`.
    ///
    /// # Errors
    /// Non-finite or non-unit values, a model that does not exist.
    pub fn apply(&self, info: &mut ComplexInfo) -> R<()> {
        if let Some(n) = &self.name {
            info.name.clone_from(n);
        }
        if let Some(p) = self.position {
            info.position = vec3("position", p)?;
        }
        if let Some(r) = self.rotation {
            info.rotation = quat("rotation", r)?;
        }
        if let Some(v) = self.visible {
            info.visible = v;
        }
        if let Some(l) = self.locked {
            info.locked = l;
        }
        if let Some(m) = self.current_model {
            if m >= info.models {
                return Err(RpcError::not_found("model", json!(m)));
            }
            info.current_model = m;
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ complexes, deep

/// Sections of a deep complex.
pub const SECTIONS: [&str; 6] = ["atoms", "residues", "chains", "bonds", "positions", "display"];

/// Checks a `fields` list against [`SECTIONS`].
///
/// # Errors
/// An unknown section.
pub fn check_fields(fields: &[String]) -> R<()> {
    match fields.iter().find(|f| !SECTIONS.contains(&f.as_str())) {
        Some(f) => Err(RpcError::invalid_params(format!("field {f:?}: one of {}", SECTIONS.join(", ")))),
        None => Ok(()),
    }
}

fn byte_str(b: u8) -> String {
    if b == 0 { String::new() } else { char::from(b).to_string() }
}

/// A complex whole (its current model), with the sections named in `fields` (all if `None`).
#[must_use]
pub fn complex_deep(c: &Complex, fields: Option<&[String]>) -> Value {
    let want = |s: &str| fields.is_none_or(|f| f.iter().any(|x| x == s));
    let m = c.current();
    let t = m.topology;
    let mut o = Map::new();
    o.insert("id".into(), c.id.0.into());
    o.insert("name".into(), c.name.clone().into());
    o.insert("position".into(), v3(c.position));
    o.insert("rotation".into(), q4(c.rotation));
    o.insert("visible".into(), c.visible.into());
    o.insert("locked".into(), c.locked.into());
    o.insert("models".into(), c.models.len().into());
    o.insert("current_model".into(), c.current_model.into());
    if want("atoms") {
        let a = &t.atoms;
        o.insert(
            "atoms".into(),
            json!({
                "name": a.name.iter().map(|s| t.strings.get(*s)).collect::<Vec<_>>(),
                "element": a.element.iter().map(|e| e.symbol()).collect::<Vec<_>>(),
                "residue": a.residue.iter().map(|r| r.0).collect::<Vec<_>>(),
                "serial": a.serial,
                "alt_loc": a.alt_loc.iter().map(|b| byte_str(*b)).collect::<Vec<_>>(),
                "het": a.het,
                "occupancy": nums(&a.occupancy),
                "b_factor": nums(&a.b_factor),
                "formal_charge": a.formal_charge,
            }),
        );
    }
    if want("residues") {
        let r = &t.residues;
        o.insert(
            "residues".into(),
            json!({
                "name": r.name.iter().map(|s| t.strings.get(*s)).collect::<Vec<_>>(),
                "seq_num": r.seq_num,
                "ins_code": r.ins_code.iter().map(|b| byte_str(*b)).collect::<Vec<_>>(),
                "chain": r.chain.iter().map(|c| c.0).collect::<Vec<_>>(),
            }),
        );
    }
    if want("chains") {
        let names: Vec<&str> = t.chains.name.iter().map(|s| t.strings.get(*s)).collect();
        o.insert("chains".into(), json!({ "name": names }));
    }
    if want("bonds") {
        let b = &t.bonds;
        let list: Vec<[u32; 3]> = (0..b.len()).map(|i| [b.a[i].0, b.b[i].0, u32::from(b.kind[i] as u8)]).collect();
        o.insert("bonds".into(), json!(list));
    }
    if want("positions") {
        o.insert("positions".into(), vecs(m.positions));
    }
    if want("display") {
        let d = m.display;
        let selected: Vec<usize> = d.selected.iter().enumerate().filter(|(_, s)| **s).map(|(i, _)| i).collect();
        let labels: BTreeMap<String, &str> = d
            .labeled
            .iter()
            .enumerate()
            .filter(|(_, l)| **l)
            .map(|(i, _)| {
                let text = u32::try_from(i).ok().and_then(|i| d.label_text.get(&AtomId(i))).map_or("", String::as_str);
                (i.to_string(), text)
            })
            .collect();
        o.insert(
            "display".into(),
            json!({
                "color": d.color,
                "radius": nums(&d.radius),
                "representation": d.representation.iter().map(|r| *r as u8).collect::<Vec<_>>(),
                "selected": selected,
                "labels": labels,
            }),
        );
    }
    Value::Object(o)
}

/// A structure file in a request: its name (the format comes from the extension or the
/// content) and its bytes as `text` or `base64` (e.g. gzip).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileIn {
    /// File name.
    pub name: String,
    /// Contents as text.
    pub text: Option<String>,
    /// Contents as base64.
    pub base64: Option<String>,
}

/// The bytes of a file given as `text` or `base64` (exactly one; `None` if neither).
///
/// # Errors
/// Both given, or invalid base64.
pub fn file_bytes(text: Option<String>, b64: Option<&str>) -> R<Option<Vec<u8>>> {
    match (text, b64) {
        (Some(t), None) => Ok(Some(t.into_bytes())),
        (None, Some(b)) => {
            B64.decode(b).map(Some).map_err(|e| RpcError::invalid_params(format!("invalid base64: {e}")))
        }
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(RpcError::invalid_params("give the contents as \"text\" or \"base64\", not both")),
    }
}

/// Loads a structure file as the session's `load_file` does.
///
/// # Errors
/// [`LOAD_FAILED`](crate::rpc::LOAD_FAILED) with the loader's message.
pub fn load_structure(name: &str, bytes: &[u8]) -> R<Complex> {
    let hint = io::format_from_name(std::path::Path::new(name));
    let opts = LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() };
    let loaded =
        io::load_bytes(bytes, name, hint, &opts).map_err(|e| RpcError::new(crate::rpc::LOAD_FAILED, e.to_string()))?;
    let mut c = loaded.complex;
    let stem = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let stem = stem.strip_suffix(".gz").unwrap_or(stem);
    c.name = stem.rsplit_once('.').map_or(stem, |(s, _)| s).to_owned();
    Ok(c)
}

/// Atom columns of a deep complex in a request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtomsIn {
    name: Vec<String>,
    element: Vec<String>,
    residue: Vec<u32>,
    serial: Option<Vec<i32>>,
    alt_loc: Option<Vec<String>>,
    het: Option<Vec<bool>>,
    occupancy: Option<Vec<f32>>,
    b_factor: Option<Vec<f32>>,
    formal_charge: Option<Vec<i8>>,
}

/// Residue columns of a deep complex in a request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResiduesIn {
    name: Vec<String>,
    seq_num: Vec<i32>,
    chain: Vec<u32>,
    ins_code: Option<Vec<String>>,
}

/// Chain columns of a deep complex in a request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainsIn {
    name: Vec<String>,
}

/// Display columns of a deep complex in a request; each given column replaces the complex's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisplayIn {
    color: Option<Vec<ColorIn>>,
    radius: Option<Vec<f32>>,
    representation: Option<Vec<u8>>,
    selected: Option<Vec<u32>>,
    labels: Option<BTreeMap<String, String>>,
}

/// A deep complex in a request: a new complex (`id` absent or 0) built from a `file` or from
/// columns, or a change of an existing one (`id`): columns given replace the complex's, others
/// are kept.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplexIn {
    /// The complex (absent or 0: a new one).
    #[serde(default)]
    pub id: u32,
    name: Option<String>,
    position: Option<[f32; 3]>,
    rotation: Option<[f32; 4]>,
    visible: Option<bool>,
    locked: Option<bool>,
    current_model: Option<usize>,
    #[serde(rename = "models")]
    _models: Option<usize>,
    file: Option<FileIn>,
    atoms: Option<AtomsIn>,
    residues: Option<ResiduesIn>,
    chains: Option<ChainsIn>,
    bonds: Option<Vec<[u32; 3]>>,
    positions: Option<Vec<[f32; 3]>>,
    display: Option<DisplayIn>,
}

fn same_len(what: &str, got: usize, n: usize) -> R<()> {
    if got == n {
        Ok(())
    } else {
        Err(RpcError::invalid_params(format!("{what} has {got} entries; the complex has {n}")))
    }
}

fn one_byte(what: &str, s: &str) -> R<u8> {
    match s.as_bytes() {
        [] => Ok(0),
        [b] if b.is_ascii_graphic() => Ok(*b),
        _ => Err(RpcError::invalid_params(format!("{what} {s:?} must be empty or one printable ASCII character"))),
    }
}

fn element(s: &str) -> R<Element> {
    match s.trim() {
        "" | "X" | "x" => Ok(Element(0)),
        t => Element::from_symbol(t).ok_or_else(|| RpcError::invalid_params(format!("element {s:?} is unknown"))),
    }
}

fn bond_kind(k: u32) -> R<BondKind> {
    u8::try_from(k).ok().and_then(BondKind::from_u8).ok_or_else(|| {
        RpcError::invalid_params(format!("bond kind {k}: 0 unknown, 1 single, 2 double, 3 triple, 4 aromatic"))
    })
}

fn positions(p: &[[f32; 3]]) -> R<Vec<Vec3>> {
    p.iter().map(|v| vec3("a position", *v)).collect()
}

fn explicit_bonds(bonds: &[[u32; 3]], n: usize) -> R<Vec<(AtomId, AtomId, BondKind)>> {
    bonds
        .iter()
        .map(|[a, b, k]| {
            if *a as usize >= n || *b as usize >= n || a == b {
                return Err(RpcError::invalid_params(format!(
                    "bond ({a}, {b}) does not join two atoms of the complex"
                )));
            }
            Ok((AtomId(*a), AtomId(*b), bond_kind(*k)?))
        })
        .collect()
}

/// Builds a topology from columns.
fn build(atoms: &AtomsIn, residues: &ResiduesIn, chains: &ChainsIn, pos: &[[f32; 3]]) -> R<Complex> {
    let n = atoms.name.len();
    same_len("atoms.element", atoms.element.len(), n)?;
    same_len("atoms.residue", atoms.residue.len(), n)?;
    same_len("positions", pos.len(), n)?;
    for (what, len) in [
        ("atoms.serial", atoms.serial.as_ref().map(Vec::len)),
        ("atoms.alt_loc", atoms.alt_loc.as_ref().map(Vec::len)),
        ("atoms.het", atoms.het.as_ref().map(Vec::len)),
        ("atoms.occupancy", atoms.occupancy.as_ref().map(Vec::len)),
        ("atoms.b_factor", atoms.b_factor.as_ref().map(Vec::len)),
        ("atoms.formal_charge", atoms.formal_charge.as_ref().map(Vec::len)),
    ] {
        if let Some(l) = len {
            same_len(what, l, n)?;
        }
    }
    let nr = residues.name.len();
    same_len("residues.seq_num", residues.seq_num.len(), nr)?;
    same_len("residues.chain", residues.chain.len(), nr)?;
    if let Some(i) = &residues.ins_code {
        same_len("residues.ins_code", i.len(), nr)?;
    }
    if n == 0 {
        return Err(RpcError::invalid_params("a complex needs at least one atom"));
    }
    let ordered = |col: &[u32], bound: usize, what: &str| -> R<()> {
        if col.iter().any(|x| *x as usize >= bound) || col.windows(2).any(|w| w[1] < w[0]) {
            return Err(RpcError::invalid_params(format!("{what} must be ascending indices below {bound}")));
        }
        Ok(())
    };
    ordered(&atoms.residue, nr, "atoms.residue")?;
    ordered(&residues.chain, chains.name.len(), "residues.chain")?;
    let positions = positions(pos)?;
    let mut b = TopologyBuilder::with_capacity(n);
    let mut last_chain = None;
    for i in 0..n {
        let r = atoms.residue[i] as usize;
        let c = residues.chain[r] as usize;
        if last_chain.is_some_and(|l| l != c) {
            b.chain_break();
        }
        last_chain = Some(c);
        let pick = |col: &Option<Vec<f32>>, default: f32, what: &str| -> R<f32> {
            col.as_ref().map_or(Ok(default), |v| finite(what, v[i]))
        };
        let alt = atoms.alt_loc.as_ref().map_or(Ok(0), |v| one_byte("alt_loc", &v[i]))?;
        let ins = residues.ins_code.as_ref().map_or(Ok(0), |v| one_byte("ins_code", &v[r]))?;
        b.push(&AtomRecord {
            name: &atoms.name[i],
            element: element(&atoms.element[i])?,
            serial: atoms.serial.as_ref().map_or(i32::try_from(i + 1).unwrap_or(i32::MAX), |v| v[i]),
            alt_loc: alt,
            het: atoms.het.as_ref().is_some_and(|v| v[i]),
            occupancy: pick(&atoms.occupancy, 1.0, "occupancy")?,
            b_factor: pick(&atoms.b_factor, 0.0, "b_factor")?,
            formal_charge: atoms.formal_charge.as_ref().map_or(0, |v| v[i]),
            res_name: &residues.name[r],
            chain: &chains.name[c],
            seq_num: residues.seq_num[r],
            ins_code: ins,
            position: positions[i],
        });
    }
    let (topology, positions) = b.finish(&[]);
    if topology.residue_count() != nr || topology.chain_count() != chains.name.len() {
        return Err(RpcError::invalid_params(
            "the residues or chains do not group the atoms as listed (two neighbouring residues with the same \
             chain, number and insertion code, or a chain without residues)",
        ));
    }
    topology.validate().map_err(|e| RpcError::invalid_params(format!("invalid topology: {e}")))?;
    Ok(Complex::single("complex", topology, positions))
}

impl ComplexIn {
    /// Whether it names no complex yet (it is to be added).
    #[must_use]
    pub fn is_new(&self) -> bool {
        self.id == 0
    }

    /// The file the complex is built from, if any.
    #[must_use]
    pub fn file(&self) -> Option<&FileIn> {
        self.file.as_ref()
    }

    /// Builds the complex: from `file_bytes` (the bytes of [`ComplexIn::file`], read by the
    /// caller), from columns, or by changing `base` (the session's copy of complex `id`).
    ///
    /// # Errors
    /// Invalid columns or values; [`LOAD_FAILED`](crate::rpc::LOAD_FAILED) for a file.
    pub fn into_complex(self, base: Option<Complex>, file_bytes: Option<&[u8]>) -> R<Complex> {
        let mut c = match (&self.file, &self.atoms, base) {
            (Some(_), Some(_), _) => {
                return Err(RpcError::invalid_params("give a complex as a \"file\" or as \"atoms\", not both"));
            }
            (Some(f), None, _) => {
                let bytes = file_bytes.ok_or_else(|| RpcError::invalid_params("the file has no contents"))?;
                load_structure(&f.name, bytes)?
            }
            (None, Some(atoms), _) => {
                let (Some(residues), Some(chains), Some(pos)) = (&self.residues, &self.chains, &self.positions) else {
                    return Err(RpcError::invalid_params(
                        "a complex given as columns needs \"atoms\", \"residues\", \"chains\" and \"positions\"",
                    ));
                };
                let mut c = build(atoms, residues, chains, pos)?;
                let explicit = match &self.bonds {
                    Some(b) => explicit_bonds(b, pos.len())?,
                    None => Vec::new(),
                };
                let model = c.models.first().map(|m| m.positions.clone()).unwrap_or_default();
                if let Some(t) = c.topologies.first_mut() {
                    assign_bonds(t, &model, &explicit, self.bonds.is_none());
                }
                c
            }
            (None, None, Some(base)) => {
                if self.residues.is_some() || self.chains.is_some() {
                    return Err(RpcError::invalid_params("residues and chains change only together with atoms"));
                }
                let mut c = base;
                if let Some(m) = self.current_model {
                    if m >= c.models.len() {
                        return Err(RpcError::not_found("model", json!(m)));
                    }
                    c.current_model = m;
                }
                let n = c.current().topology.atom_count();
                if let Some(p) = &self.positions {
                    same_len("positions", p.len(), n)?;
                    let p = positions(p)?;
                    let i = c.current_model;
                    c.set_positions(i, p).map_err(RpcError::invalid_params)?;
                }
                if let Some(b) = &self.bonds {
                    let explicit = explicit_bonds(b, n)?;
                    let ti = c.models[c.current_model].topology;
                    let pos = c.models[c.current_model].positions.clone();
                    assign_bonds(&mut c.topologies[ti], &pos, &explicit, false);
                }
                c
            }
            (None, None, None) => {
                return Err(RpcError::invalid_params(
                    "a new complex needs a \"file\" or columns (\"atoms\", \"residues\", \"chains\", \"positions\")",
                ));
            }
        };
        c.id = ComplexId(self.id);
        if let Some(n) = self.name {
            c.name = n;
        }
        if let Some(p) = self.position {
            c.position = vec3("position", p)?;
        }
        if let Some(r) = self.rotation {
            c.rotation = quat("rotation", r)?;
        }
        if let Some(v) = self.visible {
            c.visible = v;
        }
        if let Some(l) = self.locked {
            c.locked = l;
        }
        if let Some(d) = self.display {
            apply_display(&mut c, d)?;
        }
        Ok(c)
    }
}

fn apply_display(c: &mut Complex, d: DisplayIn) -> R<()> {
    let ti = c.models.get(c.current_model).map_or(0, |m| m.topology);
    let n = c.topologies.get(ti).map_or(0, molstream_engine::Topology::atom_count);
    let disp = c.displays.get_mut(ti).ok_or_else(|| RpcError::invalid_params("the complex has no display state"))?;
    if let Some(col) = d.color {
        same_len("display.color", col.len(), n)?;
        disp.color = col.iter().map(ColorIn::packed).collect::<R<_>>()?;
    }
    if let Some(r) = d.radius {
        same_len("display.radius", r.len(), n)?;
        disp.radius = r.iter().map(|v| finite("a radius", *v)).collect::<R<_>>()?;
    }
    if let Some(r) = d.representation {
        same_len("display.representation", r.len(), n)?;
        disp.representation = r
            .iter()
            .map(|v| {
                Representation::from_u8(*v).ok_or_else(|| {
                    RpcError::invalid_params(format!(
                        "representation {v}: 0 ball-and-stick, 1 sticks, 2 spacefill, 3 lines, 4 hidden"
                    ))
                })
            })
            .collect::<R<_>>()?;
    }
    if let Some(s) = d.selected {
        let mut sel = vec![false; n];
        for a in s {
            *sel.get_mut(a as usize).ok_or_else(|| RpcError::not_found("atom", json!(a)))? = true;
        }
        disp.selected = sel;
    }
    if let Some(labels) = d.labels {
        let mut labeled = vec![false; n];
        let mut text = BTreeMap::new();
        for (k, v) in labels {
            let a: u32 =
                k.parse().map_err(|_| RpcError::invalid_params(format!("label key {k:?} is no atom index")))?;
            *labeled.get_mut(a as usize).ok_or_else(|| RpcError::not_found("atom", json!(a)))? = true;
            if !v.is_empty() {
                text.insert(AtomId(a), v);
            }
        }
        disp.labeled = labeled;
        disp.label_text = text;
    }
    Ok(())
}

// ------------------------------------------------------------------ shapes

/// An anchor: `{"complex", "atom", "offset"}`, each optional (no complex: the workspace; a
/// complex without atom: its frame; both: the atom).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorIn {
    complex: Option<u32>,
    atom: Option<u32>,
    offset: Option<[f32; 3]>,
}

impl AnchorIn {
    fn anchor(&self) -> R<Anchor> {
        let offset = vec3("offset", self.offset.unwrap_or_default())?;
        Ok(match (self.complex, self.atom) {
            (None, None) => Anchor::workspace(offset),
            (Some(c), None) => Anchor::complex(ComplexId(c), offset),
            (Some(c), Some(a)) => Anchor::atom(ComplexId(c), AtomId(a), offset),
            (None, Some(_)) => return Err(RpcError::invalid_params("an atom anchor needs its \"complex\"")),
        })
    }
}

fn anchor_json(a: &Anchor) -> Value {
    match a.target {
        AnchorTarget::Workspace => json!({ "offset": v3(a.offset) }),
        AnchorTarget::Complex(c) => json!({ "complex": c.0, "offset": v3(a.offset) }),
        AnchorTarget::Atom(c, at) => json!({ "complex": c.0, "atom": at.0, "offset": v3(a.offset) }),
    }
}

/// A mesh texture: RGBA8 rows, base64.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextureIn {
    width: u32,
    height: u32,
    rgba_base64: String,
}

/// A shape in a request (`type`: `sphere`, `line`, `label`, `mesh`).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ShapeIn {
    /// A sphere.
    Sphere {
        /// Id (absent or 0: a new shape).
        id: Option<u32>,
        /// Colour.
        color: Option<ColorIn>,
        /// Centre.
        anchor: AnchorIn,
        /// Radius, Å.
        radius: f32,
    },
    /// A line, dashed if `dash_length` > 0.
    Line {
        /// Id.
        id: Option<u32>,
        /// Colour.
        color: Option<ColorIn>,
        /// First end.
        start: AnchorIn,
        /// Second end.
        end: AnchorIn,
        /// Thickness, Å.
        thickness: f32,
        /// Dash length, Å.
        #[serde(default)]
        dash_length: f32,
        /// Gap, Å.
        #[serde(default)]
        dash_gap: f32,
    },
    /// A text label.
    Label {
        /// Id.
        id: Option<u32>,
        /// Colour.
        color: Option<ColorIn>,
        /// Where.
        anchor: AnchorIn,
        /// Text.
        text: String,
        /// Points.
        font_size: f32,
    },
    /// A triangle mesh.
    Mesh {
        /// Id.
        id: Option<u32>,
        /// Colour.
        color: Option<ColorIn>,
        /// Origin.
        anchor: AnchorIn,
        /// Vertices.
        positions: Vec<[f32; 3]>,
        /// Triangles.
        indices: Vec<u32>,
        /// Normals.
        #[serde(default)]
        normals: Vec<[f32; 3]>,
        /// Vertex colours.
        #[serde(default)]
        colors: Vec<ColorIn>,
        /// Texture coordinates.
        #[serde(default)]
        uvs: Vec<[f32; 2]>,
        /// Texture.
        texture: Option<TextureIn>,
        /// Unlit.
        #[serde(default)]
        unlit: bool,
    },
}

const WHITE: u32 = 0xff_ff_ff_ff;

impl ShapeIn {
    /// The shape's id (0: a new one).
    #[must_use]
    pub fn id(&self) -> u32 {
        match self {
            Self::Sphere { id, .. } | Self::Line { id, .. } | Self::Label { id, .. } | Self::Mesh { id, .. } => {
                id.unwrap_or(0)
            }
        }
    }

    /// The engine's shape (validated later by the SDK against the codec's limits).
    ///
    /// # Errors
    /// Non-finite values, bad colours, invalid base64.
    pub fn shape(&self) -> R<Shape> {
        let color = |c: &Option<ColorIn>| c.as_ref().map_or(Ok(WHITE), ColorIn::packed);
        let (color, kind) = match self {
            Self::Sphere { color: c, anchor, radius, .. } => {
                (color(c)?, ShapeKind::Sphere { anchor: anchor.anchor()?, radius: *radius })
            }
            Self::Line { color: c, start, end, thickness, dash_length, dash_gap, .. } => (
                color(c)?,
                ShapeKind::Line {
                    start: start.anchor()?,
                    end: end.anchor()?,
                    thickness: *thickness,
                    dash_length: *dash_length,
                    dash_gap: *dash_gap,
                },
            ),
            Self::Label { color: c, anchor, text, font_size, .. } => {
                (color(c)?, ShapeKind::Label { anchor: anchor.anchor()?, text: text.clone(), font_size: *font_size })
            }
            Self::Mesh { color: c, anchor, positions, indices, normals, colors, uvs, texture, unlit, .. } => {
                let mut m = Mesh::new(anchor.anchor()?, self::positions(positions)?, indices.clone());
                m.normals = self::positions(normals)?;
                m.colors = colors.iter().map(ColorIn::packed).collect::<R<_>>()?;
                m.uvs = uvs
                    .iter()
                    .map(|[u, v]| Ok(Vec2::new(finite("a uv", *u)?, finite("a uv", *v)?)))
                    .collect::<R<_>>()?;
                m.texture = match texture {
                    Some(t) => Some(Texture {
                        width: t.width,
                        height: t.height,
                        rgba: B64
                            .decode(&t.rgba_base64)
                            .map_err(|e| RpcError::invalid_params(format!("texture: invalid base64: {e}")))?,
                    }),
                    None => None,
                };
                m.unlit = *unlit;
                (color(c)?, ShapeKind::Mesh(m))
            }
        };
        Ok(Shape { id: ShapeId(self.id()), color, kind })
    }
}

/// A shape as JSON (the form [`ShapeIn`] reads).
#[must_use]
pub fn shape(s: &Shape) -> Value {
    let mut v = match &s.kind {
        ShapeKind::Sphere { anchor, radius } => {
            json!({ "type": "sphere", "anchor": anchor_json(anchor), "radius": num(*radius) })
        }
        ShapeKind::Line { start, end, thickness, dash_length, dash_gap } => json!({
            "type": "line", "start": anchor_json(start), "end": anchor_json(end), "thickness": num(*thickness),
            "dash_length": num(*dash_length), "dash_gap": num(*dash_gap),
        }),
        ShapeKind::Label { anchor, text, font_size } => {
            json!({ "type": "label", "anchor": anchor_json(anchor), "text": text, "font_size": num(*font_size) })
        }
        ShapeKind::Mesh(m) => {
            let mut v = json!({
                "type": "mesh", "anchor": anchor_json(&m.anchor),
                "positions": vecs(&m.positions),
                "indices": m.indices,
                "normals": vecs(&m.normals),
                "colors": m.colors,
                "uvs": m.uvs.iter().map(|p| nums(&p.to_array())).collect::<Vec<_>>(),
                "unlit": m.unlit,
            });
            if let Some(t) = &m.texture {
                v["texture"] = json!({ "width": t.width, "height": t.height, "rgba_base64": B64.encode(&t.rgba) });
            }
            v
        }
    };
    v["id"] = s.id.0.into();
    v["color"] = hex_color(s.color).into();
    v
}

// ------------------------------------------------------------------ menus

fn f(v: f32, what: &str) -> R<f32> {
    finite(what, v)
}

/// A node's sizing: `"expand"`, `{"fixed": px}` or `{"ratio": r}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SizingIn {
    /// Shares the space.
    Expand,
    /// Fixed, logical px.
    Fixed(f32),
    /// Fraction of the parent.
    Ratio(f32),
}

/// An image: `format` (`png`, `jpeg`), `scale` (`fit`, `fill`, `stretch`), `base64` bytes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageIn {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    scale: Option<String>,
    base64: String,
}

impl ImageIn {
    fn image(&self) -> R<Image> {
        let format = match self.format.as_deref() {
            None | Some("png") => ImageFormat::Png,
            Some("jpeg") => ImageFormat::Jpeg,
            Some(x) => return Err(RpcError::invalid_params(format!("image format {x:?}: png or jpeg"))),
        };
        let scale = match self.scale.as_deref() {
            None | Some("fit") => ImageScale::Fit,
            Some("fill") => ImageScale::Fill,
            Some("stretch") => ImageScale::Stretch,
            Some(x) => return Err(RpcError::invalid_params(format!("image scale {x:?}: fit, fill or stretch"))),
        };
        let data =
            B64.decode(&self.base64).map_err(|e| RpcError::invalid_params(format!("image: invalid base64: {e}")))?;
        Ok(Image { format, scale, data: Bytes::from(data) })
    }
}

fn image_json(i: &Image) -> Value {
    let format = match i.format {
        ImageFormat::Png => "png",
        ImageFormat::Jpeg => "jpeg",
    };
    let scale = match i.scale {
        ImageScale::Fit => "fit",
        ImageScale::Fill => "fill",
        ImageScale::Stretch => "stretch",
    };
    json!({ "format": format, "scale": scale, "base64": B64.encode(&i.data) })
}

/// A button's icon: `{"name"}` (built-in) or `{"image"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IconIn {
    name: Option<String>,
    image: Option<ImageIn>,
}

/// A menu element (`type`: `label`, `button`, `text_input`, `slider`, `dropdown`, `list`,
/// `image`, `loading_bar`).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[allow(missing_docs)]
pub enum ElementIn {
    Label {
        text: String,
        #[serde(default)]
        font_size: f32,
        #[serde(default)]
        align: Option<String>,
        #[serde(default)]
        bold: bool,
    },
    Button {
        text: String,
        selected_text: Option<String>,
        disabled_text: Option<String>,
        #[serde(default)]
        toggle: bool,
        #[serde(default)]
        selected: bool,
        #[serde(default)]
        disabled: bool,
        icon: Option<IconIn>,
    },
    TextInput {
        #[serde(default)]
        text: String,
        #[serde(default)]
        placeholder: String,
        #[serde(default)]
        max_len: u32,
        #[serde(default)]
        password: bool,
        #[serde(default)]
        numeric: bool,
        #[serde(default)]
        disabled: bool,
    },
    Slider {
        min: f32,
        max: f32,
        value: f32,
        #[serde(default)]
        step: f32,
    },
    Dropdown {
        items: Vec<String>,
        selected: Option<u32>,
    },
    List {
        items: Vec<String>,
        #[serde(default)]
        selected: Vec<u32>,
        #[serde(default)]
        multi: bool,
    },
    Image {
        #[serde(flatten)]
        image: ImageIn,
    },
    LoadingBar {
        progress: f32,
        #[serde(default)]
        text: String,
        #[serde(default)]
        failed: bool,
    },
}

impl ElementIn {
    /// The menu element.
    ///
    /// # Errors
    /// Non-finite numbers, unknown names, invalid base64.
    pub fn element(&self) -> R<MenuElement> {
        Ok(match self {
            Self::Label { text, font_size, align, bold } => MenuElement::Label(Label {
                text: text.clone(),
                font_size: f(*font_size, "font_size")?,
                align: match align.as_deref() {
                    None | Some("left") => Align::Left,
                    Some("center") => Align::Center,
                    Some("right") => Align::Right,
                    Some(x) => return Err(RpcError::invalid_params(format!("align {x:?}: left, center or right"))),
                },
                bold: *bold,
            }),
            Self::Button { text, selected_text, disabled_text, toggle, selected, disabled, icon } => {
                MenuElement::Button(Button {
                    text: text.clone(),
                    selected_text: selected_text.clone(),
                    disabled_text: disabled_text.clone(),
                    toggle: *toggle,
                    selected: *selected,
                    disabled: *disabled,
                    icon: match icon {
                        None => None,
                        Some(IconIn { name: Some(n), image: None }) => Some(Icon::Named(n.clone())),
                        Some(IconIn { name: None, image: Some(i) }) => Some(Icon::Image(i.image()?)),
                        Some(_) => return Err(RpcError::invalid_params("an icon is {\"name\"} or {\"image\"}")),
                    },
                })
            }
            Self::TextInput { text, placeholder, max_len, password, numeric, disabled } => {
                MenuElement::TextInput(TextInput {
                    text: text.clone(),
                    placeholder: placeholder.clone(),
                    max_len: *max_len,
                    password: *password,
                    numeric: *numeric,
                    disabled: *disabled,
                })
            }
            Self::Slider { min, max, value, step } => MenuElement::Slider(Slider {
                min: f(*min, "min")?,
                max: f(*max, "max")?,
                value: f(*value, "value")?,
                step: f(*step, "step")?,
            }),
            Self::Dropdown { items, selected } => {
                MenuElement::Dropdown(Dropdown { items: items.clone(), selected: *selected })
            }
            Self::List { items, selected, multi } => {
                MenuElement::List(List { items: items.clone(), selected: selected.clone(), multi: *multi })
            }
            Self::Image { image } => MenuElement::Image(image.image()?),
            Self::LoadingBar { progress, text, failed } => MenuElement::LoadingBar(LoadingBar {
                progress: f(*progress, "progress")?,
                text: text.clone(),
                failed: *failed,
            }),
        })
    }
}

/// A menu element as JSON.
#[must_use]
pub fn element_json(e: &MenuElement) -> Value {
    match e {
        MenuElement::Label(l) => json!({
            "type": "label", "text": l.text, "font_size": num(l.font_size), "bold": l.bold,
            "align": match l.align { Align::Left => "left", Align::Center => "center", Align::Right => "right" },
        }),
        MenuElement::Button(b) => {
            let mut v = json!({
                "type": "button", "text": b.text, "selected_text": b.selected_text, "disabled_text": b.disabled_text,
                "toggle": b.toggle, "selected": b.selected, "disabled": b.disabled,
            });
            if let Some(i) = &b.icon {
                v["icon"] = match i {
                    Icon::Named(n) => json!({ "name": n }),
                    Icon::Image(img) => json!({ "image": image_json(img) }),
                };
            }
            v
        }
        MenuElement::TextInput(t) => json!({
            "type": "text_input", "text": t.text, "placeholder": t.placeholder, "max_len": t.max_len,
            "password": t.password, "numeric": t.numeric, "disabled": t.disabled,
        }),
        MenuElement::Slider(s) => {
            json!({ "type": "slider", "min": num(s.min), "max": num(s.max), "value": num(s.value), "step": num(s.step) })
        }
        MenuElement::Dropdown(d) => json!({ "type": "dropdown", "items": d.items, "selected": d.selected }),
        MenuElement::List(l) => json!({ "type": "list", "items": l.items, "selected": l.selected, "multi": l.multi }),
        MenuElement::Image(i) => {
            let mut v = image_json(i);
            v["type"] = "image".into();
            v
        }
        MenuElement::LoadingBar(b) => {
            json!({ "type": "loading_bar", "progress": num(b.progress), "text": b.text, "failed": b.failed })
        }
    }
}

/// A layout node.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeIn {
    #[serde(default)]
    id: u32,
    orientation: Option<String>,
    sizing: Option<SizingIn>,
    padding: Option<[f32; 4]>,
    visible: Option<bool>,
    content: Option<ElementIn>,
    #[serde(default)]
    children: Vec<NodeIn>,
}

impl NodeIn {
    /// The layout node.
    ///
    /// # Errors
    /// As [`ElementIn::element`]; unknown orientation.
    pub fn node(&self) -> R<Node> {
        let mut n = Node::new(ItemId(self.id));
        n.orientation = match self.orientation.as_deref() {
            None | Some("vertical") => Orientation::Vertical,
            Some("horizontal") => Orientation::Horizontal,
            Some(x) => return Err(RpcError::invalid_params(format!("orientation {x:?}: vertical or horizontal"))),
        };
        n.sizing = match &self.sizing {
            None | Some(SizingIn::Expand) => Sizing::Expand,
            Some(SizingIn::Fixed(v)) => Sizing::Fixed(f(*v, "sizing")?),
            Some(SizingIn::Ratio(v)) => Sizing::Ratio(f(*v, "sizing")?),
        };
        if let Some([l, r, t, b]) = self.padding {
            n.padding = Padding {
                left: f(l, "padding")?,
                right: f(r, "padding")?,
                top: f(t, "padding")?,
                bottom: f(b, "padding")?,
            };
        }
        n.visible = self.visible.unwrap_or(true);
        n.content = self.content.as_ref().map(ElementIn::element).transpose()?;
        n.children = self.children.iter().map(NodeIn::node).collect::<R<_>>()?;
        Ok(n)
    }
}

/// A layout node as JSON.
#[must_use]
pub fn node_json(n: &Node) -> Value {
    let sizing = match n.sizing {
        Sizing::Expand => json!("expand"),
        Sizing::Fixed(v) => json!({ "fixed": num(v) }),
        Sizing::Ratio(v) => json!({ "ratio": num(v) }),
    };
    let p = n.padding;
    json!({
        "id": n.id.0,
        "orientation": match n.orientation { Orientation::Vertical => "vertical", Orientation::Horizontal => "horizontal" },
        "sizing": sizing,
        "padding": nums(&[p.left, p.right, p.top, p.bottom]),
        "visible": n.visible,
        "content": n.content.as_ref().map(element_json),
        "children": n.children.iter().map(node_json).collect::<Vec<_>>(),
    })
}

/// A whole menu.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuIn {
    id: u16,
    #[serde(default)]
    title: String,
    #[serde(default)]
    width: f32,
    #[serde(default)]
    height: f32,
    enabled: Option<bool>,
    root: NodeIn,
}

impl MenuIn {
    /// The menu.
    ///
    /// # Errors
    /// As [`NodeIn::node`].
    pub fn menu(&self) -> R<Menu> {
        Ok(Menu {
            id: MenuId(self.id),
            title: self.title.clone(),
            width: f(self.width, "width")?,
            height: f(self.height, "height")?,
            enabled: self.enabled.unwrap_or(true),
            root: self.root.node()?,
        })
    }
}

/// A menu as JSON.
#[must_use]
pub fn menu_json(m: &Menu) -> Value {
    json!({
        "id": m.id.0, "title": m.title, "width": num(m.width), "height": num(m.height), "enabled": m.enabled,
        "root": node_json(&m.root),
    })
}

/// A user's action in a menu, as the `event.menu` notification's parameters.
#[must_use]
pub fn menu_event(from: UserId, e: &MenuEvent) -> Value {
    let action = match &e.action {
        MenuAction::Pressed { selected } => json!({ "type": "pressed", "selected": selected }),
        MenuAction::Hover { entered } => json!({ "type": "hover", "entered": entered }),
        MenuAction::SliderChanged { value } => json!({ "type": "slider_changed", "value": num(*value) }),
        MenuAction::SliderReleased { value } => json!({ "type": "slider_released", "value": num(*value) }),
        MenuAction::TextChanged { text } => json!({ "type": "text_changed", "text": text }),
        MenuAction::TextSubmitted { text } => json!({ "type": "text_submitted", "text": text }),
        MenuAction::DropdownChosen { index } => json!({ "type": "dropdown_chosen", "index": index }),
        MenuAction::ListSelected { selected } => json!({ "type": "list_selected", "selected": selected }),
        MenuAction::Opened => json!({ "type": "opened" }),
        MenuAction::Closed => json!({ "type": "closed" }),
    };
    json!({ "user": from.0, "menu": e.menu.0, "item": e.item.0, "action": action })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_read_and_write() {
        assert_eq!(parse_hex_color("#ff3399").unwrap(), 0xff_99_33_ff);
        assert_eq!(parse_hex_color("#ff339980").unwrap(), 0x80_99_33_ff);
        assert_eq!(hex_color(0x80_99_33_ff), "#ff339980");
        for bad in ["ff3399", "#ff33", "#gg0000", "#ff33998", "#ÿÿÿÿÿÿ"] {
            assert!(parse_hex_color(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shapes_round_trip_through_json() {
        let v = json!({"type": "sphere", "color": "#ff0000", "anchor": {"complex": 2, "atom": 7, "offset": [0, 0, 1]}, "radius": 1.5});
        let s: ShapeIn = serde_json::from_value(v).unwrap();
        let shape = s.shape().unwrap();
        assert_eq!(shape.color, 0xff_00_00_ff);
        let back: ShapeIn = serde_json::from_value(super::shape(&shape)).unwrap();
        assert_eq!(back.shape().unwrap(), shape);
        let nan: Result<ShapeIn, _> =
            serde_json::from_value(json!({"type": "sphere", "anchor": {}, "radius": 1, "x": 1}));
        assert!(nan.is_err(), "unknown members are refused");
        let bad = ShapeIn::Sphere {
            id: None,
            color: None,
            anchor: AnchorIn { offset: Some([f32::NAN, 0.0, 0.0]), ..AnchorIn::default() },
            radius: 1.0,
        };
        assert!(bad.shape().is_err());
    }

    #[test]
    fn menus_round_trip_through_json() {
        let v = json!({"id": 3, "title": "T", "width": 200, "height": 100, "root": {"children": [
            {"id": 1, "content": {"type": "button", "text": "Go", "toggle": true}},
            {"id": 2, "sizing": {"fixed": 30}, "content": {"type": "slider", "min": 0, "max": 10, "value": 2}},
            {"id": 4, "content": {"type": "list", "items": ["a", "b"], "selected": [1]}},
            {"id": 5, "content": {"type": "image", "base64": "iVBORw0KGgo="}},
        ]}});
        let m: MenuIn = serde_json::from_value(v).unwrap();
        let menu = m.menu().unwrap();
        assert_eq!(menu.root.children.len(), 4);
        let back: MenuIn = serde_json::from_value(menu_json(&menu)).unwrap();
        assert_eq!(back.menu().unwrap(), menu);
    }

    #[test]
    fn columns_build_a_complex_and_bad_columns_are_refused() {
        let v = json!({
            "name": "water",
            "atoms": {"name": ["O", "H1", "H2"], "element": ["O", "H", "H"], "residue": [0, 0, 0]},
            "residues": {"name": ["HOH"], "seq_num": [1], "chain": [0]},
            "chains": {"name": ["W"]},
            "positions": [[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]],
        });
        let c: ComplexIn = serde_json::from_value(v.clone()).unwrap();
        let c = c.into_complex(None, None).unwrap();
        assert_eq!(c.name, "water");
        assert_eq!(c.current().topology.atom_count(), 3);
        assert_eq!(c.current().topology.bonds.len(), 2, "O-H bonds inferred");
        let deep = complex_deep(&c, None);
        assert_eq!(deep["atoms"]["name"], json!(["O", "H1", "H2"]));
        assert_eq!(deep["bonds"].as_array().unwrap().len(), 2);

        let mut short = v.clone();
        short["positions"] = json!([[0, 0, 0]]);
        let e = serde_json::from_value::<ComplexIn>(short).unwrap().into_complex(None, None).unwrap_err();
        assert!(e.message.contains("positions"), "{e}");
        let mut bad_res = v.clone();
        bad_res["atoms"]["residue"] = json!([0, 1, 0]);
        assert!(serde_json::from_value::<ComplexIn>(bad_res).unwrap().into_complex(None, None).is_err());
        let mut bad_el = v;
        bad_el["atoms"]["element"] = json!(["O", "Hq", "H"]);
        assert!(serde_json::from_value::<ComplexIn>(bad_el).unwrap().into_complex(None, None).is_err());
    }
}
