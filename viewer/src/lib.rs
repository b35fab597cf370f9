//! # molstream-viewer
//!
//! The `molstream` command: `inspect` (structure statistics, as text or JSON), `render`
//! (headless rendering to PNG) and `view` (the desktop window, [`app`], with its panels in
//! [`ui`] over the documents of [`workspace`]), and the wgpu renderer ([`render`]) they draw
//! with. In a session (`molstream` alone: an embedded relay with the bundled plugins; or
//! `view --relay`), [`live`] runs the session client on a background runtime and [`session`]
//! turns the room's scene into renderer updates. [`testing`] is the same client headless, for
//! plugin authors' tests.

pub mod app;
pub mod inspect;
pub mod live;
pub mod render;
pub mod session;
pub mod testing;
pub mod ui;
pub mod workspace;

/// The structure bundled into the binary (PDB entry 1HVR, HIV-1 protease with an inhibitor),
/// shown when `molstream` runs without a file.
pub const BUNDLED_STRUCTURE: &[u8] = include_bytes!("../../assets/1hvr.pdb");
/// File name reported for [`BUNDLED_STRUCTURE`].
pub const BUNDLED_NAME: &str = "assets/1hvr.pdb";
