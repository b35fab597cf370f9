//! # molstream-engine
//!
//! The pure core of molstream: the structure model ([`model`]), PDB/mmCIF loading ([`io`]),
//! bond inference ([`bonds`]) and GPU-ready instance buffers ([`gpu`]).
//!
//! No async, no network, no GPU: this crate depends on none of tokio, quinn, wgpu, winit or
//! egui (checked by `tests/dependency_direction.rs`).
//!
//! ```
//! use molstream_engine::{io, gpu::StructureBuffers};
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/1hvr.pdb");
//! let loaded = io::load_file(path, &io::LoadOptions::default()).unwrap();
//! let counts = loaded.complex.counts();
//! assert_eq!(counts.atom_sites, 1890);
//! let buffers = StructureBuffers::build(loaded.complex.current());
//! assert_eq!(buffers.atoms.len(), 1890);
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod bonds;
pub mod builder;
pub mod codec;
pub mod element;
pub mod gpu;
pub mod ids;
pub mod io;
pub mod model;
pub mod shape;
pub mod style;
pub mod synth;
pub mod templates;
pub mod traj;

pub use element::Element;
pub use ids::{AtomId, BondId, ChainId, ComplexId, ResidueId, StrId};
pub use model::{
    BondKind, ColorScheme, Complex, DisplayState, Model, ModelView, Representation, StructureCounts, Style, Topology,
    Workspace,
};
