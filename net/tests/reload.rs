//! `--auto-reload` over real QUIC on loopback. This test binary is its own plugin: run
//! normally it starts a relay, a session client and a plugin host with auto-reload watching a
//! temporary file; the reload supervisor runs this binary again as the real host. Touching the
//! file rebuilds (a shell command that logs) and restarts the host: the session stays up, its
//! instance stops with `PluginStopped`, the plugin comes back under the same id, and the
//! session runs it again in the new process. A failing rebuild keeps the running plugin.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use molstream_net::api::Level;
use molstream_net::client::{ClientConfig, ClientError, ClientEvent, SessionClient};
use molstream_net::host::reload::{Rebuild, ReloadConfig, is_reload_child};
use molstream_net::host::{HostConfig, Plugin, PluginHost, PluginResult, Session};
use molstream_net::proto::{InstanceId, PluginId, PluginMeta, StopReason, UserId};
use molstream_net::relay::{RelayConfig, RelayServer};
use molstream_net::tls::{RelayIdentity, TransportSettings, Trust};
use tokio::time::timeout;

const KEY: &str = "reload-key";
const T: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Reloadable;

impl Plugin for Reloadable {
    async fn on_run(&mut self, session: &Session, _from: UserId) -> PluginResult {
        session.notify(Level::Success, format!("run by pid {}", std::process::id())).await?;
        Ok(())
    }

    async fn on_integration(&mut self, _s: &Session, _f: UserId, _name: &str, _args: Bytes) -> Result<Bytes, String> {
        Ok(Bytes::from(std::process::id().to_string()))
    }
}

/// The scratch directory of the test process `pid` (the reloaded hosts are its children).
fn dir_of(pid: u32) -> PathBuf {
    std::env::temp_dir().join(format!("molstream-reload-test-{pid}"))
}

fn plugin_host(cfg: HostConfig) -> PluginHost {
    PluginHost::new(cfg).plugin(PluginMeta { name: "Reloadable".into(), ..PluginMeta::default() }, Reloadable::default)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if is_reload_child() {
        // A host run by the supervisor: log the start, then serve until told to stop.
        let dir = dir_of(std::os::unix::process::parent_id());
        let mut f = std::fs::OpenOptions::new().append(true).create(true).open(dir.join("starts")).unwrap();
        writeln!(f, "{}", std::process::id()).unwrap();
        drop(f);
        let cfg = HostConfig::from_env().unwrap();
        rt.block_on(plugin_host(cfg).run()).unwrap();
        return;
    }
    rt.block_on(scenario());
    println!("test reload::auto_reload ... ok");
}

fn lines(p: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(p).unwrap_or_default().lines().map(str::to_owned).collect()
}

async fn wait_until(what: &str, f: impl Fn() -> bool) {
    timeout(T, async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} within the timeout"));
}

async fn stopped(c: &mut SessionClient, instance: InstanceId) -> StopReason {
    loop {
        match timeout(T, c.next_event()).await.expect("stop within the timeout") {
            Some(ClientEvent::InstanceStopped { instance: i, reason }) if i == instance => return reason,
            Some(ClientEvent::Disconnected(why)) => panic!("the session went down: {why}"),
            Some(_) => {}
            None => panic!("client closed"),
        }
    }
}

/// Activates the plugin once it is back (a request may race its re-registration).
async fn activate(c: &mut SessionClient, plugin: PluginId) -> InstanceId {
    timeout(T, async {
        loop {
            match c.activate(plugin).await {
                Ok(i) => return i,
                Err(ClientError::Failed(_)) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .expect("the plugin comes back")
}

async fn pid_of(c: &mut SessionClient, instance: InstanceId) -> u32 {
    let b = c.integration(instance, "pid", Bytes::new()).await.unwrap();
    std::str::from_utf8(&b).unwrap().parse().unwrap()
}

async fn run_and_hear(c: &mut SessionClient, instance: InstanceId) -> String {
    c.run(instance).await.unwrap();
    loop {
        match timeout(T, c.next_event()).await.unwrap().unwrap() {
            ClientEvent::Notification { instance: i, text, .. } if i == instance => return text,
            ClientEvent::InstanceStopped { reason, .. } => panic!("{reason:?}"),
            _ => {}
        }
    }
}

async fn scenario() {
    let dir = dir_of(std::process::id());
    std::fs::create_dir_all(&dir).unwrap();
    let watched = dir.join("plugin.rs");
    std::fs::write(&watched, "// version 1\n").unwrap();
    let (attempts, rebuilds, fail, starts) =
        (dir.join("attempts"), dir.join("rebuilds"), dir.join("fail"), dir.join("starts"));
    let rebuild = format!(
        "echo attempt >> '{}' && test ! -e '{}' && echo built >> '{}'",
        attempts.display(),
        fail.display(),
        rebuilds.display()
    );

    let (identity, _, _) = RelayIdentity::generate().unwrap();
    let cfg = RelayConfig { plugin_key: KEY.into(), ..RelayConfig::default() };
    let relay =
        RelayServer::start(cfg, &identity, "127.0.0.1:0".parse().unwrap(), &TransportSettings::default()).unwrap();
    let mut cfg = HostConfig::new(relay.local_addr(), Trust::Pinned(relay.fingerprint()), KEY);
    cfg.host_name = "reload-host".into();
    cfg.reload = Some(ReloadConfig {
        watch: vec![watched.clone()],
        rebuild: Some(Rebuild::Shell(rebuild)),
        interval: Duration::from_millis(100),
    });
    let supervisor = plugin_host(cfg).spawn();

    let ccfg = ClientConfig::new(relay.local_addr(), Trust::Pinned(relay.fingerprint()), "lab", "ada");
    let mut c = timeout(T, SessionClient::connect(ccfg)).await.unwrap().unwrap();
    let plugin = timeout(T, c.wait_for_plugin("Reloadable")).await.unwrap().unwrap();
    assert_eq!(c.view().plugins.iter().find(|p| p.id == plugin).unwrap().host, "reload-host");
    let i1 = activate(&mut c, plugin).await;
    let p1 = pid_of(&mut c, i1).await;
    assert_ne!(p1, std::process::id(), "the host runs in a child process");
    assert_eq!(lines(&starts), vec![p1.to_string()]);
    assert_eq!(run_and_hear(&mut c, i1).await, format!("run by pid {p1}"));

    // A change: rebuilt, restarted; the session stays up and runs the plugin again.
    std::fs::write(&watched, "// version 2\n").unwrap();
    assert_eq!(stopped(&mut c, i1).await, StopReason::PluginStopped);
    let i2 = activate(&mut c, plugin).await;
    assert_ne!(i2, i1);
    assert_eq!(c.view().plugins.iter().filter(|p| p.meta.name == "Reloadable").count(), 1);
    let p2 = pid_of(&mut c, i2).await;
    assert_ne!(p2, p1);
    assert_eq!(run_and_hear(&mut c, i2).await, format!("run by pid {p2}"));
    assert_eq!(lines(&rebuilds), vec!["built"]);
    assert_eq!(lines(&starts), vec![p1.to_string(), p2.to_string()]);

    // A failing rebuild keeps the running plugin; the next good one restarts it.
    std::fs::write(&fail, "").unwrap();
    std::fs::write(&watched, "// version 3 (broken)\n").unwrap();
    wait_until("the failing rebuild", || lines(&attempts).len() == 2).await;
    std::fs::remove_file(&fail).unwrap();
    std::fs::write(&watched, "// version 4\n").unwrap();
    assert_eq!(stopped(&mut c, i2).await, StopReason::PluginStopped);
    let i3 = activate(&mut c, plugin).await;
    let p3 = pid_of(&mut c, i3).await;
    assert_eq!(lines(&attempts).len(), 3);
    assert_eq!(lines(&rebuilds), vec!["built", "built"]);
    assert_eq!(lines(&starts), vec![p1.to_string(), p2.to_string(), p3.to_string()], "no restart after the failure");
    assert_eq!(run_and_hear(&mut c, i3).await, format!("run by pid {p3}"));

    // Stopping the supervisor stops its host, which closes its connection: the instance stops.
    supervisor.shutdown().await.unwrap();
    assert_eq!(stopped(&mut c, i3).await, StopReason::PluginStopped);
    c.close();
    relay.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
