//! The web console in headless Chromium, driven through the DevTools protocol over a
//! WebSocket (no npm): its buttons are pressed and their effects checked in the presenter's
//! copy of the room: a sphere at an atom, the selection coloured, a rotation stream, a listed
//! workspace, and a structure file the bridge asks the page for (`file.read`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Options, ROOM, TOKEN, World, asset, asset_text};
use futures_util::{SinkExt, StreamExt};
use glam::Quat;
use molstream_engine::shape::{AnchorTarget, ShapeKind};
use molstream_engine::{AtomId, ComplexId};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A headless Chromium of its own, killed (and its profile removed) on drop.
struct Chromium {
    child: Child,
    dir: PathBuf,
}

impl Chromium {
    fn start() -> (Self, String) {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("molstream-bridge-chromium-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", dir.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start chromium ({e}): the console test needs headless Chromium; install the Debian \
                     package `chromium` (it provides /usr/bin/chromium)"
                )
            });
        let mut c = Self { child, dir };
        let port_file = c.dir.join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let [port, path, ..] = text.lines().collect::<Vec<_>>()[..]
            {
                let url = format!("ws://127.0.0.1:{port}{path}");
                return (c, url);
            }
            if let Ok(Some(status)) = c.child.try_wait() {
                panic!("chromium exited at start: {status}");
            }
            assert!(Instant::now() < deadline, "chromium wrote no DevToolsActivePort within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A DevTools protocol client attached to one page.
struct Cdp {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next: u64,
    session: Option<String>,
}

impl Cdp {
    async fn send(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = &self.session {
            msg["sessionId"] = s.clone().into();
        }
        self.ws.send(Message::Text(msg.to_string().into())).await.unwrap();
        loop {
            let m = tokio::time::timeout(common::T, self.ws.next()).await.expect("DevTools answer").unwrap().unwrap();
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Evaluates `expr` in the page (awaiting a promise) and returns its value.
    async fn eval(&mut self, expr: &str) -> Value {
        let r = self
            .send("Runtime.evaluate", json!({ "expression": expr, "returnByValue": true, "awaitPromise": true }))
            .await;
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Waits until `expr` evaluates to true.
    async fn wait_true(&mut self, expr: &str) {
        let deadline = Instant::now() + common::T;
        while self.eval(expr).await != Value::Bool(true) {
            assert!(Instant::now() < deadline, "the page never made true: {expr}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn click(&mut self, id: &str) {
        self.eval(&format!("document.getElementById({id:?}).click(); true")).await;
    }

    async fn log_text(&mut self) -> String {
        self.eval("document.getElementById('log').textContent").await.as_str().unwrap_or_default().to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_buttons_drive_the_session() {
    let w = World::start(Options { redis: false, ..Options::default() }).await;
    let me = w.instance;
    let setup = w.ws_client().await;
    let hvr =
        setup.call("structure.load", json!({ "name": "1hvr.pdb", "text": asset_text("1hvr.pdb") })).await.unwrap();
    let h = ComplexId(u32::try_from(hvr["complex"].as_u64().unwrap()).unwrap());
    w.scene("1hvr", |s| s.complex(h).map(|_| ())).await;
    let selected: Vec<AtomId> = (0..20).map(AtomId).collect();
    w.ada.select_atoms(h, &selected, true).unwrap();

    let (_chromium, browser) = Chromium::start();
    let (ws, _) = tokio_tungstenite::connect_async(&browser).await.unwrap();
    let mut cdp = Cdp { ws, next: 0, session: None };
    let url = format!("http://{}/?token={TOKEN}&room={ROOM}", w.ws_addr());
    let target = cdp.send("Target.createTarget", json!({ "url": url })).await;
    let attached = cdp.send("Target.attachToTarget", json!({ "targetId": target["targetId"], "flatten": true })).await;
    cdp.session = Some(attached["sessionId"].as_str().unwrap().to_owned());
    cdp.wait_true(
        "(() => { const s = document.getElementById('status'); return !!s && s.textContent === 'connected'; })()",
    )
    .await;

    // "Add a sphere at the atom": atom 10 of the first complex, in the page's colour.
    cdp.eval("document.getElementById('atom').value = '10'; true").await;
    cdp.click("btn-sphere").await;
    w.scene("the console's sphere", |s| {
        s.shapes(me)?.iter().find(|sh| {
            matches!(sh.kind, ShapeKind::Sphere { anchor, .. } if anchor.target == AnchorTarget::Atom(h, AtomId(10)))
                && sh.color == 0xff_99_33_ff
        })?;
        Some(())
    })
    .await;

    // "List complexes": the result shows in the page's log.
    cdp.click("btn-list").await;
    cdp.wait_true("document.getElementById('log').textContent.includes('\"name\":\"1hvr\"')").await;

    // "Colour the selection": the 20 selected atoms take the page's colour, the others keep theirs.
    let other = w.ada.with_scene(|s| s.complex(h).unwrap().current().display.color[100]).unwrap();
    cdp.click("btn-color").await;
    w.scene("the coloured selection", |s| {
        let d = s.complex(h)?.current().display;
        (d.color[..20].iter().all(|c| *c == 0xff_99_33_ff) && d.color[100] == other).then_some(())
    })
    .await;

    // "Start a stream": the complex turns; "Stop" ends the stream.
    cdp.click("btn-stream").await;
    let first = w
        .scene("a turned complex", |s| {
            let r = s.complex(h)?.rotation;
            (!r.abs_diff_eq(Quat::IDENTITY, 1e-4)).then_some(r)
        })
        .await;
    w.scene("the complex turning on", |s| (!s.complex(h)?.rotation.abs_diff_eq(first, 1e-5)).then_some(())).await;
    cdp.click("btn-stop").await;
    cdp.wait_true("document.getElementById('btn-stream').disabled === false").await;

    // "Load it": the page names a file; the bridge asks the page for it (file.read) and loads it.
    let doc = cdp.send("DOM.getDocument", json!({})).await;
    let input = cdp.send("DOM.querySelector", json!({ "nodeId": doc["root"]["nodeId"], "selector": "#file" })).await;
    let path = asset("1YJP.cif").canonicalize().unwrap();
    cdp.send("DOM.setFileInputFiles", json!({ "files": [path], "nodeId": input["nodeId"] })).await;
    cdp.click("btn-load").await;
    w.scene("the file the page gave", |s| s.workspace().complexes().iter().any(|c| c.name == "1YJP").then_some(()))
        .await;
    cdp.wait_true("document.getElementById('log').textContent.includes('asked: {\"id\"')").await;

    let log = cdp.log_text().await;
    assert!(!log.contains("error:"), "the console logged errors: {log}");
    drop(setup);
    w.stop().await;
}
