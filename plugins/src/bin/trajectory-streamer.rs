//! The trajectory streamer as a plugin host:
//! `trajectory-streamer [--xtc FILE --topology FILE | --models FILE] [--fps N] [host flags]`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use molstream_net::host::{HostArgs, PluginHost};
use molstream_plugins::trajectory::{self, TrajectoryConfig, TrajectorySource};

/// Plays a trajectory as a position stream: adk_oplsaa.xtc from the shared data when present,
/// else the bundled NMR ensemble.
#[derive(Debug, Parser)]
struct Args {
    /// An XTC trajectory (with --topology).
    #[arg(long, requires = "topology")]
    xtc: Option<PathBuf>,
    /// The PDB or mmCIF file of the XTC's atoms.
    #[arg(long)]
    topology: Option<PathBuf>,
    /// A multi-model PDB or mmCIF file whose models are played as frames.
    #[arg(long, conflicts_with = "xtc")]
    models: Option<PathBuf>,
    /// Frames per second.
    #[arg(long, default_value_t = 20.0)]
    fps: f32,
    /// Times to play the trajectory (0: until paused).
    #[arg(long, default_value_t = 0)]
    loops: u32,
    #[command(flatten)]
    host: HostArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.host.init_logging();
    let source = match (args.xtc, args.topology, args.models) {
        (Some(xtc), Some(topology), _) => TrajectorySource::Xtc { topology, xtc },
        (_, _, Some(file)) => TrajectorySource::Models {
            name: file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            bytes: Arc::from(std::fs::read(&file)?),
        },
        _ => TrajectorySource::auto(),
    };
    let cfg = TrajectoryConfig { source, fps: args.fps, loops: args.loops };
    trajectory::register(PluginHost::new(args.host.config()?), cfg).run().await?;
    Ok(())
}
