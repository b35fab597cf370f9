//! WGSL sources, composed from the files in `shaders/`.
//!
//! WGSL has no `#include`, so each shader module is a list of files concatenated in order:
//! `instances.wgsl` (the engine's instance layouts, twin of `molstream_engine::gpu`), then
//! `frame.wgsl` (per-frame uniforms and shading), `impostors.wgsl` (ray-cast spheres and
//! cylinders), for shapes `shapes.wgsl` (twin of `molstream_engine::shape`), then the entry
//! points. The same list is what
//! `viewer/tests/wgsl.rs` validates with naga, so a file cannot be used here without being
//! checked there.

/// A shader module: its name and the `shaders/` files it is made of, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShaderModule {
    /// Label of the module (also used in error messages).
    pub name: &'static str,
    /// File names under `shaders/`, concatenated in this order.
    pub files: &'static [&'static str],
}

/// Atom sphere impostors: `vs_atom`, `fs_atom`, `fs_atom_pick`.
/// With level of detail: `vs_atom_listed`, and points: `vs_atom_point`, `fs_atom_point`,
/// `fs_atom_point_pick`.
pub const ATOMS: ShaderModule = ShaderModule {
    name: "atoms",
    files: &["instances.wgsl", "frame.wgsl", "impostors.wgsl", "lists.wgsl", "atoms.wgsl"],
};
/// Bond cylinder impostors: `vs_bond`, `vs_bond_extra`, `fs_bond`, `fs_bond_pick`; with level
/// of detail `vs_bond_listed`, `vs_bond_extra_listed`.
pub const BONDS: ShaderModule = ShaderModule {
    name: "bonds",
    files: &["instances.wgsl", "frame.wgsl", "impostors.wgsl", "lists.wgsl", "bonds.wgsl"],
};
/// The cull pass of level of detail (compute): `cull_atoms`, `cull_bonds`, `cull_extras`.
pub const CULL: ShaderModule = ShaderModule { name: "cull", files: &["instances.wgsl", "frame.wgsl", "cull.wgsl"] };
/// Plugin shapes: `vs_shape_sphere`, `vs_shape_line`, `vs_mesh`, `vs_label` and their
/// fragment stages (`fs_*`, `fs_*_pick`). `shapes.wgsl` is the engine's twin of
/// `molstream_engine::shape`.
pub const SHAPES: ShaderModule = ShaderModule {
    name: "shapes",
    files: &["instances.wgsl", "frame.wgsl", "impostors.wgsl", "shapes.wgsl", "shape_draw.wgsl"],
};
/// Ambient occlusion, outline and output passes: `vs_fullscreen`, `fs_ao`, `fs_composite`.
pub const COMPOSITE: ShaderModule = ShaderModule { name: "composite", files: &["composite.wgsl"] };

/// Every module the renderer builds.
pub const MODULES: [ShaderModule; 5] = [ATOMS, BONDS, SHAPES, CULL, COMPOSITE];

/// The text of one file of `shaders/`, embedded at build time.
#[must_use]
pub fn file(name: &str) -> Option<&'static str> {
    Some(match name {
        "instances.wgsl" => include_str!("../../../shaders/instances.wgsl"),
        "frame.wgsl" => include_str!("../../../shaders/frame.wgsl"),
        "impostors.wgsl" => include_str!("../../../shaders/impostors.wgsl"),
        "lists.wgsl" => include_str!("../../../shaders/lists.wgsl"),
        "cull.wgsl" => include_str!("../../../shaders/cull.wgsl"),
        "shapes.wgsl" => include_str!("../../../shaders/shapes.wgsl"),
        "shape_draw.wgsl" => include_str!("../../../shaders/shape_draw.wgsl"),
        "atoms.wgsl" => include_str!("../../../shaders/atoms.wgsl"),
        "bonds.wgsl" => include_str!("../../../shaders/bonds.wgsl"),
        "composite.wgsl" => include_str!("../../../shaders/composite.wgsl"),
        _ => return None,
    })
}

impl ShaderModule {
    /// The module's WGSL: its files concatenated, each preceded by a comment naming it.
    #[must_use]
    pub fn source(&self) -> String {
        let mut s = String::new();
        for f in self.files {
            s.push_str("// ---- shaders/");
            s.push_str(f);
            s.push('\n');
            // Every name in the lists above is embedded by `file`; a typo fails the naga test.
            s.push_str(file(f).unwrap_or_default());
            s.push('\n');
        }
        s
    }
}
