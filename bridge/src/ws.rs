//! The WebSocket transport and the web console, on one port (127.0.0.1 unless told otherwise).
//!
//! - `GET /?token=T[&room=R]`: the console page (401 without the token).
//! - `GET /ws?token=T[&room=R]` (or `Authorization: Bearer T`): the JSON-RPC WebSocket. A
//!   wrong or missing token is refused with 401 before the upgrade, so nothing is answered.
//!
//! On a connection, each text message is a JSON-RPC request, notification or batch; they are
//! served one after another, in order (a caller that pipelines stream updates keeps their
//! order). Messages that answer the bridge's own requests (`file.read`) are routed to the
//! waiting request at once, even while a request is being served. The room's session events
//! arrive as notifications. A message above the request limit gets a
//! [`REQUEST_TOO_LARGE`](crate::rpc::REQUEST_TOO_LARGE) answer; one above twice the limit
//! closes the connection with code 1009.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::hub::{BoxFuture, Caller, CallerLink, Hub};
use crate::rpc::{self, RpcError};
use crate::serve;

/// The console page (HTML, CSS and JavaScript in one file).
pub const CONSOLE_HTML: &str = include_str!("console.html");

#[derive(Clone)]
struct AppState {
    hub: Arc<Hub>,
    shutdown: watch::Receiver<bool>,
}

/// The hard cap of one WebSocket message: twice the request limit (at least 1 MiB more).
fn hard_cap(limit: usize) -> usize {
    limit.saturating_mul(2).max(limit.saturating_add(1 << 20))
}

/// Serves the console and the WebSocket on `listener` until `shutdown` turns true.
pub(crate) async fn serve(hub: Arc<Hub>, listener: tokio::net::TcpListener, shutdown: watch::Receiver<bool>) {
    let state = AppState { hub, shutdown: shutdown.clone() };
    let app = Router::new()
        .route("/", get(console))
        .route("/ws", get(upgrade))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found") })
        .with_state(state);
    let mut stop = shutdown;
    let signal = async move {
        while !*stop.borrow_and_update() {
            if stop.changed().await.is_err() {
                return;
            }
        }
    };
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(signal).await {
        tracing::error!(error = %e, "the WebSocket server failed");
    }
}

fn authorized(hub: &Hub, q: &HashMap<String, String>, headers: &HeaderMap) -> bool {
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match q.get("token").map(String::as_str).or(bearer) {
        Some(t) => hub.cfg.token.accepts(t),
        None => false,
    }
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, "a token is required: open /?token=TOKEN (the bridge prints it when it starts)\n")
        .into_response()
}

async fn console(State(st): State<AppState>, Query(q): Query<HashMap<String, String>>, headers: HeaderMap) -> Response {
    if !authorized(&st.hub, &q, &headers) {
        return unauthorized();
    }
    ([(header::CACHE_CONTROL, "no-store")], Html(CONSOLE_HTML)).into_response()
}

async fn upgrade(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !authorized(&st.hub, &q, &headers) {
        tracing::warn!("a WebSocket without the token refused");
        return unauthorized();
    }
    let room = q.get("room").filter(|r| !r.is_empty()).cloned();
    let cap = hard_cap(st.hub.cfg.limits.max_request_bytes);
    ws.max_message_size(cap).max_frame_size(cap).on_upgrade(move |socket| connection(st, socket, room))
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Result<Value, RpcError>>>>>;

/// The way back to a WebSocket caller.
struct WsLink {
    out: mpsc::Sender<Message>,
    pending: Pending,
    next: AtomicU64,
}

impl CallerLink for WsLink {
    fn request<'a>(
        &'a self,
        method: &'a str,
        params: Value,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Value, RpcError>> {
        Box::pin(async move {
            let id = format!("bridge-{}", self.next.fetch_add(1, Ordering::Relaxed));
            let (tx, rx) = oneshot::channel();
            if let Ok(mut p) = self.pending.lock() {
                p.insert(id.clone(), tx);
            }
            let text = rpc::request(Some(id.clone().into()), method, params).to_string();
            let gone = || RpcError::new(rpc::SESSION_ERROR, "the caller disconnected");
            if self.out.send(Message::Text(text.into())).await.is_err() {
                return Err(gone());
            }
            let r = tokio::time::timeout(timeout, rx).await;
            if let Ok(mut p) = self.pending.lock() {
                p.remove(&id);
            }
            match r {
                Ok(Ok(Ok(v))) => Ok(v),
                Ok(Ok(Err(e))) => Err(caller_error(method, &e)),
                Ok(Err(_)) => Err(gone()),
                Err(_) => Err(caller_timeout(method, timeout)),
            }
        })
    }
}

/// The error for a caller that answered the bridge's request with `e`.
pub(crate) fn caller_error(method: &str, e: &RpcError) -> RpcError {
    RpcError::new(rpc::CALLER_ERROR, format!("the caller answered {method} with an error: {}", e.message))
        .with_data(e.to_value())
}

/// The error for a caller that did not answer in time.
pub(crate) fn caller_timeout(method: &str, timeout: Duration) -> RpcError {
    RpcError::new(rpc::TIMEOUT, format!("the caller did not answer {method} within {} ms", timeout.as_millis()))
}

/// Routes answers to the bridge's requests; `false` if `v` holds none.
fn route_answers(pending: &Pending, v: &Value) -> bool {
    let answers: Vec<rpc::Answer> = match v {
        Value::Array(items) if !items.is_empty() => {
            let a: Vec<_> = items.iter().filter_map(rpc::as_answer).collect();
            if a.len() != items.len() {
                return false;
            }
            a
        }
        v => match rpc::as_answer(v) {
            Some(a) => vec![a],
            None => return false,
        },
    };
    for a in answers {
        let key = a.id.as_str().map(str::to_owned).unwrap_or_default();
        match pending.lock().ok().and_then(|mut p| p.remove(&key)) {
            Some(tx) => {
                let _ = tx.send(a.outcome);
            }
            None => tracing::debug!(id = %a.id, "an answer to no pending request dropped"),
        }
    }
    true
}

async fn connection(st: AppState, socket: WebSocket, room: Option<String>) {
    let hub = st.hub.clone();
    let limits = hub.cfg.limits;
    let (mut sink, mut stream) = socket.split();
    let (out, mut out_rx) = mpsc::channel::<Message>(256);
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            let close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || close {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
    let link = Arc::new(WsLink { out: out.clone(), pending: pending.clone(), next: AtomicU64::new(1) });
    let caller: Caller = Some(link);

    let events = tokio::spawn(forward_events(hub.subscribe(), room.clone(), out.clone()));
    let (work, mut work_rx) = mpsc::channel::<Value>(64);
    let worker = {
        let (hub, room, out) = (hub.clone(), room.clone(), out.clone());
        tokio::spawn(async move {
            while let Some(v) = work_rx.recv().await {
                if let Some(answer) = serve::handle_value(&hub, room.as_deref(), &caller, v).await
                    && out.send(Message::Text(answer.into())).await.is_err()
                {
                    break;
                }
            }
        })
    };
    let mut shutdown = st.shutdown.clone();
    let mut stopping = false;
    loop {
        let msg = tokio::select! {
            m = stream.next() => m,
            _ = shutdown.changed() => {
                let _ = out.send(Message::Close(Some(CloseFrame { code: 1001, reason: "the bridge is stopping".into() }))).await;
                stopping = true;
                break;
            }
        };
        let text = match msg {
            None | Some(Ok(Message::Close(_))) => break,
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Binary(_))) => {
                let e = RpcError::new(rpc::PARSE_ERROR, "binary messages are not JSON-RPC: send text");
                let _ = out.send(Message::Text(rpc::failure(Value::Null, &e).to_string().into())).await;
                continue;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                let why = e.to_string();
                tracing::warn!(error = %why, "a WebSocket read failed; closing");
                let code = if why.contains("too long") || why.contains("Space limit") { 1009 } else { 1002 };
                let reason = if code == 1009 {
                    format!("message above {} bytes", hard_cap(limits.max_request_bytes))
                } else {
                    "protocol error".to_owned()
                };
                let _ = out.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                break;
            }
        };
        let text = text.as_str();
        if text.len() > limits.max_request_bytes {
            let e = rpc::too_large(rpc::REQUEST_TOO_LARGE, "request", text.len(), limits.max_request_bytes);
            let _ = out.send(Message::Text(rpc::failure(Value::Null, &e).to_string().into())).await;
            continue;
        }
        let v: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let e = RpcError::new(rpc::PARSE_ERROR, format!("parse error: {e}"));
                let _ = out.send(Message::Text(rpc::failure(Value::Null, &e).to_string().into())).await;
                continue;
            }
        };
        if route_answers(&pending, &v) {
            continue;
        }
        if work.send(v).await.is_err() {
            break;
        }
    }
    drop(work);
    events.abort();
    if stopping {
        worker.abort();
    }
    // Otherwise requests being served finish; their answers go out before the socket closes.
    let _ = worker.await;
    drop(out);
    let _ = writer.await;
}

/// Sends the room's events (every room's, for a connection that names none) to the socket.
async fn forward_events(
    mut events: broadcast::Receiver<crate::hub::Event>,
    room: Option<String>,
    out: mpsc::Sender<Message>,
) {
    loop {
        match events.recv().await {
            Ok(e) => {
                if room.as_deref().is_some_and(|r| r != &*e.room) {
                    continue;
                }
                if out.send(Message::Text(e.text.to_string().into())).await.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                let note = rpc::request(None, "event.lagged", json!({ "missed": n })).to_string();
                if out.send(Message::Text(note.into())).await.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Binds the listener (so the address is known before serving).
///
/// # Errors
/// The bind error.
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
