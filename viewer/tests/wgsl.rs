//! Every WGSL file in `shaders/` parses and validates with naga (no GPU needed), as part of
//! the modules the renderer composes; and the uniform blocks in Rust match their WGSL twins
//! byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::BTreeSet;
use std::mem::{offset_of, size_of};

use molstream_viewer::render::shaders::{MODULES, ShaderModule};
use molstream_viewer::render::{FrameUniforms, PostUniforms};

fn shaders_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shaders")
}

fn validate(name: &str, src: &str) -> (naga::Module, naga::valid::ModuleInfo) {
    let module = naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{name}:\n{}", e.emit_to_string(src)));
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::default())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
    (module, info)
}

fn composed(m: ShaderModule) -> naga::Module {
    // Each file is embedded as it is on disk.
    for f in m.files {
        let disk = std::fs::read_to_string(shaders_dir().join(f)).unwrap();
        assert_eq!(molstream_viewer::render::shaders::file(f), Some(disk.as_str()), "{f} embedded");
    }
    validate(m.name, &m.source()).0
}

#[test]
fn every_shader_file_is_used_and_every_module_validates() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(shaders_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".wgsl"))
        .collect();
    let used: BTreeSet<String> = MODULES.iter().flat_map(|m| m.files.iter().map(|f| (*f).to_owned())).collect();
    assert_eq!(on_disk, used, "every shaders/*.wgsl belongs to a module in render::shaders::MODULES");
    for m in MODULES {
        composed(m);
    }
    // The engine's file also validates alone (its own test checks its layouts).
    let src = std::fs::read_to_string(shaders_dir().join("instances.wgsl")).unwrap();
    validate("instances.wgsl", &src);
}

#[test]
fn modules_have_the_entry_points_the_pipelines_name() {
    let expect = [
        (
            "atoms",
            &[
                "vs_atom",
                "fs_atom",
                "fs_atom_pick",
                "vs_atom_listed",
                "vs_atom_point",
                "fs_atom_point",
                "fs_atom_point_pick",
            ][..],
        ),
        (
            "bonds",
            &["vs_bond", "vs_bond_extra", "fs_bond", "fs_bond_pick", "vs_bond_listed", "vs_bond_extra_listed"][..],
        ),
        ("cull", &["cull_atoms", "cull_bonds", "cull_extras"][..]),
        (
            "shapes",
            &[
                "vs_shape_sphere",
                "fs_shape_sphere",
                "fs_shape_sphere_pick",
                "vs_shape_line",
                "fs_shape_line",
                "fs_shape_line_pick",
                "vs_mesh",
                "fs_mesh",
                "fs_mesh_pick",
                "vs_label",
                "fs_label",
                "fs_label_pick",
            ][..],
        ),
        ("composite", &["vs_fullscreen", "fs_ao", "fs_composite"][..]),
    ];
    for (name, entries) in expect {
        let m = MODULES.iter().find(|m| m.name == name).unwrap();
        let module = composed(*m);
        let found: Vec<&str> = module.entry_points.iter().map(|e| e.name.as_str()).collect();
        for e in entries {
            assert!(found.contains(e), "{name} lacks {e}: {found:?}");
        }
    }
    // Impostors write their own depth: every scene and pick fragment stage has frag_depth.
    let src = molstream_viewer::render::shaders::ATOMS.source() + &molstream_viewer::render::shaders::BONDS.source();
    assert!(src.contains("@builtin(frag_depth)"));
}

/// (size, [(member, offset)]) of a struct in a composed module.
fn wgsl_struct(m: ShaderModule, name: &str) -> (u32, Vec<(String, u32)>) {
    let module = composed(m);
    let (_, ty) = module.types.iter().find(|(_, t)| t.name.as_deref() == Some(name)).unwrap();
    let naga::TypeInner::Struct { members, span } = &ty.inner else { panic!("{name} is not a struct") };
    (*span, members.iter().map(|m| (m.name.clone().unwrap(), m.offset)).collect())
}

fn offsets(v: &[(&str, usize)]) -> Vec<(String, u32)> {
    v.iter().map(|(n, o)| ((*n).to_owned(), u32::try_from(*o).unwrap())).collect()
}

#[test]
fn frame_uniforms_match_wgsl() {
    let (size, fields) = wgsl_struct(molstream_viewer::render::shaders::ATOMS, "Frame");
    assert_eq!(size as usize, size_of::<FrameUniforms>());
    let rust = offsets(&[
        ("view", offset_of!(FrameUniforms, view)),
        ("proj", offset_of!(FrameUniforms, proj)),
        ("viewport", offset_of!(FrameUniforms, viewport)),
        ("light", offset_of!(FrameUniforms, light)),
        ("background", offset_of!(FrameUniforms, background)),
        ("fog", offset_of!(FrameUniforms, fog)),
        ("bond_radius", offset_of!(FrameUniforms, bond_radius)),
        ("selection", offset_of!(FrameUniforms, selection)),
        ("material", offset_of!(FrameUniforms, material)),
        ("shapes", offset_of!(FrameUniforms, shapes)),
        ("lod", offset_of!(FrameUniforms, lod)),
    ]);
    assert_eq!(fields, rust);
}

#[test]
fn post_uniforms_match_wgsl() {
    let (size, fields) = wgsl_struct(molstream_viewer::render::shaders::COMPOSITE, "Post");
    assert_eq!(size as usize, size_of::<PostUniforms>());
    let rust = offsets(&[
        ("depth", offset_of!(PostUniforms, depth)),
        ("fog", offset_of!(PostUniforms, fog)),
        ("output", offset_of!(PostUniforms, output)),
        ("ao", offset_of!(PostUniforms, ao)),
    ]);
    assert_eq!(fields, rust);
}

#[test]
fn bond_kind_constants_match_the_engine() {
    use molstream_engine::BondKind;
    let src = molstream_viewer::render::shaders::file("bonds.wgsl").unwrap();
    let constant = |name: &str| -> u32 {
        let line = src.lines().find(|l| l.starts_with(&format!("const {name}:"))).unwrap_or_else(|| panic!("{name}"));
        line.split('=').nth(1).unwrap().trim().trim_end_matches(';').trim_end_matches('u').parse().unwrap()
    };
    assert_eq!(constant("BOND_DOUBLE"), BondKind::Double as u32);
    assert_eq!(constant("BOND_TRIPLE"), BondKind::Triple as u32);
    assert_eq!(constant("BOND_AROMATIC"), BondKind::Aromatic as u32);
}

#[test]
fn shape_draw_structs_match_wgsl() {
    use molstream_viewer::render::shaders::SHAPES;
    use molstream_viewer::render::shapes::{LabelGlyph, MeshInfo};
    let (size, fields) = wgsl_struct(SHAPES, "MeshInfo");
    assert_eq!(size as usize, size_of::<MeshInfo>());
    let rust = offsets(&[
        ("offset", offset_of!(MeshInfo, offset)),
        ("anchor", offset_of!(MeshInfo, anchor)),
        ("color", offset_of!(MeshInfo, color)),
        ("flags", offset_of!(MeshInfo, flags)),
    ]);
    assert_eq!(fields, rust);
    let (size, fields) = wgsl_struct(SHAPES, "LabelGlyph");
    assert_eq!(size as usize, size_of::<LabelGlyph>());
    let rust = offsets(&[
        ("offset", offset_of!(LabelGlyph, offset)),
        ("anchor", offset_of!(LabelGlyph, anchor)),
        ("rect", offset_of!(LabelGlyph, rect)),
        ("uv", offset_of!(LabelGlyph, uv)),
        ("color", offset_of!(LabelGlyph, color)),
        ("pick_id", offset_of!(LabelGlyph, pick_id)),
    ]);
    assert_eq!(fields, rust);
    // Array strides of the storage buffers are the Rust sizes (no trailing padding in WGSL).
    assert_eq!(size_of::<MeshInfo>(), 24);
    assert_eq!(size_of::<LabelGlyph>(), 56);
}

/// `const NAME: u32 = Nu;` of a shader file.
fn u32_constant(file: &str, name: &str) -> u32 {
    let src = molstream_viewer::render::shaders::file(file).unwrap();
    let line = src.lines().find(|l| l.starts_with(&format!("const {name}:"))).unwrap_or_else(|| panic!("{name}"));
    let v = line.split('=').nth(1).unwrap().trim().trim_end_matches(';').trim_end_matches('u');
    v.strip_prefix("0x").map_or_else(|| v.parse().unwrap(), |h| u32::from_str_radix(h, 16).unwrap())
}

#[test]
fn mesh_flags_match_the_shader() {
    use molstream_viewer::render::shapes::{MESH_NORMALS, MESH_SHAPE_COLOR, MESH_TEXTURED, MESH_UNLIT};
    assert_eq!(u32_constant("shape_draw.wgsl", "MESH_UNLIT"), MESH_UNLIT);
    assert_eq!(u32_constant("shape_draw.wgsl", "MESH_NORMALS"), MESH_NORMALS);
    assert_eq!(u32_constant("shape_draw.wgsl", "MESH_TEXTURED"), MESH_TEXTURED);
    assert_eq!(u32_constant("shape_draw.wgsl", "MESH_SHAPE_COLOR"), MESH_SHAPE_COLOR);
    assert_eq!(u32_constant("shapes.wgsl", "ANCHOR_ATOM"), molstream_engine::shape::ANCHOR_ATOM);
}

#[test]
fn cull_constants_match_the_renderer() {
    use molstream_viewer::render::scene::{DRAW_ARGS_RESET, DRAW_ATOMS, DRAW_BONDS, DRAW_EXTRAS, DRAW_POINTS};
    for (name, k) in [
        ("DRAW_ATOMS", DRAW_ATOMS),
        ("DRAW_POINTS", DRAW_POINTS),
        ("DRAW_BONDS", DRAW_BONDS),
        ("DRAW_EXTRAS", DRAW_EXTRAS),
    ] {
        assert_eq!(u32_constant("cull.wgsl", name) as usize, k, "{name}");
    }
    // Quads for impostors, one vertex for points; no instances before culling.
    for k in [DRAW_ATOMS, DRAW_BONDS, DRAW_EXTRAS] {
        assert_eq!(DRAW_ARGS_RESET[4 * k..4 * k + 4], [4, 0, 0, 0]);
    }
    assert_eq!(DRAW_ARGS_RESET[4 * DRAW_POINTS..4 * DRAW_POINTS + 4], [1, 0, 0, 0]);
    // The WGSL DrawArgs is wgpu's DrawIndirectArgs.
    let (size, fields) = wgsl_struct(molstream_viewer::render::shaders::CULL, "DrawArgs");
    assert_eq!(size as usize, std::mem::size_of::<wgpu::util::DrawIndirectArgs>());
    assert_eq!(fields.iter().map(|f| f.1).collect::<Vec<_>>(), [0, 4, 8, 12]);
}
