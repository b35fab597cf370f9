//! `molstream-bench bridge`: round-trip latency of small JSON-RPC calls through the bridge, over
//! Redis pub/sub and over WebSocket, next to the same call made directly with the SDK, all in
//! one run.
//!
//! ```text
//! molstream-bench bridge [--calls N] [--warmup W] [--json]
//! ```
//!
//! Everything runs in this process except `redis-server` (started on a free loopback port with
//! no persistence, stopped at the end): a relay, the bridge (plugin host, Redis and WebSocket
//! transports), and a presenter's session client keeping the room's scene. Each figure is N
//! sequential calls by one caller after W unmeasured ones:
//!
//! - `sdk_presenter_info`: `Session::presenter_info()` called directly on the bridge's
//!   instance: instance → relay → presenter's client → relay → instance (the baseline);
//! - `websocket.presenter_info`, `redis.presenter_info`: the same call as a JSON-RPC request
//!   (`presenter.info`) from a [`BridgeClient`]: the baseline plus the transport, JSON and the
//!   bridge's dispatch;
//! - `websocket.session_info`, `redis.session_info`: a call the bridge answers without the
//!   relay (`session.info`): the transport's share alone. Over Redis each call subscribes to a
//!   fresh response channel, publishes, awaits and unsubscribes (the request/response-channel
//!   pattern), three Redis round trips.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use molstream_bridge::{BridgeClient, BridgeConfig, RedisConfig};
use molstream_net::client::{ClientConfig, SessionClient};
use molstream_net::host::HostConfig;
use molstream_net::relay::{RelayConfig, RelayServer};
use molstream_net::tls::{RelayIdentity, TransportSettings, Trust};
use serde_json::{Value, json};

use crate::round;

/// Arguments of `bridge`.
#[derive(Args, Debug)]
pub struct BridgeArgs {
    /// Calls measured per figure.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(10..))]
    calls: u32,
    /// Unmeasured calls before each figure.
    #[arg(long, default_value_t = 200)]
    warmup: u32,
    /// Print exactly one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

const KEY: &str = "bench-key";
const TOKEN: &str = "bench-token";
const ROOM: &str = "bench";
const PREFIX: &str = "molstream:bench";

/// A `redis-server` of the benchmark's own, stopped on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server (install the Debian package `redis-server`)")?;
        let r = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(c) = redis::Client::open(r.url())
                && let Ok(mut conn) = c.get_connection()
                && redis::cmd("PING").query::<String>(&mut conn).is_ok()
            {
                return Ok(r);
            }
            if Instant::now() > deadline {
                bail!("redis-server did not answer on port {port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// p50, p99, mean and min of latencies in µs.
fn summary(mut us: Vec<f64>) -> Value {
    us.sort_by(f64::total_cmp);
    #[allow(clippy::cast_precision_loss)]
    let mean = us.iter().sum::<f64>() / us.len().max(1) as f64;
    json!({
        "p50_us": round(percentile(&us, 0.5), 1),
        "p99_us": round(percentile(&us, 0.99), 1),
        "mean_us": round(mean, 1),
        "min_us": round(us.first().copied().unwrap_or(f64::NAN), 1),
    })
}

/// Times `calls` sequential runs of `f` after `warmup` unmeasured ones.
async fn time<F, Fut>(warmup: u32, calls: u32, mut f: F) -> Result<Value>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    for _ in 0..warmup {
        f().await?;
    }
    let mut us = Vec::with_capacity(calls as usize);
    for _ in 0..calls {
        let t = Instant::now();
        f().await?;
        us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok(summary(us))
}

async fn call(c: &BridgeClient, method: &str) -> Result<()> {
    c.call(method, json!({})).await.with_context(|| format!("{method} through the bridge"))?;
    Ok(())
}

/// Runs `bridge`.
///
/// # Errors
/// Setup failures (no `redis-server`, a relay that does not start), failed calls.
pub fn run(args: &BridgeArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run_async(args))
}

async fn run_async(args: &BridgeArgs) -> Result<()> {
    let redis = Redis::start()?;
    let (identity, _, _) = RelayIdentity::generate()?;
    let relay = RelayServer::start(
        RelayConfig { plugin_key: KEY.into(), ..RelayConfig::default() },
        &identity,
        "127.0.0.1:0".parse()?,
        &TransportSettings::default(),
    )?;
    let trust = Trust::Pinned(relay.fingerprint());
    let mut cfg = BridgeConfig::new(HostConfig::new(relay.local_addr(), trust, KEY), TOKEN);
    cfg.redis = Some(RedisConfig { url: redis.url(), prefix: PREFIX.into() });
    cfg.websocket = Some("127.0.0.1:0".parse()?);
    let mut bridge = molstream_bridge::start(cfg).await?;
    bridge.registered().await?;
    let mut ada =
        SessionClient::connect(ClientConfig::new(relay.local_addr(), trust, ROOM, "ada").with_scene()).await?;
    let plugin = ada.wait_for_plugin(molstream_bridge::PLUGIN_NAME).await?;
    ada.activate(plugin).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let session = loop {
        if let Some(s) = bridge.session(ROOM) {
            break s;
        }
        if Instant::now() > deadline {
            bail!("the bridge's instance did not start");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    bridge.redis_ready(ROOM, Duration::from_secs(30)).await.map_err(|()| anyhow::anyhow!("redis not subscribed"))?;
    let ws_addr = bridge.websocket_addr().context("no websocket")?;
    let ws = BridgeClient::websocket(ws_addr, Some(ROOM), TOKEN).await?;
    let rd = BridgeClient::redis(&redis.url(), PREFIX, ROOM, TOKEN).await?;

    let (w, n) = (args.warmup, args.calls);
    let sdk = time(w, n, || async { session.presenter_info().await.map(|_| ()).map_err(Into::into) }).await?;
    let ws_local = time(w, n, || call(&ws, "session.info")).await?;
    let ws_presenter = time(w, n, || call(&ws, "presenter.info")).await?;
    let rd_local = time(w, n, || call(&rd, "session.info")).await?;
    let rd_presenter = time(w, n, || call(&rd, "presenter.info")).await?;

    let over =
        |v: &Value| round(v["p50_us"].as_f64().unwrap_or(f64::NAN) - sdk["p50_us"].as_f64().unwrap_or(f64::NAN), 1);
    let out = json!({
        "calls": n,
        "warmup": w,
        "load_avg_1m": std::fs::read_to_string("/proc/loadavg").ok()
            .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse::<f64>().ok())),
        "sdk_presenter_info": sdk,
        "websocket": { "presenter_info": ws_presenter, "session_info": ws_local },
        "redis": { "presenter_info": rd_presenter, "session_info": rd_local },
        "overhead_p50_us": { "websocket": over(&ws_presenter), "redis": over(&rd_presenter) },
    });
    if args.json {
        println!("{out}");
    } else {
        let line = |name: &str, v: &Value| {
            println!("{name:<34} p50 {:>8} µs   p99 {:>8} µs   mean {:>8} µs", v["p50_us"], v["p99_us"], v["mean_us"]);
        };
        println!("{n} sequential calls each, after {w} warm-up calls");
        line("SDK presenter_info (baseline)", &out["sdk_presenter_info"]);
        line("WebSocket presenter.info", &out["websocket"]["presenter_info"]);
        line("Redis presenter.info", &out["redis"]["presenter_info"]);
        line("WebSocket session.info (no relay)", &out["websocket"]["session_info"]);
        line("Redis session.info (no relay)", &out["redis"]["session_info"]);
    }
    drop((ws, rd, ada));
    bridge.shutdown().await?;
    relay.shutdown().await;
    drop(redis);
    Ok(())
}
