//! Shape frames: kind 5 (`Shapes`: shapes created, replaced, destroyed) and kind 6
//! (`ShapeDelta`: sparse changes of anchors, colours and sizes against `base_seq`).
//!
//! - Sender: [`ShapeEncoder`] numbers the frames of one shape stream and keeps a mirror of what
//!   the receivers hold; [`ShapeEncoder::sync`] sends only what changed.
//! - Receiver: [`ShapeSet::apply`](crate::shape::ShapeSet::apply) decodes and checks a whole frame,
//!   then applies it. For the GPU, [`parse_shapes`] reads the records and each mesh's sizes without
//!   decoding, and [`MeshRef::decode_into`] writes a mesh in one pass straight into
//!   caller-provided [`MeshVertex`] and index slices, with no allocation.
//! - Low level: [`encode_shapes`] / [`decode_shapes`], [`encode_changes`] / [`decode_changes`].
//!
//! The byte layout below is also in `docs/format/shapes.md`. All integers are little-endian; the
//! header is the 32-byte header of [`super::header`], unchanged.
//!
//! **Measured** (`molstream-bench shapes --triangles 1000000`, release, this 2-core machine): a
//! torus of 1,000,000 triangles and 501,501 vertices with normals, smooth per-vertex colours and
//! uvs, at 0.001 Å, in generator order, takes 1,981,586 bytes: 1.98 bytes a triangle (positions
//! 1.18, normals 0.89, colours 0.57 and uvs 0.50 bytes a vertex; triangles 0.41 bytes each),
//! 15x less than its float columns (30.1 MB). Decoding it into `MeshVertex` and index buffers
//! takes 12 ms, 7x a memcpy of the same 28 MB of output (1.7 ms); encoding takes 50 ms. A
//! coarser torus codes larger steps (100k triangles: 3.4 bytes a triangle); the same mesh with
//! vertices and triangles in random order, the worst case for neighbour prediction, takes 16.3.
//!
//! ## Header fields
//!
//! | field | kind 5 `Shapes` | kind 6 `ShapeDelta` |
//! |---|---|---|
//! | precision `k` | mesh positions are quantized to 10^-k Å | written as the stream's; unused |
//! | flags | bit 0: lz4, as for every kind | same |
//! | stream id | the shape stream (one per plugin) | same |
//! | seq | kinds 5 and 6 of a stream share one numbering | same |
//! | base_seq | `= seq` exactly for a full frame (payload flag `FULL`); otherwise the frame it follows | the frame it applies to |
//! | atom_count | number of records: destroyed ids + shape records | number of change records |
//!
//! ## Primitives
//!
//! - `u8`, `u32`, `f32`: 1, 4, 4 bytes, little-endian.
//! - `varint`: unsigned LEB128 (at most 10 bytes; values stored in u32 fields must fit).
//! - `zigzag(v) = (v << 1) ^ (v >> 31)` on i32; `unzigzag(z) = (z >> 1) ^ -(z & 1)`.
//! - `bytes`: a varint length, then the bytes. A **section** is the same: varint byte length, then
//!   the section's bytes; a decoder checks that a section's blocks use exactly its bytes.
//! - **block** (codec/bits.rs): 32 values at width `w` (0–32 bits) in exactly `4·w` bytes, value
//!   `j` at bits `j·w … j·w+w−1`, little-endian. The last block of a column is padded (the encoder
//!   writes zeros; a decoder ignores the padding).
//! - **plain block**: a width byte `w` (≤ 32), then the block.
//! - **predicted block**: a width byte with bits 0–5 the width `w` (≤ 32), bit 6 the order `O`,
//!   bit 7 zero; then the block of residuals `z`. The column keeps `p1, p2`, its previous two
//!   values (0, 0 at the start of the section, carried from block to block). Each value is
//!   `v = p1 + unzigzag(z)` for `O = 0` and `v = 2·p1 − p2 + unzigzag(z)` for `O = 1` (i32,
//!   wrapping); then `p2 = p1, p1 = v`. The encoder picks, per block, the order with the smaller
//!   width (order 0 on a tie).
//! - **delta column** of `n` values (codec/bits.rs): `ceil(n/32)` plain blocks of
//!   `zigzag(v[i] − v[i−1])`, `v[−1] = 0`.
//! - **anchor**:
//!
//!   | size | field |
//!   |---|---|
//!   | 1 | target: 0 workspace, 1 complex, 2 atom |
//!   | varint | complex id (targets 1 and 2) |
//!   | varint | atom id (target 2) |
//!   | 12 | offset in the target's frame, Å: 3 × f32, finite |
//!
//! ## Kind 5 payload: shapes created, replaced, destroyed
//!
//! | size | field |
//! |---|---|
//! | 1 | flags: bit 0 `FULL` (the receiver drops every shape first; set exactly when `base_seq = seq`); other bits 0 |
//! | varint | `D`, ids destroyed (0 in a full frame) |
//! | delta column | the `D` ids (u32 taken as i32) |
//! | varint | `S`, shape records; `D + S = atom_count` |
//! | `S` × record | shapes created or replaced |
//!
//! A **record**:
//!
//! | size | field |
//! |---|---|
//! | varint | shape id |
//! | 1 | kind: 1 sphere, 2 line, 3 label, 4 mesh |
//! | 4 | colour: RGBA8 as u32, red in the lowest byte |
//! | … | body of the kind |
//!
//! Bodies (every size is an f32, finite and ≥ 0):
//!
//! | kind | body |
//! |---|---|
//! | sphere | anchor (centre), f32 radius Å |
//! | line | anchor (start), anchor (end), f32 thickness Å, f32 dash length Å (0 = solid), f32 dash gap Å |
//! | label | anchor, f32 font size, `bytes` text (UTF-8, at most `Limits::max_string` bytes) |
//! | mesh | the mesh body below |
//!
//! ### Mesh body
//!
//! | size | field |
//! |---|---|
//! | anchor | the mesh origin |
//! | 1 | flags: bit 0 unlit, bit 1 normals, bit 2 uvs, bit 3 texture (needs uvs); other bits 0 |
//! | 1 | colour mode: 0 none (vertices take the shape colour), 1 constant, 2 palette, 3 channel deltas |
//! | varint | `V`, vertices |
//! | varint | `T`, triangles (`T > 0` needs `V > 0`) |
//! | 1 | normals only: `Bn`, bits per octahedral component, 2–16 |
//! | 1 + 16 | uvs only: `Bu`, bits per uv component (1–24), then f32 `u_min, v_min, u_max, v_max` (finite, `max − min` finite and ≥ 0) |
//! | varint, varint | texture only: width, height (≥ 1) |
//! | section | positions |
//! | section | normals (normals only) |
//! | section | colours (always; empty in mode 0) |
//! | section | uvs (uvs only) |
//! | section | triangles |
//! | section | texture only: `width · height · 4` RGBA bytes, rows top to bottom |
//!
//! Vertex sections go in blocks of 32 vertices (`ceil(V/32)` blocks); within a block the columns
//! follow each other in the order listed.
//!
//! | section | per block of 32 vertices | value |
//! |---|---|---|
//! | positions | 3 predicted blocks: x, y, z | `q = round(p · 10^k)`, `abs(q) < 2^28`; position `= q · 10^-k` (f32), relative to the anchor |
//! | normals | 2 predicted blocks: u, v | octahedral snorm integers, `abs(q) ≤ M = 2^(Bn−1) − 1` |
//! | colours, mode 1 | (no blocks: the section is one u32) | every vertex |
//! | colours, mode 2 | the section starts with varint `P` (1 ≤ P ≤ V) and `P` u32 colours; then 1 plain block of indices `< P` | `palette[index]` |
//! | colours, mode 3 | 4 predicted blocks: bytes 0–3 of the u32 (R, G, B, A) | as predicted blocks but modulo 256: width ≤ 8, residual `zigzag` of the i8 difference |
//! | uvs | 2 predicted blocks: u, v | `q` in `0 … 2^Bu − 1`; `uv = min + q · (max − min) / (2^Bu − 1)` (f32) |
//!
//! **Normals.** With `e = q / M` per component: `z = 1 − abs(e.u) − abs(e.v)`; if `z < 0`,
//! `(x, y) = ((1 − abs(e.v))·sgn(e.u), (1 − abs(e.u))·sgn(e.v))` with `sgn(0) = +1`, else `(x, y) = e`;
//! the normal is `normalize(x, y, z)`. The encoder picks, of the four grid points around the exact
//! projection, the one decoding closest. The GPU form (`MeshVertex.normal`) is two snorm16
//! `s = floor((2·q·32767 + M) / (2·M))` (`= q` for `Bn = 16`), u in the low half, read by WGSL
//! `unpack2x16snorm` + `oct_decode` (shaders/shapes.wgsl). At the default `Bn = 12` the angle to the
//! sent normal is at most 0.06° (measured maximum over 200,000 random directions: 0.052°; the test
//! checks every vertex of the meshes it sends after the 16-bit form).
//!
//! **Triangles.** Per block of 32 triangles (`ceil(T/32)` blocks):
//!
//! | size | field |
//! |---|---|
//! | 1 + 4·w | code block: width byte (`w ≤ 6`, bit 6 `periodic`), 32 codes 0–36 |
//! | 1 + 4·w | plain block of 32 zigzag deltas |
//! | 1 | `E`, escaped triangles (code 0) in this block, at most the block's triangles |
//! | plain blocks | `ceil(2E/32)` plain blocks: per escaped triangle in order, `zigzag(b − a)`, `zigzag(c − a)` |
//!
//! With `periodic`, the stored value `s` gives the code `c[i] = (s + c[i−2]) mod 37`, with
//! `c[−1] = c[−2] = 0` carried from block to block (strips repeat every other triangle). `prev`
//! is the previous triangle (`[0, 0, 0]` before the first); index arithmetic wraps modulo 2^32.
//!
//! - **code 0** (escape): `a = prev[0] + unzigzag(delta)`, `b = a + unzigzag(e₁)`,
//!   `c = a + unzigzag(e₂)`; the triangle is `(a, b, c)`.
//! - **codes 1–36**: the triangle shares an edge of `prev`. With `code − 1 =
//!   ((edge·3 + r)·2 + flip)·2 + ref`: `e0 = prev[edge]`, `e1 = prev[(edge + 1) mod 3]`; the new
//!   index is `n = (ref ? e1 : e0) + unzigzag(delta)`; the triangle has `n` at corner `r` and
//!   `(e1, e0)` if `flip` else `(e0, e1)` at corners `(r + 1) mod 3, (r + 2) mod 3`. The first
//!   triangle of a mesh must be an escape.
//!
//! Every index must be below `V`. The encoder picks, per triangle, the shared-edge code with the
//! smallest delta, or an escape.
//!
//! ## Kind 6 payload: sparse changes
//!
//! | size | field |
//! |---|---|
//! | varint | `N = atom_count` |
//! | `N` × change | |
//!
//! A **change**:
//!
//! | size | field |
//! |---|---|
//! | varint | `zigzag(id − previous id)` (previous = 0 for the first; wrapping u32) |
//! | 1 | mask: bit 0 anchor, 1 end, 2 colour, 3 size, 4 dash; at least one bit, other bits 0 |
//! | anchor | bit 0: the anchor (a line's start) |
//! | anchor | bit 1: a line's end (lines only) |
//! | 4 | bit 2: colour (u32) |
//! | 4 | bit 3: f32 sphere radius, line thickness or label font size (not meshes) |
//! | 8 | bit 4: f32 dash length, f32 dash gap (lines only) |
//!
//! ## Receiver rules (`ShapeSet::apply`)
//!
//! - A full kind-5 frame replaces everything held. Any other frame must have `base_seq` equal to
//!   the sequence number held, in the same stream, else `CodecError::NeedKeyframe`; the sender then
//!   sends a full frame (`ShapeEncoder::full`).
//! - Kind 5: destroys first (each id held, none twice), then records create or replace (no id
//!   twice); at most `Limits::max_shapes` shapes held afterwards.
//! - Kind 6: each id held and changed once per frame; fields must fit the shape's kind.
//! - The whole frame is decoded and checked before anything changes: on any error the set is as it
//!   was. Shapes of a stream are keyed by id; a mesh of a shape with no per-vertex colours takes
//!   the shape colour.
//!
//! ## Limits (`codec::Limits`)
//!
//! `max_shapes` (records per frame and shapes held), `max_vertices` and `max_triangles` (totals over
//! the meshes of one frame), `max_texture_bytes`, `max_string` (label text). When a payload is
//! parsed, each section must hold at least its width bytes (one byte per block and column), so a
//! declared count sizes a buffer only if the payload can back it; `MeshRef::decode_into` then
//! writes into caller-provided slices with no allocation.

use glam::{Vec2, Vec3};

use super::bits::{BLOCK, Reader, Writer, bit_width, unzigzag, zigzag};
use super::header::{self, FrameHeader, FrameKind};
use super::positions::{Q_LIMIT, step};
use super::{CodecError, Limits};
use crate::ids::{AtomId, ComplexId, ShapeId};
use crate::shape::{
    Anchor, AnchorTarget, Mesh, MeshVertex, Shape, ShapeChange, ShapeKind, ShapeSet, Texture, check_offset, check_size,
    check_texture, oct_encode, pack_oct16, snorm_max,
};

/// Shapes payload flag: a full frame; the receiver drops every shape it holds first. Set
/// exactly when the header's `base_seq` equals its `seq`.
pub const FLAG_FULL: u8 = 1;

/// Shape record kind: sphere.
pub const KIND_SPHERE: u8 = 1;
/// Shape record kind: line.
pub const KIND_LINE: u8 = 2;
/// Shape record kind: label.
pub const KIND_LABEL: u8 = 3;
/// Shape record kind: mesh.
pub const KIND_MESH: u8 = 4;

/// Anchor tag: the workspace.
pub const TARGET_WORKSPACE: u8 = 0;
/// Anchor tag: a complex (its id follows).
pub const TARGET_COMPLEX: u8 = 1;
/// Anchor tag: an atom (complex id and atom id follow).
pub const TARGET_ATOM: u8 = 2;

/// Mesh flag: drawn unlit.
pub const MESH_UNLIT: u8 = 1;
/// Mesh flag: per-vertex normals present.
pub const MESH_NORMALS: u8 = 2;
/// Mesh flag: per-vertex uvs present.
pub const MESH_UVS: u8 = 4;
/// Mesh flag: texture present.
pub const MESH_TEXTURE: u8 = 8;

/// Mesh colour mode: no per-vertex colour, vertices take the shape colour.
pub const COLORS_NONE: u8 = 0;
/// Mesh colour mode: one colour for every vertex.
pub const COLORS_CONSTANT: u8 = 1;
/// Mesh colour mode: a palette and a bit-packed index per vertex.
pub const COLORS_PALETTE: u8 = 2;
/// Mesh colour mode: per channel, the difference from the previous vertex, bit-packed.
pub const COLORS_DELTA: u8 = 3;

/// ShapeDelta field: the anchor (a line's start).
pub const CHANGE_ANCHOR: u8 = 1;
/// ShapeDelta field: a line's end.
pub const CHANGE_END: u8 = 2;
/// ShapeDelta field: the colour.
pub const CHANGE_COLOR: u8 = 4;
/// ShapeDelta field: radius, thickness or font size.
pub const CHANGE_SIZE: u8 = 8;
/// ShapeDelta field: dash length and gap.
pub const CHANGE_DASH: u8 = 16;

/// Largest triangle code: 3 edges · 3 rotations · 2 orientations · 2 references (code 0 is
/// the escape).
const MAX_TRIANGLE_CODE: u32 = 36;
/// Number of triangle codes.
const CODES: u32 = MAX_TRIANGLE_CODE + 1;
/// The colour palette is tried when a mesh has at most this many distinct colours.
const MAX_PALETTE: usize = 4096;

/// How meshes are quantized beyond the header's position precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeshOptions {
    /// Bits per octahedral normal component, 2..=16 (default 12: at most 0.06° off).
    pub normal_bits: u8,
    /// Bits per uv component over the mesh's uv range, 1..=24 (default 16).
    pub uv_bits: u8,
}

impl Default for MeshOptions {
    fn default() -> Self {
        Self { normal_bits: 12, uv_bits: 16 }
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

fn u32v(r: &mut Reader<'_>) -> Result<u32, CodecError> {
    u32::try_from(r.varint()?).map_err(|_| CodecError::Corrupt("varint above u32"))
}

/// One block of a column: a width byte (at most `max_w`), then the packed values.
fn get_block(r: &mut Reader<'_>, max_w: u32, out: &mut [u32; BLOCK]) -> Result<(), CodecError> {
    let w = u32::from(r.u8()?);
    if w > max_w {
        return Err(CodecError::Corrupt("block width above its maximum"));
    }
    r.unpack_block(w, out)
}

/// Writes one block: the width byte, then the packed values.
fn put_block(w: &mut Writer, values: &[u32; BLOCK]) {
    let width = bit_width(values.iter().fold(0, |a, &v| a | v));
    w.u8(width as u8);
    w.pack_block(values, width);
}

fn write_anchor(w: &mut Writer, a: &Anchor) {
    match a.target {
        AnchorTarget::Workspace => w.u8(TARGET_WORKSPACE),
        AnchorTarget::Complex(c) => {
            w.u8(TARGET_COMPLEX);
            w.varint(u64::from(c.0));
        }
        AnchorTarget::Atom(c, atom) => {
            w.u8(TARGET_ATOM);
            w.varint(u64::from(c.0));
            w.varint(u64::from(atom.0));
        }
    }
    for v in a.offset.to_array() {
        w.f32(v);
    }
}

fn read_anchor(r: &mut Reader<'_>) -> Result<Anchor, CodecError> {
    let target = match r.u8()? {
        TARGET_WORKSPACE => AnchorTarget::Workspace,
        TARGET_COMPLEX => AnchorTarget::Complex(ComplexId(u32v(r)?)),
        TARGET_ATOM => AnchorTarget::Atom(ComplexId(u32v(r)?), AtomId(u32v(r)?)),
        _ => return Err(CodecError::Corrupt("unknown anchor target")),
    };
    let offset = Vec3::new(r.f32()?, r.f32()?, r.f32()?);
    check_offset(offset)?;
    Ok(Anchor { target, offset })
}

fn read_size(r: &mut Reader<'_>) -> Result<f32, CodecError> {
    let v = r.f32()?;
    check_size(v)?;
    Ok(v)
}

fn records(n: usize) -> Result<u32, CodecError> {
    u32::try_from(n).map_err(|_| CodecError::LimitExceeded { what: "shape records", value: n as u64 })
}

// ---------------------------------------------------------------------------------------------
// Mesh encoding

fn quantize(v: f32, inv: f32) -> Result<i32, CodecError> {
    let s = (v * inv).round();
    #[allow(clippy::cast_precision_loss)]
    if s.is_nan() || s.abs() >= Q_LIMIT as f32 {
        return Err(CodecError::OutOfRange(v));
    }
    #[allow(clippy::cast_possible_truncation)]
    Ok(s as i32)
}

/// Scale of a uv component: `(max − min) / (2^bits − 1)`.
fn uv_scale(min: f32, max: f32, bits: u8) -> f32 {
    #[allow(clippy::cast_precision_loss)]
    let levels = ((1u32 << bits) - 1) as f32;
    (max - min) / levels
}

/// Width-byte flag of a predicted block: residuals against `2·v[i−1] − v[i−2]` (order 2)
/// instead of `v[i−1]` (order 1). For triangle codes: against the code two triangles back.
const ORDER2: u8 = 0x40;
/// Width bits of a width byte.
const WIDTH_MASK: u8 = 0x3f;

/// Residuals of up to 32 values against both predictors; `state` is `[v[−1], v[−2]]`, carried
/// from block to block (zero before the first value).
fn residuals(values: &[i32], state: &mut [i32; 2], r1: &mut [u32; BLOCK], r2: &mut [u32; BLOCK]) {
    let [mut p1, mut p2] = *state;
    *r1 = [0; BLOCK];
    *r2 = [0; BLOCK];
    for (k, &v) in values.iter().enumerate() {
        r1[k] = zigzag(v.wrapping_sub(p1));
        r2[k] = zigzag(v.wrapping_sub(p1.wrapping_mul(2).wrapping_sub(p2)));
        p2 = p1;
        p1 = v;
    }
    *state = [p1, p2];
}

/// Writes the narrower of two residual blocks with its width byte (order 1 on a tie).
fn put_narrower(w: &mut Writer, r1: &[u32; BLOCK], r2: &[u32; BLOCK]) {
    let w1 = bit_width(r1.iter().fold(0, |a, &v| a | v));
    let w2 = bit_width(r2.iter().fold(0, |a, &v| a | v));
    if w2 < w1 {
        w.u8(w2 as u8 | ORDER2);
        w.pack_block(r2, w2);
    } else {
        w.u8(w1 as u8);
        w.pack_block(r1, w1);
    }
}

/// One block of a predicted integer column.
fn put_predicted(w: &mut Writer, values: &[i32], state: &mut [i32; 2]) {
    let (mut r1, mut r2) = ([0u32; BLOCK], [0u32; BLOCK]);
    residuals(values, state, &mut r1, &mut r2);
    put_narrower(w, &r1, &r2);
}

/// Reads one block of a predicted integer column into `out` (up to 32 values).
fn get_predicted(r: &mut Reader<'_>, out: &mut [i32], state: &mut [i32; 2]) -> Result<(), CodecError> {
    let b = r.u8()?;
    let w = u32::from(b & WIDTH_MASK);
    if b & !(WIDTH_MASK | ORDER2) != 0 || w > 32 {
        return Err(CodecError::Corrupt("bad width byte"));
    }
    let mut raw = [0u32; BLOCK];
    r.unpack_block(w, &mut raw)?;
    let [mut p1, mut p2] = *state;
    if b & ORDER2 == 0 {
        for (o, &z) in out.iter_mut().zip(&raw) {
            p2 = p1;
            p1 = p1.wrapping_add(unzigzag(z));
            *o = p1;
        }
    } else {
        for (o, &z) in out.iter_mut().zip(&raw) {
            let v = p1.wrapping_mul(2).wrapping_sub(p2).wrapping_add(unzigzag(z));
            p2 = p1;
            p1 = v;
            *o = v;
        }
    }
    *state = [p1, p2];
    Ok(())
}

fn encode_positions(positions: &[Vec3], precision: u8, w: &mut Writer) -> Result<(), CodecError> {
    let (_, inv) = step(precision);
    let mut state = [[0i32; 2]; 3];
    let mut cols = [[0i32; BLOCK]; 3];
    for chunk in positions.chunks(BLOCK) {
        for (k, p) in chunk.iter().enumerate() {
            for (a, v) in p.to_array().into_iter().enumerate() {
                cols[a][k] = quantize(v, inv)?;
            }
        }
        for (col, st) in cols.iter().zip(&mut state) {
            put_predicted(w, &col[..chunk.len()], st);
        }
    }
    Ok(())
}

fn encode_normals(normals: &[Vec3], bits: u8, w: &mut Writer) {
    let mut state = [[0i32; 2]; 2];
    let mut cols = [[0i32; BLOCK]; 2];
    for chunk in normals.chunks(BLOCK) {
        for (k, n) in chunk.iter().enumerate() {
            let q = oct_encode(*n, u32::from(bits));
            cols[0][k] = q[0];
            cols[1][k] = q[1];
        }
        for (col, st) in cols.iter().zip(&mut state) {
            put_predicted(w, &col[..chunk.len()], st);
        }
    }
}

fn encode_uvs(uvs: &[Vec2], bits: u8, min: Vec2, max: Vec2, w: &mut Writer) {
    let scale = [uv_scale(min.x, max.x, bits), uv_scale(min.y, max.y, bits)];
    #[allow(clippy::cast_precision_loss)]
    let top = ((1u32 << bits) - 1) as f32;
    let mut state = [[0i32; 2]; 2];
    let mut cols = [[0i32; BLOCK]; 2];
    for chunk in uvs.chunks(BLOCK) {
        for (k, uv) in chunk.iter().enumerate() {
            for (a, (v, lo)) in [(uv.x, min.x), (uv.y, min.y)].into_iter().enumerate() {
                let s = if scale[a] > 0.0 { ((v - lo) / scale[a]).round().clamp(0.0, top) } else { 0.0 };
                #[allow(clippy::cast_possible_truncation)]
                let q = s as i32;
                cols[a][k] = q;
            }
        }
        for (col, st) in cols.iter().zip(&mut state) {
            put_predicted(w, &col[..chunk.len()], st);
        }
    }
}

/// Colour channels: residuals modulo 256 (as `i8`) against either predictor, so every width
/// is at most 8.
fn encode_color_deltas(colors: &[u32], w: &mut Writer) {
    let mut state = [[0u8; 2]; 4];
    for chunk in colors.chunks(BLOCK) {
        for (a, st) in state.iter_mut().enumerate() {
            let (mut r1, mut r2) = ([0u32; BLOCK], [0u32; BLOCK]);
            let [mut p1, mut p2] = *st;
            for (k, &c) in chunk.iter().enumerate() {
                let v = c.to_le_bytes()[a];
                r1[k] = zigzag(i32::from(v.wrapping_sub(p1) as i8));
                r2[k] = zigzag(i32::from(v.wrapping_sub(p1.wrapping_mul(2).wrapping_sub(p2)) as i8));
                p2 = p1;
                p1 = v;
            }
            *st = [p1, p2];
            put_narrower(w, &r1, &r2);
        }
    }
}

/// Reads one block of a colour channel into `out`.
fn get_channel(r: &mut Reader<'_>, out: &mut [u8], state: &mut [u8; 2]) -> Result<(), CodecError> {
    let b = r.u8()?;
    let w = u32::from(b & WIDTH_MASK);
    if b & !(WIDTH_MASK | ORDER2) != 0 || w > 8 {
        return Err(CodecError::Corrupt("bad colour width byte"));
    }
    let mut raw = [0u32; BLOCK];
    r.unpack_block(w, &mut raw)?;
    let [mut p1, mut p2] = *state;
    for (o, &z) in out.iter_mut().zip(&raw) {
        let pred = if b & ORDER2 == 0 { p1 } else { p1.wrapping_mul(2).wrapping_sub(p2) };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let v = pred.wrapping_add(unzigzag(z) as u8);
        p2 = p1;
        p1 = v;
        *o = v;
    }
    *state = [p1, p2];
    Ok(())
}

/// The palette section, or `None` when the mesh has more than [`MAX_PALETTE`] colours.
fn encode_palette(colors: &[u32]) -> Option<Writer> {
    let mut palette: Vec<u32> = Vec::new();
    let mut index = std::collections::HashMap::new();
    let mut idx = Vec::with_capacity(colors.len());
    for &c in colors {
        let next = palette.len();
        let i = *index.entry(c).or_insert(next);
        if i == next {
            if next == MAX_PALETTE {
                return None;
            }
            palette.push(c);
        }
        idx.push(i as u32);
    }
    let mut w = Writer::with_capacity(palette.len() * 4 + colors.len());
    w.varint(palette.len() as u64);
    for c in &palette {
        w.u32(*c);
    }
    let mut block = [0u32; BLOCK];
    for chunk in idx.chunks(BLOCK) {
        block[..chunk.len()].copy_from_slice(chunk);
        block[chunk.len()..].fill(0);
        put_block(&mut w, &block);
    }
    Some(w)
}

/// The colour mode and section of a mesh: nothing, a constant, a palette or channel deltas,
/// whichever is smallest.
fn encode_colors(colors: &[u32]) -> (u8, Writer) {
    let Some(&first) = colors.first() else { return (COLORS_NONE, Writer::new()) };
    if colors.iter().all(|&c| c == first) {
        let mut w = Writer::new();
        w.u32(first);
        return (COLORS_CONSTANT, w);
    }
    let mut deltas = Writer::with_capacity(colors.len());
    encode_color_deltas(colors, &mut deltas);
    match encode_palette(colors) {
        Some(p) if p.buf.len() < deltas.buf.len() => (COLORS_PALETTE, p),
        _ => (COLORS_DELTA, deltas),
    }
}

/// For each triangle code: where each corner of the new triangle comes from (0 = the new
/// index, 1-3 = corners 0-2 of the previous triangle), then which previous corner the new index
/// is a delta against. Code `c ≥ 1` is `1 + ((edge · 3 + r) · 2 + flip) · 2 + ref`: the shared
/// edge runs from previous corner `edge` to corner `edge + 1` (mod 3), the new index sits at
/// corner `r`, corners `r + 1` and `r + 2` hold the edge (reversed when `flip`), and the delta
/// is against the edge's first (`ref` 0) or second (`ref` 1) vertex.
const TRIANGLE_TABLE: [[u8; 4]; CODES as usize] = {
    let mut t = [[0u8; 4]; CODES as usize];
    let mut c = 1;
    while c < CODES as usize {
        let c1 = c - 1;
        let (refbit, flip, rk) = (c1 & 1, c1 >> 1 & 1, c1 >> 2);
        let (r, edge) = (rk % 3, rk / 3);
        let (e0, e1) = (1 + edge as u8, 1 + ((edge + 1) % 3) as u8);
        let (x, y) = if flip == 1 { (e1, e0) } else { (e0, e1) };
        t[c][r] = 0;
        t[c][(r + 1) % 3] = x;
        t[c][(r + 2) % 3] = y;
        t[c][3] = if refbit == 1 { e1 } else { e0 };
        c += 1;
    }
    t
};

/// The triangle that `code` (1..=36) and `delta` describe, given the previous triangle.
#[inline]
fn shared_edge_triangle(prev: [u32; 3], code: u32, delta: i32) -> [u32; 3] {
    let e = TRIANGLE_TABLE[code as usize % TRIANGLE_TABLE.len()];
    // Selects in registers: a table-indexed array would round-trip through memory on the
    // triangle-to-triangle dependency chain.
    let pick = |k: u8, n: u32| match k & 3 {
        0 => n,
        1 => prev[0],
        2 => prev[1],
        _ => prev[2],
    };
    let n = pick(e[3], 0).wrapping_add(delta as u32);
    [pick(e[0], n), pick(e[1], n), pick(e[2], n)]
}

/// Triangle indices: per block of 32 triangles, a code column (0 = escape, else which edge of
/// the previous triangle is shared and how), a delta column, the escape count and the escaped
/// triangles' other two indices.
fn encode_indices(indices: &[u32], w: &mut Writer) {
    let mut prev = [0u32; 3];
    let mut have_prev = false;
    let mut codes = [0u32; BLOCK];
    let mut deltas = [0u32; BLOCK];
    let mut code_state = [0u32; 2];
    for chunk in indices.chunks(3 * BLOCK) {
        let mut e = 0usize;
        codes.fill(0);
        deltas.fill(0);
        let mut esc = [[0u32; BLOCK]; 2];
        for (k, t) in chunk.chunks_exact(3).enumerate() {
            let t = [t[0], t[1], t[2]];
            let mut best: Option<(u32, u32)> = None;
            if have_prev {
                for edge in 0..3 {
                    let (e0, e1) = (prev[edge], prev[(edge + 1) % 3]);
                    for r in 0..3 {
                        for flip in 0..2u32 {
                            let (x, y) = if flip == 1 { (e1, e0) } else { (e0, e1) };
                            if t[(r + 1) % 3] != x || t[(r + 2) % 3] != y {
                                continue;
                            }
                            for refbit in 0..2u32 {
                                let reference = if refbit == 1 { e1 } else { e0 };
                                let z = zigzag(t[r].wrapping_sub(reference) as i32);
                                let code = 1 + (((edge as u32 * 3 + r as u32) * 2 + flip) * 2 + refbit);
                                if best.is_none_or(|(_, bz)| z < bz) {
                                    best = Some((code, z));
                                }
                            }
                        }
                    }
                }
            }
            match best {
                Some((code, z)) => {
                    codes[k] = code;
                    deltas[k] = z;
                }
                None => {
                    deltas[k] = zigzag(t[0].wrapping_sub(prev[0]) as i32);
                    for (j, v) in [t[1], t[2]].into_iter().enumerate() {
                        let slot = 2 * e + j;
                        esc[slot / BLOCK][slot % BLOCK] = zigzag(v.wrapping_sub(t[0]) as i32);
                    }
                    e += 1;
                }
            }
            prev = t;
            have_prev = true;
        }
        // Strips and grids repeat their configuration every other triangle: also try the
        // code against the one two triangles back, modulo the code count.
        let mut periodic = [0u32; BLOCK];
        for k in 0..chunk.len() / 3 {
            periodic[k] = (codes[k] + CODES - code_state[1]) % CODES;
            code_state = [codes[k], code_state[0]];
        }
        put_narrower(w, &codes, &periodic);
        put_block(w, &deltas);
        w.u8(e as u8);
        for b in esc.iter().take((2 * e).div_ceil(BLOCK)) {
            put_block(w, b);
        }
    }
}

/// Appends a mesh record's body (after id, kind and colour).
fn encode_mesh(m: &Mesh, precision: u8, opts: MeshOptions, w: &mut Writer) -> Result<(), CodecError> {
    if !(2..=16).contains(&opts.normal_bits) || !(1..=24).contains(&opts.uv_bits) {
        return Err(CodecError::Corrupt("mesh options out of range (normal bits 2-16, uv bits 1-24)"));
    }
    let has_normals = !m.normals.is_empty();
    let has_uvs = !m.uvs.is_empty();
    let (color_mode, colors) = encode_colors(&m.colors);
    let mut flags = 0u8;
    for (on, bit) in [(m.unlit, MESH_UNLIT), (has_normals, MESH_NORMALS), (has_uvs, MESH_UVS)] {
        if on {
            flags |= bit;
        }
    }
    if m.texture.is_some() {
        flags |= MESH_TEXTURE;
    }
    write_anchor(w, &m.anchor);
    w.u8(flags);
    w.u8(color_mode);
    w.varint(m.positions.len() as u64);
    w.varint((m.indices.len() / 3) as u64);
    if has_normals {
        w.u8(opts.normal_bits);
    }
    let (uv_min, uv_max) =
        m.uvs.iter().fold((Vec2::INFINITY, Vec2::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if has_uvs {
        if !(uv_max - uv_min).is_finite() {
            return Err(CodecError::OutOfRange((uv_max - uv_min).max_element()));
        }
        w.u8(opts.uv_bits);
        for v in [uv_min.x, uv_min.y, uv_max.x, uv_max.y] {
            w.f32(v);
        }
    }
    if let Some(t) = &m.texture {
        w.varint(u64::from(t.width));
        w.varint(u64::from(t.height));
    }
    let n = m.positions.len();
    let blocks = n.div_ceil(BLOCK);
    let mut s = Writer::with_capacity(blocks * 3 + n * 4);
    encode_positions(&m.positions, precision, &mut s)?;
    w.bytes(&s.buf);
    if has_normals {
        s.buf.clear();
        encode_normals(&m.normals, opts.normal_bits, &mut s);
        w.bytes(&s.buf);
    }
    w.bytes(&colors.buf);
    if has_uvs {
        s.buf.clear();
        encode_uvs(&m.uvs, opts.uv_bits, uv_min, uv_max, &mut s);
        w.bytes(&s.buf);
    }
    s.buf.clear();
    encode_indices(&m.indices, &mut s);
    w.bytes(&s.buf);
    if let Some(t) = &m.texture {
        w.bytes(&t.rgba);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Mesh decoding

/// A mesh record of a parsed shapes payload, not yet decoded: its sizes are known, its
/// columns are borrowed from the payload. [`MeshRef::decode_into`] writes it straight into
/// caller-provided GPU buffers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeshRef<'a> {
    /// Where the mesh's origin is.
    pub anchor: Anchor,
    /// The shape colour (the colour of every vertex without per-vertex colours).
    pub color: u32,
    /// Drawn without lighting.
    pub unlit: bool,
    vertices: u32,
    triangles: u32,
    precision: u8,
    normal_bits: u8,
    color_mode: u8,
    uv_bits: u8,
    uv_min: [f32; 2],
    uv_max: [f32; 2],
    texture_size: Option<(u32, u32)>,
    positions: &'a [u8],
    normals: &'a [u8],
    colors: &'a [u8],
    uvs: &'a [u8],
    indices: &'a [u8],
    texture: &'a [u8],
}

impl<'a> MeshRef<'a> {
    /// Number of vertices: the length of the vertex slice [`MeshRef::decode_into`] fills.
    #[must_use]
    pub fn vertex_count(&self) -> usize {
        self.vertices as usize
    }

    /// Number of triangles.
    #[must_use]
    pub fn triangle_count(&self) -> usize {
        self.triangles as usize
    }

    /// Number of indices (3 per triangle): the length of the index slice
    /// [`MeshRef::decode_into`] fills.
    #[must_use]
    pub fn index_count(&self) -> usize {
        3 * self.triangles as usize
    }

    /// Whether the mesh carries normals.
    #[must_use]
    pub fn has_normals(&self) -> bool {
        self.normal_bits != 0
    }

    /// Whether the mesh carries uvs.
    #[must_use]
    pub fn has_uvs(&self) -> bool {
        self.uv_bits != 0
    }

    /// Whether the mesh carries per-vertex colours.
    #[must_use]
    pub fn has_vertex_colors(&self) -> bool {
        self.color_mode != COLORS_NONE
    }

    /// The texture: width, height and RGBA bytes, borrowed from the payload.
    #[must_use]
    pub fn texture(&self) -> Option<(u32, u32, &'a [u8])> {
        self.texture_size.map(|(w, h)| (w, h, self.texture))
    }

    /// Decodes the mesh in one pass straight into `vertices` (its first
    /// [`MeshRef::vertex_count`] elements) and `indices` (its first [`MeshRef::index_count`]),
    /// with no allocation. Every vertex gets `pick_id`; vertices take the shape colour when the
    /// mesh has no per-vertex colours, normal 0 (+Z) without normals and uv 0 without uvs.
    ///
    /// A slice too short is [`CodecError::LimitExceeded`] before anything is written. Corrupt
    /// columns (an index ≥ the vertex count, a bad width, bytes missing or left over) are
    /// typed errors; the slices then hold partial output and should be discarded.
    pub fn decode_into(
        &self,
        pick_id: u32,
        vertices: &mut [MeshVertex],
        indices: &mut [u32],
    ) -> Result<(), CodecError> {
        let nv = self.vertex_count();
        let ni = self.index_count();
        let Some(out_v) = vertices.get_mut(..nv) else {
            return Err(CodecError::LimitExceeded { what: "vertices for the output slice", value: nv as u64 });
        };
        let Some(out_i) = indices.get_mut(..ni) else {
            return Err(CodecError::LimitExceeded { what: "indices for the output slice", value: ni as u64 });
        };
        self.decode_vertices(pick_id, out_v)?;
        decode_indices(self.indices, self.vertices, out_i)
    }

    fn decode_vertices(&self, pick_id: u32, out: &mut [MeshVertex]) -> Result<(), CodecError> {
        let (s, _) = step(self.precision);
        let mut pos = Reader::new(self.positions);
        let mut nor = Reader::new(self.normals);
        let mut col = Reader::new(self.colors);
        let mut uvr = Reader::new(self.uvs);
        let mut constant = self.color;
        let mut palette: &[u8] = &[];
        match self.color_mode {
            COLORS_CONSTANT => constant = col.u32()?,
            COLORS_PALETTE => {
                let p = col.count(out.len())?;
                if p == 0 && !out.is_empty() {
                    return Err(CodecError::Corrupt("empty colour palette"));
                }
                palette = col.take(4 * p)?;
            }
            _ => {}
        }
        let palette_len = palette.len() / 4;
        let nmax = if self.normal_bits == 0 { 0 } else { snorm_max(u32::from(self.normal_bits)) };
        let to16 = Snorm16::new(nmax);
        let uv_top = if self.uv_bits == 0 { 0 } else { (1i32 << self.uv_bits) - 1 };
        let uv_scale = [
            uv_scale(self.uv_min[0], self.uv_max[0], self.uv_bits.max(1)),
            uv_scale(self.uv_min[1], self.uv_max[1], self.uv_bits.max(1)),
        ];
        let mut pstate = [[0i32; 2]; 3];
        let mut nstate = [[0i32; 2]; 2];
        let mut cstate = [[0u8; 2]; 4];
        let mut ustate = [[0i32; 2]; 2];
        let mut q = [[0i32; BLOCK]; 3];
        let mut ch = [[0u8; BLOCK]; 4];
        let mut idx = [0u32; BLOCK];
        for chunk in out.chunks_mut(BLOCK) {
            let m = chunk.len();
            for (col, st) in q.iter_mut().zip(&mut pstate) {
                get_predicted(&mut pos, &mut col[..m], st)?;
            }
            for (k, v) in chunk.iter_mut().enumerate() {
                #[allow(clippy::cast_precision_loss)]
                let p = [q[0][k] as f32 * s, q[1][k] as f32 * s, q[2][k] as f32 * s];
                v.position = p;
                v.pick_id = pick_id;
            }
            if nmax == 0 {
                chunk.iter_mut().for_each(|v| v.normal = 0);
            } else {
                get_predicted(&mut nor, &mut q[0][..m], &mut nstate[0])?;
                get_predicted(&mut nor, &mut q[1][..m], &mut nstate[1])?;
                for (k, v) in chunk.iter_mut().enumerate() {
                    let (x, y) = (q[0][k], q[1][k]);
                    if !(-nmax..=nmax).contains(&x) || !(-nmax..=nmax).contains(&y) {
                        return Err(CodecError::Corrupt("normal outside the octahedral square"));
                    }
                    v.normal = pack_oct16([to16.convert(x), to16.convert(y)]);
                }
            }
            match self.color_mode {
                COLORS_PALETTE => {
                    get_block(&mut col, 32, &mut idx)?;
                    for (k, v) in chunk.iter_mut().enumerate() {
                        let i = idx[k] as usize;
                        if i >= palette_len {
                            return Err(CodecError::Corrupt("colour palette index out of range"));
                        }
                        let e = &palette[4 * i..4 * i + 4];
                        v.color = u32::from_le_bytes([e[0], e[1], e[2], e[3]]);
                    }
                }
                COLORS_DELTA => {
                    for (c, st) in ch.iter_mut().zip(&mut cstate) {
                        get_channel(&mut col, &mut c[..m], st)?;
                    }
                    for (k, v) in chunk.iter_mut().enumerate() {
                        v.color = u32::from_le_bytes([ch[0][k], ch[1][k], ch[2][k], ch[3][k]]);
                    }
                }
                _ => chunk.iter_mut().for_each(|v| v.color = constant),
            }
            if uv_top == 0 {
                chunk.iter_mut().for_each(|v| v.uv = [0.0; 2]);
            } else {
                get_predicted(&mut uvr, &mut q[0][..m], &mut ustate[0])?;
                get_predicted(&mut uvr, &mut q[1][..m], &mut ustate[1])?;
                for (k, v) in chunk.iter_mut().enumerate() {
                    let (a, b) = (q[0][k], q[1][k]);
                    if !(0..=uv_top).contains(&a) || !(0..=uv_top).contains(&b) {
                        return Err(CodecError::Corrupt("uv outside its range"));
                    }
                    #[allow(clippy::cast_precision_loss)]
                    let uv = [self.uv_min[0] + a as f32 * uv_scale[0], self.uv_min[1] + b as f32 * uv_scale[1]];
                    v.uv = uv;
                }
            }
        }
        if pos.remaining() + nor.remaining() + col.remaining() + uvr.remaining() != 0 {
            return Err(CodecError::Corrupt("bytes after the last vertex block"));
        }
        Ok(())
    }

    /// Decodes the mesh into the model's [`Mesh`] (positions dequantized, normals from their
    /// 16-bit octahedral form).
    pub fn to_mesh(&self) -> Result<Mesh, CodecError> {
        let mut v = vec![MeshVertex::default(); self.vertex_count()];
        let mut indices = vec![0u32; self.index_count()];
        self.decode_into(0, &mut v, &mut indices)?;
        let mut m = Mesh::new(self.anchor, v.iter().map(|v| Vec3::from_array(v.position)).collect(), indices);
        m.unlit = self.unlit;
        if self.has_normals() {
            m.normals = v.iter().map(|v| crate::shape::unpack_normal(v.normal)).collect();
        }
        if self.has_vertex_colors() {
            m.colors = v.iter().map(|v| v.color).collect();
        }
        if self.has_uvs() {
            m.uvs = v.iter().map(|v| Vec2::from_array(v.uv)).collect();
        }
        m.texture = self.texture().map(|(width, height, rgba)| Texture { width, height, rgba: rgba.to_vec() });
        Ok(m)
    }
}

/// A `bits`-bit snorm value (magnitude at most `max`) as a 16-bit snorm:
/// `floor((2 · q · 32767 + max) / (2 · max))`, i.e. `q · 32767 / max` rounded half up (the
/// identity for 16 bits). The definition; [`Snorm16`] computes the same without a division.
#[cfg_attr(not(test), allow(dead_code))]
fn to_snorm16(q: i32, max: i32) -> i32 {
    let (q, m) = (i64::from(q), i64::from(max.max(1)));
    #[allow(clippy::cast_possible_truncation)]
    let v = (2 * q * 32767 + m).div_euclid(2 * m) as i32;
    v
}

/// [`to_snorm16`] without a division. With the numerator made non-negative,
/// `x = 2·32767·(q + max) + max < 2^31` (for `max` ≤ 16383; 16 bits are the identity), and
/// `floor(x / (2·max)) − 32767` is the value; the quotient is a multiplication by
/// `m = floor(2^s / d) + 1`, `s = 32 + ceil(log2 d)`, exact for every `x < 2^32`
/// (Granlund and Montgomery, 1994).
#[derive(Clone, Copy)]
struct Snorm16 {
    max: i32,
    magic: u64,
    shift: u32,
}

impl Snorm16 {
    fn new(max: i32) -> Self {
        let max = max.clamp(1, 32767);
        let d = 2 * u64::from(max.unsigned_abs());
        let shift = 32 + (64 - (d - 1).leading_zeros());
        Self { max, magic: ((1u128 << shift) / u128::from(d)) as u64 + 1, shift }
    }

    #[inline]
    fn convert(self, q: i32) -> i32 {
        if self.max == 32767 {
            return q;
        }
        // q is within ±max (checked by the caller), so x is non-negative and below 2^31.
        let x = (2 * 32767 * i64::from(q + self.max) + i64::from(self.max)) as u64;
        let quotient = ((u128::from(x) * u128::from(self.magic)) >> self.shift) as i32;
        quotient - 32767
    }
}

/// Decodes a triangle section into `out` (3 · triangles indices), checking every index
/// against `vertices`.
fn decode_indices(section: &[u8], vertices: u32, out: &mut [u32]) -> Result<(), CodecError> {
    let mut r = Reader::new(section);
    let mut prev = [0u32; 3];
    let mut have_prev = false;
    let mut codes = [0u32; BLOCK];
    let mut deltas = [0u32; BLOCK];
    let mut esc = [[0u32; BLOCK]; 2];
    let mut code_state = [0u32; 2];
    for chunk in out.chunks_mut(3 * BLOCK) {
        let m = chunk.len() / 3;
        let b = r.u8()?;
        let w = u32::from(b & WIDTH_MASK);
        if b & !(WIDTH_MASK | ORDER2) != 0 || w > bit_width(MAX_TRIANGLE_CODE) {
            return Err(CodecError::Corrupt("bad triangle code width byte"));
        }
        r.unpack_block(w, &mut codes)?;
        for c in codes.iter_mut().take(m) {
            if *c > MAX_TRIANGLE_CODE {
                return Err(CodecError::Corrupt("unknown triangle code"));
            }
            if b & ORDER2 != 0 {
                // Both below CODES: one conditional subtraction is the modulo.
                *c += code_state[1];
                if *c >= CODES {
                    *c -= CODES;
                }
            }
            code_state = [*c, code_state[0]];
        }
        get_block(&mut r, 32, &mut deltas)?;
        let e = usize::from(r.u8()?);
        if e > m {
            return Err(CodecError::Corrupt("more escaped triangles than triangles in a block"));
        }
        for b in esc.iter_mut().take((2 * e).div_ceil(BLOCK)) {
            get_block(&mut r, 32, b)?;
        }
        let mut j = 0usize;
        for (k, slot) in chunk.chunks_exact_mut(3).enumerate() {
            let code = codes[k];
            let d = unzigzag(deltas[k]);
            let t = if code == 0 {
                if j >= e {
                    return Err(CodecError::Corrupt("more escaped triangles than declared"));
                }
                let a = prev[0].wrapping_add(d as u32);
                let (s1, s2) = (2 * j, 2 * j + 1);
                let b1 = a.wrapping_add(unzigzag(esc[s1 / BLOCK][s1 % BLOCK]) as u32);
                let b2 = a.wrapping_add(unzigzag(esc[s2 / BLOCK][s2 % BLOCK]) as u32);
                j += 1;
                [a, b1, b2]
            } else {
                if !have_prev {
                    return Err(CodecError::Corrupt("first triangle refers to a previous one"));
                }
                shared_edge_triangle(prev, code, d)
            };
            if t[0] >= vertices || t[1] >= vertices || t[2] >= vertices {
                return Err(CodecError::Corrupt("triangle index out of range"));
            }
            slot.copy_from_slice(&t);
            prev = t;
            have_prev = true;
        }
        if j != e {
            return Err(CodecError::Corrupt("fewer escaped triangles than declared"));
        }
    }
    if r.remaining() != 0 {
        return Err(CodecError::Corrupt("bytes after the last triangle block"));
    }
    Ok(())
}

/// Running totals of one frame's meshes, checked against the limits.
struct Budget {
    vertices: u64,
    triangles: u64,
}

/// Reads a mesh record body (after id, kind, colour) without decoding its columns.
fn read_mesh<'a>(
    r: &mut Reader<'a>,
    color: u32,
    precision: u8,
    limits: &Limits,
    budget: &mut Budget,
) -> Result<MeshRef<'a>, CodecError> {
    let anchor = read_anchor(r)?;
    let flags = r.u8()?;
    if flags & !(MESH_UNLIT | MESH_NORMALS | MESH_UVS | MESH_TEXTURE) != 0 {
        return Err(CodecError::Corrupt("unknown mesh flag bits"));
    }
    let color_mode = r.u8()?;
    if color_mode > COLORS_DELTA {
        return Err(CodecError::Corrupt("unknown mesh colour mode"));
    }
    let vertices = u32v(r)?;
    let triangles = u32v(r)?;
    budget.vertices += u64::from(vertices);
    budget.triangles += u64::from(triangles);
    if budget.vertices > u64::from(limits.max_vertices) {
        return Err(CodecError::LimitExceeded { what: "mesh vertices in a frame", value: budget.vertices });
    }
    if budget.triangles > u64::from(limits.max_triangles) {
        return Err(CodecError::LimitExceeded { what: "mesh triangles in a frame", value: budget.triangles });
    }
    if vertices == 0 && triangles > 0 {
        return Err(CodecError::Corrupt("triangles without vertices"));
    }
    let normal_bits = if flags & MESH_NORMALS != 0 {
        let b = r.u8()?;
        if !(2..=16).contains(&b) {
            return Err(CodecError::Corrupt("normal bits outside 2-16"));
        }
        b
    } else {
        0
    };
    let (mut uv_bits, mut uv_min, mut uv_max) = (0, [0.0; 2], [0.0; 2]);
    if flags & MESH_UVS != 0 {
        uv_bits = r.u8()?;
        if !(1..=24).contains(&uv_bits) {
            return Err(CodecError::Corrupt("uv bits outside 1-24"));
        }
        uv_min = [r.f32()?, r.f32()?];
        uv_max = [r.f32()?, r.f32()?];
        for a in 0..2 {
            let range = uv_max[a] - uv_min[a];
            if !(range.is_finite() && range >= 0.0) {
                return Err(CodecError::Corrupt("uv range not finite or reversed"));
            }
        }
    }
    let texture_size = if flags & MESH_TEXTURE != 0 {
        if uv_bits == 0 {
            return Err(CodecError::Corrupt("mesh texture without uvs"));
        }
        Some((u32v(r)?, u32v(r)?))
    } else {
        None
    };
    let vblocks = (vertices as usize).div_ceil(BLOCK);
    let tblocks = (triangles as usize).div_ceil(BLOCK);
    // Each block of a column takes at least its width byte: a count the section cannot hold
    // is refused here, before the caller sizes any buffer by it.
    let mut section = |min: usize| -> Result<&'a [u8], CodecError> {
        let s = r.bytes(r.remaining())?;
        if s.len() < min {
            return Err(CodecError::Truncated);
        }
        Ok(s)
    };
    let positions = section(3 * vblocks)?;
    let normals = if normal_bits != 0 { section(2 * vblocks)? } else { &[] };
    let colors = section(match color_mode {
        COLORS_NONE => 0,
        COLORS_CONSTANT => 4,
        COLORS_PALETTE => 1 + 4 + vblocks,
        _ => 4 * vblocks,
    })?;
    match color_mode {
        COLORS_NONE if !colors.is_empty() => return Err(CodecError::Corrupt("colour bytes without a colour mode")),
        COLORS_CONSTANT if colors.len() != 4 => return Err(CodecError::Corrupt("constant colour is not 4 bytes")),
        _ => {}
    }
    let uvs = if uv_bits != 0 { section(2 * vblocks)? } else { &[] };
    let indices = section(3 * tblocks)?;
    let texture = match texture_size {
        Some((w, h)) => {
            let t = section(0)?;
            check_texture(w, h, t.len(), limits)?;
            t
        }
        None => &[],
    };
    Ok(MeshRef {
        anchor,
        color,
        unlit: flags & MESH_UNLIT != 0,
        vertices,
        triangles,
        precision,
        normal_bits,
        color_mode,
        uv_bits,
        uv_min,
        uv_max,
        texture_size,
        positions,
        normals,
        colors,
        uvs,
        indices,
        texture,
    })
}

// ---------------------------------------------------------------------------------------------
// Shapes payload (kind 5)

/// A shape record of a parsed shapes payload; meshes are not decoded yet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RecordKind<'a> {
    /// A sphere.
    Sphere {
        /// Centre.
        anchor: Anchor,
        /// Radius, Å.
        radius: f32,
    },
    /// A line.
    Line {
        /// First end.
        start: Anchor,
        /// Second end.
        end: Anchor,
        /// Thickness, Å.
        thickness: f32,
        /// Dash length, Å.
        dash_length: f32,
        /// Gap between dashes, Å.
        dash_gap: f32,
    },
    /// A label.
    Label {
        /// Where it is drawn.
        anchor: Anchor,
        /// Text, borrowed from the payload.
        text: &'a str,
        /// Font size.
        font_size: f32,
    },
    /// A mesh, to decode with [`MeshRef::decode_into`] or [`MeshRef::to_mesh`].
    Mesh(MeshRef<'a>),
}

/// One shape created or replaced by a shapes frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShapeRecord<'a> {
    /// Shape id.
    pub id: ShapeId,
    /// RGBA8 colour.
    pub color: u32,
    /// Geometry.
    pub kind: RecordKind<'a>,
}

impl ShapeRecord<'_> {
    /// The model's shape (decoding a mesh's columns).
    pub fn to_shape(&self) -> Result<Shape, CodecError> {
        let kind = match self.kind {
            RecordKind::Sphere { anchor, radius } => ShapeKind::Sphere { anchor, radius },
            RecordKind::Line { start, end, thickness, dash_length, dash_gap } => {
                ShapeKind::Line { start, end, thickness, dash_length, dash_gap }
            }
            RecordKind::Label { anchor, text, font_size } => {
                ShapeKind::Label { anchor, text: text.to_owned(), font_size }
            }
            RecordKind::Mesh(m) => ShapeKind::Mesh(m.to_mesh()?),
        };
        Ok(Shape { id: self.id, color: self.color, kind })
    }
}

/// A shapes payload parsed but not decoded: what the viewer walks to size and fill its GPU
/// buffers.
#[derive(Clone, Debug, PartialEq)]
pub struct ShapesView<'a> {
    /// A full frame: every shape held before is dropped.
    pub full: bool,
    /// Shapes destroyed (applied before the records).
    pub destroys: Vec<ShapeId>,
    /// Shapes created or replaced.
    pub records: Vec<ShapeRecord<'a>>,
}

/// A decoded shapes payload.
#[derive(Clone, Debug, PartialEq)]
pub struct ShapesUpdate {
    /// A full frame: every shape held before is dropped.
    pub full: bool,
    /// Shapes destroyed (applied before `shapes`).
    pub destroys: Vec<ShapeId>,
    /// Shapes created or replaced.
    pub shapes: Vec<Shape>,
}

/// Appends a shapes payload: `full` (a reset), the destroyed ids, then the shapes. Returns the
/// record count for the header's `atom_count`. Every shape is validated first
/// ([`Shape::validate`] with default limits); positions out of range at `precision` are
/// [`CodecError::OutOfRange`].
pub fn encode_shapes(
    full: bool,
    shapes: &[&Shape],
    destroys: &[ShapeId],
    precision: u8,
    opts: MeshOptions,
    w: &mut Writer,
) -> Result<u32, CodecError> {
    if full && !destroys.is_empty() {
        return Err(CodecError::Corrupt("a full shapes frame destroys nothing"));
    }
    let limits = Limits::default();
    for s in shapes {
        s.validate(&limits)?;
    }
    let count = records(shapes.len() + destroys.len())?;
    w.u8(if full { FLAG_FULL } else { 0 });
    w.varint(destroys.len() as u64);
    let ids: Vec<i32> = destroys.iter().map(|id| id.0 as i32).collect();
    w.delta_column(&ids);
    w.varint(shapes.len() as u64);
    for s in shapes {
        w.varint(u64::from(s.id.0));
        let kind = match &s.kind {
            ShapeKind::Sphere { .. } => KIND_SPHERE,
            ShapeKind::Line { .. } => KIND_LINE,
            ShapeKind::Label { .. } => KIND_LABEL,
            ShapeKind::Mesh(_) => KIND_MESH,
        };
        w.u8(kind);
        w.u32(s.color);
        match &s.kind {
            ShapeKind::Sphere { anchor, radius } => {
                write_anchor(w, anchor);
                w.f32(*radius);
            }
            ShapeKind::Line { start, end, thickness, dash_length, dash_gap } => {
                write_anchor(w, start);
                write_anchor(w, end);
                w.f32(*thickness);
                w.f32(*dash_length);
                w.f32(*dash_gap);
            }
            ShapeKind::Label { anchor, text, font_size } => {
                write_anchor(w, anchor);
                w.f32(*font_size);
                w.bytes(text.as_bytes());
            }
            ShapeKind::Mesh(m) => encode_mesh(m, precision, opts, w)?,
        }
    }
    Ok(count)
}

/// Parses a shapes payload (kind 5) without decoding mesh columns. Checks the header (kind,
/// `atom_count` = records, a full frame exactly when `base_seq == seq`), every count against
/// `limits` and what the payload can hold, anchors, sizes and label text.
pub fn parse_shapes<'a>(
    payload: &'a [u8],
    header: &FrameHeader,
    limits: &Limits,
) -> Result<ShapesView<'a>, CodecError> {
    if header.kind != FrameKind::Shapes {
        return Err(CodecError::UnknownKind(header.kind as u8));
    }
    if header.atom_count > limits.max_shapes {
        return Err(CodecError::LimitExceeded { what: "shape records", value: u64::from(header.atom_count) });
    }
    let mut r = Reader::new(payload);
    let flags = r.u8()?;
    if flags & !FLAG_FULL != 0 {
        return Err(CodecError::Corrupt("unknown shapes flag bits"));
    }
    let full = flags & FLAG_FULL != 0;
    if full != (header.base_seq == header.seq) {
        return Err(CodecError::Corrupt("full shapes frame and base sequence disagree"));
    }
    let records_max = header.atom_count as usize;
    let nd = r.count(records_max)?;
    if full && nd != 0 {
        return Err(CodecError::Corrupt("a full shapes frame destroys nothing"));
    }
    let destroys = r.delta_column(nd)?.into_iter().map(|v| ShapeId(v as u32)).collect();
    let ns = r.count(records_max - nd)?;
    if nd + ns != records_max {
        return Err(CodecError::Corrupt("record count differs from the header"));
    }
    // A record takes more than 10 bytes (id, kind, colour, anchor): bound the vector by what the
    // payload can hold as well.
    if ns.saturating_mul(10) > r.remaining() {
        return Err(CodecError::Truncated);
    }
    let mut recs = Vec::with_capacity(ns);
    let mut budget = Budget { vertices: 0, triangles: 0 };
    for _ in 0..ns {
        let id = ShapeId(u32v(&mut r)?);
        let kind = r.u8()?;
        let color = r.u32()?;
        let kind = match kind {
            KIND_SPHERE => RecordKind::Sphere { anchor: read_anchor(&mut r)?, radius: read_size(&mut r)? },
            KIND_LINE => RecordKind::Line {
                start: read_anchor(&mut r)?,
                end: read_anchor(&mut r)?,
                thickness: read_size(&mut r)?,
                dash_length: read_size(&mut r)?,
                dash_gap: read_size(&mut r)?,
            },
            KIND_LABEL => {
                let anchor = read_anchor(&mut r)?;
                let font_size = read_size(&mut r)?;
                let text = std::str::from_utf8(r.bytes(limits.max_string)?)
                    .map_err(|_| CodecError::Corrupt("label text is not UTF-8"))?;
                RecordKind::Label { anchor, text, font_size }
            }
            KIND_MESH => RecordKind::Mesh(read_mesh(&mut r, color, header.precision, limits, &mut budget)?),
            _ => return Err(CodecError::Corrupt("unknown shape kind")),
        };
        recs.push(ShapeRecord { id, color, kind });
    }
    if r.remaining() != 0 {
        return Err(CodecError::Corrupt("bytes after the last shape record"));
    }
    Ok(ShapesView { full, destroys, records: recs })
}

/// Decodes a shapes payload (kind 5) whole, meshes included. Nothing is applied anywhere: see
/// [`ShapeSet::apply`].
pub fn decode_shapes(payload: &[u8], header: &FrameHeader, limits: &Limits) -> Result<ShapesUpdate, CodecError> {
    let view = parse_shapes(payload, header, limits)?;
    let shapes = view.records.iter().map(ShapeRecord::to_shape).collect::<Result<_, _>>()?;
    Ok(ShapesUpdate { full: view.full, destroys: view.destroys, shapes })
}

// ---------------------------------------------------------------------------------------------
// ShapeDelta payload (kind 6)

/// Appends a ShapeDelta payload; returns the record count for the header's `atom_count`.
/// Empty changes and invalid values are refused.
pub fn encode_changes(changes: &[ShapeChange], w: &mut Writer) -> Result<u32, CodecError> {
    let count = records(changes.len())?;
    w.varint(changes.len() as u64);
    let mut prev = 0u32;
    for c in changes {
        if c.is_empty() {
            return Err(CodecError::Corrupt("shape change without fields"));
        }
        for a in c.anchor.iter().chain(&c.end) {
            check_offset(a.offset)?;
        }
        for s in c.size.iter().chain(c.dash.iter().flatten()) {
            check_size(*s)?;
        }
        w.varint(u64::from(zigzag(c.id.0.wrapping_sub(prev) as i32)));
        prev = c.id.0;
        let mut mask = 0u8;
        for (on, bit) in [
            (c.anchor.is_some(), CHANGE_ANCHOR),
            (c.end.is_some(), CHANGE_END),
            (c.color.is_some(), CHANGE_COLOR),
            (c.size.is_some(), CHANGE_SIZE),
            (c.dash.is_some(), CHANGE_DASH),
        ] {
            if on {
                mask |= bit;
            }
        }
        w.u8(mask);
        if let Some(a) = &c.anchor {
            write_anchor(w, a);
        }
        if let Some(a) = &c.end {
            write_anchor(w, a);
        }
        if let Some(v) = c.color {
            w.u32(v);
        }
        if let Some(v) = c.size {
            w.f32(v);
        }
        if let Some([l, g]) = c.dash {
            w.f32(l);
            w.f32(g);
        }
    }
    Ok(count)
}

/// Decodes a ShapeDelta payload (kind 6). Whether each change fits the shape it names is
/// checked by [`ShapeSet::apply`], which holds the shapes.
pub fn decode_changes(payload: &[u8], header: &FrameHeader, limits: &Limits) -> Result<Vec<ShapeChange>, CodecError> {
    if header.kind != FrameKind::ShapeDelta {
        return Err(CodecError::UnknownKind(header.kind as u8));
    }
    if header.atom_count > limits.max_shapes {
        return Err(CodecError::LimitExceeded { what: "shape changes", value: u64::from(header.atom_count) });
    }
    let mut r = Reader::new(payload);
    let n = r.count(header.atom_count as usize)?;
    if n != header.atom_count as usize {
        return Err(CodecError::Corrupt("record count differs from the header"));
    }
    // A change takes at least 6 bytes (id, mask, a 4-byte field).
    if n.saturating_mul(6) > r.remaining() {
        return Err(CodecError::Truncated);
    }
    let mut out = Vec::with_capacity(n);
    let mut prev = 0u32;
    for _ in 0..n {
        let z = u32v(&mut r)?;
        let id = prev.wrapping_add(unzigzag(z) as u32);
        prev = id;
        let mask = r.u8()?;
        if mask == 0 || mask & !(CHANGE_ANCHOR | CHANGE_END | CHANGE_COLOR | CHANGE_SIZE | CHANGE_DASH) != 0 {
            return Err(CodecError::Corrupt("bad shape change field mask"));
        }
        let mut c = ShapeChange::new(ShapeId(id));
        if mask & CHANGE_ANCHOR != 0 {
            c.anchor = Some(read_anchor(&mut r)?);
        }
        if mask & CHANGE_END != 0 {
            c.end = Some(read_anchor(&mut r)?);
        }
        if mask & CHANGE_COLOR != 0 {
            c.color = Some(r.u32()?);
        }
        if mask & CHANGE_SIZE != 0 {
            c.size = Some(read_size(&mut r)?);
        }
        if mask & CHANGE_DASH != 0 {
            c.dash = Some([read_size(&mut r)?, read_size(&mut r)?]);
        }
        out.push(c);
    }
    if r.remaining() != 0 {
        return Err(CodecError::Corrupt("bytes after the last shape change"));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The sender

/// The sender's side of one shape stream: numbers frames (kinds 5 and 6 share one sequence)
/// and keeps a mirror of the shapes the receivers hold, so that [`ShapeEncoder::sync`] sends
/// only what changed.
#[derive(Debug, Clone)]
pub struct ShapeEncoder {
    stream_id: u32,
    precision: u8,
    next_seq: u32,
    last: Option<u32>,
    sent: ShapeSet,
    /// Mesh quantization beyond the header precision.
    pub mesh: MeshOptions,
    /// Try lz4 on shapes frames (kept only when it saves 1/16; pays for textures, rarely for
    /// the bit-packed mesh columns).
    pub lz4: bool,
}

impl ShapeEncoder {
    /// A shape stream whose mesh positions are quantized to 10^-precision Å (clamped to 4).
    #[must_use]
    pub fn new(stream_id: u32, precision: u8) -> Self {
        Self {
            stream_id,
            precision: precision.min(4),
            next_seq: 0,
            last: None,
            sent: ShapeSet::new(Limits::default()),
            mesh: MeshOptions::default(),
            lz4: true,
        }
    }

    /// The shapes the receivers hold once they applied every frame sent.
    #[must_use]
    pub fn sent(&self) -> &ShapeSet {
        &self.sent
    }

    fn seal(
        &mut self,
        kind: FrameKind,
        base: Option<u32>,
        records: u32,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> FrameHeader {
        let seq = self.next_seq;
        let h = FrameHeader {
            kind,
            precision: self.precision,
            flags: 0,
            stream_id: self.stream_id,
            seq,
            base_seq: base.unwrap_or(seq),
            atom_count: records,
            payload_len: 0,
            checksum: 0,
        };
        let h = header::seal(h, payload, self.lz4, out);
        self.next_seq = self.next_seq.wrapping_add(1);
        self.last = Some(seq);
        h
    }

    /// Appends a full shapes frame: the receivers drop what they hold and take `shapes`.
    pub fn full<'s>(
        &mut self,
        shapes: impl IntoIterator<Item = &'s Shape>,
        out: &mut Vec<u8>,
    ) -> Result<FrameHeader, CodecError> {
        let shapes: Vec<&Shape> = shapes.into_iter().collect();
        let mut mirror = ShapeSet::new(Limits::default());
        for s in &shapes {
            if mirror.insert((*s).clone())?.is_some() {
                return Err(CodecError::Corrupt("shape sent twice in a frame"));
            }
        }
        let mut w = Writer::new();
        let n = encode_shapes(true, &shapes, &[], self.precision, self.mesh, &mut w)?;
        let h = self.seal(FrameKind::Shapes, None, n, &w.buf, out);
        self.sent = mirror;
        Ok(h)
    }

    /// Appends a shapes frame creating or replacing `upserts` and destroying `destroys`, against
    /// the last frame sent ([`CodecError::NeedKeyframe`] before the first full frame).
    pub fn update(
        &mut self,
        upserts: &[Shape],
        destroys: &[ShapeId],
        out: &mut Vec<u8>,
    ) -> Result<FrameHeader, CodecError> {
        let refs: Vec<&Shape> = upserts.iter().collect();
        self.update_refs(&refs, destroys, out)
    }

    fn update_refs(
        &mut self,
        upserts: &[&Shape],
        destroys: &[ShapeId],
        out: &mut Vec<u8>,
    ) -> Result<FrameHeader, CodecError> {
        let base = self.need_base()?;
        let mut mirror = self.sent.clone();
        for id in destroys {
            if mirror.remove(*id).is_none() {
                return Err(CodecError::Corrupt("destroy of a shape not held"));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for s in upserts {
            if !seen.insert(s.id) {
                return Err(CodecError::Corrupt("shape sent twice in a frame"));
            }
            mirror.insert((*s).clone())?;
        }
        let mut w = Writer::new();
        let n = encode_shapes(false, upserts, destroys, self.precision, self.mesh, &mut w)?;
        let h = self.seal(FrameKind::Shapes, Some(base), n, &w.buf, out);
        self.sent = mirror;
        Ok(h)
    }

    /// Appends a ShapeDelta frame of sparse `changes` against the last frame sent.
    pub fn changes(&mut self, changes: &[ShapeChange], out: &mut Vec<u8>) -> Result<FrameHeader, CodecError> {
        let base = self.need_base()?;
        let mut mirror = self.sent.clone();
        let mut seen = std::collections::BTreeSet::new();
        for c in changes {
            if !seen.insert(c.id) {
                return Err(CodecError::Corrupt("two changes of one shape in a frame"));
            }
            mirror.change(c)?;
        }
        let mut w = Writer::new();
        let n = encode_changes(changes, &mut w)?;
        let h = self.seal(FrameKind::ShapeDelta, Some(base), n, &w.buf, out);
        self.sent = mirror;
        Ok(h)
    }

    /// Appends what brings the receivers from the shapes sent to `target`: a full frame first
    /// of all; then a shapes frame for new, replaced and destroyed shapes (if any) and a
    /// ShapeDelta frame for anchor, colour and size changes (if any). Returns the headers.
    pub fn sync(&mut self, target: &ShapeSet, out: &mut Vec<u8>) -> Result<Vec<FrameHeader>, CodecError> {
        if self.last.is_none() {
            return Ok(vec![self.full(target.iter(), out)?]);
        }
        let diff = self.sent.diff(target);
        let mut headers = Vec::new();
        if !diff.upserts.is_empty() || !diff.destroys.is_empty() {
            headers.push(self.update_refs(&diff.upserts, &diff.destroys, out)?);
        }
        if !diff.changes.is_empty() {
            headers.push(self.changes(&diff.changes, out)?);
        }
        Ok(headers)
    }

    fn need_base(&self) -> Result<u32, CodecError> {
        self.last.ok_or(CodecError::NeedKeyframe {
            stream_id: self.stream_id,
            seq: self.next_seq,
            base_seq: self.next_seq,
            held: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::oct_decode;

    #[test]
    fn shared_edge_codes_cover_every_configuration() {
        let prev = [10u32, 20, 30];
        let mut seen = std::collections::BTreeSet::new();
        for code in 1..=MAX_TRIANGLE_CODE {
            let t = shared_edge_triangle(prev, code, 2);
            let mut w = Writer::new();
            encode_indices(&[10, 20, 30, t[0], t[1], t[2]], &mut w);
            let mut out = [0u32; 6];
            decode_indices(&w.buf, 100, &mut out).unwrap();
            assert_eq!(&out[3..], &t[..], "code {code}");
            seen.insert(t);
        }
        // Distinct (rotation, orientation, edge) choices give distinct triangles.
        assert!(seen.len() >= 18);
    }

    #[test]
    fn snorm16_conversion_is_the_exact_floor() {
        for bits in 2..=16u32 {
            let m = snorm_max(bits);
            let fast = Snorm16::new(m);
            for q in -m..=m {
                assert_eq!(fast.convert(q), to_snorm16(q, m), "bits {bits} q {q}");
            }
            assert_eq!(fast.convert(m), 32767);
            assert_eq!(fast.convert(-m), -32767);
        }
    }

    #[test]
    fn oct12_error_is_small() {
        let mut worst = 0f32;
        let mut s = 1u32;
        for _ in 0..200_000 {
            let mut next = || {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                #[allow(clippy::cast_precision_loss)]
                let v = (s as f32 / u32::MAX as f32) * 2.0 - 1.0;
                v
            };
            let n = Vec3::new(next(), next(), next()).normalize_or(Vec3::Z);
            let back = oct_decode(oct_encode(n, 12), 12);
            worst = worst.max(back.dot(n).clamp(-1.0, 1.0).acos().to_degrees());
        }
        assert!(worst < 0.06, "{worst}°");
    }
}
