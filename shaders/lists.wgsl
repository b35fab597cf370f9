// Draw lists written by the cull pass (cull.wgsl) and read by the level-of-detail pipelines:
// group 1 of `vs_atom_listed`, `vs_atom_point`, `vs_bond_listed` and `vs_bond_extra_listed`.
// Composed into the atom and bond modules after frame.wgsl.
//
// `atom_list` holds the atoms drawn as impostors from its start and those drawn as points from
// its end (`atom_list[len - 1 - k]` is point k), so one buffer of one entry per atom serves both.

@group(1) @binding(1) var<storage, read> atom_list: array<u32>;
@group(1) @binding(2) var<storage, read> bond_list: array<u32>;
@group(1) @binding(3) var<storage, read> extra_list: array<u32>;
