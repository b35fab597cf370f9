//! The GPU instance structs must match their WGSL twins in `shaders/instances.wgsl` byte for
//! byte: naga parses and validates the shader (no GPU needed) and its layouter gives each
//! struct's size, alignment and member offsets.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::mem::{align_of, offset_of, size_of};

use molstream_engine::gpu::{AtomInstance, BondInstance};

fn wgsl_layout() -> (naga::Module, naga::proc::Layouter) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shaders/instances.wgsl");
    let src = std::fs::read_to_string(path).expect("shaders/instances.wgsl");
    let module = naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| panic!("{}", e.emit_to_string(&src)));
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
        .validate(&module)
        .expect("instances.wgsl validates");
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).expect("layout");
    (module, layouter)
}

/// (size, alignment, [(member name, offset)]) of a WGSL struct.
fn wgsl_struct(name: &str) -> (u32, u32, Vec<(String, u32)>) {
    let (module, layouter) = wgsl_layout();
    let (handle, ty) = module
        .types
        .iter()
        .find(|(_, t)| t.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("struct {name} not in instances.wgsl"));
    let naga::TypeInner::Struct { members, span } = &ty.inner else { panic!("{name} is not a struct") };
    let layout = &layouter[handle];
    let fields = members.iter().map(|m| (m.name.clone().unwrap_or_default(), m.offset)).collect();
    (*span, layout.alignment.round_up(1), fields)
}

fn u(x: usize) -> u32 {
    u32::try_from(x).unwrap()
}

#[test]
fn atom_instance_matches_wgsl() {
    let (size, align, fields) = wgsl_struct("AtomInstance");
    assert_eq!(size, u(size_of::<AtomInstance>()));
    assert_eq!(align, u(align_of::<AtomInstance>()));
    let rust = [
        ("position", offset_of!(AtomInstance, position)),
        ("radius", offset_of!(AtomInstance, radius)),
        ("color", offset_of!(AtomInstance, color)),
        ("flags", offset_of!(AtomInstance, flags)),
        ("pick_id", offset_of!(AtomInstance, pick_id)),
        ("transform", offset_of!(AtomInstance, transform)),
    ];
    let rust: Vec<(String, u32)> = rust.iter().map(|(n, o)| ((*n).to_owned(), u(*o))).collect();
    assert_eq!(fields, rust);
}

#[test]
fn bond_instance_matches_wgsl() {
    let (size, _align, fields) = wgsl_struct("BondInstance");
    assert_eq!(size, u(size_of::<BondInstance>()));
    let rust = [
        ("atom_a", offset_of!(BondInstance, atom_a)),
        ("atom_b", offset_of!(BondInstance, atom_b)),
        ("kind", offset_of!(BondInstance, kind)),
        ("color", offset_of!(BondInstance, color)),
    ];
    let rust: Vec<(String, u32)> = rust.iter().map(|(n, o)| ((*n).to_owned(), u(*o))).collect();
    assert_eq!(fields, rust);
}

#[test]
fn flag_constants_match_wgsl() {
    use molstream_engine::gpu::*;
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../shaders/instances.wgsl")).unwrap();
    let constant = |name: &str| -> u32 {
        let line = src.lines().find(|l| l.starts_with(&format!("const {name}:"))).unwrap_or_else(|| panic!("{name}"));
        let v = line.split('=').nth(1).unwrap().trim().trim_end_matches(';').trim_end_matches('u');
        if let Some(hex) = v.strip_prefix("0x") { u32::from_str_radix(hex, 16).unwrap() } else { v.parse().unwrap() }
    };
    assert_eq!(constant("ATOM_REPR_MASK"), ATOM_FLAG_REPR_MASK);
    assert_eq!(constant("ATOM_SELECTED"), ATOM_FLAG_SELECTED);
    assert_eq!(constant("ATOM_HIGHLIGHTED"), ATOM_FLAG_HIGHLIGHTED);
    assert_eq!(constant("ATOM_LABELED"), ATOM_FLAG_LABELED);
    assert_eq!(constant("ATOM_HETERO"), ATOM_FLAG_HETERO);
    use molstream_engine::Representation as R;
    assert_eq!(constant("REPR_BALL_AND_STICK"), R::BallAndStick as u32);
    assert_eq!(constant("REPR_STICKS"), R::Sticks as u32);
    assert_eq!(constant("REPR_SPACEFILL"), R::Spacefill as u32);
    assert_eq!(constant("REPR_WIRE"), R::Wire as u32);
    assert_eq!(constant("REPR_HIDDEN"), R::Hidden as u32);
}
