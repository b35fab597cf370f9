//! The `molstream-relay` binary: first start creates the certificate and plugin key in the
//! config directory and prints the fingerprint; a restart keeps both; hosts pinning the printed
//! fingerprint and presenting the stored key are welcomed; `--insecure-local` refuses a
//! non-loopback listen address.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use molstream_net::conn::{self, Control};
use molstream_net::proto::Role;
use molstream_net::tls::{self, TransportSettings, Trust};

struct Running {
    child: Child,
    addr: std::net::SocketAddr,
    fingerprint: String,
    stdout: Vec<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(config: &Path, extra: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_molstream-relay"))
        .args(["--listen", "127.0.0.1:0", "--config-dir"])
        .arg(config)
        .args(extra)
        .env_remove("MOLSTREAM_KEY")
        .env_remove("MOLSTREAM_CONFIG_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stdout = Vec::new();
    let mut addr = None;
    let mut fingerprint = None;
    while addr.is_none() || fingerprint.is_none() {
        let line = rx.recv_timeout(Duration::from_secs(20)).expect("relay prints its address and fingerprint");
        if let Some(a) = line.strip_prefix("listening on ") {
            addr = Some(a.parse().unwrap());
        }
        if let Some(f) = line.strip_prefix("certificate SHA-256: ") {
            fingerprint = Some(f.to_owned());
        }
        stdout.push(line);
    }
    Running { child, addr: addr.unwrap(), fingerprint: fingerprint.unwrap(), stdout }
}

async fn host_handshake(r: &Running, key: &str) -> Result<(), String> {
    let endpoint = conn::client_endpoint(r.addr).unwrap();
    let trust = Trust::Pinned(tls::parse_fingerprint(&r.fingerprint).unwrap());
    let c = conn::connect(&endpoint, r.addr, trust, &TransportSettings::default()).await.map_err(|e| e.to_string())?;
    let mut control = Control::open(&c).await.map_err(|e| e.to_string())?;
    let res = control.handshake(Role::PluginHost { key: key.into(), host: "cli-test".into() }).await;
    res.map(|_| ()).map_err(|e| e.relay_reason().map_or_else(|| e.to_string(), str::to_owned))
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("molstream-relay-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[tokio::test]
async fn first_start_creates_identity_and_key_and_restart_keeps_them() {
    let dir = temp_dir("persist");
    let first = start(&dir, &[]);
    assert!(first.stdout.iter().any(|l| l.starts_with("created a certificate")), "{:?}", first.stdout);
    assert!(first.stdout.iter().any(|l| l.starts_with("created a plugin key")), "{:?}", first.stdout);
    assert_eq!(first.fingerprint.len(), 64);
    let key = std::fs::read_to_string(dir.join("plugin-key")).unwrap().trim().to_owned();
    assert_eq!(key.len(), 32);
    host_handshake(&first, &key).await.unwrap();
    assert_eq!(host_handshake(&first, "not-the-key").await.unwrap_err(), "wrong plugin key");
    let fp = first.fingerprint.clone();
    drop(first);

    let second = start(&dir, &[]);
    assert_eq!(second.fingerprint, fp, "the certificate is kept across restarts");
    assert!(!second.stdout.iter().any(|l| l.starts_with("created")), "{:?}", second.stdout);
    host_handshake(&second, &key).await.unwrap();
    drop(second);

    // --key as a file path or a literal overrides the stored key.
    let key_file = dir.join("other-key");
    std::fs::write(&key_file, "from-a-file\n").unwrap();
    let third = start(&dir, &["--key", key_file.to_str().unwrap()]);
    host_handshake(&third, "from-a-file").await.unwrap();
    assert_eq!(host_handshake(&third, &key).await.unwrap_err(), "wrong plugin key");
    drop(third);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn insecure_local_refuses_a_public_listen_address_and_writes_nothing() {
    let dir = temp_dir("insecure");
    let out = Command::new(env!("CARGO_BIN_EXE_molstream-relay"))
        .args(["--insecure-local", "--listen", "0.0.0.0:0", "--config-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback only"));
    assert!(!dir.exists());
}
