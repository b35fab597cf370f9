//! The minimizer as a plugin host: `minimizer [--max-steps N] [--stream-every N] [host flags]`.

use clap::Parser;
use molstream_net::host::{HostArgs, PluginHost};
use molstream_plugins::minimizer::{self, MinimizerConfig};

/// Steepest-descent minimization (integrations `minimization.start`, `minimization.stop`).
#[derive(Debug, Parser)]
struct Args {
    /// Most steps of one minimization.
    #[arg(long, default_value_t = 500)]
    max_steps: u32,
    /// Positions are streamed every this many steps.
    #[arg(long, default_value_t = 5)]
    stream_every: u32,
    #[command(flatten)]
    host: HostArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.host.init_logging();
    let cfg = MinimizerConfig { max_steps: args.max_steps, stream_every: args.stream_every };
    minimizer::register(PluginHost::new(args.host.config()?), cfg).run().await?;
    Ok(())
}
