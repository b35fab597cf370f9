//! The trajectory streamer: on run, adds the trajectory's structure to the session and plays its
//! frames as an atom-position stream at a chosen rate (each frame a delta against the one the
//! users hold; a slow user is coalesced by the relay). Running it again pauses; once more
//! resumes. The source is `adk_oplsaa.xtc` with its topology when the shared data is there,
//! else the bundled 24-model NMR ensemble.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use glam::Vec3;
use molstream_engine::io::{LoadError, LoadOptions, load_bytes, load_file};
use molstream_engine::{AtomId, Complex, ComplexId};
use molstream_net::api::Level;
use molstream_net::host::{
    Plugin, PluginHost, PluginResult, Session, StreamData, StreamError, StreamKind, StreamTarget, WritingStream,
};
use molstream_net::proto::{PluginMeta, UserId};
use tokio::task::JoinHandle;

use crate::NMR_PDB;

/// Where the frames come from.
#[derive(Debug, Clone)]
pub enum TrajectorySource {
    /// An XTC file (GROMACS, nm) and the PDB or mmCIF file of its atoms.
    Xtc {
        /// The structure.
        topology: PathBuf,
        /// The trajectory.
        xtc: PathBuf,
    },
    /// The models of a multi-model PDB or mmCIF file, played as frames.
    Models {
        /// File name (for the complex's name and the format).
        name: String,
        /// The file's bytes.
        bytes: Arc<[u8]>,
    },
}

impl TrajectorySource {
    /// `adk_oplsaa.xtc` from the shared data if it is there, else the bundled NMR ensemble.
    #[must_use]
    pub fn auto() -> Self {
        if let Some(dir) = crate::shared_data() {
            let (topology, xtc) = (dir.join("pdb/adk_oplsaa.pdb"), dir.join("traj/adk_oplsaa.xtc"));
            if topology.is_file() && xtc.is_file() {
                return Self::Xtc { topology, xtc };
            }
        }
        Self::bundled()
    }

    /// The bundled NMR ensemble of neopetrosiamide A.
    #[must_use]
    pub fn bundled() -> Self {
        Self::Models { name: "nmr_neopetrosiamide.pdb".into(), bytes: Arc::from(NMR_PDB) }
    }
}

/// What the streamer plays, and how fast.
#[derive(Debug, Clone)]
pub struct TrajectoryConfig {
    /// The frames.
    pub source: TrajectorySource,
    /// Frames per second.
    pub fps: f32,
    /// Times the trajectory is played (0: until paused).
    pub loops: u32,
}

impl Default for TrajectoryConfig {
    fn default() -> Self {
        Self { source: TrajectorySource::auto(), fps: 20.0, loops: 0 }
    }
}

/// Why a trajectory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TrajectoryError {
    /// The structure file.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The XTC file.
    #[error("{file}: {source}")]
    Xtc {
        /// The file.
        file: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The trajectory's atoms are not the structure's.
    #[error("the trajectory has {frame} atoms per frame, the structure {structure}")]
    AtomCount {
        /// Atoms per frame.
        frame: usize,
        /// Atoms of the structure.
        structure: usize,
    },
    /// Nothing to play.
    #[error("the trajectory has no frame")]
    Empty,
}

/// The structure (its first frame) and every frame's positions in Å.
///
/// # Errors
/// [`TrajectoryError`].
pub fn load_trajectory(source: &TrajectorySource) -> Result<(Complex, Vec<Vec<Vec3>>), TrajectoryError> {
    let opts = LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() };
    let (mut complex, frames) = match source {
        TrajectorySource::Models { name, bytes } => {
            let hint = molstream_engine::io::format_from_name(Path::new(name));
            let mut c = load_bytes(bytes, name, hint, &opts)?.complex;
            c.name = name.rsplit_once('.').map_or(name.as_str(), |(s, _)| s).to_owned();
            let frames: Vec<Vec<Vec3>> = c.models.iter().map(|m| m.positions.clone()).collect();
            (c, frames)
        }
        TrajectorySource::Xtc { topology, xtc } => {
            let c = load_file(topology, &opts)?.complex;
            let file = xtc.display().to_string();
            let err = |source| TrajectoryError::Xtc { file: file.clone(), source };
            let bytes = std::fs::read(xtc).map_err(err)?;
            let mut reader = molly::XTCReader::new(&bytes[..]);
            let mut frame = molly::Frame::default();
            let mut frames = Vec::new();
            while !reader.file.is_empty() {
                reader.read_frame(&mut frame).map_err(err)?;
                frames.push(frame.coords().map(|[x, y, z]| Vec3::new(x, y, z) * 10.0).collect());
            }
            (c, frames)
        }
    };
    let first = frames.first().ok_or(TrajectoryError::Empty)?.clone();
    complex.models.truncate(1);
    complex.current_model = 0;
    let structure = complex.current().topology.atom_count();
    if let Some(f) = frames.iter().find(|f| f.len() != structure) {
        return Err(TrajectoryError::AtomCount { frame: f.len(), structure });
    }
    complex.set_positions(0, first).map_err(|_| TrajectoryError::Empty)?;
    Ok((complex, frames))
}

struct Loaded {
    complex: ComplexId,
    stream: WritingStream,
    frames: Arc<Vec<Vec<Vec3>>>,
    next: usize,
}

/// The plugin: one per room.
pub struct TrajectoryStreamer {
    cfg: Arc<TrajectoryConfig>,
    loaded: Option<Arc<tokio::sync::Mutex<Loaded>>>,
    player: Option<JoinHandle<()>>,
}

impl TrajectoryStreamer {
    /// A streamer of `cfg`'s trajectory.
    #[must_use]
    pub fn new(cfg: Arc<TrajectoryConfig>) -> Self {
        Self { cfg, loaded: None, player: None }
    }
}

/// What the streamer declares.
#[must_use]
pub fn meta() -> PluginMeta {
    PluginMeta {
        name: "Trajectory streamer".into(),
        description: "Plays a trajectory as a position stream (run: play / pause).".into(),
        category: "Simulation".into(),
        tags: vec!["trajectory".into(), "xtc".into(), "stream".into()],
        ..PluginMeta::default()
    }
}

/// Adds the streamer to `host`.
#[must_use]
pub fn register(host: PluginHost, cfg: TrajectoryConfig) -> PluginHost {
    let cfg = Arc::new(cfg);
    host.plugin(meta(), move || TrajectoryStreamer::new(cfg.clone()))
}

async fn play(session: Session, loaded: Arc<tokio::sync::Mutex<Loaded>>, fps: f32, loops: u32) {
    let period = Duration::from_secs_f32(1.0 / fps.clamp(0.1, 1000.0));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut played = 0u64;
    loop {
        tick.tick().await;
        let mut l = loaded.lock().await;
        let n = l.frames.len();
        let i = l.next % n;
        let frames = l.frames.clone();
        match l.stream.update(StreamData::Positions(&frames[i])).await {
            Ok(()) => {}
            Err(StreamError::Interrupted(why)) => {
                let _ = session.notify(Level::Warning, format!("trajectory stopped: {why:?}")).await;
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "trajectory frame not sent");
                return;
            }
        }
        l.next = i + 1;
        played += 1;
        if loops > 0 && played >= u64::from(loops) * n as u64 {
            let _ = session.notify(Level::Success, format!("played {played} frames")).await;
            return;
        }
    }
}

impl Plugin for TrajectoryStreamer {
    async fn on_run(&mut self, session: &Session, _from: UserId) -> PluginResult {
        if let Some(p) = self.player.take()
            && !p.is_finished()
        {
            p.abort();
            session.notify(Level::Info, "trajectory paused").await?;
            return Ok(());
        }
        let loaded = match &self.loaded {
            Some(l) => l.clone(),
            None => {
                let source = self.cfg.source.clone();
                let (complex, frames) = tokio::task::spawn_blocking(move || load_trajectory(&source)).await??;
                let atoms = (0..complex.current().topology.atom_count()).map(|i| AtomId(i as u32)).collect();
                let (name, n_frames, n_atoms) = (complex.name.clone(), frames.len(), complex.current().positions.len());
                let id = session.add_complex(complex).await?;
                session.zoom_on(&[id]).await?;
                let stream = session
                    .create_writing_stream(StreamKind::AtomPosition, StreamTarget::Atoms { complex: id, atoms })
                    .await?;
                let text = format!("playing {name}: {n_frames} frames of {n_atoms} atoms at {} fps", self.cfg.fps);
                session.notify(Level::Info, text).await?;
                let l = Arc::new(tokio::sync::Mutex::new(Loaded {
                    complex: id,
                    stream,
                    frames: Arc::new(frames),
                    next: 1,
                }));
                self.loaded = Some(l.clone());
                l
            }
        };
        self.player = Some(tokio::spawn(play(session.clone(), loaded, self.cfg.fps, self.cfg.loops)));
        Ok(())
    }

    async fn on_complexes_removed(&mut self, _session: &Session, ids: &[ComplexId]) -> PluginResult {
        let gone = match &self.loaded {
            Some(l) => ids.contains(&l.lock().await.complex),
            None => false,
        };
        if gone {
            if let Some(p) = self.player.take() {
                p.abort();
            }
            self.loaded = None;
        }
        Ok(())
    }

    async fn on_stop(&mut self, _session: &Session) -> PluginResult {
        if let Some(p) = self.player.take() {
            p.abort();
        }
        Ok(())
    }
}

impl Drop for TrajectoryStreamer {
    fn drop(&mut self) {
        if let Some(p) = self.player.take() {
            p.abort();
        }
    }
}
