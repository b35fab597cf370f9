//! `molstream-bench stream`: position frames from a plugin instance through the relay to a
//! session client over loopback QUIC, beside the same frames over a plain TCP socket, all in one
//! run.
//!
//! ```text
//! molstream-bench stream [--atoms N] [--hz H] [--seconds S] [--sessions K] [--relay-process]
//!                        [--no-plan-reuse] [--json]
//! ```
//!
//! Everything runs in this process (relay, plugin host, K instances, K session clients) unless
//! `--relay-process` puts the relay in a child process (this binary again), whose memory is then
//! reported alone. The structure is the bundled 1hvr tiled to at least N atoms; each instance
//! plays a precomputed random walk (0.05 Å per step) as position deltas at H frames per second
//! (0: as fast as it can), answering the relay's keyframe requests for lagging users. The
//! encoders reuse their position plan between deltas (`StreamEncoder::reuse_plan`);
//! `--no-plan-reuse` makes every delta search its own, as the encoder did before, so both can
//! be compared with one build on the same machine.
//!
//! Figures:
//! - `p50_us`, `p99_us`, `max_us`: from the instance's `update()` (just before the frame is
//!   encoded) to the frame decoded into the client's instance buffer, over every frame every
//!   client received;
//! - `frames_sent` (deltas and requested keyframes, all instances), `frames_received`,
//!   `frames_coalesced` (sent but never received: dropped for a lagging client and replaced by a
//!   later keyframe), `keyframes_sent`, `frames_per_s` (received, all clients);
//! - `wire_bytes_per_atom`: bytes of the frames received per frame per atom;
//! - `encode_p50_us`, `decode_p50_us`: the codec's share of the latency (encoding in the
//!   instance, decoding in the client);
//! - `control_rtt_p50_us`, `control_rtt_p99_us`: an integration call (client → relay → instance
//!   → relay → client) with a 4-byte payload;
//! - the baseline, measured in the same run after the QUIC part: the same frames, produced the
//!   same way at the same rate, over plain TCP loopback sockets with no relay, one per session
//!   (`tcp_p50_us`, `tcp_p99_us`, `tcp_max_us`, `tcp_frames_per_s`) and a 4-byte TCP ping-pong
//!   (`tcp_rtt_p50_us`, `tcp_rtt_p99_us`);
//! - `rss_before_mb` (set up, before streaming), `rss_after_mb`, `rss_peak_mb` (VmHWM) of the
//!   relay's process, and `load_avg_1m` of the machine when the run started.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Args;
use glam::Vec3;
use molstream_engine::codec::stream::{FrameReader, StreamDecoder, StreamEncoder};
use molstream_engine::codec::{FrameKind, Limits};
use molstream_engine::io::{Format, LoadOptions, load_bytes};
use molstream_engine::{Complex, synth};
use molstream_net::client::{ClientConfig, SessionClient};
use molstream_net::host::{HostConfig, Plugin, PluginHost, PluginResult, Session};
use molstream_net::proto::{PluginMeta, UserId};
use molstream_net::relay::{RelayConfig, RelayServer};
use molstream_net::tls::{RelayIdentity, TransportSettings, Trust};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::{TILE_PDB, round};

/// Arguments of `stream`.
#[derive(Args, Debug)]
pub struct StreamArgs {
    /// Atoms per structure (the bundled 1hvr tiled to at least this many).
    #[arg(long, default_value_t = 30_000)]
    atoms: usize,
    /// Frames per second per instance; 0 sends as fast as possible.
    #[arg(long, default_value_t = 60.0)]
    hz: f64,
    /// Seconds of streaming.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Rooms, each with its own instance and client.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    sessions: u32,
    /// Control round trips to time (in the first room, before streaming).
    #[arg(long, default_value_t = 2000)]
    round_trips: u32,
    /// Run the relay in a child process and report its memory alone.
    #[arg(long)]
    relay_process: bool,
    /// The relay's late-join delta budget per channel, MiB (its default: 16).
    #[arg(long, default_value_t = 16)]
    relay_delta_chain_mb: usize,
    /// The relay's frame queue per user and channel, MiB (its default: 16).
    #[arg(long, default_value_t = 16)]
    relay_queue_mb: usize,
    /// Search the position plan on every delta (the encoder before plan reuse), for
    /// before/after comparisons in one build.
    #[arg(long)]
    no_plan_reuse: bool,
    /// Print exactly one JSON object.
    #[arg(long)]
    json: bool,
}

/// Arguments of the hidden `stream-relay` subcommand (the relay of `--relay-process`).
#[derive(Args, Debug)]
pub struct RelayArgs {
    /// Plugin key.
    #[arg(long)]
    key: String,
    /// Late-join delta budget per channel, MiB.
    #[arg(long, default_value_t = 16)]
    delta_chain_mb: usize,
    /// Frame queue per user and channel, MiB.
    #[arg(long, default_value_t = 16)]
    queue_mb: usize,
}

fn relay_config(key: &str, delta_chain_mb: usize, queue_mb: usize) -> RelayConfig {
    RelayConfig {
        plugin_key: key.into(),
        max_delta_chain_bytes: delta_chain_mb << 20,
        max_queued_frame_bytes: queue_mb << 20,
        ..RelayConfig::default()
    }
}

const KEY: &str = "molstream-bench";
/// Random-walk frames each instance cycles through.
const WALK_FRAMES: usize = 64;

/// What every instance and client of the run share.
struct Shared {
    complex: Complex,
    /// Encoders reuse the position plan between deltas (`--no-plan-reuse` turns it off).
    plan_reuse: bool,
    walk: Vec<Vec<Vec3>>,
    hz: f64,
    seconds: f64,
    rooms: Vec<RoomStats>,
}

#[derive(Default)]
struct RoomStats {
    sent_at: Mutex<HashMap<u32, Instant>>,
    encode_us: Mutex<Vec<f64>>,
    sent: AtomicU64,
    keyframes: AtomicU64,
    last_seq: AtomicU32,
    done: AtomicBool,
    keyframe_wanted: AtomicBool,
}

fn room_name(i: usize) -> String {
    format!("bench-{i}")
}

struct Streamer {
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Plugin for Streamer {
    async fn on_integration(&mut self, _s: &Session, _f: UserId, _name: &str, args: Bytes) -> Result<Bytes, String> {
        Ok(args)
    }

    async fn on_run(&mut self, session: &Session, _from: UserId) -> PluginResult {
        let idx: usize = session.room().trim_start_matches("bench-").parse()?;
        let (shared, session) = (self.shared.clone(), session.clone());
        self.task = Some(tokio::spawn(async move {
            if let Err(e) = stream_positions(&shared, &session, idx).await {
                eprintln!("instance of room {idx}: {e}");
            }
            shared.rooms[idx].done.store(true, Ordering::SeqCst);
        }));
        Ok(())
    }

    async fn on_keyframe_wanted(&mut self, session: &Session, _channel: u32) -> PluginResult {
        let idx: usize = session.room().trim_start_matches("bench-").parse()?;
        self.shared.rooms[idx].keyframe_wanted.store(true, Ordering::SeqCst);
        Ok(())
    }
}

/// The sender's clock: frame `step` at `start + step / hz` until `seconds` have passed, or as
/// fast as possible with `--hz 0`. Shared by the relay path and the TCP baseline.
struct Pace {
    start: Instant,
    end: Instant,
    period: Option<Duration>,
}

impl Pace {
    fn new(shared: &Shared) -> Self {
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(shared.seconds);
        Self { start, end, period: (shared.hz > 0.0).then(|| Duration::from_secs_f64(1.0 / shared.hz)) }
    }

    /// Waits until frame `step` is due; `false` once the run is over.
    async fn wait(&self, step: u32) -> bool {
        match self.period {
            Some(p) => {
                let at = self.start + p * step;
                if at > self.end {
                    return false;
                }
                tokio::time::sleep_until(at.into()).await;
                true
            }
            None => Instant::now() <= self.end,
        }
    }
}

/// The instance's loop: an untimed first keyframe, then a frame per period until the end.
async fn stream_positions(shared: &Shared, session: &Session, idx: usize) -> Result<()> {
    let stats = &shared.rooms[idx];
    let mut channel = session.open_frames(0).await?;
    let mut enc = StreamEncoder::new(1, 2);
    enc.reuse_plan = shared.plan_reuse;
    let mut complex = shared.complex.clone();
    let mut buf = Vec::new();
    enc.keyframe(&complex, &mut buf)?;
    channel.send(&buf).await?;
    let pace = Pace::new(shared);
    for step in 1u32.. {
        if !pace.wait(step).await {
            break;
        }
        let positions = &shared.walk[step as usize % shared.walk.len()];
        buf.clear();
        let t = Instant::now();
        let header = if stats.keyframe_wanted.swap(false, Ordering::SeqCst) {
            complex.set_positions(0, positions.clone()).map_err(anyhow::Error::msg)?;
            stats.keyframes.fetch_add(1, Ordering::Relaxed);
            enc.keyframe(&complex, &mut buf)?
        } else {
            enc.delta(positions, &mut buf)?
        };
        let encoded = t.elapsed().as_secs_f64() * 1e6;
        if let Ok(mut v) = stats.encode_us.lock() {
            v.push(encoded);
        }
        if let Ok(mut m) = stats.sent_at.lock() {
            m.insert(header.seq, t);
        }
        channel.send(&buf).await?;
        stats.sent.fetch_add(1, Ordering::Relaxed);
        stats.last_seq.store(header.seq, Ordering::SeqCst);
    }
    Ok(())
}

/// What one client measured.
#[derive(Default)]
struct Received {
    latencies_us: Vec<f64>,
    decode_us: Vec<f64>,
    frames: u64,
    bytes: u64,
    decode_errors: u64,
}

/// Reads one room's frames until its instance is done and the last frame arrived (or 3 s
/// after it is done).
async fn receive(
    client: SessionClient,
    instance: molstream_net::proto::InstanceId,
    shared: Arc<Shared>,
    idx: usize,
) -> Result<Received> {
    let stats = &shared.rooms[idx];
    let limits = Limits::default();
    let mut stream =
        tokio::time::timeout(Duration::from_secs(30), client.accept_frames()).await.context("no frame stream")??;
    let mut reader = FrameReader::new(limits);
    let mut decoder = StreamDecoder::new(limits);
    let mut atoms = Vec::new();
    let mut out = Received::default();
    let mut done_at: Option<Instant> = None;
    let mut last_seq = None;
    loop {
        // `next` is not cancel-safe (a frame half read would be lost): it is only abandoned
        // when the run is over.
        let next = {
            let fut = stream.next(&limits);
            tokio::pin!(fut);
            loop {
                tokio::select! {
                    r = &mut fut => break Some(r?),
                    () = tokio::time::sleep(Duration::from_millis(100)) => {
                        if finished(stats, &mut done_at, last_seq) {
                            break None;
                        }
                    }
                }
            }
        };
        let Some(Some((_, bytes))) = next else { break };
        reader.push_bytes(&bytes);
        while let Some(frame) = reader.try_read()? {
            let t_apply = Instant::now();
            let applied = decoder.apply(&frame, &mut atoms);
            out.decode_us.push(t_apply.elapsed().as_secs_f64() * 1e6);
            if applied.is_err() {
                out.decode_errors += 1;
                client.keyframe_wanted(instance, 0).await.ok();
                continue;
            }
            let done = Instant::now();
            let seq = frame.header.seq;
            let sent = stats.sent_at.lock().ok().and_then(|mut m| m.remove(&seq));
            if let Some(t) = sent {
                out.latencies_us.push(done.duration_since(t).as_secs_f64() * 1e6);
                out.frames += 1;
                out.bytes += bytes.len() as u64;
                last_seq = Some(seq);
            } else if frame.header.kind != FrameKind::Keyframe {
                last_seq = Some(seq);
            }
        }
        if finished(stats, &mut done_at, last_seq) {
            break;
        }
    }
    client.close();
    Ok(out)
}

/// Whether a room's instance is done and its last frame arrived (or 3 s went by since).
fn finished(stats: &RoomStats, done_at: &mut Option<Instant>, last_seq: Option<u32>) -> bool {
    if !stats.done.load(Ordering::SeqCst) {
        return false;
    }
    let at = *done_at.get_or_insert_with(Instant::now);
    last_seq == Some(stats.last_seq.load(Ordering::SeqCst)) || at.elapsed() > Duration::from_secs(3)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `VmRSS` and `VmHWM` of a process in MiB.
fn memory_mb(pid: Option<u32>) -> (f64, f64) {
    let path = pid.map_or_else(|| "/proc/self/status".to_owned(), |p| format!("/proc/{p}/status"));
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn load_avg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

fn structure(atoms: usize) -> Result<Complex> {
    let tile = load_bytes(
        TILE_PDB,
        "1hvr.pdb",
        Some(Format::Pdb),
        &LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() },
    )
    .context("loading the bundled 1hvr")?;
    let m = tile.complex.current();
    let copies = atoms.div_ceil(m.positions.len().max(1));
    // A row of copies: the atom count is the smallest multiple of 1890 at or above `atoms`.
    let copies = u32::try_from(copies).context("--atoms too large")?;
    let (topology, positions) = synth::tile(m.topology, m.positions, [copies, 1, 1], 5.0);
    Ok(Complex::single("bench", topology, positions))
}

/// Where the relay runs.
enum Relay {
    InProcess(RelayServer),
    Child(tokio::process::Child),
}

async fn start_relay(args: &StreamArgs) -> Result<(Relay, std::net::SocketAddr, [u8; 32])> {
    if !args.relay_process {
        let (identity, _, _) = RelayIdentity::generate()?;
        let cfg = relay_config(KEY, args.relay_delta_chain_mb, args.relay_queue_mb);
        let relay = RelayServer::start(cfg, &identity, "127.0.0.1:0".parse()?, &TransportSettings::default())?;
        let (addr, fp) = (relay.local_addr(), relay.fingerprint());
        return Ok((Relay::InProcess(relay), addr, fp));
    }
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["stream-relay", "--key", KEY])
        .arg(format!("--delta-chain-mb={}", args.relay_delta_chain_mb))
        .arg(format!("--queue-mb={}", args.relay_queue_mb))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("relay stdout")?;
    let mut line = String::new();
    tokio::io::BufReader::new(stdout).read_line(&mut line).await?;
    let mut parts = line.split_whitespace();
    let addr = parts.next().context("relay address")?.parse()?;
    let fp = molstream_net::tls::parse_fingerprint(parts.next().context("relay fingerprint")?)?;
    Ok((Relay::Child(child), addr, fp))
}

/// The hidden `stream-relay` subcommand: a relay on an ephemeral loopback port that prints its
/// address and fingerprint and runs until stdin closes.
pub fn run_relay(args: &RelayArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let (identity, _, _) = RelayIdentity::generate()?;
        let cfg = relay_config(&args.key, args.delta_chain_mb, args.queue_mb);
        let relay = RelayServer::start(cfg, &identity, "127.0.0.1:0".parse()?, &TransportSettings::default())?;
        println!("{} {}", relay.local_addr(), molstream_net::tls::hex(&relay.fingerprint()));
        tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink())).await??;
        relay.shutdown().await;
        Ok(())
    })
}

/// The same frames over plain TCP: `streams` producer/consumer pairs (one per session), same
/// rate and duration. Returns every latency and the frames per second received in all.
async fn tcp_baseline(shared: &Arc<Shared>, streams: usize) -> Result<(Vec<f64>, f64)> {
    let pairs: Vec<_> = (0..streams).map(|_| tokio::spawn(tcp_pair(shared.clone()))).collect();
    let mut lat = Vec::new();
    let mut longest = 0f64;
    for p in pairs {
        let (l, elapsed) = p.await??;
        lat.extend(l);
        longest = longest.max(elapsed);
    }
    #[allow(clippy::cast_precision_loss)]
    let fps = lat.len() as f64 / longest.max(1e-9);
    Ok((lat, fps))
}

/// One TCP producer/consumer pair: latencies, and the seconds the consumer read.
async fn tcp_pair(shared: Arc<Shared>) -> Result<(Vec<f64>, f64)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let sent_at: Arc<Mutex<HashMap<u32, Instant>>> = Arc::default();
    let producer = {
        let (shared, sent_at) = (shared.clone(), sent_at.clone());
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await?;
            sock.set_nodelay(true)?;
            let mut enc = StreamEncoder::new(1, 2);
            enc.reuse_plan = shared.plan_reuse;
            let mut buf = Vec::new();
            enc.keyframe(&shared.complex, &mut buf)?;
            sock.write_all(&buf).await?;
            let pace = Pace::new(&shared);
            for step in 1u32.. {
                if !pace.wait(step).await {
                    break;
                }
                buf.clear();
                let t = Instant::now();
                let h = enc.delta(&shared.walk[step as usize % shared.walk.len()], &mut buf)?;
                if let Ok(mut m) = sent_at.lock() {
                    m.insert(h.seq, t);
                }
                sock.write_all(&buf).await?;
            }
            sock.shutdown().await?;
            anyhow::Ok(())
        })
    };
    let mut sock = TcpStream::connect(addr).await?;
    sock.set_nodelay(true)?;
    let limits = Limits::default();
    let mut reader = FrameReader::new(limits);
    let mut decoder = StreamDecoder::new(limits);
    let mut atoms = Vec::new();
    let mut lat = Vec::new();
    let mut chunk = vec![0u8; 1 << 20];
    let start = Instant::now();
    loop {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        reader.push_bytes(&chunk[..n]);
        while let Some(frame) = reader.try_read()? {
            decoder.apply(&frame, &mut atoms)?;
            let t_done = Instant::now();
            if let Some(t) = sent_at.lock().ok().and_then(|mut m| m.remove(&frame.header.seq)) {
                lat.push(t_done.duration_since(t).as_secs_f64() * 1e6);
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    producer.await??;
    Ok((lat, elapsed))
}

/// A 4-byte TCP ping-pong, `n` times.
async fn tcp_rtt(n: u32) -> Result<Vec<f64>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let echo = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await?;
        sock.set_nodelay(true)?;
        let mut b = [0u8; 4];
        while sock.read_exact(&mut b).await.is_ok() {
            sock.write_all(&b).await?;
        }
        anyhow::Ok(())
    });
    let mut sock = TcpStream::connect(addr).await?;
    sock.set_nodelay(true)?;
    let mut out = Vec::with_capacity(n as usize);
    let mut b = [0u8; 4];
    for i in 0..n {
        let t = Instant::now();
        sock.write_all(&i.to_le_bytes()).await?;
        sock.read_exact(&mut b).await?;
        out.push(t.elapsed().as_secs_f64() * 1e6);
    }
    drop(sock);
    echo.await??;
    out.sort_by(f64::total_cmp);
    Ok(out)
}

/// Runs `stream`.
pub fn run(args: &StreamArgs) -> Result<()> {
    if !(args.hz >= 0.0 && args.hz.is_finite() && args.seconds > 0.0 && args.seconds.is_finite()) {
        bail!("--hz must be ≥ 0 and --seconds > 0");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run_async(args))
}

#[allow(clippy::too_many_lines)]
async fn run_async(args: &StreamArgs) -> Result<()> {
    let load = load_avg();
    let complex = structure(args.atoms)?;
    let atoms = complex.current().positions.len();
    let walk = synth::random_walk(complex.current().positions, WALK_FRAMES, 0.05, 0x51f1_5eed);
    let sessions = args.sessions as usize;
    let shared = Arc::new(Shared {
        complex,
        plan_reuse: !args.no_plan_reuse,
        walk,
        hz: args.hz,
        seconds: args.seconds,
        rooms: (0..sessions).map(|_| RoomStats::default()).collect(),
    });

    let (relay, addr, fp) = start_relay(args).await?;
    let relay_pid = match &relay {
        Relay::Child(c) => c.id(),
        Relay::InProcess(_) => None,
    };
    let trust = Trust::Pinned(fp);
    let factory_shared = shared.clone();
    let mut host = PluginHost::new(HostConfig::new(addr, trust, KEY))
        .plugin(PluginMeta { name: "Stream bench".into(), ..PluginMeta::default() }, move || Streamer {
            shared: factory_shared.clone(),
            task: None,
        })
        .spawn();
    host.registered().await?;

    let mut clients = Vec::with_capacity(sessions);
    for i in 0..sessions {
        let mut c = SessionClient::connect(ClientConfig::new(addr, trust, room_name(i), "bench")).await?;
        let plugin = c.wait_for_plugin("Stream bench").await?;
        let instance = c.activate(plugin).await?;
        clients.push((c, instance));
    }

    // Control round trips through relay and instance.
    let mut rtt = Vec::with_capacity(args.round_trips as usize);
    if let Some((c, instance)) = clients.first_mut() {
        for i in 0..args.round_trips {
            let t = Instant::now();
            let echoed = c.integration(*instance, "echo", Bytes::copy_from_slice(&i.to_le_bytes())).await?;
            rtt.push(t.elapsed().as_secs_f64() * 1e6);
            if echoed[..] != i.to_le_bytes() {
                bail!("integration echo mismatch");
            }
        }
    }
    rtt.sort_by(f64::total_cmp);

    let (rss_before, _) = memory_mb(relay_pid);
    let started = Instant::now();
    let mut readers = Vec::with_capacity(sessions);
    for (i, (c, instance)) in clients.into_iter().enumerate() {
        c.run(instance).await?;
        readers.push(tokio::spawn(receive(c, instance, shared.clone(), i)));
    }
    let mut lat = Vec::new();
    let mut decode_us = Vec::new();
    let (mut received, mut bytes, mut decode_errors) = (0u64, 0u64, 0u64);
    for r in readers {
        let r = r.await??;
        lat.extend(r.latencies_us);
        decode_us.extend(r.decode_us);
        received += r.frames;
        bytes += r.bytes;
        decode_errors += r.decode_errors;
    }
    let elapsed = started.elapsed().as_secs_f64().min(args.seconds + 3.0);
    let (rss_after, rss_peak) = memory_mb(relay_pid);
    lat.sort_by(f64::total_cmp);
    decode_us.sort_by(f64::total_cmp);
    let mut encode_us: Vec<f64> =
        shared.rooms.iter().flat_map(|r| r.encode_us.lock().map(|v| v.clone()).unwrap_or_default()).collect();
    encode_us.sort_by(f64::total_cmp);
    let sent: u64 = shared.rooms.iter().map(|r| r.sent.load(Ordering::Relaxed)).sum();
    let keyframes: u64 = shared.rooms.iter().map(|r| r.keyframes.load(Ordering::Relaxed)).sum();
    host.shutdown().await?;
    match relay {
        Relay::InProcess(r) => r.shutdown().await,
        Relay::Child(mut c) => {
            drop(c.stdin.take());
            let _ = tokio::time::timeout(Duration::from_secs(5), c.wait()).await;
        }
    }

    // Baselines in the same run.
    let (mut tcp_lat, tcp_fps) = tcp_baseline(&shared, sessions).await?;
    tcp_lat.sort_by(f64::total_cmp);
    let tcp_rtt = tcp_rtt(args.round_trips).await?;

    #[allow(clippy::cast_precision_loss)]
    let (fps, per_atom) = (received as f64 / elapsed, bytes as f64 / (received.max(1) as f64 * atoms as f64));
    let out = json!({
        "atoms": atoms,
        "hz": args.hz,
        "seconds": args.seconds,
        "sessions": sessions,
        "relay_process": args.relay_process,
        "relay_delta_chain_mb": args.relay_delta_chain_mb,
        "relay_queue_mb": args.relay_queue_mb,
        "load_avg_1m": load,
        "plan_reuse": !args.no_plan_reuse,
        "frames_sent": sent,
        "frames_received": received,
        "frames_coalesced": sent.saturating_sub(received),
        "keyframes_sent": keyframes,
        "decode_errors": decode_errors,
        "frames_per_s": round(fps, 1),
        "p50_us": round(percentile(&lat, 0.5), 0),
        "p99_us": round(percentile(&lat, 0.99), 0),
        "max_us": round(lat.last().copied().unwrap_or(f64::NAN), 0),
        "wire_bytes_per_atom": round(per_atom, 3),
        "encode_p50_us": round(percentile(&encode_us, 0.5), 0),
        "decode_p50_us": round(percentile(&decode_us, 0.5), 0),
        "control_rtt_p50_us": round(percentile(&rtt, 0.5), 0),
        "control_rtt_p99_us": round(percentile(&rtt, 0.99), 0),
        "tcp_p50_us": round(percentile(&tcp_lat, 0.5), 0),
        "tcp_p99_us": round(percentile(&tcp_lat, 0.99), 0),
        "tcp_max_us": round(tcp_lat.last().copied().unwrap_or(f64::NAN), 0),
        "tcp_frames_per_s": round(tcp_fps, 1),
        "tcp_rtt_p50_us": round(percentile(&tcp_rtt, 0.5), 0),
        "tcp_rtt_p99_us": round(percentile(&tcp_rtt, 0.99), 0),
        "rss_before_mb": round(rss_before, 1),
        "rss_after_mb": round(rss_after, 1),
        "rss_peak_mb": round(rss_peak, 1),
    });
    if args.json {
        println!("{out}");
    } else {
        let who = if args.relay_process { "relay process" } else { "whole process" };
        println!(
            "{atoms} atoms, {} Hz, {} s, {sessions} session(s), plan reuse {}; load {load:.2}",
            args.hz, args.seconds, !args.no_plan_reuse
        );
        println!(
            "QUIC via relay: p50 {} µs, p99 {} µs, max {} µs; {received}/{sent} frames ({} coalesced, {keyframes} keyframes), {fps:.0} frames/s, {per_atom:.3} B/atom",
            out["p50_us"], out["p99_us"], out["max_us"], out["frames_coalesced"]
        );
        println!("codec share: encode p50 {} µs, decode p50 {} µs", out["encode_p50_us"], out["decode_p50_us"]);
        println!(
            "plain TCP:      p50 {} µs, p99 {} µs, max {} µs; {tcp_fps:.0} frames/s",
            out["tcp_p50_us"], out["tcp_p99_us"], out["tcp_max_us"]
        );
        println!(
            "control round trip: relay p50 {} µs p99 {} µs; TCP p50 {} µs p99 {} µs",
            out["control_rtt_p50_us"], out["control_rtt_p99_us"], out["tcp_rtt_p50_us"], out["tcp_rtt_p99_us"]
        );
        println!("memory ({who}): {rss_before:.1} MiB before, {rss_after:.1} MiB after, {rss_peak:.1} MiB peak");
    }
    Ok(())
}
