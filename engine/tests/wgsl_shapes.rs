//! The shape GPU structs of `engine/src/shape.rs` must match their WGSL twins in
//! `shaders/shapes.wgsl` byte for byte: naga parses and validates the shader (no GPU needed) and
//! its layouter gives each struct's size, alignment and member offsets. Modelled on
//! `wgsl_layout.rs`, which does the same for `shaders/instances.wgsl`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::mem::{align_of, offset_of, size_of};

use molstream_engine::shape::{ANCHOR_ATOM, LineInstance, MeshVertex, SphereInstance};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shaders/shapes.wgsl");

fn wgsl_layout() -> (naga::Module, naga::proc::Layouter) {
    let src = std::fs::read_to_string(PATH).expect("shaders/shapes.wgsl");
    let module = naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| panic!("{}", e.emit_to_string(&src)));
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
        .validate(&module)
        .expect("shapes.wgsl validates");
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
        .unwrap_or_else(|| panic!("struct {name} not in shapes.wgsl"));
    let naga::TypeInner::Struct { members, span } = &ty.inner else { panic!("{name} is not a struct") };
    let layout = &layouter[handle];
    let fields = members.iter().map(|m| (m.name.clone().unwrap_or_default(), m.offset)).collect();
    (*span, layout.alignment.round_up(1), fields)
}

fn u(x: usize) -> u32 {
    u32::try_from(x).unwrap()
}

fn named(fields: &[(&str, usize)]) -> Vec<(String, u32)> {
    fields.iter().map(|(n, o)| ((*n).to_owned(), u(*o))).collect()
}

#[test]
fn mesh_vertex_matches_wgsl() {
    let (size, align, fields) = wgsl_struct("MeshVertex");
    assert_eq!(size, u(size_of::<MeshVertex>()));
    assert_eq!(size, 32);
    assert_eq!(align, u(align_of::<MeshVertex>()));
    let rust = named(&[
        ("position", offset_of!(MeshVertex, position)),
        ("normal", offset_of!(MeshVertex, normal)),
        ("uv", offset_of!(MeshVertex, uv)),
        ("color", offset_of!(MeshVertex, color)),
        ("pick_id", offset_of!(MeshVertex, pick_id)),
    ]);
    assert_eq!(fields, rust);
}

#[test]
fn sphere_instance_matches_wgsl() {
    let (size, align, fields) = wgsl_struct("SphereInstance");
    assert_eq!(size, u(size_of::<SphereInstance>()));
    assert_eq!(align, u(align_of::<SphereInstance>()));
    let rust = named(&[
        ("offset", offset_of!(SphereInstance, offset)),
        ("radius", offset_of!(SphereInstance, radius)),
        ("color", offset_of!(SphereInstance, color)),
        ("anchor", offset_of!(SphereInstance, anchor)),
        ("pick_id", offset_of!(SphereInstance, pick_id)),
    ]);
    assert_eq!(fields, rust);
}

#[test]
fn line_instance_matches_wgsl() {
    let (size, align, fields) = wgsl_struct("LineInstance");
    assert_eq!(size, u(size_of::<LineInstance>()));
    assert_eq!(align, u(align_of::<LineInstance>()));
    let rust = named(&[
        ("start", offset_of!(LineInstance, start)),
        ("end", offset_of!(LineInstance, end)),
        ("thickness", offset_of!(LineInstance, thickness)),
        ("dash_length", offset_of!(LineInstance, dash_length)),
        ("dash_gap", offset_of!(LineInstance, dash_gap)),
        ("color", offset_of!(LineInstance, color)),
        ("start_anchor", offset_of!(LineInstance, start_anchor)),
        ("end_anchor", offset_of!(LineInstance, end_anchor)),
        ("pick_id", offset_of!(LineInstance, pick_id)),
    ]);
    assert_eq!(fields, rust);
}

#[test]
fn anchor_constant_matches_wgsl() {
    let src = std::fs::read_to_string(PATH).unwrap();
    let line = src.lines().find(|l| l.starts_with("const ANCHOR_ATOM:")).expect("ANCHOR_ATOM in shapes.wgsl");
    let v = line.split('=').nth(1).unwrap().trim().trim_end_matches(';').trim_end_matches('u');
    let v = u32::from_str_radix(v.strip_prefix("0x").expect("hex constant"), 16).unwrap();
    assert_eq!(v, ANCHOR_ATOM);
}
