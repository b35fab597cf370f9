//! Measures the plugin instance API over loopback QUIC through an embedded relay (run with
//! `--release`): a request to the presenter and back (`request_complex_list`), adding a complex
//! (ids from the presenter, keyframe, the presenter's acknowledgement), asking for it whole
//! (deep, on an uplink), and a writing stream's update of every atom until the presenter's
//! client applied it. `cargo run --release -p molstream-net --example api_latency [-- ATOMS]`

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use glam::Vec3;
use molstream_engine::io::{LoadOptions, load_file};
use molstream_engine::{AtomId, Complex};
use molstream_net::client::{ClientConfig, SessionClient};
use molstream_net::host::{
    HostConfig, Plugin, PluginHost, PluginResult, Session, StreamData, StreamKind, StreamTarget,
};
use molstream_net::proto::PluginMeta;
use molstream_net::relay::{RelayConfig, RelayServer};
use molstream_net::tls::{RelayIdentity, TransportSettings, Trust};

struct Hand(Arc<Mutex<Option<Session>>>);

impl Plugin for Hand {
    async fn on_start(&mut self, session: &Session) -> PluginResult {
        if let Ok(mut s) = self.0.lock() {
            *s = Some(session.clone());
        }
        Ok(())
    }
}

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort();
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e6;
    format!("p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs (n = {})", p(0.5), p(0.99), p(1.0), v.len())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let want: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(30_000);
    let (identity, _, _) = RelayIdentity::generate()?;
    let cfg = RelayConfig { plugin_key: "k".into(), ..RelayConfig::default() };
    let relay = RelayServer::start(cfg, &identity, "127.0.0.1:0".parse()?, &TransportSettings::default())?;
    let trust = Trust::Pinned(relay.fingerprint());
    let slot = Arc::new(Mutex::new(None));
    let s2 = slot.clone();
    let mut host = PluginHost::new(HostConfig::new(relay.local_addr(), trust, "k"))
        .plugin(PluginMeta { name: "Hand".into(), ..PluginMeta::default() }, move || Hand(s2.clone()))
        .spawn();
    host.registered().await?;
    let mut ada =
        SessionClient::connect(ClientConfig::new(relay.local_addr(), trust, "lab", "ada").with_scene()).await?;
    let plugin = ada.wait_for_plugin("Hand").await?;
    ada.activate(plugin).await?;
    let s = loop {
        if let Some(s) = slot.lock().ok().and_then(|s| s.clone()) {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/1hvr.pdb");
    let c = load_file(path, &LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() })?.complex;
    let k = (want as f64 / 1890.0).cbrt().ceil() as u32;
    let (t, p) = molstream_engine::synth::tile(c.current().topology, c.current().positions, [k, k, k], 5.0);
    let n = p.len();
    let complex = Complex::single("tiled", t, p.clone());

    let mut rtt = Vec::new();
    for _ in 0..200 {
        let t0 = Instant::now();
        s.request_complex_list().await?;
        rtt.push(t0.elapsed());
    }
    println!("request_complex_list (instance → presenter → instance): {}", percentiles(rtt));

    let mut adds = Vec::new();
    let mut id = None;
    for _ in 0..5 {
        let t0 = Instant::now();
        id = Some(s.add_complex(complex.clone()).await?);
        adds.push(t0.elapsed());
    }
    let id = id.ok_or("no id")?;
    println!("add_complex of {n} atoms (ids, keyframe, presenter applied): {}", percentiles(adds));

    let mut deep = Vec::new();
    for _ in 0..10 {
        let t0 = Instant::now();
        s.request_complex(id).await?;
        deep.push(t0.elapsed());
    }
    println!("request_complex of {n} atoms (deep, keyframe on an uplink): {}", percentiles(deep));

    let atoms: Vec<AtomId> = (0..n).map(|i| AtomId(i as u32)).collect();
    let stream = s.create_writing_stream(StreamKind::AtomPosition, StreamTarget::Atoms { complex: id, atoms }).await?;
    let mut pos = p;
    let mut lat = Vec::new();
    for step in 0..300 {
        for (i, x) in pos.iter_mut().enumerate() {
            let ph = step as f32 * 0.37 + i as f32 * 0.011;
            *x += Vec3::new(ph.sin(), ph.cos(), (ph * 1.3).sin()) * 0.05;
        }
        let frames_before = ada.with_scene(|sc| sc.scene_complex(id).map_or(0, |c| c.frames)).unwrap_or(0);
        let t0 = Instant::now();
        stream.update(StreamData::Positions(&pos)).await?;
        ada.wait_for(Duration::from_secs(10), |sc| (sc.scene_complex(id)?.frames > frames_before).then_some(()))
            .await?;
        lat.push(t0.elapsed());
    }
    println!("writing stream update of {n} atoms → applied in the presenter's scene: {}", percentiles(lat));
    drop(ada);
    host.shutdown().await?;
    relay.shutdown().await;
    Ok(())
}
