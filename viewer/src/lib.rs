//! # molstream-viewer
//!
//! The `molstream` command: today `inspect` (structure statistics, as text or JSON); the wgpu
//! desktop viewer and headless renderer build on this crate.

pub mod inspect;

/// The structure bundled into the binary (PDB entry 1HVR, HIV-1 protease with an inhibitor),
/// shown when `molstream` runs without a file.
pub const BUNDLED_STRUCTURE: &[u8] = include_bytes!("../../assets/1hvr.pdb");
/// File name reported for [`BUNDLED_STRUCTURE`].
pub const BUNDLED_NAME: &str = "assets/1hvr.pdb";
