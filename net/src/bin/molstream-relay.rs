//! `molstream-relay`: the QUIC relay between molstream plugin hosts and session clients.
//!
//! On first start it creates a self-signed certificate and a plugin key in the config
//! directory, and prints the certificate's SHA-256 fingerprint, which clients and plugin hosts
//! pin with `--relay-cert-sha256` (or `MOLSTREAM_RELAY_CERT_SHA256`).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Parser;
use molstream_net::relay::{RelayConfig, RelayServer};
use molstream_net::tls::{self, RelayIdentity, TransportSettings};

/// The molstream relay: routes plugin instances and session clients over QUIC.
#[derive(Debug, Parser)]
#[command(name = "molstream-relay", version)]
struct Args {
    /// Address to listen on (UDP). Use 0.0.0.0:4433 to accept other machines.
    #[arg(long, default_value = "127.0.0.1:4433")]
    listen: SocketAddr,
    /// Directory holding the certificate, its key and the plugin key
    /// [default: $XDG_CONFIG_HOME/molstream or ~/.config/molstream].
    #[arg(long, env = "MOLSTREAM_CONFIG_DIR")]
    config_dir: Option<PathBuf>,
    /// Plugin key hosts must present: a literal, or the path of a file holding it
    /// [default: the `plugin-key` file of the config directory, created on first start].
    #[arg(long, env = "MOLSTREAM_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Development on loopback: a throw-away certificate (nothing written to the config
    /// directory), and only a loopback --listen address is allowed.
    #[arg(long)]
    insecure_local: bool,
    /// Keep a room's plugin instances when its presenter leaves (default: stop them).
    #[arg(long)]
    keep_instances_on_handover: bool,
    /// Seconds without hearing from a peer before its connection is dropped.
    #[arg(long, default_value_t = 30)]
    idle_timeout: u64,
    /// More logging (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("molstream_net={level},warn")));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// A random plugin key: 32 hex digits (128 bits) from the system RNG.
fn random_key() -> anyhow::Result<String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| anyhow::anyhow!("system random generator failed"))?;
    Ok(tls::hex(&bytes))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(args.verbose);
    let config_dir = args.config_dir.clone().unwrap_or_else(tls::default_config_dir);
    let (identity, key) = if args.insecure_local {
        if !args.listen.ip().is_loopback() {
            bail!("--insecure-local listens on loopback only, not {}", args.listen);
        }
        let (identity, _, _) = RelayIdentity::generate()?;
        let key = match &args.key {
            Some(k) => tls::resolve_key(k)?,
            None => random_key()?,
        };
        println!("insecure-local: throw-away certificate; plugin key for this run: {key}");
        (identity, key)
    } else {
        let (identity, created) = RelayIdentity::load_or_create(&config_dir)
            .with_context(|| format!("relay certificate in {}", config_dir.display()))?;
        if created {
            println!("created a certificate in {}", config_dir.display());
        }
        let key = match &args.key {
            Some(k) => tls::resolve_key(k)?,
            None => {
                let path = config_dir.join("plugin-key");
                if path.is_file() {
                    tls::resolve_key(&path.to_string_lossy())?
                } else {
                    let key = random_key()?;
                    tls::write_private(&path, format!("{key}\n").as_bytes())?;
                    println!("created a plugin key in {} (give it to plugin hosts with --key)", path.display());
                    key
                }
            }
        };
        (identity, key)
    };
    if key.is_empty() {
        bail!("the plugin key is empty");
    }
    let cfg = RelayConfig {
        plugin_key: key,
        stop_instances_when_presenter_leaves: !args.keep_instances_on_handover,
        ..RelayConfig::default()
    };
    let transport = TransportSettings {
        idle_timeout: std::time::Duration::from_secs(args.idle_timeout.max(1)),
        ..TransportSettings::default()
    };
    let server = RelayServer::start(cfg, &identity, args.listen, &transport)?;
    println!("listening on {}", server.local_addr());
    println!("certificate SHA-256: {}", identity.fingerprint_hex());
    println!("clients and plugin hosts: --relay-cert-sha256 {}", identity.fingerprint_hex());
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    println!("shutting down");
    server.shutdown().await;
    Ok(())
}
