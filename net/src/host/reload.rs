//! `--auto-reload`: restart the plugin when its files change, while sessions stay up.
//!
//! With auto-reload on, `PluginHost::run` becomes a small supervisor that never connects to the
//! relay itself. It runs the real host as a child process (this binary again, same arguments,
//! with [`RELOAD_CHILD_ENV`] set and the resolved relay address, key, pin and host name in the
//! `MOLSTREAM_*` variables), polls the modification times and sizes of the watched files (every
//! [`ReloadConfig::interval`]), and when they change and have settled:
//!
//! 1. runs the rebuild command, if any (under `cargo run`: `cargo build` of this very binary,
//!    same package, profile and target); if it fails, the running plugin is kept;
//! 2. stops the child host gracefully (its stdin is closed: it closes its relay connection, so
//!    the relay stops its instances with `PluginStopped` at once; after 5 s it is killed);
//! 3. starts the new binary, which registers the same plugins under the same identity (plugin
//!    name + host name), so the relay gives them the same ids and sessions can activate and run
//!    them again.
//!
//! Polling needs no platform notification API and costs a few `stat` calls per interval; the
//! walk skips hidden entries and `target/` and stops at 20,000 files.
//!
//! The supervisor itself registers nothing: with `PluginHost::spawn`, its handle's
//! `registered()` does not complete (the child hosts register; watch the relay's plugin list).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::watch;

use super::{HostConfig, HostError, Isolation, STOP_GRACE};
use crate::tls::Trust;

/// Set (to `1`) in the environment of the child host a reload supervisor runs.
pub const RELOAD_CHILD_ENV: &str = "MOLSTREAM_RELOAD_CHILD";
/// Most files one snapshot looks at.
const MAX_WATCHED_FILES: usize = 20_000;

/// What to watch and how to rebuild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadConfig {
    /// Files and directories (walked recursively) whose changes restart the plugin. The running
    /// executable is always watched too.
    pub watch: Vec<PathBuf>,
    /// Run before each restart; a failure keeps the running plugin.
    pub rebuild: Option<Rebuild>,
    /// How often the files are looked at.
    pub interval: Duration,
}

/// A rebuild command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebuild {
    /// A command line run with `sh -c`.
    Shell(String),
    /// A program and its arguments.
    Program {
        /// The program.
        program: PathBuf,
        /// Its arguments.
        args: Vec<String>,
    },
}

impl ReloadConfig {
    /// Watching `paths` (and the executable), no rebuild, polling every 500 ms.
    #[must_use]
    pub fn watching(paths: impl IntoIterator<Item = PathBuf>) -> Self {
        Self { watch: paths.into_iter().collect(), rebuild: None, interval: Duration::from_millis(500) }
    }

    /// From the `--watch` and `--rebuild` flags. Under `cargo run` (`CARGO`,
    /// `CARGO_MANIFEST_DIR` and `CARGO_PKG_NAME` set) the crate's `src/`, `examples/` and
    /// `Cargo.toml` are watched too, and without `--rebuild` the binary is rebuilt with cargo.
    #[must_use]
    pub fn from_flags(watch: &[PathBuf], rebuild: Option<&str>) -> Self {
        let mut cfg = Self::watching(watch.iter().cloned());
        let cargo = cargo_context();
        if let Some(c) = &cargo {
            for sub in ["src", "examples", "Cargo.toml"] {
                let p = c.manifest_dir.join(sub);
                if p.exists() {
                    cfg.watch.push(p);
                }
            }
        }
        cfg.rebuild = match (rebuild, cargo) {
            (Some(cmd), _) => Some(Rebuild::Shell(cmd.to_owned())),
            (None, Some(c)) => std::env::current_exe().ok().and_then(|exe| cargo_rebuild(&c, &exe)),
            (None, None) => None,
        };
        cfg
    }
}

struct CargoContext {
    cargo: PathBuf,
    manifest_dir: PathBuf,
    package: String,
}

fn cargo_context() -> Option<CargoContext> {
    Some(CargoContext {
        cargo: std::env::var_os("CARGO")?.into(),
        manifest_dir: std::env::var_os("CARGO_MANIFEST_DIR")?.into(),
        package: std::env::var("CARGO_PKG_NAME").ok()?,
    })
}

/// `cargo build -p PACKAGE [--profile P] (--bin NAME | --example NAME)` for an executable at
/// `…/<profile dir>/[examples/]NAME`.
fn cargo_rebuild(c: &CargoContext, exe: &Path) -> Option<Rebuild> {
    let name = exe.file_stem()?.to_str()?.to_owned();
    let parent = exe.parent()?;
    let (kind, profile_dir) = if parent.file_name()? == "examples" {
        ("--example", parent.parent()?.file_name()?.to_str()?)
    } else {
        ("--bin", parent.file_name()?.to_str()?)
    };
    let mut args = vec!["build".to_owned(), "-p".to_owned(), c.package.clone()];
    match profile_dir {
        "debug" => {}
        "release" => args.push("--release".to_owned()),
        other => args.extend(["--profile".to_owned(), other.to_owned()]),
    }
    args.extend([kind.to_owned(), name]);
    Some(Rebuild::Program { program: c.cargo.clone(), args })
}

/// Whether this process is the child host of a reload supervisor.
#[must_use]
pub fn is_reload_child() -> bool {
    std::env::var_os(RELOAD_CHILD_ENV).is_some()
}

/// A receiver that turns true when `shutdown` does or when stdin ends (the supervisor closed
/// it: time to stop).
pub(super) fn stop_on_stdin_eof(mut shutdown: watch::Receiver<bool>) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    let (eof_tx, eof_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = eof_tx.send(());
    });
    tokio::spawn(async move {
        tokio::select! {
            () = async {
                let _ = shutdown.wait_for(|s| *s).await;
            } => {}
            _ = eof_rx => tracing::info!("the reload supervisor asked this host to stop"),
        }
        let _ = tx.send(true);
    });
    rx
}

/// Modification time and size of each watched file.
type Snapshot = BTreeMap<PathBuf, (Option<SystemTime>, u64)>;

fn snapshot(paths: &[PathBuf]) -> Snapshot {
    let mut out = Snapshot::new();
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(p) = stack.pop() {
        if out.len() >= MAX_WATCHED_FILES {
            break;
        }
        let Ok(meta) = std::fs::metadata(&p) else { continue };
        if meta.is_dir() {
            let Ok(entries) = std::fs::read_dir(&p) else { continue };
            for e in entries.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if !name.starts_with('.') && name != "target" {
                    stack.push(e.path());
                }
            }
        } else {
            out.insert(p, (meta.modified().ok(), meta.len()));
        }
    }
    out
}

fn changed(a: &Snapshot, b: &Snapshot) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = a.iter().filter(|(p, v)| b.get(*p) != Some(v)).map(|(p, _)| p.clone()).collect();
    out.extend(b.keys().filter(|p| !a.contains_key(*p)).cloned());
    out
}

/// A running child host and its stdin (kept apart: `Child::wait` would close it).
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
}

fn start_child(exe: &Path, cfg: &HostConfig) -> Result<Running, HostError> {
    let mut cmd = Command::new(exe);
    cmd.args(std::env::args_os().skip(1))
        .env(RELOAD_CHILD_ENV, "1")
        .env("MOLSTREAM_RELAY", cfg.relay.to_string())
        .env("MOLSTREAM_KEY", &cfg.key)
        .env("MOLSTREAM_HOST_NAME", &cfg.host_name)
        .env(
            "MOLSTREAM_ISOLATION",
            match cfg.isolation {
                Isolation::Task => "task",
                Isolation::Process => "process",
            },
        )
        .stdin(std::process::Stdio::piped())
        .kill_on_drop(true);
    match cfg.trust {
        Trust::Pinned(fp) => cmd.env("MOLSTREAM_RELAY_CERT_SHA256", crate::tls::hex(&fp)),
        Trust::InsecureLocal => cmd.env("MOLSTREAM_INSECURE_LOCAL", "1"),
    };
    let mut child = cmd.spawn().map_err(|e| HostError::Config(format!("cannot start {}: {e}", exe.display())))?;
    tracing::info!(pid = child.id(), "plugin host started");
    let stdin = child.stdin.take();
    Ok(Running { child, stdin })
}

/// Closes the child's stdin (it stops and closes its relay connection), waits, then kills.
async fn stop_child(running: Running) {
    let Running { mut child, stdin } = running;
    drop(stdin);
    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(_) => {}
        Err(_) => {
            tracing::warn!("plugin host did not stop in time; killing it");
            let _ = child.kill().await;
        }
    }
}

async fn rebuild(r: &Rebuild) -> bool {
    let mut cmd = match r {
        Rebuild::Shell(line) => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(line);
            c
        }
        Rebuild::Program { program, args } => {
            let mut c = Command::new(program);
            c.args(args);
            c
        }
    };
    tracing::info!(command = ?r, "rebuilding");
    match cmd.stdin(std::process::Stdio::null()).status().await {
        Ok(s) if s.success() => true,
        Ok(s) => {
            tracing::error!(status = %s, "rebuild failed; keeping the running plugin");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot run the rebuild command; keeping the running plugin");
            false
        }
    }
}

/// Runs the reload supervisor until `shutdown`.
pub(super) async fn supervise(
    cfg: &HostConfig,
    reload: &ReloadConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), HostError> {
    let exe = std::env::current_exe().map_err(|e| HostError::Config(format!("cannot find this program: {e}")))?;
    let mut watched = reload.watch.clone();
    watched.push(exe.clone());
    let interval = reload.interval.max(Duration::from_millis(10));
    tracing::info!(paths = ?watched, "auto-reload: watching");
    let mut child = Some(start_child(&exe, cfg)?);
    let mut seen = snapshot(&watched);
    loop {
        let exited = async {
            match child.as_mut() {
                Some(r) => r.child.wait().await.ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = async {
                let _ = shutdown.wait_for(|s| *s).await;
            } => {
                if let Some(c) = child.take() {
                    stop_child(c).await;
                }
                return Ok(());
            }
            status = exited => {
                let how = status.map_or_else(|| "ended".to_owned(), |s| s.to_string());
                tracing::warn!(%how, "plugin host exited; waiting for a change to start it again");
                child = None;
            }
        }
        let mut now = snapshot(&watched);
        if now == seen {
            continue;
        }
        // Let a burst of writes (an editor saving, cargo linking) settle.
        loop {
            tokio::time::sleep(interval).await;
            let again = snapshot(&watched);
            if again == now {
                break;
            }
            now = again;
        }
        tracing::info!(changed = ?changed(&seen, &now), "files changed; reloading the plugin");
        if let Some(r) = &reload.rebuild
            && !rebuild(r).await
        {
            seen = snapshot(&watched);
            continue;
        }
        if let Some(c) = child.take() {
            stop_child(c).await;
        }
        child = Some(start_child(&exe, cfg)?);
        seen = snapshot(&watched);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_rebuild_names_the_binary_profile_and_kind() {
        let c = CargoContext { cargo: "cargo".into(), manifest_dir: "/w/net".into(), package: "molstream-net".into() };
        let args = |exe: &str| match cargo_rebuild(&c, Path::new(exe)) {
            Some(Rebuild::Program { args, .. }) => args.join(" "),
            other => panic!("{other:?}"),
        };
        assert_eq!(args("/w/target/debug/examples/menu_demo"), "build -p molstream-net --example menu_demo");
        assert_eq!(args("/w/target/release/molstream-relay"), "build -p molstream-net --release --bin molstream-relay");
        assert_eq!(args("/t/bench/examples/x"), "build -p molstream-net --profile bench --example x");
    }

    #[test]
    fn host_flags_turn_isolation_and_auto_reload_on() {
        use clap::Parser;
        let args = super::super::HostArgs::try_parse_from([
            "plugin",
            "--key",
            "k",
            "--insecure-local",
            "--isolation",
            "process",
            "--auto-reload",
            "--watch",
            "/tmp/a",
            "--watch",
            "/tmp/b",
            "--rebuild",
            "make plugin",
        ])
        .unwrap();
        let cfg = args.config().unwrap();
        assert_eq!(cfg.isolation, Isolation::Process);
        let reload = cfg.reload.unwrap();
        assert!(reload.watch.starts_with(&[PathBuf::from("/tmp/a"), PathBuf::from("/tmp/b")]));
        assert_eq!(reload.rebuild, Some(Rebuild::Shell("make plugin".into())));
        let plain = super::super::HostArgs::try_parse_from(["plugin", "--key", "k", "--insecure-local"]).unwrap();
        let cfg = plain.config().unwrap();
        assert_eq!((cfg.isolation, cfg.reload), (Isolation::Task, None));
        // --watch and --rebuild mean nothing without --auto-reload.
        assert!(super::super::HostArgs::try_parse_from(["plugin", "--watch", "x"]).is_err());
        assert!(super::super::HostArgs::try_parse_from(["plugin", "--isolation", "thread"]).is_err());
    }

    #[test]
    fn snapshots_see_changes_additions_and_removals() {
        let dir = std::env::temp_dir().join(format!("molstream-reload-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::create_dir_all(dir.join("target")).unwrap();
        std::fs::write(dir.join("a.rs"), "a").unwrap();
        std::fs::write(dir.join("target/ignored"), "x").unwrap();
        let s0 = snapshot(std::slice::from_ref(&dir));
        assert_eq!(s0.len(), 1);
        std::fs::write(dir.join("sub/b.rs"), "b").unwrap();
        let s1 = snapshot(std::slice::from_ref(&dir));
        assert_eq!(changed(&s0, &s1), vec![dir.join("sub/b.rs")]);
        std::fs::write(dir.join("a.rs"), "aa").unwrap();
        std::fs::remove_file(dir.join("sub/b.rs")).unwrap();
        let s2 = snapshot(std::slice::from_ref(&dir));
        let mut c = changed(&s1, &s2);
        c.sort();
        assert_eq!(c, vec![dir.join("a.rs"), dir.join("sub/b.rs")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
