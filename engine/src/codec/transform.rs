//! Transform frames (kind 4): where the stream's complex is placed in the workspace (position
//! and rotation of its frame) and whether it is shown or locked.
//!
//! A stream carries one complex, so a transform frame carries one record, and only the fields
//! that changed. It is chained like every frame of the stream (`base_seq` must be the frame
//! held) so that no later delta can be applied across a lost frame; the header's `atom_count`
//! is the stream's atom count. Little-endian:
//!
//! | size | field |
//! |---|---|
//! | 1 | `fields`: bit 0 position, 1 rotation, 2 visible, 3 locked; bits 4-7 are 0; never 0 |
//! | 12 | position: x, y, z as `f32`, Å (if bit 0) |
//! | 16 | rotation: quaternion x, y, z, w as `f32` (if bit 1) |
//! | 1 | visible: 0 or 1 (if bit 2) |
//! | 1 | locked: 0 or 1 (if bit 3) |
//!
//! The payload ends exactly after the last field. Every float must be finite and the quaternion
//! of unit length within 10⁻³; it is used as sent (not renormalized), so both ends hold the
//! same bits.
//!
//! The receiver updates its complex ([`crate::model::Complex::position`] and `rotation`) and
//! exposes the result as a [`Placement`]: [`Placement::matrix`] is the model matrix a renderer
//! writes into its per-complex transform buffer, at the index the atom instances already carry
//! in [`crate::gpu::AtomInstance::transform`] (that index does not change, so the instance
//! buffer is not touched).

use glam::{Mat4, Quat, Vec3};

use super::CodecError;
use super::bits::{Reader, Writer};
use crate::model::Complex;

/// `fields` bit: position.
pub const POSITION: u8 = 1;
/// `fields` bit: rotation.
pub const ROTATION: u8 = 1 << 1;
/// `fields` bit: visible.
pub const VISIBLE: u8 = 1 << 2;
/// `fields` bit: locked.
pub const LOCKED: u8 = 1 << 3;

/// Largest accepted deviation of the rotation quaternion's length from 1.
pub const UNIT_TOLERANCE: f32 = 1e-3;

/// A complex's placement in the workspace.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Placement {
    /// Position of the complex's frame, Å.
    pub position: Vec3,
    /// Rotation of the complex's frame.
    pub rotation: Quat,
    /// Whether the complex is drawn.
    pub visible: bool,
    /// Whether users may move it.
    pub locked: bool,
}

impl Placement {
    /// The placement of `complex`.
    #[must_use]
    pub fn of(complex: &Complex) -> Self {
        Self {
            position: complex.position,
            rotation: complex.rotation,
            visible: complex.visible,
            locked: complex.locked,
        }
    }

    /// Writes the placement into `complex`.
    pub fn apply_to(&self, complex: &mut Complex) {
        complex.position = self.position;
        complex.rotation = self.rotation;
        complex.visible = self.visible;
        complex.locked = self.locked;
    }

    /// The model matrix: rotation about the complex's origin, then the translation.
    #[must_use]
    pub fn matrix(&self) -> Mat4 {
        Mat4::from_rotation_translation(self.rotation, self.position)
    }

    fn check(&self) -> Result<(), &'static str> {
        if !self.position.is_finite() {
            return Err("complex position is not finite");
        }
        if !self.rotation.is_finite() || (self.rotation.length() - 1.0).abs() > UNIT_TOLERANCE {
            return Err("complex rotation is not a finite unit quaternion");
        }
        Ok(())
    }
}

/// A decoded transform frame: the fields it sets.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PlacementChange {
    /// New position.
    pub position: Option<Vec3>,
    /// New rotation.
    pub rotation: Option<Quat>,
    /// New visibility.
    pub visible: Option<bool>,
    /// New lock state.
    pub locked: Option<bool>,
}

impl PlacementChange {
    /// Applies the fields present to `p`.
    pub fn apply(&self, p: &mut Placement) {
        if let Some(v) = self.position {
            p.position = v;
        }
        if let Some(v) = self.rotation {
            p.rotation = v;
        }
        if let Some(v) = self.visible {
            p.visible = v;
        }
        if let Some(v) = self.locked {
            p.locked = v;
        }
    }
}

/// Appends the payload turning `old` into `new` (fields compared bit for bit). Returns `false`,
/// writing nothing, when nothing changed; [`CodecError::InvalidInput`] when `new` is not
/// finite or its rotation is not a unit quaternion.
pub fn encode(old: &Placement, new: &Placement, w: &mut Writer) -> Result<bool, CodecError> {
    new.check().map_err(CodecError::InvalidInput)?;
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let mut fields = 0u8;
    if bits(&old.position.to_array()) != bits(&new.position.to_array()) {
        fields |= POSITION;
    }
    if bits(&old.rotation.to_array()) != bits(&new.rotation.to_array()) {
        fields |= ROTATION;
    }
    if old.visible != new.visible {
        fields |= VISIBLE;
    }
    if old.locked != new.locked {
        fields |= LOCKED;
    }
    if fields == 0 {
        return Ok(false);
    }
    w.u8(fields);
    if fields & POSITION != 0 {
        for v in new.position.to_array() {
            w.f32(v);
        }
    }
    if fields & ROTATION != 0 {
        for v in new.rotation.to_array() {
            w.f32(v);
        }
    }
    if fields & VISIBLE != 0 {
        w.u8(u8::from(new.visible));
    }
    if fields & LOCKED != 0 {
        w.u8(u8::from(new.locked));
    }
    Ok(true)
}

fn flag(r: &mut Reader<'_>) -> Result<bool, CodecError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(CodecError::Corrupt("transform flag is neither 0 nor 1")),
    }
}

/// Decodes a transform payload, checking the field bits, finiteness, the unit quaternion and
/// the exact length.
pub fn decode(payload: &[u8]) -> Result<PlacementChange, CodecError> {
    let mut r = Reader::new(payload);
    let fields = r.u8()?;
    if fields & !(POSITION | ROTATION | VISIBLE | LOCKED) != 0 {
        return Err(CodecError::Corrupt("unknown transform field bits"));
    }
    if fields == 0 {
        return Err(CodecError::Corrupt("transform frame without fields"));
    }
    let mut c = PlacementChange::default();
    if fields & POSITION != 0 {
        let p = Vec3::new(r.f32()?, r.f32()?, r.f32()?);
        if !p.is_finite() {
            return Err(CodecError::Corrupt("complex position is not finite"));
        }
        c.position = Some(p);
    }
    if fields & ROTATION != 0 {
        let q = Quat::from_xyzw(r.f32()?, r.f32()?, r.f32()?, r.f32()?);
        if !q.is_finite() || (q.length() - 1.0).abs() > UNIT_TOLERANCE {
            return Err(CodecError::Corrupt("complex rotation is not a finite unit quaternion"));
        }
        c.rotation = Some(q);
    }
    if fields & VISIBLE != 0 {
        c.visible = Some(flag(&mut r)?);
    }
    if fields & LOCKED != 0 {
        c.locked = Some(flag(&mut r)?);
    }
    if r.remaining() != 0 {
        return Err(CodecError::Corrupt("bytes after the last transform field"));
    }
    Ok(c)
}
