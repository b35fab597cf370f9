//! The QUIC driver of [`RelayCore`]: thin tokio tasks that accept connections, read framed
//! control messages and codec frame streams into the core, and carry out what it polls out.
//!
//! Tasks:
//! - one accept loop;
//! - per connection: a control reader, a control writer (bounded queue), a loop accepting
//!   unidirectional frame streams, and one reader per such stream;
//! - per outgoing frame stream: a writer draining its queue in the peer's [`PeerQueues`]
//!   (the flow-control rules, sans-IO: coalescable deltas dropped for a lagging user, who then
//!   gets only the next keyframe, asked for once the queue drained; a keyframe replaces what
//!   was not written yet; ordered frames delivered in order up to a hard bound per peer, past
//!   which the peer is closed with the reason). A slow user never grows the relay's memory
//!   beyond its bounds;
//! - one core task owning the [`RelayCore`], fed through one bounded channel (which gives
//!   backpressure to fast senders through QUIC flow control) and woken for its timeouts.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use molstream_engine::codec::{FrameHeader, Limits};
use quinn::{Connection, Endpoint, RecvStream, VarInt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::core::{InStream, OutStream, Outgoing, PeerId, RelayConfig, RelayCore, RelayEvent, StreamVerdict};
use super::queue::{PeerQueues, Popped, Pushed};
use crate::conn::{self, ConnError};
use crate::framing::{self, FrameDecoder};
use crate::proto::{MAX_CONTROL_MESSAGE, MAX_HELLO_MESSAGE, StreamHead};
use crate::tls::{self, RelayIdentity, TlsError, TransportSettings};

/// Control messages queued for one peer before it is closed as too slow.
const CONTROL_QUEUE: usize = 4096;
/// How long a closed peer's control writer may flush what was queued before the connection is
/// closed anyway (a peer that stopped reading never lets it finish).
const CLOSE_FLUSH: Duration = Duration::from_secs(1);
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
    /// The peer's outgoing frame queues, shared with their writers.
    frames: Arc<std::sync::Mutex<PeerQueues>>,
    /// Wakes the writer of each open frame stream.
    streams: HashMap<OutStream, Arc<tokio::sync::Notify>>,
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
                let _ = tokio::time::timeout(CLOSE_FLUSH, send.stopped()).await;
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
                let cfg = core.config();
                let frames = PeerQueues::new(cfg.max_queued_frame_bytes, cfg.max_peer_backlog_bytes);
                let frames = Arc::new(std::sync::Mutex::new(frames));
                peers.insert(peer, PeerIo { conn, control, queued, frames, streams: HashMap::new() });
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
    let max_control = core.config().max_control_queue_bytes;
    while let Some((peer, out)) = core.poll_transmit() {
        let Some(io) = peers.get_mut(&peer) else { continue };
        match out {
            Outgoing::Message(msg) => {
                let mut bytes = Vec::new();
                if framing::encode(&msg.encode(), &mut bytes).is_err() {
                    continue;
                }
                let len = bytes.len();
                let queued = io.queued.load(std::sync::atomic::Ordering::Relaxed);
                if queued + len > max_control {
                    core.handle_too_slow(
                        peer,
                        format!("too slow: {queued} bytes of control messages not read (limit {max_control})"),
                    );
                    continue;
                }
                // Counted before the writer can see (and subtract) it.
                io.queued.fetch_add(len, std::sync::atomic::Ordering::Relaxed);
                if let Err(e) = io.control.try_send(ControlCmd::Send(bytes)) {
                    io.queued.fetch_sub(len, std::sync::atomic::Ordering::Relaxed);
                    if let mpsc::error::TrySendError::Full(_) = e {
                        core.handle_too_slow(peer, format!("too slow: {CONTROL_QUEUE} control messages not read"));
                    }
                }
            }
            Outgoing::OpenStream { stream, head } => {
                if let Ok(mut q) = io.frames.lock() {
                    q.open(stream);
                }
                let wake = Arc::new(tokio::sync::Notify::new());
                io.streams.insert(stream, wake.clone());
                let writer = FrameWriter { queues: io.frames.clone(), wake, peer, stream, inbox: inbox.clone() };
                tokio::spawn(writer.run(io.conn.clone(), head));
            }
            Outgoing::Frame { stream, bytes, class } => {
                let Some(wake) = io.streams.get(&stream) else { continue };
                let pushed = match io.frames.lock() {
                    Ok(mut q) => q.push(stream, bytes, class),
                    Err(_) => continue,
                };
                wake.notify_one();
                match pushed {
                    Pushed::Dropped { started: true } => core.handle_lagging(peer, stream),
                    Pushed::Overflow { backlog } => core.handle_too_slow(
                        peer,
                        format!(
                            "too slow: {backlog} bytes of structure and shape frames not read (limit {}); \
                             they are never dropped",
                            core.config().max_peer_backlog_bytes
                        ),
                    ),
                    _ => {}
                }
            }
            Outgoing::FinishStream { stream } => {
                if let Some(wake) = io.streams.remove(&stream) {
                    if let Ok(mut q) = io.frames.lock() {
                        q.finish(stream);
                    }
                    wake.notify_one();
                }
            }
            Outgoing::Close { reason } => {
                if let Some(io) = peers.remove(&peer) {
                    if let Ok(mut q) = io.frames.lock() {
                        q.finish_all();
                    }
                    for wake in io.streams.values() {
                        wake.notify_one();
                    }
                    if io.control.try_send(ControlCmd::Close(reason.clone())).is_err() {
                        io.conn.close(VarInt::from_u32(CLOSE_CODE), reason.as_bytes());
                    } else {
                        // A peer that stopped reading never lets the writer flush: close anyway.
                        let conn = io.conn.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(CLOSE_FLUSH * 2).await;
                            conn.close(VarInt::from_u32(CLOSE_CODE), reason.as_bytes());
                        });
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

/// Writes one outgoing frame stream from its queue in the peer's [`PeerQueues`].
struct FrameWriter {
    queues: Arc<std::sync::Mutex<PeerQueues>>,
    wake: Arc<tokio::sync::Notify>,
    peer: PeerId,
    stream: OutStream,
    inbox: mpsc::WeakSender<Input>,
}

impl FrameWriter {
    async fn run(self, conn: Connection, head: StreamHead) {
        let ok = self.write(&conn, &head).await;
        // Whatever is left goes with the writer.
        if let Ok(mut q) = self.queues.lock() {
            q.remove(self.stream);
        }
        if !ok {
            tracing::debug!(peer = ?self.peer, stream = ?self.stream, "frame stream ended early");
        }
    }

    async fn write(&self, conn: &Connection, head: &StreamHead) -> bool {
        let Ok(mut send) = conn.open_uni().await else { return false };
        if conn::write_head(&mut send, head).await.is_err() {
            return false;
        }
        loop {
            let popped = match self.queues.lock() {
                Ok(mut q) => q.pop(self.stream),
                Err(_) => return false,
            };
            match popped {
                Popped::Frame(frame) => {
                    if send.write_chunk(frame).await.is_err() {
                        return false;
                    }
                }
                Popped::Finished => break,
                Popped::Empty { report_drained } => {
                    if report_drained
                        && let Some(tx) = self.inbox.upgrade()
                        && tx.send(Input::Drained { peer: self.peer, stream: self.stream }).await.is_err()
                    {
                        return false;
                    }
                    self.wake.notified().await;
                }
            }
        }
        let _ = send.finish();
        true
    }
}
