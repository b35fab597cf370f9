//! The structure loader: on run, loads its files (PDB or mmCIF, plain or gzip; the bundled 1hvr
//! when it has none) into the session and points the cameras at them. Its integration
//! `structure.load` loads a file named in the request.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use molstream_engine::ComplexId;
use molstream_net::api::Level;
use molstream_net::host::{Plugin, PluginHost, PluginResult, Session, SessionError};
use molstream_net::proto::{PluginMeta, UserId};

use crate::HVR_PDB;

/// What the loader loads.
#[derive(Debug, Clone, Default)]
pub struct LoaderConfig {
    /// Files loaded on run (the bundled 1hvr when empty).
    pub files: Vec<PathBuf>,
}

/// The plugin: one per room.
#[derive(Debug, Clone)]
pub struct StructureLoader {
    cfg: Arc<LoaderConfig>,
}

impl StructureLoader {
    /// A loader of `cfg`'s files.
    #[must_use]
    pub fn new(cfg: LoaderConfig) -> Self {
        Self { cfg: Arc::new(cfg) }
    }
}

/// What the loader declares.
#[must_use]
pub fn meta() -> PluginMeta {
    PluginMeta {
        name: "Structure loader".into(),
        description: "Loads PDB and mmCIF files into the session.".into(),
        category: "Files".into(),
        tags: vec!["pdb".into(), "mmcif".into(), "load".into()],
        has_advanced_settings: false,
        integrations: vec!["structure.load".into()],
    }
}

/// Adds the loader to `host`.
#[must_use]
pub fn register(host: PluginHost, cfg: LoaderConfig) -> PluginHost {
    let loader = StructureLoader::new(cfg);
    host.plugin(meta(), move || loader.clone())
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// Loads one file; a file that is no structure is reported to the room, not fatal.
async fn load_one(session: &Session, path: &Path) -> Result<Option<ComplexId>, SessionError> {
    let owned = path.to_path_buf();
    let read = tokio::task::spawn_blocking(move || std::fs::read(owned)).await;
    let bytes = match read.unwrap_or_else(|e| Err(std::io::Error::other(e))) {
        Ok(b) => b,
        Err(e) => {
            session.notify(Level::Error, format!("cannot read {}: {e}", path.display())).await?;
            return Ok(None);
        }
    };
    match session.load_file(&file_name(path), &bytes).await {
        Ok(id) => Ok(Some(id)),
        Err(SessionError::Load(e)) => {
            session.notify(Level::Error, e.to_string()).await?;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

impl Plugin for StructureLoader {
    async fn on_run(&mut self, session: &Session, _from: UserId) -> PluginResult {
        let mut ids = Vec::new();
        if self.cfg.files.is_empty() {
            ids.push(session.load_file("1hvr.pdb", HVR_PDB).await?);
        }
        for f in &self.cfg.files {
            if let Some(id) = load_one(session, f).await? {
                ids.push(id);
            }
        }
        if ids.is_empty() {
            return Ok(());
        }
        session.zoom_on(&ids).await?;
        let list = session.request_complexes_shallow(&ids).await?;
        let names: Vec<String> =
            list.into_iter().flatten().map(|c| format!("{} ({} atoms)", c.name, c.atoms)).collect();
        session.notify(Level::Success, format!("loaded {}", names.join(", "))).await?;
        Ok(())
    }

    async fn on_integration(
        &mut self,
        session: &Session,
        _from: UserId,
        name: &str,
        args: Bytes,
    ) -> Result<Bytes, String> {
        if name != "structure.load" {
            return Err(format!("integration {name:?} is not supported"));
        }
        let path = PathBuf::from(String::from_utf8_lossy(&args).into_owned());
        match load_one(session, &path).await {
            Ok(Some(id)) => Ok(Bytes::from(id.0.to_string())),
            Ok(None) => Err(format!("{} was not loaded", path.display())),
            Err(e) => Err(e.to_string()),
        }
    }
}
