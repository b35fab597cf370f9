//! [`BridgeClient`]: a caller of the bridge over Redis or WebSocket, for Rust programs, the
//! tests and the benchmark. It sends requests, notifications and batches, receives the
//! session's events, and answers the bridge's own requests (`file.read`) with a handler.
//!
//! ```no_run
//! use molstream_bridge::BridgeClient;
//! use serde_json::json;
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = BridgeClient::redis("redis://127.0.0.1:6379/", "molstream:bridge", "lab", "TOKEN").await?;
//! let list = client.call("complexes.list", json!({})).await?;
//! println!("{list}");
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use redis::AsyncCommands;
use redis::aio::{MultiplexedConnection, PubSubSink};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::hub::generate_token;
use crate::redis::Channels;
use crate::rpc::{self, RpcError};

/// Errors of [`BridgeClient`] calls.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The bridge answered with a JSON-RPC error.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// No answer within the client's timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Nobody listens on the session's request channel (no bridge instance in that room).
    #[error("no bridge listens on {0}")]
    NoBridge(String),
    /// The WebSocket upgrade was refused (e.g. 401 without the token).
    #[error("refused: {0}")]
    Refused(String),
    /// The connection failed or closed.
    #[error("transport: {0}")]
    Transport(String),
    /// The bridge answered something that is not a JSON-RPC response.
    #[error("protocol: {0}")]
    Protocol(String),
}

/// Answers the bridge's requests to its caller: method and params in, result or error out.
pub type Handler = Arc<dyn Fn(&str, Value) -> Result<Value, RpcError> + Send + Sync>;

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>;

/// The default time a call waits for its answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to a bridge: over Redis (one session's channels) or a WebSocket.
pub struct BridgeClient {
    transport: Transport,
    events: broadcast::Sender<Value>,
    handler: Arc<Mutex<Option<Handler>>>,
    timeout: Duration,
    next: AtomicU64,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for BridgeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeClient").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl Drop for BridgeClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

enum Transport {
    Redis(RedisSide),
    Ws(WsSide),
}

struct RedisSide {
    sink: PubSubSink,
    publisher: MultiplexedConnection,
    channels: Channels,
    reply_prefix: String,
    token: Option<String>,
    pending: Pending,
}

struct WsSide {
    out: mpsc::Sender<Message>,
    pending: Pending,
    /// Responses whose id matches no pending call (e.g. to malformed requests).
    unmatched: tokio::sync::Mutex<mpsc::UnboundedReceiver<Value>>,
}

/// A message to send: JSON, or text as it is.
enum Outgoing<'a> {
    Json(Value),
    Raw(&'a str),
}

fn transport(e: impl std::fmt::Display) -> ClientError {
    ClientError::Transport(e.to_string())
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn answer(v: &Value) -> Result<Value, ClientError> {
    match rpc::as_answer(v) {
        Some(a) => a.outcome.map_err(ClientError::Rpc),
        None => Err(ClientError::Protocol(format!("not a response: {v}"))),
    }
}

fn run_handler(handler: &Mutex<Option<Handler>>, req: &Value) -> Option<Value> {
    let id = req.get("id")?.clone();
    let method = req.get("method")?.as_str()?.to_owned();
    let params = req.get("params").cloned().unwrap_or(Value::Null);
    let h = handler.lock().ok().and_then(|h| h.clone());
    let outcome = match h {
        Some(h) => h(&method, params),
        None => Err(RpcError::new(rpc::METHOD_NOT_FOUND, format!("this caller does not answer {method}"))),
    };
    Some(match outcome {
        Ok(v) => rpc::success(id, v),
        Err(e) => rpc::failure(id, &e),
    })
}

impl BridgeClient {
    /// Connects over Redis to the bridge of session `room` (channels under `prefix`).
    ///
    /// # Errors
    /// [`ClientError::Transport`] if Redis cannot be reached.
    pub async fn redis(url: &str, prefix: &str, room: &str, token: &str) -> Result<Self, ClientError> {
        let client = redis::Client::open(url).map_err(transport)?;
        let publisher = client.get_multiplexed_async_connection().await.map_err(transport)?;
        let (mut sink, mut stream) = client.get_async_pubsub().await.map_err(transport)?.split();
        let channels = Channels::of(prefix, room);
        sink.subscribe(&channels.events).await.map_err(transport)?;
        sink.subscribe(&channels.calls).await.map_err(transport)?;
        let id = generate_token().map_err(|_| ClientError::Transport("no random source".into()))?;
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let events = broadcast::Sender::new(1024);
        let handler: Arc<Mutex<Option<Handler>>> = Arc::new(Mutex::new(None));
        let task = {
            let (pending, events, handler, chans) =
                (pending.clone(), events.clone(), handler.clone(), channels.clone());
            let mut publisher = publisher.clone();
            let token = token.to_owned();
            tokio::spawn(async move {
                while let Some(msg) = stream.next().await {
                    let ch = msg.get_channel_name();
                    let Ok(v) = serde_json::from_slice::<Value>(msg.get_payload_bytes()) else { continue };
                    if ch == chans.events {
                        let _ = events.send(v);
                    } else if ch == chans.calls {
                        let (Some(reply_to), Some(req)) = (v.get("reply_to").and_then(Value::as_str), v.get("payload"))
                        else {
                            continue;
                        };
                        if let Some(resp) = run_handler(&handler, req) {
                            let env = json!({ "token": token, "payload": resp });
                            let _: Result<i64, _> = publisher.publish(reply_to, env.to_string()).await;
                        }
                    } else if let Some(tx) = pending.lock().ok().and_then(|mut p| p.remove(ch)) {
                        let _ = tx.send(v);
                    }
                }
                // The subscription ended: calls waiting fail now rather than at their timeout.
                if let Ok(mut p) = pending.lock() {
                    p.clear();
                }
            })
        };
        let side = RedisSide {
            sink,
            publisher,
            reply_prefix: format!("{prefix}:reply:{id}"),
            channels,
            token: Some(token.to_owned()),
            pending,
        };
        Ok(Self {
            transport: Transport::Redis(side),
            events,
            handler,
            timeout: DEFAULT_TIMEOUT,
            next: AtomicU64::new(1),
            task,
        })
    }

    /// Connects over WebSocket to the bridge at `addr`, addressing session `room` (`None`: the
    /// only session with the bridge).
    ///
    /// # Errors
    /// [`ClientError::Refused`] (a wrong token: 401), [`ClientError::Transport`].
    pub async fn websocket(addr: SocketAddr, room: Option<&str>, token: &str) -> Result<Self, ClientError> {
        let mut url = format!("ws://{addr}/ws?token={}", encode(token));
        if let Some(r) = room {
            url.push_str(&format!("&room={}", encode(r)));
        }
        let (ws, _) = tokio_tungstenite::connect_async(&url).await.map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(r) => ClientError::Refused(format!("HTTP {}", r.status())),
            e => transport(e),
        })?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::channel::<Message>(256);
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let (unmatched_tx, unmatched) = mpsc::unbounded_channel();
        let events = broadcast::Sender::new(1024);
        let handler: Arc<Mutex<Option<Handler>>> = Arc::new(Mutex::new(None));
        let task = {
            let (pending, events, handler, out) = (pending.clone(), events.clone(), handler.clone(), out.clone());
            tokio::spawn(async move {
                let writer = tokio::spawn(async move {
                    while let Some(m) = out_rx.recv().await {
                        if sink.send(m).await.is_err() {
                            break;
                        }
                    }
                });
                while let Some(Ok(msg)) = stream.next().await {
                    let Message::Text(t) = msg else {
                        if let Message::Close(frame) = msg {
                            let _ = unmatched_tx.send(json!({ "closed": frame.map(|f| u16::from(f.code)) }));
                        }
                        continue;
                    };
                    let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else { continue };
                    let key = v.get("id").map(Value::to_string);
                    let is_response = v.get("method").is_none();
                    if is_response {
                        let tx = key.and_then(|k| pending.lock().ok().and_then(|mut p| p.remove(&k)));
                        match tx {
                            Some(tx) => {
                                let _ = tx.send(v);
                            }
                            None => {
                                let _ = unmatched_tx.send(v);
                            }
                        }
                    } else if v.get("id").is_some() {
                        if let Some(resp) = run_handler(&handler, &v) {
                            let _ = out.send(Message::Text(resp.to_string().into())).await;
                        }
                    } else {
                        let _ = events.send(v);
                    }
                }
                writer.abort();
                // The connection ended: calls waiting fail now rather than at their timeout.
                if let Ok(mut p) = pending.lock() {
                    p.clear();
                }
            })
        };
        let side = WsSide { out, pending, unmatched: tokio::sync::Mutex::new(unmatched) };
        Ok(Self {
            transport: Transport::Ws(side),
            events,
            handler,
            timeout: DEFAULT_TIMEOUT,
            next: AtomicU64::new(1),
            task,
        })
    }

    /// How long calls wait for their answer.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Over Redis: the token sent with each request (`None`: none). For tests of refusal.
    pub fn set_token(&mut self, token: Option<String>) {
        if let Transport::Redis(r) = &mut self.transport {
            r.token = token;
        }
    }

    /// Answers the bridge's requests (e.g. `file.read` with `{"name"}`: answer
    /// `{"text"}` or `{"base64"}`). Without a handler they get
    /// [`METHOD_NOT_FOUND`](crate::rpc::METHOD_NOT_FOUND).
    pub fn on_request(&self, handler: impl Fn(&str, Value) -> Result<Value, RpcError> + Send + Sync + 'static) {
        if let Ok(mut h) = self.handler.lock() {
            *h = Some(Arc::new(handler));
        }
    }

    /// The session's events (JSON-RPC notifications) from now on.
    #[must_use]
    pub fn events(&self) -> broadcast::Receiver<Value> {
        self.events.subscribe()
    }

    /// Calls `method` and returns its result.
    ///
    /// # Errors
    /// [`ClientError::Rpc`] with the bridge's error, [`ClientError::Timeout`],
    /// [`ClientError::NoBridge`], transport errors.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let msg = rpc::request(Some(id.into()), method, params);
        let v = self.exchange(Outgoing::Json(msg), Some(id.to_string()), false).await?;
        answer(&v.ok_or(ClientError::Timeout(self.timeout))?)
    }

    /// Sends a notification (no answer).
    ///
    /// # Errors
    /// [`ClientError::NoBridge`], transport errors.
    pub async fn notify(&self, method: &str, params: Value) -> Result<(), ClientError> {
        let msg = rpc::request(None, method, params);
        self.exchange(Outgoing::Json(msg), None, true).await.map(|_| ())
    }

    /// Sends a batch; returns each call's outcome in order (notifications, `None` params
    /// aside, are not in it: every call here has an id).
    ///
    /// # Errors
    /// As [`BridgeClient::call`]; [`ClientError::Protocol`] for an answer that is no array.
    pub async fn batch(&self, calls: &[(&str, Value)]) -> Result<Vec<Result<Value, RpcError>>, ClientError> {
        let first = self.next.fetch_add(calls.len() as u64, Ordering::Relaxed);
        let ids: Vec<u64> = (first..first + calls.len() as u64).collect();
        let msg: Vec<Value> =
            calls.iter().zip(&ids).map(|((m, p), id)| rpc::request(Some((*id).into()), m, p.clone())).collect();
        let key = format!("batch-{first}");
        let v = self.exchange(Outgoing::Json(Value::Array(msg)), Some(key), false).await?;
        let Some(Value::Array(answers)) = v else {
            return Err(ClientError::Protocol("a batch was not answered with an array".into()));
        };
        let mut by_id: HashMap<u64, Result<Value, RpcError>> = HashMap::new();
        for a in answers.iter().filter_map(rpc::as_answer) {
            if let Some(id) = a.id.as_u64() {
                by_id.insert(id, a.outcome);
            }
        }
        Ok(ids
            .iter()
            .map(|id| {
                by_id.remove(id).unwrap_or_else(|| Err(RpcError::new(rpc::INTERNAL_ERROR, "no answer in the batch")))
            })
            .collect())
    }

    /// Sends `text` as it is (over Redis, as the envelope's payload string) and returns the
    /// answer, if one comes within the timeout. For tests of malformed messages.
    ///
    /// # Errors
    /// [`ClientError::NoBridge`], transport errors.
    pub async fn send_text(&self, text: &str) -> Result<Option<Value>, ClientError> {
        self.exchange(Outgoing::Raw(text), Some("raw".into()), false).await
    }

    /// Over Redis: publishes `bytes` on the session's request channel with no envelope at
    /// all; returns how many subscribers got it. For tests of garbage input.
    ///
    /// # Errors
    /// Transport errors; [`ClientError::Protocol`] over WebSocket.
    pub async fn publish_raw(&self, bytes: &[u8]) -> Result<i64, ClientError> {
        let Transport::Redis(r) = &self.transport else {
            return Err(ClientError::Protocol("publish_raw is for Redis".into()));
        };
        let mut p = r.publisher.clone();
        p.publish(&r.channels.rpc, bytes).await.map_err(transport)
    }

    /// Waits until the bridge answers `session.info` (its instance is up and, over Redis, its
    /// request channel subscribed), retrying every 50 ms up to `timeout`.
    ///
    /// # Errors
    /// The last error once `timeout` passed.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<Value, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let e = match self.call("session.info", json!({})).await {
                Ok(v) => return Ok(v),
                Err(e @ (ClientError::NoBridge(_) | ClientError::Timeout(_))) => e,
                Err(ClientError::Rpc(e)) if e.code == rpc::NO_SESSION => ClientError::Rpc(e),
                Err(e) => return Err(e),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(e);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends one message and waits for the answer registered under `key` (`None`: none is
    /// awaited). Over WebSocket, `key` "raw" or "batch-…" takes the next unmatched response.
    async fn exchange(
        &self,
        msg: Outgoing<'_>,
        key: Option<String>,
        notification: bool,
    ) -> Result<Option<Value>, ClientError> {
        match &self.transport {
            Transport::Redis(r) => {
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                let reply_to = (!notification).then(|| format!("{}:{n}", r.reply_prefix));
                let payload = match msg {
                    Outgoing::Raw(text) => Value::String(text.to_owned()),
                    Outgoing::Json(v) => v,
                };
                let mut env = json!({ "payload": payload });
                if let Some(t) = &r.token {
                    env["token"] = t.clone().into();
                }
                let mut sink = r.sink.clone();
                let rx = match &reply_to {
                    Some(ch) => {
                        env["reply_to"] = ch.clone().into();
                        let (tx, rx) = oneshot::channel();
                        if let Ok(mut p) = r.pending.lock() {
                            p.insert(ch.clone(), tx);
                        }
                        sink.subscribe(ch).await.map_err(transport)?;
                        Some(rx)
                    }
                    None => None,
                };
                let mut publisher = r.publisher.clone();
                let sent: Result<i64, _> = publisher.publish(&r.channels.rpc, env.to_string()).await;
                let out = match (sent, rx) {
                    (Err(e), _) => Err(transport(e)),
                    (Ok(0), _) => Err(ClientError::NoBridge(r.channels.rpc.clone())),
                    (Ok(_), None) => Ok(None),
                    (Ok(_), Some(rx)) => match tokio::time::timeout(self.timeout, rx).await {
                        Ok(Ok(v)) => Ok(Some(v)),
                        Ok(Err(_)) => Err(ClientError::Transport("the subscription ended".into())),
                        Err(_) => Err(ClientError::Timeout(self.timeout)),
                    },
                };
                if let Some(ch) = reply_to {
                    if let Ok(mut p) = r.pending.lock() {
                        p.remove(&ch);
                    }
                    // Nothing waits on the unsubscription: the answer is in.
                    tokio::spawn(async move {
                        let _ = sink.unsubscribe(&ch).await;
                    });
                }
                out
            }
            Transport::Ws(w) => {
                let rx = match key.as_deref() {
                    Some(k) if k != "raw" && !k.starts_with("batch-") => {
                        let (tx, rx) = oneshot::channel();
                        if let Ok(mut p) = w.pending.lock() {
                            p.insert(k.to_owned(), tx);
                        }
                        Some(rx)
                    }
                    _ => None,
                };
                let text = match msg {
                    Outgoing::Raw(t) => t.to_owned(),
                    Outgoing::Json(v) => v.to_string(),
                };
                w.out.send(Message::Text(text.into())).await.map_err(transport)?;
                if notification {
                    return Ok(None);
                }
                let got = match rx {
                    Some(rx) => tokio::time::timeout(self.timeout, rx).await.map(|r| r.ok()),
                    None => {
                        let mut u = w.unmatched.lock().await;
                        tokio::time::timeout(self.timeout, u.recv()).await
                    }
                };
                match got {
                    Ok(Some(v)) if v.get("closed").is_some() => {
                        Err(ClientError::Transport(format!("the bridge closed the connection: {v}")))
                    }
                    Ok(Some(v)) => Ok(Some(v)),
                    Ok(None) => Err(ClientError::Transport("the connection closed".into())),
                    Err(_) => {
                        if let Some(k) = key
                            && let Ok(mut p) = w.pending.lock()
                        {
                            p.remove(&k);
                        }
                        Err(ClientError::Timeout(self.timeout))
                    }
                }
            }
        }
    }
}
