//! `molstream-bridge`: lets outside programs drive molstream sessions through JSON-RPC 2.0 over
//! Redis pub/sub and WebSocket. It registers the "External control" plugin with the relay; a
//! session that activates it can be driven by any caller holding the token.
//!
//! ```text
//! molstream-bridge [--redis redis://127.0.0.1:6379/] [--ws-listen 127.0.0.1:8765] [--token T] [relay flags]
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use molstream_bridge::redis::DEFAULT_PREFIX;
use molstream_bridge::{BridgeConfig, DEFAULT_WS, Limits, RedisConfig, default_meta, generate_token, rpc};
use molstream_net::host::HostArgs;

/// Command line.
#[derive(Parser, Debug)]
#[command(name = "molstream-bridge", version, about = "JSON-RPC 2.0 bridge to molstream sessions (Redis, WebSocket)")]
struct Cli {
    /// Relay, key, pin and plugin name (`--name`) flags, as every plugin takes them.
    #[command(flatten)]
    host: HostArgs,
    /// Redis URL for the pub/sub transport (off when not given).
    #[arg(long, env = "MOLSTREAM_BRIDGE_REDIS")]
    redis: Option<String>,
    /// Prefix of the Redis channel names.
    #[arg(long, env = "MOLSTREAM_BRIDGE_REDIS_PREFIX", default_value = DEFAULT_PREFIX)]
    redis_prefix: String,
    /// Address of the WebSocket transport and the web console. Loopback by default: any
    /// other address exposes the sessions to the network (the token still guards them).
    #[arg(long, env = "MOLSTREAM_BRIDGE_WS", default_value = DEFAULT_WS)]
    ws_listen: SocketAddr,
    /// No WebSocket transport (and no console).
    #[arg(long)]
    no_ws: bool,
    /// The token callers must present [default: a random one, printed at start].
    #[arg(long, env = "MOLSTREAM_BRIDGE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Largest request accepted, bytes.
    #[arg(long, default_value_t = rpc::DEFAULT_MAX_MESSAGE)]
    max_request_bytes: usize,
    /// Largest response sent, bytes (larger results are refused with an error).
    #[arg(long, default_value_t = rpc::DEFAULT_MAX_MESSAGE)]
    max_response_bytes: usize,
    /// How long the bridge waits for its caller's answers (e.g. `file.read`), milliseconds.
    #[arg(long, default_value_t = 10_000)]
    caller_timeout_ms: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    cli.host.init_logging();
    if cli.no_ws && cli.redis.is_none() {
        bail!("no transport: give --redis URL, or drop --no-ws");
    }
    let token = match cli.token.clone() {
        Some(t) if !t.is_empty() => t,
        Some(_) => bail!("the token must not be empty"),
        None => generate_token().map_err(|_| anyhow::anyhow!("no random source for a token"))?,
    };
    let mut cfg = BridgeConfig::new(cli.host.config().context("relay configuration")?, token.clone());
    cfg.plugin = cli.host.meta(default_meta());
    cfg.limits = Limits {
        max_request_bytes: cli.max_request_bytes,
        max_response_bytes: cli.max_response_bytes,
        ..Limits::default()
    };
    cfg.caller_timeout = Duration::from_millis(cli.caller_timeout_ms);
    cfg.redis = cli.redis.clone().map(|url| RedisConfig { url, prefix: cli.redis_prefix.clone() });
    cfg.websocket = (!cli.no_ws).then_some(cli.ws_listen);
    let mut bridge = molstream_bridge::start(cfg).await?;
    if cli.token.is_none() {
        println!("token: {token}");
    }
    if let Some(addr) = bridge.websocket_addr() {
        if !addr.ip().is_loopback() {
            eprintln!("warning: the WebSocket listens on {addr}, beyond this machine");
        }
        println!("websocket: ws://{addr}/ws?token=…");
        println!("console: http://{addr}/?token={}", if cli.token.is_none() { token.as_str() } else { "…" });
    }
    if let Some(r) = &cli.redis {
        println!("redis: {r} (channels {}:ROOM:rpc, :events, :calls)", cli.redis_prefix);
    }
    let interrupted = tokio::select! {
        r = bridge.registered() => {
            let id = r.context("registering the bridge plugin")?;
            println!("registered as plugin {} ({})", id.0, cli.host.name.as_deref().unwrap_or(molstream_bridge::PLUGIN_NAME));
            false
        }
        _ = tokio::signal::ctrl_c() => true,
    };
    if !interrupted {
        tokio::signal::ctrl_c().await.context("waiting for ctrl-c")?;
    }
    bridge.shutdown().await?;
    Ok(())
}
