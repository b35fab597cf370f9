//! Measures, in one process over loopback QUIC: the control round trip through the relay
//! (client → relay → plugin instance → relay → client, an integration call), and the latency of
//! position frames of a ~30,000-atom structure from the plugin's `delta()` call to the decoded
//! instance buffer on the client.
//!
//! ```sh
//! cargo run --release -p molstream-net --example relay_latency -- --hz 60 --frames 300
//! cargo run --release -p molstream-net --example relay_latency -- --hz 0 --frames 1000
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use glam::Vec3;
use molstream_engine::Complex;
use molstream_engine::codec::Limits;
use molstream_engine::codec::stream::{FrameReader, StreamDecoder, StreamEncoder};
use molstream_engine::io::{LoadOptions, load_file};
use molstream_net::client::{ClientConfig, SessionClient};
use molstream_net::host::{HostConfig, Plugin, PluginHost, PluginResult, Session};
use molstream_net::proto::{PluginMeta, UserId};
use molstream_net::relay::{RelayConfig, RelayServer};
use molstream_net::tls::{RelayIdentity, TransportSettings, Trust};

#[derive(Parser)]
struct Args {
    /// Frames per second (0: as fast as possible).
    #[arg(long, default_value_t = 60.0)]
    hz: f64,
    /// Position frames to send.
    #[arg(long, default_value_t = 300)]
    frames: u32,
    /// Integration round trips to time.
    #[arg(long, default_value_t = 2000)]
    round_trips: u32,
}

type SentAt = Arc<Mutex<HashMap<u32, Instant>>>;

struct Bench {
    complex: Complex,
    frames: u32,
    hz: f64,
    sent_at: SentAt,
}

impl Plugin for Bench {
    async fn on_integration(&mut self, _s: &Session, _f: UserId, _name: &str, args: Bytes) -> Result<Bytes, String> {
        Ok(args)
    }

    async fn on_run(&mut self, session: &Session, _from: UserId) -> PluginResult {
        let mut channel = session.open_frames(0).await?;
        let mut enc = StreamEncoder::new(1, 2);
        let mut buf = Vec::new();
        enc.keyframe(&self.complex, &mut buf)?;
        channel.send(&buf).await?;
        let mut positions = self.complex.current().positions.to_vec();
        let period = if self.hz > 0.0 { Some(Duration::from_secs_f64(1.0 / self.hz)) } else { None };
        let start = Instant::now();
        for step in 1..=self.frames {
            if let Some(p) = period {
                tokio::time::sleep_until((start + p * step).into()).await;
            }
            for (i, p) in positions.iter_mut().enumerate() {
                let phase = step as f32 * 0.37 + i as f32 * 0.011;
                *p += Vec3::new(phase.sin(), phase.cos(), (phase * 1.3).sin()) * 0.02;
            }
            let t = Instant::now();
            buf.clear();
            let h = enc.delta(&positions, &mut buf)?;
            if let Ok(mut m) = self.sent_at.lock() {
                m.insert(h.seq, t);
            }
            channel.send(&buf).await?;
        }
        Ok(())
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/1hvr.pdb");
    let loaded = load_file(path, &LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() })?;
    let c = loaded.complex;
    let (topology, positions) =
        molstream_engine::synth::tile(c.current().topology, c.current().positions, [4, 2, 2], 5.0);
    let complex = Complex::single("bench", topology, positions);
    let atoms = complex.current().positions.len();

    let (identity, _, _) = RelayIdentity::generate()?;
    let cfg = RelayConfig { plugin_key: "bench".into(), ..RelayConfig::default() };
    let relay = RelayServer::start(cfg, &identity, "127.0.0.1:0".parse()?, &TransportSettings::default())?;
    let trust = Trust::Pinned(relay.fingerprint());
    let sent_at: SentAt = Arc::new(Mutex::new(HashMap::new()));
    let (frames, hz, s) = (args.frames, args.hz, sent_at.clone());
    let host = PluginHost::new(HostConfig::new(relay.local_addr(), trust, "bench"))
        .plugin(PluginMeta { name: "Bench".into(), ..PluginMeta::default() }, move || Bench {
            complex: complex.clone(),
            frames,
            hz,
            sent_at: s.clone(),
        })
        .spawn();
    let mut client = SessionClient::connect(ClientConfig::new(relay.local_addr(), trust, "bench", "me")).await?;
    let plugin = client.wait_for_plugin("Bench").await?;
    let instance = client.activate(plugin).await?;

    // Control round trips through the relay and the plugin instance.
    let mut rtt = Vec::with_capacity(args.round_trips as usize);
    for i in 0..args.round_trips {
        let t = Instant::now();
        let echoed = client.integration(instance, "echo", Bytes::copy_from_slice(&i.to_le_bytes())).await?;
        rtt.push(t.elapsed().as_secs_f64() * 1e6);
        assert_eq!(&echoed[..], &i.to_le_bytes());
    }
    rtt.sort_by(f64::total_cmp);

    // Position frames: from `delta()` to the decoded instance buffer.
    client.run(instance).await?;
    let mut stream = client.accept_frames().await?;
    let mut reader = FrameReader::new(Limits::default());
    let mut decoder = StreamDecoder::new(Limits::default());
    let mut buffer = Vec::new();
    let mut lat = Vec::with_capacity(args.frames as usize);
    let mut received = 0u32;
    let mut wire = 0usize;
    let start = Instant::now();
    while received < args.frames {
        let Some((_, bytes)) = stream.next(&Limits::default()).await? else { break };
        reader.push_bytes(&bytes);
        while let Some(frame) = reader.try_read()? {
            decoder.apply(&frame, &mut buffer)?;
            let done = Instant::now();
            if frame.header.kind == molstream_engine::codec::FrameKind::PositionDelta {
                received += 1;
                wire += bytes.len();
                if let Some(t) = sent_at.lock().ok().and_then(|mut m| m.remove(&frame.header.seq)) {
                    lat.push(done.duration_since(t).as_secs_f64() * 1e6);
                }
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    println!(
        "{{\"atoms\": {atoms}, \"hz\": {}, \"frames_received\": {received}, \"frames_per_s\": {:.0}, \
         \"p50_us\": {:.0}, \"p99_us\": {:.0}, \"max_us\": {:.0}, \"wire_bytes_per_atom\": {:.3}, \
         \"control_rtt_p50_us\": {:.0}, \"control_rtt_p99_us\": {:.0}}}",
        args.hz,
        f64::from(received) / elapsed,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(0.0),
        wire as f64 / (f64::from(received.max(1)) * atoms as f64),
        percentile(&rtt, 0.5),
        percentile(&rtt, 0.99),
    );
    client.close();
    host.shutdown().await?;
    relay.shutdown().await;
    Ok(())
}
