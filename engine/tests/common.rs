//! Shared test helpers (included with `mod common;`).
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::PathBuf;

/// The repository's `assets/` directory.
pub fn assets() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets")
}

/// `../shared/data` next to the repository, when this machine has it.
pub fn shared_data() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("note: {} not present; shared-data checks skipped", p.display());
        None
    }
}
