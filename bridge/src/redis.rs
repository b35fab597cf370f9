//! The Redis transport: the request/response-channel pattern over Redis pub/sub.
//!
//! For each session (room) with a bridge instance, with `P` the prefix (default
//! `molstream:bridge`):
//!
//! | channel | who publishes | payload |
//! |---|---|---|
//! | `P:ROOM:rpc` | callers | `{"token", "reply_to", "payload"}`: `payload` is a JSON-RPC request or batch (as JSON, or as a string holding its text); `reply_to` the channel the answer goes to (a fresh one per request) |
//! | `reply_to` | the bridge | the JSON-RPC response or batch of responses, bare |
//! | `P:ROOM:events` | the bridge | JSON-RPC notifications (session events), bare |
//! | `P:ROOM:calls` | the bridge | `{"reply_to", "payload"}`: a request of the bridge to its callers (`file.read`) |
//! | the call's `reply_to` | a caller | `{"token", "payload"}`: the JSON-RPC response |
//!
//! The bridge subscribes to `P:ROOM:rpc` when the room activates it and unsubscribes when the
//! instance stops, so a caller publishing to a room without the bridge learns it at once
//! (PUBLISH reports no receiver). A message without the right token is dropped unanswered; a
//! message that is no envelope is dropped (there is nowhere to answer). Requests are served
//! concurrently, each on its own response channel. The connection is re-established with
//! backoff if Redis goes away, and the subscriptions renewed.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;
use redis::aio::{MultiplexedConnection, PubSubSink};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::{oneshot, watch};

use crate::hub::{BoxFuture, Caller, CallerLink, Hub, generate_token};
use crate::rpc::{self, RpcError};
use crate::serve;
use crate::ws::{caller_error, caller_timeout};

/// Where the Redis transport connects and which channels it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// The Redis URL (`redis://127.0.0.1:6379/`).
    pub url: String,
    /// The channel prefix.
    pub prefix: String,
}

/// The default channel prefix.
pub const DEFAULT_PREFIX: &str = "molstream:bridge";

/// The channel names of one room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channels {
    /// Requests to the bridge.
    pub rpc: String,
    /// The bridge's notifications.
    pub events: String,
    /// The bridge's requests to its callers.
    pub calls: String,
}

impl Channels {
    /// The channels of `room` under `prefix`.
    #[must_use]
    pub fn of(prefix: &str, room: &str) -> Self {
        Self {
            rpc: format!("{prefix}:{room}:rpc"),
            events: format!("{prefix}:{room}:events"),
            calls: format!("{prefix}:{room}:calls"),
        }
    }
}

/// The envelope of a request to the bridge, or of a caller's answer.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    token: Option<String>,
    reply_to: Option<String>,
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// A valid response channel name: 1 to 256 bytes, no control characters.
fn valid_channel(c: &str) -> bool {
    !c.is_empty() && c.len() <= 256 && !c.chars().any(char::is_control)
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Result<Value, RpcError>>>>>;

/// The way back to the callers of one room over Redis.
struct RedisLink {
    sink: PubSubSink,
    publisher: MultiplexedConnection,
    channels: Channels,
    pending: Pending,
}

impl CallerLink for RedisLink {
    fn request<'a>(
        &'a self,
        method: &'a str,
        params: Value,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Value, RpcError>> {
        Box::pin(async move {
            let nonce = generate_token().map_err(|_| RpcError::new(rpc::INTERNAL_ERROR, "no random source"))?;
            let answer = format!("{}:answer:{nonce}", self.channels.calls);
            let (tx, rx) = oneshot::channel();
            if let Ok(mut p) = self.pending.lock() {
                p.insert(answer.clone(), tx);
            }
            let mut sink = self.sink.clone();
            let unsubscribe = |mut sink: PubSubSink, pending: Pending, ch: String| async move {
                if let Ok(mut p) = pending.lock() {
                    p.remove(&ch);
                }
                let _ = sink.unsubscribe(&ch).await;
            };
            let internal = |e: redis::RedisError| RpcError::new(rpc::INTERNAL_ERROR, format!("redis: {e}"));
            if let Err(e) = sink.subscribe(&answer).await {
                unsubscribe(sink, self.pending.clone(), answer).await;
                return Err(internal(e));
            }
            let envelope = serde_json::json!({
                "reply_to": answer,
                "payload": rpc::request(Some(Value::from(nonce.clone())), method, params),
            });
            let mut publisher = self.publisher.clone();
            let receivers: Result<i64, _> = publisher.publish(&self.channels.calls, envelope.to_string()).await;
            let r = match receivers {
                Ok(0) => Err(RpcError::new(
                    rpc::CALLER_ERROR,
                    format!("no caller listens on {} to answer {method}", self.channels.calls),
                )),
                Ok(_) => match tokio::time::timeout(timeout, rx).await {
                    Ok(Ok(Ok(v))) => Ok(v),
                    Ok(Ok(Err(e))) => Err(caller_error(method, &e)),
                    Ok(Err(_)) => Err(RpcError::new(rpc::SESSION_ERROR, "the Redis connection was lost")),
                    Err(_) => Err(caller_timeout(method, timeout)),
                },
                Err(e) => Err(internal(e)),
            };
            unsubscribe(sink, self.pending.clone(), answer).await;
            r
        })
    }
}

/// Runs the Redis transport until `shutdown`, reconnecting with backoff. `ready` is told the
/// rooms whose request channel is subscribed.
pub(crate) async fn run(
    hub: Arc<Hub>,
    cfg: RedisConfig,
    mut shutdown: watch::Receiver<bool>,
    ready: watch::Sender<BTreeSet<String>>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match serve_once(&hub, &cfg, &mut shutdown, &ready).await {
            Ok(()) => return,
            Err(e) => {
                ready.send_replace(BTreeSet::new());
                tracing::warn!(error = %e, url = %cfg.url, "redis connection lost; retrying in {backoff:?}");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn serve_once(
    hub: &Arc<Hub>,
    cfg: &RedisConfig,
    shutdown: &mut watch::Receiver<bool>,
    ready: &watch::Sender<BTreeSet<String>>,
) -> Result<(), redis::RedisError> {
    let client = redis::Client::open(cfg.url.as_str())?;
    let publisher = client.get_multiplexed_async_connection().await?;
    let (mut sink, mut stream) = client.get_async_pubsub().await?.split();
    tracing::info!(url = %cfg.url, prefix = %cfg.prefix, "redis transport connected");
    let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
    let mut rooms_rx = hub.rooms.subscribe();
    let mut subscribed: HashMap<String, String> = HashMap::new(); // rpc channel -> room
    let events = tokio::spawn(forward_events(hub.clone(), cfg.prefix.clone(), publisher.clone()));
    let _events = Abort(events);
    loop {
        // Subscribe to the request channels of the rooms with a bridge instance, and only
        // those.
        let rooms = rooms_rx.borrow_and_update().clone();
        let wanted: HashMap<String, String> =
            rooms.iter().map(|r| (Channels::of(&cfg.prefix, r).rpc, r.clone())).collect();
        for (ch, room) in &wanted {
            if !subscribed.contains_key(ch) {
                sink.subscribe(ch).await?;
                subscribed.insert(ch.clone(), room.clone());
            }
        }
        let stale: Vec<String> = subscribed.keys().filter(|c| !wanted.contains_key(*c)).cloned().collect();
        for ch in stale {
            sink.unsubscribe(&ch).await?;
            subscribed.remove(&ch);
        }
        ready.send_replace(rooms);
        tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            changed = rooms_rx.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
            }
            msg = stream.next() => {
                let Some(msg) = msg else {
                    return Err(redis::RedisError::from((redis::ErrorKind::Io, "the subscription connection closed")));
                };
                let channel = msg.get_channel_name().to_owned();
                let payload = msg.get_payload_bytes().to_vec();
                if let Some(room) = subscribed.get(&channel) {
                    let link = RedisLink {
                        sink: sink.clone(),
                        publisher: publisher.clone(),
                        channels: Channels::of(&cfg.prefix, room),
                        pending: pending.clone(),
                    };
                    tokio::spawn(request(hub.clone(), room.clone(), payload, publisher.clone(), link));
                } else if let Some(tx) = pending.lock().ok().and_then(|mut p| p.remove(&channel)) {
                    let _ = tx.send(read_answer(hub, &payload));
                }
            }
        }
    }
}

/// A caller's answer to the bridge's request: `{"token", "payload"}`.
fn read_answer(hub: &Hub, bytes: &[u8]) -> Result<Value, RpcError> {
    let bad = |why: &str| RpcError::new(rpc::CALLER_ERROR, format!("the caller's answer {why}"));
    let env: Envelope<'_> = serde_json::from_slice(bytes).map_err(|_| bad("is not an envelope"))?;
    if !env.token.as_deref().is_some_and(|t| hub.cfg.token.accepts(t)) {
        return Err(bad("does not carry the token"));
    }
    let v: Value = serde_json::from_str(env.payload.get()).map_err(|_| bad("is not JSON"))?;
    let a = rpc::as_answer(&v).ok_or_else(|| bad("is not a JSON-RPC response"))?;
    a.outcome
}

/// Serves one request envelope and publishes the answer on its `reply_to`.
async fn request(hub: Arc<Hub>, room: String, bytes: Vec<u8>, mut publisher: MultiplexedConnection, link: RedisLink) {
    let Ok(env) = serde_json::from_slice::<Envelope<'_>>(&bytes) else {
        tracing::warn!(%room, bytes = bytes.len(), "a message that is no request envelope dropped");
        return;
    };
    if !env.token.as_deref().is_some_and(|t| hub.cfg.token.accepts(t)) {
        tracing::warn!(%room, "a request without the right token dropped");
        return;
    }
    let reply_to = env.reply_to.filter(|c| valid_channel(c));
    let raw = env.payload.get();
    // A payload given as a JSON string is the text of the message.
    let text = match serde_json::from_str::<Value>(raw) {
        Ok(Value::String(s)) if raw.trim_start().starts_with('"') => s,
        _ => raw.to_owned(),
    };
    let caller: Caller = Some(Arc::new(link));
    let answer = serve::handle_text(&hub, Some(&room), &caller, &text).await;
    match (answer, reply_to) {
        (Some(a), Some(ch)) => {
            let r: Result<i64, _> = publisher.publish(&ch, a).await;
            if let Err(e) = r {
                tracing::warn!(error = %e, channel = %ch, "publishing an answer failed");
            }
        }
        (Some(_), None) => tracing::debug!(%room, "an answer with no valid reply_to dropped"),
        (None, _) => {}
    }
}

/// Publishes every room's events on its events channel.
async fn forward_events(hub: Arc<Hub>, prefix: String, mut publisher: MultiplexedConnection) {
    let mut events = hub.subscribe();
    loop {
        match events.recv().await {
            Ok(e) => {
                let ch = Channels::of(&prefix, &e.room).events;
                let r: Result<i64, _> = publisher.publish(&ch, e.text.as_ref()).await;
                if let Err(err) = r {
                    tracing::warn!(error = %err, "publishing an event failed");
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "redis event publisher fell behind");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

struct Abort(tokio::task::JoinHandle<()>);

impl Drop for Abort {
    fn drop(&mut self) {
        self.0.abort();
    }
}
