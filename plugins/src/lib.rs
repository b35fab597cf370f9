//! # molstream-plugins
//!
//! Example plugins built on the plugin SDK of `molstream-net`, each runnable as a binary and
//! embeddable in-process (the viewer starts them next to an embedded relay):
//!
//! | module | plugin | what it does |
//! |---|---|---|
//! | [`loader`] | Structure loader | loads PDB/mmCIF files (the bundled 1hvr by default) into the session |
//! | [`trajectory`] | Trajectory streamer | plays `adk_oplsaa.xtc` (when the shared data is there) or the bundled NMR ensemble as a position stream |
//! | [`shapes_demo`] | Shapes demo | spheres on ligand atoms, dashed lines for hydrogen bonds found by distance, labels, a box mesh |
//! | [`menu_demo`] | Menu demo | a menu with every element kind (labels, buttons, slider, text input, dropdown, list, image, loading bar) and every kind of update |
//! | [`minimizer`] | Minimizer | a steepest-descent "minimization" integration that streams positions while it runs |
//!
//! Each module has a plugin type, its settings, `meta()` and `register(host, settings)`, which
//! adds the plugin to a [`PluginHost`]:
//!
//! ```no_run
//! use molstream_net::host::{HostConfig, PluginHost};
//! # async fn run(cfg: HostConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let host = molstream_plugins::register_all(PluginHost::new(cfg)).spawn();
//! # Ok(()) }
//! ```

use std::path::PathBuf;

use molstream_net::host::PluginHost;

pub mod loader;
pub mod menu_demo;
pub mod minimizer;
pub mod shapes_demo;
pub mod trajectory;

/// The bundled 1HVR (HIV-1 protease with an inhibitor), PDB.
pub const HVR_PDB: &[u8] = include_bytes!("../assets/1hvr.pdb");
/// The bundled NMR ensemble of neopetrosiamide A (24 models), PDB.
pub const NMR_PDB: &[u8] = include_bytes!("../assets/nmr_neopetrosiamide.pdb");

/// Adds every example plugin, with default settings, to `host`.
#[must_use]
pub fn register_all(host: PluginHost) -> PluginHost {
    let host = loader::register(host, loader::LoaderConfig::default());
    let host = trajectory::register(host, trajectory::TrajectoryConfig::default());
    let host = shapes_demo::register(host);
    let host = menu_demo::register(host);
    minimizer::register(host, minimizer::MinimizerConfig::default())
}

/// The shared data directory (`pdb/`, `traj/`, …): `$MOLSTREAM_SHARED_DATA`, else
/// `../shared/data` from the working directory, else from the repository root; `None` if
/// none exists.
#[must_use]
pub fn shared_data() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("MOLSTREAM_SHARED_DATA").map(PathBuf::from),
        Some(PathBuf::from("../shared/data")),
        Some(PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data"))),
    ];
    candidates.into_iter().flatten().find(|p| p.is_dir())
}
