//! The QUIC driver of [`RelayCore`]: thin tokio tasks that accept connections, read framed
//! control messages and codec frame streams into the core, and carry out what it polls out.
//!
//! Tasks:
//! - one accept loop;
//! - per connection: a control reader, a control writer (bounded queue), a loop accepting
//!   unidirectional frame streams, and one reader per such stream;
//! - per outgoing frame stream: a writer draining a frame queue bounded in bytes. A delta
//!   that does not fit is dropped and the core told the user lags (it then gets only the next
//!   keyframe, asked for once the queue drained); a keyframe replaces what was not written yet.
//!   A slow user never grows the relay's memory beyond the bound and one keyframe per channel;
//! - one core task owning the [`RelayCore`], fed through one bounded channel (which gives
//!   backpressure to fast senders through QUIC flow control) and woken for its timeouts.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use molstream_engine::codec::{FrameHeader, Limits};
use quinn::{Connection, Endpoint, RecvStream, VarInt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::core::{InStream, OutStream, Outgoing, PeerId, RelayConfig, RelayCore, RelayEvent, StreamVerdict};
use crate::conn::{self, ConnError};
use crate::framing::{self, FrameDecoder};
use crate::proto::{MAX_CONTROL_MESSAGE, MAX_HELLO_MESSAGE, StreamHead};
use crate::tls::{self, RelayIdentity, TlsError, TransportSettings};

/// Control messages queued for one peer before it is closed as too slow.
const CONTROL_QUEUE: usize = 4096;
/// Bytes of control messages queued for one peer above which it is closed as too slow.
const CONTROL_QUEUE_BYTES: usize = 64 << 20;
/// Bytes queued for a plugin host above which users' messages to its instances are dropped
/// (so a user flooding an instance cannot grow the relay's memory, nor get the host closed).
const INPUT_SOFT_LIMIT: usize = 16 << 20;
/// Inputs queued for the core task.
const INBOX: usize = 1024;
/// QUIC application error code used when the relay closes a connection.
const CLOSE_CODE: u32 = 1;

enum Input {
    Connected {
        peer: PeerId,
        conn: Connection,
        control: mpsc::Sender<ControlCmd>,
        queued: Arc<std::sync::atomic::AtomicUsize>,
    },
    Message {
        peer: PeerId,
        bytes: Bytes,
    },
    Disconnected {
        peer: PeerId,
    },
    ProtocolError {
        peer: PeerId,
        reason: String,
    },
    StreamOpened {
        peer: PeerId,
        head: StreamHead,
        reply: oneshot::Sender<Option<InStream>>,
    },
    Frame {
        stream: InStream,
        header: FrameHeader,
        bytes: Bytes,
        reply: Option<oneshot::Sender<StreamVerdict>>,
    },
    StreamFinished {
        stream: InStream,
    },
    Drained {
        peer: PeerId,
        stream: OutStream,
    },
}

enum ControlCmd {
    Send(Vec<u8>),
    Close(String),
}

struct PeerIo {
    conn: Connection,
    control: mpsc::Sender<ControlCmd>,
    /// Bytes handed to the control writer and not yet written.
    queued: Arc<std::sync::atomic::AtomicUsize>,
    streams: HashMap<OutStream, Arc<FrameQueue>>,
}

/// The frames waiting to be written on one outgoing frame stream, shared by the core task
/// (which pushes without ever waiting) and the stream's writer task.
///
/// - A delta is queued while the queue holds less than its byte bound; otherwise it is dropped
///   and the user marked lagging (the core then sends it nothing but the next keyframe).
/// - A keyframe always goes in and replaces whatever was not written yet: nothing before a
///   keyframe is needed to decode what follows it (latest wins).
/// - When the writer empties the queue of a lagging user it reports `Drained` once, and the
///   core asks the instance for a keyframe.
#[derive(Debug)]
struct FrameQueue {
    state: std::sync::Mutex<QueueState>,
    wake: tokio::sync::Notify,
    max_bytes: usize,
}

#[derive(Debug, Default)]
struct QueueState {
    frames: VecDeque<Bytes>,
    bytes: usize,
    lagging: bool,
    drained_reported: bool,
    closed: bool,
    /// Frames dropped for this user (deltas over the bound, and unsent frames a keyframe
    /// superseded).
    coalesced: u64,
}

impl FrameQueue {
    fn new(max_bytes: usize) -> Self {
        Self { state: std::sync::Mutex::new(QueueState::default()), wake: tokio::sync::Notify::new(), max_bytes }
    }

    /// Queues a frame; `false` when a delta was dropped because the user lags.
    fn push(&self, bytes: Bytes, key: bool) -> bool {
        let Ok(mut st) = self.state.lock() else { return false };
        let accepted = if key {
            st.coalesced += st.frames.len() as u64;
            st.frames.clear();
            st.bytes = 0;
            st.lagging = false;
            true
        } else if st.lagging || (!st.frames.is_empty() && st.bytes + bytes.len() > self.max_bytes) {
            st.coalesced += 1;
            if !st.lagging {
                st.lagging = true;
                st.drained_reported = false;
            }
            false
        } else {
            true
        };
        if accepted {
            st.bytes += bytes.len();
            st.frames.push_back(bytes);
        }
        drop(st);
        self.wake.notify_one();
        accepted
    }

    fn close(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.closed = true;
        }
        self.wake.notify_one();
    }
}

/// Errors starting the relay.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// TLS configuration.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The UDP socket.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// A running relay: a QUIC endpoint and the tasks driving a [`RelayCore`]. Embeddable (the
/// viewer can run one in-process) and used by the `molstream-relay` binary.
#[derive(Debug)]
pub struct RelayServer {
    endpoint: Endpoint,
    local_addr: SocketAddr,
    fingerprint: [u8; 32],
    accept: JoinHandle<()>,
    core: JoinHandle<()>,
}

impl RelayServer {
    /// Starts listening on `listen` with `identity`. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`RelayError`] if the TLS configuration is refused or the socket cannot be bound.
    pub fn start(
        cfg: RelayConfig,
        identity: &RelayIdentity,
        listen: SocketAddr,
        transport: &TransportSettings,
    ) -> Result<Self, RelayError> {
        let server_cfg = tls::server_config(identity, transport)?;
        let endpoint =
            Endpoint::server(server_cfg, listen).map_err(|source| RelayError::Listen { addr: listen, source })?;
        let local_addr = endpoint.local_addr().map_err(|source| RelayError::Listen { addr: listen, source })?;
        let (inbox_tx, inbox_rx) = mpsc::channel(INBOX);
        let limits = cfg.frame_limits;
        let core = tokio::spawn(run_core(RelayCore::new(cfg), inbox_rx, inbox_tx.downgrade()));
        let accept = tokio::spawn(accept_loop(endpoint.clone(), inbox_tx, limits));
        tracing::info!(%local_addr, fingerprint = %identity.fingerprint_hex(), "relay listening");
        Ok(Self { endpoint, local_addr, fingerprint: identity.fingerprint(), accept, core })
    }

    /// The address the relay listens on (with the real port when 0 was asked for).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// SHA-256 of the relay's certificate.
    #[must_use]
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// Closes every connection and stops the relay.
    pub async fn shutdown(self) {
        self.endpoint.close(VarInt::from_u32(0), b"relay shutting down");
        self.accept.abort();
        let _ = self.accept.await;
        self.core.abort();
        let _ = self.core.await;
        self.endpoint.wait_idle().await;
    }

    /// Runs until the endpoint is closed (for the binary).
    pub async fn wait(self) {
        let _ = self.accept.await;
        self.core.abort();
        let _ = self.core.await;
    }
}

async fn accept_loop(endpoint: Endpoint, inbox: mpsc::Sender<Input>, limits: Limits) {
    let mut next_peer = 1u64;
    // Dropping the set (when this task is aborted at shutdown) aborts every connection task.
    let mut connections = tokio::task::JoinSet::new();
    while let Some(incoming) = endpoint.accept().await {
        while connections.try_join_next().is_some() {}
        let peer = PeerId(next_peer);
        next_peer += 1;
        let inbox = inbox.clone();
        connections.spawn(async move {
            let remote = incoming.remote_address();
            match incoming.await {
                Ok(conn) => serve_connection(peer, conn, inbox, limits).await,
                Err(e) => tracing::debug!(%remote, error = %e, "handshake failed"),
            }
        });
    }
}

async fn serve_connection(peer: PeerId, conn: Connection, inbox: mpsc::Sender<Input>, limits: Limits) {
    tracing::debug!(?peer, remote = %conn.remote_address(), "connected");
    let (control_tx, control_rx) = mpsc::channel(CONTROL_QUEUE);
    let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let connected = Input::Connected { peer, conn: conn.clone(), control: control_tx, queued: queued.clone() };
    if inbox.send(connected).await.is_err() {
        return;
    }
    let (send_tx, send_rx) = oneshot::channel();
    let writer = tokio::spawn(control_writer(conn.clone(), control_rx, send_rx, queued));
    let uni = tokio::spawn(accept_frame_streams(peer, conn.clone(), inbox.clone(), limits));
    let control = async {
        let (send, recv) = match conn.accept_bi().await {
            Ok(s) => s,
            Err(e) => return tracing::debug!(?peer, error = %e, "no control stream"),
        };
        let _ = send_tx.send(send);
        read_control(peer, recv, &inbox).await;
    };
    tokio::select! {
        () = control => {}
        _ = conn.closed() => {}
    }
    let _ = inbox.send(Input::Disconnected { peer }).await;
    uni.abort();
    // The writer ends when the core drops its queue (after `Disconnected`).
    let _ = writer.await;
}

async fn read_control(peer: PeerId, mut recv: RecvStream, inbox: &mpsc::Sender<Input>) {
    // Before the handshake only a small `Hello` is accepted.
    let mut decoder = FrameDecoder::new(MAX_HELLO_MESSAGE);
    let mut first = true;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let Ok(Some(n)) = recv.read(&mut buf).await else { return };
        decoder.push_bytes(&buf[..n]);
        loop {
            match decoder.try_next() {
                Ok(Some(m)) => {
                    if inbox.send(Input::Message { peer, bytes: Bytes::from(m) }).await.is_err() {
                        return;
                    }
                    if first {
                        first = false;
                        decoder.set_max_message(MAX_CONTROL_MESSAGE);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = inbox.send(Input::ProtocolError { peer, reason: format!("control stream: {e}") }).await;
                    return;
                }
            }
        }
    }
}

async fn control_writer(
    conn: Connection,
    mut rx: mpsc::Receiver<ControlCmd>,
    send: oneshot::Receiver<quinn::SendStream>,
    queued: Arc<std::sync::atomic::AtomicUsize>,
) {
    let written = |n: usize| queued.fetch_sub(n, std::sync::atomic::Ordering::Relaxed);
    let close = |conn: &Connection, reason: &str| conn.close(VarInt::from_u32(CLOSE_CODE), reason.as_bytes());
    // Until the peer's control stream is known, queue what comes (only a close for a
    // handshake timeout, in practice); the stream wins a tie so nothing is reordered.
    let mut pending = Vec::new();
    let mut send_rx = send;
    let mut send = loop {
        tokio::select! {
            biased;
            s = &mut send_rx => match s {
                Ok(s) => break s,
                Err(_) => return,
            },
            cmd = rx.recv() => match cmd {
                Some(ControlCmd::Send(bytes)) => pending.push(bytes),
                Some(ControlCmd::Close(reason)) => {
                    close(&conn, &reason);
                    return;
                }
                None => return,
            },
        }
    };
    for bytes in pending {
        if send.write_all(&bytes).await.is_err() {
            return;
        }
        written(bytes.len());
    }
    while let Some(cmd) = rx.recv().await {
        match cmd {
            ControlCmd::Send(bytes) => {
                if send.write_all(&bytes).await.is_err() {
                    return;
                }
                written(bytes.len());
            }
            ControlCmd::Close(reason) => {
                // Let the peer read what was queued (e.g. `Refused`) before the close.
                let _ = send.finish();
                let _ = tokio::time::timeout(Duration::from_secs(1), send.stopped()).await;
                close(&conn, &reason);
                return;
            }
        }
    }
    let _ = send.finish();
}

async fn accept_frame_streams(peer: PeerId, conn: Connection, inbox: mpsc::Sender<Input>, limits: Limits) {
    while let Ok(recv) = conn.accept_uni().await {
        tokio::spawn(read_frame_stream(peer, recv, inbox.clone(), limits));
    }
}

async fn read_frame_stream(peer: PeerId, mut recv: RecvStream, inbox: mpsc::Sender<Input>, limits: Limits) {
    let head = match conn::read_head(&mut recv).await {
        Ok(h) => h,
        Err(ConnError::Read(_) | ConnError::ClosedByRelay(_) | ConnError::Connection(_)) => return,
        Err(e) => {
            let _ = inbox.send(Input::ProtocolError { peer, reason: format!("stream preamble: {e}") }).await;
            return;
        }
    };
    let (reply, answer) = oneshot::channel();
    if inbox.send(Input::StreamOpened { peer, head, reply }).await.is_err() {
        return;
    }
    let Ok(Some(stream)) = answer.await else {
        let _ = recv.stop(VarInt::from_u32(CLOSE_CODE));
        return;
    };
    let mut count = 0u64;
    loop {
        match conn::read_frame(&mut recv, &limits).await {
            Ok(Some((header, bytes))) => {
                count += 1;
                // Ask the core every 64 frames whether the stream is still wanted.
                let (reply, verdict) = if count.is_multiple_of(64) {
                    let (t, r) = oneshot::channel();
                    (Some(t), Some(r))
                } else {
                    (None, None)
                };
                if inbox.send(Input::Frame { stream, header, bytes, reply }).await.is_err() {
                    return;
                }
                if let Some(v) = verdict
                    && matches!(v.await, Ok(StreamVerdict::Stop) | Err(_))
                {
                    let _ = recv.stop(VarInt::from_u32(CLOSE_CODE));
                    break;
                }
            }
            Ok(None) => break,
            Err(e @ (ConnError::Codec(_) | ConnError::FinishedEarly)) => {
                let _ = inbox.send(Input::ProtocolError { peer, reason: format!("frame stream: {e}") }).await;
                break;
            }
            Err(_) => break,
        }
    }
    let _ = inbox.send(Input::StreamFinished { stream }).await;
}

async fn run_core(mut core: RelayCore, mut inbox: mpsc::Receiver<Input>, weak: mpsc::WeakSender<Input>) {
    let mut peers: HashMap<PeerId, PeerIo> = HashMap::new();
    loop {
        let deadline = core.poll_timeout().map(tokio::time::Instant::from_std);
        let input = tokio::select! {
            i = inbox.recv() => i,
            () = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => {
                core.handle_timeout(Instant::now());
                dispatch(&mut core, &mut peers, &weak);
                continue;
            }
        };
        let Some(input) = input else { return };
        let now = Instant::now();
        match input {
            Input::Connected { peer, conn, control, queued } => {
                peers.insert(peer, PeerIo { conn, control, queued, streams: HashMap::new() });
                core.handle_connected(peer, now);
            }
            Input::Message { peer, bytes } => core.handle_message(peer, &bytes, now),
            Input::Disconnected { peer } => {
                core.handle_disconnected(peer, now);
                peers.remove(&peer);
            }
            Input::ProtocolError { peer, reason } => core.handle_protocol_error(peer, reason),
            Input::StreamOpened { peer, head, reply } => {
                let _ = reply.send(core.handle_stream_opened(peer, head, now));
            }
            Input::Frame { stream, header, bytes, reply } => {
                let verdict = core.handle_frame(stream, &header, &bytes);
                if let Some(r) = reply {
                    let _ = r.send(verdict);
                }
            }
            Input::StreamFinished { stream } => core.handle_stream_finished(stream),
            Input::Drained { peer, stream } => core.handle_drained(peer, stream),
        }
        dispatch(&mut core, &mut peers, &weak);
    }
}

fn dispatch(core: &mut RelayCore, peers: &mut HashMap<PeerId, PeerIo>, inbox: &mpsc::WeakSender<Input>) {
    let max_queued = core.config().max_queued_frame_bytes;
    while let Some((peer, out)) = core.poll_transmit() {
        let Some(io) = peers.get_mut(&peer) else { continue };
        match out {
            Outgoing::Message(msg) => {
                let is_input = matches!(msg, crate::proto::RelayMsg::InstanceInput { .. });
                let mut bytes = Vec::new();
                if framing::encode(&msg.encode(), &mut bytes).is_err() {
                    continue;
                }
                let len = bytes.len();
                let queued = io.queued.load(std::sync::atomic::Ordering::Relaxed);
                if is_input && queued > INPUT_SOFT_LIMIT {
                    tracing::warn!(?peer, queued, "plugin host behind; a user's message to an instance dropped");
                    continue;
                }
                if queued + len > CONTROL_QUEUE_BYTES {
                    core.handle_protocol_error(peer, format!("too slow: {queued} bytes of control messages queued"));
                    continue;
                }
                // Counted before the writer can see (and subtract) it.
                io.queued.fetch_add(len, std::sync::atomic::Ordering::Relaxed);
                if let Err(e) = io.control.try_send(ControlCmd::Send(bytes)) {
                    io.queued.fetch_sub(len, std::sync::atomic::Ordering::Relaxed);
                    if let mpsc::error::TrySendError::Full(_) = e {
                        core.handle_protocol_error(peer, "too slow: control queue full".into());
                    }
                }
            }
            Outgoing::OpenStream { stream, head } => {
                let queue = Arc::new(FrameQueue::new(max_queued));
                io.streams.insert(stream, queue.clone());
                tokio::spawn(frame_writer(io.conn.clone(), head, queue, peer, stream, inbox.clone()));
            }
            Outgoing::Frame { stream, bytes, key } => {
                let Some(queue) = io.streams.get(&stream) else { continue };
                if !queue.push(bytes, key) {
                    core.handle_lagging(peer, stream);
                }
            }
            Outgoing::FinishStream { stream } => {
                if let Some(queue) = io.streams.remove(&stream) {
                    queue.close();
                }
            }
            Outgoing::Close { reason } => {
                if let Some(io) = peers.remove(&peer) {
                    for queue in io.streams.values() {
                        queue.close();
                    }
                    if io.control.try_send(ControlCmd::Close(reason.clone())).is_err() {
                        io.conn.close(VarInt::from_u32(CLOSE_CODE), reason.as_bytes());
                    }
                }
            }
        }
    }
    while let Some(event) = core.poll_event() {
        match event {
            RelayEvent::Closed { peer, reason } => tracing::info!(?peer, %reason, "peer closed"),
            other => tracing::debug!(?other, "relay event"),
        }
    }
}

async fn frame_writer(
    conn: Connection,
    head: StreamHead,
    queue: Arc<FrameQueue>,
    peer: PeerId,
    stream: OutStream,
    inbox: mpsc::WeakSender<Input>,
) {
    let Ok(mut send) = conn.open_uni().await else { return };
    if conn::write_head(&mut send, &head).await.is_err() {
        return;
    }
    loop {
        let (next, report_drained, closed) = {
            let Ok(mut st) = queue.state.lock() else { return };
            let next = st.frames.pop_front();
            if let Some(b) = &next {
                st.bytes -= b.len();
            }
            let report = next.is_none() && st.lagging && !st.drained_reported;
            if report {
                st.drained_reported = true;
            }
            (next, report, st.closed)
        };
        match next {
            Some(frame) => {
                if send.write_chunk(frame).await.is_err() {
                    return;
                }
            }
            None if closed => break,
            None => {
                if report_drained
                    && let Some(tx) = inbox.upgrade()
                    && tx.send(Input::Drained { peer, stream }).await.is_err()
                {
                    return;
                }
                queue.wake.notified().await;
            }
        }
    }
    let _ = send.finish();
}
